"""Evaluate a translator: gain over "do nothing" on held-out GAN pairs and world re-renders."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.commands import command_parser

EPILOG = """\
Held-out GAN pairs need the generator and boundary: given with --gan/--boundary, or
taken from the bundle's provenance when those files still exist with the same sha256.
World scenes (seeds >= 1e9, never seen in training) are compared with the true
re-render of the same street with the attribute set to 1. The figures are printed; only
with --write are they merged into the bundle's config.json under "metrics" (a figure this
run could not measure, e.g. held-out pairs without the GAN, keeps its recorded value), so
evaluating a shipped or downloaded bundle never changes it.

Baselines on the same world scenes, so the gain reads against the simplest thing that
could have done the job:
  (a) gan matrix      one global 3x4 colour matrix fitted on the GAN's pairs of the
                      translator's own training latents at s = 1 (needs the GAN)
  (b) oracle matrix   the same fitted on true world pairs of other scenes
  (c) oracle translator  the bundle's architecture and steps trained on those true
                      world pairs (--oracle-translator; minutes on a CPU)
  GAN edit fidelity = (a) / (b): how much of the world's change the GAN edit carries;
  translator locality = translator - (a): what the net adds beyond a global change.
World scenes are also split by kind (night, fog, other): the world's sunny, overcast and
golden_hour re-renders clear night and fog too, so a whole-set figure mixes "more sun" with
"night to day"; the split shows which the translator does.

examples:
  photoedit eval-translator run/models/sunny
  photoedit eval-translator run/models/night --n-world 64 --oracle-translator
  photoedit eval-translator run/models/night --n-world 64 --oracle-out oracle/night
  photoedit eval-translator run/models/night --gan run/gan.safetensors --boundary run/night.npz --json --write
"""


def build_parser() -> argparse.ArgumentParser:
    from pipeline.semantics.evaluate import EvalConfig

    d = EvalConfig()
    p = command_parser("eval-translator", __doc__, EPILOG)
    p.add_argument("bundle", metavar="BUNDLE", help="translator bundle folder (model.safetensors + config.json)")
    p.add_argument("--gan", metavar="CKPT", help="generator for held-out pairs (default: bundle provenance)")
    p.add_argument("--boundary", metavar="FILE", help="boundary for held-out pairs (default: bundle provenance)")
    p.add_argument("--n-pairs", type=int, default=d.n_pairs, help=f"held-out GAN pairs (default: {d.n_pairs})")
    p.add_argument("--n-world", type=int, default=d.n_world, help=f"held-out world scenes (default: {d.n_world})")
    p.add_argument("--predictor", default=d.predictor, metavar="NAME[:PATH]",
                   help=f"predictor for the score curve; a classifier as classifier:FOLDER (default: {d.predictor})")
    p.add_argument("--n-fit", type=int, default=d.n_fit,
                   help=f"GAN pairs the global matrix (a) is fitted on (default: {d.n_fit})")
    p.add_argument("--n-oracle", type=int, default=d.n_oracle,
                   help=f"true world pairs for the oracle matrix (b) and translator (c) (default: {d.n_oracle})")
    p.add_argument("--oracle-translator", action="store_true",
                   help="also train the oracle translator (c) on true world pairs (minutes)")
    p.add_argument("--oracle-out", metavar="DIR",
                   help="also save the oracle translator (c) there as a bundle, e.g. to edit real photos with "
                        "the ceiling (implies --oracle-translator; refuses an existing bundle)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--write", action="store_true",
                   help="merge the figures into the bundle's config.json (default: print only)")
    w.add_argument("--no-write", action="store_false", dest="write", help="print only (the default)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i] (default: cpu)")
    return p


def by_scene_text(groups: dict) -> str:
    """`by scene: night +0.61 (9), fog -0.87 (11), other +1.34 (44)`."""
    return "by scene: " + ", ".join(f"{k} {v['psnr_gain_db']:+.2f} ({v['n']})" for k, v in groups.items())


def main(argv: list[str]) -> int:
    from pipeline.errors import UserError
    from pipeline.semantics.evaluate import EvalConfig, run_evaluation

    args = build_parser().parse_args(argv)
    if min(args.n_pairs, args.n_world, args.n_fit, args.n_oracle) < 1:
        raise UserError("--n-pairs, --n-world, --n-fit and --n-oracle must be >= 1")
    if args.oracle_out and Path(args.oracle_out, "config.json").exists():
        raise UserError(f"{args.oracle_out}: a bundle is already there; give a new folder for --oracle-out")
    name, _, path = args.predictor.partition(":")
    cfg = EvalConfig(n_pairs=args.n_pairs, n_world=args.n_world, predictor=name, predictor_path=path or None,
                     n_fit=args.n_fit,
                     n_oracle=args.n_oracle, oracle_translator=args.oracle_translator or bool(args.oracle_out),
                     oracle_out=args.oracle_out)
    r = run_evaluation(args.bundle, cfg, args.gan, args.boundary, args.device, write=args.write)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"translator '{r['attribute']}' ({args.bundle})")
    for name in ("heldout_pairs", "world"):
        g = r[name]
        if g is None:
            print(f"  {name:<14} skipped: {r.get(name + '_skipped', 'no --gan/--boundary')}")
            continue
        print(f"  {name:<14} PSNR {g['psnr_db']:.2f} dB vs do-nothing {g['psnr_do_nothing_db']:.2f} "
              f"(gain {g['psnr_gain_db']:+.2f} dB); SSIM gain {g['ssim_gain']:+.4f}  [n={g['n']}]")
        if g.get("by_scene"):
            print(f"  {'':<14} {by_scene_text(g['by_scene'])}")
    b = r["baselines"]
    for name, label in (("gan_matrix", "(a) gan matrix"), ("oracle_matrix", "(b) oracle matrix"),
                        ("oracle_translator", "(c) oracle translator")):
        g = b[name]
        text = f"world gain {g['psnr_gain_db']:+.2f} dB, SSIM gain {g['ssim_gain']:+.4f}" if g else "not measured"
        print(f"  {label:<24} {text}")
        if g and g.get("by_scene"):
            print(f"  {'':<24} {by_scene_text(g['by_scene'])}")
    ratios = {k: b[k] for k in ("gan_edit_fidelity", "translator_locality_db", "vs_oracle_matrix_db",
                                "of_oracle_translator")}
    print("  " + ", ".join(f"{k} {v:+.2f}" if v is not None else f"{k} -" for k, v in ratios.items()))
    for name, curve in r["score_vs_strength"].items():
        print(f"  {r['predictor']} '{r['attribute']}' score over s={r['strengths']} on {name}: {curve}")
    print(f"  strength monotonic: {r['strength_monotonic']}")
    return 0

"""Train a linear attribute boundary in the GAN's latent space (InterFaceGAN selection, fast LDA solver).

Reads a scored sample shard (or plain .npy arrays), writes FILE.npz (normal, intercept,
layers) + FILE.json (attribute, predictor, GAN hash, space, accuracies, solver, ...).
The latents stay on disk: only the selected extremes are gathered into memory (memory-mapped),
the rest are streamed once in blocks for the accuracies, and torch is never imported (500,000 x
512 latents: a few seconds, a sixth of their size in memory; see docs/BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.config import add_config_arguments
from pipeline.errors import UserError

EPILOG = """examples:
  photoedit boundary --samples samples/ --attribute sunny --out boundaries/sunny.npz
  photoedit boundary --samples samples/ --attribute sunny --condition night.npz --out sunny_not_night.npz
  photoedit boundary --samples samples/ --attribute night --solver svc --out night_svc.npz
  photoedit boundary --latents w.npy --scores s.npy --attribute smile --out smile.npz
  photoedit boundary --samples samples/ --attribute sunny --set boundary.ratio=0.05 --out s.npz
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit boundary", description=__doc__.strip(), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (a sample shard, or two .npy files)")
    src.add_argument("--samples", metavar="DIR", help="sample shard scored by `photoedit score`")
    src.add_argument("--predictor", default="photometric", help="whose scores_<predictor>.npz to use (default: %(default)s)")
    src.add_argument("--latents", metavar="L.npy", help="latents [N, dim] (w) or [N, layers, dim] (wplus)")
    src.add_argument("--scores", metavar="S.npy", help="scores [N]")
    p.add_argument("--attribute", required=True, help="attribute to separate, e.g. sunny")
    p.add_argument("--condition", action="append", default=[], metavar="B.npz",
                   help="boundary file whose normal is projected out (repeatable)")
    p.add_argument("--space", choices=["w", "wplus"], help="override boundary.space")
    p.add_argument("--solver", choices=["default", "svc"], help="override boundary.solver (svc: InterFaceGAN's, slow)")
    p.add_argument("--layers", help="W+ layers to store as the edit layers, e.g. 0-3 or 2,4 (default: all)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    add_config_arguments(p, "boundary:", "boundary.ratio=0.05")
    return p


def load_inputs(args, space: str):
    """(latents left on disk as LatentRows, scores [N], provenance) from --samples or --latents/--scores."""
    from pipeline.semantics.latent_rows import LatentRows

    if args.samples and (args.latents or args.scores):
        raise UserError("give either --samples or --latents/--scores, not both")
    if args.samples:
        from pipeline.semantics.boundary import read_shard_latents
        from pipeline.semantics.predictors.scoring import read_scores

        latents, meta = read_shard_latents(args.samples, space)
        scores = read_scores(args.samples, args.predictor)
        if args.attribute not in scores:
            raise UserError(f"scores_{args.predictor}.npz in {args.samples} has no '{args.attribute}' "
                            f"(it has: {', '.join(scores)})")
        return latents, scores[args.attribute], dict(meta, predictor=args.predictor, samples=str(args.samples))
    if not (args.latents and args.scores):
        raise UserError("give --samples DIR, or both --latents L.npy and --scores S.npy")
    latents = LatentRows.from_npy(args.latents)
    try:
        scores = np.load(args.scores, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{args.scores}: cannot read as a .npy array: {e}") from None
    return latents, scores.reshape(-1), {"latents": args.latents, "scores": args.scores, "predictor": "file"}


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.semantics.boundary import BoundaryConfig, LinearBoundary, parse_layers, train_boundary
    from pipeline.config import dump_yaml, load_section

    overrides = list(args.set)
    overrides += [f"boundary.space={args.space}"] if args.space else []
    overrides += [f"boundary.solver={args.solver}"] if args.solver else []
    cfg = load_section(BoundaryConfig, "boundary", args.config, overrides)
    if args.dry_run:
        print(dump_yaml({"boundary": cfg}), end="")
        return 0
    latents, scores, meta = load_inputs(args, cfg.space)
    conditions = [LinearBoundary.load(c) for c in args.condition]
    meta.update(attribute=args.attribute, condition_files=list(args.condition))
    b = train_boundary(latents, scores, cfg, conditions=conditions, layers=parse_layers(args.layers), meta=meta)
    out = b.save(args.out)
    m = b.meta
    print(f"{args.attribute}: val accuracy {m['val_accuracy']:.3f}, remaining accuracy {m['remaining_accuracy']:.3f}, "
          f"{m['n_selected_each_end']} x 2 selected of {m['n_samples']} ({cfg.solver} solver, {m['solve_seconds']:.2f} s)")
    print(f"wrote {out} and {Path(out).with_suffix('.json')}")
    return 0

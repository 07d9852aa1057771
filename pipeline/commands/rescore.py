"""Re-score a boundary layer by layer (HiGAN) and choose the W+ layers to edit automatically.

Moves N fresh samples by a fixed distance along the boundary on one layer (or layer
group) at a time, measures the mean positive change of every predictor score, picks the
groups scoring >= select_fraction of the best, and stores those layers (or, with
rescore.edit_layers=all, every layer; a global attribute moves more that way) and the table
in the boundary file. Writes OUT/rescore_<attribute>.csv/.json/.png.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import add_gan_argument
from pipeline.config import add_config_arguments
from pipeline.errors import UserError

EPILOG = """examples:
  photoedit rescore --gan gan/G.safetensors --boundary b/sunny.npz --out rescore/
  photoedit rescore --gan G.safetensors --boundary b/sunny.npz --boundary b/night.npz --groups pairs --out r/
  photoedit rescore --gan G.safetensors --boundary b/horizon_y.npz --predictor classifier:pred/ --out r/
  photoedit rescore ... --n 500 --distance 2 --set rescore.select_fraction=0.3 --no-update
predictors: NAME or NAME:PATH (classifier folder, places365 weights folder); repeatable.
groups: each (default) | pairs | ranges like 0-1,2-3,4-9
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit rescore", description=__doc__.strip(), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gan_argument(p)
    p.add_argument("--boundary", required=True, action="append", metavar="B.npz", help="boundary file (repeatable)")
    p.add_argument("--predictor", action="append", metavar="NAME[:PATH]",
                   help="predictor(s) to score with (default: photometric)")
    p.add_argument("--attribute", help="attribute that chooses the layers (default: the boundary's own)")
    p.add_argument("--n", type=int, help="override rescore.n")
    p.add_argument("--distance", type=float, help="override rescore.distance")
    p.add_argument("--groups", default="each", help="layer groups (default: %(default)s)")
    p.add_argument("--no-update", action="store_true", help="do not write the chosen layers into the boundary file")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, metavar="DIR")
    add_config_arguments(p, "rescore:", "rescore.n=500")
    return p


def build_predictors(specs: list[str] | None, device: str) -> dict:
    from pipeline.semantics.predictors import predictor_from_args

    out = {}
    for spec in specs or ["photometric"]:
        name, _, path = spec.partition(":")
        out[name] = predictor_from_args(name, path or None, device)
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.config import dump_yaml, load_section
    from pipeline.semantics.rescore import RescoreConfig, apply_layers, parse_groups, rescore, write_table

    overrides = list(args.set)
    overrides += [f"rescore.n={args.n}"] if args.n is not None else []
    overrides += [f"rescore.distance={args.distance}"] if args.distance is not None else []
    cfg = load_section(RescoreConfig, "rescore", args.config, overrides)
    if args.dry_run:
        print(dump_yaml({"rescore": cfg}), end="")
        return 0
    from gan.checkpoint import file_sha256, load_generator
    from pipeline.semantics.boundary import LinearBoundary

    if not Path(args.gan).exists():
        raise UserError(f"{args.gan}: generator checkpoint not found")
    G = load_generator(args.gan, device=args.device).eval()
    gan_hash = file_sha256(args.gan)
    predictors = build_predictors(args.predictor, args.device)
    groups = parse_groups(args.groups, G.num_ws)
    for path in args.boundary:
        b = LinearBoundary.load(path)
        trained_on = b.meta.get("gan_sha256")
        if trained_on and trained_on != gan_hash:
            print(f"warning: {path} was trained on GAN {trained_on[:12]}, rescoring on {gan_hash[:12]}")
        result = rescore(G, b, predictors, cfg, groups, args.attribute, args.device)
        stem = f"rescore_{result.attribute}"
        written = write_table(result, Path(args.out), stem)
        best = result.table[result.attribute]
        print(f"{result.attribute}: chosen layers {result.chosen_layers} (best group "
              f"{result.groups[int(best.argmax())]}: {best.max():.4f}); wrote {', '.join(map(str, written))}")
        if not args.no_update:
            updated = apply_layers(b, result, cfg)
            updated.save(path)
            print(f"updated {path}: layers = {updated.layers}")
    return 0

"""Render procedural street scenes with ground truth (records, attributes, label maps).

Writes, for scene i (seed = S + i):
  DIR/images/00000i.png    the picture (RGB)
  DIR/masks/00000i.png     semantic label map (values listed under "labels" in the manifest)
  DIR/records/00000i.json  parameter record + derived attributes, layout, object counts
and DIR/attributes.npz (one float array per attribute / layout number / count, plus
seeds) and DIR/manifest.json. Every file is written to a temp name and renamed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.config import add_config_arguments, dump_yaml, load_section
from pipeline.errors import UserError

EPILOG = """examples:
  photoedit world --n 64 --size 128x256 --out world/ --contact-sheet world/contact.png
  photoedit world --n 200 --size 128 --out night/ --condition night
  photoedit world --n 500 --out eval/ --held-out          scenes the GAN never trains on
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("world", __doc__, EPILOG, whole_doc=True)
    p.add_argument("--n", type=int, default=64, help="number of scenes (default: 64)")
    p.add_argument("--size", help="H or HxW, e.g. 128 or 128x256 (default: world.size of the config)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--seed", type=int, help="first seed (default: world.seed of the config)")
    p.add_argument("--condition", choices=["day", "overcast", "golden_hour", "night", "fog", "snow", "rain", "mixed", "random"],
                   help="lighting/weather preset; mixed = a preset per seed or fully random lighting "
                        "(default: world.condition of the config)")
    p.add_argument("--held-out", action="store_true",
                   help="use evaluation seeds (>= 1e9) that training never sees")
    p.add_argument("--contact-sheet", metavar="PNG", help="also write a grid of the first 64 images here")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes rendering and writing in parallel (default: one per core); "
                        "the output does not depend on it")
    add_config_arguments(p, "world:", "world.size=[64,128]")
    return p


def resolve_config(args):
    from pipeline.world.scene import WorldConfig

    sets = list(args.set)
    if args.size is not None:
        sets.append(f"world.size={_size_yaml(args.size)}")
    if args.seed is not None:
        sets.append(f"world.seed={args.seed}")
    if args.condition is not None:
        sets.append(f"world.condition={args.condition}")
    return load_section(WorldConfig, "world", args.config, sets)


def _size_yaml(text: str) -> str:
    from pipeline.world.scene import parse_size

    try:
        h, w = parse_size(text)
    except ValueError as e:
        raise UserError(f"--size: {e}") from None
    return f"[{h},{w}]"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    if args.dry_run:
        print(dump_yaml({"world": cfg}), end="")
        return 0
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    from pipeline.world.folder import render_folder

    render_folder(out, args.n, cfg, held_out=args.held_out, contact_sheet=args.contact_sheet, workers=args.workers)
    return 0

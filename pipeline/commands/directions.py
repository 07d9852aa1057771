"""Find unsupervised latent directions of a GAN (SeFa closed form) and save them as boundary files.

Each direction is saved like a boundary (.npz + .json: normal, intercept 0, layers), so
`photoedit rescore`, `photoedit pairs` and the rest take it as they take a boundary.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import add_gan_argument
from pipeline.errors import UserError

EPILOG = """examples:
  photoedit directions --gan gan/G.safetensors --method sefa --layers 0-3 --out sefa/coarse.npz --k 5
      writes sefa/coarse_0.npz ... coarse_4.npz (strongest first)
  photoedit directions --gan gan/G.safetensors --method sefa --layers 4-7 --index 2 --out fine2.npz
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit directions", description=__doc__.strip(), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gan_argument(p)
    p.add_argument("--method", default="sefa", choices=["sefa"], help="factorisation method (default: %(default)s)")
    p.add_argument("--layers", default="all", help="W+ layers whose modulation weights are factorised, e.g. 0-3 "
                   "(default: %(default)s)")
    p.add_argument("--k", type=int, default=5, help="save the K strongest directions (default: %(default)s)")
    p.add_argument("--index", type=int, help="save only direction INDEX (0 = strongest) to exactly --out")
    p.add_argument("--no-normalise", action="store_true", help="do not normalise each style channel's weights")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from gan.checkpoint import file_sha256, load_generator
    from pipeline.semantics.boundary import parse_layers
    from pipeline.semantics.directions import sefa_boundaries

    if not Path(args.gan).exists():
        raise UserError(f"{args.gan}: generator checkpoint not found")
    G = load_generator(args.gan)
    layers = list(range(G.num_ws)) if args.layers == "all" else parse_layers(args.layers)
    indices = [args.index] if args.index is not None else list(range(args.k))
    meta = {"gan": str(args.gan), "gan_sha256": file_sha256(args.gan), "predictor": None}
    out = Path(args.out)
    for b in sefa_boundaries(G, layers, indices, meta, normalise=not args.no_normalise):
        path = out if args.index is not None else out.with_name(f"{out.stem}_{b.meta['index']}.npz")
        b.save(path)
        print(f"direction {b.meta['index']}: eigenvalue {b.meta['eigenvalue']:.4g} "
              f"({100 * b.meta['eigenvalue_fraction']:.1f}%), layers {layers} -> {path}")
    return 0

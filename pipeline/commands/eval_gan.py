"""Measure a generator's quality: sliced Wasserstein distance to real images (no downloaded weights)."""
from __future__ import annotations

import argparse

from pipeline.config import load_section, parse_overrides
from pipeline.errors import UserError
from pipeline.fileio import write_json_atomic


EPILOG = """\
SWD (Karras et al. 2018): Laplacian-pyramid 7x7 patches, 128 per image per level, 512
random projections x 4 repeats, reported x1e3; lower is better. The world's reference
images are held-out scenes (seeds >= 1e9) the GAN never saw. --floor also measures two
disjoint real sets against each other: the best a generator can hope for at this n.

examples:
  photoedit eval-gan --gan runs/gan --data world --n 256
  photoedit eval-gan --gan G.safetensors --data photos/ --n 500 --floor --out swd.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit eval-gan", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gan", required=True, metavar="CKPT", help="generator .safetensors, or a training run folder")
    p.add_argument("--data", default="world", metavar="world|DIR", help="real images: 'world' or a photo folder (default: world)")
    p.add_argument("--n", type=int, default=256, help="images per set (default: 256)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation of the fakes (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fakes' latents (default: 0)")
    p.add_argument("--floor", action="store_true", help="also report SWD between two disjoint real sets")
    p.add_argument("--out", metavar="FILE.json", help="also write the result as JSON")
    p.add_argument("--config", default="quickstart", metavar="PRESET", help="preset for the world: section (default: quickstart)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. world.condition=night")
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    return p



def main(argv: list[str]) -> int:
    import torch

    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path
    from gan.images import from_uint8
    from gan.swd import swd
    from pipeline.photos.folder import real_sets
    from pipeline.world.scene import WorldConfig

    args = build_parser().parse_args(argv)
    if args.n < 8:
        raise UserError("--n must be at least 8")
    wcfg = load_section(WorldConfig, "world", args.config, parse_overrides(args.set))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        path = resolve_generator_path(args.gan)
        G = load_generator(path, device)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    reals = [from_uint8(a) for a in real_sets(args.data, tuple(G.resolution), args.n, 2 if args.floor else 1, wcfg)]
    z = torch.randn(args.n, G.z_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
    with torch.no_grad():
        fakes = torch.cat([G(z[i:i + 32], truncation_psi=args.truncation, noise_mode="const").float().cpu()
                           for i in range(0, args.n, 32)])
    result = {"gan": str(path), "gan_sha256": file_sha256(path), "data": args.data, "n": args.n,
              "truncation": args.truncation, **{f"swd_{k}": v for k, v in swd(fakes, reals[0]).items()}}
    if args.floor:
        result["floor_swd"] = swd(reals[1], reals[0])["swd"]
    line = f"SWD x1e3 = {result['swd_swd']:.2f} (levels fine->coarse: " + \
        ", ".join(f"{v:.1f}" for v in result["swd_levels"]) + ")"
    if args.floor:
        line += f"; real-vs-real floor = {result['floor_swd']:.2f}"
    print(line)
    if args.out:
        write_json_atomic(args.out, result)
    return 0

"""Sample a generator: latents z, w and seeds in chunked arrays plus PNG images."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, command_parser
from pipeline.config import add_config_arguments, dump_yaml, load_section, parse_overrides
from pipeline.errors import UserError


EPILOG = """\
Sample i uses seed + i (z from numpy RandomState(seed + i)), so any sample can be
regenerated alone; --z FILE.npy samples exactly those rows instead (images/000000.png
is row 0, and so on). --noise const (default) uses the generator's stored noise, so a
run is exactly repeatable. An interrupted run resumes when started again with the same
arguments; read the arrays with gan.sampling.read_samples(DIR).

examples:
  photoedit sample --gan runs/gan --n 2000 --out runs/samples
  photoedit sample --gan G.safetensors --n 64 --seed 100 --truncation 0.7 --out grid64
  photoedit sample --gan G.safetensors --z latents.npy --noise const --out exact
  photoedit sample --gan G.safetensors --n 100000 --no-images --batch 64 --out latents_only
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("sample", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    io.add_argument("--out", required=True, metavar="DIR", help="shard folder (manifest.json, chunks/, images/)")
    io.add_argument("--z", metavar="FILE.npy", help="float array [N, z_dim]: sample exactly these latents, in order")
    s = p.add_argument_group("sampling (override the config's sample: section)")
    s.add_argument("--n", type=int, help="number of samples (default: sample.n of the config)")
    s.add_argument("--seed", type=int, help="first seed (default: sample.seed)")
    s.add_argument("--truncation", type=float, metavar="PSI", help="truncation psi, 1 = none (default: sample.truncation)")
    s.add_argument("--noise", choices=["const", "random", "none"], help="noise inputs (default: sample.noise)")
    s.add_argument("--batch", type=int, help="images per generator call (default: sample.batch)")
    s.add_argument("--no-images", action="store_true", help="write latents only (images can be regenerated from w)")
    cfg = add_config_arguments(p, "sample:", "sample.chunk=512")
    cfg.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    return p


def flag_overrides(args) -> dict:
    out = {}
    for flag, key in (("n", "n"), ("seed", "seed"), ("truncation", "truncation"), ("noise", "noise"),
                      ("batch", "batch")):
        if getattr(args, flag) is not None:
            out[f"sample.{key}"] = getattr(args, flag)
    if args.no_images:
        out["sample.images"] = False
    return out


def main(argv: list[str]) -> int:
    import torch

    from gan.checkpoint import CheckpointError, load_generator, resolve_generator_path
    from gan.sampling import SampleConfig, SampleError, load_z_file, sample_shard
    from pipeline.progress import progress_bar

    args = build_parser().parse_args(argv)
    cfg = load_section(SampleConfig, "sample", args.config, {**parse_overrides(args.set), **flag_overrides(args)})
    if args.dry_run:
        print(dump_yaml({"sample": cfg}), end="")
        return 0
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        path = resolve_generator_path(args.gan)
        G = load_generator(path, device)
        z = load_z_file(args.z, G.z_dim) if args.z else None
        manifest = sample_shard(G, path, args.out, cfg, z=z, z_file=args.z, device=device, progress=progress_bar)
    except (CheckpointError, SampleError) as e:
        raise UserError(str(e)) from None
    what = "latents" if not cfg.images else "latents + images"
    print(f"wrote {manifest['n']} samples ({what}) to {args.out}")
    return 0

"""Import a generator trained elsewhere (rosinality/stylegan2-pytorch .pt) as a photoedit checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.errors import UserError

EPILOG = """\
The architecture (size, mapping depth, latent width, channel widths) is read from the
tensors; every tensor must map exactly, or nothing is written. The .pt is loaded with
torch.load(weights_only=True): no code stored in the file runs.

rosinality's train.py stores no mean w; it is then estimated from --w-avg-samples
mapped latents (fixed seed), like its generate.py's mean_latent(). A `latent_avg`
in the file (converted official weights) is used as is.

examples:
  photoedit import-gan checkpoint/550000.pt --out ffhq256.safetensors
  photoedit sample --gan ffhq256.safetensors --z z.npy --noise const --out same_as_original/
  photoedit import-gan stylegan2-ffhq-config-f.pt --out ffhq.safetensors --which g_ema
"""

DEFAULT_NAME = "generator_ema.safetensors"  # file name used when --out is a folder


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit import-gan", description=__doc__.splitlines()[0],
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="the checkpoint to import (.pt / .pth from rosinality)")
    p.add_argument("--out", required=True, metavar="CKPT",
                   help=f"output .safetensors file (a folder gets {DEFAULT_NAME} inside)")
    p.add_argument("--which", default="g_ema", help="entry of the .pt to import (default: g_ema)")
    p.add_argument("--mapping-lr-mul", type=float, default=0.01,
                   help="the source's mapping lr multiplier, not stored in the file (default: 0.01, "
                        "rosinality's lr_mlp)")
    p.add_argument("--w-avg-samples", type=int, default=10_000,
                   help="latents averaged for w_avg when the file has none (default: 10000)")
    p.add_argument("--force", action="store_true", help="overwrite CKPT if it exists")
    return p


def output_path(out: str) -> Path:
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        return path / DEFAULT_NAME
    return path


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    src, out = Path(args.file), output_path(args.out)
    if not src.is_file():
        raise UserError(f"{src}: no such file")
    if src.suffix.lower() == ".pkl":
        raise UserError(f"{src}: NVlabs .pkl checkpoints are not supported yet; "
                        "convert with rosinality's convert_weight.py to a .pt first")
    if out.exists() and not args.force:
        raise UserError(f"{out}: already exists (use --force to overwrite)")
    if args.w_avg_samples < 1:
        raise UserError(f"--w-avg-samples must be >= 1, got {args.w_avg_samples}")

    # Imported lazily so that `photoedit --help` stays instant.
    from gan.checkpoint import file_sha256, save_generator
    from gan.import_rosinality import RosinalityImportError, import_rosinality

    try:
        result = import_rosinality(src, which=args.which, mapping_lr_mul=args.mapping_lr_mul,
                                   w_avg_samples=args.w_avg_samples)
    except RosinalityImportError as exc:
        raise UserError(str(exc)) from None
    provenance = {
        "imported_from": "rosinality/stylegan2-pytorch",
        "source_file": src.name,
        "source_sha256": file_sha256(src),
        "source_entry": args.which,
        "source_arch": result.arch.to_dict(),
        "mapping_lr_mul": args.mapping_lr_mul,
        "w_avg": result.w_avg_source,
    }
    save_generator(result.generator, out, extra=provenance)
    a = result.arch
    cm = f", channel multiplier {a.channel_multiplier}" if a.channel_multiplier else ""
    print(f"imported {src} ({args.which}): {a.size}x{a.size}, n_mlp {a.n_mlp}, latent {a.style_dim}, "
          f"widths {list(a.widths)}{cm}")
    print(f"w_avg: {result.w_avg_source}")
    print(f"wrote {out} (sha256 {file_sha256(out)[:16]})")
    return 0

"""Import a generator trained elsewhere (rosinality .pt, NVlabs stylegan2-ada .pkl) as a photoedit checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.errors import UserError

EPILOG = """\
The architecture (size, mapping depth, latent width, channel widths) is read from the
tensors; every tensor must map exactly, or nothing is written. No code stored in the
file runs: a .pt is loaded with torch.load(weights_only=True); a .pkl (NVlabs
stylegan2-ada-pytorch) with a restricted unpickler that imports nothing.

rosinality's train.py stores no mean w; it is then estimated from --w-avg-samples
mapped latents (fixed seed), like its generate.py's mean_latent(). A `latent_avg`
in the file (converted official weights) is used as is.

examples:
  photoedit import-gan checkpoint/550000.pt --out ffhq256.safetensors
  photoedit sample --gan ffhq256.safetensors --z z.npy --noise const --out same_as_original/
  photoedit import-gan stylegan2-ffhq-config-f.pt --out ffhq.safetensors --which g_ema
  photoedit import-gan network-snapshot-001000.pkl --out snap.safetensors   (entry G_ema)
"""

DEFAULT_NAME = "generator_ema.safetensors"  # file name used when --out is a folder


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("import-gan", __doc__, EPILOG)
    p.add_argument("file", metavar="FILE", help="the checkpoint to import: .pt/.pth (rosinality) or .pkl (NVlabs)")
    p.add_argument("--out", required=True, metavar="CKPT",
                   help=f"output .safetensors file (a folder gets {DEFAULT_NAME} inside)")
    p.add_argument("--which", help="entry to import (default: g_ema in a .pt, G_ema in a .pkl)")
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
    if out.exists() and not args.force:
        raise UserError(f"{out}: already exists (use --force to overwrite)")
    if args.w_avg_samples < 1:
        raise UserError(f"--w-avg-samples must be >= 1, got {args.w_avg_samples}")

    # Imported lazily so that `photoedit --help` stays instant.
    from gan.checkpoint import file_sha256, save_generator

    importer = import_nvlabs_file if src.suffix.lower() == ".pkl" else import_rosinality_file
    G, provenance = importer(src, args)
    provenance = {"source_file": src.name, "source_sha256": file_sha256(src), **provenance}
    save_generator(G, out, extra=provenance)
    c = G.cfg
    print(f"imported {src} ({provenance['source_entry']}, {provenance['imported_from']}): "
          f"{c.resolution[0]}x{c.resolution[1]}, mapping {c.mapping_layers} layers, z {c.z_dim}, w {c.w_dim}, "
          f"widths {[c.level_channels(i) for i in range(c.num_levels)]}")
    print(f"w_avg: {provenance['w_avg']}")
    print(f"wrote {out} (sha256 {file_sha256(out)[:16]})")
    return 0


def import_rosinality_file(src: Path, args) -> tuple:
    from gan.import_rosinality import RosinalityImportError, import_rosinality

    which = args.which or "g_ema"
    try:
        result = import_rosinality(src, which=which, mapping_lr_mul=args.mapping_lr_mul,
                                   w_avg_samples=args.w_avg_samples)
    except RosinalityImportError as exc:
        raise UserError(str(exc)) from None
    return result.generator, {
        "imported_from": "rosinality/stylegan2-pytorch",
        "source_entry": which,
        "source_arch": result.arch.to_dict(),
        "mapping_lr_mul": args.mapping_lr_mul,
        "w_avg": result.w_avg_source,
    }


def import_nvlabs_file(src: Path, args) -> tuple:
    from gan.import_nvlabs import NVlabsImportError, import_nvlabs

    which = args.which or "G_ema"
    try:
        result = import_nvlabs(src, which=which)
    except NVlabsImportError as exc:
        raise UserError(str(exc)) from None
    kwargs = json_safe(result.kwargs)
    return result.generator, {
        "imported_from": "NVlabs/stylegan2-ada-pytorch",
        "source_entry": which,
        "source_kwargs": kwargs,
        "w_avg": "tracked w_avg stored in the file",
    }


def json_safe(value):
    """Constructor kwargs as stored in the pickle, reduced to JSON types (anything else as its repr)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)

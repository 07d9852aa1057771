"""Generate (original, edited) image pairs from a GAN and an attribute boundary."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, command_parser
from pipeline.config import add_config_arguments, dump_yaml, load_section
from pipeline.errors import UserError

EPILOG = """\
Each pair is G(w) and G(w + a*n) with n the boundary's unit normal applied on its W+
layers, the same noise for both images, and a ~ U[lo, hi] stored with the pair.
The translator trained on them maps its slider s in [0, 1] to a = s * hi.

examples:
  photoedit pairs --gan run/gan.safetensors --boundary run/sunny.npz --n 2000 --out run/pairs_sunny
  photoedit pairs --gan G.safetensors --boundary night.npz --n 500 --strength-range 1,4 \\
      --filter-predictor photometric --margin 0.05 --out pairs_night
  photoedit pairs ... --filter-predictor classifier --filter-predictor-path predictor/ --margin 0.1
  photoedit pairs ... --set pairs.noise_mode=random --dry-run
  photoedit pairs --gan G.safetensors --boundary night.npz --n 500 --region sky --lse lse.safetensors --out pairs_sky

--region CLASS[,CLASS...] keeps the edit to those classes: the linear semantic extractor
--lse (`photoedit lse` on this generator) gives each image a soft mask m of the classes from
the generator's own features, and the target becomes m * G(w + a n) + (1 - m) * G(w), m the
larger of the masks of G(w) and G(w + a n). Outside the region the pair is unchanged, so a
translator learns an edit of, e.g., the sky only. The manifest records the region.
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("pairs", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    io.add_argument("--boundary", required=True, metavar="FILE", help="boundary .npz from `photoedit boundary`")
    io.add_argument("--out", required=True, metavar="DIR", help="new folder for shards + manifest.json")
    pairs = p.add_argument_group("pairs (override the config's pairs: section)")
    pairs.add_argument("--n", type=int, help="number of pairs (default: pairs.n of the config)")
    pairs.add_argument("--strength-range", metavar="LO,HI", help="edit distance range, e.g. 0.5,3 (default: config)")
    pairs.add_argument("--filter-predictor", metavar="NAME", help="keep pairs this predictor sees moving (e.g. photometric)")
    pairs.add_argument("--filter-predictor-path", metavar="PATH",
                       help="the filter predictor's weights (classifier: a `photoedit train-predictor` folder; "
                            "places365: the local weights folder)")
    pairs.add_argument("--margin", type=float, help="minimum score rise for the filter (default: config, 0)")
    region = p.add_argument_group("region-aware pairs (issue #15)")
    region.add_argument("--region", metavar="CLASS[,CLASS]", help="keep the edit to these classes, e.g. sky or road,sidewalk")
    region.add_argument("--lse", metavar="FILE", help="the extractor (`photoedit lse`) whose masks --region uses")
    cfg = add_config_arguments(p, "pairs:", "pairs.batch=32")
    cfg.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    return p


def parse_range(text: str) -> list[float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--strength-range '{text}': expected LO,HI, e.g. 0.5,3") from None
    return [lo, hi]


def flag_overrides(args) -> dict:
    """The command's own flags as `pairs.*` overrides (applied after --set)."""
    out = {}
    if args.n is not None:
        out["pairs.n"] = args.n
    if args.strength_range:
        out["pairs.strength_range"] = parse_range(args.strength_range)
    if args.filter_predictor:
        out["pairs.filter_predictor"] = args.filter_predictor
    if args.filter_predictor_path:
        out["pairs.filter_predictor_path"] = args.filter_predictor_path
    if args.margin is not None:
        out["pairs.margin"] = args.margin
    return out


def main(argv: list[str]) -> int:
    import torch

    from pipeline.config import parse_overrides
    from pipeline.semantics.pairs import PairsConfig, RegionMask, load_gan_and_boundary, write_pairs

    args = build_parser().parse_args(argv)
    if bool(args.region) != bool(args.lse):
        raise UserError("--region CLASS and --lse FILE go together")
    overrides = {**parse_overrides(args.set), **flag_overrides(args)}
    cfg = load_section(PairsConfig, "pairs", args.config, overrides)
    if args.dry_run:
        print(dump_yaml({"pairs": cfg}), end="")
        return 0
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    G, boundary, provenance = load_gan_and_boundary(args.gan, args.boundary, device)
    region = None
    if args.region:
        region = RegionMask.load(args.lse, [c.strip() for c in args.region.split(",") if c.strip()], G)
    manifest = write_pairs(G, boundary, cfg, args.out, provenance, device, region=region)
    line = f"wrote {manifest['n']} '{manifest['attribute']}' pairs to {args.out} in {manifest['seconds']} s"
    if manifest["filter"]:
        f = manifest["filter"]
        line += f"; filter kept {f['kept']}/{f['tried']} ({f['kept_fraction']:.1%}) with {f['predictor']} margin {f['margin']}"
    if region is not None:
        line += f"; edit kept to {', '.join(region.classes)} ({args.lse})"
    print(line)
    return 0

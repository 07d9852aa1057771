"""Score a sample shard's images with an attribute predictor (adds DIR/scores_<predictor>.npz).

Batched, with a progress bar, resumable after an interruption. A shard saved with
--no-images is scored by re-synthesising its images from the stored w (constant noise).
"""
from __future__ import annotations

import argparse

from pipeline.commands import command_parser

EPILOG = """examples:
  photoedit score --samples samples/ --predictor photometric
  photoedit score --samples samples/ --predictor classifier --predictor-path predictor/
  photoedit score --samples samples/ --predictor places365 --predictor-path ~/places365/
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("score", __doc__, EPILOG)
    p.add_argument("--samples", required=True, metavar="DIR", help="sample shard written by `photoedit sample`")
    p.add_argument("--predictor", default="photometric", help="photometric | classifier | places365 (default: %(default)s)")
    p.add_argument("--predictor-path", metavar="PATH",
                   help="classifier: its folder; places365: folder with its three weight files")
    p.add_argument("--batch", type=int, default=64, help="images per batch (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--gan", metavar="CKPT", help="generator for a shard saved without images "
                   "(default: the checkpoint named in its manifest)")
    p.add_argument("--force", action="store_true", help="rescore even if the scores file is complete")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.semantics.predictors import predictor_from_args
    from pipeline.semantics.predictors.scoring import score_shard

    predictor = predictor_from_args(args.predictor, args.predictor_path, args.device)
    out = score_shard(args.samples, predictor, args.predictor, args.batch, args.force, gan=args.gan,
                      device=args.device)
    print(f"wrote {out}")
    return 0

"""Linear semantic extractor: segment GAN samples from the generator's features, learnt from K labelled samples."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, add_segmenter_argument, command_parser
from pipeline.errors import UserError

EPILOG = """\
LinearGAN's LSE: each generator level's features, upsampled to the image, go through one
1x1 linear map to class logits. The K training samples (seeds --seed..--seed+K-1) are
labelled by the segmenter (`photoedit train-segmenter`); the score is mIoU against the
segmenter on --eval held-out samples (seeds from 1,000,000). --table also fits every K
of the list, for the linear and the non-linear (NSE) extractor, and prints the table;
'all' stands for --all-k samples.

examples:
  photoedit lse --gan runs/gan --segmenter seg.safetensors --k 8 --out lse.safetensors
  photoedit lse --gan G.safetensors --segmenter seg.safetensors --k 8 --out lse.safetensors \\
      --table 1,4,8,16,all --all-k 256 --json lse_table.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("lse", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    add_segmenter_argument(io)
    io.add_argument("--out", required=True, metavar="FILE", help="extractor .safetensors to write")
    io.add_argument("--json", metavar="FILE", help="also write the scores (and --table rows) as JSON")
    f = p.add_argument_group("fitting")
    f.add_argument("--k", type=int, default=8, help="labelled GAN samples to learn from (default: 8)")
    f.add_argument("--kind", choices=["linear", "nonlinear"], default="linear",
                   help="linear = LSE (default), nonlinear = NSE comparison")
    f.add_argument("--steps", type=int, default=300, help="optimiser steps (default: 300)")
    f.add_argument("--seed", type=int, default=0, help="first training seed (default: 0)")
    f.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation psi (default: 1)")
    e = p.add_argument_group("evaluation")
    e.add_argument("--eval", type=int, default=100, metavar="N", help="held-out GAN samples scored (default: 100)")
    e.add_argument("--table", metavar="K,K,...", help="also the mIoU table over these K, e.g. 1,4,8,16,all")
    e.add_argument("--all-k", type=int, default=256, metavar="N", help="what 'all' means in --table (default: 256)")
    return p


def _parse_ks(text: str, all_k: int) -> list[int]:
    ks = []
    for part in text.split(","):
        part = part.strip()
        if part == "all":
            ks.append(all_k)
        elif part.isdigit() and int(part) > 0:
            ks.append(int(part))
        else:
            raise UserError(f"--table {text}: each entry must be a positive integer or 'all'")
    return ks


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.k < 1 or args.eval < 1 or args.steps < 1:
        raise UserError("--k, --eval and --steps must be positive")
    ks = _parse_ks(args.table, args.all_k) if args.table else None

    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path
    from pipeline.fileio import write_json_atomic
    from pipeline.semantics import lse as L
    from pipeline.semantics.segmenter import SegmenterError, load_segmenter

    try:
        path = resolve_generator_path(args.gan)
        G = load_generator(path, "cpu")
        seg, labels = load_segmenter(args.segmenter)
    except (CheckpointError, SegmenterError) as e:
        raise UserError(str(e)) from None
    if any(side % 4 for side in G.resolution):
        raise UserError(f"{path}: resolution {G.resolution} must be divisible by 4 for the segmenter")
    C = seg.cfg.num_classes

    ext, seeds = L.train_lse(G, seg.predict, C, k=args.k, kind=args.kind, seed=args.seed, steps=args.steps,
                             truncation=args.truncation)
    ev_images, ev_feats = L.sample_with_features(
        G, range(L.EVAL_SEED_START, L.EVAL_SEED_START + args.eval), args.truncation)
    miou, ious = L.extractor_iou(ext, ev_feats, seg.predict(ev_images))
    scores = {"kind": args.kind, "k": args.k, "miou": miou, "eval": args.eval,
              "iou": {labels.get(c, str(c)): (None if ious[c] != ious[c] else round(float(ious[c]), 4))
                      for c in range(C)}}
    L.save_extractor(ext, args.out, labels, {"generator": str(path), "generator_sha256": file_sha256(path),
                                             "segmenter_sha256": file_sha256(args.segmenter),
                                             "seeds": seeds, "steps": args.steps, "scores": scores})
    print(f"{args.kind} extractor from K={args.k}: held-out mIoU {miou:.3f} on {args.eval} GAN samples")
    print(f"wrote {args.out}")
    out = {"extractor": scores}
    if ks:
        print(f"{'kind':<10}{'K':>6}{'mIoU':>8}")
        out["table"] = L.k_table(G, seg.predict, C, ks, eval_n=args.eval, steps=args.steps, seed=args.seed,
                                 truncation=args.truncation,
                                 log=lambda r: print(f"{r['kind']:<10}{r['k']:>6}{r['miou']:>8.3f}", flush=True))
    if args.json:
        write_json_atomic(args.json, out)
        print(f"wrote {args.json}")
    return 0

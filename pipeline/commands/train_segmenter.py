"""Train a small semantic segmenter on world renders + label maps (or a labelled folder)."""
from __future__ import annotations

import argparse

from pipeline.commands import command_parser
from pipeline.errors import UserError

EPILOG = """\
The segmenter labels GAN samples for `photoedit lse` and `photoedit dissect`. With
--data world it renders --n scenes (seeds 0..n-1) with their label maps at --size; with
--data DIR it reads DIR/images/* and DIR/masks/<stem>.png (class ids, 255 = unlabelled)
with class names in DIR/labels.json or DIR/manifest.json (a `photoedit world` folder
works as is). It reports mean IoU on held-out world scenes (or the last 10% of the
folder) against the baseline of the per-pixel most frequent training class.

examples:
  photoedit train-segmenter --data world --size 64 --out seg.safetensors
  photoedit train-segmenter --data world --n 4000 --size 128x256 --steps 2000 --out seg.safetensors
  photoedit train-segmenter --data my_labelled/ --size 128 --out seg.safetensors
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("train-segmenter", __doc__, EPILOG)
    io = p.add_argument_group("data and output")
    io.add_argument("--data", default="world", metavar="world|DIR", help="'world' or a labelled folder (default: world)")
    io.add_argument("--out", required=True, metavar="FILE", help="segmenter .safetensors to write")
    io.add_argument("--size", default="64", help="H or HxW of training images, each divisible by 4 (default: 64)")
    io.add_argument("--n", type=int, default=2000, help="world scenes to train on (default: 2000)")
    io.add_argument("--eval", type=int, default=200, metavar="N", help="held-out world scenes scored (default: 200)")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=600, help="optimiser steps (default: 600)")
    t.add_argument("--batch", type=int, default=16, help="images per step (default: 16)")
    t.add_argument("--width", type=int, default=32, help="channels at full resolution (default: 32)")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (default: 3e-3)")
    t.add_argument("--seed", type=int, default=0, help="init and batch order (default: 0)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses
    from pathlib import Path

    from pipeline.config import HELD_OUT_SEED_START
    from pipeline.semantics import segmenter as S
    from pipeline.world.scene import parse_size

    try:
        size = parse_size(args.size)
    except ValueError as e:
        raise UserError(f"--size {args.size}: {e}") from None
    if size[0] % 4 or size[1] % 4:
        raise UserError(f"--size {args.size}: height and width must be divisible by 4")
    if args.n < 1 or args.steps < 1 or args.batch < 1:
        raise UserError("--n, --steps and --batch must be positive")
    try:
        if args.data == "world":
            images, masks, labels = S.world_data(args.n, size)
            ev_images, ev_masks, _ = S.world_data(args.eval, size, first_seed=HELD_OUT_SEED_START)
        else:
            if not Path(args.data).is_dir():
                raise UserError(f"--data {args.data}: neither 'world' nor a folder")
            images, masks, labels = S.folder_data(args.data, size)
            if len(images) < 2:
                raise UserError(f"{args.data}: need at least 2 labelled images (one to train, one to score)")
            cut = max(1, len(images) - max(1, len(images) // 10))
            images, masks, ev_images, ev_masks = images[:cut], masks[:cut], images[cut:], masks[cut:]
    except S.SegmenterError as e:
        raise UserError(str(e)) from None

    train = S.SegmenterTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed)
    cfg = S.SegmenterConfig(num_classes=max(labels) + 1, width=args.width)
    net, losses = S.train_segmenter(images, masks, labels, cfg, train,
                                    log=lambda s, loss: print(f"step {s:5d}  loss {loss:.3f}", flush=True))
    scores = S.evaluate_segmenter(net, images, masks, ev_images, ev_masks, cfg.num_classes)
    S.save_segmenter(net, labels, args.out, extra={
        "data": args.data, "n": len(images), "size": list(size), "train": dataclasses.asdict(train),
        "eval": scores})
    print(f"held-out mIoU {scores['miou']:.3f} (per-pixel most frequent class: {scores['baseline_miou']:.3f}) "
          f"on {len(ev_images)} images; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    print(f"wrote {args.out}")
    return 0

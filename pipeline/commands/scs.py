"""Semantic-conditional sampling: draw a GAN image that follows a given layout of classes."""
from __future__ import annotations

import argparse

from pipeline.commands import add_gan_argument, command_parser, load_gan_and_extractor
from pipeline.errors import UserError

EPILOG = """\
LinearGAN's semantic-conditional sampling. The layout is the label map of a world scene
(--world-seed N, classes matched by name to the extractor's; world classes it does not know
are left free) or a PNG you painted (--layout: one class id per pixel, grayscale or palette
PNG, 255 = free; another size with the same aspect ratio is resized). --pool samples are
scored by the cross-entropy of the linear semantic extractor's labels (`photoedit lse`)
against the layout; the --starts best are optimised (Adam on w, or on W+ with --space wplus)
to lower it, and the best result is kept.

It writes, in --out DIR: image.png (the result), start.png (the sample it started from),
layout.png (the target, coloured; black = free), labels.png (the extractor's labels of
image.png), w_plus.npy ([num_ws, w_dim]; `photoedit sie --latent` edits it further) and
scs.json (settings, every start's loss before/after). With --segmenter, scs.json and the
printout also give the layout mIoU judged by that independent labeller: the result, its
start, and the mean of the unconditioned pool samples (the baseline).

examples:
  photoedit scs --gan runs/gan --lse lse.safetensors --world-seed 1000000000 --out scs/
  photoedit scs --gan G.safetensors --lse lse.safetensors --layout painted.png --segmenter seg.safetensors \\
      --pool 64 --starts 4 --steps 100 --out scs_painted/
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("scs", __doc__, EPILOG)
    io = p.add_argument_group("inputs and output")
    add_gan_argument(io)
    io.add_argument("--lse", required=True, metavar="FILE", help="semantic extractor from `photoedit lse`")
    src = io.add_mutually_exclusive_group(required=True)
    src.add_argument("--world-seed", type=int, metavar="N", help="follow the label map of world scene N")
    src.add_argument("--layout", metavar="PNG", help="follow this painted layout (class ids, 255 = free)")
    io.add_argument("--segmenter", metavar="FILE", help="also score layout mIoU with this independent labeller")
    io.add_argument("--out", required=True, metavar="DIR", help="folder for the images, code and scs.json")
    o = p.add_argument_group("sampling")
    o.add_argument("--seed", type=int, default=0, help="first seed of the pool (default: 0)")
    o.add_argument("--pool", type=int, default=32, help="samples scored before optimising (default: 32)")
    o.add_argument("--starts", type=int, default=4,
                   help="best pool samples optimised; 0 = only pick the best of the pool (default: 4)")
    o.add_argument("--steps", type=int, default=100, help="Adam steps per start (default: 100)")
    o.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    o.add_argument("--space", choices=["w", "wplus", "z"], default="w",
                   help="optimise one w for all layers (default), the per-layer W+ code, or z through the "
                        "mapping network")
    o.add_argument("--reg-weight", type=float, default=0.0, help="pull toward the start's code (default: 0)")
    o.add_argument("--jitter", type=float, default=0.0, metavar="STD",
                   help="score each step at the code plus noise of this std, so the result cannot rest on a "
                        "direction only the extractor sees (default: 0)")
    o.add_argument("--truncation", type=float, default=1.0, metavar="PSI", help="truncation psi (default: 1)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.pool < 1 or args.starts < 0 or args.steps < 0 or args.lr <= 0 or min(args.reg_weight, args.jitter) < 0:
        raise UserError("--pool must be >= 1, --starts and --steps >= 0, --lr > 0, --reg-weight and --jitter >= 0")

    from pathlib import Path

    import numpy as np
    import torch

    from gan.checkpoint import file_sha256
    from gan.images import to_uint8
    from pipeline.fileio import write_json_atomic
    from pipeline.progress import progress_bar
    from pipeline.semantics import layouts as LY
    from pipeline.semantics.lse import seed_latents
    from pipeline.semantics.scs import semantic_sample
    from pipeline.semantics.segmenter import mean_iou

    G, path, ext, labels, seg = load_gan_and_extractor(args.gan, args.lse, args.segmenter)
    size = tuple(G.resolution)
    C = ext.cfg.num_classes
    freed = []
    try:
        if args.layout:
            layout = LY.read_layout_png(args.layout, size, C)
        else:
            layout, freed = LY.world_layout(args.world_seed, size, labels)
    except LY.LayoutError as e:
        raise UserError(str(e)) from None
    if freed:
        print(f"world classes the extractor does not know, left free: {', '.join(freed)}")
    target = torch.from_numpy(layout)

    total = max(args.starts, 1) * args.steps if args.starts else 0
    bar = progress_bar(total=total, desc="scs", unit="step", disable=not total)
    try:
        res = semantic_sample(G, ext, target, seed=args.seed, pool=args.pool, starts=args.starts, steps=args.steps,
                              lr=args.lr, space=args.space, reg_weight=args.reg_weight, truncation=args.truncation,
                              jitter=args.jitter,
                              progress=lambda done, n: bar.update(1))
    except ValueError as e:
        raise UserError(f"{args.layout or f'world seed {args.world_seed}'}: {e}") from None
    finally:
        bar.close()
    report = {"generator": str(path), "generator_sha256": file_sha256(path), "lse": str(args.lse),
              "layout": args.layout or {"world_seed": args.world_seed, "free_classes": freed},
              "settings": {k: getattr(args, k) for k in ("seed", "pool", "starts", "steps", "lr", "space",
                                                         "reg_weight", "jitter", "truncation")},
              "chosen_seed": res.seed, "loss": res.loss, "starts": res.starts,
              "layout_miou_by_lse": mean_iou(res.labels.numpy(), layout, C)}
    if seg is not None:
        with torch.no_grad():
            z = seed_latents(G, range(args.seed, args.seed + args.pool))
            pool_imgs = torch.cat([G.synthesis(G.broadcast(G.mapping(z[i:i + 16], args.truncation)),
                                               noise_mode="const") for i in range(0, args.pool, 16)])
        uncond = [mean_iou(p.numpy(), layout, C) for p in seg.predict(pool_imgs)]
        report["layout_miou_by_segmenter"] = {
            "result": mean_iou(seg.predict(res.image)[0].numpy(), layout, C),
            "start": mean_iou(seg.predict(res.start_image)[0].numpy(), layout, C),
            "unconditioned_mean": float(np.mean(uncond))}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    LY.write_png(out / "image.png", to_uint8(res.image)[0])
    LY.write_png(out / "start.png", to_uint8(res.start_image)[0])
    LY.write_png(out / "layout.png", LY.colorize(layout))
    LY.write_png(out / "labels.png", LY.colorize(res.labels.numpy()))
    LY.write_npy(out / "w_plus.npy", res.w_plus[0].numpy())
    write_json_atomic(out / "scs.json", report)
    print(f"best start: seed {res.seed}; layout cross-entropy {res.loss:.3f}; layout mIoU by the extractor "
          f"{report['layout_miou_by_lse']:.3f}")
    if seg is not None:
        m = report["layout_miou_by_segmenter"]
        print(f"layout mIoU by the segmenter: result {m['result']:.3f}, its start {m['start']:.3f}, "
              f"unconditioned samples {m['unconditioned_mean']:.3f} (mean of {args.pool})")
    print(f"wrote {out}/ (image.png, start.png, layout.png, labels.png, w_plus.npy, scs.json)")
    return 0

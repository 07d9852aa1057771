"""SCS on a trained GAN (issue #15): layout mIoU of conditioned samples vs unconditioned ones.

    python bench/bench_scs.py --gan /tmp/h3_qs_new/gan/generator.safetensors --segmenter seg.safetensors \
        --lse lse.safetensors --targets 10 --pool 64 --starts 4 --steps 100 --lr 0.01 --space w

1. The LSE: --lse FILE (`photoedit lse`), or fitted here on --k labelled GAN samples.
2. Targets: label maps of held-out world renders (seeds from 1e9) at the GAN's size, classes
   matched by name to the extractor's (unknown ones free).
3. For each target i, the pool is seeds 2,000,000 + 1000 i .. + pool - 1 (the same in every
   configuration). Scored by the segmenter's layout mIoU against the target:
   - unconditioned: the mean over the pool's samples (the baseline, same run);
   - selection only: the pool sample with the lowest LSE cross-entropy (--starts 0);
   - SCS: the best of the --starts optimised starts (semantic_sample).
   The extractor's own view of the result (its labels vs the target) is printed too.
4. --steer-by-segmenter (diagnostic): the same pool selection and W optimisation with the
   segmenter's own logits as the loss (LinearGAN's baseline with a pretrained segmenter). The
   judge is then the steerer, so it is an upper bound of what better semantics would give on
   this generator, not a fair score.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from gan.checkpoint import load_generator
from pipeline.config import HELD_OUT_SEED_START
from pipeline.semantics import lse as L
from gan.images import to_uint8
from pipeline.semantics.layouts import colorize, sheet, world_layout, write_png
from pipeline.semantics.scs import semantic_sample
from pipeline.semantics.segmenter import IGNORE, load_segmenter, mean_iou


def steered_by_segmenter(G, seg, target, first, pool, steps, lr):
    """Best pool sample by the segmenter's cross-entropy, then Adam on w through the segmenter."""
    seg.eval().requires_grad_(False)
    with torch.no_grad():
        w = torch.cat([G.mapping(L.seed_latents(G, range(first + j, min(first + j + 16, first + pool))))
                       for j in range(0, pool, 16)])
        ce = torch.cat([F.cross_entropy(seg(G.synthesis(G.broadcast(w[j:j + 16]), noise_mode="const")),
                                        target.expand(len(w[j:j + 16]), -1, -1), ignore_index=IGNORE,
                                        reduction="none").mean((1, 2)) for j in range(0, pool, 16)])
    v = w[int(ce.argmin())][None].clone().requires_grad_(True)
    opt = torch.optim.Adam([v], lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(seg(G.synthesis(G.broadcast(v), noise_mode="const")), target[None], ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return G.synthesis(G.broadcast(v), noise_mode="const")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--lse", help="extractor file; default: fit one on --k samples")
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--targets", type=int, default=10)
    p.add_argument("--pool", type=int, default=32)
    p.add_argument("--starts", type=int, default=4)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--space", choices=["w", "wplus", "z"], default="w")
    p.add_argument("--reg-weight", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--steer-by-segmenter", action="store_true", help="also the diagnostic row (see 4.)")
    p.add_argument("--json", help="write the per-target rows and means here")
    p.add_argument("--figure", help="PNG: per target (up to 4) layout | unconditioned sample | SCS result | its labels")
    args = p.parse_args()
    torch.set_num_threads(1)
    G = load_generator(args.gan).eval().requires_grad_(False)
    seg, seg_labels = load_segmenter(args.segmenter)
    C = seg.cfg.num_classes
    if args.lse:
        ext, labels, _ = L.load_extractor(args.lse)
    else:
        ext, _ = L.train_lse(G, seg.predict, C, k=args.k)
        labels = seg_labels
    size = tuple(G.resolution)
    rows, tiles = [], []
    t = time.time()
    for i in range(args.targets):
        layout, _ = world_layout(HELD_OUT_SEED_START + i, size, labels)
        target = torch.from_numpy(layout)
        first = 2_000_000 + 1000 * i
        with torch.no_grad():
            z = L.seed_latents(G, range(first, first + args.pool))
            pool = torch.cat([G.synthesis(G.broadcast(G.mapping(z[j:j + 16])), noise_mode="const")
                              for j in range(0, args.pool, 16)])
        uncond = float(np.mean([mean_iou(s.numpy(), layout, C) for s in seg.predict(pool)]))
        sel = semantic_sample(G, ext, target, seed=first, pool=args.pool, starts=0)
        res = semantic_sample(G, ext, target, seed=first, pool=args.pool, starts=args.starts, steps=args.steps,
                              lr=args.lr, space=args.space, reg_weight=args.reg_weight,
                              jitter=args.jitter)
        row = {"target": i, "unconditioned": uncond,
               "selection": mean_iou(seg.predict(sel.image)[0].numpy(), layout, C),
               "scs": mean_iou(seg.predict(res.image)[0].numpy(), layout, C),
               "scs_start": mean_iou(seg.predict(res.start_image)[0].numpy(), layout, C),
               "scs_by_lse": mean_iou(res.labels.numpy(), layout, C),
               "selection_by_lse": mean_iou(sel.labels.numpy(), layout, C)}
        if args.steer_by_segmenter:
            img = steered_by_segmenter(G, seg, target, first, args.pool, args.steps, args.lr)
            row["steered_by_segmenter"] = mean_iou(seg.predict(img)[0].numpy(), layout, C)
        rows.append(row)
        if len(tiles) < 4:
            tiles.append([colorize(layout), to_uint8(pool[:1])[0], to_uint8(res.image)[0],
                          colorize(seg.predict(res.image)[0].numpy())])
        print(" ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "target"}
    load = os.getloadavg()
    print(f"\nlayout mIoU vs target (segmenter), {args.targets} world layouts, pool {args.pool}, starts {args.starts}, "
          f"{args.steps} steps, lr {args.lr}, space {args.space}, reg {args.reg_weight}, jitter {args.jitter}: "
          f"unconditioned {means['unconditioned']:.3f}, selection only {means['selection']:.3f}, "
          f"SCS {means['scs']:.3f} ({means['scs'] / means['unconditioned']:.2f}x); by the LSE itself: selection "
          f"{means['selection_by_lse']:.3f}, SCS {means['scs_by_lse']:.3f}; {time.time() - t:.0f} s; load {load}")
    if args.steer_by_segmenter:
        print(f"diagnostic, steered by the segmenter that also judges: {means['steered_by_segmenter']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "means": means, "load": load}, f, indent=2)
    if args.figure:
        write_png(args.figure, sheet(tiles))


if __name__ == "__main__":
    main()

"""SCS on a trained GAN (issue #15): layout mIoU of conditioned samples vs unconditioned ones.

    python bench/bench_scs.py --gan /tmp/h3_qs/gan/generator.safetensors --segmenter seg.safetensors --targets 10

1. Fit the LSE on --k labelled GAN samples (seeds 0..k-1, labels from the segmenter).
2. Targets: label maps of held-out world renders (seeds from 1e9) at the GAN's size.
3. For each target, start from the sample of seed 2,000,000 + i (the unconditioned baseline, the
   same start in the same run) and optimise w for --steps; score both images by the segmenter's
   mIoU against the target layout.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from gan.checkpoint import load_generator
from pipeline import world
from pipeline.config import HELD_OUT_SEED_START
from pipeline.semantics import lse as L
from pipeline.semantics.scs import conditional_sample
from pipeline.semantics.segmenter import load_segmenter, mean_iou


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--targets", type=int, default=10)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.05)
    args = p.parse_args()
    torch.set_num_threads(1)
    G = load_generator(args.gan)
    seg, labels = load_segmenter(args.segmenter)
    C = seg.cfg.num_classes
    ext, _ = L.train_lse(G, seg.predict, C, k=args.k)
    size = tuple(G.resolution)
    base, cond = [], []
    t = time.time()
    for i in range(args.targets):
        target = torch.from_numpy(world.render(world.sample_scene(HELD_OUT_SEED_START + i), size).masks.astype(np.int64))
        seed = 2_000_000 + i
        with torch.no_grad():
            start = G.synthesis(G.broadcast(G.mapping(L.seed_latents(G, [seed]))), noise_mode="const")
        image, _ = conditional_sample(G, ext, target, seed=seed, steps=args.steps, lr=args.lr)
        base.append(mean_iou(seg.predict(start)[0].numpy(), target.numpy(), C))
        cond.append(mean_iou(seg.predict(image)[0].numpy(), target.numpy(), C))
        print(f"target {i}: unconditioned {base[-1]:.3f}  SCS {cond[-1]:.3f}", flush=True)
    print(f"\nlayout mIoU vs target (segmenter), {args.targets} world layouts, LSE from K={args.k}, "
          f"{args.steps} steps: unconditioned {np.mean(base):.3f}, SCS {np.mean(cond):.3f} "
          f"({np.mean(cond) / np.mean(base):.2f}x); {time.time() - t:.0f} s; load {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""Region-aware pairs vs plain pairs: how much of the edit stays inside the region (issue #15 item 5).

For --n held-out latents (seeds from 1e9, as held-out pairs), the plain pair (G(w), G(w + a n))
and the region-aware pair (`photoedit pairs --region CLASS --lse FILE`) are rendered at the same
strength. The region used to MEASURE is the segmenter's (not the LSE's) labels of G(w) for the
classes, so the LSE's own mask errors count against it. Printed per variant: mean |change| (images
in [-1, 1]) inside and outside the region, locality = outside / inside (lower = more local), PSNR
of the edited image outside the region against the original, and how much of the plain edit's
inside change the region-aware pair keeps. Both variants are measured in the same run.

  python bench/bench_region_pairs.py --gan G.safetensors --boundary night.npz --lse lse.safetensors \\
      --segmenter seg.safetensors --region sky --n 64 --strength 3
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--boundary", required=True)
    p.add_argument("--lse", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--region", required=True, help="class[,class]")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--strength", type=float, default=3.0)
    p.add_argument("--truncation", type=float, default=0.8)
    args = p.parse_args()

    import torch

    from pipeline.config import HELD_OUT_SEED_START
    from pipeline.semantics.pairs import RegionMask, load_gan_and_boundary, render_pairs
    from pipeline.semantics.segmenter import load_segmenter

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    G, boundary, _ = load_gan_and_boundary(args.gan, args.boundary)
    classes = [c for c in args.region.split(",") if c]
    region = RegionMask.load(args.lse, classes, G)
    seg, labels = load_segmenter(args.segmenter)
    ids = [k for k, v in labels.items() if v in classes]
    seeds = list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + args.n))
    a = torch.full((args.n,), args.strength)
    t0 = time.perf_counter()
    x, y = render_pairs(G, boundary, seeds, a, args.truncation)
    t1 = time.perf_counter()
    xr, yr = render_pairs(G, boundary, seeds, a, args.truncation, region=region)
    t2 = time.perf_counter()
    assert torch.equal(x, xr)
    lab = seg.predict(x)
    inside = torch.zeros_like(lab, dtype=torch.bool)
    for c in ids:
        inside |= lab == c
    outside = ~inside
    print(f"{args.n} held-out latents, strength {args.strength}, region {args.region} "
          f"({float(inside.float().mean()):.1%} of the pixels by the segmenter)")
    print(f"{'pairs':<14}{'|d| inside':>11}{'|d| outside':>12}{'locality':>10}{'PSNR out':>10}{'kept in':>9}{'s':>7}")
    plain_in = None
    for name, (u, v), secs in (("plain", (x, y), t1 - t0), ("region-aware", (xr, yr), t2 - t1)):
        d = (v - u).abs().mean(1)
        din, dout = float(d[inside].mean()), float(d[outside].mean())
        mse = float(((v - u) ** 2).mean(1)[outside].mean()) / 4  # images in [-1, 1] -> [0, 1]
        psnr = 10 * math.log10(1 / mse) if mse > 0 else float("inf")
        plain_in = din if plain_in is None else plain_in
        print(f"{name:<14}{din:>11.4f}{dout:>12.4f}{dout / max(din, 1e-9):>10.3f}{psnr:>10.2f}"
              f"{din / max(plain_in, 1e-9):>9.2f}{secs:>7.2f}")


if __name__ == "__main__":
    main()

"""SIE on a trained GAN (issue #15): does the painted region take the class while the rest stays?

    python bench/bench_sie.py --gan /tmp/h3_qs_new/gan/generator.safetensors --segmenter seg.safetensors \
        --lse lse.safetensors --n 8 --from building --to vegetation --steps 100 --lr 0.01

For each of --n GAN samples (seeds 3,000,000 + i) the region is what the segmenter labels
--from in the original image (a facade, say; samples where it covers < --min-area of the image
use a centred box in the upper half instead), painted --to. semantic_edit optimises the W+
code; the same optimisation without the keep terms (keep, pixel and code weights 0) is the
baseline, same run. Judged by the segmenter (independent of the LSE the edit steers by):
- region IoU: |region labelled --to after| / |region, or pixels newly labelled --to outside it|
  (sie.edit_scores; --to pixels that were already there outside count neither way); goal >= 0.5;
- region fraction: share of the region the segmenter labels --to, before and after;
- PSNR outside the region vs the original image; goal >= 30 dB.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from gan.checkpoint import load_generator
from pipeline.semantics import lse as L
from pipeline.semantics import sie as S
from gan.images import to_uint8
from pipeline.semantics.layouts import class_id, colorize, sheet, write_png
from pipeline.semantics.segmenter import load_segmenter


def region_for(seg_labels: torch.Tensor, cls: int, min_area: float) -> torch.Tensor:
    region = seg_labels == cls
    if region.float().mean() < min_area:
        H, W = seg_labels.shape
        region = torch.zeros_like(region)
        region[H // 8:H // 2, W // 4:3 * W // 4] = True
    return region


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gan", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--lse", required=True)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--from", dest="src", default="building")
    p.add_argument("--to", default="vegetation")
    p.add_argument("--min-area", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--keep-weight", type=float, default=1.0)
    p.add_argument("--pixel-weight", type=float, default=10.0)
    p.add_argument("--reg-weight", type=float, default=1e-3)
    p.add_argument("--blend", choices=["none", "features"], default="none")
    p.add_argument("--space", choices=["wplus", "w"], default="wplus")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--json")
    p.add_argument("--figure", help="PNG: per sample (up to 4) original | painted layout | SIE result | its labels"
                                    " (segmenter) | unconstrained result")
    args = p.parse_args()
    torch.set_num_threads(1)
    G = load_generator(args.gan).eval().requires_grad_(False)
    seg, _ = load_segmenter(args.segmenter)
    ext, labels, _ = L.load_extractor(args.lse)
    C = ext.cfg.num_classes
    src, dst = class_id(args.src, labels, args.lse), class_id(args.to, labels, args.lse)
    rows, tiles = [], []
    t = time.time()
    for i in range(args.n):
        ws = S.w_plus_for_seed(G, 3_000_000 + i)
        before, _ = S.render(G, ext, ws)
        region = region_for(seg.predict(before)[0], src, args.min_area)
        paint = torch.where(region, torch.tensor(dst), torch.tensor(S.KEEP))
        runs = {"sie": dict(keep_weight=args.keep_weight, pixel_weight=args.pixel_weight, reg_weight=args.reg_weight,
                           blend=args.blend, space=args.space)}
        if not args.no_baseline:
            runs["unconstrained"] = dict(keep_weight=0.0, pixel_weight=0.0, reg_weight=0.0)
        row = {"seed": 3_000_000 + i, "region_share": float(region.float().mean())}
        seg_before = seg.predict(before)[0]
        tile = [to_uint8(before)[0], colorize(torch.where(region, dst, seg_before).numpy())]
        for name, kw in runs.items():
            res = S.semantic_edit(G, ext, ws, paint, steps=args.steps, lr=args.lr, **kw)
            tile.append(to_uint8(res.image)[0])
            if name == "sie":
                tile.append(colorize(seg.predict(res.image)[0].numpy()))
            sc = S.edit_scores(seg.predict, res.before_image, res.image, paint)
            row[name] = {"region_iou": sc["region_miou"], "region_fraction_before": sc["region_fraction_before"],
                         "region_fraction": sc["region_fraction"], "psnr_outside": sc["psnr_outside"],
                         "lse_region_fraction": float((res.labels[region] == dst).float().mean())}
        rows.append(row)
        if len(tiles) < 4:
            tiles.append(tile)
        print(json.dumps(row), flush=True)
    load = os.getloadavg()
    print(f"\n{args.n} samples, region = segmenter's {args.src} -> {args.to}, {args.steps} steps, lr {args.lr}, "
          f"weights keep {args.keep_weight} pixel {args.pixel_weight} reg {args.reg_weight}, blend {args.blend}, space {args.space}; {time.time() - t:.0f} s; "
          f"load {load}")
    means = {}
    for name in [k for k in rows[0] if isinstance(rows[0][k], dict)]:
        m = {k: float(np.mean([r[name][k] for r in rows])) for k in rows[0][name]}
        means[name] = m
        met = m["region_iou"] >= 0.5 and m["psnr_outside"] >= 30
        print(f"{name:>14}: region IoU {m['region_iou']:.3f}, region {m['region_fraction_before']:.0%} -> "
              f"{m['region_fraction']:.0%} (LSE sees {m['lse_region_fraction']:.0%}), PSNR outside "
              f"{m['psnr_outside']:.1f} dB; goal (IoU >= 0.5, PSNR >= 30): {'met' if met else 'not met'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "means": means, "load": load}, f, indent=2)
    if args.figure:
        write_png(args.figure, sheet(tiles))


if __name__ == "__main__":
    main()

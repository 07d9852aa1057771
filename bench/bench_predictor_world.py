"""A predictor against the world's truth: how well it sees each attribute on held-out scenes.

The boundary of an attribute is drawn from the predictor's scores of GAN samples, and
`eval-gan --coverage` reads the GAN's attribute shares through it, so both are only as
good as the predictor. This scores n held-out world scenes (seeds >= 1e9, never in any
training set) at the world's size and compares with their true attributes: the share
scoring > 0.5 beside the true share (attribute > 0.5), recall and precision at 0.5, and
the correlation of score and truth (what a top/bottom-fraction boundary relies on).
Run from the repo root:

    python bench/bench_predictor_world.py --predictor-path RUN/predictor/classifier --n 512
    python bench/bench_predictor_world.py --predictor photometric --size 128,256
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--predictor", default="classifier", help="predictor name (default: classifier)")
    p.add_argument("--predictor-path", default=None, help="its weights folder (a classifier's)")
    p.add_argument("--n", type=int, default=512, help="held-out world scenes (default: 512)")
    p.add_argument("--size", default="128,256", help="render size H,W (default: 128,256, the demo's)")
    p.add_argument("--condition", default="mixed", help="world condition preset (default: mixed)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()

    from gan.images import from_uint8
    from pipeline import world
    from pipeline.semantics.predictors import predictor_from_args

    size = tuple(int(v) for v in args.size.split(","))
    pred = predictor_from_args(args.predictor, args.predictor_path)
    scenes = [world.sample_scene(world.HELD_OUT_SEED_START + i, args.condition) for i in range(args.n)]
    x = torch.stack([from_uint8(world.render(s, size).image) for s in scenes])
    scores = pred.score(x)
    out = {}
    print(f"{args.predictor} on {args.n} held-out world scenes at {size[0]}x{size[1]}:")
    print(f"  {'attribute':<12} {'true share':>10} {'scored >0.5':>11} {'recall':>7} {'precision':>9} {'corr':>6}")
    for a in world.ATTRIBUTES:
        if a not in scores:
            continue
        t = np.array([s.attributes()[a] for s in scenes])
        s = np.asarray(scores[a])
        pos, hit = t > 0.5, s > 0.5
        row = {"true_share": float(pos.mean()), "scored_share": float(hit.mean()),
               "recall": float((hit & pos).sum() / max(1, pos.sum())),
               "precision": float((hit & pos).sum() / max(1, hit.sum())),
               "corr": float(np.corrcoef(t, s)[0, 1]) if t.std() > 0 and s.std() > 0 else None}
        out[a] = row
        corr = f"{row['corr']:.2f}" if row["corr"] is not None else "-"
        print(f"  {a:<12} {row['true_share']:>10.3f} {row['scored_share']:>11.3f} {row['recall']:>7.2f} "
              f"{row['precision']:>9.2f} {corr:>6}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"predictor": args.predictor, "predictor_path": args.predictor_path, "n": args.n,
                       "size": list(size), "attributes": out}, f, indent=1)


if __name__ == "__main__":
    main()

"""Boundary solver benchmark: default (shrinkage LDA) vs InterFaceGAN's SVC(kernel='linear').

Synthetic latents with a planted direction: w ~ N(0, I) [N, dim], score = w . n + noise.
Both solvers get the SAME InterFaceGAN selection (top/bottom `ratio`, 70/30 split), so
the timing ratio and the cosine to the planted n compare the solvers alone.

    python bench/bench_boundary.py                      # 500,000 x 512, 2%, noise 1.0
    python bench/bench_boundary.py --n 50000 --dim 128  # quick look
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline.semantics.boundary import (BoundaryConfig, accuracies, cosine, decision_values, fit_hyperplane,
                                         select_samples)
from pipeline.semantics.latent_rows import LatentRows


def main() -> None:
    p = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, description=__doc__)
    p.add_argument("--n", type=int, default=500_000, help="number of latents")
    p.add_argument("--dim", type=int, default=512, help="latent dimension")
    p.add_argument("--ratio", type=float, default=0.02, help="InterFaceGAN selection ratio at each end")
    p.add_argument("--noise", type=float, default=1.0, help="std of score noise (w . n has std 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-svc", action="store_true", help="only time the default solver")
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    latents = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    planted = rng.standard_normal(args.dim)
    planted /= np.linalg.norm(planted)
    scores = latents @ planted.astype(np.float32) + args.noise * rng.standard_normal(args.n, dtype=np.float32)

    cfg = BoundaryConfig(ratio=args.ratio)
    t0 = time.perf_counter()
    sel = select_samples(scores, cfg)
    train_x = latents[sel.train]
    t_select = time.perf_counter() - t0
    print(f"data: {args.n} x {args.dim}, noise {args.noise}, ratio {args.ratio}: "
          f"{len(sel.train_y)} train / {len(sel.val_y)} val / {len(sel.rest_y)} remaining; "
          f"selection {t_select:.2f} s (shared by both solvers, not in the ratio)")
    rows = LatentRows.from_array(latents)
    results = {}
    for solver in ["default"] + ([] if args.skip_svc else ["svc"]):
        # one tiny fit first so library imports/initialisation are not timed for either solver
        tiny = select_samples(scores[:2000], BoundaryConfig(ratio=0.05))
        fit_hyperplane(latents[tiny.train, :8], tiny.train_y, solver)
        normal, intercept, sec = fit_hyperplane(train_x, sel.train_y, solver)  # the fit alone
        # scoring all latents against the plane is the same work for both solvers: not timed
        stats = accuracies(sel, decision_values(rows, normal[None], np.asarray([intercept]))[:, 0])
        results[solver] = sec
        print(f"{solver:>8}: {sec:8.3f} s  cos(n, planted) {cosine(normal, planted):.4f}  "
              f"val acc {stats['val_accuracy']:.4f}  remaining acc {stats['remaining_accuracy']:.4f}")
    if "svc" in results:
        print(f"speed-up default vs svc: {results['svc'] / results['default']:.1f}x")


if __name__ == "__main__":
    main()

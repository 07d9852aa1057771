"""The world's conditions against real photos of them, in Lab: how dark, how warm, how far.

    python bench/bench_world_lab.py [--n 32] [--json PATH]

For each attribute with real photos of its condition (night, foggy, snowy, golden_hour vs
../shared/realphotos-conditions' night, fog, snow, dusk) and for day (the world's day vs the day
photos of ../shared/realphotos), prints the pooled Lab pixels' L mean / median / 90th
percentile and a, b means of held-out world renders (128x256) and of the real photos, and the
Lab distance of bench_real_photos.py (sum of the 1-D Wasserstein distances of L, a, b): world
condition -> real condition, beside real day -> real condition (what an edit has to cover).
An edit that reaches the world's condition on world scenes (issue #12's oracle (b)) lands this
far from the real condition on real photos. Skips (exit 0) when the shared photos are absent.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_real_photos as real  # noqa: E402

WORLD_OF = {"night": "night", "foggy": "fog", "snowy": "snow", "golden_hour": "golden_hour"}


def stats(lab: np.ndarray) -> dict:
    q50, q90 = np.quantile(lab[:, 0], [0.5, 0.9])
    return {"L_mean": round(float(lab[:, 0].mean()), 1), "L_median": round(float(q50), 1),
            "L_q90": round(float(q90), 1), "a_mean": round(float(lab[:, 1].mean()), 1),
            "b_mean": round(float(lab[:, 2].mean()), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="held-out world scenes per condition")
    ap.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = ap.parse_args()
    if not (real.PHOTOS.is_dir() and real.CONDITIONS.is_dir()):
        print(f"skipped: {real.PHOTOS} or {real.CONDITIONS} not found")
        return 0
    from pipeline import world

    def renders(condition: str) -> list[np.ndarray]:
        first = world.HELD_OUT_SEED_START  # as `photoedit world --held-out`
        return [world.render(world.sample_scene(s, condition), (128, 256)).image for s in range(first, first + args.n)]

    day_lab = real.pooled_lab(real.day_photos(), per_image=4000)
    world_day = real.pooled_lab(renders("day"), per_image=4000)
    rows = [{"attribute": "day", "world": stats(world_day), "real": stats(day_lab),
             "world_to_real": round(real.lab_distance(world_day, day_lab), 2)}]
    for attr, wcond in WORLD_OF.items():
        cond_lab = real.pooled_lab(real.condition_photos(real.CONDITION_OF[attr]), per_image=4000)
        world_lab = real.pooled_lab(renders(wcond), per_image=4000)
        rows.append({"attribute": attr, "world": stats(world_lab), "real": stats(cond_lab),
                     "world_to_real": round(real.lab_distance(world_lab, cond_lab), 2),
                     "real_day_to_real": round(real.lab_distance(day_lab, cond_lab), 2)})
    print(f"{'':12s} {'L mean / median / q90 (world | real)':40s} {'a, b means (world | real)':28s} "
          "world->real  real day->real")
    for r in rows:
        w, p = r["world"], r["real"]
        print(f"{r['attribute']:12s} {w['L_mean']:5.1f} {w['L_median']:5.1f} {w['L_q90']:5.1f} | "
              f"{p['L_mean']:5.1f} {p['L_median']:5.1f} {p['L_q90']:5.1f}        "
              f"{w['a_mean']:5.1f} {w['b_mean']:5.1f} | {p['a_mean']:5.1f} {p['b_mean']:5.1f}   "
              f"{r['world_to_real']:8.2f}  {r.get('real_day_to_real', float('nan')):10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

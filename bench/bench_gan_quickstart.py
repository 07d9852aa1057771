"""Quickstart GAN on the procedural world: SWD of EMA samples vs held-out renders over time.

Trains the `quickstart` config (64x64, gan:/train_gan: sections) on world renders for up
to --minutes of training time, and reports, from the same run:
  - SWD x1e3 of the untrained generator (logged before the first step),
  - the SWD curve at each snapshot and the final value; the target is final <= 0.5 x untrained,
  - the floor: SWD between two disjoint sets of held-out real renders (same n),
  - images/s of training (mean over ticks; rendering is cached and not timed),
  - a sample grid of the final EMA generator (const noise, fixed seeds).

    python bench/bench_gan_quickstart.py --minutes 10 --out runs/bench_gan_quickstart \\
        --grid docs/gan_quickstart_samples.png
"""
from __future__ import annotations

import os

# Must precede the torch import: on a machine shared with other jobs, OpenMP threads that
# spin while waiting cost 10-50x on small convolutions (measured on this machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from gan.swd import swd  # noqa: E402
from gan.training import InMemoryBatches, generate, save_grid, train  # noqa: E402
from gan.images import from_uint8  # noqa: E402
from pipeline.config import load_section  # noqa: E402
from pipeline.photos.folder import training_images  # noqa: E402
from pipeline.world import HELD_OUT_SEED_START, WorldConfig  # noqa: E402
from pipeline.world.folder import world_images  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training-time budget")
    p.add_argument("--out", default="runs/bench_gan_quickstart", help="run folder (replaced)")
    p.add_argument("--grid", default="docs/gan_quickstart_samples.png", help="final sample grid PNG")
    p.add_argument("--config", default="quickstart")
    p.add_argument("--set", action="append", default=[], help="extra overrides, e.g. train_gan.batch=16")
    args = p.parse_args()

    from gan.networks import GeneratorConfig
    from gan.training import TrainConfig

    overrides = [f"train_gan.minutes={args.minutes}", "train_gan.kimg=0"] + args.set
    gcfg = load_section(GeneratorConfig, "gan", args.config, overrides)
    tcfg = load_section(TrainConfig, "train_gan", args.config, overrides)
    wcfg = load_section(WorldConfig, "world", args.config, overrides)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}", flush=True)

    # 1. Data: training renders, the held-out reference, and a second disjoint held-out set.
    t0 = time.time()
    train_arr, ref_arr = training_images("world", tuple(gcfg.resolution), tcfg.data_images, tcfg.swd_images, wcfg)
    m = len(ref_arr)
    other = world_images(tuple(gcfg.resolution), HELD_OUT_SEED_START + wcfg.seed + m, m, wcfg.condition)
    ref = from_uint8(ref_arr)
    floor = swd(from_uint8(other), ref)["swd"]
    print(f"data ready in {time.time() - t0:.0f} s: {len(train_arr)} train renders, {m} held-out; "
          f"floor SWD x1e3 = {floor:.2f}", flush=True)

    # 2. Train; SWD is logged before the first step and at every snapshot.
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    data = InMemoryBatches(train_arr, tcfg.batch, seed=tcfg.seed)
    trainer = train(gcfg, tcfg, data, out, swd_reference=ref)

    # 3. Report from stats.jsonl.
    lines = [json.loads(s) for s in (out / "stats.jsonl").read_text().splitlines()]
    curve = [(r["kimg"], r["swd"]) for r in lines if "swd" in r]
    ticks = [r for r in lines if "img_per_s" in r]
    rate = sum(r["img_per_s"] for r in ticks) / max(len(ticks), 1)
    untrained, final = curve[0][1], curve[-1][1]
    best = min(v for _, v in curve)
    grid = generate(trainer.G_ema, 32, seed=2024)
    Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
    save_grid(grid, Path(args.grid), cols=8)
    summary = {
        "minutes": round(trainer.state.seconds / 60, 2), "kimg": trainer.state.nimg / 1000,
        "steps": trainer.state.step, "img_per_s": round(rate, 2),
        "swd_untrained": round(untrained, 2), "swd_final": round(final, 2), "swd_best": round(best, 2),
        "final_over_untrained": round(final / untrained, 3), "floor": round(floor, 2),
        "target_met": final <= 0.5 * untrained, "curve": [[round(k, 2), round(v, 2)] for k, v in curve],
    }
    print(json.dumps(summary))
    print("\n| kimg | " + " | ".join(f"{k:.1f}" for k, _ in curve) + " |")
    print("|---|" + "---|" * len(curve))
    print("| SWD x1e3 | " + " | ".join(f"{v:.1f}" for _, v in curve) + " |")
    print(f"\nfinal / untrained = {final / untrained:.3f} (target <= 0.5: {'met' if summary['target_met'] else 'NOT met'}); "
          f"floor {floor:.2f}; {rate:.1f} img/s; grid -> {args.grid}")
    return 0 if summary["target_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

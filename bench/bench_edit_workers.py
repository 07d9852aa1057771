"""(d) A folder of 100 photos edited with 1 vs 2 I/O worker threads.

    python bench/bench_edit_workers.py [--n 100] [--size 720x1280] [--resolution 128x256]

Runs the batch runner the CLI uses (pipeline/photos/batch.py) on the same folder twice, each
into a fresh output folder, and prints files/s and the ratio. Workers decode, shrink,
carry to full resolution and encode while the main thread runs the network.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_edit_common import default_bundle, synthetic_photo, write_jpeg  # noqa: E402


def run(pipe, folder: Path, out: Path, workers: int) -> float:
    import torch

    from pipeline.photos.batch import BatchOptions, default_torch_threads, plan_jobs, run_batch

    torch.set_num_threads(default_torch_threads(workers))  # what the CLI does
    jobs = plan_jobs([str(folder)], ["sunny"], str(out))
    t0 = time.perf_counter()
    summary = run_batch(pipe, jobs, BatchOptions(workers=workers, progress=False), log=lambda m: None)
    elapsed = time.perf_counter() - t0
    if summary.failed or len(summary.done) != len(jobs):
        raise SystemExit(f"batch failed: {summary.failed}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--size", default="720x1280", help="photo HxW")
    ap.add_argument("--resolution", default="128x256", help="bundle training resolution HxW")
    args = ap.parse_args()
    from translators.inference import EditPipeline

    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        base = synthetic_photo(h, w)
        for i in range(args.n):
            write_jpeg(tmp / "in" / f"{i:04d}.jpg", base if i % 2 else base[:, ::-1])
        res = tuple(int(v) for v in args.resolution.split("x"))
        pipe = EditPipeline.from_pretrained(default_bundle(tmp / "models", resolution=res))
        run(pipe, tmp / "in", tmp / "warm", 1)  # warm-up: page cache, oneDNN primitives
        one = run(pipe, tmp / "in", tmp / "w1", 1)
        two = run(pipe, tmp / "in", tmp / "w2", 2)
    print(f"{args.n} photos {w}x{h} JPEG, bundle res {res}, {os.cpu_count()} cores; torch threads as the CLI "
          f"sets them (cores - workers, >= 1)")
    print(f"1 worker : {one:.1f} s ({args.n / one:.2f} files/s)")
    print(f"2 workers: {two:.1f} s ({args.n / two:.2f} files/s)")
    print(f"speed-up 2 vs 1 workers: {one / two:.2f}x")


if __name__ == "__main__":
    main()

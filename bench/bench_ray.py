"""Folder editing throughput: the Ray Data job (1 vs 2 actors) vs the one-machine batch runner.

    python bench/bench_ray.py [--n 100] [--size 720x1280] [--resolution 128x256] [--rounds 2]

One folder of `--n` synthetic JPEGs, the default TranslatorConfig trained at `--resolution`
(random weights), each case writing into a fresh output folder, rounds interleaved:
  - `photoedit --attribute ... --workers 2` (pipeline.photos.batch.run_batch, 2 I/O threads,
    1 torch thread: the baseline);
  - `photoedit ray-edit --actors 1 --cpus-per-actor 2` (one actor, 1 I/O thread, 1 torch thread);
  - `photoedit ray-edit --actors 2` (two actors of 1 CPU each).
Ray runs locally with num_cpus = the machine's cores, started once before timing; the Ray
times include starting the actors (each loads torch and the bundle), as a real job does,
and the rate from the first batch an actor finishes to the last (actors up) is printed apart.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_edit_common import default_bundle, synthetic_photo, write_jpeg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--size", default="720x1280", help="photo HxW")
    ap.add_argument("--resolution", default="128x256", help="bundle training resolution HxW")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import ray
    import torch

    from pipeline.photos.batch import BatchOptions, default_torch_threads, plan_jobs, run_batch
    from pipeline.photos.ray_job import RayOptions, _ray_rows
    from translators.inference import EditConfig, EditPipeline

    h, w = (int(v) for v in args.size.split("x"))
    rh, rw = (int(v) for v in args.resolution.split("x"))
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "in").mkdir()
        for i in range(args.n):
            write_jpeg(tmp / "in" / f"{i:04d}.jpg", synthetic_photo(h, w, seed=i))
        bundle = default_bundle(tmp, "night", resolution=(rh, rw))
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)

        def local(out: Path) -> None:
            torch.set_num_threads(default_torch_threads(2))  # what the CLI does for --workers 2
            pipe = EditPipeline.from_pretrained(str(bundle))
            s = run_batch(pipe, plan_jobs([str(tmp / "in")], ["night"], str(out)),
                          BatchOptions(workers=2, progress=False), log=lambda m: None)
            assert len(s.done) == args.n, s.failed

        steady: dict[str, float] = {}

        def on_ray(name: str, actors: int, cpus: float):
            def run(out: Path) -> None:
                # The actors stamp each batch they finish: photos/s from the first finished
                # batch to the last one shows the job's rate once its actors are up.
                jobs = plan_jobs([str(tmp / "in")], ["night"], str(out))
                stamps = sorted(float(row["finished_at"]) for row in _ray_rows(
                    [bundle], jobs, EditConfig(), BatchOptions(workers=1, progress=False),
                    RayOptions(actors=actors, cpus_per_actor=cpus, photos_per_call=8, progress=False),
                    "torch", None) if row["status"] == "done")
                assert len(stamps) == args.n, len(stamps)
                first = sum(1 for t in stamps if t == stamps[0])
                rate = (args.n - first) / max(1e-9, stamps[-1] - stamps[0])
                steady[name] = max(steady.get(name, 0.0), rate)
            return run

        a1, a2 = "ray-edit --actors 1 (2 CPUs)", "ray-edit --actors 2 (1 CPU each)"
        cases = {"--workers 2 (no Ray)": local, a1: on_ray(a1, 1, float(cores)), a2: on_ray(a2, 2, max(1.0, cores / 2))}
        best = {name: float("inf") for name in cases}
        for r in range(args.rounds):
            for k, (name, fn) in enumerate(cases.items()):
                t0 = time.perf_counter()
                fn(tmp / f"out-{r}-{k}")
                best[name] = min(best[name], time.perf_counter() - t0)
        ray.shutdown()
    base = best["--workers 2 (no Ray)"]
    print(f"{args.n} JPEGs {w}x{h}, bundle {rw}x{rh}, {cores} cores; best of {args.rounds} rounds")
    for name, s in best.items():
        line = f"  {name:<34} {s:6.1f} s  {args.n / s:5.1f} photos/s  ({base / s:.2f}x the --workers 2 throughput)"
        if name in steady:
            line += f"; once actors are up: {steady[name]:5.1f} photos/s ({steady[name] * base / args.n:.2f}x)"
        print(line)


if __name__ == "__main__":
    main()

"""Whole-process benchmark: `photoedit boundary` vs InterFaceGAN's own `train_boundary.py`.

Both sides are timed as a user runs them: a fresh Python process, imports, reading the
latents and scores from disk, the fit, the accuracies, writing the result. Each process's
peak resident memory (ru_maxrss from wait4, file-backed memory-mapped pages included) is
read against the size of the latents file.

Data (built once under --work, reused; never in the repo): latents w ~ N(0, I) [N, dim]
float32 and score = w . n + noise, saved as
    w.npy [N, dim], scores.npy [N], scores_col.npy [N, 1]  (InterFaceGAN wants [N, 1])
    shard/  a sample shard as `photoedit sample` writes it (manifest.json, chunks/*.npz with
            z, w, seeds; --chunk rows each) plus scores_photometric.npz {"sunny": [N]}.

Runs, interleaved, `--repeats` times each (InterFaceGAN once by default: it takes minutes):
    photoedit boundary --latents w.npy --scores scores.npy   (the same files as InterFaceGAN)
    photoedit boundary --samples shard/                       (the project's shard format)
    python train_boundary.py -c w.npy -s scores_col.npy       (InterFaceGAN, from --interfacegan-dir)

With --before-tree DIR (a copy of this repo from before a change, e.g. `git archive REV | tar -x -C DIR`)
the same two photoedit commands also run from that tree (cwd DIR, so its `pipeline` is
imported), `--before-repeats` times: the before/after figures then come from one run.

InterFaceGAN's code is not in this repo: pass a checkout of genforce/interfacegan. It is run
unmodified except for one alias set before it is imported, `np.int = int`: its
utils/manipulator.py uses `np.int`, which NumPy removed in 1.24 (the import alone costs
nothing; the alias only lets the script run on today's NumPy).

    python bench/bench_boundary_process.py --interfacegan-dir /tmp/interfacegan
    python bench/bench_boundary_process.py --interfacegan-dir /tmp/interfacegan --before-tree /tmp/old
    python bench/bench_boundary_process.py --n 50000 --skip-interfacegan   # quick look
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
INTERFACEGAN_LAUNCH = (
    "import sys, runpy; import numpy as np; np.int = int; "  # NumPy >= 1.24 removed np.int
    "sys.path.insert(0, sys.argv[1]); script = sys.argv[1] + '/train_boundary.py'; "
    "sys.argv = [script] + sys.argv[2:]; runpy.run_path(script, run_name='__main__')"
)


def make_data(work: Path, n: int, dim: int, chunk: int, noise: float, seed: int) -> Path:
    """Write the latents, scores and shard once; a stamp file says which settings made them."""
    settings = {"n": n, "dim": dim, "chunk": chunk, "noise": noise, "seed": seed}
    stamp = work / "settings.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == settings:
        return work
    if work.exists():
        shutil.rmtree(work)
    (work / "shard" / "chunks").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    planted = rng.standard_normal(dim)
    planted /= np.linalg.norm(planted)
    w = np.lib.format.open_memmap(work / "w.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    scores = np.empty(n, np.float32)
    for c, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        wc = rng.standard_normal((hi - lo, dim), dtype=np.float32)
        zc = rng.standard_normal((hi - lo, dim), dtype=np.float32)
        w[lo:hi] = wc
        scores[lo:hi] = wc @ planted.astype(np.float32) + noise * rng.standard_normal(hi - lo, dtype=np.float32)
        np.savez(work / "shard" / "chunks" / f"{c:06d}.npz", z=zc, w=wc, seeds=np.arange(lo, hi, dtype=np.int64))
    w.flush()
    del w
    np.save(work / "scores.npy", scores)
    np.save(work / "scores_col.npy", scores[:, None])
    np.savez(work / "shard" / "scores_photometric.npz", sunny=scores)
    manifest = {"format": "photoedit-samples", "version": 1, "gan": "synthetic", "gan_sha256": "0" * 64,
                "n": n, "seed": 0, "z_file": None, "z_file_sha256": None, "truncation": 1.0,
                "noise_mode": "const", "chunk": chunk, "images": False, "resolution": [64, 64],
                "z_dim": dim, "w_dim": dim, "num_ws": 8, "image_digits": 6, "complete": True}
    (work / "shard" / "manifest.json").write_text(json.dumps(manifest, indent=1))
    stamp.write_text(json.dumps(settings))
    return work


def run_process(cmd: list[str], log: Path, cwd: Path = REPO) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in bytes, exit code) of one child process."""
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss * 1024.0, proc.returncode


def main() -> None:
    p = argparse.ArgumentParser(formatter_class=argparse.RawDescriptionHelpFormatter, description=__doc__)
    p.add_argument("--n", type=int, default=500_000, help="number of latents (default: %(default)s)")
    p.add_argument("--dim", type=int, default=512, help="latent dimension (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=256, help="shard rows per chunk, as `photoedit sample` "
                   "(default: %(default)s)")
    p.add_argument("--noise", type=float, default=1.0, help="std of score noise (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/bench_boundary_process"),
                   help="where the data is built and kept (default: %(default)s)")
    p.add_argument("--interfacegan-dir", type=Path, help="checkout of genforce/interfacegan")
    p.add_argument("--skip-interfacegan", action="store_true", help="only time photoedit")
    p.add_argument("--repeats", type=int, default=3, help="runs of each photoedit form (default: %(default)s)")
    p.add_argument("--interfacegan-repeats", type=int, default=1, help="runs of InterFaceGAN (default: %(default)s)")
    p.add_argument("--before-tree", type=Path, help="a copy of the repo before a change: time its photoedit too")
    p.add_argument("--before-repeats", type=int, default=1, help="runs of each --before-tree form "
                   "(default: %(default)s)")
    args = p.parse_args()
    if not args.skip_interfacegan and not (args.interfacegan_dir and
                                           (args.interfacegan_dir / "train_boundary.py").is_file()):
        p.error("--interfacegan-dir must hold InterFaceGAN's train_boundary.py (or pass --skip-interfacegan)")

    t0 = time.perf_counter()
    work = make_data(args.work.resolve(), args.n, args.dim, args.chunk, args.noise, args.seed)
    input_bytes = (work / "w.npy").stat().st_size
    print(f"data: {args.n} x {args.dim} float32 latents, {input_bytes / 2**30:.2f} GiB "
          f"(ready in {time.perf_counter() - t0:.1f} s), load average {os.getloadavg()[0]:.2f}")

    photoedit = [sys.executable, "-m", "pipeline.cli", "boundary", "--attribute", "sunny"]
    forms = {
        "photoedit --latents": photoedit + ["--latents", str(work / "w.npy"), "--scores", str(work / "scores.npy"),
                                            "--out", str(work / "out_npy" / "sunny.npz")],
        "photoedit --samples": photoedit + ["--samples", str(work / "shard"),
                                            "--out", str(work / "out_shard" / "sunny.npz")],
    }
    plan = [(name, cmd, REPO, args.repeats) for name, cmd in forms.items()]
    if args.before_tree:
        before = args.before_tree.resolve()
        plan += [(f"before: {name}", cmd, before, args.before_repeats) for name, cmd in forms.items()]
    if not args.skip_interfacegan:
        plan.append(("InterFaceGAN train_boundary", None, REPO, args.interfacegan_repeats))
    runs = {name: [] for name, *_ in plan}
    for r in range(max(times for *_, times in plan)):
        for name, cmd, cwd, times in plan:
            if r >= times:
                continue
            if cmd is None:  # InterFaceGAN
                out_dir = work / f"interfacegan_out_{r}"
                shutil.rmtree(out_dir, ignore_errors=True)  # its logger refuses an existing folder
                cmd = [sys.executable, "-c", INTERFACEGAN_LAUNCH, str(args.interfacegan_dir.resolve()),
                       "-o", str(out_dir), "-c", str(work / "w.npy"), "-s", str(work / "scores_col.npy")]
            log = work / f"log_{''.join(c if c.isalnum() else '_' for c in name)}_{r}.txt"
            wall, rss, rc = run_process(cmd, log, cwd)
            if rc != 0:
                sys.exit(f"{name} failed (exit {rc}); see {log}:\n{log.read_text()[-2000:]}")
            runs[name].append((wall, rss))
            print(f"  run {r + 1} {name:<36} {wall:7.2f} s  peak RSS {rss / 2**30:5.2f} GiB "
                  f"({rss / input_bytes:.2f}x input)  load {os.getloadavg()[0]:.2f}", flush=True)

    print(f"\n{'':<36} {'wall (median)':>14} {'peak RSS':>10} {'x input':>8}")
    median = {}
    for name, rs in runs.items():
        median[name] = statistics.median(w for w, _ in rs)
        rss = max(m for _, m in rs)
        print(f"{name:<36} {median[name]:12.2f} s {rss / 2**30:8.2f} GiB {rss / input_bytes:8.2f}")
    if "InterFaceGAN train_boundary" in median:
        base = median["InterFaceGAN train_boundary"]
        for name in median:
            if name != "InterFaceGAN train_boundary":
                print(f"speed-up {name} vs InterFaceGAN: {base / median[name]:.1f}x")
    if args.before_tree:
        for name in forms:
            print(f"speed-up {name} vs before: {median['before: ' + name] / median[name]:.1f}x")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Rendering speed of the procedural street world against the 100 images/s goal (one core).

    python bench/bench_world.py --n 400 --size 128
    python bench/bench_world.py --before /tmp/world_before   # also an older checkout, same run
    python bench/bench_world.py --figures docs/      # also writes the two figures

Prints images/s for the renderer alone (scene records drawn beforehand), for sampling +
rendering, and for the whole `photoedit world` folder writer, each with its ratio to the
goal, plus CPU-time rates: on a machine shared with other jobs the wall-clock rate
understates the renderer, and the CPU-time rate is the closer estimate of an idle core.
With --before DIR the renderer of that checkout (e.g. `git worktree add /tmp/world_before
<commit>`) is timed on the same scenes' seeds in a subprocess, alternating with this one's,
and the after/before ratio is printed.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline import world  # noqa: E402

GOAL = 100.0  # images/s at 128x128, one process (issue #13: enough to feed training)

# Times the renderer alone in another checkout: prints "wall_rate cpu_rate".
_TIMING_SCRIPT = """
import os, sys, time
from pipeline import world
n, h, w = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
params = [world.sample_scene(s, "mixed") for s in range(n)]
world.render(params[0], (h, w))
c = os.times(); t = time.perf_counter()
for p in params:
    world.render(p, (h, w))
wall = time.perf_counter() - t
c2 = os.times()
print(n / wall, n / max(c2.user + c2.system - c.user - c.system, 1e-9))
"""


def timed_checkout(checkout: Path, n: int, size: tuple[int, int]) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(checkout), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _TIMING_SCRIPT, str(n), str(size[0]), str(size[1])], cwd=str(checkout),
                         env=env, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def compare(before: Path, n: int, size: tuple[int, int], repeats: int) -> None:
    """Renderer-only rates of an older checkout and of this one, alternating, best of repeats."""
    here = Path(__file__).resolve().parent.parent
    runs = {"before": [], "after": []}
    for _ in range(repeats):
        runs["before"].append(timed_checkout(before, n, size))
        runs["after"].append(timed_checkout(here, n, size))
    best = {k: max(v, key=lambda r: r[0]) for k, v in runs.items()}
    best_cpu = {k: max(r[1] for r in v) for k, v in runs.items()}
    load = os.getloadavg()[0]
    print(f"renderer only, {n} mixed scenes at {size[0]}x{size[1]}, one process each, alternating, best of {repeats}; "
          f"load average {load:.1f}")
    print(f"{'checkout':<28}{'img/s wall':>11}{'x goal':>8}{'img/s CPU':>11}{'x goal':>8}")
    for k in ("before", "after"):
        print(f"{k + (' ' + str(before) if k == 'before' else ''):<28}{best[k][0]:>11.1f}{best[k][0] / GOAL:>8.2f}"
              f"{best_cpu[k]:>11.1f}{best_cpu[k] / GOAL:>8.2f}")
    print(f"after / before: wall {best['after'][0] / best['before'][0]:.2f}, CPU {best_cpu['after'] / best_cpu['before']:.2f}")


def timed(fn, n: int) -> tuple[float, float]:
    """(wall images/s, CPU-time images/s) of fn() over n images; CPU includes worker processes."""
    def cpu() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    t, c = time.perf_counter(), cpu()
    fn()
    return n / (time.perf_counter() - t), n / max(cpu() - c, 1e-9)


def bench(n: int, size: tuple[int, int], repeats: int) -> None:
    params = [world.sample_scene(s, "mixed") for s in range(n)]
    world.render(params[0], size)  # warm caches (noise tiles, imports)
    rows = []
    best = lambda fn: max((timed(fn, n) for _ in range(repeats)), key=lambda r: r[0])  # noqa: E731
    rows.append(("renderer only", best(lambda: [world.render(p, size) for p in params])))
    rows.append(("sample + render", best(lambda: [world.render(world.sample_scene(s, "mixed"), size)
                                                  for s in range(n)])))
    from pipeline.world.folder import render_folder

    cfg = world.WorldConfig(size=size, seed=0, condition="mixed")
    with tempfile.TemporaryDirectory() as tmp:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            rows.append(("photoedit world (PNG+JSON)", timed(lambda: render_folder(Path(tmp), n, cfg), n)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"world renderer, {n} mixed scenes at {size[0]}x{size[1]}, best of {repeats}; "
          f"{os.cpu_count()} cores, load average {load:.1f}")
    print(f"{'path':<28}{'img/s wall':>11}{'x goal':>8}{'img/s CPU':>11}{'x goal':>8}")
    for name, (wall, cpu) in rows:
        print(f"{name:<28}{wall:>11.1f}{wall / GOAL:>8.2f}{cpu:>11.1f}{cpu / GOAL:>8.2f}")


def label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# Label map colours (Cityscapes-like), in world.LABELS order.
LABEL_COLORS = np.array([[70, 130, 180], [70, 70, 70], [128, 64, 128], [244, 35, 232], [107, 142, 35], [0, 0, 142],
                         [250, 250, 210], [153, 153, 153], [152, 251, 152], [0, 0, 70], [220, 220, 0],
                         [250, 170, 30], [220, 20, 60]], np.uint8)


def _layout_examples() -> list[tuple[str, "world.SceneParams"]]:
    """Eight day scenes showing the layouts: bends, cross streets, woods, signals, people."""
    tests = [("bend", lambda p: p.layout.kind == "street" and abs(p.layout.curve) > 0.004),
             ("cross street", lambda p: p.layout.junction_z and p.layout.junction_z < 25 and p.traffic_lights),
             ("open road, woods", lambda p: p.layout.kind == "open_road" and p.layout.woods > 0),
             ("suburb", lambda p: p.layout.kind == "suburb" and p.pedestrians),
             ("people", lambda p: sum(q.z < 15 for q in p.pedestrians) >= 2),
             ("signs", lambda p: sum(q.z < 20 for q in p.signs) >= 2),
             ("open road, bend", lambda p: p.layout.kind == "open_road" and p.layout.curve != 0),
             ("overhead signal", lambda p: any(t.overhead and t.z < 30 for t in p.traffic_lights))]
    out, used = [], set()
    for name, ok in tests:
        p = next(q for q in (world.sample_scene(s, "day") for s in range(20_000, 22_000) if s not in used) if ok(q))
        used.add(p.seed)
        out.append((name, p))
    return out


def figures(out: Path, size=(128, 256)) -> None:
    from pipeline.world.folder import write_png

    out.mkdir(parents=True, exist_ok=True)
    # 1. Contact sheet: a row per condition, two rows of the mixed stream, then layouts
    # (bend, cross street, woods, furniture) with their label maps below them.
    rows = list(world.CONDITIONS) + ["rain", "mixed", "mixed"]
    cells = []
    for r, cond in enumerate(rows):
        for c in range(8):
            seed = 1000 * r + c
            img = world.render(world.sample_scene(seed, cond), size).image
            cells.append(label(img, cond) if c == 0 else img)
    picks = _layout_examples()
    renders = [world.render(p, size) for _, p in picks]
    cells += [label(r.image, name) for (name, _), r in zip(picks, renders)]
    cells += [label(LABEL_COLORS[r.masks], "labels" if i == 0 else "") for i, r in enumerate(renders)]
    write_png(out / "world_contact_sheet.png", world.contact_sheet(cells, cols=8))
    # 2. Re-render strip: one street, every attribute set to 1.
    p = world.sample_scene(4, "day")
    strip = [label(world.render(p, size).image, "input (day)")]
    for a in world.ATTRIBUTES:
        strip.append(label(world.rerender(p, a, 1.0, size).image, a))
    write_png(out / "world_rerender_strip.png", world.contact_sheet(strip, cols=len(strip)))
    print(f"wrote {out / 'world_contact_sheet.png'} and {out / 'world_rerender_strip.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="scenes per measurement")
    ap.add_argument("--size", default="128", help="H or HxW")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs (others share the machine)")
    ap.add_argument("--figures", metavar="DIR", help="also write the contact sheet and re-render strip here")
    ap.add_argument("--before", metavar="DIR", help="an older checkout whose renderer is timed in the same run")
    args = ap.parse_args()
    if args.figures:
        figures(Path(args.figures))
    if args.before:
        compare(Path(args.before).resolve(), args.n, world.parse_size(args.size), args.repeats)
    bench(args.n, world.parse_size(args.size), args.repeats)


if __name__ == "__main__":
    main()

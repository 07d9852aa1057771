"""How close the procedural world is to real street photos: SWD against the real-vs-real floor.

The protocol (issue #13): SWD x1e3 on Laplacian-pyramid 7x7 patches (gan/swd.py) at
128x256; real photos are centre-cropped to 1:2 and Lanczos-resized, world scenes are
rendered at 128x256. Every comparison uses equal set sizes:

  floor  = SWD(real half A, real half B)      the two halves of one random split
  world  = SWD(world set, real half A)        a fresh world set of the same size per split

and each figure is the mean over --splits random splits (one split alone swings 1.3-2.3x).
Reported: overall (world `mixed` vs all 50 photos), the finest pyramid level, and per
condition (world night vs real night photos, fog vs fog, ...), as ratios world / floor.
With --before DIR (a checkout of an older commit) the same splits are measured for that
commit's renderer too, in the same run, so the table shows before and after side by side.

    git worktree add /tmp/world_before 6937b78
    python bench/bench_world_realism.py --before /tmp/world_before --sheet /tmp/world_vs_real.png  # not in the repo

Real photos are read from ../shared/realphotos and ../shared/realphotos-conditions
(relative to the repository root); without them the bench says so and exits.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = (128, 256)  # (H, W) of every image compared
REAL_DIRS = ("../shared/realphotos", "../shared/realphotos-conditions")
# Real condition (MANIFEST) -> the world condition drawn to match it. Rain has no preset of
# its own among the six attribute conditions; the world draws it as `rain`.
WORLD_FOR = {"sunny": "day", "overcast": "overcast", "dusk": "golden_hour", "night": "night", "fog": "fog",
             "snow": "snow", "rain": "rain"}


# ----------------------------------------------------------------------------------
# Real photos


def _condition_from_description(text: str) -> str:
    """The general set's MANIFEST has no condition column: read it from the description."""
    head = text.lower().split(";")[0]
    for word, cond in (("night", "night"), ("winter", "snow"), ("snow", "snow"), ("overcast", "overcast"),
                       ("fog", "fog"), ("rain", "rain"), ("dusk", "dusk")):
        if word in head:
            return cond
    return "sunny"  # "daylight sunny", "daylight, bright hazy sky", ...


def crop_resize(path: Path, size=SIZE) -> np.ndarray:
    """uint8 [H, W, 3]: the photo upright, centre-cropped to the aspect of `size`, Lanczos-resized."""
    from PIL import Image, ImageOps

    h, w = size
    with Image.open(path) as im:
        im.draft("RGB", (w * 2, h * 2))  # JPEG: decode at a reduced scale, still >= 2x the target
        im = ImageOps.exif_transpose(im).convert("RGB")
        W, H = im.size
        if W * h > H * w:  # too wide: keep the middle columns
            cw = round(H * w / h)
            box = ((W - cw) // 2, 0, (W - cw) // 2 + cw, H)
        else:
            ch = round(W * h / w)
            box = (0, (H - ch) // 2, W, (H - ch) // 2 + ch)
        return np.asarray(im.resize((w, h), Image.LANCZOS, box=box), np.uint8)


def load_real(root: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(images uint8 [N, H, W, 3], names, conditions) of every photo listed in the MANIFESTs."""
    images, names, conds = [], [], []
    for d in REAL_DIRS:
        folder = (root / d).resolve()
        manifest = folder / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with open(manifest, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                path = folder / row["filename"]
                if not path.is_file():
                    continue
                cond = row.get("condition") or _condition_from_description(row.get("description", ""))
                images.append(crop_resize(path))
                names.append(row["filename"])
                conds.append(cond)
    return (np.stack(images) if images else np.zeros((0, *SIZE, 3), np.uint8)), names, conds


# ----------------------------------------------------------------------------------
# World renders, from this checkout or from an older one


_RENDER_SCRIPT = """
import sys, numpy as np
from pipeline import world
cond, first, n, h, w, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
arr = np.stack([world.render(world.sample_scene(s, cond), (h, w)).image for s in range(first, first + n)])
np.save(out, arr)
"""


def render_world(condition: str, first: int, n: int, checkout: Path | None, tmp: Path) -> np.ndarray:
    """uint8 [n, H, W, 3] renders of seeds first.. under `condition`, by this checkout's renderer
    (checkout None) or by the one in `checkout` (a subprocess whose sys.path starts there)."""
    if checkout is None:
        from pipeline import world

        return np.stack([world.render(world.sample_scene(s, condition), SIZE).image for s in range(first, first + n)])
    out = tmp / f"before_{condition}_{first}_{n}.npy"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    subprocess.run([sys.executable, "-c", _RENDER_SCRIPT, condition, str(first), str(n), *map(str, SIZE), str(out)],
                   cwd=str(checkout), env=env, check=True)
    return np.load(out, allow_pickle=False)


def draws_rain(checkout: Path | None) -> bool:
    """Whether that renderer knows the `rain` condition (older ones do not)."""
    if checkout is None:
        from pipeline import world

        try:
            world.sample_scene(0, "rain")
            return True
        except ValueError:
            return False
    code = "from pipeline import world; world.sample_scene(0, 'rain')"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return subprocess.run([sys.executable, "-c", code], cwd=str(checkout), env=env, capture_output=True).returncode == 0


# ----------------------------------------------------------------------------------
# The protocol


def swd_pair(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, ...]:
    """(mean over levels, level 0 (finest), level 1, ...) SWD x1e3 between two uint8 sets of one size."""
    from gan.images import from_uint8
    from gan.swd import SWDConfig, swd

    r = swd(from_uint8(a), from_uint8(b), SWDConfig(seed=seed))
    return (r["swd"], *r["levels"])


def measure(real: np.ndarray, worlds: dict[str, np.ndarray], splits: int, seed0: int) -> dict:
    """Mean over splits of floor and world-vs-real SWD (overall and finest level).

    worlds: name -> uint8 [splits * m, H, W, 3] where m = len(real) // 2; split k uses
    world images [k*m, (k+1)*m) against real half A of split k.
    """
    m = len(real) // 2
    acc = {"floor": [], **{k: [] for k in worlds}}
    for k in range(splits):
        perm = np.random.default_rng([seed0, k]).permutation(len(real))
        a, b = real[perm[:m]], real[perm[m:2 * m]]
        acc["floor"].append(swd_pair(b, a, seed=k))
        for name, imgs in worlds.items():
            acc[name].append(swd_pair(imgs[k * m:(k + 1) * m], a, seed=k))
    out = {}
    for name, vals in acc.items():
        v = np.asarray(vals)
        out[name] = {"swd": float(v[:, 0].mean()), "finest": float(v[:, 1].mean()),
                     "levels": v[:, 1:].mean(0).round(3).tolist(), "swd_per_split": v[:, 0].round(3).tolist()}
    return out


def ratios(res: dict, name: str) -> tuple[float, float]:
    return res[name]["swd"] / res["floor"]["swd"], res[name]["finest"] / res["floor"]["finest"]


def contact_sheet(real: np.ndarray, conds: list[str], path: Path, per_row: int = 4) -> None:
    """A row per condition: real photos of it (left) beside world scenes of the matching condition."""
    import cv2

    from pipeline import world
    from pipeline.world.folder import write_png

    cells = []
    for row, (cond, wcond) in enumerate(WORLD_FOR.items()):
        idx = [i for i, c in enumerate(conds) if c == cond][:per_row]
        if not idx:
            continue
        reals = [real[i] for i in idx] + [np.full((*SIZE, 3), 24, np.uint8)] * (per_row - len(idx))
        worlds = [world.render(world.sample_scene(5000 + 100 * row + j, wcond), SIZE).image for j in range(per_row)]
        for j, im in enumerate(reals + worlds):
            im = im.copy()
            if j in (0, per_row):
                text = f"real {cond}" if j == 0 else f"world {wcond}"
                cv2.putText(im, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(im, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
            cells.append(im)
    write_png(path, world.contact_sheet(cells, cols=2 * per_row))
    print(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=int, default=5, help="random real/real splits to average (>= 5)")
    ap.add_argument("--condition-splits", type=int, default=10, help="splits per condition (small sets: more)")
    ap.add_argument("--before", metavar="DIR", help="a checkout of an older commit, measured in the same run")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random splits")
    ap.add_argument("--world-seed", type=int, default=0,
                    help="first seed of the world scenes (another value: scenes the renderer was not tuned on)")
    ap.add_argument("--sheet", metavar="PNG", help="also write a contact sheet of real photos beside world scenes")
    ap.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = ap.parse_args()
    t0 = time.time()
    real, names, conds = load_real(ROOT)
    if len(real) < 10:
        print(f"only {len(real)} real photos under {', '.join(REAL_DIRS)}: nothing to measure")
        return 0
    import tempfile

    checkouts = {"after": None}
    if args.before:
        checkouts = {"before": Path(args.before).resolve(), "after": None}
    report: dict = {"size": list(SIZE), "n_real": len(real), "splits": args.splits}
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Overall: world `mixed` against all the real photos.
        m = len(real) // 2
        worlds = {name: render_world("mixed", args.world_seed, args.splits * m, co, Path(tmp))
                  for name, co in checkouts.items()}
        report["overall"] = measure(real, worlds, args.splits, args.seed)
        # 2. Per condition: world scenes of the matching condition against that condition's photos.
        report["conditions"] = {}
        for cond, wcond in WORLD_FOR.items():
            sel = real[[i for i, c in enumerate(conds) if c == cond]]
            if len(sel) < 4:
                continue
            mc = len(sel) // 2
            ws = {}
            for name, co in checkouts.items():
                # The old renderer has no rain: its nearest is overcast.
                wc = "overcast" if wcond == "rain" and not draws_rain(co) else wcond
                ws[name] = render_world(wc, args.world_seed + 10_000, args.condition_splits * mc, co, Path(tmp))
            report["conditions"][cond] = {"world": wcond, "n_real": len(sel),
                                          **measure(sel, ws, args.condition_splits, args.seed)}
    load = os.getloadavg()[0]
    print(f"world vs real, SWD x1e3 at {SIZE[0]}x{SIZE[1]}, {len(real)} real photos, equal set sizes; "
          f"mean of {args.splits} splits (per condition {args.condition_splits}); load average {load:.1f}; "
          f"{time.time() - t0:.0f} s")
    cols = list(checkouts)
    head = f"{'set':<22}{'n/half':>7}{'floor':>8}{'finest':>8}" + "".join(
        f"{c + ' swd':>13}{'x floor':>9}{'finest':>8}{'x floor':>9}" for c in cols)
    print(head)
    rows = [("overall (mixed)", m, report["overall"])] + [
        (f"{c} (world {v['world']})", v["n_real"] // 2, v) for c, v in report["conditions"].items()]
    for label, half, res in rows:
        line = f"{label:<22}{half:>7}{res['floor']['swd']:>8.1f}{res['floor']['finest']:>8.1f}"
        for c in cols:
            r, rf = ratios(res, c)
            line += f"{res[c]['swd']:>13.1f}{r:>9.2f}{res[c]['finest']:>8.1f}{rf:>9.2f}"
        print(line)
    # Which scale the gap is at: the overall set's ratio per pyramid level (finest first;
    # the last is the low-pass residual, i.e. the layout and colour of the whole picture).
    res = report["overall"]
    for c in cols:
        per = [w / f for w, f in zip(res[c]["levels"], res["floor"]["levels"])]
        print(f"overall x floor per pyramid level ({c}, finest first): " + " ".join(f"{r:.2f}" for r in per))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.sheet:
        contact_sheet(real, conds, Path(args.sheet))
    return 0


if __name__ == "__main__":
    sys.exit(main())

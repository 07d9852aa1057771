"""Time `photoedit quickstart` from nothing, stage by stage, against the 15-minute goal.

    python bench/bench_quickstart.py --out /tmp/qs-bench [--set KEY=VALUE ...]

Runs the README's main command in a fresh run folder (a subprocess, as a user would),
then prints each stage's seconds from its manifest, the total wall time, its ratio to
the 15-minute goal, and the headline metrics (SWD, boundary accuracy, translator gains)
as a Markdown table for docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 15 * 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="run folder (deleted first)")
    ap.add_argument("--set", action="append", default=[], help="passed to photoedit quickstart")
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pipeline", "quickstart", "--out", str(a.out)]
    for s in a.set:
        cmd += ["--set", s]
    t0 = time.time()
    code = subprocess.call(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.time() - t0
    print(f"\nexit code {code}; `{' '.join(cmd[2:])}`\n")
    print("| stage | seconds | headline |\n|---|---|---|")
    rows = []
    for m in a.out.glob("*/manifest.json"):
        d = json.loads(m.read_text())
        if "stage" in d and "timings" in d:
            rows.append(d)
    for d in sorted(rows, key=lambda d: d["timings"]["started"]):
        print(f"| {d['stage']} | {d['timings']['seconds']:.0f} | {headline(d)} |")
    print(f"| **total (wall, incl. start-up and report)** | **{wall:.0f}** | "
          f"**{wall / GOAL_S:.2f}x of the 15-minute goal** |")
    return code


def headline(d: dict) -> str:
    m = d.get("metrics", {})
    if d["stage"] == "gan":
        return f"SWD x1e3 {m.get('swd_first', 0):.1f} -> {m.get('swd_final', 0):.1f}; {m.get('kimg', 0):.1f} kimg"
    if d["stage"].startswith("boundary-"):
        return (f"val acc {m.get('val_accuracy', 0):.3f}; layers {m.get('layers')}; "
                f"score +{m.get('score_change_at_3', 0):.3f} at +3")
    if d["stage"].startswith("eval-"):
        hp, w = m.get("heldout_pairs", {}), m.get("world", {})
        return (f"held-out pairs {hp.get('psnr_gain_db', 0):+.2f} dB; world {w.get('psnr_gain_db', 0):+.2f} dB; "
                f"monotonic {m.get('strength_monotonic')}")
    if d["stage"] == "edit":
        return f"{m.get('edited', 0)} edits"
    return ""


if __name__ == "__main__":
    sys.exit(main())

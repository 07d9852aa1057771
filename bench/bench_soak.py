"""Soak: one `photoedit` batch over 2,000 mixed photos with 2 workers; memory must stay flat.

    python bench/bench_soak.py [--n 2000] [--attribute night] [--work /tmp/soak] [--results FILE]

Makes N photos in --work (generated here, never the shared real photos), in name order a
repeating mix, so every tenth of the batch holds the same kinds: JPEG at 0.01-2 MP (some
with EXIF rotation), PNG RGBA, greyscale, palette, 16-bit PNG, CMYK JPEG, WebP, TIFF, BMP,
GIF, one 12-MP JPEG per 100 photos, and one broken file per 250 (empty, truncated, text).
Then runs the CLI exactly as a user would (`python -m pipeline -a ATTR IN -o OUT --workers 2
--json`) and samples the child's resident memory (VmRSS) every 0.1 s together with the
number of outputs written so far.

Reports (goals of issue #18): failures = exactly the broken files; peak RSS while the last
10% of outputs were written vs the first 10% (goal: within 10%, i.e. ratio <= 1.10); files/s.
The baseline is the first tenth of the same run.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_edit_common import synthetic_photo  # noqa: E402

# (kind, height, width) repeated in name order; 20 entries, so 5% of the batch per entry.
MIX = [("jpeg", 480, 640), ("png_rgba", 300, 400), ("jpeg", 768, 1024), ("grey", 600, 800),
       ("jpeg_rot", 640, 480), ("palette", 240, 320), ("png16", 400, 300), ("cmyk", 480, 640),
       ("webp", 720, 1280), ("jpeg", 1200, 1600), ("tiff", 300, 400), ("bmp", 200, 300),
       ("gif", 240, 320), ("jpeg", 150, 200), ("jpeg", 1080, 1920), ("png", 512, 512),
       ("jpeg", 96, 128), ("webp_rgba", 400, 600), ("jpeg", 900, 1200), ("png", 640, 480)]
BIG = ("jpeg", 3000, 4000)  # 12 MP, one per 100 photos
BROKEN = ["empty", "truncated", "text"]  # one per 250 photos, in turn


@functools.lru_cache(maxsize=None)
def _base(h: int, w: int, variant: int) -> np.ndarray:
    return synthetic_photo(h, w, variant)


def make_photo(folder: Path, i: int) -> tuple[str, bool]:
    """Write photo i; returns (file name, broken?)."""
    if i % 250 == 249:
        kind = BROKEN[(i // 250) % len(BROKEN)]
        name = f"{i:05d}_broken_{kind}.jpg"
        if kind == "empty":
            (folder / name).write_bytes(b"")
        elif kind == "truncated":
            buf = io.BytesIO()
            Image.fromarray(_base(480, 640, 0)).save(buf, "JPEG", quality=90)
            (folder / name).write_bytes(buf.getvalue()[: buf.tell() // 2])
        else:
            (folder / name).write_text("not a photo\n")
        return name, True
    kind, h, w = BIG if i % 100 == 50 else MIX[i % len(MIX)]
    rgb = _base(h, w, i % 7)  # 7 variants per size: contents vary, generation stays fast
    stem = f"{i:05d}_{kind}_{w}x{h}"
    im = Image.fromarray(rgb)
    if kind in ("jpeg", "jpeg_rot"):
        exif = im.getexif()
        if kind == "jpeg_rot":
            exif[0x0112] = 6
        im.save(folder / f"{stem}.jpg", "JPEG", quality=90, exif=exif.tobytes())
        return f"{stem}.jpg", False
    if kind in ("png_rgba", "webp_rgba"):
        alpha = Image.fromarray((np.arange(w, dtype=np.uint16)[None, :].repeat(h, 0) * 255 // max(1, w - 1))
                                .astype(np.uint8))
        im = im.convert("RGBA")
        im.putalpha(alpha)
    elif kind == "grey":
        im = im.convert("L")
    elif kind == "palette":
        im = im.quantize(64)
    elif kind == "cmyk":
        im = im.convert("CMYK")
    ext = {"png_rgba": ".png", "grey": ".png", "palette": ".png", "png16": ".png", "cmyk": ".jpg",
           "webp": ".webp", "webp_rgba": ".webp", "tiff": ".tif", "bmp": ".bmp", "gif": ".gif", "png": ".png"}[kind]
    if kind == "png16":
        import cv2

        cv2.imwrite(str(folder / f"{stem}{ext}"), (rgb.astype(np.uint16) * 257)[..., ::-1])
    else:
        im.save(folder / f"{stem}{ext}", quality=90) if ext in (".jpg", ".webp") else im.save(folder / f"{stem}{ext}")
    return f"{stem}{ext}", False


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="photos in the batch (default: 2000)")
    ap.add_argument("--attribute", default="night", help="installed translator (default: the shipped night)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="/tmp/photoedit_soak", help="scratch folder, emptied first")
    ap.add_argument("--results", help="also write the figures as JSON here")
    ap.add_argument("--reuse", action="store_true", help="keep the photos --work/in of an earlier run (same --n)")
    args = ap.parse_args()

    work = Path(args.work)
    src, out = work / "in", work / "out"
    shutil.rmtree(out, ignore_errors=True)
    if args.reuse and src.is_dir() and len(list(src.iterdir())) == args.n:
        broken = {p.name for p in src.iterdir() if "_broken_" in p.name}
    else:
        shutil.rmtree(work, ignore_errors=True)
        src.mkdir(parents=True)
        t0 = time.perf_counter()
        broken = {name for name, bad in (make_photo(src, i) for i in range(args.n)) if bad}
        print(f"made {args.n} photos ({len(broken)} broken) in {time.perf_counter() - t0:.0f} s; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)

    cmd = [sys.executable, "-m", "pipeline", "-a", args.attribute, str(src), "-o", str(out),
           "--workers", str(args.workers), "--no-progress", "--json"]
    t0 = time.perf_counter()
    # Files, not pipes: the child's report (a line per warning, the JSON summary) would fill a
    # pipe nobody reads until it exits, and block it.
    stdout_file, stderr_file = open(work / "stdout.json", "w+"), open(work / "stderr.txt", "w+")
    proc = subprocess.Popen(cmd, cwd=HERE.parent, stdout=stdout_file, stderr=stderr_file, text=True)
    samples: list[tuple[int, float]] = []  # (outputs written so far, VmRSS MB)
    loads = []
    while proc.poll() is None:
        rss = rss_mb(proc.pid)
        written = sum(1 for e in os.scandir(out) if not e.name.startswith(".")) if out.is_dir() else 0
        if rss is not None:
            samples.append((written, rss))
        if len(samples) % 50 == 0:
            loads.append(os.getloadavg()[0])
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    stdout, stderr = (f.seek(0) or f.read() for f in (stdout_file, stderr_file))
    summary = json.loads(stdout)
    failed = {Path(f["file"]).name for f in summary["failed"]}
    done = summary["counts"]["done"]
    tenth = (args.n - len(broken)) / 10
    first = max(r for c, r in samples if c <= tenth)
    last = max(r for c, r in samples if c >= done - tenth)
    result = {
        "n": args.n, "broken": len(broken), "done": done, "failed": len(failed),
        "failed_are_exactly_the_broken": failed == broken, "exit_code": proc.returncode,
        "wall_s": round(wall, 1), "files_per_s": round(done / wall, 2),
        "peak_rss_first_10pct_mb": round(first, 1), "peak_rss_last_10pct_mb": round(last, 1),
        "last_over_first": round(last / first, 3), "peak_rss_whole_run_mb": round(max(r for _, r in samples), 1),
        "samples": len(samples), "load_average_during": [round(min(loads or [0]), 1), round(max(loads or [0]), 1)],
        "warnings": len(summary["warnings"]),
        # Peak RSS in each tenth of the outputs: a leak climbs tenth after tenth; big photos
        # in flight make single bumps.
        "peak_rss_by_tenth_mb": [round(max([r for c, r in samples if k * tenth <= c < (k + 1) * tenth] or [0]), 1)
                                 for k in range(10)],
    }
    print(json.dumps(result, indent=2))
    ok = result["failed_are_exactly_the_broken"] and done == args.n - len(broken) and last / first <= 1.10
    print(f"goal (only the broken fail; last-10% peak RSS within 10% of first-10%): {'MET' if ok else 'NOT MET'}")
    if not result["failed_are_exactly_the_broken"]:
        print("unexpected failures:", sorted(failed - broken)[:20], "\n", stderr[-3000:])
    if args.results:
        Path(args.results).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

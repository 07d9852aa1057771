"""`photoedit serve` on a 12-MP photo: slider latency (preview path) and full-res download vs the CLI.

    python bench/bench_serve.py [--moves 20] [--side 1920] [--json out.json]

Starts `photoedit serve` in a subprocess, uploads a 12-MP JPEG (a real street photo
from ../shared/realphotos scaled to 4032x3024 with grain, 2.4 MB, with EXIF), then times, as the browser
sees them (request sent -> whole response received):
  * slider moves: preview requests at screen size (`--side`), alternating one and two
    attributes and changing strengths each time;   goal <= 0.3 s per move
  * downloads: full-resolution edits, each at a strength not asked before (no cache);
and, in the same run, `photoedit -a A -s S photo.jpg -o out.jpg` on the same file:
its wall time (process start, imports, model load, edit) and the batch time it
reports itself (the edit alone).   goal: download <= 1.5x the CLI
The download must be byte-identical to the CLI's output; the bench checks it.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from serve_helpers import REALPHOTOS, Server  # noqa: E402


def make_photo(path: Path, size=(4032, 3024)) -> Path:
    src = np.asarray(Image.open(REALPHOTOS / "hybridnets_bdd_1.jpg").convert("RGB"))
    big = cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
    # Sensor-like grain, so the file is closer to a camera JPEG (2.4 MB) than a smooth upscale (1.2 MB).
    grain = np.random.default_rng(0).normal(0, 4, big.shape)
    big = np.clip(big + grain, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x010F] = "bench camera"  # Make
    Image.fromarray(big).save(path, "JPEG", quality=92, exif=exif.tobytes())
    return path


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=20, help="slider moves timed")
    ap.add_argument("--side", type=int, default=1920, help="preview long side (a full-HD screen)")
    ap.add_argument("--downloads", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()
    if not (REALPHOTOS / "hybridnets_bdd_1.jpg").is_file():
        print("bench_serve: ../shared/realphotos not present", file=sys.stderr)
        return 2
    print(f"load average at start: {load()}  ({os.cpu_count()} cores)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    photo = make_photo(tmp / "street12mp.jpg")
    data = photo.read_bytes()
    print(f"photo: 4032x3024 JPEG, {len(data) / 2**20:.1f} MB")

    server = Server()
    try:
        # 1. upload (decode once, keep the preview copy)
        t_up, (status, _, body) = timed(lambda: server.request("POST", "/api/photos?name=street12mp.jpg", data))
        assert status == 200, body
        pid = json.loads(body)["id"]
        print(f"upload + decode: {t_up:.2f} s")

        # 2. slider moves: every request a new strength, one or two attributes
        moves, edit_s = [], []
        for i in range(args.moves + 2):
            s = round(0.05 + 0.9 * ((i * 7) % args.moves) / args.moves, 3)
            edits = [["sunny", s]] if i % 2 else [["sunny", s], ["night", round(1 - s, 3)]]
            t, (status, headers, body) = timed(lambda: server.request(
                "POST", f"/api/photos/{pid}/preview", {"edits": edits, "side": args.side}))
            assert status == 200, body
            if i >= 2:  # the first of each combination loads nothing new, but warm the encoder anyway
                moves.append(t)
                edit_s.append(float(headers["x-edit-seconds"]))
        w, h = Image.open(__import__("io").BytesIO(body)).size
        print(f"slider move ({w}x{h} preview, {len(moves)} moves): median {statistics.median(moves):.3f} s, "
              f"max {max(moves):.3f} s (edit alone median {statistics.median(edit_s):.3f} s)   goal <= 0.3 s")

        # 3. downloads vs the CLI on the same file, interleaved so both see the same load
        downloads, cli_wall, cli_batch = [], [], []
        for k in range(args.downloads):
            s = round(0.31 + 0.17 * k, 2)
            t, (status, headers, body) = timed(lambda: server.request(
                "GET", f"/api/photos/{pid}/download?edits=sunny:{s}"))
            assert status == 200, body
            downloads.append(t)
            out = tmp / f"cli-{k}.jpg"
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "pipeline", "-a", "sunny", "-s", str(s), str(photo),
                                  "-o", str(out), "--no-progress"], cwd=REPO, capture_output=True, text=True)
            cli_wall.append(time.perf_counter() - t0)
            assert run.returncode == 0, run.stderr
            m = re.search(r"failed in ([0-9.]+) s", run.stderr)  # the CLI's summary line: its editing time
            cli_batch.append(float(m.group(1)) if m else float("nan"))
            same = out.read_bytes() == body
            print(f"  strength {s}: download {t:.2f} s, CLI {cli_wall[-1]:.2f} s wall / {cli_batch[-1]:.2f} s "
                  f"editing; byte-identical: {same}")
            assert same, "download differs from the CLI's output"
        d, cw, cb = (statistics.median(v) for v in (downloads, cli_wall, cli_batch))
        print(f"full-res download: median {d:.2f} s = {d / cw:.2f}x the CLI's wall time ({cw:.2f} s), "
              f"{d / cb:.2f}x its editing time alone ({cb:.2f} s)   goal <= 1.5x")
        print(f"server peak memory: {server.peak_rss_mb():.0f} MB")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at end: {load()}")
    if args.json:
        args.json.write_text(json.dumps({
            "slider_move_median_s": statistics.median(moves), "slider_move_max_s": max(moves),
            "preview_size": [w, h], "download_median_s": d, "cli_wall_median_s": cw, "cli_edit_median_s": cb,
            "download_over_cli_wall": d / cw, "download_over_cli_edit": d / cb, "upload_s": t_up}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

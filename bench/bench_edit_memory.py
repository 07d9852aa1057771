"""(b) Peak memory (RSS) editing a 24-MP photo, measured in a fresh subprocess.

    python bench/bench_edit_memory.py [--megapixels 24] [--resolution 256x512]

Child processes, each reporting its own peak RSS (VmHWM): (1) the baseline,
importing torch + the product and decoding/encoding the photo without editing;
(2) the default edit (`photoedit --attribute`, guided carrying); (3) a folder of
--folder such photos with 2 workers (the batch bounds photos in memory by pixels);
(4) optionally the exact tiled mode (--tiled). Goal: default edit < 2 GB. Peak = VmHWM of the child.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_edit_common import default_bundle, synthetic_photo, write_jpeg  # noqa: E402

CHILD = r"""
import json, sys
mode, src, out, models = sys.argv[1:5]
import torch  # the baseline pays for the same imports as the edit
from pipeline.photos.imageio import read_photo, write_photo
if mode == "io":
    write_photo(out, read_photo(src))
    code = 0
else:
    from pipeline.cli import main
    workers = "2" if mode == "folder" else "1"
    argv = ["-a", "sunny", src, "-o", out, "--models", models, "--no-progress", "--overwrite", "--workers", workers]
    code = main(argv + (["--full-res-net"] if mode == "tiled" else []))
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the
# parent's peak (which made the 24-MP test photo) instead of this process's own.
hwm_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"code": code, "peak_mb": hwm_kb / 1024}))
"""


def child(mode: str, src: Path, out: Path, models: Path) -> float:
    r = subprocess.run([sys.executable, "-c", CHILD, mode, str(src), str(out), str(models)],
                       capture_output=True, text=True, cwd=HERE.parent)
    if r.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{r.stderr}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    if info["code"] != 0:
        raise SystemExit(f"child {mode} exit {info['code']}:\n{r.stderr}")
    return info["peak_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--resolution", default="256x512", help="bundle training resolution HxW")
    ap.add_argument("--tiled", action="store_true", help="also measure --full-res-net (slow)")
    ap.add_argument("--folder", type=int, default=4, metavar="N",
                    help="also edit a folder of N such photos with 2 workers (0 = skip)")
    args = ap.parse_args()
    width = int(round(math.sqrt(args.megapixels * 1e6 * 3 / 2)))
    height = int(round(width * 2 / 3))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = write_jpeg(tmp / "photo.jpg", synthetic_photo(height, width))
        models = default_bundle(tmp / "models", resolution=tuple(int(v) for v in args.resolution.split("x"))).parent
        base = child("io", src, tmp / "io.jpg", models)
        edit = child("edit", src, tmp / "edit.jpg", models)
        print(f"photo {width}x{height} ({width * height / 1e6:.1f} MP) JPEG")
        print(f"peak RSS decode+encode only (same imports): {base:8.0f} MB")
        print(f"peak RSS photoedit --attribute (default)  : {edit:8.0f} MB   ratio {edit / base:.2f}x  "
              f"(goal < 2048 MB)")
        if args.folder:
            (tmp / "many").mkdir()
            for i in range(args.folder):
                (tmp / "many" / f"p{i}.jpg").write_bytes(src.read_bytes())
            many = child("folder", tmp / "many", tmp / "many_out", models)
            print(f"peak RSS photoedit on a folder of {args.folder}, 2 workers: {many:8.0f} MB   ratio "
                  f"{many / base:.2f}x  (goal < 2048 MB)")
        if args.tiled:
            tiled = child("tiled", src, tmp / "tiled.jpg", models)
            print(f"peak RSS photoedit --full-res-net         : {tiled:8.0f} MB   ratio {tiled / base:.2f}x")


if __name__ == "__main__":
    main()

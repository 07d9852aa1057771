"""(a) A 12-MP JPEG edited end to end vs decoding + encoding the same file alone.

    python bench/bench_edit_e2e.py [--megapixels 12] [--repeats 3] [--resolution 256x512]

Both paths use the product's own reader/writer (pipeline/imageio.py) with the same JPEG
quality, so the ratio is what editing adds on top of the I/O a user cannot avoid.
Goal: ratio <= 2. Prints the per-step split of the edit as well.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_edit_common import best_of, default_bundle, synthetic_photo, write_jpeg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resolution", default="256x512", help="bundle training resolution HxW")
    ap.add_argument("--quality", type=int, default=95)
    args = ap.parse_args()

    import torch

    from pipeline.imageio import Photo, read_photo, write_photo
    from translators.inference import EditPipeline

    width = int(round(math.sqrt(args.megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = write_jpeg(tmp / "photo.jpg", synthetic_photo(height, width))
        res = tuple(int(v) for v in args.resolution.split("x"))
        pipe = EditPipeline.from_pretrained(default_bundle(tmp / "models", resolution=res))

        def io_only():
            photo = read_photo(src)
            write_photo(tmp / "io.jpg", photo, quality=args.quality)

        steps = {}

        def edit():
            t0 = time.perf_counter()
            photo = read_photo(src)
            t1 = time.perf_counter()
            result = pipe.edit_array(photo.rgb, 1.0)
            t2 = time.perf_counter()
            write_photo(tmp / "edit.jpg", Photo(rgb=result.image, exif=photo.exif, icc=photo.icc), args.quality)
            t3 = time.perf_counter()
            steps.update(decode=t1 - t0, encode=t3 - t2, **result.timings)

        io_only()
        edit()  # warm-up: first conv call allocates oneDNN primitives
        base = best_of(io_only, args.repeats)
        full = best_of(edit, args.repeats)
    print(f"photo {width}x{height} ({width * height / 1e6:.1f} MP) JPEG q{args.quality}; bundle res {res}; "
          f"torch threads {torch.get_num_threads()}")
    print(f"decode+encode only : {base:.3f} s")
    print(f"edit end to end    : {full:.3f} s")
    print("  last edit split  : " + ", ".join(f"{k} {v:.3f}s" for k, v in steps.items()))
    print(f"ratio edit / io    : {full / base:.2f}x  (goal <= 2x)")


if __name__ == "__main__":
    main()

"""(a) A 12-MP JPEG edited end to end vs decoding + encoding the same file alone.

    python bench/bench_edit_e2e.py [--megapixels 12] [--repeats 3] [--resolutions 256x512,128x256]

Both paths use the product's own reader/writer (pipeline/imageio.py) with the same JPEG
quality, so the ratio is what editing adds on top of the I/O a user cannot avoid.
Goal: ratio <= 2. The network runs at the bundle's training resolution, so the ratio is
given per bundle resolution. Wall time and process CPU time (steadier on a shared
machine) are both reported, best of --repeats; plus the per-step split of the edit.
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

from bench_edit_common import default_bundle, synthetic_photo, write_jpeg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resolutions", default="256x512,128x256", help="bundle training resolutions HxW,...")
    ap.add_argument("--quality", type=int, default=95)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default: what the CLI picks with its default 2 workers)")
    args = ap.parse_args()

    import torch

    from pipeline.imageio import Photo, read_photo, write_photo
    from translators.inference import EditPipeline

    from pipeline.batch import default_torch_threads

    torch.set_num_threads(args.threads or default_torch_threads(2))
    width = int(round(math.sqrt(args.megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    print(f"photo {width}x{height} ({width * height / 1e6:.1f} MP) JPEG q{args.quality}; "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = write_jpeg(tmp / "photo.jpg", synthetic_photo(height, width))

        def io_only():
            photo = read_photo(src)
            write_photo(tmp / "io.jpg", photo, quality=args.quality)

        io_only()
        base_wall, base_cpu = timed(io_only, args.repeats)
        print(f"decode+encode only: wall {base_wall:.3f} s, cpu {base_cpu:.3f} s")
        for spec in args.resolutions.split(","):
            res = tuple(int(v) for v in spec.split("x"))
            pipe = EditPipeline.from_pretrained(default_bundle(tmp / f"models{spec}", resolution=res))
            steps = {}

            def edit():
                t0 = time.perf_counter()
                photo = read_photo(src)
                t1 = time.perf_counter()
                result = pipe.edit_array(photo.rgb, 1.0)
                t2 = time.perf_counter()
                write_photo(tmp / "edit.jpg", Photo(rgb=result.image, exif=photo.exif, icc=photo.icc),
                            args.quality)
                t3 = time.perf_counter()
                steps.update(decode=t1 - t0, encode=t3 - t2, working=result.working_size, **result.timings)

            edit()  # warm-up: first conv call allocates oneDNN primitives
            wall, cpu = timed(edit, args.repeats)
            split = ", ".join(f"{k} {v:.3f}s" if isinstance(v, float) else f"{k} {v}" for k, v in steps.items())
            print(f"bundle res {res}: edit end to end wall {wall:.3f} s, cpu {cpu:.3f} s -> ratio wall "
                  f"{wall / base_wall:.2f}x, cpu {cpu / base_cpu:.2f}x (goal <= 2x)")
            print(f"  split: {split}")


def timed(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and best process CPU time over `repeats` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


if __name__ == "__main__":
    main()

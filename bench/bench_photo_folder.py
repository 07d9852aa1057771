"""Reading a folder of photos for GAN training: reduced JPEG decode and threads vs the plain way.

    python bench/bench_photo_folder.py [--n 24] [--megapixels 12] [--size 256x256]

`photoedit train-gan --data FOLDER` reads its photos with pipeline.commands.train_gan.
folder_images (pipeline.photos.folder.load_photo per photo). Baseline, same run: every photo
decoded at full size on one thread (load_photo with libjpeg's DCT scaling switched off).
Prints photos/s and the ratios of (1) the reduced decode and (2) it plus one thread per core.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_edit_common import synthetic_photo, write_jpeg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--size", default="256x256", help="training resolution HxW")
    args = ap.parse_args()

    from PIL import JpegImagePlugin

    from pipeline.photos.folder import folder_images
    from pipeline.photos.folder import PhotoFolder

    size = tuple(int(v) for v in args.size.split("x"))
    width = int(round(math.sqrt(args.megapixels * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = synthetic_photo(height, width)
        for i in range(args.n):
            write_jpeg(folder / f"p{i:03d}.jpg", base if i % 2 else base[:, ::-1], quality=92)
        print(f"{args.n} JPEGs {width}x{height} ({width * height / 1e6:.1f} MP) -> {size[0]}x{size[1]}")

        def plain():
            photos = PhotoFolder(folder, size, random_crop=False)
            with mock.patch.object(JpegImagePlugin.JpegImageFile, "draft", lambda self, mode, size: None):
                for i in range(len(photos)):
                    photos.load(i)

        def reduced_one_thread():
            photos = PhotoFolder(folder, size, random_crop=False)
            for i in range(len(photos)):
                photos.load(i)

        def product():
            folder_images(folder, size)

        times = {}
        for name, fn in [("full decode, 1 thread", plain), ("reduced decode, 1 thread", reduced_one_thread),
                         ("folder_images (reduced, all cores)", product)]:
            t0 = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - t0
        base_t = times["full decode, 1 thread"]
        for name, t in times.items():
            print(f"{name:<36} {t:6.2f} s  {args.n / t:6.1f} photos/s  {base_t / t:5.2f}x")


if __name__ == "__main__":
    main()

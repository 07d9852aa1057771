"""Augmentation speed: photoedit's `Attribute` transform vs albumentations' own weather transforms.

    python bench/bench_transforms.py [--repeats 5] [--n 8]

Per 1280x720 uint8 image, inside `A.Compose` as a training pipeline runs it, one torch
thread (what a DataLoader worker gets): albumentations' `RandomFog` and `RandomSunFlare`
(the baselines), and `translators.transforms.Attribute` with (1) the shipped night bundle
(64x64, quickstart-shaped) and (2) the default TranslatorConfig trained at 128x256 (random
weights: speed does not depend on them), one image per call and a batch of `--n` per call
(`images=`, one network call). All timed interleaved in this run, best of `--repeats`.
Images: the shared real photos (../shared/realphotos) resized to 1280x720, else synthetic.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_edit_common import default_bundle, synthetic_photo  # noqa: E402

REAL = ROOT.parent / "shared" / "realphotos"


def photos(n: int) -> tuple[list[np.ndarray], str]:
    import cv2

    from pipeline.photos.imageio import PhotoError, read_photo

    out = []
    for p in sorted(REAL.glob("*.jp*g")) + sorted(REAL.glob("*.png")) if REAL.is_dir() else []:
        try:
            rgb = read_photo(p).rgb
        except PhotoError:
            continue
        if rgb.dtype == np.uint8:
            out.append(cv2.resize(rgb, (1280, 720), interpolation=cv2.INTER_AREA))
        if len(out) == n:
            return out, f"{n} shared real photos resized to 1280x720"
    return [synthetic_photo(720, 1280, seed=i) for i in range(n)], f"{n} synthetic 1280x720 photos"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=8, help="images per round (and per batched call)")
    args = ap.parse_args()

    import albumentations as A
    import torch

    from translators.transforms import Attribute

    torch.set_num_threads(1)
    images, source = photos(args.n)
    batch = np.stack(images)
    with tempfile.TemporaryDirectory() as tmp:
        big = str(default_bundle(Path(tmp), "night", resolution=(128, 256)))
        cases = {
            "RandomFog": A.Compose([A.RandomFog(fog_coef_range=(0.3, 0.6), p=1.0)], seed=0),
            "RandomSunFlare": A.Compose([A.RandomSunFlare(p=1.0)], seed=0),
            "Attribute(night shipped 64x64)": A.Compose([Attribute("night", strength=(0.3, 1.0), p=1.0)], seed=0),
            "Attribute(default net 128x256)": A.Compose([Attribute(big, strength=(0.3, 1.0), p=1.0)], seed=0),
        }
        for aug in cases.values():  # load the networks outside the timing
            aug(image=images[0])
        best = {name: float("inf") for name in cases}
        best_batch = {name: float("inf") for name in cases if name.startswith("Attribute")}
        for _ in range(args.repeats):
            for name, aug in cases.items():
                t0 = time.perf_counter()
                for im in images:
                    aug(image=im)
                best[name] = min(best[name], (time.perf_counter() - t0) / len(images))
                if name in best_batch:
                    t0 = time.perf_counter()
                    aug(images=batch)
                    best_batch[name] = min(best_batch[name], (time.perf_counter() - t0) / len(images))
    print(f"{source}; 1 torch thread; best of {args.repeats}; seconds per image")
    for name, s in best.items():
        line = f"  {name:<32} {s * 1000:7.1f} ms/image"
        line += f"  ({s / best['RandomFog']:.2f}x RandomFog, {s / best['RandomSunFlare']:.2f}x RandomSunFlare)"
        if name in best_batch:
            b = best_batch[name]
            line += f"\n  {name + ' batch of ' + str(args.n):<32} {b * 1000:7.1f} ms/image  " \
                    f"({b / best['RandomFog']:.2f}x RandomFog, {b / best['RandomSunFlare']:.2f}x RandomSunFlare)"
        print(line)


if __name__ == "__main__":
    main()

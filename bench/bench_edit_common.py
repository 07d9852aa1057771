"""Shared pieces of the bench_edit_* benchmarks: synthetic photos and a default-size bundle.

Photos are made here (never the shared real photos): smooth sky/road shading, building
blocks with hard edges, and sensor-like noise, so JPEG sizes and decode costs resemble a
real street photo rather than a flat or pure-noise image.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [H, W, 3] street-like test image."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    sky = np.stack([0.45 + 0.2 * y + 0 * x, 0.6 + 0.15 * y + 0 * x, 0.9 - 0.1 * y + 0 * x], axis=2)
    img = sky.copy()
    # Buildings: a row of rectangles of random colours with window grids.
    n = 12
    edges = np.sort(rng.integers(0, width, n * 2)).reshape(n, 2)
    for (x0, x1), top in zip(edges, rng.uniform(0.15, 0.5, n)):
        y0 = int(top * height)
        colour = rng.uniform(0.25, 0.8, 3).astype(np.float32)
        img[y0:int(0.7 * height), x0:x1] = colour
        img[y0:int(0.7 * height):max(4, height // 60), x0:x1] *= 0.6
    img[int(0.7 * height):] = np.float32([0.35, 0.35, 0.37]) * (1.1 - 0.3 * y[int(0.7 * height):, :, None])
    img += rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_jpeg(path: Path, arr: np.ndarray, quality: int = 92) -> Path:
    from PIL import Image

    Image.fromarray(arr).save(path, "JPEG", quality=quality)
    return path


def default_bundle(folder: Path, attribute: str = "sunny", resolution=(256, 512)) -> Path:
    """The default TranslatorConfig with random weights (speed does not depend on weights)."""
    import torch

    from translators.bundle import save_bundle
    from translators.networks import TranslatorConfig, build_translator

    torch.manual_seed(0)
    model = build_translator(TranslatorConfig())
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.out_channels == 3][-1]
    with torch.no_grad():  # not the identity, so the timed path is the real one
        last.weight.normal_(0, 0.02)
    return save_bundle(folder / attribute, model, {"attribute": attribute, "resolution": list(resolution),
                                                   "strength_range": [0.0, 3.0]})


def best_of(fn, repeats: int) -> float:
    """Fastest of `repeats` runs: the least disturbed by other work on a shared machine."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)

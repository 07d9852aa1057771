"""Folders of the user's own photos for training: `PhotoFolder` (a torch Dataset),
`folder_images` (uint8 arrays), and the GAN's image sets (`training_images`, `real_sets`),
which read either a photo folder or the built-in world.

Recursive; jpg/jpeg/png/webp/bmp/tif/tiff in any letter case. Each photo is turned
upright by its EXIF orientation, converted to RGB from any mode (RGBA, P, L, 16-bit,
CMYK), cropped to the training aspect (random or centred), resized, and returned as a
float tensor [3, H, W] in [-1, 1].

Bad files never stop training: headers are checked at construction and unreadable
files are skipped with ONE warning that counts and names them; a file that fails later
(truncated data past a good header, deleted meanwhile) is replaced by another photo and
reported once.
"""
from __future__ import annotations

import os
import random
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps

from gan.images import from_uint8
from pipeline.config import HELD_OUT_SEED_START
from pipeline.errors import UserError
from pipeline.photos.imageio import draft_short_side

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MAX_NAMES_IN_WARNING = 20  # a warning listing thousands of names helps nobody


def list_images(root: Path) -> list[Path]:
    """Image files under root, recursively, sorted for a stable order across runs."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the full range down to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-12)
        img = Image.fromarray((arr * 255 + 0.5).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def crop_box(w: int, h: int, aspect: float, rng: random.Random | None) -> tuple[int, int, int, int]:
    """The largest box of width/height = aspect inside (w, h); random position if rng."""
    if w / h > aspect:
        cw, ch = max(1, round(h * aspect)), h
    else:
        cw, ch = w, max(1, round(w / aspect))
    x = rng.randint(0, w - cw) if rng else (w - cw) // 2
    y = rng.randint(0, h - ch) if rng else (h - ch) // 2
    return x, y, x + cw, y + ch


def load_photo(path: Path, size: tuple[int, int], rng: random.Random | None = None) -> np.ndarray:
    """One photo as uint8 [H, W, 3], upright, cropped to the aspect of `size` (H, W)."""
    h, w = size
    with Image.open(path) as img:
        # A JPEG decodes reduced while its short side stays >= the target's long side, so
        # any crop still covers the target (12-MP photos for a 256-px GAN: 5.6x faster,
        # bench/bench_photo_folder.py).
        draft_short_side(img, max(h, w))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = to_rgb(img)
    img = img.crop(crop_box(img.width, img.height, w / h, rng))
    img = img.resize((w, h), Image.Resampling.LANCZOS if img.width > w else Image.Resampling.BICUBIC)
    return np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy needs one


class PhotoFolder(torch.utils.data.Dataset):
    """The photos under `root` as [3, H, W] float tensors in [-1, 1].

    random_crop: crop position drawn per item (training); False = centre crop.
    flip: also mirror left-right at random (street scenes are symmetric enough).
    """

    def __init__(self, root: str | Path, size: Sequence[int] | int = (64, 64), random_crop: bool = True,
                 flip: bool = False, seed: int = 0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserError(f"photo folder {self.root}: not a folder")
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise UserError(f"size {size}: expected (H, W)")
        self.random_crop = random_crop
        self.flip = flip
        self.seed = seed
        candidates = list_images(self.root)
        self.paths, bad = [], []
        for p in candidates:
            (self.paths if _header_ok(p) else bad).append(p)
        self.skipped = bad
        if bad:
            _warn_skipped(self.root, bad, "could not be read")
        if not self.paths:
            found = f"{len(candidates)} image file(s), none readable" if candidates else \
                f"no image files ({', '.join(IMAGE_EXTS)})"
            raise UserError(f"photo folder {self.root}: {found}")
        self._failed: set[int] = set()
        self._calls = 0

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        """uint8 [H, W, 3] of item `index`, substituting the next readable photo on failure."""
        n = len(self.paths)
        for k in range(n):
            i = (index + k) % n
            if i in self._failed:
                continue
            rng = random.Random(f"{self.seed}:{index}:{self._calls}") if self.random_crop else None
            try:
                return load_photo(self.paths[i], self.size, rng)
            except (OSError, ValueError, SyntaxError) as e:  # PIL raises these for bad data
                self._failed.add(i)
                warnings.warn(f"{self.paths[i]}: unreadable ({e}); using another photo instead", stacklevel=2)
        raise UserError(f"photo folder {self.root}: no photo could be read")

    def __getitem__(self, index: int) -> torch.Tensor:
        self._calls += 1
        arr = self.load(index)
        if self.flip and random.Random(f"flip:{self.seed}:{index}:{self._calls}").random() < 0.5:
            arr = arr[:, ::-1]
        return from_uint8(arr)


def _header_ok(path: Path) -> bool:
    """Opens the header only (fast); catches non-images and files cut before the pixels."""
    try:
        with Image.open(path) as img:
            img.verify()
        return True
    except Exception:  # noqa: BLE001 - PIL raises many types for garbage; we only skip the file
        return False


def _warn_skipped(root: Path, bad: list[Path], why: str) -> None:
    names = [str(p.relative_to(root)) for p in bad[:MAX_NAMES_IN_WARNING]]
    more = f" and {len(bad) - len(names)} more" if len(bad) > len(names) else ""
    warnings.warn(f"photo folder {root}: skipped {len(bad)} file(s) that {why}: {', '.join(names)}{more}",
                  stacklevel=3)


# ----------------------------------------------------------------------------------
# uint8 image sets for GAN training and evaluation


def folder_images(folder: str | os.PathLike, size, limit: int | None = None) -> np.ndarray:
    """uint8 [n, H, W, 3]: the first `limit` photos of `folder` as PhotoFolder reads them
    (upright, any mode, unreadable files skipped with one warning), centre-cropped to the
    aspect of `size` and resized; decoded on every core with a progress bar."""
    from pipeline.progress import progress_bar

    if not Path(folder).is_dir():
        raise UserError(f"--data {folder}: not a folder (use 'world' or a folder of photos)")
    photos = PhotoFolder(folder, size, random_crop=False)
    n = min(len(photos), limit) if limit else len(photos)
    out = np.empty((n, *photos.size, 3), np.uint8)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        loaded = pool.map(photos.load, range(n))
        for i, arr in enumerate(progress_bar(loaded, total=n, desc=f"reading {folder}", unit="photo")):
            out[i] = arr
    return out


def training_images(data: str, size: tuple[int, int], n_train: int, n_ref: int, wcfg
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """(train uint8 [N,H,W,3], held-out reference uint8 [M,H,W,3] or None) from
    data = "world" (seeds of `wcfg`, a WorldConfig) or a photo folder."""
    from pipeline.world.folder import world_images

    if data == "world":
        train = world_images(size, wcfg.seed, n_train, wcfg.condition)
        ref = world_images(size, HELD_OUT_SEED_START + wcfg.seed, n_ref, wcfg.condition) if n_ref > 0 else None
        return train, ref
    images = folder_images(data, size, n_train + n_ref)
    # Photos have no held-out stream: the last n_ref photos are kept out of training.
    m = min(n_ref, len(images) // 5)
    if m == 0:
        return images, None
    return images[:-m], images[-m:]


def real_sets(data: str, size: tuple[int, int], n: int, count: int, wcfg) -> list[np.ndarray]:
    """`count` disjoint sets of n real uint8 images: held-out world scenes or photos."""
    from pipeline.world.folder import world_images

    if data == "world":
        arr = world_images(size, HELD_OUT_SEED_START + wcfg.seed, n * count, wcfg.condition)
    else:
        arr = folder_images(data, size, n * count)  # the first n * count: a big folder is not read whole
        if len(arr) < n * count:
            raise UserError(f"--data {data}: {len(arr)} images, need {n * count} (lower --n)")
    return [arr[i * n:(i + 1) * n] for i in range(count)]

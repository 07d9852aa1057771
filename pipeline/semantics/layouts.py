"""Label maps in and out of files for SCS and SIE: painted layouts, region masks, world layouts, colours.

A *layout PNG* is one class id per pixel (a single-channel "L" or palette "P" PNG; the
palette index is the id), 255 = free / keep. A *mask PNG* marks a region: white (> 127)
pixels, or opaque ones when the PNG has an alpha channel that is not all opaque. Both are
resized to the generator's size (nearest neighbour) when they are a larger or smaller copy
of it (same aspect ratio); any other size is refused with the file named.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from pipeline.semantics.segmenter import IGNORE


class LayoutError(ValueError):
    """A bad layout or mask file / class name; the message names the file or the value."""


def _open(path: str | Path):
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise LayoutError(f"{p}: no such file")
    try:
        im = Image.open(p)
        im.load()
    except (UnidentifiedImageError, OSError) as e:
        raise LayoutError(f"{p}: not a readable image ({e})") from None
    return im


def _fit(im, path, size: tuple[int, int]):
    """Resize (nearest) to size (H, W) if the aspect ratio matches, else refuse."""
    from PIL import Image

    h, w = size
    if (im.height, im.width) == (h, w):
        return im
    if im.width * h != im.height * w:
        raise LayoutError(f"{path}: {im.width}x{im.height} pixels, but the generator draws {w}x{h} "
                          f"(a copy at another scale with the same aspect ratio is accepted)")
    return im.resize((w, h), Image.NEAREST)


def read_layout_png(path: str | Path, size: tuple[int, int], num_classes: int) -> np.ndarray:
    """int64 [H, W] of class ids (255 = free) from a single-channel or palette PNG."""
    im = _open(path)
    if im.mode not in ("L", "P", "I", "I;16"):
        raise LayoutError(f"{path}: a layout is one class id per pixel (a grayscale or palette PNG, "
                          f"255 = free); this image is {im.mode}")
    a = np.asarray(_fit(im, path, size)).astype(np.int64)
    bad = np.unique(a[(a != IGNORE) & ((a < 0) | (a >= num_classes))])
    if len(bad):
        raise LayoutError(f"{path}: class id(s) {', '.join(map(str, bad[:5]))} not in 0..{num_classes - 1} "
                          f"(255 = free)")
    if (a == IGNORE).all():
        raise LayoutError(f"{path}: every pixel is 255 (free); nothing to follow")
    return a


def read_mask_png(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """bool [H, W]: the region a mask PNG marks (white pixels, or opaque ones if it has alpha)."""
    im = _open(path)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        alpha = rgba[..., 3]
        if (alpha < 255).any():
            from PIL import Image
            region_im = Image.fromarray(((alpha > 127) * 255).astype(np.uint8))
            region = np.asarray(_fit(region_im, path, size)) > 127
            return _nonempty(region, path)
    gray = im.convert("L")
    return _nonempty(np.asarray(_fit(gray, path, size)) > 127, path)


def _nonempty(region: np.ndarray, path) -> np.ndarray:
    if not region.any():
        raise LayoutError(f"{path}: the mask marks no pixel (white = the region to repaint, black = keep)")
    return region


def class_id(name_or_id: str, labels: dict[int, str], source: str) -> int:
    """A class given by name (e.g. vegetation) or id, checked against the extractor's classes."""
    names = {v: k for k, v in labels.items()}
    if name_or_id in names:
        return names[name_or_id]
    if name_or_id.isdigit() and int(name_or_id) in labels:
        return int(name_or_id)
    raise LayoutError(f"class {name_or_id!r}: not a class of {source} "
                      f"({', '.join(f'{k}={v}' for k, v in sorted(labels.items()))})")


def world_layout(seed: int, size: tuple[int, int], labels: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    """The label map of world scene `seed` at size (H, W), mapped by class name onto `labels`' ids;
    world classes the extractor does not know become 255 (free). Returns (layout, names made free)."""
    from pipeline import world
    from pipeline.world.scene import LABELS as WORLD_LABELS

    masks = world.render(world.sample_scene(seed), tuple(size)).masks.astype(np.int64)
    ids = {v: k for k, v in labels.items()}
    out = np.full(masks.shape, IGNORE, np.int64)
    freed = []
    for wid in np.unique(masks):
        name = WORLD_LABELS.get(int(wid))
        if name in ids:
            out[masks == wid] = ids[name]
        else:
            freed.append(name or str(wid))
    return out, freed


# Colours of classes 0..12 as the world names them (sky, building, road, sidewalk, vegetation, car,
# light_source, pole, terrain, ego_vehicle, traffic_sign, traffic_light, person); others from a fixed draw.
_BASE = [(70, 130, 180), (70, 70, 70), (128, 64, 128), (244, 35, 232), (107, 142, 35), (0, 0, 142),
         (250, 250, 160), (153, 153, 153), (152, 251, 152), (40, 40, 40), (220, 220, 0), (250, 170, 30),
         (220, 20, 60)]


def palette() -> np.ndarray:
    """uint8 [256, 3]; entry 255 (free / keep) is black."""
    rest = np.random.RandomState(0).randint(0, 256, (256 - len(_BASE), 3))
    pal = np.concatenate([np.array(_BASE), rest]).astype(np.uint8)
    pal[IGNORE] = 0
    return pal


def colorize(labels: np.ndarray) -> np.ndarray:
    """int [H, W] class ids (255 or -1 = free / keep) -> uint8 [H, W, 3]."""
    a = np.asarray(labels).astype(np.int64)
    return palette()[np.where(a < 0, IGNORE, a).clip(0, 255)]


def png_bytes(array: np.ndarray) -> bytes:
    """PNG of uint8 [H, W, 3] RGB or [H, W] grayscale (written by PIL; no colour conversion)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Atomic PNG write (temp file, then rename)."""
    from pipeline.fileio import atomic_write_bytes

    atomic_write_bytes(path, png_bytes(array))
    return Path(path)


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    """Atomic .npy write, no pickle (read back with np.load(allow_pickle=False))."""
    from pipeline.fileio import atomic_write

    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))
    return Path(path)


def sheet(rows: list[list[np.ndarray]], scale: int = 3, pad: int = 2) -> np.ndarray:
    """uint8 [H, W, 3] grid of equally sized uint8 [h, w, 3] tiles, each enlarged `scale` times
    (nearest neighbour), white gaps of `pad` pixels: the docs' example pictures."""
    tiles = [[np.kron(t, np.ones((scale, scale, 1), np.uint8)) for t in r] for r in rows]
    h, w = tiles[0][0].shape[:2]
    n = max(len(r) for r in tiles)
    out = np.full((len(tiles) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(tiles):
        for j, t in enumerate(r):
            out[pad + i * (h + pad):pad + i * (h + pad) + h, pad + j * (w + pad):pad + j * (w + pad) + w] = t
    return out

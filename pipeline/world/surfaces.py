"""Surface texture of the world's materials: the fine grain, wear and foliage that flat
polygons lack, as a per-pixel multiplier on the shaded picture.

Each palette entry names a texture kind (`TEXTURES`); `texture_multiplier(kinds, seed)`
reads each pixel's kind from a fixed bank of tiles (one 256x256 tile per kind, built once
from a fixed seed) at a scene-dependent offset. Reading tiles instead of drawing noise per
picture keeps the renderer fast, and the offset comes from the scene's texture seed, so a
re-render of the scene under other lighting has the very same asphalt and leaves.
"""
from __future__ import annotations

import cv2
import numpy as np

# Texture kinds (palette column value -> name); 0 is smooth (sky, glass, emitters).
TEXTURES = ("smooth", "asphalt", "pavement", "facade", "foliage", "grass", "paint")
TEX = {name: i for i, name in enumerate(TEXTURES)}
TILE = 256  # tile side in pixels; pictures larger than this repeat it

# Per kind: (fine-grain amplitude, fine sigma px, blotch amplitude, blotch sigma px, anisotropy).
# Anisotropy > 1 stretches blotches sideways: road wear and grass read as bands in perspective.
_RECIPES = {
    "smooth": (0.0, 1.0, 0.0, 1.0, 1.0),
    "asphalt": (0.12, 0.6, 0.2, 7.0, 3.0),
    "pavement": (0.18, 0.6, 0.15, 4.0, 2.0),
    "facade": (0.30, 0.7, 0.22, 4.0, 1.0),
    "foliage": (1.0, 0.8, 0.3, 2.5, 1.0),
    "grass": (0.6, 0.7, 0.4, 6.0, 3.0),
    "paint": (0.075, 0.6, 0.05, 5.0, 1.0),
}

_BANK: np.ndarray | None = None


def _unit(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-6)


def _periodic_blur(x: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Gaussian blur of a tile as if it repeated: no seam where a picture wraps around it."""
    big = cv2.GaussianBlur(np.tile(x, (3, 3)), (0, 0), sx, sigmaY=sy)
    return big[TILE:2 * TILE, TILE:2 * TILE]


def texture_bank() -> np.ndarray:
    """Multiplier tiles float32 [len(TEXTURES) * TILE * TILE], flat, each with mean ~1."""
    global _BANK
    if _BANK is None:
        rng = np.random.default_rng(2026)
        tiles = []
        for name in TEXTURES:
            fine_a, fine_s, blot_a, blot_s, aniso = _RECIPES[name]
            fine = _unit(_periodic_blur(rng.standard_normal((TILE, TILE)).astype(np.float32), fine_s, fine_s))
            blot = _unit(_periodic_blur(rng.standard_normal((TILE, TILE)).astype(np.float32), blot_s * aniso, blot_s))
            tiles.append(np.clip(1.0 + fine_a * fine + blot_a * blot, 0.25, 2.0))
        _BANK = np.ascontiguousarray(np.stack(tiles).astype(np.float32).reshape(-1))
    return _BANK


def texture_multiplier(kinds: np.ndarray, seed: int) -> np.ndarray:
    """kinds uint8 [H, W] (TEXTURES indices) -> float32 [H, W] multiplier of the shaded light."""
    h, w = kinds.shape
    oy, ox = seed % TILE, (seed // TILE) % TILE
    rows = ((np.arange(h) + oy) % TILE * TILE).astype(np.int32)
    cols = ((np.arange(w) + ox) % TILE).astype(np.int32)
    idx = kinds.astype(np.int32) * (TILE * TILE)
    idx += rows[:, None]
    idx += cols[None, :]
    return np.take(texture_bank(), idx)

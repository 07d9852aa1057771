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
    "asphalt": (0.06, 0.6, 0.09, 7.0, 3.0),
    "pavement": (0.06, 0.6, 0.06, 4.0, 2.0),
    "facade": (0.05, 0.6, 0.07, 6.0, 1.0),
    "foliage": (0.30, 0.8, 0.12, 3.0, 1.0),
    "grass": (0.16, 0.6, 0.18, 8.0, 3.0),
    "paint": (0.025, 0.6, 0.02, 5.0, 1.0),
}

_BANK: np.ndarray | None = None


def _unit(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-6)


def texture_bank() -> np.ndarray:
    """Multiplier tiles float32 [len(TEXTURES) * TILE * TILE], flat, each with mean ~1."""
    global _BANK
    if _BANK is None:
        rng = np.random.default_rng(2026)
        tiles = []
        for name in TEXTURES:
            fine_a, fine_s, blot_a, blot_s, aniso = _RECIPES[name]
            fine = _unit(cv2.GaussianBlur(rng.standard_normal((TILE, TILE)).astype(np.float32), (0, 0), fine_s))
            blot = _unit(cv2.GaussianBlur(rng.standard_normal((TILE, TILE)).astype(np.float32), (0, 0),
                                          blot_s * aniso, sigmaY=blot_s))
            tiles.append(np.clip(1.0 + fine_a * fine + blot_a * blot, 0.3, 1.8))
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

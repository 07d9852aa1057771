"""The GAN's image domain: float tensors [N, 3, H, W] in [-1, 1] <-> uint8 arrays [N, H, W, 3].

The one conversion every caller uses, in gan/ and in pipeline/ (world renders, photos,
pairs, predictors), so the scaling (x / 127.5 - 1 and its inverse, rounded) is written once.
"""
from __future__ import annotations

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3] (clamped, rounded)."""
    x = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] or [H, W, 3] (array or tensor) -> float [N, 3, H, W] or [3, H, W] in [-1, 1].

    Always a new tensor: read-only inputs (memory-mapped shards) are copied, never shared.
    """
    # a read-only (memory-mapped) or strided array is copied as uint8 before torch sees it
    t = images if torch.is_tensor(images) else torch.from_numpy(np.require(images, requirements="CW"))
    if t.dtype != torch.uint8 or t.ndim not in (3, 4) or t.shape[-1] != 3:
        raise ValueError(f"expected uint8 [N, H, W, 3] or [H, W, 3], got {t.dtype} {list(t.shape)}")
    return t.movedim(-1, -3).contiguous().float().div(127.5).sub(1.0)

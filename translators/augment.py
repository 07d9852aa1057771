"""Paired augmentation: the SAME random geometry on both images of a pair.

A translator learns the change from input to GAN target, so the two images must stay
pixel-aligned: one draw of flip/crop/scale is applied to both (albumentations'
`additional_targets`). No photometric transform is offered: brightness or colour jitter
would alter exactly the change (sunny, night...) the translator has to learn.
"""
from __future__ import annotations

import numpy as np
import torch


class PairedAugment:
    """(x, y) [3, H, W] tensors -> the same random flip + resized crop of both, same size."""

    def __init__(
        self,
        size: tuple[int, int],  # (H, W) of the output crops (the training resolution)
        hflip: bool = True,  # mirror left-right with probability 0.5 (streets are symmetric enough)
        crop_scale: tuple[float, float] = (0.7, 1.0),  # area fraction of the random crop; (1, 1) = no crop
    ):
        import albumentations as A  # heavy import kept lazy

        h, w = size
        self.size = (int(h), int(w))
        lo, hi = crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale}")
        ops = [A.HorizontalFlip(p=0.5)] if hflip else []
        # The aspect ratio stays the image's own: a stretched street is not a street.
        ratio = (w / h, w / h)
        ops.append(A.RandomResizedCrop(size=self.size, scale=(lo, hi), ratio=ratio, p=1.0))
        self.transform = A.Compose(ops, additional_targets={"target": "image"})

    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape != y.shape or x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"a pair must be two [3, H, W] tensors of one shape, got {list(x.shape)}, {list(y.shape)}")
        # A per-sample seed makes the augmentation a function of (run seed, step): exact resume.
        self.transform.set_random_seed(int(seed) % 2**32)
        out = self.transform(image=_to_hwc(x), target=_to_hwc(y))
        return _to_chw(out["image"]), _to_chw(out["target"])


def _to_hwc(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().permute(1, 2, 0).numpy())


def _to_chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).contiguous()

"""GAN Dissection (after Bau et al., ICLR 2019): which generator units draw which classes.

1. Every unit (channel of a level's features after its second conv, as `return_features`
   gives them) is thresholded at its own top quantile (default: the top 1% of its
   activations over all samples and positions), upsampled to the image, and its IoU with
   each class of the segmenter's labels is accumulated over the samples.
2. A class's top units in a level are the units with the highest IoU for it.
3. Ablation zeroes those units (forward hooks on the level's conv1, registered here; gan/
   is untouched) and measures how many pixels of each class the segmenter still finds;
   ablating as many random units of the same level is the control. `activated` sets them
   to a high value inside a region instead: inserting the class there (library only so far).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.semantics.lse import sample_with_features, seed_latents


@torch.no_grad()
def unit_class_iou(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int, seeds: Sequence[int],
                   quantile: float = 0.99, truncation: float = 1.0, batch: int = 32,
                   threshold_samples: int = 200) -> list[np.ndarray]:
    """Per level, IoU [units, classes] of each unit's thresholded, upsampled activation with each class.

    Thresholds come from the first `threshold_samples` samples; the IoU counts are then
    accumulated batch by batch, so memory does not grow with the number of samples.
    """
    seeds = list(seeds)
    _, feats = sample_with_features(G, seeds[:threshold_samples], truncation, batch)
    thresholds = []
    for f in feats:  # a unit's quantile over (a random subset of) its activations
        flat = f.transpose(0, 1).reshape(f.shape[1], -1)
        pick = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0))[:200_000]
        thresholds.append(torch.quantile(flat[:, pick], quantile, dim=1))
    del feats
    inter = [torch.zeros(len(t), num_classes) for t in thresholds]
    area = [torch.zeros(len(t)) for t in thresholds]
    class_area = torch.zeros(num_classes)
    for i in range(0, len(seeds), batch):
        images, feats = sample_with_features(G, seeds[i:i + batch], truncation, batch)
        labels = label_fn(images)  # [b, H, W]
        onehot = F.one_hot(labels.clamp(max=num_classes - 1), num_classes).float()  # [b, H, W, C]
        class_area += onehot.sum((0, 1, 2))
        for lv, (f, t) in enumerate(zip(feats, thresholds)):
            up = F.interpolate(f, size=tuple(labels.shape[1:]), mode="bilinear", align_corners=False)
            on = (up > t.view(1, -1, 1, 1)).float()  # [b, units, H, W]
            inter[lv] += torch.einsum("buhw,bhwc->uc", on, onehot)
            area[lv] += on.sum((0, 2, 3))
    return [(x / (a[:, None] + class_area[None, :] - x).clamp(min=1)).numpy() for x, a in zip(inter, area)]


def top_units(table: np.ndarray, cls: int, n: int) -> list[int]:
    """The n units of one level's table with the highest IoU for class cls."""
    return [int(u) for u in np.argsort(-table[:, cls], kind="stable")[:n]]


def matched_units(tables: Sequence[np.ndarray], min_iou: float = 0.04) -> list[np.ndarray]:
    """Per level, how many units have each class as their best match with IoU >= min_iou: [C] counts."""
    out = []
    for t in tables:
        best = t.argmax(1)
        ok = t.max(1) >= min_iou
        out.append(np.bincount(best[ok], minlength=t.shape[1]))
    return out


@contextmanager
def _conv1_hook(G, level: int, change):
    """Within the block, level `level`'s conv1 output passes through change(copy of it) (a forward
    hook, removed after)."""
    handle = G.synthesis.levels[level].conv1.register_forward_hook(lambda _m, _i, out: change(out.clone()))
    try:
        yield G
    finally:
        handle.remove()


def ablated(G, level: int, units: Sequence[int]):
    """Within the block, level `level`'s conv1 outputs zero in `units` (a forward hook, removed after)."""
    idx = torch.as_tensor(list(units), dtype=torch.long)

    def zero(out):
        out[:, idx] = 0
        return out

    return _conv1_hook(G, level, zero)


def activated(G, level: int, units: Sequence[int], values: torch.Tensor, region: torch.Tensor):
    """Within the block, level `level`'s conv1 outputs `values` [len(units)] in `units` wherever the
    image-sized boolean `region` [H, W] is set (resized to the level): inserting what they draw."""
    idx = torch.as_tensor(list(units), dtype=torch.long)
    values = torch.as_tensor(values, dtype=torch.float32).view(1, -1, 1, 1)
    if values.shape[1] != len(idx):
        raise ValueError(f"activated: {len(idx)} units but {values.shape[1]} values")

    def paint(out):
        mask = F.interpolate(region[None, None].float(), size=out.shape[-2:], mode="area") > 0.5
        out[:, idx] = torch.where(mask, values.to(out.dtype), out[:, idx])
        return out

    return _conv1_hook(G, level, paint)


@torch.no_grad()
def class_pixels(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int, seeds: Sequence[int],
                 truncation: float = 1.0, batch: int = 32) -> np.ndarray:
    """Segmented pixels of each class [C] over the samples of these seeds (const noise)."""
    z = seed_latents(G, seeds)
    counts = np.zeros(num_classes, np.int64)
    for i in range(0, len(z), batch):
        img = G.synthesis(G.broadcast(G.mapping(z[i:i + batch], truncation)), noise_mode="const")
        counts += np.bincount(label_fn(img.float()).numpy().ravel(), minlength=num_classes)[:num_classes]
    return counts


def ablation_effect(G, label_fn, num_classes: int, seeds: Sequence[int], level: int, units: Sequence[int],
                    truncation: float = 1.0) -> dict:
    """Class pixel counts before and after ablating `units` of `level`, and the relative change per class."""
    before = class_pixels(G, label_fn, num_classes, seeds, truncation)
    with ablated(G, level, units):
        after = class_pixels(G, label_fn, num_classes, seeds, truncation)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.where(before > 0, (after - before) / np.maximum(before, 1), np.nan)
    return {"before": before, "after": after, "change": change}


def random_units(num_units: int, n: int, exclude: Sequence[int] = (), seed: int = 0) -> list[int]:
    """n units drawn at random (fixed seed) from those not in exclude: the ablation control."""
    pool = np.setdiff1d(np.arange(num_units), np.asarray(list(exclude), dtype=np.int64))
    return [int(u) for u in np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)]

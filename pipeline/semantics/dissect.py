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

SELECT_SEED_START = 2_000_000  # samples that rank units by their causal effect (neither dissection nor evaluation)


@torch.no_grad()
def unit_class_iou(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int, seeds: Sequence[int],
                   quantile: float = 0.99, truncation: float = 1.0, batch: int = 32,
                   threshold_samples: int = 200, progress: Callable[[int], object] | None = None
                   ) -> list[np.ndarray]:
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
        if progress is not None:
            progress(len(labels))
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


def ablated(G, level: int, units: Sequence[int], values: torch.Tensor | None = None):
    """Within the block, level `level`'s conv1 outputs zero in `units` (a forward hook, removed after),
    or the constant `values` [len(units)] (e.g. each unit's mean: `unit_stats`) when given."""
    idx = torch.as_tensor(list(units), dtype=torch.long)
    fill = None if values is None else torch.as_tensor(values, dtype=torch.float32).view(1, -1, 1, 1)
    if fill is not None and fill.shape[1] != len(idx):
        raise ValueError(f"ablated: {len(idx)} units but {fill.shape[1]} values")

    def change(out):
        out[:, idx] = 0 if fill is None else fill.to(out.dtype)
        return out

    return _conv1_hook(G, level, change)


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
def unit_stats(G, seeds: Sequence[int], truncation: float = 1.0, quantile: float = 0.99
               ) -> list[dict[str, torch.Tensor]]:
    """Per level, every unit's mean activation and its `quantile` (the ablation and insertion values)."""
    _, feats = sample_with_features(G, list(seeds), truncation)
    out = []
    for f in feats:
        flat = f.transpose(0, 1).reshape(f.shape[1], -1)
        pick = torch.randperm(flat.shape[1], generator=torch.Generator().manual_seed(0))[:200_000]
        out.append({"mean": flat.mean(1), "high": torch.quantile(flat[:, pick], quantile, dim=1)})
    return out


ABLATE_VALUES = ("zero", "mean")
SELECTIONS = ("iou", "causal")


@torch.no_grad()
def unit_causal_effect(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int,
                       seeds: Sequence[int], level: int, values: torch.Tensor | None = None,
                       truncation: float = 1.0, progress=None) -> np.ndarray:
    """[units, classes]: the relative change of each class's segmented pixels when one unit of
    `level` alone is ablated (to zero, or to `values` [units]) on these samples: GAN Dissection's
    causal effect of a unit, one unit at a time; negative = the unit helps draw the class."""
    base = class_pixels(G, label_fn, num_classes, seeds, truncation)
    units = G.synthesis.level_shapes()[level][0]
    out = np.zeros((units, num_classes))
    for u in range(units):
        with ablated(G, level, [u], None if values is None else values[[u]]):
            out[u] = (class_pixels(G, label_fn, num_classes, seeds, truncation) - base) / np.maximum(base, 1)
        if progress is not None:
            progress(1)
    return out


SPECIFICITY = ("max", "mean")


def causal_scores(effects: np.ndarray, cls: int, weights: np.ndarray, specificity: str = "max") -> np.ndarray:
    """Per unit: its effect on class cls plus what it does to the other classes, lower = better:
    "max": the largest |effect| on another class with a weight > 0 (the goal's own test: every
    other class within a bound), "mean": the mean |effect| on the others weighted by `weights`
    [C] (e.g. their pixel share)."""
    w = np.asarray(weights, dtype=np.float64).copy()
    w[cls] = 0
    if specificity == "max":
        side = (np.abs(effects) * (w > 0)).max(1)
    elif specificity == "mean":
        side = (np.abs(effects) * w).sum(1) / max(w.sum(), 1e-12)
    else:
        raise ValueError(f"specificity: expected one of {SPECIFICITY}, got {specificity!r}")
    return effects[:, cls] + side


def causal_units(effects: np.ndarray, cls: int, n: int, weights: np.ndarray, specificity: str = "max"
                 ) -> list[int]:
    """The n units of lowest `causal_scores`: each alone removes most of class cls while moving
    the other classes least."""
    return [int(u) for u in np.argsort(causal_scores(effects, cls, weights, specificity), kind="stable")[:n]]


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
                    truncation: float = 1.0, values: torch.Tensor | None = None) -> dict:
    """Class pixel counts before and after ablating `units` of `level` (to zero, or to `values`),
    and the relative change per class."""
    before = class_pixels(G, label_fn, num_classes, seeds, truncation)
    with ablated(G, level, units, values):
        after = class_pixels(G, label_fn, num_classes, seeds, truncation)
    with np.errstate(invalid="ignore", divide="ignore"):
        change = np.where(before > 0, (after - before) / np.maximum(before, 1), np.nan)
    return {"before": before, "after": after, "change": change}


def random_units(num_units: int, n: int, exclude: Sequence[int] = (), seed: int = 0) -> list[int]:
    """n units drawn at random (fixed seed) from those not in exclude: the ablation control."""
    pool = np.setdiff1d(np.arange(num_units), np.asarray(list(exclude), dtype=np.int64))
    return [int(u) for u in np.random.default_rng(seed).choice(pool, size=min(n, len(pool)), replace=False)]


def ablation_verdict(effect: dict, cls: int, removed: float = 0.5, others: float = 0.1,
                     min_share: float = 0.01) -> dict:
    """Issue #15's goal for an ablation_effect result: class cls loses >= `removed` of its pixels
    while every other class with >= `min_share` of the pixels changes by < `others`."""
    before, change = effect["before"], effect["change"]
    share = before / max(before.sum(), 1)
    other = [c for c in range(len(before)) if c != cls and share[c] >= min_share]
    worst = max(other, key=lambda c: abs(change[c]), default=None)
    largest = 0.0 if worst is None else float(change[worst])
    gone = float(-change[cls]) if before[cls] else 0.0
    return {"removed": gone, "largest_other": largest, "largest_other_class": worst,
            "met": bool(gone >= removed and abs(largest) < others)}


def unit_table_csv(tables: Sequence[np.ndarray], names: Sequence[str]) -> str:
    """The unit-class table: one row per (level, unit) with its best class, that IoU, and every class's IoU."""
    lines = ["level,unit,best_class,best_iou," + ",".join(names)]
    for lv, t in enumerate(tables):
        for u, row in enumerate(t):
            b = int(row.argmax())
            lines.append(f"{lv},{u},{names[b]},{row[b]:.4f}," + ",".join(f"{v:.4f}" for v in row))
    return "\n".join(lines) + "\n"


def _box(region: Sequence[int], size: tuple[int, int]) -> torch.Tensor:
    x0, y0, x1, y1 = region
    mask = torch.zeros(size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _synth(G, seeds: Sequence[int], truncation: float) -> torch.Tensor:
    ws = G.broadcast(G.mapping(seed_latents(G, seeds), truncation))
    return G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)


@torch.no_grad()
def insertion_effect(G, label_fn: Callable[[torch.Tensor], torch.Tensor], seeds: Sequence[int], level: int,
                     units: Sequence[int], values: torch.Tensor, region: Sequence[int], cls: int,
                     truncation: float = 1.0, batch: int = 32) -> dict:
    """Share of the region (and of the rest) labelled cls before and after activating `units` in the
    region (x0, y0, x1, y1), and the mean absolute pixel change inside and outside it."""
    mask = _box(region, tuple(G.resolution))
    acc = dict.fromkeys(("inside_before", "inside_after", "outside_before", "outside_after", "inside_change",
                         "outside_change"), 0.0)
    seeds = list(seeds)
    for i in range(0, len(seeds), batch):
        s = seeds[i:i + batch]
        x = _synth(G, s, truncation)
        with activated(G, level, units, values, mask):
            y = _synth(G, s, truncation)
        lx, ly = label_fn(x) == cls, label_fn(y) == cls
        diff = (y - x).abs().mean(1)  # [b, H, W]
        for key, lab in (("before", lx), ("after", ly)):
            acc[f"inside_{key}"] += float(lab[:, mask].float().sum())
            acc[f"outside_{key}"] += float(lab[:, ~mask].float().sum())
        acc["inside_change"] += float(diff[:, mask].sum())
        acc["outside_change"] += float(diff[:, ~mask].sum())
    n_in, n_out = len(seeds) * int(mask.sum()), len(seeds) * int((~mask).sum())
    return {k: round(v / max(n_in if k.startswith("inside") else n_out, 1), 5) for k, v in acc.items()}


@torch.no_grad()
def ablation_rows(G, level: int, units: Sequence[int], control: Sequence[int], seeds: Sequence[int],
                  truncation: float = 1.0, values: torch.Tensor | None = None,
                  control_values: torch.Tensor | None = None) -> list[np.ndarray]:
    """uint8 [N, H, W, 3] rows: samples | the class's top units ablated | as many random units ablated."""
    from gan.images import to_uint8

    rows = [_synth(G, seeds, truncation)]
    for u, v in ((units, values), (control, control_values)):
        with ablated(G, level, u, v):
            rows.append(_synth(G, seeds, truncation))
    return [to_uint8(r) for r in rows]


@torch.no_grad()
def insertion_rows(G, level: int, units: Sequence[int], values: torch.Tensor, region: Sequence[int],
                   seeds: Sequence[int], truncation: float = 1.0) -> list[np.ndarray]:
    """uint8 [N, H, W, 3] rows: samples | the class's units activated inside the region (outlined)."""
    from gan.images import to_uint8

    mask = _box(region, tuple(G.resolution))
    before = to_uint8(_synth(G, seeds, truncation))
    with activated(G, level, units, values, mask):
        after = to_uint8(_synth(G, seeds, truncation)).copy()
    x0, y0, x1, y1 = region
    after[:, y0, x0:x1] = after[:, y1 - 1, x0:x1] = (255, 255, 0)
    after[:, y0:y1, x0] = after[:, y0:y1, x1 - 1] = (255, 255, 0)
    return [before, after]

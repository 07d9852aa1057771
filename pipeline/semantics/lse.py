"""Linear semantic extractor (LSE, after LinearGAN, Xu et al. CVPR 2021) and non-linear comparisons.

The generator's feature maps after each level's second conv are upsampled to the image
size and a 1x1 linear map turns them into per-class logits. Because bilinear upsampling
and a 1x1 convolution are both linear, "upsample, concatenate, 1x1 conv" equals "1x1 conv
per level, upsample, sum": the second form is computed (cheaper, same function class).
The non-linear extractor (NSE) puts a 3x3 conv + ReLU + 3x3 conv per level before the sum,
as the paper's comparison does. Labels come from a segmenter (segmenter.py) run on the
generated image; K labelled samples suffice (the paper's few-shot finding).

The features are read through `G.synthesis(ws, return_features=True)`; nothing in gan/
is changed.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.fileio import read_safetensors
from pipeline.semantics.segmenter import IGNORE, confusion, iou_per_class

FORMAT = "photoedit-lse-1"
KINDS = ("linear", "nonlinear")
EVAL_SEED_START = 1_000_000  # held-out GAN samples: seeds no training sample uses


@dataclass
class ExtractorConfig:
    kind: str = "linear"  # "linear" (LSE) or "nonlinear" (NSE)
    level_channels: list[int] = field(default_factory=list)  # channels of each generator level, coarsest first
    num_classes: int = 10
    image_size: list[int] = field(default_factory=lambda: [64, 64])  # (H, W) logits are upsampled to
    hidden: int = 32  # NSE only: width of each level's hidden conv


class SemanticExtractor(nn.Module):
    """Generator features [level0 .. last] -> class logits [N, C, H, W]."""

    def __init__(self, cfg: ExtractorConfig):
        super().__init__()
        if cfg.kind not in KINDS:
            raise ValueError(f"extractor kind: expected one of {KINDS}, got {cfg.kind!r}")
        self.cfg = cfg
        if cfg.kind == "linear":
            self.heads = nn.ModuleList(nn.Conv2d(c, cfg.num_classes, 1) for c in cfg.level_channels)
        else:
            self.heads = nn.ModuleList(
                nn.Sequential(nn.Conv2d(c, cfg.hidden, 3, padding=1), nn.ReLU(inplace=True),
                              nn.Conv2d(cfg.hidden, cfg.num_classes, 3, padding=1))
                for c in cfg.level_channels)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != len(self.heads):
            raise ValueError(f"extractor: expected {len(self.heads)} feature levels, got {len(features)}")
        size = tuple(self.cfg.image_size)
        out = None
        for head, f in zip(self.heads, features):
            y = F.interpolate(head(f), size=size, mode="bilinear", align_corners=False)
            out = y if out is None else out + y
        return out

    @torch.no_grad()
    def predict(self, features: Sequence[torch.Tensor], batch: int = 64) -> torch.Tensor:
        n = features[0].shape[0]
        return torch.cat([self([f[i:i + batch] for f in features]).argmax(1) for i in range(0, n, batch)])


# ---------------------------------------------------------------------------------- GAN samples

def check_label_map(ext: SemanticExtractor, labels, free: int, name: str, free_means: str) -> torch.Tensor:
    """A label map for `ext` as int64 [H, W]: at the extractor's image size, every value a class id
    or `free` (a pixel the caller leaves open: SCS's free layout pixels, SIE's kept ones), and at
    least one pixel not free. Anything else is a ValueError naming `name`."""
    t = torch.as_tensor(labels)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ValueError(f"{name} must be integers (class ids, {free} = {free_means}), got {t.dtype}")
    t = t.long()
    if tuple(t.shape) != tuple(ext.cfg.image_size):
        raise ValueError(f"{name} {list(t.shape)} differs from the extractor's image size {ext.cfg.image_size}")
    C = ext.cfg.num_classes
    bad = t[(t != free) & ((t < 0) | (t >= C))]
    if len(bad):
        raise ValueError(f"{name}: value {int(bad[0])} is neither a class id 0..{C - 1} nor {free} ({free_means})")
    if not (t != free).any():
        raise ValueError(f"{name}: every pixel is {free} ({free_means}): nothing painted")
    return t


def seed_latents(G, seeds: Sequence[int]) -> torch.Tensor:
    """z [N, z_dim] from numpy RandomState(seed), the same rule as `photoedit sample`."""
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(G.z_dim) for s in seeds])).float()


@torch.no_grad()
def sample_with_features(G, seeds: Sequence[int], truncation: float = 1.0, batch: int = 32
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Images [N, 3, H, W] in [-1, 1] and each level's features [N, C_l, h_l, w_l] (const noise)."""
    z = seed_latents(G, seeds)
    imgs, feats = [], None
    for i in range(0, len(z), batch):
        ws = G.broadcast(G.mapping(z[i:i + batch], truncation))
        img, fs = G.synthesis(ws, noise_mode="const", return_features=True)
        imgs.append(img.float())
        feats = [[f.float().contiguous()] for f in fs] if feats is None else [a + [f.float().contiguous()]
                                                                            for a, f in zip(feats, fs)]
    return torch.cat(imgs), [torch.cat(f) for f in feats]


# ---------------------------------------------------------------------------------- fitting

def fit_extractor(features: Sequence[torch.Tensor], labels: torch.Tensor, num_classes: int,
                  kind: str = "linear", steps: int = 300, lr: float = 3e-2, batch: int = 8, seed: int = 0,
                  hidden: int = 32) -> SemanticExtractor:
    """Fit an extractor on features [N, C_l, h, w] per level and labels int64 [N, H, W] (cross-entropy)."""
    torch.manual_seed(seed)
    cfg = ExtractorConfig(kind=kind, level_channels=[int(f.shape[1]) for f in features], num_classes=num_classes,
                          image_size=[int(labels.shape[1]), int(labels.shape[2])], hidden=hidden)
    ext = SemanticExtractor(cfg).train()
    opt = torch.optim.Adam(ext.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    n = len(labels)
    for _ in range(steps):
        idx = torch.from_numpy(rng.choice(n, size=min(batch, n), replace=False))
        loss = F.cross_entropy(ext([f[idx] for f in features]), labels[idx], ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return ext.eval().requires_grad_(False)


def extractor_iou(ext: SemanticExtractor, features: Sequence[torch.Tensor], labels: torch.Tensor
                  ) -> tuple[float, np.ndarray]:
    """mIoU (over classes present) and per-class IoU of the extractor's argmax vs labels."""
    ious = iou_per_class(confusion(ext.predict(features).numpy(), labels.numpy(), ext.cfg.num_classes))
    return float(np.nanmean(ious)), ious


def train_lse(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int, k: int = 8,
              kind: str = "linear", seed: int = 0, steps: int = 300, truncation: float = 1.0
              ) -> tuple[SemanticExtractor, list[int]]:
    """Sample K GAN images (seeds seed..seed+K-1), label them with label_fn, fit an extractor."""
    seeds = list(range(seed, seed + k))
    images, feats = sample_with_features(G, seeds, truncation)
    return fit_extractor(feats, label_fn(images), num_classes, kind=kind, steps=steps, seed=seed), seeds


def k_table(G, label_fn: Callable[[torch.Tensor], torch.Tensor], num_classes: int, ks: Sequence[int],
            kinds: Sequence[str] = KINDS, eval_n: int = 100, steps: int = 300, seed: int = 0,
            truncation: float = 1.0, log=None) -> list[dict]:
    """mIoU on eval_n held-out GAN samples for every (kind, K); features of the largest K are
    sampled once and the smaller K use their first rows. One dict per row."""
    kmax = max(ks)
    images, feats = sample_with_features(G, range(seed, seed + kmax), truncation)
    labels = label_fn(images)
    ev_images, ev_feats = sample_with_features(G, range(EVAL_SEED_START, EVAL_SEED_START + eval_n), truncation)
    ev_labels = label_fn(ev_images)
    rows = []
    for kind in kinds:
        for k in ks:
            ext = fit_extractor([f[:k] for f in feats], labels[:k], num_classes, kind=kind, steps=steps, seed=seed)
            miou, ious = extractor_iou(ext, ev_feats, ev_labels)
            rows.append({"kind": kind, "k": k, "miou": miou,
                         "iou": [None if np.isnan(v) else round(float(v), 4) for v in ious]})
            if log:
                log(rows[-1])
    return rows


# ---------------------------------------------------------------------------------- files

def save_extractor(ext: SemanticExtractor, path: str | Path, labels: dict[int, str], provenance: dict) -> Path:
    """Weights + config + class names + where it came from (generator hash, K, seeds, scores)."""
    from safetensors.torch import save

    from pipeline.fileio import atomic_write_bytes

    state = {k: v.detach().cpu().contiguous() for k, v in ext.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(asdict(ext.cfg)),
            "labels": json.dumps({str(k): v for k, v in sorted(labels.items())}),
            "provenance": json.dumps(provenance, default=str)}
    atomic_write_bytes(path, save(state, metadata=meta))
    return Path(path)


def load_extractor(path: str | Path) -> tuple[SemanticExtractor, dict[int, str], dict]:
    meta, state = read_safetensors(path, FORMAT, "semantic extractor", "make one with `photoedit lse`")
    ext = SemanticExtractor(ExtractorConfig(**json.loads(meta["config"])))
    ext.load_state_dict(state, strict=True)
    labels = {int(k): v for k, v in json.loads(meta["labels"]).items()}
    return ext.eval().requires_grad_(False), labels, json.loads(meta.get("provenance", "{}"))

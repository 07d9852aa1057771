"""A small semantic segmenter: world renders (or a user's labelled folder) -> per-pixel classes.

It is the labeller of GAN samples for the linear semantic extractor (lse.py) and GAN
dissection (dissect.py), as LinearGAN's evaluation labels samples with a pretrained
segmenter. The file is self-describing: safetensors weights + JSON config and class
names in the header, so `load_segmenter(path)` needs nothing else.

Data: `world_data(n, size)` renders seeds with their label maps; `folder_data(dir)` reads
DIR/images/*.png|jpg with DIR/masks/<same stem>.png (one class id per pixel, 255 =
unlabelled) and the class names from DIR/labels.json or DIR/manifest.json ("labels":
{"0": "sky", ...}); a folder written by `photoedit world` is such a folder.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.fileio import read_safetensors

FORMAT = "photoedit-segmenter-1"
IGNORE = 255  # label value that no loss or score counts


class SegmenterError(ValueError):
    """Bad segmenter file or labelled data; the message names the file."""


@dataclass
class SegmenterConfig:
    num_classes: int = 10  # classes predicted (ids 0..num_classes-1)
    width: int = 32  # channels at full resolution; x2 at 1/2, x4 at 1/4


@dataclass
class SegmenterTrainConfig:
    steps: int = 600  # optimiser steps
    batch: int = 16  # images per step
    lr: float = 3e-3  # Adam learning rate (cosine decay to 5%)
    seed: int = 0  # weight init and batch order


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Segmenter(nn.Module):
    """Two-scale encoder-decoder (1, 1/2, 1/4 resolution) with skips; input in [-1, 1]."""

    def __init__(self, cfg: SegmenterConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.enc1 = nn.Sequential(_block(3, w), _block(w, w))
        self.enc2 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_block(2 * w, 4 * w, 2), _block(4 * w, 4 * w), _block(4 * w, 4 * w))
        self.dec2 = _block(4 * w + 2 * w, 2 * w)
        self.dec1 = _block(2 * w + w, w)
        self.head = nn.Conv2d(w, cfg.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] (H, W divisible by 4) -> logits [N, num_classes, H, W]."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"segmenter input: expected [N, 3, H, W] with H, W divisible by 4, got {list(x.shape)}")
        f1 = self.enc1(x)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        d2 = self.dec2(torch.cat([F.interpolate(f3, size=f2.shape[-2:], mode="bilinear", align_corners=False), f2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=f1.shape[-2:], mode="bilinear", align_corners=False), f1], 1))
        return self.head(d1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
        """Images [N, 3, H, W] in [-1, 1] -> class ids int64 [N, H, W] (eval mode, batched)."""
        was = self.training
        self.eval()
        out = [self(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)]
        self.train(was)
        return torch.cat(out)


# ---------------------------------------------------------------------------------- data

def world_data(n: int, size: tuple[int, int], first_seed: int = 0, condition: str = "mixed"
               ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """n world renders: images uint8 [n, H, W, 3], label maps uint8 [n, H, W], class names."""
    from pipeline.progress import progress_bar

    from pipeline import world

    h, w = size
    images = np.empty((n, h, w, 3), np.uint8)
    masks = np.empty((n, h, w), np.uint8)
    for i in progress_bar(range(n), desc="render world + labels", unit="img"):
        r = world.render(world.sample_scene(first_seed + i, condition), (h, w))
        images[i], masks[i] = r.image, r.masks
    return images, masks, dict(world.LABELS)


def _folder_labels(root: Path) -> dict[int, str]:
    for name in ("labels.json", "manifest.json"):
        p = root / name
        if p.is_file():
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise SegmenterError(f"{p}: not readable JSON ({e})") from None
            d = d.get("labels", d) if name == "manifest.json" else d
            if not isinstance(d, dict) or not d:
                continue
            try:
                return {int(k): str(v) for k, v in d.items()}
            except ValueError:
                raise SegmenterError(f"{p}: labels must map class ids to names, e.g. {{\"0\": \"sky\"}}") from None
    raise SegmenterError(f"{root}: no class names: write labels.json ({{\"0\": \"sky\", \"1\": \"road\", ...}})")


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
        im.load()
        return im
    except (OSError, UnidentifiedImageError) as e:
        raise SegmenterError(f"{path}: not a readable image ({e})") from None


def folder_data(root: str | Path, size: tuple[int, int] | None = None
                ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """A labelled folder (images/, masks/, labels.json) -> images, label maps, class names.

    Images are resized (bilinear) and masks (nearest) to `size` when given, else all must
    share the first image's size.
    """
    from PIL import Image

    root = Path(root)
    if not (root / "images").is_dir() or not (root / "masks").is_dir():
        raise SegmenterError(f"{root}: expected images/ and masks/ subfolders (masks/<stem>.png per image)")
    labels = _folder_labels(root)
    files = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SegmenterError(f"{root / 'images'}: no .png or .jpg images")
    imgs, masks = [], []
    for f in files:
        m = root / "masks" / (f.stem + ".png")
        if not m.is_file():
            raise SegmenterError(f"{f}: no label map {m}")
        im, mk = _open_image(f).convert("RGB"), _open_image(m)
        if mk.mode not in ("L", "P"):
            raise SegmenterError(f"{m}: label map must be a one-channel PNG of class ids, got mode {mk.mode}")
        if im.size != mk.size:
            raise SegmenterError(f"{m}: size {mk.size} differs from its image {f.name} {im.size}")
        target = (size[1], size[0]) if size else (imgs[0].shape[1], imgs[0].shape[0]) if imgs else im.size
        if im.size != target:
            if size is None:
                raise SegmenterError(f"{f}: size {im.size} differs from the first image's {target}; pass --size")
            im, mk = im.resize(target, Image.BILINEAR), mk.resize(target, Image.NEAREST)
        a = np.asarray(mk, np.uint8)
        bad = np.setdiff1d(np.unique(a), [*labels, IGNORE])
        if bad.size:
            raise SegmenterError(f"{m}: class ids {bad.tolist()} not in the labels {sorted(labels)}")
        imgs.append(np.asarray(im, np.uint8))
        masks.append(a)
    return np.stack(imgs), np.stack(masks), labels


# ---------------------------------------------------------------------------------- training

def train_segmenter(images: np.ndarray, masks: np.ndarray, labels: dict[int, str],
                    cfg: SegmenterConfig | None = None, train: SegmenterTrainConfig | None = None,
                    log=None) -> tuple[Segmenter, list[float]]:
    """Fit a Segmenter on uint8 images [N, H, W, 3] and label maps [N, H, W]; returns it and the loss per step."""
    from gan.images import from_uint8

    train = train or SegmenterTrainConfig()
    cfg = cfg or SegmenterConfig(num_classes=max(labels) + 1)
    if images.shape[:3] != masks.shape:
        raise ValueError(f"images {images.shape} and masks {masks.shape} disagree")
    torch.manual_seed(train.seed)
    net = Segmenter(cfg).train()
    opt = torch.optim.Adam(net.parameters(), lr=train.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, train.steps, eta_min=train.lr * 0.05)
    rng = np.random.default_rng(train.seed)
    losses = []
    for step in range(train.steps):
        idx = rng.choice(len(images), size=min(train.batch, len(images)), replace=False)
        x = from_uint8(images[idx])
        y = torch.from_numpy(masks[idx].astype(np.int64))
        if rng.random() < 0.5:  # street scenes are left-right symmetric
            x, y = x.flip(-1), y.flip(-1)
        loss = F.cross_entropy(net(x), y, ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log and (step % 50 == 0 or step == train.steps - 1):
            log(step, losses[-1])
    return net.eval(), losses


def confusion(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """[C, C] pixel counts (row = target class, column = predicted), IGNORE pixels skipped."""
    p = np.asarray(pred).ravel().astype(np.int64)
    t = np.asarray(target).ravel().astype(np.int64)
    keep = t != IGNORE
    return np.bincount(t[keep] * num_classes + p[keep], minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU per class from a confusion matrix; NaN for classes absent from both target and prediction."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mean_iou(pred, target, num_classes: int) -> float:
    """Mean over the classes present in target or prediction."""
    return float(np.nanmean(iou_per_class(confusion(pred, target, num_classes))))


def evaluate_segmenter(net: Segmenter, train_images: np.ndarray, train_masks: np.ndarray,
                       images: np.ndarray, masks: np.ndarray, num_classes: int) -> dict:
    """Held-out mIoU and per-class IoU, beside the baseline that predicts, at every pixel,
    the class most frequent there in the training label maps (the layout prior)."""
    from gan.images import from_uint8

    pred = net.predict(from_uint8(images)).numpy()
    counts = np.stack([(train_masks == c).sum(0) for c in range(num_classes)])  # [C, H, W]
    prior = np.broadcast_to(counts.argmax(0), masks.shape)
    ious = iou_per_class(confusion(pred, masks, num_classes))
    return {"miou": float(np.nanmean(ious)), "baseline_miou": mean_iou(prior, masks, num_classes),
            "iou": [None if np.isnan(v) else round(float(v), 4) for v in ious]}


# ---------------------------------------------------------------------------------- files

def save_segmenter(net: Segmenter, labels: dict[int, str], path: str | Path, extra: dict | None = None) -> Path:
    from safetensors.torch import save

    from pipeline.fileio import atomic_write_bytes

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(dataclasses.asdict(net.cfg)),
            "labels": json.dumps({str(k): v for k, v in sorted(labels.items())}),
            "extra": json.dumps(extra or {}, default=str)}
    path = Path(path)
    atomic_write_bytes(path, save(state, metadata=meta))
    return path


def load_segmenter(path: str | Path) -> tuple[Segmenter, dict[int, str]]:
    """Rebuild a Segmenter from its file alone (strict), in eval mode, with its class names."""
    path = Path(path)
    try:
        meta, state = read_safetensors(path, FORMAT, "segmenter", "train one with `photoedit train-segmenter`")
    except ValueError as e:
        raise SegmenterError(str(e)) from None
    try:
        cfg = SegmenterConfig(**json.loads(meta["config"]))
        labels = {int(k): v for k, v in json.loads(meta["labels"]).items()}
    except (KeyError, TypeError, ValueError) as e:
        raise SegmenterError(f"{path}: bad segmenter header ({e})") from None
    net = Segmenter(cfg)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SegmenterError(f"{path}: weights do not match the stored config: {e}") from None
    return net.eval().requires_grad_(False), labels

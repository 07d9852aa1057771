"""Semantic image editing (SIE, after LinearGAN): repaint a region of a GAN image with another class.

The user paints class ids over a GAN sample's label map (`target_labels`, -1 = keep).
The linear semantic extractor (lse.py) makes the generator's class map differentiable, so
the W+ code is optimised (Adam) until the extractor's labels of G(w+) match the painted
layout: inside the painted region the painted class, outside it the labels the extractor
gave the original image (LinearGAN's fused-label cross-entropy, with a pull toward the
starting code). Two terms keep the rest of the image: the pixel error outside the region
against the original image, and the pull toward the starting code. With blend="features"
the generator's own features outside the region are kept at every level instead, so the
pixels outside stay exactly (on the quickstart GAN the only setting that met issue #15's
SIE goal, for sky; docs/semantics-lse.md section 7).

    from pipeline.semantics.sie import semantic_edit, w_plus_for_seed
    ws = w_plus_for_seed(G, 7)                          # [1, num_ws, w_dim]
    paint = torch.full(ext.cfg.image_size, -1)           # -1 = keep
    paint[:20, :] = 0                                    # class 0 (e.g. sky) over the top rows
    res = semantic_edit(G, ext, ws, paint, steps=100)    # res.image [1,3,H,W] in [-1,1], res.w_plus, res.history

`edit_scores` measures an edit: the painted classes' IoU in the edited image's labels
inside the painted region, and the PSNR outside the region against the original image.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.semantics.lse import SemanticExtractor, check_label_map, seed_latents

KEEP = -1  # target_labels value: leave this pixel as it is
BLENDS = ("none", "features")
PSNR_CAP = 100.0  # dB reported for identical pixels


@dataclass
class SIEResult:
    w_plus: torch.Tensor  # [1, num_ws, w_dim], the edited code (detached)
    image: torch.Tensor  # [1, 3, H, W] in [-1, 1], G(w_plus) with constant noise
    labels: torch.Tensor  # int64 [H, W], the extractor's labels of the edited image
    before_image: torch.Tensor  # [1, 3, H, W], G(starting code)
    before_labels: torch.Tensor  # int64 [H, W], the extractor's labels of the starting image
    history: list[dict] = field(default_factory=list)  # per step: loss, ce_region, ce_keep, pixel


def w_plus_for_seed(G, seed: int, truncation: float = 1.0) -> torch.Tensor:
    """The W+ code [1, num_ws, w_dim] of the sample `photoedit sample` draws for this seed."""
    with torch.no_grad():
        return G.broadcast(G.mapping(seed_latents(G, [seed]), truncation))


def as_w_plus(G, w: torch.Tensor) -> torch.Tensor:
    """Accept w [w_dim], [1, w_dim], ws [num_ws, w_dim] or [1, num_ws, w_dim]; return [1, num_ws, w_dim]."""
    w = torch.as_tensor(w, dtype=torch.float32)
    shape = tuple(w.shape)
    if shape in ((G.w_dim,), (1, G.w_dim)):
        return G.broadcast(w.reshape(1, G.w_dim))
    if shape in ((G.num_ws, G.w_dim), (1, G.num_ws, G.w_dim)):
        return w.reshape(1, G.num_ws, G.w_dim)
    raise ValueError(f"latent of shape {list(shape)}: expected w [{G.w_dim}] or W+ [{G.num_ws}, {G.w_dim}] "
                     f"(optionally with a leading 1)")


def render(G, ext: SemanticExtractor, w_plus: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image [1, 3, H, W] in [-1, 1], the extractor's labels int64 [H, W]) of a W+ code, no gradient."""
    with torch.no_grad():
        image, feats = G.synthesis(as_w_plus(G, w_plus), noise_mode="const", return_features=True)
        return image.float(), ext(feats).argmax(1)[0]


def check_target(ext: SemanticExtractor, target_labels: torch.Tensor) -> torch.Tensor:
    """Validate a painted layout: int [H, W] at the extractor's size, values -1 or a class id."""
    return check_label_map(ext, target_labels, KEEP, "target labels", "keep")


def _blend_points(G) -> list:
    """The modules whose outputs are blended: each level's conv0 (if any), conv1 and toRGB, and the
    upsampling of the RGB skip sum (so the final image is itself a blend at full resolution)."""
    mods = [G.synthesis.upsample_rgb]
    for level in G.synthesis.levels:
        mods += [m for m in (getattr(level, "conv0", None), level.conv1, level.torgb) if m is not None]
    return mods


@contextmanager
def _hooks(modules, fn):
    handles = [m.register_forward_hook(lambda mod, _i, out, m=m: fn(m, out)) for m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _original_outputs(G, ws0: torch.Tensor) -> dict:
    """Every blend point's output for the starting code (no gradient)."""
    outs = {}

    def keep(m, out):
        outs[m, tuple(out.shape[-2:])] = out.detach()

    with torch.no_grad(), _hooks(_blend_points(G), keep):
        G.synthesis(ws0, noise_mode="const")
    return outs


def _blended(G, originals: dict, region: torch.Tensor):
    """Within the block, every blend point outputs mask * edited + (1 - mask) * original (spatial
    feature blending, as in Collins et al.'s local editing). The mask is the region max-pooled to
    that point's resolution: a coarse cell touching the region is edited whole, so the region
    gets fully edited features (area-averaged masks, tried first, held its border cells half
    original: region IoU 0.47 vs 0.64 on the quickstart GAN). At full resolution the mask is the
    region itself, so pixels outside it are the original's exactly."""
    masks = {}

    def mix(m, out):
        size = tuple(out.shape[-2:])
        if size not in masks:
            masks[size] = F.adaptive_max_pool2d(region[None, None].float(), size)
        a = masks[size]
        return a * out + (1 - a) * originals[m, size]

    return _hooks(_blend_points(G), mix)


def semantic_edit(G, ext: SemanticExtractor, w_plus: torch.Tensor, target_labels: torch.Tensor,
                  steps: int = 100, lr: float = 0.01, keep_weight: float = 1.0, pixel_weight: float = 10.0,
                  reg_weight: float = 1e-3, progress: Callable[[int, dict], None] | None = None,
                  blend: str = "none", space: str = "wplus") -> SIEResult:
    """Optimise the W+ code so the painted pixels take their class and the rest stays.

    target_labels: int64 [H, W] (the extractor's image size); -1 = keep, else a class id.
    Loss per step = CE(extractor logits, painted class) over the painted pixels
                  + keep_weight  * CE(extractor logits, original labels) over the other pixels
                  + pixel_weight * mean squared error to the original image over the other pixels
                  + reg_weight   * sum of squares of (w_plus - starting w_plus) / num_ws.
    progress(step, row) is called after every step (for bars / a browser).
    blend="features": the generator's features and RGB outputs outside the region are replaced
    by the original's at every level while optimising and in the result, so the pixels outside
    stay exactly (the keep and pixel terms then matter little; weights 0 free the region most);
    "none" (default): LinearGAN's plain edit, where only the loss terms hold the outside.
    space="wplus" (default) moves every layer's code freely; "w" moves them all by one shared
    offset (fewer degrees of freedom, the change stays a generator-like one).
    """
    target = check_target(ext, target_labels)
    if steps < 0 or lr <= 0:
        raise ValueError("steps must be >= 0 and lr > 0")
    if space not in ("wplus", "w"):
        raise ValueError(f"space: expected 'wplus' or 'w', got {space!r}")
    if blend not in BLENDS:
        raise ValueError(f"blend: expected one of {BLENDS}, got {blend!r}")
    ws0 = as_w_plus(G, w_plus).detach()
    before_image, before_labels = render(G, ext, ws0)
    region = target != KEEP
    originals = _original_outputs(G, ws0) if blend == "features" else None

    def blending():
        return _blended(G, originals, region) if originals is not None else _nothing()

    keep = ~region
    fused = torch.where(region, target, before_labels)
    var = (ws0.clone() if space == "wplus" else torch.zeros(1, 1, ws0.shape[2])).requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    keep_px = keep[None, None].float()
    n_keep = float(keep.sum()) * 3
    history = []
    for step in range(steps):
        ws = var if space == "wplus" else ws0 + var
        with blending():
            image, feats = G.synthesis(ws, noise_mode="const", return_features=True)
        ce = F.cross_entropy(ext(feats), fused[None], reduction="none")[0]
        ce_region = ce[region].mean()
        ce_keep = ce[keep].mean() if n_keep else ce.new_zeros(())
        pixel = (((image - before_image) ** 2) * keep_px).sum() / n_keep if n_keep else ce.new_zeros(())
        reg = ((ws - ws0) ** 2).sum() / ws.shape[1]
        loss = ce_region + keep_weight * ce_keep + pixel_weight * pixel + reg_weight * reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        row = {"step": step + 1, "loss": loss.item(), "ce_region": ce_region.item(), "ce_keep": ce_keep.item(),
               "pixel": pixel.item()}
        history.append(row)
        if progress:
            progress(step + 1, row)
    w_edit = (var if space == "wplus" else ws0 + var).detach()
    with blending():
        image, labels = render(G, ext, w_edit)
    return SIEResult(w_plus=w_edit, image=image, labels=labels, before_image=before_image,
                     before_labels=before_labels, history=history)


@contextmanager
def _nothing():
    yield


def psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """PSNR in dB of two images in [-1, 1] ([1, 3, H, W]) over the pixels `where` (bool [H, W]), on a 0..1 scale;
    capped at PSNR_CAP (identical pixels), so JSON files stay plain numbers."""
    d = ((a.float() - b.float()) / 2) ** 2
    if where is not None:
        d = d[..., where]
    mse = float(d.mean()) if d.numel() else 0.0
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(1.0 / mse))


def edit_scores(label_fn: Callable[[torch.Tensor], torch.Tensor], before_image: torch.Tensor,
                after_image: torch.Tensor, target_labels: torch.Tensor, num_classes: int | None = None) -> dict:
    """How well an edit did, judged by an independent labeller (e.g. the segmenter's predict).

    region_fraction: share of painted pixels whose label is the painted class, before and after;
    region_iou: per painted class c, |painted as c and labelled c after| / |painted as c, or newly
    labelled c outside the painting| (pixels labelled c before and outside the painting count
    neither way, so a class already elsewhere in the image does not inflate it); region_miou: its
    mean; psnr_outside: dB between the original and edited image over the unpainted pixels."""
    target = torch.as_tensor(target_labels).long()
    region = target != KEEP
    lab_before = label_fn(before_image)[0]
    lab_after = label_fn(after_image)[0]
    ious = {}
    for c in sorted(int(v) for v in target[region].unique()):
        painted = target == c
        now = lab_after == c
        new_outside = now & ~region & (lab_before != c)
        inter = (painted & now).sum()
        ious[c] = float(inter) / float((painted | new_outside).sum())
    return {
        "region_pixels": int(region.sum()),
        "region_fraction_before": float((lab_before[region] == target[region]).float().mean()),
        "region_fraction": float((lab_after[region] == target[region]).float().mean()),
        "region_iou": ious,
        "region_miou": float(np.mean(list(ious.values()))),
        "psnr_outside": psnr(before_image, after_image, ~region),
    }

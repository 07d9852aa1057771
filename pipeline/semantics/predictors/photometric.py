"""`photometric` predictor: lighting/weather attributes from image statistics, no weights.

Works on any photo size (images larger than 256 px on the long side are area-averaged
down first: the statistics are global, so detail beyond that only costs time).

Statistics (RGB in [0, 1], luminance Y = 0.2126 R + 0.7152 G + 0.0722 B, Rec. 709):
    luminance      mean Y
    contrast       std Y (RMS contrast)
    colourfulness  Hasler & Suesstrunk (2003): sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mu_rg^2 + mu_yb^2)
                   with rg = R - G, yb = (R + G)/2 - B   (their M, on the 0..1 scale)
    warmth         mean (R - B) over pixels brighter than the image median (warm light, not shadows)
    blue_sky       fraction of the upper 40% whose blue exceeds red by > 0.08 and is bright (Y > 0.3)
    grey_sky       fraction of the upper 40% that is bright (Y > 0.45) and unsaturated (max-min < 0.1)
    haze           mean dark channel (He, Sun & Tang 2009: min over RGB then over a patch of
                   ~1/20 of the short side) over the lower 60%: haze/fog lifts the darkest
                   channel of near objects toward the airlight
    dark_fraction  fraction of pixels with Y < 0.12
    white_ground   fraction of the lower 50% that is unsaturated (max-min < 0.12) and at least 0.8x as
                   bright as the upper 40% on average: snow cover (relative to the sky, so that a
                   camera's exposure, which lifts dim scenes, does not decide it)

Also: sky_luminance (mean Y of the upper 40%), saturation (mean max-min over RGB),
rel_contrast = contrast / luminance, rel_haze = haze / airlight (airlight = 99th
percentile of Y, as He et al. estimate it from the brightest pixels).

Attributes (each in [0, 1]; s(x) = logistic(x); constants chosen by hand on 256 held-out
procedural-world renders (seeds >= 1e9) and checked on the 15 real photos in
../shared/realphotos: rank correlation with the world's ground truth, world version 5 (its
metered camera): golden_hour 0.43, snowy 0.45, foggy 0.49, night 0.59, overcast 0.74, sunny 0.76
(version 4: 0.30 .. 0.78); the real NIGHT photo scores night 0.99, every other one <= 0.29):
    night       = s(12 (0.22 - luminance) + 6 (dark_fraction - 0.45))
    day         = 1 - night
    sunny       = day * s(6 blue_sky + 8 contrast - 10 warmth - 4 rel_haze - 4 grey_sky - 0.5)
                  (sunlit streets under blue sky read cool in their bright pixels)
    overcast    = day * s(6 grey_sky - 8 blue_sky - 6 contrast + 1.5 - 10 max(haze - 0.55, 0))
    golden_hour = day * s(25 (warmth - 0.12)) * s(8 (luminance - 0.18))
    foggy       = day * s(8 (rel_haze - 0.6) - 30 (contrast - 0.1))
    snowy       = day * s(15 (white_ground - 0.3))
                  (rank correlation 0.45 on world version 5's renders; the absolute "near-white"
                  ground of before, Y > 0.8, fell to 0.18 once the world's camera metered)
Known weakness: white facades in the lower half read as snow.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.semantics.predictors import check_images

ATTRIBUTES = ["sunny", "overcast", "night", "golden_hour", "foggy", "snowy"]
MAX_SIDE = 256  # statistics are global: work at most at this size


def photometric_stats(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The documented statistics, each a tensor [N]."""
    x = (check_images(images).clamp(-1, 1) + 1) / 2
    x = _shrink(x)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    sat = x.amax(1) - x.amin(1)
    h = x.shape[2]
    top, bottom40, bottom50 = slice(0, max(1, int(0.4 * h))), slice(int(0.4 * h), h), slice(h // 2, h)
    flat = lum.flatten(1)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = (rg.flatten(1).std(1) ** 2 + yb.flatten(1).std(1) ** 2).sqrt() + \
        0.3 * (rg.flatten(1).mean(1) ** 2 + yb.flatten(1).mean(1) ** 2).sqrt()
    bright = (lum >= flat.median(1).values[:, None, None]).float()
    warmth = ((r - b) * bright).flatten(1).sum(1) / bright.flatten(1).sum(1).clamp_min(1)
    airlight = torch.quantile(flat, 0.99, dim=1).clamp_min(0.05)
    haze = dark_channel(x)[:, bottom40].flatten(1).mean(1)
    return {
        "luminance": flat.mean(1),
        "sky_luminance": lum[:, top].flatten(1).mean(1),
        "saturation": sat.flatten(1).mean(1),
        "rel_contrast": flat.std(1) / flat.mean(1).clamp_min(0.02),
        "rel_haze": haze / airlight,
        "contrast": flat.std(1),
        "colourfulness": colourful,
        "warmth": warmth,
        "blue_sky": _frac((b[:, top] - r[:, top] > 0.08) & (lum[:, top] > 0.3)),
        "grey_sky": _frac((lum[:, top] > 0.45) & (sat[:, top] < 0.1)),
        "haze": haze,
        "dark_fraction": _frac(lum < 0.12),
        "white_ground": _frac((lum[:, bottom50] > 0.8 * lum[:, top].mean((1, 2))[:, None, None])
                              & (sat[:, bottom50] < 0.12)),
    }


def combine(st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The documented formulas from statistics to attributes in [0, 1]."""
    s = torch.sigmoid
    night = s(12 * (0.22 - st["luminance"]) + 6 * (st["dark_fraction"] - 0.45))
    day = 1 - night
    return {
        "sunny": day * s(6 * st["blue_sky"] + 8 * st["contrast"] - 10 * st["warmth"]
                         - 4 * st["rel_haze"] - 4 * st["grey_sky"] - 0.5),
        "overcast": day * s(6 * st["grey_sky"] - 8 * st["blue_sky"] - 6 * st["contrast"] + 1.5
                            - 10 * (st["haze"] - 0.55).clamp_min(0)),
        "night": night,
        "golden_hour": day * s(25 * (st["warmth"] - 0.12)) * s(8 * (st["luminance"] - 0.18)),
        "foggy": day * s(8 * (st["rel_haze"] - 0.6) - 30 * (st["contrast"] - 0.1)),
        "snowy": day * s(15 * (st["white_ground"] - 0.3)),
    }


def dark_channel(x: torch.Tensor) -> torch.Tensor:
    """min over RGB, then a min filter of ~1/20 of the short side (odd, >= 3): [N, H, W]."""
    k = max(3, (min(x.shape[2:]) // 20) | 1)
    m = x.amin(1, keepdim=True)
    return -F.max_pool2d(-m, k, stride=1, padding=k // 2)[:, 0]


def _frac(mask: torch.Tensor) -> torch.Tensor:
    return mask.float().flatten(1).mean(1)


def _shrink(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return x
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return F.interpolate(x, size=size, mode="area")


class PhotometricPredictor:
    """No weights; see the module docstring for every formula."""

    name = "photometric"

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)
        self.attributes = list(ATTRIBUTES)

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        out = combine(photometric_stats(images.to(self.device)))
        return {k: v.float().cpu().numpy() for k, v in out.items()}

"""PSNR and SSIM on image tensors in [-1, 1] (per image), with no downloaded weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two [N, C, H, W] tensors of one shape, got {list(a.shape)}, {list(b.shape)}")


def psnr(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """PSNR in dB per image [N], on [0, 1]-scaled images (peak 1)."""
    _check(a, b)
    mse = ((a.float() - b.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / (mse + eps))


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM (Wang et al. 2004, Gaussian window) per image [N], averaged over channels.

    Images smaller than the window use a window that fits (odd, >= 3).
    """
    _check(a, b)
    x, y = (a.float() + 1) / 2, (b.float() + 1) / 2
    window = max(3, min(window, min(x.shape[-2:]) - (1 - min(x.shape[-2:]) % 2)))
    g = _gaussian_window(window, sigma, x.device, x.dtype)
    c = x.shape[1]
    kh = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, 'valid' like the paper
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx**2
    vy = blur(y * y) - my**2
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)

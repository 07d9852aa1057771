"""Latent-space smoothness and linearity: perceptual path length (PPL) and attribute linearity (ALS).

PPL (Karras et al. 2019, StyleGAN, sec. 4.2), in W: pairs of latents z0, z1 are mapped to
w0, w1; a point t on the segment (t ~ U[0,1] for "full" sampling, t = 0 for "end") and
a point epsilon = 1e-4 further are both synthesised (same stored noise), and
d(G(lerp(w0,w1,t)), G(lerp(w0,w1,t+eps))) / eps^2 is averaged over the pairs after
dropping those below the 1st and above the 99th percentile, as published. The distance
is the caller's: LPIPS itself (`gan.lpips.load_lpips`, StyleGAN's choice) when the user
has LPIPS's linear-layer file and a torchvision VGG16/AlexNet state dict on disk;
otherwise `feature_distance` below, the LPIPS form without LPIPS's learned per-channel
weights (unit-normalised features of a local encoder, squared difference, spatial mean,
summed over stages), or `pixel_distance`. Nothing is downloaded. Lower is smoother.
Figures are comparable only under the same distance, resolution and n.

ALS (attribute linearity). Karmali et al. (ECCV 2022) introduce an Attribute Linearity
Score; its exact formula was not available to us, so this is the closest well-defined
measure, stated as ours: samples are moved along an edit direction at evenly spaced
strengths a_0..a_K, the attribute is scored at each, and for every sample the fraction
of the score's variance explained by a straight line in a (R^2 of the least-squares
fit) is taken; ALS is its mean over samples. 1 = every edit changes the attribute
exactly linearly; samples whose score does not move at all (variance < `min_var`) count
as 0, so a direction that does nothing cannot score well. Also reported: the mean slope
(score change per unit strength) so that "linear but tiny" is visible.

Both need no global RNG (seeded local generators) and run under no_grad.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

DistanceFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # two [N,3,H,W] -> [N]
ScoreFn = Callable[[torch.Tensor], np.ndarray]  # [N,3,H,W] in [-1,1] -> [N]
EditFn = Callable[[torch.Tensor, float], torch.Tensor]  # ws [N,L,D], strength -> edited ws


def feature_distance(encoder: torch.nn.Module) -> DistanceFn:
    """LPIPS-form distance on a local encoder's stages (no learned weights): [N] per image pair."""

    @torch.no_grad()
    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa, fb = encoder(a), encoder(b)
        total = torch.zeros(a.shape[0], device=a.device)
        for x, y in zip(fa, fb):
            x = x.float() / (x.float().norm(dim=1, keepdim=True) + 1e-10)
            y = y.float() / (y.float().norm(dim=1, keepdim=True) + 1e-10)
            total = total + (x - y).square().sum(dim=1).mean(dim=(1, 2))
        return total

    return distance


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared pixel difference: a weight-free fallback distance for PPL."""
    return (a.float() - b.float()).square().mean(dim=(1, 2, 3))


@torch.no_grad()
def perceptual_path_length(
    G,  # gan.networks.Generator (mapping, synthesis, broadcast)
    distance: DistanceFn,  # perceptual distance of two image batches, [N]
    n: int = 256,  # latent pairs
    epsilon: float = 1e-4,  # step along the segment (StyleGAN: 1e-4)
    sampling: str = "end",  # "end" (t = 0) or "full" (t ~ U[0, 1])
    batch: int = 32,  # pairs per generator call
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict:
    """StyleGAN's PPL in W: {"ppl": mean of the 1..99th-percentile distances / eps^2, "n": kept pairs}."""
    if sampling not in ("end", "full"):
        raise ValueError(f"sampling: expected 'end' or 'full', got {sampling!r}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(2 * b, G.z_dim, generator=gen).to(device)
        t = torch.rand(b, 1, generator=gen) if sampling == "full" else torch.zeros(b, 1)
        t = t.to(device)
        w = G.mapping(z)
        w0, w1 = w[:b], w[b:]
        wt = torch.cat([torch.lerp(w0, w1, t), torch.lerp(w0, w1, t + epsilon)])
        img = G.synthesis(G.broadcast(wt), noise_mode="const").float()
        values.append((distance(img[:b], img[b:]) / epsilon ** 2).cpu())
    d = torch.cat(values).double().numpy()
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    return {"ppl": float(kept.mean()), "n": int(kept.size), "epsilon": epsilon, "sampling": sampling}


def linearity_r2(strengths: np.ndarray, scores: np.ndarray, min_var: float = 1e-8) -> np.ndarray:
    """R^2 of the least-squares line score ~ strength, per row of scores [N, K]; 0 where flat."""
    a = np.asarray(strengths, np.float64)
    s = np.asarray(scores, np.float64)
    ac = a - a.mean()
    sc = s - s.mean(axis=1, keepdims=True)
    slope = sc @ ac / (ac @ ac)
    resid = sc - slope[:, None] * ac[None, :]
    ss_tot = (sc ** 2).sum(axis=1)
    flat = ss_tot / s.shape[1] < min_var
    r2 = 1.0 - (resid ** 2).sum(axis=1) / np.where(flat, 1.0, ss_tot)
    return np.where(flat, 0.0, r2)


@torch.no_grad()
def attribute_linearity(
    G,  # gan.networks.Generator
    score: ScoreFn,  # the attribute's score of images in [-1, 1], [N]
    edit: EditFn,  # moves ws by a strength along the attribute's direction (on its layers)
    strengths: Sequence[float] = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0),  # evenly spaced
    n: int = 64,  # samples edited
    batch: int = 32,
    seed: int = 0,
    truncation_psi: float = 1.0,
    device: str | torch.device = "cpu",
) -> dict:
    """ALS as defined in the module docstring: {"als": mean R^2, "slope": mean score change per unit}."""
    a = np.asarray(strengths, np.float64)
    if a.ndim != 1 or a.size < 3:
        raise ValueError("strengths: give at least 3 evenly spaced values")
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, G.z_dim, generator=gen).to(device)
        ws = G.broadcast(G.mapping(z, truncation_psi=truncation_psi))
        cols = [np.asarray(score(G.synthesis(edit(ws, float(s)), noise_mode="const").float()), np.float64)
                for s in a]
        rows.append(np.stack(cols, axis=1))
    scores = np.concatenate(rows)
    ac = a - a.mean()
    slope = (scores - scores.mean(axis=1, keepdims=True)) @ ac / (ac @ ac)
    r2 = linearity_r2(a, scores)
    return {"als": float(r2.mean()), "als_median": float(np.median(r2)), "slope": float(slope.mean()),
            "strengths": a.tolist(), "n": int(scores.shape[0])}


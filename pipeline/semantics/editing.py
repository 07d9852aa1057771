"""Layer-wise latent editing in W+: move chosen layers of ws along a boundary's normal.

Truncation: the edit is applied AFTER truncation, to the ws the generator will actually
draw, and the step is NOT scaled by psi. So `strength` is always a distance in W along
the unit normal, the same for every psi: a sample made with psi=0.7 and one made with
psi=1.0 both move exactly `strength` units across the boundary. (Editing before
truncation would shrink every step by psi, so "+3" would mean less at low psi and the
pair/translator strength ranges would depend on a sampling knob.) Use
`truncate(w, w_avg, psi)` then `edit_ws(...)`; `edit_w(...)` does both for one w.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.semantics.boundary import LinearBoundary


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """StyleGAN truncation `w_avg + psi * (w - w_avg)`; works on w [N, dim] and ws [N, L, dim]."""
    return w_avg.to(w.dtype) + psi * (w - w_avg.to(w.dtype))


def edit_ws(
    ws: torch.Tensor | np.ndarray,
    boundary: LinearBoundary,
    strength: float | Sequence[float] | np.ndarray | torch.Tensor,
    layers: Sequence[int] | None = None,
) -> torch.Tensor | np.ndarray:
    """Return ws [N, num_ws, dim] with `strength * normal` added on the edited layers only.

    layers: W+ rows to edit; default the boundary's own `layers`, or every row when the
    boundary has none. A per-layer boundary (normal [len(boundary.layers), dim]) uses the
    row of each edited layer, so `layers` must then be a subset of `boundary.layers`.
    strength: one float, or one per sample [N]. ws may be a torch tensor or numpy array;
    the result has the same type, dtype and device, and the input is not modified.
    """
    is_numpy = isinstance(ws, np.ndarray)
    x = torch.from_numpy(np.asarray(ws)) if is_numpy else ws
    if x.ndim != 3 or x.shape[2] != boundary.dim:
        raise ValueError(f"ws must be [N, num_ws, {boundary.dim}], got {tuple(x.shape)}")
    n, num_ws, _ = x.shape
    edit_layers = _edit_layers(boundary, layers, num_ws)
    step = _strength(strength, n, x)
    out = x.clone()
    normal = torch.as_tensor(boundary.normal, dtype=x.dtype, device=x.device)
    for li in edit_layers:
        row = normal if normal.ndim == 1 else normal[boundary.layers.index(li)]
        out[:, li] += step[:, None] * row
    return out.numpy() if is_numpy else out


def edit_w(
    w: torch.Tensor,
    boundary: LinearBoundary,
    strength: float | torch.Tensor,
    num_ws: int,
    w_avg: torch.Tensor | None = None,
    truncation_psi: float = 1.0,
    layers: Sequence[int] | None = None,
) -> torch.Tensor:
    """w [N, dim] -> truncated, broadcast to W+ and edited ws [N, num_ws, dim]."""
    if truncation_psi != 1.0:
        if w_avg is None:
            raise ValueError("truncation_psi != 1 needs w_avg (the generator's G.w_avg)")
        w = truncate(w, w_avg, truncation_psi)
    ws = w.unsqueeze(1).repeat(1, num_ws, 1)
    return edit_ws(ws, boundary, strength, layers)


def _edit_layers(boundary: LinearBoundary, layers: Sequence[int] | None, num_ws: int) -> list[int]:
    chosen = list(layers) if layers is not None else (list(boundary.layers) or list(range(num_ws)))
    bad = [i for i in chosen if not 0 <= i < num_ws]
    if bad:
        raise ValueError(f"layers {bad} out of range for {num_ws} W+ rows")
    if boundary.normal.ndim == 2:
        missing = [i for i in chosen if i not in boundary.layers]
        if missing:
            raise ValueError(f"per-layer boundary has normals for layers {boundary.layers}, not {missing}")
    return chosen


def _strength(strength, n: int, like: torch.Tensor) -> torch.Tensor:
    s = torch.as_tensor(np.asarray(strength, dtype=np.float64) if not torch.is_tensor(strength) else strength)
    s = s.to(dtype=like.dtype, device=like.device).reshape(-1)
    if s.numel() == 1:
        s = s.expand(n)
    if s.numel() != n:
        raise ValueError(f"strength must be a float or [N={n}] values, got {s.numel()}")
    return s

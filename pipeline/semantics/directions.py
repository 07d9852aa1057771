"""Unsupervised latent directions: SeFa closed-form factorisation (Shen & Zhou, CVPR 2021).

Every modulated layer maps w to its per-channel styles with an affine weight A [in_ch, w_dim];
a direction n moves the styles by A n. SeFa takes the directions that move the chosen
layers' styles most: the top eigenvectors of sum over layers of A^T A. As in SeFa, each
style channel's weight row is normalised first (`normalise=True`) so that wide layers
or channels with large weights do not dominate. Directions are unit vectors saved in
the boundary file format (normal, intercept 0, layers = the chosen W+ layers).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.semantics.boundary import LinearBoundary
from pipeline.errors import UserError


def sefa(G, layers: Sequence[int], normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(eigenvalues [w_dim] descending, directions [w_dim, w_dim] one per ROW, unit length)."""
    chosen = set(int(i) for i in layers)
    mats = [w for idx, w in G.modulation_weights() if chosen & set(idx)]
    if not mats:
        raise UserError(f"no modulated layer reads W+ rows {sorted(chosen)} (num_ws = {G.num_ws})")
    a = torch.cat([m.detach().double().cpu() for m in mats], dim=0)  # [sum in_ch, w_dim]
    if normalise:
        a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(a.T @ a)  # ascending
    order = torch.argsort(values, descending=True)
    return values[order].numpy(), vectors[:, order].T.contiguous().numpy()


def sefa_boundaries(G, layers: Sequence[int], indices: Sequence[int], meta: dict | None = None,
                    normalise: bool = True) -> list[LinearBoundary]:
    values, dirs = sefa(G, layers, normalise)
    out = []
    for k in indices:
        if not 0 <= k < len(dirs):
            raise UserError(f"direction index {k} out of range 0..{len(dirs) - 1}")
        info = dict(meta or {}, attribute=f"sefa_{k}", method="sefa", index=int(k),
                    eigenvalue=float(values[k]), eigenvalue_fraction=float(values[k] / values.sum()),
                    space="w", solver="sefa", normalise=normalise)
        out.append(LinearBoundary(dirs[k], 0.0, list(layers), info))
    return out

"""Semantic-conditional sampling (SCS, after LinearGAN): find a latent whose image follows a layout.

The linear semantic extractor (lse.py) turns the generator's features into class logits,
so a target label map [H, W] gives a differentiable loss: the cross-entropy between the
extractor's logits for G(w) and the target. Starting from a sampled w, Adam moves w
(one w for every layer, so the image stays in the generator's range) to lower it.
Only the library and its test exist so far; `photoedit scs` is not written.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline.semantics.lse import SemanticExtractor, seed_latents
from pipeline.semantics.segmenter import IGNORE


def conditional_sample(G, ext: SemanticExtractor, target: torch.Tensor, seed: int = 0, steps: int = 100,
                       lr: float = 0.05, truncation: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Target label map int64 [H, W] (IGNORE = free) -> (image [1, 3, H, W] in [-1, 1], w [1, w_dim])."""
    if tuple(target.shape) != tuple(ext.cfg.image_size):
        raise ValueError(f"target layout {list(target.shape)} differs from the extractor's {ext.cfg.image_size}")
    with torch.no_grad():
        w0 = G.mapping(seed_latents(G, [seed]), truncation)
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    for _ in range(steps):
        _, feats = G.synthesis(G.broadcast(w), noise_mode="const", return_features=True)
        loss = F.cross_entropy(ext(feats), target[None], ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        image = G.synthesis(G.broadcast(w), noise_mode="const")
    return image, w.detach()

"""Semantic-conditional sampling (SCS, after LinearGAN): find a latent whose image follows a layout.

The linear semantic extractor (lse.py) turns the generator's features into class logits,
so a target label map [H, W] gives a differentiable loss: the cross-entropy between the
extractor's logits for G(w) and the target (IGNORE = free pixels). As in LinearGAN, the
optimisation runs from several starts and keeps the best:

1. draw `pool` samples (seeds seed..seed+pool-1, as `photoedit sample`) and score each by
   that cross-entropy (one forward pass, no gradient);
2. optimise the `starts` best with Adam, in W (one w for every layer), W+ (one w per layer:
   more freedom, further from the generator's range) or Z (through the mapping network, so w
   stays where the generator was trained), optionally with a pull toward the start;
3. return the one with the lowest final loss.

`semantic_sample` returns everything (image, code, scores of every start);
`conditional_sample` is the one-start form kept for older callers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from pipeline.semantics.lse import SemanticExtractor, check_label_map, seed_latents
from pipeline.semantics.segmenter import IGNORE

SPACES = ("w", "wplus", "z")


@dataclass
class SCSResult:
    image: torch.Tensor  # [1, 3, H, W] in [-1, 1], constant noise
    w_plus: torch.Tensor  # [1, num_ws, w_dim]
    labels: torch.Tensor  # int64 [H, W], the extractor's labels of the image
    seed: int  # the pool seed the chosen result started from
    loss: float  # its final cross-entropy against the layout
    start_image: torch.Tensor  # [1, 3, H, W], the chosen start before optimisation
    starts: list[dict] = field(default_factory=list)  # per optimised start: seed, loss before, loss after


def check_layout(ext: SemanticExtractor, target: torch.Tensor) -> torch.Tensor:
    """A layout int64 [H, W] at the extractor's size, values class ids or IGNORE (free)."""
    return check_label_map(ext, target, IGNORE, "target layout", "free")


def _ce(ext: SemanticExtractor, feats, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy [N] of the extractor's logits against one layout."""
    ce = F.cross_entropy(ext(feats), target.expand(feats[0].shape[0], -1, -1), ignore_index=IGNORE,
                         reduction="none")
    valid = (target != IGNORE).float()
    return (ce * valid).flatten(1).sum(1) / valid.sum()


def semantic_sample(G, ext: SemanticExtractor, target: torch.Tensor, seed: int = 0, pool: int = 32, starts: int = 4,
                    steps: int = 100, lr: float = 0.01, space: str = "w", reg_weight: float = 0.0,
                    truncation: float = 1.0, batch: int = 16, jitter: float = 0.0,
                    progress: Callable[[int, int], None] | None = None) -> SCSResult:
    """Sample an image following `target` (int64 [H, W], IGNORE = free) from the best of several starts.

    pool: samples scored before optimising (seeds seed..seed+pool-1); starts: how many of the best
    are optimised (0 = pick the best of the pool, no optimisation); steps / lr: Adam on w (space
    "w"), on the W+ code ("wplus") or on z ("z"); reg_weight pulls the W+ code toward its start;
    jitter > 0 scores each step at the code plus Gaussian noise of that std (an expectation over
    nearby codes, so the optimisation cannot rely on a direction only the extractor sees).
    progress(done, total) is called after each optimisation step of each start."""
    target = check_layout(ext, target)
    if space not in SPACES:
        raise ValueError(f"space: expected one of {SPACES}, got {space!r}")
    if pool < 1 or starts < 0 or steps < 0 or lr <= 0:
        raise ValueError("pool must be >= 1, starts and steps >= 0, lr > 0")
    starts = min(starts, pool)
    seeds = list(range(seed, seed + pool))
    z_pool = seed_latents(G, seeds)
    with torch.no_grad():
        w_pool = torch.cat([G.mapping(z_pool[i:i + batch], truncation) for i in range(0, pool, batch)])
        losses = []
        for i in range(0, pool, batch):
            _, fs = G.synthesis(G.broadcast(w_pool[i:i + batch]), noise_mode="const", return_features=True)
            losses.append(_ce(ext, fs, target))
        losses = torch.cat(losses)
    order = [int(j) for j in losses.argsort()]
    chosen = order[:max(starts, 1)]
    noise = torch.Generator().manual_seed(seed)  # jitter draws: the same result for the same arguments
    rows, best = [], None
    total = len(chosen) * steps if starts else 0
    for n, j in enumerate(chosen):
        w0 = w_pool[j:j + 1]
        ws0 = G.broadcast(w0)
        var = {"w": w0, "wplus": ws0, "z": z_pool[j:j + 1]}[space].clone().requires_grad_(True)

        def to_ws(v):
            if space == "z":
                return G.broadcast(G.mapping(v, truncation))
            return G.broadcast(v) if space == "w" else v

        if starts:
            opt = torch.optim.Adam([var], lr=lr)
            for s in range(steps):
                ws = to_ws(var)
                shaken = ws + jitter * torch.randn(ws.shape, generator=noise) if jitter else ws
                _, fs = G.synthesis(shaken, noise_mode="const", return_features=True)
                loss = _ce(ext, fs, target)[0]
                if reg_weight:
                    loss = loss + reg_weight * ((ws - ws0) ** 2).sum() / ws.shape[1]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if progress:
                    progress(n * steps + s + 1, total)
        with torch.no_grad():
            ws = to_ws(var).detach()
            image, fs = G.synthesis(ws, noise_mode="const", return_features=True)
            final = float(_ce(ext, fs, target)[0])
        rows.append({"seed": seeds[j], "loss_before": float(losses[j]), "loss": final})
        if best is None or final < best[0]:
            best = (final, seeds[j], ws, image.float(), ext(fs).argmax(1)[0], j)
    final, best_seed, ws, image, labels, j = best
    with torch.no_grad():
        start_image = G.synthesis(G.broadcast(w_pool[j:j + 1]), noise_mode="const").float()
    return SCSResult(image=image, w_plus=ws, labels=labels, seed=best_seed, loss=final, start_image=start_image,
                     starts=rows)


def conditional_sample(G, ext: SemanticExtractor, target: torch.Tensor, seed: int = 0, steps: int = 100,
                       lr: float = 0.05, truncation: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One start (the sample of `seed`), optimised in W: (image [1, 3, H, W] in [-1, 1], w [1, w_dim])."""
    r = semantic_sample(G, ext, target, seed=seed, pool=1, starts=1, steps=steps, lr=lr, space="w",
                        truncation=truncation)
    return r.image, r.w_plus[:, 0]

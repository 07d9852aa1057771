"""Hierarchical semantic regularisation (HSR; Karmali et al., ECCV 2022, arXiv 2208.03764).

HSR aligns the generator's hierarchical features with the features that a network
pretrained on much data computes from the generator's own output image: coarse
generator levels with the encoder's deep (semantic) stages, fine levels with its
shallow ones. A small learned projection head per aligned pair maps the generator's
channels to the encoder's; the loss pulls head(generator features) toward the
encoder's features of the same image, which are a fixed target (no gradient flows
into the image through the encoder: the regulariser shapes the generator's internal
representation, not what it draws). The heads are trained jointly with G.

What is taken from the paper and what is ours (docs/hsr.md lists every deviation):
  - pairing: by spatial size: every encoder stage is paired with the generator level of
    the same (or nearest) resolution, so the hierarchy runs coarse<->deep, fine<->shallow;
  - heads: 1x1 conv -> leaky ReLU -> 1x1 conv, one per pair (the paper's heads are learnable
    projections; their exact shape was not available here);
  - distance: 1 - cosine similarity over channels at every position, averaged over
    positions, pairs and the batch (a normalised L2: it ignores the encoder's feature scale);
  - the encoder is whatever local network the caller passes in (gan/ never imports
    pipeline/): the project's world-trained predictor or a torchvision VGG/ResNet the user
    has on disk, not the paper's ImageNet/DINO networks, which cannot be downloaded here.

An encoder is any module `encoder(images [N,3,H,W] in [-1,1]) -> list of [N,C,h,w]`,
shallow stage first; it is probed once with a blank image to learn its stages' shapes.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def pair_levels(gen_sizes: list[tuple[int, int]], enc_sizes: list[tuple[int, int]],
                levels: tuple[int, ...] | None = None) -> list[tuple[int, int]]:
    """(generator level, encoder stage) pairs, matched one to one by resolution (log2 of the short side).

    Closest resolutions are paired first (ties: the deeper stage); a stage more than one
    octave from every free level is left out. `levels` restricts the generator levels used.
    """
    allowed = set(range(len(gen_sizes))) if levels is None else set(levels)
    bad = allowed - set(range(len(gen_sizes)))
    if bad:
        raise ValueError(f"hsr_levels: generator has levels 0..{len(gen_sizes) - 1}, got {sorted(bad)}")
    octave = lambda size: math.log2(min(size))  # noqa: E731
    candidates = sorted((abs(octave(gen_sizes[lv]) - octave(enc_sizes[k])), -k, lv)
                        for lv in allowed for k in range(len(enc_sizes)))
    pairs: dict[int, int] = {}
    for gap, neg_k, lv in candidates:
        if gap <= 1 and lv not in pairs and -neg_k not in pairs.values():
            pairs[lv] = -neg_k
    if not pairs:
        raise ValueError(f"HSR: no encoder stage {enc_sizes} is within an octave of a generator level "
                         f"{[gen_sizes[lv] for lv in sorted(allowed)]}")
    return sorted(pairs.items())


class ProjectionHead(nn.Module):
    """Generator channels -> encoder channels at every position (1x1 conv, lrelu, 1x1 conv)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        hidden = max(in_channels, out_channels)
        self.net = nn.Sequential(nn.Conv2d(in_channels, hidden, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class HierarchicalSemanticRegulariser(nn.Module):
    """Projection heads + the alignment loss; the encoder is held but not trained (not a submodule)."""

    def __init__(
        self,
        encoder: nn.Module,  # images in [-1,1] -> list of feature maps, shallow first; kept frozen
        gen_shapes: list[tuple[int, tuple[int, int]]],  # (channels, (H, W)) per generator level
        resolution: tuple[int, int],  # generator output (H, W): the probe image's size
        levels: tuple[int, ...] | None = None,  # generator levels allowed to align (None = any)
    ):
        super().__init__()
        # Plain attribute, not a submodule: the encoder is the caller's, frozen, never saved with the heads.
        object.__setattr__(self, "encoder", encoder.eval().requires_grad_(False))
        with torch.no_grad():
            device = next(iter(encoder.parameters()), torch.zeros(())).device
            probe = encoder(torch.zeros(1, 3, *resolution, device=device))
        if not isinstance(probe, (list, tuple)) or not probe or any(f.ndim != 4 for f in probe):
            raise ValueError("HSR encoder must return a non-empty list of [N, C, h, w] feature maps")
        enc_shapes = [(f.shape[1], tuple(f.shape[-2:])) for f in probe]
        self.pairs = pair_levels([s for _, s in gen_shapes], [s for _, s in enc_shapes], levels)
        self.heads = nn.ModuleList(ProjectionHead(gen_shapes[g][0], enc_shapes[k][0]) for g, k in self.pairs)

    def describe(self) -> list[dict]:
        return [{"generator_level": g, "encoder_stage": k} for g, k in self.pairs]

    @torch.no_grad()
    def targets(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's features of the generated images: the fixed targets."""
        return [f.float() for f in self.encoder(images.detach().float())]

    def forward(self, gen_features: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        """Mean over aligned pairs of (1 - cosine) between head(generator level) and the encoder stage."""
        targets = self.targets(images)
        losses = []
        for (g, k), head in zip(self.pairs, self.heads):
            pred = head(gen_features[g].float())
            target = targets[k]
            if pred.shape[-2:] != target.shape[-2:]:
                pred = F.interpolate(pred, size=target.shape[-2:], mode="bilinear", align_corners=False,
                                     antialias=pred.shape[-2] > target.shape[-2])
            losses.append((1 - F.cosine_similarity(pred, target, dim=1, eps=1e-6)).mean())
        return torch.stack(losses).mean()

"""Translator losses: LSGAN, discriminator feature matching, optional VGG19 perceptual.

Discriminator outputs are pix2pixHD-style: a list (one per scale) of lists of layer
features whose last entry is the patch prediction.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017), averaged over scales."""
    target = 1.0 if real else 0.0
    losses = [F.mse_loss(feats[-1], torch.full_like(feats[-1], target)) for feats in outputs]
    return torch.stack(losses).mean()


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between D's intermediate features on fake and real, averaged over scales and layers.

    pix2pixHD's weighting (per scale 1/num_d, per layer 4/(n_layers+1)) is the same
    mean up to a constant that the loss weight (10) absorbs.
    """
    terms = []
    for f_scale, r_scale in zip(fake, real):
        for f, r in zip(f_scale[:-1], r_scale[:-1]):
            terms.append(F.l1_loss(f, r.detach()))
    return torch.stack(terms).mean()


class VGGPerceptualLoss(nn.Module):
    """pix2pixHD's VGG loss: L1 of VGG19 relu1_1..relu5_1 features, weights 1/32..1.

    The weights come only from a local file (a torchvision `vgg19` state dict); nothing
    is downloaded.
    """

    # (end index in vgg19.features, weight) for relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
    SLICES = ((2, 1 / 32), (7, 1 / 16), (12, 1 / 8), (21, 1 / 4), (30, 1.0))

    def __init__(self, weights_path: str | Path):
        super().__init__()
        from torchvision.models import vgg19  # heavy import kept lazy

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: VGG19 weights not found (expected a torchvision vgg19 state dict)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises several types for foreign/corrupt files
            raise ValueError(f"{path}: not a loadable state dict ({type(e).__name__}: {e})") from None
        net = vgg19(weights=None)  # built after the load: 140M parameters are slow to initialise
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{path}: not a torchvision vgg19 state dict: {e}") from None
        feats = net.features[: self.SLICES[-1][0]].eval()
        for p in feats.parameters():
            p.requires_grad_(False)
        self.features = feats
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        x = torch.cat([fake, real]).float()
        x = ((x + 1) / 2 - self.mean) / self.std
        loss, start = x.new_zeros(()), 0
        for end, weight in self.SLICES:
            x = self.features[start:end](x)
            f, r = x.chunk(2)
            loss = loss + weight * F.l1_loss(f, r.detach())
            start = end
        return loss

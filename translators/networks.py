"""pix2pixHD-style translators with a strength slider, and a multi-scale PatchGAN.

A translator is called as `model(x, strength)`:
    x         float [N, 3, H, W] in [-1, 1], any H, W (padded internally, cropped back)
    strength  float [N] (or a scalar), the normalised edit strength s; s = 1 is the
              strongest edit seen in training, s = 0 means "no edit"
    returns   float [N, 3, H, W] in [-1, 1]

Two things pix2pixHD (Wang et al. 2018) lacks and this product needs:
- residual output: the net predicts a change to its input, out = clamp(x + s * delta),
  so content is kept by construction and s = 0 returns the input exactly;
- strength conditioning: s enters as a constant input channel and as FiLM
  (per-channel scale/shift) on every residual block, so one model is a continuous slider.

`kind="affine"` (the `AffineUNet`) changes the output form for edits such as night's,
which are multiplicative (y ~ 0.2 x) and local (windows light up, the sky darkens): a
U-Net with skip connections predicts at every pixel a 3x3 colour matrix and an offset,
out = clamp(x + s * (D(x) x + b(x))), HDRNet-like. The input's detail passes through
the per-pixel matrix instead of being rebuilt through the bottleneck, the offset adds
new light, and the form is the per-pixel affine colour map the full-resolution carry
(translators/guided_filter.py) applies anyway.

The default `TranslatorConfig` is deliberately small (ngf 8, 4 downsamplings, 4 blocks,
resize-conv upsampling): on CPUs the full-resolution layers dominate the cost, so the
width there is what must stay small (~0.9 s vs ~14 s for pix2pixHD's default at 512x512
on a shared 2-core CPU). The product also runs it at a low working resolution.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TranslatorConfig:
    kind: Literal["global", "local", "affine"] = "global"  # GlobalGenerator; LocalEnhancer (2x res); AffineUNet
    ngf: int = 8  # channels after the first 7x7 conv; doubled at each downsampling
    n_downsample: int = 4  # strided 3x3 convs; inputs are padded to a multiple of 2**n (x2 for local)
    n_blocks: int = 4  # residual blocks at the bottleneck of the global generator
    n_local_blocks: int = 2  # residual blocks of the LocalEnhancer's full-resolution branch
    max_channels: int = 256  # cap on the channel doubling
    upsample: Literal["resize", "transposed"] = "resize"  # resize-conv avoids checkerboard artefacts
    block: Literal["conv", "separable"] = "conv"  # separable = depthwise 3x3 + pointwise 1x1 (cheaper)
    norm: Literal["instance", "none"] = "instance"  # pix2pixHD uses instance norm (no affine)
    residual: bool = True  # predict a change to the input (s = 0 -> identity) instead of an image
    max_delta: float = 2.0  # |change| per unit strength, in [-1, 1] image units (2 = full range)
    strength_channel: bool = True  # feed s as a constant extra input channel
    film: bool = True  # FiLM the residual blocks from s (scale/shift per channel)
    film_hidden: int = 32  # width of the small MLP s -> FiLM parameters
    global_affine: bool = False  # add one learnt global 3x4 colour change under the net's own change;
    # training starts it at the least-squares fit to its pairs (see Translator.fit_global_affine)

    def __post_init__(self) -> None:
        if self.ngf < 1 or self.n_downsample < 0 or self.n_blocks < 0 or self.n_local_blocks < 0:
            raise ValueError("ngf must be >= 1; n_downsample, n_blocks, n_local_blocks >= 0")
        if self.max_delta <= 0:
            raise ValueError(f"max_delta must be > 0, got {self.max_delta}")
        if self.kind == "affine" and not self.residual:
            raise ValueError("kind 'affine' predicts a change to its input: it needs residual=True")
        if self.global_affine and not self.residual:
            raise ValueError("global_affine adds to a predicted change: it needs residual=True")

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this so every downsampling halves exactly."""
        return 2 ** (self.n_downsample + (1 if self.kind == "local" else 0))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TranslatorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown translator architecture keys {unknown} (known: {sorted(known)})")
        return cls(**d)


# Building blocks

def _norm(kind: str, ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=False) if kind == "instance" else nn.Identity()


def _conv3x3(in_ch: int, out_ch: int, separable: bool) -> nn.Module:
    if not separable:
        return nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode="reflect")
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, padding=1, padding_mode="reflect", groups=in_ch),
        nn.Conv2d(in_ch, out_ch, 1),
    )


def _down(in_ch: int, out_ch: int, norm: str) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1), _norm(norm, out_ch), nn.ReLU(True))


def _up(in_ch: int, out_ch: int, norm: str, mode: str) -> nn.Module:
    if mode == "transposed":
        conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1)
        return nn.Sequential(conv, _norm(norm, out_ch), nn.ReLU(True))
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_ch, out_ch, 3, padding=1, padding_mode="reflect"),
        _norm(norm, out_ch),
        nn.ReLU(True),
    )


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm with a skip; FiLM (gamma, beta) after the first norm."""

    def __init__(
        self,
        ch: int,  # channels in = out
        norm: str,  # "instance" or "none"
        separable: bool,  # depthwise-separable 3x3 convs
    ):
        super().__init__()
        self.conv1 = _conv3x3(ch, ch, separable)
        self.norm1 = _norm(norm, ch)
        self.conv2 = _conv3x3(ch, ch, separable)
        self.norm2 = _norm(norm, ch)

    def forward(self, x: torch.Tensor, film: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(self.conv1(x))
        if film is not None:  # [N, 2*ch]: zero-initialised, so FiLM starts as identity
            gamma, beta = film[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + gamma) + beta
        h = self.norm2(self.conv2(F.relu(h)))
        return x + h


class StrengthFiLM(nn.Module):
    """s [N] -> per-block FiLM parameters [N, n_blocks, 2*ch]."""

    def __init__(self, n_blocks: int, ch: int, hidden: int):
        super().__init__()
        self.n_blocks, self.ch = n_blocks, ch
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(True), nn.Linear(hidden, n_blocks * 2 * ch))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s[:, None]).view(-1, self.n_blocks, 2 * self.ch)


class _GlobalTrunk(nn.Module):
    """pix2pixHD GlobalGenerator minus its output conv: 7x7 conv, downs, blocks, ups."""

    def __init__(self, cfg: TranslatorConfig, in_ch: int):
        super().__init__()
        chans = [min(cfg.ngf * 2**i, cfg.max_channels) for i in range(cfg.n_downsample + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_ch, chans[0], 7, padding=3, padding_mode="reflect"), _norm(cfg.norm, chans[0]), nn.ReLU(True)
        )
        self.downs = nn.Sequential(*[_down(chans[i], chans[i + 1], cfg.norm) for i in range(cfg.n_downsample)])
        self.blocks = nn.ModuleList(
            [ResidualBlock(chans[-1], cfg.norm, cfg.block == "separable") for _ in range(cfg.n_blocks)]
        )
        self.film = StrengthFiLM(cfg.n_blocks, chans[-1], cfg.film_hidden) if cfg.film and cfg.n_blocks else None
        self.ups = nn.Sequential(
            *[_up(chans[i + 1], chans[i], cfg.norm, cfg.upsample) for i in reversed(range(cfg.n_downsample))]
        )
        self.out_channels = chans[0]

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.downs(self.stem(x))
        film = self.film(s) if self.film is not None else None
        for i, block in enumerate(self.blocks):
            h = block(h, None if film is None else film[:, i])
        return self.ups(h)


def _to_rgb(ch: int) -> nn.Module:
    return nn.Conv2d(ch, 3, 7, padding=3, padding_mode="reflect")


class Translator(nn.Module):
    """Shared wrapper: input checks, strength channel, size padding, residual output."""

    cfg: TranslatorConfig

    def __init__(self, cfg: TranslatorConfig):
        super().__init__()
        self.cfg = cfg
        self.in_channels = 3 + (1 if cfg.strength_channel else 0)
        if cfg.global_affine:  # the change gains (C0 + s C1) [x; 1], C = 3x4 colour matrices; zero = none
            self.global_change = nn.Parameter(torch.zeros(2, 3, 4))

    def forward(self, x: torch.Tensor, strength: torch.Tensor | float) -> torch.Tensor:
        s = self._check_inputs(x, strength)
        h, w = x.shape[-2:]
        inp = x
        if self.cfg.strength_channel:
            inp = torch.cat([x, s[:, None, None, None].expand(-1, 1, h, w).to(x.dtype)], dim=1)
        inp = _pad_to_multiple(inp, self.cfg.multiple)
        raw = self.body(inp, s)[..., :h, :w]
        if not self.cfg.residual:
            return torch.tanh(raw)
        # tanh bounds the change; scaling by s makes s = 0 the identity exactly.
        delta = self.delta(x, raw)
        if self.cfg.global_affine:
            c = self.global_change.to(delta.dtype)
            c = c[0] + s.to(delta.dtype)[:, None, None] * c[1]  # [N, 3, 4]
            delta = delta + torch.einsum("nij,njhw->nihw", c[:, :, :3], x.to(delta.dtype)) + c[:, :, 3, None, None]
        return (x + s[:, None, None, None].to(delta.dtype) * delta).clamp(-1, 1)

    @torch.no_grad()
    def fit_global_affine(self, x: torch.Tensor, y: torch.Tensor, s: torch.Tensor, max_pixels: int = 1 << 20) -> float:
        """Set the global change to the least-squares fit of y - x = (s C0 + s^2 C1) [x; 1]
        on pairs (x, y [N, 3, H, W], strengths s [N]). With the net's own change still zero,
        the translator then starts as one global colour transform fitted on its own training
        pairs (baseline (a) of `photoedit eval-translator`), and training adds what is local.
        The s^2 term lets it follow edits that are not linear in the strength (a GAN's night
        at half the latent step carries less than half the change: linear alone loses 1.5 dB
        at s = 1 on the quickstart GAN). Pairs all at one strength (an oracle's true pairs at
        s = 1) leave s C0 and s^2 C1 inseparable: the minimum-norm split is exact at that
        strength. Solved on the CPU with a rank-revealing driver (CUDA's only driver assumes
        full rank). Returns the fit's mean squared error."""
        if not self.cfg.global_affine:
            raise ValueError("this translator has no global change (TranslatorConfig.global_affine is off)")
        n = x.shape[0]
        xs = x.detach().cpu().permute(0, 2, 3, 1).reshape(n, -1, 3).double()
        d = (y.detach().cpu().double() - x.detach().cpu().double()).permute(0, 2, 3, 1).reshape(n, -1, 3)
        step = max(1, (xs.shape[1] * n) // max_pixels)  # every step-th pixel: bounded memory
        xs, d = xs[:, ::step], d[:, ::step]
        sw = s.detach().cpu().double().view(n, 1, 1)
        x1 = torch.cat([xs, torch.ones_like(xs[..., :1])], dim=2)  # [x; 1]
        design = torch.cat([x1 * sw, x1 * sw**2], dim=2).reshape(-1, 8)
        sol = torch.linalg.lstsq(design, d.reshape(-1, 3), driver="gelsd").solution  # [8, 3]
        self.global_change.copy_(sol.T.reshape(3, 2, 4).permute(1, 0, 2).float())  # copy_ moves it to the device
        return float(((design @ sol - d.reshape(-1, 3)) ** 2).mean())

    def body(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def delta(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The change at s = 1 from the body's raw output (same size as x)."""
        return self.cfg.max_delta * torch.tanh(raw)

    def _zero_init_output(self, conv: nn.Conv2d) -> None:
        """With residual output, a zero last conv makes the untrained net "do nothing":
        training starts from the identity and only has to learn the change."""
        if self.cfg.residual:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def _check_inputs(self, x: torch.Tensor, strength: torch.Tensor | float) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"translator input must be [N, 3, H, W], got {list(x.shape)}")
        s = torch.as_tensor(strength, dtype=torch.float32, device=x.device)
        if s.ndim == 0:
            s = s.expand(x.shape[0])
        if s.shape != (x.shape[0],):
            raise ValueError(f"strength must be a scalar or [N={x.shape[0]}], got {list(s.shape)}")
        return s.float()


class GlobalGenerator(Translator):
    """pix2pixHD's GlobalGenerator with residual output and strength conditioning."""

    def __init__(self, cfg: TranslatorConfig):
        super().__init__(cfg)
        self.trunk = _GlobalTrunk(cfg, self.in_channels)
        self.to_rgb = _to_rgb(self.trunk.out_channels)
        self._zero_init_output(self.to_rgb)

    def body(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.to_rgb(self.trunk(x, s))


class LocalEnhancer(Translator):
    """pix2pixHD's LocalEnhancer: a global trunk on the half-resolution input, whose
    features are added to a full-resolution branch (downsample once, blocks, upsample)."""

    def __init__(self, cfg: TranslatorConfig):
        super().__init__(cfg)
        self.trunk = _GlobalTrunk(cfg, self.in_channels)
        ch_local = max(cfg.ngf // 2, 1)
        ch = self.trunk.out_channels
        self.front = nn.Sequential(
            nn.Conv2d(self.in_channels, ch_local, 7, padding=3, padding_mode="reflect"),
            _norm(cfg.norm, ch_local),
            nn.ReLU(True),
            _down(ch_local, ch, cfg.norm),
        )
        self.blocks = nn.ModuleList(
            [ResidualBlock(ch, cfg.norm, cfg.block == "separable") for _ in range(cfg.n_local_blocks)]
        )
        self.film = StrengthFiLM(cfg.n_local_blocks, ch, cfg.film_hidden) if cfg.film and cfg.n_local_blocks else None
        self.up = _up(ch, ch_local, cfg.norm, cfg.upsample)
        self.to_rgb = _to_rgb(ch_local)
        self._zero_init_output(self.to_rgb)

    def body(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # pix2pixHD downsamples with a 3x3 average pool (count_include_pad=False).
        half = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        h = self.front(x) + self.trunk(half, s)
        film = self.film(s) if self.film is not None else None
        for i, block in enumerate(self.blocks):
            h = block(h, None if film is None else film[:, i])
        return self.to_rgb(self.up(h))


class AffineUNet(Translator):
    """A U-Net (skips at every scale) whose head predicts, per pixel, a 3x3 colour matrix D
    and an offset b: the change at s = 1 is D x + b (see the module docstring)."""

    def __init__(self, cfg: TranslatorConfig):
        super().__init__(cfg)
        chans = [min(cfg.ngf * 2**i, cfg.max_channels) for i in range(cfg.n_downsample + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(self.in_channels, chans[0], 3, padding=1, padding_mode="reflect"), nn.ReLU(True)
        )
        self.downs = nn.ModuleList([_down(chans[i], chans[i + 1], cfg.norm) for i in range(cfg.n_downsample)])
        self.blocks = nn.ModuleList(
            [ResidualBlock(chans[-1], cfg.norm, cfg.block == "separable") for _ in range(cfg.n_blocks)]
        )
        self.film = StrengthFiLM(cfg.n_blocks, chans[-1], cfg.film_hidden) if cfg.film and cfg.n_blocks else None
        # decoder level i: upsample from level i+1, concatenate the skip of level i, fuse
        self.ups = nn.ModuleList([_up(chans[i + 1], chans[i], "none", cfg.upsample)
                                  for i in reversed(range(cfg.n_downsample))])
        self.fuse = nn.ModuleList([
            nn.Sequential(nn.Conv2d(2 * chans[i], chans[i], 3, padding=1, padding_mode="reflect"), nn.ReLU(True))
            for i in reversed(range(cfg.n_downsample))
        ])
        self.head = nn.Conv2d(chans[0], 12, 3, padding=1, padding_mode="reflect")  # 9 matrix + 3 offset
        self._zero_init_output(self.head)

    def body(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        skips = [h]
        for down in self.downs:
            h = down(h)
            skips.append(h)
        film = self.film(s) if self.film is not None else None
        for i, block in enumerate(self.blocks):
            h = block(h, None if film is None else film[:, i])
        for up, fuse, skip in zip(self.ups, self.fuse, reversed(skips[:-1])):
            h = fuse(torch.cat([up(h), skip], dim=1))
        return self.head(h)

    def delta(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        coef = self.cfg.max_delta * torch.tanh(raw)
        matrix = coef[:, :9].view(n, 3, 3, h, w)
        return torch.einsum("nijhw,njhw->nihw", matrix, x.to(coef.dtype)) + coef[:, 9:]


def build_translator(cfg: TranslatorConfig | dict | None = None) -> Translator:
    """The translator a config describes (a dict is read as TranslatorConfig fields)."""
    if cfg is None:
        cfg = TranslatorConfig()
    elif isinstance(cfg, dict):
        cfg = TranslatorConfig.from_dict(cfg)
    return {"local": LocalEnhancer, "affine": AffineUNet}.get(cfg.kind, GlobalGenerator)(cfg)


def _pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return x
    # Reflect keeps edge statistics natural; it needs the pad to be smaller than the side.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


# Discriminator

class PatchDiscriminator(nn.Module):
    """70x70-style PatchGAN: k4 convs, stride 2 then 1; returns every layer's output."""

    def __init__(
        self,
        in_ch: int,  # channels of the (condition, image) stack
        ndf: int = 64,  # channels of the first layer, doubled per layer up to 8x
        n_layers: int = 3,  # strided layers; the receptive field grows with it
        norm: str = "instance",  # "instance" or "none"
    ):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_ch, ndf, 4, stride=2, padding=2), nn.LeakyReLU(0.2, True))]
        ch = ndf
        for i in range(1, n_layers + 1):
            nxt = min(ndf * 2**i, ndf * 8)
            stride = 2 if i < n_layers else 1
            layers.append(
                nn.Sequential(nn.Conv2d(ch, nxt, 4, stride=stride, padding=2), _norm(norm, nxt), nn.LeakyReLU(0.2, True))
            )
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, stride=1, padding=2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale D: the same PatchGAN design on 1x, 1/2x, 1/4x ... inputs.

    forward(x) -> list (one per scale, finest first) of lists of features; the last
    feature of each list is the patch prediction.
    """

    def __init__(
        self,
        in_ch: int,  # e.g. 3 (input) + 3 (real or translated) + 1 (strength map)
        ndf: int = 64,  # first-layer channels of each PatchGAN
        n_layers: int = 3,  # layers per PatchGAN
        num_d: int = 2,  # number of scales
        norm: str = "instance",  # "instance" or "none"
    ):
        super().__init__()
        if num_d < 1:
            raise ValueError(f"num_d must be >= 1, got {num_d}")
        self.in_ch = in_ch
        self.nets = nn.ModuleList([PatchDiscriminator(in_ch, ndf, n_layers, norm) for _ in range(num_d)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"discriminator input must be [N, {self.in_ch}, H, W], got {list(x.shape)}")
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(net(x))
        return outs

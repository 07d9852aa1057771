"""StyleGAN2 generator and residual discriminator (Karras et al. 2020, config F maths).

Layout of the W+ codes `ws [N, num_ws, w_dim]` (index 0 = coarsest). With L =
log2(short side) - 2 upsampling levels, level 0 is the learned constant at 4 px
(short side) and level l >= 1 doubles the resolution:

    ws[0]        level 0 conv (3x3 on the constant)
    ws[1]        level 0 toRGB  and  level 1 conv0 (upsampling 3x3)
    ws[2l]       level l conv1 (3x3), l >= 1
    ws[2l+1]     level l toRGB  and  level l+1 conv0
    num_ws = 2 * log2(short side) - 2   (64 px: 10, 256 px: 14, 1024 px: 18)

A toRGB shares its w with the next level's first conv, as in the published code,
so that the mapping between checkpoints of other implementations is one to one.

The maths follows the published generator op by op so a checkpoint of
rosinality/stylegan2-pytorch ports exactly (gan/import_rosinality.py):
equalised learning rate (weights stored N(0,1) and scaled by 1/sqrt(fan_in) at run
time, mapping lr multiplier), modulation = affine(w) with bias init 1, demodulation
eps 1e-8, upsampling conv = 3x3 transposed conv stride 2 then a [1,3,3,1] blur, noise
added before bias + leaky ReLU(0.2) * sqrt(2), toRGB skip upsampled with the same
filter. For speed the modulation is applied to the activations instead of the
weights (x * s -> conv with the shared weight -> * demod), which is the same
function but one ordinary convolution for the whole batch instead of a grouped one.

Non-square images (e.g. 2:1 street views) come from a non-square constant:
4 x (4 * W/H) for wide images, (4 * H/W) x 4 for tall ones.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)  # keeps activations' second moment at 1 after leaky ReLU
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)  # binomial low-pass used around every resampling
NoiseMode = Literal["random", "const", "none"]


@dataclass
class GeneratorConfig:
    z_dim: int = 512  # size of the input latent z
    w_dim: int = 512  # size of the intermediate latent w (and of each W+ row)
    resolution: tuple[int, int] = (64, 64)  # output (H, W); powers of 2, 16..1024, W/H in 1/4..4
    mapping_layers: int = 8  # depth of the z -> w MLP
    mapping_lr_mul: float = 0.01  # learning-rate multiplier of the mapping MLP (paper: 0.01)
    channel_base: int = 16384  # width at level resolution r is min(channel_base // r, channel_max)
    channel_max: int = 512  # cap on any layer's width
    channels: tuple[int, ...] | None = None  # explicit widths per level (4 px first); overrides base/max
    w_avg_beta: float = 0.995  # EMA decay of the tracked mean w used for truncation

    def __post_init__(self) -> None:
        self.resolution = tuple(int(v) for v in self.resolution)
        if self.channels is not None:
            self.channels = tuple(int(c) for c in self.channels)
        h, w = self.resolution
        for side in (h, w):
            if side < 4 or side & (side - 1):
                raise ValueError(f"resolution {self.resolution}: each side must be a power of 2")
        if not 16 <= min(h, w) <= 1024:
            raise ValueError(f"resolution {self.resolution}: short side must be in 16..1024")
        if max(h, w) // min(h, w) > 4:
            raise ValueError(f"resolution {self.resolution}: aspect W/H must be in 1/4..4")
        if self.channels is not None and len(self.channels) != self.num_levels:
            raise ValueError(f"channels: expected {self.num_levels} widths (4 px .. {min(h, w)} px), "
                             f"got {len(self.channels)}")

    @property
    def num_levels(self) -> int:
        return int(math.log2(min(self.resolution))) - 1  # 4 px is level 0

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(min(self.resolution))) - 2

    @property
    def const_shape(self) -> tuple[int, int]:
        h, w = self.resolution
        s = min(h, w)
        return (4 * h // s, 4 * w // s)

    def level_channels(self, level: int) -> int:
        if self.channels is not None:
            return self.channels[level]
        return min(self.channel_base // (4 << level), self.channel_max)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["resolution"] = list(self.resolution)
        d["channels"] = list(self.channels) if self.channels is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class DiscriminatorConfig:
    resolution: tuple[int, int] = (64, 64)  # input (H, W), same rules as the generator
    channel_base: int = 16384  # width at resolution r is min(channel_base // r, channel_max)
    channel_max: int = 512  # cap on any layer's width
    mbstd_group: int = 4  # minibatch-stddev group size (reduced to a divisor of the batch)
    mbstd_features: int = 1  # number of stddev feature maps appended

    def __post_init__(self) -> None:
        self.resolution = tuple(int(v) for v in self.resolution)
        GeneratorConfig(resolution=self.resolution)  # same validity rules

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["resolution"] = list(self.resolution)
        return d


def assert_shape(x: torch.Tensor, shape: tuple, name: str) -> None:
    """Shape check at a module boundary; None in `shape` matches any size."""
    if x.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, x.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {want}, got {list(x.shape)}")


def blur_kernel_2d(gain: float = 1.0) -> torch.Tensor:
    k = torch.tensor(BLUR_TAPS)
    k = k[:, None] * k[None, :]
    return k / k.sum() * gain


# How the [1,3,3,1] blur runs: "taps" = separable sums of shifted slices (elementwise work),
# "conv" = a depthwise (groups = channels) convolution, "auto" = conv on the CPU (oneDNN's depthwise
# kernels are fast there), taps elsewhere (bench/bench_gan_step.py). Same numbers up to rounding.
BLUR_IMPL: Literal["auto", "taps", "conv"] = "auto"


def _blur_by_conv(x: torch.Tensor) -> bool:
    return BLUR_IMPL == "conv" or (BLUR_IMPL == "auto" and x.device.type == "cpu")


def _make_blur_kernel(gain: float, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return blur_kernel_2d(gain).to(device, dtype)[None, None].expand(channels, 1, 4, 4)


_cached_blur_kernel = functools.lru_cache(maxsize=64)(_make_blur_kernel)


def _blur_kernel(gain: float, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The depthwise 4x4 kernel [channels, 1, 4, 4], made once per (gain, width, device, dtype);
    under torch.compile made in the graph (a constant there), where a Python cache means nothing."""
    if torch.compiler.is_compiling():
        return _make_blur_kernel(gain, channels, device, dtype)
    return _cached_blur_kernel(gain, channels, device, dtype)


def _taps_1d(x: torch.Tensor, dim: int, taps: tuple[float, ...]) -> torch.Tensor:
    n = x.shape[dim] - len(taps) + 1
    out = x.narrow(dim, 0, n) * taps[0]
    for k in range(1, len(taps)):
        out = out + x.narrow(dim, k, n) * taps[k]
    return out


def blur2d(x: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """[1,3,3,1] x [1,3,3,1] blur (sum = gain) of x [N,C,H,W] zero-padded by pad = (before, after)
    on both axes: H + before + after - 3 rows out."""
    a, b = pad
    x = F.pad(x, (a, b, a, b))
    if _blur_by_conv(x):
        return F.conv2d(x, _blur_kernel(gain, x.shape[1], x.device, x.dtype), groups=x.shape[1])
    t = tuple(v / sum(BLUR_TAPS) * math.sqrt(gain) for v in BLUR_TAPS)
    return _taps_1d(_taps_1d(x, 3, t), 2, t)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """2x upsampling: zero-insertion + [1,3,3,1] blur (gain 4), as two phases per axis:
    out[2i] = .25 x[i-1] + .75 x[i], out[2i+1] = .75 x[i] + .25 x[i+1] (zeros outside)."""
    if _blur_by_conv(x):
        return F.conv_transpose2d(x, _blur_kernel(4.0, x.shape[1], x.device, x.dtype), stride=2, padding=1,
                                  groups=x.shape[1])
    for dim in (3, 2):
        n = x.shape[dim]
        xp = F.pad(x, (1, 1) if dim == 3 else (0, 0, 1, 1))
        even = xp.narrow(dim, 0, n) * 0.25 + xp.narrow(dim, 1, n) * 0.75
        odd = xp.narrow(dim, 1, n) * 0.75 + xp.narrow(dim, 2, n) * 0.25
        x = torch.stack((even, odd), dim + 1).flatten(dim, dim + 1)
    return x


def lrelu_bias(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """bias + leaky ReLU(0.2) * sqrt(2): the published 'fused_lrelu'."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape).to(x.dtype), 0.2) * LRELU_GAIN


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate: w ~ N(0, 1/lr_mul^2), used as w * lr_mul / sqrt(in)."""

    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        bias_init: float = 0.0,  # initial effective bias (modulation uses 1 so styles start at 1)
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping MLP)
        activation: bool = False,  # bias + lrelu * sqrt(2) if True
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        # Stored so that bias * lr_mul is the effective bias (same convention as rosinality).
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return lrelu_bias(F.linear(x, self.effective_weight()), self.bias * self.lr_mul)
        return F.linear(x, self.effective_weight(), self.bias * self.lr_mul)


class MappingNetwork(nn.Module):
    """z -> pixel norm -> MLP of `mapping_layers` equalised linear layers (all with lrelu) -> w.

    Owns the tracked mean `w_avg` so that truncation lives where w is made.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.w_avg_beta = cfg.w_avg_beta
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mul=cfg.mapping_lr_mul, activation=True)
            for i in range(cfg.mapping_layers)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        """z [N, z_dim] -> w [N, w_dim], truncated as w_avg + psi * (w - w_avg)."""
        assert_shape(z, (None, self.z_dim), "z")
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        for layer in self.layers:
            x = layer(x)
        if truncation_psi != 1.0:
            x = self.w_avg.to(x.dtype).lerp(x, truncation_psi)
        return x

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """Track the mean w during training (EMA with decay w_avg_beta)."""
        self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))


class ModulatedConv(nn.Module):
    """Modulated (and optionally demodulated) conv; optional 2x upsampling (transposed conv + blur)."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        kernel_size: int,  # 3 for convs, 1 for toRGB
        w_dim: int,  # width of the style vector w feeding the affine
        demodulate: bool = True,  # normalise each output map to unit expected std (False for toRGB)
        upsample: bool = False,  # 2x upsampling as a stride-2 transposed conv followed by a blur
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2

    def modulate(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Conv of the style-scaled input, and the demodulation factors [N, out] (None if off).

        The equalised-lr scale is folded into the per-input styles (s * scale), which is the
        same product as scaling the weight but costs [N, in] multiplies instead of a weight-sized one.
        """
        styles = self.affine(w) * self.scale  # [N, in]
        x = x * styles.to(x.dtype)[:, :, None, None]
        weight = self.weight.to(x.dtype)
        if self.upsample:
            # Transposed conv stride 2 (out = 2h+1), then blur with pad 1 (out = 2h).
            # Gain 4 keeps the mean after zero-insertion; symmetric pad 1 gives exactly 2x size.
            x = blur2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), (1, 1), gain=4.0)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if not self.demodulate:
            return x, None
        # sum_{i,k} (W[o,i,k] s[i])^2 = s^2 @ sum_k W[o,i,k]^2, without a per-sample weight tensor.
        wsq = self.weight.square().sum(dim=(2, 3))  # [out, in]
        demod = torch.rsqrt(styles.square() @ wsq.t() + 1e-8)  # [N, out]
        return x, demod

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x, demod = self.modulate(x, w)
        return x if demod is None else x * demod.to(x.dtype)[:, :, None, None]


class StyledConv(nn.Module):
    """Modulated conv -> + noise * strength -> bias + lrelu * sqrt(2). Holds its own const noise."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        w_dim: int,  # style width
        size: tuple[int, int],  # output (H, W) of this layer: shape of its stored noise
        upsample: bool = False,  # True for the first conv of each level >= 1
    ):
        super().__init__()
        self.conv = ModulatedConv(in_channels, out_channels, 3, w_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))  # learned, starts at 0 as published
        self.bias = nn.Parameter(torch.zeros(out_channels))
        # Fixed noise for noise_mode="const": makes sampling exactly repeatable.
        self.register_buffer("noise_const", torch.randn(1, 1, *size))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "random") -> torch.Tensor:
        x, demod = self.conv.modulate(x, w)
        n, _, h, wd = x.shape
        # x * demod + bias in one fused pass, then the [N,1,H,W] noise added in place: both keep
        # x's memory layout (a materialised bias + noise tensor would turn NHWC activations
        # back into NCHW at every layer and cost oneDNN a reorder per conv).
        x = torch.addcmul(self.bias.to(x.dtype).view(1, -1, 1, 1), x, demod.to(x.dtype)[:, :, None, None])
        if noise_mode == "random":
            x = x.add_(torch.randn(n, 1, h, wd, device=x.device, dtype=x.dtype) * self.noise_strength.to(x.dtype))
        elif noise_mode == "const":
            x = x.add_(self.noise_const.to(x.dtype) * self.noise_strength.to(x.dtype))
        elif noise_mode != "none":
            raise ValueError(f"noise_mode: expected 'random', 'const' or 'none', got {noise_mode!r}")
        return F.leaky_relu(x, 0.2) * LRELU_GAIN


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation + bias; the caller adds the upsampled skip."""

    def __init__(self, in_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.view(1, -1, 1, 1).to(x.dtype)


class SkipUpsample(nn.Module):
    """2x upsampling of the RGB skip: zero-insertion + [1,3,3,1] blur (upsample2d)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(x)


class SynthesisLevel(nn.Module):
    """One resolution level: [upsampling conv0] + conv1 + toRGB."""

    def __init__(self, cfg: GeneratorConfig, level: int):
        super().__init__()
        h0, w0 = cfg.const_shape
        size = (h0 << level, w0 << level)
        out_ch = cfg.level_channels(level)
        self.level = level
        self.size = size
        if level > 0:
            self.conv0 = StyledConv(cfg.level_channels(level - 1), out_ch, cfg.w_dim, size, upsample=True)
        self.conv1 = StyledConv(out_ch, out_ch, cfg.w_dim, size)
        self.torgb = ToRGB(out_ch, cfg.w_dim)

    def ws_indices(self) -> dict[str, int]:
        """Which row of ws feeds each modulated layer of this level (see module docstring)."""
        if self.level == 0:
            return {"conv1": 0, "torgb": 1}
        return {"conv0": 2 * self.level - 1, "conv1": 2 * self.level, "torgb": 2 * self.level + 1}


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.num_ws = cfg.num_ws
        self.const = nn.Parameter(torch.randn(1, cfg.level_channels(0), *cfg.const_shape))
        self.levels = nn.ModuleList(SynthesisLevel(cfg, level) for level in range(cfg.num_levels))
        self.upsample_rgb = SkipUpsample()

    def forward(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim] W+ codes
        noise_mode: NoiseMode = "random",
        return_features: bool = False,  # also return each level's features (HSR aligns them)
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """ws -> image [N,3,H,W]; with return_features, also [level 0 .. last] feature maps after conv1."""
        assert_shape(ws, (None, self.num_ws, self.cfg.w_dim), "synthesis ws")
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        rgb = None
        features = []
        for level in self.levels:
            idx = level.ws_indices()
            if level.level > 0:
                x = level.conv0(x, ws[:, idx["conv0"]], noise_mode)
            x = level.conv1(x, ws[:, idx["conv1"]], noise_mode)
            features.append(x)
            y = level.torgb(x, ws[:, idx["torgb"]])
            rgb = y if rgb is None else self.upsample_rgb(rgb) + y
        return (rgb, features) if return_features else rgb

    def level_shapes(self) -> list[tuple[int, tuple[int, int]]]:
        """(channels, (H, W)) of each level's features, coarsest first: what return_features gives."""
        return [(self.cfg.level_channels(lv.level), lv.size) for lv in self.levels]


class Generator(nn.Module):
    """z -> mapping -> w (truncated toward w_avg) -> broadcast to ws -> synthesis -> image in ~[-1, 1]."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim = cfg.z_dim
        self.w_dim = cfg.w_dim
        self.num_ws = cfg.num_ws
        self.resolution = cfg.resolution
        self.mapping = MappingNetwork(cfg)  # G.mapping(z, truncation_psi) -> w [N, w_dim]
        self.synthesis = SynthesisNetwork(cfg)  # G.synthesis(ws, noise_mode) -> img

    @property
    def w_avg(self) -> torch.Tensor:
        """Tracked mean w (a buffer of the mapping network, saved with the weights)."""
        return self.mapping.w_avg

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] -> ws [N, num_ws, w_dim] (the same w on every layer)."""
        assert_shape(w, (None, self.w_dim), "w")
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: NoiseMode = "random") -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, truncation_psi)), noise_mode=noise_mode)

    def modulation_weights(self) -> list[tuple[list[int], torch.Tensor]]:
        """Effective affine weights [in_ch, w_dim] of every modulated layer with the ws rows they read.

        For SeFa (Shen & Zhou 2021): directions are eigenvectors of sum_l A_l^T A_l over chosen layers.
        Ordered coarse to fine; toRGB layers included (filter by the index if unwanted).
        """
        out = []
        for level in self.synthesis.levels:
            for name, idx in level.ws_indices().items():
                layer = getattr(level, name)
                affine = layer.conv.affine
                out.append(([idx], affine.effective_weight().detach()))
        return out


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate; optional [1,3,3,1] blur + stride 2 for downsampling."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        kernel_size: int,  # 1 or 3
        downsample: bool = False,  # blur then stride-2 conv (halves H and W)
        activation: bool = True,  # bias + lrelu * sqrt(2); without it the conv has no bias
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if activation else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.downsample = downsample
        self.activation = activation
        self.kernel_size = kernel_size
        if downsample:
            # Pad so that blur (4 taps) then a k-tap stride-2 conv gives exactly half the size.
            p = (len(BLUR_TAPS) - 2) + (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.scale).to(x.dtype)
        if self.downsample:
            x = F.conv2d(blur2d(x, self.blur_pad), weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=self.kernel_size // 2)
        return lrelu_bias(x, self.bias) if self.activation else x


class DiscriminatorBlock(nn.Module):
    """Residual block: conv3x3 -> downsampling conv3x3, plus a downsampled 1x1 skip, sum / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, downsample=True)
        self.skip = EqualConv2d(in_channels, out_channels, 1, downsample=True, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv1(self.conv0(x)) + self.skip(x)) * (1.0 / math.sqrt(2.0))


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with minibatch standard deviation; image -> logit [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        self.resolution = cfg.resolution
        gcfg = GeneratorConfig(resolution=cfg.resolution, channel_base=cfg.channel_base,
                               channel_max=cfg.channel_max)
        top = gcfg.num_levels - 1
        self.from_rgb = EqualConv2d(3, gcfg.level_channels(top), 1)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(gcfg.level_channels(level), gcfg.level_channels(level - 1))
            for level in range(top, 0, -1)
        )
        c4 = gcfg.level_channels(0)
        h0, w0 = gcfg.const_shape
        self.final_conv = EqualConv2d(c4 + cfg.mbstd_features, c4, 3)
        self.final_fc = EqualLinear(c4 * h0 * w0, c4, activation=True)
        self.out = EqualLinear(c4, 1)

    def minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.cfg.mbstd_group, n)
        while n % g:  # the group must divide the batch; fall back to the largest divisor
            g -= 1
        f = self.cfg.mbstd_features
        y = x.view(g, -1, f, c // f, h, w)
        y = torch.sqrt(y.float().var(dim=0, unbiased=False) + 1e-8)  # [n/g, f, c/f, h, w]
        y = y.mean(dim=(2, 3, 4)).to(x.dtype)  # [n/g, f]
        y = y.view(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert_shape(img, (None, 3, *self.resolution), "discriminator input")
        x = self.from_rgb(img)
        for block in self.blocks:
            x = block(x)
        x = self.final_conv(self.minibatch_stddev(x))
        return self.out(self.final_fc(x.flatten(1)))

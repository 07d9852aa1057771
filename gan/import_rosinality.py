"""Import a rosinality/stylegan2-pytorch generator checkpoint (`.pt`) into gan.networks.Generator.

rosinality's checkpoints carry no architecture description (its scripts need
`--size`, `--n_mlp`, `--channel_multiplier` retyped), so everything is inferred
from the tensors themselves:

    size                2 ** (2 + number of `to_rgbs.N`)
    n_mlp               number of `style.N.weight` (style.0 is the parameter-free PixelNorm)
    latent (style_dim)  width of `style.1.weight`
    widths per level    `input.input` (4 px) and `to_rgbs.N.conv.weight` (input width of each toRGB)
    channel multiplier  widths follow min(512, 16384 * cm / resolution); otherwise explicit widths

The one setting the tensors cannot reveal is the mapping lr multiplier (`lr_mlp`, a
constructor argument of rosinality's Generator that its train.py never changes from
0.01); it is an argument here.

Every source tensor must be used exactly once and every target parameter/buffer filled
with a tensor of the right shape, otherwise ImportError_ lists what is missing or left
over. The `.pt` file is read with `torch.load(weights_only=True)`; the only non-tensor
class allowed is `argparse.Namespace` (train.py stores its `args` in the checkpoint),
which is used to cross-check the inferred architecture.

rosinality's train.py does not store the mean w needed for truncation (`latent_avg`
only exists in checkpoints converted from the official TF release). When it is absent,
`w_avg` is estimated as the mean of mapping(z) over `w_avg_samples` standard normal z
from a fixed seed, which is what its generate.py does at run time (`mean_latent(4096)`).
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from gan.networks import Generator, GeneratorConfig, blur_kernel_2d

ROSINALITY_LR_MLP = 0.01  # rosinality Generator's default lr_mlp, used by its train.py
W_AVG_SAMPLES = 10_000  # z samples for the w_avg estimate when the file has no latent_avg
W_AVG_SEED = 0  # fixed so that importing the same file twice gives identical weights


class RosinalityImportError(ValueError):
    """The file is not a rosinality generator checkpoint this importer can map exactly."""


@dataclass
class RosinalityArch:
    """What the tensors say about the source generator."""

    size: int  # output resolution (square)
    style_dim: int  # z and w width (rosinality's `latent`)
    n_mlp: int  # depth of the mapping MLP
    widths: tuple[int, ...]  # feature width per level, 4 px first
    channel_multiplier: int | None  # None when the widths do not follow rosinality's table

    def to_dict(self) -> dict:
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "widths": list(self.widths), "channel_multiplier": self.channel_multiplier}


def rosinality_width(resolution: int, channel_multiplier: int) -> int:
    """rosinality's channel table: 512 up to 32 px, then 256*cm at 64 px, halving per level."""
    return min(512, 16384 * channel_multiplier // resolution)


# 1. Reading the file ---------------------------------------------------------------


def read_rosinality_checkpoint(path: str | Path, which: str = "g_ema") -> tuple[dict, dict]:
    """Load the `.pt` safely -> (generator state dict, extras {latent_avg?, args?})."""
    path = Path(path)
    if not path.is_file():
        raise RosinalityImportError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / unsafe pickles
        raise RosinalityImportError(
            f"{path}: cannot be read as a weights-only torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(obj, dict):
        raise RosinalityImportError(f"{path}: expected a dict, found {type(obj).__name__}")
    extras = {}
    if "input.input" in obj:  # a bare generator state dict (g_ema.state_dict() saved alone)
        sd = obj
    else:
        if which not in obj:
            raise RosinalityImportError(
                f"{path}: no '{which}' entry; top-level keys are {sorted(map(str, obj))[:20]}")
        sd = obj[which]
        if "latent_avg" in obj:
            extras["latent_avg"] = obj["latent_avg"]
        if isinstance(obj.get("args"), argparse.Namespace):
            extras["args"] = vars(obj["args"])
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise RosinalityImportError(f"{path}: '{which}' is not a state dict of tensors")
    return dict(sd), extras


# 2. Inferring the architecture ------------------------------------------------------


def _indices(sd: dict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted(int(m.group(1)) for k in sd if (m := rx.fullmatch(k)))


def infer_rosinality_arch(sd: dict, source: str = "checkpoint") -> RosinalityArch:
    """Size, mapping depth, latent width and per-level widths from key names and shapes."""
    for key in ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight"):
        if key not in sd:
            raise RosinalityImportError(
                f"{source}: key '{key}' missing; not a rosinality stylegan2 generator "
                f"(swagan and other architectures are not supported)")
    mlp = _indices(sd, r"style\.(\d+)\.weight")
    if mlp != list(range(1, len(mlp) + 1)):
        raise RosinalityImportError(f"{source}: mapping layers style.N must be numbered 1..n, got {mlp}")
    rgbs = _indices(sd, r"to_rgbs\.(\d+)\.conv\.weight")
    if rgbs != list(range(len(rgbs))):
        raise RosinalityImportError(f"{source}: to_rgbs.N must be numbered 0..n-1, got {rgbs}")
    size = 2 ** (2 + len(rgbs))
    style_dim = int(sd["style.1.weight"].shape[1])
    widths = (int(sd["input.input"].shape[1]),) + tuple(
        int(sd[f"to_rgbs.{i}.conv.weight"].shape[2]) for i in rgbs)
    cm = None
    if size >= 64:
        guess = widths[4] // 256  # widths[4] is the 64 px level: 256 * cm
        if guess >= 1 and all(w == rosinality_width(4 << i, guess) for i, w in enumerate(widths)):
            cm = guess
    elif all(w == 512 for w in widths):
        cm = 1  # below 64 px every multiplier gives the same widths; 1 is as good as any
    return RosinalityArch(size=size, style_dim=style_dim, n_mlp=len(mlp), widths=widths,
                          channel_multiplier=cm)


def check_against_args(arch: RosinalityArch, args: dict, source: str) -> None:
    """train.py's saved args must agree with the tensors (guards against a mislabelled file)."""
    expect = {"size": arch.size, "n_mlp": arch.n_mlp, "latent": arch.style_dim}
    if arch.channel_multiplier is not None and arch.size >= 64:
        expect["channel_multiplier"] = arch.channel_multiplier
    for key, value in expect.items():
        if key in args and args[key] != value:
            raise RosinalityImportError(
                f"{source}: its saved args say {key}={args[key]} but the tensors say {value}")
    if args.get("arch", "stylegan2") != "stylegan2":
        raise RosinalityImportError(f"{source}: arch '{args['arch']}' is not supported (only stylegan2)")


def generator_config_for(arch: RosinalityArch, mapping_lr_mul: float = ROSINALITY_LR_MLP) -> GeneratorConfig:
    """Our config for the same architecture; widths as base/max when they follow the table."""
    common = dict(z_dim=arch.style_dim, w_dim=arch.style_dim, resolution=(arch.size, arch.size),
                  mapping_layers=arch.n_mlp, mapping_lr_mul=mapping_lr_mul)
    if arch.size < 16:
        raise RosinalityImportError(f"a {arch.size} px generator is below the supported 16 px minimum")
    if arch.channel_multiplier is not None:
        return GeneratorConfig(channel_base=16384 * arch.channel_multiplier, channel_max=512, **common)
    return GeneratorConfig(channels=arch.widths, **common)


# 3. Mapping the tensors ----------------------------------------------------------------

Transform = Callable[[torch.Tensor], torch.Tensor]


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _drop_batch_dim(t: torch.Tensor) -> torch.Tensor:
    # ModulatedConv2d.weight is [1, out, in, k, k]; ours has no leading 1.
    return t.squeeze(0) if t.ndim == 5 and t.shape[0] == 1 else t


def _scalar(t: torch.Tensor) -> torch.Tensor:
    # NoiseInjection.weight is shape [1]; our noise_strength is a 0-d parameter.
    return t.reshape(()) if t.numel() == 1 else t


def _flat_bias(t: torch.Tensor) -> torch.Tensor:
    # ToRGB.bias is [1, 3, 1, 1]; ours is [3].
    return t.reshape(-1) if t.ndim == 4 else t


def _styled_conv(ours: str, theirs: str, noise: str) -> dict[str, tuple[str, Transform]]:
    return {
        f"{ours}.conv.weight": (f"{theirs}.conv.weight", _drop_batch_dim),
        f"{ours}.conv.affine.weight": (f"{theirs}.conv.modulation.weight", _same),
        f"{ours}.conv.affine.bias": (f"{theirs}.conv.modulation.bias", _same),
        f"{ours}.noise_strength": (f"{theirs}.noise.weight", _scalar),
        f"{ours}.bias": (f"{theirs}.activate.bias", _same),
        f"{ours}.noise_const": (noise, _same),
    }


def _to_rgb(ours: str, theirs: str) -> dict[str, tuple[str, Transform]]:
    return {
        f"{ours}.conv.weight": (f"{theirs}.conv.weight", _drop_batch_dim),
        f"{ours}.conv.affine.weight": (f"{theirs}.conv.modulation.weight", _same),
        f"{ours}.conv.affine.bias": (f"{theirs}.conv.modulation.bias", _same),
        f"{ours}.bias": (f"{theirs}.bias", _flat_bias),
    }


def rosinality_key_map(cfg: GeneratorConfig) -> dict[str, tuple[str, Transform]]:
    """Our state-dict key -> (rosinality key, transform), for every tensor except mapping.w_avg.

    rosinality numbers its noise buffers over all styled convs in order (noise_0 = the 4 px
    conv, then two per level), and its `convs` list holds (upsampling conv, conv) pairs from
    8 px up, with `to_rgbs.l-1` closing level l. Upsampling conv weights keep their layout:
    both implementations apply them with conv_transpose2d(x, weight.transpose(0, 1), stride=2).
    """
    table: dict[str, tuple[str, Transform]] = {}
    for i in range(cfg.mapping_layers):
        table[f"mapping.layers.{i}.weight"] = (f"style.{i + 1}.weight", _same)
        table[f"mapping.layers.{i}.bias"] = (f"style.{i + 1}.bias", _same)
    table["synthesis.const"] = ("input.input", _same)
    table.update(_styled_conv("synthesis.levels.0.conv1", "conv1", "noises.noise_0"))
    table.update(_to_rgb("synthesis.levels.0.torgb", "to_rgb1"))
    for level in range(1, cfg.num_levels):
        base = f"synthesis.levels.{level}"
        table.update(_styled_conv(f"{base}.conv0", f"convs.{2 * level - 2}", f"noises.noise_{2 * level - 1}"))
        table.update(_styled_conv(f"{base}.conv1", f"convs.{2 * level - 1}", f"noises.noise_{2 * level}"))
        table.update(_to_rgb(f"{base}.torgb", f"to_rgbs.{level - 1}"))
    return table


def rosinality_fixed_filters(cfg: GeneratorConfig) -> list[str]:
    """rosinality keys of its (persistent) resampling filters; ours are built in, so they are
    checked against the [1,3,3,1] filter instead of copied: anything else cannot be ported."""
    keys = []
    for level in range(1, cfg.num_levels):
        keys.append(f"convs.{2 * level - 2}.conv.blur.kernel")
        keys.append(f"to_rgbs.{level - 1}.upsample.kernel")
    return keys


def _listing(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def convert_rosinality_state(sd: dict, G: Generator, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Build G's full state dict from rosinality's; every tensor used once, shapes checked.

    `mapping.w_avg` is left at G's current value (filled separately, see `estimate_w_avg`).
    """
    target = G.state_dict()
    table = rosinality_key_map(G.cfg)
    problems = []
    filters = rosinality_fixed_filters(G.cfg)
    missing_src = sorted({src for src, _ in table.values() if src not in sd} | set(filters) - set(sd))
    if missing_src:
        problems.append(f"missing source tensors: {_listing(missing_src)}")
    unmapped_target = set(target) - set(table) - {"mapping.w_avg"}
    if unmapped_target:
        problems.append(f"target tensors with no source (importer out of date?): {_listing(unmapped_target)}")
    unknown_target = set(table) - set(target)
    if unknown_target:
        problems.append(f"importer maps to tensors the generator lacks: {_listing(unknown_target)}")
    expected = blur_kernel_2d(gain=4.0)  # both of its upsampling filters carry the gain 4
    for key in filters:
        if key in sd and (sd[key].shape != expected.shape or not torch.allclose(sd[key].float(), expected)):
            problems.append(f"{key}: only the [1,3,3,1] blur filter is supported, found {sd[key].tolist()}")
    leftovers = set(sd) - {src for src, _ in table.values()} - set(filters)
    if leftovers:
        problems.append(f"unused source tensors (architecture not understood): {_listing(leftovers)}")
    out = {"mapping.w_avg": target["mapping.w_avg"]}
    for ours, (theirs, transform) in table.items():
        if theirs not in sd or ours not in target:
            continue
        value = transform(sd[theirs]).to(target[ours].dtype)
        if value.shape != target[ours].shape:
            problems.append(f"{theirs} {list(sd[theirs].shape)} -> {ours}: expected {list(target[ours].shape)}")
            continue
        out[ours] = value.contiguous()
    if problems:
        raise RosinalityImportError(f"{source}: cannot map exactly:\n  " + "\n  ".join(problems))
    return out


@torch.no_grad()
def estimate_w_avg(G: Generator, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED,
                   batch: int = 2048) -> torch.Tensor:
    """Mean of mapping(z) for z ~ N(0, I) from a fixed seed (the truncation centre)."""
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    done = 0
    while done < samples:
        n = min(batch, samples - done)
        z = torch.randn(n, G.z_dim, generator=gen)
        total += G.mapping(z).double().sum(0)
        done += n
    return (total / samples).float()


# 4. The whole import --------------------------------------------------------------------


@dataclass
class ImportResult:
    generator: Generator  # our generator in eval mode, with the imported weights
    arch: RosinalityArch  # what was inferred from the file
    w_avg_source: str  # "latent_avg" (stored in the file) or "estimated from N samples, seed S"


def import_rosinality(path: str | Path, which: str = "g_ema", mapping_lr_mul: float = ROSINALITY_LR_MLP,
                      w_avg_samples: int = W_AVG_SAMPLES) -> ImportResult:
    """Read, infer, map strictly and fill w_avg; see the module docstring."""
    source = str(path)
    sd, extras = read_rosinality_checkpoint(path, which)
    arch = infer_rosinality_arch(sd, source)
    if "args" in extras:
        check_against_args(arch, extras["args"], source)
    G = Generator(generator_config_for(arch, mapping_lr_mul))
    state = convert_rosinality_state(sd, G, source)
    G.load_state_dict(state, strict=True)
    G.eval()
    if "latent_avg" in extras:
        avg = extras["latent_avg"].reshape(-1)
        if avg.numel() != G.w_dim:
            raise RosinalityImportError(f"{source}: latent_avg has {avg.numel()} values, w_dim is {G.w_dim}")
        G.mapping.w_avg.copy_(avg.to(G.mapping.w_avg.dtype))
        how = "latent_avg"
    else:
        G.mapping.w_avg.copy_(estimate_w_avg(G, w_avg_samples))
        how = f"estimated as mean mapping(z) over {w_avg_samples} samples, seed {W_AVG_SEED}"
    return ImportResult(generator=G, arch=arch, w_avg_source=how)

"""LPIPS (Zhang et al., CVPR 2018, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric") built from two local files the user already has; nothing is downloaded.

  - the linear-layer weights of LPIPS v0.1 in the format its authors publish
    (`weights/v0.1/vgg.pth` or `alex.pth` of the `lpips` package / PerceptualSimilarity):
    a state dict `lin0.model.1.weight` .. `lin4.model.1.weight`, each [1, C_k, 1, 1], the
    non-negative per-channel weights of the five backbone stages;
  - the backbone, a torchvision state dict of VGG16 (`vgg16-397923af.pth`) or AlexNet
    (`alexnet-owt-7be5be79.pth`): only its `features.*` convolutions are used, the
    classifier's keys may be present or not.
Both are read with `torch.load(weights_only=True, map_location="cpu")` (the published
LPIPS files were saved from CUDA tensors) or from .safetensors. The backbone is told
apart by the widths of the linear layers (VGG16: 64,128,256,512,512; AlexNet:
64,192,384,256,256) and checked against the backbone file's shapes.

The distance, as LPIPS v0.1 computes it (our implementation of the published method):
  1. inputs in [-1, 1] are shifted and scaled per channel into the backbone's ImageNet
     range (shift -0.030, -0.088, -0.188; scale 0.458, 0.448, 0.450);
  2. both images go through the backbone, tapped after the ReLU that ends each of five
     stages (VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3; AlexNet: relu1..relu5);
  3. at every position the features are divided by their L2 norm over channels (+1e-10);
  4. the squared difference of the two normalised maps is weighted per channel by the
     stage's linear layer (a 1x1 convolution to one channel) and averaged over positions;
  5. the five stage values are summed: one distance per image pair.
The network is not retrained or calibrated here; images are fed at their own size (no
crop or resize, unlike StyleGAN's face-cropped 256 px PPL), so figures are comparable
between generators of one resolution.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)

# torchvision's `features` layer lists: ("conv", in, out, kernel, stride, padding) | ("relu",) | ("pool", k, s)
_VGG16_WIDTHS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_ALEXNET = (("conv", 3, 64, 11, 4, 2), ("relu",), ("pool", 3, 2), ("conv", 64, 192, 5, 1, 2), ("relu",),
            ("pool", 3, 2), ("conv", 192, 384, 3, 1, 1), ("relu",), ("conv", 384, 256, 3, 1, 1), ("relu",),
            ("conv", 256, 256, 3, 1, 1), ("relu",), ("pool", 3, 2))


def _vgg16_layers() -> list[tuple]:
    layers, c_in = [], 3
    for w in _VGG16_WIDTHS:
        if w == "M":
            layers.append(("pool", 2, 2))
        else:
            layers += [("conv", c_in, w, 3, 1, 1), ("relu",)]
            c_in = w
    return layers


# arch -> (features layer list, index one past each tapped ReLU, stage widths)
ARCHS = {
    "vgg16": (_vgg16_layers(), (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
    "alexnet": (list(_ALEXNET), (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
}
MIN_SIZE = {"vgg16": 16, "alexnet": 31}  # smallest side whose deepest tapped stage is still >= 1 px


class LPIPSError(ValueError):
    """A weights file that is missing or not in the format described in the module docstring."""


def _features(layers: list[tuple]) -> nn.Sequential:
    mods = []
    for spec in layers:
        if spec[0] == "conv":
            _, c_in, c_out, k, s, p = spec
            mods.append(nn.Conv2d(c_in, c_out, k, stride=s, padding=p))
        elif spec[0] == "relu":
            mods.append(nn.ReLU())
        else:
            mods.append(nn.MaxPool2d(spec[1], stride=spec[2]))
    return nn.Sequential(*mods)  # indices = torchvision's, so `features.<i>.weight` loads as is


class LPIPS(nn.Module):
    """d(a, b) for two image batches [N,3,H,W] in [-1, 1] -> [N] (see the module docstring)."""

    def __init__(self, arch: str = "vgg16"):
        super().__init__()
        if arch not in ARCHS:
            raise LPIPSError(f"LPIPS backbone '{arch}': choose from {', '.join(ARCHS)}")
        layers, taps, widths = ARCHS[arch]
        self.arch = arch
        self.features = _features(layers)
        self.taps = taps
        self.lin = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in widths])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out, start = [], 0
        for end in self.taps:
            for i in range(start, end):
                x = self.features[i](x)
            out.append(x)
            start = end
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if min(a.shape[-2:]) < MIN_SIZE[self.arch]:
            raise LPIPSError(f"LPIPS ({self.arch}) needs images of at least {MIN_SIZE[self.arch]} px a side, "
                             f"got {tuple(a.shape[-2:])}")
        n = a.shape[0]
        total = torch.zeros(n, device=a.device)
        for f, w in zip(self.stages(torch.cat([a, b]).float()), self.lin):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = (f[:n] - f[n:]).square()
            total = total + F.conv2d(d, w).mean(dim=(1, 2, 3))
        return total


def _read_state_dict(path: Path, what: str) -> dict:
    if not path.is_file():
        raise LPIPSError(f"{what} {path}: no such file (nothing is downloaded; give a local file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's bad input
            raise LPIPSError(f"{what} {path}: not a readable .safetensors file ({e})") from None
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a pickle with code in it, or not a torch file at all
        raise LPIPSError(f"{what} {path}: not a state dict torch.load(weights_only=True) can read "
                         f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise LPIPSError(f"{what} {path}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    return sd


def _lin_weights(sd: dict, path: Path) -> list[torch.Tensor]:
    lins = []
    for k in range(5):
        key = next((f"lin{k}.model.{j}.weight" for j in (1, 0) if f"lin{k}.model.{j}.weight" in sd), None)
        if key is None:
            hint = " (this looks like a backbone: did you swap the two files?)" if any(
                s.startswith("features.") for s in sd) else ""
            raise LPIPSError(f"LPIPS weights {path}: no 'lin{k}.model.1.weight' - expected LPIPS v0.1 linear "
                             f"layers lin0..lin4 (the lpips package's weights/v0.1/vgg.pth or alex.pth){hint}")
        w = sd[key]
        if w.ndim != 4 or w.shape[0] != 1 or w.shape[2:] != (1, 1):
            raise LPIPSError(f"LPIPS weights {path}: '{key}' has shape {tuple(w.shape)}, expected [1, C, 1, 1]")
        lins.append(w.float())
    return lins


def load_lpips(weights: str | Path, backbone: str | Path, device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS from its linear-layer file and a torchvision VGG16/AlexNet state dict; frozen, eval mode."""
    weights, backbone = Path(weights).expanduser(), Path(backbone).expanduser()
    lins = _lin_weights(_read_state_dict(weights, "LPIPS weights"), weights)
    widths = tuple(w.shape[1] for w in lins)
    arch = next((a for a, (_, _, c) in ARCHS.items() if c == widths), None)
    if arch is None:
        raise LPIPSError(f"LPIPS weights {weights}: stage widths {widths} match neither VGG16 "
                         f"{ARCHS['vgg16'][2]} nor AlexNet {ARCHS['alexnet'][2]} (squeeze is not supported)")
    model = LPIPS(arch)
    sd = _read_state_dict(backbone, "LPIPS backbone")
    expected = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    missing = [k for k in expected if k not in sd]
    if missing:
        raise LPIPSError(f"LPIPS backbone {backbone}: not a torchvision {arch} state dict (the LPIPS weights "
                         f"{weights.name} are for {arch}); missing {', '.join(missing[:3])}"
                         + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise LPIPSError(f"LPIPS backbone {backbone}: '{k}' has shape {tuple(sd[k].shape)}, {arch} needs "
                             f"{tuple(v.shape)} (the LPIPS weights {weights.name} are for {arch})")
    model.features.load_state_dict({k[len("features."):]: sd[k].float() for k in expected})
    with torch.no_grad():
        for p, w in zip(model.lin, lins):
            p.copy_(w)
    return model.eval().requires_grad_(False).to(device)

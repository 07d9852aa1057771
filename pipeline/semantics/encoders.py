"""Local feature encoders: HSR's alignment targets (train-gan) and PPL's distance (eval-gan).

An encoder maps images [N,3,H,W] in [-1,1] to a list of feature maps, shallow stage
first. It is always built from a file on disk, never downloaded:
  - `classifier`: the folder written by `photoedit train-predictor` (the world-trained
    AttributeNet); its four conv stages (stride 2 each) are the features;
  - `vgg11|vgg13|vgg16|vgg19`: a torchvision VGG state dict (.pth/.pt loaded with
    weights_only=True, or .safetensors); the ReLU before each of the five max-pools;
  - `resnet18|resnet34|resnet50`: a torchvision ResNet state dict; the stem's ReLU and
    layer1..layer4.
torchvision nets get ImageNet normalisation; images are fed at the generator's size.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UserError

VGG = ("vgg11", "vgg13", "vgg16", "vgg19")
RESNET = ("resnet18", "resnet34", "resnet50")
ARCHS = ("classifier",) + VGG + RESNET
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ClassifierEncoder(nn.Module):
    """The world-trained predictor's conv body, one feature map per stride-2 stage."""

    def __init__(self, net: nn.Module, input_size: tuple[int, int]):
        super().__init__()
        self.body = net.body
        self.input_size = tuple(input_size)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False,
                              antialias=x.shape[-2] > self.input_size[0])
        feats = []
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                feats.append(x)
        return feats


class TorchvisionEncoder(nn.Module):
    """A torchvision VGG/ResNet cut into stages; ImageNet normalisation of [-1,1] inputs."""

    def __init__(self, arch: str, net: nn.Module):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if arch in VGG:
            stages, current = [], []
            for layer in net.features:
                if isinstance(layer, nn.MaxPool2d):
                    stages.append(nn.Sequential(*current))
                    current = [layer]
                else:
                    current.append(layer)
            self.stages = nn.ModuleList(stages)
        else:
            self.stages = nn.ModuleList([nn.Sequential(net.conv1, net.bn1, net.relu),
                                         nn.Sequential(net.maxpool, net.layer1), net.layer2, net.layer3, net.layer4])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def _load_state_dict(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file at all
        raise UserError(f"{path}: not a plain state dict torch.load(weights_only=True) can read ({e})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise UserError(f"{path}: expected a state dict (name -> tensor), got {type(sd).__name__}")
    return sd


def load_encoder(path: str | Path, arch: str = "classifier", device: str | torch.device = "cpu") -> nn.Module:
    """A frozen encoder from a local file or folder (see the module docstring)."""
    if arch not in ARCHS:
        raise UserError(f"encoder arch '{arch}': choose from {', '.join(ARCHS)}")
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"encoder {path}: no such file or folder (nothing is downloaded; give a local path)")
    if arch == "classifier":
        if not path.is_dir():
            raise UserError(f"encoder {path}: a classifier encoder is the folder `photoedit train-predictor` wrote")
        from pipeline.semantics.predictors.classifier import ClassifierPredictor

        pred = ClassifierPredictor(path=path)
        enc = ClassifierEncoder(pred.net, pred.size)
    else:
        import torchvision

        if path.is_dir():
            raise UserError(f"encoder {path}: a {arch} encoder is a state-dict file (.pth, .pt or .safetensors)")
        net = getattr(torchvision.models, arch)(weights=None)
        try:
            net.load_state_dict(_load_state_dict(path), strict=True)
        except RuntimeError as e:
            raise UserError(f"{path}: not a torchvision {arch} state dict ({str(e).splitlines()[0]})") from None
        enc = TorchvisionEncoder(arch, net)
    return enc.eval().requires_grad_(False).to(device)


def encoder_provenance(path: str | Path, arch: str) -> dict:
    """Where an encoder came from: arch, path and the hash of its weights file."""
    from gan.checkpoint import file_sha256

    path = Path(path).expanduser()
    weights = path / "model.safetensors" if path.is_dir() else path
    return {"arch": arch, "path": str(path), "sha256": file_sha256(weights)}

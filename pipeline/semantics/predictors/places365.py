"""`places365` predictor: the Places365 WideResNet18 with the SUN scene-attribute head.

The user supplies three local files (nothing is downloaded), all in one folder:
    wideresnet18_places365.pth.tar     dict with the weights under "state_dict", keys
                                       prefixed "module." (saved from DataParallel)
    W_sceneattribute_wideresnet18.npy  [102, 512] float: one row per SUN attribute
    labels_sunattribute.txt            102 attribute names, one a line

Score of attribute k = (global average of the last residual stage's 512-d features)
. W[k], raw (no sigmoid), as in the Places365 demo. Input: 224x224, ImageNet mean/std.

The network (CSAILVision/places365 `wideresnet.py`, rewritten here from its layer
names and shapes): a ResNet-18 of BasicBlocks [2, 2, 2, 2] whose stem has no max-pool,
so at 224 px the last stage is 14x14 (hence "wide"); the classifier `fc` (365 scenes)
is loaded with the rest (strict) but not used for attributes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UserError
from pipeline.semantics.predictors import check_images

WEIGHTS_FILE = "wideresnet18_places365.pth.tar"
ATTRIBUTE_MATRIX_FILE = "W_sceneattribute_wideresnet18.npy"
LABELS_FILE = "labels_sunattribute.txt"
INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or 1x1 strided) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class WideResNet18(nn.Module):
    """Parameter names match the published checkpoint (after stripping `module.`)."""

    def __init__(self, num_classes: int = 365):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths, strides, in_ch = (64, 128, 256, 512), (1, 2, 2, 2), 64
        for i, (w, s) in enumerate(zip(widths, strides), start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlock(in_ch, w, s), BasicBlock(w, w, 1)))
            in_ch = w
        self.fc = nn.Linear(512, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, 3, 224, 224] normalised -> pooled features [N, 512]."""
        x = F.relu(self.bn1(self.conv1(x)))  # no max-pool: the "wide" variant
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UserError(f"places365 predictor: missing file {path} (needs {WEIGHTS_FILE}, "
                        f"{ATTRIBUTE_MATRIX_FILE} and {LABELS_FILE} in one folder; "
                        "download them yourself from the Places365 project and pass weights_dir=...)")
    return path


def load_places365_state(path: Path) -> dict[str, torch.Tensor]:
    """Safe load (weights_only) of the .pth.tar; strip DataParallel's `module.` prefix."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or unsafe file
        raise UserError(f"{path}: cannot load as a weights-only torch checkpoint: {e}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise UserError(f"{path}: expected a dict with 'state_dict', got {type(ckpt).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


class Places365Predictor:
    name = "places365"

    def __init__(self, weights_dir: str | Path | None = None, device: str = "cpu", batch: int = 32):
        if weights_dir is None:
            raise UserError("places365 predictor needs weights_dir=FOLDER holding "
                            f"{WEIGHTS_FILE}, {ATTRIBUTE_MATRIX_FILE}, {LABELS_FILE}")
        folder = Path(weights_dir)
        weights, matrix, labels = (_require(folder, n) for n in (WEIGHTS_FILE, ATTRIBUTE_MATRIX_FILE, LABELS_FILE))
        self.attributes = [ln.strip() for ln in labels.read_text(encoding="utf-8").splitlines() if ln.strip()]
        w = np.load(matrix, allow_pickle=False)
        if w.ndim != 2 or w.shape[1] != 512 or w.shape[0] != len(self.attributes):
            raise UserError(f"{matrix}: expected [{len(self.attributes)}, 512] (one row per label in "
                            f"{LABELS_FILE}), got {list(w.shape)}")
        state = load_places365_state(weights)
        self.net = WideResNet18(num_classes=state["fc.weight"].shape[0] if "fc.weight" in state else 365)
        # Checkpoints from PyTorch < 0.4 have no BN step counters; they are unused in eval.
        for key, value in self.net.state_dict().items():
            if key.endswith("num_batches_tracked") and key not in state:
                state[key] = torch.zeros_like(value)
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise UserError(f"{weights}: not a WideResNet18 Places365 state_dict: {e}") from None
        self.device = torch.device(device)
        self.net.eval().to(self.device)
        self.matrix = torch.from_numpy(w.astype(np.float32)).to(self.device)
        self.batch = batch
        self.input_size = INPUT_SIZE  # the network's training size; tests shrink it for speed

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        x = (check_images(images).clamp(-1, 1) + 1) / 2
        size = (self.input_size, self.input_size)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        out = []
        for chunk in check_images(images).split(self.batch):
            feats = self.net.features(self.preprocess(chunk.to(self.device)))
            out.append(feats @ self.matrix.T)
        scores = torch.cat(out).cpu().numpy()
        return {name: scores[:, i] for i, name in enumerate(self.attributes)}

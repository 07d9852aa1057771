"""`classifier` predictor: a small CNN with one output per attribute, layout value or object count.

Trained by `photoedit train-predictor` from one of
  - `world`: procedural renders with their ground truth: the six lighting attributes
    (probabilities), layout `horizon_y`, `vanishing_x` (fractions of the image) and the
    object counts `cars`, `trees` (regressions): what the semantic hierarchy needs;
  - a folder `root/<attribute>/{yes,no}/*.png|jpg`: one probability per attribute, each
    image labelled only for its own attribute (the others are masked out of the loss);
  - a CSV `path,<name>,<name>...` of scores: a column whose values all lie in [0, 1] is a
    probability, any other column a regression; empty cells are masked.
Saved as `DIR/model.safetensors` + `DIR/config.json` (architecture, outputs, target
normalisation, data provenance, validation metrics); `ClassifierPredictor(path=DIR)`
rebuilds it from those two files alone.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan.images import from_uint8
from pipeline.errors import UserError
from pipeline.semantics.predictors import check_images

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
WORLD_LAYOUT = ("horizon_y", "vanishing_x")
WORLD_COUNTS = ("cars", "trees")


@dataclass
class PredictorConfig:
    width: int = 16                      # channels of the first conv; doubles twice
    input_size: tuple[int, int] = (64, 64)  # (H, W) every image is resized to
    n_world: int = 2000                  # renders when training on the procedural world
    epochs: int = 15                     # passes over the training images
    batch: int = 64                      # images per step
    lr: float = 0.002                    # Adam learning rate
    val_fraction: float = 0.1            # held out to report metrics
    seed: int = 0                        # world seeds start here; also init and shuffling

    def __post_init__(self):
        self.input_size = tuple(int(v) for v in self.input_size)
        if not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")


class AttributeNet(nn.Module):
    """4 strided convs -> global average -> one linear layer with an output per target."""

    def __init__(self, num_outputs: int, width: int = 16):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


@dataclass
class Targets:
    names: list[str]
    kinds: list[str]          # "prob" (sigmoid, BCE on soft labels) or "reg" (standardised MSE)
    values: np.ndarray        # [N, K] float, NaN = unknown
    source: dict


# ----------------------------------------------------------------------------- data


def world_data(cfg: PredictorConfig) -> tuple[np.ndarray, Targets]:
    from pipeline.world import ATTRIBUTES, render_batch

    images, records = render_batch(range(cfg.seed, cfg.seed + cfg.n_world), size=cfg.input_size)
    names = list(ATTRIBUTES) + list(WORLD_LAYOUT) + list(WORLD_COUNTS)
    kinds = ["prob"] * len(ATTRIBUTES) + ["reg"] * (len(WORLD_LAYOUT) + len(WORLD_COUNTS))
    rows = [[r["attributes"][a] for a in ATTRIBUTES] + [r["layout"][k] for k in WORLD_LAYOUT]
            + [r["counts"][k] for k in WORLD_COUNTS] for r in records]
    return images, Targets(names, kinds, np.asarray(rows, np.float32),
                           {"kind": "world", "seeds": [cfg.seed, cfg.seed + cfg.n_world]})


def folder_data(root: Path, cfg: PredictorConfig) -> tuple[np.ndarray, Targets]:
    attrs = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not attrs:
        raise UserError(f"{root}: expected sub-folders <attribute>/yes and <attribute>/no")
    paths, rows = [], []
    for k, a in enumerate(attrs):
        for label, sub in ((1.0, "yes"), (0.0, "no")):
            for p in sorted((root / a / sub).glob("*")) if (root / a / sub).is_dir() else []:
                if p.suffix.lower() in IMAGE_EXTS:
                    row = np.full(len(attrs), np.nan, np.float32)
                    row[k] = label
                    paths.append(p), rows.append(row)
        if not (root / a / "yes").is_dir() or not (root / a / "no").is_dir():
            raise UserError(f"{root / a}: needs both yes/ and no/ sub-folders of images")
    return load_images(paths, cfg.input_size), Targets(attrs, ["prob"] * len(attrs), np.stack(rows),
                                                       {"kind": "folder", "root": str(root)})


def csv_data(path: Path, cfg: PredictorConfig) -> tuple[np.ndarray, Targets]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or reader.fieldnames[0] != "path" or len(reader.fieldnames) < 2:
            raise UserError(f"{path}: expected a header 'path,<name>,...', got {reader.fieldnames}")
        names = reader.fieldnames[1:]
        paths, rows = [], []
        for i, rec in enumerate(reader, start=2):
            img = (path.parent / rec["path"]).resolve()
            try:
                rows.append([float(rec[n]) if rec[n] not in ("", None) else np.nan for n in names])
            except ValueError:
                raise UserError(f"{path}:{i}: scores must be numbers or empty") from None
            paths.append(img)
    values = np.asarray(rows, np.float32)
    kinds = ["prob" if np.nanmin(values[:, k]) >= 0 and np.nanmax(values[:, k]) <= 1 else "reg"
             for k in range(len(names))]
    return load_images(paths, cfg.input_size), Targets(names, kinds, values, {"kind": "csv", "path": str(path)})


def load_images(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if not paths:
        raise UserError("no training images found")
    out = np.empty((len(paths), size[0], size[1], 3), np.uint8)
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                out[i] = np.asarray(im.convert("RGB").resize((size[1], size[0]), Image.BILINEAR))
        except OSError as e:
            raise UserError(f"{p}: cannot read image: {e}") from None
    return out


# ----------------------------------------------------------------------------- training


def train_classifier(images: np.ndarray, targets: Targets, cfg: PredictorConfig, out_dir: Path,
                     log=print) -> dict:
    """Fit, report validation metrics, save model.safetensors + config.json; return the config dict."""
    from safetensors.torch import save_file
    from pipeline.progress import progress_bar

    torch.manual_seed(cfg.seed)
    n = len(images)
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_val = max(1, int(n * cfg.val_fraction))
    val, train = perm[:n_val], perm[n_val:]
    reg = np.array([k == "reg" for k in targets.kinds])
    mean = np.where(reg, np.nanmean(targets.values[train], 0), 0.0).astype(np.float32)
    std = np.where(reg, np.nanstd(targets.values[train], 0) + 1e-6, 1.0).astype(np.float32)
    y_all = torch.from_numpy((targets.values - mean) / std)
    x_all = from_uint8(images)
    net = AttributeNet(len(targets.names), cfg.width)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * math.ceil(len(train) / cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    reg_t = torch.from_numpy(reg)
    bar = progress_bar(total=steps, desc="train-predictor", unit="step")
    for epoch in range(cfg.epochs):
        net.train()
        order = torch.from_numpy(np.random.default_rng(cfg.seed + epoch).permutation(train))
        for idx in order.split(cfg.batch):
            loss = masked_loss(net(augment(x_all[idx])), y_all[idx], reg_t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    metrics = evaluate(net, x_all[val], targets.values[val], targets, mean, std)
    log("validation: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    config = {"predictor": "classifier", "architecture": {"num_outputs": len(targets.names), "width": cfg.width},
              "input_size": list(cfg.input_size), "outputs": targets.names, "kinds": targets.kinds,
              "target_mean": mean.tolist(), "target_std": std.tolist(), "train": asdict(cfg),
              "data": targets.source, "n_images": int(n), "metrics": metrics}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return config


def augment(x: torch.Tensor) -> torch.Tensor:
    """Small brightness jitter only: flips would break vanishing_x, colour shifts the lighting labels."""
    return x + 0.04 * torch.randn(x.shape[0], 1, 1, 1)


def masked_loss(pred: torch.Tensor, y: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    known = ~torch.isnan(y)
    y0 = torch.nan_to_num(y)
    per = torch.where(reg, (pred - y0) ** 2, F.binary_cross_entropy_with_logits(pred, y0.clamp(0, 1), reduction="none"))
    return (per * known).sum() / known.sum().clamp_min(1)


@torch.no_grad()
def evaluate(net, x, y, targets: Targets, mean, std) -> dict:
    """prob: accuracy at 0.5 against labels rounded at 0.5; reg: Pearson r."""
    net.eval()
    pred = net(x).numpy()
    out = {}
    for k, (name, kind) in enumerate(zip(targets.names, targets.kinds)):
        known = ~np.isnan(y[:, k])
        if known.sum() < 2:
            continue
        if kind == "prob":
            out[f"{name}_accuracy"] = float(np.mean((pred[known, k] > 0) == (y[known, k] >= 0.5)))
        else:
            p, t = pred[known, k] * std[k] + mean[k], y[known, k]
            out[f"{name}_r"] = float(np.corrcoef(p, t)[0, 1]) if np.std(t) > 0 else float("nan")
    return out


# ----------------------------------------------------------------------------- predictor


class ClassifierPredictor:
    name = "classifier"

    def __init__(self, path: str | Path | None = None, device: str = "cpu", batch: int = 128):
        from safetensors.torch import load_file

        if path is None:
            raise UserError("classifier predictor needs path=DIR (the output of `photoedit train-predictor`)")
        folder = Path(path)
        for f in ("config.json", "model.safetensors"):
            if not (folder / f).is_file():
                raise UserError(f"classifier predictor: missing {folder / f} (train one with `photoedit train-predictor`)")
        self.config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.net = AttributeNet(**self.config["architecture"])
        self.net.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
        self.device = torch.device(device)
        self.net.eval().to(self.device)
        self.attributes = list(self.config["outputs"])
        self.size = tuple(self.config["input_size"])
        self.mean = np.asarray(self.config["target_mean"], np.float32)
        self.std = np.asarray(self.config["target_std"], np.float32)
        self.is_prob = np.array([k == "prob" for k in self.config["kinds"]])
        self.batch = batch

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        outs = []
        for chunk in check_images(images).split(self.batch):
            x = chunk.to(self.device).clamp(-1, 1)
            if tuple(x.shape[2:]) != self.size:
                x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
            outs.append(self.net(x).cpu())
        raw = torch.cat(outs).numpy()
        vals = np.where(self.is_prob, 1 / (1 + np.exp(-raw)), raw * self.std + self.mean)
        return {name: vals[:, k].astype(np.float32) for k, name in enumerate(self.attributes)}

"""Translator bundles: a folder `<attribute>/` with `model.safetensors` + `config.json`.

The bundle describes itself: `config.json["architecture"]` holds the TranslatorConfig
fields, so `load_bundle(dir)` rebuilds the model from the folder alone (no flags, no
pickle). config.json keys (at least):

    attribute       "sunny", "night", ...
    architecture    {TranslatorConfig fields}
    resolution      [H, W] the translator was trained at
    strength_range  [lo, hi] of the GAN edit a = s * hi the slider s in [0, 1] maps to
    provenance      {gan_sha256, boundary_path, boundary_sha256, layers, ...}
    metrics         {held-out figures written by eval-translator}
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from translators.networks import Translator, TranslatorConfig, build_translator

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("attribute", "architecture", "resolution", "strength_range")


class BundleError(ValueError):
    """A bundle folder that is missing a file or holds a corrupt/mismatched one."""


def save_bundle(path: str | Path, model: Translator, config: dict) -> Path:
    """Write `model` and `config` to the folder `path` (created), atomically per file.

    `config["architecture"]` is filled from `model.cfg` (a given value must match it);
    `provenance` and `metrics` default to {}.
    """
    path = Path(path)
    cfg = dict(config)
    arch = model.cfg.to_dict()
    if "architecture" in cfg and TranslatorConfig.from_dict(dict(cfg["architecture"])).to_dict() != arch:
        raise BundleError("config['architecture'] does not match the model's TranslatorConfig")
    cfg["architecture"] = arch
    cfg.setdefault("provenance", {})
    cfg.setdefault("metrics", {})
    cfg["format_version"] = FORMAT_VERSION
    _check_config(cfg, path / CONFIG_FILE)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path / WEIGHTS_FILE, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    write_bundle_config(path, cfg)
    return path


def write_bundle_config(path: str | Path, config: dict) -> None:
    """Replace a bundle's config.json atomically (e.g. to record new metrics)."""
    text = json.dumps(config, indent=2, sort_keys=False) + "\n"
    atomic_write(Path(path) / CONFIG_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_bundle_config(path: str | Path) -> dict:
    """config.json of a bundle, checked for the required keys."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise BundleError(f"{file}: missing; a translator bundle folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{file}: not valid JSON ({e})") from None
    _check_config(cfg, file)
    return cfg


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> tuple[Translator, dict]:
    """(model in eval mode on `device`, config dict) rebuilt from the folder alone."""
    path = Path(path)
    cfg = read_bundle_config(path)
    try:
        model = build_translator(dict(cfg["architecture"]))
    except (TypeError, ValueError) as e:
        raise BundleError(f"{path / CONFIG_FILE}: bad 'architecture': {e}") from None
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise BundleError(f"{weights}: missing; a translator bundle folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise BundleError(f"{weights}: not a readable safetensors file ({e})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise BundleError(f"{weights}: weights do not match the architecture in {CONFIG_FILE}: {e}") from None
    return model.to(device).eval(), cfg


def _check_config(cfg: object, file: Path) -> None:
    if not isinstance(cfg, dict):
        raise BundleError(f"{file}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise BundleError(f"{file}: missing key(s) {missing}")
    res, rng = cfg["resolution"], cfg["strength_range"]
    if not (isinstance(res, (list, tuple)) and len(res) == 2 and all(isinstance(v, int) and v > 0 for v in res)):
        raise BundleError(f"{file}: 'resolution' must be [H, W] positive integers, got {res!r}")
    if not (isinstance(rng, (list, tuple)) and len(rng) == 2 and all(isinstance(v, (int, float)) for v in rng)):
        raise BundleError(f"{file}: 'strength_range' must be [lo, hi] numbers, got {rng!r}")
    if not isinstance(cfg["architecture"], dict):
        raise BundleError(f"{file}: 'architecture' must be an object of TranslatorConfig fields")


def atomic_write(target: str | Path, write: Callable[[Path], object]) -> None:
    """write(tmp) a temp file in target's folder, then rename it to target: never a half
    file. The one atomic writer of translators/ (it never imports pipeline/'s)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

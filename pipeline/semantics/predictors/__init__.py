"""Attribute predictors behind one interface: `score(images [N,3,H,W] in [-1,1]) -> {attribute: [N]}`.

    get_predictor("photometric")                       # no weights, image statistics
    get_predictor("classifier", path="pred_dir/")      # small CNN from `photoedit train-predictor`
    get_predictor("places365", weights_dir="places/")  # user's local Places365 WRN18 + SUN attributes

Each predictor has `.name`, `.attributes` (list of names it returns) and `.score(images)`.
Heavy modules are imported only when their predictor is asked for; importing this package
loads no torch (`photoedit boundary` reads scores through it).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

import numpy as np

from pipeline.errors import UserError

if TYPE_CHECKING:
    import torch

# name -> "module:Class"; the class takes keyword options.
_REGISTRY = {
    "photometric": "pipeline.semantics.predictors.photometric:PhotometricPredictor",
    "classifier": "pipeline.semantics.predictors.classifier:ClassifierPredictor",
    "places365": "pipeline.semantics.predictors.places365:Places365Predictor",
}


class Predictor(Protocol):
    name: str
    attributes: list[str]

    def score(self, images: torch.Tensor) -> dict[str, np.ndarray]: ...


def available_predictors() -> list[str]:
    return sorted(_REGISTRY)


def get_predictor(name: str, **options) -> Predictor:
    """Build predictor `name`; options are passed to its constructor (e.g. path=..., device=...)."""
    if name not in _REGISTRY:
        raise UserError(f"unknown predictor '{name}' (known: {', '.join(available_predictors())})")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def check_images(images: torch.Tensor) -> torch.Tensor:
    """Shape check at the module boundary: float [N, 3, H, W]."""
    import torch

    if not torch.is_tensor(images) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"images must be a float tensor [N, 3, H, W] in [-1, 1], got {shape}")
    return images.float()


def predictor_from_args(name: str, path: str | None = None, device: str = "cpu") -> Predictor:
    """The CLI's `--predictor NAME [--predictor-path PATH]` as a predictor."""
    if name == "classifier":
        return get_predictor(name, path=path, device=device)
    if name == "places365":
        return get_predictor(name, weights_dir=path, device=device)
    if path is not None:
        raise UserError(f"predictor '{name}' takes no --predictor-path")
    return get_predictor(name, device=device)

"""Attribute edits as data augmentation in albumentations and torchvision pipelines.

    import albumentations as A
    from translators.transforms import Attribute
    aug = A.Compose([A.HorizontalFlip(), Attribute("night", strength=(0.3, 1.0), p=0.5)])
    out = aug(image=image, mask=mask)          # out["mask"] is `mask`, untouched

    from torchvision.transforms import v2
    from translators.transforms import AttributeV2
    aug = v2.Compose([v2.RandomHorizontalFlip(), AttributeV2("fog", strength=(0.3, 1.0), p=0.5)])
    img, target = aug(tv_tensors.Image(img), {"boxes": boxes, "masks": masks})  # boxes, masks untouched

An edit only recolours pixels (the translator's change is carried to full resolution
as local colour maps, translators/inference.py), so every edge stays where it was and
masks, boxes and keypoints remain valid: these transforms change images only.

The translator is loaded lazily, once per process (cached by process id): a transform
object holds only its settings, so it pickles cheaply into DataLoader workers (fork or
spawn), and each worker loads the bundle on its first image and reuses it afterwards.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import albumentations as A
import numpy as np
import PIL.Image
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

# (pid, bundles, models_dir, device) -> EditPipeline. Keyed by pid so a forked worker
# never uses the parent's copy (torch thread pools do not survive fork reliably).
_PIPELINES: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def load_pipeline(attribute: str | Sequence[str], models_dir: str | None = None, device: str = "cpu"):
    """The EditPipeline for `attribute` (a name on the search path, a bundle folder, or
    several applied in order), loaded once per process and cached."""
    names = (attribute,) if isinstance(attribute, str) else tuple(attribute)
    key = (os.getpid(), names, models_dir, device)
    with _LOCK:
        pipe = _PIPELINES.get(key)
        if pipe is None:
            from translators.inference import EditConfig, EditPipeline

            # The full-res carry gets this process's torch threads: 1 in a DataLoader worker
            # (whose siblings have the other cores), all of them in a main process.
            config = EditConfig(carry_threads=torch.get_num_threads())
            pipe = EditPipeline.from_pretrained(list(names), device=device, models_dir=models_dir, config=config)
            _PIPELINES[key] = pipe
    return pipe


def _strength_range(strength: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(strength, (int, float)):
        return float(strength), float(strength)
    lo, hi = (float(v) for v in strength)
    if lo > hi:
        raise ValueError(f"strength range must be (lo, hi) with lo <= hi, got {strength!r}")
    return lo, hi


def edit_images(pipe, images: Sequence[np.ndarray], strength: float) -> list[np.ndarray]:
    """Same-size [H, W, 3] arrays (uint8, uint16 or float in [0, 1]) -> edited arrays of
    the same dtype and size; same-size images share network calls (`EditPipeline.edit_arrays`)."""
    return [r.image for r in pipe.edit_arrays([_check_rgb(im) for im in images], strength)]


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"attribute transforms edit RGB images [H, W, 3]; got shape {image.shape}")
    return image


class Attribute(A.ImageOnlyTransform):
    """albumentations transform: edit the image by attribute at a random strength.

    Only `image` / `images` change; masks, bboxes and keypoints pass through unchanged
    (an ImageOnlyTransform). Serialisable with `A.to_dict` / `A.from_dict` (import this
    module before `from_dict` so the class is registered).

    Images: uint8 or float32 in [0, 1], [H, W, 3]; output has the input's dtype and size.
    """

    def __init__(
        self,
        attribute: str | Sequence[str],  # bundle name on the search path, a bundle folder, or several in order
        strength: float | Sequence[float] = (0.3, 1.0),  # fixed s, or (lo, hi) drawn uniformly per call
        models_dir: str | None = None,  # folder searched first for bundles (as `photoedit --models`)
        device: str = "cpu",  # where the translator runs in each worker process
        p: float = 0.5,
    ):
        super().__init__(p=p)
        self.attribute = attribute if isinstance(attribute, str) else list(attribute)
        self.strength = strength if isinstance(strength, (int, float)) else tuple(float(v) for v in strength)
        self._range = _strength_range(strength)
        self.models_dir = None if models_dir is None else str(models_dir)
        self.device = device

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("attribute", "strength", "models_dir", "device")

    def get_params(self) -> dict[str, Any]:
        lo, hi = self._range
        return {"strength": self.py_random.uniform(lo, hi)}

    @property
    def pipeline(self):
        return load_pipeline(self.attribute, self.models_dir, self.device)

    def apply(self, img: np.ndarray, strength: float = 1.0, **params: Any) -> np.ndarray:
        return edit_images(self.pipeline, [img], strength)[0]

    def apply_to_images(self, images: np.ndarray, strength: float = 1.0, **params: Any) -> np.ndarray:
        # One strength per call for the whole batch, as albumentations draws params once.
        return np.stack(edit_images(self.pipeline, list(images), strength))


def _is_plain_tensor(x: Any) -> bool:
    return type(x) is torch.Tensor


class AttributeV2(v2.Transform):
    """torchvision.transforms.v2 transform: edit images by attribute at a random strength.

    Changes PIL images, `tv_tensors.Image` and a plain tensor taken as the image (v2's own
    rule: the first plain tensor when no Image is present); never `BoundingBoxes`, `Mask`
    or any other tv_tensor. Tensors: [..., 3, H, W], uint8 or float in [0, 1], any device;
    output keeps type, dtype, shape and device. One strength is drawn per call (torch RNG,
    so `torch.manual_seed` reproduces it) and used for every image in that call.
    """

    _transformed_types = (tv_tensors.Image, PIL.Image.Image, _is_plain_tensor)

    def __init__(
        self,
        attribute: str | Sequence[str],  # bundle name, bundle folder, or several in order
        strength: float | Sequence[float] = (0.3, 1.0),  # fixed s, or (lo, hi) drawn uniformly per call
        p: float = 0.5,  # probability of editing at all
        models_dir: str | None = None,
        device: str = "cpu",
    ):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.attribute = attribute if isinstance(attribute, str) else list(attribute)
        self.strength = _strength_range(strength)
        self.p = float(p)
        self.models_dir = None if models_dir is None else str(models_dir)
        self.device = device

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        apply = bool(torch.rand(1) < self.p)
        lo, hi = self.strength
        return {"apply": apply, "strength": float(lo + (hi - lo) * torch.rand(1))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not params["apply"]:
            return inpt
        pipe = load_pipeline(self.attribute, self.models_dir, self.device)
        if isinstance(inpt, PIL.Image.Image):
            return pipe(inpt, params["strength"]).image
        return _edit_tensor(pipe, inpt, params["strength"])


def _edit_tensor(pipe, x: torch.Tensor, strength: float) -> torch.Tensor:
    """[..., 3, H, W] uint8 or float [0, 1] -> edited, same type/dtype/shape/device."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"AttributeV2 edits RGB image tensors [..., 3, H, W]; got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"AttributeV2 edits uint8 or float images in [0, 1]; got {x.dtype}")
    flat = x.detach().reshape(-1, *x.shape[-3:]).cpu()
    hwc = flat.permute(0, 2, 3, 1)
    hwc = hwc.numpy() if x.dtype == torch.uint8 else hwc.float().numpy()
    edited = edit_images(pipe, list(np.ascontiguousarray(hwc)), strength)
    out = torch.from_numpy(np.stack(edited)).permute(0, 3, 1, 2).to(x.dtype).reshape(x.shape).to(x.device)
    return tv_tensors.wrap(out, like=x) if isinstance(x, tv_tensors.TVTensor) else out

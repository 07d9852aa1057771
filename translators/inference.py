"""Edit photos of any size with translator bundles: `EditPipeline(...)(image, strength=1.0)`.

    from translators.inference import EditPipeline
    pipe = EditPipeline.from_pretrained("sunny")            # a name on the search path, or a folder
    result = pipe(Image.open("street.jpg"), strength=1.0)   # PIL in -> PIL out; numpy in -> numpy out
    result.image.save("street.sunny.jpg")

Two ways to get a full-resolution result (same size as the input):

* "guided" (default): the network runs once at its working resolution (the bundle's
  training resolution, photo aspect kept); the change is fitted as a per-pixel affine
  colour map and applied to the full-res photo (translators/guided_filter.py).
  Network cost is constant per photo; the rest is linear in pixels, ~20 float ops each.
* "tiled" (`mode="tiled"`): the network itself runs over the full-res photo in
  overlapping tiles blended with linear ramps. Exact network output at every pixel,
  but cost is linear in pixels *times the network* (minutes for 24 MP on a CPU) and
  memory is ~3 float copies of the photo.

Image <-> array conversion is translators/images.py (no torch, so photo I/O can use it);
array <-> tensor is `_to_tensor` / `_from_tensor` here. pipeline/photos/imageio.py handles
files (EXIF, ICC, formats) and hands arrays to `EditPipeline.edit_array`.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from translators.guided_filter import apply_local_affine, fit_local_affine
from translators.images import array_to_pil, pil_to_array
from translators.registry import find_bundle, search_paths


@dataclass
class EditConfig:
    """How an edit is carried from the network's working resolution to the photo."""

    mode: Literal["guided", "tiled"] = "guided"  # guided: net once at working res; tiled: net over full res
    radius: int = 2  # guided filter window radius at working resolution (pixels)
    eps: float = 1e-4  # guided filter regulariser on [0,1] colours; larger = smoother change
    max_aspect_stretch: float = 2.0  # working long side <= this x the bundle's long side (caps strips)
    batch_size: int = 4  # same-size photos (or tiles) per network call
    carry_threads: int = 0  # threads applying the colour transform to one photo; 0 = all cores (a batch
    #                         carrying several photos at once passes its own share per photo)
    tile_size: int = 512  # tiled mode: tile side; larger = closer to one full-image pass, more memory
    tile_overlap: float = 0.25  # tiled mode: overlap between neighbouring tiles, fraction of a tile
    channels_last: bool = True  # NHWC convolutions: faster with oneDNN on CPU and tensor cores on GPU
    half_on_cuda: bool = True  # fp16 autocast when running on CUDA

    def __post_init__(self):
        if self.mode not in ("guided", "tiled"):
            raise ValueError(f"mode must be 'guided' or 'tiled', got {self.mode!r}")
        if self.radius < 0 or self.eps <= 0:
            raise ValueError("radius must be >= 0 and eps > 0")
        if not 0 <= self.tile_overlap < 0.5 or self.tile_size < 8:
            raise ValueError("tile_overlap must be in [0, 0.5) and tile_size >= 8")
        if self.batch_size < 1 or self.carry_threads < 0:
            raise ValueError("batch_size must be >= 1 and carry_threads >= 0")


@dataclass
class LoadedTranslator:
    """One loaded bundle: the network plus what its config.json says about it."""

    attribute: str
    model: torch.nn.Module
    resolution: tuple[int, int]  # training (H, W)
    multiple: int  # input sides must be multiples of this (2 ** downsamplings)
    strength_range: tuple[float, float]
    config: dict
    path: Path | None = None


@dataclass
class EditResult:
    """What an edit returns; `image` has the same type, size and alpha as the input."""

    image: Any  # PIL.Image.Image or np.ndarray, matching the input
    attributes: list[str]
    strength: list[float]
    mode: str
    working_size: tuple[int, int] | None  # (h, w) the network saw; None in tiled mode
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    notes: list[str] = field(default_factory=list)  # conversions worth telling the user


@dataclass
class Prepared:
    """A photo reduced to the network's working resolution (the guide of the guided filter)."""

    small: np.ndarray  # float32 [h, w, 3] in [0, 1]

    @property
    def key(self) -> tuple[int, int]:
        return self.small.shape[:2]


def split_array(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """numpy [H,W], [H,W,1|3|4] (uint8, uint16 or float in [0,1]) -> (rgb, alpha)."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image array [H,W], [H,W,3] or [H,W,4], got shape {image.shape}")
    if image.dtype not in (np.uint8, np.uint16) and not np.issubdtype(image.dtype, np.floating):
        raise ValueError(f"expected uint8, uint16 or float pixels in [0,1], got {image.dtype}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2), None
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3]), image[:, :, 3]
    return image, None


def _to_float01(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) * (1 / 255)
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float32) * (1 / 65535)
    return np.clip(rgb, 0, 1).astype(np.float32)


def _to_tensor(batch: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """float32 [h,w,3] in [0,1] arrays of one size -> [N,3,h,w] in [-1,1]."""
    x = torch.from_numpy(np.stack(batch)).to(device)
    return x.permute(0, 3, 1, 2).mul(2).sub(1)


def _from_tensor(x: torch.Tensor) -> list[np.ndarray]:
    """[N,3,h,w] in [-1,1] -> float32 [h,w,3] arrays in [0,1]."""
    x = x.float().clamp(-1, 1).add(1).mul(0.5).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    return list(x)


# ---------------------------------------------------------------------------------------

def working_size(height: int, width: int, resolution: Sequence[int], multiple: int,
                 max_aspect_stretch: float = 2.0) -> tuple[int, int]:
    """The (h, w) the network sees for a photo: short side = the bundle's short side,
    aspect kept, long side capped (a 20000x10 strip must not become 512000 px long),
    both rounded to the network's multiple."""
    short_target = min(resolution)
    long_cap = max(resolution) * max_aspect_stretch
    scale = short_target / min(height, width)
    h, w = height * scale, width * scale
    if max(h, w) > long_cap:
        k = long_cap / max(h, w)
        h, w = h * k, w * k

    # Reflect padding inside the network needs >= 2 pixels at the bottleneck (and >= 4
    # at the input for the 7x7 conv), so very thin photos get a slightly stretched input.
    min_side = max(2 * multiple, 8)

    def snap(v: float) -> int:
        return max(min_side, int(round(v / multiple)) * multiple)

    return snap(h), snap(w)


def _resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    h, w = size_hw
    H, W = img.shape[:2]
    if (H, W) == (h, w):
        return img
    if h * w > H * W:  # enlarging (tiny photos): bilinear
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    # Shrinking: area averaging (no aliasing). A big reduction first averages 2x2, 4x4 or
    # 8x8 blocks (OpenCV's fast path: 2x faster for 12 MP), the same reduction libjpeg's
    # DCT scaling makes for a reduced JPEG decode (pipeline/imageio.read_preview), so both
    # routes give the network nearly the same input.
    k = 8
    while k >= 2 and (H // k < h or W // k < w or H % k or W % k):
        k //= 2
    if k >= 2:
        img = cv2.resize(img, (W // k, H // k), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflect needs the pad to be smaller than the side; replicate otherwise (tiny inputs).
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, h, w


def load_translator(path: str | Path, device: str | torch.device = "cpu") -> LoadedTranslator:
    """A bundle folder -> LoadedTranslator (network in eval mode on `device`)."""
    from translators.bundle import load_bundle  # heavy; only when a bundle is really loaded

    path = Path(path)
    model, config = load_bundle(path, device=device)
    return translator_from_model(model, config, path)


def translator_from_model(model: torch.nn.Module, config: dict, path: Path | None = None) -> LoadedTranslator:
    for key in ("attribute", "resolution"):
        if key not in config:
            raise ValueError(f"{path or 'bundle'}: config.json lacks '{key}'")
    # The network pads odd sizes itself, but feeding multiples of its stride avoids the
    # pad/crop copies; the stride comes from the model's own config when it has one.
    multiple = getattr(getattr(model, "cfg", None), "multiple", None)
    if multiple is None:
        arch = config.get("architecture") or {}
        multiple = 2 ** int(arch.get("n_downsample", 4))
    lo, hi = config.get("strength_range") or (0.0, 1.0)
    return LoadedTranslator(attribute=str(config["attribute"]), model=model.eval(),
                      resolution=(int(config["resolution"][0]), int(config["resolution"][1])),
                      multiple=int(multiple), strength_range=(float(lo), float(hi)),
                      config=config, path=path)


class EditPipeline:
    """One or more translators applied in order to photos of any size."""

    def __init__(self, translators: Sequence[LoadedTranslator], config: EditConfig | None = None,
                 device: str | torch.device = "cpu"):
        if not translators:
            raise ValueError("EditPipeline needs at least one translator")
        self.translators = list(translators)
        self.config = config or EditConfig()
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" and self.config.half_on_cuda
        for t in self.translators:
            t.model.to(self.device).eval()
            if self.config.channels_last:
                t.model.to(memory_format=torch.channels_last)

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path | Sequence[str | Path], device: str = "cpu",
                        models_dir: str | Path | None = None, config: EditConfig | None = None) -> "EditPipeline":
        """Bundle folder(s) or attribute name(s) looked up on the search path (see translators.registry)."""
        names = [path_or_name] if isinstance(path_or_name, (str, Path)) else list(path_or_name)
        translators = []
        for name in names:
            found = find_bundle(str(name), models_dir)
            if found is None:
                where = "; ".join(f"{src}: {p}" for src, p in search_paths(models_dir))
                raise FileNotFoundError(f"no translator bundle '{name}' (a folder with model.safetensors and "
                                        f"config.json); looked in {where}")
            translators.append(load_translator(found[1], device=device))
        return cls(translators, config=config, device=device)

    @property
    def guide_side(self) -> int:
        """Short side of the network's working image: what a reduced decode must reach."""
        return min(self.translators[0].resolution)

    @property
    def attributes(self) -> list[str]:
        return [t.attribute for t in self.translators]

    def resolve_strengths(self, strength: float | Sequence[float]) -> list[float]:
        if isinstance(strength, (int, float)):
            return [float(strength)] * len(self.translators)
        strength = [float(s) for s in strength]
        if len(strength) != len(self.translators):
            raise ValueError(f"{len(strength)} strengths for {len(self.translators)} attributes")
        return strength

    # -- the one-call API ---------------------------------------------------------------

    def __call__(self, image, strength: float | Sequence[float] = 1.0) -> EditResult:
        """PIL image or numpy array in; the same type, size and alpha out."""
        is_pil = not isinstance(image, np.ndarray)
        if is_pil:
            rgb, alpha, notes = pil_to_array(image)
        else:
            rgb, alpha = split_array(image)
            notes = []
        result = self.edit_array(rgb, strength)
        result.notes = notes + result.notes
        if is_pil:
            if result.image.dtype != np.uint8:
                result.notes.append("16-bit input returned as an 8-bit PIL image (PIL has no 16-bit RGB); "
                                    "pass a numpy array to keep 16 bits")
            result.image = array_to_pil(result.image, alpha)
        elif image.ndim == 3 and image.shape[2] == 4:
            result.image = np.dstack([result.image, alpha])
        return result

    def edit_array(self, rgb: np.ndarray, strength: float | Sequence[float] = 1.0) -> EditResult:
        """rgb [H,W,3] uint8/uint16/float in [0,1] -> EditResult whose image is the same dtype and size."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"edit_array expects rgb [H, W, 3] with H, W >= 1, got {rgb.shape}")
        strengths = self.resolve_strengths(strength)
        t0 = time.perf_counter()
        if self.config.mode == "tiled":
            out = self.edit_tiled(rgb, strengths)
            return EditResult(out, self.attributes, strengths, "tiled", None,
                              {"total_s": time.perf_counter() - t0})
        prep = self.prepare(rgb)
        t1 = time.perf_counter()
        edited = self.run_network([prep], strengths)[0]
        t2 = time.perf_counter()
        out = self.finish(rgb, prep, edited)
        t3 = time.perf_counter()
        return EditResult(out, self.attributes, strengths, "guided", prep.key,
                          {"prepare_s": t1 - t0, "network_s": t2 - t1, "carry_s": t3 - t2, "total_s": t3 - t0})

    # -- the three steps, exposed so the batch runner can overlap them ------------------

    def prepare(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> Prepared:
        """Step 1 (any thread): shrink the photo to the first translator's working size.

        `rgb` may be a reduced copy of the photo (e.g. a JPEG decoded at 1/8 scale, so the
        network can start before the full decode ends); `full_size` = the photo's (H, W)
        then sets the working size, which must match what the full photo would get."""
        first = self.translators[0]
        height, width = full_size or rgb.shape[:2]
        size = working_size(height, width, first.resolution, first.multiple, self.config.max_aspect_stretch)
        # Shrink in the photo's own dtype (cheaper), then convert the small copy.
        return Prepared(_to_float01(_resize(rgb, size)))

    @torch.inference_mode()
    def run_network(self, batch: Sequence[Prepared], strengths: Sequence[float]) -> list[np.ndarray]:
        """Step 2 (one thread): every translator in order on same-size working images."""
        keys = {p.key for p in batch}
        if len(keys) != 1:
            raise ValueError(f"run_network needs same-size inputs, got sizes {sorted(keys)}")
        x = _to_tensor([p.small for p in batch], self.device)
        for t, s in zip(self.translators, strengths):
            h, w = x.shape[-2:]
            if h % t.multiple or w % t.multiple:  # a later bundle with a coarser stride
                x, h, w = _pad_to_multiple(x, t.multiple)
            x = self._forward(t, x, s)[..., :h, :w]
        return _from_tensor(x)

    def finish(self, rgb: np.ndarray, prep: Prepared, edited_small: np.ndarray,
               threads: int | None = None) -> np.ndarray:
        """Step 3 (any thread): fit the change at working res, apply it to the full-res photo.

        threads: for the full-res transform; default the config's, or all cores (one photo
        uses the machine: 12 MP in ~0.19 s on 1 core, ~0.12 s on 2, bench_edit_e2e)."""
        return self.carry(rgb, self.fit(prep, edited_small), threads)

    def fit(self, prep: Prepared, edited_small: np.ndarray) -> np.ndarray:
        """The change from the working image to the network's output, as local affine colour maps."""
        return fit_local_affine(prep.small, edited_small, self.config.radius, self.config.eps)

    def carry(self, rgb: np.ndarray, coef: np.ndarray, threads: int | None = None) -> np.ndarray:
        """Apply fitted colour maps to the full-res photo (threads: as in `finish`)."""
        threads = threads or self.config.carry_threads or os.cpu_count() or 1
        return apply_local_affine(rgb, coef, threads=threads)

    def _forward(self, t: LoadedTranslator, x: torch.Tensor, strength: float) -> torch.Tensor:
        s = torch.full((x.shape[0],), float(strength), device=x.device)
        if self.config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
            y = t.model(x, s)
        if y.shape != x.shape:
            raise RuntimeError(f"translator '{t.attribute}' returned {tuple(y.shape)} for input {tuple(x.shape)}")
        return y.float()

    # -- exact, slow mode ---------------------------------------------------------------

    @torch.inference_mode()
    def edit_tiled(self, rgb: np.ndarray, strengths: Sequence[float]) -> np.ndarray:
        """The network over the full-res photo in overlapping tiles; output dtype = input dtype."""
        img = _to_float01(rgb)
        for t, s in zip(self.translators, strengths):
            img = self._tiled_pass(t, img, s)
        if rgb.dtype == np.uint8:
            return (img * 255 + 0.5).astype(np.uint8)
        if rgb.dtype == np.uint16:
            return (img * 65535 + 0.5).astype(np.uint16)
        return img.astype(rgb.dtype)

    def _tiled_pass(self, t: LoadedTranslator, img: np.ndarray, strength: float) -> np.ndarray:
        # Photos thinner than the network's smallest input (see working_size) are padded
        # with their edge pixels for the pass and cropped back.
        min_side = max(2 * t.multiple, 8)
        H0, W0, _ = img.shape
        if H0 < min_side or W0 < min_side:
            img = np.pad(img, ((0, max(0, min_side - H0)), (0, max(0, min_side - W0)), (0, 0)), mode="edge")
        H, W, _ = img.shape
        # Tiles only bound memory: the network is fully convolutional and sees full-res
        # content whatever the tile size, so big tiles (few seams, few calls) are best.
        tile = max(self.config.tile_size, min_side)
        th, tw = min(tile, H), min(tile, W)
        ys = _tile_starts(H, th, self.config.tile_overlap)
        xs = _tile_starts(W, tw, self.config.tile_overlap)
        ramp = _blend_window(th, tw, self.config.tile_overlap)
        acc = np.zeros((H, W, 3), np.float32)
        weight = np.zeros((H, W, 1), np.float32)
        tiles = [(y, x) for y in ys for x in xs]
        for i in range(0, len(tiles), self.config.batch_size):
            chunk = tiles[i:i + self.config.batch_size]
            xb = _to_tensor([img[y:y + th, x:x + tw] for y, x in chunk], self.device)
            xb, h, w = _pad_to_multiple(xb, t.multiple)
            outs = _from_tensor(self._forward(t, xb, strength)[..., :h, :w])
            for (y, x), o in zip(chunk, outs):
                acc[y:y + th, x:x + tw] += o * ramp
                weight[y:y + th, x:x + tw] += ramp
        return np.clip(acc / weight, 0, 1)[:H0, :W0]


def _tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    if tile >= length:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    starts = list(range(0, length - tile, step))
    return starts + [length - tile]


def _blend_window(th: int, tw: int, overlap: float) -> np.ndarray:
    """Separable linear ramp: tile borders fade out so seams between tiles blend."""
    def ramp(n: int) -> np.ndarray:
        k = max(1, int(math.ceil(n * overlap)))
        i = np.arange(n, dtype=np.float32)
        return np.clip(np.minimum(i + 1, n - i) / (k + 1), 1e-3, 1.0)

    return (ramp(th)[:, None] * ramp(tw)[None, :])[:, :, None]

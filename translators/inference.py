"""Edit photos of any size with translator bundles: `EditPipeline(...)(image, strength=1.0)`.

    from translators.inference import EditPipeline
    pipe = EditPipeline.from_pretrained("sunny")            # a name on the search path, or a folder
    result = pipe(Image.open("street.jpg"), strength=1.0)   # PIL in -> PIL out; numpy in -> numpy out
    result.image.save("street.sunny.jpg")
    results = pipe([photo1, photo2], strength=0.5)          # a list in -> a list out (batched)
    pipe.to("cuda").save_pretrained("my-sunny")             # bundles + pipeline.json; from_pretrained reads it

The steps of an edit (the one path: `__call__`, `edit_array` and the CLI's batch runner,
pipeline/photos/batch.py, all run these three; the batch runner only spreads them over
threads so decoding, the network and encoding of different photos overlap):

    1. prep  = pipe.prepare(rgb)                 any thread: shrink the photo to the network's
                                                 working size (a reduced JPEG decode may stand in)
    2. outs  = pipe.run_network(preps, strength) one thread: every translator in order, one call
                                                 for up to `photos_per_call` same-size photos
    3. image = pipe.finish(prep, out, rgb)       any thread: the edit at the photo's full size

Two ways to get a full-resolution result (same size as the input), `EditConfig.mode`:

* "guided" (default): the network runs once at its working resolution (the bundle's
  training resolution, photo aspect kept); `finish` fits the change as a per-pixel affine
  colour map and applies it to the full-res photo (translators/guided_filter.py).
  Network cost is constant per photo; the rest is linear in pixels, ~20 float ops each.
* "tiled": the network itself runs over the full-res photo in overlapping tiles blended
  with linear ramps (in `run_network`; `prepare` keeps the photo as is). Exact network
  output at every pixel, but cost is linear in pixels *times the network* (minutes for
  24 MP on a CPU) and memory is ~3 float copies of the photo.

Image <-> array conversion is translators/images.py (no torch, so photo I/O can use it);
array <-> tensor is `_to_tensor` / `_from_tensor` here. pipeline/photos/imageio.py handles
files (EXIF, ICC, formats). EditConfig lives in translators/edit_config.py (no torch).
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from translators.edit_config import EditConfig
from translators.guided_filter import apply_local_affine, fit_local_affine
from translators.images import array_to_pil, pil_to_array
from translators.registry import require_bundle

__all__ = ["EditConfig", "EditPipeline", "EditResult", "LoadedTranslator", "Prepared", "load_translator",
           "translator_from_model", "working_size", "split_array"]

PIPELINE_FILE = "pipeline.json"  # written by save_pretrained: bundle folders in order + the EditConfig
PIPELINE_FORMAT_VERSION = 1


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
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step (network_s: the whole
    #                                                          call, shared by the photos batched in it)
    notes: list[str] = field(default_factory=list)  # conversions worth telling the user


@dataclass
class Prepared:
    """Step 1's output: a photo ready for the network."""

    image: np.ndarray  # guided: float32 [h, w, 3] in [0, 1] at working size; tiled: the photo itself
    full_size: tuple[int, int]  # (H, W) of the full photo that `finish` must be given

    @property
    def key(self) -> tuple[int, int]:
        """Photos with equal keys can share one `run_network` call."""
        return self.image.shape[:2]


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


def _from_float01(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 in [0, 1] -> `dtype` (uint8, uint16 or float), rounding to nearest."""
    if dtype == np.uint8:
        return (img * 255 + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return (img * 65535 + 0.5).astype(np.uint16)
    return img.astype(dtype)


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
    # DCT scaling makes for a reduced JPEG decode (pipeline/photos/imageio.read_preview), so both
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
    """A network called as `model(x [N,3,H,W] in [-1,1], strength [N])` plus its bundle
    config (at least `attribute` and `resolution`) -> LoadedTranslator."""
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
        self.to(device)

    @property
    def carry_eps(self) -> float:
        """The guided filter's regulariser: the settings', else the bundles' own (EditConfig.carry_eps)."""
        return self.config.carry_eps([t.config for t in self.translators])

    # -- loading, saving, placing --------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path | Sequence[str | Path], device: str = "cpu",
                        models_dir: str | Path | None = None, config: EditConfig | None = None) -> "EditPipeline":
        """Bundle folder(s) or attribute name(s) looked up on the search path (see
        translators.registry), applied in the order given; or a folder written by
        `save_pretrained` (its bundles in their order, and its EditConfig unless `config`)."""
        names = [path_or_name] if isinstance(path_or_name, (str, Path)) else list(path_or_name)
        if len(names) == 1 and (Path(names[0]) / PIPELINE_FILE).is_file():
            return cls._from_saved(Path(names[0]), device, config)
        translators = []
        for name in names:
            translators.append(load_translator(require_bundle(str(name), models_dir), device=device))
        return cls(translators, config=config, device=device)

    @classmethod
    def _from_saved(cls, folder: Path, device: str, config: EditConfig | None) -> "EditPipeline":
        file = folder / PIPELINE_FILE
        try:
            saved = json.loads(file.read_text(encoding="utf-8"))
            names = saved["translators"]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise ValueError("'translators' must be a non-empty list of bundle folder names")
            config = config or EditConfig.from_dict(saved.get("edit") or {})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{file}: not a pipeline file written by EditPipeline.save_pretrained "
                             f"({type(e).__name__}: {e})") from None
        return cls([load_translator(folder / n, device=device) for n in names], config=config, device=device)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write each translator as a bundle folder `<folder>/<attribute>/` (model.safetensors
        + config.json, the format every loader reads) and `pipeline.json` (their order and
        this EditConfig). `from_pretrained(folder)` rebuilds this pipeline; the folder also
        works as `--models DIR`. Returns the folder."""
        from translators.bundle import atomic_write, save_bundle  # heavy; only when saving

        folder = Path(folder)
        names: list[str] = []
        for t in self.translators:
            if not hasattr(t.model, "cfg"):
                raise ValueError(f"translator '{t.attribute}' is a {type(t.model).__name__}, not a "
                                 "translators.networks.Translator: only those can be saved as bundles")
            name, k = t.attribute, 2
            while name in names:  # the same attribute twice: sunny, sunny-2
                name, k = f"{t.attribute}-{k}", k + 1
            save_bundle(folder / name, t.model, t.config)
            names.append(name)
        text = json.dumps({"format_version": PIPELINE_FORMAT_VERSION, "translators": names,
                           "edit": self.config.to_dict()}, indent=2) + "\n"
        atomic_write(folder / PIPELINE_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return folder

    def to(self, device: str | torch.device) -> "EditPipeline":
        """Move every translator to `device` (cpu, cuda, cuda:1, ...); returns self."""
        self.device = torch.device(device)
        self.half = self.device.type == "cuda" and self.config.half_on_cuda
        for t in self.translators:
            t.model.to(self.device).eval()
            if self.config.channels_last:
                t.model.to(memory_format=torch.channels_last)
        return self

    # -- what the pipeline is --------------------------------------------------------------

    @property
    def guide_side(self) -> int:
        """Short side of the network's working image: what a reduced decode must reach."""
        return min(self.translators[0].resolution)

    @property
    def attributes(self) -> list[str]:
        return [t.attribute for t in self.translators]

    @property
    def photos_per_call(self) -> int:
        """Same-size photos one `run_network` call takes: `batch_size` in guided mode; one in
        tiled mode, where `batch_size` counts the tiles of a photo instead."""
        return self.config.batch_size if self.config.mode == "guided" else 1

    def resolve_strengths(self, strength: float | Sequence[float]) -> list[float]:
        """One strength for every translator, or one each."""
        if isinstance(strength, (int, float)):
            return [float(strength)] * len(self.translators)
        strength = [float(s) for s in strength]
        if len(strength) != len(self.translators):
            raise ValueError(f"{len(strength)} strengths for {len(self.translators)} attributes")
        return strength

    # -- the one-call API ---------------------------------------------------------------

    def __call__(self, image, strength: float | Sequence[float] = 1.0):
        """A PIL image or numpy array in; an EditResult whose image has the same type, size
        and alpha out. A list of images in: a list of EditResults out, same-size photos
        sharing network calls."""
        if isinstance(image, (list, tuple)):
            return self._edit_images(list(image), strength)
        return self._edit_images([image], strength)[0]

    def _edit_images(self, images: list, strength) -> list[EditResult]:
        split = []  # (rgb, alpha, notes, is_pil, had_alpha_channel)
        for image in images:
            if isinstance(image, np.ndarray):
                rgb, alpha = split_array(image)
                split.append((rgb, alpha, [], False, image.ndim == 3 and image.shape[2] == 4))
            else:
                rgb, alpha, notes = pil_to_array(image)
                split.append((rgb, alpha, notes, True, False))
        results = self.edit_arrays([s[0] for s in split], strength)
        for result, (_, alpha, notes, is_pil, had_alpha) in zip(results, split):
            result.notes = notes + result.notes
            if is_pil:
                if result.image.dtype != np.uint8:
                    result.notes.append("16-bit input returned as an 8-bit PIL image (PIL has no 16-bit RGB); "
                                        "pass a numpy array to keep 16 bits")
                result.image = array_to_pil(result.image, alpha)
            elif had_alpha:
                result.image = np.dstack([result.image, alpha])
        return results

    def edit_array(self, rgb: np.ndarray, strength: float | Sequence[float] = 1.0) -> EditResult:
        """rgb [H,W,3] uint8/uint16/float in [0,1] -> EditResult whose image is the same dtype and size."""
        return self.edit_arrays([rgb], strength)[0]

    def edit_arrays(self, rgbs: Sequence[np.ndarray], strength: float | Sequence[float] = 1.0) -> list[EditResult]:
        """Several rgb arrays: the three steps, with same-size photos in shared network calls."""
        for rgb in rgbs:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
                raise ValueError(f"expected rgb arrays [H, W, 3] with H, W >= 1, got {rgb.shape}")
        strengths = self.resolve_strengths(strength)
        # 1. Prepare every photo (small copies only, in guided mode).
        preps, prepare_s = [], []
        for rgb in rgbs:
            t0 = time.perf_counter()
            preps.append(self.prepare(rgb))
            prepare_s.append(time.perf_counter() - t0)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, prep in enumerate(preps):
            groups.setdefault(prep.key, []).append(i)
        results: list[EditResult | None] = [None] * len(rgbs)
        for indices in groups.values():
            for k in range(0, len(indices), self.photos_per_call):
                chunk = indices[k:k + self.photos_per_call]
                # 2. One network call per chunk of same-size photos.
                t0 = time.perf_counter()
                outs = self.run_network([preps[i] for i in chunk], strengths)
                network_s = time.perf_counter() - t0
                # 3. Finish each photo of the chunk before the next call (bounded memory).
                for i, out in zip(chunk, outs):
                    t0 = time.perf_counter()
                    image = self.finish(preps[i], out, rgbs[i])
                    finish_s = time.perf_counter() - t0
                    guided = self.config.mode == "guided"
                    results[i] = EditResult(image, self.attributes, strengths, self.config.mode,
                                            preps[i].key if guided else None,
                                            {"prepare_s": prepare_s[i], "network_s": network_s,
                                             "finish_s": finish_s,
                                             "total_s": prepare_s[i] + network_s + finish_s})
        return results

    # -- the three steps of an edit ---------------------------------------------------------

    def prepare(self, rgb: np.ndarray, full_size: tuple[int, int] | None = None) -> Prepared:
        """Step 1 (any thread): the photo as the network's input.

        Guided mode: shrunk to the first translator's working size, as float in [0, 1].
        `rgb` may be a reduced copy of the photo (e.g. a JPEG decoded at 1/8 scale, so the
        network can start before the full decode ends); `full_size` = the photo's (H, W)
        then sets the working size, which must match what the full photo would get.
        Tiled mode: the photo itself, untouched (the network runs over every pixel)."""
        height, width = full_size or rgb.shape[:2]
        if self.config.mode == "tiled":
            if (height, width) != rgb.shape[:2]:
                raise ValueError("tiled mode runs the network on the full photo: a reduced copy cannot stand in")
            return Prepared(rgb, (height, width))
        first = self.translators[0]
        size = working_size(height, width, first.resolution, first.multiple, self.config.max_aspect_stretch)
        # Shrink in the photo's own dtype (cheaper), then convert the small copy.
        return Prepared(_to_float01(_resize(rgb, size)), (height, width))

    @torch.inference_mode()
    def run_network(self, batch: Sequence[Prepared], strength: float | Sequence[float] = 1.0) -> list[np.ndarray]:
        """Step 2 (one thread at a time; it uses torch's threads): every translator in order.

        Guided mode: one network call for the batch, whose photos must share a working
        size (`Prepared.key`). Tiled mode: each photo in overlapping tiles, `batch_size`
        tiles per call. Returns float32 [h, w, 3] arrays in [0, 1], one per photo."""
        strengths = self.resolve_strengths(strength)
        if self.config.mode == "tiled":
            return [self._tiled(p.image, strengths) for p in batch]
        keys = {p.key for p in batch}
        if len(keys) != 1:
            raise ValueError(f"run_network needs same-size inputs, got sizes {sorted(keys)}")
        x = _to_tensor([p.image for p in batch], self.device)
        for t, s in zip(self.translators, strengths):
            h, w = x.shape[-2:]
            if h % t.multiple or w % t.multiple:  # a later bundle with a coarser stride
                x, h, w = _pad_to_multiple(x, t.multiple)
            x = self._forward(t, x, s)[..., :h, :w]
        return _from_tensor(x)

    def finish(self, prep: Prepared, edited: np.ndarray, photo: np.ndarray | Callable[[], np.ndarray],
               threads: int | None = None) -> np.ndarray:
        """Step 3 (any thread): the edit at the photo's full size, in the photo's dtype.

        Guided mode: the change from `prep` to the network's output `edited` is fitted at
        working resolution as local affine colour maps, then applied to the full-res photo.
        Tiled mode: `edited` already is full size; only its dtype is converted.
        photo: the full-res rgb, or a function returning it, called after the fit, so a full
        decode still running in another thread overlaps the fit.
        threads: for the full-res transform; default the config's `carry_threads`, or all
        cores (one photo uses the machine: 12 MP in ~0.19 s on 1 core, ~0.12 s on 2)."""
        coef = None
        if self.config.mode == "guided":
            coef = fit_local_affine(prep.image, edited, self.config.radius, self.carry_eps)
        rgb = photo() if callable(photo) else photo
        if rgb.shape[:2] != tuple(prep.full_size):
            raise ValueError(f"finish got a photo of {rgb.shape[:2]}, but it was prepared for {prep.full_size}")
        if coef is None:
            return _from_float01(edited, rgb.dtype)
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

    # -- tiled mode: the network over every pixel ----------------------------------------

    def _tiled(self, rgb: np.ndarray, strengths: Sequence[float]) -> np.ndarray:
        img = _to_float01(rgb)
        for t, s in zip(self.translators, strengths):
            img = self._tiled_pass(t, img, s)
        return img

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

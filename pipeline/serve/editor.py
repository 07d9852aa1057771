"""The photo editor behind the page: uploads, previews while sliding, full-resolution downloads.

Two paths, on purpose:

* preview (every slider move): the upload is decoded once and kept as a copy whose long
  side is at most `preview_max_side`; a move runs `EditPipeline.edit_array` on that copy,
  shrunk to the screen's size. The network cost is the same as for the full photo (it
  always runs at the bundle's working resolution); the carry is over ~1-4 MP instead of 12+.
* download: the uploaded file goes through the CLI's own batch runner
  (`pipeline.photos.batch.plan_jobs` + `run_batch`, same options), so the file is what
  `photoedit --attribute A --strength S photo` writes: EXIF, ICC, alpha, 16 bits, the
  EXIF Software stamp, byte for byte.

Uploads live in their own folders under the server's work folder, stored under a
name the server makes; at most `max_photos` are kept (least recently used forgotten).
"""
from __future__ import annotations

import io
import math
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.photos import batch
from pipeline.photos.imageio import READ_EXTENSIONS, PhotoError, read_photo
from pipeline.serve.settings import RequestError, ServeConfig, plain_file_name
from translators.images import to_uint8

MAX_STRENGTH = 3.0  # |strength| accepted from a request (the CLI warns outside [0, 1]; the page slides 0..1)


@dataclass
class Attribute:
    """One translator the editor offers as a slider."""

    name: str
    source: str  # "run", "--models", "$PHOTOEDIT_MODELS", "user data", "shipped"
    path: Path
    description: str = ""
    gan_strength_range: tuple[float, float] | None = None  # the GAN edit distance a = s * hi

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, "description": self.description}


def find_attributes(models_dir: Path | None = None, run_dir: Path | None = None) -> dict[str, Attribute]:
    """Translators of the run folder first (`translator-<a>/<a>/`), then the installed ones
    in `photoedit list`'s order; a name already found shadows later ones."""
    from translators.registry import describe_bundle, is_bundle, list_bundles

    rows: list[tuple[str, str, Path]] = []
    if run_dir is not None:
        for folder in sorted(Path(run_dir).glob("translator-*")):
            name = folder.name[len("translator-"):]
            if is_bundle(folder / name):
                rows.append((name, "run", folder / name))
    rows += list_bundles(models_dir)
    found: dict[str, Attribute] = {}
    for name, source, path in rows:
        if name in found:
            continue
        info = describe_bundle(name, source, path)
        rng = info.get("strength_range")
        found[name] = Attribute(name, source, Path(path), str(info.get("description") or ""),
                                tuple(float(v) for v in rng) if rng else None)
    return found


@dataclass
class StoredPhoto:
    id: str
    name: str  # as uploaded: shown, and used for the download's name only
    folder: Path  # this photo's own folder under the work folder
    src: Path  # the uploaded bytes, under a name the server made
    width: int
    height: int
    format: str
    preview: np.ndarray  # uint8 [h, w, 3], long side <= preview_max_side
    alpha: np.ndarray | None  # uint8 [h, w] or None
    notes: list[str] = field(default_factory=list)
    sized: dict = field(default_factory=dict)  # long side -> (rgb, alpha) of the last screen size asked
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `sized`
    download_lock: threading.Lock = field(default_factory=threading.Lock)  # one full-res edit at a time

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "width": self.width, "height": self.height,
                "format": self.format, "has_alpha": self.alpha is not None, "notes": self.notes,
                "preview_size": [int(self.preview.shape[1]), int(self.preview.shape[0])]}


def parse_edits(items, attributes: dict[str, Attribute]) -> list[tuple[str, float]]:
    """[[name, strength], ...] or "name:s,name:s" -> [(name, strength)] in order, zeros dropped."""
    if isinstance(items, str):
        items = [part.split(":", 1) if ":" in part else [part, "1"] for part in items.split(",") if part]
    if not isinstance(items, list) or len(items) > 16:
        raise RequestError("edits: expected a list of [attribute, strength] pairs (at most 16)")
    edits = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise RequestError(f"edits: {item!r} is not an [attribute, strength] pair")
        name, value = str(item[0]), item[1]
        if name not in attributes:
            raise RequestError(f"no translator '{name[:80]}' is installed "
                               f"(installed: {', '.join(attributes) or 'none'})")
        try:
            s = float(value)
        except (TypeError, ValueError):
            raise RequestError(f"strength of {name}: {value!r} is not a number") from None
        if not math.isfinite(s) or abs(s) > MAX_STRENGTH:
            raise RequestError(f"strength of {name}: {s} is outside [-{MAX_STRENGTH}, {MAX_STRENGTH}]")
        if s != 0.0:
            edits.append((name, s))
    return edits


def edit_key(edits: list[tuple[str, float]]) -> str:
    """`[(sunny, 0.5), (night, 1)]` -> `sunny0.5+night1`: names a download or folder-mode output."""
    return "+".join(f"{a}{s:g}" for a, s in edits)


class PhotoEditor:
    """Uploaded photos, their previews and downloads; safe to call from several threads."""

    def __init__(self, cfg: ServeConfig, attributes: dict[str, Attribute], work_dir: Path):
        self.cfg = cfg
        self.attributes = attributes
        self.root = work_dir / "photos"
        self.root.mkdir(parents=True, exist_ok=True)
        self._photos: OrderedDict[str, StoredPhoto] = OrderedDict()
        self._pipes: OrderedDict[tuple[str, ...], object] = OrderedDict()
        self._lock = threading.Lock()

    # -- uploads ---------------------------------------------------------------------------

    def add(self, name: str, data: bytes) -> StoredPhoto:
        """Store and decode an upload; RequestError (naming the file) if it is not a usable image."""
        name = plain_file_name(name)
        ext = Path(name).suffix.lower()
        if ext not in READ_EXTENSIONS:
            raise RequestError(f"{name}: not an image type photoedit reads (use one of "
                               f"{', '.join(sorted(READ_EXTENSIONS))})")
        if not data:
            raise RequestError(f"{name}: empty file (0 bytes)")
        pid = uuid.uuid4().hex
        folder = self.root / pid
        folder.mkdir()
        src = folder / f"photo{Path(name).suffix}"  # the CLI keeps the suffix as written
        try:
            src.write_bytes(data)
            photo = read_photo(src, max_pixels=self.cfg.max_pixels)
        except PhotoError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise RequestError(f"{name}: {e.reason}") from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        rgb, alpha = to_uint8(photo.rgb), None if photo.alpha is None else to_uint8(photo.alpha)
        rgb, alpha = _fit_long_side(rgb, alpha, self.cfg.preview_max_side)
        height, width = photo.rgb.shape[:2]
        notes, fmt = list(photo.notes), photo.format or ""
        del photo  # the full-size arrays are not kept: downloads decode the file again, as the CLI does
        item = StoredPhoto(pid, name, folder, src, width, height, fmt, rgb, alpha, notes)
        with self._lock:
            self._photos[pid] = item
            while len(self._photos) > self.cfg.max_photos:
                _, old = self._photos.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        return item

    def get(self, pid: str) -> StoredPhoto:
        with self._lock:
            item = self._photos.get(pid)
            if item is None:
                raise RequestError(f"no photo {pid[:40]!r} here (forgotten after {self.cfg.max_photos} newer "
                                   "uploads, or the server restarted): upload it again", 404)
            self._photos.move_to_end(pid)
            return item

    def forget_all(self) -> None:
        with self._lock:
            for item in self._photos.values():
                shutil.rmtree(item.folder, ignore_errors=True)
            self._photos.clear()

    # -- previews --------------------------------------------------------------------------

    def original(self, pid: str, side: int) -> bytes:
        item = self.get(pid)
        rgb, alpha = self._sized(item, side)
        return encode_preview(rgb, alpha)

    def preview(self, pid: str, edits: list[tuple[str, float]], side: int) -> tuple[bytes, float]:
        """The edit at screen size: (encoded image, seconds spent editing)."""
        item = self.get(pid)
        rgb, alpha = self._sized(item, side)
        t0 = time.perf_counter()
        if edits:
            pipe = self.pipeline([a for a, _ in edits])
            rgb = pipe.edit_array(rgb, [s for _, s in edits]).image
        seconds = time.perf_counter() - t0
        return encode_preview(rgb, alpha), seconds

    def _sized(self, item: StoredPhoto, side: int) -> tuple[np.ndarray, np.ndarray | None]:
        side = int(min(max(side, 64), self.cfg.preview_max_side))
        with item.lock:
            if side not in item.sized:
                item.sized.clear()  # one screen size at a time
                item.sized[side] = _fit_long_side(item.preview, item.alpha, side)
            return item.sized[side]

    def pipeline(self, names: list[str]):
        """The EditPipeline for these attributes in this order (loaded once, kept)."""
        key = tuple(names)
        with self._lock:
            pipe = self._pipes.get(key)
            if pipe is not None:
                self._pipes.move_to_end(key)
                return pipe
        from translators.inference import EditPipeline

        pipe = EditPipeline.from_pretrained([str(self.attributes[n].path) for n in names])
        with self._lock:
            self._pipes[key] = pipe
            while len(self._pipes) > 16:
                self._pipes.popitem(last=False)
        return pipe

    # -- downloads -------------------------------------------------------------------------

    def download(self, pid: str, edits: list[tuple[str, float]]) -> tuple[Path, str]:
        """(file, download name): the photo edited at full resolution by the CLI's batch runner."""
        if not edits:
            raise RequestError("no edit to apply: move a slider above 0 first")
        item = self.get(pid)
        attrs = [a for a, _ in edits]
        name = batch.output_name(Path(item.name), attrs)
        dst = item.folder / "out" / edit_key(edits) / batch.output_name(item.src, attrs)
        with item.download_lock:  # two clicks on Download: one edit, the second reuses its file
            if not dst.is_file():
                pipe = self.pipeline(attrs)
                jobs = batch.plan_jobs([str(item.src)], attrs, str(dst))
                opts = batch.BatchOptions(quality=self.cfg.quality, max_pixels=self.cfg.max_pixels,
                                          workers=self.cfg.workers, strength=[s for _, s in edits], progress=False)
                summary = batch.run_batch(pipe, jobs, opts, log=lambda msg: None)
                if summary.failed:
                    raise RequestError(f"{item.name}: {summary.failed[0]['reason']}", 500)
        return dst, name


def _fit_long_side(rgb: np.ndarray, alpha: np.ndarray | None, side: int) -> tuple[np.ndarray, np.ndarray | None]:
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb, alpha
    k = side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb, None if alpha is None else cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)


def encode_preview(rgb: np.ndarray, alpha: np.ndarray | None) -> bytes:
    """JPEG for the screen (fast), PNG when the photo has alpha (so the page shows it)."""
    buf = io.BytesIO()
    if alpha is None:
        Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=90)
    else:
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def preview_media_type(data: bytes) -> str:
    return "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"

"""Reading and writing photos the way a photographer expects.

* Upright: EXIF orientation is applied on read; EXIF is written back with orientation 1.
* Colour: the ICC profile is carried over (except a CMYK profile, which no longer fits).
* Modes: L/LA/P/RGBA/CMYK/16-bit are turned into rgb (+ alpha) arrays; alpha is never
  edited and is written back untouched; 16-bit PNG in -> edited in float -> 16-bit PNG out.
* Safety: a pixel limit (`max_pixels`) checked from the header before decoding, and
  writes go to a temp file in the destination folder then `os.replace`, so a crash or
  Ctrl-C never leaves a half-written output (live temp files are removed on interrupt).
* Animated GIF/WebP/APNG: the first frame is edited and a warning says so; GIF outputs
  default to PNG (a GIF palette would undo the edit's colours), see `default_extension`.

Every failure is a `PhotoError` whose message names the file and the problem.
"""
from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.fileio import atomic_write_bytes
from translators.images import pil_to_array, to_uint8

DEFAULT_MAX_PIXELS = 200_000_000
ORIENTATION_TAG = 0x0112
# Extension -> PIL format name. Anything else is refused with a clear message.
WRITE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF"}
READ_EXTENSIONS = set(WRITE_FORMATS) | {".jfif", ".jpe", ".ppm", ".pgm", ".pnm"}


class PhotoError(Exception):
    """A file that cannot be read or written; str() is `path: reason`."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class Photo:
    """An upright photo as arrays plus the metadata to write back."""

    rgb: np.ndarray  # [H, W, 3] uint8 or uint16
    alpha: np.ndarray | None = None  # [H, W] same dtype as rgb, untouched by edits
    exif: bytes | None = None  # orientation already reset to 1
    icc: bytes | None = None
    format: str | None = None  # the source format, e.g. "JPEG"
    dpi: tuple[float, float] | None = None  # print resolution, kept for layout tools
    notes: list[str] = field(default_factory=list)  # conversions/warnings to show the user

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as PIL counts them."""
        return self.rgb.shape[1], self.rgb.shape[0]


def default_extension(src: Path) -> str:
    """Output extension for a default name: the input's, except GIF -> PNG and odd ones -> PNG."""
    ext = src.suffix.lower()
    if ext == ".gif" or ext not in WRITE_FORMATS:
        return ".png"
    return src.suffix


# ------------------------------------------------------------------------------ reading

def read_photo(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decode `path` into an upright Photo, or raise PhotoError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise PhotoError(path, "is a folder, not an image") from None
    except OSError as e:
        raise PhotoError(path, f"cannot read: {e.strerror or e}") from None
    if not data:
        raise PhotoError(path, "empty file (0 bytes)")
    try:
        return _decode(path, data, max_pixels)
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(path, f"not an image (contents are not a format Pillow can read, whatever "
                               f"the '{path.suffix}' extension says)") from None
    except Image.DecompressionBombError as e:
        raise PhotoError(path, f"too many pixels: {e}") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise PhotoError(path, f"corrupt or truncated image data ({e})") from None


def _decode(path: Path, data: bytes, max_pixels: int) -> Photo:
    # Pillow refuses images above 2x its own MAX_IMAGE_PIXELS inside open(), before our
    # clearer check could run; let `max_pixels` be the limit that applies. Only ever
    # raised (never lowered), so concurrent readers cannot undo each other.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our check below says it better
        im = Image.open(io.BytesIO(data))
    width, height = im.size
    if width * height > max_pixels:
        raise PhotoError(path, f"{width}x{height} = {width * height:,} pixels exceeds the limit of "
                               f"{max_pixels:,} (--max-pixels; raise it if you trust this file)")
    if width < 1 or height < 1:
        raise PhotoError(path, f"has no pixels ({width}x{height})")
    notes: list[str] = []
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        notes.append(f"animated ({frames} frames): only the first frame is edited")
        im.seek(0)
    exif = im.getexif()
    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    icc = im.info.get("icc_profile")
    if im.mode == "CMYK" and icc:
        icc = None  # a CMYK profile would mislabel the RGB output
    fmt = im.format
    dpi = im.info.get("dpi")
    if dpi is not None and orientation in (5, 6, 7, 8):
        dpi = (dpi[1], dpi[0])  # axes swap with the rotation
    with warnings.catch_warnings():
        # Our own max_pixels check above is the limit that applies; Pillow's warning is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if fmt == "PNG" and _png_bit_depth(data) == 16:
            rgb, alpha = _decode_png16(data, path)
        else:
            im.load()
            rgb, alpha, more = pil_to_array(im)
            notes += more
    rgb, alpha = _orient(rgb, orientation), (_orient(alpha, orientation) if alpha is not None else None)
    if orientation != 1:
        exif[ORIENTATION_TAG] = 1
    return Photo(rgb=np.ascontiguousarray(rgb), alpha=None if alpha is None else np.ascontiguousarray(alpha),
                 exif=exif.tobytes() if len(exif) else None, icc=icc, format=fmt,
                 dpi=_valid_dpi(dpi), notes=notes)


def read_preview(path: str | Path, short_side: int, max_pixels: int = DEFAULT_MAX_PIXELS
                 ) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A fast reduced decode of a JPEG: (upright uint8 rgb with short side >= `short_side`,
    upright (H, W) of the full photo).

    libjpeg scales by 1/2, 1/4 or 1/8 while decoding (DCT scaling), so a 12-MP photo
    shrinks to 500x375 in a third of a full decode. For the network's small input only;
    None for anything but a plain RGB JPEG that can be reduced (read_photo then does the
    work and reports any problem with the file).
    """
    try:
        with Image.open(path) as im:
            width, height = im.size
            if im.format != "JPEG" or im.mode != "RGB" or width * height > max_pixels:
                return None
            orientation = int(im.getexif().get(ORIENTATION_TAG, 1) or 1)
            if not draft_short_side(im, short_side):
                return None  # no reduction: the full decode gives the same for free
            im.load()
            rgb = np.asarray(im)
    except Exception:  # noqa: BLE001 - the full read names the problem
        return None
    full = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    return np.ascontiguousarray(_orient(rgb, orientation)), full


def draft_short_side(im: Image.Image, short_side: int) -> bool:
    """Before load(): let a JPEG decode at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling)
    while its short side stays >= `short_side`. True if that reduces it; other formats
    are left alone."""
    size = im.size
    scale = short_side / max(1, min(size))
    im.draft("RGB", (math.ceil(size[0] * scale), math.ceil(size[1] * scale)))
    return im.size != size


def _valid_dpi(dpi) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _png_bit_depth(data: bytes) -> int:
    # IHDR is always the first chunk: 8-byte signature, length, "IHDR", w, h, bit depth.
    return data[24] if len(data) > 24 and data[12:16] == b"IHDR" else 8


def _decode_png16(data: bytes, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit PNG: Pillow would cut RGB to 8 bits, so decode with OpenCV (BGR order)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise PhotoError(path, "corrupt or truncated 16-bit PNG")
    arr = arr.astype(np.uint16, copy=False)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2), None
    if arr.shape[2] == 2:  # grey + alpha
        return np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1]
    if arr.shape[2] == 4:
        return np.ascontiguousarray(arr[:, :, 2::-1]), arr[:, :, 3]
    return np.ascontiguousarray(arr[:, :, ::-1]), None


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) so the array is upright."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return np.swapaxes(a, 0, 1)
    if orientation == 6:
        return np.swapaxes(a, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(a, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(a, 0, 1)[::-1]
    return a


# ------------------------------------------------------------------------------ writing

SOFTWARE_TAG = 0x0131


def with_software(exif: bytes | None, text: str) -> bytes:
    """EXIF bytes with the Software tag set to `text` (provenance of the edit)."""
    tags = Image.Exif()
    if exif:
        tags.load(exif)
    tags[SOFTWARE_TAG] = text
    return tags.tobytes()


def software_of(path: str | Path) -> str | None:
    """The EXIF Software tag of an image file, read from its header only (None if absent)."""
    try:
        with Image.open(path) as im:
            value = im.getexif().get(SOFTWARE_TAG)
    except (OSError, SyntaxError, ValueError):
        return None
    return str(value).rstrip("\x00") if value else None


def encode_photo(photo: Photo, fmt: str, quality: int = 95) -> bytes:
    """Photo -> file bytes in `fmt` (a PIL format name), keeping EXIF, ICC and alpha."""
    if fmt == "PNG" and photo.rgb.dtype == np.uint16:
        return _encode_png16(photo)
    rgb8 = to_uint8(photo.rgb)
    alpha = None if photo.alpha is None else to_uint8(photo.alpha)
    if alpha is not None and fmt in ("JPEG", "BMP"):
        alpha = None  # no alpha in these formats; the caller adds a note
    im = Image.fromarray(rgb8, "RGB") if alpha is None else Image.fromarray(np.dstack([rgb8, alpha]), "RGBA")
    kwargs: dict = {}
    if photo.icc:
        kwargs["icc_profile"] = photo.icc
    if photo.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["exif"] = photo.exif
    if photo.dpi and fmt in ("JPEG", "PNG", "TIFF"):
        kwargs["dpi"] = photo.dpi
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    if fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2  # keep colour detail at high quality
    if fmt == "GIF":
        im = im.convert("RGBA").quantize(256) if alpha is not None else im.quantize(256)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _encode_png16(photo: Photo) -> bytes:
    """16-bit PNG via OpenCV, then iCCP/eXIf chunks added (OpenCV writes neither)."""
    bgr = photo.rgb[:, :, ::-1]
    arr = bgr if photo.alpha is None else np.dstack([bgr, photo.alpha.astype(np.uint16)])
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("OpenCV could not encode a 16-bit PNG")
    png = buf.tobytes()
    chunks = []
    if photo.icc:
        chunks.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(photo.icc)))
    if photo.exif:
        exif = photo.exif[6:] if photo.exif.startswith(b"Exif\x00\x00") else photo.exif
        chunks.append(_png_chunk(b"eXIf", exif))
    ihdr_end = 8 + 25  # signature + IHDR (length 4 + type 4 + 13 data + crc 4)
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_photo(path: str | Path, photo: Photo, quality: int = 95) -> list[str]:
    """Encode then write atomically (temp file in the same folder, then os.replace).

    Returns notes (e.g. alpha dropped for JPEG). Raises PhotoError naming the path.
    """
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PhotoError(path, f"unknown output extension '{path.suffix}' (use one of "
                               f"{', '.join(sorted(WRITE_FORMATS))})")
    notes = []
    if photo.alpha is not None and fmt in ("JPEG", "BMP"):
        notes.append(f"alpha channel dropped: {fmt} has none (write .png or .webp to keep it)")
    if photo.rgb.dtype == np.uint16 and fmt != "PNG":
        notes.append(f"16-bit written as 8-bit: {fmt} output (write .png to keep 16 bits)")
    try:
        data = encode_photo(photo, fmt, quality)
    except (OSError, ValueError) as e:
        raise PhotoError(path, f"cannot encode as {fmt}: {e}") from None
    _atomic_write(path, data)
    return notes


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, durable=True)
    except OSError as e:
        raise PhotoError(path, f"cannot write to folder {path.parent}: {e.strerror or e}") from None

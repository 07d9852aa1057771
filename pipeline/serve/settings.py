"""What `photoedit serve` may do: its settings, its limits, and the one check a request's names pass.

No path from a request reaches the file system unchecked: an uploaded file's name is only
displayed and used in the download's name (the file itself is stored under a name the
server makes), and a folder named in a request must resolve inside `--folders`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServeConfig:
    run_dir: Path | None = None  # a `photoedit run` folder: GAN explorer + its translators
    models_dir: Path | None = None  # translator bundles searched first (as `photoedit --models`)
    folders: Path | None = None  # folder mode reads only below this folder; None = folder mode off
    out_dir: Path = Path("photoedit-serve-out")  # folder mode writes only below this folder
    work_dir: Path | None = None  # uploads and downloads (a temp folder by default, removed at exit)
    max_upload_mb: float = 50.0  # bigger uploads are refused before they are read
    max_pixels: int = 50_000_000  # bigger images are refused from their header (decompression bombs)
    preview_max_side: int = 2048  # the long side of the kept preview copy of an upload
    max_photos: int = 8  # uploads kept at once; the least recently used is forgotten
    max_pending: int = 8  # heavy requests (upload, preview, download) admitted at once; more get 503
    busy_workers: int = 2  # of those, how many compute at once (the others wait their turn)
    workers: int = min(2, os.cpu_count() or 1)  # the batch runner's I/O threads (as the CLI's --workers)
    quality: int = 95  # JPEG/WebP quality of downloads (as the CLI's --quality)

    def __post_init__(self):
        if self.max_upload_mb <= 0 or self.max_pixels < 1:
            raise ValueError("max_upload_mb and max_pixels must be positive")
        if self.max_photos < 1 or self.max_pending < 1 or self.busy_workers < 1 or self.workers < 1:
            raise ValueError("max_photos, max_pending, busy_workers and workers must be >= 1")
        if not 256 <= self.preview_max_side <= 8192:
            raise ValueError("preview_max_side must be in 256..8192")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP code, str() the message shown to the user."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")


def plain_file_name(name: str) -> str:
    """An uploaded file's name, accepted only as a plain name: no folder part, no `..`."""
    if not name or not name.strip():
        raise RequestError("the upload has no file name")
    if len(name) > 255 or _BAD_NAME.search(name):
        raise RequestError(f"file name {name[:80]!r}: too long or has control characters")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise RequestError(f"file name {name!r}: must be a plain file name, with no folder part or '..'")
    return name


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, resolved, refused unless it stays inside `root` (symlinks followed)."""
    if relative is None or _BAD_NAME.search(relative) or Path(relative).is_absolute():
        raise RequestError(f"folder {relative!r}: give a path relative to the served folder")
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise RequestError(f"folder {relative!r} is outside the served folder")
    return target

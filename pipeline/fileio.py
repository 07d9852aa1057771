"""Atomic file writes for pipeline/: a temp file beside the target, then a rename.

A crash or Ctrl-C never leaves half a file under the real name, and a Ctrl-C handler
can delete the temp files of writes still in flight (`remove_live_temps`). Every writer
in pipeline/ goes through `atomic_write` (gan/ and translators/ have one each of their
own: they never import pipeline/).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable


def _read_umask() -> int:
    # os.umask can only be read by setting it; do it once at import, not per write (threads).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_live_temps: set[Path] = set()
_live_lock = threading.Lock()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any], durable: bool = False) -> None:
    """Call write(f) on a temp file in path's folder, then rename it to path.

    durable: fsync before the rename (a photo the user asked for survives a power cut).
    The file gets the permissions a plain open() would give it (mkstemp makes 0600).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    with _live_lock:
        _live_temps.add(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C in this thread included: never leave the temp behind
        tmp.unlink(missing_ok=True)
        raise
    finally:
        with _live_lock:
            _live_temps.discard(tmp)


def remove_live_temps() -> int:
    """Delete temp files of writes still in progress (called on Ctrl-C); returns how many."""
    with _live_lock:
        temps = list(_live_temps)
        _live_temps.clear()
    for t in temps:
        t.unlink(missing_ok=True)
    return len(temps)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = False) -> None:
    atomic_write(path, lambda f: f.write(data), durable)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def read_json(path: str | Path, missing: str) -> Any:
    """A JSON file's content; a UserError naming the file when it is missing (`missing` says
    what was expected there) or not valid JSON."""
    from pipeline.errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing; {missing}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def read_safetensors(path: str | Path, fmt: str, what: str, hint: str = "") -> tuple[dict, dict]:
    """(metadata, tensors) of a photoedit safetensors file whose metadata says format=`fmt`;
    a ValueError naming the file when it is missing, unreadable, or a file of another kind."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such {what} file{f' ({hint})' if hint else ''}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != fmt:
        raise ValueError(f"{path}: not a photoedit {what} (format={meta.get('format')!r})")
    return meta, tensors


def write_npz_atomic(path: str | Path, arrays: dict) -> None:
    """np.savez through the atomic writer (no pickle: plain arrays only)."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())

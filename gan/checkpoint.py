"""Generator checkpoints that describe themselves: one safetensors file, config in its header.

A generator file holds every parameter and buffer (including `mapping.w_avg` and the
per-layer `noise_const` buffers) plus, in the safetensors metadata, the JSON of its
`GeneratorConfig`, so `load_generator(path)` rebuilds it with no flags repeated. No
pickle is involved anywhere. A training-checkpoint folder (gan/training.py) holds
`generator_ema.safetensors` in this format, so the folder itself can be passed too.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from gan.networks import Generator, GeneratorConfig

FORMAT = "photoedit-stylegan2-generator"
FORMAT_VERSION = "1"
EMA_FILENAME = "generator_ema.safetensors"  # name inside a training-checkpoint folder


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a photoedit generator."""


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """write(tmp) a temp file in path's folder, then rename it to path: a crash never leaves
    half a file. The one atomic writer of gan/ (gan/ never imports pipeline/'s)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial" + path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """safetensors through `atomic_write`."""
    plain = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(plain, tmp, metadata=metadata))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_generator(G: Generator, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Save weights + buffers + config. `extra` (JSON-serialisable) is stored as provenance."""
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(G.cfg.to_dict()),
        "extra": json.dumps(extra or {}),
    }
    path = Path(path)
    atomic_save_file(G.state_dict(), path, metadata)
    return path


def resolve_generator_path(path: str | os.PathLike) -> Path:
    """A generator file, or a folder holding one (a training checkpoint or a run's `latest`)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / EMA_FILENAME, path / "checkpoints" / "latest" / EMA_FILENAME):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{path}: folder holds no {EMA_FILENAME} (nor checkpoints/latest/{EMA_FILENAME})")
    if not path.is_file():
        raise CheckpointError(f"{path}: generator checkpoint not found")
    return path


def read_generator_metadata(path: str | os.PathLike) -> tuple[GeneratorConfig, dict]:
    path = resolve_generator_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a photoedit generator (format={meta.get('format')!r}); "
                              "import other checkpoints with `photoedit import-gan`")
    try:
        cfg = GeneratorConfig.from_dict(json.loads(meta["config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad generator config in header: {e}") from None
    return cfg, json.loads(meta.get("extra", "{}"))


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Rebuild a Generator from the file alone (strict: every tensor must match), in eval mode."""
    path = resolve_generator_path(path)
    cfg, _ = read_generator_metadata(path)
    G = Generator(cfg)
    state = load_file(str(path), device="cpu")
    try:
        G.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored config: {e}") from None
    return G.to(device).eval().requires_grad_(False)

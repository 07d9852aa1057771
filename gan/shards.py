"""Reading sample shards with numpy alone (no torch): the manifest, and the chunks' arrays.

`gan.sampling.sample_shard` writes a shard (layout in its module docstring); commands that
only read one, such as `photoedit boundary`, import this module and so never load torch.
Chunks are written by `np.savez` (uncompressed), so one array of one chunk can be read or
memory-mapped in place (`locate_chunk_arrays`): a reader pays only for the rows it touches.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "photoedit-samples"


class SampleError(ValueError):
    """A shard folder is incomplete, inconsistent, or was made with different settings."""


def read_manifest(shard_dir: str | os.PathLike) -> dict:
    path = Path(shard_dir) / "manifest.json"
    if not path.is_file():
        raise SampleError(f"{shard_dir}: no manifest.json (not a sample shard; make one with `photoedit sample`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SampleError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise SampleError(f"{path}: not a sample shard manifest (format={found!r})")
    for key in ("n", "chunk"):
        if not isinstance(manifest.get(key), int) or manifest[key] < 1:
            raise SampleError(f"{path}: '{key}' must be a positive integer, got {manifest.get(key)!r}")
    return manifest


def chunk_paths(shard_dir: str | os.PathLike, manifest: dict | None = None) -> list[Path]:
    """The shard's chunk files in sample order; every one must exist."""
    shard_dir = Path(shard_dir)
    manifest = manifest or read_manifest(shard_dir)
    n, chunk = manifest["n"], manifest["chunk"]
    paths = [shard_dir / "chunks" / f"{c:06d}.npz" for c in range((n + chunk - 1) // chunk)]
    folder = shard_dir / "chunks"
    present = set(os.listdir(folder)) if folder.is_dir() else set()  # one listing instead of N stat calls
    for path in paths:
        if path.name not in present:
            raise SampleError(f"{path}: missing chunk (the sampling run did not finish; run it again to resume)")
    return paths


def read_samples(shard_dir: str | os.PathLike, keys: tuple[str, ...] = ("z", "w", "seeds")) -> dict[str, np.ndarray]:
    """{"z": [N, z_dim], "w": [N, w_dim], "seeds": [N]} (or just `keys`) concatenated over chunks, in order."""
    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for path in chunk_paths(shard_dir, manifest):
        with np.load(path, allow_pickle=False) as data:
            for k in parts:
                if k not in data.files:
                    raise SampleError(f"{path}: no array '{k}' in this chunk (it has {', '.join(data.files)})")
                parts[k].append(data[k])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    for k, v in out.items():
        if len(v) != manifest["n"]:
            raise SampleError(f"{shard_dir}: chunks hold {len(v)} rows of '{k}', manifest says {manifest['n']}")
    return out


@dataclass(frozen=True)
class ArrayLocation:
    """Where a chunk's array lies in its .npz file: raw C-order rows of `dtype` from byte `offset`."""
    path: Path
    offset: int                # first byte of the array's data
    shape: tuple[int, ...]
    dtype: np.dtype
    header_offset: int         # first byte of the member's local zip header (then .npy header, then data)


def locate_chunk_array(path: str | os.PathLike, key: str) -> ArrayLocation | None:
    """Where array `key` of one chunk .npz is stored; None if it cannot be read in place
    (a compressed member, Fortran order, a newer .npy version): load it with np.load then."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(f"{key}.npy")
            except KeyError:
                raise SampleError(f"{path}: no array '{key}' in this chunk (it has "
                                  f"{', '.join(n.removesuffix('.npy') for n in zf.namelist())})") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise SampleError(f"{path}: not a readable chunk .npz ({e})") from None
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        # The member's data starts after its local header, whose extra field may differ from the
        # central directory's copy (zip64), so read the local header's own two lengths.
        f.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", f.read(4))
        f.seek(info.header_offset + 30 + name_len + extra_len)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
        if read_header is None:
            return None
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise SampleError(f"{path}: array '{key}' holds Python objects; refusing to read it")
    if fortran and len(shape) > 1:
        return None
    return ArrayLocation(path, offset, tuple(shape), dtype, info.header_offset)


def locate_chunk_arrays(paths: list[Path], key: str) -> list[ArrayLocation | None]:
    """`locate_chunk_array` for every chunk, parsing a zip directory only where it must.

    Chunks written by the same `np.savez` code lay out array `key` at the same byte offset,
    behind the same local zip header and .npy header. So the first chunk is parsed, and
    another chunk is taken to hold the array at that offset only if its bytes there say so:
    the same file size, the same local header (signature, flags, storage method, sizes,
    member name; its time, date and CRC may differ) and the same .npy header (dtype, shape).
    Otherwise, as for a short last chunk, that chunk is parsed too.
    """
    if not paths:
        return []
    first = locate_chunk_array(paths[0], key)
    if first is None:
        return [first] + [locate_chunk_array(p, key) for p in paths[1:]]
    template = _headers(first.path, first.header_offset, first.offset)
    out = [first]
    for path in paths[1:]:
        same = _headers(path, first.header_offset, first.offset) == template
        out.append(ArrayLocation(path, first.offset, first.shape, first.dtype, first.header_offset) if same
                   else locate_chunk_array(path, key))
    return out


def _headers(path: Path, start: int, stop: int) -> tuple[int, bytes]:
    """(file size, bytes start:stop of `path`: a local zip header + .npy header, without the zip
    header's time, date and CRC). Equal sizes also rule out a truncated chunk."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(start)
        head = f.read(stop - start)
    return size, head[:10] + head[18:]

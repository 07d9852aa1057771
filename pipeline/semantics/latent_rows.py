"""Latents [N, ...] left on disk and read a block of rows at a time.

A boundary is fitted on a few percent of the latents (the top and bottom scores) and
needs the others only once, for one dot product each. `LatentRows` lets it gather just
the rows it fits on (memory-mapped: only their pages are read) and stream all rows block
by block through one reused buffer: a 1 GB latents file is never copied whole nor held
resident at once.

Sources: an array already in memory, a .npy file, or the chunks of a sample shard
(`photoedit sample`), whose uncompressed .npz members are read in place. numpy only.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.errors import UserError

BLOCK_BYTES = 64 << 20  # a .npy file or an in-memory array is read in blocks of about this many bytes


@dataclass(frozen=True)
class FileRows:
    """Rows stored raw in a file: C-order [rows, *row_shape] of the source's dtype from byte `offset`."""
    path: Path
    offset: int


class LatentRows:
    """Rows of a latents array [N, *row_shape]; block b holds rows bounds[b]:bounds[b + 1].

    Each block is either an array (in memory, or a memmap) or a `FileRows` read on demand.
    """

    def __init__(self, bounds: np.ndarray, blocks: list[np.ndarray | FileRows], row_shape: tuple[int, ...],
                 dtype: np.dtype):
        self.bounds = np.asarray(bounds, np.int64)
        self._blocks = blocks
        self.row_shape = tuple(int(s) for s in row_shape)
        self.dtype = np.dtype(dtype)
        self._row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.bounds[-1]),) + self.row_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return int(self.bounds[-1])

    # ------------------------------------------------------------------------- sources

    @classmethod
    def from_array(cls, array: np.ndarray) -> "LatentRows":
        array = np.asarray(array)
        bounds = _even_bounds(len(array), array.shape[1:], array.dtype)
        return cls(bounds, [array[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])], array.shape[1:], array.dtype)

    @classmethod
    def from_npy(cls, path: str | os.PathLike) -> "LatentRows":
        """A .npy file read in place; UserError naming the file if it is not a numeric .npy array."""
        path = Path(path)
        try:
            whole = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read as a .npy array: {e}") from None
        if not isinstance(whole, np.ndarray) or whole.ndim < 1 or not np.issubdtype(whole.dtype, np.number):
            raise UserError(f"{path}: expected a numeric array [N, ...], got "
                            f"{getattr(whole, 'dtype', type(whole).__name__)} {list(getattr(whole, 'shape', []))}")
        if not isinstance(whole, np.memmap) or not whole.flags.c_contiguous:  # e.g. Fortran order: slice the map
            return cls.from_array(whole)
        rows = cls(_even_bounds(len(whole), whole.shape[1:], whole.dtype), [], whole.shape[1:], whole.dtype)
        rows._blocks = [FileRows(path, whole.offset + int(lo) * rows._row_bytes) for lo in rows.bounds[:-1]]
        return rows

    @classmethod
    def from_shard(cls, shard_dir: str | os.PathLike, key: str = "w") -> "LatentRows":
        """Array `key` of a sample shard's chunks, one block per chunk (raises gan.shards.SampleError)."""
        from gan.shards import SampleError, chunk_paths, locate_chunk_arrays, read_manifest

        manifest = read_manifest(shard_dir)
        paths = chunk_paths(shard_dir, manifest)
        if not paths:
            raise SampleError(f"{shard_dir}: the shard has no chunks (manifest n={manifest.get('n')})")
        n, chunk = int(manifest["n"]), int(manifest["chunk"])
        bounds = np.minimum(np.arange(len(paths) + 1, dtype=np.int64) * chunk, n)
        blocks, kinds = [], set()
        for b, (path, loc) in enumerate(zip(paths, locate_chunk_arrays(paths, key))):
            if loc is None:  # not readable in place (compressed...): this chunk is loaded
                with np.load(path, allow_pickle=False) as data:
                    array = data[key]
                shape, dtype, block = array.shape, array.dtype, array
            else:
                shape, dtype, block = loc.shape, loc.dtype, FileRows(path, loc.offset)
            expected = int(bounds[b + 1] - bounds[b])
            if not shape or shape[0] != expected:
                raise SampleError(f"{path}: '{key}' has shape {list(shape)}, expected {expected} rows "
                                  f"(chunk {chunk} of a {n}-sample shard)")
            kinds.add((tuple(shape[1:]), np.dtype(dtype)))
            if len(kinds) > 1:
                raise SampleError(f"{path}: '{key}' is {dtype} {list(shape)}, unlike the chunks before it")
            blocks.append(block)
        (row_shape, dtype), = kinds
        return cls(bounds, blocks, row_shape, dtype)

    # ------------------------------------------------------------------------- reading

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows as float32) for every block in order.

        A block read from a file lands in one reused buffer: use it before asking for the next.
        """
        buffer = None
        for b, block in enumerate(self._blocks):
            lo = int(self.bounds[b])
            if isinstance(block, FileRows):
                rows = int(self.bounds[b + 1]) - lo
                if buffer is None or len(buffer) < rows:
                    buffer = np.empty((rows,) + self.row_shape, self.dtype)
                _read_into(block, buffer[:rows])
                block = buffer[:rows]
            yield lo, np.asarray(block, dtype=np.float32)

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows `index` (any order, repeats allowed) as a float32 array [len(index), *row_shape]."""
        index = np.asarray(index, np.int64).reshape(-1)
        if len(index) and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        out = np.empty((len(index),) + self.row_shape, np.float32)
        block_of = np.searchsorted(self.bounds, index, side="right") - 1
        order = np.argsort(block_of, kind="stable")
        cuts = np.flatnonzero(np.diff(block_of[order])) + 1
        for group in np.split(order, cuts) if len(order) else []:
            b = int(block_of[group[0]])
            rows = index[group] - self.bounds[b]
            block = self._blocks[b]
            if not isinstance(block, FileRows):
                out[group] = block[rows]
                continue
            with open(block.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                count = int(self.bounds[b + 1] - self.bounds[b]) * int(np.prod(self.row_shape, dtype=np.int64))
                view = np.frombuffer(mapped, self.dtype, count, block.offset).reshape((-1,) + self.row_shape)
                out[group] = view[rows]
                del view  # the map closes only once no array looks into it
        return out


def _read_into(block: FileRows, out: np.ndarray) -> None:
    """Fill `out` (C-contiguous) with the bytes of `block`, by plain reads (no page stays mapped)."""
    target = memoryview(out).cast("B")
    with open(block.path, "rb", buffering=0) as f:
        f.seek(block.offset)
        done = 0
        while done < len(target):
            got = f.readinto(target[done:])
            if not got:
                raise UserError(f"{block.path}: file ends before its rows do (truncated?)")
            done += got


def _even_bounds(n: int, row_shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    row_bytes = max(1, np.dtype(dtype).itemsize * int(np.prod(row_shape, dtype=np.int64)))
    step = max(1, BLOCK_BYTES // row_bytes)
    return np.r_[np.arange(0, n, step, dtype=np.int64), np.int64(n)] if n else np.zeros(1, np.int64)

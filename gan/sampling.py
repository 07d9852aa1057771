"""Sample shards: latents z, w (and seeds) in chunked .npz files, PNGs, and a manifest.

Layout of a shard folder DIR:

    manifest.json          generator path + sha256, truncation, noise mode, n, seed, chunk size
    chunks/000000.npz      z [c, z_dim], w [c, w_dim] (after truncation), seeds [c] (int64; -1 for --z rows)
    images/000000.png      sample i is images/{i:06d}.png (more digits when n > 10^6), in order

Sample i with seeds is z = N(0,1) drawn by numpy RandomState(seed + i), so any sample can be
regenerated alone. Each chunk is written images first, arrays last (both atomically), and a
chunk whose .npz exists is skipped: an interrupted run resumes where it stopped. With
noise_mode="random" the noise is drawn from a torch generator seeded per chunk, so a resumed
run gives the same images as an uninterrupted one. Reading a shard needs no torch: see
gan.shards (read_manifest and read_samples are re-exported here).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from gan.checkpoint import atomic_write, file_sha256, resolve_generator_path
from gan.images import to_uint8
from gan.networks import Generator
from gan.shards import FORMAT, SampleError, read_manifest, read_samples

__all__ = ["FORMAT", "SampleConfig", "SampleError", "image_name", "load_z_file", "read_manifest", "read_samples",
           "sample_shard", "z_from_seeds"]


@dataclass
class SampleConfig:
    n: int = 1000  # number of samples (ignored with a z file: one sample per row)
    seed: int = 0  # sample i uses seed + i
    truncation: float = 1.0  # psi: w = w_avg + psi * (w - w_avg)
    noise: str = "const"  # "const" (stored buffers: exactly repeatable), "random" or "none"
    batch: int = 32  # images per generator call
    chunk: int = 256  # samples per .npz chunk (the unit of resuming)
    images: bool = True  # write PNGs (they can be regenerated from w)

    def __post_init__(self) -> None:
        if self.noise not in ("const", "random", "none"):
            raise ValueError(f"noise: expected const, random or none, got {self.noise!r}")
        if self.n < 1 or self.batch < 1 or self.chunk < 1:
            raise ValueError("n, batch and chunk must be >= 1")


def image_name(i: int, n: int) -> str:
    return f"{i:0{max(6, len(str(max(n - 1, 0))))}d}.png"


def z_from_seeds(seeds: np.ndarray, z_dim: int) -> np.ndarray:
    return np.stack([np.random.RandomState(int(s) % (2 ** 32)).randn(z_dim) for s in seeds]).astype(np.float32)


def load_z_file(path: str | os.PathLike, z_dim: int) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise SampleError(f"{path}: z file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise SampleError(f"{path}: not a readable .npy array ({e})") from None
    if z.ndim != 2 or z.shape[1] != z_dim or not np.issubdtype(z.dtype, np.floating):
        raise SampleError(f"{path}: expected a float array [N, {z_dim}], got {z.dtype} {list(z.shape)}")
    if not np.isfinite(z).all():
        raise SampleError(f"{path}: contains NaN or inf")
    return z.astype(np.float32)


def _manifest(G: Generator, gan_path: Path, cfg: SampleConfig, n: int, z_file: Path | None) -> dict:
    return {
        "format": FORMAT,
        "version": 1,
        "gan": str(gan_path),
        "gan_sha256": file_sha256(gan_path),
        "n": n,
        "seed": None if z_file else cfg.seed,
        "z_file": str(z_file) if z_file else None,
        "z_file_sha256": file_sha256(z_file) if z_file else None,
        "truncation": cfg.truncation,
        "noise_mode": cfg.noise,
        "chunk": cfg.chunk,
        "images": cfg.images,
        "resolution": list(G.resolution),
        "z_dim": G.z_dim,
        "w_dim": G.w_dim,
        "num_ws": G.num_ws,
        "image_digits": max(6, len(str(max(n - 1, 0)))),  # images/{index:0<digits>d}.png
    }


_SETTINGS = ("gan_sha256", "n", "seed", "z_file_sha256", "truncation", "noise_mode", "chunk", "images")


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1), encoding="utf-8"))


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


@torch.no_grad()
def sample_shard(
    G: Generator,
    gan_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: SampleConfig,
    z: np.ndarray | None = None,
    z_file: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool | None | Callable = None,
) -> dict:
    """Write (or finish) a shard; returns the manifest. `z` (from `z_file`) replaces seeds."""
    out = Path(out_dir)
    gan_path = resolve_generator_path(gan_path)
    n = len(z) if z is not None else cfg.n
    manifest = _manifest(G, gan_path, cfg, n, Path(z_file) if z_file else None)
    _check_or_start(out, manifest)
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    if cfg.images:
        (out / "images").mkdir(exist_ok=True)
    G = G.to(device).eval()
    num_chunks = (n + cfg.chunk - 1) // cfg.chunk
    bar_kw = dict(total=n, unit="img", desc="sample")  # `progress`: as in gan.training.train
    bar = (progress(**bar_kw) if callable(progress) else
           tqdm(disable=None if progress is None else not progress, **bar_kw))
    for c in range(num_chunks):
        start, stop = c * cfg.chunk, min(n, (c + 1) * cfg.chunk)
        path = out / "chunks" / f"{c:06d}.npz"
        if path.is_file() and (not cfg.images or (out / "images" / image_name(stop - 1, n)).is_file()):
            bar.update(stop - start)
            continue
        if z is not None:
            seeds = np.full(stop - start, -1, np.int64)
            zc = z[start:stop]
        else:
            seeds = np.arange(cfg.seed + start, cfg.seed + stop, dtype=np.int64)
            zc = z_from_seeds(seeds, G.z_dim)
        w = _write_chunk_images(G, zc, out, start, n, cfg, c, device, bar)
        atomic_write(path, lambda tmp: np.savez(tmp, z=zc, w=w, seeds=seeds))
    bar.close()
    manifest["complete"] = True
    _write_json(out / "manifest.json", manifest)
    return manifest


def _write_chunk_images(G, zc, out, start, n, cfg: SampleConfig, chunk_index, device, bar) -> np.ndarray:
    ws_out = []
    seed = (cfg.seed if cfg.seed is not None else 0) * 1_000_003 + chunk_index
    with torch.random.fork_rng(devices=[]):  # random noise per chunk, without touching the caller's RNG
        torch.manual_seed(seed)
        for b in range(0, len(zc), cfg.batch):
            zb = torch.from_numpy(zc[b:b + cfg.batch]).to(device)
            w = G.mapping(zb, truncation_psi=cfg.truncation)
            ws_out.append(w.float().cpu().numpy())
            if cfg.images:
                img = G.synthesis(G.broadcast(w), noise_mode=cfg.noise)
                for j, a in enumerate(to_uint8(img)):
                    _save_png(a, out / "images" / image_name(start + b + j, n))
            bar.update(len(zb))
    return np.concatenate(ws_out).astype(np.float32)


def _check_or_start(out: Path, manifest: dict) -> None:
    path = out / "manifest.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise SampleError(f"{path}: not valid JSON ({e})") from None
        diff = [k for k in _SETTINGS if old.get(k) != manifest.get(k)]
        if diff:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {manifest.get(k)!r}" for k in diff)
            raise SampleError(f"{out}: holds a shard made with other settings ({detail}); "
                              "use another --out or delete the folder")
        return
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, manifest | {"complete": False})

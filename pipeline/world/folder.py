"""Folders of world renders: `photoedit world`'s writer (images, label maps, records, a
table) and the cached uint8 arrays GAN training and evaluation read.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pipeline import __version__
from pipeline.config import to_dict
from pipeline.errors import UserError
from pipeline.fileio import atomic_write, atomic_write_bytes, write_npz_atomic
from pipeline import world


def render_folder(out: Path, n: int, cfg, held_out: bool = False, contact_sheet: str | None = None,
                  workers: int | None = None) -> dict:
    """Render n scenes of `cfg` (a WorldConfig) into `out`; returns the manifest.

    workers: processes rendering and writing chunks of scenes in parallel (default: one
    per core when there is more than one chunk). The files and the table do not depend on it.
    """
    from pipeline.progress import progress_bar

    first = cfg.seed + (world.HELD_OUT_SEED_START if held_out else 0)
    if not held_out and first + n > world.HELD_OUT_SEED_START:
        raise UserError(f"seeds {first}..{first + n - 1} reach the held-out range (>= 1e9); use --held-out")
    for sub in ("images", "masks", "records"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    chunks = [(out, cfg, first, i, min(n, i + CHUNK)) for i in range(0, n, CHUNK)]
    workers = min(len(chunks), workers or os.cpu_count() or 1)
    table: dict[str, list] = {k: [] for k in _table_keys()}
    sheet = []
    render_s = 0.0
    t0 = time.perf_counter()
    # Processes, not threads: the renderer is many small numpy calls that hold the GIL.
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 1 else None)
    try:
        results = pool.map(_render_chunk, chunks) if pool else map(_render_chunk, chunks)
        with progress_bar(total=n, desc="world", unit="img") as bar:
            for rows, images, seconds in results:
                for k, v in rows.items():
                    table[k] += v
                sheet += images[:64 - len(sheet)]
                render_s += seconds
                bar.update(len(rows["seeds"]))
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    seeds = table.pop("seeds")
    total_s = time.perf_counter() - t0
    arrays = {k: np.asarray(v, np.float32) for k, v in table.items()}
    arrays["seeds"] = np.asarray(seeds, np.int64)
    write_npz_atomic(out / "attributes.npz", arrays)
    manifest = {
        "stage": "world",
        "code_version": __version__,
        "config": to_dict(cfg),
        "n": n,
        "held_out": held_out,
        "seeds": [first, first + n],
        "size": list(cfg.size),
        "labels": {str(k): v for k, v in world.LABELS.items()},
        "attributes": list(world.ATTRIBUTES),
        "files": {"image": "images/{i:06d}.png", "mask": "masks/{i:06d}.png", "record": "records/{i:06d}.json",
                  "table": "attributes.npz"},
        "timings": {"total_s": round(total_s, 3), "render_s": round(render_s, 3),
                    "render_images_per_s": round(n / max(render_s, 1e-9), 1)},
    }
    atomic_write_bytes(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    if contact_sheet:
        sheet_path = Path(contact_sheet)
        sheet_path.parent.mkdir(parents=True, exist_ok=True)
        write_png(sheet_path, world.contact_sheet(sheet))
    print(f"wrote {n} scenes to {out} ({n / total_s:.0f} scenes/s; renderer {manifest['timings']['render_images_per_s']}/s)"
          + (f"; contact sheet {contact_sheet}" if contact_sheet else ""))
    return manifest


CHUNK = 32  # scenes per task of a worker process


def _table_keys() -> tuple[str, ...]:
    return ("seeds", *world.ATTRIBUTES, "horizon_y", "vanishing_x", "cars", "trees")


def _render_chunk(task) -> tuple[dict, list, float]:
    """Render and write scenes [i0, i1) (a worker process); returns their table rows, the
    images of the first 64 scenes (for the contact sheet) and the seconds spent rendering."""
    out, cfg, first, i0, i1 = task
    rows: dict[str, list] = {k: [] for k in _table_keys()}
    images, render_s = [], 0.0
    for i in range(i0, i1):
        seed = first + i
        params = world.sample_scene(seed, cfg.condition)
        t = time.perf_counter()
        r = world.render(params, cfg.size)
        render_s += time.perf_counter() - t
        record = world.scene_record(params, r, cfg.size)
        name = f"{i:06d}"
        write_png(out / "images" / f"{name}.png", r.image)
        write_png(out / "masks" / f"{name}.png", r.masks)
        atomic_write_bytes(out / "records" / f"{name}.json", json.dumps(record, indent=1).encode())
        rows["seeds"].append(seed)
        for a in world.ATTRIBUTES:
            rows[a].append(r.attributes[a])
        for k in ("horizon_y", "vanishing_x"):
            rows[k].append(r.layout[k])
        for k in ("cars", "trees"):
            rows[k].append(r.counts[k])
        if i < 64:
            images.append(r.image)
    return rows, images, render_s


def write_png(path: Path, array: np.ndarray) -> None:
    img = array[..., ::-1] if array.ndim == 3 else array  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise UserError(f"{path}: could not encode PNG")
    atomic_write_bytes(path, buf.tobytes())


# ----------------------------------------------------------------------------------
# Cached arrays of renders (rendering is the slow part of reading the world)


def _cache_dir() -> Path:
    base = os.environ.get("PHOTOEDIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "photoedit")
    return Path(base) / "world"


def _world_code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):  # the renderer and the scene sampler
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


PARALLEL_MIN = 1024  # world_images renders this many or more in worker processes by default


def world_images(size, first_seed: int, n: int, condition: str = "mixed", cache: bool = True,
                 workers: int | None = None):
    """uint8 [n, H, W, 3] renders of seeds first_seed.. (cached on disk: rendering is the slow part).

    workers: processes rendering batches of seeds in parallel (default: one per core from
    PARALLEL_MIN images on: a GPU machine's 16 cores render a GAN's 32k images in seconds,
    one core takes minutes). The array does not depend on it."""
    from pipeline.progress import progress_bar

    h, w = size
    path = _cache_dir() / f"{h}x{w}_{condition}_{first_seed}_{n}_{_world_code_hash()}.npy"
    if cache and path.is_file():
        arr = np.load(path, allow_pickle=False)
        if arr.shape == (n, h, w, 3):
            return arr
    arr = np.empty((n, h, w, 3), np.uint8)
    step = 64
    tasks = [(list(range(first_seed + i, first_seed + min(n, i + step))), (h, w), condition) for i in range(0, n, step)]
    if workers is None:
        workers = (os.cpu_count() or 1) if n >= PARALLEL_MIN else 1
    workers = max(1, min(workers, len(tasks)))
    pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            if workers > 1 else None)
    try:
        results = pool.map(_render_seeds, tasks) if pool else map(_render_seeds, tasks)
        i = 0
        for images in progress_bar(results, total=len(tasks), desc="render world", unit="batch"):
            arr[i:i + len(images)] = images
            i += len(images)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.save(f, arr))
    return arr


def _render_seeds(task) -> np.ndarray:
    seeds, size, condition = task
    return world.render_batch(seeds, size, condition)[0]

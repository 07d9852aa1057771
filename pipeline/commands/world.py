"""Render procedural street scenes with ground truth (records, attributes, label maps).

Writes, for scene i (seed = S + i):
  DIR/images/00000i.png    the picture (RGB)
  DIR/masks/00000i.png     semantic label map (values listed under "labels" in the manifest)
  DIR/records/00000i.json  parameter record + derived attributes, layout, object counts
and DIR/attributes.npz (one float array per attribute / layout number / count, plus
seeds) and DIR/manifest.json. Every file is written to a temp name and renamed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.config import add_config_arguments, dump_yaml, load_section, to_dict
from pipeline.errors import UserError
from pipeline.fileio import atomic_write

EPILOG = """examples:
  photoedit world --n 64 --size 128x256 --out world/ --contact-sheet world/contact.png
  photoedit world --n 200 --size 128 --out night/ --condition night
  photoedit world --n 500 --out eval/ --held-out          scenes the GAN never trains on
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit world", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--n", type=int, default=64, help="number of scenes (default: 64)")
    p.add_argument("--size", help="H or HxW, e.g. 128 or 128x256 (default: world.size of the config)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--seed", type=int, help="first seed (default: world.seed of the config)")
    p.add_argument("--condition", choices=["day", "overcast", "golden_hour", "night", "fog", "snow", "mixed", "random"],
                   help="lighting/weather preset; mixed = a preset per seed or fully random lighting "
                        "(default: world.condition of the config)")
    p.add_argument("--held-out", action="store_true",
                   help="use evaluation seeds (>= 1e9) that training never sees")
    p.add_argument("--contact-sheet", metavar="PNG", help="also write a grid of the first 64 images here")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes rendering and writing in parallel (default: one per core); "
                        "the output does not depend on it")
    add_config_arguments(p, "world:", "world.size=[64,128]")
    return p


def resolve_config(args):
    from pipeline.world import WorldConfig

    sets = list(args.set)
    if args.size is not None:
        sets.append(f"world.size={_size_yaml(args.size)}")
    if args.seed is not None:
        sets.append(f"world.seed={args.seed}")
    if args.condition is not None:
        sets.append(f"world.condition={args.condition}")
    return load_section(WorldConfig, "world", args.config, sets)


def _size_yaml(text: str) -> str:
    from pipeline.world import parse_size

    try:
        h, w = parse_size(text)
    except ValueError as e:
        raise UserError(f"--size: {e}") from None
    return f"[{h},{w}]"


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    if args.dry_run:
        print(dump_yaml({"world": cfg}), end="")
        return 0
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    render_folder(out, args.n, cfg, held_out=args.held_out, contact_sheet=args.contact_sheet, workers=args.workers)
    return 0


def render_folder(out: Path, n: int, cfg, held_out: bool = False, contact_sheet: str | None = None,
                  workers: int | None = None) -> dict:
    """Render n scenes of `cfg` (a WorldConfig) into `out`; returns the manifest.

    workers: processes rendering and writing chunks of scenes in parallel (default: one
    per core when there is more than one chunk). The files and the table do not depend on it.
    """
    from tqdm import tqdm

    from pipeline import __version__, world

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
        with tqdm(total=n, desc="world", unit="img", disable=None) as bar:
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
    write_npz(out / "attributes.npz", arrays)
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
    write_bytes(out / "manifest.json", json.dumps(manifest, indent=1).encode())
    if contact_sheet:
        sheet_path = Path(contact_sheet)
        sheet_path.parent.mkdir(parents=True, exist_ok=True)
        write_png(sheet_path, world.contact_sheet(sheet))
    print(f"wrote {n} scenes to {out} ({n / total_s:.0f} scenes/s; renderer {manifest['timings']['render_images_per_s']}/s)"
          + (f"; contact sheet {contact_sheet}" if contact_sheet else ""))
    return manifest


CHUNK = 32  # scenes per task of a worker process


def _table_keys() -> tuple[str, ...]:
    from pipeline import world

    return ("seeds", *world.ATTRIBUTES, "horizon_y", "vanishing_x", "cars", "trees")


def _render_chunk(task) -> tuple[dict, list, float]:
    """Render and write scenes [i0, i1) (a worker process); returns their table rows, the
    images of the first 64 scenes (for the contact sheet) and the seconds spent rendering."""
    from pipeline import world

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
        write_bytes(out / "records" / f"{name}.json", json.dumps(record, indent=1).encode())
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


# ----------------------------------------------------------------------------------
# Atomic writes (pipeline.fileio): a crash never leaves a half-written file.


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_png(path: Path, array: np.ndarray) -> None:
    import cv2

    img = array[..., ::-1] if array.ndim == 3 else array  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img))
    if not ok:
        raise UserError(f"{path}: could not encode PNG")
    write_bytes(path, buf.tobytes())


def write_npz(path: Path, arrays: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


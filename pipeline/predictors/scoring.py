"""Scoring a sample shard: `DIR/images/*.png` -> `DIR/scores_<predictor>.npz` (one [N] array per attribute).

Batched, with a progress bar, and resumable: every few batches the scores so far are
saved to `DIR/.scores_<predictor>.partial.npz`; a rerun continues from there. A finished
file whose arrays cover every image is left alone (pass force=True to redo it).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import UserError

CHECKPOINT_EVERY = 8  # batches between partial saves


def shard_images(folder: Path) -> list[Path]:
    images = sorted((folder / "images").glob("*.png"))
    if not images:
        raise UserError(f"{folder}: no images/*.png; is this a sample shard written by `photoedit sample`?")
    return images


def read_batch(paths: list[Path]) -> torch.Tensor:
    from PIL import Image

    arrays = []
    for p in paths:
        try:
            with Image.open(p) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise UserError(f"{p}: cannot read image: {e}") from None
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


def scores_path(folder: Path, name: str) -> Path:
    return folder / f"scores_{name}.npz"


def read_scores(folder: str | Path, name: str) -> dict[str, np.ndarray]:
    path = scores_path(Path(folder), name)
    if not path.is_file():
        raise UserError(f"{path} not found: run `photoedit score --samples {folder} --predictor {name}` first")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def score_shard(folder: str | Path, predictor, name: str | None = None, batch: int = 64,
                force: bool = False, log=print) -> Path:
    from tqdm import tqdm

    folder = Path(folder)
    name = name or predictor.name
    images = shard_images(folder)
    out, partial = scores_path(folder, name), folder / f".scores_{name}.partial.npz"
    if out.is_file() and not force:
        done = read_scores(folder, name)
        if all(len(v) == len(images) for v in done.values()) and set(done) >= set(predictor.attributes):
            log(f"{out} already covers all {len(images)} images; skipping (use --force to redo)")
            return out
    scores = {a: [] for a in predictor.attributes}
    start = 0
    if partial.is_file() and not force:
        with np.load(partial, allow_pickle=False) as z:
            if set(z.files) == set(scores):
                scores = {a: [z[a]] for a in scores}
                start = len(z[predictor.attributes[0]])
                log(f"resuming from {partial}: {start} of {len(images)} images already scored")
    bar = tqdm(total=len(images), initial=start, desc=f"score {name}", unit="img", disable=None)
    for i, lo in enumerate(range(start, len(images), batch)):
        result = predictor.score(read_batch(images[lo:lo + batch]))
        for a in scores:
            scores[a].append(np.asarray(result[a], np.float32).reshape(-1))
        bar.update(min(batch, len(images) - lo))
        if (i + 1) % CHECKPOINT_EVERY == 0:
            _save(partial, {a: np.concatenate(v) for a, v in scores.items()})
    bar.close()
    _save(out, {a: np.concatenate(v) if v else np.zeros(0, np.float32) for a, v in scores.items()})
    if partial.exists():
        partial.unlink()
    return out


def _save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Scoring a sample shard: `DIR/images/*.png` -> `DIR/scores_<predictor>.npz` (one [N] array per attribute).

A shard written without images (`photoedit sample --no-images`) is scored by re-synthesising
each image from its stored w with the shard's generator (constant noise); the generator
is the checkpoint named in the shard's manifest, or `gan=` when given.

Batched, with a progress bar, and resumable: every few batches the scores so far are
saved to `DIR/.scores_<predictor>.partial.npz`; a rerun continues from there. A finished
file whose arrays cover every image is left alone (pass force=True to redo it).
torch is imported only to score; reading a scores file (`read_scores`) needs numpy alone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import UserError
from pipeline.fileio import write_npz_atomic

if TYPE_CHECKING:
    import torch

CHECKPOINT_EVERY = 8  # batches between partial saves


def shard_images(folder: Path) -> list[Path]:
    return sorted((folder / "images").glob("*.png"))


class ShardSource:
    """The shard's images in order: PNG files if present, else synthesised from the stored w."""

    def __init__(self, folder: Path, gan: str | Path | None = None, device: str = "cpu"):
        self.paths = shard_images(folder)
        self.G = self.w = None
        if self.paths:
            self.n = len(self.paths)
            return
        if not (folder / "manifest.json").is_file():
            raise UserError(f"{folder}: no images/*.png and no manifest.json; is this a sample shard "
                            "written by `photoedit sample`?")
        import torch

        from gan.checkpoint import load_generator
        from gan.shards import read_samples

        ckpt = Path(gan) if gan else manifest_gan_path(folder)
        if ckpt is None or not ckpt.exists():
            raise UserError(f"{folder}: the shard has no images and its generator checkpoint "
                            f"{ckpt or '(not named in manifest.json)'} is not available; pass --gan CKPT")
        self.G = load_generator(ckpt, device=device).eval()
        try:
            self.w = torch.from_numpy(np.asarray(read_samples(folder, keys=("w",))["w"], np.float32))
        except ValueError as e:  # gan.shards.SampleError
            raise UserError(str(e)) from None
        self.n = len(self.w)
        self.device = device

    def batch(self, lo: int, hi: int) -> torch.Tensor:
        import torch

        if self.paths:
            return read_batch(self.paths[lo:hi])
        with torch.no_grad():
            w = self.w[lo:hi].to(self.device)
            ws = w.unsqueeze(1).repeat(1, self.G.num_ws, 1)
            return self.G.synthesis(ws, noise_mode="const").clamp(-1, 1).cpu()


def manifest_gan_path(folder: Path) -> Path | None:
    """The generator checkpoint (file or run folder) named by the shard manifest's "gan" entry."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    gan = manifest.get("gan")
    return Path(gan) if isinstance(gan, str) and gan else None


def read_batch(paths: list[Path]) -> torch.Tensor:
    from PIL import Image

    from gan.images import from_uint8

    arrays = []
    for p in paths:
        try:
            with Image.open(p) as im:
                arrays.append(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise UserError(f"{p}: cannot read image: {e}") from None
    return from_uint8(np.stack(arrays))


def scores_path(folder: Path, name: str) -> Path:
    return folder / f"scores_{name}.npz"


def read_scores(folder: str | Path, name: str) -> dict[str, np.ndarray]:
    path = scores_path(Path(folder), name)
    if not path.is_file():
        raise UserError(f"{path} not found: run `photoedit score --samples {folder} --predictor {name}` first")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def score_shard(folder: str | Path, predictor, name: str | None = None, batch: int = 64,
                force: bool = False, log=print, gan: str | Path | None = None, device: str = "cpu") -> Path:
    from pipeline.progress import progress_bar

    folder = Path(folder)
    name = name or predictor.name
    source = ShardSource(folder, gan, device)
    images = range(source.n)
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
    bar = progress_bar(total=len(images), initial=start, desc=f"score {name}", unit="img")
    for i, lo in enumerate(range(start, len(images), batch)):
        result = predictor.score(source.batch(lo, lo + batch))
        for a in scores:
            scores[a].append(np.asarray(result[a], np.float32).reshape(-1))
        bar.update(min(batch, len(images) - lo))
        if (i + 1) % CHECKPOINT_EVERY == 0:
            write_npz_atomic(partial, {a: np.concatenate(v) for a, v in scores.items()})
    bar.close()
    write_npz_atomic(out, {a: np.concatenate(v) if v else np.zeros(0, np.float32) for a, v in scores.items()})
    if partial.exists():
        partial.unlink()
    return out




"""Paired data from a latent edit: (G(w), G(w + a*n on the boundary's layers), a).

Stage 5 of ARCHITECTURE.md. Both images of a pair are drawn with the SAME noise
(`noise_mode="const"`, or the same random noise tensors drawn twice from one RNG state),
so the only difference between them is the edit. `a` is drawn uniformly from the
strength range per pair and stored; the translator later sees s = a / a_max, so its
slider s = 1 means the strongest edit it was trained on.

Determinism: pair i uses latent seed `seed + i` (z = N(0, 1) from numpy's RandomState,
as StyleGAN's generate scripts do) and a strength drawn from SeedSequence([seed, i]),
so any pair can be regenerated from the manifest alone. Held-out pairs for evaluation
use seeds >= HELD_OUT_SEED_START, never used for training.

On disk (`photoedit pairs --out DIR`): `manifest.json` plus shards of `.npy` arrays
(`shard_00000.x.npy` uint8 [B,H,W,3], `.y.npy`, `.a.npy` float32 [B], `.seed.npy`
int64 [B]) read back with allow_pickle=False and memory-mapped. Or streamed straight
into training by `GANPairStream` (an IterableDataset), never touching disk.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

from gan.images import from_uint8, to_uint8
from pipeline.semantics.boundary import LinearBoundary
from pipeline.config import to_dict
from pipeline.semantics.editing import edit_ws
from pipeline.errors import UserError
from pipeline.fileio import atomic_write, atomic_write_text, read_json

MANIFEST = "manifest.json"


@dataclass
class PairsConfig:
    n: int = 2000  # pairs to write (after filtering)
    strength_range: tuple[float, float] = (0.5, 3.0)  # a ~ U[lo, hi]: GAN edit distance along the unit normal
    truncation_psi: float = 0.8  # StyleGAN truncation before the edit (the edit itself is not scaled)
    noise_mode: Literal["const", "random"] = "const"  # per-layer noise; both images of a pair share it
    batch: int = 16  # latents per generator call
    seed: int = 0  # pair i uses latent seed `seed + i`
    shard_size: int = 1000  # pairs per shard file
    filter_predictor: str | None = None  # keep a pair only if this predictor sees the attribute rise
    filter_predictor_path: str | None = None  # its weights: classifier folder or places365 weights folder
    margin: float = 0.0  # ... by more than this much (score after minus before)
    max_attempts: float = 10.0  # give up once this many x n candidates were tried (filter too strict); a stream
    # into training gives up once 4 x batch x this many were tried and under 1 in this many kept

    def __post_init__(self) -> None:
        lo, hi = self.strength_range
        if not 0 <= lo <= hi or hi <= 0:
            raise ValueError(f"strength_range must be 0 <= lo <= hi, hi > 0; got {list(self.strength_range)}")
        if self.n < 1 or self.batch < 1 or self.shard_size < 1:
            raise ValueError("n, batch and shard_size must be >= 1")


def latent_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """z [N, z_dim] with z_i ~ N(0, 1) from RandomState(seed_i): independent of batching."""
    return torch.from_numpy(np.stack([np.random.RandomState(int(s) % 2**32).randn(z_dim) for s in seeds])).float()


def pair_strengths(base_seed: int, indices: Sequence[int], strength_range: Sequence[float]) -> torch.Tensor:
    lo, hi = strength_range
    u = [np.random.default_rng([base_seed, int(i)]).random() for i in indices]
    return torch.tensor([lo + (hi - lo) * v for v in u], dtype=torch.float32)


@torch.no_grad()
def render_pairs(
    G,  # gan.networks.Generator (eval mode)
    boundary: LinearBoundary,  # the attribute direction and its W+ layers
    seeds: Sequence[int],  # latent seeds, one per pair
    strengths: torch.Tensor,  # a [N]: edit distance per pair
    truncation_psi: float = 0.8,  # truncation before the edit
    noise_mode: str = "const",  # "const" or "random" (then the same random noise for both images)
    noise_seed: int = 0,  # seeds the random noise of this batch
    region: RegionMask | None = None,  # keep the edit to these classes (LSE soft masks)
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) [N, 3, H, W] in [-1, 1]: the original and the edited image of each latent.

    With `region`, y = m * G(w + a n) + (1 - m) * G(w), m the region's soft mask (the larger of
    the masks of the two images, so a region the edit grows or shrinks is covered)."""
    device = G.w_avg.device
    z = latent_z(seeds, G.z_dim).to(device)
    ws = G.broadcast(G.mapping(z, truncation_psi=truncation_psi))
    ws_edit = edit_ws(ws, boundary, strengths.to(device))
    feats = region is not None
    if noise_mode == "random":
        # Re-seeding before each call makes both calls draw identical noise tensors.
        x = _synth_seeded(G, ws, noise_seed, feats)
        y = _synth_seeded(G, ws_edit, noise_seed, feats)
    else:
        x = G.synthesis(ws, noise_mode=noise_mode, return_features=feats)
        y = G.synthesis(ws_edit, noise_mode=noise_mode, return_features=feats)
    if feats:
        (x, fx), (y, fy) = x, y
        m = torch.maximum(region.mask(fx), region.mask(fy)).to(x.dtype)
        if m.shape[-2:] != x.shape[-2:]:  # an extractor fitted at another image size
            m = torch.nn.functional.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
        y = m * y + (1 - m) * x
    return x.clamp(-1, 1).float(), y.clamp(-1, 1).float()


def _synth_seeded(G, ws: torch.Tensor, seed: int, return_features: bool = False):
    devices = [ws.device] if ws.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if ws.device.type == "cuda":
            torch.cuda.manual_seed(seed)
        return G.synthesis(ws, noise_mode="random", return_features=return_features)


class RegionMask:
    """Soft mask [N, 1, H, W] in [0, 1] of some classes, from a linear semantic extractor
    (`photoedit lse`) on the generator's own features: the probability that a pixel belongs to
    one of them. Region-aware pairs blend the edited image into the original by it."""

    def __init__(self, extractor, labels: dict[int, str], classes: Sequence[str], path: str | Path = "lse"):
        names = {v: k for k, v in labels.items()}
        unknown = [c for c in classes if c not in names]
        if unknown or not classes:
            raise UserError(f"--region {','.join(classes)}: {', '.join(unknown) or 'no class'} is not a class of "
                            f"{path} ({', '.join(labels[k] for k in sorted(labels))})")
        self.extractor, self.classes, self.path = extractor, list(classes), str(path)
        self.ids = [names[c] for c in classes]

    @classmethod
    def load(cls, path: str | Path, classes: Sequence[str], G) -> "RegionMask":
        from pipeline.semantics.lse import load_extractor

        ext, labels, _ = load_extractor(path)
        have = [c for c, _ in G.synthesis.level_shapes()]
        if list(ext.cfg.level_channels) != have:
            raise UserError(f"{path}: an extractor for generator levels of {ext.cfg.level_channels} channels, but "
                            f"this generator's levels have {have}; run `photoedit lse` on this generator")
        return cls(ext, labels, classes, path)

    @torch.no_grad()
    def mask(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        ext = self.extractor.to(features[0].device)
        probs = ext([f.float() for f in features]).softmax(1)
        return probs[:, self.ids].sum(1, keepdim=True).clamp(0, 1)

    def to_dict(self) -> dict:
        return {"classes": self.classes, "lse": self.path}


def attribute_of(boundary: LinearBoundary, path: str | Path = "") -> str:
    name = boundary.meta.get("attribute")
    if not name:
        raise UserError(f"{path}: boundary metadata names no 'attribute' (its .json file is missing or incomplete)")
    return str(name)


class PairFilter:
    """Keeps pairs whose predictor score for the attribute rose by more than `margin`."""

    def __init__(self, predictor_name: str, attribute: str, margin: float, device: str | torch.device = "cpu",
                 path: str | None = None):
        from pipeline.semantics.predictors import predictor_from_args

        self.predictor = predictor_from_args(predictor_name, path, str(device))
        if attribute not in self.predictor.attributes:
            raise UserError(f"predictor '{predictor_name}' does not score '{attribute}' "
                            f"(it scores: {', '.join(self.predictor.attributes)})")
        self.attribute, self.margin = attribute, margin
        self.tried = self.kept = 0

    def keep(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        before = self.predictor.score(x.cpu())[self.attribute]
        after = self.predictor.score(y.cpu())[self.attribute]
        mask = np.asarray(after) - np.asarray(before) > self.margin
        self.tried += len(mask)
        self.kept += int(mask.sum())
        return mask

    @property
    def kept_fraction(self) -> float:
        return self.kept / max(1, self.tried)


def iter_pair_batches(
    G,
    boundary: LinearBoundary,
    cfg: PairsConfig,
    indices: Iterator[int],  # pair indices to try, in order; pair i uses latent seed cfg.seed + i
    pair_filter: PairFilter | None = None,
    region: RegionMask | None = None,  # keep the edit to a region (LSE masks)
) -> Iterator[dict]:
    """Batches {x, y [B,3,H,W], a [B], seed [B]} of (kept) pairs, generated cfg.batch at a time."""
    while True:
        idx = [i for _, i in zip(range(cfg.batch), indices)]
        if not idx:
            return
        seeds = [cfg.seed + i for i in idx]
        a = pair_strengths(cfg.seed, idx, cfg.strength_range)
        x, y = render_pairs(G, boundary, seeds, a, cfg.truncation_psi, cfg.noise_mode, noise_seed=cfg.seed + idx[0],
                            region=region)
        keep = np.ones(len(idx), bool) if pair_filter is None else pair_filter.keep(x, y)
        if keep.any():
            k = torch.from_numpy(keep)
            yield {"x": x[k.to(x.device)].cpu(), "y": y[k.to(y.device)].cpu(), "a": a[k],
                   "seed": torch.tensor(seeds)[k]}


# On disk


def write_pairs(
    G,
    boundary: LinearBoundary,
    cfg: PairsConfig,
    out_dir: str | Path,
    provenance: dict,  # gan_sha256, boundary path/sha256, ... recorded in the manifest
    device: str | torch.device = "cpu",
    region: RegionMask | None = None,  # keep the edit to a region (LSE masks): `photoedit pairs --region`
) -> dict:
    """Generate cfg.n pairs into `out_dir` (shards + manifest.json); returns the manifest."""
    from pipeline.progress import progress_bar

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        raise UserError(f"{out}: already holds pairs ({MANIFEST}); choose a new --out folder")
    attribute = attribute_of(boundary, provenance.get("boundary_path", ""))
    pair_filter = (PairFilter(cfg.filter_predictor, attribute, cfg.margin, device, cfg.filter_predictor_path)
                   if cfg.filter_predictor else None)
    limit = int(cfg.n * cfg.max_attempts) if pair_filter else cfg.n
    start = time.perf_counter()
    shards, pending, written = [], [], 0
    bar = progress_bar(total=cfg.n, desc="pairs", unit="pair")
    for batch in iter_pair_batches(G, boundary, cfg, iter(range(limit)), pair_filter, region):
        take = min(len(batch["a"]), cfg.n - written)
        pending.append({k: v[:take] for k, v in batch.items()})
        written += take
        bar.update(take)
        while sum(len(p["a"]) for p in pending) >= cfg.shard_size or (written == cfg.n and pending):
            pending = _flush_shard(out, len(shards), pending, cfg.shard_size, shards)
        if written == cfg.n:
            break
    bar.close()
    if written < cfg.n:
        raise UserError(f"only {written} of {cfg.n} pairs passed the '{cfg.filter_predictor}' filter in "
                        f"{limit} tries (kept {pair_filter.kept_fraction:.1%}); lower --margin or raise the strength range")
    manifest = {
        "stage": "pairs",
        "attribute": attribute,
        "n": written,
        "resolution": list(G.resolution),
        "config": to_dict(cfg),
        "strength_range": list(cfg.strength_range),
        "layers": list(boundary.layers),
        "region": None if region is None else region.to_dict(),
        "provenance": provenance,
        "filter": None if pair_filter is None else {
            "predictor": cfg.filter_predictor, "predictor_path": cfg.filter_predictor_path, "margin": cfg.margin,
            "tried": pair_filter.tried, "kept": pair_filter.kept, "kept_fraction": pair_filter.kept_fraction},
        "shards": shards,
        "seconds": round(time.perf_counter() - start, 2),
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _flush_shard(out: Path, index: int, pending: list[dict], size: int, shards: list) -> list[dict]:
    merged = {k: torch.cat([p[k] for p in pending]) for k in pending[0]}
    head = {k: v[:size] for k, v in merged.items()}
    rest = {k: v[size:] for k, v in merged.items()}
    name = f"shard_{index:05d}"
    arrays = {"x": to_uint8(head["x"]), "y": to_uint8(head["y"]),
              "a": head["a"].numpy().astype(np.float32), "seed": head["seed"].numpy().astype(np.int64)}
    for key, arr in arrays.items():
        atomic_write(out / f"{name}.{key}.npy", lambda f: np.save(f, arr, allow_pickle=False))
    shards.append({"name": name, "n": int(len(arrays["a"]))})
    return [rest] if len(rest["a"]) else []


class PairShardDataset(Dataset):
    """Pairs written by `write_pairs`: item i -> (x [3,H,W], y [3,H,W], a float), memory-mapped."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.manifest = read_pairs_manifest(self.folder)
        self.shards, self.offsets = [], [0]
        for shard in self.manifest["shards"]:
            arrays = {}
            for key in ("x", "y", "a", "seed"):
                path = self.folder / f"{shard['name']}.{key}.npy"
                if not path.is_file():
                    raise UserError(f"{path}: missing shard file listed in {self.folder / MANIFEST}")
                try:
                    arrays[key] = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError as e:
                    raise UserError(f"{path}: not a readable .npy array ({e})") from None
            if not len(arrays["x"]) == len(arrays["y"]) == len(arrays["a"]) == shard["n"]:
                raise UserError(f"{self.folder / shard['name']}.*.npy: lengths disagree with the manifest")
            self.shards.append(arrays)
            self.offsets.append(self.offsets[-1] + shard["n"])

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        s = int(np.searchsorted(self.offsets, i, side="right")) - 1
        j = i - self.offsets[s]
        sh = self.shards[s]
        return from_uint8(sh["x"][j]), from_uint8(sh["y"][j]), float(sh["a"][j])


def read_pairs_manifest(folder: str | Path) -> dict:
    file = Path(folder) / MANIFEST
    manifest = read_json(file, "--pairs expects a folder written by `photoedit pairs`")
    if not isinstance(manifest, dict) or manifest.get("stage") != "pairs" or "shards" not in manifest:
        stage = manifest.get("stage") if isinstance(manifest, dict) else type(manifest).__name__
        raise UserError(f"{file}: not a pairs manifest (stage={stage!r})")
    return manifest


# Streamed

class GANPairStream(IterableDataset):
    """Pairs generated on the fly: yields (x [3,H,W], y [3,H,W], a) forever (or `limit` pairs).

    Rank r of W takes pair indices r, r + W, r + 2W, ...; `configure_stream(start, ...)`
    (called by the translator trainer) skips this rank's first `start` pairs, so a resumed
    run sees exactly the pairs it would have seen.
    """

    def __init__(self, G, boundary: LinearBoundary, cfg: PairsConfig, pair_filter: PairFilter | None = None,
                 limit: int | None = None, region: RegionMask | None = None):
        super().__init__()
        self.G, self.boundary, self.cfg, self.pair_filter, self.limit = G, boundary, cfg, pair_filter, limit
        self.region = region
        self.start, self.rank, self.world, self.skip = 0, 0, 1, 0
        self._position = {"start": 0, "skip": 0}

    def configure_stream(self, start: int, rank: int = 0, world_size: int = 1, skip: int = 0) -> None:
        """Begin at candidate `start` of this rank (a multiple of pairs.batch for an exact resume),
        passing over the first `skip` pairs it keeps (see stream_position)."""
        self.start, self.rank, self.world, self.skip = int(start), int(rank), int(world_size), int(skip)

    def stream_position(self) -> dict:
        """Where the last iterator stands, as configure_stream's start and skip: the rendered batch
        of candidates that holds the next pair, and how many of its kept pairs were handed out.
        With a filter, pairs handed out are not candidates tried, so a trainer's step count alone
        cannot find its place again; this does, and renders the same batches as before."""
        return dict(self._position)

    def _indices(self) -> Iterator[int]:
        k = self.start
        while self.limit is None or k < self.limit:
            self._check_filter()
            yield k * self.world + self.rank
            k += 1

    def _check_filter(self) -> None:
        """An endless stream has no n to give up at (write_pairs has): give up once enough candidates
        were tried and under 1 in max_attempts passed, instead of rendering forever."""
        flt, cfg = self.pair_filter, self.cfg
        if flt is not None and flt.tried >= 4 * cfg.batch * cfg.max_attempts and flt.kept * cfg.max_attempts < flt.tried:
            raise UserError(f"only {flt.kept} of {flt.tried} GAN pairs passed the '{cfg.filter_predictor}' filter "
                            f"(kept {flt.kept_fraction:.1%}, under 1 in {cfg.max_attempts:g}): lower pairs.margin "
                            "or raise pairs.strength_range")

    def __iter__(self):
        if torch.utils.data.get_worker_info() is not None:
            raise RuntimeError("GANPairStream generates on the GPU/CPU of the main process; use workers=0")
        size, pulled = self.cfg.batch, [0]

        def indices():
            for i in self._indices():
                pulled[0] += 1
                yield i

        self._position, skip = {"start": self.start, "skip": self.skip}, self.skip
        for batch in iter_pair_batches(self.G, self.boundary, self.cfg, indices(), self.pair_filter, self.region):
            first = self.start + (-(-pulled[0] // size) - 1) * size  # every batch but a last one pulls `size`
            for j, (x, y, a) in enumerate(zip(batch["x"], batch["y"], batch["a"])):
                if skip:  # handed out before the resume (only in the batch at self.start)
                    skip -= 1
                    continue
                self._position = {"start": first, "skip": j + 1}
                yield x, y, float(a)


def load_gan_and_boundary(gan_path: str | Path, boundary_path: str | Path, device: str | torch.device = "cpu"):
    """(G, boundary, provenance) for a pairs/translator command; bad files become UserErrors."""
    from gan.checkpoint import CheckpointError, file_sha256, load_generator, resolve_generator_path

    try:
        # resolve(): a run's checkpoints/latest is a moving symlink; record the real file
        gan_file = resolve_generator_path(gan_path).resolve()
        G = load_generator(gan_file, device=device)
    except CheckpointError as e:
        raise UserError(str(e)) from None
    boundary = LinearBoundary.load(boundary_path)
    if boundary.dim != G.w_dim:
        raise UserError(f"{boundary_path}: boundary has dim {boundary.dim} but the generator's w_dim is {G.w_dim}")
    provenance = {
        "gan_path": str(gan_file),
        "gan_sha256": file_sha256(gan_file),
        "boundary_path": str(Path(boundary_path).resolve()),
        "boundary_sha256": file_sha256(boundary_path),
        "layers": list(boundary.layers),
        "attribute": attribute_of(boundary, boundary_path),
    }
    return G, boundary, provenance

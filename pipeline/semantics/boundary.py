"""Linear attribute boundaries in the generator's latent space (InterFaceGAN, HiGAN).

A boundary is a hyperplane `n . x + b = 0` separating latents whose images have an
attribute from those that lack it; walking along the unit normal `n` adds the attribute.

Selection follows InterFaceGAN: sort samples by score, keep the top and bottom `ratio`
(or `count`) as positives/negatives, split each 70/30 into train/validation, and label
the remaining middle samples by the score midpoint to report a second accuracy.

Solvers
- `default`: Fisher linear discriminant with Ledoit-Wolf shrinkage, closed form:
  `n ~ (S_w + shrink)^-1 (mu_pos - mu_neg)`. It reads each training sample once to form
  a d x d covariance and solves one d x d system, so it costs O(N d^2) with no iterations;
  SVC's cost grows roughly with N^2 and the margin. On the same 2% selection it recovers
  a planted direction better than SVC (the max-margin plane is decided by a few support
  vectors near the gap, which noise in 511 other dims tilts; the class-mean difference
  averages that noise out). We deliberately use the *same* selection as SVC by default
  so the comparison is fair; a larger `ratio` uses more data and helps further.
- `svc`: `sklearn.svm.SVC(kernel="linear")`, InterFaceGAN's solver, for comparison.

Files: `.npz` with arrays `normal`, `intercept`, `layers` (loaded with
allow_pickle=False) and `<same name>.json` metadata (attribute, predictor, GAN hash,
space, layers, accuracies, sample counts, solver).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from pipeline.errors import UserError
from pipeline.fileio import atomic_write
from pipeline.semantics.latent_rows import LatentRows


@dataclass
class BoundaryConfig:
    ratio: float = 0.02                            # fraction of samples taken at EACH end (InterFaceGAN's default)
    count: int | None = None                       # samples taken at each end; overrides ratio when set
    split: float = 0.7                             # fraction of the selected samples used to fit; rest validate
    solver: Literal["default", "svc"] = "default"  # default = shrinkage LDA (closed form); svc = InterFaceGAN
    space: Literal["w", "wplus"] = "w"             # w: one normal; wplus: one normal per W+ layer
    seed: int = 0                                  # shuffle before the train/validation split

    def __post_init__(self):
        if not 0.0 < self.ratio <= 0.5:
            raise ValueError(f"ratio must be in (0, 0.5], got {self.ratio}")
        if self.count is not None and self.count < 2:
            raise ValueError(f"count must be >= 2, got {self.count}")
        if not 0.0 < self.split < 1.0:
            raise ValueError(f"split must be in (0, 1), got {self.split}")


@dataclass
class LinearBoundary:
    normal: np.ndarray            # unit normal [dim], or [len(layers), dim] (each row unit) in W+
    intercept: np.ndarray         # scalar array [], or [len(layers)]
    layers: list[int]             # W+ layer indices to edit; empty = all layers
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.normal = np.asarray(self.normal, dtype=np.float32)
        self.intercept = np.asarray(self.intercept, dtype=np.float32)
        self.layers = [int(i) for i in self.layers]
        if self.normal.ndim not in (1, 2):
            raise ValueError(f"normal must be [dim] or [layers, dim], got shape {self.normal.shape}")
        if self.normal.ndim == 2 and self.layers and len(self.layers) != self.normal.shape[0]:
            raise ValueError(f"per-layer normal has {self.normal.shape[0]} rows but {len(self.layers)} layers")

    @property
    def dim(self) -> int:
        return int(self.normal.shape[-1])

    def decision(self, latents: np.ndarray) -> np.ndarray:
        """Signed distance `n . x + b` of latents [N, dim] (W) or [N, layers, dim] (W+, mean over layers)."""
        latents = np.asarray(latents, dtype=np.float64)
        if self.normal.ndim == 1:
            d = latents @ self.normal.astype(np.float64) + float(self.intercept)
            return d if d.ndim == 1 else d.mean(axis=1)
        d = np.einsum("nld,ld->nl", latents, self.normal.astype(np.float64)) + self.intercept
        return d.mean(axis=1)

    def save(self, path: str | Path) -> Path:
        """Write `path` (.npz) and `path.with_suffix('.json')` atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"normal": self.normal, "intercept": self.intercept,
                  "layers": np.asarray(self.layers, dtype=np.int64)}
        atomic_write(path, lambda f: np.savez(f, **arrays))
        meta = dict(self.meta, layers=self.layers, dim=self.dim,
                    per_layer=bool(self.normal.ndim == 2))
        text = json.dumps(_jsonable(meta), indent=2, sort_keys=True) + "\n"
        atomic_write(path.with_suffix(".json"), lambda f: f.write(text.encode("utf-8")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LinearBoundary":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: boundary file not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"normal", "intercept"} - set(z.files)
                if missing:
                    raise UserError(f"{path}: not a boundary file, missing arrays {sorted(missing)}")
                normal, intercept = z["normal"], z["intercept"]
                layers = z["layers"].tolist() if "layers" in z.files else []
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:  # BadZipFile: truncated/corrupt
            raise UserError(f"{path}: cannot read boundary .npz: {e}") from None
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
        except (ValueError, OSError) as e:
            raise UserError(f"{meta_path}: cannot read the boundary's metadata: {e}") from None
        return cls(normal=normal, intercept=intercept, layers=layers, meta=meta)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def parse_layers(spec: str | None) -> list[int] | None:
    """W+ layer indices from '0-3' -> [0,1,2,3]; '2,5,7' -> [2,5,7]; '1-2,6' -> [1,2,6]; None/'' -> None."""
    if not spec:
        return None
    out = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise UserError(f"layers '{spec}': expected e.g. 0-3 or 2,4,6") from None
    return out


# ----------------------------------------------------------------------------- selection


@dataclass
class Selection:
    """InterFaceGAN's split of N samples as row indices into the latents (no latent is copied)."""
    train: np.ndarray    # rows to fit on: positives, then as many negatives
    train_y: np.ndarray  # 1 positive, 0 negative
    val: np.ndarray      # rows to validate on, same layout
    val_y: np.ndarray
    rest: np.ndarray     # the middle samples, neither positive nor negative
    rest_y: np.ndarray   # labelled by the midpoint of the score range


def select_samples(scores: np.ndarray, cfg: BoundaryConfig) -> Selection:
    """InterFaceGAN's selection: extremes as labelled data, the middle as a harder check."""
    scores = np.asarray(scores).reshape(-1)
    n = len(scores)
    k = cfg.count if cfg.count is not None else int(round(n * cfg.ratio))
    if k < 2 or 2 * k > n:
        raise UserError(f"cannot select {k} samples at each end from {n} samples; "
                        "use more samples or change boundary.ratio / boundary.count")
    order = np.argsort(scores, kind="stable")
    neg, pos, rest = order[:k], order[n - k:], order[k:n - k]
    rng = np.random.default_rng(cfg.seed)
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    n_train = max(1, min(k - 1, int(k * cfg.split)))
    labels = lambda m: np.r_[np.ones(m), np.zeros(m)].astype(np.int8)  # noqa: E731
    # The middle samples are labelled by the midpoint of the score range, as InterFaceGAN does.
    midpoint = (scores[order[0]] + scores[order[-1]]) / 2.0
    return Selection(np.concatenate([pos[:n_train], neg[:n_train]]), labels(n_train),
                     np.concatenate([pos[n_train:], neg[n_train:]]), labels(k - n_train),
                     rest, (scores[rest] >= midpoint).astype(np.int8))


# ----------------------------------------------------------------------------- solvers


def ledoit_wolf_shrinkage(xc: np.ndarray, cov: np.ndarray) -> float:
    """Ledoit & Wolf (2004) optimal shrinkage of `cov` (of centred rows `xc`) toward mu*I."""
    n, d = xc.shape
    mu = np.trace(cov) / d
    delta2 = (np.sum(cov * cov) - 2 * mu * np.trace(cov) + d * mu * mu) / d
    row_sq = np.einsum("ij,ij->i", xc, xc).astype(np.float64)
    beta2 = (np.sum(row_sq ** 2) / n - np.sum(cov * cov)) / (n * d)
    return float(np.clip(beta2 / max(delta2, 1e-30), 0.0, 1.0))


def blas_threads():
    """BLAS on one thread unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS ask otherwise.

    The LDA fit's one heavy step is a 14,000 x 512 Gram product: 0.10-0.19 s on one core.
    OpenBLAS's threads spin-wait for each other, so on a shared machine two of them took
    0.9-1.2 s for it (load ~27 on 2 cores, 2026-11-27), while on an idle one they can save
    under 0.1 s. Used around the fit and the pass that scores every latent.
    """
    if "OPENBLAS_NUM_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # comes with scikit-learn

    return threadpool_limits(limits=1, user_api="blas")


def solve_lda(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Shrinkage Fisher discriminant: (raw-space weight vector, intercept), equal class priors.

    numpy only (no torch: `photoedit boundary` would pay seconds to import it): one float32
    Gram product of the centred rows, which BLAS computes as a symmetric rank-k update
    (`xc.T @ xc`), and one solve of the shrunk, hence positive-definite, d x d covariance.
    """
    x = np.asarray(x)
    pos, neg = x[y == 1], x[y == 0]
    m1, m0 = pos.mean(0, dtype=np.float64), neg.mean(0, dtype=np.float64)
    # Centre in float64, store float32, with no float64 copy of the rows (each costs page faults).
    xc = np.empty((len(pos) + len(neg), x.shape[1]), np.float32)
    np.subtract(pos, m1, out=xc[:len(pos)], casting="same_kind")
    np.subtract(neg, m0, out=xc[len(pos):], casting="same_kind")
    cov = (xc.T @ xc).astype(np.float64) / len(xc)
    mu = np.trace(cov) / cov.shape[0]
    if not mu > 0:  # no spread within the classes (one row each): the covariance is no guide, use the means
        return m1 - m0, float(-(m1 - m0) @ (m1 + m0) / 2.0)
    a = ledoit_wolf_shrinkage(xc, cov)
    cov = (1 - a) * cov
    cov[np.diag_indices_from(cov)] += a * mu
    w = np.linalg.solve(cov, m1 - m0)
    return w, float(-w @ (m1 + m0) / 2.0)


def solve_svc(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """InterFaceGAN's solver, kept for comparison: a linear-kernel SVC (slow, O(N^2))."""
    from sklearn.svm import SVC  # heavy; only for --solver svc

    clf = SVC(kernel="linear").fit(x, y)
    return clf.coef_.reshape(-1).astype(np.float64), float(clf.intercept_[0])


SOLVERS = {"default": solve_lda, "svc": solve_svc}


def fit_hyperplane(x: np.ndarray, y: np.ndarray, solver: str) -> tuple[np.ndarray, float, float]:
    """Fit on rows `x` [n, dim] labelled `y`; return unit normal, intercept (in units of the normal), seconds."""
    t0 = time.perf_counter()
    with blas_threads():
        w, b = SOLVERS[solver](x, y)
    seconds = time.perf_counter() - t0
    norm = np.linalg.norm(w)
    if not np.isfinite(norm) or norm == 0:
        raise UserError("the boundary solver returned a zero/invalid normal: are the scores constant?")
    return w / norm, b / norm, seconds


def decision_values(latents: LatentRows, normals: np.ndarray, intercepts: np.ndarray,
                    layers: Sequence[int] | None = None) -> np.ndarray:
    """`x . n + b` [N, len(normals)] of every latent, read one block at a time (float32, as stored).

    W: latents [N, dim], one column per normal. W+: latents [N, L, dim] and normal j is
    applied to layer `layers[j]`.
    """
    normals = np.asarray(normals, np.float32).reshape(len(intercepts), -1)  # float32: no upcast copy of a block
    out = np.empty((len(latents), len(normals)), np.float32)
    with blas_threads():
        for lo, block in latents.blocks():
            hi = lo + len(block)
            for j, (normal, b) in enumerate(zip(normals, intercepts)):
                x = block if layers is None else block[:, layers[j]]
                out[lo:hi, j] = x @ normal + float(b)
    return out


def accuracies(sel: Selection, decision: np.ndarray) -> dict:
    """Share of train / validation / remaining samples on the right side, from their decision values [N]."""

    def acc(rows, y):
        return float(np.mean((decision[rows] > 0).astype(np.int8) == y)) if len(y) else float("nan")

    return {"train_accuracy": acc(sel.train, sel.train_y), "val_accuracy": acc(sel.val, sel.val_y),
            "remaining_accuracy": acc(sel.rest, sel.rest_y)}


# ----------------------------------------------------------------------------- conditioning


def project_out(normal: np.ndarray, conditions: Sequence[np.ndarray]) -> np.ndarray:
    """Remove the span of `conditions` from `normal` (InterFaceGAN's conditional boundary).

    With several conditions the span is orthonormalised first (QR), so the result is
    orthogonal to every condition even when the conditions are correlated.
    """
    normal = np.asarray(normal, dtype=np.float64)
    if not conditions:
        return normal / np.linalg.norm(normal)
    c = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in conditions], axis=1)
    if c.shape[0] != normal.shape[-1]:
        raise UserError(f"condition normals have dim {c.shape[0]}, boundary has dim {normal.shape[-1]}")
    q, r = np.linalg.qr(c)
    q = q[:, np.abs(np.diag(r)) > 1e-8]  # drop conditions that are linear combinations of others
    out = normal - q @ (q.T @ normal)
    norm = np.linalg.norm(out)
    if norm < 1e-6:
        raise UserError("the boundary lies in the span of its conditions; nothing is left after projecting them out")
    return out / norm


def _condition_rows(conditions: Sequence[LinearBoundary], layer_pos: int | None) -> list[np.ndarray]:
    """One normal per condition; for a per-layer condition, its row for this layer position."""
    rows = []
    for c in conditions:
        if c.normal.ndim == 1:
            rows.append(c.normal)
        elif c.normal.shape[0] == 1:
            rows.append(c.normal[0])
        elif layer_pos is None:
            raise UserError(f"condition '{c.meta.get('attribute', '?')}' is per-layer (W+); "
                            "condition a W boundary on W boundaries")
        else:
            rows.append(c.normal[layer_pos])
    return rows


# ----------------------------------------------------------------------------- training


def train_boundary(
    latents: np.ndarray | LatentRows,
    scores: np.ndarray,
    cfg: BoundaryConfig | None = None,
    conditions: Sequence[LinearBoundary] = (),
    layers: Sequence[int] | None = None,
    meta: dict | None = None,
) -> LinearBoundary:
    """Train a boundary from latents [N, dim] (W) or [N, L, dim] (W+) and scores [N].

    `latents` may stay on disk (`LatentRows` of a .npy file or a shard): only the selected
    extremes are gathered into memory; every latent is read once more, block by block,
    for the accuracies. In W+ (`cfg.space == "wplus"`) one hyperplane is fitted per layer
    in `layers` (default: all), giving `normal [len(layers), dim]`. Conditions are projected
    out of each normal after fitting, and the intercept is refitted on the projected normal.
    """
    cfg = cfg or BoundaryConfig()
    rows = latents if isinstance(latents, LatentRows) else LatentRows.from_array(np.asarray(latents))
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(rows) != scores.shape[0]:
        raise UserError(f"{len(rows)} latents but {scores.shape[0]} scores")
    if not np.all(np.isfinite(scores)):
        raise UserError("scores contain NaN or inf")
    if np.ptp(scores) == 0:
        raise UserError("all scores are equal (constant): nothing separates positives from negatives")
    if cfg.space == "w" and rows.ndim != 2:
        raise UserError(f"space 'w' needs latents [N, dim], got shape {rows.shape}")
    if cfg.space == "wplus" and rows.ndim != 3:
        raise UserError(f"space 'wplus' needs latents [N, layers, dim], got shape {rows.shape}")
    # 1. Select by score alone, then gather only the selected rows (4% by default).
    sel = select_samples(scores, cfg)
    picked = rows.take(np.concatenate([sel.train, sel.val]))
    train_x = picked[:len(sel.train)]
    # 2. Fit one hyperplane (W) or one per layer (W+) on the train rows.
    fit_layers = [None] if cfg.space == "w" else (list(layers) if layers else list(range(rows.shape[1])))
    normals, intercepts, seconds = [], [], []
    for pos, li in enumerate(fit_layers):
        x = train_x if li is None else train_x[:, li]
        normal, intercept, sec = fit_hyperplane(x, sel.train_y, cfg.solver)
        cond = _condition_rows(conditions, None if li is None else pos)
        if cond:
            normal = project_out(normal, cond)
            intercept = _refit_intercept(x, sel.train_y, normal)
        normals.append(normal)
        intercepts.append(intercept)
        seconds.append(sec)
    # 3. One pass over all latents for the train / validation / remaining accuracies.
    decision = decision_values(rows, np.stack(normals), np.asarray(intercepts),
                               None if cfg.space == "w" else fit_layers)
    per_layer = [dict(accuracies(sel, decision[:, j]), solve_seconds=seconds[j]) for j in range(len(normals))]
    if cfg.space == "w":
        normal, intercept, stats = normals[0], intercepts[0], per_layer[0]
        out_layers = list(layers or [])
    else:
        normal, intercept, out_layers = np.stack(normals), np.asarray(intercepts), fit_layers
        stats = {k: float(np.mean([s[k] for s in per_layer])) for k in per_layer[0]}
        stats["per_layer"] = per_layer
    info = dict(meta or {})
    info["accuracies"] = {"train": stats["train_accuracy"], "validation": stats["val_accuracy"],
                          "remaining": stats["remaining_accuracy"]}
    info.update(stats, space=cfg.space, solver=cfg.solver, ratio=cfg.ratio, count=cfg.count,
                split=cfg.split, n_samples=int(len(scores)), n_selected_each_end=int(
                    cfg.count if cfg.count is not None else round(len(scores) * cfg.ratio)),
                conditions=[c.meta.get("attribute", "?") for c in conditions])
    return LinearBoundary(normal=normal, intercept=intercept, layers=out_layers, meta=info)


def _refit_intercept(train_x: np.ndarray, train_y: np.ndarray, normal: np.ndarray) -> float:
    """After projection the old intercept no longer splits the classes: midpoint of class means."""
    proj = train_x @ normal
    return float(-(proj[train_y == 1].mean() + proj[train_y == 0].mean()) / 2.0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))



# ----------------------------------------------------------------------------- sample shards


def read_shard_latents(folder: str | Path, space: str = "w") -> tuple[LatentRows, dict]:
    """Latents of a sample shard for `space`, left on disk (memory-mapped chunks), + provenance.

    "w": the chunks' w [N, dim]; "wplus": per-layer ws [N, L, dim], which `photoedit
    sample` does not store, so it is refused with the way out.
    """
    from gan.shards import SampleError, chunk_paths, read_manifest

    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise UserError(f"{folder}: no manifest.json; is this a sample shard written by `photoedit sample`?")
    key = "w" if space == "w" else "ws"
    try:
        manifest = read_manifest(folder)
        if key == "ws":
            with np.load(chunk_paths(folder, manifest)[0], allow_pickle=False) as first:
                if "ws" not in first.files:
                    raise UserError(f"{folder}: space 'wplus' needs per-layer latents 'ws' in the shard, which has "
                                    f"only {', '.join(sorted(first.files))}; use --space w (every layer then gets "
                                    "the same normal)")
        latents = LatentRows.from_shard(folder, key)
    except SampleError as e:  # a missing chunk, a foreign manifest...
        raise UserError(str(e)) from None
    return latents, {"gan_sha256": find_sha256(manifest), "samples": str(folder)}


def find_sha256(manifest: dict) -> str | None:
    """The GAN checkpoint hash recorded in a shard manifest, wherever its writer put it."""
    stack = [manifest]
    while stack:
        d = stack.pop()
        for k, v in d.items():
            if isinstance(v, str) and "sha256" in k and ("gan" in k or "checkpoint" in k or "generator" in k):
                return v
            if isinstance(v, dict):
                stack.append(v)
    return None

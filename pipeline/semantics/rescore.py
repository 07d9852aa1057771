"""Layer-wise re-scoring (HiGAN, Yang, Shen & Zhou 2021): through which W+ layers does a boundary act?

For each layer group g (default: every W+ layer alone):
  1. draw N fresh latents (fixed seed), synthesise them with constant noise -> scores s0;
  2. move only the layers in g by `distance` along the boundary's normal -> scores s_g;
  3. record mean(max(s_g - s0, 0)) for every predictor attribute: the mean POSITIVE
     change, as HiGAN does, so a layer that flips some samples up and others down does
     not cancel out.
The layers to edit for the boundary's own attribute are then chosen automatically: the
groups whose score is at least `select_fraction` of the best group's score. They are
stored in the boundary's `layers` and in its metadata (with the whole table).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from pipeline.semantics.boundary import LinearBoundary
from pipeline.semantics.editing import edit_ws
from pipeline.errors import UserError


@dataclass
class RescoreConfig:
    n: int = 200                   # fresh samples moved along the boundary
    distance: float = 3.0          # how far each sample moves (units of the unit normal, in W)
    truncation_psi: float = 1.0    # sampling truncation; the edit is applied after it (see editing.py)
    select_fraction: float = 0.5   # a group is chosen if its score >= this fraction of the best group's
    edit_layers: Literal["chosen", "all"] | list[int] = "chosen"  # layers stored in the boundary: the chosen
    # groups', every group's (a global attribute such as night moves 0.87 of the world's change on all ten
    # layers at a = 6, 0.61 on the two best; docs/BENCHMARKS.md), or these W+ layers (e.g. the finer ones
    # for a change of light but not of layout) - the table is recorded either way
    batch: int = 50                # samples per synthesis call
    seed: int = 1_000_000          # seeds of the fresh samples (distinct from the boundary's training shard)

    def __post_init__(self):
        if self.n < 1 or self.batch < 1:
            raise ValueError("n and batch must be >= 1")
        if not 0 < self.select_fraction <= 1:
            raise ValueError(f"select_fraction must be in (0, 1], got {self.select_fraction}")
        if isinstance(self.edit_layers, (list, tuple)):
            self.edit_layers = sorted({int(i) for i in self.edit_layers})
            if not self.edit_layers or self.edit_layers[0] < 0:
                raise ValueError(f"edit_layers: a list of W+ layer indices >= 0, got {self.edit_layers!r}")
        elif self.edit_layers not in ("chosen", "all"):
            raise ValueError(f"edit_layers must be 'chosen', 'all' or a list of layers, got {self.edit_layers!r}")


@dataclass
class RescoreResult:
    attribute: str                 # the boundary's attribute (used to choose layers)
    groups: list[list[int]]        # the layer groups that were tried, in order
    table: dict[str, np.ndarray]   # predictor attribute -> mean positive change per group [len(groups)]
    chosen_groups: list[int]       # indices into groups
    chosen_layers: list[int]       # union of the chosen groups' layers

    def to_dict(self) -> dict:
        return {"attribute": self.attribute, "groups": self.groups,
                "table": {k: [float(x) for x in v] for k, v in self.table.items()},
                "chosen_groups": self.chosen_groups, "chosen_layers": self.chosen_layers}


def parse_groups(spec: str | None, num_ws: int) -> list[list[int]]:
    """None/'each' -> [[0],[1],...]; '0-1,2-3,4-9' -> [[0,1],[2,3],[4..9]]; 'pairs' -> [[0,1],[2,3],...]."""
    if spec in (None, "", "each"):
        return [[i] for i in range(num_ws)]
    if spec == "pairs":
        return [list(range(i, min(i + 2, num_ws))) for i in range(0, num_ws, 2)]
    groups = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            groups.append(list(range(int(lo), int(hi) + 1)) if hi else [int(lo)])
    except ValueError:
        raise UserError(f"groups '{spec}': expected 'each', 'pairs' or ranges like 0-1,2-3,4-9") from None
    bad = [i for g in groups for i in g if not 0 <= i < num_ws]
    if bad or any(not g for g in groups):
        raise UserError(f"groups '{spec}': layers must be in 0..{num_ws - 1}")
    return groups


def score_all(predictors: dict, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Scores of every predictor; an attribute two predictors share is prefixed by the predictor name."""
    out = {}
    for name, pred in predictors.items():
        for attr, v in pred.score(images).items():
            out[f"{name}.{attr}" if attr in out else attr] = np.asarray(v, np.float64)
    return out


@torch.no_grad()
def rescore(G, boundary: LinearBoundary, predictors: dict, cfg: RescoreConfig | None = None,
            groups: Sequence[Sequence[int]] | None = None, attribute: str | None = None,
            device: str = "cpu", progress: bool = True) -> RescoreResult:
    """Run the table for one boundary; see the module docstring."""
    from pipeline.progress import progress_bar

    cfg = cfg or RescoreConfig()
    attribute = attribute or boundary.meta.get("attribute")
    groups = [list(g) for g in (groups or [[i] for i in range(G.num_ws)])]
    if boundary.normal.ndim == 2:
        groups = [g for g in groups if all(i in boundary.layers for i in g)]
        if not groups:
            raise UserError(f"per-layer boundary covers layers {boundary.layers} only; no group fits")
    sums: dict[str, np.ndarray] = {}
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = progress_bar(total=cfg.n * (len(groups) + 1), desc=f"rescore {attribute}", unit="img",
                       disable=not progress)
    for lo in range(0, cfg.n, cfg.batch):
        m = min(cfg.batch, cfg.n - lo)
        z = torch.randn(m, G.z_dim, generator=gen).to(device)
        ws = G.mapping(z, truncation_psi=cfg.truncation_psi).unsqueeze(1).repeat(1, G.num_ws, 1)
        base = score_all(predictors, G.synthesis(ws, noise_mode="const").clamp(-1, 1).cpu())
        bar.update(m)
        for gi, g in enumerate(groups):
            moved = edit_ws(ws, boundary, cfg.distance, layers=g)
            after = score_all(predictors, G.synthesis(moved, noise_mode="const").clamp(-1, 1).cpu())
            for k in base:
                sums.setdefault(k, np.zeros(len(groups)))[gi] += np.maximum(after[k] - base[k], 0).sum()
            bar.update(m)
    bar.close()
    table = {k: v / cfg.n for k, v in sums.items()}
    if attribute not in table:
        raise UserError(f"no predictor scores the boundary's attribute '{attribute}' "
                        f"(scored: {', '.join(table)}); pass --attribute")
    chosen = choose_groups(table[attribute], cfg.select_fraction)
    layers = sorted({i for gi in chosen for i in groups[gi]})
    return RescoreResult(attribute, groups, table, chosen, layers)


def choose_groups(scores: np.ndarray, fraction: float) -> list[int]:
    best = float(np.max(scores))
    if best <= 0:
        return [int(np.argmax(scores))]  # nothing moved: keep the least bad rather than nothing
    return [i for i, s in enumerate(scores) if s >= fraction * best]


def apply_layers(boundary: LinearBoundary, result: RescoreResult, cfg: RescoreConfig) -> LinearBoundary:
    """The boundary with its edit layers set to the chosen ones (or, with edit_layers 'all',
    to every group's, or to the listed ones) and the table in its metadata."""
    layers = result.chosen_layers
    every = sorted({i for g in result.groups for i in g})
    if cfg.edit_layers == "all":
        layers = every
    elif isinstance(cfg.edit_layers, list):
        if set(cfg.edit_layers) - set(every):
            what = (f"this per-layer boundary has normals for layers {every}" if boundary.normal.ndim == 2
                    else f"the generator's W+ layers are {every[0]}..{every[-1]}")
            raise UserError(f"rescore.edit_layers {cfg.edit_layers}: {what}")
        layers = list(cfg.edit_layers)
    normal = boundary.normal
    if normal.ndim == 2:
        normal = normal[[boundary.layers.index(i) for i in layers]]
        intercept = boundary.intercept[[boundary.layers.index(i) for i in layers]]
    else:
        intercept = boundary.intercept
    meta = dict(boundary.meta, rescore=dict(result.to_dict(), n=cfg.n, distance=cfg.distance,
                                            select_fraction=cfg.select_fraction, edit_layers=cfg.edit_layers))
    return LinearBoundary(normal, intercept, layers, meta)


def write_table(result: RescoreResult, out_dir: Path, stem: str) -> list[Path]:
    """CSV + JSON of the table and a per-layer bar chart PNG; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(result.table)
    csv_path = out_dir / f"{stem}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["layers"] + names + ["chosen"])
        for gi, g in enumerate(result.groups):
            w.writerow([_label(g)] + [f"{result.table[n][gi]:.5f}" for n in names] + [int(gi in result.chosen_groups)])
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    png_path = out_dir / f"{stem}.png"
    bar_chart({result.attribute: result.table[result.attribute]}, [_label(g) for g in result.groups], png_path,
              f"re-scoring of '{result.attribute}': mean positive score change per W+ layer group",
              chosen=result.chosen_groups)
    return [csv_path, json_path, png_path]


def bar_chart(series: dict[str, np.ndarray], labels: list[str], path: Path, title: str,
              chosen: list[int] | None = None, normalise: bool = False) -> Path:
    """Grouped bars (one colour per series) over layer groups; chosen groups hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(10, max(6, 0.6 * len(labels) * max(1, len(series)) ** 0.5)),
                                    3.6 + (0.4 if len(series) > 1 else 0)))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for k, (name, vals) in enumerate(series.items()):
        vals = np.asarray(vals, np.float64)
        if normalise and vals.max() > 0:
            vals = vals / vals.max()
        bars = ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=name)
        for gi in chosen or []:
            bars[gi].set_hatch("//")
    ax.set_xticks(x, labels)
    ax.set_xlabel("W+ layer (0 = coarsest)")
    ax.set_ylabel("mean positive change" + (" / max" if normalise else ""))
    ax.set_title(title, fontsize=9)
    if len(series) > 1:
        ax.legend(fontsize=7, ncol=len(series), loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(group: Sequence[int]) -> str:
    return str(group[0]) if len(group) == 1 else f"{group[0]}-{group[-1]}"

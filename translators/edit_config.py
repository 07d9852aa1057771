"""EditConfig: how an edit is carried from the network's working resolution to the photo.

Its own module without torch, so `photoedit --attribute ... --dry-run` and a bad
`--set edit.KEY=VALUE` answer before the ~2.5 s torch import; `translators.inference`
re-exports it. The `edit:` section of a preset fills it (`pipeline.config.load_section`),
and `EditPipeline.save_pretrained` stores it as JSON beside the bundles.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

DEFAULT_EPS = 1e-4  # the carry's regulariser when neither the settings nor the bundles name one


@dataclass
class EditConfig:
    """How an edit is carried from the network's working resolution to the photo."""

    mode: Literal["guided", "tiled"] = "guided"  # guided: net once at working res; tiled: net over full res
    radius: int = 2  # guided filter window radius at working resolution (pixels)
    eps: float | None = None  # guided filter regulariser on [0,1] colours; larger = smoother change; None = the
    #                         bundles' own (config.json "edit": {"eps": ...}, the largest of several), else DEFAULT_EPS
    max_aspect_stretch: float = 2.0  # working long side <= this x the bundle's long side (caps strips)
    batch_size: int = 4  # same-size photos (or tiles) per network call
    carry_threads: int = 0  # threads applying the colour transform to one photo; 0 = all cores (a batch
    #                         carrying several photos at once passes its own share per photo)
    tile_size: int = 512  # tiled mode: tile side; larger = closer to one full-image pass, more memory
    tile_overlap: float = 0.25  # tiled mode: overlap between neighbouring tiles, fraction of a tile
    channels_last: bool = True  # NHWC convolutions: faster with oneDNN on CPU and tensor cores on GPU
    half_on_cuda: bool = True  # fp16 autocast when running on CUDA

    def __post_init__(self):
        if self.mode not in ("guided", "tiled"):
            raise ValueError(f"mode must be 'guided' or 'tiled', got {self.mode!r}")
        if self.radius < 0 or (self.eps is not None and self.eps <= 0):
            raise ValueError("radius must be >= 0 and eps > 0")
        if not 0 <= self.tile_overlap < 0.5 or self.tile_size < 8:
            raise ValueError("tile_overlap must be in [0, 0.5) and tile_size >= 8")
        if self.batch_size < 1 or self.carry_threads < 0:
            raise ValueError("batch_size must be >= 1 and carry_threads >= 0")
        if self.max_aspect_stretch < 1:
            raise ValueError("max_aspect_stretch must be >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def carry_eps(self, bundle_configs: list[dict]) -> float:
        """The regulariser an edit uses: this config's eps, else the largest eps the bundles
        were measured with (their config.json "edit" entry), else DEFAULT_EPS."""
        if self.eps is not None:
            return float(self.eps)
        own = [float(c["edit"]["eps"]) for c in bundle_configs
               if isinstance(c.get("edit"), dict) and isinstance(c["edit"].get("eps"), (int, float))]
        return max(own, default=DEFAULT_EPS)

    @classmethod
    def from_dict(cls, data: dict) -> "EditConfig":
        """The inverse of `to_dict`; an unknown key is an error (a typo must not be ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown EditConfig key(s) {unknown} (known: {', '.join(sorted(known))})")
        return cls(**data)

"""The GAN explorer: samples of a run's generator, edited along its boundaries and SeFa directions.

What the page shows is what the pipeline does: a sample with seed k is the latent the
`sample` and `pairs` stages draw for seed k (`pairs.latent_z`), truncated, broadcast to
W+ and drawn with constant noise; boundary edits are `editing.edit_ws` on the boundary's
own layers, kept to the layer groups switched on; "make pairs from here" calls the pairs
stage's own `render_pairs` (the boundary's layers, whatever the toggles say), and shows
the run's translator on the pair's first image beside it.

Layer groups follow StyleGAN's coarse / middle / fine split by the resolution a W+ row
modulates (4-8 px, 16-32 px, 64 px and up), the hierarchy HiGAN's sliders show.
"""
from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.serve.settings import RequestError

GROUPS = ("coarse", "middle", "fine")
SEFA_DIRECTIONS = 5  # SeFa sliders shown
MAX_SEED = 2**31 - 1


def row_group(row: int, num_levels: int) -> str:
    """coarse / middle / fine for W+ row `row`: row 0 feeds level 0's conv, row 2l-1 and 2l
    level l's convs (row 2l+1 also level l's toRGB); level l draws at 4 * 2^l px."""
    level = min((row + 1) // 2, num_levels - 1)
    size = 4 << level
    return "coarse" if size <= 8 else "middle" if size <= 32 else "fine"


def generator_path(run_dir: Path | None) -> Path | None:
    if run_dir is None:
        return None
    path = Path(run_dir) / "gan" / "generator.safetensors"
    return path if path.is_file() else None


class GanExplorer:
    def __init__(self, run_dir: Path, editor):
        import torch

        from gan.checkpoint import load_generator
        from pipeline.semantics.boundary import LinearBoundary

        self.torch = torch
        self.run_dir = Path(run_dir)
        self.G = load_generator(generator_path(run_dir))
        self.editor = editor  # PhotoEditor: its translators and loaded pipelines, for "make pairs from here"
        self.attributes = editor.attributes
        cfg = self.G.cfg
        self.groups = {g: [r for r in range(self.G.num_ws) if row_group(r, cfg.num_levels) == g] for g in GROUPS}
        self.boundaries = {}
        for folder in sorted(self.run_dir.glob("boundary-*")):
            name = folder.name[len("boundary-"):]
            if (folder / f"{name}.npz").is_file():
                self.boundaries[name] = LinearBoundary.load(folder / f"{name}.npz")
        self._sefa: dict[tuple[int, ...], list] = {}
        self.lock = threading.Lock()  # one synthesis at a time (the generator is shared, also with the paint tab)

    def info(self) -> dict:
        cfg = self.G.cfg
        return {"resolution": list(cfg.resolution), "num_ws": self.G.num_ws,
                "groups": {g: rows for g, rows in self.groups.items() if rows},
                "boundaries": {n: {"layers": b.layers, "groups": sorted({row_group(r, cfg.num_levels)
                                                                         for r in (b.layers or range(self.G.num_ws))})}
                               for n, b in self.boundaries.items()},
                "sefa": min(SEFA_DIRECTIONS, cfg.w_dim),
                "translators": [n for n in self.boundaries if n in self.attributes]}

    # -- drawing ---------------------------------------------------------------------------

    def _ws(self, seed: int, psi: float):
        from pipeline.semantics.pairs import latent_z

        z = latent_z([seed], self.G.z_dim)
        return self.G.broadcast(self.G.mapping(z, truncation_psi=psi))

    def render(self, request: dict) -> bytes:
        """PNG of the sample `seed` at truncation `psi` with the requested edits on the chosen groups."""
        from pipeline.semantics.editing import edit_ws

        seed, psi = _seed(request.get("seed", 0)), _float(request.get("psi", 0.8), "psi", 0.0, 1.5)
        rows = self._rows(request.get("groups", list(GROUPS)))
        with self.lock, self.torch.no_grad():
            ws = self._ws(seed, psi)
            for item in request.get("edits", []) or []:
                direction = str(item.get("direction", ""))
                strength = _float(item.get("strength", 0), "strength", -20.0, 20.0)
                if strength == 0:
                    continue
                boundary = self._direction(direction, rows)
                layers = [r for r in (boundary.layers or range(self.G.num_ws)) if r in rows]
                if layers:
                    ws = edit_ws(ws, boundary, strength, layers)
            img = self.G.synthesis(ws, noise_mode="const")
        return _png(img)

    def pair(self, request: dict) -> dict:
        """The pair the pairs stage makes for this sample and strength, and the translator's try."""
        from pipeline.semantics.pairs import render_pairs

        seed, psi = _seed(request.get("seed", 0)), _float(request.get("psi", 0.8), "psi", 0.0, 1.5)
        name = str(request.get("attribute", ""))
        if name not in self.boundaries:
            raise RequestError(f"no boundary '{name[:80]}' in {self.run_dir} (have: {', '.join(self.boundaries)})")
        a = _float(request.get("strength", 1.0), "strength", -20.0, 20.0)
        with self.lock, self.torch.no_grad():
            x, y = render_pairs(self.G, self.boundaries[name], [seed], self.torch.tensor([a]),
                                truncation_psi=psi, noise_mode="const")
        out = {"x": _data_url(_png(x)), "y": _data_url(_png(y)), "a": a, "layers": self.boundaries[name].layers,
               "translated": None, "s": None}
        attr = self.attributes.get(name)
        if attr is not None and attr.gan_strength_range:
            # The translator learnt s = a / a_max in [0, 1]; an a past its a_max (or a translator made
            # from another GAN, whose a_max means another step) is shown at the end of its range.
            s_asked = a / attr.gan_strength_range[1]
            s = min(max(s_asked, 0.0), 1.0)
            pipe = self.editor.pipeline([name])
            x8 = _uint8(x)
            out["translated"] = _data_url(_png_array(pipe.edit_array(x8, s).image))
            out["s"], out["s_asked"] = s, s_asked
            out["translator"] = f"{attr.source}: {attr.path}"
        return out

    # -- directions ------------------------------------------------------------------------

    def _rows(self, groups) -> list[int]:
        if not isinstance(groups, list) or any(g not in GROUPS for g in groups):
            raise RequestError(f"groups: expected a list drawn from {list(GROUPS)}")
        return sorted(r for g in groups for r in self.groups[g])

    def _direction(self, direction: str, rows: list[int]):
        kind, _, name = direction.partition(":")
        if kind == "boundary" and name in self.boundaries:
            return self.boundaries[name]
        if kind == "sefa" and name.isdigit() and int(name) < SEFA_DIRECTIONS:
            return self.sefa_directions(rows)[int(name)]
        raise RequestError(f"unknown direction {direction[:80]!r} (boundary:<name> or sefa:<k>, k < {SEFA_DIRECTIONS})")

    def sefa_directions(self, rows: list[int]):
        """SeFa's top directions for the W+ rows switched on (computed once per set of rows)."""
        from pipeline.semantics.directions import sefa_boundaries

        key = tuple(rows) or tuple(range(self.G.num_ws))
        if key not in self._sefa:
            k = min(SEFA_DIRECTIONS, self.G.w_dim)
            self._sefa[key] = sefa_boundaries(self.G, list(key), list(range(k)))
        return self._sefa[key]


def dissect_files(run_dir: Path | None) -> list[str]:
    """The semantics issue's LSE / dissection outputs in a run folder (the paint tab shows when any exist)."""
    if run_dir is None:
        return []
    run = Path(run_dir)
    found = [p for pattern in ("lse*/*.safetensors", "lse*.safetensors", "dissect*/*.json", "dissect*/*.csv")
             for p in run.glob(pattern)]
    return sorted(p.relative_to(run).as_posix() for p in found)


def _seed(value) -> int:
    try:
        seed = int(value)
    except (TypeError, ValueError):
        raise RequestError(f"seed: {value!r} is not a whole number") from None
    if not 0 <= seed <= MAX_SEED:
        raise RequestError(f"seed: {seed} is outside 0..{MAX_SEED}")
    return seed


def _float(value, what: str, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"{what}: {value!r} is not a number") from None
    if not lo <= v <= hi:
        raise RequestError(f"{what}: {v} is outside [{lo}, {hi}]")
    return v


def _uint8(images) -> np.ndarray:
    from gan.images import to_uint8

    return to_uint8(images)[0]


def _png_array(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "PNG")
    return buf.getvalue()


def _png(images) -> bytes:
    return _png_array(_uint8(images))


def _data_url(png: bytes) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

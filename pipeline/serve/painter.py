"""Paint and dissect: semantic image editing and GAN Dissection's unit toggles on the explorer's samples.

Reads what the semantics commands left in the run folder (found by `explorer.dissect_files`):
- an extractor from `photoedit lse` (`lse*.safetensors` or `lse*/*.safetensors`): the class map of a
  sample (shown as colours) and semantic image editing (`pipeline.semantics.sie.semantic_edit`),
  which moves the sample's W+ code until the painted pixels take the painted class;
- a `dissection.json` from `photoedit dissect` (`dissect*/`): each class's top units (the units the
  file's --ablate run chose for that class, else the `MAX_UNITS` units of highest IoU in the level
  where they match best), which the page switches off and on (the ablation hook of
  `pipeline.semantics.dissect`, zeroing them).

Requests carry no paths: a sample is (seed, truncation), a class is a name from the files' own
list, a painted layout is exactly H x W bytes for the generator's H x W (255 = keep), and the
SIE step count is bounded.
"""
from __future__ import annotations

import base64
import io
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.serve.settings import RequestError

MAX_UNITS = 20  # units toggled per class (GAN Dissection's top-20), fewer in narrow levels
MAX_STEPS = 300  # SIE optimisation steps a request may ask for
DEFAULT_STEPS = 60
KEEP_BYTE = 255  # a painted layout's "leave this pixel" value


def class_colours(labels: np.ndarray) -> np.ndarray:
    from pipeline.run.figures import class_colours as colours  # the report's colours (imports torch)

    return colours(labels)


def colour(c: int) -> list[int]:
    return [int(v) for v in class_colours(np.array(c))]


class PaintDissect:
    """The paint tab's state: the explorer's generator, the run's extractor and dissection."""

    def __init__(self, run_dir: Path, files: list[str], G, lock: threading.Lock):
        import torch

        self.torch, self.G, self._lock = torch, G, lock
        self.run_dir = Path(run_dir)
        self.notes: list[str] = []
        self.ext, self.lse_file, lse_labels = None, None, {}
        self.dissection_file, self.units = None, {}
        self.dissection_classes: list[str] = []
        self.labels_of_lse: dict[int, str] = {}
        widths = [c for c, _ in G.synthesis.level_shapes()]
        for rel in files:
            path = self.run_dir / rel
            if path.suffix == ".safetensors" and self.ext is None:
                self._load_lse(path, rel, widths)
                if self.ext is not None:
                    lse_labels = self.labels_of_lse
            elif path.name == "dissection.json" and self.dissection_file is None:
                self._load_dissection(path, rel, widths)
        names = lse_labels or {i: n for i, n in enumerate(self.dissection_classes)}
        self.classes = [{"id": i, "name": n, "color": colour(i)} for i, n in sorted(names.items())]

    # -- loading -------------------------------------------------------------------------------

    def _load_lse(self, path: Path, rel: str, widths: list[int]) -> None:
        from pipeline.errors import UserError
        from pipeline.semantics.lse import load_extractor

        try:
            ext, labels, _ = load_extractor(path)
        except (UserError, ValueError, OSError) as e:
            self.notes.append(f"{rel}: not used ({e})")
            return
        if list(ext.cfg.level_channels) != widths or list(ext.cfg.image_size) != list(self.G.resolution):
            self.notes.append(f"{rel}: made for another generator (levels {ext.cfg.level_channels}, "
                              f"image {ext.cfg.image_size}); not used")
            return
        self.ext, self.lse_file, self.labels_of_lse = ext, rel, labels

    def _load_dissection(self, path: Path, rel: str, widths: list[int]) -> None:
        from pipeline.errors import UserError
        from pipeline.fileio import read_json
        from pipeline.semantics.dissect import top_units

        try:
            d = read_json(path, "expected the dissection.json of `photoedit dissect`")
            classes = [str(c) for c in d["classes"]]
            tables = [np.asarray(lv["iou"], dtype=np.float64) for lv in d["levels"]]
        except (UserError, KeyError, TypeError, ValueError) as e:
            self.notes.append(f"{rel}: not used ({e})")
            return
        if [t.shape for t in tables] != [(w, len(classes)) for w in widths]:
            self.notes.append(f"{rel}: made for another generator (levels of {[len(t) for t in tables]} units); "
                              "not used")
            return
        self.dissection_file, self.dissection_classes = rel, classes
        chosen = d.get("ablation") or {}
        for c, name in enumerate(classes):
            if not any(t[:, c].max() > 0 for t in tables):
                continue  # no unit ever overlaps the class
            if chosen.get("class") == name and chosen.get("units"):
                level, units = int(chosen["level"]), [int(u) for u in chosen["units"]]
            else:
                n = lambda lv: min(MAX_UNITS, max(1, widths[lv] // 2))  # noqa: E731
                level = max(range(len(tables)), key=lambda lv: np.sort(tables[lv][:, c])[::-1][:n(lv)].mean())
                units = top_units(tables[level], c, n(level))
            self.units[name] = {"level": level, "units": units,
                                "iou": round(float(tables[level][units, c].mean()), 4)}

    def info(self) -> dict:
        return {"classes": self.classes, "sie": self.ext is not None, "lse": self.lse_file,
                "dissection": self.dissection_file, "units": self.units,
                "resolution": list(self.G.resolution), "max_steps": MAX_STEPS, "default_steps": DEFAULT_STEPS,
                "notes": self.notes}

    # -- requests ------------------------------------------------------------------------------

    def _ws(self, request: dict):
        from pipeline.serve.explorer import _float, _seed
        from pipeline.semantics.pairs import latent_z

        seed, psi = _seed(request.get("seed", 0)), _float(request.get("psi", 0.8), "psi", 0.0, 1.5)
        return self.G.broadcast(self.G.mapping(latent_z([seed], self.G.z_dim), truncation_psi=psi))

    def _off(self, request: dict) -> list[str]:
        off = request.get("off", []) or []
        if not isinstance(off, list) or any(not isinstance(n, str) or n not in self.units for n in off):
            raise RequestError(f"off: expected a list of classes with units ({', '.join(self.units) or 'none'})")
        return off

    def render(self, request: dict) -> bytes:
        """PNG of the sample with the units of the classes in `off` switched off (zeroed)."""
        from pipeline.semantics.dissect import ablated

        off = self._off(request)
        with self._lock, self.torch.no_grad(), ExitStack() as stack:
            ws = self._ws(request)
            for name in off:
                u = self.units[name]
                stack.enter_context(ablated(self.G, u["level"], u["units"]))
            img = self.G.synthesis(ws, noise_mode="const")
        return _png(_uint8(img))

    def labels(self, request: dict) -> bytes:
        """PNG of the extractor's class map of the sample, one colour per class."""
        ext = self._need_lse()
        with self._lock, self.torch.no_grad():
            _, feats = self.G.synthesis(self._ws(request), noise_mode="const", return_features=True)
            lab = ext(feats).argmax(1)[0].numpy()
        return _png(class_colours(lab))

    def paint(self, query: dict, layout: bytes) -> dict:
        """Semantic image editing of the sample: `layout` is H x W bytes, a class id per painted pixel."""
        from pipeline.semantics import sie

        ext = self._need_lse()
        h, w = self.G.resolution
        if len(layout) != h * w:
            raise RequestError(f"painted layout: {len(layout)} bytes, expected {h} x {w} = {h * w} "
                               f"(one class id per pixel, {KEEP_BYTE} = keep)", 400)
        steps = _int(query.get("steps", DEFAULT_STEPS), "steps", 1, MAX_STEPS)
        blend = str(query.get("blend", "none"))
        if blend not in sie.BLENDS:
            raise RequestError(f"blend: expected one of {', '.join(sie.BLENDS)}")
        grid = np.frombuffer(layout, np.uint8).reshape(h, w).astype(np.int64)
        target = np.where(grid == KEEP_BYTE, sie.KEEP, grid)
        if not (target != sie.KEEP).any():
            raise RequestError("nothing painted: paint a class on the picture first")
        if target.max() >= ext.cfg.num_classes:
            raise RequestError(f"painted layout: class id {int(target.max())} is not one of the "
                               f"{ext.cfg.num_classes} classes")
        t0 = time.perf_counter()
        with self._lock:
            ws = self._ws(query).detach()
            res = sie.semantic_edit(self.G, ext, ws, self.torch.from_numpy(target), steps=steps, blend=blend)
        region = self.torch.from_numpy(target != sie.KEEP)
        t = self.torch.from_numpy(target)
        return {"image": _data_url(_png(_uint8(res.image))), "before": _data_url(_png(_uint8(res.before_image))),
                "labels": _data_url(_png(class_colours(res.labels.numpy()))),
                "region_pixels": int(region.sum()),
                "region_fraction_before": float((res.before_labels[region] == t[region]).float().mean()),
                "region_fraction": float((res.labels[region] == t[region]).float().mean()),
                "psnr_outside": _finite(sie.psnr(res.before_image, res.image, ~region)),
                "steps": steps, "blend": blend, "seconds": round(time.perf_counter() - t0, 3)}

    def _need_lse(self):
        if self.ext is None:
            raise RequestError("no semantic extractor for this generator in the run folder: make one with "
                               "`photoedit lse --gan RUN/gan --out RUN/lse.safetensors`", 404)
        return self.ext


def _int(value, what: str, lo: int, hi: int) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise RequestError(f"{what}: {value!r} is not a whole number") from None
    if not lo <= v <= hi:
        raise RequestError(f"{what}: {v} is outside {lo}..{hi}")
    return v


def _finite(v: float) -> float | None:
    return None if v != v or v in (float("inf"), float("-inf")) else round(v, 2)


def _uint8(images) -> np.ndarray:
    from gan.images import to_uint8

    return to_uint8(images.detach().float().clamp(-1, 1))[0]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb), "RGB").save(buf, "PNG")
    return buf.getvalue()


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

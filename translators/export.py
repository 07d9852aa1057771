"""Export a translator bundle to ONNX: `photoedit export BUNDLE --onnx model.onnx`.

The graph takes
    image     float32 [N, 3, H, W] in [-1, 1]; N, H and W are dynamic (H, W >= the
              network's stride, `multiple` in the metadata; any other size is padded
              inside the graph by reflection and cropped back, as the torch model does)
    strength  float32 [N], the normalised edit strength (0 = no edit, 1 = strongest trained)
and returns
    edited    float32 [N, 3, H, W] in [-1, 1]

The file describes itself (metadata_props): `photoedit.config` is the bundle's config.json
(attribute, resolution, strength_range, architecture), `photoedit.weights_sha256` the
hash of the model.safetensors it was exported from, so a loader can tell a stale export.
After writing, the export is checked against the torch model on two input sizes; a
difference above `tolerance` is an error and no file is left behind.

Exporter: torch's TorchScript-based `torch.onnx.export(dynamo=False)` - seconds on a CPU
and no extra package; the dynamo exporter needs onnxscript and took ~80 s for the same
graph here (both give the same outputs within 1e-6).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from translators.bundle import WEIGHTS_FILE, atomic_write, load_bundle

ONNX_FILE = "model.onnx"
OPSET = 17
INPUT_NAMES = ("image", "strength")
OUTPUT_NAME = "edited"
META_CONFIG = "photoedit.config"
META_SHA = "photoedit.weights_sha256"
META_MULTIPLE = "photoedit.multiple"


class _PaddedTranslator(torch.nn.Module):
    """The translator with its pad-to-stride done without a Python branch, so the traced
    graph pads any height/width (the torch model checks sizes in Python, which a trace
    would freeze at the example's size)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.multiple = int(model.cfg.multiple)

    def forward(self, image: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        m = self.multiple
        x = F.pad(image, (0, (-w) % m, 0, (-h) % m), mode="reflect")
        return self.model(x, strength)[..., :h, :w]


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(bundle: str | Path, out: str | Path | None = None, opset: int = OPSET,
                tolerance: float = 1e-3) -> dict:
    """Write the bundle's network as ONNX to `out` (default `<bundle>/model.onnx`).

    Returns a report: path, attribute, multiple, opset, seconds, and the max abs
    difference to torch at the checked sizes. Raises ValueError past `tolerance`."""
    import time

    import onnx  # optional extra [onnx]; imported only when exporting

    bundle = Path(bundle)
    out = Path(out) if out else bundle / ONNX_FILE
    t0 = time.perf_counter()
    model, config = load_bundle(bundle, device="cpu")
    wrapped = _PaddedTranslator(model).eval()
    m = wrapped.multiple
    # 1. Trace at a size that is not a multiple of the stride, so the padding is in the graph.
    example = (torch.rand(1, 3, 2 * m + 3, 3 * m + 5, generator=torch.Generator().manual_seed(0)) * 2 - 1,
               torch.tensor([0.5]))
    metadata = {META_CONFIG: json.dumps(config), META_SHA: sha256_file(bundle / WEIGHTS_FILE),
                META_MULTIPLE: str(m)}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
            torch.onnx.export(
                wrapped, example, str(tmp), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "strength": {0: "batch"},
                              OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}},
                opset_version=opset, dynamo=False)
        # 2. Record where the graph came from, then check it loads as valid ONNX.
        proto = onnx.load(str(tmp))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.doc_string = (f"photoedit translator '{config['attribute']}': image [N,3,H,W] in [-1,1], "
                            f"strength [N] -> edited [N,3,H,W] in [-1,1]")
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        # 3. The export must compute what the torch model computes, at two sizes.
        diffs = compare_to_torch(tmp, model)
        worst = max(diffs.values())
        if not worst <= tolerance:
            raise ValueError(f"ONNX export of {bundle} differs from torch by {worst:.2e} (> {tolerance:g}) "
                             f"at sizes {diffs}; not written")
        report["max_abs_diff"] = diffs

    report: dict = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, write)
    report.update({"path": str(out), "attribute": config["attribute"], "multiple": m, "opset": opset,
                   "bytes": out.stat().st_size, "seconds": round(time.perf_counter() - t0, 2)})
    return report


def compare_to_torch(onnx_path: str | Path, model: torch.nn.Module,
                     sizes: tuple[tuple[int, int], ...] | None = None, seed: int = 0) -> dict[str, float]:
    """Max abs difference of onnxruntime vs the torch model on random images per size."""
    import onnxruntime as ort

    m = int(model.cfg.multiple)
    sizes = sizes or ((4 * m, 6 * m), (3 * m + 5, 5 * m - 3))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    diffs = {}
    for h, w in sizes:
        x = torch.rand(2, 3, h, w, generator=g) * 2 - 1
        s = torch.tensor([0.3, 1.0])
        with torch.no_grad():
            ref = model(x, s).numpy()
        got = session.run([OUTPUT_NAME], {"image": x.numpy(), "strength": s.numpy()})[0]
        diffs[f"{h}x{w}"] = float(abs(ref - got).max())
    return diffs

"""Run an exported translator with onnxruntime inside `EditPipeline` (`--backend onnxruntime`).

    from translators.inference import EditPipeline
    from translators.onnx_backend import load_onnx_translator
    pipe = EditPipeline([load_onnx_translator("models/night")])     # <bundle>/model.onnx
    result = pipe(photo, strength=0.8)

`OnnxTranslator` is called like the torch network - `model(x [N,3,H,W] in [-1,1],
strength [N]) -> tensor` - so EditPipeline runs it unchanged: working resolution, the
guided carry to full resolution, batching, tiles. It holds no torch weights; `.to()` and
`.eval()` are no-ops for it (the execution provider is chosen when loading). onnxruntime
is an optional extra (`pip install 'photoedit[onnx]'`), imported only here.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from translators.bundle import WEIGHTS_FILE, BundleError
from translators.export import META_CONFIG, META_MULTIPLE, META_SHA, ONNX_FILE, OUTPUT_NAME, sha256_file
from translators.inference import LoadedTranslator


class OnnxTranslator(torch.nn.Module):
    """An ONNX translator graph behind the torch translator's call signature."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu", threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("the onnxruntime backend needs onnxruntime: pip install 'photoedit[onnx]'") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        # The CLI sizes torch's thread pool to the cores left by I/O workers; use the same.
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise BundleError(f"{self.path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        if META_CONFIG not in self.metadata:
            raise BundleError(f"{self.path}: no '{META_CONFIG}' metadata; export it with `photoedit export`")

    @property
    def config(self) -> dict:
        return json.loads(self.metadata[META_CONFIG])

    @property
    def multiple(self) -> int:
        return int(self.metadata.get(META_MULTIPLE, 1))

    def forward(self, x: torch.Tensor, strength: torch.Tensor | float) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"translator input must be [N, 3, H, W], got {list(x.shape)}")
        s = torch.as_tensor(strength, dtype=torch.float32).reshape(-1).expand(x.shape[0])
        # NCHW float32 on the host: what the graph takes (EditPipeline may hand channels-last).
        image = np.ascontiguousarray(x.detach().float().cpu().numpy())
        edited = self.session.run([OUTPUT_NAME], {"image": image, "strength": s.detach().cpu().numpy().copy()})[0]
        return torch.from_numpy(edited).to(x.device)


def find_onnx(path: str | Path) -> Path:
    """A .onnx file given directly, or `<bundle>/model.onnx`."""
    path = Path(path)
    file = path if path.suffix == ".onnx" else path / ONNX_FILE
    if not file.is_file():
        raise BundleError(f"{file}: missing; export the bundle first: photoedit export {path}"
                          + ("" if path.suffix == ".onnx" else f" (writes {file})"))
    return file


def load_onnx_translator(path: str | Path, device: str | torch.device = "cpu",
                         threads: int | None = None) -> LoadedTranslator:
    """A bundle folder (its model.onnx) or a .onnx file -> LoadedTranslator for EditPipeline.

    The configuration comes from the file's own metadata. Given a bundle folder, an export
    made from other weights than the folder's model.safetensors is refused (stale)."""
    file = find_onnx(path)
    model = OnnxTranslator(file, device=device, threads=threads)
    config = model.config
    weights = file.parent / WEIGHTS_FILE
    if Path(path).suffix != ".onnx" and weights.is_file() and sha256_file(weights) != model.metadata.get(META_SHA):
        raise BundleError(f"{file}: exported from other weights than {weights}; re-export: "
                          f"photoedit export {file.parent}")
    lo, hi = config.get("strength_range") or (0.0, 1.0)
    return LoadedTranslator(attribute=str(config["attribute"]), model=model.eval(),
                            resolution=(int(config["resolution"][0]), int(config["resolution"][1])),
                            multiple=model.multiple, strength_range=(float(lo), float(hi)),
                            config=config, path=file.parent)

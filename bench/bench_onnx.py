"""Editing speed with the torch network vs its ONNX export run by onnxruntime.

    python bench/bench_onnx.py [--repeats 7] [--threads 1]

For (1) the shipped night bundle (64x64, quickstart-shaped) and (2) the default
TranslatorConfig trained at 128x256 and at 256x512 (random weights: speed does not depend
on them), both exported with `translators.export.export_onnx`:
  - the network alone on the photo's working-resolution input (batch 1 and 4);
  - the whole EditPipeline edit of a 1280x720 photo (shrink, network, carry to full res).
torch and onnxruntime are timed interleaved in this run, best of `--repeats`, with the same
thread count. Also prints the max abs difference between the two on the real photos
(../shared/realphotos, else synthetic), in the network's [-1, 1] units.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from bench_edit_common import best_of as best, default_bundle, synthetic_photo  # noqa: E402
from bench_transforms import photos  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    args = ap.parse_args()

    import torch

    from translators.export import export_onnx
    from translators.inference import EditConfig, EditPipeline, load_translator
    from translators.onnx_backend import load_onnx_translator
    from translators.registry import SHIPPED_MODELS

    torch.set_num_threads(args.threads)
    real, source = photos(4)
    photo = real[0] if real else synthetic_photo(720, 1280)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copytree(SHIPPED_MODELS / "night", tmp / "shipped" / "night")
        bundles = {"shipped night 64x64": tmp / "shipped" / "night",
                   "default net 128x256": default_bundle(tmp / "d128", "night", resolution=(128, 256)),
                   "default net 256x512": default_bundle(tmp / "d256", "night", resolution=(256, 512))}
        print(f"{source}; {args.threads} thread(s) for torch and onnxruntime; best of {args.repeats}")
        for name, bundle in bundles.items():
            report = export_onnx(bundle)
            tp = EditPipeline([load_translator(bundle)], EditConfig())
            op = EditPipeline([load_onnx_translator(bundle, threads=args.threads)], EditConfig())
            diff = 0.0
            for im in real:
                prep = tp.prepare(im)
                diff = max(diff, 2 * float(np.abs(tp.run_network([prep], 1.0)[0] - op.run_network([prep], 1.0)[0]).max()))
            prep = tp.prepare(photo)
            h, w = prep.key
            print(f"{name}: export {report['seconds']:.1f} s; working size {h}x{w}; "
                  f"max |onnx - torch| on {len(real)} photos {diff:.1e}")
            for batch in (1, 4):
                group = [prep] * batch
                tp.run_network(group, 1.0), op.run_network(group, 1.0)  # warm-up
                t_torch = t_onnx = float("inf")
                for _ in range(args.repeats):  # interleaved: both see the same machine load
                    t_torch = min(t_torch, best(lambda: tp.run_network(group, 1.0), 1))
                    t_onnx = min(t_onnx, best(lambda: op.run_network(group, 1.0), 1))
                print(f"  network, batch {batch}:  torch {t_torch * 1000:7.1f} ms   onnxruntime "
                      f"{t_onnx * 1000:7.1f} ms   torch/onnx {t_torch / t_onnx:.2f}x")
            t_torch = t_onnx = float("inf")
            for _ in range(args.repeats):
                t_torch = min(t_torch, best(lambda: tp(photo, 1.0), 1))
                t_onnx = min(t_onnx, best(lambda: op(photo, 1.0), 1))
            print(f"  whole edit of a {photo.shape[1]}x{photo.shape[0]} photo: torch {t_torch * 1000:7.1f} ms   "
                  f"onnxruntime {t_onnx * 1000:7.1f} ms   torch/onnx {t_torch / t_onnx:.2f}x")


if __name__ == "__main__":
    main()

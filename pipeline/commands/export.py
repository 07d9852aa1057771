"""Export a translator bundle to ONNX for onnxruntime or other runtimes."""
from __future__ import annotations

import argparse
import json

EPILOG = """\
The ONNX graph takes image float32 [N,3,H,W] in [-1,1] (N, H, W dynamic) and strength
float32 [N], and returns edited [N,3,H,W]; the bundle's config.json travels in the file's
metadata. After writing, the export is checked against the torch model (max abs
difference <= 1e-3, else nothing is written).

examples:
  photoedit export night                       -> <night bundle>/model.onnx
  photoedit export runs/q/translator-sunny/sunny --onnx sunny.onnx
  photoedit -a night --backend onnxruntime photos/ -o edited/   edit with the export
                                               (uses <bundle>/model.onnx; pip install 'photoedit[onnx]')
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit export", description="Export a translator bundle to ONNX.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", metavar="BUNDLE", help="bundle folder, or an attribute name (see `photoedit list`)")
    p.add_argument("--onnx", metavar="FILE", help="output file (default: BUNDLE/model.onnx, where "
                                                  "`--backend onnxruntime` looks for it)")
    p.add_argument("--models", metavar="DIR", help="folder of translator bundles searched first")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.errors import UserError
    from translators.registry import BundleNotFound, require_bundle

    try:
        bundle = require_bundle(args.bundle, args.models)
    except BundleNotFound as e:
        raise UserError(str(e)) from None
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise UserError(f"ONNX export needs onnx and onnxruntime ({e}): pip install 'photoedit[onnx]'") from None
    from translators.export import export_onnx

    try:
        report = export_onnx(bundle, args.onnx, opset=args.opset)
    except (ValueError, OSError) as e:  # BundleError is a ValueError
        raise UserError(f"cannot export {bundle}: {e}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        diffs = ", ".join(f"{k}: {v:.1e}" for k, v in report["max_abs_diff"].items())
        print(f"wrote {report['path']} ({report['bytes'] / 1e6:.1f} MB, opset {report['opset']}, "
              f"{report['seconds']:.1f} s); max abs difference to torch {diffs}")
    return 0

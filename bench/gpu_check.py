"""Numeric checks behind bench/gpu_check.sh: CUDA results against the CPU on the same weights.

    python bench/gpu_check.py RUN_DIR [--device cuda] [--out results.jsonl]

RUN_DIR is a finished `photoedit run` (gpu_check.sh makes one on the GPU). Each check
prints one line and appends a JSON record {check, ok, seconds, ...} to --out:

  env            torch/CUDA versions, device name, bf16 support
  generator      the run's generator on DEVICE (fp32) vs CPU, same z: max abs difference
  generator_amp  same under autocast (bf16 if supported, else fp16), the training's AMP path
  translator     the run's translator on DEVICE vs CPU, fp32 and channels-last
  edit           EditPipeline on DEVICE (fp16 autocast + channels-last, the CLI's defaults)
                 vs the CPU on a real photo (../shared/realphotos, else synthetic): PSNR
  onnx_cuda      the ONNX export with onnxruntime's CUDA provider, when onnxruntime-gpu is there

With --device cpu every check runs against itself (a dry run of the script's code paths).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "realphotos"

# Thresholds: fp32 GPU vs CPU differ by kernel order only; autocast by its precision.
TOL_FP32 = 1e-3  # TF32 off for the comparison
TOL_AMP_MEAN = 0.05  # measured 0.0205 on the H200 (bf16); a wrong path differs by 0.16 (other noise) to 0.85
MIN_EDIT_PSNR = 35.0


def record(out: Path | None, check: str, ok: bool, t0: float, **info) -> bool:
    row = {"check": check, "ok": bool(ok), "seconds": round(time.perf_counter() - t0, 2), **info}
    print(("PASS " if ok else "FAIL ") + json.dumps(row), flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    return bool(ok)


def check_env(device: torch.device, out) -> bool:
    t0 = time.perf_counter()
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        info.update(name=torch.cuda.get_device_name(device), gpus=torch.cuda.device_count(),
                    bf16=torch.cuda.is_bf16_supported(),
                    nccl=".".join(map(str, torch.cuda.nccl.version())) if hasattr(torch.cuda, "nccl") else None)
    try:  # torch.compile's GPU kernels (train_gan.compile) need it
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return record(out, "env", True, t0, **info)


def check_generator(run: Path, device: torch.device, out) -> bool:
    from gan.checkpoint import load_generator

    t0 = time.perf_counter()
    path = run / "gan" / "generator.safetensors"
    G_cpu, G_dev = load_generator(path, "cpu"), load_generator(path, device)
    z = torch.randn(8, G_cpu.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    # fp32 means fp32 here: cuDNN's default TF32 convolutions alone differ by ~3e-3 (H200, 27 Nov 2026).
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.no_grad():
            ref = G_cpu(z, noise_mode="const")
            got = G_dev(z.to(device), noise_mode="const").float().cpu()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    diff = float((ref - got).abs().max())
    ok = record(out, "generator", math.isfinite(diff) and diff <= TOL_FP32, t0, max_abs_diff=diff, tol=TOL_FP32)
    t0 = time.perf_counter()
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    with torch.no_grad(), torch.autocast(device.type, dtype=amp, enabled=device.type == "cuda"):
        got = G_dev(z.to(device), noise_mode="const").float().cpu()
    diff, mean = float((ref - got).abs().max()), float((ref - got).abs().mean())
    # bf16 keeps 8 bits of mantissa: a few pixels of an image in [-1, 1] drift by 0.2 after a dozen
    # layers (max 0.21-0.27 on the H200, 27-28 Nov 2026); the mean says whether the path is right:
    # 0.0205 on the H200 for the tiny run's generator (bf16 autocast on this CPU: 0.0056 for the demo
    # GAN), while a wrong path - the same latents with random noise, other latents - differs by 0.16
    # and 0.85 on the demo GAN.
    return record(out, "generator_amp", math.isfinite(diff) and mean <= TOL_AMP_MEAN, t0, dtype=str(amp),
                  max_abs_diff=diff, mean_abs_diff=mean, tol_mean=TOL_AMP_MEAN) and ok


def _bundle(run: Path) -> Path:
    found = sorted(p.parent for p in run.glob("translator-*/*/model.safetensors"))
    if not found:
        raise SystemExit(f"{run}: no translator bundle (translator-*/<attribute>/model.safetensors)")
    return found[0]


def check_translator(run: Path, device: torch.device, out) -> bool:
    from translators.bundle import load_bundle

    t0 = time.perf_counter()
    bundle = _bundle(run)
    m_cpu, _ = load_bundle(bundle, "cpu")
    m_dev, _ = load_bundle(bundle, device)
    m_dev = m_dev.to(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    s = torch.tensor([0.0, 0.3, 0.7, 1.0])
    with torch.no_grad():
        ref = m_cpu(x, s)
        got = m_dev(x.to(device).contiguous(memory_format=torch.channels_last), s.to(device)).float().cpu()
    diff = float((ref - got).abs().max())
    return record(out, "translator", math.isfinite(diff) and diff <= TOL_FP32, t0, bundle=str(bundle),
                  max_abs_diff=diff, tol=TOL_FP32)


def _photo() -> tuple[np.ndarray, str]:
    from pipeline.photos.imageio import read_photo

    for p in sorted(REAL.glob("*.jpg")) if REAL.is_dir() else []:
        return read_photo(p).rgb, p.name
    rng = np.random.default_rng(0)
    return (rng.random((720, 1280, 3)) * 255).astype(np.uint8), "synthetic 1280x720"


def check_edit(run: Path, device: torch.device, out) -> bool:
    from translators.inference import EditConfig, EditPipeline

    t0 = time.perf_counter()
    bundle = _bundle(run)
    rgb, name = _photo()
    cpu = EditPipeline.from_pretrained(str(bundle), device="cpu", config=EditConfig())(rgb, 1.0).image
    dev_pipe = EditPipeline.from_pretrained(str(bundle), device=str(device), config=EditConfig())
    got = dev_pipe(rgb, 1.0).image
    mse = float(np.mean((cpu.astype(np.float64) - got) ** 2))
    psnr = 10 * math.log10(255 ** 2 / max(mse, 1e-12))
    changed = float(np.abs(cpu.astype(int) - rgb).mean())
    return record(out, "edit", psnr >= MIN_EDIT_PSNR, t0, photo=name, half=dev_pipe.half,
                  channels_last=dev_pipe.config.channels_last, psnr_vs_cpu_db=round(psnr, 2),
                  edit_mean_abs_change=round(changed, 2), min_psnr=MIN_EDIT_PSNR)


def check_onnx_cuda(run: Path, device: torch.device, out) -> bool:
    t0 = time.perf_counter()
    try:
        import onnxruntime as ort
    except ImportError:
        return record(out, "onnx_cuda", True, t0, skipped="onnxruntime not installed")
    if device.type != "cuda" or "CUDAExecutionProvider" not in ort.get_available_providers():
        return record(out, "onnx_cuda", True, t0, skipped=f"no CUDAExecutionProvider (providers: "
                                                           f"{ort.get_available_providers()}; needs onnxruntime-gpu)")
    import shutil
    import tempfile

    from translators.bundle import load_bundle
    from translators.export import compare_to_torch, export_onnx
    from translators.onnx_backend import OnnxTranslator

    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "b"
        shutil.copytree(_bundle(run), bundle)
        export_onnx(bundle)
        model, _ = load_bundle(bundle)
        onnx_model = OnnxTranslator(bundle / "model.onnx", device=device)
        x = torch.rand(2, 3, 64, 96) * 2 - 1
        s = torch.tensor([0.5, 1.0])
        with torch.no_grad():
            diff = float((model(x, s) - onnx_model(x.to(device), s).cpu()).abs().max())
        cpu_diffs = compare_to_torch(bundle / "model.onnx", model)
    return record(out, "onnx_cuda", diff <= TOL_FP32, t0, max_abs_diff=diff, cpu_provider=cpu_diffs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished `photoedit run` folder")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, help="append JSON records here")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("FAIL no CUDA device visible to torch", flush=True)
        return 1
    ok = True
    for check in (check_env, check_generator, check_translator, check_edit, check_onnx_cuda):
        try:
            ok &= check(args.run, device, args.out) if check is not check_env else check(device, args.out)
        except Exception as e:  # noqa: BLE001 - one broken path must not hide the others
            ok &= record(args.out, check.__name__.removeprefix("check_"), False, time.perf_counter(),
                         error=f"{type(e).__name__}: {e}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""GAN training step speed by variant, on one device (made for a GPU lease), with a kernel table.

    python bench/bench_gan_step.py --device cuda [--batch 64] [--width 2048] [--steps 20] [--profile]

Builds the trainer (128x256, channel_base --width for G and D, channel_max --channel-max, batch
--batch; the demo preset's CPU GAN is --width 1024 --channel-max 64 --batch 8) on random images and
times train_step for each variant, the first being the baseline every ratio is against:
  amp      bf16 autocast (fp16 + loss scaling where bf16 is missing) or fp32
  compile  train_gan.compile: torch.compile'd G and D passes (R1 stays eager), in its default
           mode or reduce-overhead (CUDA graphs); the warm-up steps pay the compile, the timed
           ones do not
The resampling blur runs as shifted sums and cudnn.benchmark is on for CUDA, as in training
(both measured in the first GPU lease: 2.49x together, docs/BENCHMARKS.md "GPU check").
--profile prints torch.profiler's top kernels for the baseline and the fastest variant.
On the CPU (--device cpu --batch 4 --width 1024 --steps 2) it checks the script itself.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gan.networks import GeneratorConfig  # noqa: E402
from gan.training import TrainConfig, Trainer  # noqa: E402

VARIANTS = [  # (name, amp, compile: False or torch.compile's mode)
    ("eager, fp32", False, False),
    ("eager, amp", True, False),
    ("compile, fp32", False, "default"),
    ("compile, amp", True, "default"),
    ("compile reduce-overhead, fp32", False, "reduce-overhead"),  # + CUDA graphs
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(args, amp: bool, compile_: bool | str) -> Trainer:
    gcfg = GeneratorConfig(resolution=(128, 256), z_dim=128, w_dim=128, mapping_layers=4,
                           channel_base=args.width, channel_max=args.channel_max)
    tcfg = TrainConfig(batch=args.batch, g_lr=0.0025, d_lr=0.0025, r1_gamma=0.2, style_mixing=0.0,
                       augment=(), d_channel_base=args.width, d_channel_max=args.channel_max, amp=amp,
                       compile=bool(compile_), compile_mode=compile_ or "default")
    return Trainer(gcfg, tcfg, device=args.device)


def time_variant(args, variant) -> dict:
    name, amp, compile_ = variant
    device = torch.device(args.device)
    trainer = build(args, amp, compile_)
    real = torch.rand(args.batch, 3, 128, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for _ in range(args.warmup + (args.compile_warmup if compile_ else 0)):
        trainer.train_step(real)
    sync(device)
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step(real)
    sync(device)
    sec = (time.perf_counter() - t) / args.steps
    return {"variant": name, "ms_per_step": round(sec * 1000, 1), "img_per_s": round(args.batch / sec, 1),
            "trainer": trainer, "real": real, "settings": variant}


def profile(row: dict, top: int) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with torch_profile(activities=acts) as prof:
        for _ in range(5):
            row["trainer"].train_step(row["real"])
        sync(row["trainer"].device)
    key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
    print(f"--- top kernels, {row['variant']} (5 steps)")
    print(prof.key_averages().table(sort_by=key, row_limit=top, max_name_column_width=60))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=2048, help="channel_base of G and D")
    ap.add_argument("--channel-max", type=int, default=128, help="channel_max of G and D")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--compile-warmup", type=int, default=30,
                    help="extra warm-up steps for compiled variants (the compiles, an R1 step among them)")
    ap.add_argument("--variants", help="comma-separated indices into the variants (default all)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1
    rows = []
    chosen = [VARIANTS[int(i)] for i in args.variants.split(",")] if args.variants else VARIANTS
    for v in chosen:
        row = time_variant(args, v)
        rows.append(row)
        base = rows[0]["ms_per_step"]
        print(f"{row['variant']:28s} {row['ms_per_step']:8.1f} ms/step {row['img_per_s']:8.1f} img/s "
              f"{base / row['ms_per_step']:5.2f}x", flush=True)
        if len(rows) > 1 or not args.profile:
            del row["trainer"]  # only the baseline's trainer stays alive, and only to profile it
    if args.profile:
        profile(rows[0], args.top)
        if len(rows) > 1:
            best = min(rows[1:], key=lambda r: r["ms_per_step"])
            profile(time_variant(args, best["settings"]), args.top)
    table = [{k: v for k, v in r.items() if k not in ("trainer", "real", "settings")} for r in rows]
    info = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch": torch.__version__, "batch": args.batch, "width": args.width,
            "channel_max": args.channel_max, "rows": table}
    if args.out:
        args.out.write_text(json.dumps(info, indent=1))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())

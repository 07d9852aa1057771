"""Training-step speed of gan/networks.py beside rosinality/stylegan2-pytorch, same architecture, CPU.

The architecture is rosinality's own default for 64 px with channel multiplier 1
(latent 512, n_mlp 8, widths 512/512/512/512/256, its residual discriminator), built
in both implementations; the generators are checked to be the same network by porting
rosinality's weights into ours with gan/import_rosinality.py (strict), and the
discriminators by their parameter shapes.

One step = one D step + one G step + the EMA update, with no regularisation and no
augmentation, style mixing with probability 0.9 (both projects' default): for ours
`gan.training.Trainer.train_step` itself (the code `photoedit train-gan` runs), for
rosinality the body of its train.py loop (logistic loss, Adam(lr 0.002, betas (0, 0.99)),
requires_grad toggling, mixing_noise, accumulate). A fixed real batch feeds both (data
loading is not timed for either).

Steps of the two implementations are interleaved (ours, theirs, ours, ...) so that a
machine shared with other work slows both alike; the figure is the ratio of median
step times measured in this one run.

rosinality's code is not part of this project: pass the folder of a checkout with
--rosinality-dir. Its `op` package compiles CUDA extensions when imported; on the CPU
its code never calls them (it has native fallbacks), so the compile call is stubbed
out for the duration of the import. Without the folder only ours is measured.

    python bench/bench_gan_vs_rosinality.py --rosinality-dir /tmp/rosinality --also-nhwc
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

# As `photoedit train-gan` does: idle OpenMP threads sleep instead of spinning, which on a
# shared CPU otherwise costs both implementations alike (set before torch starts OpenMP).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from gan.networks import GeneratorConfig  # noqa: E402
from gan.training import TrainConfig, Trainer  # noqa: E402

SIZE = 64  # rosinality's channel table at cm=1 gives 512,512,512,512,256 up to 64 px
LATENT = 512
N_MLP = 8
CHANNEL_MULTIPLIER = 1


@contextlib.contextmanager
def no_extension_builds():
    """rosinality's op/*.py call torch.utils.cpp_extension.load at import; CPU never uses the result."""
    import torch.utils.cpp_extension as ext

    original = ext.load
    ext.load = lambda *args, **kwargs: None
    try:
        yield
    finally:
        ext.load = original


def import_rosinality_model(folder: Path):
    if not (folder / "model.py").is_file() or not (folder / "op").is_dir():
        raise SystemExit(f"{folder}: not a rosinality/stylegan2-pytorch checkout (model.py, op/ missing)")
    sys.path.insert(0, str(folder))
    with no_extension_builds():
        return importlib.import_module("model")


MIXING = 0.9  # style-mixing probability, the default of both train.py and our TrainConfig


def build_ours(batch: int, channels_last: bool = False) -> Trainer:
    gcfg = GeneratorConfig(z_dim=LATENT, w_dim=LATENT, resolution=(SIZE, SIZE), mapping_layers=N_MLP,
                           channel_base=16384 * CHANNEL_MULTIPLIER, channel_max=512)
    tcfg = TrainConfig(batch=batch, r1_gamma=0.0, pl_weight=0.0, style_mixing=MIXING, augment=(),
                       d_channel_base=16384 * CHANNEL_MULTIPLIER, d_channel_max=512, channels_last=channels_last)
    return Trainer(gcfg, tcfg, device="cpu")


def ours_step(trainer: Trainer, real: torch.Tensor):
    def step() -> float:
        t0 = time.perf_counter()
        stats = trainer.train_step(real)
        dt = time.perf_counter() - t0
        if not all(math.isfinite(v) for v in stats.values()):
            raise SystemExit(f"non-finite loss in our benchmark step: {stats}")
        return dt

    return step


def build_theirs(model):
    G = model.Generator(SIZE, LATENT, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER)
    D = model.Discriminator(SIZE, channel_multiplier=CHANNEL_MULTIPLIER)
    G_ema = model.Generator(SIZE, LATENT, N_MLP, channel_multiplier=CHANNEL_MULTIPLIER).eval()
    G_ema.load_state_dict(G.state_dict())
    return G, D, G_ema


def check_same_architecture(ours, theirs) -> None:
    """Same generator: rosinality's weights port into ours strictly. Same D: same parameter shapes."""
    from gan.import_rosinality import convert_rosinality_state

    convert_rosinality_state(theirs[0].state_dict(), ours[0], "rosinality G")  # raises on any mismatch
    shapes = lambda m: sorted(tuple(p.shape) for p in m.parameters())  # noqa: E731
    if shapes(ours[1]) != shapes(theirs[1]):
        raise SystemExit("discriminators differ in parameter shapes; the comparison would be unfair")


def set_grad(module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def mixing_noise(batch: int) -> list[torch.Tensor]:
    """rosinality's mixing_noise: two latents with probability MIXING, else one."""
    if random.random() < MIXING:
        return list(torch.randn(2, batch, LATENT).unbind(0))
    return [torch.randn(batch, LATENT)]


def theirs_step(G, D, G_ema, real: torch.Tensor, batch: int):
    """The body of rosinality's train.py loop without regularisation or augmentation."""
    g_opt = torch.optim.Adam(G.parameters(), lr=0.002, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=0.002, betas=(0.0, 0.99))
    ema_decay = 0.5 ** (32 / (10 * 1000))  # its `accum`

    def step() -> float:
        t0 = time.perf_counter()
        set_grad(G, False)
        set_grad(D, True)
        fake, _ = G(mixing_noise(batch))
        d_loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        D.zero_grad()
        d_loss.backward()
        d_opt.step()
        set_grad(G, True)
        set_grad(D, False)
        fake, _ = G(mixing_noise(batch))
        g_loss = F.softplus(-D(fake)).mean()
        G.zero_grad()
        g_loss.backward()
        g_opt.step()
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.mul_(ema_decay).add_(p, alpha=1 - ema_decay)
        dt = time.perf_counter() - t0
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            raise SystemExit("non-finite loss in rosinality's benchmark step")
        return dt

    return step


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--rosinality-dir", type=Path, default=Path("/tmp/rosinality"),
                   help="checkout of rosinality/stylegan2-pytorch (skipped when absent)")
    p.add_argument("--batch", type=int, default=8, help="images per step (rosinality's default)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per implementation")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per implementation first")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads for both")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--also-nhwc", action="store_true",
                   help="also time ours with train_gan.channels_last=true (NHWC weights and activations), interleaved")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    real = torch.rand(args.batch, 3, SIZE, SIZE) * 2 - 1
    runners = {}
    trainer = build_ours(args.batch)
    runners["ours"] = ours_step(trainer, real)
    if args.also_nhwc:
        runners["ours_nhwc"] = ours_step(build_ours(args.batch, channels_last=True), real)
    if args.rosinality_dir.is_dir():
        theirs = build_theirs(import_rosinality_model(args.rosinality_dir))
        check_same_architecture((trainer.G, trainer.D), theirs)
        runners["rosinality"] = theirs_step(*theirs, real, args.batch)
        print(f"same architecture: {SIZE} px, latent {LATENT}, n_mlp {N_MLP}, channel multiplier "
              f"{CHANNEL_MULTIPLIER}; G {sum(p.numel() for p in trainer.G.parameters()):,} params, "
              f"D {sum(p.numel() for p in trainer.D.parameters()):,} params (both)")
    else:
        print(f"{args.rosinality_dir}: not found; measuring ours only "
              "(fetch rosinality/stylegan2-pytorch and pass --rosinality-dir for the comparison)")

    load_before = os.getloadavg()
    times = {name: [] for name in runners}
    for i in range(args.warmup + args.steps):
        for name, step in runners.items():  # interleaved: both see the same machine load
            dt = step()
            if i >= args.warmup:
                times[name].append(dt)
            print(f"  step {i}{' (warm-up)' if i < args.warmup else ''} {name:<10} {dt:7.2f} s", flush=True)
    load_after = os.getloadavg()

    result = {"batch": args.batch, "threads": args.threads, "steps": args.steps,
              "loadavg_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)]}
    for name, ts in times.items():
        med = statistics.median(ts)
        result[name] = {"step_s_median": round(med, 3), "step_s_all": [round(t, 3) for t in ts],
                        "images_per_s": round(args.batch / med, 3)}
        print(f"{name:<10} median step {med:7.2f} s   {args.batch / med:6.3f} images/s")
    if "rosinality" in result:
        ratio = result["rosinality"]["step_s_median"] / result["ours"]["step_s_median"]
        # Each round's pair ran back to back, so its ratio is least affected by load drift.
        paired = [t / o for o, t in zip(times["ours"], times["rosinality"])]
        result["speedup_ours_vs_rosinality"] = round(ratio, 2)
        result["speedup_per_round"] = [round(r, 2) for r in paired]
        result["speedup_median_of_rounds"] = round(statistics.median(paired), 2)
        print(f"speed-up (rosinality median / ours median): {ratio:.2f}x; per round "
              f"{', '.join(f'{r:.2f}x' for r in paired)} (median {statistics.median(paired):.2f}x)")
    if "ours_nhwc" in result:
        paired = [o / n for o, n in zip(times["ours"], times["ours_nhwc"])]
        result["channels_last_speedup_per_round"] = [round(r, 2) for r in paired]
        print(f"channels_last vs NCHW (ours / ours_nhwc per round): {', '.join(f'{r:.2f}x' for r in paired)} "
              f"(median {statistics.median(paired):.2f}x)")
        if "rosinality" in result:
            r_nhwc = result["rosinality"]["step_s_median"] / result["ours_nhwc"]["step_s_median"]
            result["speedup_ours_nhwc_vs_rosinality"] = round(r_nhwc, 2)
            print(f"ours with NHWC vs rosinality: {r_nhwc:.2f}x")
    print(f"1-min load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
          f"(machine has {os.cpu_count()} cores); OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

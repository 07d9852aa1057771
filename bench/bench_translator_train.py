"""Translator training throughput (images/s) at the quickstart size, against pix2pixHD's default.

Both runs go through the same TranslatorTrainer (paired augmentation, G step, multi-scale
D step) on the same random pairs; only the architecture differs:
  ours      quickstart `translator:` + `train_translator:` sections (configs/quickstart.yaml)
  baseline  pix2pixHD defaults: GlobalGenerator ngf 64, 4 downsamplings, 9 blocks,
            transposed-conv upsampling, no residual/strength; D ndf 64, 3 layers, 2 scales

usage: python bench/bench_translator_train.py [--steps 10] [--warmup 2] [--threads N] [--device cpu]
Prints one line per run and the ratio ours / baseline measured in this run.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch
from torch.utils.data import Dataset

from pipeline.config import load_section, read_preset
from translators.networks import TranslatorConfig
from translators.training import TrainTranslatorConfig, TranslatorTrainer


class RandomPairs(Dataset):
    def __init__(self, n: int, size: tuple[int, int]):
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, *size, generator=g) * 2 - 1
        self.y = (self.x * 0.8).clamp(-1, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], 2.0


def images_per_s(arch: TranslatorConfig, train: TrainTranslatorConfig, size, steps: int, warmup: int, device) -> float:
    cfg = dataclasses.replace(train, steps=warmup + steps, log_every=10**9, grid_every=10**9, snapshot_every=10**9)
    data = RandomPairs(cfg.batch * 4, size)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = TranslatorTrainer(data, arch, cfg, tmp, strength_max=3.0, device=device, log=lambda m: None)
        trainer.run(progress=False, until=warmup)
        t0 = time.perf_counter()
        trainer.run(progress=False)
        dt = time.perf_counter() - t0
    return steps * cfg.batch / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = load_section(TranslatorConfig, "translator", "quickstart")
    train = load_section(TrainTranslatorConfig, "train_translator", "quickstart")
    size = tuple(read_preset("quickstart")["world"]["size"])  # the quickstart GAN/pairs resolution
    base_arch = TranslatorConfig(ngf=64, n_downsample=4, n_blocks=9, max_channels=1024, upsample="transposed",
                                 residual=False, strength_channel=False, film=False)
    base_train = dataclasses.replace(train, ndf=64, n_layers_d=3, num_d=2)
    print(f"size {size[0]}x{size[1]}, batch {train.batch}, threads {torch.get_num_threads()}, device {args.device}")
    ours = images_per_s(arch, train, size, args.steps, args.warmup, args.device)
    print(f"ours      (ngf {arch.ngf}, down {arch.n_downsample}, blocks {arch.n_blocks}, D ndf {train.ndf}): {ours:8.1f} images/s")
    base = images_per_s(base_arch, base_train, size, args.steps, args.warmup, args.device)
    print(f"pix2pixHD (ngf 64, down 4, blocks 9, D ndf 64):          {base:8.1f} images/s")
    print(f"ratio ours / pix2pixHD default: {ours / base:.1f}x")


if __name__ == "__main__":
    main()

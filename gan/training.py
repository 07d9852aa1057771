"""StyleGAN2 training loop: one CPU, one GPU (AMP) or many (torchrun), with exact resume.

Losses and schedule follow Karras et al. 2020: non-saturating logistic loss, lazy R1
on reals every `r1_interval` steps, optional lazy path-length regularisation, EMA
generator, style mixing, Adam (lr 0.002, betas (0, 0.99)) with the lazy-regularisation
correction of lr and betas. DiffAugment (Zhao et al. 2020) is applied to every image
the discriminator sees, reals and fakes alike; colour jitter is off by default because
lighting is exactly what the downstream pipeline wants the GAN to model.

Data parallelism: under torchrun every rank holds full G and D, draws its share of the
batch, and gradients are averaged with one all-reduce of a flat buffer per optimiser
step (as stylegan3 does) instead of wrapping in DistributedDataParallel: the lazy R1
needs double backward and G/D alternate, which DDP's bucketed hooks do not handle.
The effect is the same as DDP: identical parameters on every rank after every step.

Data comes from a callable `data(start_batch) -> iterator of [B,3,H,W] batches in [-1,1]`
that starts at the given per-rank batch index, so that a resumed run sees exactly the
batches an uninterrupted one would (gan/ never imports pipeline/: the caller builds it).

A run folder holds: config.json (resolved, written first), stats.jsonl (one line per
tick), fakes_*.png grids, checkpoints/step-XXXXXXXX/ (generator_ema.safetensors loadable
by gan.checkpoint.load_generator, generator/discriminator weights, optimiser state,
RNG states, counters) and checkpoints/latest -> the newest one. DiffAugment has no
adaptive state (unlike ADA's p): its randomness comes from the saved RNG, so the resumed
run draws the same augmentations.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from tqdm import tqdm

from gan.checkpoint import (EMA_FILENAME, CheckpointError, atomic_save_file, atomic_write, read_generator_metadata,
                            save_generator)
from gan.images import from_uint8, to_uint8
from gan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from gan.swd import swd

DataFn = Callable[[int], Iterator[torch.Tensor]]
HSR_HEADS_FILENAME = "hsr_heads.safetensors"
BEST_FILE = Path("best") / EMA_FILENAME  # in a run folder: the EMA generator of the lowest SWD (_keep_best)
AUGMENTS = ("translation", "cutout", "color")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig:
    batch: int = 16  # images per step over all ranks (each rank takes batch / world_size)
    kimg: float = 0.0  # stop after this many thousand real images (0 = no image limit)
    minutes: float = 5.0  # stop after this much wall time (0 = no time limit)
    g_lr: float = 0.002  # generator Adam learning rate (paper: 0.002)
    d_lr: float = 0.002  # discriminator Adam learning rate
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas (paper: 0, 0.99)
    r1_gamma: float = 1.0  # R1 weight on reals; ~0.0002 * H*W / batch is a good start
    r1_interval: int = 16  # lazy R1 every N D steps (0 = off)
    pl_weight: float = 0.0  # path-length regularisation weight (paper: 2; 0 = off)
    pl_interval: int = 4  # lazy path-length every N G steps
    pl_decay: float = 0.01  # EMA decay of the running mean path length
    pl_batch_shrink: int = 2  # path-length batch = batch / this
    style_mixing: float = 0.9  # probability of mixing two latents at a random layer
    ema_kimg: float = 10.0  # EMA half-life in thousands of images
    ema_rampup: float = 0.05  # half-life <= this * images seen (0 = off), helps short runs
    augment: tuple[str, ...] = ("translation", "cutout")  # DiffAugment ops: translation, cutout, color
    d_channel_base: int = 16384  # discriminator width at resolution r: min(base // r, max)
    d_channel_max: int = 512  # cap on the discriminator's width
    mbstd_group: int = 4  # minibatch-stddev group size
    tick_kimg: float = 1.0  # log a stats line every this many thousand images
    snapshot_ticks: int = 5  # checkpoint + sample grid every N ticks (and at the end)
    keep_checkpoints: int = 3  # older checkpoint folders are deleted
    swd_images: int = 128  # EMA samples vs held-out reals for SWD (0 = off)
    swd_ticks: int = 1  # measure SWD every N ticks (and at the end)
    grid_images: int = 16  # images in each fakes_*.png grid
    data_images: int = 2048  # training images held in memory (world renders, or up to this many photos)
    seed: int = 0  # seeds weights, latents, augmentation (rank r uses seed + r for its draws)
    amp: bool = True  # mixed precision on CUDA (bf16 if supported, else fp16 + loss scaling)
    channels_last: bool = False  # NHWC weights and activations on the CPU: 0.77-1.46x per step here (BENCHMARKS)
    # torch.compile the generator and discriminator passes of each step (not R1's or path length's
    # double backward, which stay eager): fewer, fused kernels for GPUs, where an eager step is bound
    # by kernel launches (1.85x per step on an H200, 1.04x on a 2-core CPU). Costs a compile at the first steps (~1 min).
    compile: bool = False
    # torch.compile's mode: default | reduce-overhead (CUDA graphs: a compiled step is still bound by
    # the host on an H200, BENCHMARKS "GPU check") | max-autotune | max-autotune-no-cudagraphs
    compile_mode: str = "default"
    hsr_weight: float = 0.0  # HSR (gan/hsr.py) loss weight in the G step; 0 = off (needs hsr_encoder)
    hsr_encoder: str | None = None  # local encoder: a `train-predictor` folder or a torchvision state dict
    hsr_encoder_arch: str = "classifier"  # classifier | vgg11/13/16/19 | resnet18/34/50 (for a state dict)
    hsr_levels: tuple[int, ...] | None = None  # generator levels HSR may align (None = all, paired by size)
    hsr_start_kimg: float = 0.0  # HSR starts after this many kimg (the paper fine-tunes a trained baseline)
    tensorboard: bool = False  # train-gan writes TensorBoard scalars to RUN/tb (extra [tensorboard])

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        self.augment = tuple(self.augment)
        bad = [a for a in self.augment if a not in AUGMENTS]
        if bad:
            raise ValueError(f"augment: unknown {bad}; choose from {', '.join(AUGMENTS)}")
        if self.batch < 1:
            raise ValueError("batch must be >= 1")
        if self.hsr_levels is not None:
            self.hsr_levels = tuple(int(v) for v in self.hsr_levels)
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode: unknown {self.compile_mode!r}; choose from {', '.join(COMPILE_MODES)}")
        if self.hsr_weight < 0:
            raise ValueError(f"hsr_weight must be >= 0, got {self.hsr_weight}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["augment"] = list(self.augment)
        d["hsr_levels"] = list(self.hsr_levels) if self.hsr_levels is not None else None
        return d


class TrainingDiverged(RuntimeError):
    """A loss became NaN/inf; the run stopped and the last good checkpoint is kept."""


# ---------------------------------------------------------------- data helpers (no pipeline/)

class InMemoryBatches:
    """Deterministic batches from an in-memory image set: data(start_batch) for train().

    Each epoch is a fresh permutation from (seed, epoch); rank r of R takes every R-th
    index of the global order, so ranks never share an image within a step.
    """

    def __init__(self, images, batch: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        """images: uint8 [N, H, W, 3] (array or tensor; kept as uint8, a quarter of the memory)
        or float [N, 3, H, W] in [-1, 1]."""
        images = images if torch.is_tensor(images) else torch.from_numpy(images)
        channel = -1 if images.dtype == torch.uint8 else 1
        if images.ndim != 4 or images.shape[channel] != 3:
            layout = "[N,H,W,3]" if channel == -1 else "[N,3,H,W]"
            raise ValueError(f"images: expected {images.dtype} {layout}, got {list(images.shape)}")
        if batch % world_size:
            raise ValueError(f"batch {batch} is not divisible by {world_size} ranks")
        self.images, self.batch, self.seed = images, batch, seed
        self.rank, self.world_size = rank, world_size

    def _order(self, epoch: int) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))

    def __call__(self, start_batch: int = 0) -> Iterator[torch.Tensor]:
        n = len(self.images)
        step = start_batch
        while True:
            first = step * self.batch
            idx = [first + j for j in range(self.rank, self.batch, self.world_size)]
            order_cache: dict[int, torch.Tensor] = {}
            picks = []
            for i in idx:
                epoch = i // n
                if epoch not in order_cache:
                    order_cache[epoch] = self._order(epoch)
                picks.append(int(order_cache[epoch][i % n]))
            x = self.images[picks]
            yield from_uint8(x) if x.dtype == torch.uint8 else x.float()
            step += 1


# ---------------------------------------------------------------- DiffAugment

def diff_augment(x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
    """Differentiable augmentation applied identically in spirit to reals and fakes (Zhao et al. 2020)."""
    if "color" in ops:
        x = _aug_color(x)
    if "translation" in ops:
        x = _aug_translation(x)
    if "cutout" in ops:
        x = _aug_cutout(x)
    return x


def _aug_color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    r = lambda: torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (r() - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r() + 0.5) + mean  # contrast


def _aug_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio * size pixels, filling with zeros (gather, no loops)."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None] + ty  # source row for each output row
    gx = torch.arange(w, device=x.device)[None, None, :] + tx
    padded = F.pad(x, (1, 1, 1, 1))  # index 0 / last of the padded image is zero
    gy = (gy + 1).clamp(0, h + 1)
    gx = (gx + 1).clamp(0, w + 1)
    flat = (gy * (w + 2) + gx).view(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)


def _aug_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - ch // 2, cx - cw // 2  # the box may hang over the border, as in DiffAugment
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).to(x.dtype)[:, None]


def _check_compiler(device: torch.device) -> None:
    """train_gan.compile's backend (inductor) writes Triton kernels on GPUs and C++ on CPUs: say
    which is missing here, before the first step fails deep inside the compiler."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            raise ValueError("train_gan.compile on CUDA needs Triton, which is not installed (it comes with "
                             "PyTorch's Linux CUDA wheels: pip install triton); or set train_gan.compile=false") from None
    elif device.type == "cpu" and not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        raise ValueError("train_gan.compile on the CPU needs a C++ compiler (c++, g++ or clang++ on PATH); "
                         "or set train_gan.compile=false (it gains little on a CPU)")


# ---------------------------------------------------------------- distributed helpers

def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _broadcast_params(module: torch.nn.Module) -> None:
    if _rank_world()[1] > 1:
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def _average_grads(params: list[torch.nn.Parameter]) -> None:
    """One all-reduce of all gradients flattened; NaN/inf kept so the guard can see them."""
    if _rank_world()[1] == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= _rank_world()[1]
    offset = 0
    for p, g in zip(params, grads):
        p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def _all_true(flag: bool, device: torch.device) -> bool:
    if _rank_world()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item() > 0)


# ---------------------------------------------------------------- the trainer

@dataclass
class TrainState:
    step: int = 0  # optimiser steps taken (G and D each)
    nimg: int = 0  # real images shown so far (all ranks)
    tick: int = 0
    pl_mean: float = 0.0  # running mean path length
    seconds: float = 0.0  # training wall time so far, over all sessions
    history: list = field(default_factory=list)  # SWD curve: [{"kimg":..., "swd":...}]


class Trainer:
    def __init__(self, gcfg: GeneratorConfig, cfg: TrainConfig, device: str | torch.device = "cpu",
                 hsr_encoder: torch.nn.Module | None = None):
        """hsr_encoder: frozen feature encoder for HSR (images in [-1,1] -> feature maps, shallow
        first), built by the caller from a local file; required when cfg.hsr_weight > 0."""
        self.gcfg, self.cfg = gcfg, cfg
        self.device = torch.device(device)
        self.rank, self.world = _rank_world()
        if cfg.batch % self.world:
            raise ValueError(f"train_gan.batch={cfg.batch} must be divisible by the {self.world} ranks")
        self.local_batch = cfg.batch // self.world
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.G = Generator(gcfg).to(self.device)
        dcfg = DiscriminatorConfig(resolution=gcfg.resolution, channel_base=cfg.d_channel_base,
                                   channel_max=cfg.d_channel_max, mbstd_group=cfg.mbstd_group)
        self.D = Discriminator(dcfg).to(self.device)
        self.memory_format = self._memory_format()
        self.G.to(memory_format=self.memory_format)
        self.D.to(memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.hsr = None
        if cfg.hsr_weight > 0:
            if hsr_encoder is None:
                raise ValueError("train_gan.hsr_weight > 0 needs an HSR encoder (train_gan.hsr_encoder: a "
                                 "`photoedit train-predictor` folder or a torchvision state dict on disk)")
            from gan.hsr import HierarchicalSemanticRegulariser

            torch.manual_seed(cfg.seed + 1)  # heads' init: the same on every rank, G's init unchanged
            self.hsr = HierarchicalSemanticRegulariser(hsr_encoder.to(self.device), self.G.synthesis.level_shapes(),
                                                       gcfg.resolution, cfg.hsr_levels).to(self.device)
        _broadcast_params(self.G), _broadcast_params(self.D), _broadcast_params(self.G_ema)
        self.opt_g = self._adam(self.G, cfg.g_lr, cfg.pl_interval if cfg.pl_weight > 0 else 0)
        self.opt_d = self._adam(self.D, cfg.d_lr, cfg.r1_interval if cfg.r1_gamma > 0 else 0)
        self.opt_h = self._adam(self.hsr, cfg.g_lr, 0) if self.hsr is not None else None
        if self.hsr is not None:
            _broadcast_params(self.hsr)
        self.state = TrainState()
        torch.manual_seed(cfg.seed + self.rank)  # per-rank latents / noise / augmentation
        if self.device.type == "cuda":
            # Every step has the same shapes: cuDNN's own algorithm search pays (1.16x per step on an
            # H200, bench/bench_gan_step.py). Results on CUDA were never bitwise repeatable anyway.
            torch.backends.cudnn.benchmark = True
        self.amp_dtype = self._amp_dtype()
        self._compile()
        use_scaler = self.amp_dtype == torch.float16
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)

    def _compile(self) -> None:
        """The passes train_step runs every step, compiled when cfg.compile (the modules stay eager,
        so checkpoints, G_ema and the double-backward penalties see the same parameters unchanged)."""
        self._synthesis, self._mapping, self._d_net = self.G.synthesis, self.G.mapping, self.D
        if self.cfg.compile:
            _check_compiler(self.device)
            mode = self.cfg.compile_mode
            self._synthesis = torch.compile(self.G.synthesis, mode=mode)
            self._mapping = torch.compile(self.G.mapping, mode=mode)
            self._d_net = torch.compile(self.D, mode=mode)
        # CUDA graphs replay into the same memory: each step tells them the last one's outputs are done
        self._graph_steps = (self.cfg.compile and self.device.type == "cuda"
                             and self.cfg.compile_mode in ("reduce-overhead", "max-autotune"))

    def _memory_format(self) -> torch.memory_format:
        # NHWC lets the CPU's oneDNN convolutions skip their layout reorders (bench_gan_vs_rosinality);
        # on CUDA the AMP path is left as it was measured.
        if self.cfg.channels_last and self.device.type == "cpu":
            return torch.channels_last
        return torch.contiguous_format

    def hsr_active(self) -> bool:
        return self.hsr is not None and self.state.nimg >= self.cfg.hsr_start_kimg * 1000

    def _amp_dtype(self) -> torch.dtype | None:
        if not (self.cfg.amp and self.device.type == "cuda"):
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def _adam(self, module: torch.nn.Module, lr: float, reg_interval: int) -> torch.optim.Adam:
        # Lazy regularisation runs every k steps, so the paper scales lr and betas by k/(k+1).
        c = reg_interval / (reg_interval + 1) if reg_interval > 0 else 1.0
        b1, b2 = self.cfg.betas
        # fused on CUDA: one kernel for all parameters instead of a dozen (steps there are launch-bound)
        return torch.optim.Adam(module.parameters(), lr=lr * c, betas=(b1 ** c, b2 ** c), eps=1e-8,
                                fused=True if self.device.type == "cuda" else None)

    # ---- latents

    def _ws(self, n: int) -> torch.Tensor:
        """Mapped latents with style mixing: rows from `cutoff` on come from a second z."""
        z = torch.randn(n, self.gcfg.z_dim, device=self.device)
        w = self._mapping(z)
        self.G.mapping.update_w_avg(w)
        ws = self.G.broadcast(w)
        if self.cfg.style_mixing > 0 and torch.rand(()) < self.cfg.style_mixing:
            cutoff = int(torch.randint(1, self.G.num_ws, ()))
            w2 = self._mapping(torch.randn(n, self.gcfg.z_dim, device=self.device))
            ws = torch.cat([ws[:, :cutoff], self.G.broadcast(w2)[:, cutoff:]], dim=1)
        return ws

    def _d(self, img: torch.Tensor, eager: bool = False) -> torch.Tensor:
        return (self.D if eager else self._d_net)(diff_augment(img, self.cfg.augment))

    # ---- one step of each network

    def d_step(self, real: torch.Tensor, fake: torch.Tensor) -> dict:
        cfg, stats = self.cfg, {}
        self.D.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss = F.softplus(self._d(fake.float())).mean() + F.softplus(-self._d(real)).mean()
        self.scaler_d.scale(loss).backward()
        stats["loss_d"] = loss.detach()
        do_r1 = cfg.r1_gamma > 0 and cfg.r1_interval > 0 and self.state.step % cfg.r1_interval == 0
        if do_r1:
            # R1 in fp32: its double backward is the part most sensitive to overflow.
            real_ = real.detach().requires_grad_(True)
            logits = self._d(real_, eager=True)  # compiled graphs have no double backward
            (grad,) = torch.autograd.grad(logits.sum(), real_, create_graph=True)
            penalty = grad.square().sum(dim=(1, 2, 3)).mean()
            (penalty * (cfg.r1_gamma / 2) * cfg.r1_interval).backward()
            stats["r1"] = penalty.detach()
        self._finish(self.opt_d, self.D, self.scaler_d)
        return stats

    def g_step(self, fake: torch.Tensor, features: list[torch.Tensor] | None = None) -> dict:
        """features: the generator's level features of `fake` (HSR aligns them when it is active)."""
        cfg, stats = self.cfg, {}
        self.D.requires_grad_(False)  # no D weight gradients needed: saves a third of D's backward
        self.opt_g.zero_grad(set_to_none=True)
        if features is not None:
            self.opt_h.zero_grad(set_to_none=True)
        with self._autocast():
            loss = F.softplus(-self._d(fake.float())).mean()
        stats["loss_g"] = loss.detach()
        if features is not None:
            # Same generator pass as the adversarial loss: HSR costs only the encoder and the heads.
            hsr = self.hsr(features, fake)
            stats["hsr"] = hsr.detach()
            loss = loss + cfg.hsr_weight * hsr
        self.scaler_g.scale(loss).backward()
        if cfg.pl_weight > 0 and self.state.step % cfg.pl_interval == 0:
            stats["pl"] = self._path_length()
        if features is not None:
            _average_grads([p for p in self.hsr.parameters() if p.requires_grad])
            self.scaler_g.step(self.opt_h)  # the scaler's update() comes once, in _finish
        self._finish(self.opt_g, self.G, self.scaler_g)
        self.D.requires_grad_(True)
        return stats

    def _path_length(self) -> torch.Tensor:
        cfg = self.cfg
        n = max(1, self.local_batch // cfg.pl_batch_shrink)
        ws = self._ws(n)
        img = self.G.synthesis(ws)
        h, w = img.shape[-2:]
        noise = torch.randn_like(img) / math.sqrt(h * w)
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        pl_mean = self.state.pl_mean + cfg.pl_decay * (float(lengths.detach().mean()) - self.state.pl_mean)
        if self.world > 1:  # keep the running mean identical on all ranks
            t = torch.tensor([pl_mean], device=self.device)
            dist.all_reduce(t)
            pl_mean = float(t) / self.world
        self.state.pl_mean = pl_mean
        penalty = (lengths - pl_mean).square().mean()
        (penalty * cfg.pl_weight * cfg.pl_interval).backward()
        return penalty.detach()

    def _finish(self, opt: torch.optim.Optimizer, module: torch.nn.Module, scaler) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        _average_grads(params)
        scaler.step(opt)
        scaler.update()

    @torch.no_grad()
    def update_ema(self) -> None:
        cfg = self.cfg
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.state.nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        if self.world > 1:  # each rank tracked w_avg on its own latents: agree on their mean
            dist.all_reduce(self.G.mapping.w_avg)
            self.G.mapping.w_avg /= self.world
        # One fused op over all tensors: per-parameter lerps cost more than the maths at this size.
        torch._foreach_lerp_(list(self.G_ema.parameters()), [p.detach() for p in self.G.parameters()], 1.0 - beta)
        for be, b in zip(self.G_ema.buffers(), self.G.buffers()):
            be.copy_(b)

    def train_step(self, real: torch.Tensor) -> dict:
        real = real.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        if real.shape[0] != self.local_batch:
            raise ValueError(f"data gave {real.shape[0]} images, expected {self.local_batch} per rank")
        # One generator pass per step: D learns from its detached output, then G learns from D's
        # (updated) verdict on the same images, as in the classic GAN loop. A fresh pass for the D
        # step would cost a sixth of the step for no gain in expectation.
        features = None
        if self._graph_steps:
            torch.compiler.cudagraph_mark_step_begin()
        with self._autocast():
            if self.hsr_active():
                fake, features = self._synthesis(self._ws(self.local_batch), return_features=True)
            else:
                fake = self._synthesis(self._ws(self.local_batch))
        stats = self.d_step(real, fake.detach())
        stats.update(self.g_step(fake, features))
        self.state.step += 1
        self.state.nimg += self.cfg.batch
        self.update_ema()
        return {k: float(v) for k, v in stats.items()}

    # ---- checkpoints

    def save(self, run_dir: Path) -> Path:
        """Write checkpoints/step-XXXXXXXX/ then repoint checkpoints/latest (rank 0 writes weights)."""
        ckdir = Path(run_dir) / "checkpoints"
        folder = ckdir / f"step-{self.state.step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        self._save_rng(folder)
        if self.world > 1:
            dist.barrier()
        if self.rank != 0:
            return folder
        prov = {"step": self.state.step, "kimg": self.state.nimg / 1000}
        save_generator(self.G_ema, folder / EMA_FILENAME, extra=prov)
        save_generator(self.G, folder / "generator.safetensors", extra=prov)
        meta = {"format": "photoedit-stylegan2-training-state"}
        atomic_save_file(self.D.state_dict(), folder / "discriminator.safetensors", meta)
        opts = _flatten_optimizer(self.opt_g, "g") | _flatten_optimizer(self.opt_d, "d")
        if self.hsr is not None:
            atomic_save_file(self.hsr.state_dict(), folder / HSR_HEADS_FILENAME, meta)
            opts |= _flatten_optimizer(self.opt_h, "h")
        atomic_save_file(opts, folder / "optimizers.safetensors", meta)
        state = dataclasses.asdict(self.state) | {
            "generator": self.gcfg.to_dict(), "train": self.cfg.to_dict(), "world_size": self.world,
            "discriminator": self.D.cfg.to_dict(),
            "hsr_pairs": self.hsr.describe() if self.hsr is not None else None,
        }
        _atomic_write_text(folder / "state.json", json.dumps(state, indent=1))
        _point_latest(ckdir, folder)
        for old in sorted(ckdir.glob("step-*"))[:-max(1, self.cfg.keep_checkpoints)]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def _save_rng(self, folder: Path) -> None:
        tensors = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            tensors["cuda"] = torch.cuda.get_rng_state(self.device)
        atomic_save_file(tensors, folder / f"rng_rank{self.rank}.safetensors", {"format": "rng"})

    def load(self, folder: Path) -> None:
        folder = Path(folder).resolve()
        state = _read_json(folder / "state.json")
        if state["generator"] != self.gcfg.to_dict():
            raise ValueError(f"{folder}: checkpoint was trained with generator config {state['generator']}, "
                             f"not {self.gcfg.to_dict()}; resume with the same gan: settings")
        for module, name in ((self.G, "generator.safetensors"), (self.G_ema, EMA_FILENAME),
                             (self.D, "discriminator.safetensors")):
            module.load_state_dict(_read_tensors(folder / name, self.device), strict=True)
        opt = _read_tensors(folder / "optimizers.safetensors", self.device)
        _load_optimizer(self.opt_g, opt, "g")
        _load_optimizer(self.opt_d, opt, "d")
        # HSR heads: restored when the checkpoint has them; a baseline run resumed with HSR switched
        # on (the paper's recipe: fine-tune a trained GAN) starts them fresh.
        if self.hsr is not None and (folder / HSR_HEADS_FILENAME).is_file():
            self.hsr.load_state_dict(load_file(str(folder / HSR_HEADS_FILENAME), device=str(self.device)),
                                     strict=True)
            if any(k.startswith("h.") for k in opt):
                _load_optimizer(self.opt_h, opt, "h")
        fields = {f.name for f in dataclasses.fields(TrainState)}
        self.state = TrainState(**{k: v for k, v in state.items() if k in fields})
        rng_file = folder / f"rng_rank{self.rank}.safetensors"
        if rng_file.is_file():
            rng = _read_tensors(rng_file, "cpu")
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and self.device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:  # e.g. resumed with more ranks than saved: still deterministic, not bit-identical
            torch.manual_seed(self.cfg.seed + self.rank + 7919 * self.state.step)


def _flatten_optimizer(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for idx, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{prefix}.{idx}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    return out


def _load_optimizer(opt: torch.optim.Optimizer, flat: dict[str, torch.Tensor], prefix: str) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in flat.items():
        p, idx, name = key.split(".", 2)
        if p == prefix:
            state.setdefault(int(idx), {})[name] = v
    if len(state) != len(sd["param_groups"][0]["params"]):
        raise ValueError(f"optimiser state for '{prefix}' has {len(state)} entries, "
                         f"expected {len(sd['param_groups'][0]['params'])}")
    sd["state"] = state
    opt.load_state_dict(sd)


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _read_tensors(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    """A checkpoint file's tensors, or a CheckpointError naming the file (train-gan reports it)."""
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: damaged or unreadable checkpoint file ({e}); to resume from an "
                              "earlier checkpoint, point checkpoints/latest at its folder") from None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{path}: damaged or unreadable checkpoint file ({e}); to resume from an "
                              "earlier checkpoint, point checkpoints/latest at its folder") from None


def _latest_name(ckdir: Path) -> str | None:
    """The step folder `latest` stands for: its link's target, or - for a copy made without links
    (cp -L, tar -h, zip), a real folder - the step its own state.json records. "" when there is
    no `latest`; None when a copied one's step cannot be read."""
    latest = ckdir / "latest"
    if latest.is_symlink():
        return latest.resolve().name if latest.exists() else ""
    if not latest.is_dir():
        return ""
    try:
        return f"step-{int(json.loads((latest / 'state.json').read_text(encoding='utf-8'))['step']):08d}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _discard_incomplete(ckdir: Path) -> None:
    """Delete checkpoint folders newer than `latest`: a save killed before it repointed
    `latest` (e.g. SIGKILL) left them half written, temp files included."""
    done = _latest_name(ckdir)
    if done is None:  # cannot tell which are newer: delete nothing
        return
    for folder in ckdir.glob("step-*"):
        if folder.name > done:
            shutil.rmtree(folder, ignore_errors=True)


def _point_latest(ckdir: Path, folder: Path) -> None:
    latest = ckdir / "latest"
    if latest.is_dir() and not latest.is_symlink():  # a copy without links: it becomes the step folder it is
        name = _latest_name(ckdir)
        if name and not (ckdir / name).exists():
            os.replace(latest, ckdir / name)
        else:  # the same checkpoint is there already (or unreadable, and older than `folder`)
            shutil.rmtree(latest)
    tmp = ckdir / "latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    os.replace(tmp, latest)


# ---------------------------------------------------------------- the loop

def save_grid(images: torch.Tensor, path: Path, cols: int | None = None) -> None:
    """[N,3,H,W] in [-1,1] -> one PNG grid (written atomically)."""
    from PIL import Image

    n, _, h, w = images.shape
    cols = cols or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    arr = to_uint8(images)
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for i, a in enumerate(arr):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = a
    atomic_write(path, lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"))


@torch.no_grad()
def generate(G: Generator, n: int, seed: int, batch: int = 32, device: str | torch.device = "cpu") -> torch.Tensor:
    """n images from fixed latents (seeded local generator, const noise): no global RNG used."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    return torch.cat([G(z[i:i + batch], noise_mode="const").float().cpu() for i in range(0, n, batch)])


def train(
    gcfg: GeneratorConfig,
    cfg: TrainConfig,
    data: DataFn,
    out_dir: str | os.PathLike,
    resume: bool = False,
    device: str | torch.device = "cpu",
    swd_reference: torch.Tensor | None = None,
    run_config: dict | None = None,
    progress: bool | None | Callable = None,
    hsr_encoder: torch.nn.Module | None = None,
    scalars=None,
) -> Trainer:
    """Train until cfg.kimg / cfg.minutes; returns the trainer (final checkpoint written).

    `swd_reference`: held-out real images [M,3,H,W]; SWD of M EMA samples against them is
    logged at each snapshot (and before training starts, as the untrained baseline).
    `hsr_encoder`: the frozen feature encoder HSR aligns to (needed when cfg.hsr_weight > 0).
    `progress`: None = a tqdm bar on a terminal, False = none, or a callable with tqdm's
    keywords that makes the bar (the CLI passes one that writes log lines off a terminal).
    `scalars`: e.g. a torch.utils.tensorboard SummaryWriter (rank 0); each stats line goes to
    its add_scalar as train_gan/<key> over images seen. The caller closes it.
    """
    benchmark = torch.backends.cudnn.benchmark  # a Trainer on CUDA turns it on: for this training only
    try:
        return _train(gcfg, cfg, data, out_dir, resume, device, swd_reference, run_config, progress,
                      hsr_encoder, scalars)
    finally:
        torch.backends.cudnn.benchmark = benchmark


def _train(gcfg, cfg, data, out_dir, resume, device, swd_reference, run_config, progress, hsr_encoder,
           scalars) -> Trainer:
    out = Path(out_dir)
    rank, world = _rank_world()
    trainer = Trainer(gcfg, cfg, device, hsr_encoder=hsr_encoder)
    latest = out / "checkpoints" / "latest"
    if rank == 0:
        _discard_incomplete(out / "checkpoints")
        if not resume:  # a fresh run's best is its own
            (out / BEST_FILE).unlink(missing_ok=True)
    if resume and latest.exists():
        trainer.load(latest)
    elif resume:
        raise FileNotFoundError(f"{out}: nothing to resume (no checkpoints/latest); start without --resume")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        config = run_config or {"gan": gcfg.to_dict(), "train_gan": cfg.to_dict()}
        if not resume or not (out / "config.json").exists():
            _atomic_write_text(out / "config.json", json.dumps(config, indent=1))
    swd_ref = None
    if swd_reference is not None and cfg.swd_images > 0:
        swd_ref = swd_reference[: cfg.swd_images]
    scalars = scalars if rank == 0 else None
    if rank == 0 and trainer.state.step == 0 and swd_ref is not None:
        swd0 = _log_swd(trainer, swd_ref, out)
        if scalars is not None:
            scalars.add_scalar("train_gan/swd", swd0, 0)
    _loop(trainer, data, out, swd_ref, progress, scalars)
    return trainer


def _measure_swd(trainer: Trainer, ref: torch.Tensor) -> float:
    """SWD x1e3 of EMA samples (fixed latents, const noise) against the reference; kept in the history."""
    fakes = generate(trainer.G_ema, len(ref), seed=trainer.cfg.seed + 12345, device=trainer.device)
    value = swd(fakes, ref.float())["swd"]
    trainer.state.history.append({"kimg": trainer.state.nimg / 1000, "swd": value})
    return value


def _keep_best(trainer: Trainer, out: Path, value: float) -> None:
    """best/generator_ema.safetensors: the EMA generator at the lowest SWD of any tick so far
    (ticks only: the untrained baseline never). The file records its SWD and is the record:
    a tick after the last checkpoint that wrote it still counts after --resume. A short run's
    SWD can wander after it falls (68 -> 109 on an H200, docs/BENCHMARKS.md "GPU check"), so
    the last snapshot need not be the best one; snapshots are also rarer than SWD ticks."""
    path, st = out / BEST_FILE, trainer.state
    if path.is_file() and value >= read_generator_metadata(path)[1]["swd"]:
        return
    save_generator(trainer.G_ema, path, extra={"step": st.step, "kimg": st.nimg / 1000, "swd": value})


def _log_swd(trainer: Trainer, ref: torch.Tensor, out: Path) -> float:
    value = _measure_swd(trainer, ref)
    with open(out / "stats.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"kimg": trainer.state.nimg / 1000, "step": trainer.state.step, "swd": value}) + "\n")
    return value


def _loop(trainer: Trainer, data: DataFn, out: Path, swd_ref: torch.Tensor | None, progress, scalars=None) -> None:
    cfg, st = trainer.cfg, trainer.state
    rank = trainer.rank
    batches = data(st.step)
    limit = int(cfg.kimg * 1000) if cfg.kimg > 0 else None
    by_time = limit is None and cfg.minutes > 0  # the bar counts the seconds that bound the run
    bar_kw = (dict(total=int(cfg.minutes * 60), initial=int(st.seconds), unit="s") if by_time
              else dict(total=limit, initial=st.nimg, unit="img"))
    bar = (progress(desc="train-gan", disable=rank != 0, **bar_kw) if callable(progress) else
           tqdm(desc="train-gan", disable=(rank != 0) or (None if progress is None else not progress),
                dynamic_ncols=True, **bar_kw))
    session_start, tick_start, tick_nimg = time.time(), time.time(), st.nimg
    base_seconds = st.seconds
    sums: dict[str, list[float]] = {}
    done = False
    while not done:
        stats = trainer.train_step(next(batches))
        for k, v in stats.items():
            sums.setdefault(k, []).append(v)
        finite = _all_true(all(math.isfinite(v) for v in stats.values()), trainer.device)
        if not finite:
            bar.close()
            raise TrainingDiverged(
                f"non-finite loss at step {st.step} ({stats}); stopped. The last good checkpoint is "
                f"{(out / 'checkpoints' / 'latest').resolve() if (out / 'checkpoints' / 'latest').exists() else 'none'}"
                "; try a lower learning rate or a larger r1_gamma")
        st.seconds = base_seconds + time.time() - session_start
        bar.update(int(st.seconds) - bar.n if by_time else cfg.batch)
        done = (limit is not None and st.nimg >= limit) or (cfg.minutes > 0 and st.seconds >= cfg.minutes * 60)
        done = _any_true_from_rank0(done, trainer.device)
        if st.nimg - tick_nimg >= cfg.tick_kimg * 1000 or done:
            dt = time.time() - tick_start
            st.tick += 1
            line = {"tick": st.tick, "kimg": st.nimg / 1000, "step": st.step, "seconds": round(st.seconds, 1),
                    "img_per_s": (st.nimg - tick_nimg) / max(dt, 1e-9),
                    **{k: float(np.mean(v)) for k, v in sums.items()}}
            if rank == 0 and swd_ref is not None and (st.tick % cfg.swd_ticks == 0 or done):
                line["swd"] = _measure_swd(trainer, swd_ref)
                _keep_best(trainer, out, line["swd"])
            if rank == 0:
                with open(out / "stats.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
                if scalars is not None:  # x axis: images seen, as in stats.jsonl's kimg
                    for k, v in {**line, "g_lr": cfg.g_lr, "d_lr": cfg.d_lr}.items():
                        if k not in ("tick", "kimg", "step"):
                            scalars.add_scalar(f"train_gan/{k}", v, st.nimg)
                bar.set_postfix(kimg=f"{line['kimg']:.1f}", img_s=f"{line['img_per_s']:.1f}",
                                loss_g=f"{line.get('loss_g', 0):.3f}",
                                **({"swd": f"{line['swd']:.1f}"} if "swd" in line else {}))
            sums.clear()
            if st.tick % cfg.snapshot_ticks == 0 or done:
                _snapshot(trainer, out)
            tick_start, tick_nimg = time.time(), st.nimg
    bar.close()


def _any_true_from_rank0(flag: bool, device: torch.device) -> bool:
    """Time-based stops must agree across ranks: rank 0 decides."""
    if _rank_world()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item() > 0)


def _snapshot(trainer: Trainer, out: Path) -> None:
    if trainer.rank == 0:
        grid = generate(trainer.G_ema, trainer.cfg.grid_images, seed=trainer.cfg.seed + 777, device=trainer.device)
        save_grid(grid, out / f"fakes_{trainer.state.nimg:09d}img.png")
    trainer.save(out)

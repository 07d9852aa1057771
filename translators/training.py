"""Translator training: pix2pixHD's objective on (input, GAN target, strength) pairs.

    loss_G = lambda_gan * LSGAN + lambda_feat * D feature matching + lambda_l1 * L1(out, target)
             [+ lambda_vgg * VGG19 perceptual, only with local weights]
    loss_D = LSGAN on (input, target | output, strength map), multi-scale

The pairs arrive as a dataset (translators/ never imports gan/ or pipeline/): either a
map-style dataset or an IterableDataset yielding `(x [3,H,W], y [3,H,W], a)` with images
in [-1, 1] and `a` the GAN edit strength; the translator sees s = a / strength_max.

Exact resume: every random choice is a function of (seed, step, rank) — the sample order
(map-style), the augmentation — and the snapshot holds weights, optimizer and
grad-scaler states, so a resumed run continues bit-for-bit on the same device.
A stream resumes exactly if it has `configure_stream(start, rank, world_size)`.

Multi-GPU: launch under `torchrun`; the caller initialises the process group (NCCL on
CUDA, gloo on CPU) and both nets are wrapped in DistributedDataParallel.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset, IterableDataset

from translators.augment import PairedAugment
from translators.bundle import atomic_write
from translators.images import to_uint8
from translators.losses import VGGPerceptualLoss, feature_matching_loss, lsgan_loss
from translators.networks import MultiscaleDiscriminator, Translator, TranslatorConfig, build_translator

STATE_FILE = "state.pt"
RUN_CONFIG_FILE = "config.json"
STATS_FILE = "stats.jsonl"


@dataclass
class TrainTranslatorConfig:
    batch: int = 8  # pairs per process per step
    steps: int = 2000  # optimiser steps in total; 0 with translator.global_affine = the fitted global change alone
    lr: float = 2e-4  # Adam learning rate of G and D (pix2pixHD)
    beta1: float = 0.5  # Adam beta1 (pix2pixHD)
    beta2: float = 0.999  # Adam beta2
    decay_start: float = 0.5  # fraction of steps at constant lr; then linear decay towards 0
    lambda_gan: float = 1.0  # LSGAN weight; 0 trains G alone (no discriminator)
    lambda_feat: float = 10.0  # discriminator feature matching weight (pix2pixHD: 10)
    lambda_l1: float = 10.0  # L1 to the GAN target: the target is paired, so use it directly
    lambda_l2: float = 0.0  # squared error to the target: what PSNR and a least-squares colour matrix weigh
    lambda_vgg: float = 10.0  # VGG19 perceptual weight; used only with local VGG19 weights
    global_fit_pairs: int = 256  # pairs a global_affine translator's global change is fitted on before step 0
    ndf: int = 32  # first-layer channels of each PatchGAN
    n_layers_d: int = 3  # layers per PatchGAN
    num_d: int = 2  # discriminator scales
    hflip: bool = True  # paired horizontal flips
    crop_scale: tuple[float, float] = (0.8, 1.0)  # paired random resized crop area; [1, 1] = off
    amp: bool = True  # float16 autocast + grad scaling, on CUDA only
    seed: int = 0  # seeds init, sample order and augmentation
    log_every: int = 50  # steps between stats.jsonl lines
    grid_every: int = 500  # steps between sample grids (input | GAN target | output)
    snapshot_every: int = 500  # steps between resumable snapshots
    workers: int = 0  # DataLoader worker processes
    tensorboard: bool = False  # train-translator writes TensorBoard scalars to RUN/tb (extra [tensorboard])

    def __post_init__(self) -> None:
        if self.batch < 1 or self.steps < 0:
            raise ValueError("batch must be >= 1 and steps >= 0")
        if self.global_fit_pairs < 0:
            raise ValueError(f"global_fit_pairs must be >= 0, got {self.global_fit_pairs}")
        if not 0 <= self.decay_start <= 1:
            raise ValueError(f"decay_start must be in [0, 1], got {self.decay_start}")


# Settings that may change between a run and its resumption (they do not alter the maths).
class TrainingDiverged(ValueError):
    """A loss became NaN/inf; the run stopped and its last snapshot (state.pt) is kept."""


_RESUMABLE_CHANGES = {"steps", "log_every", "grid_every", "snapshot_every", "workers", "tensorboard"}


def lr_at(cfg: TrainTranslatorConfig, step: int) -> float:
    """pix2pixHD schedule: constant, then linear decay to 0 at `cfg.steps`."""
    start = int(cfg.decay_start * cfg.steps)
    if step < start:
        return cfg.lr
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - start))


def sample_seed(seed: int, step: int, rank: int, index: int) -> int:
    """A well-mixed 32-bit seed for one sample's augmentation."""
    return int(np.random.SeedSequence([seed, step, rank, index]).generate_state(1)[0])


# Data

class _EpochBatchSampler:
    """Batches of indices for this rank from step `start` on; order = f(seed, epoch)."""

    def __init__(self, n: int, batch: int, seed: int, rank: int, world: int, start: int, steps: int):
        self.n, self.batch, self.seed, self.rank, self.world = n, batch, seed, rank, world
        self.start, self.steps = start, steps
        self.per_epoch = (n // world) // batch
        if self.per_epoch < 1:
            raise ValueError(f"{n} pairs are fewer than batch {batch} x {world} process(es)")

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            epoch, pos = divmod(step, self.per_epoch)
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            mine = torch.randperm(self.n, generator=g)[self.rank :: self.world]
            yield mine[pos * self.batch : (pos + 1) * self.batch].tolist()

    def __len__(self) -> int:
        return max(0, self.steps - self.start)


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, a = zip(*items)
    return torch.stack(list(xs)), torch.stack(list(ys)), torch.as_tensor([float(v) for v in a])


def make_loader(dataset: Dataset, cfg: TrainTranslatorConfig, start: int, rank: int, world: int,
                position: dict | None = None) -> DataLoader:
    """`position`: this rank's stream_position() at the snapshot (a stream that can say where it
    stands, e.g. one whose filter drops pairs); else the stream starts at step * batch."""
    if isinstance(dataset, IterableDataset):
        if position is not None:
            dataset.configure_stream(start=position["start"], rank=rank, world_size=world, skip=position["skip"])
        elif hasattr(dataset, "configure_stream"):
            dataset.configure_stream(start=start * cfg.batch, rank=rank, world_size=world)
        return DataLoader(dataset, batch_size=cfg.batch, collate_fn=_collate, num_workers=cfg.workers)
    sampler = _EpochBatchSampler(len(dataset), cfg.batch, cfg.seed, rank, world, start, cfg.steps)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_collate, num_workers=cfg.workers)


def _first_item(dataset: Dataset):
    if isinstance(dataset, IterableDataset):
        return next(iter(dataset))
    return dataset[0]


# The trainer

class TranslatorTrainer:
    """Holds G, D, optimisers and the run folder; `run()` trains to `cfg.steps`."""

    def __init__(
        self,
        dataset: Dataset,  # (x, y, a) pairs, images [3, H, W] in [-1, 1]
        arch: TranslatorConfig,  # the translator to build
        cfg: TrainTranslatorConfig,  # the optimisation settings
        run_dir: str | Path,  # config.json, stats.jsonl, grids/, state.pt
        strength_max: float,  # a = s * strength_max: the translator's s = 1
        resume: bool = False,  # continue from run_dir/state.pt
        vgg_weights: str | Path | None = None,  # local torchvision vgg19 state dict
        device: str | torch.device | None = None,  # default: this rank's GPU, else CPU
        log: Callable[[str], None] = print,  # where one-off messages go
    ):
        if strength_max <= 0:
            raise ValueError(f"strength_max must be > 0, got {strength_max}")
        self.dataset, self.arch, self.cfg = dataset, arch, cfg
        self.run_dir, self.strength_max, self.log = Path(run_dir), float(strength_max), log
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.device = torch.device(device) if device else _default_device()
        self.amp = cfg.amp and self.device.type == "cuda"
        x0, y0, _ = _first_item(dataset)
        if x0.ndim != 3 or x0.shape[0] != 3 or x0.shape != y0.shape:
            raise ValueError(f"pairs must be two [3, H, W] images of one shape, got {list(x0.shape)}, {list(y0.shape)}")
        self.resolution = tuple(int(v) for v in x0.shape[1:])
        need_aug = cfg.hflip or tuple(cfg.crop_scale) != (1.0, 1.0)
        self.augment = PairedAugment(self.resolution, cfg.hflip, tuple(cfg.crop_scale)) if need_aug else None
        if cfg.steps == 0 and not (arch.global_affine and cfg.global_fit_pairs > 0):
            raise ValueError("train_translator.steps = 0 trains nothing: it needs translator.global_affine "
                             "(the bundle is then the global colour change fitted on the pairs)")
        self._build(vgg_weights, fit_global=not resume)
        self.step = 0
        # this rank's place in a pair stream to go on from (a resumed snapshot's, or where the last run() stopped);
        # None: step x batch
        self._stream_position: dict | None = None
        if resume:
            self._load_state()
        elif self.rank == 0:
            self._start_run_dir()
        if self.rank == 0:  # temp files of a run killed mid-write (SIGKILL, power cut)
            for tmp in self.run_dir.rglob(".*.partial"):
                tmp.unlink(missing_ok=True)

    # 1. construction

    def _build(self, vgg_weights, fit_global: bool) -> None:
        torch.manual_seed(self.cfg.seed)  # identical init on every rank (DDP also broadcasts)
        self.G = build_translator(self.arch).to(self.device)
        if fit_global and self.arch.global_affine and self.cfg.global_fit_pairs > 0:
            self._fit_global()
        self.use_gan = self.cfg.lambda_gan > 0 or self.cfg.lambda_feat > 0
        self.D = None
        if self.use_gan:
            self.D = MultiscaleDiscriminator(7, self.cfg.ndf, self.cfg.n_layers_d, self.cfg.num_d).to(self.device)
        betas = (self.cfg.beta1, self.cfg.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr, betas=betas) if self.D else None
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.vgg = None
        if vgg_weights:
            self.vgg = VGGPerceptualLoss(vgg_weights).to(self.device)
        elif self.rank == 0 and self.cfg.lambda_vgg > 0:
            terms = (["LSGAN + feature matching"] if self.use_gan else []) + \
                [name for name, w in (("L1", self.cfg.lambda_l1), ("squared error", self.cfg.lambda_l2)) if w > 0]
            self.log(f"VGG perceptual loss off: no --vgg-weights given ({' + '.join(terms) or 'no loss'} only)")
        self.G_train: nn.Module = self.G
        self.D_train: nn.Module | None = self.D
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids)
            self.D_train = DDP(self.D, device_ids=ids) if self.D else None

    def _fit_global(self) -> None:
        """Start the translator's global change at the least-squares colour matrix of its
        first `global_fit_pairs` pairs (the same pairs on every rank: a stream is read before
        it is split by rank)."""
        n = self.cfg.global_fit_pairs
        if isinstance(self.dataset, IterableDataset):
            it = iter(self.dataset)
            items = [item for _, item in zip(range(n), it)]
        else:
            idx = np.linspace(0, len(self.dataset) - 1, min(n, len(self.dataset))).round().astype(int)
            items = [self.dataset[int(i)] for i in np.unique(idx)]
        x, y, a = _collate(items)
        s = (a.float() / self.strength_max).clamp(min=0)
        mse = self.G.fit_global_affine(x.to(self.device), y.to(self.device), s.to(self.device))
        if self.rank == 0:
            self.log(f"global colour change fitted on {len(items)} pairs (RMS residual {mse ** 0.5:.3f})")

    def run_config(self) -> dict:
        return {
            "architecture": self.arch.to_dict(),
            "train": json.loads(json.dumps(dataclasses.asdict(self.cfg))),  # as config.json reads back
            "strength_max": self.strength_max,
            "resolution": list(self.resolution),
            "world_size": self.world,
        }

    def _start_run_dir(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if (self.run_dir / STATE_FILE).exists():
            raise FileExistsError(f"{self.run_dir}: holds a previous run ({STATE_FILE}); resume it or pick a new folder")
        _write_text(self.run_dir / RUN_CONFIG_FILE, json.dumps(self.run_config(), indent=2) + "\n")
        (self.run_dir / STATS_FILE).write_text("")

    # 2. one step

    def _batch_to_device(self, batch, step: int):
        x, y, a = batch
        if self.augment is not None:
            pairs = [self.augment(x[j], y[j], sample_seed(self.cfg.seed, step, self.rank, j)) for j in range(len(x))]
            x = torch.stack([p[0] for p in pairs])
            y = torch.stack([p[1] for p in pairs])
        s = (a.float() / self.strength_max).clamp(min=0)
        return x.to(self.device), y.to(self.device), s.to(self.device)

    def _d_input(self, x: torch.Tensor, img: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        smap = s[:, None, None, None].expand(-1, 1, *x.shape[-2:]).to(x.dtype)
        return torch.cat([x, img.to(x.dtype), smap], dim=1)

    def train_step(self, batch, step: int) -> dict[str, float]:
        x, y, s = self._batch_to_device(batch, step)
        lr = lr_at(self.cfg, step)
        for opt in filter(None, (self.opt_g, self.opt_d)):
            for group in opt.param_groups:
                group["lr"] = lr
        stats = {"lr": lr}
        fake = self._g_step(x, y, s, stats)
        if self.D is not None:
            self._d_step(x, y, s, fake.detach(), stats)
        return stats

    def _g_step(self, x, y, s, stats) -> torch.Tensor:
        cfg = self.cfg
        with torch.autocast(self.device.type, enabled=self.amp):
            fake = self.G_train(x, s)
            loss = cfg.lambda_l1 * F.l1_loss(fake.float(), y)
            stats["l1"] = F.l1_loss(fake.float(), y).item()
            if cfg.lambda_l2 > 0:
                l2 = F.mse_loss(fake.float(), y)
                loss = loss + cfg.lambda_l2 * l2
                stats["l2"] = l2.item()
            if self.D is not None:
                # D is frozen and called unwrapped: the G step must not trigger D's DDP hooks.
                self.D.requires_grad_(False)
                outs = self.D(torch.cat([self._d_input(x, fake, s), self._d_input(x, y, s)]))
                fake_outs = [[f.chunk(2)[0] for f in scale] for scale in outs]
                real_outs = [[f.chunk(2)[1] for f in scale] for scale in outs]
                g_gan = lsgan_loss(fake_outs, real=True)
                g_feat = feature_matching_loss(fake_outs, real_outs)
                loss = loss + cfg.lambda_gan * g_gan + cfg.lambda_feat * g_feat
                stats["g_gan"], stats["g_feat"] = g_gan.item(), g_feat.item()
            if self.vgg is not None:
                g_vgg = self.vgg(fake.float(), y)
                loss = loss + cfg.lambda_vgg * g_vgg
                stats["g_vgg"] = g_vgg.item()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        stats["g_total"] = loss.item()
        return fake

    def _d_step(self, x, y, s, fake, stats) -> None:
        self.D.requires_grad_(True)
        with torch.autocast(self.device.type, enabled=self.amp):
            # fake and real in one forward: DDP expects one forward per backward.
            outs = self.D_train(torch.cat([self._d_input(x, fake, s), self._d_input(x, y, s)]))
            fake_outs = [[scale[-1].chunk(2)[0]] for scale in outs]
            real_outs = [[scale[-1].chunk(2)[1]] for scale in outs]
            loss = 0.5 * (lsgan_loss(fake_outs, real=False) + lsgan_loss(real_outs, real=True))
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        stats["d"] = loss.item()

    # 3. the loop

    def run(self, progress: bool | Callable = True, until: int | None = None, scalars=None) -> dict:
        """Train from the current step to cfg.steps (or `until`, snapshotting there);
        returns the last stats row. `progress`: True = a tqdm bar on a terminal, False = none,
        or a callable with tqdm's keywords that makes the bar (the CLI's writes log lines).
        `scalars`: e.g. a torch.utils.tensorboard SummaryWriter; each stats row (losses, lr,
        speed) goes to its add_scalar as train_translator/<key> over steps (rank 0)."""
        from tqdm import tqdm

        loader = make_loader(self.dataset, self.cfg, self.step, self.rank, self.world, self._stream_position)
        bar_kw = dict(total=self.cfg.steps, initial=self.step, desc="train-translator", unit="step")
        bar = (progress(disable=self.rank != 0, **bar_kw) if callable(progress) else
               tqdm(disable=None if (progress and self.rank == 0) else True, **bar_kw))
        tick_start, tick_images, tick_steps, sums, last = time.perf_counter(), 0, 0, {}, {}
        batches = iter(loader)
        stop = self.cfg.steps if until is None else min(until, self.cfg.steps)
        saved = self.step if (self.run_dir / STATE_FILE).is_file() else None  # the last good snapshot
        first = self.step
        while self.step < stop:
            try:
                batch = next(batches)
            except StopIteration:
                if isinstance(self.dataset, IterableDataset):
                    raise ValueError(f"the pair stream ended at step {self.step} of {self.cfg.steps}") from None
                raise
            self.G.train()
            stats = self.train_step(batch, self.step)
            self.step += 1
            self._check_finite(stats, saved)
            tick_images += len(batch[0]) * self.world
            tick_steps += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.update(1)
            done = self.step == stop
            if self.step % self.cfg.log_every == 0 or done:
                elapsed = time.perf_counter() - tick_start
                last = {"step": self.step, **{k: v / tick_steps for k, v in sums.items()},
                        "images_per_s": tick_images / max(elapsed, 1e-9)}
                self._append_stats(last)
                if scalars is not None and self.rank == 0:
                    for k, v in last.items():
                        if k != "step":
                            scalars.add_scalar(f"train_translator/{k}", v, self.step)
                bar.set_postfix(l1=f"{last.get('l1', 0):.3f}")
                tick_start, tick_images, tick_steps, sums = time.perf_counter(), 0, 0, {}
            if self.step % self.cfg.grid_every == 0 or done:
                self._save_grid(batch)
            if self.step % self.cfg.snapshot_every == 0 or done:
                self.save_state()
                saved = self.step
        bar.close()
        if self.step > first and hasattr(self.dataset, "stream_position"):  # a second run() goes on from here
            self._stream_position = self.dataset.stream_position()
        if stop == 0 and self.step == 0:  # steps = 0: the fitted global change is the whole model
            self.save_state()
        self.G.eval()
        return last

    def _check_finite(self, stats: dict, saved: int | None) -> None:
        """Stop before a NaN/inf step reaches a snapshot (every rank stops together)."""
        finite = all(math.isfinite(v) for v in stats.values())
        if self.world > 1:
            flag = torch.tensor([1.0 if finite else 0.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = bool(flag.item() > 0)
        if not finite:
            last = (f"{self.run_dir / STATE_FILE} (step {saved}); --resume continues from it" if saved is not None
                    else "none (no snapshot was written yet)")
            raise TrainingDiverged(f"non-finite loss at step {self.step} ({stats}); stopped. The last good "
                                   f"snapshot is {last}; try a lower learning rate (train_translator.lr)")

    # 4. run folder: stats, grids, snapshots

    def _append_stats(self, row: dict) -> None:
        if self.rank == 0:
            with open(self.run_dir / STATS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}) + "\n")

    @torch.no_grad()
    def _save_grid(self, batch, rows: int = 4) -> None:
        if self.rank != 0:
            return
        from PIL import Image

        x, y, a = (t[:rows] for t in batch)
        was_training = self.G.training
        self.G.eval()
        s = (a.float() / self.strength_max).clamp(min=0).to(self.device)
        out = self.G(x.to(self.device), s).cpu()
        self.G.train(was_training)
        # one row per pair: input | GAN target | translator output
        grid = torch.cat([torch.cat([x[i], y[i], out[i]], dim=2) for i in range(len(x))], dim=1)
        img = to_uint8(((grid + 1) / 2).permute(1, 2, 0).numpy())
        path = self.run_dir / "grids" / f"step_{self.step:06d}.png"
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, lambda tmp: Image.fromarray(img).save(tmp, format="PNG"))

    def save_state(self) -> None:
        # every rank's place in a stream that can say where it stands (pairs.py GANPairStream)
        pos = self.dataset.stream_position() if hasattr(self.dataset, "stream_position") else None
        positions = [pos]
        if pos is not None and self.world > 1:
            positions = [None] * self.world
            dist.all_gather_object(positions, pos)
        if self.rank == 0:
            state = {
                "step": self.step,
                "G": self.G.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "scaler_g": self.scaler_g.state_dict(),
            }
            if pos is not None:
                state["stream"] = positions
            if self.D is not None:
                state.update(D=self.D.state_dict(), opt_d=self.opt_d.state_dict(), scaler_d=self.scaler_d.state_dict())
            atomic_write(self.run_dir / STATE_FILE, lambda tmp: torch.save(state, tmp))
        if self.world > 1:
            dist.barrier()

    def _load_state(self) -> None:
        path = self.run_dir / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no snapshot to resume from")
        self._check_resumable()
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
            raise ValueError(f"{path}: damaged or unreadable snapshot ({e}); it cannot be resumed") from None
        self.G.load_state_dict(state["G"], strict=True)
        self.opt_g.load_state_dict(state["opt_g"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        if self.D is not None:
            if "D" not in state:
                raise ValueError(f"{path}: the snapshot has no discriminator but this config trains one")
            self.D.load_state_dict(state["D"], strict=True)
            self.opt_d.load_state_dict(state["opt_d"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        self.step = int(state["step"])
        positions = state.get("stream")  # every rank's; none in snapshots from before, or for another rank count
        self._stream_position = positions[self.rank] if positions and len(positions) == self.world else None
        if self.rank == 0:
            self._truncate_stats()
            _write_text(self.run_dir / RUN_CONFIG_FILE, json.dumps(self.run_config(), indent=2) + "\n")
        self.log(f"resumed {self.run_dir} at step {self.step}")

    def _check_resumable(self) -> None:
        file = self.run_dir / RUN_CONFIG_FILE
        saved = json.loads(file.read_text(encoding="utf-8"))
        now = self.run_config()
        if saved["architecture"] != now["architecture"]:
            raise ValueError(f"{file}: the run's architecture differs from the requested one; cannot resume")
        defaults = json.loads(json.dumps(dataclasses.asdict(TrainTranslatorConfig())))  # keys added later
        changed = sorted(k for k in now["train"] if saved["train"].get(k, defaults.get(k)) != now["train"][k]
                         and k not in _RESUMABLE_CHANGES)
        if changed or saved["strength_max"] != now["strength_max"]:
            raise ValueError(f"{file}: resuming needs the same settings; changed: {changed or ['strength_max']}")

    def _truncate_stats(self) -> None:
        """Drop stats logged after the snapshot (a crash between snapshots repeats them)."""
        file = self.run_dir / STATS_FILE
        if file.is_file():
            rows = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
            keep = [line for line in rows if json.loads(line)["step"] <= self.step]
            _write_text(file, "".join(line + "\n" for line in keep))


def train_translator(dataset, arch, cfg, run_dir, strength_max, progress=True, **kwargs) -> tuple[Translator, dict]:
    """Train (or resume) and return (translator in eval mode, last stats row)."""
    trainer = TranslatorTrainer(dataset, arch, cfg, run_dir, strength_max, **kwargs)
    summary = trainer.run(progress)
    return trainer.G, summary


def _default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")




def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

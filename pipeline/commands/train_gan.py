"""Train a StyleGAN2 generator on the procedural world or a folder of photos."""
from __future__ import annotations

import argparse
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.config import add_config_arguments, dump_yaml, load_section, parse_overrides
from pipeline.errors import UserError


EPILOG = """\
The run folder gets config.yaml (resolved config, written first), stats.jsonl (one line
per tick: losses, images/s, SWD at snapshots), fakes_*.png grids and checkpoints/ with an
exact-resume state; checkpoints/latest/generator_ema.safetensors (or just the run folder)
is the --gan input of later stages. Several GPUs or machines: launch with torchrun.

examples:
  photoedit train-gan --out runs/gan                         # quickstart: 64 px world, ~5 min CPU
  photoedit train-gan --out runs/gan --resume --set train_gan.minutes=10
  photoedit train-gan --data photos/ --out runs/gan-photos --set gan.resolution=[128,256]
  photoedit train-gan --set train_gan.kimg=200 --set train_gan.minutes=0 --dry-run
  torchrun --nproc_per_node 4 -m pipeline train-gan --config street-256 --out runs/street
"""

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit train-gan", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("data and output")
    io.add_argument("--data", default="world", metavar="world|DIR",
                    help="'world' renders the procedural street world; DIR is a folder of photos (default: world)")
    io.add_argument("--out", default="runs/gan", metavar="RUN", help="run folder (default: runs/gan)")
    io.add_argument("--resume", action="store_true", help="continue RUN from checkpoints/latest exactly")
    cfg = add_config_arguments(p, "gan:, train_gan:, world:", "train_gan.minutes=10 or gan.channel_max=128")
    cfg.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available; torchrun sets it)")
    return p


def load_configs(args):
    from gan.networks import GeneratorConfig
    from gan.training import TrainConfig
    from pipeline.world import WorldConfig

    overrides = parse_overrides(args.set)
    gcfg = load_section(GeneratorConfig, "gan", args.config, overrides)
    tcfg = load_section(TrainConfig, "train_gan", args.config, overrides)
    wcfg = load_section(WorldConfig, "world", args.config, overrides)
    return gcfg, tcfg, wcfg


# ---------------------------------------------------------------- data (shared with eval-gan)

def _cache_dir() -> Path:
    base = os.environ.get("PHOTOEDIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "photoedit")
    return Path(base) / "world"


def _world_code_hash() -> str:
    import pipeline.world as world

    h = hashlib.sha256()
    for name in ("world.py", "world_render.py"):
        path = Path(world.__file__).with_name(name)
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def world_images(size, first_seed: int, n: int, condition: str = "mixed", cache: bool = True):
    """uint8 [n, H, W, 3] renders of seeds first_seed.. (cached on disk: rendering is the slow part)."""
    import numpy as np
    from tqdm import tqdm

    from pipeline.world import render_batch

    h, w = size
    path = _cache_dir() / f"{h}x{w}_{condition}_{first_seed}_{n}_{_world_code_hash()}.npy"
    if cache and path.is_file():
        arr = np.load(path, allow_pickle=False)
        if arr.shape == (n, h, w, 3):
            return arr
    arr = np.empty((n, h, w, 3), np.uint8)
    step = 64
    for i in tqdm(range(0, n, step), desc="render world", unit="batch", disable=None):
        seeds = range(first_seed + i, first_seed + min(n, i + step))
        arr[i:i + len(seeds)] = render_batch(list(seeds), (h, w), condition)[0]
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)
    return arr


def folder_images(folder: str | os.PathLike, size, limit: int | None = None):
    """uint8 [n, H, W, 3]: the first `limit` photos of `folder` as pipeline.datasets.PhotoFolder
    reads them (upright, any mode, unreadable files skipped with one warning), centre-cropped
    to the aspect of `size` and resized; decoded on every core with a progress bar."""
    import numpy as np
    from tqdm import tqdm

    from pipeline.datasets import PhotoFolder

    if not Path(folder).is_dir():
        raise UserError(f"--data {folder}: not a folder (use 'world' or a folder of photos)")
    photos = PhotoFolder(folder, size, random_crop=False)
    n = min(len(photos), limit) if limit else len(photos)
    out = np.empty((n, *photos.size, 3), np.uint8)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # PIL decodes without the GIL
        loaded = pool.map(photos.load, range(n))
        for i, arr in enumerate(tqdm(loaded, total=n, desc=f"reading {folder}", unit="photo", disable=None)):
            out[i] = arr
    return out


def training_images(data: str, gcfg, tcfg, wcfg):
    """(train uint8 [N,H,W,3], held-out reference uint8 [M,H,W,3] or None)."""
    from pipeline.world import HELD_OUT_SEED_START

    size = tuple(gcfg.resolution)
    if data == "world":
        train = world_images(size, wcfg.seed, tcfg.data_images, wcfg.condition)
        ref = None
        if tcfg.swd_images > 0:
            ref = world_images(size, HELD_OUT_SEED_START + wcfg.seed, tcfg.swd_images, wcfg.condition)
        return train, ref
    images = folder_images(data, size, tcfg.data_images + tcfg.swd_images)
    # Photos have no held-out stream: the last swd_images photos are kept out of training.
    m = min(tcfg.swd_images, len(images) // 5)
    if m == 0:
        return images, None
    return images[:-m], images[-m:]


def to_tensor(arr):
    import torch

    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------- main

def _init_distributed(device_arg):
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            return f"cuda:{local}"
        return "cpu"
    return device_arg or ("cuda" if torch.cuda.is_available() else "cpu")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    gcfg, tcfg, wcfg = load_configs(args)
    sections = {"gan": gcfg, "train_gan": tcfg, "world": wcfg}
    if args.dry_run:
        print(dump_yaml(sections), end="")
        return 0
    import torch.distributed as dist

    from gan.training import InMemoryBatches, TrainingDiverged, train

    out = Path(args.out)
    if not args.resume and (out / "checkpoints" / "latest").exists():
        raise UserError(f"{out} already holds a run; add --resume to continue it or choose another --out")
    device = _init_distributed(args.device)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_yaml(sections | {"data": {"source": args.data}}), encoding="utf-8")
        train_arr, ref_arr = training_images(args.data, gcfg, tcfg, wcfg)
    if world > 1:
        dist.barrier()  # rank 0 filled the render cache; the others now read it
        if rank != 0:
            train_arr, ref_arr = training_images(args.data, gcfg, tcfg, wcfg)
    if tcfg.batch % world:
        raise UserError(f"train_gan.batch={tcfg.batch} must be divisible by the {world} processes")
    data = InMemoryBatches(to_tensor(train_arr), tcfg.batch, seed=tcfg.seed, rank=rank, world_size=world)
    ref = to_tensor(ref_arr).float().div(127.5).sub(1) if ref_arr is not None else None
    run_config = {k: _plain(v) for k, v in sections.items()} | {"data": {"source": args.data, "images": len(train_arr)}}
    try:
        trainer = train(gcfg, tcfg, data, out, resume=args.resume, device=device, swd_reference=ref,
                        run_config=run_config)
    except TrainingDiverged as e:
        raise UserError(str(e)) from None
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        st = trainer.state
        swd_txt = ""
        if st.history:
            swd_txt = f"; SWD x1e3 {st.history[0]['swd']:.1f} -> {st.history[-1]['swd']:.1f}"
        print(f"trained {st.nimg / 1000:.1f} kimg in {st.seconds / 60:.1f} min{swd_txt}")
        print(f"generator: {out / 'checkpoints' / 'latest' / 'generator_ema.safetensors'}")
    return 0


def _plain(cfg):
    return cfg.to_dict() if hasattr(cfg, "to_dict") else __import__("dataclasses").asdict(cfg)

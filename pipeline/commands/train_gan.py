"""Train a StyleGAN2 generator on the procedural world or a folder of photos."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.config import add_config_arguments, dump_yaml, load_section, parse_overrides, to_dict
from pipeline.errors import UserError


EPILOG = """\
The run folder gets config.yaml (resolved config, written first), stats.jsonl (one line
per tick: losses, images/s, SWD at snapshots), fakes_*.png grids and checkpoints/ with an
exact-resume state; checkpoints/latest/generator_ema.safetensors (or just the run folder)
is the --gan input of later stages. best/generator_ema.safetensors is the EMA generator at
the lowest SWD of any tick (swd_images > 0): a short run's SWD can rise again after it
falls, so pass that file instead when it beats the last one (`photoedit eval-gan` on both).
Several GPUs or machines: launch with torchrun.

examples:
  photoedit train-gan --out runs/gan                         # quickstart: 64 px world, ~5 min CPU
  photoedit train-gan --out runs/gan --resume --set train_gan.minutes=10
  photoedit train-gan --data photos/ --out runs/gan-photos --set gan.resolution=[128,256]
  photoedit train-gan --set train_gan.kimg=200 --set train_gan.minutes=0 --dry-run
  torchrun --nproc_per_node 4 -m pipeline train-gan --config street-256 --out runs/street

HSR (hierarchical semantic regularisation, Karmali et al. 2022; off by default): aligns the
generator's level features with a local encoder's features of the same images. The encoder
is a file on disk, never downloaded: the world-trained predictor, or a torchvision
VGG/ResNet state dict. The paper fine-tunes a trained GAN; --resume a baseline run with HSR
switched on does the same:
  photoedit train-predictor --data world --out predictor/
  photoedit train-gan --out runs/gan-hsr --set train_gan.hsr_weight=1 --set train_gan.hsr_encoder=predictor/
  photoedit train-gan --out runs/gan --resume --set train_gan.hsr_weight=1 --set train_gan.hsr_encoder=predictor/
  photoedit train-gan --set train_gan.hsr_weight=1 --set train_gan.hsr_encoder=vgg16.pth \
      --set train_gan.hsr_encoder_arch=vgg16 --out runs/gan-vgg
"""

def build_parser() -> argparse.ArgumentParser:
    p = command_parser("train-gan", __doc__, EPILOG)
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
    from pipeline.world.scene import WorldConfig

    overrides = parse_overrides(args.set)
    gcfg = load_section(GeneratorConfig, "gan", args.config, overrides)
    tcfg = load_section(TrainConfig, "train_gan", args.config, overrides)
    wcfg = load_section(WorldConfig, "world", args.config, overrides)
    return gcfg, tcfg, wcfg


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    gcfg, tcfg, wcfg = load_configs(args)
    sections = {"gan": gcfg, "train_gan": tcfg, "world": wcfg}
    if args.dry_run:
        print(dump_yaml(sections), end="")
        return 0
    import torch.distributed as dist

    from gan.checkpoint import read_generator_metadata
    from gan.images import from_uint8
    from gan.training import BEST_FILE, InMemoryBatches, TrainingDiverged, train
    from pipeline.distributed import init_distributed
    from pipeline.fileio import atomic_write_text
    from pipeline.photos.folder import training_images
    from pipeline.progress import progress_bar, tensorboard_writer

    def load_images():
        return training_images(args.data, tuple(gcfg.resolution), tcfg.data_images, tcfg.swd_images, wcfg)

    out = Path(args.out)
    if not args.resume and (out / "checkpoints" / "latest").exists():
        raise UserError(f"{out} already holds a run; add --resume to continue it or choose another --out")
    hsr_encoder, hsr_info = None, None
    if tcfg.hsr_weight > 0:
        from pipeline.semantics.encoders import encoder_provenance, load_encoder

        if not tcfg.hsr_encoder:
            raise UserError("train_gan.hsr_weight > 0 needs train_gan.hsr_encoder: a `photoedit train-predictor` "
                            "folder, or a torchvision state dict with train_gan.hsr_encoder_arch=vgg16|resnet18|...")
        hsr_encoder = load_encoder(tcfg.hsr_encoder, tcfg.hsr_encoder_arch)  # fails here, named, before any work
        hsr_info = encoder_provenance(tcfg.hsr_encoder, tcfg.hsr_encoder_arch)
    device = init_distributed(args.device)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    # before the images load: a missing tensorboard package fails at once
    scalars = tensorboard_writer(out / "tb", "train_gan.tensorboard") if tcfg.tensorboard and rank == 0 else None
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", dump_yaml(sections | {"data": {"source": args.data}}))
        train_arr, ref_arr = load_images()
    if world > 1:
        dist.barrier()  # rank 0 filled the render cache; the others now read it
        if rank != 0:
            train_arr, ref_arr = load_images()
    if tcfg.batch % world:
        raise UserError(f"train_gan.batch={tcfg.batch} must be divisible by the {world} processes")
    data = InMemoryBatches(train_arr, tcfg.batch, seed=tcfg.seed, rank=rank, world_size=world)
    ref = from_uint8(ref_arr) if ref_arr is not None else None
    run_config = {k: to_dict(v) for k, v in sections.items()} | {"data": {"source": args.data, "images": len(train_arr)}}
    if hsr_info is not None:
        run_config["hsr_encoder"] = hsr_info
    try:
        trainer = train(gcfg, tcfg, data, out, resume=args.resume, device=device, swd_reference=ref,
                        run_config=run_config, hsr_encoder=hsr_encoder, progress=progress_bar, scalars=scalars)
    except (TrainingDiverged, ValueError) as e:  # ValueError: e.g. hsr_levels outside the generator
        raise UserError(str(e)) from None
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    finally:
        if scalars is not None:
            scalars.close()
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        st = trainer.state
        swd_txt = ""
        if st.history:
            swd_txt = f"; SWD x1e3 {st.history[0]['swd']:.1f} -> {st.history[-1]['swd']:.1f}"
        print(f"trained {st.nimg / 1000:.1f} kimg in {st.seconds / 60:.1f} min{swd_txt}")
        print(f"generator: {out / 'checkpoints' / 'latest' / 'generator_ema.safetensors'}")
        best = out / BEST_FILE
        if best.is_file():
            low = read_generator_metadata(best)[1]
            print(f"lowest SWD: {best} ({low['swd']:.1f} at {low['kimg']:.1f} kimg)")
    return 0

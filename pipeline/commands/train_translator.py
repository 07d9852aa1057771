"""Train a pix2pixHD-style translator with a strength slider on GAN edit pairs."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.config import add_config_arguments, dump_yaml, load_section, parse_overrides
from pipeline.errors import UserError

EPILOG = """\
Pairs come from a folder written by `photoedit pairs`, or are generated on the fly from
--gan and --boundary (config section pairs:, nothing written to disk). The bundle
BUNDLE/ gets model.safetensors + config.json; the run folder (default BUNDLE.run/)
gets config.json, stats.jsonl, grids/ (input | GAN target | output) and state.pt for
--resume. VGG19 perceptual loss is used only with --vgg-weights (a local torchvision
vgg19 state dict); nothing is downloaded.

Multi-GPU: torchrun --nproc_per_node 4 -m pipeline train-translator ...

examples:
  photoedit train-translator --pairs run/pairs_sunny --out run/models/sunny
  photoedit train-translator --gan run/gan.safetensors --boundary run/night.npz --out run/models/night \\
      --set train_translator.steps=4000 --set translator.ngf=16
  photoedit train-translator --pairs run/pairs_sunny --out run/models/sunny --resume
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("train-translator", __doc__, EPILOG)
    src = p.add_argument_group("pairs (one of)")
    src.add_argument("--pairs", metavar="DIR", help="pairs folder from `photoedit pairs`")
    src.add_argument("--gan", metavar="CKPT", help="generator, to stream pairs (with --boundary)")
    src.add_argument("--boundary", metavar="FILE", help="boundary .npz, to stream pairs (with --gan)")
    out = p.add_argument_group("output")
    out.add_argument("--out", required=True, metavar="BUNDLE", help="translator bundle folder, e.g. models/sunny")
    out.add_argument("--run-dir", metavar="DIR", help="run folder (default: BUNDLE.run)")
    out.add_argument("--resume", action="store_true", help="continue the run in the run folder exactly")
    cfg = add_config_arguments(p, "translator:, train_translator:, pairs:",
                               "train_translator.steps=4000 or translator.ngf=16")
    cfg.add_argument("--vgg-weights", metavar="PATH", help="local torchvision vgg19 state dict (.pth) for the perceptual loss")
    cfg.add_argument("--device", default=None, help="cpu or cuda[:i] (default: this rank's GPU if any)")
    cfg.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def load_configs(args) -> dict:
    from pipeline.semantics.pairs import PairsConfig
    from translators.edit_config import EditConfig
    from translators.networks import TranslatorConfig
    from translators.training import TrainTranslatorConfig

    overrides = parse_overrides(args.set)
    return {
        "translator": load_section(TranslatorConfig, "translator", args.config, overrides),
        "train_translator": load_section(TrainTranslatorConfig, "train_translator", args.config, overrides),
        "pairs": load_section(PairsConfig, "pairs", args.config, overrides),
        "edit": load_section(EditConfig, "edit", args.config, overrides),
    }


def pair_source(args, cfgs, device):
    """(dataset, attribute, strength_range, provenance) from --pairs or --gan/--boundary."""
    from pipeline.semantics.pairs import GANPairStream, PairFilter, PairShardDataset, load_gan_and_boundary

    if args.pairs:
        data = PairShardDataset(args.pairs)
        m = data.manifest
        pc = m.get("config", {})
        prov = dict(m.get("provenance", {}), pairs_dir=str(Path(args.pairs).resolve()), layers=m.get("layers", []),
                    truncation_psi=pc.get("truncation_psi", 0.8), noise_mode=pc.get("noise_mode", "const"))
        return data, m["attribute"], list(m["strength_range"]), prov
    G, boundary, prov = load_gan_and_boundary(args.gan, args.boundary, device)
    pc = cfgs["pairs"]
    prov.update(truncation_psi=pc.truncation_psi, noise_mode=pc.noise_mode)  # eval regenerates pairs alike
    flt = (PairFilter(pc.filter_predictor, prov["attribute"], pc.margin, device, pc.filter_predictor_path)
           if pc.filter_predictor else None)
    if flt is not None:  # what the pairs were chosen by belongs with the bundle
        prov["pair_filter"] = {"predictor": pc.filter_predictor, "predictor_path": pc.filter_predictor_path,
                               "margin": pc.margin}
    return GANPairStream(G, boundary, pc, flt), prov["attribute"], list(pc.strength_range), prov



def main(argv: list[str]) -> int:
    import torch.distributed as dist

    args = build_parser().parse_args(argv)
    if bool(args.pairs) == bool(args.gan or args.boundary):
        raise UserError("give either --pairs DIR, or --gan CKPT with --boundary FILE")
    if not args.pairs and not (args.gan and args.boundary):
        raise UserError("streaming pairs needs both --gan and --boundary")
    if args.vgg_weights and not Path(args.vgg_weights).is_file():
        raise UserError(f"{args.vgg_weights}: VGG19 weights file not found")
    cfgs = load_configs(args)
    if args.dry_run:
        print(dump_yaml(cfgs), end="")
        return 0
    from pipeline.distributed import init_distributed
    from pipeline.progress import progress_bar, tensorboard_writer
    from translators.bundle import save_bundle
    from translators.training import TranslatorTrainer

    device = init_distributed(args.device)
    started = dist.is_initialized()
    rank = dist.get_rank() if started else 0
    data, attribute, strength_range, provenance = pair_source(args, cfgs, device)
    run_dir = Path(args.run_dir) if args.run_dir else Path(str(Path(args.out)).rstrip("/") + ".run")
    try:
        trainer = TranslatorTrainer(data, cfgs["translator"], cfgs["train_translator"], run_dir,
                                    strength_max=strength_range[1], resume=args.resume,
                                    vgg_weights=args.vgg_weights, device=device)
    except (FileExistsError, FileNotFoundError, ValueError) as e:
        raise UserError(str(e)) from None
    scalars = (tensorboard_writer(run_dir / "tb", "train_translator.tensorboard")
               if cfgs["train_translator"].tensorboard and rank == 0 else None)
    try:
        last = trainer.run(progress=False if args.quiet else progress_bar, scalars=scalars)
    except ValueError as e:  # TrainingDiverged (NaN/inf: names the last good snapshot), a stream cut short
        raise UserError(str(e)) from None
    finally:
        if scalars is not None:
            scalars.close()
    if rank == 0:
        bundle = {
            "attribute": attribute,
            "resolution": list(trainer.resolution),
            "strength_range": strength_range,
            "strength_mapping": f"a = s * {strength_range[1]} (s in [0, 1] is the translator's strength)",
            "provenance": provenance,
            "training": {"run_dir": str(run_dir), "steps": trainer.step, "last": last,
                         "config": trainer.run_config()["train"]},  # eval's oracle translator trains alike
            "metrics": {},
        }
        if cfgs["edit"].eps is not None:  # the carry this preset edits with: `photoedit --attribute` uses it too
            bundle["edit"] = {"eps": cfgs["edit"].eps}
        save_bundle(args.out, trainer.G.eval(), bundle)
        print(f"saved translator '{attribute}' to {args.out} (run folder {run_dir}; "
              f"last L1 {last.get('l1', float('nan')):.4f}, {last.get('images_per_s', 0):.1f} images/s)")
    if started:
        dist.destroy_process_group()
    return 0

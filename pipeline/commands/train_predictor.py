"""Train the `classifier` attribute predictor (small CNN) from the world, a labelled folder or a CSV.

--data world: procedural renders with ground truth (lighting attributes, layout
horizon_y / vanishing_x, object counts cars / trees). --data DIR: DIR/<attribute>/{yes,no}/
images. --data FILE.csv: header `path,<name>,...` (paths relative to the CSV).
Writes OUT/model.safetensors + OUT/config.json (use with --predictor classifier --predictor-path OUT).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config import add_config_arguments
from pipeline.errors import UserError

EPILOG = """examples:
  photoedit train-predictor --data world --out predictor/
  photoedit train-predictor --data world --out predictor/ --set predictor.n_world=4000 --set predictor.epochs=20
  photoedit train-predictor --data labelled/ --out predictor/        # labelled/sunny/{yes,no}/*.jpg
  photoedit train-predictor --data scores.csv --out predictor/ --dry-run
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit train-predictor", description=__doc__.strip(), epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="world | DIR of <attribute>/{yes,no}/ | FILE.csv")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the predictor into")
    add_config_arguments(p, "predictor:", "predictor.epochs=20")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.config import dump_yaml, load_section
    from pipeline.semantics.predictors.classifier import (PredictorConfig, csv_data, folder_data, train_classifier,
                                                world_data)

    cfg = load_section(PredictorConfig, "predictor", args.config, args.set)
    if args.dry_run:
        print(dump_yaml({"predictor": cfg}), end="")
        return 0
    if args.data == "world":
        print(f"rendering {cfg.n_world} world scenes at {cfg.input_size[0]}x{cfg.input_size[1]} ...")
        images, targets = world_data(cfg)
    else:
        src = Path(args.data)
        if src.is_dir():
            images, targets = folder_data(src, cfg)
        elif src.is_file() and src.suffix.lower() == ".csv":
            images, targets = csv_data(src, cfg)
        else:
            raise UserError(f"--data {args.data}: not 'world', an existing folder, nor a .csv file")
    out = Path(args.out)
    train_classifier(images, targets, cfg, out)
    print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}")
    return 0

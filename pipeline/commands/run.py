"""Run the whole pipeline from one YAML; finished stages are skipped, a killed run resumes."""
from __future__ import annotations

import argparse

from pipeline.errors import UserError
from pipeline.run.driver import add_run_arguments, execute

EPILOG = """\
stages, in order (each writes RUN/<stage>/ with a manifest.json):
  gan                train the generator (train-gan) on the world or your photos
  samples            sample latents and score them with the predictor (sample, score)
  boundary-<attr>    latent boundary + per-layer re-scoring that picks its layers
  translator-<attr>  train the translator on pairs streamed from the GAN
  eval-<attr>        held-out GAN pairs and world re-renders vs "do nothing"
  edit               edit run.photos (or example scenes) with every translator
then RUN/report.html is (re)built.

A stage whose config, inputs and upstream stages are unchanged is skipped, so running
the same command again after a crash or Ctrl-C resumes where it stopped. Adding an
attribute to run.attributes runs only that attribute's stages (the GAN is kept).

examples:
  photoedit run quickstart --out runs/qs
  photoedit run configs/street-256.yaml --out runs/street --set run.data=~/photos
  photoedit run quickstart --out runs/qs --set 'run.attributes=[sunny,night,foggy]'
  photoedit run quickstart --out runs/qs --from translator-sunny   # redo from there
  photoedit run quickstart --out runs/qs --dry-run                 # print the plan
"""


def build_parser(prog: str = "photoedit run") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG", help="preset name (quickstart) or YAML file")
    add_run_arguments(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.out:
        raise UserError("--out RUN is required")
    return execute(args.config, args)

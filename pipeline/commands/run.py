"""Run the whole pipeline from one YAML; finished stages are skipped, a killed run resumes."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import UserError

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
    add_common(p)
    return p


def add_common(p: argparse.ArgumentParser, default_out: str | None = None) -> None:
    p.add_argument("--out", default=default_out, required=default_out is None, metavar="RUN",
                   help="run folder" + (f" (default: {default_out})" if default_out else ""))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train_gan.minutes=2 (repeatable)")
    p.add_argument("--from", dest="from_stage", metavar="STAGE", help="re-run this stage and all after it")
    p.add_argument("--dry-run", action="store_true", help="print the plan (run or skip, and why) and stop")
    p.add_argument("--device", help="cpu or cuda[:i] (default: each stage's own default)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of all stages at the end")


def execute(config: str, args) -> int:
    from pipeline.run.report import build_report, summary
    from pipeline.run.runner import Runner, StageFailed
    from pipeline.run.stages import Plan

    plan = Plan(config, args.set, Path(args.out), device=args.device)
    runner = Runner(plan.run_dir, plan.stages(), log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.dry_run:
        print(f"run folder: {plan.run_dir}\nconfig: {plan.preset}")
        for stage, reason in runner.plan(args.from_stage):
            verdict = "skip" if reason == "up to date" else "run "
            print(f"  {verdict}  {stage.name:<24} {reason}")
        return 0
    try:
        runner.run(force_from=args.from_stage)
    except StageFailed as e:
        build_report(plan.run_dir)
        print(f"photoedit run: {e}", file=sys.stderr)
        return 1
    report = build_report(plan.run_dir)
    print(f"report: {report}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary(plan.run_dir), indent=1))
    return 0


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.out:
        raise UserError("--out RUN is required")
    return execute(args.config, args)

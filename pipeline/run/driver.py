"""The body of `photoedit run` and `photoedit quickstart`: their shared options, then plan,
run (or print the plan) and build report.html."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.config import per_attribute_overrides, shadowed_overrides
from pipeline.run.report import build_report, summary
from pipeline.run.runner import Runner, StageFailed, read_manifest
from pipeline.run.stages import Plan


def add_run_arguments(p: argparse.ArgumentParser, default_out: str | None = None) -> None:
    p.add_argument("--out", default=default_out, required=default_out is None, metavar="RUN",
                   help="run folder" + (f" (default: {default_out})" if default_out else ""))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train_gan.minutes=2 (repeatable)")
    p.add_argument("--from", dest="from_stage", metavar="STAGE", help="re-run this stage and all after it")
    p.add_argument("--dry-run", action="store_true", help="print the plan (run or skip, and why) and stop")
    p.add_argument("--device", help="cpu or cuda[:i] (default: each stage's own default)")
    p.add_argument("--json", action="store_true", help="print a JSON summary of all stages at the end")


def execute(config: str, args) -> int:
    plan = Plan(config, args.set, Path(args.out), device=args.device)
    runner = Runner(plan.run_dir, plan.stages(), log=lambda s: print(s, file=sys.stderr, flush=True))
    shadowed = shadowed_overrides(plan.preset, args.set, list(plan.attr_configs))
    for line in shadowed:
        print(f"note: {line}", file=sys.stderr)
    if args.dry_run:
        print(f"run folder: {plan.run_dir}\nconfig: {plan.preset}")
        for stage, reason in runner.plan(args.from_stage):
            verdict = "skip" if reason == "up to date" else "run "
            print(f"  {verdict}  {stage.name:<24} {reason}")
        per_attribute = per_attribute_overrides(plan.preset, plan.overrides)
        if per_attribute:
            print("per-attribute settings (win over the sections for that attribute's stages):")
            for attr, flat in per_attribute.items():
                use = ""
                if attr not in plan.attr_configs:
                    use = "  (not in run.attributes: unused)"
                elif attr not in plan.cfg.attributes:
                    use = "  (its boundary only: a run.conditions entry)"
                print(f"  {attr}: " + ", ".join(f"{k}={v}" for k, v in flat.items()) + use)
        return 0
    try:
        runner.run(force_from=args.from_stage)
    except StageFailed as e:
        build_report(plan.run_dir)
        print(f"photoedit run: {e}", file=sys.stderr)
        return 1
    report = build_report(plan.run_dir)
    for line in coverage_notes(plan.run_dir, plan.cfg.attributes):
        print(f"note: {line}", file=sys.stderr)
    print(f"report: {report}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary(plan.run_dir), indent=1))
    return 0


def coverage_notes(run_dir: Path, attributes: list[str], below: float = 0.7) -> list[str]:
    """A line for each run attribute the GAN draws less than `below` times as often as its
    real images do (the samples stage's coverage), where its boundary has little to move along."""
    cov = ((read_manifest(run_dir / "samples") or {}).get("metrics") or {}).get("coverage") or {}
    return [f"the GAN draws '{a}' {cov[a]['coverage']:.2f}x as often as its real images "
            f"({cov[a]['share_fake']:.3f} vs {cov[a]['share_real']:.3f} score > 0.5): its boundary has less of it to move "
            "along; a GAN trained longer or wider may carry more (report.html, GAN section)"
            for a in attributes if a in cov and cov[a].get("coverage") is not None and cov[a]["coverage"] < below]

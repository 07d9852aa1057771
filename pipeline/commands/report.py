"""Rebuild RUN_DIR/report.html from a run folder's stage outputs."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="photoedit report", description=__doc__.splitlines()[0],
                                epilog="example:\n  photoedit report runs/qs",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by `photoedit run` / `quickstart`")
    args = p.parse_args(argv)
    from pipeline.run.report import build_report

    print(build_report(args.run_dir))
    return 0

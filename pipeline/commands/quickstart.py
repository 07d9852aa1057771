"""The whole pipeline on the built-in street world, on a CPU, in minutes (= run quickstart)."""
from __future__ import annotations


from pipeline.commands import command_parser
from pipeline.run.driver import add_run_arguments, execute

EPILOG = """\
Trains a small GAN on the procedural street world, finds the sunny and night
boundaries and the layers they act through, trains one translator for each, evaluates
them against the world's true re-renders, edits example scenes, and writes
RUN/report.html. No data set, no GPU and no network needed; about 12 minutes on 2 CPU
cores. Same as `photoedit run quickstart --out RUN`; run it again to resume.

examples:
  photoedit quickstart
  photoedit quickstart --out runs/qs --set 'run.photos=[my_photos/]'
  photoedit quickstart --dry-run
"""


def main(argv: list[str]) -> int:
    p = command_parser("quickstart", __doc__, EPILOG)
    add_run_arguments(p, default_out="quickstart-run")
    args = p.parse_args(argv)
    return execute("quickstart", args)

"""One module per CLI verb: parse the arguments, call the library, print; imported lazily."""
from __future__ import annotations

import argparse
import importlib


def run_verb(verb: str, argv: list[str]) -> int:
    """Run `photoedit VERB ARGV...` in this process: the CLI and `photoedit run`'s stages
    both go through here, so a run does exactly what the typed commands do."""
    module = importlib.import_module(f"pipeline.commands.{verb.replace('-', '_')}")
    return int(module.main([str(a) for a in argv]) or 0)


def command_parser(verb: str, doc: str, epilog: str | None = None, whole_doc: bool = False
                   ) -> argparse.ArgumentParser:
    """The parser every verb starts from: `photoedit VERB`, its docstring's first line (or all
    of it) as the description, the epilog's examples printed as written."""
    description = doc if whole_doc else doc.strip().splitlines()[0]
    return argparse.ArgumentParser(prog=f"photoedit {verb}", description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_gan_argument(group) -> None:
    """`--gan CKPT`, the same words wherever a verb reads a generator."""
    group.add_argument("--gan", required=True, metavar="CKPT", help="generator .safetensors, or a training run folder")


def add_segmenter_argument(group) -> None:
    """`--segmenter FILE`: the labeller of GAN samples, from `photoedit train-segmenter`."""
    group.add_argument("--segmenter", required=True, metavar="FILE", help="labeller of GAN samples (train-segmenter)")

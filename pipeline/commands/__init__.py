"""One module per CLI verb: parse the arguments, call the library, print; imported lazily."""
from __future__ import annotations

import importlib


def run_verb(verb: str, argv: list[str]) -> int:
    """Run `photoedit VERB ARGV...` in this process: the CLI and `photoedit run`'s stages
    both go through here, so a run does exactly what the typed commands do."""
    module = importlib.import_module(f"pipeline.commands.{verb.replace('-', '_')}")
    return int(module.main([str(a) for a in argv]) or 0)

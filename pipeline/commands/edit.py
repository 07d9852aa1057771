"""Edit photos by attribute (the main form: photoedit --attribute NAME INPUT...)."""
from __future__ import annotations

import argparse

from pipeline.errors import UserError
from pipeline.models import find_bundle, search_paths


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit", description="Edit photos by attribute.")
    p.add_argument("--attribute", "-a", action="append", required=True, metavar="NAME",
                   help="attribute to apply (repeat to apply several in order)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--out", help="output file or folder")
    p.add_argument("--models", metavar="DIR", help="folder of translator bundles searched first")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    for name in args.attribute:
        if find_bundle(name, args.models) is None:
            where = "\n".join(f"  {src:<18} {path}" for src, path in search_paths(args.models))
            raise UserError(f"no translator for '{name}' is installed; looked in:\n{where}")
    raise UserError("editing is not available in this version yet")

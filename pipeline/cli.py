"""`photoedit`: git-style verbs plus the main form `photoedit --attribute NAME INPUT...`.

Each verb is a module in pipeline/commands/ (name with `-` for `_`) exposing
`main(argv) -> int`; it is imported only when run, so `photoedit --help` is instant.
Exit codes: 0 all done, 1 some inputs failed, 2 usage or input error.
"""
from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

# Before torch loads: OpenMP threads that spin while waiting made small convolutions
# 10-50x slower whenever the CPU is shared (a decode worker, another job; measured for
# train-gan on a 2-core machine). Export OMP_WAIT_POLICY=ACTIVE on a dedicated machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline import __version__
from pipeline.commands import run_verb
from pipeline.errors import UserError

COMMANDS_DIR = Path(__file__).resolve().parent / "commands"

# Groups in the order a user meets them; verbs not listed go under "other".
GROUPS = {
    "edit photos": ["list", "install-models", "serve", "export", "ray-edit"],
    "end to end": ["quickstart", "run", "report"],
    "data": ["world"],
    "GAN": ["train-gan", "sample", "eval-gan", "import-gan"],
    "latent semantics": ["train-predictor", "score", "boundary", "rescore", "directions", "train-segmenter", "lse",
                         "dissect", "scs", "sie"],
    "translators": ["pairs", "train-translator", "eval-translator"],
}

USAGE = """usage: photoedit --attribute NAME [--strength S] INPUT... [-o OUT]   edit photos
       photoedit COMMAND [options]                                  run one stage
       photoedit COMMAND --help                                     a command's options

Edit street photos by attribute with feed-forward translators taught by a GAN.

examples:
  photoedit --attribute sunny street.jpg            writes street.sunny.jpg beside it
  photoedit --attribute night photos/ -o edited/    a whole folder, tree mirrored
  photoedit world --n 64 --size 128x256 --out world/
  photoedit quickstart --out run/                   the whole pipeline on the built-in world
"""


def available_commands() -> dict[str, str]:
    """verb -> one-line summary, read from each module's docstring without importing it."""
    out = {}
    for path in sorted(COMMANDS_DIR.glob("*.py")):
        if path.stem.startswith("_") or path.stem == "edit":
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        out[path.stem.replace("_", "-")] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def top_help() -> str:
    cmds = available_commands()
    lines = [USAGE, "commands:"]
    seen = set()
    for group, verbs in list(GROUPS.items()) + [("other", sorted(cmds))]:
        present = [v for v in verbs if v in cmds and v not in seen]
        if not present:
            continue
        lines.append(f"  {group}:")
        for v in present:
            seen.add(v)
            lines.append(f"    {v:<18}{cmds[v]}")
    lines += ["", "options:", "  -h, --help        this help", "  --version         the version",
              "", "exit codes: 0 all done, 1 some inputs failed (batch goes on), 2 usage or input error"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if not argv or argv[0] in ("-h", "--help", "help"):
            print(top_help())
            return 0
        if argv[0] == "--version":
            print(f"photoedit {__version__}")
            return 0
        verb = argv[0]
        if not verb.startswith("-") and verb in available_commands():
            return run_verb(verb, argv[1:])
        if not verb.startswith("-") and not Path(verb).exists():
            cmds = ", ".join(available_commands())
            raise UserError(f"'{verb}' is neither a command ({cmds}) nor an existing input file; "
                            "see `photoedit --help`")
        return run_verb("edit", argv)
    except UserError as e:
        print(f"photoedit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("photoedit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

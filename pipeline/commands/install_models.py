"""Install a run's translators (or bundle folders) where `photoedit --attribute` finds them."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.errors import UserError
from translators.registry import is_bundle, user_models_dir

EPILOG = """\
Each bundle is copied to DIR/<attribute>/ (replacing one of the same name) with a
`description` that `photoedit list` shows; its provenance keeps the GAN and boundary
sha256 but drops this machine's paths.

examples:
  photoedit install-models runs/qs                        # every translator of a run, for your user
  photoedit install-models runs/qs/translator-sunny/sunny --to ~/models
  photoedit install-models runs/qs --to translators/models \\
      --description "Demo: trained on the procedural street world by photoedit quickstart"
"""


def find_bundles(sources: list[str]) -> list[Path]:
    found = []
    for s in sources:
        p = Path(s).expanduser()
        if is_bundle(p):
            found.append(p)
        elif p.is_dir():
            inner = sorted(b for b in p.glob("translator-*/*") if is_bundle(b))
            if not inner:
                raise UserError(f"{p}: neither a bundle (model.safetensors + config.json) nor a run folder "
                                "with translator-<attribute>/<attribute>/ bundles")
            found += inner
        else:
            raise UserError(f"{p}: no such folder")
    return found


def _without_paths(d: dict) -> dict:
    """d without its `*_path` keys, at any depth (e.g. provenance.pair_filter.predictor_path)."""
    return {k: _without_paths(v) if isinstance(v, dict) else v for k, v in d.items() if not k.endswith("_path")}


def install(bundle: Path, dest_root: Path, description: str | None) -> Path:
    cfg = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    attr = cfg.get("attribute") or bundle.name
    if description:
        cfg["description"] = description
    prov = cfg.get("provenance") or {}
    cfg["provenance"] = _without_paths(prov)
    cfg.get("training", {}).pop("run_dir", None)
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{attr}.", dir=dest_root))
    shutil.copyfile(bundle / "model.safetensors", tmp / "model.safetensors")
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    dest = dest_root / attr
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def main(argv: list[str]) -> int:
    p = command_parser("install-models", __doc__, EPILOG)
    p.add_argument("sources", nargs="+", metavar="RUN_OR_BUNDLE", help="run folders or bundle folders")
    p.add_argument("--to", type=Path, default=None, metavar="DIR",
                   help=f"models folder (default: the user data folder, {user_models_dir()})")
    p.add_argument("--description", help="one line saying what the bundles are and how they were made")
    args = p.parse_args(argv)
    dest_root = (args.to or user_models_dir()).expanduser()
    for b in find_bundles(args.sources):
        print(f"installed {install(b, dest_root, args.description)}")
    return 0

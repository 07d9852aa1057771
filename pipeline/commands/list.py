"""List installed translators: attribute, source, path, training resolution, held-out metrics."""
from __future__ import annotations

import argparse
import json

EPILOG = """\
Bundles are searched in this order; an earlier folder hides a same-named bundle later on:
  --models DIR, $PHOTOEDIT_MODELS (os.pathsep-separated), the user data folder
  ($XDG_DATA_HOME/photoedit/models), then the bundles shipped with the package.

examples:
  photoedit list
  photoedit list --json --models runs/quickstart/translators
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit list", description="List installed translator bundles.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", metavar="DIR", help="folder of translator bundles searched first")
    p.add_argument("--json", action="store_true",
                   help="a JSON list of objects (attribute, source, path, resolution, strength_range, metrics)")
    return p


def _metrics_text(metrics: dict) -> str:
    """The held-out figures that matter, e.g. `pairs +4.1 dB, world +0.8 dB, monotonic`."""
    parts = []
    for group, label in (("heldout_pairs", "pairs"), ("world", "world")):
        gain = (metrics.get(group) or {}).get("psnr_gain_db")
        if isinstance(gain, (int, float)):
            parts.append(f"{label} {gain:+.1f} dB")
    base = metrics.get("baselines") or {}
    for key, label in (("gan_matrix", "GAN-pairs matrix"), ("oracle_matrix", "oracle matrix"),
                       ("oracle_translator", "oracle translator")):
        gain = (base.get(key) or {}).get("psnr_gain_db")
        if isinstance(gain, (int, float)):
            parts.append(f"{label} {gain:+.1f} dB")
    if "strength_monotonic" in metrics:
        parts.append("monotonic" if metrics["strength_monotonic"] else "NOT monotonic")
    return ", ".join(parts) + (" (PSNR gain over do-nothing)" if parts else "not evaluated")


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from translators.registry import describe_bundle, list_bundles, search_paths

    rows = [describe_bundle(*b) for b in list_bundles(args.models)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no translators installed; searched:")
        for src, path in search_paths(args.models):
            print(f"  {src:<18} {path}")
        return 0
    print(f"{'attribute':<14} {'source':<18} {'trained at':<11} held-out metrics / path / about")
    for r in rows:
        res = "x".join(str(v) for v in r["resolution"]) if r.get("resolution") else "?"
        print(f"{r['attribute']:<14} {r['source']:<18} {res:<11} {r.get('error') or _metrics_text(r['metrics'])}")
        print(f"{'':<45}{r['path']}")
        if r.get("description"):
            print(f"{'':<45}{r['description']}")
    return 0

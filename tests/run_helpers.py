"""Helpers shared by the tests of `photoedit run` folders."""
import json
from pathlib import Path


def manifests(run: Path) -> dict:
    """stage name -> manifest.json of every finished stage in a run folder."""
    out = {}
    for m in run.glob("*/manifest.json"):
        d = json.loads(m.read_text())
        if "stage" in d and "key" in d:
            out[d["stage"]] = d
    return out

"""Translator bundle search path for the CLI (`--models`, $PHOTOEDIT_MODELS, user data, shipped).

The logic lives in `translators.registry` so the inference API can resolve names on its
own; this module re-exports it and adds what only the CLI shows (`describe_bundle`).
"""
from __future__ import annotations

import json
from pathlib import Path

from translators.registry import (
    SHIPPED_MODELS,
    find_bundle,
    is_bundle,
    list_bundles,
    search_paths,
    user_models_dir,
)

__all__ = ["SHIPPED_MODELS", "describe_bundle", "find_bundle", "is_bundle", "list_bundles", "search_paths",
           "user_models_dir"]


def describe_bundle(attribute: str, source: str, path: Path) -> dict:
    """One row of `photoedit list`: where a bundle is and what its config.json says."""
    row = {"attribute": attribute, "source": source, "path": str(path)}
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        row["error"] = f"unreadable config.json: {e}"
        return row
    row["resolution"] = cfg.get("resolution")
    row["strength_range"] = cfg.get("strength_range")
    row["metrics"] = cfg.get("metrics") or {}
    row["description"] = cfg.get("description", "")
    return row

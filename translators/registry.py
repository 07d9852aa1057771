"""Where translator bundles are found, in order of precedence.

Lives in translators/ (not pipeline/) so that `EditPipeline.from_pretrained("sunny")`
can resolve a name without translators/ importing pipeline/; the CLI uses it as is.

1. `--models DIR` given on the command line
2. `$PHOTOEDIT_MODELS` (one or more folders separated by the OS path separator)
3. the user's data folder: `$XDG_DATA_HOME/photoedit/models` (default ~/.local/share/...)
4. the demo bundles shipped inside the package (translators/models/)

A bundle is a folder `<attribute>/` holding `model.safetensors` and `config.json`.
"""
from __future__ import annotations

import os
from pathlib import Path

SHIPPED_MODELS = Path(__file__).resolve().parent / "models"


def user_models_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "photoedit" / "models"


def search_paths(models_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(source label, folder) pairs in precedence order."""
    paths: list[tuple[str, Path]] = []
    if models_dir:
        paths.append(("--models", Path(models_dir)))
    for p in filter(None, os.environ.get("PHOTOEDIT_MODELS", "").split(os.pathsep)):
        paths.append(("$PHOTOEDIT_MODELS", Path(p)))
    paths.append(("user data", user_models_dir()))
    paths.append(("shipped", SHIPPED_MODELS))
    return paths


def is_bundle(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def find_bundle(name: str, models_dir: str | Path | None = None) -> tuple[str, Path] | None:
    """A bundle path given directly, or the first `<folder>/<name>/` along the search path."""
    direct = Path(name)
    if is_bundle(direct):
        return ("path", direct)
    for source, folder in search_paths(models_dir):
        if is_bundle(folder / name):
            return (source, folder / name)
    return None


class BundleNotFound(FileNotFoundError):
    """No bundle of that name on the search path; the message lists where it looked."""


def require_bundle(name: str, models_dir: str | Path | None = None) -> Path:
    """`find_bundle`'s path, or BundleNotFound naming every folder it looked in."""
    found = find_bundle(name, models_dir)
    if found is None:
        where = "\n".join(f"  {src:<18} {path}" for src, path in search_paths(models_dir))
        raise BundleNotFound(f"no translator for '{name}' is installed (a folder with model.safetensors and "
                             f"config.json); looked in:\n{where}")
    return found[1]


def list_bundles(models_dir: str | Path | None = None) -> list[tuple[str, str, Path]]:
    """(attribute, source, path) for every bundle; an earlier folder shadows a later one."""
    seen: dict[str, tuple[str, str, Path]] = {}
    for source, folder in search_paths(models_dir):
        if not folder.is_dir():
            continue
        for sub in sorted(folder.iterdir()):
            if sub.name not in seen and is_bundle(sub):
                seen[sub.name] = (sub.name, source, sub)
    return list(seen.values())


def describe_bundle(attribute: str, source: str, path: Path) -> dict:
    """One row of `photoedit list`: where a bundle is and what its config.json says."""
    import json

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

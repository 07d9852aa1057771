"""Typed configs: YAML presets in configs/ fill dataclasses, `--set key=value` overrides.

Each component owns one dataclass (its single source of settings). A preset file is a
mapping of *sections* (`world:`, `train_gan:`, ...) to mappings of that section's
fields. A command reads the section(s) it needs with `load_section`. Unknown section
names, unknown keys and values of the wrong type raise `ConfigError` naming the key.

Settings that differ by attribute live in ONE place, the `per_attribute:` section:
attribute -> section -> key, e.g. `per_attribute: {sunny: {pairs: {strength_range: [0.5, 3]}}}`.
For that attribute's stages only, its entries win over the sections above (and over a
plain `--set pairs.strength_range=...`); change one with
`--set per_attribute.sunny.pairs.strength_range=[0.5,3]`. Only the per-attribute sections
(PER_ATTRIBUTE_SECTIONS) and, of `run:`, the predictor keys may appear there; every entry is
checked like the section it overrides.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Type, TypeVar

import yaml

from pipeline.errors import ConfigError

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

# Seeds at or above this are held out of every training: world scenes the GAN never saw
# and GAN latents the translator never trained on (evaluation uses them).
HELD_OUT_SEED_START = 1_000_000_000

# Every top-level section a preset may hold, and the dataclass that is its single source
# of settings ("module:Class", imported only when the section is checked: most need torch).
SECTIONS = {
    "world": "pipeline.world.scene:WorldConfig",
    "gan": "gan.networks:GeneratorConfig",
    "train_gan": "gan.training:TrainConfig",
    "sample": "gan.sampling:SampleConfig",
    "predictor": "pipeline.semantics.predictors.classifier:PredictorConfig",
    "boundary": "pipeline.semantics.boundary:BoundaryConfig",
    "rescore": "pipeline.semantics.rescore:RescoreConfig",
    "pairs": "pipeline.semantics.pairs:PairsConfig",
    "translator": "translators.networks:TranslatorConfig",
    "train_translator": "translators.training:TrainTranslatorConfig",
    "edit": "translators.edit_config:EditConfig",
    "run": "pipeline.run.stages:RunConfig",
}
# The section of per-attribute overrides (not a dataclass: attribute -> section -> key -> value),
# the sections it may override, and the keys of `run:` it may override.
PER_ATTRIBUTE = "per_attribute"
PER_ATTRIBUTE_SECTIONS = ("boundary", "rescore", "pairs", "translator", "train_translator", "run")
PER_ATTRIBUTE_RUN_KEYS = ("predictor", "predictor_path")
KNOWN_SECTIONS = tuple(SECTIONS)  # the dataclass sections
PRESET_SECTIONS = KNOWN_SECTIONS + (PER_ATTRIBUTE,)  # every top-level key a preset (or --set) may name


def section_class(section: str) -> type:
    """The dataclass behind a preset section."""
    if section not in SECTIONS:
        raise ConfigError(f"unknown section '{section}' (known: {', '.join(KNOWN_SECTIONS)})")
    module, name = SECTIONS[section].split(":")
    return getattr(importlib.import_module(module), name)


def load_all(preset: str | Path | None, overrides: list[str] | dict[str, Any] | None = None,
             attribute: str | None = None) -> dict[str, Any]:
    """Every section of `preset` + overrides resolved to its dataclass, checked up front.

    An unknown section or key, or a bad value, anywhere (preset or --set, `per_attribute:`
    entries included) is a ConfigError naming it: a typo fails before any work starts, not
    minutes later in the stage that reads it. With `attribute`, the sections are that
    attribute's: its `per_attribute:` entries applied on top.
    """
    overrides = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    configs = {name: load_section(section_class(name), name, preset, overrides) for name in SECTIONS}
    per_attr = per_attribute_overrides(preset, overrides)
    known = set(configs["world"].attributes) | set(configs["run"].attributes)
    for attr in per_attr:
        if attr not in known:
            raise ConfigError(f"{PER_ATTRIBUTE}.{attr}: unknown attribute (known: {', '.join(sorted(known))})")
    for attr, conds in configs["run"].conditions.items():
        for b in conds:
            if b not in known:
                raise ConfigError(f"run.conditions.{attr}: unknown attribute '{b}' (known: {', '.join(sorted(known))})")
    for attr, flat in per_attr.items():
        if attribute is not None and attr != attribute:
            continue
        merged = {**overrides, **flat}
        try:
            resolved = {name: load_section(section_class(name), name, preset, merged)
                        for name in {key.partition(".")[0] for key in flat}}
        except ConfigError as e:
            raise ConfigError(f"{PER_ATTRIBUTE}.{attr}: {e}") from None
        if attr == attribute:
            configs.update(resolved)
    return configs


def per_attribute_overrides(preset: str | Path | None,
                            overrides: list[str] | dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """attribute -> {"section.key": value}: the preset's `per_attribute:` entries, then any
    `--set per_attribute.ATTR.section.key=value`. Section and key names are checked here
    (their values when a section is resolved: `load_all`)."""
    overrides = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    raw = read_preset(preset).get(PER_ATTRIBUTE) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{PER_ATTRIBUTE}: expected a mapping attribute -> section -> key, got {raw!r}")
    out: dict[str, dict[str, Any]] = {}
    for attr, sections in raw.items():
        if not isinstance(sections, dict):
            raise ConfigError(f"{PER_ATTRIBUTE}.{attr}: expected a mapping of sections, got {sections!r}")
        for section, keys in sections.items():
            if not isinstance(keys, dict):
                raise ConfigError(f"{PER_ATTRIBUTE}.{attr}.{section}: expected a mapping of keys, got {keys!r}")
            for key, value in keys.items():
                _check_per_attribute_key(str(attr), str(section), str(key))
                out.setdefault(str(attr), {})[f"{section}.{key}"] = value
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head != PER_ATTRIBUTE:
            continue
        parts = rest.split(".")
        if len(parts) != 3 or not all(parts):
            raise ConfigError(f"--set {key}: expected {PER_ATTRIBUTE}.<attribute>.<section>.<key>=value")
        attr, section, name = parts
        _check_per_attribute_key(attr, section, name)
        out.setdefault(attr, {})[f"{section}.{name}"] = value
    return out


def shadowed_overrides(preset: str | Path | None, overrides: list[str] | None,
                       attributes: list[str]) -> list[str]:
    """One line per run-wide `--set section.key=value` that an attribute's per-attribute entry
    for the same key overrides (the entry wins for that attribute's stages, as designed; said
    so a run-wide change is not believed to have reached it)."""
    flat = parse_overrides(overrides)
    out = []
    for attr, entries in per_attribute_overrides(preset, flat).items():
        if attr not in attributes:
            continue
        for key, value in entries.items():
            if key in flat:
                out.append(f"--set {key}={plain(flat[key])} does not reach {attr}: "
                           f"its per_attribute entry {key}={plain(value)} wins")
    return out


def attribute_set_args(preset: str | Path | None, overrides: list[str] | dict[str, Any] | None,
                       attribute: str) -> list[str]:
    """`--set section.key=value` strings carrying `attribute`'s per-attribute entries to a verb
    (after the run's own --set, so they win); the values as JSON, which YAML reads back."""
    import json

    flat = per_attribute_overrides(preset, overrides).get(attribute, {})
    return [f"{key}={json.dumps(plain(value))}" for key, value in flat.items() if not key.startswith("run.")]


def _check_per_attribute_key(attr: str, section: str, key: str) -> None:
    where = f"{PER_ATTRIBUTE}.{attr}.{section}"
    if section not in PER_ATTRIBUTE_SECTIONS:
        raise ConfigError(f"{where}: section '{section}' cannot differ by attribute "
                          f"(per-attribute sections: {', '.join(PER_ATTRIBUTE_SECTIONS)})")
    if section == "run":
        if key not in PER_ATTRIBUTE_RUN_KEYS:
            raise ConfigError(f"{where}.{key}: only {', '.join(PER_ATTRIBUTE_RUN_KEYS)} of run: may differ by attribute")
        return
    names = [f.name for f in dataclasses.fields(section_class(section)) if f.init]
    if key not in names:
        raise ConfigError(f"unknown key '{where}.{key}' (known: {', '.join(names)})")


def resolve_preset(name_or_path: str | Path) -> Path:
    """A preset name (`quickstart`) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config '{name_or_path}' not found: not a file, nor a shipped preset ({known})")


def read_preset(name_or_path: str | Path | None) -> dict:
    """The raw mapping of sections, validated for section names only."""
    if name_or_path is None:
        return {}
    path = resolve_preset(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    for key in data:
        if key not in PRESET_SECTIONS:
            raise ConfigError(f"{path}: unknown section '{key}' (known: {', '.join(PRESET_SECTIONS)})")
    return data


def add_config_arguments(parser, sections: str, example: str):
    """The --config / --set / --dry-run group every config-driven command shares.

    sections: the preset sections the command reads, for the help (e.g. "pairs:");
    example: one --set override shown in the help (e.g. "pairs.batch=32").
    Returns the argument group, for command-specific additions.
    """
    g = parser.add_argument_group("config")
    g.add_argument("--config", default="quickstart", metavar="PRESET",
                   help=f"preset name or YAML file; sections {sections} (default: %(default)s)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a setting, e.g. {example} (repeatable)")
    g.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    return g


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["train_gan.lr=0.002", "world.size=[64,128]"]` -> {"train_gan.lr": 0.002, ...}.

    Values are parsed as YAML scalars/lists so numbers, booleans and lists work.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set '{item}': expected key=value, e.g. train_gan.batch=8")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def load_section(
    cls: Type[T],
    section: str,
    preset: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> T:
    """Fill `cls` from `preset[section]`, then apply `--set section.key=value` overrides.

    Overrides for other sections are ignored here (another command may read them);
    an override for this section whose key is unknown is an error.
    """
    if section not in KNOWN_SECTIONS:
        raise ConfigError(f"unknown section '{section}'")
    data = dict(read_preset(preset).get(section) or {})
    if not isinstance(data, dict):
        raise ConfigError(f"section '{section}' must be a mapping")
    if not isinstance(overrides, dict):
        overrides = parse_overrides(overrides)
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in PRESET_SECTIONS:
            raise ConfigError(f"--set {key}: unknown section '{head}' (known: {', '.join(PRESET_SECTIONS)})")
        if head != section:  # per_attribute.* entries are read by per_attribute_overrides
            continue
        if not rest:
            raise ConfigError(f"--set {key}: expected {section}.<key>=value")
        _set_path(data, rest.split("."), value)
    return from_dict(cls, data, prefix=section)


def _set_path(data: dict, parts: list[str], value: Any) -> None:
    for p in parts[:-1]:
        data = data.setdefault(p, {})
    data[parts[-1]] = value


def from_dict(cls: Type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from a mapping, checking every key and value type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise ConfigError(f"unknown key '{name}' (known: {', '.join(fields)})")
        kwargs[key] = _coerce(hints[key], value, name)
    try:
        obj = cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from None
    except ValueError as e:  # __post_init__ validation
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from None
    return obj


def _coerce(tp: Any, value: Any, name: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, name)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{name}: {value!r} fits none of {tp}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if isinstance(value, (int, float, str)) and origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{name}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, prefix=name)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def to_dict(obj: Any) -> dict:
    """A dataclass as plain JSON/YAML-friendly data (tuples become lists)."""
    return plain(dataclasses.asdict(obj))


def plain(v: Any, digits: int | None = None) -> Any:
    """Nested data as JSON/YAML-friendly values: tuples -> lists, numpy scalars -> Python,
    paths -> str; floats rounded to `digits` when given (records that must stay readable)."""
    if isinstance(v, dict):
        return {k: plain(x, digits) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x, digits) for x in v]
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # a numpy scalar
        v = v.item()
    if isinstance(v, float) and digits is not None:
        return round(v, digits)
    return v


def dump_yaml(sections: dict[str, Any]) -> str:
    """Resolved config(s) as YAML, for `--dry-run` and run folders."""
    plain = {k: to_dict(v) if dataclasses.is_dataclass(v) else v for k, v in sections.items()}
    return yaml.safe_dump(plain, sort_keys=False)

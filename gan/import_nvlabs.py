"""Import an NVlabs stylegan2-ada-pytorch network pickle (`.pkl`) without running any of its code.

Those pickles store the networks as objects of classes whose source code travels
inside the file (`torch_utils.persistence`): `pickle.load` would import and execute
it. Here a restricted unpickler resolves every global the file names to an inert
stand-in of our own instead of importing it, so nothing from the file is executed:

    torch_utils.persistence._reconstruct_persistent_obj  -> PersistentObject(class name, state dict)
    torch storages (stored as bytes of torch.save)       -> torch.load(weights_only=True)
    torch._utils._rebuild_tensor_v2 / _rebuild_parameter -> plain tensors
    OrderedDict, set, dict, dnnlib EasyDict              -> builtin containers
    anything else                                        -> an Opaque record of its arguments

The generator's parameters and buffers are then read out of the rebuilt state dicts
(`_parameters`, `_buffers`, `_modules`) and mapped strictly onto gan.networks.Generator
(every tensor used once, resampling filters checked to be [1,3,3,1]). Supported:
unconditional generators (c_dim 0) with the default 'skip' synthesis architecture.
Layers the file runs in FP16 with `conv_clamp` (ADA's defaults) are imported in FP32
without the clamp; images only differ if an activation exceeds the clamp (256).
"""
from __future__ import annotations

import collections
import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from gan.networks import Generator, GeneratorConfig, blur_kernel_2d


class NVlabsImportError(ValueError):
    """The file is not an NVlabs generator pickle this importer can map exactly."""


# 1. A restricted unpickler ---------------------------------------------------------------


class Opaque:
    """Inert stand-in for a class or function named in the pickle: records, never runs anything."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.state, self.items, self.list = args, kwargs, None, {}, []

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.list.append(value)

    def extend(self, values):
        self.list.extend(values)

    def __repr__(self) -> str:
        return f"<opaque {self.qualname}>"


@dataclass
class PersistentObject:
    """What `_reconstruct_persistent_obj(meta)` describes: a class name and its instance __dict__."""

    class_name: str
    state: dict


class EasyDict(dict):
    """dnnlib.EasyDict rebuilt as a plain dict subclass (it only adds attribute access)."""


def _persistent_object(meta) -> PersistentObject:
    if not isinstance(meta, dict) or "state" not in meta:
        raise NVlabsImportError("malformed persistent object record")
    return PersistentObject(class_name=str(meta.get("class_name")), state=dict(meta["state"] or {}))


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data  # plain tensor: gradients and hooks are of no use for an import


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in _SAFE_CALLABLES:
        raise NVlabsImportError("tensor subclass rebuilt by an unexpected function")
    return func(*args)


def _copyreg_reconstructor(cls, base, state):
    if not (isinstance(cls, type) and issubclass(cls, Opaque)):
        raise NVlabsImportError(f"refusing to reconstruct {cls!r}")
    return cls.__new__(cls)


_SAFE = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_object,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("copyreg", "_reconstructor"): _copyreg_reconstructor,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "object"): Opaque,
    ("dnnlib.util", "EasyDict"): EasyDict,
}
_SAFE_CALLABLES = {torch._utils._rebuild_tensor_v2, _rebuild_parameter}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals only to the table above or to a fresh Opaque subclass; imports nothing."""

    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE:
            return _SAFE[(module, name)]
        return type(name, (Opaque,), {"qualname": f"{module}.{name}"})

    def persistent_load(self, pid):
        raise NVlabsImportError("persistent ids (torch.save zip format) are not expected in a network pickle")


def read_nvlabs_pickle(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise NVlabsImportError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            data = RestrictedUnpickler(f).load()
    except NVlabsImportError as exc:
        raise NVlabsImportError(f"{path}: {exc}") from None
    except Exception as exc:  # corrupt or foreign files fail in many ways inside pickle
        raise NVlabsImportError(f"{path}: not a readable network pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise NVlabsImportError(f"{path}: expected a dict of networks, found {type(data).__name__}")
    return data


# 2. Flattening the module tree -----------------------------------------------------------


def module_state(obj, source: str) -> dict:
    if isinstance(obj, PersistentObject):
        return obj.state
    if isinstance(obj, Opaque) and isinstance(obj.state, dict):
        return obj.state
    raise NVlabsImportError(f"{source}: expected a network, found {obj!r}")


def flatten_tensors(obj, source: str, prefix: str = "") -> dict[str, torch.Tensor]:
    """Parameters and persistent buffers of a rebuilt module tree, keyed like a state_dict."""
    state = module_state(obj, source)
    out = {}
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or name in skip:
                continue
            if not isinstance(value, torch.Tensor):
                raise NVlabsImportError(f"{source}: {prefix}{name} is not a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(flatten_tensors(child, source, f"{prefix}{name}."))
    return out


# 3. Mapping onto our generator ------------------------------------------------------------


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.fullmatch(k))})


def generator_config_from(sd: dict, kwargs: dict, source: str) -> GeneratorConfig:
    fcs = _indices(sd, r"mapping\.fc(\d+)\.weight")
    if not fcs or fcs != list(range(len(fcs))):
        raise NVlabsImportError(f"{source}: mapping.fcN layers missing or not numbered 0..n-1")
    if "mapping.embed.weight" in sd or kwargs.get("c_dim", 0):
        raise NVlabsImportError(f"{source}: conditional generators (c_dim > 0) are not supported")
    res = _indices(sd, r"synthesis\.b(\d+)\.conv1\.weight")
    if not res or res[0] != 4 or any(b != 2 * a for a, b in zip(res, res[1:])):
        raise NVlabsImportError(f"{source}: synthesis blocks b4, b8, ... not found (got {res})")
    z_dim = int(sd["mapping.fc0.weight"].shape[1])
    w_dim = int(sd[f"mapping.fc{fcs[-1]}.weight"].shape[0])
    if any(int(sd[f"mapping.fc{i}.weight"].shape[0]) != w_dim for i in fcs):
        raise NVlabsImportError(f"{source}: mapping layers wider than w_dim are not supported")
    mapping_kwargs = kwargs.get("mapping_kwargs") or {}
    return GeneratorConfig(
        z_dim=z_dim, w_dim=w_dim, resolution=(res[-1], res[-1]), mapping_layers=len(fcs),
        mapping_lr_mul=float(mapping_kwargs.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mapping_kwargs.get("w_avg_beta", 0.995) or 0.995),
        channels=tuple(int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in res))


def nvlabs_key_map(cfg: GeneratorConfig) -> dict[str, tuple[str, callable]]:
    """Our key -> (NVlabs key, reshape). Layer names match one to one (b{4*2^l} is our level l)."""
    same = lambda t: t  # noqa: E731
    table = {"mapping.w_avg": ("mapping.w_avg", same),
             "synthesis.const": ("synthesis.b4.const", lambda t: t.unsqueeze(0))}
    for i in range(cfg.mapping_layers):
        for p in ("weight", "bias"):
            table[f"mapping.layers.{i}.{p}"] = (f"mapping.fc{i}.{p}", same)
    for level in range(cfg.num_levels):
        block = f"synthesis.b{4 << level}"
        for conv in (("conv1",) if level == 0 else ("conv0", "conv1")):
            ours, theirs = f"synthesis.levels.{level}.{conv}", f"{block}.{conv}"
            table[f"{ours}.conv.weight"] = (f"{theirs}.weight", same)
            table[f"{ours}.conv.affine.weight"] = (f"{theirs}.affine.weight", same)
            table[f"{ours}.conv.affine.bias"] = (f"{theirs}.affine.bias", same)
            table[f"{ours}.noise_strength"] = (f"{theirs}.noise_strength", same)
            table[f"{ours}.bias"] = (f"{theirs}.bias", same)
            table[f"{ours}.noise_const"] = (f"{theirs}.noise_const", lambda t: t.reshape(1, 1, *t.shape[-2:]))
        ours, theirs = f"synthesis.levels.{level}.torgb", f"{block}.torgb"
        for p in ("weight", "affine.weight", "affine.bias"):
            table[f"{ours}.conv.{p}"] = (f"{theirs}.{p}", same)
        table[f"{ours}.bias"] = (f"{theirs}.bias", same)
    return table


def convert_nvlabs_state(sd: dict, G: Generator, source: str) -> dict[str, torch.Tensor]:
    target, table = G.state_dict(), nvlabs_key_map(G.cfg)
    problems = []
    used = {theirs for theirs, _ in table.values()}
    # Resampling filters are fixed: checked, not copied (ours are built in).
    expected = blur_kernel_2d()
    filters = {k for k in sd if k.endswith("resample_filter")}
    for key in sorted(filters):
        if sd[key].shape != expected.shape or not torch.allclose(sd[key].float(), expected):
            problems.append(f"{key}: only the [1,3,3,1] filter is supported")
    missing = sorted(theirs for theirs in used if theirs not in sd)
    if missing:
        problems.append(f"missing source tensors: {', '.join(missing[:12])}")
    leftovers = sorted(set(sd) - used - filters)
    if leftovers:
        problems.append(f"unused source tensors (architecture not supported): {', '.join(leftovers[:12])}")
    out = {}
    for ours, (theirs, reshape) in table.items():
        if theirs in sd:
            value = reshape(sd[theirs]).to(torch.float32)
            if value.shape != target[ours].shape:
                problems.append(f"{theirs} {list(sd[theirs].shape)} -> {ours}: expected {list(target[ours].shape)}")
            out[ours] = value.contiguous()
    if set(target) - set(out) and not problems:
        problems.append(f"no source for: {', '.join(sorted(set(target) - set(out)))}")
    if problems:
        raise NVlabsImportError(f"{source}: cannot map exactly:\n  " + "\n  ".join(problems))
    return out


@dataclass
class NVlabsImportResult:
    generator: Generator  # eval mode, imported weights (w_avg from the file)
    kwargs: dict  # the generator's constructor arguments as stored in the file


def import_nvlabs(path: str | Path, which: str = "G_ema") -> NVlabsImportResult:
    source = str(path)
    data = read_nvlabs_pickle(path)
    if which not in data:
        raise NVlabsImportError(f"{source}: no '{which}' entry; entries are {sorted(map(str, data))}")
    state = module_state(data[which], source)
    kwargs = dict(state.get("_init_kwargs") or {})
    sd = flatten_tensors(data[which], source)
    cfg = generator_config_from(sd, kwargs, source)
    arch = (kwargs.get("synthesis_kwargs") or {}).get("architecture", "skip")
    if arch != "skip":
        raise NVlabsImportError(f"{source}: synthesis architecture '{arch}' is not supported (only 'skip')")
    G = Generator(cfg)
    G.load_state_dict(convert_nvlabs_state(sd, G, source), strict=True)
    return NVlabsImportResult(generator=G.eval(), kwargs=kwargs)

"""Import of rosinality/stylegan2-pytorch checkpoints (gan/import_rosinality.py).

The state dicts here are built with rosinality's key names and shape formulas (its
model.py: 512 channels up to 32 px, [1, out, in, k, k] modulated weights, persistent
blur kernels, noises.noise_N), with random values everywhere (including the noise
strengths and biases that its init leaves at zero) so that any misplaced tensor shows.
The expected image comes from `reference_forward`, a separate re-implementation of
rosinality's generator written from its maths (per-sample weight modulation, explicit
zero-insertion upsampling), sharing no code with gan/networks.py.
"""
from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from gan.import_rosinality import (
    RosinalityImportError,
    import_rosinality,
    infer_rosinality_arch,
)

STYLE_DIM = 16
N_MLP = 2


def rosinality_state_dict(size: int = 16, style_dim: int = STYLE_DIM, n_mlp: int = N_MLP,
                          widths: tuple[int, ...] | None = None, seed: int = 0) -> dict:
    """A generator state dict laid out exactly as rosinality's Generator(size, style_dim, n_mlp)."""
    g = torch.Generator().manual_seed(seed)
    log = int(math.log2(size))
    widths = widths or tuple(min(512, 16384 // (4 << i)) for i in range(log - 1))
    blur = torch.tensor([1.0, 3.0, 3.0, 1.0])
    blur = blur[:, None] * blur[None, :] / 64.0 * 4.0  # make_kernel * factor**2
    r = lambda *shape, s=1.0: torch.randn(*shape, generator=g) * s  # noqa: E731
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = r(style_dim, style_dim, s=100.0)  # randn / lr_mul at init
        sd[f"style.{i}.bias"] = r(style_dim, s=10.0)

    def styled(name, cin, cout, up):
        sd[f"{name}.conv.weight"] = r(1, cout, cin, 3, 3)
        sd[f"{name}.conv.modulation.weight"] = r(cin, style_dim)
        sd[f"{name}.conv.modulation.bias"] = 1.0 + r(cin, s=0.2)
        if up:
            sd[f"{name}.conv.blur.kernel"] = blur.clone()
        sd[f"{name}.noise.weight"] = r(1, s=0.5)
        sd[f"{name}.activate.bias"] = r(cout, s=0.2)

    def to_rgb(name, cin, up):
        sd[f"{name}.conv.weight"] = r(1, 3, cin, 1, 1)
        sd[f"{name}.conv.modulation.weight"] = r(cin, style_dim)
        sd[f"{name}.conv.modulation.bias"] = 1.0 + r(cin, s=0.2)
        sd[f"{name}.bias"] = r(1, 3, 1, 1, s=0.2)
        if up:
            sd[f"{name}.upsample.kernel"] = blur.clone()

    sd["input.input"] = r(1, widths[0], 4, 4)
    styled("conv1", widths[0], widths[0], up=False)
    to_rgb("to_rgb1", widths[0], up=False)
    for level in range(1, log - 1):
        styled(f"convs.{2 * level - 2}", widths[level - 1], widths[level], up=True)
        styled(f"convs.{2 * level - 1}", widths[level], widths[level], up=False)
        to_rgb(f"to_rgbs.{level - 1}", widths[level], up=True)
    for i in range(2 * (log - 2) + 1):
        side = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = r(1, 1, side, side)
    return sd


# --- independent reference: rosinality's generator maths, per sample ---------------------


def _lrelu(x):
    return F.leaky_relu(x, 0.2) * math.sqrt(2.0)


def _modconv(sd, name, x, w, demodulate=True, up=False):
    weight = sd[f"{name}.conv.weight"][0]  # [out, in, k, k]
    cin, k = weight.shape[1], weight.shape[2]
    mod_w, mod_b = sd[f"{name}.conv.modulation.weight"], sd[f"{name}.conv.modulation.bias"]
    style = w @ (mod_w / math.sqrt(mod_w.shape[1])).t() + mod_b  # [N, in]
    outs = []
    for n in range(x.shape[0]):  # one modulated weight per sample, as published
        wn = weight / math.sqrt(cin * k * k) * style[n][None, :, None, None]
        if demodulate:
            wn = wn / torch.sqrt(wn.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xn = x[n:n + 1]
        if up:
            y = F.conv_transpose2d(xn, wn.transpose(0, 1), stride=2)
            kern = sd[f"{name}.conv.blur.kernel"]
            y = F.conv2d(F.pad(y, (1, 1, 1, 1)), kern.flip(0, 1)[None, None].repeat(y.shape[1], 1, 1, 1),
                         groups=y.shape[1])
        else:
            y = F.conv2d(xn, wn, padding=k // 2)
        outs.append(y)
    return torch.cat(outs)


def _styled(sd, name, x, w, noise, up=False):
    y = _modconv(sd, name, x, w, up=up)
    y = y + sd[f"{name}.noise.weight"] * noise
    return _lrelu(y + sd[f"{name}.activate.bias"].view(1, -1, 1, 1))


def _upsample_rgb(x, kern):
    # upfirdn2d(up=2, pad=(2, 1)): insert zeros, pad, correlate with the flipped kernel.
    n, c, h, w = x.shape
    u = torch.zeros(n, c, 2 * h, 2 * w)
    u[:, :, ::2, ::2] = x
    u = F.pad(u, (2, 1, 2, 1))
    return F.conv2d(u, kern.flip(0, 1)[None, None].repeat(c, 1, 1, 1), groups=c)


def reference_forward(sd: dict, z: torch.Tensor, lr_mlp: float = 0.01) -> torch.Tensor:
    """rosinality g_ema([z], randomize_noise=False) recomputed from the raw state dict."""
    x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        wgt = sd[f"style.{i}.weight"]
        x = _lrelu(x @ (wgt * lr_mlp / math.sqrt(wgt.shape[1])).t() + sd[f"style.{i}.bias"] * lr_mlp)
        i += 1
    w = x
    h = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    h = _styled(sd, "conv1", h, w, sd["noises.noise_0"])
    rgb = _modconv(sd, "to_rgb1", h, w, demodulate=False) + sd["to_rgb1.bias"]
    level = 1
    while f"to_rgbs.{level - 1}.conv.weight" in sd:
        h = _styled(sd, f"convs.{2 * level - 2}", h, w, sd[f"noises.noise_{2 * level - 1}"], up=True)
        h = _styled(sd, f"convs.{2 * level - 1}", h, w, sd[f"noises.noise_{2 * level}"])
        y = _modconv(sd, f"to_rgbs.{level - 1}", h, w, demodulate=False) + sd[f"to_rgbs.{level - 1}.bias"]
        rgb = y + _upsample_rgb(rgb, sd[f"to_rgbs.{level - 1}.upsample.kernel"])
        level += 1
    return rgb


# --- tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sd16():
    return rosinality_state_dict(16)


def save_like_train_py(sd: dict, path, **args) -> None:
    """The dict rosinality's train.py writes (other entries reduced to stand-ins)."""
    ns = argparse.Namespace(**{"arch": "stylegan2", "size": 16, "n_mlp": N_MLP, "latent": STYLE_DIM,
                               "channel_multiplier": 2, "batch": 8, **args})
    torch.save({"g": sd, "d": {}, "g_ema": sd, "g_optim": {}, "d_optim": {}, "args": ns,
                "ada_aug_p": 0.0}, path)


def test_infers_architecture_from_shapes(sd16):
    arch = infer_rosinality_arch(sd16)
    assert (arch.size, arch.style_dim, arch.n_mlp) == (16, STYLE_DIM, N_MLP)
    assert arch.widths == (512, 512, 512)
    sd64 = {k: v for k, v in rosinality_state_dict(64, widths=(8, 8, 8, 8, 6)).items()}
    arch64 = infer_rosinality_arch(sd64)
    assert arch64.size == 64 and arch64.widths == (8, 8, 8, 8, 6) and arch64.channel_multiplier is None


def test_import_matches_independent_reference(sd16, tmp_path):
    path = tmp_path / "000100.pt"
    save_like_train_py(sd16, path)
    result = import_rosinality(path, w_avg_samples=256)
    G = result.generator
    assert G.cfg.resolution == (16, 16) and G.num_ws == 6 and G.cfg.mapping_layers == N_MLP
    z = torch.randn(2, STYLE_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours = G(z, noise_mode="const")
        ref = reference_forward(sd16, z)
    assert ours.shape == ref.shape == (2, 3, 16, 16)
    assert ref.std() > 0.1  # a meaningful image, not a constant
    # float32 summation order differs (batched vs per-sample weights): far below 8-bit steps
    assert (ours - ref).abs().max() < 1e-3 * ref.abs().max()
    # the noise buffers are really used: a different noise gives a different image
    with torch.no_grad():
        assert (G(z, noise_mode="none") - ours).abs().max() > 1e-2


def test_first_layer_lands_in_place(sd16, tmp_path):
    """The 4 px conv alone: constant -> modulated 3x3 conv -> noise -> bias -> lrelu."""
    path = tmp_path / "g.pt"
    torch.save({"g_ema": sd16}, path)
    G = import_rosinality(path, w_avg_samples=16).generator
    w = torch.randn(3, STYLE_DIM, generator=torch.Generator().manual_seed(1))
    level0 = G.synthesis.levels[0]
    with torch.no_grad():
        ours = level0.conv1(G.synthesis.const.expand(3, -1, -1, -1), w, "const")
        ref = _styled(sd16, "conv1", sd16["input.input"].repeat(3, 1, 1, 1), w, sd16["noises.noise_0"])
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_w_avg_estimated_when_absent_and_taken_when_present(sd16, tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"g_ema": sd16}, path)
    G = import_rosinality(path, w_avg_samples=512).generator
    with torch.no_grad():
        w = G.mapping(torch.randn(4096, STYLE_DIM, generator=torch.Generator().manual_seed(9)))
    spread = w.std(0).mean()
    assert (G.w_avg - w.mean(0)).abs().mean() < 0.2 * spread  # estimate near the true mean
    avg = torch.randn(STYLE_DIM)
    torch.save({"g_ema": sd16, "latent_avg": avg}, path)
    assert torch.equal(import_rosinality(path).generator.w_avg, avg)


def test_missing_extra_and_misshaped_tensors_are_named(sd16, tmp_path):
    path = tmp_path / "bad.pt"
    cases = {
        "convs.1.noise.weight": {k: v for k, v in sd16.items() if k != "convs.1.noise.weight"},
        "foo.bar": {**sd16, "foo.bar": torch.zeros(2)},
        "noises.noise_3": {**sd16, "noises.noise_3": torch.zeros(1, 1, 8, 8)},
        "to_rgbs.1.upsample.kernel": {**sd16, "to_rgbs.1.upsample.kernel": torch.ones(4, 4)},
    }
    for key, sd in cases.items():
        torch.save({"g_ema": sd}, path)
        with pytest.raises(RosinalityImportError, match=key.replace(".", r"\.")):
            import_rosinality(path, w_avg_samples=16)


def test_saved_args_must_agree_and_pickled_code_is_refused(sd16, tmp_path):
    path = tmp_path / "g.pt"
    save_like_train_py(sd16, path, n_mlp=8)  # saved args disagree with the tensors
    with pytest.raises(RosinalityImportError, match="n_mlp=8"):
        import_rosinality(path, w_avg_samples=16)
    torch.save({"g_ema": sd16, "opt": torch.optim.SGD}, path)  # a class: not allowed
    with pytest.raises(RosinalityImportError, match="weights-only"):
        import_rosinality(path)
    with pytest.raises(RosinalityImportError, match="no such file"):
        import_rosinality(tmp_path / "absent.pt")


def test_cli_writes_a_self_describing_checkpoint(sd16, tmp_path, capsys):
    from gan.checkpoint import load_generator, read_generator_metadata
    from pipeline.cli import main

    src, out = tmp_path / "000100.pt", tmp_path / "imported.safetensors"
    save_like_train_py(sd16, src)
    assert main(["import-gan", str(src), "--out", str(out), "--w-avg-samples", "64"]) == 0
    G = load_generator(out)  # rebuilt from the file alone
    _, extra = read_generator_metadata(out)
    assert extra["imported_from"] == "rosinality/stylegan2-pytorch" and extra["source_arch"]["size"] == 16
    z = torch.randn(1, STYLE_DIM, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = reference_forward(sd16, z)
        assert (G(z, noise_mode="const") - ref).abs().max() < 1e-3 * ref.abs().max()
    # a broken source: exit 2 with the file and key named, and nothing written
    bad, out2 = tmp_path / "bad.pt", tmp_path / "bad.safetensors"
    torch.save({"g_ema": {k: v for k, v in sd16.items() if k != "style.2.bias"}}, bad)
    capsys.readouterr()
    assert main(["import-gan", str(bad), "--out", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "style.2.bias" in err and not out2.exists()
    assert main(["import-gan", str(src), "--out", str(out)]) == 2  # no silent overwrite


# --- NVlabs stylegan2-ada-pytorch pickles (gan/import_nvlabs.py) ------------------------------
# A real pickle from NVlabs' code was checked by hand (same image to 4e-6); here the file
# layout is rebuilt without that code: persistent objects pickled as
# torch_utils.persistence._reconstruct_persistent_obj(meta) with nn.Module-like state dicts.


class _PersistentRecord:
    """Pickles exactly as an NVlabs @persistent_class instance does (class name + state)."""

    def __init__(self, class_name, state):
        self.meta = dict(type="class", version=6, module_src="raise SystemExit('pickled code ran')",
                         class_name=class_name, state=state)

    def __reduce__(self):
        import sys
        return (sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,))


def _nvlabs_tree(flat: dict, buffers: set, kwargs: dict):
    """Nested module records from flat NVlabs keys (parameters as nn.Parameter, as in the file)."""
    from collections import OrderedDict

    def node(prefix):
        names = {k[len(prefix):].split(".")[0] for k in flat if k.startswith(prefix)}
        params, bufs, mods = OrderedDict(), OrderedDict(), OrderedDict()
        for name in sorted(names):
            key = prefix + name
            if key in flat:
                (bufs if name in buffers else params)[name] = (
                    flat[key].clone() if name in buffers else torch.nn.Parameter(flat[key].clone(), False))
            else:
                mods[name] = node(key + ".")
        return _PersistentRecord("Module", {"training": False, "_parameters": params, "_buffers": bufs,
                                            "_non_persistent_buffers_set": set(), "_modules": mods})

    root = node("")
    root.meta["state"]["_init_kwargs"] = kwargs
    return root


def _write_nvlabs_pickle(path, entries: dict) -> None:
    import pickle
    import sys
    import types

    fake = types.ModuleType("torch_utils.persistence")  # only for pickling; never imported on load
    fake._reconstruct_persistent_obj = lambda meta: None
    fake._reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    fake._reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    package = types.ModuleType("torch_utils")
    package.persistence = fake
    saved = {name: sys.modules.get(name) for name in ("torch_utils", "torch_utils.persistence")}
    sys.modules.update({"torch_utils": package, "torch_utils.persistence": fake})
    try:
        with open(path, "wb") as f:
            pickle.dump(entries, f)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


@pytest.fixture(scope="module")
def nvlabs_case():
    from gan.networks import Generator, GeneratorConfig

    torch.manual_seed(4)
    G0 = Generator(GeneratorConfig(z_dim=8, w_dim=8, resolution=(16, 16), mapping_layers=2, channels=(16, 16, 8)))
    with torch.no_grad():
        for p in G0.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        G0.mapping.w_avg.normal_()
    ours = G0.state_dict()
    # NVlabs names written out from its training/networks.py, not from the importer's table
    flat = {"mapping.w_avg": ours["mapping.w_avg"], "synthesis.b4.const": ours["synthesis.const"][0]}
    for i in range(2):
        flat[f"mapping.fc{i}.weight"] = ours[f"mapping.layers.{i}.weight"]
        flat[f"mapping.fc{i}.bias"] = ours[f"mapping.layers.{i}.bias"]
    for level, res in enumerate((4, 8, 16)):
        for conv in ("conv1",) if res == 4 else ("conv0", "conv1"):
            src, dst = f"synthesis.levels.{level}.{conv}", f"synthesis.b{res}.{conv}"
            flat.update({f"{dst}.weight": ours[f"{src}.conv.weight"], f"{dst}.bias": ours[f"{src}.bias"],
                         f"{dst}.affine.weight": ours[f"{src}.conv.affine.weight"],
                         f"{dst}.affine.bias": ours[f"{src}.conv.affine.bias"],
                         f"{dst}.noise_strength": ours[f"{src}.noise_strength"],
                         f"{dst}.noise_const": ours[f"{src}.noise_const"][0, 0]})
        src, dst = f"synthesis.levels.{level}.torgb", f"synthesis.b{res}.torgb"
        flat.update({f"{dst}.weight": ours[f"{src}.conv.weight"], f"{dst}.bias": ours[f"{src}.bias"],
                     f"{dst}.affine.weight": ours[f"{src}.conv.affine.weight"],
                     f"{dst}.affine.bias": ours[f"{src}.conv.affine.bias"]})
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    for name in ("synthesis.b8.resample_filter", "synthesis.b8.conv0.resample_filter"):
        flat[name] = k[:, None] * k[None, :] / 64
    kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16,
              "mapping_kwargs": {"num_layers": 2}, "synthesis_kwargs": {"channel_base": 128}}
    return G0.eval(), flat, kwargs


def test_nvlabs_pickle_imports_every_tensor_without_running_code(nvlabs_case, tmp_path):
    from gan.import_nvlabs import import_nvlabs

    G0, flat, kwargs = nvlabs_case
    path = tmp_path / "network-snapshot-000100.pkl"
    tree = _nvlabs_tree(flat, {"w_avg", "noise_const", "resample_filter"}, kwargs)
    _write_nvlabs_pickle(path, {"G_ema": tree, "G": tree, "training_set_kwargs": {"resolution": 16}})
    G = import_nvlabs(path).generator
    for key, value in G0.state_dict().items():
        assert torch.equal(G.state_dict()[key], value), key
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(G(z, truncation_psi=0.5, noise_mode="const"), G0(z, truncation_psi=0.5, noise_mode="const"))
    # a leftover tensor (e.g. a resnet skip) is named, not dropped
    extra = {**flat, "synthesis.b8.skip.weight": torch.zeros(8, 16, 1, 1)}
    _write_nvlabs_pickle(path, {"G_ema": _nvlabs_tree(extra, {"w_avg", "noise_const"}, kwargs)})
    from gan.import_nvlabs import NVlabsImportError
    with pytest.raises(NVlabsImportError, match=r"synthesis\.b8\.skip\.weight"):
        import_nvlabs(path)


def test_nvlabs_loader_never_calls_pickled_globals(tmp_path):
    import pickle

    from gan.import_nvlabs import NVlabsImportError, import_nvlabs

    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the file if the global were resolved

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(NVlabsImportError, match="expected a network"):
        import_nvlabs(path)
    assert not marker.exists()

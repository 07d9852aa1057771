"""Translator networks and bundles: shapes at odd sizes, strength 0 = identity, round-trip."""
import json

import pytest
import torch

from translators.bundle import BundleError, load_bundle, save_bundle
from translators.networks import MultiscaleDiscriminator, TranslatorConfig, build_translator

TINY = dict(ngf=4, n_downsample=2, n_blocks=1, n_local_blocks=1, film_hidden=8)


def _perturb(model):
    """Random non-zero weights everywhere, so zero-initialised FiLM cannot hide a bug."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("kind", ["global", "local", "affine"])
@pytest.mark.parametrize("upsample", ["resize", "transposed"])
@pytest.mark.parametrize("size", [(17, 23), (32, 48), (31, 16)])
def test_generator_shapes_odd_sizes(kind, upsample, size):
    torch.manual_seed(0)
    g = build_translator(TranslatorConfig(kind=kind, upsample=upsample, block="separable", **TINY))
    x = torch.rand(2, 3, *size) * 2 - 1
    y = g(x, torch.tensor([0.3, 1.0]))
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize("size", [(17, 23), (40, 64)])
def test_discriminator_scales_and_features(size):
    d = MultiscaleDiscriminator(in_ch=7, ndf=4, n_layers=2, num_d=3)
    outs = d(torch.randn(2, 7, *size))
    assert len(outs) == 3
    assert all(len(feats) == 4 for feats in outs)  # 3 conv layers + prediction
    assert all(feats[-1].shape[:2] == (2, 1) for feats in outs)
    # coarser scales see smaller inputs, so their patch maps are smaller
    assert outs[0][-1].shape[-1] > outs[2][-1].shape[-1]
    with pytest.raises(ValueError, match="discriminator input"):
        d(torch.randn(2, 6, *size))


@pytest.mark.parametrize("kind", ["global", "local", "affine"])
def test_strength_zero_is_identity_and_strength_matters(kind):
    g = _perturb(build_translator(TranslatorConfig(kind=kind, **TINY)))
    x = torch.rand(3, 3, 21, 19) * 2 - 1
    y0 = g(x, 0.0)
    assert torch.allclose(y0, x, atol=1e-6)
    y1 = g(x, 1.0)
    assert (y1 - x).abs().mean() > 1e-2
    if kind == "affine":
        return  # the affine head needs residual output (checked below)
    # without residual output the net is free (pix2pixHD behaviour): s = 0 is not the input
    free = _perturb(build_translator(TranslatorConfig(kind=kind, residual=False, **TINY)))
    assert (free(x, 0.0) - x).abs().mean() > 1e-2


def test_bad_inputs_are_named():
    g = build_translator(TranslatorConfig(**TINY))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        g(torch.rand(1, 4, 16, 16), 0.5)
    with pytest.raises(ValueError, match="strength"):
        g(torch.rand(2, 3, 16, 16), torch.ones(3))


def test_default_config_is_small():
    n = sum(p.numel() for p in build_translator().parameters())
    # pix2pixHD's default GlobalGenerator has ~182M parameters; ours must stay tiny
    assert n < 2_000_000, n


def test_bundle_round_trip(tmp_path):
    g = _perturb(build_translator(TranslatorConfig(kind="local", **TINY)))
    cfg = {"attribute": "night", "resolution": [32, 32], "strength_range": [0.5, 3.0],
           "provenance": {"gan_sha256": "ab" * 32, "layers": [0, 1, 2]}}
    save_bundle(tmp_path / "night", g, cfg)
    assert sorted(p.name for p in (tmp_path / "night").iterdir()) == ["config.json", "model.safetensors"]
    loaded, lcfg = load_bundle(tmp_path / "night")
    assert lcfg["attribute"] == "night" and lcfg["architecture"]["kind"] == "local"
    assert lcfg["provenance"]["layers"] == [0, 1, 2] and lcfg["metrics"] == {}
    x = torch.rand(2, 3, 20, 28) * 2 - 1
    s = torch.tensor([0.2, 0.9])
    g.eval()
    assert torch.equal(g(x, s), loaded(x, s))


def test_bundle_errors_name_the_file(tmp_path):
    g = build_translator(TranslatorConfig(**TINY))
    cfg = {"attribute": "sunny", "resolution": [16, 16], "strength_range": [0.0, 2.0]}
    with pytest.raises(BundleError, match="config.json: missing"):
        load_bundle(tmp_path / "nothing")
    b = save_bundle(tmp_path / "sunny", g, cfg)
    (b / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BundleError, match="model.safetensors: not a readable"):
        load_bundle(b)
    # weights from a different architecture: strict loading refuses them
    save_bundle(b, build_translator(TranslatorConfig(**{**TINY, "ngf": 8})), cfg)
    conf = json.loads((b / "config.json").read_text())
    conf["architecture"]["ngf"] = 4
    (b / "config.json").write_text(json.dumps(conf))
    with pytest.raises(BundleError, match="do not match the architecture"):
        load_bundle(b)
    conf.pop("resolution")
    (b / "config.json").write_text(json.dumps(conf))
    with pytest.raises(BundleError, match=r"missing key\(s\) \['resolution'\]"):
        load_bundle(b)


def test_translators_package_never_imports_pipeline_or_gan():
    import ast
    from pathlib import Path

    import translators

    offenders = []
    for path in Path(translators.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("pipeline", "gan")]
    assert offenders == []


def test_affine_kind_applies_a_per_pixel_colour_matrix_and_offset():
    """kind='affine': the change is D x + b per pixel; a night-like y = 0.2 x - 0.8 (a
    multiplicative change) is one constant head output, exact at every pixel's detail."""
    g = build_translator(TranslatorConfig(kind="affine", **TINY))
    x = torch.rand(2, 3, 20, 28) * 2 - 1
    assert torch.equal(g(x, 1.0), x)  # zero-initialised head: starts as "do nothing"
    d, b = -0.8, -0.8  # (0.2 - 1) x and the offset, through tanh and max_delta
    bias = torch.zeros(12)
    bias[[0, 4, 8]] = torch.atanh(torch.tensor(d / g.cfg.max_delta))
    bias[9:] = torch.atanh(torch.tensor(b / g.cfg.max_delta))
    with torch.no_grad():
        g.head.bias.copy_(bias)
    assert torch.allclose(g(x, 1.0), (0.2 * x - 0.8).clamp(-1, 1), atol=1e-5)
    assert torch.allclose(g(x, 0.5), x + 0.5 * (-0.8 * x - 0.8), atol=1e-5)  # s scales the change
    with pytest.raises(ValueError, match="residual"):
        TranslatorConfig(kind="affine", residual=False)


def test_global_affine_fit_follows_an_edit_that_is_not_linear_in_strength():
    """A GAN edit at half the latent step can carry less than half the change: the global
    part is (s C0 + s^2 C1) [x; 1], and its least-squares fit recovers both matrices, so the
    translator is exact at every strength (a fit linear in s alone is not)."""
    g = build_translator(TranslatorConfig(kind="affine", global_affine=True, **TINY))
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(24, 3, 12, 16, generator=gen) * 1.6 - 0.8
    s = torch.rand(24, generator=gen)
    c0 = torch.randn(3, 4, generator=gen) * 0.1
    c1 = torch.randn(3, 4, generator=gen) * 0.3
    x1 = torch.cat([x, torch.ones_like(x[:, :1])], 1)
    y = x + torch.einsum("nij,njhw->nihw", s[:, None, None] * c0 + s[:, None, None] ** 2 * c1, x1)
    mse = g.fit_global_affine(x, y, s)
    assert mse < 1e-10 and torch.allclose(g.global_change[0], c0, atol=1e-4)
    assert torch.allclose(g.global_change[1], c1, atol=1e-4)
    with torch.no_grad():
        assert torch.allclose(g(x, s), y.clamp(-1, 1), atol=1e-4)
    with pytest.raises(ValueError, match="global_affine"):
        build_translator(TranslatorConfig(kind="affine", **TINY)).fit_global_affine(x, y, s)
    # pairs all at s = 1 (the oracle translator's true pairs): C0 and C1 are not separable, the
    # fit is still exact there (a rank-revealing solve, not garbage from a singular system)
    one = torch.ones(24)
    y1 = x + torch.einsum("ij,njhw->nihw", c0 + c1, x1)
    assert g.fit_global_affine(x, y1, one) < 1e-10
    with torch.no_grad():
        assert torch.allclose(g(x, 1.0), y1.clamp(-1, 1), atol=1e-4)

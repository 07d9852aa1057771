"""Generator/discriminator shapes, W/W+ equivalence, truncation, checkpoint round-trip, and the
published maths checked against an independent reference (grouped conv + explicit upfirdn)."""
import math

import pytest
import torch
import torch.nn.functional as F

from gan.checkpoint import CheckpointError, file_sha256, load_generator, save_generator
from gan.networks import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig



def tiny_cfg(res=(32, 32), **kw):
    return GeneratorConfig(z_dim=16, w_dim=16, resolution=res, mapping_layers=2,
                           channel_base=128, channel_max=8, **kw)


@pytest.mark.parametrize("res", [(16, 16), (32, 64), (64, 32), (16, 64)])
def test_shapes_for_resolutions_and_aspects(res):
    torch.manual_seed(0)
    G = Generator(tiny_cfg(res))
    D = Discriminator(DiscriminatorConfig(resolution=res, channel_base=128, channel_max=8))
    z = torch.randn(4, 16)
    img = G(z)
    assert img.shape == (4, 3, *res)
    assert G.num_ws == 2 * int(math.log2(min(res))) - 2
    assert D(img).shape == (4, 1)
    assert torch.isfinite(img).all()


def test_bad_shapes_raise_clear_errors():
    G = Generator(tiny_cfg())
    with pytest.raises(ValueError, match="synthesis ws"):
        G.synthesis(torch.randn(2, G.num_ws + 1, 16))
    with pytest.raises(ValueError, match="power of 2"):
        tiny_cfg((48, 48))


def test_w_and_wplus_equivalent_when_all_rows_equal():
    torch.manual_seed(1)
    G = Generator(tiny_cfg((32, 64)))
    z = torch.randn(3, 16)
    w = G.mapping(z)
    a = G(z, noise_mode="const")
    b = G.synthesis(w[:, None, :].expand(-1, G.num_ws, -1).contiguous(), noise_mode="const")
    assert torch.equal(a, b)
    # And a different row on one layer does change the image (the test can fail).
    ws = G.broadcast(w)
    ws[:, 3] = G.mapping(torch.randn(3, 16))
    assert (G.synthesis(ws, noise_mode="const") - a).abs().max() > 1e-4


def test_truncation_zero_gives_w_avg_image():
    torch.manual_seed(2)
    G = Generator(tiny_cfg())
    G.mapping.w_avg.copy_(torch.randn(16))
    imgs = G(torch.randn(4, 16), truncation_psi=0.0, noise_mode="const")
    ref = G.synthesis(G.broadcast(G.w_avg[None]), noise_mode="const")
    assert torch.allclose(imgs, ref.expand_as(imgs), rtol=1e-5, atol=1e-4)
    assert (G(torch.randn(4, 16), noise_mode="const") - ref).abs().max() > 1e-3


def test_noise_modes():
    torch.manual_seed(3)
    G = Generator(tiny_cfg())
    for p in G.parameters():
        if p.ndim == 0:  # noise strengths start at 0; make noise visible
            p.data.fill_(0.5)
    z = torch.randn(2, 16)
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="none"), G(z, noise_mode="const"))


def test_checkpoint_round_trip_from_file_alone(tmp_path):
    torch.manual_seed(4)
    G = Generator(tiny_cfg((32, 64)))
    G.mapping.w_avg.normal_()
    path = save_generator(G, tmp_path / "g.safetensors", extra={"step": 7})
    H = load_generator(path)
    assert H.cfg == G.cfg
    z = torch.randn(2, 16)
    assert torch.equal(G(z, 0.7, noise_mode="const"), H(z, 0.7, noise_mode="const"))
    assert len(file_sha256(path)) == 64
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_generator(tmp_path / "junk.safetensors")


# ---- independent reference of the published maths (per-sample weights, explicit upfirdn) ----

def ref_upfirdn_up2(x, k2d, pad0, pad1):
    """Zero-insertion by 2, pad (pad0, pad1), correlate with the flipped kernel."""
    n, c, h, w = x.shape
    up = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, (pad0, pad1, pad0, pad1))
    kern = torch.flip(k2d, [0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(up, kern, groups=c)


def ref_modconv(x, w, layer, demod=True, upsample=False):
    conv = layer
    n, cin, h, wd = x.shape
    a = conv.affine
    s = F.linear(w, a.weight * a.scale, a.bias * a.lr_mul)  # [n, cin]
    weight = conv.scale * conv.weight[None] * s[:, None, :, None, None]  # [n, out, in, k, k]
    if demod:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)[:, :, None, None, None]
    cout, k = weight.shape[1], weight.shape[-1]
    xin = x.reshape(1, n * cin, h, wd)
    if upsample:
        wt = weight.transpose(1, 2).reshape(n * cin, cout, k, k)
        out = F.conv_transpose2d(xin, wt, stride=2, groups=n).view(n, cout, 2 * h + 1, 2 * wd + 1)
        kern = torch.tensor([1., 3., 3., 1.])
        kern = kern[:, None] * kern[None]
        kern = kern / kern.sum() * 4
        out = F.pad(out, (1, 1, 1, 1))
        return F.conv2d(out, torch.flip(kern, [0, 1])[None, None].repeat(cout, 1, 1, 1), groups=cout)
    out = F.conv2d(xin, weight.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
    return out.view(n, cout, h, wd)


def test_synthesis_matches_independent_reference():
    torch.manual_seed(5)
    G = Generator(tiny_cfg((16, 32)))
    for p in G.parameters():  # non-default biases / noise so every term is exercised
        if p.ndim <= 1:
            p.data.normal_(0, 0.3)
    ws = torch.randn(2, G.num_ws, 16)
    syn = G.synthesis
    kern = torch.tensor([1., 3., 3., 1.])
    k2d = kern[:, None] * kern[None]
    k2d = k2d / k2d.sum() * 4
    x = syn.const.expand(2, -1, -1, -1)
    rgb = None
    for level in syn.levels:
        idx = level.ws_indices()
        names = ["conv0", "conv1"] if level.level else ["conv1"]
        for name in names:
            L = getattr(level, name)
            x = ref_modconv(x, ws[:, idx[name]], L.conv, upsample=(name == "conv0"))
            x = x + L.noise_strength * L.noise_const
            x = F.leaky_relu(x + L.bias[None, :, None, None], 0.2) * math.sqrt(2)
        y = ref_modconv(x, ws[:, idx["torgb"]], level.torgb.conv, demod=False) + level.torgb.bias[None, :, None, None]
        rgb = y if rgb is None else ref_upfirdn_up2(rgb, k2d, 2, 1) + y
    ours = G.synthesis(ws, noise_mode="const")
    assert ours.shape == rgb.shape
    assert torch.allclose(ours, rgb, atol=1e-4), (ours - rgb).abs().max()


def test_blur_as_shifted_sums_equals_the_depthwise_convolution(monkeypatch):
    """On a GPU the resampling blur runs as separable sums of shifted slices (2.1x per training
    step on an H200: cuDNN's depthwise kernels were 34% of the step); on the CPU as a depthwise
    convolution. Both must be the same filter, at every call site."""
    import gan.networks as N

    x = torch.randn(2, 5, 9, 13, generator=torch.Generator().manual_seed(0))
    cfg = GeneratorConfig(resolution=(16, 32), z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    D = Discriminator(DiscriminatorConfig(resolution=(16, 32), channel_base=128, channel_max=16)).eval()
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
    out = {}
    for impl in ("conv", "taps"):
        monkeypatch.setattr(N, "BLUR_IMPL", impl)
        with torch.no_grad():
            img = G(z, noise_mode="const")
            out[impl] = (N.blur2d(x, (1, 1), gain=4.0), N.blur2d(x, (2, 1)), N.upsample2d(x), img, D(img))
    for a, b in zip(out["conv"], out["taps"]):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert out["conv"][2].shape == (2, 5, 18, 26) and out["conv"][0].shape == (2, 5, 8, 12)
    assert not torch.allclose(out["conv"][0], x[..., :8, :12])  # it does filter
    monkeypatch.setattr(N, "BLUR_IMPL", "auto")
    assert N._blur_by_conv(x) and not N._blur_by_conv(x.to("meta"))  # CPU: conv; any other device: taps

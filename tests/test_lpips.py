"""LPIPS from local files (gan/lpips.py): the published computation on random weights in the
published file formats, checked against torchvision's own backbone and (where installed)
the lpips package; bad files are named; PPL and eval-gan use it."""
import json

import pytest
import torch
import torch.nn.functional as F

from gan.lpips import LPIPSError, load_lpips

WIDTHS = {"alexnet": (64, 192, 384, 256, 256), "vgg16": (64, 128, 256, 512, 512)}


def lin_file(path, arch, seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(WIDTHS[arch])},
               path)
    return path


def tv_features(arch):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    if arch == "alexnet":
        return torchvision.models.alexnet(weights=None).features
    from torchvision.models.vgg import cfgs, make_layers  # VGG16's features without its 120M-weight classifier

    return make_layers(cfgs["D"])


def backbone_file(path, arch, classifier=True):
    sd = {f"features.{k}": v for k, v in tv_features(arch).state_dict().items()}
    if classifier:  # torchvision's files hold the classifier too; it is ignored
        sd["classifier.1.weight"] = torch.zeros(4, 9216 if arch == "alexnet" else 25088)
    torch.save(sd, path)
    return path


def images(n=3, size=64, seed=2):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    return a, (a + 0.3 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)


def by_hand(features, taps, lins, a, b):
    """LPIPS v0.1 written out: scale, torchvision's layers up to each tapped ReLU, unit channels, lin, mean, sum."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    xa, xb, total, start = (a - shift) / scale, (b - shift) / scale, 0, 0
    for end, w in zip(taps, lins):
        for i in range(start, end):
            xa, xb = features[i](xa), features[i](xb)
        start = end
        na = xa / (xa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = xb / (xb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + F.conv2d((na - nb) ** 2, w).mean(dim=(1, 2, 3))
    return total


@pytest.mark.parametrize("arch,taps", [("alexnet", (2, 5, 8, 10, 12)), ("vgg16", (4, 9, 16, 23, 30))])
def test_lpips_matches_the_computation_on_torchvisions_backbone(tmp_path, arch, taps):
    lin = lin_file(tmp_path / "lin.pth", arch)
    model = load_lpips(lin, backbone_file(tmp_path / "net.pth", arch))
    assert model.arch == arch  # told apart by the linear layers' widths
    a, b = images()
    with torch.no_grad():
        d = model(a, b)
        ref = by_hand(tv_features(arch).eval(), taps, list(torch.load(lin, weights_only=True).values()), a, b)
        assert d.shape == (3,) and (d > 0).all()
        assert torch.allclose(d, ref, rtol=1e-5, atol=1e-7)
        assert torch.allclose(model(a, a), torch.zeros(3), atol=1e-7)
        assert torch.allclose(model(b, a), d, rtol=1e-5)
        near = model(a, (a + 0.05 * (b - a)))
        assert (near < d).all()  # a smaller change is a smaller distance
        assert torch.allclose(model(a[:1], b[:1]), d[:1], rtol=1e-5)  # pairs are independent of the batch


def test_lpips_weighs_channels_by_its_linear_layers(tmp_path):
    net = backbone_file(tmp_path / "net.pth", "alexnet", classifier=False)  # features only: also accepted
    a, b = images()
    base = load_lpips(lin_file(tmp_path / "lin.pth", "alexnet"), net)(a, b)
    sd = torch.load(tmp_path / "lin.pth", weights_only=True)
    torch.save({k: (v * 2 if k.startswith("lin2") else v) for k, v in sd.items()}, tmp_path / "lin2x.pth")
    doubled = load_lpips(tmp_path / "lin2x.pth", net)(a, b)
    assert (doubled > base).all()
    torch.save({k: torch.zeros_like(v) for k, v in sd.items()}, tmp_path / "zero.pth")
    assert torch.equal(load_lpips(tmp_path / "zero.pth", net)(a, b), torch.zeros(3))


def test_lpips_matches_the_lpips_package(tmp_path):
    lpips = pytest.importorskip("lpips")  # 0.1.4; constructed so that nothing is downloaded
    for arch, net in (("alexnet", "alex"), ("vgg16", "vgg")):
        ours = load_lpips(lin_file(tmp_path / f"{net}.pth", arch), backbone_file(tmp_path / f"{arch}.pth", arch))
        # Random backbone (pnet_rand) and no packaged lin weights: ours are loaded from the same file.
        ref = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True, verbose=False)
        lin_sd = torch.load(tmp_path / f"{net}.pth", weights_only=True)
        assert not ref.load_state_dict(lin_sd, strict=False).unexpected_keys
        assert all(torch.equal(ref.state_dict()[k], v) for k, v in lin_sd.items())
        feats = tv_features(arch)
        for i in range(1, 6):
            for name, m in getattr(ref.net, f"slice{i}").named_children():
                m.load_state_dict(feats[int(name)].state_dict())
        a, b = images()
        with torch.no_grad():
            assert (ref.eval()(a, b).flatten() - ours(a, b)).abs().max() <= 1e-5


def test_bad_lpips_files_are_named(tmp_path):
    lin = lin_file(tmp_path / "lin.pth", "alexnet")
    net = backbone_file(tmp_path / "alexnet.pth", "alexnet", classifier=False)
    with pytest.raises(LPIPSError, match="nope.pth: no such file"):
        load_lpips(tmp_path / "nope.pth", net)
    with pytest.raises(LPIPSError, match="alexnet.pth: no 'lin0.model.1.weight'.*swap"):
        load_lpips(net, lin)
    with pytest.raises(LPIPSError, match="vgg16.pth: not a torchvision alexnet state dict.*missing features.0.weight"):
        torch.save({"features.1.weight": torch.zeros(1)}, tmp_path / "vgg16.pth")
        load_lpips(lin, tmp_path / "vgg16.pth")
    sd = torch.load(net, weights_only=True)
    sd["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    torch.save(sd, tmp_path / "bent.pth")
    with pytest.raises(LPIPSError, match=r"bent.pth: 'features.3.weight' has shape \(192, 64, 3, 3\)"):
        load_lpips(lin, tmp_path / "bent.pth")
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, 7, 1, 1) for k in range(5)}, tmp_path / "odd.pth")
    with pytest.raises(LPIPSError, match="odd.pth: stage widths"):
        load_lpips(tmp_path / "odd.pth", net)
    (tmp_path / "text.pth").write_text("not a torch file")
    with pytest.raises(LPIPSError, match="text.pth: not a state dict"):
        load_lpips(lin, tmp_path / "text.pth")


def generator32(ignore_w):
    from gan.networks import Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(32, 32), mapping_layers=2, channel_base=64,
                                  channel_max=8)).eval()
    if ignore_w:  # every style = its bias: the image no longer depends on w (const noise)
        for m in G.modules():
            if hasattr(m, "affine"):
                m.affine.weight.data.zero_()
    return G


def test_ppl_with_lpips_is_zero_when_the_output_ignores_w(tmp_path):
    from gan.metrics import perceptual_path_length

    model = load_lpips(lin_file(tmp_path / "lin.pth", "alexnet"), backbone_file(tmp_path / "a.pth", "alexnet"))
    flat = perceptual_path_length(generator32(True), model, n=8, batch=8)
    real = perceptual_path_length(generator32(False), model, n=8, batch=8)
    assert flat["ppl"] == pytest.approx(0.0, abs=1e-6) and real["ppl"] > 1.0
    with pytest.raises(LPIPSError, match="at least 31 px"):
        model(*images(size=16))


def test_eval_gan_ppl_with_lpips_and_clear_errors(tmp_path, capsys):
    from gan.checkpoint import save_generator
    from pipeline.commands import eval_gan
    from pipeline.errors import UserError
    ckpt = str(save_generator(generator32(False), tmp_path / "G.safetensors"))
    lin = str(lin_file(tmp_path / "alex.pth", "alexnet"))
    net = str(backbone_file(tmp_path / "alexnet.pth", "alexnet"))
    base = ["--gan", ckpt, "--no-swd", "--ppl", "--ppl-n", "8", "--device", "cpu"]
    out = tmp_path / "m.json"
    assert eval_gan.main(base + ["--lpips-weights", lin, "--lpips-backbone", net, "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["ppl"] > 0 and r["ppl_distance"]["arch"] == "lpips-alexnet"
    assert r["ppl_distance"]["weights"] == lin and len(r["ppl_distance"]["backbone_sha256"]) == 64
    assert "PPL (W, end, eps 1e-4, LPIPS (alexnet))" in capsys.readouterr().out
    with pytest.raises(UserError, match="go together"):
        eval_gan.main(base + ["--lpips-weights", lin])
    with pytest.raises(UserError, match="missing.pth: no such file"):
        eval_gan.main(base + ["--lpips-weights", lin, "--lpips-backbone", str(tmp_path / "missing.pth")])
    with pytest.raises(UserError, match="add --ppl"):
        eval_gan.main(["--gan", ckpt, "--lpips-weights", lin, "--lpips-backbone", net])

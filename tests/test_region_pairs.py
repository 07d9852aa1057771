"""Region-aware pairs (`photoedit pairs --region CLASS --lse FILE`): the edit kept to a class's LSE mask."""
import json

import numpy as np
import pytest
import torch

from gan.checkpoint import save_generator
from pipeline.cli import main
from pipeline.semantics.lse import ExtractorConfig, SemanticExtractor, sample_with_features, save_extractor
from pipeline.semantics.pairs import PairShardDataset, RegionMask, render_pairs
from tests.test_pairs import tiny_boundary, tiny_gan

LABELS = {0: "ground", 1: "bright"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def unit_extractor(G):
    """A linear extractor whose class 'bright' is 'unit 0 of the last level above its median' (sharp)."""
    _, feats = sample_with_features(G, range(16))
    level = feats[-1][:, 0]
    cfg = ExtractorConfig(kind="linear", level_channels=[f.shape[1] for f in feats], num_classes=2,
                          image_size=list(G.resolution))
    ext = SemanticExtractor(cfg)
    with torch.no_grad():
        for head in ext.heads:
            head.weight.zero_()
            head.bias.zero_()
        scale = 20.0 / float(level.std())
        ext.heads[-1].weight[1, 0] = scale
        ext.heads[-1].bias[1] = -scale * float(level.median())
    return ext.eval().requires_grad_(False)


def test_region_pairs_change_only_inside_the_mask():
    G, b = tiny_gan(), tiny_boundary()
    region = RegionMask(unit_extractor(G), LABELS, ["bright"])
    seeds, a = list(range(20, 28)), torch.full((8,), 3.0)
    x, y = render_pairs(G, b, seeds, a)
    xr, yr = render_pairs(G, b, seeds, a, region=region)
    assert torch.equal(x, xr)  # the original is never touched
    z = G.broadcast(G.mapping(torch.from_numpy(np.stack([np.random.RandomState(s).randn(16) for s in seeds])).float(),
                              truncation_psi=0.8))
    from pipeline.semantics.editing import edit_ws

    with torch.no_grad():
        _, fx = G.synthesis(z, noise_mode="const", return_features=True)
        _, fy = G.synthesis(edit_ws(z, b, a), noise_mode="const", return_features=True)
    m = torch.maximum(region.mask(fx), region.mask(fy))[:, 0]  # [N, H, W]
    inside, outside = m > 0.99, m < 0.01
    assert inside.float().mean() > 0.1 and outside.float().mean() > 0.1  # both parts exist
    plain = (y - x).abs().mean(1)
    kept = (yr - xr).abs().mean(1)
    assert plain[outside].mean() > 0.01  # the plain edit changes the outside ...
    assert kept[outside].mean() < 0.02 * plain[outside].mean()  # ... the region-aware one does not
    assert torch.allclose(kept[inside], plain[inside], atol=0.02)  # and inside it is the same edit
    locality_plain = plain[outside].mean() / plain[inside].mean()
    locality_region = kept[outside].mean() / kept[inside].mean()
    assert locality_region < 0.05 * locality_plain


def test_region_mask_refuses_unknown_classes_and_other_generators(tmp_path):
    G = tiny_gan()
    ext = unit_extractor(G)
    with pytest.raises(Exception, match="trees.*not a class"):
        RegionMask(ext, LABELS, ["trees"])
    save_extractor(ext, tmp_path / "lse.safetensors", LABELS, {})
    assert RegionMask.load(tmp_path / "lse.safetensors", ["bright"], G).ids == [1]
    from gan.networks import Generator, GeneratorConfig

    other = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 32), mapping_layers=2,
                                      channels=(8, 8, 8)))
    with pytest.raises(Exception, match="run `photoedit lse` on this generator"):
        RegionMask.load(tmp_path / "lse.safetensors", ["bright"], other)


def test_pairs_command_with_region(tmp_path, capsys):
    G, b = tiny_gan(), tiny_boundary()
    save_generator(G, tmp_path / "G.safetensors")
    b.save(tmp_path / "b.npz")
    save_extractor(unit_extractor(G), tmp_path / "lse.safetensors", LABELS, {})
    base = ["pairs", "--gan", str(tmp_path / "G.safetensors"), "--boundary", str(tmp_path / "b.npz"), "--n", "4",
            "--strength-range", "3,3", "--device", "cpu"]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--out", str(tmp_path / "sky"), "--region", "bright", "--lse",
                        str(tmp_path / "lse.safetensors")]) == 0
    assert "edit kept to bright" in capsys.readouterr().out
    m = json.loads((tmp_path / "sky" / "manifest.json").read_text())
    assert m["region"] == {"classes": ["bright"], "lse": str(tmp_path / "lse.safetensors")}
    plain, sky = PairShardDataset(tmp_path / "plain"), PairShardDataset(tmp_path / "sky")
    for i in range(4):
        assert torch.equal(plain[i][0], sky[i][0])
        assert (sky[i][1] - sky[i][0]).abs().mean() < (plain[i][1] - plain[i][0]).abs().mean()
    assert main(base + ["--out", str(tmp_path / "x"), "--region", "bright"]) == 2
    assert "go together" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "y"), "--region", "trees", "--lse",
                        str(tmp_path / "lse.safetensors")]) == 2
    assert "not a class" in capsys.readouterr().err

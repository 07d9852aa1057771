"""Layer-wise re-scoring picks the planted layer; SeFa finds planted directions; CLI round trips."""
import json

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.semantics.boundary import LinearBoundary
from pipeline.semantics.directions import sefa
from pipeline.semantics.rescore import RescoreConfig, apply_layers, parse_groups, rescore, write_table



class ToyG(nn.Module):
    """Brightness is read from W+ row 2 along `d`, redness from row 0 along `e`; other rows do nothing."""

    z_dim = w_dim = 8
    num_ws = 5

    def __init__(self, d, e):
        super().__init__()
        self.d, self.e = torch.tensor(d, dtype=torch.float32), torch.tensor(e, dtype=torch.float32)

    def mapping(self, z, truncation_psi=1.0):
        return z

    def synthesis(self, ws, noise_mode="const"):
        bright = torch.tanh(ws[:, 2] @ self.d / 2)[:, None, None, None]
        red = torch.tanh(ws[:, 0] @ self.e / 2)[:, None, None]
        img = bright.expand(-1, 3, 8, 8).clone()
        img[:, 0] = (img[:, 0] + 0.5 * red).clamp(-1, 1)
        return img


class ToyPredictor:
    name = "toy"
    attributes = ["bright", "red"]

    def score(self, images):
        return {"bright": images.mean(dim=(1, 2, 3)).numpy(), "red": (images[:, 0] - images[:, 1]).mean(dim=(1, 2)).numpy()}


def unit(v):
    return v / np.linalg.norm(v)


def test_rescore_picks_the_planted_layer(tmp_path):
    rng = np.random.default_rng(0)
    d, e = unit(rng.standard_normal(8)), unit(rng.standard_normal(8))
    G = ToyG(d, e)
    b = LinearBoundary(d, 0.0, [], {"attribute": "bright"})
    cfg = RescoreConfig(n=64, distance=2.0, batch=32)
    result = rescore(G, b, {"toy": ToyPredictor()}, cfg, progress=False)
    assert result.chosen_layers == [2]
    bright = result.table["bright"]
    assert bright[2] > 0.2 and np.abs(np.delete(bright, 2)).max() < 1e-6
    # the brightness boundary barely changes redness (mean positive change is small)
    assert result.table["red"].max() < bright[2]
    updated = apply_layers(b, result, cfg)
    assert updated.layers == [2] and updated.meta["rescore"]["chosen_layers"] == [2]
    every = apply_layers(b, result, RescoreConfig(n=64, distance=2.0, batch=32, edit_layers="all"))
    assert every.layers == list(range(G.num_ws)) and every.meta["rescore"]["chosen_layers"] == [2]
    assert every.meta["rescore"]["edit_layers"] == "all"
    listed = apply_layers(b, result, RescoreConfig(n=64, distance=2.0, batch=32, edit_layers=[4, 1, 1]))
    assert listed.layers == [1, 4] and listed.meta["rescore"]["edit_layers"] == [1, 4]
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="W\\+ layers are 0..4"):
        apply_layers(b, result, RescoreConfig(n=64, distance=2.0, batch=32, edit_layers=[3, 5]))
    paths = write_table(result, tmp_path, "rescore_bright")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert tmp_path.joinpath("rescore_bright.csv").read_text().splitlines()[3].startswith("2,")


def test_rescore_groups_and_per_layer_boundaries():
    assert parse_groups("each", 3) == [[0], [1], [2]]
    assert parse_groups("pairs", 5) == [[0, 1], [2, 3], [4]]
    assert parse_groups("0-1,2-4", 5) == [[0, 1], [2, 3, 4]]
    rng = np.random.default_rng(1)
    d, e = unit(rng.standard_normal(8)), unit(rng.standard_normal(8))
    # per-layer normals on rows 0 and 2: the red row 0 uses e, row 2 uses d
    b = LinearBoundary(np.stack([e, d]), np.zeros(2), [0, 2], {"attribute": "red"})
    result = rescore(ToyG(d, e), b, {"toy": ToyPredictor()}, RescoreConfig(n=32, batch=32), progress=False)
    assert result.groups == [[0], [2]] and result.chosen_layers == [0]
    updated = apply_layers(b, result, RescoreConfig())
    np.testing.assert_allclose(updated.normal, e[None].astype(np.float32))
    every = apply_layers(b, result, RescoreConfig(edit_layers="all"))  # per-layer: every row it has
    assert every.layers == [0, 2] and np.allclose(every.normal, b.normal)
    listed = apply_layers(b, result, RescoreConfig(edit_layers=[2]))  # per-layer: the listed rows of its normal
    assert listed.layers == [2] and listed.meta["rescore"]["edit_layers"] == [2]
    np.testing.assert_allclose(listed.normal, d[None].astype(np.float32))
    from pipeline.errors import UserError

    with pytest.raises(UserError, match=r"normals for layers \[0, 2\]"):
        apply_layers(b, result, RescoreConfig(edit_layers=[1]))


class ToyModulated:
    num_ws = 3

    def __init__(self, mats):
        self.mats = mats

    def modulation_weights(self):
        return [([i], torch.tensor(m)) for i, m in enumerate(self.mats)]


def test_sefa_recovers_the_dominant_direction_of_chosen_layers():
    rng = np.random.default_rng(2)
    u, v = unit(rng.standard_normal(16)), unit(rng.standard_normal(16))
    # each layer's channels mostly read one direction (u in layer 0, v in layers 1-2)
    mats = [np.outer(rng.standard_normal(12), u) * 3 + 0.1 * rng.standard_normal((12, 16)),
            np.outer(rng.standard_normal(12), v) * 3 + 0.1 * rng.standard_normal((12, 16)),
            np.outer(rng.standard_normal(12), v) * 3 + 0.1 * rng.standard_normal((12, 16))]
    G = ToyModulated(mats)
    values, dirs = sefa(G, [0])
    assert abs(dirs[0] @ u) > 0.99
    values, dirs = sefa(G, [1, 2])
    assert abs(dirs[0] @ v) > 0.99 and np.all(np.diff(values) <= 1e-9)
    np.testing.assert_allclose(dirs @ dirs.T, np.eye(16), atol=1e-8)


def test_directions_and_rescore_cli_on_a_tiny_generator(tmp_path, capsys):
    networks = pytest.importorskip("gan.networks")
    checkpoint = pytest.importorskip("gan.checkpoint")
    from pipeline.cli import main

    torch.manual_seed(0)
    G = networks.Generator(networks.GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                                    channels=(8, 8, 8)))
    ckpt = checkpoint.save_generator(G, tmp_path / "G.safetensors")
    assert main(["directions", "--gan", str(ckpt), "--layers", "0-1", "--k", "2", "--out", str(tmp_path / "d.npz")]) == 0
    meta = json.loads((tmp_path / "d_0.json").read_text())
    assert meta["method"] == "sefa" and meta["layers"] == [0, 1] and len(meta["gan_sha256"]) == 64
    # the top direction moves the chosen layers' styles more than the second one
    b0, b1 = LinearBoundary.load(tmp_path / "d_0.npz"), LinearBoundary.load(tmp_path / "d_1.npz")
    a = torch.cat([w for idx, w in G.modulation_weights() if idx[0] in (0, 1)]).double()
    a = a / a.norm(dim=1, keepdim=True)
    assert (a @ torch.tensor(b0.normal, dtype=torch.float64)).norm() >= (a @ torch.tensor(b1.normal, dtype=torch.float64)).norm()
    rc = main(["rescore", "--gan", str(ckpt), "--boundary", str(tmp_path / "d_0.npz"), "--attribute", "night",
               "--n", "8", "--set", "rescore.batch=8", "--groups", "pairs", "--out", str(tmp_path / "r")])
    assert rc == 0
    assert (tmp_path / "r" / "rescore_night.png").is_file()
    assert LinearBoundary.load(tmp_path / "d_0.npz").meta["rescore"]["attribute"] == "night"


def test_sample_score_boundary_chain_on_a_tiny_generator(tmp_path, capsys):
    """sample --no-images -> score (re-synthesised from w) -> boundary --samples, as the run stage calls them."""
    networks = pytest.importorskip("gan.networks")
    checkpoint = pytest.importorskip("gan.checkpoint")
    pytest.importorskip("gan.sampling")
    from pipeline.cli import available_commands, main

    if "sample" not in available_commands():
        pytest.skip("photoedit sample not available")
    torch.manual_seed(0)
    G = networks.Generator(networks.GeneratorConfig(z_dim=8, w_dim=8, resolution=(16, 16), mapping_layers=1,
                                                    channels=(8, 8, 8)))
    ckpt = checkpoint.save_generator(G, tmp_path / "G.safetensors")
    shard = tmp_path / "shard"
    assert main(["sample", "--gan", str(ckpt), "--n", "300", "--out", str(shard), "--no-images", "--noise", "const"]) == 0
    assert main(["score", "--samples", str(shard), "--batch", "100"]) == 0
    assert (shard / "scores_photometric.npz").is_file()
    assert main(["boundary", "--samples", str(shard), "--attribute", "night", "--set", "boundary.ratio=0.1",
                 "--out", str(tmp_path / "night.npz")]) == 0
    meta = json.loads((tmp_path / "night.json").read_text())
    assert meta["gan_sha256"] == checkpoint.file_sha256(ckpt) and meta["predictor"] == "photometric"
    assert meta["n_samples"] == 300 and 0.5 <= meta["val_accuracy"] <= 1.0


def test_edit_layers_from_a_preset_take_a_list_and_refuse_nonsense():
    from pipeline.config import ConfigError, load_section

    cfg = load_section(RescoreConfig, "rescore", "demo", ["rescore.edit_layers=[4,5,6]"])
    assert cfg.edit_layers == [4, 5, 6]
    assert load_section(RescoreConfig, "rescore", "demo", ["rescore.edit_layers=all"]).edit_layers == "all"
    for bad in ("rescore.edit_layers=some", "rescore.edit_layers=[]", "rescore.edit_layers=[-1]"):
        with pytest.raises(ConfigError):
            load_section(RescoreConfig, "rescore", "demo", [bad])

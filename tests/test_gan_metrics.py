"""PPL and ALS (gan/metrics.py): a generator that ignores w has PPL ~0, an exactly linear
attribute has ALS 1, and both metrics can fail (a real generator's PPL > 0; a bent or a
dead attribute scores lower)."""
import numpy as np
import pytest
import torch
from torch import nn

from gan.metrics import attribute_linearity, feature_distance, linearity_r2, perceptual_path_length, pixel_distance
from gan.networks import Generator, GeneratorConfig

GCFG = dict(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2, channel_base=64, channel_max=8)


class TinyEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.a = nn.Conv2d(3, 6, 3, 2, 1)
        self.b = nn.Conv2d(6, 8, 3, 2, 1)

    def forward(self, x):
        f = torch.relu(self.a(x))
        return [f, torch.relu(self.b(f))]


def generator(ignore_w: bool) -> Generator:
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(**GCFG)).eval()
    if ignore_w:  # every style = its bias: the image no longer depends on w (const noise)
        for m in G.modules():
            if hasattr(m, "affine"):
                m.affine.weight.data.zero_()
    return G


@pytest.mark.parametrize("distance", [pixel_distance, feature_distance(TinyEncoder())])
def test_ppl_is_zero_when_the_output_ignores_w(distance):
    flat = perceptual_path_length(generator(True), distance, n=16, batch=8)
    real = perceptual_path_length(generator(False), distance, n=16, batch=8)
    assert flat["ppl"] == pytest.approx(0.0, abs=1e-6)
    assert real["ppl"] > 1.0  # the same measurement on a generator that uses w
    full = perceptual_path_length(generator(False), distance, n=16, batch=8, sampling="full")
    assert full["ppl"] > 1.0 and full["sampling"] == "full" and full["n"] >= 14  # 1..99th percentile kept


class LinearToyGenerator:
    """mapping = identity, synthesis paints a flat image of value f(ws[:, 0] . d)."""

    z_dim = 4

    def __init__(self, f):
        self.f = f
        self.d = torch.tensor([1.0, 0.0, 0.0, 0.0])

    def mapping(self, z, truncation_psi=1.0):
        return z

    def broadcast(self, w):
        return w[:, None].repeat(1, 2, 1)

    def synthesis(self, ws, noise_mode="const"):
        v = self.f(ws[:, 0] @ self.d)
        return v[:, None, None, None].expand(-1, 3, 4, 4)


def mean_score(img):
    return img.mean(dim=(1, 2, 3)).numpy()


def along(direction):
    return lambda ws, s: ws + s * direction


def test_als_is_perfect_for_an_exactly_linear_attribute():
    d = torch.tensor([1.0, 0.0, 0.0, 0.0])
    linear = attribute_linearity(LinearToyGenerator(lambda t: 0.3 * t + 0.1), mean_score, along(d), n=12, batch=5)
    assert linear["als"] == pytest.approx(1.0, abs=1e-9)
    assert linear["slope"] == pytest.approx(0.3, rel=1e-5)
    bent = attribute_linearity(LinearToyGenerator(lambda t: torch.tanh(2 * t)), mean_score, along(d), n=12)
    assert bent["als"] < 0.9  # saturating edits are measurably less linear
    dead = attribute_linearity(LinearToyGenerator(lambda t: 0.3 * t), mean_score, along(torch.zeros(4)), n=12)
    assert dead["als"] == 0.0  # an edit that does not move the score cannot score well


def test_linearity_r2_rows():
    a = np.linspace(-3, 3, 7)
    rows = np.stack([2 * a + 1, a ** 2, np.zeros_like(a)])
    r2 = linearity_r2(a, rows)
    assert r2[0] == pytest.approx(1.0) and r2[1] == pytest.approx(0.0, abs=1e-12) and r2[2] == 0.0


def eval_gan_json(tmp_path, *flags):
    """(eval-gan's JSON, the checkpoint) for a tiny generator saved in tmp_path, on the CPU."""
    import json

    from gan.checkpoint import save_generator
    from pipeline.commands import eval_gan

    ckpt = save_generator(generator(False), tmp_path / "G.safetensors")
    out = tmp_path / "m.json"
    assert eval_gan.main(["--gan", str(ckpt), *flags, "--out", str(out), "--device", "cpu"]) == 0
    return json.loads(out.read_text()), ckpt


def test_eval_gan_reports_ppl_and_names_a_missing_encoder(tmp_path, capsys):
    from pipeline.commands import eval_gan
    from pipeline.errors import UserError

    result, ckpt = eval_gan_json(tmp_path, "--no-swd", "--ppl", "--ppl-n", "8")
    assert result["ppl"] > 0 and result["ppl_distance"] == "pixel_mse" and "swd_swd" not in result
    assert "PPL (W, end, eps 1e-4, pixel MSE)" in capsys.readouterr().out
    with pytest.raises(UserError, match="nope.*no such file"):
        eval_gan.main(["--gan", str(ckpt), "--no-swd", "--ppl", "--encoder", str(tmp_path / "nope"), "--device", "cpu"])


class BrightPredictor:
    """'bright' a probability (the image's mean, 0..1), 'level' a regression output."""
    attributes = ["bright", "level"]
    is_prob = np.array([True, False])

    def score(self, images):
        m = ((images.mean(dim=(1, 2, 3)) + 1) / 2).numpy()
        return {"bright": m, "level": 10 * m}


def test_coverage_counts_how_often_fakes_show_an_attribute_beside_the_reals():
    from pipeline.semantics.evaluate import attribute_coverage

    def images(n_bright, n):
        x = -0.8 * torch.ones(n, 3, 4, 8)  # dark: score 0.1
        x[:n_bright] = 0.8  # bright: score 0.9
        return x

    cov = attribute_coverage(BrightPredictor(), images(2, 16), images(8, 16))
    assert cov["bright"]["share_fake"] == pytest.approx(0.125) and cov["bright"]["share_real"] == pytest.approx(0.5)
    assert cov["bright"]["coverage"] == pytest.approx(0.25)
    assert "coverage" not in cov["level"] and cov["level"]["mean_real"] > cov["level"]["mean_fake"]
    assert attribute_coverage(BrightPredictor(), images(2, 16), images(0, 16))["bright"]["coverage"] is None


def test_eval_gan_coverage_alone_writes_a_row_per_attribute(tmp_path, capsys):
    from pipeline.world import ATTRIBUTES

    result, _ = eval_gan_json(tmp_path, "--no-swd", "--coverage", "--n", "8")
    assert set(result["coverage"]) == set(ATTRIBUTES) and "swd_swd" not in result
    assert all(0 <= r["share_real"] <= 1 for r in result["coverage"].values())
    assert "coverage (photometric; share scoring > 0.5" in capsys.readouterr().out

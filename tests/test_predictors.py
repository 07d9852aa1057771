"""Predictors: photometric against the world's ground truth and real photos; places365 in real file formats."""
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
from pipeline.predictors import get_predictor

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realphotos"


def flat(rgb, h=32, w=48):
    """A flat image of one sRGB colour as [1, 3, h, w] in [-1, 1]."""
    return (torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) * 2 - 1).expand(1, 3, h, w).clone()


def sky_street(sky, ground):
    x = torch.cat([flat(sky, 16, 48), flat(ground, 16, 48)], dim=2)
    return x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))


def test_photometric_orders_simple_scenes():
    p = get_predictor("photometric")
    assert p.attributes == ["sunny", "overcast", "night", "golden_hour", "foggy", "snowy"]
    night = p.score(sky_street((0.02, 0.02, 0.06), (0.05, 0.05, 0.05)))
    blue_day = p.score(sky_street((0.35, 0.6, 0.95), (0.45, 0.42, 0.4)))
    grey_day = p.score(sky_street((0.75, 0.75, 0.76), (0.4, 0.4, 0.4)))
    warm = p.score(sky_street((0.95, 0.6, 0.3), (0.6, 0.4, 0.25)))
    snow = p.score(sky_street((0.75, 0.75, 0.78), (0.93, 0.93, 0.95)))
    assert night["night"][0] > 0.9 > blue_day["night"][0]
    assert blue_day["sunny"][0] > grey_day["sunny"][0] and blue_day["sunny"][0] > night["sunny"][0]
    assert grey_day["overcast"][0] > blue_day["overcast"][0]
    assert warm["golden_hour"][0] > max(blue_day["golden_hour"][0], grey_day["golden_hour"][0])
    assert snow["snowy"][0] > grey_day["snowy"][0]
    for scores in (night, blue_day, grey_day, warm, snow):
        assert all(0 <= v[0] <= 1 for v in scores.values())


def test_photometric_any_size_and_shape_check():
    p = get_predictor("photometric")
    big = p.score(torch.zeros(2, 3, 600, 1000))
    small = p.score(torch.zeros(2, 3, 17, 9))
    assert big["night"].shape == (2,) and small["night"].shape == (2,)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        p.score(torch.zeros(3, 16, 16))


def test_photometric_rank_correlates_with_world_ground_truth():
    world = pytest.importorskip("pipeline.world")
    from scipy.stats import spearmanr

    images, records = world.render_batch(range(1_000_000_000, 1_000_000_064), size=(32, 32))
    x = torch.stack([world.image_to_tensor(im.copy()) for im in images])
    scores = get_predictor("photometric").score(x)
    rho = {a: spearmanr(scores[a], [r["attributes"][a] for r in records]).statistic for a in scores}
    # measured on 256 renders: 0.56 .. 0.78; 64 renders are noisier, so a lower bar
    assert all(v > 0.3 for v in rho.values()), rho
    assert rho["night"] > 0.5, rho


@pytest.mark.skipif(not (REAL / "MANIFEST.tsv").is_file(), reason="../shared/realphotos not present")
def test_photometric_on_real_photos_night_photo_is_the_night():
    from PIL import Image

    rows = [ln.split("\t") for ln in (REAL / "MANIFEST.tsv").read_text().splitlines()[1:] if ln.strip()]
    p = get_predictor("photometric")
    night = {}
    for row in rows:
        img = Image.open(REAL / row[0])
        img.draft("RGB", (400, 400))  # JPEG: decode at reduced size; statistics are global anyway
        img = img.convert("RGB")
        img.thumbnail((400, 400))
        rgb = np.asarray(img)
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        night[row[0]] = (p.score(x)["night"][0], "NIGHT" in row[6])
    best = max(night, key=lambda k: night[k][0])
    assert night[best][1], night
    # and it is not a close call
    assert sorted(v for v, _ in night.values())[-2] < 0.5


def write_places365_files(folder: Path, n_attr=5, seed=0):
    """Random weights in exactly the published formats (DataParallel keys, pre-0.4 BN buffers)."""
    from pipeline.predictors.places365 import WideResNet18

    torch.manual_seed(seed)
    net = WideResNet18()
    for m in net.modules():  # non-trivial BN statistics so eval-mode BN matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 40, "arch": "wideresnet18", "state_dict": state, "best_prec1": 54.6},
               folder / "wideresnet18_places365.pth.tar")
    np.save(folder / "W_sceneattribute_wideresnet18.npy",
            np.random.default_rng(seed).standard_normal((n_attr, 512)).astype(np.float32))
    names = ["sunny", "natural light", "foggy", "snow", "dry"][:n_attr]
    (folder / "labels_sunattribute.txt").write_text("\n".join(names) + "\n")
    return net, names


def test_places365_random_weights_match_an_independent_resnet(tmp_path):
    import torchvision

    net, names = write_places365_files(tmp_path)
    p = get_predictor("places365", weights_dir=tmp_path, batch=1)
    assert p.attributes == names
    x = torch.rand(2, 3, 40, 60) * 2 - 1
    scores = p.score(x)
    # Reference: torchvision's ResNet-18 (same parameter names) without its max-pool.
    ref = torchvision.models.resnet18(num_classes=365)
    ref.maxpool = torch.nn.Identity()
    ref.load_state_dict(net.state_dict())
    ref.fc = torch.nn.Identity()
    ref.eval()
    with torch.no_grad():
        feats = ref(p.preprocess(x))
    w = np.load(tmp_path / "W_sceneattribute_wideresnet18.npy")
    expected = feats.numpy() @ w.T
    got = np.stack([scores[n] for n in names], 1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert got.min() < 0  # raw scores, no sigmoid


def test_places365_missing_and_bad_files_are_named(tmp_path):
    with pytest.raises(UserError, match="wideresnet18_places365.pth.tar"):
        get_predictor("places365", weights_dir=tmp_path)
    write_places365_files(tmp_path)
    np.save(tmp_path / "W_sceneattribute_wideresnet18.npy", np.zeros((5, 256), np.float32))
    with pytest.raises(UserError, match="W_sceneattribute_wideresnet18.npy"):
        get_predictor("places365", weights_dir=tmp_path)
    with pytest.raises(UserError, match="unknown predictor"):
        get_predictor("nope")

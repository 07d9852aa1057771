"""Linear semantic extractor on a tiny generator: it recovers a label that is linear in the features."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics import lse as L


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                     channels=(16, 16, 8))).eval().requires_grad_(False)


def linear_label(feats, seed=1, classes=3):
    """Argmax of a fixed random 1x1 map of every level's features, upsampled and summed."""
    g = torch.Generator().manual_seed(seed)
    out = 0
    for f in feats:
        W = torch.randn(classes, f.shape[1], generator=g)
        out = out + F.interpolate(torch.einsum("kc,nchw->nkhw", W, f), size=(16, 16), mode="bilinear",
                                  align_corners=False)
    return out.argmax(1)


def test_features_match_the_generator_levels(tiny):
    images, feats = L.sample_with_features(tiny, range(3))
    assert images.shape == (3, 3, 16, 16)
    assert [tuple(f.shape) for f in feats] == [(3, 16, 4, 4), (3, 16, 8, 8), (3, 8, 16, 16)]
    again, _ = L.sample_with_features(tiny, [2])
    assert torch.allclose(again[0], images[2], atol=1e-4)  # a sample depends on its seed only


def test_lse_recovers_a_linear_label_from_16_samples(tiny):
    _, feats = L.sample_with_features(tiny, range(16))
    _, ev = L.sample_with_features(tiny, range(100, 132))
    y, y_ev = linear_label(feats), linear_label(ev)
    majority = np.bincount(y_ev.numpy().ravel(), minlength=3).max() / y_ev.numel() / 3  # mIoU of one class
    ext = L.fit_extractor(feats, y, 3, steps=150)
    miou, ious = L.extractor_iou(ext, ev, y_ev)
    # the same fit on labels of other samples (no relation to these features) as the control
    control = L.fit_extractor(feats, y[torch.randperm(16, generator=torch.Generator().manual_seed(0))], 3, steps=150)
    miou_control, _ = L.extractor_iou(control, ev, y_ev)
    assert miou > 0.6 and miou > majority + 0.3
    assert miou > miou_control + 0.2
    assert ious.shape == (3,)


def test_nonlinear_extractor_and_shapes(tiny):
    _, feats = L.sample_with_features(tiny, range(4))
    y = linear_label(feats)
    nse = L.fit_extractor(feats, y, 3, kind="nonlinear", steps=5, hidden=8)
    assert nse(feats).shape == (4, 3, 16, 16)
    with pytest.raises(ValueError, match="kind"):
        L.SemanticExtractor(L.ExtractorConfig(kind="quadratic", level_channels=[16], num_classes=3))
    with pytest.raises(ValueError, match="feature levels"):
        nse(feats[:2])


def test_save_load_round_trip(tiny, tmp_path):
    _, feats = L.sample_with_features(tiny, range(4))
    ext = L.fit_extractor(feats, linear_label(feats), 3, steps=5)
    L.save_extractor(ext, tmp_path / "lse.safetensors", {0: "a", 1: "b", 2: "c"}, {"k": 4})
    back, labels, prov = L.load_extractor(tmp_path / "lse.safetensors")
    assert labels == {0: "a", 1: "b", 2: "c"} and prov == {"k": 4}
    assert torch.equal(back(feats), ext(feats))
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        L.load_extractor(tmp_path / "bad.safetensors")


def test_lse_cli_writes_extractor_and_table(tiny, tmp_path, capsys):
    from gan.checkpoint import save_generator
    from pipeline.cli import main as cli
    from pipeline.semantics.segmenter import Segmenter, SegmenterConfig, save_segmenter

    save_generator(tiny, tmp_path / "G.safetensors")
    torch.manual_seed(0)
    save_segmenter(Segmenter(SegmenterConfig(num_classes=3, width=4)), {0: "a", 1: "b", 2: "c"},
                   tmp_path / "seg.safetensors")
    args = ["lse", "--gan", str(tmp_path / "G.safetensors"), "--segmenter", str(tmp_path / "seg.safetensors"),
            "--out", str(tmp_path / "lse.safetensors"), "--k", "2", "--steps", "3", "--eval", "4"]
    assert cli(args + ["--table", "1,all", "--all-k", "3", "--json", str(tmp_path / "t.json")]) == 0
    table = json.loads((tmp_path / "t.json").read_text())["table"]
    assert [(r["kind"], r["k"]) for r in table] == [("linear", 1), ("linear", 3), ("nonlinear", 1), ("nonlinear", 3)]
    _, _, prov = L.load_extractor(tmp_path / "lse.safetensors")
    assert prov["seeds"] == [0, 1] and len(prov["generator_sha256"]) == 64
    assert cli(args + ["--table", "1,x"]) == 2
    assert cli(args[:-6] + ["--segmenter", str(tmp_path / "none.safetensors")]) == 2
    assert "none.safetensors" in capsys.readouterr().err

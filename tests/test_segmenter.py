"""The small segmenter: it learns world label maps; labelled folders are read or refused with the file named."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.semantics import segmenter as S


@pytest.fixture(scope="module")
def world32():
    return S.world_data(40, (32, 32))


def test_loss_falls_and_beats_the_layout_prior(world32):
    images, masks, labels = world32
    net, losses = S.train_segmenter(images[:32], masks[:32], labels, S.SegmenterConfig(len(labels), width=8),
                                    S.SegmenterTrainConfig(steps=60, batch=8, lr=1e-2))
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:5])
    scores = S.evaluate_segmenter(net, images[:32], masks[:32], images[32:], masks[32:], len(labels))
    assert scores["miou"] > scores["baseline_miou"]
    assert len(scores["iou"]) == len(labels)


def test_iou_helpers():
    pred = np.array([[0, 0, 1, 1]])
    target = np.array([[0, 1, 1, S.IGNORE]])
    conf = S.confusion(pred, target, 3)
    assert conf.sum() == 3  # the ignored pixel is not counted
    ious = S.iou_per_class(conf)
    assert ious[0] == pytest.approx(0.5) and ious[1] == pytest.approx(0.5) and np.isnan(ious[2])
    assert S.mean_iou(pred, target, 3) == pytest.approx(0.5)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    net = S.Segmenter(S.SegmenterConfig(num_classes=4, width=4)).eval()
    S.save_segmenter(net, {0: "a", 1: "b", 2: "c", 3: "d"}, tmp_path / "s.safetensors", {"n": 3})
    back, labels = S.load_segmenter(tmp_path / "s.safetensors")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert labels == {0: "a", 1: "b", 2: "c", 3: "d"}
    assert torch.equal(back(x), net(x))
    with pytest.raises(ValueError, match="divisible by 4"):
        back(torch.zeros(1, 3, 15, 16))
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    with pytest.raises(S.SegmenterError, match="x.safetensors"):
        S.load_segmenter(tmp_path / "x.safetensors")


def write_folder(root, images, masks, labels):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, (im, mk) in enumerate(zip(images, masks)):
        Image.fromarray(im).save(root / "images" / f"{i:03d}.png")
        Image.fromarray(mk).save(root / "masks" / f"{i:03d}.png")
    (root / "labels.json").write_text(json.dumps({str(k): v for k, v in labels.items()}))


def test_folder_data_reads_and_refuses(tmp_path, world32):
    images, masks, labels = world32
    write_folder(tmp_path / "ok", images[:3], masks[:3], labels)
    im, mk, lab = S.folder_data(tmp_path / "ok")
    assert np.array_equal(im, images[:3]) and np.array_equal(mk, masks[:3]) and lab == labels
    im16, mk16, _ = S.folder_data(tmp_path / "ok", (16, 16))
    assert im16.shape == (3, 16, 16, 3) and set(np.unique(mk16)) <= set(np.unique(masks[:3]))

    bad = masks[:2].copy()
    bad[1, 0, 0] = 42
    write_folder(tmp_path / "bad", images[:2], bad, labels)
    with pytest.raises(S.SegmenterError, match=r"001\.png.*42"):
        S.folder_data(tmp_path / "bad")
    (tmp_path / "ok" / "masks" / "002.png").unlink()
    with pytest.raises(S.SegmenterError, match="002"):
        S.folder_data(tmp_path / "ok")
    (tmp_path / "ok" / "labels.json").unlink()
    with pytest.raises(S.SegmenterError, match="labels.json"):
        S.folder_data(tmp_path / "ok")


def test_cli_trains_on_a_folder(tmp_path, world32, capsys):
    from pipeline.cli import main as cli

    images, masks, labels = world32
    write_folder(tmp_path / "d", images[:6], masks[:6], labels)
    out = tmp_path / "seg.safetensors"
    assert cli(["train-segmenter", "--data", str(tmp_path / "d"), "--size", "32", "--steps", "3", "--batch", "2",
                "--width", "4", "--out", str(out)]) == 0
    net, lab = S.load_segmenter(out)
    assert lab == labels and net.cfg.width == 4
    assert "held-out mIoU" in capsys.readouterr().out
    assert cli(["train-segmenter", "--data", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert cli(["train-segmenter", "--size", "30", "--out", str(out)]) == 2

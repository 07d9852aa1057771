"""`photoedit sie` end to end on tiny files: outputs, scores, and clear refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics import lse as L
from tests.test_lse import linear_label


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from gan.checkpoint import save_generator
    from pipeline.semantics.segmenter import Segmenter, SegmenterConfig, save_segmenter

    d = tmp_path_factory.mktemp("sie_cli")
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                  channels=(16, 16, 8))).eval().requires_grad_(False)
    save_generator(G, d / "G.safetensors")
    _, feats = L.sample_with_features(G, range(16))
    ext = L.fit_extractor(feats, linear_label(feats), 3, steps=100)
    names = {0: "sky", 1: "building", 2: "road"}
    L.save_extractor(ext, d / "lse.safetensors", names, {})
    save_segmenter(Segmenter(SegmenterConfig(num_classes=3, width=4)).eval(), names, d / "seg.safetensors")
    mask = np.zeros((32, 32), np.uint8)  # twice the generator's size: resized
    mask[:16, :16] = 255
    Image.fromarray(mask).save(d / "mask.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(d / "empty.png")
    Image.fromarray(np.zeros((16, 24), np.uint8) + 255).save(d / "wide.png")
    (d / "junk.png").write_bytes(b"not a png")
    return d


def run(d, *extra):
    from pipeline.cli import main as cli

    return cli(["sie", "--gan", str(d / "G.safetensors"), "--lse", str(d / "lse.safetensors"), *map(str, extra)])


def test_sie_cli_writes_images_code_and_scores(files, tmp_path):
    out = tmp_path / "out"
    assert run(files, "--seed", 1, "--mask", files / "mask.png", "--to", "road", "--steps", 5,
               "--segmenter", files / "seg.safetensors", "--out", out) == 0
    for name in ("before.png", "after.png", "labels_before.png", "labels_after.png", "paint.png", "w_plus.npy"):
        assert (out / name).is_file(), name
    report = json.loads((out / "sie.json").read_text())
    assert report["classes"] == {"2": "road"} and len(report["loss"]) == 5
    assert report["scores_by_lse"]["region_pixels"] == 64
    assert set(report["scores_by_segmenter"]["region_iou"]) == {"road"}
    w = np.load(out / "w_plus.npy", allow_pickle=False)
    assert w.shape == (6, 16)
    # the written code is a valid start for the next edit, and a paint PNG works in place of mask + class
    paint = np.full((16, 16), 255, np.uint8)
    paint[8:, 8:] = 0
    Image.fromarray(paint).save(tmp_path / "paint.png")
    assert run(files, "--latent", out / "w_plus.npy", "--paint", tmp_path / "paint.png", "--steps", 2,
               "--out", tmp_path / "again") == 0
    assert json.loads((tmp_path / "again" / "sie.json").read_text())["classes"] == {"0": "sky"}


@pytest.mark.parametrize("extra, message", [
    (["--mask", "mask.png", "--to", "tree"], "class 'tree'"),
    (["--mask", "empty.png", "--to", "road"], "empty.png: the mask marks no pixel"),
    (["--mask", "wide.png", "--to", "road"], "wide.png: 24x16 pixels"),
    (["--mask", "junk.png", "--to", "road"], "junk.png: not a readable image"),
    (["--mask", "missing.png", "--to", "road"], "missing.png: no such file"),
    (["--mask", "mask.png"], "--mask needs --to"),
])
def test_sie_cli_refuses_bad_input_with_the_file_named(files, tmp_path, capsys, extra, message):
    extra = [str(files / e) if e.endswith(".png") else e for e in extra]
    assert run(files, "--seed", 1, *extra, "--out", tmp_path / "o") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

"""`photoedit scs` end to end on tiny files: painted and world layouts, outputs, clear refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.test_sie_cli import files  # noqa: F401  (the tiny generator, extractor and segmenter files)


def run(d, *extra):
    from pipeline.cli import main as cli

    return cli(["scs", "--gan", str(d / "G.safetensors"), "--lse", str(d / "lse.safetensors"), *map(str, extra)])


def test_scs_cli_follows_a_painted_layout(files, tmp_path):  # noqa: F811
    layout = np.zeros((16, 16), np.uint8)
    layout[8:] = 2
    layout[:, :4] = 255  # free
    Image.fromarray(layout).save(tmp_path / "layout.png")
    out = tmp_path / "out"
    assert run(files, "--layout", tmp_path / "layout.png", "--pool", 4, "--starts", 2, "--steps", 3,
               "--segmenter", files / "seg.safetensors", "--out", out) == 0
    for name in ("image.png", "start.png", "layout.png", "labels.png", "w_plus.npy"):
        assert (out / name).is_file(), name
    report = json.loads((out / "scs.json").read_text())
    assert len(report["starts"]) == 2 and report["chosen_seed"] in range(4)
    assert set(report["layout_miou_by_segmenter"]) == {"result", "start", "unconditioned_mean"}
    assert np.load(out / "w_plus.npy", allow_pickle=False).shape == (6, 16)


def test_scs_cli_world_layout_frees_unknown_classes(files, tmp_path, capsys):  # noqa: F811
    assert run(files, "--world-seed", 5, "--pool", 2, "--starts", 0, "--out", tmp_path / "w") == 0
    freed = json.loads((tmp_path / "w" / "scs.json").read_text())["layout"]["free_classes"]
    assert freed and not set(freed) & {"sky", "building", "road"}
    assert f"left free: {', '.join(freed)}" in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p), "this image is RGB"),
    (lambda p: Image.fromarray(np.full((16, 16), 7, np.uint8)).save(p), "class id(s) 7 not in 0..2"),
    (lambda p: Image.fromarray(np.full((16, 16), 255, np.uint8)).save(p), "every pixel is 255"),
])
def test_scs_cli_refuses_bad_layouts(files, tmp_path, capsys, make, message):  # noqa: F811
    make(tmp_path / "bad.png")
    assert run(files, "--layout", tmp_path / "bad.png", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and message in err
    assert not (tmp_path / "o").exists()

"""The demo translators installed with the package, and `photoedit install-models`."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from translators.registry import SHIPPED_MODELS

REAL = Path("../shared/realphotos")
# What ships (docs/BENCHMARKS.md #12, 7-9): the six bundles of the demo preset (translators with the global
# colour change).
DEMOS = ("sunny", "golden_hour", "night", "foggy", "snowy", "overcast")


def test_demo_bundles_ship_small_and_say_what_they_are(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # no user bundles hide the shipped ones
    monkeypatch.delenv("PHOTOEDIT_MODELS", raising=False)
    total = sum(f.stat().st_size for f in SHIPPED_MODELS.rglob("*") if f.is_file())
    assert total <= 40 * 2**20  # issue #12: the six together at most 40 MB
    assert main(["list", "--json"]) == 0
    rows = {r["attribute"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == sorted(DEMOS)  # the registry finds every shipped attribute, nothing else
    for attr in DEMOS:
        assert rows[attr]["source"] == "shipped"
        assert "procedural street world" in rows[attr]["description"]
        assert rows[attr]["metrics"]["heldout_pairs"]["psnr_gain_db"] > 0
        cfg = json.loads((SHIPPED_MODELS / attr / "config.json").read_text())
        assert not any(k.endswith("_path") for k in cfg["provenance"])  # no build-machine paths


@pytest.mark.parametrize("attr", DEMOS)
def test_demo_bundle_edits_a_photo_the_right_way(attr, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    from pipeline import world

    # a sunlit street for overcast (which flattens sun and shadows), an overcast one for the others
    scene = world.sample_scene(world.HELD_OUT_SEED_START + 7, "day" if attr == "overcast" else "overcast")
    src = tmp_path / "street.png"
    Image.fromarray(world.render(scene, (128, 256)).image).save(src)
    assert main(["--attribute", attr, str(src)]) == 0
    out = np.asarray(Image.open(tmp_path / f"street.{attr}.png")).astype(float)
    before = np.asarray(Image.open(src)).astype(float)
    assert out.shape == before.shape
    if attr == "night":
        assert out.mean() < before.mean() - 10  # darker
    else:
        assert np.abs(out - before).mean() > 2  # a visible change


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realphotos not present")
def test_demo_bundles_edit_every_real_photo(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for attr in DEMOS:
        assert main(["--attribute", attr, str(REAL), "-o", str(tmp_path / attr)]) == 0
        for src in REAL.iterdir():
            if src.suffix.lower() in (".jpg", ".png"):
                outs = list((tmp_path / attr).glob(f"{src.stem}.{attr}.*"))
                assert len(outs) == 1, src
                assert Image.open(outs[0]).size == Image.open(src).size


def test_install_models_copies_a_run_without_machine_paths(tmp_path, capsys):
    run = tmp_path / "run"
    src = SHIPPED_MODELS / "sunny"
    b = run / "translator-sunny" / "sunny"
    b.mkdir(parents=True)
    (b / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    cfg = json.loads((src / "config.json").read_text())
    cfg["provenance"]["gan_path"] = "/somewhere/gan.safetensors"
    cfg["provenance"]["pair_filter"] = {"predictor": "classifier", "predictor_path": "/somewhere/classifier"}
    (b / "config.json").write_text(json.dumps(cfg))
    assert main(["install-models", str(run), "--to", str(tmp_path / "models"), "--description", "mine"]) == 0
    got = json.loads((tmp_path / "models" / "sunny" / "config.json").read_text())
    assert got["description"] == "mine" and "gan_path" not in got["provenance"]
    assert got["provenance"]["pair_filter"] == {"predictor": "classifier"}
    assert main(["install-models", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err

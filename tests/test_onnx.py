"""ONNX export and the onnxruntime backend: same outputs as torch within 1e-3."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from pipeline.cli import main  # noqa: E402
from test_edit import make_bundle, textured_photo  # noqa: E402
from translators.bundle import BundleError, load_bundle, save_bundle  # noqa: E402
from translators.export import compare_to_torch, export_onnx  # noqa: E402
from translators.inference import EditConfig, EditPipeline, load_translator  # noqa: E402
from translators.networks import TranslatorConfig, build_translator  # noqa: E402
from translators.onnx_backend import OnnxTranslator, load_onnx_translator  # noqa: E402
from translators.registry import SHIPPED_MODELS  # noqa: E402

REAL_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "realphotos"


def local_bundle(folder: Path) -> Path:
    """A tiny LocalEnhancer with separable blocks and a visible (non-identity) change."""
    torch.manual_seed(1)
    model = build_translator(TranslatorConfig(kind="local", ngf=4, n_downsample=2, n_blocks=1, n_local_blocks=1,
                                              block="separable", film_hidden=8))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_bundle(folder / "fog", model, {"attribute": "fog", "resolution": [32, 64], "strength_range": [0, 2]})


def affine_bundle(folder: Path) -> Path:
    """A tiny affine U-Net with the global colour change (as the presets train it)."""
    torch.manual_seed(2)
    model = build_translator(TranslatorConfig(kind="affine", ngf=4, n_downsample=2, n_blocks=1, film_hidden=8,
                                              global_affine=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return save_bundle(folder / "dusk", model, {"attribute": "dusk", "resolution": [32, 64], "strength_range": [0, 2]})


@pytest.mark.parametrize("kind", ["global", "local", "affine"])
def test_export_matches_torch_at_any_size_and_batch(tmp_path, kind):
    bundle = {"global": lambda: make_bundle(tmp_path, "night"), "local": lambda: local_bundle(tmp_path),
              "affine": lambda: affine_bundle(tmp_path)}[kind]()
    report = export_onnx(bundle, tmp_path / "m.onnx")
    assert Path(report["path"]).is_file() and max(report["max_abs_diff"].values()) <= 1e-3
    model, config = load_bundle(bundle)
    m = model.cfg.multiple
    # Sizes the trace never saw, odd ones included (padded inside the graph), batch 2.
    diffs = compare_to_torch(tmp_path / "m.onnx", model, sizes=((2 * m, 2 * m), (5 * m + 1, 3 * m - 1), (37, 61)))
    assert max(diffs.values()) <= 1e-3, diffs
    onnx_model = OnnxTranslator(tmp_path / "m.onnx")
    assert onnx_model.config == config and onnx_model.multiple == m
    x = torch.rand(3, 3, 40, 56) * 2 - 1
    with torch.no_grad():
        ref = model(x, torch.tensor([0.0, 0.5, 1.0]))
    got = onnx_model(x.contiguous(memory_format=torch.channels_last), torch.tensor([0.0, 0.5, 1.0]))
    assert got.shape == x.shape and (got - ref).abs().max() <= 1e-3
    assert (got[0] - x[0]).abs().max() <= 1e-5  # strength 0 is still the identity
    assert (got[2] - x[2]).abs().mean() > 0.01  # and the edit is really there


def test_onnx_backend_in_edit_pipeline_on_real_photos(tmp_path):
    photos = sorted(REAL_PHOTOS.glob("*.jpg"))[:2] if REAL_PHOTOS.is_dir() else []
    if not photos:
        pytest.skip("shared real photos not present")
    from pipeline.photos.imageio import read_photo

    bundle = tmp_path / "night"
    shutil.copytree(SHIPPED_MODELS / "night", bundle)  # the trained demo bundle, exported in a copy
    export_onnx(bundle)
    torch_pipe = EditPipeline([load_translator(bundle)], EditConfig())
    onnx_pipe = EditPipeline([load_onnx_translator(bundle)], EditConfig())
    for path in photos:
        rgb = read_photo(path).rgb
        prep = torch_pipe.prepare(rgb)
        a = torch_pipe.run_network([prep], 1.0)[0]
        b = onnx_pipe.run_network([prep], 1.0)[0]
        assert 2 * np.abs(a - b).max() <= 1e-3, path  # network output, in its [-1, 1] units
        assert np.abs(a - prep.image).mean() > 0.01  # the night edit changes the photo
    # The whole edit at full resolution (network, carry, 8-bit output): within one level.
    full_a, full_b = torch_pipe(rgb, 0.8).image, onnx_pipe(rgb, 0.8).image
    assert np.abs(full_a.astype(int) - full_b).max() <= 1, path


def test_stale_or_missing_export_is_refused(tmp_path):
    bundle = make_bundle(tmp_path, "night")
    with pytest.raises(BundleError, match="photoedit export"):
        load_onnx_translator(bundle)
    export_onnx(bundle)
    assert load_onnx_translator(bundle).attribute == "night"
    make_bundle(tmp_path, "night", seed=5)  # retrained weights in the same folder
    with pytest.raises(BundleError, match="re-export"):
        load_onnx_translator(bundle)
    assert load_onnx_translator(bundle / "model.onnx").attribute == "night"  # a file given directly is used as is


def test_failed_check_leaves_no_file(tmp_path):
    bundle = make_bundle(tmp_path, "night")
    with pytest.raises(ValueError, match="differs from torch"):
        export_onnx(bundle, tmp_path / "out.onnx", tolerance=-1.0)
    assert not (tmp_path / "out.onnx").exists() and not list(tmp_path.glob(".out.onnx*"))


def test_cli_export(tmp_path, capsys):
    bundle = make_bundle(tmp_path, "sunny")
    assert main(["export", str(bundle), "--onnx", str(tmp_path / "x" / "s.onnx"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["attribute"] == "sunny" and (tmp_path / "x" / "s.onnx").is_file()
    assert main(["export", "no-such-bundle", "--models", str(tmp_path)]) == 2
    assert "no translator for 'no-such-bundle'" in capsys.readouterr().err


def test_cli_edit_with_onnxruntime_backend_matches_torch(tmp_path, capsys):
    from PIL import Image

    bundle = make_bundle(tmp_path / "models", "night")
    photo = tmp_path / "street.png"
    Image.fromarray(textured_photo(90, 120, seed=2)).save(photo)
    base = ["-a", "night", "--models", str(tmp_path / "models"), str(photo), "--no-progress"]
    assert main(base + ["--backend", "onnxruntime", "-o", str(tmp_path / "o.png")]) == 2  # not exported yet
    assert "photoedit export" in capsys.readouterr().err
    assert main(["export", str(bundle)]) == 0
    assert main(base + ["--backend", "onnxruntime", "-o", str(tmp_path / "o.png")]) == 0
    assert main(base + ["-o", str(tmp_path / "t.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "o.png")).astype(int)
    b = np.asarray(Image.open(tmp_path / "t.png")).astype(int)
    assert np.abs(a - b).max() <= 1 and np.abs(a - np.asarray(Image.open(photo))).mean() > 2

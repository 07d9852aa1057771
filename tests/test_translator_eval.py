"""eval-translator on a bundle: prints by default, merges with --write, never loses a figure (issue #18)."""
import json

import pytest
import torch

from pipeline.cli import main
from translators.bundle import save_bundle
from translators.networks import TranslatorConfig, build_translator

MEASURED = {  # figures recorded when the GAN was at hand (it no longer is)
    "attribute": "night", "predictor": "photometric", "strengths": [0.0, 0.25, 0.5, 0.75, 1.0],
    "heldout_pairs": {"n": 64, "psnr_gain_db": 15.39, "ssim_gain": 0.16},
    "world": {"n": 32, "psnr_gain_db": 2.02, "ssim_gain": 0.05},
    "score_vs_strength": {"heldout_pairs": [0.38, 0.47, 0.56, 0.64, 0.72], "world": [0.1, 0.2, 0.3, 0.4, 0.5]},
    "strength_monotonic": True,
}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def shipped_like_bundle(tmp_path):
    torch.manual_seed(0)
    model = build_translator(TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1).to_dict())
    prov = {"gan_path": str(tmp_path / "gone.safetensors"), "gan_sha256": "0" * 64,
            "boundary_path": str(tmp_path / "gone.npz"), "boundary_sha256": "0" * 64}
    return save_bundle(tmp_path / "night", model, {"attribute": "night", "resolution": [16, 32],
                                                   "strength_range": [0.5, 3.0], "provenance": prov,
                                                   "metrics": MEASURED})


def test_eval_without_gan_prints_and_leaves_the_bundle_alone(tmp_path, capsys):
    bundle = shipped_like_bundle(tmp_path)
    before = (bundle / "config.json").read_bytes()
    assert main(["eval-translator", str(bundle), "--n-world", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["heldout_pairs"] is None and "not available" in r["heldout_pairs_skipped"]
    assert (bundle / "config.json").read_bytes() == before


def test_eval_write_merges_and_never_replaces_a_figure_with_null(tmp_path, capsys):
    bundle = shipped_like_bundle(tmp_path)
    assert main(["eval-translator", str(bundle), "--n-world", "2", "--json", "--write"]) == 0
    r = json.loads(capsys.readouterr().out)
    m = json.loads((bundle / "config.json").read_text())["metrics"]
    assert m["heldout_pairs"] == MEASURED["heldout_pairs"]  # kept, not null
    assert "heldout_pairs_skipped" not in m
    assert m["score_vs_strength"]["heldout_pairs"] == MEASURED["score_vs_strength"]["heldout_pairs"]
    assert m["world"]["n"] == 2 and m["world"] == r["world"]  # re-measured figures replace the old ones
    assert m["score_vs_strength"]["world"] == r["score_vs_strength"]["world"]
    curves = m["score_vs_strength"].values()
    assert m["strength_monotonic"] == all(b > a for c in curves for a, b in zip(c, c[1:]))

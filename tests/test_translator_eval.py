"""eval-translator on a bundle: prints by default, merges with --write, never loses a figure (issue #18)."""
import json

import numpy as np
import pytest
import torch

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics.boundary import LinearBoundary

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


def tiny_gan():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 32), mapping_layers=2,
                                     channels=(16, 16, 8))).eval()


def tiny_boundary(attribute):
    n = np.random.RandomState(0).randn(16)
    return LinearBoundary(normal=n / np.linalg.norm(n), intercept=0.0, layers=[0, 1, 2, 3],
                          meta={"attribute": attribute})


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
    assert main(["eval-translator", str(bundle), "--n-world", "2", "--n-oracle", "4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["heldout_pairs"] is None and "not available" in r["heldout_pairs_skipped"]
    assert (bundle / "config.json").read_bytes() == before


def test_eval_write_merges_and_never_replaces_a_figure_with_null(tmp_path, capsys):
    bundle = shipped_like_bundle(tmp_path)
    assert main(["eval-translator", str(bundle), "--n-world", "2", "--n-oracle", "4", "--json", "--write"]) == 0
    r = json.loads(capsys.readouterr().out)
    m = json.loads((bundle / "config.json").read_text())["metrics"]
    assert m["heldout_pairs"] == MEASURED["heldout_pairs"]  # kept, not null
    assert "heldout_pairs_skipped" not in m
    assert m["score_vs_strength"]["heldout_pairs"] == MEASURED["score_vs_strength"]["heldout_pairs"]
    assert m["world"]["n"] == 2 and m["world"] == r["world"]  # re-measured figures replace the old ones
    assert m["score_vs_strength"]["world"] == r["score_vs_strength"]["world"]
    curves = m["score_vs_strength"].values()
    assert m["strength_monotonic"] == all(b > a for c in curves for a, b in zip(c, c[1:]))


def test_global_matrix_fit_recovers_a_known_colour_transform():
    from pipeline.semantics.evaluate import apply_global_matrix, fit_global_matrix

    torch.manual_seed(0)
    M = torch.tensor([[0.3, 0.1, 0.0, -0.5], [0.0, 0.25, 0.05, -0.6], [0.1, 0.0, 0.4, -0.4]])
    x = torch.rand(4, 3, 8, 12) * 2 - 1
    y = apply_global_matrix(M, x)
    assert torch.allclose(fit_global_matrix(x, y), M, atol=1e-4)


def test_baselines_beside_the_translator(tmp_path):
    """(a) GAN-pairs matrix, (b) oracle matrix, (c) oracle translator, and their ratios,
    on a tiny GAN and bundle; the oracle matrix must show night's (mostly global) change."""
    from pipeline.semantics.evaluate import EvalConfig, evaluate_translator, merge_metrics

    torch.manual_seed(0)
    model = build_translator(TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1).to_dict()).eval()
    bundle_cfg = {"attribute": "night", "resolution": [16, 32], "strength_range": [0.5, 3.0],
                  "architecture": model.cfg.to_dict(),
                  "training": {"steps": 3, "config": {"steps": 3, "batch": 4, "ndf": 4, "n_layers_d": 2}}}
    cfg = EvalConfig(n_pairs=4, n_world=4, n_fit=4, n_oracle=8, oracle_translator=True)
    r = evaluate_translator(model, bundle_cfg, cfg, tiny_gan(), tiny_boundary("night"))
    b, t = r["baselines"], r["world"]["psnr_gain_db"]
    assert b["oracle_matrix"]["psnr_gain_db"] > 2.0, b["oracle_matrix"]  # night: darker everywhere
    assert b["oracle_matrix"]["seeds"][0] > r["world"]["seeds"][-1]  # other scenes than the evaluation's
    assert b["gan_matrix"]["n_fit"] == 4 and b["oracle_translator"]["n"] == 4
    assert b["gan_edit_fidelity"] == pytest.approx(b["gan_matrix"]["psnr_gain_db"] / b["oracle_matrix"]["psnr_gain_db"],
                                                   abs=1e-3)
    assert b["translator_locality_db"] == pytest.approx(t - b["gan_matrix"]["psnr_gain_db"], abs=1e-3)
    for fig in (r["world"], b["oracle_translator"]):  # the same scenes split by kind: night, fog, other
        groups = fig["by_scene"]
        assert sum(g["n"] for g in groups.values()) == 4 and set(groups) <= {"night", "fog", "other"}
        mean = sum(g["n"] * g["psnr_gain_db"] for g in groups.values()) / 4
        assert mean == pytest.approx(fig["psnr_gain_db"], abs=1e-3)
    # an evaluation without the GAN keeps (a) recorded before, and its ratio follows the kept figures
    later = {**r, "heldout_pairs": None, "baselines": {**b, "gan_matrix": None, "gan_edit_fidelity": None}}
    m = merge_metrics(r, later)
    assert m["baselines"]["gan_matrix"] == b["gan_matrix"] and m["baselines"]["gan_edit_fidelity"] is not None


def test_oracle_out_saves_the_ceiling_as_a_bundle_that_edits_as_measured(tmp_path, capsys):
    """--oracle-out: (c) saved as a bundle; loaded back it gains on the evaluation's world
    scenes exactly what the evaluation recorded; an existing bundle there is refused."""
    from pipeline.semantics.evaluate import gains, heldout_world, translate
    from translators.bundle import load_bundle

    torch.manual_seed(0)
    model = build_translator(TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1).to_dict())
    bundle = save_bundle(tmp_path / "night", model, {
        "attribute": "night", "resolution": [16, 32], "strength_range": [0.5, 3.0], "edit": {"eps": 0.01},
        "training": {"steps": 3, "config": {"steps": 3, "batch": 4, "ndf": 4, "n_layers_d": 2}}})
    out = tmp_path / "oracle" / "night"
    argv = ["eval-translator", str(bundle), "--n-world", "3", "--n-oracle", "6", "--json", "--oracle-out", str(out)]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    c = r["baselines"]["oracle_translator"]
    oracle, cfg = load_bundle(out)
    assert cfg["attribute"] == "night" and cfg["edit"] == {"eps": 0.01} and cfg["provenance"]["oracle_translator"]
    x, y, _ = heldout_world("night", (16, 32), 3, "mixed")
    assert gains(translate(oracle.eval(), x, 1.0, 4, "cpu"), y, x)["psnr_gain_db"] == pytest.approx(c["psnr_gain_db"], abs=1e-3)
    assert cfg["metrics"]["world"]["psnr_gain_db"] == c["psnr_gain_db"]
    assert main(argv) != 0 and "already there" in capsys.readouterr().err


class WetPredictor:
    """A user's own predictor for an attribute the world does not have."""
    attributes = ["wet"]

    def score(self, images):
        return {"wet": images.mean(dim=(1, 2, 3)).numpy()}


def test_an_attribute_the_world_lacks_is_measured_on_held_out_pairs_only(monkeypatch):
    """A user's own attribute ('wet', scored by their predictor): held-out GAN pairs measured,
    the world's part skipped with the reason (it used to search 50 x n seeds for scenes that
    cannot exist, then fail), and the flags that need the world's truth refused up front."""
    import pipeline.semantics.predictors as predictors
    from pipeline.errors import UserError
    from pipeline.semantics.evaluate import EvalConfig, evaluate_translator

    monkeypatch.setattr(predictors, "predictor_from_args", lambda name, path=None: WetPredictor())
    torch.manual_seed(0)
    model = build_translator(TranslatorConfig(ngf=4, n_downsample=2, n_blocks=1).to_dict()).eval()
    bundle_cfg = {"attribute": "wet", "resolution": [16, 32], "strength_range": [0.5, 3.0]}
    r = evaluate_translator(model, bundle_cfg, EvalConfig(n_pairs=4, n_world=4), tiny_gan(), tiny_boundary("wet"))
    assert r["heldout_pairs"]["n"] == 4 and list(r["score_vs_strength"]) == ["heldout_pairs"]
    assert r["world"] is None and "not one of the world's attributes" in r["world_skipped"]
    assert r["baselines"]["oracle_matrix"] is None and r["baselines"]["gan_edit_fidelity"] is None
    with pytest.raises(UserError, match="give --gan and --boundary"):
        evaluate_translator(model, bundle_cfg, EvalConfig(n_pairs=4, n_world=4))
    with pytest.raises(UserError, match="need the world's true pairs"):
        evaluate_translator(model, bundle_cfg, EvalConfig(n_pairs=4, oracle_translator=True), tiny_gan(),
                            tiny_boundary("wet"))


def test_scene_groups_follow_the_scenes_true_attributes():
    from pipeline import world
    from pipeline.semantics.evaluate import scene_groups

    seeds = list(range(world.HELD_OUT_SEED_START, world.HELD_OUT_SEED_START + 60))
    kinds = scene_groups(seeds, "mixed")
    attrs = [world.sample_scene(s, "mixed").attributes() for s in seeds]
    assert {"night", "fog", "other"} == set(kinds)  # 60 mixed scenes have all three
    for k, a in zip(kinds, attrs):
        assert (k == "night") == (a["night"] > 0.5)
        assert (k == "fog") == (a["foggy"] > 0.5 and a["night"] <= 0.5)


def test_an_installed_bundle_without_paths_says_so():
    """Installed bundles keep the GAN's sha256, not its path: the skip reason says that."""
    from pipeline.semantics.evaluate import _gan_sources

    prov = {"gan_sha256": "0" * 64, "boundary_sha256": "0" * 64}
    assert _gan_sources({"provenance": prov}, None, None) == (
        None, None, "the bundle records no gan file path; pass --gan and --boundary")

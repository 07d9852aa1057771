"""GAN Dissection on a tiny generator whose red channel is drawn by two planted units."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.networks import Generator, GeneratorConfig
from pipeline.semantics import dissect as D
from pipeline.semantics.lse import sample_with_features

PLANTED = [2, 5]  # units of the last level that alone draw the red channel


@pytest.fixture(scope="module")
def planted():
    """A tiny random generator, edited so that red comes only from PLANTED units of the last level,
    and a synthetic 'red' class (red above its 80th percentile) as the labeller."""
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 16), mapping_layers=2,
                                  channels=(16, 16, 8))).eval().requires_grad_(False)
    for level in G.synthesis.levels:
        level.torgb.conv.weight[0] = 0.0  # no red from any level ...
        level.torgb.bias[0] = 0.0
    last = G.synthesis.levels[-1].torgb.conv.weight
    last[0, PLANTED] = 4.0  # ... but from the planted units
    images, _ = sample_with_features(G, range(64))
    thresh = float(torch.quantile(images[:, 0].flatten(), 0.8))

    def red(img: torch.Tensor) -> torch.Tensor:
        return (img[:, 0] > thresh).long()

    return G, red


def test_planted_units_have_the_highest_iou_with_their_class(planted):
    G, red = planted
    tables = D.unit_class_iou(G, red, 2, range(64), quantile=0.8)
    assert [t.shape for t in tables] == [(16, 2), (16, 2), (8, 2)]
    last = tables[-1]
    assert sorted(D.top_units(last, 1, 2)) == PLANTED
    others = np.delete(last[:, 1], PLANTED)
    assert last[PLANTED, 1].min() > others.max() + 0.1
    assert all(0 <= t.min() and t.max() <= 1 for t in tables)


def test_ablating_top_units_removes_the_class_random_units_do_not(planted):
    G, red = planted
    tables = D.unit_class_iou(G, red, 2, range(64), quantile=0.8)
    level = len(tables) - 1
    top = D.top_units(tables[level], 1, 2)
    control = D.random_units(tables[level].shape[0], 2, exclude=top)
    assert not set(top) & set(control)
    seeds = range(500, 532)  # samples the dissection never saw
    a = D.ablation_effect(G, red, 2, seeds, level, top)
    b = D.ablation_effect(G, red, 2, seeds, level, control)
    assert a["before"][1] > 0
    assert a["change"][1] < -0.9  # the class is gone
    assert abs(b["change"][1]) < 0.2  # the control barely moves it
    # the hook is removed afterwards: the generator is back to its original output
    assert np.array_equal(D.class_pixels(G, red, 2, seeds), a["before"])


def test_matched_units_counts_best_class_above_threshold():
    t = np.array([[0.5, 0.1], [0.02, 0.01], [0.1, 0.3], [0.0, 0.05]])
    assert [m.tolist() for m in D.matched_units([t], 0.04)] == [[1, 2]]


def test_dissect_cli(tmp_path, planted, capsys):
    from pipeline.cli import main as cli
    from pipeline.semantics.segmenter import Segmenter, SegmenterConfig, save_segmenter

    from gan.checkpoint import save_generator

    G, _ = planted
    save_generator(G, tmp_path / "G.safetensors")
    torch.manual_seed(0)
    save_segmenter(Segmenter(SegmenterConfig(num_classes=3, width=4)), {0: "a", 1: "b", 2: "c"},
                   tmp_path / "seg.safetensors")
    args = ["dissect", "--gan", str(tmp_path / "G.safetensors"), "--segmenter", str(tmp_path / "seg.safetensors"),
            "--n", "8", "--out", str(tmp_path / "d")]
    assert cli(args + ["--ablate", "b", "--units", "4", "--ablate-n", "4"]) == 0
    out = json.loads((tmp_path / "d" / "dissection.json").read_text())
    assert [lv["units"] for lv in out["levels"]] == [16, 16, 8]
    assert out["ablation"]["class"] == "b" and len(out["ablation"]["units"]) == 4
    assert not set(out["ablation"]["units"]) & set(out["ablation"]["random_units"])
    assert cli(args + ["--ablate", "trees"]) == 2
    assert "not a class" in capsys.readouterr().err
    assert cli(args + ["--ablate", "b", "--units", "9"]) == 2  # no level has 18 units
    # the unit-class table: one row per unit of every level, each row's best class its highest IoU
    rows = (tmp_path / "d" / "units.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["level", "unit", "best_class", "best_iou"] and len(rows) == 1 + 16 + 16 + 8
    first = rows[1].split(",")
    assert first[2] == "abc"[int(np.argmax([float(v) for v in first[4:]]))]
    assert (tmp_path / "d" / "ablation.png").is_file()


def test_dissect_cli_causal_selection_insertion_and_chart(tmp_path, planted, capsys):
    from PIL import Image

    from pipeline.cli import main as cli
    from pipeline.semantics.segmenter import Segmenter, SegmenterConfig, save_segmenter

    from gan.checkpoint import save_generator

    pytest.importorskip("matplotlib")
    G, _ = planted
    save_generator(G, tmp_path / "G.safetensors")
    torch.manual_seed(0)
    save_segmenter(Segmenter(SegmenterConfig(num_classes=3, width=4)), {0: "a", 1: "b", 2: "c"},
                   tmp_path / "seg.safetensors")
    args = ["dissect", "--gan", str(tmp_path / "G.safetensors"), "--segmenter", str(tmp_path / "seg.safetensors"),
            "--n", "8", "--out", str(tmp_path / "d"), "--units", "2", "--ablate-n", "4"]
    assert cli(args + ["--ablate", "b", "--select", "causal", "--select-n", "4", "--ablate-value", "mean",
                       "--insert", "c", "--region", "0,0,8,16", "--level", "2"]) == 0
    printed = capsys.readouterr().out
    assert "goal (>= 50% of b removed" in printed and "inserting c" in printed
    out = json.loads((tmp_path / "d" / "dissection.json").read_text())
    assert out["ablation"]["select"] == "causal" and out["ablation"]["value"] == "mean"
    assert len(out["ablation"]["effect_alone"]) == 2
    assert out["insertion"]["region"] == [0, 0, 8, 16] and out["insertion"]["level"] == 2
    chart = Image.open(tmp_path / "d" / "dissection.png")
    assert chart.width > 200 and np.asarray(chart.convert("L")).std() > 10  # a drawn chart, not a blank
    assert Image.open(tmp_path / "d" / "insertion.png").size == Image.open(tmp_path / "d" / "ablation.png").size[:1] \
        + (2 * (32 + 4) + 4,)  # two rows of 16-px samples at scale 2
    assert cli(args + ["--insert", "c"]) == 2
    assert "--region" in capsys.readouterr().err
    assert cli(args + ["--insert", "c", "--region", "0,0,40,8"]) == 2
    assert "inside the 16x16 image" in capsys.readouterr().err


def test_causal_ranking_finds_the_planted_units(planted):
    G, red = planted
    level = len(G.synthesis.levels) - 1
    effects = D.unit_causal_effect(G, red, 2, range(700, 716), level)
    assert effects.shape == (8, 2)
    assert sorted(D.causal_units(effects, 1, 2, np.array([1.0, 1.0]))) == PLANTED
    assert effects[PLANTED, 1].max() < -0.2 < effects[np.delete(np.arange(8), PLANTED), 1].min() + 0.2
    # a unit that also moves the other class a lot loses its place
    effects2 = effects.copy()
    effects2[PLANTED[0], 0] = 5.0
    for rule in D.SPECIFICITY:
        assert PLANTED[0] not in D.causal_units(effects2, 1, 2, np.array([1.0, 1.0]), rule)
    fake = np.array([[0.5, -0.9, 0.0], [0.05, -0.5, 0.05], [0.0, -0.6, 0.4]])  # unit 0: big side effect
    assert D.causal_units(fake, 1, 1, np.array([1.0, 1.0, 1.0]), "max") == [1]
    assert D.causal_scores(fake, 1, np.array([0.9, 0.0, 0.1]), "mean")[2] == pytest.approx(-0.6 + 0.4 * 0.1)
    with pytest.raises(ValueError, match="specificity"):
        D.causal_scores(fake, 1, np.ones(3), "median")


def test_ablation_to_a_value_and_the_goal_verdict(planted):
    G, red = planted
    level = len(G.synthesis.levels) - 1
    seeds = range(500, 532)
    stats = D.unit_stats(G, range(32), quantile=0.9)
    assert (stats[level]["high"] >= stats[level]["mean"]).all()
    high = D.ablation_effect(G, red, 2, seeds, level, PLANTED, values=stats[level]["high"][PLANTED] * 3)
    zero = D.ablation_effect(G, red, 2, seeds, level, PLANTED)
    assert high["change"][1] > 0 > zero["change"][1]  # pinned high the class grows, zeroed it shrinks
    v = D.ablation_verdict(zero, 1)
    assert v["removed"] == pytest.approx(-zero["change"][1]) and v["largest_other_class"] == 0
    assert v["met"] == (v["removed"] >= 0.5 and abs(v["largest_other"]) < 0.1)
    fake = {"before": np.array([100, 100, 1]), "change": np.array([0.05, -0.6, -1.0])}
    assert D.ablation_verdict(fake, 1)["met"]  # the 1% rule leaves the tiny class out
    assert not D.ablation_verdict({**fake, "change": np.array([0.2, -0.6, 0.0])}, 1)["met"]
    assert not D.ablation_verdict({**fake, "change": np.array([0.0, -0.4, 0.0])}, 1)["met"]


def test_insertion_effect_inside_and_outside(planted):
    G, red = planted
    level = len(G.synthesis.levels) - 1
    _, feats = sample_with_features(G, range(32))
    high = torch.full((len(PLANTED),), float(feats[-1][:, PLANTED].amax()) * 2)
    e = D.insertion_effect(G, red, range(600, 616), level, PLANTED, high, (0, 0, 8, 16), 1)
    assert e["inside_after"] > 0.95 > e["inside_before"] + 0.5
    assert e["outside_after"] == e["outside_before"] and e["outside_change"] == 0 < e["inside_change"]


def test_iou_does_not_depend_on_the_batch(planted):
    G, red = planted
    a = D.unit_class_iou(G, red, 2, range(24), quantile=0.8, batch=24)
    b = D.unit_class_iou(G, red, 2, range(24), quantile=0.8, batch=5)
    assert all(np.allclose(x, y, atol=1e-3) for x, y in zip(a, b))


def test_activating_the_top_units_in_a_region_inserts_the_class_there_only(planted):
    G, red = planted
    seeds = range(600, 616)
    z = D.seed_latents(G, seeds)
    ws = G.broadcast(G.mapping(z))
    region = torch.zeros(16, 16, dtype=torch.bool)
    region[:, :8] = True  # the left half
    _, feats = sample_with_features(G, seeds)
    high = torch.full((len(PLANTED),), float(feats[-1][:, PLANTED].amax()) * 2)
    with torch.no_grad():
        before = red(G.synthesis(ws, noise_mode="const"))
        with D.activated(G, len(G.synthesis.levels) - 1, PLANTED, high, region):
            after = red(G.synthesis(ws, noise_mode="const"))
    inside, outside = region.expand_as(before), ~region.expand_as(before)
    assert after[inside].float().mean() > 0.95 > before[inside].float().mean() + 0.5
    assert torch.equal(after[outside], before[outside])  # the last level's toRGB is per pixel
    with pytest.raises(ValueError, match="values"):
        with D.activated(G, 0, [1, 2], torch.ones(3), region):
            pass

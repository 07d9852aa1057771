"""report.html: every section present, images embedded and loaded in headless Chromium."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.run.report import OPTIONAL, SECTIONS, build_report
from pipeline.run.runner import Runner, Stage

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402


def png(path: Path, seed: int):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (24, 48, 3), dtype=np.uint8)).save(path)


def fake_run(run: Path):
    def writes(*names, metrics=None):
        def run_stage(out):
            for i, n in enumerate(names):
                png(out / n, i) if n.endswith(".png") else Image.new("RGB", (8, 8)).save(out / n)
            return metrics or {}
        return run_stage
    eval_metrics = {"heldout_pairs": {"psnr_gain_db": 4.2, "ssim_gain": 0.1},
                    "world": {"psnr_gain_db": 1.1, "ssim_gain": 0.02}, "strength_monotonic": True}
    stages = [Stage("gan", writes("samples.png", "swd.png", metrics={"swd_final": 12.0}))]
    for a in ("sunny", "night"):
        stages += [
            Stage(f"boundary-{a}", writes("rescore.png", metrics={"val_accuracy": 0.95, "layers": [2, 3]})),
            Stage(f"translator-{a}", writes("pairs.png")),
            Stage(f"eval-{a}", writes("world.png", "strength.png", metrics=eval_metrics)),
        ]
    stages.append(Stage("edit", writes("sheet-sunny.jpg", "sheet-night.jpg")))
    Runner(run, stages, log=lambda s: None).run()


def test_report_sections_and_tables(tmp_path):
    fake_run(tmp_path)
    text = build_report(tmp_path).read_text()
    for sid, title in SECTIONS:
        assert (f"id='{sid}'" in text and title in text) == (sid not in OPTIONAL)  # no semantics files here
    assert "4.200" in text and "0.950" in text and "has not run" not in text
    assert "src=\"data:image/png;base64," in text and "file://" not in text


def test_an_attribute_the_world_lacks_shows_its_pairs_without_world_figures(tmp_path):
    """A user's own attribute: its eval stage measures held-out pairs only and draws no world
    figures; the report shows its row and asks for no missing figure."""
    wet = {"heldout_pairs": {"psnr_gain_db": 3.3, "ssim_gain": 0.1}, "world": None,
           "world_skipped": "'wet' is not one of the world's attributes", "strength_monotonic": True}
    Runner(tmp_path, [Stage("eval-wet", lambda out: wet)], log=lambda s: None).run()
    text = build_report(tmp_path).read_text()
    assert "<td>wet</td>" in text and "3.300" in text
    assert "missing figure" not in text


def test_report_of_partial_run_says_what_is_missing(tmp_path):
    Runner(tmp_path, [Stage("gan", lambda out: {})], log=lambda s: None).run()
    text = build_report(tmp_path).read_text()
    assert "the boundary stage has not run" in text
    assert "missing figure: samples.png" in text


@pytest.mark.skipif(browser.chromium() is None and not os.environ.get("CI"),
                    reason="chromium not installed (CI installs it)")
def test_report_loads_in_headless_chromium(tmp_path):
    fake_run(tmp_path)
    page = build_report(tmp_path)
    seen = browser.probe(page)
    assert [s["id"] for s in seen["sections"]] == [sid for sid, _ in SECTIONS if sid not in OPTIONAL]
    assert all(s["images"] > 0 for s in seen["sections"] if s["id"] not in ("boundaries", "timings"))
    assert seen["images"] >= 12 and seen["broken"] == []
    shot = tmp_path / "shot.png"
    browser.screenshot(page, shot, size="800,600")
    assert Image.open(shot).size == (800, 600)


def test_semantics_sections_show_the_files_of_lse_scs_sie_and_dissect(tmp_path):
    """A run folder with a GAN, an LSE, a dissection (the real commands) and scs/sie outputs (files as
    `photoedit scs` / `sie` write them): each section appears with its figures and numbers."""
    import json

    import torch

    from pipeline.cli import main as cli
    from pipeline.semantics.segmenter import Segmenter, SegmenterConfig, save_segmenter
    from serve_helpers import tiny_run, tiny_semantics

    run = tiny_semantics(tiny_run(tmp_path / "run"))
    (run / "dissect" / "dissection.json").unlink()  # the command's own, below
    torch.manual_seed(0)
    save_segmenter(Segmenter(SegmenterConfig(num_classes=3, width=4)), {0: "dark", 1: "mid", 2: "bright"},
                   tmp_path / "seg.safetensors")
    assert cli(["dissect", "--gan", str(run / "gan" / "generator.safetensors"), "--segmenter",
                str(tmp_path / "seg.safetensors"), "--n", "8", "--out", str(run / "dissect"), "--units", "4",
                "--ablate", "mid", "--ablate-n", "4", "--insert", "bright", "--region", "0,0,8,8"]) == 0
    for kind, files, report in (
            ("scs", ("layout.png", "start.png", "image.png", "labels.png"),
             {"layout_miou_by_lse": 0.61, "layout_miou_by_segmenter": {"result": 0.52, "unconditioned_mean": 0.17}}),
            ("sie", ("before.png", "paint.png", "after.png", "labels_after.png"),
             {"classes": {"2": "bright"}, "scores_by_lse": {"region_fraction_before": 0.1, "region_fraction": 0.83,
                                                             "psnr_outside": 31.4},
              "scores_by_segmenter": {"region_miou": 0.57}})):
        (run / f"{kind}7").mkdir()
        for i, n in enumerate(files):
            png(run / f"{kind}7" / n, i)
        (run / f"{kind}7" / f"{kind}.json").write_text(json.dumps(report))
    text = build_report(run).read_text()
    for sid in OPTIONAL:
        assert f"id='{sid}'" in text
    section = lambda sid: text.split(f"id='{sid}'")[1].split("<section")[0]  # noqa: E731
    assert section("lse").count("<img") == 1 and (run / "lse_masks.png").is_file()
    assert "dark" in section("lse") and "bright" in section("lse")
    assert "0.610" in section("scs") and "0.170" in section("scs") and section("scs").count("<img") == 4
    assert "0.830" in section("sie") and "31.400" in section("sie") and "bright" in section("sie")
    assert "0.570" in section("sie")  # the segmenter's region IoU, under the key `photoedit sie` writes
    d = section("dissection")
    assert d.count("<img") == 3  # chart, ablation and insertion sheets
    assert "random units ablated" in d and "bright inserted in box [0, 0, 8, 8]" in d
    assert "missing figure" not in text.split("id='lse'")[1]
    # the mask sheet is made once and reused while the LSE and GAN are unchanged
    stamp = (run / "lse_masks.png").stat().st_mtime_ns
    build_report(run)
    assert (run / "lse_masks.png").stat().st_mtime_ns == stamp

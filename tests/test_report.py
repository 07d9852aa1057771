"""report.html: every section present, images embedded and loaded in headless Chromium."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.run.report import SECTIONS, build_report
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
        assert f"id='{sid}'" in text and title in text
    assert "4.200" in text and "0.950" in text and "has not run" not in text
    assert "src=\"data:image/png;base64," in text and "file://" not in text


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
    assert [s["id"] for s in seen["sections"]] == [sid for sid, _ in SECTIONS]
    assert all(s["images"] > 0 for s in seen["sections"] if s["id"] not in ("boundaries", "timings"))
    assert seen["images"] >= 12 and seen["broken"] == []
    shot = tmp_path / "shot.png"
    browser.screenshot(page, shot, size="800,600")
    assert Image.open(shot).size == (800, 600)

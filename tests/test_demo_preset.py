"""configs/demo.yaml: it validates and plans all six attributes, and a killed demo-shaped run
resumes exactly (finished stages skipped, the interrupted translator continues from its snapshot)."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from run_helpers import manifests

SIX = ["sunny", "overcast", "golden_hour", "night", "foggy", "snowy"]

# The demo preset itself, shrunk to toy sizes: what is tested is its own structure (a given
# generator instead of GAN training, per-attribute entries), not its sizes.
def tiny_overrides(gan: Path, run_dir_attrs=("sunny", "night")) -> list[str]:
    return [f"run.gan={gan}", f"run.attributes=[{','.join(run_dir_attrs)}]", "run.eval_pairs=4",
            "run.eval_world=2", "run.example_photos=1", "run.example_size=[40,72]", "world.size=[16,32]",
            "predictor.n_world=40", "predictor.input_size=[16,32]", "predictor.epochs=1", "predictor.batch=20",
            "sample.n=120", "sample.batch=60", "boundary.ratio=0.1", "rescore.n=8", "rescore.batch=8",
            "pairs.batch=4", "translator.ngf=4", "translator.n_downsample=2", "translator.n_blocks=1",
            "translator.film_hidden=4", "train_translator.batch=2", "train_translator.steps=6",
            "train_translator.log_every=2", "train_translator.grid_every=2", "train_translator.snapshot_every=2",
            # the demo's night keeps the pairs its classifier sees darken by > 0.1; a 1-epoch classifier of a random
            # tiny GAN sees few, so every pair is kept here (the filter still runs, its classifier still needed)
            "per_attribute.night.pairs.margin=-1.0"]


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory) -> Path:
    import torch

    from gan.checkpoint import save_generator
    from gan.networks import Generator, GeneratorConfig

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(resolution=(16, 32), z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                                  channel_max=16))
    return save_generator(G, tmp_path_factory.mktemp("gan") / "generator.safetensors")


def test_demo_preset_validates_and_plans_six_attributes(tmp_path, capsys):
    assert main(["run", "demo", "--out", str(tmp_path / "demo"), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    for attr in SIX:
        for stage in ("boundary", "translator", "eval"):
            assert f"{stage}-{attr} " in plan
    assert not (tmp_path / "demo").exists()  # a dry run writes nothing
    from pipeline.config import load_all

    run = load_all("demo", [])["run"]
    assert sorted(run.attributes) == sorted(SIX) and run.eval_world >= 64
    # street aspect 1:2 at a size where the street shows
    gan = load_all("demo", [])["gan"]
    assert gan.resolution[1] == 2 * gan.resolution[0] >= 256


def test_demo_plans_from_any_folder(tmp_path, monkeypatch, capsys):
    """run.gan is relative to the repository root; from another folder it is found beside
    the preset (it crashed with a traceback before)."""
    from pipeline.run.stages import Plan

    monkeypatch.chdir(tmp_path)
    assert not Path("configs/demo/generator.safetensors").exists()
    plan = Plan("demo", [], tmp_path / "demo")
    assert Path(plan.cfg.gan).is_absolute() and Path(plan.cfg.gan).is_file()
    assert main(["run", "demo", "--out", str(tmp_path / "demo"), "--dry-run"]) == 0
    assert "gan " in capsys.readouterr().out


def test_demo_generator_is_shipped_and_makes_demo_sized_images():
    from pipeline.config import load_all

    cfgs = load_all("demo", [])
    path = Path(cfgs["run"].gan)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[1] / path
    assert path.is_file() and path.stat().st_size <= 15 * 2**20
    import torch

    from gan.checkpoint import load_generator

    G = load_generator(path).eval()
    with torch.no_grad():
        img = G(torch.randn(2, G.cfg.z_dim))
    assert tuple(img.shape[-2:]) == tuple(cfgs["gan"].resolution) == tuple(cfgs["world"].size)
    assert img.std() > 0.05  # a trained generator, not a constant


def test_per_attribute_entries_reach_the_demo_stages(tiny_gan, tmp_path):
    from pipeline.run.stages import Plan

    plan = Plan("demo", tiny_overrides(tiny_gan), tmp_path / "P")
    keys = {s.name: s.config for s in plan.stages()}
    assert keys["translator-sunny"]["pairs"] != keys["translator-night"]["pairs"]  # sunny has its own entries
    # night's pairs are filtered by the run's own classifier: its translator waits for the predictor stage
    assert keys["translator-night"]["pairs"]["filter_predictor"] == "classifier"
    needs = {s.name: s.needs for s in plan.stages()}
    assert "predictor" in needs["translator-night"] and "predictor" not in needs["translator-sunny"]


def run_until_translators(run_dir: Path, overrides: list[str]) -> None:
    """The demo plan without its evaluation and edit stages (the resume under test is the
    runner's and the translator's; evaluation is covered by tests/test_run.py)."""
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    plan = Plan("demo", overrides, run_dir)
    stages = [s for s in plan.stages() if not s.name.startswith(("eval-", "edit"))]
    Runner(plan.run_dir, stages, log=lambda m: None).run()


def weights(bundle: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(bundle / "model.safetensors"))


def test_killed_demo_run_resumes_exactly(tiny_gan, tmp_path):
    """SIGKILL right after the night translator's first snapshot; the re-run skips every
    finished stage, continues night from that snapshot, and ends with the same weights as
    an uninterrupted run."""
    over = tiny_overrides(tiny_gan)
    ref = tmp_path / "ref"
    run_until_translators(ref, over)
    run = tmp_path / "killed"
    child = f"""
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)  # as conftest sets it for the reference run: same float sums
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from translators import training
real = training.TranslatorTrainer.save_state
def save_state(self):
    real(self)
    if self.run_dir.parent.name == "translator-night":
        os.kill(os.getpid(), signal.SIGKILL)
training.TranslatorTrainer.save_state = save_state
from test_demo_preset import run_until_translators
run_until_translators(Path({str(run)!r}), {over!r})
"""
    proc = subprocess.run([sys.executable, "-c", child], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == -signal.SIGKILL
    before = {k: v["timings"]["started"] for k, v in manifests(run).items()}
    assert {"predictor", "samples", "boundary-night", "translator-sunny"} <= set(before) and "translator-night" not in before
    stats = (run / "translator-night" / "run" / "stats.jsonl").read_text().splitlines()
    assert json.loads(stats[-1])["step"] == 2  # killed after the step-2 snapshot
    run_until_translators(run, over)
    after = manifests(run)
    assert sorted(after) == sorted(manifests(ref))
    for stage, started in before.items():  # finished stages were not redone
        assert after[stage]["timings"]["started"] == started, stage
    rows = (run / "translator-night" / "run" / "stats.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in rows] == [2, 4, 6]  # resumed at 2, not restarted
    for attr in ("sunny", "night"):
        got, want = weights(run / f"translator-{attr}" / attr), weights(ref / f"translator-{attr}" / attr)
        assert got.keys() == want.keys()
        for k in got:
            assert torch_equal(got[k], want[k]), (attr, k)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_a_presets_relative_predictor_path_is_found_beside_it(tmp_path, monkeypatch):
    """run.predictor_path (and a per-attribute one) relative to a preset's repository is found
    from any folder, as run.gan is; one that exists from the current folder is kept as given."""
    from pipeline.run.stages import Plan

    repo = tmp_path / "repo"
    (repo / "configs").mkdir(parents=True)
    (repo / "models" / "clf").mkdir(parents=True)
    preset = repo / "configs" / "mine.yaml"
    preset.write_text("run:\n  attributes: [night, sunny]\n  predictor: photometric\n"
                      "per_attribute:\n  sunny:\n    run: {predictor: classifier, predictor_path: models/clf}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plan = Plan(str(preset), [], elsewhere / "run")
    name, path = plan.predictor("sunny")
    assert name == "classifier" and Path(path) == (repo / "models" / "clf").resolve()
    assert plan.predictor("night") == ("photometric", None)
    monkeypatch.chdir(repo)
    assert Plan(str(preset), [], repo / "run").predictor("sunny") == ("classifier", "models/clf")


def test_coverage_reads_each_attribute_by_its_own_predictor(tiny_gan, tmp_path):
    """The samples stage's coverage: sunny's boundary uses the classifier, night's the run's
    photometric predictor, so each attribute's row comes from its own."""
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    over = tiny_overrides(tiny_gan) + ["run.predictor=photometric", "per_attribute.sunny.run.predictor=classifier",
                                       "per_attribute.night.run.predictor=photometric"]
    plan = Plan("demo", over, tmp_path / "C")
    stages = [s for s in plan.stages() if s.name in ("gan", "predictor", "samples")]
    Runner(plan.run_dir, stages, log=lambda m: None).run()
    cov = manifests(plan.run_dir)["samples"]["metrics"]["coverage"]
    assert cov["sunny"]["predictor"] == "classifier" and cov["night"]["predictor"] == "photometric"
    assert cov["foggy"]["predictor"] == "photometric"  # not one of the run's: the run's predictor
    assert (plan.run_dir / "samples" / "coverage.json").is_file()

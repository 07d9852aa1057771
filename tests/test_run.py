"""`photoedit run` end to end on toy sizes: every stage, the report, kill + resume."""
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from run_helpers import manifests

TINY = str(Path(__file__).parent / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "A"
    assert main(["run", TINY, "--out", str(run)]) == 0
    return run


def test_run_writes_every_stage_and_the_report(finished_run):
    ms = manifests(finished_run)
    assert sorted(ms) == sorted(["gan", "samples", "boundary-sunny", "boundary-night", "translator-sunny",
                                 "translator-night", "eval-sunny", "eval-night", "edit"])
    for attr in ("sunny", "night"):
        assert (finished_run / f"translator-{attr}" / attr / "model.safetensors").is_file()
        assert "heldout_pairs" in ms[f"eval-{attr}"]["metrics"]
        assert len(list((finished_run / "edit" / attr).glob(f"*.{attr}.png"))) == 1
    assert ms["boundary-sunny"]["needs"] == ["gan", "samples"]
    cov = ms["samples"]["metrics"]["coverage"]  # how often the GAN draws each attribute beside the reals
    assert {"sunny", "night"} <= set(cov) and all(0 <= r["share_real"] <= 1 for r in cov.values())
    text = (finished_run / "report.html").read_text()
    assert "has not run" not in text and "missing figure" not in text
    assert "share of GAN samples scoring &gt; 0.5" in text or "share of GAN samples scoring > 0.5" in text


def test_second_run_skips_and_new_attribute_keeps_gan(finished_run, capsys):
    capsys.readouterr()
    assert main(["run", TINY, "--out", str(finished_run), "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert plan.count("skip") == 9 and "  run " not in plan
    assert main(["run", TINY, "--out", str(finished_run), "--dry-run",
                 "--set", "run.attributes=[sunny,night,foggy]"]) == 0
    lines = {line.split()[1]: line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["gan"] == lines["samples"] == lines["translator-sunny"] == "skip"
    assert lines["boundary-foggy"] == lines["translator-foggy"] == lines["eval-foggy"] == "run"


def test_killed_run_resumes_without_redoing_finished_stages(finished_run, tmp_path):
    """SIGKILL inside a stage (the night translator's, after five stages finished), at the same
    point on any machine: the child kills itself there, as a power cut would."""
    run = tmp_path / "B"
    child = f"""
import os, signal, sys
from pipeline.run.stages import Plan
real = Plan.stage_translator
def stage_translator(self, out, attr):
    if attr == "night":
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, out, attr)
Plan.stage_translator = stage_translator
from pipeline.cli import main
sys.exit(main(["run", {TINY!r}, "--out", {str(run)!r}]))
"""
    proc = subprocess.run([sys.executable, "-c", child], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL
    before = {k: v["timings"]["started"] for k, v in manifests(run).items()}
    assert {"gan", "samples", "boundary-sunny", "translator-sunny", "eval-sunny"} <= set(before)
    assert "translator-night" not in before and "edit" not in before
    assert main(["run", TINY, "--out", str(run)]) == 0
    after = manifests(run)
    assert sorted(after) == sorted(manifests(finished_run))
    for stage, started in before.items():  # finished stages were not redone
        assert after[stage]["timings"]["started"] == started, stage


def test_failing_stage_is_named_with_resume_hint(tmp_path, capsys):
    code = main(["run", TINY, "--out", str(tmp_path / "C"), "--set", "run.data=" + str(tmp_path / "nophotos")])
    err = capsys.readouterr().err
    assert code == 1 and "stage 'gan' failed" in err and "resume" in err and "nophotos" in err


def test_bad_run_config_names_the_key(tmp_path, capsys):
    assert main(["run", TINY, "--out", str(tmp_path / "D"), "--set", "run.atributes=[x]"]) == 2
    assert "run.atributes" in capsys.readouterr().err


def test_existing_generator_replaces_gan_training(finished_run, tmp_path):
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    ckpt = finished_run / "gan" / "generator.safetensors"
    plan = Plan(TINY, [f"run.gan={ckpt}"], tmp_path / "E")
    gan_stage = plan.stages()[0]
    Runner(plan.run_dir, [gan_stage], log=lambda s: None).run()
    assert plan.gan_ckpt.read_bytes() == ckpt.read_bytes()
    assert (plan.run_dir / "gan" / "samples.png").is_file() and not (plan.run_dir / "gan" / "run").exists()


def test_conditions_order_boundaries_and_photo_folders_key_the_gan(tmp_path):
    from pipeline.config import ConfigError
    from pipeline.errors import UserError
    from pipeline.run.stages import Plan

    plan = Plan(TINY, ["run.conditions={sunny: [night]}"], tmp_path / "F")
    names = [s.name for s in plan.stages()]
    assert names.index("boundary-night") < names.index("boundary-sunny")
    with pytest.raises(UserError, match="cycle"):
        Plan(TINY, ["run.conditions={sunny: [night], night: [sunny]}"], tmp_path / "F").stages()
    # a run of a subset: a condition outside run.attributes gets its boundary (no translator), an entry
    # for an attribute outside them is unused
    sub = Plan(TINY, ["run.attributes=[sunny]", "run.conditions={sunny: [foggy], snowy: [night]}"], tmp_path / "H")
    stages = {s.name: s for s in sub.stages()}
    assert "boundary-foggy" in stages["boundary-sunny"].needs and "translator-foggy" not in stages
    assert not any(n.endswith(("snowy", "night")) for n in stages)
    with pytest.raises(ConfigError, match="run.conditions.sunny: unknown attribute 'fogy'"):
        Plan(TINY, ["run.conditions={sunny: [fogy]}"], tmp_path / "F")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"1")
    key = lambda: Plan(TINY, [f"run.data={photos}"], tmp_path / "G").stages()[0].config["photos"]  # noqa: E731
    first = key()
    (photos / "b.jpg").write_bytes(b"2")
    assert first is not None and key() != first


def test_stage_keys_hash_resolved_settings(tmp_path):
    """Keys come from the resolved dataclasses: a setting spelt out at its current value keeps every
    key; a changed translator setting changes only the stages that read it."""
    from pipeline.run.runner import Runner
    from pipeline.run.stages import Plan

    def keys(*sets):
        plan = Plan(TINY, list(sets), tmp_path / "K")
        runner = Runner(plan.run_dir, plan.stages(), log=lambda s: None)
        return {s.name: runner.key(s)[0] for s in plan.stages()}

    base = keys()
    assert keys("pairs.truncation_psi=0.8") == base  # the PairsConfig default, now written out
    changed = keys("train_translator.steps=5")
    assert changed["gan"] == base["gan"] and changed["boundary-sunny"] == base["boundary-sunny"]
    assert changed["translator-sunny"] != base["translator-sunny"]


def test_coverage_with_too_few_photos_is_left_out_and_said(finished_run, tmp_path):
    """The samples stage's coverage needs 256 real images: a smaller photo folder leaves it
    out with the reason instead of failing the stage."""
    from PIL import Image

    from pipeline.run.stages import Plan

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.new("RGB", (64, 32), (40 * i, 90, 120)).save(photos / f"p{i}.png")
    got = Plan(TINY, [f"run.data={photos}"], finished_run)._coverage(tmp_path / "out")
    assert "coverage" not in got and "need 256" in got["coverage_skipped"]


def test_run_notes_an_attribute_the_gan_rarely_draws(tmp_path):
    """After a run, a note names each of its attributes whose coverage is under 0.7."""
    from pipeline.run.driver import coverage_notes
    from pipeline.run.runner import Runner, Stage

    cov = {"sunny": {"share_fake": 0.166, "share_real": 0.281, "coverage": 0.59},
           "night": {"share_fake": 0.18, "share_real": 0.15, "coverage": 1.2},
           "foggy": {"share_fake": 0.0, "share_real": 0.0, "coverage": None},
           "snowy": {"share_fake": 0.01, "share_real": 0.1, "coverage": 0.1}}
    Runner(tmp_path, [Stage("samples", lambda out: {"coverage": cov})], log=lambda s: None).run()
    notes = coverage_notes(tmp_path, ["sunny", "night", "foggy"])  # snowy is not one of the run's
    assert len(notes) == 1 and "'sunny' 0.59x" in notes[0]
    assert coverage_notes(tmp_path / "nowhere", ["sunny"]) == []

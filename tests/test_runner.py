"""The stage runner: skips up-to-date stages, resumes after a failure, re-runs what changed."""
import json

import pytest

from pipeline.errors import UserError
from pipeline.run.runner import Runner, Stage, StageFailed


def make_stages(calls, cfg_b=1, fail_b=False, extra=False):
    def writer(name, value):
        def run(out):
            calls.append(name)
            if name == "b" and fail_b:
                raise RuntimeError("boom")
            (out / "value.txt").write_text(str(value))
            return {"value": value}
        return run

    stages = [
        Stage("a", writer("a", 1), config={"x": 1}),
        Stage("b", writer("b", cfg_b), config={"y": cfg_b}, needs=["a"]),
        Stage("c", writer("c", 3), config={}, needs=["b"]),
    ]
    if extra:
        stages.append(Stage("d", writer("d", 4), config={"new": True}, needs=["a"]))
    return stages


def test_second_run_skips_everything(tmp_path):
    calls = []
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run()
    assert calls == ["a", "b", "c"]
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run()
    assert calls == ["a", "b", "c"]
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["metrics"] == {"value": 1} and m["needs"] == ["a"]
    assert set(m["timings"]) == {"started", "seconds"} and isinstance(m["timings"]["seconds"], float)


def test_failure_names_stage_and_resume_skips_done(tmp_path):
    calls = []
    with pytest.raises(StageFailed, match="stage 'b' failed.*boom") as e:
        Runner(tmp_path, make_stages(calls, fail_b=True), log=lambda s: None).run()
    assert "resume" in str(e.value)
    assert not (tmp_path / "b" / "manifest.json").exists()
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run()
    assert calls == ["a", "b", "b", "c"]


def test_config_change_reruns_downstream_only(tmp_path):
    calls = []
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run()
    runner = Runner(tmp_path, make_stages(calls, cfg_b=2), log=lambda s: None)
    assert [r for _, r in runner.plan()] == ["up to date", "changed: config", "upstream re-runs"]
    runner.run()
    assert calls == ["a", "b", "c", "b", "c"]


def test_added_stage_runs_alone_and_from_forces(tmp_path):
    calls = []
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run()
    Runner(tmp_path, make_stages(calls, extra=True), log=lambda s: None).run()
    assert calls == ["a", "b", "c", "d"]
    Runner(tmp_path, make_stages(calls), log=lambda s: None).run(force_from="b")
    assert calls[-2:] == ["b", "c"]
    with pytest.raises(UserError, match="no such stage"):
        Runner(tmp_path, make_stages(calls), log=lambda s: None).plan(force_from="zzz")


def test_input_file_change_is_detected(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("1")
    calls = []
    def stages():
        return [Stage("a", lambda out: calls.append("a") or {}, inputs=[src])]
    Runner(tmp_path / "run", stages(), log=lambda s: None).run()
    Runner(tmp_path / "run", stages(), log=lambda s: None).run()
    src.write_text("2")
    Runner(tmp_path / "run", stages(), log=lambda s: None).run()
    assert calls == ["a", "a"]


def test_unfinished_work_is_resumed_only_under_the_same_key(tmp_path):
    seen = []

    def stages(cfg, fail):
        def run(out):
            seen.append((out / "partial.txt").exists())  # did earlier unfinished work survive?
            (out / "partial.txt").write_text("half done")
            if fail:
                raise RuntimeError("killed")
            return {}
        return [Stage("a", run, config={"x": cfg})]

    with pytest.raises(StageFailed):
        Runner(tmp_path, stages(1, True), log=lambda s: None).run()
    with pytest.raises(StageFailed):
        Runner(tmp_path, stages(1, True), log=lambda s: None).run()  # same key: resumes
    Runner(tmp_path, stages(2, False), log=lambda s: None).run()  # new config: starts clean
    Runner(tmp_path, stages(2, False), log=lambda s: None).run(force_from="a")  # forced: clean
    assert seen == [False, True, False, False]

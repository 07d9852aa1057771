"""Progress of long work (pipeline/progress.py): a live bar on a terminal, about ten plain lines
in a log, through the verbs and the library loops; TensorBoard scalars of both trainings."""
import contextlib
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios

import pytest

from gan.networks import GeneratorConfig
from gan.training import InMemoryBatches, TrainConfig, train
from pipeline.cli import main
from pipeline.errors import UserError
from pipeline.progress import LineProgress, progress_bar
from test_gan_training import GCFG, TCFG, data_set
from test_pairs import tiny_boundary, tiny_gan

TINY_CONFIG = os.path.join(os.path.dirname(__file__), "configs", "tiny.yaml")
LINE = re.compile(r"^(?P<desc>[\w -]+): +(?P<pct>\d+)% \((?P<n>[\d.]+)/(?P<total>[\d.]+) ")
TINY_TRANSLATOR = ["--set", "translator.ngf=4", "--set", "translator.n_downsample=2", "--set", "translator.n_blocks=1",
                   "--set", "train_translator.batch=2", "--set", "train_translator.ndf=4",
                   "--set", "train_translator.n_layers_d=2", "--set", "train_translator.num_d=1",
                   "--set", "train_translator.log_every=5", "--set", "train_translator.grid_every=100",
                   "--set", "train_translator.snapshot_every=100"]


def percentages(text: str, desc: str) -> list[int]:
    return [int(m["pct"]) for line in text.splitlines() if (m := LINE.match(line)) and m["desc"] == desc]


def assert_about_ten_rising_lines(pcts: list[int]) -> None:
    assert 5 <= len(pcts) <= 15, pcts
    assert all(b > a for a, b in zip(pcts, pcts[1:])), pcts
    assert pcts[-1] == 100, pcts


@pytest.fixture()
def gan_and_boundary(tmp_path):
    from gan.checkpoint import save_generator

    return save_generator(tiny_gan(), tmp_path / "g.safetensors"), tiny_boundary().save(tmp_path / "sunny.npz")


def run_with_stderr_in(log_file, argv: list[str]) -> str:
    """Run a verb in-process with stderr redirected to a file (as `photoedit ... 2> log` does)."""
    with open(log_file, "w") as f, contextlib.redirect_stderr(f):
        assert main(argv) == 0
    return log_file.read_text()


def test_a_log_gets_a_line_per_tenth(tmp_path):
    with open(tmp_path / "log", "w") as f:
        bar = progress_bar(total=1000, desc="work", unit="step", file=f)
        assert isinstance(bar, LineProgress)
        for _ in range(1000):
            bar.update(1)
        bar.close()
        resumed = progress_bar(total=1000, initial=450, desc="resumed", file=f)  # only the tenths ahead of it
        for _ in range(550):
            resumed.update(1)
        resumed.close()
        stopped = progress_bar(total=30, desc="stopped", file=f)  # updates of 7: a line at each tenth passed,
        for _ in range(2):  # and one where the work stopped
            stopped.update(7)
        stopped.close()
        with progress_bar(total=10, desc="off", disable=True, file=f) as off:
            off.update(10)
    text = (tmp_path / "log").read_text()
    assert percentages(text, "work") == list(range(10, 101, 10))
    assert percentages(text, "resumed") == list(range(50, 101, 10))
    assert [line.split("% (")[1].split(" ")[0] for line in text.splitlines() if line.startswith("stopped")] \
        == ["7/30", "14/30"]
    assert "off" not in text


def test_a_terminal_gets_a_live_bar():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    try:
        with os.fdopen(slave, "w") as tty:
            bar = progress_bar(total=50, desc="work", file=tty)
            assert not isinstance(bar, LineProgress)
            for _ in range(50):
                bar.update(1)
            bar.close()
        out = b""
        while select.select([master], [], [], 0)[0]:  # everything written, in pieces
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            out += chunk
        out = out.decode()
    finally:
        os.close(master)
    assert "\r" in out and "100%" in out and "50/50" in out  # redrawn in place, not line by line


def test_train_translator_logs_about_ten_lines(tmp_path, gan_and_boundary):
    gan, bnd = gan_and_boundary
    text = run_with_stderr_in(tmp_path / "log", ["train-translator", "--gan", str(gan), "--boundary", str(bnd),
                                                 "--out", str(tmp_path / "sunny"),
                                                 "--set", "train_translator.steps=20", *TINY_TRANSLATOR])
    pcts = percentages(text, "train-translator")
    assert_about_ten_rising_lines(pcts)
    assert "(20/20 step)" in text


def test_sampling_and_rescoring_log_about_ten_lines(tmp_path, gan_and_boundary):
    gan, bnd = gan_and_boundary
    text = run_with_stderr_in(tmp_path / "log", ["sample", "--gan", str(gan), "--out", str(tmp_path / "shard"),
                                                 "--no-images", "--set", "sample.n=200", "--set", "sample.batch=10",
                                                 "--set", "sample.chunk=50"])
    assert_about_ten_rising_lines(percentages(text, "sample"))
    text = run_with_stderr_in(tmp_path / "log2", ["rescore", "--gan", str(gan), "--boundary", str(bnd),
                                                  "--out", str(tmp_path / "rescore"),
                                                  "--set", "rescore.n=40", "--set", "rescore.batch=4"])
    assert_about_ten_rising_lines(percentages(text, "rescore sunny"))


def test_gan_training_takes_the_bar_from_its_caller(tmp_path):
    with open(tmp_path / "log", "w") as f, contextlib.redirect_stderr(f):
        train(GeneratorConfig(**GCFG), TrainConfig(kimg=0.04, **TCFG), InMemoryBatches(data_set(), 4),
              tmp_path / "run", progress=progress_bar)
    assert_about_ten_rising_lines(percentages((tmp_path / "log").read_text(), "train-gan"))


def test_tensorboard_missing_is_a_clear_error(monkeypatch, tmp_path):
    from pipeline.progress import tensorboard_writer

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"train_gan.tensorboard=true needs the tensorboard package: "
                                        r"pip install 'photoedit\[tensorboard\]'"):
        tensorboard_writer(tmp_path / "tb", "train_gan.tensorboard")
    assert not (tmp_path / "tb").exists()


def test_tensorboard_scalars_of_both_trainings(tmp_path, gan_and_boundary):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def scalars(folder):
        acc = EventAccumulator(str(folder))
        acc.Reload()
        return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}

    gan, bnd = gan_and_boundary
    assert main(["train-translator", "--gan", str(gan), "--boundary", str(bnd), "--out", str(tmp_path / "sunny"),
                 "--set", "train_translator.steps=10", "--set", "train_translator.tensorboard=true",
                 *TINY_TRANSLATOR]) == 0
    tb = scalars(tmp_path / "sunny.run" / "tb")
    assert [s for s, _ in tb["train_translator/l1"]] == [5, 10]  # one point per stats.jsonl row
    lr = [v for _, v in tb["train_translator/lr"]]
    assert lr[1] < lr[0]  # the decay of the schedule, as trained
    assert "train_translator/images_per_s" in tb

    out = tmp_path / "gan"
    assert main(["train-gan", "--data", "world", "--out", str(out), "--config", str(TINY_CONFIG),
                 "--set", "train_gan.tensorboard=true"]) == 0
    tb = scalars(out / "tb")
    swd = tb["train_gan/swd"]
    assert swd[0][0] == 0 and len(swd) >= 2  # the untrained baseline, then each tick's
    assert {"train_gan/loss_g", "train_gan/loss_d", "train_gan/g_lr"} <= set(tb)


def test_no_tensorboard_folder_unless_asked(tmp_path, gan_and_boundary):
    gan, bnd = gan_and_boundary
    assert main(["train-translator", "--gan", str(gan), "--boundary", str(bnd), "--out", str(tmp_path / "sunny"),
                 "--set", "train_translator.steps=2", *TINY_TRANSLATOR]) == 0
    assert not (tmp_path / "sunny.run" / "tb").exists()



def test_tensorboard_does_not_change_stage_keys(tmp_path):
    """Turning the scalars on for a run half done neither redoes nor restarts its stages."""
    from pipeline.run.stages import Plan

    plain = Plan(TINY_CONFIG, [], tmp_path)
    logged = Plan(TINY_CONFIG, ["train_gan.tensorboard=true", "train_translator.tensorboard=true"], tmp_path)
    assert logged.configs["train_gan"].tensorboard and logged.configs["train_translator"].tensorboard
    assert [s.config for s in plain.stages()] == [s.config for s in logged.stages()]
    assert "train_translator.tensorboard=true" in logged.cfg_args("sunny")  # still reaches the verbs

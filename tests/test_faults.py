"""Faults injected at known points: nothing lost, a clear message, and a rerun that finishes.

Each fault is placed deterministically (issue #18): a patched writer fails after N files,
a child process SIGKILLs itself between a checkpoint's temp write and its rename, a file
is corrupted before it is read. No test waits on a timer to decide what happened.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import unicodedata
from pathlib import Path

import pytest
import torch
from PIL import Image

import pipeline.fileio
import pipeline.photos.imageio
from pipeline.cli import main
from pipeline.photos.batch import BatchOptions, plan_jobs, run_batch
from test_edit import make_bundle, textured_photo
from test_edit_batch import photo_folder, read_only
from translators.edit_config import EditConfig

TESTS = Path(__file__).resolve().parent
SERIAL = ["--workers", "1", "--batch-size", "1"]  # one I/O thread: files are written in job order


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    make_bundle(folder, "sunny")
    return folder


def edit(argv, capsys) -> tuple[int, dict, str]:
    code = main(argv + ["--json", "--no-progress"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def whole(folder: Path) -> list[str]:
    """Names of the images under folder, each decoded in full (a partial file fails here)."""
    names = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with Image.open(p) as im:
                im.load()
            names.append(p.relative_to(folder).as_posix())
    return names


def partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial" in p.name or p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------ the output disk

class Disk:
    """Files opened by the atomic writer under `root` get `free` bytes in all; a write past
    that writes what fits, then fails with ENOSPC, as a full disk does."""

    def __init__(self, monkeypatch, root: Path, free: int):
        self.free, self.lock, real_fdopen = free, threading.Lock(), os.fdopen

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            try:
                on_disk = os.readlink(f"/proc/self/fd/{fd}").startswith(str(root))
            except OSError:
                on_disk = False
            return _Limited(f, self) if on_disk else f

        monkeypatch.setattr(pipeline.fileio.os, "fdopen", fdopen)


class _Limited:
    def __init__(self, f, disk: Disk):
        self.f, self.disk = f, disk

    def write(self, data) -> int:
        with self.disk.lock:
            n = min(len(data), self.disk.free)
            self.disk.free -= n
        self.f.write(data[:n])
        if n < len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_disk_full_mid_batch_leaves_no_partial_file_and_a_rerun_finishes(tmp_path, models, capsys, monkeypatch):
    src = photo_folder(tmp_path / "in", 10)
    argv = ["-a", "sunny", str(src), "--models", str(models), *SERIAL]
    # The same batch on a roomy disk gives each output's size; the full disk holds 3.5 of them.
    assert edit(argv + ["-o", str(tmp_path / "roomy")], capsys)[0] == 0
    sizes = [p.stat().st_size for p in sorted((tmp_path / "roomy").iterdir())]
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        Disk(m, out, free=sum(sizes[:3]) + sizes[3] // 2)
        code, summary, err = edit(argv + ["-o", str(out)], capsys)
    assert code == 1 and summary["counts"] == {"done": 3, "skipped": 0, "failed": 7}
    for f in summary["failed"]:
        assert "No space left on device" in f["reason"] and str(out) in f["reason"]
        assert Path(f["file"]).name in err
    assert whole(out) == [f"p{i:02d}.sunny.jpg" for i in range(3)] and not partials(tmp_path)
    for name in whole(out):
        assert (out / name).read_bytes() == (tmp_path / "roomy" / name).read_bytes()
    # Space freed: the rerun edits only what failed.
    code, summary, _ = edit(argv + ["-o", str(out)], capsys)
    assert code == 0 and summary["counts"] == {"done": 7, "skipped": 3, "failed": 0}
    assert len(whole(out)) == 10 and not partials(tmp_path)


def fault_before_write(monkeypatch, n: int, fault) -> None:
    """Run fault() just before the n-th photo write (1-based), in the writing thread."""
    real, calls = pipeline.photos.imageio.atomic_write_bytes, []

    def write(path, data, durable=False):
        calls.append(path)
        if len(calls) == n:
            fault(Path(path))
        return real(path, data, durable)

    monkeypatch.setattr(pipeline.photos.imageio, "atomic_write_bytes", write)


def test_output_folder_turns_read_only_mid_batch(tmp_path, models, capsys, monkeypatch):
    src, out = photo_folder(tmp_path / "in", 6), tmp_path / "out"
    argv = ["-a", "sunny", str(src), "-o", str(out), "--models", str(models), *SERIAL]
    with contextlib.ExitStack() as stack:
        fault_before_write(monkeypatch, 3, lambda path: stack.enter_context(read_only(path.parent)))
        code, summary, err = edit(argv, capsys)
        assert whole(out) == ["p00.sunny.jpg", "p01.sunny.jpg"] and not partials(out)
    monkeypatch.undo()
    assert code == 1 and summary["counts"] == {"done": 2, "skipped": 0, "failed": 4}
    assert all(f"cannot write to folder {out}" in f["reason"] for f in summary["failed"])
    code, summary, _ = edit(argv, capsys)
    assert code == 0 and summary["counts"] == {"done": 4, "skipped": 2, "failed": 0} and len(whole(out)) == 6


def test_output_folder_vanishes_between_temp_write_and_rename(tmp_path, models, capsys, monkeypatch):
    import shutil

    src, out = photo_folder(tmp_path / "in", 6), tmp_path / "out"
    argv = ["-a", "sunny", str(src), "-o", str(out), "--models", str(models), *SERIAL]
    real, calls = os.replace, []

    def replace(a, b, *args, **kwargs):
        if Path(b).parent == out:
            calls.append(b)
            if len(calls) == 3:
                shutil.rmtree(out)  # the folder (temp file included) is gone when the rename comes
        return real(a, b, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(pipeline.fileio.os, "replace", replace)
        code, summary, err = edit(argv, capsys)
    assert code == 1 and summary["counts"]["failed"] == 1
    failed = summary["failed"][0]
    assert Path(failed["file"]).name == "p02.jpg" and f"cannot write to folder {out}" in failed["reason"]
    assert "p02.jpg" in err
    # The later photos went into the folder made again; nothing partial anywhere.
    assert whole(out) == ["p03.sunny.jpg", "p04.sunny.jpg", "p05.sunny.jpg"] and not partials(tmp_path)
    code, summary, _ = edit(argv, capsys)
    assert code == 0 and summary["counts"] == {"done": 3, "skipped": 3, "failed": 0} and len(whole(out)) == 6


# ------------------------------------------------------------------------------ inputs

def test_inputs_that_vanish_or_change_while_queued(tmp_path, models):
    from translators.inference import EditPipeline

    src, out = photo_folder(tmp_path / "in", 6), tmp_path / "out"
    jobs = plan_jobs([str(src)], ["sunny"], str(out))
    # After planning, before any is read:
    (src / "p00.jpg").unlink()
    data = (src / "p01.jpg").read_bytes()
    (src / "p01.jpg").write_bytes(data[: len(data) // 2])
    (src / "p02.jpg").write_text("not a photo any more\n")
    Image.fromarray(textured_photo(40, 20, seed=9)).save(src / "p03.jpg")  # a different, valid photo
    (src / "p04.jpg").unlink()
    (src / "p04.jpg").mkdir()  # replaced by a folder
    pipe = EditPipeline.from_pretrained(models / "sunny", config=EditConfig(batch_size=1))
    logged = []
    summary = run_batch(pipe, jobs, BatchOptions(workers=1, progress=False), log=logged.append)
    reasons = {Path(f["file"]).name: f["reason"] for f in summary.failed}
    assert set(reasons) == {"p00.jpg", "p01.jpg", "p02.jpg", "p04.jpg"}
    assert "No such file" in reasons["p00.jpg"] and "truncated" in reasons["p01.jpg"]
    assert "not an image" in reasons["p02.jpg"] and "folder" in reasons["p04.jpg"]
    assert all(any(name in line for line in logged) for name in reasons)
    assert whole(out) == ["p03.sunny.jpg", "p05.sunny.jpg"] and not partials(tmp_path)
    assert Image.open(out / "p03.sunny.jpg").size == (20, 40)  # the photo as it was when read
    # --in-place: a vanished input is reported and not created again.
    jobs = plan_jobs([str(src / "p05.jpg")], ["sunny"], None, in_place=True)
    (src / "p05.jpg").unlink()
    summary = run_batch(pipe, jobs, BatchOptions(workers=1, progress=False), in_place=True, log=logged.append)
    assert len(summary.failed) == 1 and not (src / "p05.jpg").exists() and not partials(tmp_path)


def test_two_processes_editing_into_one_folder_leave_every_output_whole_and_single(tmp_path, models, capsys):
    """A (a child process) pauses after 2 photos, its queue planned and photos in flight; B
    (this process) runs the same batch to the end meanwhile; then A is stopped and finishes
    what it had in flight. Whatever the order of their writes, each output is one whole file
    under its one name."""
    total = 10
    src, out = photo_folder(tmp_path / "in", total), tmp_path / "out"
    argv = ["-a", "sunny", str(src), "-o", str(out), "--models", str(models), *SERIAL]
    a = subprocess.Popen([sys.executable, "-m", "pipeline", *argv, "--no-progress", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PHOTOEDIT_TEST_PAUSE_AFTER": "2"})
    seen, b = [], None
    for line in a.stderr:
        seen.append(line)
        if "paused after 2 photo(s)" in line:
            b = edit(argv, capsys)
            a.send_signal(signal.SIGTERM)
            break
    _, a_err = a.communicate(timeout=120)
    # 130: stopped by the signal; 0 if B outlasted the pause's minute and A went on: either way
    # the outputs below must be the same.
    assert b is not None and a.returncode in (0, 130), "".join(seen) + a_err
    code, summary, _ = b
    assert code == 0 and summary["counts"]["done"] + summary["counts"]["skipped"] == total
    assert whole(out) == [f"p{i:02d}.sunny.jpg" for i in range(total)]  # every one whole, no extra name
    assert sorted(p.name for p in out.iterdir()) == whole(out) and not partials(tmp_path)
    code, summary, _ = edit(argv, capsys)
    assert code == 0 and summary["counts"]["skipped"] == total


def test_two_in_place_batches_never_edit_a_photo_twice(tmp_path, models):
    """B edits the folder in place while A, which planned the same folder, is after its first
    photo. A's later photos are read after B wrote them: they must not be edited again."""
    import shutil

    from translators.inference import EditPipeline

    src = photo_folder(tmp_path / "in", 8)
    ref = shutil.copytree(src, tmp_path / "ref")
    pipe = EditPipeline.from_pretrained(models / "sunny", config=EditConfig(batch_size=1))
    opts = BatchOptions(workers=1, progress=False)
    run_batch(pipe, plan_jobs([str(ref)], ["sunny"], None, in_place=True), opts, in_place=True)  # edited once
    other = []

    def run_other_process(summary):
        if not other:
            jobs = plan_jobs([str(src)], ["sunny"], None, in_place=True)
            other.append(run_batch(pipe, jobs, opts, in_place=True, log=lambda m: None))

    jobs = plan_jobs([str(src)], ["sunny"], None, in_place=True)
    summary = run_batch(pipe, jobs, BatchOptions(workers=1, progress=False, on_result=run_other_process),
                        in_place=True, log=lambda m: None)
    assert not summary.failed and not other[0].failed and len(other[0].done) + len(other[0].skipped) == 8
    for p in sorted(src.iterdir()):
        assert p.read_bytes() == (ref / p.name).read_bytes(), f"{p.name} was edited twice"
    assert len(summary.skipped) >= 4  # A's photos read after B wrote them: found stamped, not edited again


def test_inputs_cannot_send_outputs_outside_the_output_tree(tmp_path, models, capsys, monkeypatch):
    outside, src, out = tmp_path / "outside", tmp_path / "in", tmp_path / "out"
    outside.mkdir()
    Image.fromarray(textured_photo(24, 32)).save(outside / "secret.jpg")
    photo_folder(src / "sub", 1)
    Image.fromarray(textured_photo(24, 32)).save(src / "a..b.jpg")
    (src / "link.jpg").symlink_to(outside / "secret.jpg")  # a file link out of the tree: read, written inside
    (src / "linkdir").symlink_to(outside, target_is_directory=True)  # a folder link: not followed
    (src / "loop").symlink_to(src, target_is_directory=True)
    monkeypatch.chdir(src / "sub")
    inputs = [str(src), "../sub/../sub/p00.jpg", str((src / "a..b.jpg").resolve())]
    before = sorted(p.name for p in outside.iterdir())
    jobs = plan_jobs(inputs, ["sunny"], str(out))
    for job in jobs:
        assert job.dst.resolve().is_relative_to(out.resolve()), job
    code, summary, _ = edit(["-a", "sunny", *inputs, "-o", str(out), "--models", str(models)], capsys)
    assert code == 0, summary
    assert whole(out) == ["a..b.sunny.jpg", "link.sunny.jpg", "p00.sunny.jpg", "sub/p00.sunny.jpg"]
    assert sorted(p.name for p in outside.iterdir()) == before and not partials(tmp_path)
    # The same file named twice (here through the folder and by itself) is edited once.
    assert summary["counts"] == {"done": 4, "skipped": 0, "failed": 0}


def test_the_same_photo_named_twice_is_edited_once(tmp_path, models, capsys):
    src = photo_folder(tmp_path / "in", 2)
    inputs = [str(src), str(src / "p00.jpg"), str(src / "." / ".." / "in" / "p00.jpg")]
    code, summary, _ = edit(["-a", "sunny", *inputs, "-o", str(tmp_path / "out"), "--models", str(models)], capsys)
    assert code == 0 and summary["counts"] == {"done": 2, "skipped": 0, "failed": 0}


def test_names_that_collide_after_case_folding_are_refused_not_overwritten(tmp_path, models, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    names = ["Street.jpg", "street.jpg", unicodedata.normalize("NFC", "café.jpg"),
             unicodedata.normalize("NFD", "café.jpg")]
    for seed, name in enumerate(names):
        Image.fromarray(textured_photo(24, 32, seed=seed)).save(src / name)
    if len(list(src.iterdir())) < 4:
        pytest.skip("this disk folds case or normalises names itself")
    code, summary, err = edit(["-a", "sunny", str(src), "-o", str(out), "--models", str(models)], capsys)
    # On a case-insensitive disk (macOS, Windows) the second of each pair would replace the first.
    assert code == 1 and summary["counts"] == {"done": 2, "skipped": 0, "failed": 2}
    for f in summary["failed"]:
        assert "case-insensitive" in f["reason"] and Path(f["file"]).name in err
    assert len(whole(out)) == 2 and not partials(tmp_path)


# ------------------------------------------------------------------------------ SIGKILL in a checkpoint write

KILLER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
real, seen = os.replace, []
def replace(a, b, *args, **kwargs):
    if os.path.basename(b) == {name!r}:
        seen.append(b)
        if len(seen) == {nth}:
            os.kill(os.getpid(), signal.SIGKILL)  # after the temp file is written, before the rename
    return real(a, b, *args, **kwargs)
os.replace = replace
import torch
torch.set_num_threads(1)
"""


def run_killed(body: str, name: str, nth: int) -> None:
    """Run body in a child that SIGKILLs itself at the nth rename onto a file called `name`."""
    script = KILLER.format(tests=str(TESTS), name=name, nth=nth) + textwrap.dedent(body)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=TESTS.parent)
    assert r.returncode == -signal.SIGKILL, r.stderr


def flat(module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.state_dict().values()])


GAN_RUN = """
from gan.networks import GeneratorConfig
from gan.training import InMemoryBatches, TrainConfig, train
from test_gan_training import GCFG, TCFG, data_set
train(GeneratorConfig(**GCFG), TrainConfig(**{{**TCFG, **{settings!r}}}), InMemoryBatches(data_set(), 4), {out!r},
      progress=False)
"""
GAN_TRAIN = {"kimg": 0.012, "tick_kimg": 0.004, "snapshot_ticks": 1}  # 3 steps, a checkpoint after each


def gan_config(**kw):
    from gan.training import TrainConfig
    from test_gan_training import TCFG

    return TrainConfig(**{**TCFG, **GAN_TRAIN, **kw})


@pytest.fixture(scope="module")
def gan_uninterrupted(tmp_path_factory):
    from gan.networks import GeneratorConfig
    from gan.training import InMemoryBatches, train
    from test_gan_training import GCFG, data_set

    torch.set_num_threads(1)
    return train(GeneratorConfig(**GCFG), gan_config(), InMemoryBatches(data_set(), 4),
                 tmp_path_factory.mktemp("gan_full"), progress=False)


# Killed inside the step folder (temp file of one of its files) or after it, before `latest` moves.
@pytest.mark.parametrize("name", ["generator_ema.safetensors", "latest"])
def test_sigkill_during_a_gan_checkpoint_write_resumes_from_the_last_complete_one(tmp_path, name,
                                                                                  gan_uninterrupted):
    from gan.networks import GeneratorConfig
    from gan.training import InMemoryBatches, train
    from test_gan_training import GCFG, data_set

    run = tmp_path / "run"
    # Killed while writing step 2's checkpoint.
    run_killed(GAN_RUN.format(out=str(run), settings=GAN_TRAIN), name, nth=2)
    latest = run / "checkpoints" / "latest"
    assert json.loads((latest / "state.json").read_text())["step"] == 1
    resumed = train(GeneratorConfig(**GCFG), gan_config(), InMemoryBatches(data_set(), 4), run,
                    resume=True, progress=False)
    assert resumed.state.step == gan_uninterrupted.state.step == 3
    for a, b in [(resumed.G, gan_uninterrupted.G), (resumed.D, gan_uninterrupted.D),
                 (resumed.G_ema, gan_uninterrupted.G_ema)]:
        assert torch.equal(flat(a), flat(b))  # bit-exact on the CPU
    assert latest.resolve().name == "step-00000003" and not partials(run)


TRANSLATOR_RUN = """
from test_translator_training import ARCH, A_MAX, DarkenPairs, small_cfg
from translators.training import TranslatorTrainer
TranslatorTrainer(DarkenPairs(12), ARCH, small_cfg(), {out!r}, A_MAX, log=lambda m: None).run(progress=False)
"""


def test_sigkill_during_a_translator_snapshot_resumes_from_the_last_complete_one(tmp_path):
    from test_translator_training import A_MAX, ARCH, DarkenPairs, small_cfg
    from translators.training import TranslatorTrainer

    full = TranslatorTrainer(DarkenPairs(12), ARCH, small_cfg(), tmp_path / "full", A_MAX, log=lambda m: None)
    full.run(progress=False)
    run = tmp_path / "run"
    run_killed(TRANSLATOR_RUN.format(out=str(run)), "state.pt", nth=2)  # snapshots at steps 3 and 6
    resumed = TranslatorTrainer(DarkenPairs(12), ARCH, small_cfg(), run, A_MAX, resume=True, log=lambda m: None)
    assert resumed.step == 3
    resumed.run(progress=False)
    assert torch.equal(flat(resumed.G), flat(full.G)) and torch.equal(flat(resumed.D), flat(full.D))
    steps = [json.loads(line)["step"] for line in (run / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no row logged twice
    assert not partials(run)


# ------------------------------------------------------------------------------ corrupt files

def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture(scope="module")
def stage_files(tmp_path_factory):
    """A tiny generator, boundary and pairs folder, as the pipeline's stages write them."""
    from gan.checkpoint import save_generator
    from test_pairs import tiny_boundary, tiny_gan

    folder = tmp_path_factory.mktemp("stages")
    gan = save_generator(tiny_gan(), folder / "g.safetensors")
    boundary = tiny_boundary().save(folder / "sunny.npz")
    assert main(["pairs", "--gan", str(gan), "--boundary", str(boundary), "--n", "8", "--strength-range", "1,3",
                 "--out", str(folder / "pairs")]) == 0
    return {"gan": gan, "boundary": Path(boundary), "pairs": folder / "pairs"}


def copy_of(path: Path, dst: Path) -> Path:
    import shutil

    (shutil.copytree if path.is_dir() else shutil.copy)(path, dst)
    return dst


def named_error(argv, capsys, name: str) -> str:
    """Run the CLI (a traceback fails the test by raising here); expect exit 2 naming `name`."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "photoedit: error:" in err and name in err, err
    return err


def test_corrupt_gan_checkpoint_is_a_named_error(tmp_path, stage_files, capsys):
    bad = truncate(copy_of(stage_files["gan"], tmp_path / "g.safetensors"))
    named_error(["pairs", "--gan", str(bad), "--boundary", str(stage_files["boundary"]), "--n", "4",
                 "--out", str(tmp_path / "p")], capsys, str(bad))
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("part", [".npz", ".json"])
def test_corrupt_boundary_is_a_named_error(tmp_path, stage_files, capsys, part):
    copy_of(stage_files["boundary"].with_suffix(".json"), tmp_path / "sunny.json")
    bad = copy_of(stage_files["boundary"], tmp_path / "sunny.npz")
    truncate(bad.with_suffix(part))
    named_error(["pairs", "--gan", str(stage_files["gan"]), "--boundary", str(bad), "--n", "4",
                 "--out", str(tmp_path / "p")], capsys, str(bad.with_suffix(part)))


@pytest.mark.parametrize("damage", ["truncated x", "garbage a", "truncated manifest"])
def test_corrupt_pairs_shard_is_a_named_error(tmp_path, stage_files, capsys, damage):
    pairs = copy_of(stage_files["pairs"], tmp_path / "pairs")
    target = {"truncated x": "shard_00000.x.npy", "garbage a": "shard_00000.a.npy",
              "truncated manifest": "manifest.json"}[damage]
    if damage.startswith("garbage"):
        (pairs / target).write_bytes(b"\x93NUMPY garbage" * 10)
    else:
        truncate(pairs / target)
    named_error(["train-translator", "--pairs", str(pairs), "--out", str(tmp_path / "m" / "sunny"), "--quiet"],
                capsys, target)


@pytest.mark.parametrize("file", ["model.safetensors", "config.json"])
def test_corrupt_bundle_is_a_named_error(tmp_path, models, capsys, file):
    bundle = copy_of(models / "sunny", tmp_path / "models" / "sunny")
    truncate(bundle / file)
    Image.fromarray(textured_photo(24, 32)).save(tmp_path / "p.jpg")
    named_error(["-a", "sunny", str(tmp_path / "p.jpg"), "--models", str(tmp_path / "models")], capsys, file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "p.jpg"]


def test_corrupt_translator_snapshot_is_a_named_error_on_resume(tmp_path, stage_files, capsys):
    tiny = ["--set", "translator.ngf=4", "--set", "translator.n_downsample=2", "--set", "translator.n_blocks=1",
            "--set", "train_translator.steps=2", "--set", "train_translator.batch=4",
            "--set", "train_translator.ndf=4", "--set", "train_translator.n_layers_d=2", "--quiet"]
    argv = ["train-translator", "--pairs", str(stage_files["pairs"]), "--out", str(tmp_path / "sunny")] + tiny
    assert main(argv) == 0
    truncate(tmp_path / "sunny.run" / "state.pt")
    named_error(argv + ["--resume"], capsys, "state.pt")


def test_corrupt_gan_training_checkpoint_is_a_named_error_on_resume(tmp_path):
    """train-gan turns ValueError (CheckpointError is one) into its named exit-2 error."""
    from gan.networks import GeneratorConfig
    from gan.training import InMemoryBatches, train
    from test_gan_training import GCFG, data_set

    run = tmp_path / "run"
    cfg = gan_config(kimg=0.008)
    train(GeneratorConfig(**GCFG), cfg, InMemoryBatches(data_set(), 4), run, progress=False)
    for name in ("generator.safetensors", "optimizers.safetensors", "state.json"):
        file = run / "checkpoints" / "latest" / name
        good = file.read_bytes()
        truncate(file)
        with pytest.raises(ValueError, match=name):
            train(GeneratorConfig(**GCFG), gan_config(), InMemoryBatches(data_set(), 4), run,
                  resume=True, progress=False)
        file.write_bytes(good)


# ------------------------------------------------------------------------------ NaN/inf in a step

def test_gan_guard_keeps_the_last_good_checkpoint_on_inf(tmp_path):
    from gan.checkpoint import load_generator
    from gan.networks import GeneratorConfig
    from gan.training import InMemoryBatches, TrainingDiverged, train
    from test_gan_training import GCFG, data_set

    good = InMemoryBatches(data_set(), 4)

    def poisoned(start):
        for i, x in enumerate(good(start), start=start):
            yield torch.full_like(x, float("inf")) if i == 2 else x

    with pytest.raises(TrainingDiverged, match="non-finite loss at step 3.*step-00000002"):
        train(GeneratorConfig(**GCFG), gan_config(kimg=1.0), poisoned, tmp_path, progress=False)
    assert all(torch.isfinite(p).all() for p in load_generator(tmp_path).parameters())
    assert json.loads((tmp_path / "checkpoints" / "latest" / "state.json").read_text())["step"] == 2


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_translator_guard_keeps_the_last_good_snapshot_and_says_so(tmp_path, value):
    from test_translator_training import A_MAX, ARCH, DarkenPairs, small_cfg
    from translators.training import STATE_FILE, TranslatorTrainer

    trainer = TranslatorTrainer(DarkenPairs(12), ARCH, small_cfg(), tmp_path, A_MAX, log=lambda m: None)
    clean = trainer._batch_to_device

    def poisoned(batch, step):
        x, y, s = clean(batch, step)
        return (torch.full_like(x, value) if step == 4 else x), y, s

    trainer._batch_to_device = poisoned
    with pytest.raises(ValueError, match=r"non-finite loss at step 5.*state\.pt.*step 3"):
        trainer.run(progress=False)
    state = torch.load(tmp_path / STATE_FILE, weights_only=True)
    assert state["step"] == 3 and all(torch.isfinite(t).all() for t in state["G"].values())
    # The run resumes from that snapshot.
    resumed = TranslatorTrainer(DarkenPairs(12), ARCH, small_cfg(), tmp_path, A_MAX, resume=True,
                                log=lambda m: None)
    resumed.run(progress=False)
    assert resumed.step == 6 and all(torch.isfinite(p).all() for p in resumed.G.parameters())

"""The Ray Data job on a local Ray with 2 CPUs: edits what it can, reports the bad file, resumes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

ray = pytest.importorskip("ray")

from pipeline.cli import main  # noqa: E402
from pipeline.photos.batch import BatchOptions, plan_jobs, run_batch  # noqa: E402
from pipeline.photos.ray_job import RayOptions, run_ray_job  # noqa: E402
from test_edit import make_bundle, textured_photo  # noqa: E402
from translators.inference import EditConfig, EditPipeline  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path):
    bundle = make_bundle(tmp_path / "models", "night")
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(textured_photo(48 + 8 * i, 64, seed=i)).save(photos / ("sub" if i % 2 else "") / f"p{i}.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return bundle, photos


def test_ray_job_edits_the_rest_reports_the_bad_file_and_a_rerun_redoes_nothing(local_ray, folder, tmp_path, capsys):
    bundle, photos = folder
    out = tmp_path / "out"
    args = ["ray-edit", "-a", str(bundle), "-s", "0.8", str(photos), "-o", str(out), "--no-progress", "--json"]
    assert main(args + ["--dry-run"]) == 0
    assert len(json.loads(capsys.readouterr().out)["jobs"]) == 6 and not out.exists()

    # 1. Two actors on a local 2-CPU Ray: five photos edited, the corrupt one reported (exit 1).
    assert main(args + ["--actors", "2", "--photos-per-call", "2"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"done": 5, "skipped": 0, "failed": 1}
    (bad,) = summary["failed"]
    assert bad["file"].endswith("broken.jpg") and "corrupt or truncated" in bad["reason"]
    outputs = sorted(out.rglob("*.jpg"))
    assert [p.relative_to(out).as_posix() for p in outputs] == [
        "p0.night.jpg", "p2.night.jpg", "p4.night.jpg", "sub/p1.night.jpg", "sub/p3.night.jpg"]
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".jpg"]  # no temp files left

    # 2. The actors wrote what the one-machine batch runner writes, byte for byte.
    opts = BatchOptions(strength=[0.8], workers=1, progress=False)
    local = run_batch(EditPipeline.from_pretrained(str(bundle)),
                      plan_jobs([str(photos)], ["night"], str(tmp_path / "local")), opts, log=lambda m: None)
    assert len(local.done) == 5
    for p in outputs:
        assert p.read_bytes() == (tmp_path / "local" / p.relative_to(out)).read_bytes()

    # 3. A re-run edits nothing: every output skipped and untouched, the bad file reported again.
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    jobs = plan_jobs([str(photos)], ["night"], str(out))
    again = run_ray_job([bundle], jobs, EditConfig(), opts, RayOptions(actors=1, progress=False))
    assert not again.done and len(again.skipped) == 5 and len(again.failed) == 1
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps

    # 4. Once the bad file is gone the job is finished: nothing to do, no actor started.
    (photos / "broken.jpg").unlink()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"done": 0, "skipped": 5, "failed": 0}
    assert main(["ray-edit", "-a", "nope", str(photos), "--models", str(tmp_path)]) == 2
    assert "no translator for 'nope'" in capsys.readouterr().err

"""The Ray Data job on a local Ray with 2 CPUs: edits what it can, reports the bad file, resumes."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.photos.batch import BatchOptions, plan_jobs, run_batch
from pipeline.photos.ray_job import PhotoEditor, RayOptions, run_ray_job
from test_edit import make_bundle, textured_photo
from translators.inference import EditConfig, EditPipeline


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
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


def test_actor_edits_its_rows_with_either_backend_without_ray(folder, tmp_path):
    """The actor class itself (what Ray instantiates once per actor), called directly."""
    import dataclasses

    import numpy as np

    bundle, photos = folder
    jobs = plan_jobs([str(photos)], ["night"], str(tmp_path / "out"))
    rows = {"src": np.array([str(j.src) for j in jobs], dtype=object),
            "dst": np.array([str(j.dst) for j in jobs], dtype=object),
            "rel": np.array([j.rel for j in jobs], dtype=object)}
    opts = {f.name: getattr(BatchOptions(workers=1, progress=False), f.name)
            for f in dataclasses.fields(BatchOptions) if f.name != "on_result"}
    editor = PhotoEditor([str(bundle)], dataclasses.asdict(EditConfig()), "torch", opts, "cpu", 1)
    out = editor(rows)
    assert list(out["status"]) == ["failed" if s.endswith("broken.jpg") else "done" for s in rows["src"]]
    assert "corrupt" in out["reason"][list(out["status"]).index("failed")]
    assert list(editor(rows)["status"]).count("skipped") == 5  # run_batch's own skip-if-done
    pytest.importorskip("onnxruntime")
    from translators.export import export_onnx

    export_onnx(bundle)
    rows["dst"] = np.array([d.replace("/out/", "/onnx/") for d in rows["dst"]], dtype=object)
    editor = PhotoEditor([str(bundle)], dataclasses.asdict(EditConfig()), "onnxruntime", opts, "cpu", 1)
    assert list(editor(rows)["status"]).count("done") == 5
    for a in sorted((tmp_path / "onnx").rglob("*.jpg")):
        b = tmp_path / "out" / a.relative_to(tmp_path / "onnx")
        diff = np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)))
        assert diff.mean() < 0.5  # the same edit through onnxruntime (JPEG re-encoding aside)


def test_ray_edit_refuses_a_missing_onnx_export_before_starting_ray(folder, capsys):
    bundle, photos = folder
    assert main(["ray-edit", "-a", str(bundle), str(photos), "--backend", "onnxruntime"]) == 2
    assert "photoedit export" in capsys.readouterr().err

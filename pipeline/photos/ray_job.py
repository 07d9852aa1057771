"""Edit a photo folder as a Ray Data job, on one machine or a Ray cluster (`photoedit ray-edit`).

    ray.data.from_items(jobs)                     one row per photo: src, dst, rel
      .map_batches(PhotoEditor, compute=ActorPoolStrategy(size=N))
                                                  N actors, each loads the pipeline once and
                                                  edits its rows with the batch runner
      -> rows of (src, status, reason)            gathered into the usual Summary

Each actor runs `pipeline.photos.batch.run_batch` on the rows it is given: the same reader
(EXIF orientation, ICC, alpha, 16-bit), the same atomic writer (`imageio.write_photo`: a
temp file then rename) and the same skip-if-done rule as `photoedit --attribute`. The
driver also drops photos whose output exists before starting Ray, so a re-run of a
finished job starts no actor at all; a photo that cannot be read is reported with its
reason and the rest are edited.

Why not `ray.data.read_images`: it decodes to bare arrays (no EXIF, ICC, alpha or
16-bit, all of which the outputs keep), and one corrupt file fails its read task and so
the job. Photos are read inside the actors instead, next to the network, with the
decode/encode threads (`workers`) overlapping it, as on one machine.

On a cluster every node must see the input and output paths (a shared file system) and
have photoedit and the bundles installed; see docs/ray.md.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from pipeline.photos.batch import BatchOptions, Job, Summary, run_batch

STATUS_DONE, STATUS_SKIPPED, STATUS_FAILED = "done", "skipped", "failed"


@dataclass
class RayOptions:
    actors: int = 1  # pipeline actors (each loads the translators once)
    cpus_per_actor: float = 1.0  # CPUs Ray reserves per actor (torch threads = this minus I/O workers, >= 1)
    gpus_per_actor: float = 0.0  # GPUs per actor (> 0 runs the network on the actor's GPU)
    photos_per_call: int = 8  # photos handed to an actor at a time (a Ray Data batch)
    address: str | None = None  # Ray cluster address ("auto" = the running cluster); None = a local Ray
    progress: bool = True  # Ray Data's progress bars


class PhotoEditor:
    """The stateful actor: one EditPipeline per actor, reused for every batch of rows."""

    def __init__(self, bundles: Sequence[str], edit_config: dict, backend: str, batch_options: dict,
                 device: str, threads: int):
        import torch

        from translators.inference import EditConfig, EditPipeline

        torch.set_num_threads(max(1, threads))
        if backend == "onnxruntime":
            from translators.onnx_backend import load_onnx_translator

            translators = [load_onnx_translator(b, device=device, threads=threads) for b in bundles]
            self.pipe = EditPipeline(translators, EditConfig(**edit_config), device=device)
        else:
            self.pipe = EditPipeline.from_pretrained(list(bundles), device=device, config=EditConfig(**edit_config))
        self.options = BatchOptions(**batch_options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        jobs = [Job(src=Path(s), dst=Path(d), rel=str(r)) for s, d, r in zip(batch["src"], batch["dst"], batch["rel"])]
        summary = run_batch(self.pipe, jobs, self.options, log=lambda message: None)
        rows = rows_from_summary(jobs, summary)
        rows["finished_at"] = np.full(len(jobs), time.time())  # wall clock, for throughput figures
        return rows


def rows_from_summary(jobs: list[Job], summary: Summary) -> dict[str, np.ndarray]:
    """One output row per input job: status and reason (failures), warnings joined."""
    failed = {f["file"]: f["reason"] for f in summary.failed}
    skipped = set(summary.skipped)
    warnings: dict[str, list[str]] = {}
    for w in summary.warnings:
        warnings.setdefault(w["file"], []).append(w["warning"])
    status, reason, notes = [], [], []
    for job in jobs:
        src = str(job.src)
        if src in failed:
            status.append(STATUS_FAILED)
        elif src in skipped:
            status.append(STATUS_SKIPPED)
        else:
            status.append(STATUS_DONE)
        reason.append(failed.get(src, ""))
        notes.append("\n".join(warnings.get(src, [])))
    return {"src": np.array([str(j.src) for j in jobs], dtype=object), "status": np.array(status, dtype=object),
            "reason": np.array(reason, dtype=object), "notes": np.array(notes, dtype=object)}


def run_ray_job(bundles: Sequence[str | Path], jobs: list[Job], edit_config, batch_options: BatchOptions,
                ray_options: RayOptions, backend: str = "torch", device: str | None = None) -> Summary:
    """Edit `jobs` with `ray_options.actors` pipeline actors; never raises for a bad photo."""
    summary = Summary()
    t0 = time.perf_counter()
    # 1. Skip what is done before any Ray work: a finished job re-run starts nothing.
    todo = []
    for job in jobs:
        if job.dst.exists() and not batch_options.overwrite:
            summary.skipped.append(str(job.src))
        else:
            todo.append(job)
    if todo:
        for row in _ray_rows(bundles, todo, edit_config, batch_options, ray_options, backend, device):
            _record(row, summary)
    summary.seconds = time.perf_counter() - t0
    return summary


def _ray_rows(bundles, todo: list[Job], edit_config, batch_options: BatchOptions, ray_options: RayOptions,
              backend: str, device: str | None):
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=ray_options.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **({} if ray_options.address else {"num_cpus": os.cpu_count()}))
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = ray_options.progress
        ctx.print_on_execution_start = ray_options.progress
        if not ray_options.progress:  # Ray Data logs its progress when the bars are off
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        gpu = ray_options.gpus_per_actor > 0
        # Threads inside an actor: its I/O workers, and torch on the rest of its CPUs.
        workers = max(1, min(batch_options.workers, int(ray_options.cpus_per_actor)))
        options = dataclasses.replace(batch_options, workers=workers, progress=False)
        options_dict = {f.name: getattr(options, f.name) for f in dataclasses.fields(BatchOptions)
                        if f.name not in ("on_result",)}
        items = [{"src": str(j.src), "dst": str(j.dst), "rel": j.rel} for j in todo]
        n_blocks = max(1, min(len(items), ray_options.actors * 4))
        ds = ray.data.from_items(items, override_num_blocks=n_blocks)
        edited = ds.map_batches(
            PhotoEditor,
            fn_constructor_kwargs={
                "bundles": [str(b) for b in bundles],
                # The carry's threads stay within the actor's CPUs (default: all of the node's).
                "edit_config": {**dataclasses.asdict(edit_config),
                                "carry_threads": edit_config.carry_threads or max(1, int(ray_options.cpus_per_actor))},
                "backend": backend,
                "batch_options": options_dict,
                "device": device or ("cuda" if gpu else "cpu"),
                "threads": max(1, int(ray_options.cpus_per_actor) - workers),
            },
            batch_size=ray_options.photos_per_call,
            compute=ray.data.ActorPoolStrategy(size=ray_options.actors),
            num_cpus=ray_options.cpus_per_actor,
            num_gpus=ray_options.gpus_per_actor if gpu else None,
            batch_format="numpy",
        )
        yield from edited.iter_rows()
    finally:
        if started:
            ray.shutdown()


def _record(row: dict[str, Any], summary: Summary) -> None:
    src = str(row["src"])
    for note in filter(None, str(row.get("notes") or "").split("\n")):
        summary.warnings.append({"file": src, "warning": note})
    if row["status"] == STATUS_FAILED:
        summary.failed.append({"file": src, "reason": str(row["reason"])})
    elif row["status"] == STATUS_SKIPPED:
        summary.skipped.append(src)
    else:
        summary.done.append(src)

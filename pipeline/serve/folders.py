"""Folder mode: edit a folder below `--folders` into `--out` with the CLI's batch runner.

One job at a time, in a background thread. Outputs go to `OUT/<folder>/<edit>/` (e.g.
`OUT/street/sunny0.5+night1/`), mirroring the folder's tree, so starting the same job
again resumes it: the batch runner skips outputs that exist. Progress is read from the
outputs themselves (how many of the planned files exist), so it is right after a restart too.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError
from pipeline.photos import batch
from pipeline.serve.editor import edit_key
from pipeline.serve.settings import RequestError, ServeConfig, inside

SHOWN = 50  # output names listed in a job's status


@dataclass
class FolderJob:
    folder: str  # relative to --folders
    out: Path
    edits: list[tuple[str, float]]
    jobs: list = field(default_factory=list)  # batch.Job
    already: int = 0  # outputs that existed when the job started (resumed)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    summary: dict | None = None
    error: str | None = None

    def status(self) -> dict:
        written = [j.dst.relative_to(self.out).as_posix() for j in self.jobs if j.dst.is_file()]
        return {"folder": self.folder, "out": str(self.out), "edits": self.edits, "total": len(self.jobs),
                "done": len(written), "written": written[:SHOWN], "resumed": self.already,
                "running": self.finished is None,
                "seconds": round((self.finished or time.time()) - self.started, 1),
                "summary": self.summary, "error": self.error}


class FolderEditor:
    def __init__(self, cfg: ServeConfig, editor):
        self.cfg = cfg
        self.editor = editor  # PhotoEditor: attributes and loaded pipelines are shared
        self.job: FolderJob | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.cfg.folders is not None

    def _root(self) -> Path:
        if self.cfg.folders is None:
            raise RequestError("folder mode is off: start the server with --folders DIR", 404)
        return Path(self.cfg.folders)

    def listing(self, relative: str = "") -> dict:
        """Subfolders of a folder below the root, and how many images it holds (recursively)."""
        root = self._root()
        folder = inside(root, relative or ".")
        if not folder.is_dir():
            raise RequestError(f"folder {relative!r} does not exist below the served folder", 404)
        subs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        images = sum(1 for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in batch.READ_EXTENSIONS)
        rel = folder.relative_to(root.resolve()).as_posix()
        return {"root": str(root), "folder": "" if rel == "." else rel, "subfolders": subs, "images": images}

    def start(self, relative: str, edits: list[tuple[str, float]]) -> dict:
        if not edits:
            raise RequestError("no edit to apply: move a slider above 0 first")
        root = self._root()
        folder = inside(root, relative or ".")
        if not folder.is_dir():
            raise RequestError(f"folder {relative!r} does not exist below the served folder", 404)
        rel = folder.relative_to(root.resolve()).as_posix()
        out = Path(self.cfg.out_dir).resolve() / ("." if rel == "." else rel) / edit_key(edits)
        attrs = [a for a, _ in edits]
        try:
            jobs = batch.plan_jobs([str(folder)], attrs, str(out))
        except UserError as e:
            raise RequestError(str(e)) from None
        if not jobs:
            raise RequestError(f"folder {relative or '.'!r} holds no images "
                               f"(looked for {', '.join(sorted(batch.READ_EXTENSIONS))})")
        with self._lock:
            if self.job is not None and self.job.finished is None:
                raise RequestError(f"a folder job is running ({self.job.folder}); wait for it to end", 409)
            job = FolderJob("" if rel == "." else rel, out, edits, jobs,
                            already=sum(1 for j in jobs if j.dst.is_file()))
            self.job = job
        threading.Thread(target=self._run, args=(job,), name="photoedit-serve-folder", daemon=True).start()
        return job.status()

    def _run(self, job: FolderJob) -> None:
        try:
            pipe = self.editor.pipeline([a for a, _ in job.edits])
            opts = batch.BatchOptions(quality=self.cfg.quality, max_pixels=self.cfg.max_pixels,
                                      workers=self.cfg.workers, strength=[s for _, s in job.edits], progress=False)
            summary = batch.run_batch(pipe, job.jobs, opts, log=lambda msg: None)
            job.summary = summary.to_dict()
        except Exception as e:  # noqa: BLE001 - shown on the page; the server goes on
            job.error = f"{type(e).__name__}: {e}"
        finally:
            job.finished = time.time()

    def status(self) -> dict:
        return {"job": None if self.job is None else self.job.status()}

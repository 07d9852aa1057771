"""The stage runner behind `photoedit run`: one folder per stage, skipped when up to date.

Each stage writes `RUN/<stage>/manifest.json` LAST, after its outputs, so a stage
killed midway has no manifest and runs again (stages resume their own work where
they can, e.g. GAN training from its last checkpoint). A stage is up to date when
its manifest records the same *key*: a hash of its config, of its input files and
of the manifests of the stages it reads. Unfinished work in a stage folder is kept for
resuming only when it was started under the same key; otherwise the folder is cleared. Changing one attribute's settings therefore
re-runs only that attribute's stages; adding an attribute runs only its new stages.
"""
from __future__ import annotations

import hashlib
import json
import platform
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pipeline import __version__
from pipeline.errors import UserError
from pipeline.fileio import write_json_atomic

MANIFEST = "manifest.json"
STARTED = ".started-key"  # the key a stage folder's (possibly unfinished) work belongs to


@dataclass
class Stage:
    """One step of the plan.

    name: folder name under the run directory (e.g. `boundary-sunny`)
    run: called as run(out_dir: Path) -> metrics dict; writes its outputs in out_dir
    config: the settings that define the result (hashed into the key)
    needs: names of earlier stages whose outputs this one reads
    inputs: files this stage reads from outside the run (hashed into the key)
    """

    name: str
    run: Callable[[Path], dict]
    config: dict = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _json_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def read_manifest(stage_dir: Path) -> dict | None:
    try:
        return json.loads((stage_dir / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class Runner:
    """Runs a list of stages in order in `run_dir`, skipping the up-to-date ones."""

    def __init__(self, run_dir: Path, stages: list[Stage], log: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.stages = stages
        self.log = log
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names in {names}")
        for s in stages:
            for need in s.needs:
                if need not in names[: names.index(s.name)]:
                    raise ValueError(f"stage {s.name} needs {need}, which does not run before it")

    def key(self, stage: Stage) -> tuple[str, dict]:
        """The stage's identity: its config, input file hashes and upstream manifest keys."""
        inputs = {str(p): sha256_file(Path(p)) for p in stage.inputs}
        upstream = {}
        for need in stage.needs:
            m = read_manifest(self.run_dir / need)
            upstream[need] = m["key"] if m else None
        parts = {"config": stage.config, "inputs": inputs, "upstream": upstream}
        return _json_hash(parts), parts

    def status(self, stage: Stage) -> str:
        """'up to date', or why the stage must run."""
        m = read_manifest(self.run_dir / stage.name)
        if m is None:
            return "not run yet" if not (self.run_dir / stage.name).exists() else "unfinished"
        key, parts = self.key(stage)
        if m.get("key") == key:
            return "up to date"
        old = m.get("key_parts", {})
        changed = [k for k in ("config", "inputs", "upstream") if old.get(k) != parts[k]]
        return f"changed: {', '.join(changed) or 'key'}"

    def plan(self, force_from: str | None = None) -> list[tuple[Stage, str]]:
        """[(stage, reason)] with reason 'up to date' for the stages that will be skipped.

        Computed stage by stage as if earlier ones had run: a stage downstream of one
        that runs will run too (its upstream key will change or be new).
        """
        names = [s.name for s in self.stages]
        if force_from is not None and force_from not in names:
            raise UserError(f"--from {force_from}: no such stage (stages: {', '.join(names)})")
        forced = set(names[names.index(force_from):]) if force_from else set()
        out, running = [], set()
        for s in self.stages:
            if s.name in forced:
                reason = "forced by --from"
            elif any(n in running for n in s.needs):
                reason = "upstream re-runs"
            else:
                reason = self.status(s)
            if reason != "up to date":
                running.add(s.name)
            out.append((s, reason))
        return out

    def run(self, force_from: str | None = None) -> dict[str, dict]:
        """Run the plan; returns {stage: manifest}. Raises StageFailed on the first failure."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        manifests = {}
        plan = self.plan(force_from)
        for i, (stage, reason) in enumerate(plan, 1):
            out_dir = self.run_dir / stage.name
            if reason == "up to date":
                self.log(f"[{i}/{len(plan)}] {stage.name}: up to date, skipped")
                manifests[stage.name] = read_manifest(out_dir)
                continue
            key, parts = self.key(stage)
            started = out_dir / STARTED
            # A stage may pick up its own unfinished work (a GAN checkpoint, a sample shard)
            # only if that work was started with the same key; anything else is stale.
            resumable = (reason != "forced by --from" and started.is_file() and started.read_text() == key
                         and not (out_dir / MANIFEST).exists())
            if out_dir.exists() and not resumable:
                shutil.rmtree(out_dir)
            self.log(f"[{i}/{len(plan)}] {stage.name}: running ({reason}{', resuming' if resumable else ''})")
            out_dir.mkdir(parents=True, exist_ok=True)
            started.write_text(key)
            t0 = time.time()
            try:
                metrics = stage.run(out_dir) or {}
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001 - reported with the stage name and resume hint
                (out_dir / "error.txt").write_text(traceback.format_exc())
                raise StageFailed(stage.name, e, out_dir / "error.txt") from e
            manifest = {
                "stage": stage.name,
                "key": key,
                "key_parts": parts,
                "config": stage.config,
                "inputs": parts["inputs"],
                "needs": stage.needs,
                "code_version": __version__,
                "python": platform.python_version(),
                "metrics": metrics,
                "timings": {"started": t0, "seconds": round(time.time() - t0, 2)},
            }
            (out_dir / "error.txt").unlink(missing_ok=True)
            write_json_atomic(out_dir / MANIFEST, manifest)
            manifests[stage.name] = manifest
            self.log(f"[{i}/{len(plan)}] {stage.name}: done in {manifest['timings']['seconds']:.1f} s")
        return manifests


class StageFailed(Exception):
    """A stage raised; the message names the stage, the cause, and how to resume."""

    exit_code = 1

    def __init__(self, stage: str, cause: BaseException, log_path: Path):
        self.stage = stage
        self.cause = cause
        super().__init__(
            f"stage '{stage}' failed: {type(cause).__name__}: {cause}\n"
            f"  traceback: {log_path}\n"
            f"  finished stages are kept; fix the cause and run the same command again to "
            f"resume from '{stage}'"
        )

"""Edit many photos: plan outputs, shard, skip what is done, overlap I/O with the network.

The edit itself is EditPipeline's three public steps (translators/inference.py), the
same ones `pipe(image)` runs; this module only schedules them over threads and adds the
files. Threads, not processes: decoding/encoding (Pillow, OpenCV) and the full-resolution
colour transform (OpenCV/numpy) release the GIL, and threads share the loaded model
and photos without copies. Per photo:

    worker thread:  read + decode, then pipe.prepare
    main thread:    pipe.run_network on up to pipe.photos_per_call same-size photos
    worker thread:  pipe.finish + encode + atomic write

A lone JPEG goes faster by also overlapping its own steps: a reduced decode (libjpeg's
1/8 DCT scaling) is prepared and fed to the network while another worker decodes the
full photo, which `finish` waits for only after its fit.
At most `2 * workers + batch_size` photos are in memory at once.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import unicodedata
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.errors import UserError
from pipeline.fileio import remove_live_temps
from pipeline.photos.imageio import (
    DEFAULT_MAX_PIXELS,
    READ_EXTENSIONS,
    Photo,
    PhotoError,
    default_extension,
    read_photo,
    read_preview,
    software_of,
    with_software,
    write_photo,
)


@dataclass
class Job:
    """One input file and where its edit goes."""

    src: Path
    dst: Path
    rel: str  # path relative to the input root: sort and shard key, shown in messages


@dataclass
class BatchOptions:
    quality: int = 95  # JPEG/WebP quality of outputs
    max_pixels: int = DEFAULT_MAX_PIXELS  # refuse larger images before decoding them
    overwrite: bool = False  # redo outputs that already exist (default: skip them, i.e. resume)
    workers: int = 2  # threads for decode/carry/encode while the network runs
    strength: float | list[float] = 1.0  # edit strength per attribute
    progress: bool | None = None  # False = none; else pipeline/progress.py (a bar on a terminal, lines elsewhere)
    max_live_pixels: int = 100_000_000  # photos in memory at once, in pixels (~6 bytes each in flight)
    # Called in the main thread after each photo edited or failed, with the summary so far
    # (e.g. a GUI's progress). An exception it raises stops the batch like Ctrl-C does.
    on_result: Callable[["Summary"], None] | None = None


@dataclass
class Summary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"file": ..., "reason": ...}
    warnings: list[dict] = field(default_factory=list)  # {"file": ..., "warning": ...}
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["done"], d["skipped"] = sorted(self.done), sorted(self.skipped)  # completion order varies
        d["counts"] = {"done": len(self.done), "skipped": len(self.skipped), "failed": len(self.failed)}
        d["files_per_second"] = len(self.done) / self.seconds if self.seconds > 0 else None
        return d

    def text(self) -> str:
        lines = [f"{len(self.done)} done, {len(self.skipped)} skipped (output exists; --overwrite to redo), "
                 f"{len(self.failed)} failed in {self.seconds:.1f} s"
                 + (f" ({len(self.done) / self.seconds:.2f} files/s)" if self.done and self.seconds else "")]
        lines += [f"  failed: {f['file']}: {f['reason']}" for f in self.failed]
        return "\n".join(lines)


# ------------------------------------------------------------------------------ planning

def output_name(src: Path, attributes: list[str], ext: str | None = None) -> str:
    """`street.jpg` + [sunny, night] -> `street.sunny.night.jpg` (never the input's own name)."""
    return f"{src.stem}.{'.'.join(attributes)}{ext or default_extension(src)}"


def _is_image_name(p: Path) -> bool:
    return p.suffix.lower() in READ_EXTENSIONS and not p.name.startswith(".")


def _looks_like_output(p: Path, attributes: list[str]) -> bool:
    # Outputs written beside their inputs must not become inputs of the next run (resume).
    return p.stem.endswith("." + ".".join(attributes))


def _inside(path: Path, folder: Path | None) -> bool:
    # `photoedit -a x photos/ -o photos/edited`: earlier outputs are not new inputs.
    if folder is None or not folder.is_dir():
        return False
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def plan_jobs(inputs: list[str], attributes: list[str], out: str | None = None,
              in_place: bool = False) -> list[Job]:
    """Expand files and folders (recursively) into jobs, sorted by relative path.

    OUT rules: one input file and OUT with an image extension -> that file; otherwise
    OUT is a folder and each folder input's tree is mirrored inside it.
    """
    out_path = Path(out) if out else None
    files: list[tuple[Path, str, Path | None]] = []  # (src, rel, root folder or None)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if (f.is_file() and _is_image_name(f) and not _looks_like_output(f, attributes)
                        and not _inside(f, out_path)):
                    files.append((f, f.relative_to(p).as_posix(), p))
        elif p.exists():
            files.append((p, p.name, None))
        else:
            raise UserError(f"{item}: no such file or folder")
    names_a_file = out_path is not None and out_path.suffix.lower() in READ_EXTENSIONS and not out_path.is_dir()
    single_file_out = names_a_file and len(files) == 1 and files[0][2] is None
    if names_a_file and not single_file_out and files:
        raise UserError(f"-o {out}: names one image file, but the inputs hold {len(files)} images "
                        "(or a folder); give -o a folder instead")
    jobs = []
    for src, rel, root in files:
        if in_place:
            dst = src
        elif single_file_out:
            dst = out_path
        elif out_path is not None:
            dst = out_path / Path(rel).parent / output_name(src, attributes)
        else:
            dst = src.parent / output_name(src, attributes)
        jobs.append(Job(src=src, dst=dst, rel=rel))
    jobs.sort(key=lambda j: (unicodedata.normalize("NFC", j.rel), str(j.src)))
    return jobs


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """`K/N` (1-based K) or `auto` (torchrun's RANK/WORLD_SIZE) -> (k0, n) with 0-based k0."""
    if not spec:
        return None
    if spec == "auto":
        rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
        if rank is None or world is None:
            raise UserError("--shard auto needs RANK and WORLD_SIZE in the environment (set by torchrun)")
        return int(rank), int(world)
    try:
        k, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard '{spec}': expected K/N, e.g. 1/4, or 'auto'") from None
    if not 1 <= k <= n:
        raise UserError(f"--shard '{spec}': need 1 <= K <= N")
    return k - 1, n


def shard_jobs(jobs: list[Job], shard: tuple[int, int] | None) -> list[Job]:
    """Every N-th job of the sorted list starting at K: stable, disjoint, covers all."""
    if shard is None:
        return jobs
    k0, n = shard
    return jobs[k0::n]


# ------------------------------------------------------------------------------ running

def default_torch_threads(workers: int) -> int:
    """Cores left for the network once the I/O workers have theirs (at least 1).

    Oversubscribed OpenMP threads spin against each other: on a busy 2-core machine one
    forward pass took 2.6 s with 2 torch threads and 0.16 s with 1 (bench notes); and a
    lone photo's network runs while a worker decodes it (2 threads: 0.06-0.12 s, 1: 0.07-0.11 s).
    """
    return max(1, (os.cpu_count() or 1) - workers)


@dataclass
class _Loaded:
    job: Job
    photo: Photo | Future  # a Future while a worker is still decoding the full photo
    prep: object  # translators.inference.Prepared: step 1 of the edit
    pixels: int  # of the full photo


def check_job(job: Job, in_place: bool) -> str | None:
    """A reason this job must not run (before any work), or None."""
    if not in_place and _same_file(job.src, job.dst):
        return "output path is the input itself; refusing to overwrite it (use --in-place to allow)"
    return None


def _name_key(dst: Path) -> str:
    # Names that differ only in case or Unicode normalisation (é as one code point or two)
    # are one file on macOS and Windows disks: refuse the second everywhere, so a batch
    # behaves the same whatever disk its output folder is on.
    return unicodedata.normalize("NFC", str(dst.resolve())).casefold()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def run_batch(pipe, jobs: list[Job], opts: BatchOptions, in_place: bool = False, log=None) -> Summary:
    """Edit every job with `pipe` (an EditPipeline); never raises for a bad file."""
    from tqdm import tqdm

    from pipeline.progress import progress_bar

    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    summary = Summary()
    t0 = time.perf_counter()
    stamp = edit_stamp(pipe, opts.strength)
    todo = []
    claimed: dict[str, Job] = {}
    for job in jobs:
        reason = check_job(job, in_place)
        first = claimed.setdefault(_name_key(job.dst), job)
        if first is not job and first.src.resolve() == job.src.resolve():
            continue  # the same photo named twice (a folder and a file in it): edited once
        if reason is None and first is not job:
            reason = (f"output {job.dst} would also be written for {first.src}; edit them into different folders"
                      if first.dst.resolve() == job.dst.resolve() else
                      f"output {job.dst} and {first.dst} (for {first.src}) are one name on a case-insensitive "
                      "disk (macOS, Windows): one would replace the other; rename one of the inputs")
        if reason:
            summary.failed.append({"file": str(job.src), "reason": reason})
            log(f"photoedit: {job.src}: {reason}")
        elif job.dst.exists() and not opts.overwrite and not in_place:
            summary.skipped.append(str(job.src))
        elif in_place and not opts.overwrite and software_of(job.src) == stamp:
            # --in-place cannot tell done from not-done by the output's existence; the
            # EXIF stamp of a finished edit can, so a rerun never edits a photo twice.
            summary.skipped.append(str(job.src))
        else:
            todo.append(job)
    bar = progress_bar(total=len(todo), unit="file", desc="editing", disable=opts.progress is False)
    pool = ThreadPoolExecutor(max_workers=max(1, opts.workers), thread_name_prefix="photoedit-io")
    try:
        _run(pipe, todo, opts, pool, _Recorder(summary, bar, log, opts.on_result), in_place)
    except KeyboardInterrupt:
        summary.interrupted = True
        # Let running writes finish (each is all-or-nothing), drop queued work, then
        # delete any temp file a write left behind. Finished outputs stay: a rerun skips them.
        pool.shutdown(wait=True, cancel_futures=True)
        remove_live_temps()
        log("photoedit: stopped; every output written so far is complete and no partial file is left. "
            "Run the same command again to finish the rest (finished outputs are skipped).")
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        summary.seconds = time.perf_counter() - t0
    return summary


@dataclass
class _Recorder:
    """Where each photo's outcome goes (main thread only)."""

    summary: Summary
    bar: object  # tqdm
    log: Callable[[str], None]
    on_result: Callable[[Summary], None] | None = None

    def __call__(self, result) -> None:
        job, dst, error, notes = result
        for note in notes:
            self.summary.warnings.append({"file": str(job.src), "warning": note})
            self.log(f"photoedit: warning: {job.src}: {note}")
        if error:
            self.summary.failed.append({"file": str(job.src), "reason": error})
            self.log(f"photoedit: {job.src}: {error}")
        elif dst is None:  # --in-place: found already edited when read (by another run)
            self.summary.skipped.append(str(job.src))
        else:
            self.summary.done.append(str(job.src))
        self.bar.update(1)
        if self.on_result is not None:
            self.on_result(self.summary)


def _run(pipe, todo: list[Job], opts: BatchOptions, pool, record: _Recorder, in_place: bool = False) -> None:
    group_size = pipe.photos_per_call
    in_flight = 2 * max(1, opts.workers) + group_size
    strengths = pipe.resolve_strengths(opts.strength)
    stamp = edit_stamp(pipe, opts.strength)
    # Photos carried at once share the cores; a lone photo (or one worker) gets them all.
    carry_threads = pipe.config.carry_threads or max(1, (os.cpu_count() or 1) // max(1, min(opts.workers,
                                                                                              len(todo))))
    # A lone JPEG: decode it at full size in one worker while the network runs on a
    # reduced decode (in a batch the other photos already keep every core busy). Tiled
    # mode needs every full-res pixel before the network starts.
    overlap = len(todo) == 1 and opts.workers >= 2 and pipe.config.mode == "guided"
    pending = deque(todo)
    loads: deque[Future] = deque()
    writes: set[Future] = set()
    write_pixels: dict[Future, int] = {}

    def live_pixels() -> int:
        # Decoded photos waiting for the network plus photos being carried/encoded.
        loaded = sum(f.result().pixels for f in loads if f.done() and isinstance(f.result(), _Loaded))
        return loaded + sum(write_pixels.values())

    def refill():
        # Bounded by file count and, for big photos, by pixels (a folder of 24-MP photos
        # must not hold 2 * workers + batch_size of them at once).
        while len(loads) + len(writes) < in_flight and (not writes or live_pixels() < opts.max_live_pixels):
            if not pending:
                return
            loads.append(pool.submit(_load, pipe, pending.popleft(), opts.max_pixels, pool if overlap else None,
                                     stamp if in_place else None))

    def settle(block: bool):
        nonlocal writes
        if not writes:
            return
        done, writes = wait(writes, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for fut in done:
            write_pixels.pop(fut, None)
            record(fut.result())

    refill()
    while loads or pending:
        if not loads:  # held back by the pixel budget: let a write finish first
            settle(block=True)
            refill()
            continue
        group = _next_group(loads, group_size, record)
        if group:
            try:
                edited = pipe.run_network([g.prep for g in group], strengths)
            except Exception as e:  # a failure of the network on one batch must not stop the rest
                for g in group:
                    record((g.job, None, f"edit failed: {type(e).__name__}: {e}", []))
                edited = []
            for g, out in zip(group, edited):
                fut = pool.submit(_finish, pipe, g, out, opts.quality, stamp, carry_threads)
                writes.add(fut)
                write_pixels[fut] = g.pixels
        full = len(loads) + len(writes) >= in_flight or live_pixels() >= opts.max_live_pixels
        settle(block=full and bool(writes))
        refill()
    while writes:
        settle(block=True)


def _next_group(loads: deque, group_size: int, record: _Recorder) -> list[_Loaded]:
    """The next loaded photo plus following ones already loaded at the same working size."""
    group: list[_Loaded] = []
    while loads and len(group) < group_size:
        if group and not loads[0].done():
            break
        item = loads[0].result()
        if isinstance(item, tuple):  # a load failure record
            loads.popleft()
            record(item)
            continue
        if group and item.prep.key != group[0].prep.key:
            break
        loads.popleft()
        group.append(item)
    return group


def _load(pipe, job: Job, max_pixels: int, pool: ThreadPoolExecutor | None = None, skip_stamp: str | None = None):
    """Decode a photo and prepare it (step 1). With `pool` (a lone photo, 2+ workers), the
    full decode starts at once in another worker while this one prepares a fast reduced
    decode; the finish that waits for it is submitted later, so the FIFO pool cannot deadlock.
    `skip_stamp` (--in-place): a photo whose own EXIF already carries this edit's stamp was
    edited by another run since the batch was planned; it is skipped, never edited twice."""
    try:
        photo = None
        if pool is not None:
            full = pool.submit(read_photo, job.src, max_pixels)
            preview = read_preview(job.src, pipe.guide_side, max_pixels)
            if preview is not None:
                small, (height, width) = preview
                return _Loaded(job, full, pipe.prepare(small, (height, width)), height * width)
            photo = None if full.cancel() else full.result()  # not a JPEG: use (or drop) the full decode
        photo = photo or read_photo(job.src, max_pixels=max_pixels)
        if skip_stamp is not None and _stamp_in(photo.exif) == skip_stamp:
            return (job, None, None, [])  # recorded as skipped
        return _Loaded(job, photo, pipe.prepare(photo.rgb), photo.rgb.shape[0] * photo.rgb.shape[1])
    except PhotoError as e:
        return (job, None, e.reason, [])
    except Exception as e:  # noqa: BLE001 - any per-file failure is reported; the batch goes on
        return (job, None, f"{type(e).__name__}: {e}", [])


def _stamp_in(exif: bytes | None) -> str | None:
    """The EXIF Software text in a decoded photo's EXIF bytes (what `edit_stamp` writes)."""
    from PIL import Image

    if not exif:
        return None
    tags = Image.Exif()
    try:
        tags.load(exif)
    except (OSError, SyntaxError, ValueError):
        return None
    value = tags.get(0x0131)
    return str(value).rstrip("\x00") if value else None


def edit_stamp(pipe, strength) -> str:
    """EXIF Software text recording the edit, e.g. `photoedit 0.1.0: sunny 1, night 0.5`."""
    from pipeline import __version__

    parts = [f"{a} {s:g}" for a, s in zip(pipe.attributes, pipe.resolve_strengths(strength))]
    return f"photoedit {__version__}: {', '.join(parts)}"


def _finish(pipe, item: _Loaded, edited, quality: int, stamp: str, threads: int | None):
    """Step 3 of the edit on the network's output, then the atomic write."""
    try:
        def full_photo() -> Photo:  # the full decode may still be running (a lone JPEG)
            return item.photo.result() if isinstance(item.photo, Future) else item.photo

        rgb = pipe.finish(item.prep, edited, lambda: full_photo().rgb, threads=threads)
        photo = full_photo()
        out = dataclasses.replace(photo, rgb=rgb, notes=[], exif=with_software(photo.exif, stamp))
        notes = photo.notes + write_photo(item.job.dst, out, quality=quality)
        return (item.job, item.job.dst, None, notes)
    except PhotoError as e:
        return (item.job, None, str(e) if e.path != str(item.job.src) else e.reason, [])
    except Exception as e:  # noqa: BLE001 - any per-file failure is reported; the batch goes on
        return (item.job, None, f"{type(e).__name__}: {e}", [])


def summary_json(summary: Summary) -> str:
    return json.dumps(summary.to_dict(), indent=2, ensure_ascii=False)

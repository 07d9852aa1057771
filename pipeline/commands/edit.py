"""Edit photos by attribute (the main form: photoedit --attribute NAME INPUT...)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from pipeline.commands import add_edit_arguments, add_edit_settings_arguments
from pipeline.errors import UserError

# Test hook: after this many photos, say so on stderr and wait (up to a minute) for a
# signal, so tests/test_edit_batch.py interrupts a batch at a known point on any machine.
PAUSE_ENV = "PHOTOEDIT_TEST_PAUSE_AFTER"

EPILOG = """\
examples:
  photoedit --attribute sunny street.jpg              -> street.sunny.jpg beside it
  photoedit -a sunny -a night street.jpg -o out.png   both edits in order, one output file
  photoedit -a night photos/ -o edited/               whole tree, mirrored under edited/
  photoedit -a night photos/ --shard 2/4              the 2nd of 4 disjoint parts (or --shard auto
                                                      under torchrun: RANK/WORLD_SIZE)

outputs:
  Default name <stem>.<attribute>[.<attribute>...].<ext> beside the input or under -o DIR,
  never the input's own name (--in-place replaces inputs). Existing outputs are skipped, so
  rerunning an interrupted batch finishes the rest; --overwrite redoes them. Each output is
  written to a temp file in its folder and renamed, so no half-written file is ever left.
  Format follows the output extension (.jpg .png .webp .tif .bmp; GIF inputs default to .png).
  Kept: size, EXIF (orientation applied, then reset to 1), ICC profile, dpi, alpha
  (untouched), 16 bits per channel for PNG -> PNG. Converted (with a warning): CMYK -> RGB,
  animated images -> first frame, alpha dropped for JPEG/BMP outputs. Not kept: XMP, the
  EXIF thumbnail. EXIF Software records the edit ("photoedit 0.1.0: sunny 1"), so an
  interrupted --in-place run can be rerun: photos stamped with the same edit are skipped
  (also when another run edited them since this one started: never edited twice).
  Two inputs whose outputs would share a name - also names differing only in case or in how
  an accent is encoded, one file on macOS/Windows disks - the second is refused, not overwritten.

full-resolution modes (what they cost):
  default        the network runs once per photo at its working resolution (the bundle's
                 training size, aspect kept): constant network time per photo; the edit
                 is carried to full res as a per-pixel colour transform: its time is
                 linear in pixels (~0.015 s per megapixel on one core), its memory one
                 output copy of the photo (3 bytes/pixel) plus a few MB (24 MP: 877 MB
                 peak for the whole process). A lone 12-MP JPEG takes ~1.6x the time of
                 decoding and re-encoding it.
  --full-res-net the network itself runs on overlapping 512-px tiles covering the
                 full-res photo: exact, but time = the network's cost per pixel x ~1.8 x
                 the photo's pixels (a 1080p photo: ~150x the default's time on a CPU;
                 minutes for 24 MP), memory ~36 bytes/pixel (float copies).

exit codes: 0 all done (or skipped), 1 some files failed (the batch goes on; each is
reported with its reason), 2 usage or setup error (bad flag, unknown attribute), 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit", usage="photoedit --attribute NAME [options] INPUT... [-o OUT]",
                                description="Edit photos by attribute with feed-forward translators.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders (searched recursively)")
    g, o = add_edit_arguments(p, "output file (one input) or folder (default: beside inputs)")
    g.add_argument("--full-res-net", action="store_true",
                   help="run the network over the full-res photo in tiles (exact, much slower; see below)")
    o.add_argument("--in-place", action="store_true", help="replace each input with its edit (no undo!)")
    g = p.add_argument_group("batch and speed")
    g.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="threads decoding/encoding while the network runs (default: %(default)s)")
    g.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="same-size photos per network call; with --full-res-net, tiles per call "
                        "(default: edit.batch_size, 4)")
    g.add_argument("--shard", metavar="K/N", help="edit only part K of N of the sorted inputs, or 'auto' (torchrun)")
    g.add_argument("--device", default="auto",
                   help="cpu, cuda, cuda:1, ... (default: auto = cuda:$LOCAL_RANK if a GPU is there, else cpu)")
    g.add_argument("--threads", type=int, default=None, metavar="T",
                   help="torch CPU threads (default: cores minus --workers, at least 1)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_edit_settings_arguments(p)
    return p


def parse_strengths(text: str, n: int) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"--strength '{text}': expected a number or comma-separated numbers") from None
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UserError(f"--strength '{text}': {len(values)} values for {n} attributes")
    return values


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.attribute:
        raise UserError("--attribute NAME is required (see `photoedit list` for what is installed)")
    if not args.inputs:
        raise UserError("no INPUT given: name image files or folders to edit")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality}: expected 1-100")
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected at least 1")
    if args.in_place and args.out:
        raise UserError("--in-place and -o/--out contradict each other; choose one")
    strengths = parse_strengths(args.strength, len(args.attribute))

    # Inputs, models and settings are checked before torch is imported (~2.5 s), so a typo
    # fails at once and --dry-run answers at once.
    from pipeline.config import load_section
    from pipeline.photos import batch
    from translators.edit_config import EditConfig
    from translators.registry import BundleNotFound, require_bundle

    try:
        bundles = [require_bundle(name, args.models) for name in args.attribute]
    except BundleNotFound as e:
        raise UserError(str(e)) from None
    all_jobs = batch.plan_jobs(args.inputs, [b.name for b in bundles], args.out, args.in_place)
    jobs = batch.shard_jobs(all_jobs, batch.parse_shard(args.shard))

    config = load_section(EditConfig, "edit", args.config, args.set)
    if args.full_res_net:
        config.mode = "tiled"
    if args.batch_size:
        config.batch_size = args.batch_size
    if args.dry_run:
        return _dry_run(config, bundles, strengths, jobs)
    if not all_jobs:
        raise UserError(f"no images found in {', '.join(args.inputs)} "
                        f"(looked for {', '.join(sorted(batch.READ_EXTENSIONS))})")
    if not jobs:
        print(f"photoedit: shard {args.shard} has no files (only {len(all_jobs)} in all)", file=sys.stderr)
        if args.json:
            print(batch.summary_json(batch.Summary()))
        return 0
    for s in strengths:
        if not 0.0 <= s <= 1.0:
            print(f"photoedit: warning: strength {s} is outside the trained range [0, 1]; "
                  "the edit is extrapolated", file=sys.stderr)
    pipe = _load_pipeline(bundles, config, args.device, args.threads or batch.default_torch_threads(args.workers),
                          args.backend)
    opts = batch.BatchOptions(quality=args.quality, max_pixels=int(args.max_pixels), overwrite=args.overwrite,
                              workers=args.workers, strength=strengths,
                              progress=False if args.no_progress else None, on_result=_pause_hook())
    # torchrun and job schedulers stop work with SIGTERM: treat it like Ctrl-C so temp files go.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if _main_thread() else None
    try:
        summary = batch.run_batch(pipe, jobs, opts, in_place=args.in_place)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(summary.text(), file=sys.stderr)
    if args.json:
        print(batch.summary_json(summary))
    return summary.exit_code


def _load_pipeline(bundles, config, device: str, threads: int | None, backend: str = "torch"):
    import torch

    from translators.inference import EditPipeline

    if device == "auto":
        # Under torchrun each rank takes its own GPU (and its own --shard auto part).
        device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"
    if threads:
        torch.set_num_threads(threads)
    if backend == "onnxruntime":  # the bundles' exports, run by translators/onnx_backend.py
        from translators.onnx_backend import load_onnx_translator

        try:
            return EditPipeline([load_onnx_translator(b, device, threads) for b in bundles], config=config,
                                device=device)
        except (ImportError, ValueError, OSError) as e:  # BundleError is a ValueError
            raise UserError(f"cannot load translator: {e}") from None
    try:
        return EditPipeline.from_pretrained([str(b) for b in bundles], device=device, config=config)
    except (ValueError, OSError) as e:  # BundleError is a ValueError; the message names the file
        raise UserError(f"cannot load translator: {e}") from None


def _pause_hook():
    """BatchOptions.on_result for the test hook PAUSE_ENV (None when it is not set)."""
    after = os.environ.get(PAUSE_ENV)
    if not after:
        return None
    try:
        after = int(after)
    except ValueError:
        raise UserError(f"${PAUSE_ENV}={after!r}: expected a number of photos") from None

    paused = False

    def pause(summary) -> None:
        nonlocal paused
        if paused or len(summary.done) + len(summary.failed) < after:
            return
        paused = True
        print(f"photoedit: paused after {after} photo(s) (${PAUSE_ENV}); waiting for a signal",
              file=sys.stderr, flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a signal's handler raises out of the sleep
            time.sleep(0.05)

    return pause


def _dry_run(config, bundles, strengths, jobs) -> int:
    from pipeline.config import to_dict

    print(json.dumps({"edit": to_dict(config), "bundles": [str(b) for b in bundles], "strength": strengths,
                      "jobs": [{"input": str(j.src), "output": str(j.dst)} for j in jobs]}, indent=2,
                     ensure_ascii=False))
    return 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

"""Edit photo folders as a Ray Data job: many actors, one machine or a Ray cluster."""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands import add_edit_arguments, add_edit_settings_arguments
from pipeline.errors import UserError

EPILOG = """\
examples:
  photoedit ray-edit -a night photos/ -o edited/ --actors 2      local Ray, 2 pipeline actors
  ray start --head ...; photoedit ray-edit -a night /shared/photos -o /shared/edited \\
      --address auto --actors 16 --gpus-per-actor 1              a running cluster (see docs/ray.md)

Outputs, names, skip-if-done (--overwrite to redo), atomic writes, what is kept (EXIF,
ICC, alpha, 16-bit) and exit codes are those of `photoedit --attribute`: the actors run
the same batch runner. Photos already edited are dropped before Ray starts, so a re-run
of a finished job does nothing. On a cluster every node must see INPUT and -o OUT
(shared file system) and have photoedit and the bundles installed. For schedulers
without Ray (Slurm arrays, torchrun), use `photoedit --attribute ... --shard K/N`.
Needs Ray: pip install 'photoedit[ray]'.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="photoedit ray-edit", usage="photoedit ray-edit -a NAME [options] INPUT... -o OUT",
                                description="Edit photo folders with Ray Data: the edit pipeline as a pool of "
                                            "stateful actors.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders (searched recursively)")
    add_edit_arguments(p, "output folder (default: beside inputs)", attribute_required=True)
    g = p.add_argument_group("Ray")
    g.add_argument("--actors", type=int, default=1, metavar="N", help="pipeline actors (default: 1)")
    g.add_argument("--cpus-per-actor", type=float, default=1.0, metavar="C",
                   help="CPUs reserved per actor; its torch threads = C minus --workers, at least 1 (default: 1)")
    g.add_argument("--gpus-per-actor", type=float, default=0.0, metavar="G",
                   help="GPUs per actor; > 0 runs each actor's network on CUDA (default: 0)")
    g.add_argument("--workers", type=int, default=1, metavar="W",
                   help="decode/encode threads inside each actor, at most C (default: 1)")
    g.add_argument("--photos-per-call", type=int, default=8, metavar="B",
                   help="photos handed to an actor at a time (default: 8)")
    g.add_argument("--address", metavar="ADDR",
                   help="Ray cluster to join ('auto' = the one `ray start` made here); default: a local Ray "
                        "using this machine's cores")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_edit_settings_arguments(p)
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality}: expected 1-100")
    if args.actors < 1 or args.workers < 1 or args.photos_per_call < 1 or args.cpus_per_actor <= 0:
        raise UserError("--actors, --workers and --photos-per-call must be >= 1 and --cpus-per-actor > 0")
    try:
        strengths = [float(v) for v in args.strength.split(",")]
    except ValueError:
        raise UserError(f"--strength '{args.strength}': expected a number or comma-separated numbers") from None
    if len(strengths) == 1:
        strengths *= len(args.attribute)
    if len(strengths) != len(args.attribute):
        raise UserError(f"--strength '{args.strength}': {len(strengths)} values for {len(args.attribute)} attributes")

    from pipeline.config import load_section, to_dict
    from pipeline.photos import batch
    from translators.registry import BundleNotFound, require_bundle

    try:
        bundles = [require_bundle(name, args.models) for name in args.attribute]
    except BundleNotFound as e:
        raise UserError(str(e)) from None
    jobs = batch.plan_jobs(args.inputs, [b.name for b in bundles], args.out)
    if not jobs:
        raise UserError(f"no images found in {', '.join(args.inputs)}")
    from translators.inference import EditConfig

    config = load_section(EditConfig, "edit", args.config, args.set)
    if args.dry_run:
        print(json.dumps({"edit": to_dict(config), "bundles": [str(b) for b in bundles], "strength": strengths,
                          "backend": args.backend, "actors": args.actors,
                          "jobs": [{"input": str(j.src), "output": str(j.dst)} for j in jobs]}, indent=2))
        return 0
    if args.backend == "onnxruntime":  # before Ray starts: a missing export is a user error, not an actor crash
        from translators.bundle import BundleError
        from translators.onnx_backend import find_onnx

        for b in bundles:
            try:
                find_onnx(b)
            except BundleError as e:
                raise UserError(str(e)) from None
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("ray-edit needs Ray: pip install 'photoedit[ray]' (or use `photoedit --attribute` "
                        "with --shard K/N)") from None
    from pipeline.photos.ray_job import RayOptions, run_ray_job

    opts = batch.BatchOptions(quality=args.quality, max_pixels=int(args.max_pixels), overwrite=args.overwrite,
                              workers=args.workers, strength=strengths, progress=False)
    ray_opts = RayOptions(actors=args.actors, cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor,
                          photos_per_call=args.photos_per_call, address=args.address,
                          progress=not args.no_progress)
    summary = run_ray_job(bundles, jobs, config, opts, ray_opts, backend=args.backend)
    print(summary.text(), file=sys.stderr)
    if args.json:
        print(batch.summary_json(summary))
    return summary.exit_code

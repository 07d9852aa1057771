"""Edit photos and explore the GAN in the browser: a local web app (needs the [serve] extra)."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from pipeline.commands import command_parser
from pipeline.errors import UserError

EPILOG = """\
examples:
  photoedit serve                                  editor with the installed translators
  photoedit serve --run runs/qs                    + GAN explorer and the run's translators
  photoedit serve --folders ~/photos --out edited  + folder mode over ~/photos, outputs under edited/
  then open http://127.0.0.1:7860/ in a browser.

tabs:
  Photo editor   drop or pick a photo; one slider per translator (applied top to bottom;
                 reorder with the arrows); before/after split view; the preview is edited
                 at screen size while you slide; Download edits the full-resolution file
                 exactly as `photoedit --attribute A --strength S` would (EXIF, ICC, alpha kept).
  Folder         edit a folder below --folders into --out with the batch runner; progress
                 bar; starting the same edit again resumes it (finished files are skipped).
  GAN explorer   with --run: samples by seed, boundary and SeFa sliders, coarse / middle /
                 fine W+ layer toggles, and "make pairs from here" (the pair the translator
                 learns, beside the translator's own try).
  Paint/dissect  shown only when the run holds LSE / dissection files (photoedit lse/dissect).

safety:
  Binds to 127.0.0.1; --host 0.0.0.0 exposes it to the network (a warning is printed: there
  is no login). Uploads over --max-upload-mb and images over --max-pixels are refused
  before decoding; files are read and written only in its temp folder, below --folders
  and below --out; at most --max-pending heavy requests run or wait, others get "busy".

needs: pip install -e '.[serve]'  (FastAPI + uvicorn; the page itself has no outside scripts)
"""


def build_parser() -> argparse.ArgumentParser:
    p = command_parser("serve", __doc__, EPILOG)
    g = p.add_argument_group("what to serve")
    g.add_argument("--run", metavar="RUN_DIR", type=Path,
                   help="a `photoedit run` folder: GAN explorer (gan/generator.safetensors, boundary-*/) "
                        "and its translators (translator-*/)")
    g.add_argument("--models", metavar="DIR", type=Path, help="folder of translator bundles searched first")
    g.add_argument("--folders", metavar="DIR", type=Path,
                   help="folder mode: edit folders below DIR (default: folder mode off)")
    g.add_argument("--out", metavar="DIR", type=Path, default=Path("photoedit-serve-out"),
                   help="folder mode writes below DIR (default: %(default)s)")
    g = p.add_argument_group("network")
    g.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    g.add_argument("--port", type=int, default=7860, help="port (default: %(default)s)")
    g = p.add_argument_group("limits")
    g.add_argument("--max-upload-mb", type=float, default=50.0, metavar="MB",
                   help="refuse bigger uploads (default: %(default)s)")
    g.add_argument("--max-pixels", type=float, default=50e6, metavar="N",
                   help="refuse images with more pixels, from the header (decompression bombs; default: 50e6)")
    g.add_argument("--max-pending", type=int, default=8, metavar="N",
                   help="heavy requests admitted at once; more are answered 'busy' (default: %(default)s)")
    g.add_argument("--quality", type=int, default=95, metavar="Q",
                   help="JPEG/WebP quality of downloads, as the CLI's --quality (default: %(default)s)")
    g.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                   help="batch runner I/O threads, as the CLI's --workers (default: %(default)s)")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.run is not None and not args.run.is_dir():
        raise UserError(f"--run {args.run}: no such folder")
    if args.folders is not None and not args.folders.is_dir():
        raise UserError(f"--folders {args.folders}: no such folder")
    if not 0 < args.port < 65536:
        raise UserError(f"--port {args.port}: expected 1-65535")
    if not 1 <= args.quality <= 100:
        raise UserError(f"--quality {args.quality}: expected 1-100")
    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"photoedit serve needs {' and '.join(missing)}: pip install -e '.[serve]'")
    from pipeline.serve.app import serve
    from pipeline.serve.settings import LOCAL_HOSTS, ServeConfig

    try:
        cfg = ServeConfig(run_dir=args.run, models_dir=args.models, folders=args.folders, out_dir=args.out,
                          max_upload_mb=args.max_upload_mb, max_pixels=int(args.max_pixels),
                          max_pending=args.max_pending, quality=args.quality, workers=args.workers)
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.host not in LOCAL_HOSTS:
        print(f"photoedit serve: warning: --host {args.host} exposes the editor to every machine that can reach "
              "this one; there is no login, and anyone can upload photos and (with --folders) edit folders",
              file=sys.stderr)
    serve(cfg, host=args.host, port=args.port, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    return 0

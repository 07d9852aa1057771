"""The web app: FastAPI routes over the editor, folder mode and GAN explorer, plus the page itself.

Every script and style is served from `pipeline/serve/static/` (no CDN; the page's
Content-Security-Policy allows nothing else). Heavy requests (upload, preview, download)
pass one gate: at most `max_pending` are admitted at once, the rest get 503 at once
(so memory stays bounded: each admitted upload holds at most `max_upload_mb`), and
`busy_workers` of them compute while the others wait. Every refusal is JSON
`{"error": "<file or field>: <problem>"}` with a 4xx/5xx code; the server goes on.
"""
from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from pipeline import __version__
from pipeline.serve.editor import PhotoEditor, find_attributes, parse_edits, preview_media_type
from pipeline.serve.explorer import GanExplorer, dissect_files, generator_path
from pipeline.serve.folders import FolderEditor
from pipeline.serve.painter import PaintDissect
from pipeline.serve.settings import RequestError, ServeConfig

STATIC = Path(__file__).resolve().parent / "static"
MAX_JSON_BYTES = 64 * 1024
CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
       "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class Gate:
    """Admission control for heavy requests (see the module docstring)."""

    def __init__(self, max_pending: int, busy_workers: int):
        self.max_pending = max_pending
        self.pending = 0
        self.refused = 0
        self._busy = asyncio.Semaphore(busy_workers)

    @property
    def full(self) -> bool:
        return self.pending >= self.max_pending

    def busy(self) -> RequestError:
        self.refused += 1
        return RequestError(f"server busy: {self.pending} requests in progress (limit {self.max_pending}); "
                            "try again in a moment", 503)

    @asynccontextmanager
    async def admit(self):
        # Runs on the event loop's one thread: the counter needs no lock.
        if self.full:
            raise self.busy()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def run(self, fn, *args):
        async with self._busy:
            return await run_in_threadpool(fn, *args)


class ServeState:
    """What one server holds: its work folder, the editor, folder mode and (with a run) the explorer."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.work_dir = Path(cfg.work_dir) if cfg.work_dir else Path(tempfile.mkdtemp(prefix="photoedit-serve-"))
        self.own_work_dir = cfg.work_dir is None
        self.editor = None
        try:
            self.attributes = find_attributes(cfg.models_dir, cfg.run_dir)
            self.editor = PhotoEditor(cfg, self.attributes, self.work_dir)
            self.folders = FolderEditor(cfg, self.editor)
            self.explorer = GanExplorer(cfg.run_dir, self.editor) if generator_path(cfg.run_dir) else None
            self.dissect = dissect_files(cfg.run_dir)
            # the paint tab draws on the explorer's samples: it needs the run's GAN too
            self.painter = PaintDissect(cfg.run_dir, self.dissect, self.explorer.G, self.explorer.lock) \
                if self.explorer is not None and self.dissect else None
            self.gate = Gate(cfg.max_pending, cfg.busy_workers)
        except BaseException:  # a bad run folder, or Ctrl-C while torch loads: no temp folder left
            self.close()
            raise

    def warm_up(self) -> None:
        """Load each translator now, so the first slider move does not wait for torch."""
        for name in self.attributes:
            self.editor.pipeline([name])

    def close(self) -> None:
        if self.editor is not None:
            self.editor.forget_all()
        if self.own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def info(self) -> dict:
        cfg = self.cfg
        return {"version": __version__,
                "attributes": [a.to_dict() for a in self.attributes.values()],
                "limits": {"max_upload_bytes": cfg.max_upload_bytes, "max_pixels": cfg.max_pixels,
                           "preview_max_side": cfg.preview_max_side, "max_photos": cfg.max_photos},
                "folders": self.folders.enabled, "explorer": self.explorer is not None,
                "run": str(cfg.run_dir) if cfg.run_dir else None, "dissect": self.dissect,
                "paint": self.painter is not None}


def create_app(cfg: ServeConfig, warm_up: bool = True) -> FastAPI:
    state = ServeState(cfg)
    if warm_up:
        try:
            state.warm_up()
        except BaseException:  # Ctrl-C while torch loads: leave no temp folder behind
            state.close()
            raise

    @asynccontextmanager
    async def lifespan(app):
        yield
        state.close()

    app = FastAPI(title="photoedit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.serve = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    index = (STATIC / "index.html").read_text(encoding="utf-8")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(RequestError)
    async def refused(request: Request, e: RequestError):
        return JSONResponse({"error": str(e)}, status_code=e.status)

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):
        traceback.print_exception(e, file=sys.stderr)
        return JSONResponse({"error": f"internal error: {type(e).__name__}: {e}"}, status_code=500)

    # -- page and info ------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(index, headers={"Cache-Control": "no-store"})

    @app.get("/api/info")
    async def info():
        return state.info()

    # -- photo editor ---------------------------------------------------------------------------

    @app.post("/api/photos")
    async def upload(request: Request, name: str = ""):
        if state.gate.full:
            # Read (and drop) the body first: a client still sending it would see a reset
            # connection instead of the answer.
            await drain(request, cfg.max_upload_bytes)
            raise state.gate.busy()
        async with state.gate.admit():
            data = await read_body(request, cfg.max_upload_bytes, name or "upload")
            item = await state.gate.run(state.editor.add, name, data)
        return item.to_dict()

    @app.get("/api/photos/{pid}/original")
    async def original(pid: str, side: int = 1280):
        async with state.gate.admit():
            data = await state.gate.run(state.editor.original, pid, side)
        return Response(data, media_type=preview_media_type(data), headers={"Cache-Control": "no-store"})

    @app.post("/api/photos/{pid}/preview")
    async def preview(pid: str, request: Request):
        body = await read_json(request)
        edits = parse_edits(body.get("edits", []), state.attributes)
        side = _int(body.get("side", 1280), "side")
        async with state.gate.admit():
            data, seconds = await state.gate.run(state.editor.preview, pid, edits, side)
        return Response(data, media_type=preview_media_type(data),
                        headers={"Cache-Control": "no-store", "X-Edit-Seconds": f"{seconds:.4f}"})

    @app.get("/api/photos/{pid}/download")
    async def download(pid: str, edits: str = ""):
        parsed = parse_edits(edits, state.attributes)
        async with state.gate.admit():
            path, name = await state.gate.run(state.editor.download, pid, parsed)
        return FileResponse(path, filename=name, headers={"Cache-Control": "no-store"})

    # -- folder mode ----------------------------------------------------------------------------

    @app.get("/api/folders")
    async def folders(path: str = ""):
        return await run_in_threadpool(state.folders.listing, path)

    @app.post("/api/folders/job")
    async def folder_start(request: Request):
        body = await read_json(request)
        edits = parse_edits(body.get("edits", []), state.attributes)
        return await run_in_threadpool(state.folders.start, str(body.get("folder", "")), edits)

    @app.get("/api/folders/job")
    async def folder_status():
        return await run_in_threadpool(state.folders.status)

    # -- GAN explorer ---------------------------------------------------------------------------

    def explorer() -> GanExplorer:
        if state.explorer is None:
            raise RequestError("no GAN here: start the server with --run RUN_DIR (a folder with "
                               "gan/generator.safetensors)", 404)
        return state.explorer

    @app.get("/api/gan/info")
    async def gan_info():
        return explorer().info()

    async def gated(work, body, png: bool = False):
        """One renderer call through the request gate; a PNG answer is never cached."""
        async with state.gate.admit():
            data = await state.gate.run(work, body)
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"}) if png else data

    @app.post("/api/gan/render")
    async def gan_render(request: Request):
        body = await read_json(request)
        return await gated(explorer().render, body, png=True)

    @app.post("/api/gan/pair")
    async def gan_pair(request: Request):
        body = await read_json(request)
        return await gated(explorer().pair, body)

    # -- paint and dissect ----------------------------------------------------------------------

    def painter() -> PaintDissect:
        if state.painter is None:
            raise RequestError("no paint tab here: start the server with --run RUN_DIR holding a GAN and the files "
                               "of `photoedit lse` / `photoedit dissect` (RUN/lse*.safetensors, RUN/dissect*/)", 404)
        return state.painter

    @app.get("/api/paint/info")
    async def paint_info():
        return painter().info()

    @app.post("/api/paint/render")
    async def paint_render(request: Request):
        body = await read_json(request)
        return await gated(painter().render, body, png=True)

    @app.post("/api/paint/labels")
    async def paint_labels(request: Request):
        body = await read_json(request)
        return await gated(painter().labels, body, png=True)

    @app.post("/api/paint/sie")
    async def paint_sie(request: Request, seed: str = "0", psi: str = "0.8", steps: str = "60", blend: str = "none"):
        # The body is the painted layout itself: H x W bytes, nothing else (bounded by the GAN's size).
        p = painter()
        h, w = p.G.resolution
        async with state.gate.admit():
            layout = await read_body(request, h * w, "painted layout",
                                     f"{h} x {w} = {h * w} bytes (one class id per pixel of the GAN's image)")
            return await state.gate.run(p.paint, {"seed": seed, "psi": psi, "steps": steps, "blend": blend}, layout)

    return app


async def read_body(request: Request, limit: int, name: str, limit_text: str | None = None) -> bytes:
    """The request body, refused (413) past `limit` bytes, from its header or while reading."""
    limit_text = limit_text or f"the upload limit of {limit / 2**20:g} MB (photoedit serve --max-upload-mb)"
    too_big = RequestError(f"{name[:80]}: larger than {limit_text}", 413)
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def drain(request: Request, limit: int) -> None:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return


async def read_json(request: Request) -> dict:
    data = await read_body(request, MAX_JSON_BYTES, "request")
    try:
        body = json.loads(data or b"{}")
    except ValueError as e:
        raise RequestError(f"request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    return body


def _int(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RequestError(f"{what}: {value!r} is not a whole number") from None


def serve(cfg: ServeConfig, host: str = "127.0.0.1", port: int = 7860, log=print) -> None:
    """Run the app with uvicorn until Ctrl-C; the work folder is removed at exit."""
    import torch
    import uvicorn

    from pipeline.photos.batch import default_torch_threads

    # As the CLI sets it: downloads then match `photoedit --attribute` bit for bit, and the
    # network does not fight the batch runner's I/O threads for the cores.
    torch.set_num_threads(default_torch_threads(cfg.workers))
    # Until uvicorn installs its own handlers, SIGTERM stops the start-up like Ctrl-C (temp folder removed).
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        app = create_app(cfg)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    state = app.state.serve
    log(f"photoedit serve: http://{'[' + host + ']' if ':' in host else host}:{port}/  "
        f"({len(state.attributes)} translators: {', '.join(state.attributes) or 'none'}; "
        f"GAN explorer {'on' if state.explorer else 'off (--run)'}; "
        f"folder mode {'on: ' + str(cfg.folders) if cfg.folders else 'off (--folders)'}); Ctrl-C stops")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        state.close()  # also when uvicorn could not bind the port


def _interrupt(signum, frame):
    raise KeyboardInterrupt

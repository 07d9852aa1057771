"""Shared by tests/test_serve*.py and bench/bench_serve.py: a tiny run folder and a server subprocess."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALPHOTOS = REPO.parent / "shared" / "realphotos"


def tiny_run(run: Path) -> Path:
    """A run folder with a tiny random generator and one boundary ('sunny'): enough for the explorer."""
    import torch

    from gan.checkpoint import save_generator
    from gan.networks import Generator, GeneratorConfig
    from pipeline.semantics.boundary import LinearBoundary

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=(16, 32), mapping_layers=2, channels=(16, 16, 8)))
    save_generator(G, run / "gan" / "generator.safetensors")
    n = np.random.RandomState(0).randn(16)
    LinearBoundary(n / np.linalg.norm(n), 0.0, [0, 1, 2, 3], {"attribute": "sunny"}).save(
        run / "boundary-sunny" / "sunny.npz")
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`photoedit serve ...` in a subprocess on a free port; waits until /api/info answers."""

    def __init__(self, *args: str, env: dict | None = None, timeout: float = 120):
        self.port = free_port()
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"photoedit-serve-{self.port}.log", "w+")
        full_env = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--port", str(self.port), *args],
                                     cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.request("GET", "/api/info")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(f"server did not start:\n{output}")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | dict | None = None,
                timeout: float = 120) -> tuple[int, dict, bytes]:
        """(status, headers, body); a dict body is sent as JSON."""
        headers = {}
        if isinstance(body, dict):
            body, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-5000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def tiny_semantics(run: Path) -> Path:
    """The paint tab's files for tiny_run's generator: an LSE (RUN/lse.safetensors) and a dissection
    (RUN/dissect/dissection.json), both against a brightness labeller (dark / mid / bright thirds)."""
    import json

    import torch

    from gan.checkpoint import load_generator
    from pipeline.semantics import dissect as D
    from pipeline.semantics import lse as L

    G = load_generator(run / "gan" / "generator.safetensors")
    names = ["dark", "mid", "bright"]
    images, feats = L.sample_with_features(G, range(32))
    cuts = torch.quantile(images.mean(1).flatten(), torch.tensor([1 / 3, 2 / 3]))

    def label(img: torch.Tensor) -> torch.Tensor:
        return torch.bucketize(img.mean(1), cuts)

    ext = L.fit_extractor(feats, label(images), 3, steps=150)
    L.save_extractor(ext, run / "lse.safetensors", dict(enumerate(names)), {"test": "brightness"})
    tables = D.unit_class_iou(G, label, 3, range(32), quantile=0.9)
    (run / "dissect").mkdir(exist_ok=True)
    (run / "dissect" / "dissection.json").write_text(json.dumps(
        {"classes": names, "levels": [{"level": lv, "units": int(t.shape[0]), "iou": t.round(4).tolist()}
                                      for lv, t in enumerate(tables)]}))
    return run

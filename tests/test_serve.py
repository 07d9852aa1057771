"""`photoedit serve` over HTTP: previews, downloads equal to the CLI's, bad input, load, GAN explorer, folders.

One server subprocess for the module (a tiny random GAN run, the shipped translators);
a real street photo from ../shared/realphotos (skipped when absent).
"""
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import REALPHOTOS, REPO, Server, tiny_run  # noqa: E402

PHOTO = REALPHOTOS / "hybridnets_bdd_1.jpg"
needs_photo = pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/realphotos not present")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    run = tiny_run(tmp / "run")
    photos = tmp / "photos"
    (photos / "sub").mkdir(parents=True)
    if PHOTO.is_file():
        shutil.copy(PHOTO, photos / "a.jpg")
        shutil.copy(PHOTO, photos / "sub" / "b.jpg")
    (tmp / "xdg").mkdir()
    server_env = {"XDG_DATA_HOME": str(tmp / "xdg"), "PHOTOEDIT_MODELS": ""}
    server = Server("--run", str(run), "--folders", str(photos), "--out", str(tmp / "out"),
                    "--max-upload-mb", "8", "--max-pending", "6", env=server_env)
    yield {"server": server, "tmp": tmp, "photos": photos, "env": server_env}
    server.stop()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def upload(server, data: bytes, name: str):
    status, _, body = server.request("POST", f"/api/photos?name={name}", data)
    return status, json.loads(body)


def still_serving(server):
    status, _, body = server.request("GET", "/api/info")
    assert status == 200 and json.loads(body)["attributes"]


def test_info_lists_translators_and_tabs(env):
    status, headers, body = env["server"].request("GET", "/api/info")
    info = json.loads(body)
    assert status == 200
    names = [a["name"] for a in info["attributes"]]  # the shipped bundles, sorted
    assert names == sorted(names) and {"night", "sunny"} <= set(names)
    assert info["explorer"] and info["folders"] and info["dissect"] == []
    assert "default-src 'self'" in headers["content-security-policy"]
    # the page and its scripts come from the server itself
    status, _, page = env["server"].request("GET", "/")
    assert status == 200 and b"/static/app.js" in page and b"http" not in page.split(b"<body>")[0]
    assert env["server"].request("GET", "/static/app.js")[0] == 200


@needs_photo
def test_preview_follows_the_sliders(env):
    server = env["server"]
    status, info = upload(server, PHOTO.read_bytes(), "street.jpg")
    assert status == 200 and (info["width"], info["height"]) == (1280, 720)
    pid = info["id"]
    original = decode(server.request("GET", f"/api/photos/{pid}/original?side=640")[2])
    assert original.shape == (360, 640, 3)

    def preview(edits):
        status, headers, body = server.request("POST", f"/api/photos/{pid}/preview", {"edits": edits, "side": 640})
        assert status == 200, body
        return decode(body)

    none = preview([["sunny", 0]])
    weak, strong = preview([["sunny", 0.3]]), preview([["sunny", 1.0]])
    both = preview([["sunny", 1.0], ["night", 1.0]])
    assert np.array_equal(none, original)  # strength 0 is no edit
    d_weak, d_strong = np.abs(weak - original).mean(), np.abs(strong - original).mean()
    assert d_weak > 1 and d_strong > 1.5 * d_weak  # the slider moves the edit, in proportion
    assert np.abs(both - strong).mean() > 1  # a second attribute changes it again


@needs_photo
def test_download_is_the_cli_output(env):
    server, tmp = env["server"], env["tmp"]
    pid = upload(server, PHOTO.read_bytes(), "street.jpg")[1]["id"]
    status, headers, data = server.request("GET", f"/api/photos/{pid}/download?edits=night:0.7")
    assert status == 200, data
    assert 'filename="street.night.jpg"' in headers["content-disposition"]
    shutil.copy(PHOTO, tmp / "street.jpg")
    subprocess.run([sys.executable, "-m", "pipeline", "-a", "night", "-s", "0.7", str(tmp / "street.jpg"),
                    "--no-progress"], cwd=REPO, check=True, capture_output=True, env=dict(os.environ, **env["env"]))
    cli = (tmp / "street.night.jpg").read_bytes()
    assert np.array_equal(decode(data), decode(cli))
    assert data == cli  # EXIF stamp and encoder settings too


@needs_photo
def test_alpha_and_icc_survive_preview_and_download(env):
    server = env["server"]
    rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((320, 180)))
    alpha = np.tile(np.linspace(0, 255, 320).astype(np.uint8), (180, 1))
    buf = io.BytesIO()
    icc = b"\x00" * 128 + b"fake-but-kept-profile"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG", icc_profile=icc)
    status, info = upload(server, buf.getvalue(), "cut-out.png")
    assert status == 200 and info["has_alpha"]
    status, headers, body = server.request("POST", f"/api/photos/{info['id']}/preview",
                                           {"edits": [["sunny", 0.8]], "side": 320})
    assert status == 200 and headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(body)))[:, :, 3], alpha)  # the page shows the alpha
    status, headers, body = server.request("GET", f"/api/photos/{info['id']}/download?edits=sunny:0.8")
    out = Image.open(io.BytesIO(body))
    assert status == 200 and out.mode == "RGBA" and 'filename="cut-out.sunny.png"' in headers["content-disposition"]
    assert np.array_equal(np.asarray(out)[:, :, 3], alpha) and out.info.get("icc_profile") == icc
    assert np.abs(np.asarray(out)[:, :, :3].astype(int) - rgb).mean() > 1  # and the colours were edited


def test_bad_uploads_get_clear_errors_and_the_server_goes_on(env, tmp_path):
    server = env["server"]
    # 1-bit PNG: ~30 KB on disk, 900 MP in its header (a decompression bomb)
    Image.new("1", (30000, 30000)).save(tmp_path / "bomb.png")
    buf = io.BytesIO()
    Image.new("L", (10000, 10000)).save(buf, "PNG")  # a real 100-MP image
    cases = [
        (b"this is not a picture", "notes.jpg", 400, "not an image"),
        (b"", "empty.jpg", 400, "empty file (0 bytes)"),
        ((tmp_path / "bomb.png").read_bytes(), "bomb.png", 400, "900000000 pixels"),
        (buf.getvalue(), "huge.png", 400, "100,000,000 pixels exceeds the limit"),
        (b"x" * (9 * 2**20), "big.jpg", 413, "larger than the upload limit of 8 MB"),
        (b"\xff\xd8\xff", "../../evil.jpg", 400, "plain file name"),
        (b"\xff\xd8\xff", "..\\evil.jpg", 400, "plain file name"),
        (b"hello", "notes.txt", 400, "not an image type"),
    ]
    for data, name, code, words in cases:
        status, body = upload(server, data, name)
        assert status == code and words in body["error"], (name, status, body)
        if code == 400 and "plain" not in words:
            assert body["error"].startswith(name)  # the message names the file
        still_serving(server)
    assert not (env["tmp"] / "evil.jpg").exists() and not (REPO / "evil.jpg").exists()
    # paths from requests: static files, folder mode, photo ids
    for path in ("/static/../../setup.py", "/static/%2e%2e/%2e%2e/setup.py", "/static/..%2f..%2fsetup.py"):
        status, _, body = server.request("GET", path)
        assert status == 404 and b"install_requires" not in body
    for folder in ("..", "../..", "/etc", "sub/../.."):
        status, _, body = server.request("GET", f"/api/folders?path={folder}")
        assert status == 400 and b"served folder" in body, (folder, body)
    status, _, body = server.request("POST", "/api/photos/../../x/preview", {"edits": []})
    assert status == 404
    status, _, body = server.request("POST", "/api/photos/nope/preview", {"edits": [["sunny", 1]]})
    assert status == 404 and b"upload it again" in body
    status, _, body = server.request("POST", "/api/photos/nope/preview", {"edits": [["glitter", 1]]})
    assert status == 400 and b"no translator 'glitter'" in body
    still_serving(server)


@needs_photo
def test_fifty_concurrent_requests_succeed_or_are_refused(env):
    server = env["server"]
    pid = upload(server, PHOTO.read_bytes(), "street.jpg")[1]["id"]
    data = PHOTO.read_bytes()
    results = []

    def one(i):
        try:
            if i % 2:
                status, _, body = server.request("POST", f"/api/photos?name=p{i}.jpg", data, timeout=120)
            else:
                status, _, body = server.request("POST", f"/api/photos/{pid}/preview",
                                                 {"edits": [["sunny", (i % 10) / 10 + 0.1]], "side": 1024},
                                                 timeout=120)
            results.append((status, body))
        except OSError as e:  # a reset connection is not a clean refusal
            results.append((None, repr(e).encode()))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads)
    statuses = [s for s, _ in results]
    assert len(results) == 50 and set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 6  # the gate admits max-pending at once
    for status, body in results:
        if status == 503:
            assert b"server busy" in body
    # memory: the gate bounds uploads in flight (6 x <= 8 MB) and photos kept (8 previews)
    assert server.peak_rss_mb() < 1500, server.peak_rss_mb()
    still_serving(server)
    assert server.request("POST", f"/api/photos/{pid}/preview", {"edits": [["sunny", 0.5]]})[0] == 200


def test_gan_explorer_edits_the_chosen_layers_and_makes_the_pair(env):
    server = env["server"]
    status, _, body = server.request("GET", "/api/gan/info")
    info = json.loads(body)
    assert status == 200 and info["num_ws"] == 6 and info["groups"] == {"coarse": [0, 1, 2], "middle": [3, 4, 5]}
    assert info["boundaries"]["sunny"]["layers"] == [0, 1, 2, 3]

    def render(**kw):
        status, _, body = server.request("POST", "/api/gan/render", kw)
        assert status == 200, body
        return decode(body)

    base = render(seed=3, psi=0.8)
    assert base.shape == (16, 32, 3)
    assert np.abs(render(seed=4, psi=0.8) - base).mean() > 1  # re-seeding changes the sample
    edit = [{"direction": "boundary:sunny", "strength": 3.0}]
    coarse = render(seed=3, psi=0.8, edits=edit, groups=["coarse"])
    both = render(seed=3, psi=0.8, edits=edit, groups=["coarse", "middle"])
    assert np.abs(coarse - base).mean() > 1 and np.abs(both - coarse).mean() > 0.1
    assert np.array_equal(render(seed=3, psi=0.8, edits=edit, groups=[]), base)  # no layer on: no edit
    sefa = render(seed=3, psi=0.8, edits=[{"direction": "sefa:0", "strength": 5.0}])
    assert np.abs(sefa - base).mean() > 1

    status, _, body = server.request("POST", "/api/gan/pair", {"seed": 3, "psi": 0.8, "attribute": "sunny",
                                                                "strength": 3.0})
    pair = json.loads(body)
    assert status == 200 and pair["layers"] == [0, 1, 2, 3]
    x = decode(__import__("base64").b64decode(pair["x"].split(",", 1)[1]))
    y = decode(__import__("base64").b64decode(pair["y"].split(",", 1)[1]))
    assert np.array_equal(x, base) and np.array_equal(y, both)  # the explorer shows what pairs makes
    from translators.registry import SHIPPED_MODELS

    a_max = json.loads((SHIPPED_MODELS / "sunny" / "config.json").read_text())["strength_range"][1]
    assert pair["translated"] and abs(pair["s_asked"] - 3.0 / a_max) < 1e-6  # a / the shipped sunny's a_max
    assert pair["s"] == min(1.0, 3.0 / a_max)  # shown within the range the translator learnt
    for bad in ({"seed": -1}, {"psi": "x"}, {"edits": [{"direction": "boundary:../../x", "strength": 1}]},
                {"groups": ["all"]}):
        status, _, body = server.request("POST", "/api/gan/render", bad)
        assert status == 400 and json.loads(body)["error"]


@needs_photo
def test_folder_mode_runs_the_batch_and_resumes(env):
    server = env["server"]
    status, _, body = server.request("GET", "/api/folders")
    listing = json.loads(body)
    assert listing == {"root": str(env["photos"]), "folder": "", "subfolders": ["sub"], "images": 2}

    def run_job():
        status, _, body = server.request("POST", "/api/folders/job", {"folder": "", "edits": [["sunny", 0.5]]})
        assert status == 200, body
        for _ in range(600):
            job = json.loads(server.request("GET", "/api/folders/job")[2])["job"]
            if not job["running"]:
                return job
            threading.Event().wait(0.2)
        raise AssertionError("folder job did not end")

    job = run_job()
    assert job["total"] == job["done"] == 2 and job["summary"]["counts"]["done"] == 2 and job["resumed"] == 0
    out = Path(job["out"])
    assert out == (env["tmp"] / "out" / "sunny0.5").resolve()
    assert (out / "a.sunny.jpg").is_file() and (out / "sub" / "b.sunny.jpg").is_file()
    assert job["written"] == ["a.sunny.jpg", "sub/b.sunny.jpg"] and job["folder"] == ""
    again = run_job()  # the same edit again: everything is there already
    assert again["resumed"] == 2 and again["summary"]["counts"] == {"done": 0, "skipped": 2, "failed": 0}


def test_dissect_tab_appears_only_with_its_files(tmp_path):
    from pipeline.serve.explorer import dissect_files

    assert dissect_files(tmp_path) == [] and dissect_files(None) == []
    (tmp_path / "lse").mkdir()
    (tmp_path / "lse" / "lse.safetensors").write_bytes(b"")
    (tmp_path / "dissect").mkdir()
    (tmp_path / "dissect" / "units.csv").write_text("unit,class,iou\n")
    assert dissect_files(tmp_path) == ["dissect/units.csv", "lse/lse.safetensors"]


def test_serve_refuses_bad_arguments_before_starting(tmp_path):
    from pipeline.cli import main

    assert main(["serve", "--run", str(tmp_path / "missing")]) == 2
    assert main(["serve", "--port", "70000"]) == 2


def test_exposing_the_server_warns_and_limits_reach_the_config(monkeypatch, capsys):
    import pipeline.serve.app as app

    seen = {}
    monkeypatch.setattr(app, "serve", lambda cfg, host, port, log: seen.update(cfg=cfg, host=host, port=port))
    from pipeline.cli import main

    assert main(["serve", "--host", "0.0.0.0", "--port", "8123", "--max-pixels", "2e6", "--max-upload-mb", "3"]) == 0
    assert "warning: --host 0.0.0.0 exposes the editor" in capsys.readouterr().err
    assert seen["host"] == "0.0.0.0" and seen["port"] == 8123
    assert seen["cfg"].max_pixels == 2_000_000 and seen["cfg"].max_upload_bytes == 3 * 2**20
    assert main(["serve", "--port", "8123"]) == 0
    assert "warning" not in capsys.readouterr().err  # localhost: no warning


def test_the_page_loads_nothing_from_outside():
    from pipeline.serve.app import STATIC

    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name

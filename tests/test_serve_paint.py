"""The paint-and-dissect tab of `photoedit serve` over HTTP: unit toggles and semantic image editing."""
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

sys.path.insert(0, str(Path(__file__).parent))
from serve_helpers import Server, tiny_run, tiny_semantics  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paint")
    run = tiny_semantics(tiny_run(tmp / "run"))
    (tmp / "xdg").mkdir()
    s = Server("--run", str(run), env={"XDG_DATA_HOME": str(tmp / "xdg"), "PHOTOEDIT_MODELS": ""})
    yield s
    s.stop()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def post(server, path, body):
    status, headers, data = server.request("POST", path, body)
    return status, (json.loads(data) if headers.get("content-type", "").startswith("application/json") else data)


def test_paint_info_lists_classes_units_and_files(server):
    status, _, body = server.request("GET", "/api/info")
    info = json.loads(body)
    assert info["paint"] and info["dissect"] == ["dissect/dissection.json", "lse.safetensors"]
    p = json.loads(server.request("GET", "/api/paint/info")[2])
    assert [c["name"] for c in p["classes"]] == ["dark", "mid", "bright"] and p["sie"]
    assert p["resolution"] == [16, 32] and p["notes"] == []
    for u in p["units"].values():  # at most half a level's units, so what is left still draws
        assert 1 <= len(u["units"]) <= 8 and len(set(u["units"])) == len(u["units"])


def test_switching_a_class_s_units_off_changes_the_sample_and_on_restores_it(server):
    units = json.loads(server.request("GET", "/api/paint/info")[2])["units"]
    name = next(iter(units))
    s0, on = post(server, "/api/paint/render", {"seed": 3})
    s1, off = post(server, "/api/paint/render", {"seed": 3, "off": [name]})
    s2, again = post(server, "/api/paint/render", {"seed": 3, "off": []})
    assert s0 == s1 == s2 == 200
    assert np.abs(decode(off) - decode(on)).mean() > 1  # the units draw something
    assert np.array_equal(decode(again), decode(on))  # the hook is gone afterwards
    status, err = post(server, "/api/paint/render", {"seed": 3, "off": ["../etc/passwd"]})
    assert status == 400 and "off:" in err["error"]
    status, labels = post(server, "/api/paint/labels", {"seed": 3})
    assert status == 200 and decode(labels).shape == (16, 32, 3)


def test_semantic_image_editing_moves_the_painted_region_toward_the_class(server):
    layout = np.full((16, 32), 255, np.uint8)
    layout[:, :12] = 2  # "bright" over the left third
    status, d = post(server, "/api/paint/sie?seed=5&steps=40", layout.tobytes())
    assert status == 200, d
    before = decode(__import__("base64").b64decode(d["before"].split(",", 1)[1]))
    after = decode(__import__("base64").b64decode(d["image"].split(",", 1)[1]))
    assert d["region_pixels"] == 16 * 12 and d["steps"] == 40
    assert d["region_fraction"] > d["region_fraction_before"] + 0.1  # the extractor sees the painted class (+0.19)
    left, right = np.abs(after - before)[:, :12].mean(), np.abs(after - before)[:, 20:].mean()
    assert left > right  # the change is mostly where the paint is
    # feature blending keeps the unpainted pixels far closer to the original
    status, b = post(server, "/api/paint/sie?seed=5&steps=40&blend=features", layout.tobytes())
    assert status == 200 and b["blend"] == "features"
    assert b["psnr_outside"] is None or b["psnr_outside"] > (d["psnr_outside"] or 0) + 10
    # bad layouts: wrong size, nothing painted, unknown class, too many steps, unknown blend
    for body, query, words in ((b"\x00" * 10, "", "expected 16 x 32"), (b"\xff" * 512, "", "nothing painted"),
                               (b"\x07" * 512, "", "class id 7"), (layout.tobytes(), "&steps=100000", "steps"),
                               (layout.tobytes(), "&blend=../x", "blend")):
        status, err = post(server, f"/api/paint/sie?seed=5{query}", body)
        assert status == 400, (words, status, err)
        assert words in err["error"]
    status, err = post(server, "/api/paint/sie?seed=5", b"\x01" * 100_000)
    assert status == 413 and "16 x 32 = 512 bytes" in err["error"]
    assert server.request("GET", "/api/info")[0] == 200  # still serving


def test_paint_tab_without_semantics_files_answers_404(tmp_path):
    run = tiny_run(tmp_path / "run")
    s = Server("--run", str(run), env={"XDG_DATA_HOME": str(tmp_path / "xdg"), "PHOTOEDIT_MODELS": ""})
    try:
        assert not json.loads(s.request("GET", "/api/info")[2])["paint"]
        status, _, body = s.request("GET", "/api/paint/info")
        assert status == 404 and "photoedit lse" in json.loads(body)["error"]
    finally:
        s.stop()

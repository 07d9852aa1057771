"""The page of `photoedit serve` driven in headless Chromium (Debian's, through Playwright; nothing downloaded).

Uploads a real photo, moves a slider and sees the preview change, downloads the result and
finds it equal to `photoedit --attribute` at the same strength; then the GAN explorer tab.

Screenshots for the docs (a run folder with a GAN gives the explorer tab real pictures; the
photos shown are world renders unless --photo is given: the shared real photos stay out of the repo):
    python tests/test_serve_browser.py --run RUN_DIR --out docs/ --world-photos 4
"""
import argparse
import base64
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402
from serve_helpers import REALPHOTOS, REPO, Server, tiny_run, tiny_semantics  # noqa: E402

PHOTO = REALPHOTOS / "hybridnets_bdd_1.jpg"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

READ_IMG = """async (sel) => {
  const img = document.querySelector(sel);
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(s);
}"""


def launch(p):
    return p.chromium.launch(executable_path=browser.chromium(), args=FLAGS)


def pixels(page, selector: str) -> np.ndarray:
    data = base64.b64decode(page.evaluate(READ_IMG, selector))
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def wait_attr(page, selector: str, attr: str, value: str, timeout: float = 60_000):
    # Selectors, not wait_for_function: the page's CSP forbids the eval that needs.
    page.wait_for_selector(f"{selector}[data-{attr}='{value}']", state="attached", timeout=timeout)


@pytest.mark.skipif(browser.chromium() is None and not os.environ.get("CI"),
                    reason="chromium not installed (CI installs it)")
@pytest.mark.skipif(not PHOTO.is_file(), reason="../shared/realphotos not present")
def test_edit_a_photo_in_the_browser(tmp_path):
    pytest.importorskip("fastapi")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[serve]' for the browser test")
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "PHOTOEDIT_MODELS": ""}
    server = Server("--run", str(tiny_run(tmp_path / "run")), env=env)
    try:
        with playwright.sync_playwright() as p:
            chrome = launch(p)
            page = chrome.new_page(viewport={"width": 1280, "height": 800}, accept_downloads=True)
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            assert page.locator("#tabs [data-tab=explorer]").is_visible()
            assert not page.locator("#tabs [data-tab=dissect]").is_visible()

            # 1. upload a real photo: the preview shows it unedited
            page.set_input_files("#file", str(PHOTO))
            wait_attr(page, "#after", "edits", "")
            unedited = pixels(page, "#after")
            assert unedited.shape[1] > 600  # screen size, not a thumbnail
            assert "1280 x 720" in page.inner_text("#photo-info")

            # 2. move a slider: the preview changes
            page.locator("input[data-attr=night]").fill("0.7")
            wait_attr(page, "#after", "edits", "night:0.7")
            edited = pixels(page, "#after")
            assert edited.shape == unedited.shape
            assert np.abs(edited - unedited).mean() > 3, "the night slider did not change the preview"
            assert "preview of night 0.7" in page.inner_text("#status")

            # 3. download: the full-resolution file the CLI writes for the same edit
            with page.expect_download() as info:
                page.click("#download")
            download = info.value
            assert download.suggested_filename == "hybridnets_bdd_1.night.jpg"
            download.save_as(tmp_path / "from-browser.jpg")
            shutil.copy(PHOTO, tmp_path / "street.jpg")
            subprocess.run([sys.executable, "-m", "pipeline", "-a", "night", "-s", "0.7", str(tmp_path / "street.jpg"),
                            "--no-progress"], cwd=REPO, check=True, capture_output=True, env=dict(os.environ, **env))
            ours = np.asarray(Image.open(tmp_path / "from-browser.jpg"))
            cli = np.asarray(Image.open(tmp_path / "street.night.jpg"))
            assert ours.shape == (720, 1280, 3) and np.array_equal(ours, cli)
            assert (tmp_path / "from-browser.jpg").read_bytes() == (tmp_path / "street.night.jpg").read_bytes()

            # 4. the GAN explorer: a boundary slider changes the sample
            page.click("#tabs [data-tab=explorer]")
            wait_attr(page, "#gan-img", "edits", "0")
            before = pixels(page, "#gan-img")
            page.locator("input[data-direction='boundary:sunny']").fill("4")
            wait_attr(page, "#gan-img", "edits", "1")
            assert np.abs(pixels(page, "#gan-img") - before).mean() > 1
            page.click("#pair-make")
            page.wait_for_selector("#pair-y[src^='data:image/png']", state="attached")
            assert errors == []
            chrome.close()
    finally:
        server.stop()


@pytest.mark.skipif(browser.chromium() is None and not os.environ.get("CI"),
                    reason="chromium not installed (CI installs it)")
def test_paint_and_dissect_in_the_browser(tmp_path):
    """Toggle a class's units off and on and see the sample change; paint a class, apply, see the edit."""
    pytest.importorskip("fastapi")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[serve]' for the browser test")
    run = tiny_semantics(tiny_run(tmp_path / "run"))
    server = Server("--run", str(run), env={"XDG_DATA_HOME": str(tmp_path / "xdg"), "PHOTOEDIT_MODELS": ""})
    try:
        with playwright.sync_playwright() as p:
            chrome = launch(p)
            page = chrome.new_page(viewport={"width": 1280, "height": 800})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            page.click("#tabs [data-tab=dissect]")
            wait_attr(page, "#paint-img", "off", "")
            on = pixels(page, "#paint-img")
            assert on.shape == (16, 32, 3)

            # 1. a class's units off: the sample changes; on again: it is back
            toggle = page.locator("#unit-toggles input").first
            name = toggle.get_attribute("value")
            toggle.uncheck()
            wait_attr(page, "#paint-img", "off", name)
            assert np.abs(pixels(page, "#paint-img") - on).mean() > 1
            toggle.check()
            wait_attr(page, "#paint-img", "off", "")
            assert np.array_equal(pixels(page, "#paint-img"), on)

            # 2. paint "bright" with the mouse over the left of the sample and apply
            page.select_option("#paint-class", label="bright")
            page.fill("#paint-brush", "8")
            page.dispatch_event("#paint-brush", "input")
            box = page.locator("#paint-canvas").bounding_box()
            page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.2 * box["height"])
            page.mouse.down()
            for f in (0.4, 0.6, 0.8):
                page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + f * box["height"], steps=4)
            page.mouse.up()
            painted = int(page.get_attribute("#paint-canvas", "data-painted"))
            assert painted > 20
            page.fill("#paint-steps", "40")
            page.dispatch_event("#paint-steps", "input")
            page.click("#paint-apply")
            wait_attr(page, "#paint-result", "done", "1")
            after = pixels(page, "#paint-result")
            assert after.shape == on.shape and np.abs(after - on).mean() > 0.5
            status = page.inner_text("#paint-status")
            assert f"painted {painted} px" in status and "PSNR outside the paint" in status
            assert errors == []
            chrome.close()
    finally:
        server.stop()


def paint_screenshot(page, png: Path) -> None:
    """The paint tab: a sample with the first class's units off, and a painted, applied edit."""
    page.click("#tabs [data-tab=dissect]")
    page.fill("#paint-seed", "7")
    page.dispatch_event("#paint-seed", "change")
    wait_attr(page, "#paint-img", "seed", "7")
    names = [o.strip() for o in page.eval_on_selector_all("#paint-class option", "os => os.map(o => o.textContent)")]
    page.select_option("#paint-class", label="vegetation" if "vegetation" in names else names[0])
    page.fill("#paint-brush", "12")
    page.dispatch_event("#paint-brush", "input")
    box = page.locator("#paint-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + 0.35 * box["height"])
    page.mouse.down()
    for f in (0.45, 0.55, 0.65):
        page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + f * box["height"], steps=4)
    page.mouse.up()
    page.click("#paint-apply")
    wait_attr(page, "#paint-result", "done", "1", timeout=300_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(png), full_page=True)


def world_photos(folder: Path, n: int) -> Path:
    """n held-out world scenes at a dashcam's 720x1280, as JPEGs: pictures the docs may show."""
    from pipeline import world

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        r = world.render(world.sample_scene(world.HELD_OUT_SEED_START + 700_000 + i, "day"), (720, 1280))
        Image.fromarray(r.image).save(folder / f"street_{i}.jpg", quality=92)
    return folder


def screenshots(run: Path | None, out: Path, photos: Path | None, photo: Path = PHOTO) -> None:
    """docs/serve_*.png: each tab with a real photo (and the run's GAN when given)."""
    from playwright.sync_api import sync_playwright

    import tempfile

    out_dir = tempfile.mkdtemp(prefix="serve-screenshots-")  # folder mode's outputs: not in the repo
    args = (["--run", str(run)] if run else []) + (["--folders", str(photos), "--out", out_dir] if photos else [])
    server = Server(*args)
    try:
        with sync_playwright() as p:
            chrome = launch(p)
            page = chrome.new_page(viewport={"width": 1280, "height": 760})
            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            page.set_input_files("#file", str(photo))
            wait_attr(page, "#after", "edits", "")
            page.locator("input[data-attr=night]").fill("0.8")
            wait_attr(page, "#after", "edits", "night:0.8")
            page.screenshot(path=str(out / "serve_editor.png"))
            if photos:
                page.click("#tabs [data-tab=folder]")
                page.click("#folder-start")
                page.wait_for_selector("#folder-status:has-text('done')", timeout=300_000)
                page.screenshot(path=str(out / "serve_folder.png"))
            if run:
                page.click("#tabs [data-tab=explorer]")
                page.fill("#seed", "7")
                page.dispatch_event("#seed", "change")
                names = page.eval_on_selector_all("input[data-direction^='boundary:']",
                                                  "els => els.map(e => e.dataset.direction)")
                if names:
                    page.locator(f"input[data-direction='{names[0]}']").fill("3")
                    page.click("#pair-make")
                    page.wait_for_selector("#pair-y[src^='data:image/png']", state="attached")
                page.wait_for_timeout(1500)
                page.screenshot(path=str(out / "serve_explorer.png"), full_page=True)
                if page.locator("#tabs [data-tab=dissect]").is_visible():
                    paint_screenshot(page, out / "serve_paint.png")
            chrome.close()
    finally:
        server.stop()
        shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", type=Path, help="a run folder with gan/generator.safetensors")
    ap.add_argument("--folders", type=Path, help="a folder of photos for the folder tab")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--photo", type=Path, help="the editor tab's photo (default: a world render)")
    ap.add_argument("--world-photos", type=int, default=0, metavar="N",
                    help="without --folders: a folder of N world renders for the folder tab")
    a = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="serve-photos-"))
    try:
        folders = a.folders or (world_photos(tmp / "photos", a.world_photos) if a.world_photos else None)
        photo = a.photo or world_photos(tmp / "one", 1) / "street_0.jpg"
        screenshots(a.run, a.out, folders, photo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

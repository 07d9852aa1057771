"""Open an HTML page in headless Chromium and check that every image loaded.

Used by the report test, and by hand to screenshot a real run's report:
    python tests/browser.py RUN/report.html --screenshot docs/report_screenshot.png
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Flags that keep Chromium off the (closed) network and out of the user's profile.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const res = {
    sections: [...document.querySelectorAll('section')].map(s => ({
      id: s.id, images: s.querySelectorAll('img').length})),
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
  };
  const pre = document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = 'PRO' + 'BE:' + JSON.stringify(res) + ':PRO' + 'BE';
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def probe(page: Path, timeout: float = 120) -> dict:
    """{'sections': [{'id', 'images'}], 'images': n, 'broken': [alt...]} as the browser saw it."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    text = page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        copy = page.with_name(f".probe-{page.name}")  # same folder: relative images still resolve
        copy.write_text(text, encoding="utf-8")
        try:
            out = subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp}", "--dump-dom", copy.resolve().as_uri()],
                                 capture_output=True, text=True, timeout=timeout)
        finally:
            copy.unlink(missing_ok=True)
    m = re.search(r"PROBE:(.*?):PROBE", out.stdout, re.S)
    if not m:
        raise RuntimeError(f"no probe result from chromium; stderr: {out.stderr[-2000:]}")
    return json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def screenshot(page: Path, png: Path, size: str = "1280,4000", timeout: float = 120) -> None:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, *FLAGS, f"--user-data-dir={tmp}", f"--window-size={size}",
                        f"--screenshot={png.resolve()}", page.resolve().as_uri()],
                       capture_output=True, timeout=timeout, check=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("page", type=Path)
    ap.add_argument("--screenshot", type=Path)
    a = ap.parse_args()
    print(json.dumps(probe(a.page), indent=1))
    if a.screenshot:
        screenshot(a.page, a.screenshot)
        print("wrote", a.screenshot)
    sys.exit(0)

"""Screenshots of the explorer for the README: 8*conv3 (depth 8) on 17 inputs with valid, same and full padding.

    .venv/bin/python scripts/explore_screenshots.py [DEST]     # default docs/img

Writes DEST/explore-valid.png, explore-same.png and explore-full.png: the page as a reader first sees it (controls,
diagram, count curve and ratio against depth), in headless Chromium with the network blocked
(scripts/setup_browser.sh). tests/test_explore.py takes the same three into artifacts/.
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path

from edgewise.report.explore import write_explore
from edgewise.testing.browser import console_errors, open_browser

SPEC, LENGTH = "8*conv3", 17
PADDINGS = ("valid", "same", "full")
WIDTH = 1600


def shoot(driver, page: Path, padding: str, dest: Path) -> Path:
    """Open ``page`` on 8*conv3 with ``padding`` and write the top of the page (down to the two plots) to ``dest``."""
    driver.get(f"{page.as_uri()}#spec=8*conv3&input={LENGTH}&padding={padding}&to=all&row=0")
    driver.execute_script("window.edgewiseExplorer.update()")  # drawn at the window's final width
    time.sleep(0.2)
    errors = console_errors(driver)
    if errors:
        raise RuntimeError(f"explore.html ({padding}) logged errors: {errors}")
    bottom = driver.execute_script("return document.querySelector('.two').getBoundingClientRect().bottom + 12")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WIDTH, "height": int(bottom), "scale": 1}})
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(base64.b64decode(shot["data"]))
    return dest


def main(dest="docs/img") -> list[Path]:
    out = []
    with tempfile.TemporaryDirectory() as tmp, open_browser(WIDTH, 1500) as driver:
        page = write_explore(tmp)
        for padding in PADDINGS:
            out.append(shoot(driver, page, padding, Path(dest) / f"explore-{padding}.png"))
    return out


if __name__ == "__main__":
    for path in main(*sys.argv[1:]):
        print(f"wrote {path}")

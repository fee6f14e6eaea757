"""The real-browser page check on small hand-written pages, each built to trip one part of it."""

import base64
import io
import struct
import time

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread

from edgewise.errors import EdgewiseError
from edgewise.testing import browser
from edgewise.testing.browser import check_page

# Skipped where the browser is missing (no root to install it), a failure under EDGEWISE_REQUIRE_BROWSER=1 (CI): see
# the `browser` marker in conftest.py.
needs_browser = pytest.mark.browser

PNG_W, PNG_H = 120, 45
LATE_W, LATE_H = 64, 32


def png_bytes(width=PNG_W, height=PNG_H) -> bytes:
    fig = Figure(figsize=(width / 50, height / 50), dpi=50)
    fig.add_subplot().plot([0, 1, 2], [1, 0, 1])
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def png_size(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def write(tmp_path, body, name="page.html", title="Test page"):
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return path


def test_png_helper_has_the_intended_size():
    assert png_size(png_bytes()) == (PNG_W, PNG_H)


@needs_browser
def test_good_page(tmp_path):
    src = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    # Far below the fold, lazy, and a different image (a repeat would come from the cache): it only has a
    # size if the checker makes it load.
    late = "data:image/png;base64," + base64.b64encode(png_bytes(LATE_W, LATE_H)).decode()
    page = write(tmp_path, f"""
        <h1>Report</h1>
        <img id=a src="{src}" alt="curve">
        <svg width="200" height="100" aria-label="boxes"><rect x="10" y="10" width="150" height="60" fill="teal"/>
          <svg x="20" y="20" width="20" height="20"><circle cx="5" cy="5" r="4"/></svg></svg>
        <div style="height: 8000px"></div>
        <img src="{late}" alt="late" loading="lazy">
        <p><a href="#a">top</a> <a href="other.html">next</a></p>
        <div style="height: 200px; background: #f00"></div>""")
    shot = tmp_path / "shots" / "good.png"
    check = check_page(page, shot, width=900, timeout=30)

    assert check.title == "Test page"
    assert check.console_errors == [] and check.broken_images == [] and check.external == []
    assert check.ok
    assert len(check.images) == 3  # two <img>, one outer <svg> (the nested one is part of it)
    first, last = (im for im in check.images if im["src"].startswith("data:image/png"))
    assert (first["alt"], last["alt"]) == ("curve", "late")
    for im, size in ((first, (PNG_W, PNG_H)), (last, (LATE_W, LATE_H))):
        assert (im["natural_width"], im["natural_height"]) == size
        assert (im["width"], im["height"]) == size and im["complete"]
        assert len(im["src"]) <= 60
    svg = next(im for im in check.images if im["src"].startswith("<svg"))
    assert svg["alt"] == "boxes"
    assert (svg["width"], svg["height"]) == (200, 100)
    assert (svg["natural_width"], svg["natural_height"]) == (150, 60)  # the drawing's bounding box

    assert check.page_height > 8000
    assert check.screenshot == shot and shot.is_file()
    width, height = png_size(shot.read_bytes())
    assert width == 900 and height >= check.page_height
    # The red block at the very bottom is in the shot: the page was drawn beyond the first screen.
    pixels = imread(io.BytesIO(shot.read_bytes()), format="png")
    bottom = pixels[check.page_height - 100, width // 2, :3]
    assert bottom.tolist() == [1.0, 0.0, 0.0], bottom


@needs_browser
def test_uncaught_error_is_reported(tmp_path):
    page = write(tmp_path, '<svg width="10" height="10"><rect width="10" height="10"/></svg>'
                           '<script>throw new Error("boom")</script>')
    check = check_page(page, timeout=30)
    assert any("boom" in e for e in check.console_errors), check.console_errors
    assert not check.ok


@needs_browser
def test_console_error_is_reported(tmp_path):
    page = write(tmp_path, '<svg width="10" height="10"><rect width="10" height="10"/></svg>'
                           '<script>console.warn("only a warning"); console.error("bad")</script>')
    check = check_page(page, timeout=30)
    assert len(check.console_errors) == 1 and "bad" in check.console_errors[0], check.console_errors
    assert not check.ok


@needs_browser
def test_broken_image(tmp_path):
    good = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    page = write(tmp_path, f'<img src="{good}" alt="fine"><img src="data:image/png;base64,AAAA" alt="bad">'
                           '<svg width="50" height="50"></svg>')  # an svg with nothing drawn in it
    check = check_page(page, timeout=30)
    assert sorted(str(im["alt"]) for im in check.broken_images) == ["None", "bad"]
    bad = next(im for im in check.broken_images if im["alt"] == "bad")
    assert bad["natural_width"] == 0 and bad["complete"]
    assert not check.ok


@needs_browser
def test_external_references_are_found_without_waiting_on_the_network(tmp_path):
    page = write(tmp_path, """
        <link rel="stylesheet" href="https://cdn.example.com/style.css">
        <img src="https://example.com/x.png" alt="remote">
        <div style="background: url('https://example.com/bg.png')">x</div>
        <script src="//example.com/lib.js"></script>
        <svg width="10" height="10"><rect width="10" height="10"/></svg>""")
    start = time.monotonic()
    check = check_page(page, timeout=20)
    assert time.monotonic() - start < 20
    assert set(check.external) == {"https://cdn.example.com/style.css", "https://example.com/x.png",
                                   "https://example.com/bg.png", "//example.com/lib.js"}
    assert not check.ok


def test_missing_browser_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(browser, "CHROMIUM", str(tmp_path / "no-such-chromium"))
    page = write(tmp_path, "<p>x</p>")
    assert not browser.browser_available()
    with pytest.raises(EdgewiseError, match="chromium") as err:
        check_page(page)
    assert "apt-get install chromium chromium-driver" in str(err.value)
    assert "setup_browser.sh" in str(err.value)

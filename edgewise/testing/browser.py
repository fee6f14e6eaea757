"""Open a self-contained HTML page in headless Chromium and report what a reader would see.

Used by the test suite to check generated reports in a real browser: every
image decodes and has a size, no script fails, nothing needs the network, and
a full-page screenshot to look at. Only Debian's ``chromium`` and
``chromium-driver`` packages are used (``bash scripts/setup_browser.sh``);
Selenium is given the driver's path so Selenium Manager never downloads one,
and every ``http(s)``/``ws(s)`` request from the page is blocked, so nothing
touches the network.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import EdgewiseError

__all__ = ["CHROMIUM", "CHROMEDRIVER", "MAX_SCREENSHOT_HEIGHT", "PageCheck", "browser_available", "check_page",
           "missing_reason", "open_browser", "console_errors"]

# The same variables as scripts/setup_browser.sh reads.
CHROMIUM = os.environ.get("EDGEWISE_CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("EDGEWISE_CHROMEDRIVER") or "/usr/bin/chromedriver"
# Taller captures take seconds and hundreds of MB, and no one looks at them.
MAX_SCREENSHOT_HEIGHT = 16384

_INSTALL = ("install them with `apt-get install chromium chromium-driver` (Debian/Ubuntu) "
            "or `bash scripts/setup_browser.sh`")
_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage"]
# Belt and braces for "nothing touches the network": no name resolves and no proxy is used, for the
# browser's own requests as much as the page's.
_OFFLINE_FLAGS = ["--host-resolver-rules=MAP * ~NOTFOUND", "--no-proxy-server"]
# Chromium otherwise starts on its New Tab page, which requests a remote page at once.
_PREFS = {"session.restore_on_startup": 4, "session.startup_urls": ["about:blank"]}
# Blocked in the page's network layer: a stray external reference then fails at once instead of
# waiting on DNS or a firewall that silently drops packets.
_BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
# Schemes that resolve inside the page; anything else with a scheme (file:// included: not portable)
# is an external reference.
_LOCAL_SCHEMES = {"data", "blob", "about", "javascript"}

# Installed before any page script: uncaught errors and rejections are not always in the browser
# log (and a rejection's reason is easily lost), so they are also kept on the window.
_CATCH_ERRORS = r"""
window.__edgewiseErrors = [];
window.addEventListener('error', function (e) {
  if (e.target !== window) return;  // an element whose resource failed to load, not a script error
  const what = e.error ? String(e.error) : String(e.message).replace(/^Uncaught /, '');
  const where = e.filename ? ' (' + e.filename + ':' + e.lineno + ':' + e.colno + ')' : '';
  window.__edgewiseErrors.push([what, 'Uncaught ' + what + where]);
});
window.addEventListener('unhandledrejection', function (e) {
  const what = String(e.reason);
  window.__edgewiseErrors.push([what, 'Unhandled promise rejection: ' + what]);
});
"""

# Lazy images out of view would never load in a headless window: make them eager and scroll to each.
_LOAD_ALL_IMAGES = r"""
for (const img of document.images) {
  if (img.loading === 'lazy') img.loading = 'eager';
  if (!img.complete) img.scrollIntoView({block: 'center'});
}
window.scrollTo(0, 0);
"""

_READY = r"""
return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete);
"""

_IMAGES = r"""
function box(el) { const r = el.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; }
const out = [];
for (const img of document.images) {
  const [w, h] = box(img);
  out.push({src: (img.getAttribute('src') || img.currentSrc || '').slice(0, 60), alt: img.getAttribute('alt'),
            natural_width: img.naturalWidth, natural_height: img.naturalHeight, width: w, height: h,
            complete: img.complete});
}
for (const svg of document.querySelectorAll('svg')) {
  if (svg.parentElement && svg.parentElement.closest('svg')) continue;  // part of an outer figure
  let bb = {width: 0, height: 0};
  try { bb = svg.getBBox(); } catch (e) {}  // throws when the svg is not rendered
  const [w, h] = box(svg);
  const title = svg.querySelector('title');
  out.push({src: svg.outerHTML.slice(0, 60),
            alt: svg.getAttribute('aria-label') || (title ? title.textContent : null),
            natural_width: Math.ceil(bb.width), natural_height: Math.ceil(bb.height), width: w, height: h,
            complete: true});
}
return out;
"""

# data: URLs are dropped here, not in Python: an embedded image or font can be megabytes.
_REFERENCES = r"""
const refs = [];
const add = v => { v = (v || '').trim(); if (v && !/^data:/i.test(v)) refs.push(v); };
const sel = 'img[src], img[srcset], script[src], link[href], iframe[src], source[src], source[srcset], ' +
            'video[src], video[poster], audio[src], embed[src], object[data], image, use';
for (const el of document.querySelectorAll(sel)) {
  for (const a of ['src', 'href', 'data', 'poster', 'xlink:href']) add(el.getAttribute(a));
  for (const part of (el.getAttribute('srcset') || '').split(',')) add(part.trim().split(/\s+/)[0]);
}
const css = Array.from(document.querySelectorAll('[style]'), el => el.getAttribute('style'))
  .concat(Array.from(document.querySelectorAll('style'), el => el.textContent));
for (const text of css) {
  for (const m of text.matchAll(/url\(\s*(['"]?)(.*?)\1\s*\)/gis)) add(m[2]);
  for (const m of text.matchAll(/@import\s+(['"])(.*?)\1/gi)) add(m[2]);
}
return refs;
"""

_SIZE = r"""
const d = document.documentElement, b = document.body || d;
// At least the window's width: the document's excludes the scrollbar, and the shot should be the window.
return [Math.max(d.scrollWidth, b.scrollWidth, window.innerWidth), Math.max(d.scrollHeight, b.scrollHeight)];
"""


@dataclass
class PageCheck:
    """What a headless browser saw on one page.

    ``images`` has one dict per ``<img>`` and per outermost inline ``<svg>`` with keys ``src`` (first 60
    characters; an svg's markup), ``alt``, ``natural_width``/``natural_height`` (decoded pixels; an svg's
    content bounding box), ``width``/``height`` (rendered CSS pixels) and ``complete``. ``page_width`` and
    ``page_height`` are the document's size in CSS pixels (at least the window's width: wider means the page
    scrolls sideways).
    """

    title: str
    console_errors: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    broken_images: list[dict] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    page_height: int = 0
    page_width: int = 0
    screenshot: Path | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed, nothing is external and there is at least one image."""
        return not self.console_errors and not self.broken_images and not self.external and bool(self.images)


def browser_available() -> bool:
    """Whether Chromium, its driver and Selenium are all installed."""
    return missing_reason() is None


def missing_reason() -> str | None:
    """None when Chromium, its driver and Selenium are all installed, else one sentence saying what is missing
    and how to install it (the reason the test suite gives when it skips the browser checks)."""
    missing = [f"{what} at {exe}" for what, exe in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
               if not _executable(exe)]
    if missing:
        return f"no {' and no '.join(missing)}; as root: apt-get install chromium chromium-driver"
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        return "Selenium is not installed: pip install 'selenium>=4.20'"
    return None


def check_page(path, screenshot=None, *, width: int = 1280, timeout: float = 60) -> PageCheck:
    """Load a local HTML file in headless Chromium and collect errors, images and external references.

    Args:
        path: the HTML file.
        screenshot: where to write a full-page PNG (parent folders are made), or None for none.
        width: the browser window's width in CSS pixels.
        timeout: seconds allowed for the page, its images and each script.

    Returns:
        A :class:`PageCheck`.

    Raises:
        EdgewiseError: the file does not exist; Chromium, chromedriver or Selenium is missing; or the page
            stops responding (a script that never ends).
    """
    page = Path(path).resolve()
    if not page.is_file():
        raise EdgewiseError(f"no HTML file at {page}")
    TimeoutException = _selenium()[2]
    with open_browser(width, 900, timeout) as driver:
        errors = []
        try:
            try:
                driver.get(page.as_uri())
            except TimeoutException:
                # Report what is there rather than nothing: the error makes the check fail anyway.
                errors.append(f"page did not finish loading within {timeout} s")
                driver.execute_script("window.stop();")
            driver.execute_script(_LOAD_ALL_IMAGES)
            deadline = time.monotonic() + timeout
            while not driver.execute_script(_READY) and time.monotonic() < deadline:
                time.sleep(0.05)

            images = driver.execute_script(_IMAGES)
            refs = driver.execute_script(_REFERENCES)
            doc_width, doc_height = driver.execute_script(_SIZE)
            title = driver.title
            shot = _screenshot(driver, screenshot, max(doc_width, 1), max(doc_height, 1)) if screenshot else None
            # Read last so that anything logged while measuring is in.
            errors += _console_errors(driver)
        except TimeoutException as err:
            # The renderer itself is stuck, so there is nothing left to measure.
            raise EdgewiseError(f"{page} stopped responding in the browser for {timeout} s "
                                "(a script that never ends?)") from err

    broken = [im for im in images if not im["complete"] or min(im["natural_width"], im["natural_height"],
                                                               im["width"], im["height"]) <= 0]
    return PageCheck(title=title, console_errors=errors, images=images, broken_images=broken,
                     external=_external(refs), page_height=int(doc_height), page_width=int(doc_width),
                     screenshot=shot)


@contextlib.contextmanager
def open_browser(width: int = 1280, height: int = 900, timeout: float = 60):
    """A headless Chromium (a Selenium driver) set up as :func:`check_page`'s: network blocked, errors caught.

    For pages a test drives (controls, keys, clicks); :func:`console_errors` reads what went wrong.

    Example:
        >>> with open_browser() as driver:  # doctest: +SKIP
        ...     driver.get(Path("explore.html").resolve().as_uri())
        ...     assert console_errors(driver) == []
    """
    for what, exe in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not _executable(exe):
            raise EdgewiseError(f"{what} not found at {exe}; {_INSTALL}")
    webdriver, Service, _, WebDriverException = _selenium()
    profile = tempfile.mkdtemp(prefix="edgewise-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in _FLAGS + _OFFLINE_FLAGS + [f"--user-data-dir={profile}", f"--window-size={int(width)},{int(height)}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", _PREFS)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = None
    try:
        try:
            driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, log_output=os.devnull),
                                      options=options)
        except WebDriverException as err:
            raise EdgewiseError(f"could not start {CHROMIUM} through {CHROMEDRIVER}: {err.msg}; "
                                f"reinstall both: {_INSTALL}") from err
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": _BLOCKED})
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _CATCH_ERRORS})
        yield driver
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """Severe browser-log entries and uncaught errors or rejections of the page open in ``driver`` (an
    :func:`open_browser` driver), each once."""
    return _console_errors(driver)


def _executable(path) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _selenium():
    try:
        from selenium import webdriver
        from selenium.common.exceptions import TimeoutException, WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as err:
        raise EdgewiseError("the browser check needs Selenium 4: pip install 'selenium>=4.20'") from err
    return webdriver, Service, TimeoutException, WebDriverException


def _console_errors(driver) -> list[str]:
    logged = [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    caught = driver.execute_script("return window.__edgewiseErrors || [];")
    # An uncaught error is usually in the log as well; keep the caught copy only when it is not.
    return logged + [full for what, full in caught if not (what and any(what in m for m in logged))]


def _external(refs) -> list[str]:
    return list(dict.fromkeys(u for u in refs if _is_external(u)))


def _is_external(url: str) -> bool:
    if url.startswith("#"):
        return False
    if url.startswith("//"):  # protocol-relative: a host on the network
        return True
    scheme = urlsplit(url).scheme.lower()
    # A one-letter "scheme" is a Windows drive (C:\...), i.e. a local file path.
    return bool(scheme) and len(scheme) > 1 and scheme not in _LOCAL_SCHEMES


def _screenshot(driver, dest, doc_width: int, doc_height: int) -> Path:
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    height = min(int(doc_height), MAX_SCREENSHOT_HEIGHT)
    clip = {"x": 0, "y": 0, "width": int(doc_width), "height": height, "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": clip})
    dest.write_bytes(base64.b64decode(shot["data"]))
    return dest

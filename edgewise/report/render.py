"""Figures saved to PNG in a second process while this one goes on measuring.

Drawing a report's figures (layout, ticks, rasterising, compressing) takes about as long as measuring its
models. Edgewise runs torch on one core fewer than the machine has (:mod:`edgewise._threads`), so the free core
draws: each figure is pickled to a worker (``python -m edgewise.report.render``, a fresh interpreter, so a
caller's script is never re-imported), which writes the PNG; the page holds a placeholder until
:meth:`Renderer.fill` swaps the image in. The worker writes the bytes this process would (same matplotlib, same
style). A figure that cannot be pickled, or one the worker did not write (it failed or died), is drawn here.
"""

from __future__ import annotations

import collections
import gc
import os
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import torch

from . import page
from .figures import save_figure, write_svg_png

__all__ = ["Renderer", "worth_a_worker"]

ENV = "EDGEWISE_FIGURE_WORKER"  # "0": draw every figure in this process
_TOKEN = "\x00edgewise-figure:{}\x00"
_TOKENS = re.compile("\x00edgewise-figure:(\\d+)\x00")


def worth_a_worker() -> bool:
    """A worker pays where torch's threads leave a core free (and $EDGEWISE_FIGURE_WORKER is not 0)."""
    from .._threads import cores

    return os.environ.get(ENV, "1") != "0" and torch.get_num_threads() < cores()


class Renderer:
    """Writes each figure's PNG (in the worker when ``parallel``) and makes its ``<figure>`` HTML.

    The worker asks for one figure at a time, so when the page is done and figures are still waiting,
    :meth:`fill` draws them from the back of the queue here while the worker goes on from the front."""

    def __init__(self, parallel: bool = False):
        self._jobs, self._proc, self._done = [], None, set()
        if parallel:
            self._waiting, self._written, self._closing = collections.deque(), set(), False
            self._lock = threading.Condition()
            self._proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._pump = threading.Thread(target=self._serve_worker, daemon=True)
            self._pump.start()

    def _next(self):
        """The oldest waiting figure, once there is one; None when the page is done and none is left."""
        with self._lock:
            self._lock.wait_for(lambda: self._waiting or self._closing)
            return self._waiting.popleft() if self._waiting else None

    def _serve_worker(self) -> None:
        """Hand the worker a figure each time it asks (its first message, then each reply)."""
        try:
            while True:
                index, error = pickle.load(self._proc.stdout)
                if index is not None and error is None:
                    self._written.add(index)
                job = self._next()
                if job is None:
                    self._proc.stdin.close()
                    continue  # read the replies still to come, up to the worker's end
                pickle.dump(job, self._proc.stdin)
                self._proc.stdin.flush()
        except (EOFError, OSError, pickle.UnpicklingError):  # the worker is done or gone: fill() draws the rest
            return

    def figure(self, fig, path: Path, ident: str, caption: str, size=None, titles=None) -> tuple[str, Path]:
        """(the HTML, or a placeholder for it; the PNG's path) of ``fig`` saved as ``path``.png, shown at ``size``
        (default :func:`.page.shown_size`); with ``titles``, a Pascal diagram: its SVG is written too
        (:func:`.figures.write_svg_png`)."""
        png, size = Path(path).with_suffix(".png"), size or page.shown_size(fig)
        if self._proc is not None:
            try:
                blob = pickle.dumps(fig)
            except (pickle.PicklingError, AttributeError, TypeError):  # e.g. a formatter that is a local function
                blob = None
            if blob is not None:
                self._jobs.append((fig, png, ident, caption, size, titles))
                with self._lock:
                    self._waiting.append((len(self._jobs) - 1, blob, str(png), titles))
                    self._lock.notify_all()
                return _TOKEN.format(len(self._jobs) - 1), png
        _save(fig, png, titles)
        return page.image(png.read_bytes(), ident, caption, size), png

    def _finish(self) -> set[int]:
        """Draw waiting figures here, newest first, while the worker draws from the front; then wait for it.
        The indices of the figures written (by either)."""
        if self._proc is None:
            return self._done
        drawn = set()
        while True:
            with self._lock:
                job = self._waiting.pop() if self._waiting else None
                if job is None:
                    self._closing = True
                    self._lock.notify_all()
                    break
            index, _, path, titles = job
            _save(self._jobs[index][0], path, titles)
            drawn.add(index)
        self._pump.join()
        self._proc.wait()
        self._proc = None
        self._done = drawn | self._written
        return self._done

    def fill(self, text: str) -> str:
        """``text`` with every placeholder replaced by its figure, once all are written (the first call waits)."""
        written = self._finish()
        for i, (fig, png, *_, titles) in enumerate(self._jobs):
            if i not in written:  # the worker failed on it, or died
                _save(fig, png, titles)
                written.add(i)

        def image(match) -> str:
            _, png, ident, caption, size, _ = self._jobs[int(match.group(1))]
            return page.image(png.read_bytes(), ident, caption, size)

        return _TOKENS.sub(image, text)

    def close(self) -> None:
        """Stop the worker if it still runs (the report failed or was interrupted)."""
        if self._proc is not None:
            self._proc.kill()
            with self._lock:
                self._closing = True
                self._lock.notify_all()
            self._pump.join()
            self._proc.wait()
            self._proc = None


def _save(fig, png, titles=None) -> None:
    """Write ``fig`` as ``png``; with ``titles``, a Pascal diagram's SVG beside it too."""
    if titles is None:
        save_figure(fig, png)
    else:
        write_svg_png(fig, Path(png).with_suffix(".svg"), titles)


def _serve(source, sink) -> None:
    """The worker: ask for a figure, save it, say which (and any error) back, which asks for the next."""
    # what the interpreter loaded up to here (matplotlib, torch) is never garbage: kept out of the collections,
    # they cost a third of what they did (0.7 s -> 0.25 s over the default page's figures)
    gc.freeze()
    pickle.dump((None, None), sink)
    sink.flush()
    while True:
        try:
            index, blob, path, titles = pickle.load(source)
        except EOFError:
            return
        try:
            _save(pickle.loads(blob), path, titles)
            error = None
        except Exception as e:  # noqa: BLE001 - reported back; the report draws this figure itself
            error = f"{type(e).__name__}: {e}"
        pickle.dump((index, error), sink)
        sink.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)

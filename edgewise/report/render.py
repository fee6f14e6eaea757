"""Figures saved to PNG in a second process while this one goes on measuring.

Drawing a report's figures (layout, ticks, rasterising, compressing) takes about as long as measuring its
models. Edgewise runs torch on one core fewer than the machine has (:mod:`edgewise._threads`), so the free core
draws: each figure is pickled to a worker (``python -m edgewise.report.render``, a fresh interpreter, so a
caller's script is never re-imported), which writes the PNG; the page holds a placeholder until
:meth:`Renderer.fill` swaps the image in. The worker writes the bytes this process would (same matplotlib, same
style). A figure that cannot be pickled, or one the worker did not write (it failed or died), is drawn here.
"""

from __future__ import annotations

import os
import pickle
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import torch

from . import page
from .figures import save_figure

__all__ = ["Renderer", "worth_a_worker"]

ENV = "EDGEWISE_FIGURE_WORKER"  # "0": draw every figure in this process
_TOKEN = "\x00edgewise-figure:{}\x00"
_TOKENS = re.compile("\x00edgewise-figure:(\\d+)\x00")


def worth_a_worker() -> bool:
    """A worker pays where torch's threads leave a core free (and $EDGEWISE_FIGURE_WORKER is not 0)."""
    from .._threads import cores

    return os.environ.get(ENV, "1") != "0" and torch.get_num_threads() < cores()


class Renderer:
    """Writes each figure's PNG (in the worker when ``parallel``) and makes its ``<figure>`` HTML."""

    def __init__(self, parallel: bool = False):
        self._jobs, self._proc = [], None
        if parallel:
            self._proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._queue = queue.Queue()  # the blobs are sent by a thread: a busy worker never blocks the report
            self._sender = threading.Thread(target=self._send, daemon=True)
            self._sender.start()

    def _send(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                pickle.dump(job, self._proc.stdin)
                self._proc.stdin.flush()
            except OSError:  # the worker is gone: fill() draws what it did not
                return
        try:
            self._proc.stdin.close()
        except OSError:
            pass

    def figure(self, fig, path: Path, ident: str, caption: str) -> tuple[str, Path]:
        """(the HTML, or a placeholder for it; the PNG's path) of ``fig`` saved as ``path``.png."""
        png, size = Path(path).with_suffix(".png"), page.shown_size(fig)
        if self._proc is not None:
            try:
                blob = pickle.dumps(fig)
            except (pickle.PicklingError, AttributeError, TypeError):  # e.g. a formatter that is a local function
                blob = None
            if blob is not None:
                self._jobs.append((fig, png, ident, caption, size))
                self._queue.put((len(self._jobs) - 1, blob, str(png)))
                return _TOKEN.format(len(self._jobs) - 1), png
        save_figure(fig, png)
        return page.image(png.read_bytes(), ident, caption, size), png

    def _finish(self) -> set[int]:
        """Wait for the worker; the indices of the figures it wrote."""
        if self._proc is None:
            return set()
        self._queue.put(None)
        self._sender.join()
        written = set()
        try:
            while True:
                index, error = pickle.load(self._proc.stdout)
                if error is None:
                    written.add(index)
        except (EOFError, pickle.UnpicklingError, OSError):
            pass
        self._proc.wait()
        self._proc = None
        return written

    def fill(self, text: str) -> str:
        """``text`` with every placeholder replaced by its figure, once all are written."""
        written = self._finish()
        for i, (fig, png, *_) in enumerate(self._jobs):
            if i not in written:
                save_figure(fig, png)

        def image(match) -> str:
            _, png, ident, caption, size = self._jobs[int(match.group(1))]
            return page.image(png.read_bytes(), ident, caption, size)

        return _TOKENS.sub(image, text)

    def close(self) -> None:
        """Stop the worker if it still runs (the report failed or was interrupted)."""
        if self._proc is not None:
            self._proc.kill()
            self._queue.put(None)
            self._sender.join()
            self._proc.wait()
            self._proc = None


def _serve(source, sink) -> None:
    """The worker: save each figure sent, say which (and any error) back."""
    while True:
        try:
            index, blob, path = pickle.load(source)
        except EOFError:
            return
        try:
            save_figure(pickle.loads(blob), path)
            error = None
        except Exception as e:  # noqa: BLE001 - reported back; the report draws this figure itself
            error = f"{type(e).__name__}: {e}"
        pickle.dump((index, error), sink)
        sink.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)

"""The report folder: checked before any work, written aside, and swapped in whole when complete.

A report is built in a hidden sibling folder (``.NAME.partial-…``) and only then replaces ``NAME``, so an
interrupted run leaves the previous report untouched and never a page beside another run's data. A folder that
is not empty and not an edgewise report is refused unless ``force`` (its files would be replaced). The
experiment cache (``NAME/experiments``) is kept across runs: runs write it in place, and the swap carries it over.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .._outputs import check_folder
from ..errors import EdgewiseError

__all__ = ["check_out", "Staging", "CACHE"]

#: the part of a report folder that outlives a run (cached experiment runs, resumable)
CACHE = "experiments"


def _is_report(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "edgewise" in config and "models" in config


def check_out(out, force: bool = False) -> Path:
    """``out`` as a Path if a report may be written there, else an EdgewiseError saying why and what to do."""
    out = check_folder(out, "report", "it gets index.html, figures/, data/")  # a file, below a file, or not writable
    if out.is_dir() and not force:
        entries = {p.name for p in out.iterdir()}
        if entries - {CACHE} and not _is_report(out):
            raise EdgewiseError(f"report: {out} is not empty and holds no edgewise report ({len(entries)} entries, "
                                f"e.g. {sorted(entries)[0]!r}); choose an empty or new folder, or pass --force to "
                                "replace its contents")
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):  # the report is staged beside its folder, so that one must be writable
        raise EdgewiseError(f"report: cannot write in {parent}; choose another --out")
    return out


class Staging:
    """``with Staging(out) as staging:`` build into ``staging.tmp``; :meth:`commit` swaps it in for ``out``.
    Leaving the block without committing (an error, Ctrl-C) removes ``tmp`` and leaves ``out`` as it was."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.tmp: Path | None = None  # the staging folder until committed
        self.root: Path | None = None  # where it was, to map written paths to their final place

    def __enter__(self) -> "Staging":
        self.tmp = self.root = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.partial-",
                                                     dir=self.out.resolve().parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o777 & ~umask)  # mkdtemp's 0700 would make the report private to its writer
        return self

    def commit(self) -> None:
        """Carry the experiment cache over, then replace ``out`` by the finished folder."""
        trash = None
        if self.out.exists():
            cache = self.out / CACHE
            if cache.is_dir() and not (self.tmp / CACHE).exists():
                os.replace(cache, self.tmp / CACHE)
            trash = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.resolve().parent))
            os.replace(self.out, trash / self.out.name)
        os.replace(self.tmp, self.out)
        self.tmp = None
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)

    def final(self, path: Path) -> Path:
        """Where ``path`` (written under the staging folder) lies once committed."""
        path = Path(path)
        try:
            return self.out / path.relative_to(self.root)
        except ValueError:
            return path

    def __exit__(self, *exc) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

"""Where results go, checked before any work: every ``--out`` (and the report's folder) goes through here.

A folder target that is an existing file, a path below a file, or a place this user cannot write is one clear
:class:`EdgewiseError` at once, so that a run never computes for minutes and then fails to save. Nothing is
created here: the folders appear when the first result is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import EdgewiseError

__all__ = ["check_folder", "check_file"]


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or the nearest folder above it that exists (``path`` made absolute)."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    return here


def _check_writable(out: Path, where: Path, prefix: str) -> None:
    """``where`` (an existing ancestor of ``out``, or ``out`` itself) is a folder this user can write in."""
    if not where.is_dir():
        raise EdgewiseError(f"{prefix}--out {out}: {where} is a file, so no folder can be made there; "
                            "choose another --out")
    if not os.access(where, os.W_OK | os.X_OK):
        raise EdgewiseError(f"{prefix}--out {out}: cannot write in {where} (permission denied); "
                            "choose another --out")


def check_folder(out, command: str | None = None, holds: str = "the results are written into it") -> Path:
    """``out`` as a Path if results can be written into that folder (it may not exist yet), else an
    EdgewiseError saying why: it is a file, it lies below a file, or its nearest existing folder is not writable.
    ``command`` starts the message (the command line names the command itself); ``holds`` ends it."""
    out, prefix = Path(out), f"{command}: " if command else ""
    if out.exists() and not out.is_dir():
        raise EdgewiseError(f"{prefix}--out {out} is a file; give a folder ({holds})")
    _check_writable(out, _existing_ancestor(out), prefix)
    return out


def check_file(out, command: str | None = None) -> Path:
    """``out`` as a Path if that file can be written, else an EdgewiseError: it is a folder, it lies below
    a file, or the folder it goes in (or the nearest existing one above it) is not writable."""
    out, prefix = Path(out), f"{command}: " if command else ""
    if out.is_dir():
        raise EdgewiseError(f"{prefix}--out {out} is a folder; give a file name")
    _check_writable(out, _existing_ancestor(out.parent), prefix)
    return out

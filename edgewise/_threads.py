"""How many torch threads edgewise runs on: chosen once, overridable, recorded.

Measured (``benchmarks/threads.py``, README "Performance"): on a machine whose cores are shared, a second
intra-op thread waits for a core that another process holds, and small convolutions get many times slower;
so the default leaves one core free (one thread on a 2-core machine), and ``--threads N`` /
``EDGEWISE_THREADS=N`` override it. The default does not read the load average, so the same command on the
same machine runs with the same threads (results can differ in the last bits between thread counts).
"""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import EdgewiseError

__all__ = ["cores", "default_threads", "resolve_threads", "using_threads"]

ENV = "EDGEWISE_THREADS"


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """One fewer than the cores, at least 1: one core is left to whatever else the machine runs."""
    return max(1, cores() - 1)


def resolve_threads(requested: int | str | None = None) -> int:
    """``requested`` (an int, or the text of ``--threads``), else ``$EDGEWISE_THREADS``, else the default."""
    value = requested if requested is not None else os.environ.get(ENV)
    if value is None or value == "":
        return default_threads()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise EdgewiseError(f"threads must be a whole number of threads, got {value!r}") from None
    if n < 1:
        raise EdgewiseError(f"threads must be at least 1, got {n}")
    return n


@contextlib.contextmanager
def using_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)

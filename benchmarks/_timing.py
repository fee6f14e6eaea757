"""What every benchmark here shares: the median time of repeated calls after a warm-up."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int, warm: bool = True):
    """(median seconds over ``repeats`` calls of ``fn``, the last call's result); one untimed call first when
    ``warm`` (lazy initialisation, the allocator, data decoding)."""
    if warm:
        fn()
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out

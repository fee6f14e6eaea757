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


def load_average() -> float:
    """The 1-minute load average (NaN where the system has none): timings on a busy machine are noisy."""
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def machine_line(*peers: str) -> str:
    """Versions (edgewise, ``peers`` as 'name version', torch, numpy), CPUs, torch threads, architecture, load."""
    import os
    import platform

    import numpy as np
    import torch

    import edgewise

    return ", ".join([f"edgewise {edgewise.__version__}", *peers, f"torch {torch.__version__}",
                      f"numpy {np.__version__}", f"{os.cpu_count()} CPUs", f"torch threads {torch.get_num_threads()}",
                      platform.machine(), f"load average {load_average():.2f} at start"])

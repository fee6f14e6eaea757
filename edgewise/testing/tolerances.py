"""One table of numerical tolerances, keyed by torch dtype.

Path counts in float mode must match the exact integers to a relative error
below 1e-9 (the project's rule); that is the float64 row. The lower-precision
rows are for engines that run in that dtype (sensitivity maps, experiments).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["TOLERANCES", "PATHWAYS_RTOL", "tolerance", "assert_close_rel"]

#: dtype → (rtol, atol)
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-9, 0.0),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (1e-2, 1e-3),
    torch.bfloat16: (2e-2, 1e-2),
}

#: the project's rule for float-mode path counts against exact ones
PATHWAYS_RTOL = TOLERANCES[torch.float64][0]


def tolerance(dtype) -> tuple[float, float]:
    """(rtol, atol) for ``dtype`` (a torch dtype, or a numpy dtype / name that maps to one)."""
    if not isinstance(dtype, torch.dtype):
        name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
        dtype = getattr(torch, name.replace("torch.", ""), None)
    if dtype not in TOLERANCES:
        raise KeyError(f"no tolerance for dtype {dtype!r}; known: {', '.join(map(str, TOLERANCES))}")
    return TOLERANCES[dtype]


def assert_close_rel(actual, expected, dtype=torch.float64, msg: str = "") -> None:
    """Assert ``|actual − expected| ≤ atol + rtol·|expected|`` elementwise, with (rtol, atol) from the table.

    ``expected`` may hold exact Python ints of any size (an object array);
    values beyond float64's range are compared through their logarithms.
    An expected 0 (no path at all) must be matched within ``atol`` (exactly, for float64).
    """
    rtol, atol = tolerance(dtype)
    a, e = _as_array(actual), _as_array(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{msg} shape {a.shape} != expected {e.shape}".strip())
    bad = []
    for idx in np.ndindex(*a.shape):
        x, y = a[idx], e[idx]
        try:
            ok = abs(float(x) - float(y)) <= atol + rtol * abs(float(y))
        except OverflowError:  # beyond float64: relative error ≈ difference of natural logs
            ok = x > 0 and y > 0 and abs(math.log(x) - math.log(y)) <= rtol
        if not ok:
            bad.append((idx, x, y))
    if bad:
        shown = "; ".join(f"at {i}: {x!r} vs {y!r}" for i, x, y in bad[:5])
        raise AssertionError(f"{msg} {len(bad)} of {a.size} values differ beyond rtol={rtol}, atol={atol} "
                             f"({dtype}): {shown}".strip())


def _as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=object)

"""Summaries of any map over input positions (path counts, sensitivities, ...)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["anchor_points", "position_summary"]


def anchor_points(shape: tuple[int, ...]) -> dict[str, list[tuple[int, ...]]]:
    """The centre, mid-edge and corner positions of a 1-D or 2-D map, as (row, col) tuples.

    The centre is ``(n−1)//2`` on each axis; in 1-D the edges are the two ends,
    which are also the corners.
    """
    centre = tuple((n - 1) // 2 for n in shape)
    if len(shape) == 1:
        ends = [(0,), (shape[0] - 1,)]
        return {"center": [centre], "edge": ends, "corner": ends}
    (h, w), (cy, cx) = shape, centre
    return {
        "center": [centre],
        "edge": [(0, cx), (h - 1, cx), (cy, 0), (cy, w - 1)],
        "corner": [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)],
    }


def _log10_mean(values: list[float]) -> float:
    top = max(values)
    if not math.isfinite(top):
        return top
    return top + math.log10(sum(10.0 ** (v - top) for v in values) / len(values))


def _pow10(x: float) -> float:
    return 10.0 ** x if x < 308 else math.inf


def position_summary(values: np.ndarray, log10: np.ndarray | None = None) -> dict:
    """Centre/edge/corner values (means over the anchor points) and their ratios, plus min/max.

    ``log10`` (base-10 logarithm of ``values``) keeps huge or exact integer maps
    finite; the ``log10_*`` entries are always finite where the map is positive.
    """
    if log10 is None:
        with np.errstate(divide="ignore"):
            log10 = np.log10(np.asarray(values, dtype=np.float64))
    out: dict = {}
    for name, points in anchor_points(log10.shape).items():
        logs = [float(log10[p]) for p in points]
        out[f"log10_{name}"] = _log10_mean(logs)
        out[name] = _pow10(out[f"log10_{name}"])
    if values.dtype == object:  # exact integers: exact means (an int when the mean is whole)
        for name, points in anchor_points(log10.shape).items():
            mean = Fraction(sum(values[p] for p in points), len(points))
            out[name] = mean.numerator if mean.denominator == 1 else float(mean)
    for name in ("edge", "corner"):
        diff = out["log10_center"] - out[f"log10_{name}"]
        if not math.isfinite(diff):  # x/0 is inf, 0/0 undefined
            diff = math.nan if out["log10_center"] == -math.inf else math.inf
        out[f"log10_center_{name}_ratio"] = diff
        out[f"center_{name}_ratio"] = _pow10(diff) if math.isfinite(diff) else diff
        if values.dtype == object and out[name] != 0:  # exact ratio, rounded once
            ratio = Fraction(out["center"]) / Fraction(out[name])
            out[f"center_{name}_ratio"] = float(ratio) if ratio < 10**300 else math.inf
    finite = log10[np.isfinite(log10)]
    out["log10_min"] = float(log10.min())
    out["log10_max"] = float(log10.max())
    out["min"], out["max"] = _pow10(out["log10_min"]) if np.isfinite(out["log10_min"]) else 0.0, _pow10(out["log10_max"])
    out["reachable_fraction"] = float(finite.size / log10.size)
    return out

"""Number formatting shared by figures, diagrams and the command line."""

from __future__ import annotations

import math
import numbers

__all__ = ["fmt_number", "fmt_ratio", "fmt_axes", "LOG10_TIE"]

#: two path counts closer than this in log10 are equal when the counts were scaled (not exact integers)
LOG10_TIE = 1e-12


def fmt_number(value=None, log10: float | None = None, digits: int = 4) -> str:
    """A count for people: exact digits while short, else ``m.mmme+X`` (taken from ``log10`` when the
    value itself overflows a float)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = int(value)
        if abs(v) < 10**9:
            return str(v)
        log10 = math.log10(abs(v)) if log10 is None else log10
    elif value is not None:
        v = float(value)
        if math.isfinite(v):
            if v == 0:
                return "0"
            if 1e-3 <= abs(v) < 10**9:
                return f"{v:.{digits}g}"
            if log10 is None:
                return f"{v:.{digits - 1}e}"
    if log10 is None:
        return str(value)
    if log10 == -math.inf:
        return "0"
    if not math.isfinite(log10):
        return str(log10)
    exponent = math.floor(log10)
    mantissa = 10 ** (log10 - exponent)
    if round(mantissa, digits - 1) >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.{digits - 1}f}e{exponent:+d}"


def fmt_ratio(log10_ratio: float) -> str:
    """``19×`` or ``1.2e+45×`` from the base-10 logarithm of a ratio; ``0/0`` for NaN (zero over zero: no
    ratio), ``∞`` and ``0`` for ±inf. A ratio that is not 1 but rounds to it gets the digits that tell it
    apart (``1.00000004×``: an almost even map is not called even); ``1×`` only within :data:`LOG10_TIE`."""
    if math.isnan(log10_ratio):
        return "0/0"
    if not math.isfinite(log10_ratio):
        return "∞" if log10_ratio > 0 else "0"
    if abs(log10_ratio) < 6:
        r = 10 ** log10_ratio
        text = f"{r:.3g}"
        if text == "1" and abs(log10_ratio) >= LOG10_TIE:
            text = f"{r:.{-math.floor(math.log10(abs(r - 1)))}f}"
        return text + "×"
    return fmt_number(log10=log10_ratio, digits=3) + "×"


def fmt_axes(values) -> str:
    """Per-axis values as ``7×7`` (or ``7`` in 1-D); ``—`` for None."""
    if values is None:
        return "—"
    return "×".join(fmt_number(v) if not isinstance(v, float) or not v.is_integer() else str(int(v))
                    for v in values)

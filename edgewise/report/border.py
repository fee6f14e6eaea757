"""The border figure of the border tasks: test accuracy against a pattern's distance to the nearest border."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import EdgewiseError
from .figures import GREY, STYLE, new_figure

__all__ = ["plot_border_curve"]

#: Okabe–Ito colours (colour-blind safe), then repeated with other line styles when there are more remedies
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
_STYLES = ("-", "--", ":")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _curves(runs) -> dict[str, dict[int, list[float]]]:
    """remedy → distance → each seed's accuracy there (runs that failed or lack ``by_distance`` are skipped)."""
    out: dict[str, dict[int, list[float]]] = {}
    for r in runs:
        bd = r.get("metrics", {}).get("by_distance") if "error" not in r else None
        if not bd:
            continue
        per = out.setdefault(str(r["remedy"]), {})
        for d, a in zip(bd["distance"], bd["accuracy"]):
            per.setdefault(int(d), []).append(float(a))
    return out


def plot_border_curve(runs, title: str | None = None) -> Figure:
    """One line per remedy: mean test accuracy over seeds at each distance to the nearest border, with the
    95 % Student-t interval over seeds as a band (no band with one seed).

    Args:
        runs: dicts ``{"remedy", "seed", "metrics"}`` whose metrics hold ``by_distance``
            (``distance``, ``accuracy``, ``n`` lists; optional ``unit``) as the border tasks return; runs with
            an ``"error"`` instead are skipped.
        title: the figure's title (default: a generic one).
    """
    from ..experiments.results import interval  # the table's interval, so the band matches the table

    runs = list(runs)
    curves = _curves(runs)
    if not curves:
        raise EdgewiseError("plot_border_curve: no run has by_distance metrics to draw")
    done = [r for r in runs if "metrics" in r and "error" not in r and r["metrics"].get("by_distance")]
    unit = done[0]["metrics"]["by_distance"].get("unit", "px")
    chance = next((float(r["metrics"]["chance"]) for r in done if r["metrics"].get("chance")), None)
    seeds = sorted({r.get("seed") for r in done}, key=str)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(7.2, 4.2)
        ax = fig.subplots()
        for i, (remedy, per) in enumerate(curves.items()):
            ds = np.array(sorted(per))
            stats = [interval(per[d]) for d in ds]
            mean = np.array([m for m, _ in stats]) * 100
            half = np.array([h for _, h in stats]) * 100
            colour = _COLOURS[i % len(_COLOURS)]
            style = _STYLES[(i // len(_COLOURS)) % len(_STYLES)]
            n = min(len(v) for v in per.values())
            ax.plot(ds, mean, color=colour, linestyle=style, marker=_MARKERS[i % len(_MARKERS)], markersize=4,
                    linewidth=1.8, label=remedy if n == len(seeds) else f"{remedy} ({n} seed{'s' * (n != 1)})")
            if np.isfinite(half).any():
                band = np.clip([mean - np.nan_to_num(half), mean + np.nan_to_num(half)], 0, 100)  # accuracy's range
                ax.fill_between(ds, *band, color=colour, alpha=0.15, linewidth=0)
        if chance:
            ax.axhline(100 * chance, color=GREY, linestyle="--", linewidth=1, label="chance")
        ax.set_xlabel(f"distance to the nearest border ({unit}; 0 = touching it)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 105)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        lo, hi = min(min(per) for per in curves.values()), max(max(per) for per in curves.values())
        ax.set_xlim(lo - 0.4, hi + 0.4)
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False, title="remedy",
                  title_fontsize=9)
        k = len(seeds)
        note = f"mean of {k} seed{'s' * (k != 1)}" + (", band: 95 % interval within 0–100 %" if k > 1 else "")
        ax.set_title(textwrap.fill(title or "Test accuracy vs distance to the border", 70) + "\n" + note,
                     fontsize=11)
    return fig

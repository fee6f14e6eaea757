"""Figure of a remedy comparison: every variant's pathway map on one colour scale (relative to its maximum)."""

from __future__ import annotations

import math
import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ._format import fmt_ratio
from .figures import BLUE, STYLE, new_figure

__all__ = ["plot_comparison"]


def plot_comparison(result, cmap: str = "viridis", sensitivity: bool = False, title: str | None = None) -> Figure:
    """A grid of pathway maps (2-D) or curves (1-D), one per variant, each normalised to its maximum.

    Args:
        result: an :class:`edgewise.remedies.Comparison`.
        sensitivity: draw the Monte-Carlo sensitivity maps (``compare(..., n_inits=N)``) instead.
        title: replaces the figure title's opening ``Remedies for MODEL``.
    """
    if sensitivity:
        with np.errstate(divide="ignore"):
            maps = {n: np.log10(m) for n, m in result.sensitivity.items()}
    else:
        maps = result.maps
    rows = {r["name"]: r for r in result.rows}
    names = list(maps)
    ndim = len(result.input_shape) - 1
    key = ("sensitivity_" if sensitivity else "") + ("center_corner_ratio" if ndim == 2 else "center_edge_ratio")
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    rel = {n: m - np.nanmax(np.where(np.isfinite(m), m, np.nan)) for n, m in maps.items()}
    low = min(float(np.nanmin(np.where(np.isfinite(m), m, np.nan))) for m in rel.values())
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.3 * cols + 1.2, 3.0 * nrows + 0.9)
        axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
        image = None
        for ax, name in zip(axes, names):
            ratio = rows[name][key]
            label = f"{name}: {fmt_ratio(math.log10(ratio))}" if ratio and ratio > 0 else name
            if ndim == 2:
                colours = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
                image = ax.imshow(np.ma.masked_invalid(rel[name]), cmap=colours, vmin=low, vmax=0,
                                  interpolation="nearest")
                ax.set_xlabel("column x (px)", fontsize=9)
                ax.set_ylabel("row y (px)", fontsize=9)
            else:
                ax.plot(np.arange(rel[name].size), rel[name], color=BLUE)
                ax.set_ylim(low - 0.1, 0.1)
                ax.set_xlabel("position (px)", fontsize=9)
                ax.set_ylabel("log10 (value / max)", fontsize=9)
            ax.set_title(label, fontsize=10)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        if image is not None:
            fig.colorbar(image, ax=list(axes[:len(names)]), shrink=0.8).set_label(
                "log10 " + ("E[(∂y/∂x)²]" if sensitivity else "paths") + " relative to the map's maximum")
        what = "centre/corner" if ndim == 2 else "centre/edge"
        fig.suptitle(textwrap.fill(f"{title or 'Remedies for ' + result.model} on {'x'.join(map(str, result.input_shape))}: "
                                   + ("expected squared gradient over random initialisations" if sensitivity else "paths") +
                                   f" from each input position ({what} ratio in each title)", 90), fontsize=12)
    return fig

"""Figure of a remedy comparison: every variant's map relative to its own maximum, on a colour (or y) scale that
shows its own variation."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ._format import fmt_ratio
from .figures import BLUE, GREY, STYLE, new_figure, wrap

__all__ = ["plot_comparison", "shared_scale", "OWN_SCALE"]

#: a map spanning more than this many times the reference map's decades gets its own scale: on a shared one
#: it would flatten every other map (valid padding's 10^-6.7 against the original's 26×)
OWN_SCALE = 2.0
#: the narrowest scale drawn (decades): a flat map shows as one colour, not as amplified rounding noise
MIN_SPAN = 0.05
#: share of positions a Monte-Carlo map may leave below its colour range (a few near-zero estimates would
#: otherwise stretch the scale over decades of noise); exact counts are never clipped
NOISE_QUANTILE = 0.01


def _span(rel: np.ndarray, quantile: float) -> float:
    """Decades from the map's maximum (0) down to its ``quantile`` of positions with a path."""
    finite = rel[np.isfinite(rel)]
    return float(-np.quantile(finite, quantile)) if finite.size else 0.0


def shared_scale(spans: dict[str, float], reference: str = "original") -> tuple[float, set[str]]:
    """The shared range (decades below the maximum) and the maps that need their own scale.

    A map needs its own when it spans more than :data:`OWN_SCALE` times the reference map (or, when the
    reference is flat, the median of the non-flat maps); the shared range is the widest of the others.
    """
    ref = spans.get(reference, 0.0)
    if ref <= 0:
        varied = [v for v in spans.values() if v > 0]
        ref = float(np.median(varied)) if varied else 0.0
    own = {n for n, v in spans.items() if v > OWN_SCALE * ref}
    return max([MIN_SPAN] + [v for n, v in spans.items() if n not in own]), own


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _mark_missing_2d(ax, missing: np.ndarray) -> None:
    """Hatch every zero-path pixel, so it cannot pass for a low value of the colour map."""
    h, w = missing.shape
    lims = ax.get_xlim(), ax.get_ylim()
    # one grey hatched region per connected patch (cell-by-cell hatching takes minutes on a 224² map); the mask
    # is upsampled so that the region's outline follows the cell borders to within 1/8 of a cell
    k = 4
    fine = np.kron(missing.astype(float), np.ones((k, k)))
    x, y = (np.arange(w * k) + 0.5) / k - 0.5, (np.arange(h * k) + 0.5) / k - 0.5
    hatched = ax.contourf(x, y, fine, levels=[0.5, 1.5], colors=["#d9d9d9"], hatches=["xxxx"])
    hatched.set_edgecolor("#444444")
    hatched.set_linewidth(0.0)
    ax.set_xlim(*lims[0])
    ax.set_ylim(*lims[1])


def _mark_missing_1d(ax, missing: np.ndarray) -> None:
    """Hatch every run of zero-path positions across the panel's height."""
    for start, stop in _runs(missing):
        ax.axvspan(start - 0.5, stop - 0.5, facecolor="#eeeeee", edgecolor=GREY, hatch="xxx", linewidth=0)


def plot_comparison(result, cmap: str = "viridis", sensitivity: bool = False, title: str | None = None) -> Figure:
    """A grid of maps (2-D) or curves (1-D), one per variant, each relative to its own maximum.

    Maps whose range is comparable to the original's share one scale; a map spanning more than
    :data:`OWN_SCALE` times as many decades gets its own (marked "own scale"). Positions with no path
    (or no gradient) are hatched.

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
    quantity = "E[(∂y/∂x)²]" if sensitivity else "paths"
    missing_label = "no gradient" if sensitivity else "no path"
    unit = "px" if ndim == 2 else "samples"
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    rel = {n: m - np.nanmax(np.where(np.isfinite(m), m, np.nan)) if np.isfinite(m).any() else m
           for n, m in maps.items()}
    # a 2-D colour bar can mark its clipped end; a 1-D curve would leave the clipped points off its axes
    quantile = NOISE_QUANTILE if sensitivity and ndim == 2 else 0.0
    spans = {n: _span(m, quantile) for n, m in rel.items()}
    shared, own = shared_scale(spans)
    reference = "the original's" if spans.get("original", 0.0) > 0 else "the median map's"
    axis_label = f"log10 ({quantity} / map's max)"
    with matplotlib.rc_context(STYLE):
        width = 3.3 * cols + 1.4
        fig = new_figure(width, 3.1 * nrows + 1.3)
        # room between rows, so no panel title touches the axis labels of the row above
        fig.get_layout_engine().set(h_pad=0.12, hspace=0.04)
        kw = dict(sharex=True, sharey=True) if ndim == 2 else dict(sharex=True)
        axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False, **kw)).ravel()
        shared_image = None
        for i, (ax, name) in enumerate(zip(axes, names)):
            values, missing = rel[name], ~np.isfinite(rel[name])
            ratio = rows.get(name, {}).get(key)
            label = f"{name}: {fmt_ratio(math.log10(ratio))}" if ratio and 0 < ratio < math.inf else name
            notes = (["own scale"] if name in own else []) + ([f"{int(missing.sum())} {unit} {missing_label}"]
                                                             if missing.any() else [])
            title_text = " · ".join([label] + notes)
            # a panel's title is one line while it fits beside a colour bar, else its notes go on a second; y=1: at
            # the place matplotlib would find for it (the panel's ticks are below it, and its y axis never shows an
            # offset: pixels from 0, or a range through 0), without searching for it on each of the layout's passes
            ax.set_title(title_text if len(title_text) <= 34 else label + "\n" + " · ".join(notes), fontsize=10,
                         y=1.0)
            low = -(_span(values, quantile) if name in own else shared)
            low = min(low, -MIN_SPAN)
            bottom_of_column = i + cols >= len(names)
            if ndim == 2:
                image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=low, vmax=0, interpolation="nearest")
                if missing.any():
                    _mark_missing_2d(ax, missing)
                ax.tick_params(labelbottom=True, labelleft=True)  # every panel keeps its pixel ticks
                ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))  # 3-digit labels fit
                ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
                if bottom_of_column:
                    ax.set_xlabel("column x (px)", fontsize=9)
                if i % cols == 0:
                    ax.set_ylabel("row y (px)", fontsize=9)
                if name in own:
                    # short: a long label on a panel's own bar runs past the panel into the title above
                    fig.colorbar(image, ax=ax, shrink=0.85, extend="min" if quantile else "neither").set_label(
                        "own scale: log10 (÷ max)", fontsize=9)
                else:
                    shared_image = image
            else:
                x = np.arange(values.size)
                # markers while they stay apart: a position between two unread ones is a point, not a line
                style = dict(marker="o", markersize=3) if values.size <= 80 else {}
                ax.plot(x, np.where(missing, np.nan, values), color=BLUE, linewidth=1.5, **style)
                if missing.any():
                    _mark_missing_1d(ax, missing)
                pad = 0.06 * -low
                ax.set_ylim(low - pad, pad)
                ax.set_xlim(-0.5, values.size - 0.5)
                ax.tick_params(labelbottom=True)
                if bottom_of_column:
                    ax.set_xlabel("input position (sample)", fontsize=9)
                ax.set_ylabel(axis_label + (", own scale" if name in own else ""), fontsize=9)
                ax.grid(True, color="#e5e5e5", linewidth=0.8)
        for ax in axes[len(names):]:
            ax.set_visible(False)
        if shared_image is not None:  # under the grid: at its right it would collide with a panel's own bar
            fig.colorbar(shared_image, ax=list(axes[:len(names)]), location="bottom", shrink=0.5, aspect=40,
                         extend="min" if quantile else "neither").set_label(axis_label + ", shared scale")
        what = "centre/corner" if ndim == 2 else "centre/edge"
        fig.suptitle(wrap(f"{title or 'Remedies for ' + result.model} on {'x'.join(map(str, result.input_shape))}: "
                          + ("expected squared gradient over random initialisations" if sensitivity else "paths")
                          + f" from each input position ({what} ratio in each title)", width, 12), fontsize=12)
        scale = "colour" if ndim == 2 else "height"
        fig.supxlabel(wrap(
            f"{scale.capitalize()}: log10 of each map divided by its own maximum (0 = that map's maximum). "
            + (f"Maps marked 'own scale' span over {OWN_SCALE:g}× {reference} decades and have their own "
               f"{'colour bar' if ndim == 2 else 'y range'}; the others share one. " if own else
               f"All maps share one {'colour bar' if ndim == 2 else 'y range'}. ")
            + (f"Hatched: positions with {missing_label}" + ("." if sensitivity else " (never read).")
               if any((~np.isfinite(m)).any() for m in rel.values()) else ""), width, 10), fontsize=10)
    return fig

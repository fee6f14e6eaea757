"""Figures of position-specific feature visualization: the position-dependence index against receptive-field
size (Zipser 2015), and one unit's position-by-position similarity matrices."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import EdgewiseError
from .figures import BLUE, CMAPS, GREEN, GREY, ORANGE, STYLE, VERMILION, new_figure

__all__ = ["plot_index_vs_rf", "plot_similarity_matrix"]

#: Okabe–Ito colours, one per channel (cycled)
COLOURS = (BLUE, ORANGE, GREEN, VERMILION, "#CC79A7", "#56B4E9", "#F0E442", GREY)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")


def _settings(config: dict) -> str:
    keys = [("seeds", "seeds"), ("steps", "steps"), ("param", ""), ("jitter", "jitter")]
    parts = [f"{config[k]} {name}".strip() if name != "jitter" else f"jitter {config[k]}"
             for k, name in keys if k in config]
    return ", ".join(parts)


def plot_index_vs_rf(result, title: str | None = None) -> Figure:
    """Position-dependence index per channel (markers) and per layer (mean, joined by a line) against the
    receptive-field size as a fraction of the image.

    Args:
        result: an :class:`edgewise.visualize.analysis.IndexVsRF`.
        title: replaces the first title line.
    """
    index = np.asarray(result.index, dtype=float)
    x = np.asarray(result.rf_fraction, dtype=float)
    if index.ndim != 2 or index.shape[0] != x.shape[0] or not x.size:
        raise EdgewiseError(f"plot_index_vs_rf needs an index of shape (layers, channels) matching rf_fraction; "
                            f"got {index.shape} and {x.shape}")
    n_layers, n_ch = index.shape
    span = float(np.nanmax(x) - np.nanmin(x)) if n_layers > 1 else 1.0
    offsets = (np.arange(n_ch) - (n_ch - 1) / 2) * 0.012 * max(span, 0.2)  # side by side, not on top
    with matplotlib.rc_context(STYLE):
        fig = new_figure(7.6, 5.2)
        ax = fig.add_subplot()
        ax.axhline(0.0, color=GREY, linewidth=1, linestyle=":")
        ax.axvline(1.0, color=GREY, linewidth=1, linestyle="--")
        ax.text(1.0, 1.0, " field = image", transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize=9,
                color="#555555")
        for k in range(n_ch):
            chs = [c[k] if k < len(c) else None for c in result.channels]
            label = f"channel {chs[0]}" if len(set(chs) - {None}) == 1 else f"channel slot {k + 1}"
            ax.plot(x + offsets[k], index[:, k], MARKERS[k % len(MARKERS)], color=COLOURS[k % len(COLOURS)],
                    markersize=5, alpha=0.8, linestyle="none", label=label)
        ax.plot(x, result.mean_index, "-", color="#000000", linewidth=1.8, marker="o", markersize=7,
                markerfacecolor="white", label="layer mean", zorder=3)
        sizes = np.asarray(result.rf_size)
        for xi, yi, name, size in zip(x, result.mean_index, result.layers, sizes):
            y = yi if np.isfinite(yi) else 0.0
            size = np.atleast_1d(size).astype(int)
            px = str(size[0]) if (size == size[0]).all() else "x".join(map(str, size))
            ax.annotate(f"{name} ({px} px)", (xi, y), xytext=(4, 8), textcoords="offset points", fontsize=9,
                        color="#333333")
        ax.set_xlim(0, max(1.08, float(np.nanmax(x)) * 1.08))
        ax.set_xlabel("receptive-field size / image size (ratio, mean over axes)")
        ax.set_ylabel("position-dependence index\n(1 − normalised similarity to centre)")
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=9, loc="upper left", ncols=2 if n_ch > 3 else 1)
        trend = getattr(result, "trend", float("nan"))
        shape = "x".join(map(str, result.input_shape))
        head = title or "Position dependence of preferred inputs vs receptive-field size"
        fig.suptitle(textwrap.fill(head, 70), fontsize=12)
        sub = (f"{result.model} · input {shape} · positions {', '.join(map(str, result.positions))} · "
               f"{_settings(getattr(result, 'config', {}))}"
               + (f" · Spearman ρ(layer mean, size) = {trend:.2f}" if np.isfinite(trend) else ""))
        ax.set_title(textwrap.fill(sub, 90), fontsize=9, color="#333333")
    return fig


def plot_similarity_matrix(result, cmap: str = "viridis") -> Figure:
    """One unit's normalised position-by-position similarity of preferred inputs, and its cross-activation.

    Args:
        result: an :class:`edgewise.visualize.analysis.PositionDependence`.
        cmap: ``viridis`` or ``cividis``.
    """
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_similarity_matrix: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)}")
    norm = np.asarray(result.normalised, dtype=float)
    cross = np.asarray(result.cross_activation, dtype=float)
    names = [f"{lab}\n{tuple(pos)} · {100 * f:.0f}% in" if lab != str(tuple(pos)) else f"{lab}\n{100 * f:.0f}% in"
             for lab, pos, f in zip(result.labels, result.positions, result.fraction_inside)]
    n = len(names)
    colours = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(9.0, 1.5 * n + 4.5), max(4.4, 0.75 * n + 2.6))
        panels = fig.subplots(1, 2)
        specs = [(panels[0], norm, "normalised similarity of preferred inputs", "similarity / noise ceiling",
                  "position q", (-1.0, 1.0)),
                 (panels[1], cross, "cross-activation: unit at p, image from q", "response / own-image response",
                  "preferred image of position q", (min(0.0, float(np.nanmin(cross)) if np.isfinite(cross).any()
                                                        else 0.0), 1.0))]
        for ax, mat, head, bar, xlabel, (lo, hi) in specs:
            im = ax.imshow(np.ma.masked_invalid(mat), cmap=colours, vmin=lo, vmax=hi, interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.85).set_label(bar)
            ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(n), names, fontsize=8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("unit position p")
            ax.set_title(head, fontsize=10)
            for side in ("top", "right"):
                ax.spines[side].set_visible(True)
            for (i, j), v in np.ndenumerate(mat):
                if np.isfinite(v):
                    light = (np.clip(v, lo, hi) - lo) / (hi - lo or 1) > 0.6
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                            color="#000000" if light else "#ffffff")
        if not (np.isfinite(norm).all() and np.isfinite(cross).all()):
            fig.text(0.99, 0.01, "grey: undefined (too few shared on-image pixels, no reproducible pattern, or no "
                     "positive own response)", ha="right", va="bottom", fontsize=8, color="#555555")
        rf = "x".join(str(int(s)) for s in result.rf_size)
        fig.suptitle(textwrap.fill(
            f"{result.model}: {result.layer} channel {result.channel} (field {rf} px on a "
            f"{'x'.join(map(str, result.input_shape))} input) · index {result.index:.2f}, "
            f"activation index {result.activation_index:.2f}", 90), fontsize=11)
    return fig

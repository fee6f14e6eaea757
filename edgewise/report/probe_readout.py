"""Figures of position readouts (:mod:`edgewise.probe.readout`): Spearman per layer, and a predicted map."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import EdgewiseError
from ..facts import and_list
from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, VERMILION, new_figure, record_panels, wrap

__all__ = ["plot_readout_curves", "plot_readout_example"]

_COLOURS = (BLUE, VERMILION, GREEN, ORANGE, GREY)
#: (line style, marker) per line, so lines that coincide (two paddings at exactly 0) both stay visible
_LINES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1, 1, 1)), "v"))



def _tick(name: str, sizes, most: int = 26) -> str:
    """A layer's tick label: its dotted name without leading underscores (its tail when long) and its map sizes
    (each distinct one, in the lines' order, e.g. ``conv3  8×8/6×6`` when valid padding shrinks the map)."""
    name = ".".join(part.lstrip("_") for part in name.split("."))
    name = name if len(name) <= most else "…" + name[-(most - 1):]
    return f"{name}  {'/'.join(dict.fromkeys('×'.join(map(str, s)) for s in sizes))}"


def plot_readout_curves(results, title: str | None = None) -> Figure:
    """Spearman correlation per layer, one panel per target and one line per result, with the 95 % interval
    over seeds as a band (results of one seed: no band).

    Args:
        results: a :class:`~edgewise.probe.readout.Readout`, or a dict label → Readout (e.g. one per padding) of
            the same targets; the x axis is each result's layer index, labelled with the first result's names.
        title: the figure's title (default: the first result's model and data).
    """
    if not isinstance(results, dict):
        results = {results.data: results}
    if not results:
        raise EdgewiseError("plot_readout_curves: no results to draw")
    first = next(iter(results.values()))
    for label, r in results.items():
        if r.targets != first.targets:
            raise EdgewiseError(f"plot_readout_curves: {label!r} has targets {r.targets}, the first result "
                                f"{first.targets}; draw results with the same targets")
    n_t = len(first.targets)
    longest = max(len(r.layers) for r in results.values())
    widest = max(results.values(), key=lambda r: len(r.layers))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(4.2 * n_t + 0.6, 5.2)
        axes = np.atleast_1d(fig.subplots(1, n_t, sharey=True))
        for j, (ax, target) in enumerate(zip(axes, first.targets)):
            for k, (label, r) in enumerate(results.items()):
                mean, half = r.interval("spearman")
                x = np.arange(len(r.layers))
                colour, (style, marker) = _COLOURS[k % len(_COLOURS)], _LINES[k % len(_LINES)]
                ax.plot(x, mean[:, j], color=colour, linestyle=style, marker=marker, markersize=5, linewidth=1.6,
                        label=label, markerfacecolor="none" if k % 2 else colour)
                if np.isfinite(half[:, j]).any():
                    ax.fill_between(x, mean[:, j] - half[:, j], mean[:, j] + half[:, j], color=colour, alpha=0.2,
                                    linewidth=0)
            ax.axhline(0, color="#bbbbbb", linewidth=0.8, zorder=0)
            ax.set_title(f"{target} target")
            ax.set_xticks(np.arange(longest))
            ax.set_xticklabels([_tick(n, [r.maps[i] for r in results.values() if i < len(r.maps)])
                                for i, n in enumerate(widest.layers)], rotation=60, ha="right", fontsize=8,
                               rotation_mode="anchor")
            ax.set_xlabel("layer (forward order) · map size")
            ax.set_ylim(-0.3, 1.05)
            ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
        axes[0].set_ylabel("Spearman correlation, held-out inputs")
        seeds = max(len(r.seeds) for r in results.values())
        single = [label for label, r in results.items() if len(r.seeds) == 1]
        band = (f"bands: 95 % interval over {seeds} {first.over}" + (" (lines of one seed have none)" if single
                                                                        else "") if seeds > 1
                else "one seed per line, no interval")
        gaps = [f"{label} at {r.layers[i]} ({'×'.join(map(str, r.maps[i]))})" for label, r in results.items()
                for i in range(len(r.layers)) if np.isnan(r.interval("spearman")[0][i]).any()]
        if gaps:
            band += f"\nno point where a target is constant on the map: {', '.join(gaps)}"
        if len({str(r.maps) for r in results.values()}) > 1:
            band += "; where map sizes differ, each distinct one is listed in the legend's order"
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(4, len(results)),
                   frameon=False, title=band, title_fontsize=9)
        flat = [label for label, r in results.items() if r.uniform.all()]
        note = (f"{and_list(flat)}: features uniform over positions at every layer and seed (max = min in "
                "every channel), so exactly 0" if flat else "")
        fig.suptitle(wrap(title or f"Position readout per layer: {first.model}, {first.data} inputs", 4.2 * n_t, 12)
                     + (f"\n{note}" if note else ""), fontsize=12)
        record_panels(fig, [(f"the Spearman correlation between the readout's prediction and the {t} target, "
                             "per layer", False) for t in first.targets])
    return fig


def plot_readout_example(result, layer: int = -1) -> Figure:
    """The target maps (top row) and the readout's prediction for one held-out input (bottom row) at the deepest
    layer read, one column per target, on one colour scale per column.

    Args:
        result: a :class:`~edgewise.probe.readout.Readout`.
        layer: only the deepest layer's example is stored (-1).
    """
    if layer not in (-1, len(result.layers) - 1):
        raise EdgewiseError(f"plot_readout_example: a Readout keeps the example of its deepest layer only "
                            f"({result.layers[-1]}); pass layer=-1")
    pred, target = np.asarray(result.example_prediction), np.asarray(result.example_target)
    if target.ndim == 2:  # 1-D maps: draw them as one-row images
        pred, target = pred[:, None, :], target[:, None, :]
    from ..probe.readout import spearman

    n_t = len(result.targets)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.6 * n_t + 0.4, 6.6)
        axes = fig.subplots(2, n_t, squeeze=False)
        for j, t in enumerate(result.targets):
            lo, hi = min(target[j].min(), pred[j].min()), max(target[j].max(), pred[j].max())
            for row, (img, what) in enumerate(((target[j], "target"), (pred[j], "prediction"))):
                ax = axes[row, j]
                im = ax.imshow(img, cmap="viridis", vmin=lo, vmax=hi, interpolation="nearest",
                               aspect="auto" if img.shape[0] == 1 else "equal")
                ax.set_xlabel("feature-map column")
                ax.set_ylabel("feature-map row" if img.shape[0] > 1 else "")
                rho = spearman(pred[j], target[j])
                score = f" · Spearman {rho:.2f}" if row and math.isfinite(rho) else ""
                ax.set_title(f"{t}: {what}{score}", fontsize=10)
                fig.colorbar(im, ax=ax, shrink=0.8).set_label("position value (0 to 1)")
        fig.suptitle(wrap(f"{result.model} at {result.layers[-1]} ({'×'.join(map(str, result.maps[-1]))}), "
                          f"{result.data} inputs: target (top) and prediction for one held-out input (bottom)",
                          3.6 * n_t, 11), fontsize=11)
        record_panels(fig, [(f"the {t} target and the readout's prediction", False) for t in result.targets])
    return fig

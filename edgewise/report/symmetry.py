"""The figure of the ``symmetry`` task: how alike a layer's filters and their gradients stay, step by step,
under a constant and a random initialisation, and the first layer's learned filters of one run of each."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..errors import EdgewiseError
from .figures import BLUE, GREEN, ORANGE, STYLE, VERMILION, new_figure

__all__ = ["plot_symmetry"]

#: Okabe–Ito colours per initialisation; the task's two first, then any others in turn
_INIT_COLOURS = {"constant": VERMILION, "random": BLUE}
_OTHER_COLOURS = (GREEN, ORANGE, "#CC79A7", "#56B4E9")
#: one line style per conv layer
_LAYER_STYLES = ("-", "--", ":", "-.")
#: most filters drawn per row
_MAX_FILTERS = 16
#: where an exact 0 is drawn on the log axes (float32 weight differences that are not 0 are far larger)
_FLOOR = 1e-12


def _colour(init: str, order: list[str]) -> str:
    if init in _INIT_COLOURS:
        return _INIT_COLOURS[init]
    others = [i for i in order if i not in _INIT_COLOURS]
    return _OTHER_COLOURS[others.index(init) % len(_OTHER_COLOURS)]


def _curves(ax, runs, order, layers, key: str, log: bool, floor: float) -> None:
    """One line per run and layer: the init gives the colour, the layer the line style."""
    for r in runs:
        sim = r["metrics"]["similarity"]
        for j, layer in enumerate(layers):
            y = np.asarray(sim.get(layer, {}).get(key, []), dtype=float)
            if not y.size:
                continue
            if log:
                y = np.maximum(y, floor)  # exactly 0 has no place on a log axis: draw it on the floor line
            ax.plot(np.arange(y.size), y, color=_colour(r["remedy"], order), alpha=0.75, linewidth=1.4,
                    linestyle=_LAYER_STYLES[j % len(_LAYER_STYLES)])
    ax.set_xlabel("optimiser step")
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    if log:
        ax.set_yscale("log")
        ax.axhline(floor, color="#555555", linewidth=0.8, linestyle=(0, (1, 2)))
        ax.text(0.99, floor, "exactly 0", transform=ax.get_yaxis_transform(), ha="right", va="bottom",
                fontsize=8, color="#555555")
    else:
        ax.set_ylim(-1.05, 1.05)


def _floor(runs, layers) -> float:
    """The floor for exact zeros: 1e-12, or a decade under the smallest positive value when that is lower."""
    positive = [v for r in runs for layer in layers for key in ("filter_max_diff", "grad_max_diff")
                for v in r["metrics"]["similarity"].get(layer, {}).get(key, []) if v > 0]
    return min(_FLOOR, min(positive) / 10) if positive else _FLOOR


def _filter_images(weights) -> tuple[np.ndarray, str]:
    """(C, h, w) images of a conv layer's filters (C, in, *kernel) and a note on what is shown."""
    arr = np.asarray(weights, dtype=float)
    note = ""
    if arr.ndim >= 3 and arr.shape[1] > 1:
        arr, note = arr.mean(1), " (mean over input channels)"
    elif arr.ndim >= 3:
        arr = arr[:, 0]
    if arr.ndim == 2:  # 1-D kernels: one row each
        arr = arr[:, None, :]
    return arr, note


def plot_symmetry(runs, title: str | None = None) -> Figure:
    """Filter and gradient similarity per step for each initialisation, and learned first-layer filters.

    Args:
        runs: dicts ``{"remedy": init name, "seed": int, "metrics": run_one's metrics}`` (runs with an
            ``"error"`` key, or without ``similarity``, are skipped).
        title: the figure's title.

    Returns:
        a :class:`~matplotlib.figure.Figure`: mean pairwise cosine similarity and largest pairwise difference
        of the filters (top row) and of their gradients (middle row) against the step, one line per run and
        conv layer, and the first conv layer's filters after training for one run of each init (bottom rows).
    """
    runs = [r for r in runs if "error" not in r and "similarity" in r.get("metrics", {})]
    if not runs:
        raise EdgewiseError("plot_symmetry: no run recorded filter similarity (every run failed, or the runs "
                            "are not from the 'symmetry' task)")
    runs = sorted(runs, key=lambda r: (str(r["remedy"]), r.get("seed", 0)))
    present = list(dict.fromkeys(r["remedy"] for r in runs))
    order = [i for i in _INIT_COLOURS if i in present] + [i for i in present if i not in _INIT_COLOURS]
    layers = list(dict.fromkeys(layer for r in runs for layer in r["metrics"]["similarity"]))
    with_filters = [r for r in runs if r["metrics"].get("filters", {}).get("weights")]
    shown = [next(r for r in with_filters if r["remedy"] == init) for init in order
             if any(r["remedy"] == init for r in with_filters)]  # the lowest seed of each init
    floor = _floor(runs, layers)

    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.0, 6.6 + 1.45 * len(shown))
        top, *rows = fig.subfigures(1 + len(shown), 1, height_ratios=[6.6] + [1.45] * len(shown))
        axes = top.subplots(2, 2)
        what = {"filter": "filters", "grad": "gradients of the filters"}
        for i, kind in enumerate(("filter", "grad")):
            ax = axes[i, 0]
            _curves(ax, runs, order, layers, f"{kind}_cos_mean", log=False, floor=floor)
            ax.set_ylabel("mean pairwise cosine")
            ax.set_title(f"Direction: how alike the {what[kind]} are", fontsize=11)
            ax = axes[i, 1]
            _curves(ax, runs, order, layers, f"{kind}_max_diff", log=True, floor=floor)
            ax.set_ylabel(r"largest $|w_i - w_j|$" if kind == "filter" else r"largest $|g_i - g_j|$")
            ax.set_title(f"Largest difference between two {what[kind]}\n(log axis; exact 0 drawn at {floor:.0e})",
                         fontsize=11)
        handles = [Line2D([], [], color=_colour(i, order), linewidth=2, label=f"{i} init") for i in order]
        handles += [Line2D([], [], color="#444444", linestyle=_LAYER_STYLES[j % len(_LAYER_STYLES)], label=layer)
                    for j, layer in enumerate(layers)]
        top.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=9,
                   title="one line per seed\nand conv layer", title_fontsize=9)

        for sub, r in zip(rows, shown):
            images, note = _filter_images(r["metrics"]["filters"]["weights"])
            images = images[:_MAX_FILTERS]
            peak = float(np.abs(images).max()) or 1.0
            acc = r["metrics"].get("accuracy", {}).get("test")
            layer = r["metrics"]["filters"].get("layer") or "conv"
            head = f"{r['remedy']} init, seed {r.get('seed', 0)}: {layer} filters after training{note}"
            if acc is not None:
                head += f" · test accuracy {100 * acc:.0f} %"
            sub.suptitle(head, x=0.02, ha="left", fontsize=10, color=_colour(r["remedy"], order))
            cells = np.atleast_1d(sub.subplots(1, _MAX_FILTERS if len(images) > 8 else 8))
            for c, ax in enumerate(cells):
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(images):
                    ax.set_visible(False)
                    continue
                # cividis: perceptually uniform and colour-blind safe; ±peak puts a weight of 0 at the middle colour
                im = ax.imshow(images[c], cmap="cividis", vmin=-peak, vmax=peak, interpolation="nearest")
                ax.set_xlabel(f"filter {c}", fontsize=8, labelpad=2)
                for side in ("top", "right"):
                    ax.spines[side].set_visible(True)
            sub.colorbar(im, ax=list(cells[:len(images)]), shrink=0.9, pad=0.01).set_label("weight", fontsize=8)
        fig.suptitle(textwrap.fill(title or "Symmetry breaking: do a layer's filters stay identical?", 90),
                     fontsize=12)
    return fig

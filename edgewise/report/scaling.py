"""Figure of depth scaling: measured centre/edge ratios versus depth, theory curves and fitted laws."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, VERMILION, new_figure

__all__ = ["plot_scaling", "plot_layers", "law_text"]

#: Okabe–Ito colours plus black: one per padding
COLOURS = (VERMILION, BLUE, GREEN, ORANGE, "#CC79A7", "#56B4E9", "#000000", GREY)


def law_text(law: dict | None) -> str:
    """``"exponential, base 2.93"``, ``"power, exponent 0.45"``, ``"bounded, → 1.89"`` or ``"uniform"``."""
    if not law:
        return "too few points to fit"
    p = law["params"]
    if law["kind"] == "exponential":
        return f"exponential, base {p['base']:.3g} (R² {law['r2']:.3f})"
    if law["kind"] == "power":
        return f"power, exponent {p['exponent']:.2f} (R² {law['r2']:.3f})"
    if law["kind"] == "bounded":
        return f"bounded, → {p['limit']:.3g}"
    return "uniform (ratio 1)"


def plot_scaling(result) -> Figure:
    """Centre/edge (1-D) or centre/corner (2-D) path ratio versus depth: measured points, theory lines.

    Args:
        result: a :class:`edgewise.scaling.Scaling`.
    """
    depths = np.asarray(result.depths, dtype=float)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(8.0, 5.2)
        ax = fig.add_subplot()
        for (padding, ratios), colour in zip(result.ratios.items(), COLOURS):
            label = f"{padding}: {law_text(result.laws.get(padding))}"
            ax.plot(depths, ratios, "o", color=colour, markersize=3.5, label=label)
            if padding in result.theory:
                ax.plot(depths, result.theory[padding], "-", color=colour, linewidth=1.2, alpha=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("depth L (number of stacked layers)")
        ax.set_ylabel(f"centre / {result.key} path ratio")
        ax.grid(True, which="major", color="#e5e5e5", linewidth=0.8)
        ax.legend(frameon=False, fontsize=9, title="measured (points) · fitted law", title_fontsize=9)
        shape = "x".join(map(str, result.input_shape))
        fig.suptitle(textwrap.fill(f"Depth scaling of L*{result.block} on a {shape} input: exact counts (points) "
                                   "and closed forms (lines)", 80), fontsize=12)
    return fig


def plot_layers(layers: list[dict], where: str, model: str) -> Figure:
    """The centre/``where`` path ratio after each sliding-window layer of ``model`` (``layers``: records of
    :func:`edgewise.report.sections.layer_ratios`)."""
    names, ratios = [r["name"] for r in layers], [r["ratio"] for r in layers]
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(6.4, 0.3 * len(names) + 2.5), 4.2)
        ax = fig.add_subplot()
        x = np.arange(1, len(names) + 1)
        ax.plot(x, ratios, "o-", color=BLUE, markersize=4)
        ax.set_yscale("log")
        ax.set_xlabel("depth: sliding-window layers from the input (convolutions and pools)")
        ax.set_ylabel(f"centre / {where} path ratio")
        if len(names) <= 24:
            ax.set_xticks(x, names, rotation=60, ha="right", fontsize=9)
        ax.grid(True, which="major", color="#e5e5e5", linewidth=0.8)
        if max(ratios) / min(ratios) < 1e4:  # plain numbers read better than 2×10¹ on a short log axis
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        fig.suptitle(textwrap.fill(f"{model}: how the gap grows layer by layer (exact counts)", 70), fontsize=12)
    return fig

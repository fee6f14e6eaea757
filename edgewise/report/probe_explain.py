"""Figures of the explanations (:mod:`edgewise.probe.explain`): border-1d's start/end asymmetry, the accuracy per
split beside its time-reversed control, the class information per end of the signal, and the trained nets'
perturbation profiles along the sequence."""

from __future__ import annotations


import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..probe.explain import VARIANTS
from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, needs_log, new_figure, wrap
from .probe_perturb import _fmt, mean_band

__all__ = ["plot_border1d"]

#: colour and legend name of each variant (the same in every panel)
COLOURS = {"default": BLUE, "reversed": ORANGE}
NAMES = {"default": "signals as they are", "reversed": "signals reversed in time"}


def plot_border1d(result, title: str | None = None) -> Figure:
    """Three panels: accuracy per test split, default against reversed (bars: mean over seeds, dots: each seed);
    logistic-regression accuracy on the first and last k samples of the raw signals; the perturbation profile of
    each variant's trained net along the sequence (mean ± 1 s.e. over the middle-split signals), the signal's
    first and last sample marked."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10.0, 8.4)
        top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
        ax_acc, ax_info = top.subplots(1, 2, width_ratios=[1.3, 1])
        _accuracy(ax_acc, result)
        _information(ax_info, result)
        _profiles(bottom.subplots(), result)
        fig.suptitle(wrap(title or f"border-1d ({result.size}): why the net trained at the middle scores "
                          f"{result.mean_accuracy('default')['start']:.2f} at the start and "
                          f"{result.mean_accuracy('default')['end']:.2f} at the end", 10.0, 12), fontsize=12)
    return fig


def _accuracy(ax, result) -> None:
    """Grouped bars per split (mean over seeds), one dot per seed, chance dotted."""
    x = np.arange(len(result.splits))
    width = 0.8 / len(VARIANTS)
    for j, v in enumerate(VARIANTS):
        acc = result.accuracy[VARIANTS.index(v)]  # (seeds, splits)
        pos = x + (j - (len(VARIANTS) - 1) / 2) * width
        ax.bar(pos, acc.mean(axis=0), width, color=COLOURS[v], label=f"trained and tested on {NAMES[v]}")
        for i, p in enumerate(pos):
            ax.plot(np.full(acc.shape[0], p), acc[:, i], "o", color="black", markersize=3.5,
                    label="one seed" if (j, i) == (0, 0) else None)
    ax.axhline(result.chance, color="black", linewidth=0.8, linestyle=":", label=f"chance ({result.chance:.2f})")
    ax.set_xticks(x, [f"at the {s}" for s in result.splits])
    ax.set_xlabel("where the test signals sit in the sequence")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    n = len(result.seeds)
    ax.set_title(f"Accuracy, trained at the middle ({n} seed{'s' if n > 1 else ''})")
    ax.legend(fontsize=9, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def _information(ax, result) -> None:
    """Logistic regression on the first k against the last k samples of the raw signals."""
    x = np.arange(len(result.ks))
    for j, (name, colour) in enumerate((("first k samples", GREEN), ("last k samples", GREY))):
        ax.bar(x + (j - 0.5) * 0.4, result.information[j], 0.4, color=colour, label=name)
    ax.axhline(result.chance, color="black", linewidth=0.8, linestyle=":", label="chance")
    ax.set_xticks(x, [str(k) for k in result.ks])
    ax.set_xlabel(f"k (samples of the {result.length}-sample signal)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title("Class information per end of the signal")
    ax.legend(fontsize=9, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def _profiles(ax, result) -> None:
    """Each variant's trained-net profile along the sequence, mean ± 1 s.e. over inputs; the signal's span
    marked."""
    pos = np.arange(result.canvas)
    means = []
    for v in VARIANTS:
        p = result.profile_stats(v)
        means.append(mean_band(ax, pos, result.profile[VARIANTS.index(v)], COLOURS[v],
                               f"trained on {NAMES[v]} (first/last quarter "
                               f"{_fmt(p['first_quarter'] / p['last_quarter'])})"))
    if needs_log(*means):
        ax.set_yscale("log")
    a, b = result.offset, result.offset + result.length - 1
    for s, what in ((a, "first"), (b, "last")):
        ax.axvline(s, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"signal's {what} sample ({s})", (s, 1), xycoords=("data", "axes fraction"),
                    xytext=(3 if what == "first" else -3, -2), textcoords="offset points", fontsize=9,
                    ha="left" if what == "first" else "right", va="top")
    ax.set_xlim(-0.5, result.canvas - 0.5)
    ax.set_xlabel("input position (sample; the sequence has zero padding beyond both ends)")
    ax.set_ylabel("‖Δoutput‖₂ / ε")
    ax.set_title(f"Perturbation profile of the seed-{result.seeds[0]} nets: one sample nudged by ±ε, "
                 f"{result.profile.shape[1]} middle test signals (mean ± 1 s.e.)")
    ax.legend(fontsize=9, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)

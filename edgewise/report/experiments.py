"""Figures of an experiment sweep: test accuracy per remedy and split, plus each task's own figure."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, VERMILION, new_figure

__all__ = ["plot_accuracy", "experiment_figures"]

#: Okabe–Ito colours, one per test split
_SPLIT_COLOURS = (BLUE, VERMILION, GREEN, ORANGE, "#CC79A7", "#56B4E9", GREY)


def plot_accuracy(exp, title: str | None = None) -> Figure:
    """Grouped bars: mean test accuracy of every remedy on every split, with 95 % intervals over seeds and
    each seed's run as a dot."""
    table = exp.table()
    names, splits = exp.remedies, exp.splits
    width = 0.8 / max(1, len(splits))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(5.0, 1.0 + 0.9 * len(names) * max(1, len(splits)) ** 0.5), 3.8)
        ax = fig.subplots()
        x = np.arange(len(names))
        for j, split in enumerate(splits):
            colour = _SPLIT_COLOURS[j % len(_SPLIT_COLOURS)]
            pos = x - 0.4 + width * (j + 0.5)
            means = np.array([table[n][split]["mean"] for n in names]) * 100
            half = np.array([table[n][split]["interval"][1] - table[n][split]["mean"] for n in names]) * 100
            ax.bar(pos, np.nan_to_num(means), width * 0.9, color=colour, alpha=0.85, label=split,
                   yerr=np.where(np.isfinite(half), half, 0), capsize=3, error_kw={"elinewidth": 1})
            for p, n in zip(pos, names):
                dots = np.array(exp.accuracies(n, split)) * 100
                ax.plot(np.full(dots.size, p), dots, "o", markersize=3, color="#222222", alpha=0.6)
        errors = exp.errors()
        for i, n in enumerate(names):
            if n in errors and not any(table[n][s]["n"] for s in splits):
                ax.text(i, 2, "does not fit", rotation=90, ha="center", va="bottom", fontsize=9, color=GREY)
        chance = _chance(exp)
        if chance:
            ax.axhline(100 * chance, color=GREY, linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(x, names, rotation=30 if len(names) > 5 else 0, ha="right" if len(names) > 5 else "center")
        ax.set_ylim(0, 105)
        ax.set_ylabel("test accuracy (%)")
        ax.set_xlabel(exp.axis)
        ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False, title="test split",
                  title_fontsize=9)
        n_seeds = len(exp.seeds)
        ax.set_title(title or f"{exp.task} ({exp.size}): mean of {n_seeds} seed{'s' * (n_seeds != 1)}, 95 % interval")
    return fig


def _chance(exp) -> float | None:
    """The accuracy of guessing, when the runs report it (``metrics["chance"]``)."""
    for r in exp.runs:
        if "metrics" in r and r["metrics"].get("chance"):
            return float(r["metrics"]["chance"])
    return None


def experiment_figures(exp) -> dict[str, Figure]:
    """name → figure: ``accuracy`` always; ``border`` when the runs measured accuracy by distance to the border
    (with each remedy's predicted threshold when the runs give one); ``symmetry`` when they recorded filter
    similarity."""
    figs = {"accuracy": plot_accuracy(exp)}
    runs = [r for r in exp.runs if "metrics" in r]
    if any("by_distance" in r["metrics"] for r in runs):
        from .border import plot_border_curve

        figs["border"] = plot_border_curve(runs, title=f"{exp.task} ({exp.size}): accuracy vs distance to the border")
        _mark_thresholds(figs["border"], runs)
    if any("similarity" in r["metrics"] for r in runs):
        from .symmetry import plot_symmetry

        figs["symmetry"] = plot_symmetry(runs, title=f"{exp.task} ({exp.size}): symmetric vs random initialisation")
    return figs


def _mark_thresholds(fig: Figure, runs) -> None:
    """Add the runs' predicted thresholds (``metrics["threshold"]``: the distance from which a remedy can no longer
    tell the placements apart) to the border figure: one dotted vertical line per distinct distance, in its
    remedy's colour (dark grey when several remedies share it), named in the legend. No threshold: no change."""
    at: dict[int, list[str]] = {}
    for r in runs:
        t = r["metrics"].get("threshold")
        if t is not None and not any(r["remedy"] in names for names in at.values()):
            at.setdefault(int(t), []).append(str(r["remedy"]))
    if not at:
        return
    ax = fig.axes[0]
    colours = {line.get_label().split(" (")[0]: line.get_color() for line in ax.get_lines()}
    with matplotlib.rc_context(STYLE):
        for t, names in sorted(at.items()):
            colour = colours.get(names[0], GREY) if len(names) == 1 else "#444444"
            ax.axvline(t, color=colour, linestyle=":", linewidth=1.6,
                       label=f"predicted b* = {t} ({', '.join(names)})")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9, frameon=False, title="remedy",
                  title_fontsize=9)

"""Figures of sensitivity results: gradient maps (effective receptive fields) and the perturbation experiment."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import EdgewiseError
from ..maps import radial_profile
from ._format import fmt_ratio
from .figures import BLUE, CMAPS, GREY, ORANGE, STYLE, _curve, _heatmap, _target, new_figure

__all__ = ["plot_sensitivity", "plot_perturbation"]


def _quantity(result) -> str:
    if result.method == "init":
        std = "default init" if result.std is None else f"weights N(0, {result.std:g}²)"
        return f"E[(∂y/∂x)²] over {result.n_inits} initialisations ({std})"
    return {"abs": "mean |∂y/∂x|", "sq": "mean (∂y/∂x)²", "signed": "mean ∂y/∂x"}[result.agg]


def _ratio_text(summary: dict, ndim: int) -> str:
    key = "corner" if ndim == 2 else "edge"
    return f"centre/{key} {fmt_ratio(summary[f'log10_center_{key}_ratio'])}"


def _log10(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(np.abs(np.asarray(values, dtype=np.float64)))


def _profile(ax, values, label, colour, marker) -> None:
    radii, means = radial_profile(np.abs(values))
    top = float(np.max(means)) if means.size and np.max(means) > 0 else 1.0
    ax.plot(radii, means / top, color=colour, marker=marker, markersize=3.5, linewidth=1.6, label=label)


def plot_sensitivity(result, paths=None, cmap: str = "viridis") -> Figure:
    """A sensitivity map (log10 heatmap, or a curve in 1-D) beside its radial profile.

    Args:
        result: a :class:`edgewise.sensitivity.Sensitivity`.
        paths: optional :class:`edgewise.PathCounts` of the same model: its radial
            profile is drawn beside the sensitivity's (both normalised to their maximum).
    """
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_sensitivity: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)}")
    values = np.asarray(result.map, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise EdgewiseError(f"plot_sensitivity draws 1-D or 2-D inputs; this result has shape {values.shape}")
    what = _quantity(result)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.0, 4.6)
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
        if values.ndim == 2:
            _heatmap(fig, left, _log10(values), cmap, "log10 " + what.split(" over")[0], "zero")
        else:
            _curve(left, _log10(values), what.split(" over")[0])
        left.set_title(textwrap.fill(f"{result.model} · {_ratio_text(result.summary, values.ndim)}", 55),
                       fontsize=10, color="#333333")
        _profile(right, values, "sensitivity", BLUE, "o")
        if paths is not None:
            counts = np.where(np.isfinite(paths.log10), 10.0 ** (paths.log10 - np.nanmax(paths.log10)), 0.0)
            _profile(right, counts, "path counts", ORANGE, "s")
        right.set_yscale("log")
        right.set_xlabel("distance from the image centre (px)")
        right.set_ylabel("ring mean / its maximum")
        right.set_title("radial profile", fontsize=10, color="#333333")
        right.grid(True, color="#e5e5e5", linewidth=0.8)
        right.legend(frameon=False)
        fig.suptitle(textwrap.fill(f"Sensitivity of {_target(result)} to each input position: {what}", 100),
                     fontsize=12)
    return fig


def plot_perturbation(result, cmap: str = "viridis") -> Figure:
    """The perturbation experiment: one position at a time, all at once with random signs, and the gradient."""
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_perturbation: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)}")
    panels = [("one position at a time", result.single),
              (f"all at once, {result.n_signs} random sign patterns", result.random_signs),
              ("gradient (autograd)", result.gradient)]
    ndim = np.asarray(result.single).ndim
    label = "log10 |Δf| / ε"
    with matplotlib.rc_context(STYLE):
        if ndim == 2:
            fig = new_figure(15.0, 4.8)
            axes = fig.subplots(1, 3)
            for ax, (name, values) in zip(axes, panels):
                _heatmap(fig, ax, _log10(values), cmap, label, "no change")
                ax.set_title(name, fontsize=10, color="#333333")
        else:
            fig = new_figure(7.5, 4.2)
            ax = fig.add_subplot()
            for (name, values), colour, style in zip(panels, (BLUE, ORANGE, GREY), ("-", "--", ":")):
                ax.plot(np.arange(len(values)), values, color=colour, linestyle=style, linewidth=1.8, label=name)
            ax.set_yscale("log")
            ax.set_xlabel("input position (px)")
            ax.set_ylabel("|Δf| / ε")
            ax.grid(True, color="#e5e5e5", linewidth=0.8)
            ax.legend(frameon=False)
        s = result.summary["single"]
        fig.suptitle(textwrap.fill(
            f"Nudging each input position by ε = {result.eps:g}: change of {_target(result)} "
            f"({result.model}; {_ratio_text(s, ndim)}; finite differences vs gradient: max error "
            f"{result.fd_error:.1e}; random signs vs gradient: correlation {result.sign_correlation:.2f})", 120),
            fontsize=11)
    return fig

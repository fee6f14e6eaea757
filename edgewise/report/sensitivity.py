"""Figures of sensitivity results: gradient maps (effective receptive fields) and the perturbation experiment."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..errors import EdgewiseError
from ..facts import and_list
from ..maps import radial_profile
from ._format import fmt_ratio
from .figures import (BLUE, CMAPS, GREEN, GREY, ORANGE, STYLE, VERMILION, _heatmap, _target, needs_log, new_figure,
                      record_panels, wrap)

__all__ = ["plot_sensitivity", "plot_perturbation", "sign_estimate_is_noise", "MIN_SIGN_CORRELATION"]


#: how each re-initialisation method (``Sensitivity.init``) reads on a figure or a page
INIT_TEXT = {"builder": "the model's own init", "module": "the model's own init methods",
             "default": "torch's default init"}


def init_text(result) -> str:
    """The initialisation of an ``init_sensitivity`` result, in words (results saved before it was recorded:
    torch's default)."""
    if result.std is not None:
        return f"weights N(0, {result.std:g}²)"
    return INIT_TEXT.get(getattr(result, "init", None), INIT_TEXT["default"])


def _quantity(result) -> str:
    if result.method == "init":
        return f"E[(∂y/∂x)²] over {result.n_inits} initialisations ({init_text(result)})"
    return {"abs": "mean |∂y/∂x|", "sq": "mean (∂y/∂x)²", "signed": "mean ∂y/∂x"}[result.agg]


def _ratio_text(summary: dict, ndim: int) -> str:
    key = "corner" if ndim == 2 else "edge"
    return f"centre/{key} {fmt_ratio(summary[f'log10_center_{key}_ratio'])}"


def _log10(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log10(np.abs(np.asarray(values, dtype=np.float64)))


#: a random-sign estimate correlating less than this with the gradient it estimates is mostly noise
#: (it shares under r² = 25 % of its variance with it) and is not drawn as evidence
MIN_SIGN_CORRELATION = 0.5


def _mean_scale(values: np.ndarray) -> float:
    """The mean over positions, the unit the curves are drawn in (1 for an all-zero map)."""
    m = float(np.mean(values))
    return m if m > 0 else 1.0


def _ring_profile(values: np.ndarray, samples: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(radii, ring means, their standard error over ``samples`` or None)."""
    radii, means = radial_profile(values)
    if samples is None or len(samples) < 2:
        return radii, means, None
    each = np.stack([radial_profile(v)[1] for v in samples])
    return radii, means, each.std(axis=0, ddof=1) / math.sqrt(len(samples))


def _markers(n: int, marker: str | None) -> dict:
    """Point markers only while the points stay apart."""
    return dict(marker=marker, markersize=3) if marker and n <= 60 else {}


def _gaps(y: np.ndarray, log: bool) -> np.ndarray:
    """``y`` with its zeros left out (NaN: a gap in the line) on a log axis, where they have no place."""
    return np.where(y > 0, y, np.nan) if log else y


def _band_curve(ax, x, y, err, colour, marker, label, log: bool = False) -> None:
    """``y`` with a ±``err`` band (lower edge kept positive, for a log axis, where zeros are gaps)."""
    y = _gaps(y, log)
    ax.plot(x, y, color=colour, linewidth=1.4, label=label, **_markers(len(x), marker))
    if err is not None:
        ax.fill_between(x, np.maximum(y - err, y * 1e-3), y + err, color=colour, alpha=0.25, linewidth=0,
                        label=f"{label} ± 1 standard error")


def _relative(values) -> np.ndarray:
    """A non-negative map relative to its maximum (all zero stays zero)."""
    values = np.asarray(values, dtype=np.float64)
    top = values.max() if values.size else 0.0
    return values / top if top > 0 else values


def _paths_relative(paths) -> np.ndarray:
    """Path counts relative to their maximum (finite at any size; 0 where no path)."""
    return np.where(np.isfinite(paths.log10), 10.0 ** (paths.log10 - np.nanmax(paths.log10)), 0.0)


def plot_sensitivity(result, paths=None, cmap: str = "viridis", live=None, weighted=None) -> Figure:
    """A sensitivity map (log10 heatmap, or a curve with its standard-error band in 1-D) beside its radial
    profile, each divided by its mean over positions (path counts likewise when given).

    Args:
        result: a :class:`edgewise.sensitivity.Sensitivity`.
        paths: optional :class:`edgewise.PathCounts` of the same model, drawn beside the sensitivity.
        live: optional counts of only the paths that avoid the layers that start silent
            (:func:`edgewise.live.live_pathways`), drawn beside them.
        weighted: optional weighted paths of the same model (:func:`edgewise.weighted_pathways`), drawn beside them.

    The panels drawn are recorded on the figure (:func:`edgewise.report.figures.panel_text`).
    """
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_sensitivity: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)}")
    values = np.abs(np.asarray(result.map, dtype=np.float64))
    if values.ndim not in (1, 2):
        raise EdgewiseError(f"plot_sensitivity draws 1-D or 2-D inputs; this result has shape {values.shape}")
    what = _quantity(result)
    short = what.split(" over")[0]
    unit = _mean_scale(values)
    samples = np.asarray(result.samples, dtype=np.float64)
    # ring means of a signed map's magnitude are not the mean of the samples' rings: no band then
    ring_samples = samples if (samples >= 0).all() else None
    counts = _paths_relative(paths) if paths is not None else None
    # (label, counts relative to their maximum, colour, line style, marker) of each path-count curve
    lines = ([("path counts", counts, ORANGE, "--", "s")] if counts is not None else []) + (
        [(_live_label(result), _paths_relative(live), GREEN, ":", "^")] if live is not None else []) + (
        [("weighted paths", _relative(weighted.map), VERMILION, "-.", "D")] if weighted is not None else [])
    named = and_list([f"the {label}" for label, *_ in lines]) if lines else ""
    with_paths = f", with {named}" if lines else ""
    zero = not (values > 0).any()  # every gradient exactly zero: nothing to divide, nothing to draw
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.5, 4.9)
        left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
        if zero:
            _zero_panel(left, values.shape, short)
            drawn = [(f"no map: {short} is 0 at every input position", False)]
        elif values.ndim == 2:
            _heatmap(fig, left, _log10(values / unit), cmap, f"log10 ({short} / its mean)", "zero")
            drawn = [("the sensitivity at each input position divided by its mean over positions", True)]
        else:
            x = np.arange(values.size)
            curves = [values / unit] + [c / _mean_scale(c) for _, c, *_ in lines]
            log = needs_log(*curves)
            _band_curve(left, x, values / unit, np.asarray(result.stderr, dtype=np.float64) / unit, BLUE, None,
                        "sensitivity", log)
            for (label, _, colour, style, _), curve in zip(lines, curves[1:]):
                left.plot(x, _gaps(curve, log), color=colour, linewidth=1.6, linestyle=style, label=label)
            left.set_yscale("log" if log else "linear")
            if not log:
                left.set_ylim(bottom=0)
            left.set_xlim(-0.5, values.size - 0.5)
            left.set_xlabel("input position (sample)")
            left.set_ylabel("value / its mean over positions")
            left.grid(True, color="#e5e5e5", linewidth=0.8)
            left.legend(frameon=False, fontsize=9)
            drawn = [(f"the sensitivity at each input position ± 1 standard error (band){with_paths}, "
                      "each divided by its mean over positions" + _gap_words(curves, log, "positions"), log)]
        left.set_title(wrap(f"{result.model} · {_ratio_text(result.summary, values.ndim)}", 6.0, 10),
                       fontsize=10, color="#333333")
        radii, means, err = _ring_profile(values / unit, None if ring_samples is None else ring_samples / unit)
        curves = [] if zero else [means]
        profiles = [radial_profile(c / _mean_scale(c)) for _, c, *_ in lines]
        curves += [m for _, m in profiles]
        log = needs_log(*curves)
        if not zero:
            _band_curve(right, radii, means, err, BLUE, "o", "sensitivity", log)
        for (label, _, colour, style, marker), (c_radii, c_means) in zip(lines, profiles):
            right.plot(c_radii, _gaps(c_means, log), color=colour, linewidth=1.6, linestyle=style, label=label,
                       **_markers(len(c_radii), marker))
        right.set_yscale("log" if log else "linear")
        if not log:
            right.set_ylim(bottom=0)
        ring = "ring" if values.ndim == 2 else "both sides'"
        right.set_xlabel("distance from the input's centre (" + ("px" if values.ndim == 2 else "samples") + ")")
        right.set_ylabel(f"{ring} mean / mean over all positions")
        right.set_title("mean at each distance from the centre", fontsize=10, color="#333333")
        right.grid(True, color="#e5e5e5", linewidth=0.8)
        if curves:
            right.legend(frameon=False, fontsize=9)
        if zero:
            right.text(0.5, 0.5, "sensitivity: 0 at every distance", transform=right.transAxes, ha="center",
                       va="center", fontsize=10, color="#555555")
            drawn.append(("nothing: there is no sensitivity to average" if not lines else
                          "the path counts' mean at each distance from the centre, divided by their mean over all "
                          "positions" if len(lines) == 1 and counts is not None else
                          f"the mean at each distance from the centre of {named}, each divided by its mean over all "
                          "positions", log))
        else:
            drawn.append(("the mean at each distance from the centre"
                          + (" ± 1 standard error (band)" if err is not None else "") + with_paths
                          + ", divided by the mean over all positions"
                          + _gap_words(curves, log, "distances" if values.ndim == 1 else "rings"), log))
        fig.suptitle(wrap(f"Sensitivity of {_target(result)} to each input position: {what}", 11.5, 12),
                     fontsize=12)
        record_panels(fig, drawn)
    return fig


def _live_label(result) -> str:
    """The legend of the paths that avoid the layers that start silent or tiny, from the sensitivity ``result``:
    ``paths avoiding the 8 zero-weight norms``, ``paths avoiding the 12 scales ≤ 1e-06``."""
    k, small = len(result.zero_scales), result.small_scales
    parts = ([f"the {k} zero-weight norms" if k != 1 else "the zero-weight norm"] if k else []) + (
        [(f"the {len(small)} scales" if len(small) != 1 else "the scale") + f" ≤ {max(small.values()):.3g}"]
        if small else [])
    return f"paths avoiding {and_list(parts)}"


def _gap_words(curves: list, log: bool, where: str) -> str:
    """"; gaps: 3 rings whose mean is exactly 0" where a log axis leaves a curve's zeros out."""
    n = max((int(np.count_nonzero(np.asarray(c) == 0)) for c in curves), default=0) if log else 0
    return f"; gaps: {n} {where[:-1] if n == 1 else where} where it is exactly 0" if n else ""


def _zero_panel(ax, shape: tuple, quantity: str) -> None:
    """In place of a map that is zero everywhere: the input's extent (grey; in 1-D the zero line), saying so."""
    if len(shape) == 2:
        ax.set_facecolor("#d9d9d9")  # (no image: a colour bar for a single value would say nothing)
        ax.set_xlim(-0.5, shape[1] - 0.5)
        ax.set_ylim(shape[0] - 0.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xlabel("input column x (px)")
        ax.set_ylabel("input row y (px)")
    else:
        ax.plot(np.arange(shape[0]), np.zeros(shape[0]), color=BLUE, linewidth=1.6)
        ax.set_xlim(-0.5, shape[0] - 0.5)
        ax.set_ylim(-0.05, 1.0)  # (a squared gradient: nothing below zero to show)
        ax.set_xlabel("input position (sample)")
        ax.set_ylabel(quantity)
    ax.text(0.5, 0.55, f"{quantity} = 0\nat every input position:\nno input changes the output",
            transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#333333")


def sign_estimate_is_noise(result) -> bool:
    """Whether the all-at-once random-sign estimate is too noisy to show (see :data:`MIN_SIGN_CORRELATION`)."""
    r = result.sign_correlation
    return not (math.isfinite(r) and r >= MIN_SIGN_CORRELATION)


def plot_perturbation(result, cmap: str = "viridis") -> Figure:
    """The perturbation experiment: one position at a time, the gradient, and all at once with random signs
    (left out when it is mostly noise: :func:`sign_estimate_is_noise`)."""
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_perturbation: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)}")
    signs = f"all at once with random signs ({result.n_signs} patterns)"
    # (panel title, what it shows for the caption, values)
    panels = [("one position at a time", "the output change per unit nudge, one position at a time", result.single),
              ("gradient (autograd)", "the change the gradient predicts (autograd)", result.gradient)]
    omitted = []
    if sign_estimate_is_noise(result) and not math.isfinite(result.sign_correlation):
        omitted.append(f"the estimate from nudging {signs}, whose correlation with the gradient is undefined (one "
                       "of the two maps is constant)")
    elif sign_estimate_is_noise(result):
        omitted.append(f"the estimate from nudging {signs}, which correlates only r = "
                       f"{result.sign_correlation:.2f} with the gradient (below {MIN_SIGN_CORRELATION:g}: mostly noise)")
    else:
        panels.append((signs, f"the estimate from nudging {signs}", result.random_signs))
    ndim = np.asarray(result.single).ndim
    label = "log10 |Δf| / ε"
    with matplotlib.rc_context(STYLE):
        if ndim == 2:
            width = 5.0 * len(panels)
            fig = new_figure(width, 5.0)
            axes = fig.subplots(1, len(panels))
            for ax, (name, _, values) in zip(axes, panels):
                _heatmap(fig, ax, _log10(values), cmap, label, "no change")
                ax.set_title(wrap(name, 4.2, 10), fontsize=10, color="#333333")
            record_panels(fig, [(what, True) for _, what, _ in panels], omitted=omitted)
        else:
            width = 9.0
            fig = new_figure(width, 4.8)
            ax = fig.add_subplot()
            for (name, _, values), colour, style in zip(panels, (BLUE, GREY, ORANGE), ("-", ":", "--")):
                ax.plot(np.arange(len(values)), values, color=colour, linestyle=style, linewidth=1.8, label=name)
            ax.set_yscale("log")
            ax.set_xlabel("input position (sample)")
            ax.set_ylabel("|Δf| / ε")
            ax.grid(True, color="#e5e5e5", linewidth=0.8)
            ax.legend(frameon=False)
            names = [name for name, _, _ in panels]
            record_panels(fig, [("the output change per unit nudge of each input position, as curves for "
                                 + ", ".join(names[:-1]) + " and " + names[-1], True)], omitted=omitted)
        s = result.summary["single"]
        fig.suptitle(wrap(
            f"Nudging each input position by ε = {result.eps:g}: change of {_target(result)} "
            f"({result.model}; {_ratio_text(s, ndim)}; finite differences vs gradient: max error "
            f"{result.fd_error:.1e}; random signs vs gradient: correlation {result.sign_correlation:.2f}"
            + (", too noisy to draw" if omitted else "") + ")", width, 11), fontsize=11)
    return fig

"""Figures of the spatial-bias probe: bias maps as a grid, border profiles, blind-spot maps
(:mod:`edgewise.probe.bias`)."""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from ..errors import EdgewiseError
from .figures import BLUE, GREY, ORANGE, STYLE, VERMILION, new_figure, record_panels, wrap

__all__ = ["plot_bias_grid", "plot_bias_profiles", "plot_blind_spots", "grid_layers", "profile_layers"]

#: the most panels :func:`plot_bias_grid` draws when no layers are named
MAX_PANELS = 19  # with the inputs' panel: a 4 × 5 grid
#: where no stimulus centre can lie (the stimulus stays inside the input)
UNREACHED = "#e6e6e6"
#: a stimulus kind as a figure names it
STIMULUS_TEXT = {"patch": "the cat's face (photo patch)", "digit": "a digit", "signal": "an MNIST-1D signal",
                 "given": "the given stimulus"}


def grid_layers(result, most: int = MAX_PANELS) -> list[int]:
    """Which layers a grid shows by default: all when they fit, else the first layer at each feature-map size
    (where strides, and uneven padding, act) and the rest spread evenly in depth."""
    n = len(result.layers)
    if n <= most:
        return list(range(n))
    picked = sorted(set(_firsts(result)) | {n - 1})[:most]
    spread = [int(i) for i in np.linspace(0, n - 1, most).round()]
    while len(picked) < most:  # the evenly spread layer farthest from every one picked so far
        picked.append(max(spread, key=lambda i: min(abs(i - p) for p in picked)))
    return sorted(set(picked))


def _title(result, i: int, width_in: float) -> str:
    """Depth, name (broken to fit, mid-name if need be) and deviation of layer ``i``."""
    name = "\n".join(textwrap.wrap(f"{i + 1}. {result.layers[i]}", max(12, int(width_in * 72 / (0.6 * 7)))))
    return name + f"\ndeviation {result.deviation[i]:.1%}"


def plot_bias_grid(result, layers=None, kind: str = "rms") -> Figure:
    """The layers' bias maps, one small panel each (each divided by its own largest magnitude, so one colour
    bar serves all), with the layer's depth, name and deviation from translation invariance in its title.

    Args:
        result: a :class:`edgewise.probe.bias.SpatialBias` of a 2-D model.
        layers: names or depth indices to show (default :func:`grid_layers`).
        kind: ``rms`` (the position effect's magnitude; no sign can cancel) or ``signed`` (the channel-averaged
            mean map).
    """
    if result.ndim != 2:
        raise EdgewiseError("plot_bias_grid draws 2-D feature maps; for a 1-D model use plot_bias_profiles")
    if kind not in ("rms", "signed"):
        raise EdgewiseError(f"plot_bias_grid: kind must be 'rms' or 'signed', got {kind!r}")
    idx = grid_layers(result) if layers is None else [result.index(l) for l in layers]
    if not idx:
        raise EdgewiseError("plot_bias_grid: no layers to draw")
    panels = ([None] if kind == "rms" else []) + idx  # None: the inputs themselves, for reference
    cols = min(5, len(panels))
    rows = -(-len(panels) // cols)
    cmap, lo = ("viridis", 0.0) if kind == "rms" else ("PuOr_r", -1.0)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(2.1 * cols + 1.0, 2.3 * rows + 0.9)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        im = None
        for ax, i in zip(axes, panels):
            m = result.map(i, kind) if i is not None else np.asarray(result.input_rms)
            top = float(np.abs(m).max())
            im = ax.imshow(m / top if top > 0 else m, cmap=cmap, vmin=lo, vmax=1.0, interpolation="nearest")
            ax.set_title(_title(result, i, 2.0) if i is not None else
                         f"the inputs themselves\n(data, for reference)\ndeviation {result.input_deviation:.1%}",
                         fontsize=7)
            h, w = m.shape
            ax.set_xticks([0, w - 1])
            ax.set_yticks([0, h - 1])
            ax.tick_params(labelsize=7, length=2)
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        label = ("RMS over channels of the position effect\n(channel spreads) ÷ the layer's maximum" if kind == "rms"
                 else "channel-averaged mean map\n(channel spreads) ÷ the layer's largest |value|")
        fig.colorbar(im, ax=list(axes), shrink=0.6).set_label(label, fontsize=9)
        shown = ("every probed layer" if len(idx) == len(result.layers) else f"{len(idx)} of "
                 f"{len(result.layers)} layers (the first at each feature-map size, the rest spread in depth)"
                 if layers is None else f"{len(idx)} chosen layers")
        fig.suptitle(wrap(f"Spatial bias of {result.model}: mean activation at each position over {result.n} "
                          f"inputs ({result.data}), {shown}; axes are feature-map rows and columns",
                          2.1 * cols + 1.0, 10), fontsize=10)
        record_panels(fig, [(f"the {kind} bias map of {result.layers[i]}", False) for i in idx], layout="grid")
    return fig


def _firsts(result) -> list[int]:
    """The first layer at each feature-map size (where strides, and uneven padding, act)."""
    shapes = [tuple(s) for s in np.asarray(result.shapes)]
    return [i for i in range(len(shapes)) if i == 0 or shapes[i] != shapes[i - 1]]


def profile_layers(result, most: int = 4) -> list[int]:
    """The layers a profile figure shows by default: of the first layers at each feature-map size (every layer
    when there is one size), the ``most`` whose outermost rows differ most between opposite sides, in depth
    order."""
    s = np.asarray(result.sides, dtype=np.float64).reshape(len(result.layers), result.ndim, 2)
    gap = np.abs(s[..., 1] - s[..., 0]).max(1)
    firsts = _firsts(result)
    pool = firsts if len(firsts) > 1 else list(range(len(result.layers)))
    return sorted(sorted(pool, key=lambda i: -gap[i])[:most])


def plot_bias_profiles(result, layers=None, reach: int = 12) -> Figure:
    """Each border row's (column's) offset from the interior against its distance from the border, opposite
    sides overlaid, with the artefact-line threshold: the uneven padding of a stride-2 layer shows as one side
    standing above the other.

    Args:
        result: a :class:`edgewise.probe.bias.SpatialBias`.
        layers: names or depth indices (default :func:`profile_layers`: the four most asymmetric).
        reach: how many rows from each border to draw.
    """
    from ..probe.bias import LINE_NAME, SIDES

    idx = profile_layers(result) if layers is None else [result.index(l) for l in layers]
    if not idx:
        raise EdgewiseError("plot_bias_profiles: no layers to draw")
    nd = result.ndim
    with matplotlib.rc_context(STYLE):
        fig = new_figure(4.6 * nd + 0.4, 2.5 * len(idx) + 0.8)
        axes = fig.subplots(len(idx), nd, squeeze=False)
        for r, i in enumerate(idx):
            for a in range(nd):
                ax, prof = axes[r, a], result.profile(i, a)
                start, end = SIDES[nd][a]
                k = min(reach, (len(prof) + 1) // 2)
                d = np.arange(k)
                ax.plot(d, prof[:k], "-o", color=BLUE, markersize=4, label=f"{start} (from {start} border)")
                ax.plot(d, prof[::-1][:k], "--s", color=VERMILION, markersize=4, label=f"{end} (from {end} border)")
                thr = result.line_factor * result.interior[i, a]
                if np.isfinite(thr):
                    ax.axhline(thr, color=GREY, linestyle=":", linewidth=1.2,
                               label=f"line threshold ({result.line_factor:g}× interior RMS)")
                ax.set_xlabel(f"distance from the border ({LINE_NAME[nd][a]}s)")
                ax.set_ylabel("offset (channel spreads)")
                shape = "×".join(map(str, result.shapes[i]))
                ax.set_title(wrap(f"{i + 1}. {result.layers[i]} ({shape}): {start} vs {end}", 4.4, 10), fontsize=10)
                ax.set_ylim(bottom=0)
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if r == 0:
                    ax.legend(fontsize=8, framealpha=0.9, edgecolor="none")  # lines pass behind it
        chosen = "" if layers is not None else (" (of the first layers at each feature-map size, those" if
                                                 len(_firsts(result)) > 1 else " (the layers") + \
            " with the largest gap between opposite sides)"
        fig.suptitle(wrap(f"Border rows of {result.model}: RMS over channels of each row's mean offset from the "
                          f"interior rows, in channel spreads{chosen}", 4.6 * nd + 0.4, 10), fontsize=10)
        record_panels(fig, [(f"{SIDES[nd][a][0]} vs {SIDES[nd][a][1]} offsets of {result.layers[i]}", False)
                            for i in idx for a in range(nd)], layout="grid")
    return fig


def _edges(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Cell edges halfway between sorted centres, clipped to [lo, hi] at the ends."""
    mid = (centres[1:] + centres[:-1]) / 2
    if len(centres) == 1:
        return np.array([lo, hi])
    return np.concatenate([[max(lo, centres[0] - (mid[0] - centres[0]))], mid,
                           [min(hi, centres[-1] + (centres[-1] - mid[-1]))]])


def plot_blind_spots(result) -> Figure:
    """The stimulus's effect on the target at each position (relative to the centre's), with the suppressed
    positions outlined and the stimulus drawn to scale at the centre; beside it, whether top-1 stays the
    target class (classifiers).

    Args:
        result: a :class:`edgewise.probe.bias.BlindSpots`.
    """
    half = result.size / 2
    centres = [np.asarray(g, dtype=np.float64) + half for g in result._grids()]
    effect = np.asarray(result.effect, dtype=np.float64)
    has_top1 = np.asarray(result.correct).size > 0
    what = f"effect on {result.target_text} ÷ the centre's"
    with matplotlib.rc_context(STYLE):
        fig = new_figure(11.5 if has_top1 else 6.4, 5.0 if result.ndim == 2 else 4.2)
        axes = fig.subplots(1, 2 if has_top1 else 1, squeeze=False)[0]
        drawn = []
        if result.ndim == 2:
            h, w = result.input_shape[1:]
            ey, ex = _edges(centres[0], 0, h), _edges(centres[1], 0, w)
            ax = axes[0]
            finite = effect[np.isfinite(effect)]
            top = max(1.0, float(finite.max())) if finite.size else 1.0
            mesh = ax.pcolormesh(ex, ey, effect, cmap="cividis", vmin=min(0.0, float(finite.min()) if finite.size
                                                                           else 0.0), vmax=top)
            fig.colorbar(mesh, ax=ax, shrink=0.9).set_label("effect ÷ the centre's effect")
            handles = [Patch(fill=False, edgecolor="#444444", linestyle="--",
                             label=f"the stimulus at the centre ({result.size}×{result.size} px)"),
                       Patch(color=UNREACHED, label="no stimulus centre there (it stays inside the input)")]
            if np.any(result.suppressed):
                ax.contour(centres[1], centres[0], effect, levels=[result.suppress_fraction], colors=[VERMILION],
                           linewidths=1.6)
                handles.append(Patch(fill=False, edgecolor=VERMILION, label=f"effect = {result.suppress_fraction:g}"
                                     " (blind spots inside)"))
            elif result.defined:
                handles.append(Patch(fill=False, edgecolor="none", label=f"no blind spot: effect ≥ "
                                     f"{result.suppress_fraction:g} everywhere"))
            cy, cx = (centres[0][result.centre[0]], centres[1][result.centre[1]])
            ax.add_patch(Rectangle((cx - half, cy - half), result.size, result.size, fill=False, edgecolor="white",
                                   linewidth=1.5, linestyle="--"))
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False,
                      ncol=1)
            _frame(ax, h, w)
            ax.set_title(wrap(f"{STIMULUS_TEXT.get(result.stimulus, result.stimulus)} on a {result.background} "
                              f"background: {what}", 5.2, 11), fontsize=11)
            drawn.append((f"the {what} at each stimulus position", False))
            if has_top1:
                ax = axes[1]
                ok = np.asarray(result.correct, dtype=float)
                ax.pcolormesh(ex, ey, ok, cmap=matplotlib.colors.ListedColormap([ORANGE, BLUE]), vmin=0, vmax=1)
                _frame(ax, h, w)
                ax.legend(handles=[Patch(color=BLUE, label=f"top-1 = class {result.target['class']}"),
                                   Patch(color=ORANGE, label="another class")], loc="upper center",
                          bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False, ncol=2)
                ax.set_title(f"top-1 with the stimulus there ({int(ok.sum())} of {ok.size} kept)", fontsize=11)
                drawn.append(("whether top-1 is the target class at each stimulus position", False))
        else:
            ax = axes[0]
            x, length = centres[0], result.input_shape[1]
            ax.plot(x, effect, "-o", color=BLUE, linewidth=1.4, markersize=3, label=what)
            ax.axhline(result.suppress_fraction, color=VERMILION, linestyle=":",
                       label=f"blind-spot threshold ({result.suppress_fraction:g})")
            low = float(np.nanmin(effect)) if np.isfinite(effect).any() else 0.0
            y0 = min(0.0, low) - 0.12
            ax.hlines(y0, x[result.centre[0]] - half, x[result.centre[0]] + half, color=GREY, linewidth=5,
                      label=f"the stimulus at the centre ({result.size} samples)")
            for a, b in ((0, x[0]), (x[-1], length)):
                ax.axvspan(a, b, color=UNREACHED, linewidth=0)
            ax.set_xlim(0, length)
            ax.set_xlabel("stimulus centre (sample)")
            ax.set_ylabel(wrap(what, 3.0, 11))
            ax.legend(fontsize=8, frameon=False, loc="best")
            ax.text(1.0, -0.2, "grey: no stimulus centre there", transform=ax.transAxes, ha="right", fontsize=8,
                    color="#555555")
            ax.set_title(f"{STIMULUS_TEXT.get(result.stimulus, result.stimulus)} on a {result.background} "
                         "background", fontsize=11)
            drawn.append((f"the {what} at each stimulus position", False))
            if has_top1:
                ax = axes[1]
                ok = np.asarray(result.correct, dtype=float)
                ax.step(x, ok, where="mid", color=GREY, linewidth=1)
                ax.plot(x, ok, "o", color=BLUE, markersize=3)
                for a, b in ((0, x[0]), (x[-1], length)):
                    ax.axvspan(a, b, color=UNREACHED, linewidth=0)
                ax.set_ylim(-0.2, 1.2)
                ax.set_yticks([0, 1], ["another class", f"class {result.target['class']}"])
                ax.set_xlim(0, result.input_shape[1])
                ax.set_xlabel("stimulus centre (sample)")
                ax.set_title(f"top-1 ({int(ok.sum())} of {ok.size} kept)", fontsize=11)
                drawn.append(("whether top-1 is the target class at each stimulus position", False))
        fig.suptitle(f"Blind spots of {result.model}", fontsize=12)
        record_panels(fig, drawn)
    return fig


def _frame(ax, h: int, w: int) -> None:
    """Image axes in input pixels (row 0 at the top), the input's outline drawn, grey where no centre lies."""
    ax.set_facecolor(UNREACHED)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("stimulus centre x (px)")
    ax.set_ylabel("stimulus centre y (px)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)

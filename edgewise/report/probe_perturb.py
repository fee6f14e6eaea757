"""Figures of the perturbation probe (:mod:`edgewise.probe.perturb`): the map trained beside at initialisation,
the centre/edge/corner bars with intervals, the 1-D profile, and the border-digits ratio explained."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from ..probe.perturb import REGIONS
from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, VERMILION, needs_log, new_figure, wrap

__all__ = ["plot_perturb_map", "plot_regions", "plot_profile", "plot_explanation"]

#: outline colour per region on the maps (white reads on viridis' dark and light ends alike with a dark twin)
REGION_COLOURS = {"center": "#ffffff", "edge": ORANGE, "corner": VERMILION}
WHO = {"trained": "trained weights", "init": "at initialisation"}


def _with_init(result) -> bool:
    """Whether the initialisation baseline is drawn: there is one and it moves more than float32 rounding."""
    return bool(result.n_inits) and result.resolved("init")


def _init_note(fig: Figure, result, width: float) -> None:
    """A footnote saying why the initialisation baseline is not drawn (when it is not)."""
    if result.n_inits and not result.resolved("init"):
        fig.supxlabel(wrap(f"Not drawn: at initialisation ({result.n_inits} seeds) the output moves by only "
                           f"{result.relative('init'):.2g} of its norm, within float32 rounding.", width, 9),
                      fontsize=9, color="#555555")


def _what(result) -> str:
    return "‖Δoutput‖₂ / ε" if result.target == "output" else "|Δ top-1 logit| / ε"


def _edges(axis: np.ndarray) -> np.ndarray:
    """Cell edges around grid positions (midpoints; half a pixel beyond the ends)."""
    a = np.asarray(axis, dtype=float)
    mid = (a[1:] + a[:-1]) / 2
    return np.concatenate([[a[0] - 0.5], mid, [a[-1] + 0.5]])


def _outline(ax, mask: np.ndarray, ey: np.ndarray, ex: np.ndarray, colour: str, label: str) -> None:
    """Draw the boundary of the cells where ``mask`` is true."""
    segs = []
    h, w = mask.shape
    pad = np.pad(mask, 1)
    for i in range(h):
        for j in range(w):
            if not mask[i, j]:
                continue
            if not pad[i, j + 1]:
                segs.append([(ex[j], ey[i]), (ex[j + 1], ey[i])])
            if not pad[i + 2, j + 1]:
                segs.append([(ex[j], ey[i + 1]), (ex[j + 1], ey[i + 1])])
            if not pad[i + 1, j]:
                segs.append([(ex[j], ey[i]), (ex[j], ey[i + 1])])
            if not pad[i + 1, j + 2]:
                segs.append([(ex[j + 1], ey[i]), (ex[j + 1], ey[i + 1])])
    ax.add_collection(LineCollection(segs, colors=colour, linewidths=2.0, label=label))


def _norm(maps: list[np.ndarray]):
    """A shared colour scale: logarithmic when the positive values span over two decades."""
    vals = np.concatenate([m.ravel() for m in maps])
    pos = vals[vals > 0]
    if pos.size and needs_log(pos):
        return LogNorm(vmin=pos.min(), vmax=pos.max()), True
    return Normalize(vmin=0, vmax=float(vals.max()) or 1.0), False


def _relative(m: np.ndarray) -> np.ndarray:
    """``m`` over its mean over positions (the contrast, whatever the network's output scale)."""
    mean = float(m.mean())
    return m / mean if mean > 0 else m


def mean_band(ax, pos: np.ndarray, per: np.ndarray, colour: str, label: str) -> np.ndarray:
    """Draw the mean over ``per``'s first axis along ``pos`` with a ± 1 standard-error band (kept above 1e-3 of
    the mean, so a log axis never meets zero); returns the mean."""
    m = per.mean(axis=0)
    se = per.std(axis=0, ddof=1) / math.sqrt(len(per)) if len(per) > 1 else np.zeros_like(m)
    ax.plot(pos, m, color=colour, linewidth=1.6, label=label)
    ax.fill_between(pos, np.maximum(m - se, m * 1e-3), m + se, color=colour, alpha=0.25, linewidth=0)
    return m


def plot_perturb_map(result, patch: int | None = None, title: str | None = None) -> Figure:
    """The 2-D perturbation map, trained beside at initialisation, each divided by its own mean over positions
    and drawn on one colour scale (the output scales of trained and random weights differ by orders of
    magnitude; the contrast is what compares), regions outlined (a 1-D result is drawn by :func:`plot_profile`)."""
    if result.ndim == 1:
        return plot_profile(result, patch=patch, title=title)
    k = patch if patch is not None else result.patches[0]
    panels = [("trained", result.map("trained", k))] + ([("init", result.map("init", k))] if _with_init(result) else [])
    scale = {w: float(m.mean()) for w, m in panels}
    panels = [(w, _relative(m)) for w, m in panels]
    norm, log = _norm([m for _, m in panels])
    ey, ex = (_edges(np.array(a)) for a in result.axes)
    with matplotlib.rc_context(STYLE):
        width = max(7.0, 4.4 * len(panels) + 1.0)
        fig = new_figure(width, 4.8)
        axs = fig.subplots(1, len(panels), squeeze=False)[0]
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9", under="#d9d9d9")
        for ax, (which, m) in zip(axs, panels):
            shown = np.ma.masked_where(m <= 0, m) if log else m
            im = ax.pcolormesh(ex, ey, shown, cmap=cmap, norm=norm)
            for name, code in REGIONS.items():
                if (result.region == code).any():
                    _outline(ax, result.region == code, ey, ex, REGION_COLOURS[name],
                             {"center": "centre"}.get(name, name + ("s" if name != "center" else "")))
            r = result.ratios(which, k)["center/corner"]
            extra = f", {result.n_inits} seeds" if which == "init" else ""
            ax.set_title(f"{WHO[which]}{extra}: centre/corner {_fmt(r)}\n(mean over positions {scale[which]:.3g})")
            ax.set_xlim(ex[0], ex[-1])
            ax.set_ylim(ey[-1], ey[0])
            ax.set_aspect("equal")
            ax.set_xlabel("input column x (px)")
            ax.set_ylabel("input row y (px)")
        fig.colorbar(im, ax=list(axs), shrink=0.85).set_label(
            f"{_what(result)} ÷ its mean over positions" + (" (log scale)" if log else ""))
        axs[-1].legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=3, fontsize=9, frameon=True,
                       facecolor="#9a9a9a", edgecolor="none", title="regions (outlined)", title_fontsize=9)
        side = f"a {k}×{k} patch" if k > 1 else "one pixel"
        fig.suptitle(wrap(title or f"{result.model}: how far the output moves when {side} moves by "
                          f"±{result.eps:.2g} (mean over {result.trained.shape[1]} inputs)", width, 12), fontsize=12)
        _init_note(fig, result, width)
        if log and any((m <= 0).any() for _, m in panels):
            fig.text(0.01, 0.01, "grey: the output does not move (exactly 0)", fontsize=9, color="#555555")
    return fig


def _fmt(r: float) -> str:
    return ("∞" if r > 0 else "undefined") if not math.isfinite(r) else f"{r:.3g}×"


def plot_regions(result, title: str | None = None) -> Figure:
    """Centre, edge(s) and corner means per patch side, trained beside at initialisation, each divided by its map's
    mean over positions (their output scales differ by orders of magnitude), with 95 % bootstrap intervals over
    the inputs."""
    names = [n for n in REGIONS if (result.region == REGIONS[n]).any()]
    labels = {"center": "centre", "edge": "edges" if result.ndim == 2 else "ends", "corner": "corners"}
    whos = ["trained"] + (["init"] if _with_init(result) else [])
    colours = {"trained": BLUE, "init": GREY}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.4 * len(result.patches) + 0.6, 3.8)
        axs = fig.subplots(1, len(result.patches), squeeze=False, sharey=True)[0]
        for ax, k in zip(axs, result.patches):
            width = 0.8 / len(whos)
            for j, who in enumerate(whos):
                means, ci = result.means(who, k), result.interval(who, k)
                unit = float(result.map(who, k).mean()) or 1.0
                x = np.arange(len(names)) + (j - (len(whos) - 1) / 2) * width
                y = np.array([means[n] for n in names]) / unit
                lo = y - np.array([ci[n][0] for n in names]) / unit
                hi = np.array([ci[n][1] for n in names]) / unit - y
                ax.bar(x, y, width, color=colours[who], label=WHO[who] + (f" ({result.n_inits} seeds)"
                                                                            if who == "init" else ""))
                ax.errorbar(x, y, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], fmt="none", ecolor="black",
                            capsize=3, linewidth=1)
            ax.set_xticks(np.arange(len(names)), [labels[n] for n in names])
            ax.set_title(f"{k}×{k} patch" if result.ndim == 2 else f"{k}-sample patch")
            ax.set_xlabel("region")
        axs[0].set_ylabel(f"{_what(result)}\n÷ the mean over all positions")
        for ax in axs:
            ax.axhline(1, color="black", linewidth=0.8, linestyle=":")
        axs[-1].legend(fontsize=9, frameon=False)
        fig.suptitle(wrap(title or f"{result.model}: output change by region (95 % bootstrap interval over "
                          f"{result.trained.shape[1]} inputs)", 3.4 * len(result.patches) + 0.6, 12), fontsize=12)
        _init_note(fig, result, 3.4 * len(result.patches) + 0.6)
    return fig


def plot_profile(result, patch: int | None = None, signal: tuple[int, int] | None = None,
                 title: str | None = None) -> Figure:
    """The 1-D map along the sequence, trained and at initialisation (±1 standard error over inputs), the ends
    and the centre shaded; ``signal`` = (first sample, length) marks where the probe's signals sit."""
    if result.ndim != 1:
        raise ValueError("plot_profile draws 1-D results; use plot_perturb_map for 2-D ones")
    ks = [patch] if patch is not None else result.patches
    pos = np.array(result.axes[0])
    with matplotlib.rc_context(STYLE):
        fig = new_figure(7.2, 2.8 * len(ks) + 1.3)
        axs = fig.subplots(len(ks), 1, squeeze=False, sharex=True)[:, 0]
        for ax, k in zip(axs, ks):
            p = result.patches.index(k)
            curves = [("trained", result.trained[p], BLUE)]
            if _with_init(result):
                curves.append(("init", result.init[p].mean(axis=0), ORANGE))
            for who, per, colour in curves:
                mean_band(ax, pos, per, colour, WHO[who])
            if needs_log(*[c[1].mean(axis=0) for c in curves]):
                ax.set_yscale("log")
            for name, code, colour in (("ends", REGIONS["edge"], GREY), ("centre", REGIONS["center"], GREEN)):
                for x in pos[result.region == code]:
                    ax.axvspan(x - 0.5, x + 0.5, color=colour, alpha=0.12, linewidth=0)
            if signal is not None:
                for x in (signal[0] - 0.5, signal[0] + signal[1] - 0.5):
                    ax.axvline(x, color="black", linestyle="--", linewidth=1)
            ax.set_ylabel(f"{_what(result)}")
            r = result.ratios("trained", k)["center/edge"]
            ax.set_title(f"{k}-sample patch: trained centre/ends {_fmt(r)}" + (
                f", at initialisation {_fmt(result.ratios('init', k)['center/edge'])}" if _with_init(result) else ""))
        axs[-1].set_xlabel("input position (sample)")
        handles, labels = axs[0].get_legend_handles_labels()
        from matplotlib.patches import Patch

        handles += [Patch(color=GREY, alpha=0.3), Patch(color=GREEN, alpha=0.3)]
        labels += ["ends (region)", "centre (region)"]
        if signal is not None:
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="black", linestyle="--"))
            labels.append("where the probe signals begin and end")
        fig.legend(handles, labels, loc="outside lower center", fontsize=9, frameon=False, ncol=3)
        fig.suptitle(wrap(title or f"{result.model}: output change along the sequence (mean over "
                          f"{result.trained.shape[1]} inputs ± 1 s.e.)", 7.2, 12), fontsize=12)
        _init_note(fig, result, 7.2)
    return fig


def plot_explanation(expl, title: str | None = None) -> Figure:
    """The border-digits centre/corner ratios (centre pixel over the corner pixels) per weights and probe:
    squared gradient beside the ±ε perturbation, log scale (∞ drawn as an arrow at the top)."""
    from ..probe.perturb import PROBES, WEIGHTS

    probes = list(PROBES)
    colours = {"center": BLUE, "everywhere": GREEN, "init": GREY}
    names = {"center": "trained at the centre", "everywhere": "trained everywhere",
             "init": f"at initialisation ({expl.n_inits} seeds)"}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10.0, 4.2)
        axs = fig.subplots(1, 2, sharey=True)
        finite = [r[k] for r in expl.rows for k in ("grad_anchor", "pert_anchor") if r[k] is not None]
        top = max(finite) * 8
        for ax, key, what in ((axs[0], "grad_anchor", "squared input gradient"),
                              (axs[1], "pert_anchor", "±ε perturbation")):
            width = 0.8 / len(WEIGHTS)
            for j, w in enumerate(WEIGHTS):
                x = np.arange(len(probes)) + (j - 1) * width
                vals = [expl.row(w, p)[key] for p in probes]
                y = [v if v is not None else top for v in vals]
                bars = ax.bar(x, y, width, color=colours[w], label=names[w])
                for b, v in zip(bars, vals):
                    if v is None:
                        b.set_hatch("//")
                        ax.text(b.get_x() + b.get_width() / 2, top, "∞", ha="center", va="bottom", fontsize=10)
            ax.axhline(1, color="black", linewidth=0.8)
            ref = expl.stats.get("report_init", {}).get("ratio")
            if key == "grad_anchor" and ref is not None:
                line = ax.axhline(ref, color=VERMILION, linewidth=1.2, linestyle="--")
                ax.legend([line], [f"the report's baseline: at initialisation,\non noise, "
                                   f"{expl.stats['report_init']['n_inits']} draws ({ref:.3g}×)"],
                          fontsize=9, frameon=False, loc="upper right")
            ax.set_yscale("log")
            ax.set_ylim(top=top * 40)
            ax.set_xticks(np.arange(len(probes)), ["digits at\ncentre", "digits\nuniform", "report's\nmix",
                                                   "N(0, 1)\nnoise"])
            ax.set_xlabel("probe inputs")
            ax.set_title(what)
        axs[0].set_ylabel("centre pixel ÷ mean of the 4 corner pixels")
        axs[1].legend(fontsize=9, frameon=False, loc="upper right")
        fig.suptitle(wrap(title or "border-digits: the centre/corner sensitivity ratio by weights and probe "
                          "(hatched ∞: every corner gradient exactly 0)", 10, 12), fontsize=12)
    return fig

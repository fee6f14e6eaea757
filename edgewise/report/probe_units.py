"""Figures of the padding-aware-unit probe: units per layer, the units' kernels and mean maps, the ablation."""

from __future__ import annotations

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.figure import Figure

from ..errors import EdgewiseError
from .figures import BLUE, GREY, ORANGE, STYLE, new_figure, record_panels, wrap

__all__ = ["plot_units_per_layer", "plot_unit_gallery", "plot_ablation"]

#: signed weights: a perceptually uniform, colour-blind-safe map with limits symmetric about zero (each tap is
#: also written on the cell, so the sign never rests on the colour alone)
SIGNED = "cividis"


def _short(layer: str) -> str:
    """A layer name short enough for a tick label (``_blocks.3._depthwise_conv.conv`` → ``blocks.3 dw``)."""
    s = layer.replace("._depthwise_conv.conv", " dw").replace("._depthwise_conv", " dw").replace("_conv_stem.conv",
                                                                                                 "stem")
    return s.lstrip("_")


def plot_units_per_layer(result) -> Figure:
    """Bars per layer (depth order) of the padding-aware units: their count (top) and their share of the
    layer's filters (bottom). Layers that read no padding are left out and named in the caption."""
    rows = result.per_layer()
    drawn = [r for r in rows if r["status"] == "analysed"]
    if not drawn:
        raise EdgewiseError(f"plot_units_per_layer: no layer of {result.name} reads padding; nothing to draw")
    x = np.arange(len(drawn))
    counts = np.array([r["units"] for r in drawn])
    share = 100 * counts / np.array([r["filters"] for r in drawn])
    s = result.summary
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(6.0, 0.42 * len(drawn) + 2.5), 5.6)
        top, bottom = fig.subplots(2, 1, sharex=True)
        bars = top.bar(x, counts, color=BLUE)
        top.bar_label(bars, [f"{k}/{r['filters']}" for k, r in zip(counts, drawn)], fontsize=8, padding=2)
        top.set_ylabel("padding-aware units")
        top.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        top.margins(y=0.15)
        noun = "padding-aware unit" if s["units"] == 1 else "padding-aware units"
        fig.suptitle(wrap(f"{result.name}: {s['units']} {noun} of {s['filters']} filters "
                          f"({100 * (s['fraction'] or 0):.1f} %), per layer", fig.get_figwidth(), 12), fontsize=12)
        bottom.bar(x, share, color=ORANGE)
        bottom.set_ylabel("share of the layer's\nfilters (%)")
        bottom.set_xticks(x, [_short(r["layer"]) for r in drawn], rotation=60, ha="right")
        left = len(rows) - len(drawn)
        layers = "1 layer that reads" if left == 1 else f"{left} layers that read"
        bottom.set_xlabel(wrap("layer, in depth order" + (f" ({layers} no padding not drawn; bar labels: "
                                                          "units/filters)" if left else " (bar labels: units/filters)"),
                               fig.get_figwidth(), 11))
        for ax in (top, bottom):
            ax.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
            ax.set_axisbelow(True)
        record_panels(fig, [("padding-aware units per layer", False),
                            ("their share of the layer's filters", False)], layout="column",
                      omitted=[f"{layers} no padding"] if left else [])
    return fig


def _kernel_image(kernel: np.ndarray) -> np.ndarray:
    """The filter's response to a constant input: its weights summed over input channels (2-D: rows × cols;
    1-D: one row)."""
    k = kernel.sum(0)
    return k[None, :] if k.ndim == 1 else k


def plot_unit_gallery(result, top: int = 8) -> Figure:
    """For the ``top`` strongest padding-aware units: the kernel (weights summed over input channels) and the
    mean activation map over the inputs, side by side, titled with layer, channel and effect size."""
    k = min(int(top), len(result.shown))
    if k == 0:
        raise EdgewiseError(f"plot_unit_gallery: {result.name} has no padding-aware unit to show")
    cols = 2 if k > 1 else 1
    rows = -(-k // cols)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(6.4 * cols if cols > 1 else 7.6, 2.7 * rows + 0.9)
        grid = fig.subplots(rows, 2 * cols, squeeze=False, width_ratios=[1, 1.5] * cols)
        for j in range(rows * cols):
            kax, max_ = grid[j // cols, 2 * (j % cols)], grid[j // cols, 2 * (j % cols) + 1]
            if j >= k:
                kax.set_axis_off()
                max_.set_axis_off()
                continue
            _unit_panels(fig, kax, max_, result, j)
        which = "the strongest padding-aware unit" if k == 1 else f"the {k} strongest padding-aware units"
        letters = ", ".join(f"{side[0].upper()} = {side}" for side in result.sides)
        fig.suptitle(wrap(f"{result.name}: {which} — kernel (summed over input "
                          f"channels) | mean activation over {result.n} inputs; marks: the sides it passes on "
                          f"({letters})", fig.get_figwidth(), 12),
                     fontsize=12)
        record_panels(fig, [(f"kernel and mean map of the {k} strongest padding-aware units", False)])
    return fig


def _unit_panels(fig: Figure, kax, max_, result, j: int) -> None:
    u = result.unit(int(result.shown[j]))
    w = _kernel_image(result.kernel(j))
    lim = float(np.abs(w).max()) or 1.0
    im = kax.imshow(w, cmap=SIGNED, vmin=-lim, vmax=lim, interpolation="nearest", aspect="auto")
    fig.colorbar(im, ax=kax, shrink=0.8).set_label("weight")
    kax.set_title(f"{_short(u['layer'])} ch {u['channel']}", fontsize=10)
    if w.size <= 49:
        for (r, c), v in np.ndenumerate(w):
            kax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=7,
                     color="white" if v < 0 else "black")
    kax.set_xticks([])
    kax.set_yticks([])
    kax.set_xlabel("kernel column", fontsize=9)
    kax.set_ylabel("kernel row" if w.shape[0] > 1 else "", fontsize=9)
    m = result.mean_map(j)
    m = m[None, :] if m.ndim == 1 else m
    im = max_.imshow(m, cmap="cividis", interpolation="nearest", aspect="auto")
    fig.colorbar(im, ax=max_, shrink=0.8).set_label("mean activation")
    marks = "".join(side[0].upper() for side in u["sides"])
    max_.set_title(f"effect {u['effect']:+.3g} σ at the {u['side']}; marks {marks}", fontsize=9)
    for axis in (max_.xaxis, max_.yaxis):
        axis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    max_.set_xlabel("column", fontsize=9)
    max_.set_ylabel("row" if m.shape[0] > 1 else "", fontsize=9)
    max_.tick_params(labelsize=8)


def _count(per_layer: dict, ablation) -> str:
    """`` (N)`` or, when some run after the measured layer, `` (N; k before <at>)``."""
    total = sum(per_layer.values())
    before = sum(v for k, v in per_layer.items() if k in ablation.upstream)
    return f" ({total})" if before == total else f" ({total}; {before} before {ablation.at})"


def plot_ablation(ablation) -> Figure:
    """The change of layer ``at``'s map against the distance from the border, when the padding-aware units are
    silenced and when as many random other units are (means over inputs with 95 % intervals)."""
    d = ablation.distance
    with matplotlib.rc_context(STYLE):
        fig = new_figure(6.8, 4.4)
        ax = fig.subplots()
        for which, colour, label in (("pan", BLUE, "padding-aware units" + _count(ablation.silenced, ablation)),
                                     ("control", GREY, "random other units" + _count(ablation.controls, ablation))):
            mean, half = ablation.profile(which)
            ax.plot(d, 100 * mean, "o-", color=colour, label=label)
            ax.fill_between(d, 100 * (mean - half), 100 * (mean + half), color=colour, alpha=0.25, linewidth=0)
        ax.set_xlabel(f"distance from the border (positions of {ablation.at}'s map)")
        ax.set_ylabel("mean |change| of the map\n(% of its mean |activation|)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        s = ablation.summary
        extra = (f"; top-1 unchanged for {100 * s['pan_top1_agreement']:.0f} % (control "
                 f"{100 * s['control_top1_agreement']:.0f} %)"
                 if ablation.classifier else "")
        ax.set_title(wrap(f"{ablation.name}: silencing units ({ablation.how}), {ablation.n} inputs{extra}",
                          6.8, 12))
        ax.legend(title="silenced (shade: 95 % interval)", fontsize=9, title_fontsize=9)
        ax.grid(True, color="#e5e5e5", linewidth=0.8)
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        record_panels(fig, [(f"change of {ablation.at}'s map against the distance from the border", False)])
    return fig

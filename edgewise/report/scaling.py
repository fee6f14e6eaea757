"""Figures of depth scaling: the gap after each layer of a model, and exact ratios versus depth with their laws.

One description of each padding's law (:func:`padding_law`) feeds the legend (:func:`law_label`), the caption
(:func:`scaling_caption`) and the table (:func:`scaling_table`), so the three cannot disagree.
"""

from __future__ import annotations

import math
import re
import textwrap

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullFormatter, StrMethodFormatter

from ..facts import and_list
from .figures import BLUE, GREEN, GREY, ORANGE, STYLE, VERMILION, new_figure
from .tables import Rows, ratio_text

__all__ = ["plot_scaling", "plot_layers", "law_text", "padding_law", "law_label", "scaling_caption",
           "scaling_table", "step_label"]

#: Okabe–Ito colours plus black: one per padding
COLOURS = (VERMILION, BLUE, GREEN, ORANGE, "#CC79A7", "#56B4E9", "#000000", GREY)
#: one marker shape per padding, so series that coincide (every uniform padding sits at 1) stay visible
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: the theory's kind names (edgewise.theory.DepthLaw.kind) → the kinds this module describes
_THEORY_KINDS = {"exponential": "exponential", "sqrt-then-saturating": "sqrt", "bounded": "bounded"}


#: a fitted exponential or power law below this R² (in log space) is no law: "no simple law (best fit: …)"
MIN_FIT_R2 = 0.9


def law_text(law: dict | None, arrow: bool = True) -> str:
    """A fitted law (``Scaling.laws[padding]``) in words: ``"exponential, ×2.98 per layer (R² 1.000)"``, ``"bounded
    → 2 (×1.000 from L = 12 to 64)"`` (a bounded fit's tail is about flat, so its R² is no measure of it; with
    ``arrow=False`` no "→ 2": the last ratio is not a limit, for a text that gives theory's), or
    ``"no simple law (best fit: exponential, ×0.995 per layer, R² 0.187)"`` below :data:`MIN_FIT_R2`."""
    if not law:
        return "too few points to fit"
    kind, p, r2 = law["kind"], law["params"], law["r2"]
    if kind == "bounded" and "tail_change" in p:
        first, last = p["tail_depths"]
        towards = f" → {p['limit']:.3g}" if arrow else ""
        return f"bounded{towards} (×{p['tail_change']:.3f} from L = {first} to {last})"
    core = {"exponential": lambda: f"exponential, ×{p['base']:.3g} per layer",
            "power": lambda: f"power, exponent {p['exponent']:.2f}",
            "bounded": lambda: f"bounded → {p['limit']:.3g}"}.get(kind)
    if core is None:
        return "ratio ≈ 1 at every depth"
    if kind in ("exponential", "power") and r2 < MIN_FIT_R2:  # conv2 'same' on 64 samples: up, flat, then down
        return f"no simple law (best fit: {core()}, R² {r2:.3f})"
    return f"{core()} (R² {r2:.3f})"


def padding_law(result, padding: str) -> dict:
    """How one padding's ratio behaves with depth, decided once for the legend, caption and table.

    Returns:
        ``{"kind", "source", "params", "r2"}``: ``kind`` is ``uniform`` (the exact counts are equal at every
        position and depth), a closed form's ``exponential``/``sqrt``/``bounded`` (``params`` from
        ``Scaling.theory_params``), a fit's ``exponential``/``decay`` (base < 1)/``power``/``bounded`` where
        theory has no closed form, ``irregular`` (the best of them fits below :data:`MIN_FIT_R2`), ``flat`` (fitted
        ratio ≈ 1 but the counts differ), or ``none`` (too few depths to fit);
        ``source`` is ``"exact counts"``, ``"closed form"``, ``"fit"`` or ``""``.
    """
    if result.uniform.get(padding):
        return {"kind": "uniform", "source": "exact counts", "params": {}, "r2": None}
    kind = _THEORY_KINDS.get(result.theory_kind.get(padding))
    if kind:  # a theory of "uniform" that the counts contradict falls through to the fit
        return {"kind": kind, "source": "closed form", "params": result.theory_params.get(padding, {}), "r2": None}
    fit = result.laws.get(padding)
    if not fit:
        return {"kind": "none", "source": "", "params": {}, "r2": None}
    kind = {"uniform": "flat"}.get(fit["kind"], fit["kind"])
    if kind == "exponential" and fit["params"]["base"] < 1:
        kind = "decay"
    if kind in ("exponential", "decay", "power") and fit["r2"] < MIN_FIT_R2:
        kind = "irregular"
    return {"kind": kind, "source": "fit", "params": fit["params"], "r2": fit["r2"]}


def _growth(result) -> str:
    """The closed-form √L law in words for this input: each axis grows like √L, so a 2-D corner like L."""
    ndim = len(result.input_shape) - 1
    return "√L" if ndim == 1 else "L (√L per axis)" if ndim == 2 else f"L^{ndim / 2:g} (√L per axis)"


def law_label(result, padding: str, limit: bool = True) -> str:
    """The legend's words for one padding's law, e.g. ``"exponential, ×3 per layer (= 3ᴸ for L ≤ 15)"``,
    ``"≈√L, saturating at 20.7"``, ``"bounded → 2"``, ``"uniform (max = min)"``,
    ``"fit: power, exponent -0.12 (R² 0.971)"`` or ``"fit: bounded (×0.983 from L = 33 to 64); theory: → 1.89"``
    (a bounded fit where theory gives the limit; ``limit=False``: without it, for a text that gives it already)."""
    law = padding_law(result, padding)
    kind, p = law["kind"], law["params"]
    if kind == "uniform":
        return "uniform (max = min)"
    if law["source"] == "closed form":
        if kind == "exponential":
            base = f"{p['base']:.4g}"
            exact = f" (= {base}ᴸ for L ≤ {p['exact_depth']})" if p.get("exact_depth", 0) >= 1 else ""
            return f"exponential, ×{base} per layer{exact}"
        if kind == "sqrt":
            return f"≈{_growth(result)}, saturating at {p['limit']:.3g}"
        return f"bounded → {p['limit']:.3g}"
    if kind == "none":
        return "too few depths with an output to fit"
    if kind == "flat":  # the counts decide uniformity; say they are not only when they were looked at
        return "fit: ratio ≈ 1" + (", but the counts are not uniform" if padding in result.uniform else "")
    deep = result.limits.get(padding)
    text = law_text(result.laws[padding], arrow=deep is None)  # (a fit's last ratio is not theory's limit)
    if kind == "bounded" and deep is not None and limit:
        text += f"; theory: → {deep:.3g}"
    return text if kind == "irregular" else "fit: " + text


def _deepest(result, padding) -> tuple[int, float] | None:
    """The deepest measured stack that has an output, and its ratio."""
    for L, r in zip(reversed(result.depths), reversed(result.ratios[padding])):
        if math.isfinite(r):
            return L, r
    return None


def _detail(result, padding, law) -> str:
    """The numbers behind one padding's law, for the caption."""
    p, deepest = law["params"], _deepest(result, padding)
    at = f"{ratio_text(deepest[1])} at L = {deepest[0]}" if deepest else "no output at any depth"
    if law["source"] == "fit":
        limit = result.limits.get(padding)
        fitted = (f"×{p['base']:.3g} per layer" if "base" in p else f"exponent {p['exponent']:.2f}"
                  if "exponent" in p else f"→ {p['limit']:.3g}" if "limit" in p and limit is None else "")
        how = (f"×{p['tail_change']:.3f} from L = {p['tail_depths'][0]} to {p['tail_depths'][1]}"
               if "tail_change" in p else f"R² {law['r2']:.3f}")
        if law["kind"] == "irregular":
            fitted = f"best fit {fitted}"
        towards = f"tending to {limit:.3g} as L → ∞ (theory)" if limit is not None else ""
        return ", ".join(x for x in (fitted, how, at, towards) if x)
    if law["kind"] == "exponential":
        return f"×{p['base']:.4g} per layer, {at}"
    if law["kind"] in ("sqrt", "bounded"):
        return f"{at}, limit {p['limit']:.3g}"
    return at


#: caption groups in order: kind → (verb for one padding, verb for several)
_VERBS = {
    "exponential": ("grows exponentially", "grow exponentially"),
    "decay": ("shrinks exponentially", "shrink exponentially"),
    "sqrt": ("grows like {growth}", "grow like {growth}"),
    "power": ("follows a power law of L", "follow power laws of L"),
    "bounded": ("stays bounded", "stay bounded"),
    "irregular": ("follows no simple law of L", "follow no simple law of L"),
    "flat": ("keeps the ratio near 1 without uniform counts", "keep the ratio near 1 without uniform counts"),
    "uniform": ("gives every position the same count at every depth (max = min)",
                "give every position the same count at every depth (max = min)"),
    "none": ("has too few depths with an output to fit a law", "have too few depths with an output to fit a law"),
}


def _line_kinds(result) -> tuple[bool, bool]:
    """Whether the figure draws a closed-form line, and a fitted one."""
    sources = [padding_law(result, p)["source"] for p in result.ratios]
    closed = any(p in result.exact and s != "fit" for p, s in zip(result.ratios, sources))
    return closed, "fit" in sources


def _legend_title(result) -> str:
    closed, fitted = _line_kinds(result)
    return "; ".join(["points: exact counts"] + (["solid: closed form"] if closed else [])
                     + (["dashed: fit (no closed form)"] if fitted else []))


def scaling_caption(result) -> str:
    """The scaling figure's caption, written from the data: which paddings grow exponentially, like √L, stay
    bounded or are uniform, by name and with their numbers (the same laws as the legend and the table)."""
    shape = "x".join(map(str, result.input_shape))
    closed, fitted = _line_kinds(result)
    drawn = [x for x, on in (("closed forms (solid lines)", closed), ("fitted laws where theory has no closed form "
                                                                     "(dashed)", fitted)) if on]
    text = [f"L stacked stride-1 copies of {result.block} on a {shape} input, L = {result.depths[0]}…"
            f"{result.depths[-1]}: exact centre/{result.key} path ratios (points)"
            + (", " + " and ".join(drawn) if drawn else "") + "."]
    groups: dict[str, list[str]] = {}
    for padding in result.ratios:
        groups.setdefault(padding_law(result, padding)["kind"], []).append(padding)
    for kind, (one, many) in _VERBS.items():
        names = groups.get(kind)
        if not names:
            continue
        verb = (one if len(names) == 1 else many).format(growth=_growth(result))
        subject = and_list(names)
        if kind in ("uniform", "none"):
            text.append(f"{subject[0].upper()}{subject[1:]} {verb}.")
            continue
        fits = [padding_law(result, p)["source"] == "fit" for p in names]
        # a group all fitted says so once; a mixed group marks its fitted members
        details = [("fit, " if fit and not all(fits) else "") + _detail(result, p, padding_law(result, p))
                   for p, fit in zip(names, fits)]
        inner = details[0] if len(names) == 1 else "; ".join(f"{p}: {d}" for p, d in zip(names, details))
        text.append(f"{subject[0].upper()}{subject[1:]} {verb} ({'fit, no closed form; ' if all(fits) else ''}"
                    f"{inner}).")
    below = [p for p in result.ratios if (d := _deepest(result, p)) and d[1] < 1]
    if below:
        text.append(f"Below 1 ({and_list(below)}): the {result.key} gets more paths than the centre.")
    return " ".join(text)


def scaling_table(result) -> Rows:
    """One row per padding: its law (as in the legend), where the law comes from, and the deepest stack's ratio
    beside the closed form's exact value there."""
    rows = []
    for padding in result.ratios:
        law, deepest = padding_law(result, padding), _deepest(result, padding)
        exact = "—"
        if deepest and padding in result.exact:
            exact = ratio_text(result.exact[padding][result.depths.index(deepest[0])])
        rows.append([padding, law_label(result, padding), law["source"] or "—",
                     str(deepest[0]) if deepest else "—", ratio_text(deepest[1]) if deepest else "—", exact])
    return Rows(["padding", "depth law", "from", "deepest L with an output", f"centre/{result.key} there (counts)",
                 "closed form there"], rows,
                [f"depths {result.depths[0]}…{result.depths[-1]}; closed forms and their derivations in "
                 "docs/theory.md; a fit is used only where theory has no closed form."])


def _fit_curve(law: dict, depths: np.ndarray) -> np.ndarray | None:
    """A fitted law's ratio at each depth (``Scaling.laws[padding]``)."""
    p = law["params"]
    if law["kind"] == "exponential":
        return p["prefactor"] * p["base"] ** depths
    if law["kind"] == "power":
        return p["prefactor"] * depths ** p["exponent"]
    flat = np.full_like(depths, p.get("limit", p.get("ratio", 1.0)), dtype=float)
    if "tail_depths" in p:  # a bounded fit describes its deeper half, where the ratio has levelled off
        flat[depths < p["tail_depths"][0]] = np.nan
    return flat


def _log_axis(ax, values) -> None:
    """A log y axis with at least two labelled ticks in plain numbers (0.1, 1, 10 or 2, 2.5, 3 …) up to four
    decades, where matplotlib would label one decade or none; matplotlib's powers of ten above that."""
    v = np.asarray([x for x in values if math.isfinite(x) and x > 0], dtype=float)
    ax.set_yscale("log")
    if not v.size:
        return
    lo, hi = v.min() / 1.15, v.max() * 1.15
    if hi / lo >= 1e4:  # four decades or more: several powers of ten lie inside
        return
    span = range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
    for steps in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        grid = sorted(m * 10.0 ** e for e in span for m in steps)
        ticks = [t for t in grid if lo <= t <= hi]
        if len(ticks) >= 3:  # the coarsest steps that give three labels
            break
    if len(ticks) < 2:  # a very short range: widen it to the neighbouring steps
        lo, hi = max(t for t in grid if t < v.min()), min(t for t in grid if t > v.max())
        ticks = [t for t in grid if lo <= t <= hi]
    ax.set_ylim(lo, hi)
    ax.set_yticks(ticks)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))  # not a lambda: the figure must pickle
    ax.yaxis.set_minor_formatter(NullFormatter())


def _title(fig: Figure, text: str, fontsize: float = 12) -> None:
    """A figure title wrapped to the figure's width (never clipped)."""
    chars = int(fig.get_figwidth() * 72 / (0.62 * fontsize))  # ~0.6 em per character of the default sans font
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize)


def _series(result, padding: str, i: int) -> dict:
    """One padding's points, its line (the exact closed form, else the fitted law) and its look."""
    depths = np.asarray(result.depths, dtype=float)
    ratios = np.asarray(result.ratios[padding], dtype=float)
    law = padding_law(result, padding)
    line, style = None, "none"
    if law["source"] == "fit":  # drawn over the depths it was fitted to
        line, style = np.where(np.isfinite(ratios), _fit_curve(result.laws[padding], depths), np.nan), "--"
    elif padding in result.exact:
        line, style = np.asarray(result.exact[padding], dtype=float), "-"
    look = {"color": COLOURS[i % len(COLOURS)], "marker": MARKERS[i % len(MARKERS)], "markersize": 4.5,
            "markerfacecolor": "none" if i % 2 else COLOURS[i % len(COLOURS)]}
    return {"padding": padding, "kind": law["kind"], "depths": depths, "ratios": ratios, "line": line,
            "style": style, "look": look, "label": f"{padding}: {law_label(result, padding)}"}


def _draw(ax, series: list[dict]) -> None:
    shown = []
    for s in series:
        ax.plot(s["depths"], s["ratios"], linestyle="none", **s["look"])
        if s["line"] is not None:
            ax.plot(s["depths"], s["line"], s["style"], color=s["look"]["color"], linewidth=1.2, alpha=0.85)
            shown += list(s["line"])
        shown += list(s["ratios"])
    _log_axis(ax, shown)
    ax.grid(True, which="major", color="#e5e5e5", linewidth=0.8)


def _peak(s: dict) -> float:
    finite = s["ratios"][np.isfinite(s["ratios"])]
    return float(finite.max()) if finite.size else math.nan


def plot_scaling(result) -> Figure:
    """Centre/edge (1-D) or centre/corner (2-D) path ratio versus depth: exact counts (points), the exact
    closed form (solid) where theory has one, else the fitted law (dashed); the legend names each law. When
    exponential growth dwarfs the other paddings, a second panel shows those on their own (log-log).

    Args:
        result: a :class:`edgewise.scaling.Scaling`.
    """
    series = [_series(result, p, i) for i, p in enumerate(result.ratios)]
    steep = [s for s in series if s["kind"] == "exponential"]
    rest = [s for s in series if s["kind"] != "exponential"]
    zoom = bool(steep and rest) and max(map(_peak, steep)) > 10 * max(map(_peak, rest))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(12.0 if zoom else 9.0, 6.0)
        axes = fig.subplots(1, 2, width_ratios=(1, 1)) if zoom else [fig.add_subplot()]
        _draw(axes[0], series)
        axes[0].set_xlabel("depth L (number of stacked layers)")
        if zoom:
            _draw(axes[1], rest)
            axes[1].set_xscale("log")  # a power of L is a straight line on log-log axes
            axes[1].set_xticks([t for t in 2 ** np.arange(12) if result.depths[0] <= t <= result.depths[-1]])
            axes[1].xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            axes[1].xaxis.set_minor_formatter(NullFormatter())
            axes[1].set_xlabel("depth L (log scale)")
            axes[0].set_title("every padding", fontsize=11)
            axes[1].set_title(f"without {and_list([s['padding'] for s in steep])}, zoomed in", fontsize=11)
        for ax in axes:
            ax.set_ylabel(f"centre / {result.key} path ratio")
        handles = [Line2D([], [], linestyle=s["style"], label=s["label"], **s["look"]) for s in series]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=9,
                   title=_legend_title(result), title_fontsize=9)
        shape = "x".join(map(str, result.input_shape))
        _title(fig, f"Centre/{result.key} path ratio of L*{result.block} versus depth L ({shape} input)")
    return fig


def step_label(layer: dict) -> str | None:
    """What a layer does to the grid, for the per-layer plot: ``"maxpool ÷2"``, ``"stride 4"``, ``"avgpool"``
    (a pool at stride 1); None for a stride-1 convolution."""
    strides = layer.get("stride") or [1]
    step = str(strides[0]) if len(set(strides)) == 1 else "×".join(map(str, strides))
    moves = any(s > 1 for s in strides)
    if layer["kind"] == "pool":
        name = re.sub(r"\d+d$", "", layer.get("op", "pool").lower())  # MaxPool2d → maxpool
        return f"{name} ÷{step}" if moves else name
    return f"stride {step}" if moves else None


def plot_layers(layers: list[dict], where: str, model: str) -> Figure:
    """The centre/``where`` path ratio after each sliding-window layer of ``model``, pools and strided layers
    marked (``layers``: records of :func:`edgewise.report.sections.layer_ratios`, optionally with the module's
    class name as ``"op"``)."""
    names = [r["name"] for r in layers]
    ratios = np.asarray([r["ratio"] for r in layers], dtype=float)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(max(6.4, 0.32 * len(names) + 2.5), 4.4)
        ax = fig.add_subplot()
        x = np.arange(1, len(names) + 1)
        ok = np.isfinite(ratios) & (ratios > 0)
        ax.plot(x[ok], ratios[ok], "o-", color=BLUE, markersize=4, zorder=3)
        _log_axis(ax, ratios[ok])
        ax.set_xlim(0.4, len(names) + 0.6)
        bottom, top = ax.get_ylim()
        steps = [(xi, r, step_label(layer)) for xi, r, layer in zip(x, ratios, layers) if step_label(layer)]
        for xi, r, label in steps:
            ax.axvspan(xi - 0.3, xi + 0.3, color=ORANGE, alpha=0.18, linewidth=0, zorder=1)
            # the label sits in the half of the band away from the curve, so it never covers a point
            high = ok[xi - 1] and math.log(r / bottom) > 0.5 * math.log(top / bottom)
            ax.text(xi, 0.03 if high else 0.97, label, rotation=90, ha="center", va="bottom" if high else "top",
                    fontsize=8, transform=ax.get_xaxis_transform(), zorder=2)
        if not ok.all():
            missing = ", ".join(n for n, good in zip(names, ok) if not good)
            ax.text(0.01, 0.99, f"no finite ratio at {missing}", transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlabel("layer, from the input" + (" (shaded: pooling or stride > 1)" if steps else ""))
        ax.set_ylabel(f"centre / {where} path ratio")
        if len(names) <= 24:
            ax.set_xticks(x, names, rotation=60, ha="right", fontsize=9)
        ax.grid(True, which="major", axis="y", color="#e5e5e5", linewidth=0.8)
        _title(fig, f"{model}: centre/{where} path ratio after each layer (exact counts)")
    return fig

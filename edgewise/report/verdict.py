"""The verdict that opens the report: the asker's questions answered in plain words with this run's numbers.

:func:`verdict_facts` gathers one model's facts (numbers and the words of :mod:`edgewise.facts`, nothing else);
:func:`render` turns them into HTML. Every number on it sits in ``<span class="num" data-field="…">``, naming
the field of ``data/MODEL/verdict.json`` it comes from, and every qualitative word in
``<span class="claim" data-claim="…" data-of="…">``, so a test reads each one back from the data.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .. import theory
from .._axis import Resample, Transposed, Window
from ..facts import (and_list, anchor_words, as_shown, correction, correlation_words, even_spread, law_words,
                     live_words, map_spread, narrower, no_border, scaled_words, sentences, silent_words, sup,
                     theory_words, weighted_words, words_for, zero_ends)
from ..graph import Graph
from .tables import ratio_text

__all__ = ["verdict_facts", "render", "render_trained", "global_layers", "TRAIN_MINUTES"]

#: the paddings whose depth law the first answer lists, in the order the asker meets them
LAW_PADDINGS = ("valid", "same", "reflect", "full", "circular", "replicate", "symmetric")
#: minutes ``--train`` adds on 2 cores with nothing cached (benchmarks/report.py measures it)
TRAIN_MINUTES = "5–6"


def global_layers(graph: Graph) -> list[str]:
    """Layers that connect every input position to every output unit: dense layers reading a (flattened) map of
    more than one position, and global pooling (a map of several positions to one, or to a vector: ShuffleNet's
    ``x.mean([2, 3])``)."""
    found = []
    for nd in graph:
        if nd.kind not in ("linear", "pool") or not nd.inputs or graph.positions_behind(nd.inputs[0]) <= 1 \
                or nd.op.startswith("attention"):  # attention is not a dense layer or a global pool
            continue
        if nd.kind == "linear" or len(nd.shape) == 1 or math.prod(nd.shape[1:]) == 1:  # (C,) or (C, 1, 1)
            found.append(nd.name)
    return found


def _why_uniform(graph: Graph, global_via: str | None) -> dict | None:
    """Why a uniform map is uniform, when the graph says so: every window before the first layer that makes units
    global tiles its input (kernel = stride, no padding, no dilation), so each position enters each unit once."""
    from .._axis import Window

    if not global_via:
        return None
    before = graph.upstream(global_via) - {global_via}
    windows = [nd for nd in graph if nd.name in before and nd.kind in ("conv", "pool") and nd.axes]
    if not windows or not all(isinstance(a, Window) for nd in windows for a in nd.axes):
        return None
    tiling = [nd for nd in windows if not all(a.kernel == 1 and a.stride == 1 for a in nd.axes)]
    if not tiling or not all(a.kernel == a.stride and a.pad == (0, 0) and a.dilation == 1
                             for nd in tiling for a in nd.axes):
        return None
    return {"tiling": [nd.name for nd in tiling], "kernels": [list(a.kernel for a in nd.axes) for nd in tiling],
            "global_via": global_via}


def _rows(s) -> dict:
    return {r["name"]: r for r in s.ev.comparison.rows}


def _variant(s, row: dict) -> dict:
    """A comparison row in the verdict's terms: ratio, spread, its one-word effect, cost."""
    if "error" in row:
        return {"fits": False, "why": row["error"]}
    ratio = s.ratio(row)
    spread = {k: row.get(k) for k in ("max_over_min", "unread", "unread_where", "uniform", "period")}
    spread["unread_anchors"] = row.get("unread_anchors") or {}
    return {"fits": True, "ratio": ratio, **spread, "effect": correction(ratio, spread),
            "parameters_change": row.get("parameters_change", 0.0),
            "multiply_adds_change": row.get("multiply_adds_change", 0.0)}


def verdict_facts(s, layers: list[dict], block: str, measured=None) -> dict:
    """One model's answers as data: ``q1`` … ``q6`` (see :func:`render`); ``measured``: the exact depth scaling
    of ``block`` (:class:`edgewise.scaling.Scaling`), whose law is quoted where theory has no closed form."""
    from .scaling import law_label
    ev, words = s.ev, words_for(s.ev.shape)
    rows = _rows(s)
    own = map_spread(ev.paths)
    k, d = _block_kd(block)
    n = ev.shape[-1]
    laws = {}
    for p in LAW_PADDINGS:
        law = theory.depth_law(p, k, n, d)
        row = rows.get(p) or (rows["original"] if p == ev.graph.padding else None)
        said = law_words(law)
        if law.kind == "numeric" and measured is not None and p in measured.ratios:
            said += (f"; measured over L = {measured.depths[0]}…{measured.depths[-1]}: "
                     f"{law_label(measured, p, limit=False)}")
        laws[p] = {"kind": law.kind, "words": said, **(_variant(s, row) if row else {})}
    q1 = {"padding": ev.graph.padding, "ratio": s.ratio(ev.paths.summary), **own,
          "block": block, "k": k, "dilation": d, "n": n, "laws": laws, "unlike": _unlike(ev.graph, k, d),
          "why_uniform": _why_uniform(ev.graph, ev.rf.advice.global_via) if own["uniform"] else None}
    pools, global_pools, before = [], [], 1.0
    for r in layers:
        if r["kind"] == "pool" and math.prod(ev.graph[r["name"]].shape[1:]) <= 1:
            global_pools.append(r["name"])  # to one position: a question for q3 (squeeze-excitation gates too)
        elif r["kind"] == "pool":
            before = r.get("before", before)  # the ratio at the layer it reads (records without it: the one before)
            pools.append({"layer": r["name"], "before": before, "after": r["ratio"],  # flat: the same as shown
                          "flat": as_shown(r["ratio"]) == as_shown(before) if before > 0 and r["ratio"] > 0
                          else False})
        before = r["ratio"]
    q2 = {"pools": pools, "global_pools": global_pools, "final": layers[-1]["ratio"] if layers else q1["ratio"],
          "layers": len(layers),
          "peak": max((r["ratio"] for r in layers), default=q1["ratio"]),
          "low": min((r["ratio"] for r in layers), default=q1["ratio"])}
    dense = global_layers(ev.graph)
    last_window = layers[-1]["ratio"] if layers else None
    q3 = {"global_layers": dense, "before_global": last_window, "output": q1["ratio"],
          "global_remedy": _variant(s, rows["global"]) if "global" in rows else None}
    i = ev.init.summary
    from ..maps import gaussian_width

    width = gaussian_width(ev.centre_paths.counts, ev.centre_paths.log10)
    last = ev.rf.grid_layer
    from ..answer import _ratio_interval
    from ..live import live_facts
    from ..maps import log_correlation
    from ..weighted import weighted_facts

    q4 = {"correlation": log_correlation(ev.init.map, ev.paths.counts), "n_inits": ev.n_inits,
          "sensitivity_ratio": s.ratio(i), "zero_gradient": not bool(np.any(np.asarray(ev.init.map) > 0)),
          # the layer whose zero weights made every initialisation's output its bias alone, when that is why
          "zero_readout": ev.init.readout if len(ev.init.bias_only) == ev.init.n_inits else None,
          # positions no initialisation's gradient reached, and the norms every initialisation starts at weight 0
          "zero_positions": ev.init.zero_positions, "positions": int(np.asarray(ev.init.map).size),
          "zero_scales": list(ev.init.zero_scales),
          # the paths that avoid those norms: the positions they miss, set against the zero-sensitivity ones
          "small_scales": dict(ev.init.small_scales), "live_paths": live_facts(ev.init, ev.live),
          # the weighted paths at the first initialisations, set against the sensitivity (or why not computed)
          "weighted_paths": weighted_facts(ev.init.map, ev.weighted), "weighted_refused": ev.weighted_refused,
          # how many weighted layers the paths pass, at fewest and at most, of all on them (the theory's L)
          "path_layers": dict(zip(("fewest", "most", "all"), ev.graph.path_layers())),
          "interval95": list(_ratio_interval(ev.init.samples, s.where, ev.seed)),
          "paths_ratio": q1["ratio"], "rf_layer": last.name, "rf_size": [float(v) for v in last.size], "global_via": ev.rf.advice.global_via,
          "erf_moment_std": [float(v) for v in width.sigma_moments],
          # the standard deviation of an even spread over the positions the centre unit reads (all of them when
          # a layer reads every position), per axis: the measure of "only"
          "even_std": even_spread(last.size, ev.shape[1:], ev.rf.advice.global_via)}
    q5 = _recommend(s, rows, ev.graph.padding)
    q6 = {"one_d": words.ndim == 1}
    return {"model": ev.name, "slug": s.slug, "words": {"unit": words.unit, "border": words.border},
            "q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5, "q6": q6}


def _unlike(graph: Graph, k: int, d: int) -> dict:
    """How the model differs from the stack the depth laws describe (stride-1 layers of kernel ``k``, dilation
    ``d``): its layers that move by more than one position along some axis (strides, transposed or resampling
    layers), and its other stride-1 layers of another kernel (global and attention layers are q3's)."""
    strided, kernels = [], []
    for nd in graph:
        axes = [a for a in nd.axes if isinstance(a, (Window, Transposed, Resample))]
        if any(not isinstance(a, Window) or a.stride > 1 for a in axes):
            strided.append(nd.name)
        elif nd.kind == "conv" and any(a.kernel > 1 and (a.kernel, a.dilation) != (k, d) for a in axes):
            kernels.append(nd.name)
    return {"strided": strided, "n_strided": len(strided), "kernels": kernels, "n_kernels": len(kernels)}


def _block_kd(block: str) -> tuple[int, int]:
    core = block.removeprefix("conv")
    k, _, d = core.partition("/d")
    return int(k), int(d or 1)


def _recommend(s, rows: dict, padding) -> dict:
    """The uniform remedy of lowest cost (parameters, then multiply-adds, then registry order); which
    over-correct, leave positions unread, or do not fit."""
    order = [r["name"] for r in s.ev.comparison.rows]
    # the model's own padding as a remedy is the model itself, and so is a remedy that rewrote nothing it computes:
    # neither is an alternative
    unchanged = [n for n, r in rows.items() if r.get("unchanged") and n not in ("original", padding)]
    variants = {n: _variant(s, r) for n, r in rows.items() if n not in ("original", padding, *unchanged)}
    fits = {n: v for n, v in variants.items() if v["fits"]}

    def cost(n):
        v = fits[n]
        return (max(v["parameters_change"], 0), max(v["multiply_adds_change"], 0), order.index(n))

    uniform = sorted((n for n, v in fits.items() if v["uniform"]), key=cost)
    readable = [n for n, v in fits.items() if not v["unread"] and v["effect"] != "over-corrects"]
    closest = min(readable, key=lambda n: (abs(math.log(fits[n]["max_over_min"])), *cost(n)), default=None)
    original = rows.get("original")
    spread = original.get("max_over_min") if original and "error" not in original else None
    # as uneven as the model to the figures shown (9.00006× beside its 9.0001×), or more: nothing to recommend
    rounding = []
    if closest is not None and spread and not as_shown(fits[closest]["max_over_min"]) < as_shown(spread):
        rounding = [closest] if fits[closest]["max_over_min"] < spread else []
        closest = None
    best = uniform[0] if uniform else closest
    # more even than the model, but over-correcting or leaving positions unread (Inception V3's global: 55.8×
    # against the model's 2.76e+05×, the border 1.05× over the centre): "no remedy" must not deny them
    flawed = [n for n, v in fits.items() if n not in readable and spread
              and as_shown(v["max_over_min"]) < as_shown(spread)] if best is None else []
    return {"already_uniform": bool(original and "error" not in original and original.get("uniform")),
            "model_max_over_min": spread, "unchanged": unchanged, "closer_within_rounding": rounding,
            "evener_but_flawed": flawed,
            "best": best, "best_uniform": bool(uniform), "also_uniform": uniform[1:],
            "variants": variants, "identical_to_model": padding if padding in LAW_PADDINGS else None,
            "over_correct": [n for n, v in fits.items() if v["effect"] == "over-corrects"],
            "periodic": [n for n, v in fits.items() if v["effect"] == "periodic"],
            "unread": [n for n, v in fits.items() if v["effect"] == "unread"],
            "misfits": [n for n, v in variants.items() if not v["fits"]]}


# ----------------------------------------------------------------------- HTML

def _num(text: str, field: str) -> str:
    return f'<span class="num" data-field="{html.escape(field)}">{html.escape(text)}</span>'


def evenness(max_over_min: float, model: float) -> str:
    """``more-even``, ``less-even`` or ``as-even``: a variant's spread of path counts (max/min over the positions
    read) against the model's, as far as the three figures shown tell them apart."""
    a, b = as_shown(max_over_min), as_shown(model)
    return "more-even" if a < b else "less-even" if a > b else "as-even"


def _against_model(v: dict, q1: dict) -> str:
    """``: less even than the model itself (max/min X)`` for a variant that reads every position, beside a model
    that does too; nothing otherwise (a spread over fewer positions is not comparable)."""
    if v["uniform"] or v["unread"] or q1["unread"]:
        return ""
    word = evenness(v["max_over_min"], q1["max_over_min"])
    spread = ("max = min" if q1["uniform"] else
              f"max/min {_num(ratio_text(q1['max_over_min']), 'q1.max_over_min')}")
    phrase = {"more-even": "more even than", "less-even": "less even than", "as-even": "as even as"}[word]
    return f": {_claim(phrase, word, 'global')} the model itself ({spread})"


def _claim(text: str, claim: str, of: str, raw: bool = False) -> str:
    """``text`` (escaped unless ``raw``) marked as the claim ``claim`` about ``of`` (a padding, remedy, layer or
    ``model``)."""
    return (f'<span class="claim" data-claim="{html.escape(claim)}" data-of="{html.escape(of)}">'
            f"{text if raw else html.escape(text)}</span>")


def _unlike_words(u: dict, block: str) -> str:
    """". This model is not such a stack (3 layers with a stride: …), so its own values need not follow the
    laws beside them" where :func:`_unlike` found a difference; empty for a plain stack."""
    parts = []
    if u["strided"]:
        parts.append(f"{_num(str(u['n_strided']), 'q1.unlike.n_strided')} layer{'s' * (u['n_strided'] != 1)} with a "
                     f"stride: {_names(u['strided'])}")
    if u["kernels"]:
        parts.append(f"{_num(str(u['n_kernels']), 'q1.unlike.n_kernels')} stride-1 layer{'s' * (u['n_kernels'] != 1)}"
                     f" with another kernel or dilation than {html.escape(block)}: {_names(u['kernels'])}")
    if not parts:
        return ""
    return (f". This model is not such a stack ({'; '.join(parts)}), so its own values beside each law need not "
            "follow it")


def _no_border(v: dict, unit: str, of: str, its: str = "its") -> str:
    """"; no border effect: its counts repeat every 8 samples" where the counts of ``v`` (a variant or the model)
    repeat (:func:`edgewise.facts.period`), marked as the claim ``periodic``."""
    if not v.get("period"):
        return ""
    return "; " + _claim(no_border(v["period"], unit, counts=f"{its} counts"), "periodic", of)


def _anchor_words(v: dict, border: str, of: str) -> str:
    """"; 3 of its 4 corners have no path, zeros in the ratio's mean" where the centre/border ratio of ``v`` (a
    variant or the model) divides a mean with unread points in it (the centre's, or the corners' or ends')."""
    parts = anchor_words(v.get("unread_anchors") or {}, border, lambda text, claim: _claim(text, claim, of))
    return "".join(f"; {p}" for p in parts)


def _zero_cause(q4: dict) -> str:
    """" (its output layer X starts with zero weights in each of them, …)" where the data shows that cause."""
    if not q4.get("zero_readout"):
        return ""
    layer = _claim(f"<code>{html.escape(q4['zero_readout'])}</code> starts with zero weights in each of them",
                   "zero-readout", q4["zero_readout"], raw=True)
    return f" (its output layer {layer}, so the output is that layer's bias whatever the input)"


def _sensitivity_ratio(q4: dict, border: str) -> str:
    """"the sensitivity's centre/corner ratio is 2.46× (95 % interval …) against 14.9× for the paths", or, where the
    centre or the border is exactly 0 (no ratio: 0/0, 0 or ∞), which (a claim ``zero-at`` read back from the map)."""
    paths = _num(ratio_text(q4["paths_ratio"]), "q4.paths_ratio")
    zero = zero_ends(q4["sensitivity_ratio"], border)
    if zero:
        return f"the sensitivity is {_claim(zero[0], 'zero-at', zero[1])} (the paths' centre/{border} ratio: {paths})"
    return (f"the sensitivity's centre/{border} ratio is "
            f"{_num(ratio_text(q4['sensitivity_ratio']), 'q4.sensitivity_ratio')} (95 % interval "
            f"{_num(ratio_text(q4['interval95'][0]), 'q4.interval95.0')} … "
            f"{_num(ratio_text(q4['interval95'][1]), 'q4.interval95.1')}) against {paths} for the paths")


def _silent(q4: dict, unit: str) -> str:
    """"3807 of 4096 px (92.9 %) have exactly zero sensitivity …; its builder starts 8 normalisation layers at weight
    0 … . Counting only the paths that avoid them, … " where the saved sensitivity shows either (the counts marked as
    claims ``silent``, ``zero-scales``, ``no-path`` and ``same-zeros``)."""

    def mark(text: str, claim: str) -> str:
        return _claim(text, claim, "model")

    def code(name: str) -> str:
        return f"<code>{html.escape(name)}</code>"

    texts = (silent_words(q4.get("zero_positions", 0), q4.get("positions", 0), unit, q4.get("zero_scales", []),
                          mark=mark, name=code),
             scaled_words(q4.get("small_scales", {}), mark=mark, name=code),
             live_words(q4.get("live_paths"), unit, mark=mark, num=lambda t: _num(t, "q4.live_paths.log_correlation")))
    return sentences(*texts)


def _weighted(q4: dict, unit: str, border: str) -> str:
    """The weighted paths set against the sensitivity, their numbers marked as claims a checker reads back from the
    saved maps (``weighted-*``, ``measured-ratio``), or why they are not computed; "" for a verdict saved before."""
    return sentences(weighted_words(q4.get("weighted_paths"), unit, border, refused=q4.get("weighted_refused"),
                                    mark=lambda t, claim: _claim(t, claim, "model"), escape=html.escape,
                                    interval=q4.get("interval95"), num=lambda t, end: _num(t, f"q4.interval95.{end}")))


def _spread_words(q4: dict, erf: str, unit: str) -> str:
    """How far the paths to the centre unit spread, set against an even spread over the positions it reads;
    "only" where narrower on every axis by a tenth or more (:func:`edgewise.facts.narrower`)."""
    shown = _num(erf, "q4.erf_moment_std")
    if not q4.get("even_std"):  # (a verdict saved before even_std was recorded)
        return f", and the paths to the centre unit spread with a standard deviation of {shown} {unit}."
    against = _num(" × ".join(f"{v:.1f}" for v in q4["even_std"]), "q4.even_std")
    only = narrower(q4["erf_moment_std"], q4["even_std"])
    return (f", {'but' if only else 'and'} the paths to the centre unit spread with a standard deviation of "
            f"{'only ' if only else ''}{shown} {unit} (moments of the count map), against {against} {unit} for an "
            "even spread over the positions it reads.")


def _no_pool_curve(q2: dict) -> str:
    """What the per-layer curve of a model without pooling shows, from its smallest, largest and last ratio."""
    final = _num(ratio_text(q2["final"]), "q2.final")
    if not q2["layers"]:
        return f"its ratio at the output is {final}."
    if q2.get("low") is not None and as_shown(q2["peak"]) == as_shown(q2["low"]):
        return f"its ratio is {final} after every layer (the per-layer curve)."
    if as_shown(q2["final"]) == as_shown(q2["peak"]):
        return f"the per-layer curve shows where its ratio grows, to {final} after the last window."
    return (f"the per-layer curve shows its ratio reach {_num(ratio_text(q2['peak']), 'q2.peak')} and end at "
            f"{final} after the last window.")


def _names(names: list[str], most: int = 4) -> str:
    """Layer names as a list, the first three and a count of the rest beyond ``most`` (RegNet-Y's 17 global pools:
    "a, b, c and 14 more (listed in verdict.json)")."""
    if len(names) <= most:
        return and_list(html.escape(n) for n in names)
    return f"{', '.join(html.escape(n) for n in names[:3])} and {len(names) - 3} more (listed in verdict.json)"


def _pct(v: float) -> str:
    return f"{v:+.0%}"


def _links(slug: str, figure: str | None, field: str) -> str:
    fig = f'<a href="#{html.escape(slug)}-{figure}">figure</a> · ' if figure else ""
    return (f' <span class="refs">({fig}<a href="data/{html.escape(slug)}/verdict.json">verdict.json</a> → '
            f"<code>{html.escape(field)}</code>)</span>")


def render(f: dict) -> str:
    """The verdict of one model as HTML (``f``: :func:`verdict_facts`)."""
    slug, unit, border = f["slug"], f["words"]["unit"], f["words"]["border"]
    q1, q2, q3, q4, q5 = f["q1"], f["q2"], f["q3"], f["q4"], f["q5"]
    items = []
    # 1. exponential?
    pad = q1["padding"] or "its own"
    why = q1.get("why_uniform")
    because = (f" (its windows before <code>{html.escape(why['global_via'])}</code> tile the input without overlap: "
               + ", ".join(f"<code>{html.escape(n)}</code> {'×'.join(map(str, k))}/{'×'.join(map(str, k))}"
                           for n, k in zip(why["tiling"], why["kernels"]))
               + ", kernel = stride, no padding; so every position enters each unit exactly once, and from that "
               "layer on every unit reads every position)") if why else ""
    own = (_claim("exactly uniform: every position has the same count", "uniform", "model") + because
           if q1["uniform"] else
           f"the centre input has {_num(ratio_text(q1['ratio']), 'q1.ratio')} as many paths as the {border} "
           f"(all positions: max/min {_num(ratio_text(q1['max_over_min']), 'q1.max_over_min')}"
           + _anchor_words(q1, border, "model") + _no_border(q1, unit, "model")
           + (f"; {_claim('never read', 'unread', 'model')}: {_num(str(q1['unread']), 'q1.unread')} {unit}, "
              f"{html.escape(q1['unread_where'])}" if q1["unread"] else "") + ")")
    laws = []
    for p, law in q1["laws"].items():
        exact = ""
        if law.get("fits") is False:
            exact = f"; does not fit this model ({html.escape(law['why'].split(': ', 1)[-1])})"
        elif law.get("fits"):
            exact = (f"; this model with {p} padding: "
                     + (_claim("uniform (max = min)", "uniform", p) if law["uniform"] else
                        f"{_num(ratio_text(law['ratio']), f'q1.laws.{p}.ratio')} (max/min "
                        f"{_num(ratio_text(law['max_over_min']), f'q1.laws.{p}.max_over_min')}"
                        + _anchor_words(law, border, p) + _no_border(law, unit, p) + ")"
                        + (f", {_claim('over-corrects', 'over-corrects', p)}" if law["effect"] == "over-corrects"
                           else "")
                        + (f", {_claim('never reads', 'unread', p)} {_num(str(law['unread']), f'q1.laws.{p}.unread')} "
                           f"{unit}" if law["unread"] else "")))
        kind = law["kind"]
        said = _claim(sup(html.escape(law["words"])), f"law:{kind}", p, raw=True)
        laws.append(f"<li><b>{p}</b>: {said}{exact}</li>")
    exponential = [p for p, law in q1["laws"].items() if law["kind"] == "exponential"]
    items.append(("Is the centre's advantage exponential in depth?",
                  f"In a stack of {html.escape(q1['block'])} layers (stride 1), "
                  + (f"only with {' and '.join(exponential)} padding. " if exponential else
                     "with none of the paddings listed below. ") + f"This model ({html.escape(pad)} padding): {own}. "
                  f"For L such layers on {q1['n']} {unit}, by "
                  f"<code>edgewise.theory.depth_law</code>"
                  + (" (per axis: a 2-D corner ratio is the product of the row and column ratios)"
                     if border == "corner" else "") + _unlike_words(q1["unlike"], q1["block"])
                  + f":<ul>{''.join(laws)}</ul>",
                  "scaling", "q1"))
    # 2. pooling
    if q2["pools"]:
        steps = "; ".join(
            f"{html.escape(p['layer'])}: {_num(ratio_text(p['before']), f'q2.pools.{i}.before')} → "
            f"{_num(ratio_text(p['after']), f'q2.pools.{i}.after')} "
            + (_claim("flat", "flat", p["layer"]) if p["flat"] else _claim("changes it", "changes", p["layer"]))
            for i, p in enumerate(q2["pools"]))
        after = as_shown(q2["final"]) > as_shown(max(p["after"] for p in q2["pools"]))
        stops = q2["final"] == 1
        items.append(("Does max pooling stop it?",
                      ("The counts end up balanced" if stops else "No") + f": at each pool ({steps}), and the "
                      "layers after it "
                      + ("keep raising it, to " if after else "end at ")
                      + f"{_num(ratio_text(q2['final']), 'q2.final')}.", "layers", "q2"))
    else:
        only = q2.get("global_pools")
        items.append(("Does max pooling stop it?",
                      (f"This model pools only globally ({_names(only)}: see the next answer); " if only else
                       "This model has no pooling layer; ") + _no_pool_curve(q2),
                      "layers" if q2["layers"] else None, "q2"))  # no sliding window: no per-layer figure
    # 3. fully connected
    g = q3["global_remedy"]
    gtext = ""
    if g and g["fits"]:
        gtext = (" Adding random global connections to every convolution (the <code>global</code> remedy) gives "
                 + (_claim("exactly uniform counts", "uniform", "global") if g["uniform"] else
                    f"{_num(ratio_text(g['ratio']), 'q3.global_remedy.ratio')} (max/min "
                    f"{_num(ratio_text(g['max_over_min']), 'q3.global_remedy.max_over_min')})")
                 + f" at {_num(_pct(g['parameters_change']), 'q3.global_remedy.parameters_change')} parameters"
                 + _against_model(g, q1) + ".")
    if q3["global_layers"]:
        one = len(q3["global_layers"]) == 1
        names = _names(q3["global_layers"])
        it, they = ("it", "it") if one else ("they", "them")
        # (the ratio after the last window: into the last of several, which squeeze-excitation gates precede)
        where = (f"the ratio is {_num(ratio_text(q3['before_global']), 'q3.before_global')} into "
                 f"{'it' if one else 'the last of them'} and "
                 f"{_num(ratio_text(q3['output']), 'q3.output')} at the output" if q3["before_global"] else "")
        items.append(("Would fully connected layers equalise it?",
                      f"Within themselves, yes: {names} connect{'s' if one else ''} every input unit to every "
                      f"output unit, so {it} add{'s' if one else ''} the same number of paths to each position; "
                      f"{it} do{'es' if one else ''} not undo the imbalance built before {they}"
                      + (f" ({where})." if where else ".") + gtext, "remedies", "q3"))
    else:
        items.append(("Would fully connected layers equalise it?",
                      "A dense layer or global pool connects every input to every output equally, so it adds the "
                      "same number of paths everywhere; this model has none." + gtext, "remedies", "q3"))
    # 4. theory
    erf = " × ".join(f"{v:.1f}" for v in q4["erf_moment_std"])
    layers = q4.get("path_layers")
    items.append(("Is there theory?",
                  "Yes. " + (sup(theory_words((layers["fewest"], layers["most"], layers["all"]),
                                              num=lambda t, k: _num(t, f"q4.path_layers.{k}")))
                             + " " if layers else
                             "In a linear network whose weights are independent with mean 0 and variance σ², the "
                             "expected squared gradient from input p to an output unit is σ<sup>2L</sup> × paths(p) "
                             "(tested exactly in edgewise's suite). ")
                  + (f"Over {_num(str(q4['n_inits']), 'q4.n_inits')} random initialisations of this model "
                     + _claim("every input gradient of its output is exactly zero", "zero-gradient", "model")
                     + _zero_cause(q4) + ", so its sensitivity cannot be set against the paths. "
                     if q4.get("zero_gradient") else
                     f"With this model's nonlinearities (not a linear network), over "
                     f"{_num(str(q4['n_inits']), 'q4.n_inits')} random initialisations, " + _sensitivity_ratio(q4, border)
                     + correlation_words(q4["correlation"], q1["uniform"], num=lambda t: _num(t, "q4.correlation"),
                                         claim=lambda t: _claim(t, "uniform", "model")) + ". " + _silent(q4, unit)
                     + _weighted(q4, unit, border))
                  + f"Receptive field vs effective field (Luo et al. 2016): units of {html.escape(q4['rf_layer'])} "
                  f"see {_num(' × '.join(f'{v:g}' for v in q4['rf_size']), 'q4.rf_size')} {unit}"
                  + (" through the windows (and every output unit reads every input position through "
                     f"<code>{html.escape(q4['global_via'])}</code>)" if q4.get("global_via") else "")
                  + _spread_words(q4, erf, unit), "sensitivity_init", "q4"))
    # 5. what to do
    items.append(("What should I do?", _recommendation(q5, unit), "remedies", "q5"))
    # 6. 1-D signals
    if f["q6"]["one_d"]:
        items.append(("1-D signals such as sound",
                      "The border here is the start and end of the signal. The <code>border-1d</code> experiment "
                      "(<code>edgewise experiment border-1d</code>, or <code>--train</code>) trains a 1-D net on "
                      "MNIST-1D patterns placed at the start, middle and end and measures the accuracy at each.",
                      None, "q6"))
    body = "".join(f"<li><b>{html.escape(q)}</b> {a}{_links(slug, fig, field)}</li>" for q, a, fig, field in items)
    return f'<ol class="verdict">{body}</ol>'


def _recommendation(q5: dict, unit: str) -> str:
    v = q5["variants"]
    best = q5["best"]
    if q5.get("already_uniform"):
        return (f"Nothing, for the path counts: this model is already {_claim('uniform', 'uniform', 'model')} "
                "(max = min), so no remedy can spread its paths more evenly; the table of section 6 shows what each "
                "would change.")
    b = v[best] if best is not None else None
    cost = b and (f"{_num(_pct(b['parameters_change']), f'q5.variants.{best}.parameters_change')} parameters, "
                  f"{_num(_pct(b['multiply_adds_change']), f'q5.variants.{best}.multiply_adds_change')} multiply-adds")
    if best is None:
        spread = q5.get("model_max_over_min")
        near = q5.get("closer_within_rounding") or []
        text = ("No remedy that fits this model spreads the paths more evenly than it does"
                + (" without over-correcting or leaving positions unread" if q5.get("evener_but_flawed") else "")
                + (" to three significant figures" if near else "")
                + (f" (max/min {_num(ratio_text(spread), 'q5.model_max_over_min')}" if spread else "")
                + (f"; {and_list(html.escape(n) for n in near)}: "
                   + ", ".join(_num(ratio_text(v[n]["max_over_min"]), f"q5.variants.{n}.max_over_min") for n in near)
                   if near and spread else "")
                + (")." if spread else "."))
    elif q5["best_uniform"]:
        text = (f"Use <b>{html.escape(best)}</b>: every position gets exactly the same number of paths "
                f"({_claim('max = min', 'uniform', best)}) at {cost}.")
        if q5["also_uniform"]:
            text += " Also uniform, at a higher or equal cost: " + ", ".join(
                f"{html.escape(n)} ({_claim('uniform', 'uniform', n)}, "
                f"{_num(_pct(v[n]['multiply_adds_change']), f'q5.variants.{n}.multiply_adds_change')} "
                "multiply-adds)" for n in q5["also_uniform"]) + "."
    else:
        text = (f"No remedy makes the counts uniform here; the closest is <b>{html.escape(best)}</b> (max/min "
                f"{_num(ratio_text(b['max_over_min']), f'q5.variants.{best}.max_over_min')}) at {cost}.")
    repeats: dict[tuple, list[str]] = {}  # variants whose counts repeat alike share a sentence
    for n in q5.get("periodic", []):
        repeats.setdefault(tuple(v[n]["period"]), []).append(n)
    for p, names in repeats.items():
        text += " " + _claim(no_border(list(p), unit, names), "periodic", ",".join(names)) + "."
    for n in q5["over_correct"]:
        text += (f" {html.escape(n)} {_claim('over-corrects', 'over-corrects', n)}: the border gets "
                 f"{_num(ratio_text(1 / v[n]['ratio']), f'q5.variants.{n}.ratio (inverse)')} more paths than "
                 "the centre.")
    alike: dict[tuple, list[str]] = {}  # variants that leave the same positions unread share a sentence (Swin-T's 5)
    for n in q5["unread"]:
        alike.setdefault((v[n]["unread"], v[n]["unread_where"]), []).append(n)
    for (count, where), names in alike.items():
        one = len(names) == 1
        subject = and_list(_claim(html.escape(n), "unread", n, raw=True) for n in names)
        text += (f" {subject} {'never reads' if one else 'never read'} "
                 f"{_num(str(count), f'q5.variants.{names[0]}.unread')} {unit}: {html.escape(where)}.")
    reasons: dict[str, list[str]] = {}  # misfits alike share a sentence (ConvNeXt's valid, full, nonoverlapping)
    for n in q5["misfits"]:
        reasons.setdefault(v[n]["why"].split(": ", 1)[-1], []).append(n)
    for why, names in reasons.items():
        text += (f" {html.escape(and_list(names))} {'does' if len(names) == 1 else 'do'} not fit: "
                 f"{html.escape(why)}.")
    if q5["identical_to_model"]:
        text += (f" ({html.escape(q5['identical_to_model'])} padding is this model as given, so it is not listed "
                 "as a remedy.)")
    if q5.get("unchanged"):
        one = len(q5["unchanged"]) == 1
        text += (f" ({html.escape(and_list(q5['unchanged']))} rewrite{'s' if one else ''} layers that compute what "
                 f"they did, so {'it is' if one else 'they are'} this model too and not listed.)")
    return text


def _why_ratio(numbers: dict, task: str, r: dict) -> str:
    """The clause that splits the after-training gap into the probe inputs' part and training's, from section 8's
    explanation (``numbers["learned"]["TASK:ratio"]``, with ``--train``); empty without it."""
    why = (numbers.get("learned") or {}).get(f"{task}:ratio") or {}
    same = next((row.get("grad_anchor") for row in why.get("rows", ())
                 if row.get("weights") == "init" and row.get("probe") == "mix"), None)
    if not same or not r.get("random") or not r.get("trained"):
        return ""
    data, training = same / r["random"], r["trained"] / same
    most = "the probe digits (not noise) account for more of that gap than training" if data > training else \
        "training accounts for more of that gap than the probe digits (not noise)" if training > data else \
        "the probe digits and training account for equal parts of that gap"
    return (f"; but random weights on the same digits already give {html.escape(ratio_text(same))}, so {most} "
            f"({html.escape(ratio_text(data))} against {html.escape(ratio_text(training))}; "
            '<a href="#learned">section 8</a>)')


def render_trained(numbers: dict) -> str:
    """The last answer, once for the page: what trained networks do (``numbers``: the report's numbers; its
    ``after_training`` and ``experiments`` parts exist with ``--train``). Number fields name ``report.json``'s
    ``numbers``."""
    q = "<b>What do trained networks do?</b> "
    after, experiments = numbers.get("after_training"), numbers.get("experiments") or {}
    if not after and not experiments:
        return (f'<p class="verdict-trained">{q}Not measured in this run. <code>--train</code> trains the five '
                "experiment tasks (absolute position, digits at the border, 1-D signals at the ends, symmetry "
                "breaking, a pattern at a known distance from the border) per remedy and seed and measures a trained net's sensitivity (about "
                f"{TRAIN_MINUTES} minutes on 2 cores the first time; cached after).</p>")
    parts = []
    for name, r in (after or {}).items():
        field = f"after_training.{name}"
        task, _, remedy = name.partition(":")
        parts.append(f"after training, the {html.escape(task)} net ({html.escape(remedy)} padding) has a squared "
                     f"input gradient {_num(ratio_text(r['trained']), field + '.trained')} larger at the centre than "
                     f"at the corner, against {_num(ratio_text(r['random']), field + '.random')} at random "
                     f"initialisation and {_num(ratio_text(r['paths']), field + '.paths')} for its path counts"
                     + _why_ratio(numbers, task, r))
    for task, exp in experiments.items():
        contrast = exp.get("contrast")
        if not contrast or not contrast.get("table"):
            continue
        a, b = contrast["splits"]
        table = contrast["table"]
        steadiest = min(table, key=lambda r: abs(table[r]["mean"]))
        shown = list(dict.fromkeys(r for r in ("same", steadiest) if r in table))
        cells = ", ".join(
            f"{html.escape(r)} "
            + _num(format(100 * table[r]["mean"], "+.0f"), f"experiments.{task}.contrast.table.{r}.mean (points)")
            for r in shown)
        parts.append(f"{html.escape(task)}: accuracy {html.escape(a)} − {html.escape(b)} {cells} points")
    return (f'<p class="verdict-trained">{q}' + "; ".join(parts)
            + ' (<a href="#trained">section 7</a> · <a href="report.json">report.json</a> → '
              "<code>numbers.after_training</code>, <code>numbers.experiments</code>).</p>")

"""The question, answered for one model with its own numbers: is the pathway gap real, what does
theory say, and which padding removes it.

:func:`answer` runs the engines (pathways, receptive field, Monte-Carlo sensitivity
over initialisations, the model's own gradient, the perturbation experiment and
the closed forms of :mod:`edgewise.theory`), writes the figures and numbers into
a folder and returns an :class:`Answer` whose Markdown text quotes only numbers
computed in this run, each sentence linked to the figure or JSON that shows it.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import nets, theory
from ._stats import describe as describe_norm_stats
from ._trace import parse_shape, trace
from .errors import EdgewiseError
from .facts import (and_list, anchor_words, correction, correlation_words, even_spread, live_words, many, map_spread,
                    narrower, no_border, scaled_words, sentences, silent_words, sup, theory_words, weighted_words,
                    zero_ends)
from .geometry import receptive_field
from .live import live_facts, live_pathways
from .maps import gaussian_width, log_correlation, position_summary
from .models import describe, load, random_weights
from .pathways import pathways
from .report._format import fmt_ratio
from .results import Result, write_atomic, write_json
from ._init import shared_draws
from .sensitivity import N_SIGNS, _init_seeds, gradient_map, init_sensitivity, perturbation
from .weighted import weighted_facts

__all__ = ["answer", "Answer", "Evidence", "gather", "facts", "figures", "compose", "perturb_skip", "skip_words"]

#: most input positions for which the one-position-at-a-time experiment runs by default
PERTURB_LIMIT = 4096
#: the most floating-point operations (whole forward passes, as :func:`edgewise.limits.forward_costs` counts them)
#: and bytes of layer outputs (float64) the perturbation experiment may take unasked: about 30 s each on a 2-core
#: machine, whose float64 forwards ran at about 24 GFLOP/s where convolutions dominate (ResNet-18) and wrote about
#: 1 GB/s of layer outputs where depthwise and elementwise layers do (EfficientNet-B0, ConvNeXt)
PERTURB_FLOPS = 0.75e12
PERTURB_BYTES = 25e9
_STACK = re.compile(r"^(\d+)\*conv(\d+)(?:/d(\d+))?$")


@dataclass
class Answer(Result):
    """The answer: ``text`` (Markdown), ``facts`` (every number it quotes) and the files written."""

    text: str
    facts: dict
    files: list = field(default_factory=list)

    kind = "answer"

    def to_dict(self) -> dict:
        return {"text": self.text, **self.facts}

    def _repr_markdown_(self) -> str:
        return self.text

    def _repr_html_(self):  # None: Jupyter falls back to the Markdown above
        return None


def _corner_key(ndim: int) -> str:
    return "corner" if ndim == 2 else "edge"


def _ratio_interval(samples: np.ndarray, key: str, seed: int, n_boot: int = 200) -> tuple[float, float]:
    """95 % bootstrap interval (over initialisations) of the centre/``key`` ratio of the mean map."""
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_boot):
        mean = samples[rng.integers(0, len(samples), len(samples))].mean(axis=0)
        ratios.append(position_summary(mean)[f"center_{key}_ratio"])
    ratios = np.asarray(ratios, dtype=float)
    if np.isnan(ratios).all():  # zero at the centre and the border in every resample: no interval
        return math.nan, math.nan
    lo, hi = np.nanpercentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _theory_for(module, shape) -> dict | None:
    """The closed-form depth law when the model is a spec stack ``L*convK[/dD]`` (stride 1)."""
    spec, padding = getattr(module, "spec", None), getattr(module, "padding", None)
    m = _STACK.match((spec or "").replace(" ", ""))
    if not m or padding is None:
        return None
    L, k, d = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
    sizes = shape[1:]
    try:
        per_axis = [float(theory.ratio(padding, k, n, L, d)) for n in sizes]
        law = theory.depth_law(padding, k, sizes[-1], d)
    except EdgewiseError:
        return None
    law_value = float(law.curve([L])[0])
    return {"L": L, "k": k, "dilation": d, "padding": padding, "kind": law.kind, "domain": law.domain,
            "params": {k_: (float(v) if isinstance(v, (int, float)) else str(v)) for k_, v in law.params.items()},
            "exact_ratio_per_axis": per_axis, "exact_corner_ratio": float(np.prod(per_axis)),
            "law_ratio": law_value, "erf_std": theory.erf_std(k, L, d)}


@dataclass
class Evidence:
    """Every engine result the answer quotes, computed once (the report draws its figures from the same)."""

    name: str
    module: object
    shape: tuple
    graph: object
    paths: object
    centre_paths: object
    rf: object
    init: object
    own: object
    pert: object
    comparison: object
    stack: dict | None
    n_inits: int
    seed: int
    live: object = None  # the paths that avoid the layers every initialisation starts silent (edgewise.live)
    random: str | None = None  # why the model's own weights are random (a reference built untrained), or None
    weighted: object = None  # the weighted paths at the first initialisations (edgewise.weighted), or None
    weighted_refused: str | None = None  # why they are not computed (a layer without a rule), or None
    pert_skipped: dict | None = None  # why the perturbation experiment was left out (:func:`perturb_skip`), or None

    @property
    def key(self) -> str:
        """``corner`` (2-D) or ``edge`` (1-D): where the ratios are taken."""
        return _corner_key(len(self.shape) - 1)


def gather(model=None, input_shape=None, *, padding: str = "same", n_inits: int = 32, seed: int = 0,
           perturb: bool | None = None, inputs=None, name: str | None = None, remedy_inits: int = 0,
           step=None, norm_stats: str = "ignore", amount: str | None = None, random: str | None = None) -> Evidence:
    """Run the engines :func:`answer` quotes (arguments as there; ``remedy_inits``: Monte-Carlo
    initialisations per remedy in the comparison, 0 for path counts only; ``step(text)``: called as each
    part starts, and during the long ones, with what is being computed, e.g. ``"sensitivity 8/32"``; ``amount``:
    how much the padding-mode remedies pad, :func:`edgewise.remedies.compare`; ``random``: why the model's own
    weights are random, for a module built from a reference (a reference says it itself))."""
    random = random if random is not None else random_weights(model if model is not None else nets.DEFAULT_SPEC)
    if model is None:
        model, input_shape = nets.DEFAULT_SPEC, input_shape or nets.DEFAULT_INPUT
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        raise EdgewiseError("answer needs input_shape (C×L or C×H×W, e.g. (3, 224, 224))")
    from .remedies import compare, names

    say = step or (lambda text: None)
    shape = parse_shape(input_shape)
    name = name or describe(model)
    module = load(model, shape, padding=padding)
    graph = trace(module, shape, name=name, norm_stats=norm_stats)
    data = inputs if inputs is not None else shape
    skipped = None if perturb is not None else perturb_skip(module, shape, 1 if inputs is None else len(inputs))
    do_perturb = skipped is None if perturb is None else perturb
    say("pathways")
    paths, centre_paths = pathways(graph), pathways(graph, to="center")
    say("receptive field")
    rf = receptive_field(graph)
    # the remedies' initialisations drawn here (or by the first remedy) are copied into the others, not redrawn
    with shared_draws(_init_seeds(seed, remedy_inits)):
        say(f"sensitivity 0/{n_inits}")
        init = init_sensitivity(module, shape, n_inits=n_inits, seed=seed,
                                on_chunk=lambda done, total: say(f"sensitivity {done}/{total}"))
        say("weighted paths")
        weighted, refused = weighted_or_why(module, shape, n_inits, seed)
        say("own-weights gradient")
        own = gradient_map(module, data, agg="sq", seed=seed)
        if do_perturb:
            say("perturbation")
        pert = perturbation(module, data, seed=seed) if do_perturb else None
        # every remedy that fits this model; its own padding as a "remedy" is the original itself (not measured)
        comparison = compare(module, shape, [r for r in names() if r != graph.padding], n_inits=remedy_inits,
                             seed=seed, progress=False, original=init, step=lambda text: say(f"remedy {text}"),
                             norm_stats=norm_stats, amount=amount)
    return Evidence(name, module, shape, graph, paths, centre_paths, rf, init, own, pert, comparison,
                    _theory_for(module, shape), n_inits, seed, live_pathways(init, graph), random, weighted, refused,
                    skipped)


def perturb_skip(module, shape, n_samples: int = 1, cost=None) -> dict | None:
    """Why the perturbation experiment is left out unless asked for, as data (None: it runs): more input positions
    than :data:`PERTURB_LIMIT` (``why="positions"``), or float64 forward passes whose operations or layer outputs
    add up to more than :data:`PERTURB_FLOPS` or :data:`PERTURB_BYTES` (``why="cost"``: ``forwards`` whole passes,
    or their equivalent where each single nudge runs on its forward cone, at most ``cone`` of a pass:
    :func:`edgewise._cone.cone_fraction`); ``cost``: the model's :func:`edgewise.limits.forward_costs`, if known."""
    from ._cone import cone_fraction
    from .limits import forward_costs, input_spec

    positions = math.prod(shape[1:])
    if positions > PERTURB_LIMIT:
        return {"why": "positions", "positions": positions, "limit": PERTURB_LIMIT}
    signs = N_SIGNS
    cone = cone_fraction(module, tuple(shape[1:]))
    forwards = math.ceil(n_samples * (positions * (1 if cone is None else cone) + signs))
    cost = forward_costs(module, shape) if cost is None else cost
    flops, size = int(cost.flops), int(cost.activations) * 8 // input_spec(module)[0].itemsize  # (in float64)
    if forwards * flops <= PERTURB_FLOPS and forwards * size <= PERTURB_BYTES:
        return None
    return {"why": "cost", "positions": positions, "signs": signs, "samples": n_samples, "cone": cone,
            "forwards": forwards, "flops": flops, "bytes": size, "total_flops": float(forwards * flops),
            "total_bytes": float(forwards * size), "flop_limit": PERTURB_FLOPS, "byte_limit": PERTURB_BYTES}


def skip_words(skipped: dict, lead: str = "The perturbation experiment was not run") -> str:
    """The sentence that says why the perturbation experiment was left out (:func:`perturb_skip`), after
    ``lead``."""
    if skipped["why"] == "positions":
        return (f"{lead}: the input has {skipped['positions']} positions, over "
                f"the limit of {skipped['limit']} for running it unasked (--perturb runs it).")
    return f"{lead}: it would take {cost_words(skipped)}: {over_words(skipped)} (--perturb runs it)."


def cost_words(cost: dict) -> str:
    """``"4608 float64 forward passes (…) of 0.297 GFLOP and 4.89 MB of layer outputs each, 1.37 TFLOP and
    22.6 GB in all"``: the experiment's cost, from :func:`perturb_skip`'s data."""
    each = f", for each of {cost['samples']} inputs" if cost["samples"] > 1 else ""
    cone = cost["cone"]
    nudges = (f"{cost['positions']} nudged positions" if cone is None else f"{cost['positions']} nudged "
              f"positions, each on its forward cone, at most {100 * cone:.3g} % of a pass,")
    return (f"{'' if cone is None else 'up to the work of '}{cost['forwards']} float64 forward passes ({nudges} "
            f"and {cost['signs']} sign patterns{each}) of {cost['flops'] / 1e9:.3g} GFLOP and "
            f"{cost['bytes'] / 1e6:.3g} MB of layer outputs each, {cost['total_flops'] / 1e12:.3g} TFLOP and "
            f"{cost['total_bytes'] / 1e9:.3g} GB in all")


def over_words(cost: dict) -> str:
    """``"more operations than the 0.75 TFLOP it may take unasked"``: the limits the experiment passes."""
    over = [f"more {what} than the {cost[limit] / scale:g} {unit}" for what, total, limit, scale, unit in
            (("operations", "total_flops", "flop_limit", 1e12, "TFLOP"),
             ("layer outputs", "total_bytes", "byte_limit", 1e9, "GB")) if cost[total] > cost[limit]]
    return f"{' and '.join(over)} it may take unasked"


#: initialisations of the weighted paths beside the Monte-Carlo sensitivity of a net of ``LOOP_FLOPS`` or more a
#: forward pass (its first ones): the weighted map of one initialisation is already the expectation over its weights,
#: so a few hold most of what is left to average (the built-in net: 31× at 8, 26.5× at 32, 25.1× at 64)
WEIGHTED_INITS = 8


def weighted_inits(module, shape, n_inits: int) -> int:
    """How many of a sensitivity's ``n_inits`` initialisations its weighted paths take: all of them for a net
    cheaper than :data:`edgewise.sensitivity.LOOP_FLOPS` a forward pass (a fraction of a second each), else at most
    :data:`WEIGHTED_INITS` (each costs about what a Monte-Carlo initialisation does)."""
    from .limits import forward_cost
    from .sensitivity import LOOP_FLOPS

    try:
        cheap = forward_cost(module, shape)[1] < LOOP_FLOPS
    except Exception:  # noqa: BLE001 - a forward the counter cannot run: the cautious number
        cheap = False
    return n_inits if cheap else min(n_inits, WEIGHTED_INITS)


def weighted_or_why(module, shape, n_inits: int, seed: int, **options):
    """(:func:`edgewise.weighted_pathways` at the first :func:`weighted_inits` initialisations of a sensitivity of
    ``n_inits`` with ``seed``, None), or (None, why not: the layer without a rule, in a few words)."""
    from .errors import EdgewiseWarning
    from .weighted import weighted_pathways

    try:
        with warnings.catch_warnings():  # (what the initialisation warns about, the sensitivity has said)
            warnings.simplefilter("ignore", EdgewiseWarning)
            return weighted_pathways(module, shape, n_inits=weighted_inits(module, shape, n_inits), seed=seed,
                                     **options), None
    except EdgewiseError as e:
        return None, str(e).removeprefix("weighted paths: ").split(";")[0]


def _silent(i: dict, unit: str, over: str = "initialisation") -> str:
    """"3807 of 4096 px (92.9 %) have exactly zero sensitivity …; its builder starts 8 normalisation layers at weight
    0 … " (a sentence, then a space), where the facts show either; else ""."""
    texts = (silent_words(i.get("zero_positions", 0), i.get("positions", 0), unit, i.get("zero_scales", []),
                          name=lambda n: f"`{n}`", over=over),
             scaled_words(i.get("small_scales", {}), name=lambda n: f"`{n}`", over=over),
             live_words(i.get("live_paths"), unit))
    return sentences(*texts)


def figures(ev: Evidence) -> dict:
    """stem → the figure each claim of the answer links to."""
    from .report.figures import plot_pathways, plot_receptive_field
    from .report.remedies import plot_comparison
    from .report.sensitivity import plot_perturbation, plot_sensitivity

    figs = {"pathways": plot_pathways(ev.paths), "receptive_field": plot_receptive_field(ev.rf, graph=ev.graph),
            "sensitivity_init": plot_sensitivity(ev.init, paths=ev.paths, live=ev.live, weighted=ev.weighted),
            "sensitivity_weights": plot_sensitivity(ev.own, paths=ev.paths)}
    if ev.pert is not None:
        figs["perturbation"] = plot_perturbation(ev.pert)
    figs["remedies"] = plot_comparison(ev.comparison)
    return figs


def facts(ev: Evidence) -> dict:
    """Every number the answer quotes, as plain JSON-ready values."""
    key, shape, pert = ev.key, ev.shape, ev.pert
    ps, isum, osum = ev.paths.summary, ev.init.summary, ev.own.summary
    last_spatial = ev.rf.grid_layer
    width = gaussian_width(ev.centre_paths.counts, ev.centre_paths.log10)
    lo, hi = _ratio_interval(ev.init.samples, key, ev.seed)
    # a remedy that rewrote layers to compute what they did is the model itself (ResNet's `same`): named, not listed
    unchanged = [r["name"] for r in ev.comparison.rows if r.get("unchanged") and r["name"] != "original"]
    alternatives = {r["name"]: r for r in ev.comparison.rows if "error" not in r and r["name"] not in unchanged}
    return {
        "model": ev.name, "input_shape": list(shape), "padding": ev.graph.padding,
        "norm_stats": ev.graph.norm_stats, "normalisation": describe_norm_stats(ev.graph),
        "path_layers": dict(zip(("fewest", "most", "all"), ev.graph.path_layers())),
        "paths": {**{k_: ps[k_] for k_ in ("log10_center_edge_ratio", "log10_center_corner_ratio",
                                            "center_edge_ratio", "center_corner_ratio", "log10_min", "log10_max")},
                  **map_spread(ev.paths)},
        "receptive_field": {"layer": last_spatial.name, "size": [float(s) for s in last_spatial.size],
                            "fraction_off": last_spatial.fraction_off, "advice": ev.rf.advice.sentences()},
        "init_sensitivity": {"n_inits": ev.n_inits, f"center_{key}_ratio": isum[f"center_{key}_ratio"],
                             "interval95": [lo, hi],
                             "log_correlation_with_paths": log_correlation(ev.init.map, ev.paths.counts),
                             "area_ratio": isum["area_ratio"], "zero_positions": ev.init.zero_positions,
                             "positions": int(ev.init.map.size), "zero_scales": list(ev.init.zero_scales),
                             "small_scales": dict(ev.init.small_scales), "live_paths": live_facts(ev.init, ev.live),
                             "weighted_paths": weighted_facts(ev.init.map, ev.weighted),
                             "weighted_refused": ev.weighted_refused},
        "own_weights": {f"center_{key}_ratio": osum[f"center_{key}_ratio"], "area_ratio": osum["area_ratio"],
                        "n_samples": int(ev.own.samples.shape[0]), "zero_positions": ev.own.zero_positions,
                        "positions": int(ev.own.map.size), "zero_scales": list(ev.own.zero_scales),
                        "small_scales": dict(ev.own.small_scales), "random_weights": ev.random,
                        "live_paths": live_facts(ev.own, live_pathways(ev.own, ev.graph))},
        "perturbation_skipped": ev.pert_skipped,
        "perturbation": None if pert is None else {
            f"center_{key}_ratio": pert.summary["single"][f"center_{key}_ratio"], "fd_error": pert.fd_error,
            f"gradient_center_{key}_ratio": pert.summary["gradient"][f"center_{key}_ratio"],
            "sign_correlation": pert.sign_correlation, "eps": pert.eps, "n_signs": pert.n_signs,
            "positions": math.prod(shape[1:]), "total_change": pert.total_change,
            "predicted_total": pert.predicted_total},
        "erf": {"center_paths_sigma": list(width.sigma_moments), "rf_size": [float(s) for s in last_spatial.size],
                "even_std": even_spread(last_spatial.size, shape[1:], ev.rf.advice.global_via),
                "global_via": ev.rf.advice.global_via},
        "theory": ev.stack,
        "alternatives": {m: {k_: r.get(k_) for k_ in (f"center_{key}_ratio", "parameters_change",
                                                      "multiply_adds_change", "max_over_min", "unread",
                                                      "unread_where", "unread_anchors", "uniform", "period", "amount")}
                         for m, r in alternatives.items()},
        "misfits": {r["name"]: r["error"] for r in ev.comparison.rows if "error" in r},
        "unchanged": unchanged,
    }


def answer(model=None, input_shape=None, *, padding: str = "same", out=None, n_inits: int = 32, seed: int = 0,
           perturb: bool | None = None, inputs=None, name: str | None = None, norm_stats: str = "ignore",
           amount: str | None = None, random: str | None = None, step=None) -> Answer:
    """Answer the three questions for ``model`` with numbers computed now; write figures into ``out``.

    Args:
        model: an ``nn.Module`` or model reference (default: the built-in
            :data:`edgewise.nets.DEFAULT_SPEC` net on :data:`~edgewise.nets.DEFAULT_INPUT`).
        input_shape: C×L or C×H×W.
        padding: padding of spec nets.
        out: folder for ``answer.md``, ``answer.json`` and the figures (default: none written;
            the text then refers to figures by name).
        n_inits: initialisations for the Monte-Carlo sensitivity.
        perturb: run the one-position-at-a-time experiment (default: when the input has at most
            :data:`PERTURB_LIMIT` positions and the experiment takes at most :data:`PERTURB_FLOPS` operations and
            :data:`PERTURB_BYTES` bytes of layer outputs; the text says why when it is left out).
        inputs: real data (B, C, …) for the model's own gradient and the perturbation
            (default: N(0, 1) noise, seeded).
        name: how to call the model in the text (default: its reference or class name).
        norm_stats: whether normalisation statistics are connections in the path counts (:func:`edgewise.trace`).
        amount: how much the padding-mode remedies pad (``"keep"``: each layer's own amount; see
            :func:`edgewise.remedies.compare`).
        random: why the model's own weights are random, said beside them (a module built from a reference: the
            reference's :func:`edgewise.models.random_weights`; a reference given as ``model`` says it itself).
        step: ``step(text)`` as each part starts ("pathways", "sensitivity 8/32", "remedy circular", ...).

    Returns:
        :class:`Answer`.
    """
    from .report.figures import save_figure

    ev = gather(model, input_shape, padding=padding, n_inits=n_inits, seed=seed, perturb=perturb, inputs=inputs,
                name=name, norm_stats=norm_stats, amount=amount, random=random, step=step)
    outdir = Path(out) if out is not None else None
    files: list[Path] = []
    if outdir is not None:
        for stem, fig in figures(ev).items():
            files.extend(save_figure(fig, outdir / stem))
    f = facts(ev)
    marked = compose(f, lambda stem: stem if stem.endswith(".json") else f"{stem}.png")
    result = Answer(sup(marked, html=False), f, files)
    if outdir is not None:
        files.append(write_json(outdir / "answer.json", result.to_dict()))
        path = outdir / "answer.md"
        write_atomic(path, result.text.encode())
        files.append(path)
    return result


def _escape(text: str) -> str:
    """Plain text safe in Markdown: layer names like ``_blocks.2`` or ``2*conv3`` must not turn into emphasis."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)


def _more(v: float, more: str = "larger", less: str = "smaller") -> str:
    """``3.2× larger`` or ``2× smaller`` for a ratio ``v``."""
    if not (v > 0 and math.isfinite(v)):
        return f"{v}× {more}"
    return f"{_x(v)} {more}" if v >= 1 else f"{_x(1 / v)} {less}"


def _correlation(i: dict, p: dict, subject: str = "its log-map") -> str:
    """"; its log-map correlates with the log path counts at r = 0.74", or why no r can be taken."""
    return correlation_words(i["log_correlation_with_paths"], bool(p.get("uniform")), subject)


def _anchors(v: dict, where: str) -> str:
    """" (1 of its 2 ends has no path, zeros in the ratio's mean)" beside a ratio whose mean has unread points."""
    parts = anchor_words(v.get("unread_anchors") or {}, where)
    return f" ({'; '.join(parts)})" if parts else ""


def _positive(v) -> bool:
    """Whether a centre/border ratio is a number to quote: both ends positive (not 0/0, 0 or ∞)."""
    return zero_ends(v, "") is None


def _zero_at(v, where: str) -> str:
    """"is exactly 0 at both the centre and the corner" for a ratio with an end exactly 0."""
    return f"is {zero_ends(v, where)[0]}"


def _x(v: float) -> str:
    return fmt_ratio(math.log10(v)) if v > 0 and math.isfinite(v) else str(v)


def compose(f: dict, link=lambda stem: stem if stem.endswith(".json") else f"{stem}.png",
            heading: int = 1) -> str:
    """The Markdown answer: every number from ``f`` (:func:`facts`); every claim links to ``link(stem)``
    of its figure (a :func:`figures` stem) or of ``answer.json``; ``heading``: level of the title."""
    key = "corner" if len(f["input_shape"]) == 3 else "edge"
    f_paths, f_rf, f_init, f_own, f_remedies = (link(s) for s in ("pathways", "receptive_field", "sensitivity_init",
                                                                   "sensitivity_weights", "remedies"))
    f_pert, f_json = link("perturbation"), link("answer.json")
    h1, h2 = "#" * heading, "#" * (heading + 1)
    where = "corner" if key == "corner" else "end"
    unit, whole = ("px", "image") if key == "corner" else ("samples", "signal")
    p, i, o = f["paths"], f["init_sensitivity"], f["own_weights"]
    rf = f["receptive_field"]
    pad = f" with {f['padding']} padding" if f["padding"] else ""
    lines = [f"{h1} Do central inputs have more pathways? `{f['model']}`{pad}, input {'x'.join(map(str, f['input_shape']))}",
             "", f"{h2} 1. Is the effect real here?", ""]
    norm = f" (normalisation: {f['normalisation']})" if f.get("normalisation") else ""
    if p.get("unread") and p["unread"] == p.get("positions"):
        said = "No input position has a path to the output"
    elif p.get("uniform"):
        said = (f"Every input position has the same number of paths to the output (max = min, "
                f"10^{{{p['log10_max']:.1f}}})")
    else:
        said = (f"The centre input has {_x(p[f'center_{key}_ratio'])} as many paths to the output as the {where}"
                + (f" ({_x(p['center_edge_ratio'])} the mid-edge)" if key == "corner" else "")
                + _anchors(p, where)
                + (f"; {many(p['unread'], unit)} {'has' if p.get('unread') == 1 else 'have'} no path at all "
                   f"({p['unread_where']})" if p.get("unread") else "")
                + f"; the counts {'of the positions read ' if p.get('unread') else ''}span "
                  f"10^{{{p['log10_max'] - p['log10_max_over_min']:.1f}}} … 10^{{{p['log10_max']:.1f}}}"
                + (f"; {no_border(p['period'], unit, counts='they')}" if p.get("period") else ""))
    lines.append(f"- **Pathways.** {said}{norm}. ([figure]({f_paths}))")
    lines.append(f"- **Receptive field.** Units of `{rf['layer']}` see {' × '.join(f'{s:g}' for s in rf['size'])} "
                 f"input {unit}; {100 * rf['fraction_off']:.0f} % of them have a field that falls partly off the "
                 f"{whole}. ([figure]({f_rf}))")
    ratio = i[f"center_{key}_ratio"]
    lines.append(f"- **Sensitivity at initialisation.** Over {i['n_inits']} random initialisations the expected "
                 + (f"squared gradient at the centre is {_x(ratio)} that at the {where} (95 % interval "
                    f"{_x(i['interval95'][0])} … {_x(i['interval95'][1])})" if _positive(ratio) else
                    f"squared gradient {_zero_at(ratio, where)}")
                 + f"{_correlation(i, p)}. {_silent(i, unit)}([figure]({f_init}))")
    ratio = o[f"center_{key}_ratio"]
    why = f"random: {o['random_weights']}; " if o.get("random_weights") else ""
    lines.append(f"- **With this model's weights** ({why}{o['n_samples']} inputs). The squared gradient "
                 + (f"is {_more(ratio)} at the centre than at the {where}" if _positive(ratio) else
                    _zero_at(ratio, where))
                 + f"; half of the total sensitivity lies in the central {100 * o['area_ratio']['50']:.0f} % of the "
                 f"{whole}. {_silent(o, unit, 'input')}([figure]({f_own}))")
    if f["perturbation"] is not None:
        q = f["perturbation"]
        recovered = ("recovers the same map" if q["sign_correlation"] > 0.8 else
                     f"recovers it only noisily with {q['n_signs']} patterns for {q['positions']} positions (the "
                     "estimate's noise falls as 1/√patterns)")
        grad = q.get(f"gradient_center_{key}_ratio", 1.0)  # (answers saved before it: as measured)
        moves = (f"moves the output {_more(q[f'center_{key}_ratio'], 'more', 'less')} at the centre than at the "
                 f"{where}" if _positive(grad) else
                 f"moves the output by rounding error alone where the gradient is exactly 0 (it {_zero_at(grad, where)})")
        lines.append(f"- **Perturbation experiment.** Nudging one input position by ε = {q['eps']:g} {moves}; finite "
                     f"differences agree with the gradient to {q['fd_error']:.1e} (relative). Nudging all "
                     f"positions at once with random signs changes the output by {q['total_change']:.3g}·ε (RMS), "
                     f"against {q['predicted_total']:.3g}·ε predicted by adding up the single-position effects, and "
                     f"correlating the change with each position's sign {recovered} (r = "
                     f"{q['sign_correlation']:.2f}). ([figure]({f_pert}))")
    elif f.get("perturbation_skipped"):
        lines.append(f"- **Perturbation experiment.** {skip_words(f['perturbation_skipped'], 'Not run')}")
    lines += ["", f"{h2} 2. What does theory say?", ""]
    layers = f["path_layers"]
    lines.append(f"- {sup(theory_words((layers['fewest'], layers['most'], layers['all'])), html=False)} Measured "
                 f"with its nonlinearities (Monte-Carlo){_correlation(i, p, 'its log-map')}. "
                 + sentences(weighted_words(i.get("weighted_paths"), unit, where, refused=i.get("weighted_refused"),
                                            escape=_escape, interval=i.get("interval95"))) + f"([figure]({f_init}))")
    t = f["theory"]
    if t is not None:
        lines.append(f"- This model is a stack of {t['L']} convolutions of {t['k']} taps ({t['padding']} padding): "
                     f"{'its exact transfer-matrix counts give' if t['kind'] == 'numeric' else 'the closed form gives'} "
                     f"centre/{where} = {_x(t['exact_corner_ratio'])} exactly "
                     f"(measured {_x(p[f'center_{key}_ratio'])}); the depth law is *{t['kind']}* "
                     f"({t['domain']}). ([numbers]({f_json}))")
    e = f["erf"]
    law = (f" (theory for this stack: √(L(k²−1)/12) = {t['erf_std']:.2f} {unit})" if t is not None else "")
    over = (f"all positions of the {whole} (it reads every one through `{_escape(e['global_via'])}`)"
            if e.get("global_via") else
            f"the positions its receptive field ({' × '.join(f'{s:g}' for s in e['rf_size'])} {unit}) covers")
    lines.append(f"- The path counts to the centre unit spread with a standard deviation (moments) of "
                 f"{'only ' if narrower(e['center_paths_sigma'], e['even_std']) else ''}"
                 f"{' × '.join(f'{s:.1f}' for s in e['center_paths_sigma'])} {unit}{law}, against "
                 f"{' × '.join(f'{s:.1f}' for s in e['even_std'])} {unit} for an even spread over {over}. "
                 f"([numbers]({f_json}))")
    lines += ["", f"{h2} 3. How to overcome it", "",
              f"Each remedy of `edgewise.remedies` applied to this model (`edgewise remedies`; "
              f"[figure]({f_remedies})):", ""]
    from .report.tables import amount_words, ranked

    alts = f["alternatives"]
    for v in ranked([{"name": n, **v} for n, v in alts.items()]):  # closest to uniform first
        name = v["name"]
        cost = "" if not v.get("parameters_change") else \
            f", parameters {v['parameters_change']:+.0%}, multiply-adds {v['multiply_adds_change']:+.0%}"
        ratio = v[f"center_{key}_ratio"]
        if v["uniform"]:
            what = "uniform (every position the same count)"
        else:
            what = (f"centre/{where} {_x(ratio)}" + _anchors(v, where) + f", max/min {_x(v['max_over_min'])} over "
                    + ("the positions read" if v["unread"] else "all positions"))
            effect = correction(ratio, v)
            if effect == "unread":
                what += f"; never reads {many(v['unread'], unit)} ({v['unread_where']})"
            elif effect == "periodic":
                what += f"; {no_border(v['period'], unit)}"
            elif effect == "over-corrects":
                what += f"; over-corrects: the {where} gets {_x(1 / ratio)} more paths than the centre"
        how = f" ({amount_words(v['amount'])})" if v.get("amount") else ""
        lines.append(f"- {name}{how}: {what}{cost}")
    for name, why in f.get("misfits", {}).items():
        lines.append(f"- {name}: does not fit ({why.split(': ', 1)[-1]})")
    if f["padding"] in ("same", "valid", "full", "circular", "reflect", "replicate", "symmetric"):
        lines.append(f"\n({f['padding']} padding is this model as given, so it is not listed.)")
    same = [n for n in f.get("unchanged", []) if n != f["padding"]]
    if same:
        one = len(same) == 1
        lines.append(f"\n({and_list(same)} rewrite{'s' if one else ''} layers that compute what they did, so "
                     f"{'it is' if one else 'they are'} this model too and not listed.)")
    lines += ["", *[f"- {_escape(s)}" for s in rf["advice"]]]
    return "\n".join(lines) + "\n"

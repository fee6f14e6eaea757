"""The report's sections: each turns one model's results (a :class:`Subject`) into HTML via a :class:`Writer`.

A section function returns its HTML and records its numbers with the writer, which
also saves every figure as PNG and every result as JSON/NPY/CSV beside the page.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import nets
from .._axis import Adaptive, Resample, Transposed, Window
from .._stats import describe as describe_norm_stats
from ..answer import Evidence, skip_words
from ..facts import and_list
from ..results import write_atomic, write_json
from . import page, pascal
from .figures import panels
from .render import Renderer
from .tables import ratio_text, receptive_field_rows, remedy_rows

__all__ = ["Subject", "Writer", "PADDING_MODES", "answer", "pathways", "depth", "receptive_fields", "sensitivity",
           "remedies"]

#: the padding schemes compared in the pathways section (every padding a spec net can have)
PADDING_MODES = tuple(nets.PADDINGS)


@dataclass
class Subject:
    """One model of the report: its engine results, an id for the page, whether its weights are trained."""

    ev: Evidence
    slug: str
    trained: bool = False
    figures: dict = field(default_factory=dict)  # the answer's figures, drawn once, placed in their sections
    key: str = ""  # its key in the report's numbers: the model's name, or its title when names repeat
    layers: list | None = None  # the per-layer ratios (:func:`layer_ratios`), counted once
    scaling: object = None  # :func:`depth_scaling`, counted once

    def __post_init__(self):
        self.key = self.key or self.ev.name

    @property
    def title(self) -> str:
        return f"{self.ev.name}, input {'x'.join(map(str, self.ev.shape))}"

    @property
    def where(self) -> str:
        return self.ev.key

    def ratio(self, summary: dict) -> float:
        return summary[f"center_{self.where}_ratio"]


class Writer:
    """Saves figures (``figures/``), results and tables (``data/``) under ``out`` and makes their HTML."""

    def __init__(self, out: Path, cache: Path | None = None, render: Renderer | None = None):
        self.out, self.files, self.numbers = Path(out), [], {}
        self.cache = Path(cache) if cache is not None else self.out  # the report folder's lasting part
        self.render = render or Renderer()

    def figure(self, fig, ident: str, caption: str) -> str:
        """Render ``fig`` once: the PNG in ``figures/`` is the one the page embeds (shown at the page's size); with
        a parallel renderer the HTML is a placeholder until ``self.render.fill(page)``."""
        text, png = self.render.figure(fig, self.out / "figures" / ident, ident, caption)
        self.files.append(png)
        return text

    def diagram(self, fig, titles: dict, ident: str, caption: str, size) -> str:
        """A Pascal diagram (:func:`.diagram.sketch`): its SVG, hover ``titles`` added, beside its PNG in
        ``figures/``; the PNG embedded like :meth:`figure`'s, shown at ``size``."""
        text, png = self.render.figure(fig, self.out / "figures" / ident, ident, caption, size, titles)
        self.files += [png.with_suffix(".svg"), png]
        return text

    def result(self, result, folder: str, stem: str | None = None) -> None:
        self.files += result.save(self.out / "data" / folder, stem)

    def json(self, folder: str, stem: str, doc) -> str:
        path = self.out / "data" / folder / f"{stem}.json"
        self.files.append(write_json(path, doc))
        return path.relative_to(self.out).as_posix()

    def table(self, rows, folder: str, stem: str, caption: str | None = None) -> str:
        """The table as HTML, and as ``data/FOLDER/STEM.csv``."""
        path = self.out / "data" / folder / f"{stem}.csv"
        write_atomic(path, rows.csv().encode())
        self.files.append(path)
        notes = "".join(page.paragraph(n, "blurb") for n in rows.notes)
        return page.table(rows.headers, rows.rows, caption) + notes

    def record(self, section: str, subject: str, numbers: dict) -> None:
        self.numbers.setdefault(section, {})[subject] = numbers


def _h3(s: Subject) -> str:
    return f"<h3>{html.escape(s.title)}</h3>"


def _ratio_phrase(s: Subject, v: float) -> str:
    return f"centre/{s.where} {ratio_text(v)}"


# ----------------------------------------------------------------------- 1. the verdict

def answer(s: Subject, w: Writer) -> str:
    """The asker's questions answered with this model's numbers (:mod:`.verdict`); every answer links to its
    figure below and to the field of ``data/MODEL/verdict.json`` its numbers come from."""
    from . import verdict

    f = verdict.verdict_facts(s, layer_ratios(s), _block(s.ev.graph), depth_scaling(s))
    w.json(s.slug, "verdict", f)
    w.record("verdict", s.key, f)
    return _h3(s) + verdict.render(f)


# ----------------------------------------------------------------------- 2. pathways

def _subset(comparison, keep) -> object:
    """The comparison restricted to the original and the variants named in ``keep`` (misfits keep their row)."""
    rows = [r for r in comparison.rows if r["name"] in ("original", *keep)]
    maps = {n: m for n, m in comparison.maps.items() if n in ("original", *keep)}
    return replace(comparison, rows=rows, maps=maps, sensitivity={})


def spread_sentence(s: Subject, rows: list[dict]) -> str:
    """What a set of variants does to the counts, from their data (:mod:`edgewise.facts`): which are uniform
    (max = min), which leave positions unread, which repeat (no border effect), which over-correct, and the most
    centre-heavy."""
    from ..facts import correction, no_border, words_for

    words = words_for(s.ev.shape)
    fits = [r for r in rows if "error" not in r and r["name"] != "original"]
    effect = {r["name"]: correction(s.ratio(r), r) for r in fits}
    said = []
    uniform = [n for n, e in effect.items() if e == "uniform"]
    said.append(f"Uniform (max = min over all positions): {', '.join(uniform)}." if uniform else
                "None of them gives every position the same count.")
    alike: dict[tuple, list[str]] = {}  # variants that leave the same positions unread share a sentence
    for r in fits:
        if effect[r["name"]] == "unread":
            alike.setdefault((r["unread"], r["unread_where"]), []).append(r["name"])
    for (n, where), names in alike.items():
        said.append(_unread_sentence(names, n, where, words.unit))
    repeats: dict[tuple, list[str]] = {}  # variants whose counts repeat alike share a sentence
    for r in fits:
        if effect[r["name"]] == "periodic":
            repeats.setdefault(tuple(r["period"]), []).append(r["name"])
    for p, names in repeats.items():
        said.append(no_border(list(p), words.unit, names) + _ONLY_PHASE.format(border=words.border))
    for r in fits:
        if effect[r["name"]] == "over-corrects":
            said.append(f"{r['name']} over-corrects: the {words.border} gets {ratio_text(1 / s.ratio(r))} more "
                        "paths than the centre.")
    heavy = [r for r in fits if effect[r["name"]] == "centre-heavy"]
    if heavy:  # every variant at the largest spread (ties: remedies that leave the counts as they were)
        most = max(r["max_over_min"] for r in heavy)
        tops = [r["name"] for r in heavy if math.isclose(r["max_over_min"], most, rel_tol=1e-9)]
        base = next((r for r in rows if r["name"] == "original" and "error" not in r), None)
        as_given = base is not None and math.isclose(base["max_over_min"], most, rel_tol=1e-9)
        said.append(f"Most uneven: {and_list(tops)} (max/min {ratio_text(most)}"
                    f"{', as the original' if as_given else ''}).")
    return " ".join(said)


#: what a centre/border ratio of counts that repeat compares
_ONLY_PHASE = ", so the centre and the {border} differ only by where each falls in that pattern."


def _unread_sentence(names: list[str], n: int, where: str, unit: str) -> str:
    """``valid never reads 3 samples (the last 3 samples, 125–127): they have no path to the output.``"""
    from ..facts import many

    return (f"{and_list(names)} never read{'s' if len(names) == 1 else ''} {many(n, unit)} ({where}): "
            f"{'it has' if n == 1 else 'they have'} no path to the output.")


def _own_map(s: Subject) -> str:
    """" The model never reads 447 px (…): they have no path to the output." or " The model leaves no border
    effect: its counts repeat every 4 px down and across, …" where its map says so."""
    from ..facts import map_spread, no_border, words_for

    m, words = map_spread(s.ev.paths), words_for(s.ev.shape)
    if m["unread"]:
        return " " + _unread_sentence(["The model"], m["unread"], m["unread_where"], words.unit)
    if not m["period"]:
        return ""
    return " " + no_border(m["period"], words.unit, ["The model"]) + _ONLY_PHASE.format(border=words.border)


def pathways(s: Subject, w: Writer) -> str:
    """The model's pathway map, the same map under every padding mode, and the Pascal's-triangle diagram."""
    ev = s.ev
    w.result(ev.paths, s.slug, "pathways")
    modes = _subset(ev.comparison, PADDING_MODES)
    scale = " (log scale)" if panels(s.figures["pathways"])[0].log else ""
    parts = [_h3(s), w.figure(s.figures["pathways"], f"{s.slug}-pathways",
                              f"Number of paths from each input position to every output unit of {ev.name}{scale}: "
                              f"{_ratio_phrase(s, s.ratio(ev.paths.summary))}.{_own_map(s)} Normalisation: "
                              f"{describe_norm_stats(ev.graph)}.")]
    from .remedies import plot_comparison

    own = f" (original: the model as given, {ev.graph.padding} padding)" if ev.graph.padding else ""
    parts.append(w.figure(plot_comparison(modes, title=f"Padding schemes for {ev.name}"), f"{s.slug}-padding-modes",
                          f"The same map with every padding scheme that fits the model{own}. "
                          + spread_sentence(s, modes.rows)))
    parts.append(w.table(remedy_rows(modes, ev.graph.padding), s.slug, "padding_modes", "padding schemes compared"))
    parts.append(pascal.diagram(s, w))
    w.record("pathways", s.key, {"summary": ev.paths.summary, "norm_stats": ev.graph.norm_stats,
                                    "norm_layers": [name for name, _ in ev.graph.norm_layers],
                                    "padding_modes": {r["name"]: r.get(f"center_{s.where}_ratio") for r in modes.rows},
                                    "spread": {r["name"]: {k: r[k] for k in ("max_over_min", "unread", "uniform")}
                                               for r in modes.rows if "error" not in r}})
    return "".join(parts)


# ----------------------------------------------------------------------- 3. depth scaling

def _block(graph) -> str:
    """The spec item of the model's most common convolution kernel along the last axis, at stride 1 (the case
    theory covers; the model's own strides are in the per-layer curve)."""
    convs = [nd.axes[-1] for nd in graph if nd.kind == "conv" and nd.axes and isinstance(nd.axes[-1], Window)
             and nd.axes[-1].kernel > 1]
    if not convs:
        return "conv3"
    (k, d), _ = Counter((a.kernel, a.dilation) for a in convs).most_common(1)[0]
    return f"conv{k}" + (f"/d{d}" if d != 1 else "")


#: depths of the scaling curve: 1 … 64, about evenly spaced on a log axis
DEPTHS = sorted({int(round(v)) for v in np.geomspace(1, 64, 20)})


def _sliding(nd) -> bool:
    """A layer of sliding windows: not attention or data movement (connection lists), nor a Linear over the
    channels of each position (a 1×1 convolution in the graph, which no one calls a layer of the stack)."""
    windows = (Window, Adaptive, Transposed, Resample)
    if not all(isinstance(a, windows) for a in nd.axes) or nd.op.startswith("attention"):
        return False
    pointwise = all(isinstance(a, Window) and a.kernel == 1 and a.stride == 1 for a in nd.axes)
    return not (pointwise and nd.kind == "conv" and not nd.op.startswith("Conv"))


def layer_ratios(s: Subject) -> list[dict]:
    """Centre/edge (1-D) or centre/corner (2-D) path ratio from the input to every unit of each sliding-window
    layer, in the order the model computes them: ``{"name", "kind" (conv/pool), "stride" (per axis), "ratio"}``;
    a pool also has ``before``, the ratio at the layer it reads (in a branching model not the layer listed before
    it: GoogLeNet's branch pools read the block's input)."""
    from ..pathways import pathways as count

    if s.layers is not None:  # counted once: the verdict and the depth section both read them
        return s.layers
    rows = s.layers = []
    g = s.ev.graph

    def ratio(name: str) -> float:
        return 1.0 if name == g.input else float(s.ratio(count(g, layer=name).summary))

    for nd in g:
        if nd.kind in ("conv", "pool") and nd.axes and len(nd.shape) > 1 and not nd.is_padding and _sliding(nd):
            rows.append({"name": nd.name, "kind": nd.kind,
                         "stride": [a.stride if isinstance(a, Window) else 1 for a in nd.axes],
                         "ratio": ratio(nd.name)})
            if nd.kind == "pool":
                rows[-1]["before"] = ratio(next(i for i in nd.inputs if g[i].kind != "const"))
    return rows


def depth_scaling(s: Subject, depths=DEPTHS):
    """Exact depth scaling of the model's most common kernel on one axis of its input, every padding but the
    last (symmetric); computed once, for the verdict and the depth section."""
    from ..scaling import scaling

    if s.scaling is None or s.scaling.depths != list(depths):
        s.scaling = scaling(_block(s.ev.graph), depths, paddings=PADDING_MODES[:-1], input_shape=(1, s.ev.shape[-1]),
                            progress=False)
    return s.scaling


def depth(s: Subject, w: Writer, depths=DEPTHS) -> str:
    """The gap after each layer of the model, and exact depth scaling of its most common kernel with theory."""
    from .scaling import law_label, padding_law, plot_layers, plot_scaling, scaling_caption, scaling_table, step_label

    # the module's class names the pool (maxpool, avgpool) in the plot's labels
    layers = [{**r, "op": s.ev.graph[r["name"]].op} for r in layer_ratios(s)]
    names, ratios = [r["name"] for r in layers], [r["ratio"] for r in layers]
    steps = {r["name"]: step_label(r) for r in layers if step_label(r)}
    parts = [_h3(s)]
    if names:
        parts.append(w.figure(plot_layers(layers, s.where, s.ev.name), f"{s.slug}-layers",
                              f"Centre/{s.where} path ratio from the input to every unit of each layer of "
                              f"{s.ev.name}, in order: {ratio_text(ratios[0])} after the first, "
                              f"{ratio_text(ratios[-1])} after the last. "
                              + (f"Shaded: {'; '.join(f'{v} at {k}' for k, v in steps.items())}." if steps else
                                 "No layer pools or strides.")))
    block = _block(s.ev.graph)
    result = depth_scaling(s, depths)
    w.result(result, s.slug, "scaling")
    axis = (f", here on one axis of the {'x'.join(map(str, s.ev.shape[1:]))} input (a {s.where} ratio is the "
            "product of the axes' ratios)" if len(s.ev.shape) > 2 else "")
    parts.append(w.figure(plot_scaling(result), f"{s.slug}-scaling",
                          f"The model's most common kernel is {block}{axis}. " + scaling_caption(result)))
    parts.append(w.table(scaling_table(result), s.slug, "scaling_laws", f"depth laws of L*{block}"))
    w.record("depth", s.key, {"layers": names, "layer_ratios": ratios, "layer_steps": steps, "block": block,
                              "pool_inputs": {r["name"]: r["before"] for r in layers if "before" in r},
                              "scaling_input": list(result.input_shape), "laws": result.laws,
                              "theory_kind": result.theory_kind, "uniform": result.uniform,
                              "scaling_laws": {p: {**padding_law(result, p), "label": law_label(result, p)}
                                               for p in result.ratios}})
    return "".join(parts)


# ----------------------------------------------------------------------- 4. receptive fields

def receptive_fields(s: Subject, w: Writer) -> str:
    """Per-layer receptive fields, the share of units whose field falls off the image, padding advice."""
    from .figures import panel_text

    rf = s.ev.rf
    w.result(rf, s.slug, "receptive_field")
    advice = rf.advice.sentences()
    items = "".join(f"<li>{html.escape(a)}</li>" for a in advice)
    fig = s.figures["receptive_field"]
    parts = [_h3(s), w.figure(fig, f"{s.slug}-receptive_field",
                              f"Receptive fields of {s.ev.name}: {panel_text(fig)}."),
             w.table(receptive_field_rows(rf), s.slug, "receptive_fields", "receptive field per layer"),
             "<h4>Padding advice</h4>", f"<ul>{items}</ul>"]
    w.record("receptive_fields", s.key, {"layers": [l.to_dict() for l in rf.layers], "advice": advice})
    return "".join(parts)


# ----------------------------------------------------------------------- 5. sensitivity

def sensitivity(s: Subject, w: Writer) -> str:
    """Gradient maps at initialisation beside the path counts, with the model's weights, and the perturbation."""
    from .figures import panel_text
    from .sensitivity import init_text

    ev = s.ev
    w.result(ev.init, s.slug, "sensitivity_init")
    if ev.live is not None:  # the paths that avoid the layers that start silent (the verdict's no-path claims)
        w.result(ev.live, s.slug, "pathways_live")
    if ev.weighted is not None:  # the weighted paths (the verdict's weighted-* claims)
        w.result(ev.weighted, s.slug, "weighted_pathways")
    w.result(ev.own, s.slug, "sensitivity_weights")
    weights = "its trained weights" if s.trained else "the weights it was built with (random: not trained)"
    init, own = s.figures["sensitivity_init"], s.figures["sensitivity_weights"]
    parts = [_h3(s), w.figure(init, f"{s.slug}-sensitivity_init",
                              f"Expected squared input gradient of {ev.name} over {ev.n_inits} random "
                              f"initialisations ({init_text(ev.init)}): {panel_text(init)}. {_ratio_phrase(s, s.ratio(ev.init.summary)).capitalize()} "
                              f"against {ratio_text(s.ratio(ev.paths.summary))} for the paths."),
             w.figure(own, f"{s.slug}-sensitivity_weights",
                      f"The squared input gradient of {ev.name} with {weights}, over "
                      f"{ev.own.samples.shape[0]} inputs: {panel_text(own)}. "
                      f"{_ratio_phrase(s, s.ratio(ev.own.summary)).capitalize()}.")]
    if ev.pert is not None:
        w.result(ev.pert, s.slug, "perturbation")
        pert = s.figures["perturbation"]
        parts.append(w.figure(pert, f"{s.slug}-perturbation",
                              f"The perturbation experiment: nudge each input position by ε = {ev.pert.eps:g} and "
                              f"measure the change of the output: {panel_text(pert)}."))
    elif ev.pert_skipped is not None:
        w.json(s.slug, "perturbation_skipped", ev.pert_skipped)
        parts.append(page.note(skip_words(ev.pert_skipped)))
    w.record("sensitivity", s.key, {"init": ev.init.summary, "weights": ev.own.summary,
                                      "trained": s.trained,
                                      "perturbation": None if ev.pert is None else ev.pert.summary,
                                      "perturbation_skipped": ev.pert_skipped})
    return "".join(parts)


# ----------------------------------------------------------------------- 6. remedies

def remedies(s: Subject, w: Writer) -> str:
    """Every remedy's pathway map and ratios beside the original's (and Monte-Carlo sensitivity if measured)."""
    from .remedies import plot_comparison

    comp = s.ev.comparison
    w.result(comp, s.slug, "remedies")
    parts = [_h3(s), w.figure(s.figures["remedies"], f"{s.slug}-remedies",
                              f"Pathway maps of {s.ev.name} after each remedy. " + spread_sentence(s, comp.rows)),
             w.table(remedy_rows(comp, s.ev.graph.padding), s.slug, "remedies",
                     "remedies compared, from uniform to most uneven")]
    if comp.sensitivity:
        n = next((r["n_inits"] for r in comp.rows if "n_inits" in r), s.ev.n_inits)
        if any(np.any(np.asarray(m) > 0) for m in comp.sensitivity.values()):
            parts.append(w.figure(plot_comparison(comp, sensitivity=True), f"{s.slug}-remedies-sensitivity",
                                  f"The same remedies measured by the expected squared gradient over {n} random "
                                  f"initialisations (their centre/{s.where} ratios are the table's sens. column)."))
        else:  # a figure of hatched panels says less than this
            parts.append(page.paragraph(f"Measured by the expected squared gradient over {n} random "
                                        "initialisations, every variant's input gradients are exactly zero in each "
                                        "of them, so there is no sensitivity map to compare (the table's sens. "
                                        "column shows 0/0).", "blurb"))
    w.record("remedies", s.key, {"rows": comp.rows})
    return "".join(parts)

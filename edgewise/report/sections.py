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
import torch.nn as nn

from .. import nets
from .._axis import Window
from ..answer import Evidence, compose, facts
from ..errors import EdgewiseError
from ..results import write_atomic, write_json
from . import page, pascal
from .figures import save_figure
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

    def __init__(self, out: Path):
        self.out, self.files, self.numbers = Path(out), [], {}

    def figure(self, fig, ident: str, caption: str) -> str:
        self.files += save_figure(fig, self.out / "figures" / ident)
        return page.figure(fig, ident, caption)

    def png(self, path: Path, ident: str, caption: str, size) -> str:
        """A PNG already on disk (a diagram), embedded the same way."""
        return page.image(Path(path).read_bytes(), ident, caption, size)

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


def _log_ratio(s: Subject, row: dict) -> float:
    """log of a row's centre/border ratio; ±inf when a border or the centre has no path."""
    v = s.ratio(row)
    return math.log(v) if v and v > 0 and math.isfinite(v) else (-math.inf if v == 0 else math.inf)


def _h3(s: Subject) -> str:
    return f"<h3>{html.escape(s.title)}</h3>"


def _ratio_phrase(s: Subject, v: float) -> str:
    return f"centre/{s.where} {ratio_text(v)}"


# ----------------------------------------------------------------------- 1. the answer

def answer(s: Subject, w: Writer) -> str:
    """The three questions answered with this model's numbers; every claim links to its figure below."""
    f = facts(s.ev)
    data = w.json(s.slug, "answer", f)
    text = compose(f, lambda stem: data if stem == "answer.json" else f"#{s.slug}-{stem}", heading=3)
    w.record("answer", s.key, f)
    return f'<div class="answer">{page.markdown(text)}</div>'


# ----------------------------------------------------------------------- 2. pathways

def _subset(comparison, keep) -> object:
    """The comparison restricted to the original and the variants named in ``keep`` (misfits keep their row)."""
    rows = [r for r in comparison.rows if r["name"] in ("original", *keep)]
    maps = {n: m for n, m in comparison.maps.items() if n in ("original", *keep)}
    return replace(comparison, rows=rows, maps=maps, sensitivity={})


def pathways(s: Subject, w: Writer) -> str:
    """The model's pathway map, the same map under every padding mode, and the Pascal's-triangle diagram."""
    ev = s.ev
    w.result(ev.paths, s.slug, "pathways")
    modes = _subset(ev.comparison, PADDING_MODES)
    parts = [_h3(s), w.figure(s.figures["pathways"], f"{s.slug}-pathways",
                              f"Number of paths from each input position to every output unit of {ev.name} "
                              f"(log scale): {_ratio_phrase(s, s.ratio(ev.paths.summary))}.")]
    from .remedies import plot_comparison

    fits = [r for r in modes.rows if "error" not in r and r["name"] != "original"]
    uniform = [r["name"] for r in fits if abs(s.ratio(r) - 1) < 1e-9]
    starved = max(fits, key=lambda r: _log_ratio(s, r), default=None)
    parts.append(w.figure(plot_comparison(modes, title=f"Padding schemes for {ev.name}"), f"{s.slug}-padding-modes",
                          "The same map with every padding scheme that fits the model, relative to each map's "
                          "maximum. "
                          + (f"Most centre-heavy: {starved['name']} ({ratio_text(s.ratio(starved))}). "
                             if starved else "")
                          + (f"Every position gets the same count with {', '.join(uniform)}." if uniform else
                             "No scheme gives every position the same count here.")))
    parts.append(w.table(remedy_rows(modes), s.slug, "padding_modes", "padding schemes compared"))
    parts.append(pascal.diagram(s, w))
    w.record("pathways", s.key, {"summary": ev.paths.summary,
                                    "padding_modes": {r["name"]: r.get(f"center_{s.where}_ratio") for r in modes.rows}})
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


def layer_ratios(s: Subject) -> list[dict]:
    """Centre/edge (1-D) or centre/corner (2-D) path ratio from the input to every unit of each sliding-window
    layer, in the order the model computes them: ``{"name", "kind" (conv/pool), "stride" (per axis), "ratio"}``."""
    from ..pathways import pathways as count

    rows = []
    for nd in s.ev.graph:
        if nd.kind in ("conv", "pool") and nd.axes and len(nd.shape) > 1 and not nd.is_padding:
            rows.append({"name": nd.name, "kind": nd.kind,
                         "stride": [a.stride if isinstance(a, Window) else 1 for a in nd.axes],
                         "ratio": float(s.ratio(count(s.ev.graph, layer=nd.name).summary))})
    return rows


def depth(s: Subject, w: Writer, depths=DEPTHS) -> str:
    """The gap after each layer of the model, and exact depth scaling of its most common kernel with theory."""
    from ..scaling import scaling
    from .scaling import law_text, plot_layers, plot_scaling

    layers = layer_ratios(s)
    names, ratios = [r["name"] for r in layers], [r["ratio"] for r in layers]
    parts = [_h3(s)]
    if names:
        parts.append(w.figure(plot_layers(layers, s.where, s.ev.name), f"{s.slug}-layers",
                              f"Centre/{s.where} path ratio from the input to every unit of each layer of "
                              f"{s.ev.name}, in order: {ratio_text(ratios[0])} after the first, "
                              f"{ratio_text(ratios[-1])} after the last."))
    block, n = _block(s.ev.graph), s.ev.shape[-1]
    result = scaling(block, depths, paddings=PADDING_MODES[:-1], input_shape=(1, n), progress=False)
    w.result(result, s.slug, "scaling")
    parts.append(w.figure(plot_scaling(result), f"{s.slug}-scaling",
                          f"L stacked stride-1 copies of the model's most common kernel ({block}) on {n} positions: exact "
                          "centre/edge ratios (points) and closed forms (lines) where theory has one. Valid padding "
                          "grows exponentially (the Pascal's-triangle effect), zero padding like √L, the others "
                          "stay bounded or flat."))
    rows = [[p, law_text(result.laws.get(p)), result.theory_kind.get(p, "—"),
             ratio_text(next((r for r in reversed(result.ratios[p]) if math.isfinite(r)), math.nan))]
            for p in result.ratios]
    from .tables import Rows

    parts.append(w.table(Rows(["padding", "fitted law", "theory", "ratio at the deepest stack"], rows,
                              [f"depths {result.depths[0]}…{result.depths[-1]}; derivations in docs/theory.md."]),
                         s.slug, "scaling_laws", f"depth laws of L*{block}"))
    w.record("depth", s.key, {"layers": names, "layer_ratios": ratios, "block": block,
                                  "laws": result.laws, "theory_kind": result.theory_kind})
    return "".join(parts)


# ----------------------------------------------------------------------- 4. receptive fields

def receptive_fields(s: Subject, w: Writer) -> str:
    """Per-layer receptive fields, the share of units whose field falls off the image, padding advice."""
    rf = s.ev.rf
    w.result(rf, s.slug, "receptive_field")
    advice = rf.advice.sentences()
    items = "".join(f"<li>{html.escape(a)}</li>" for a in advice)
    parts = [_h3(s), w.figure(s.figures["receptive_field"], f"{s.slug}-receptive_field",
                              "Receptive-field size of every layer against the input size (top) and the share of "
                              "each layer's units whose field reaches past the image border (bottom)."),
             w.table(receptive_field_rows(rf), s.slug, "receptive_fields", "receptive field per layer"),
             "<h4>Padding advice</h4>", f"<ul>{items}</ul>"]
    w.record("receptive_fields", s.key, {"layers": [l.to_dict() for l in rf.layers], "advice": advice})
    return "".join(parts)


# ----------------------------------------------------------------------- 5. sensitivity

def sensitivity(s: Subject, w: Writer) -> str:
    """Gradient maps at initialisation beside the path counts, with the model's weights, and the perturbation."""
    ev = s.ev
    w.result(ev.init, s.slug, "sensitivity_init")
    w.result(ev.own, s.slug, "sensitivity_weights")
    weights = "its trained weights" if s.trained else "the weights it was built with (random: not trained)"
    parts = [_h3(s), w.figure(s.figures["sensitivity_init"], f"{s.slug}-sensitivity_init",
                              f"Expected squared input gradient over {ev.n_inits} random initialisations (left) "
                              f"beside the path counts (right): {_ratio_phrase(s, s.ratio(ev.init.summary))} "
                              f"against {ratio_text(s.ratio(ev.paths.summary))} for the paths."),
             w.figure(s.figures["sensitivity_weights"], f"{s.slug}-sensitivity_weights",
                      f"The squared input gradient of {ev.name} with {weights}, over "
                      f"{ev.own.samples.shape[0]} inputs: {_ratio_phrase(s, s.ratio(ev.own.summary))}.")]
    if ev.pert is not None:
        w.result(ev.pert, s.slug, "perturbation")
        parts.append(w.figure(s.figures["perturbation"], f"{s.slug}-perturbation",
                              f"The perturbation experiment: nudge each input by ε = {ev.pert.eps:g} and measure the "
                              "output change (left), against the gradient (middle), and all inputs at once with "
                              f"random signs ({ev.pert.n_signs} patterns)."))
    w.record("sensitivity", s.key, {"init": ev.init.summary, "weights": ev.own.summary,
                                      "trained": s.trained,
                                      "perturbation": None if ev.pert is None else ev.pert.summary})
    return "".join(parts)


# ----------------------------------------------------------------------- 6. remedies

def remedies(s: Subject, w: Writer) -> str:
    """Every remedy's pathway map and ratios beside the original's (and Monte-Carlo sensitivity if measured)."""
    from .remedies import plot_comparison

    comp = s.ev.comparison
    w.result(comp, s.slug, "remedies")
    best = sorted((r for r in comp.rows if "error" not in r), key=lambda r: abs(_log_ratio(s, r)))
    flat = [r["name"] for r in best if abs(s.ratio(r) - 1) < 1e-9]
    parts = [_h3(s), w.figure(s.figures["remedies"], f"{s.slug}-remedies",
                              f"Pathway maps of {s.ev.name} after each remedy, each relative to its own maximum. "
                              + (f"Uniform with {', '.join(flat)}." if flat else
                                 f"Flattest: {best[0]['name']} ({ratio_text(s.ratio(best[0]))}).")),
             w.table(remedy_rows(comp), s.slug, "remedies", "remedies compared")]
    if comp.sensitivity:
        parts.append(w.figure(plot_comparison(comp, sensitivity=True), f"{s.slug}-remedies-sensitivity",
                              "The same remedies measured by the expected squared gradient at random "
                              "initialisation: where it disagrees with the path counts, the scale of the signal "
                              "near the border, not the wiring, decides."))
    w.record("remedies", s.key, {"rows": comp.rows})
    return "".join(parts)

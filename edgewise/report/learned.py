"""Section 8 of the report: what trained networks learned about position (:mod:`edgewise.probe` on trained weights).

Every sentence is a probe result's own ``text()`` (computed from its numbers); every caption states only what
the figure's data fix (the model, the inputs, the settings). The default page probes the packaged
EfficientNet-Lite0 ImageNet weights; a report on trained models probes them.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from . import page
from .folder import CACHE

__all__ = ["DEFAULT", "SETTINGS", "probe_model", "explanations", "section", "cached_default", "mark_default"]

#: the trained network the default page probes (ImageNet weights shipped in a package: nothing downloads)
DEFAULT = "pretrained:efficientnet-lite0"

#: report-sized settings: enough inputs for stable numbers, few enough for the page's time budget
SETTINGS = {"bias_n": 64, "units_n": 64, "blind_spot_positions": 12, "perturb_n": 2, "perturb_steps": 4,
            "perturb_inits": 1, "readout_n": 32}


def _marker(cache) -> Path:
    return Path(cache) / CACHE / "probe" / "default-page.json"


def _marked(seed: int) -> dict:
    from ..probe._common import CACHE_VERSION

    return {"model": DEFAULT, "settings": SETTINGS, "seed": seed, "cache_version": CACHE_VERSION}


def cached_default(cache, seed: int = 0) -> bool:
    """Whether an earlier default report into the folder ``cache`` probed :data:`DEFAULT` with today's settings
    and ``seed``, so that section 8 now comes from the cache (``mark_default`` wrote it)."""
    try:
        return json.loads(_marker(cache).read_text()) == json.loads(json.dumps(_marked(seed)))
    except (OSError, ValueError):
        return False


def mark_default(cache, seed: int = 0) -> None:
    """Remember that the default page's probes (:data:`DEFAULT`, these settings, ``seed``) are cached."""
    from ..results import write_json

    write_json(_marker(cache), _marked(seed))


def _say(result) -> str:
    return "".join(page.paragraph(line) for line in result.text())


def _blind_stride(sub, stimulus_side: int = 64) -> int | None:
    """A grid step that keeps the blind-spot map to about :data:`SETTINGS`'s positions per axis."""
    room = min(sub.spatial) - min(stimulus_side, min(sub.spatial) // 2)
    return max(1, room // SETTINGS["blind_spot_positions"]) if room > 0 else None


def _bias(w, sub, ident: str, cache, seed: int) -> str:
    from ..probe import bias, blind_spots
    from .probe_bias import plot_bias_grid, plot_bias_profiles, plot_blind_spots

    r = bias(sub, n=SETTINGS["bias_n"], seed=seed, cache=cache, progress=False)
    w.result(r, f"learned/{ident}", "bias")
    w.record("learned", f"{sub.name}:bias", r.summary)
    parts = ["<h4>Spatial bias</h4>", page.paragraph(
        f"The mean activation of every channel of every convolution at every position over {r.n} inputs "
        f"({html.escape(str(r.data))}), after Alsallakh et al., “Mind the Pad” (ICLR 2021).", "blurb"), _say(r)]
    if len(sub.spatial) == 2:  # a 1-D model's maps are its profiles
        parts.append(w.figure(plot_bias_grid(r), f"learned-{ident}-bias-grid",
                              f"{sub.name}: how far each layer's mean activation departs from the same value "
                              f"everywhere (root mean square over channels, in channel spreads; each panel scaled to "
                              f"its own maximum), over {r.n} inputs, beside the inputs' own."))
    parts.append(w.figure(plot_bias_profiles(r), f"learned-{ident}-bias-profiles",
                          f"{sub.name}: the outermost " + ("rows and columns" if len(sub.spatial) == 2 else "samples")
                          + " against the interior, opposite sides together."))
    b = blind_spots(sub, stride=_blind_stride(sub), seed=seed, cache=cache, progress=False)
    w.result(b, f"learned/{ident}", "blind_spots")
    w.record("learned", f"{sub.name}:blind_spots", b.summary)
    parts += ["<h4>Blind spots</h4>", page.paragraph(
        "A small real stimulus slid over the input and the model's response to it at each position: where does "
        "the model stop seeing it?", "blurb"), _say(b),
        w.figure(plot_blind_spots(b), f"learned-{ident}-blind-spots",
                 f"{sub.name}: the response to the stimulus at each position, as a fraction of its response at the "
                 f"centre, and the top-1 class there.")]
    return "".join(parts)


def _units(w, sub, ident: str, cache, seed: int) -> str:
    from ..probe import ablate, units
    from .probe_units import plot_ablation, plot_unit_gallery, plot_units_per_layer

    found = units(sub, n=SETTINGS["units_n"], seed=seed, cache=cache, progress=False)
    w.result(found, f"learned/{ident}", "units")
    w.record("learned", f"{sub.name}:units", found.summary)
    parts = ["<h4>Padding-aware units</h4>", page.paragraph(
        "Channels whose activation marks the border (after Garcia-Gasulla et al., “Padding Aware Neurons”, 2023): "
        "each layer that reads padding is run again with the image continued past the border instead of the "
        "padding, and a unit counts when the padding alone moves its border activation.", "blurb"), _say(found)]
    s = found.summary
    if s["layers_analysed"]:
        parts.append(w.figure(plot_units_per_layer(found), f"learned-{ident}-units",
                              f"{sub.name}: padding-aware units per layer that reads padding ({s['units']} of "
                              f"{s['filters']} filters over {found.n} inputs)."))
    if s["units"]:
        parts.append(w.figure(plot_unit_gallery(found), f"learned-{ident}-units-gallery",
                              f"{sub.name}: the strongest padding-aware units, each kernel (summed over its input "
                              "channels) beside the unit's mean activation map."))
        ab = ablate(sub, found, n=SETTINGS["units_n"], seed=seed, cache=cache, progress=False)
        w.result(ab, f"learned/{ident}", "units_ablation")
        w.record("learned", f"{sub.name}:units_ablation", ab.summary)
        parts += [_say(ab), w.figure(plot_ablation(ab), f"learned-{ident}-units-ablation",
                                     f"{sub.name}: what silencing the padding-aware units changes in {ab.at}'s map, "
                                     "against the distance from the border, beside as many random other units.")]
    return "".join(parts)


def _perturb(w, sub, ident: str, cache, seed: int) -> str:
    from ..probe import perturb
    from .probe_perturb import plot_perturb_map, plot_regions

    steps = SETTINGS["perturb_steps"] ** (3 - len(sub.shape))  # a 1-D grid gets as many positions as a 2-D one
    stride = max(1, max(sub.spatial) // steps)
    r = perturb(sub, n=SETTINGS["perturb_n"], stride=stride, n_inits=SETTINGS["perturb_inits"], seed=seed,
                cache=cache, progress=False)
    w.result(r, f"learned/{ident}", "perturb")
    w.record("learned", f"{sub.name}:perturb", r.summary)
    return ("<h4>Nudging one input</h4>" + page.paragraph(
        "The question's thought experiment on trained weights: each input position (on a grid that includes the "
        "border rows and columns) nudged by ±ε in turn, and how far the output moves, beside the same "
        "architecture re-initialised and nudged on the same inputs.", "blurb") + _say(r)
        + w.figure(plot_perturb_map(r), f"learned-{ident}-perturb",
                   f"{sub.name}: how far the output moves when one input position is nudged, over {r.trained.shape[1]} inputs.")
        + w.figure(plot_regions(r), f"learned-{ident}-perturb-regions",
                   f"{sub.name}: the same, averaged over the centre, the edges and the corners (95 % intervals "
                   "over the inputs)."))


def _readout(w, sub, ident: str, cache, seed: int) -> str:
    from ..probe import readout
    from ..probe._common import with_remedy
    from .probe_readout import plot_readout_curves

    twin = with_remedy(sub, "circular")
    curves, says = {}, []
    for variant, label in ((sub, "as trained"), (twin, "circular padding")):
        for data in (variant.data, "constant"):
            r = readout(variant, data=data, n=SETTINGS["readout_n"], seed=seed, cache=cache, progress=False)
            stem = "readout" + ("_circular" if variant is twin else "") + ("_constant" if data == "constant" else "")
            w.result(r, f"learned/{ident}", stem)
            w.record("learned", f"{sub.name}:{stem}", r.summary)
            curves[f"{label}, {data}"] = r
            says.append(_say(r))
    return ("<h4>Position information</h4>" + page.paragraph(
        "How much of the position a linear readout shared by every position (so it cannot create position "
        "information itself) recovers from each layer's frozen features (after Islam et al., ICLR 2020): on the "
        "model's data and on a constant input, where only the border can tell positions apart, as trained and "
        "with every padding made circular.", "blurb") + "".join(says)
        + w.figure(plot_readout_curves(curves), f"learned-{ident}-readout",
                   f"{sub.name}: Spearman correlation between the readout and the horizontal, vertical and Gaussian "
                   f"position maps on held-out inputs, per layer, for the weights as trained and with circular "
                   f"padding, on {sub.data} and on a constant input."))


#: the measurements of one model, in the order the section shows them
_PARTS = (("spatial bias and blind spots", _bias), ("padding-aware units", _units), ("position readout", _readout),
          ("perturbation", _perturb))


def probe_model(w, model, shape, seed: int = 0, step=lambda text: None, name: str | None = None) -> str:
    """Every probe on one trained model, as HTML (results under ``data/learned/``, cached in the report folder)."""
    from ..probe import subject
    from .page import slug

    sub = subject(model, shape)
    sub.name = name or sub.name
    ident, cache = slug(sub.name), w.cache / CACHE / "probe"
    parts = [f"<h3>{html.escape(sub.name)}, input {'x'.join(map(str, sub.shape))}</h3>"]
    for what, part in _PARTS:
        step(f"{what} — {sub.name}")
        parts.append(part(w, sub, ident, cache, seed))
    return "".join(parts)


def explanations(w, seed: int = 0, size: str = "quick", step=lambda text: None) -> str:
    """With ``--train``: what the experiments' trained nets show, taken apart with controls (the border-digits
    net's centre/corner ratio; border-1d's loss at one end)."""
    from ..probe import explain_border1d, explain_ratio
    from .probe_explain import plot_border1d
    from .probe_perturb import plot_explanation

    cache = w.cache / CACHE / "probe"
    step("why the trained border-digits net looks so central")
    e = explain_ratio(size, seed=seed, cache=cache, progress=False)
    w.result(e, "learned/explanations", "border_digits_ratio")
    w.record("learned", "border-digits:ratio", e.summary)
    step("why border-1d loses accuracy at one end")
    b = explain_border1d(size, seed=seed, cache=cache, progress=False)
    w.result(b, "learned/explanations", "border_1d")
    w.record("learned", "border-1d:ends", b.summary)
    return ("<h3>Why the trained border-digits net looks so central</h3>" + page.paragraph(
        "Section 5's after-training ratio, taken apart: weights trained at the centre, trained everywhere and "
        "re-initialised, each probed with digits at the centre, placed uniformly, the report's mix and noise; "
        "the squared gradient beside a finite ±ε perturbation.", "blurb") + _say(e)
        + w.figure(plot_explanation(e), "learned-border-digits-ratio",
                   f"The centre/corner ratio of the border-digits net ({e.size}) by weights and probe inputs.")
        + "<h3>Why border-1d loses accuracy at one end</h3>" + page.paragraph(
            "The border-1d net (zero padding, trained on signals in the middle) tested at the start and the end: "
            "the padding's symmetry, the same task with the signals reversed in time, the net's perturbation "
            "profile and where MNIST-1D's signals carry their class.", "blurb") + _say(b)
        + w.figure(plot_border1d(b), "learned-border-1d",
                   f"border-1d ({b.size}): accuracy per placement with the signals as they are and reversed, the "
                   "class information of each end of the signal, and the perturbation profiles of the two nets."))


def section(w, models, seed: int = 0, step=lambda text: None, train: bool = False, size: str = "quick") -> str:
    """The section's HTML: each trained ``(model, shape, name)`` probed in turn (shape and name may be None: the
    model's own); with ``train``, the explanations of what the experiments' trained nets show."""
    intro = page.paragraph(
        "Sections 2–6 measure the architecture; this one measures what trained weights do with the border: the "
        "mean activation at each position, where a stimulus stops being seen, the units that mark the border and "
        "what removing them changes, how much position a readout recovers from each layer, and how far the output "
        "moves when one input is nudged.", "blurb")
    parts = [probe_model(w, m, s, seed, step, name) for m, s, name in models]
    if train:
        parts.append(explanations(w, seed, size, step))
    return intro + "".join(parts)

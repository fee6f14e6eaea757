"""Section 8 of the report: what trained networks learned about position (:mod:`edgewise.probe` on trained weights).

Every sentence is a probe result's own ``text()`` (computed from its numbers); every caption states only what
the figure's data fix (the model, the inputs, the settings). The default page probes the packaged
EfficientNet-Lite0 ImageNet weights; a report on trained models probes them.
"""

from __future__ import annotations

import html

from . import page
from .folder import CACHE

__all__ = ["DEFAULT", "SETTINGS", "probe_model", "section"]

#: the trained network the default page probes (ImageNet weights shipped in a package: nothing downloads)
DEFAULT = "pretrained:efficientnet-lite0"

#: report-sized settings: enough inputs for stable numbers, few enough for the page's time budget
SETTINGS = {"bias_n": 64, "units_n": 64, "blind_spot_positions": 12}


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
        f"({html.escape(str(r.data))}), after Alsallakh et al., “Mind the Pad” (ICLR 2021).", "blurb"), _say(r),
        w.figure(plot_bias_grid(r), f"learned-{ident}-bias-grid",
                 f"{sub.name}: how far each layer's mean activation departs from the same value everywhere "
                 f"(root mean square over channels, in channel spreads; each panel scaled to its own maximum), "
                 f"over {r.n} inputs, beside the inputs' own."),
        w.figure(plot_bias_profiles(r), f"learned-{ident}-bias-profiles",
                 f"{sub.name}: the outermost rows and columns against the interior, opposite sides together.")]
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


#: the measurements of one model, in the order the section shows them
_PARTS = (("spatial bias and blind spots", _bias), ("padding-aware units", _units))


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


def section(w, models, seed: int = 0, step=lambda text: None) -> str:
    """The section's HTML: each trained ``(model, shape, name)`` probed in turn (shape and name may be None: the
    model's own)."""
    intro = page.paragraph(
        "Sections 2–6 measure the architecture; this one measures what trained weights do with the border: the "
        "mean activation at each position, where a stimulus stops being seen, the units that mark the border, "
        "and what removing them changes.", "blurb")
    return intro + "".join(probe_model(w, m, s, seed, step, name) for m, s, name in models)

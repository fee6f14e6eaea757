"""Padding-aware units: the channels whose activation marks the border (after Garcia-Gasulla, Gimenez-Abalos and
Martin-Torres, "Padding Aware Neurons", 2023).

**The criterion.** A convolution's output position *reads padding* when its kernel window reaches past the
layer's input on some side (the top, bottom, left or right rows/columns of a 2-D map; the start or end of a 1-D
one); which positions do is exact arithmetic on the window (kernel, stride, dilation, and the padding of the
convolution together with any padding layer right before it, as :func:`edgewise.trace` reads them). Every other
output position is *interior*: its window lies inside the map, so the padding cannot touch it.

For each of ``n`` real inputs the probe recomputes the layer's output once more with the padding replaced by the
map's own edge values continued outwards (``replicate`` padding: what the layer would see if the content went on
past the border). At interior positions this is the layer's own output, exactly; at a border position the
difference is what the padding, and only the padding, did to the unit there. Per input ``i``, channel ``c`` and
side ``s``:

    d[i, c, s] = mean over the positions reading side s's padding of (output − content-continued output) / σ_c

where σ_c is the channel's standard deviation over the interior positions of all ``n`` inputs (floored at 1/1000
of the layer's typical interior spread, so that a unit constant inside the image has a finite effect). The unit's
*effect* on side ``s`` is the mean of ``d[i, c, s]`` over inputs, and its *consistency* the share of inputs whose
``d`` has that sign and a size of at least ``threshold``. A channel is a **padding-aware unit** on side ``s``
when ``|effect| ≥ threshold`` (default 1: the padding moves its border activation by at least one interior
standard deviation) and the consistency is at least ``consistency`` (default 0.9); it is one if it is on any
side. A positive effect means the unit is excited where its window reads padding, a negative one suppressed.

Comparing with the content-continued output, rather than border activations with interior ones directly, keeps
what the data look like near the border (digits on an empty canvas, sky at the top of photos) out of the
measurement: a unit that only responds to content can shift at the border but not consistently, input after
input, in the same direction. Units are measured at the convolution's output, before normalisation and activation
(a per-channel affine normalisation changes neither the effect's size nor, with a positive scale, its sign).
A layer whose window never reads padding (1×1 kernels, unpadded convolutions) cannot hold one and is reported so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EdgewiseError
from ._common import (ProbeResult, cached, check_layers, conv_shapes, data_key, fingerprint, generator, inputs,
                      placement, progress_bar, run_key, running, subject, to_numpy)

__all__ = ["units", "ablate", "PaddingUnits", "Ablation", "Geometry", "layer_geometry", "side_masks", "SIDES",
           "THRESHOLD", "CONSISTENCY"]

KIND = "units"
#: the sides of a 1-D and a 2-D map, in the order of the per-side arrays
SIDES = {1: ("start", "end"), 2: ("top", "bottom", "left", "right")}
#: default effect size (interior standard deviations) and share of inputs a padding-aware unit needs
THRESHOLD, CONSISTENCY = 1.0, 0.9
#: how many of the strongest units keep their kernel and mean map in the result
KEEP = 32
#: σ floor, as a share of the layer's typical interior standard deviation
FLOOR = 1e-3
ANALYSED = "analysed"
#: ablation kinds → how the text names them
HOW = {"mean": "each replaced by its interior mean", "zero": "each set to zero",
       "continued": "each given, at the border, its output with the content continued instead of the padding"}


# ------------------------------------------------------------------------------------------------ geometry

@dataclass(frozen=True)
class Geometry:
    """Where a convolution's windows lie, per spatial axis.

    Attributes:
        content: the size of the map the layer reads, before any padding.
        explicit: (before, after) padding added by padding layers right before the convolution.
        pad: (before, after) padding in all (the explicit one plus the convolution's own).
        kernel, stride, dilation: the window.
        out: the size of the layer's output.
        mode: the padding mode of the convolution's own padding (or of the padding layer when it has none).
    """

    content: tuple[int, ...]
    explicit: tuple[tuple[int, int], ...]
    pad: tuple[tuple[int, int], ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]
    mode: str


def layer_geometry(graph, name: str) -> Geometry:
    """The :class:`Geometry` of convolution ``name`` in a traced graph, folding the padding layers that feed it."""
    from .._axis import Window

    node = graph[name]
    if node.kind != "conv" or not node.axes or not all(isinstance(a, Window) for a in node.axes):
        raise EdgewiseError(f"probe units: layer {name!r} ({node.op}) is not a sliding-window convolution; "
                            "choose convolutions with layers=[...]")
    explicit = [[0, 0] for _ in node.axes]
    modes = {a.mode for a in node.axes if sum(a.pad)}
    src = graph[node.inputs[0]]
    while src.is_padding:
        for k, a in enumerate(src.axes):
            explicit[k][0] += a.pad[0]
            explicit[k][1] += a.pad[1]
        modes |= {a.mode for a in src.axes if sum(a.pad)}
        src = graph[src.inputs[0]]
    if any(p < 0 for e in explicit for p in e):
        raise EdgewiseError(f"probe units: layer {name!r} is fed by a layer that crops its input; leave it out "
                            "with layers=[...]")
    pad = tuple((e[0] + a.pad[0], e[1] + a.pad[1]) for e, a in zip(explicit, node.axes))
    return Geometry(tuple(src.spatial), tuple(map(tuple, explicit)), pad, tuple(a.kernel for a in node.axes),
                    tuple(a.stride for a in node.axes), tuple(a.dilation for a in node.axes), tuple(node.spatial),
                    "+".join(sorted(modes)) or "none")


def _reads(geom: Geometry, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output position along ``axis``: whether its window reads the padding before / after the map."""
    o = np.arange(geom.out[axis])
    first = o * geom.stride[axis] - geom.pad[axis][0]
    last = first + (geom.kernel[axis] - 1) * geom.dilation[axis]
    return first < 0, last >= geom.content[axis]


def side_masks(geom: Geometry) -> np.ndarray:
    """Boolean masks (one per side of :data:`SIDES`, each of the output's shape) of the positions whose window
    reads that side's padding. A position where none is true is interior."""
    nd = len(geom.out)
    if nd not in SIDES:
        raise EdgewiseError(f"probe units: only 1-D and 2-D convolutions are supported, got {nd}-D")
    masks = []
    for axis in range(nd):
        for reads in _reads(geom, axis):
            shape = [1] * nd
            shape[axis] = -1
            masks.append(np.broadcast_to(reads.reshape(shape), geom.out))
    return np.stack(masks)


def _layer(module: nn.Module, graph, name: str) -> tuple[Geometry | None, str]:
    """A chosen layer's geometry and status: ``ANALYSED``, or why it cannot hold a padding-aware unit."""
    if not isinstance(module, (nn.Conv1d, nn.Conv2d)):  # remedy layers subclass these; transposed ones do not
        return None, f"not a 1-D or 2-D convolution ({type(module).__name__})"
    if name not in graph:
        return None, "not traced (called more than once, or not on the input's path)"
    try:
        geom = layer_geometry(graph, name)
    except EdgewiseError:
        return None, "not a sliding window with padding edgewise can read"
    masks = side_masks(geom)
    if not masks.any():
        return geom, "reads no padding"
    if masks.any(0).all():
        return geom, "no interior position"
    return geom, ANALYSED


def _geometries(sub, layers) -> dict[str, tuple[Geometry | None, str]]:
    """Each layer's geometry and status (``ANALYSED`` or the reason it is left out)."""
    from .._trace import trace

    try:
        graph = trace(sub.module, sub.shape)
    except EdgewiseError as e:
        raise EdgewiseError(f"probe units: cannot read the layers' padding of {sub.name}: {e}") from None
    mods = dict(sub.module.named_modules())
    return {name: _layer(mods[name], graph, name) for name in layers}


# ------------------------------------------------------------------------------------------------ measuring

def _continued(module: nn.Module, x: torch.Tensor, geom: Geometry) -> torch.Tensor:
    """The layer's output on input ``x`` (as the layer receives it) with every padding replaced by the map's
    edge values continued outwards (replicate)."""
    crop = tuple(slice(b, n + b) for (b, _), n in zip(geom.explicit, geom.content))
    content = x[(Ellipsis, *crop)]
    flat = [p for pair in reversed(geom.pad) for p in pair]
    conv = (F.conv1d, F.conv2d)[len(geom.out) - 1]
    return conv(F.pad(content, flat, mode="replicate"), module.weight, module.bias, module.stride, 0,
                module.dilation, module.groups)


class _Layer:
    """Running statistics of one layer over batches: per-input border shifts, interior moments, mean map.

    Only the border positions (a thin frame) are gathered; interior sums are the whole map's minus the border's,
    so the cost per batch is a few passes over the layer's output."""

    def __init__(self, name: str, geom: Geometry, n: int):
        self.name, self.geom = name, geom
        masks = side_masks(geom)
        masks = masks.reshape(len(masks), -1)
        border = masks.any(0)
        self.border = torch.from_numpy(np.flatnonzero(border))
        self.sides = [torch.from_numpy(np.flatnonzero(m[border])) for m in masks]  # within the border list
        self.interior = torch.from_numpy(np.flatnonzero(~border))
        self.shift: np.ndarray | None = None
        self.n, self.count, self.mean, self.m2, self.total = n, 0, None, None, None
        self.mismatch = None

    def add(self, start: int, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        y = y.detach()
        if self.border.device != y.device:  # the index tensors go where the outputs are, once
            self.border, self.interior = self.border.to(y.device), self.interior.to(y.device)
            self.sides = [idx.to(y.device) for idx in self.sides]
        cf = _continued(module, x.detach(), self.geom)
        if cf.shape != y.shape:
            self.mismatch = f"recomputed shape {tuple(cf.shape)} ≠ output {tuple(y.shape)}"
            return
        yf, cff = y.flatten(2), cf.flatten(2)
        inner, again = yf[:1, :, self.interior], cff[:1, :, self.interior]  # checked on the batch's first input
        scale = float(inner.abs().max()) if inner.numel() else 0.0
        if not torch.allclose(again, inner, rtol=1e-3, atol=1e-4 * scale + 1e-6):
            self.mismatch = "its output is not the convolution of its padded input"
            return
        if self.shift is None:
            self.shift = np.full((self.n, y.shape[1], len(self.sides)), np.nan)
            self.total = torch.zeros(y.shape[1:], dtype=torch.float64, device=y.device)
        edge = yf[:, :, self.border]
        diff = (edge - cff[:, :, self.border]).double()
        for s, idx in enumerate(self.sides):
            if len(idx):
                self.shift[start:start + len(y), :, s] = to_numpy(diff[:, :, idx].mean(-1))
        self._moments(yf, edge)
        self.total += y.sum(0).double()

    def _moments(self, yf: torch.Tensor, edge: torch.Tensor) -> None:
        """Chan's merge of this batch's interior mean and sum of squared deviations (per channel) into the
        running ones; interior = whole map minus border."""
        k = yf.shape[0] * len(self.interior)
        mean = (yf.sum((0, 2)).double() - edge.sum((0, 2)).double()) / k
        m = mean.to(yf.dtype)[None, :, None]
        m2 = ((yf - m) ** 2).sum((0, 2)).double() - ((edge - m) ** 2).sum((0, 2)).double()
        m2 = m2.clamp_min(0)
        if self.count == 0:
            self.count, self.mean, self.m2 = k, mean, m2
            return
        delta, total = mean - self.mean, self.count + k
        self.mean = self.mean + delta * k / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * k / total
        self.count = total


def _scan(module: nn.Module, x: torch.Tensor, stats: dict[str, _Layer], batch: int, bar) -> None:
    """Run the model over ``x`` in batches with a hook on every analysed layer feeding its :class:`_Layer`.
    Hooks are removed in ``finally``; a module called twice in one pass is measured at its first call."""
    mods = dict(module.named_modules())
    handles, seen, start = [], set(), [0]

    def hook(name):
        def record(mod, args, output):
            if name not in seen:
                seen.add(name)
                stats[name].add(start[0], mod, args[0], output)
        return record

    try:
        for name in stats:
            handles.append(mods[name].register_forward_hook(hook(name)))
        with torch.no_grad():
            for start[0] in range(0, len(x), batch):
                seen.clear()
                module(x[start[0]:start[0] + batch])
                missing = [n for n in stats if n not in seen]
                if missing:
                    raise EdgewiseError(f"probe units: layers {missing} did not run in the forward pass")
                if bar is not None:
                    bar.update(min(batch, len(x) - start[0]))
    finally:
        for h in handles:
            h.remove()


def _effects(shift: np.ndarray, sigma: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Per channel and side: the mean standardised shift over inputs, and the share of inputs whose shift has
    that sign and a size of at least ``threshold`` (NaN where the side reads no padding)."""
    d = shift / sigma[None, :, None]
    effect = d.mean(0)
    with np.errstate(invalid="ignore"):
        consistency = (np.sign(effect)[None] * d >= threshold).mean(0)
    consistency[np.isnan(effect)] = np.nan
    return effect, consistency


# ------------------------------------------------------------------------------------------------ results

def _pack(arrays: list[np.ndarray], nd: int) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of different shapes (all with ``nd`` axes) as one flat float32 array and their shapes."""
    flat = np.concatenate([a.astype(np.float32).ravel() for a in arrays]) if arrays else np.zeros(0, np.float32)
    return flat, np.array([a.shape for a in arrays], dtype=np.int64).reshape(len(arrays), nd)


def _unpack(flat: np.ndarray, shapes: np.ndarray, k: int) -> np.ndarray:
    ends = np.cumsum([int(np.prod(s)) for s in shapes])
    begin = ends[k - 1] if k else 0
    return flat[begin:ends[k]].reshape(tuple(int(v) for v in shapes[k]))


def _n(k: int, word: str, plural: str | None = None) -> str:
    """``k`` and ``word``, plural unless ``k`` is 1."""
    return f"{k} {word if k == 1 else plural or word + 's'}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "no"


@dataclass
class PaddingUnits(ProbeResult):
    """The padding-aware units of a model (the criterion: :mod:`edgewise.probe.units`).

    Per-unit arrays cover every channel of the analysed layers (those whose windows read padding), in layer
    order; ``effect`` and ``consistency`` have one column per side (:data:`SIDES`), NaN where a layer reads no
    padding on that side. ``kernels`` and ``maps`` hold the weights (in-channels × kernel) and the mean output
    map over the inputs of the ``shown`` units (the strongest found, at most 32), packed flat with their shapes.
    """

    kind = "units"

    name: str
    shape: list
    data: object
    n: int
    seed: int
    threshold: float
    consistency_required: float
    fingerprint: str
    layers: list
    status: list
    channels: list
    geometry: dict
    unit_layer: np.ndarray
    unit_channel: np.ndarray
    effect: np.ndarray
    consistency: np.ndarray
    interior_mean: np.ndarray
    interior_std: np.ndarray
    shown: np.ndarray
    kernels: np.ndarray
    kernel_shapes: np.ndarray
    maps: np.ndarray
    map_shapes: np.ndarray

    @property
    def sides(self) -> tuple[str, ...]:
        return SIDES[len(self.shape) - 1]

    @property
    def passes(self) -> np.ndarray:
        """(units × sides) whether the unit is padding-aware on that side."""
        with np.errstate(invalid="ignore"):
            return ((np.abs(self.effect) >= self.threshold) & (self.consistency >= self.consistency_required))

    @property
    def found(self) -> np.ndarray:
        """Indices of the padding-aware units, strongest first."""
        idx = np.flatnonzero(self.passes.any(1))
        return idx[np.argsort(-self.strength[idx], kind="stable")]

    @property
    def strength(self) -> np.ndarray:
        """Per unit, the largest |effect| over the sides it passes on (over all sides when it passes on none)."""
        mag = np.where(np.isnan(self.effect), -np.inf, np.abs(self.effect))
        passing = np.where(self.passes, mag, -np.inf)
        return np.where(self.passes.any(1), passing.max(1), mag.max(1)) if len(mag) else np.zeros(0)

    def best_side(self, unit: int) -> int:
        """The side of ``unit``'s strongest effect among those it passes on (any side if none)."""
        mag = np.where(np.isnan(self.effect[unit]), -np.inf, np.abs(self.effect[unit]))
        ok = self.passes[unit]
        return int(np.argmax(np.where(ok, mag, -np.inf)) if ok.any() else np.argmax(mag))

    def unit(self, k: int) -> dict:
        """Unit ``k`` (index into the per-unit arrays) as a dict: layer, channel, the effect and consistency on its
        strongest side (:meth:`best_side`), and every side it passes on."""
        s = self.best_side(k)
        return {"layer": self.layers[int(self.unit_layer[k])], "channel": int(self.unit_channel[k]),
                "effect": float(self.effect[k, s]), "side": self.sides[s],
                "sides": [self.sides[j] for j in np.flatnonzero(self.passes[k])],
                "consistency": float(self.consistency[k, s])}

    def kernel(self, j: int) -> np.ndarray:
        """The weights (in-channels × kernel) of the ``j``-th shown unit."""
        return _unpack(self.kernels, self.kernel_shapes, j)

    def mean_map(self, j: int) -> np.ndarray:
        """The mean output map over the inputs of the ``j``-th shown unit."""
        return _unpack(self.maps, self.map_shapes, j)

    def per_layer(self) -> list[dict]:
        """One dict per chosen layer: name, status, filters, padding-aware units and per side counts."""
        found = self.passes.any(1)
        out = []
        for i, (name, status, c) in enumerate(zip(self.layers, self.status, self.channels)):
            here = self.unit_layer == i
            row = {"layer": name, "status": status, "filters": int(c), "units": int(found[here].sum())}
            row["per_side"] = {s: int(self.passes[here, j].sum()) for j, s in enumerate(self.sides)}
            out.append(row)
        return out

    @property
    def summary(self) -> dict:
        found = self.found
        total = int(sum(self.channels))
        padded = int(sum(c for c, s in zip(self.channels, self.status) if s == ANALYSED))
        return {"model": self.name, "units": len(found), "filters": total, "filters_reading_padding": padded,
                "fraction": len(found) / total if total else None,
                "fraction_reading_padding": len(found) / padded if padded else None,
                "layers_analysed": sum(s == ANALYSED for s in self.status),
                "per_layer": {r["layer"]: r["units"] for r in self.per_layer() if r["status"] == ANALYSED},
                "strongest": self.unit(int(found[0])) if len(found) else None,
                "threshold": self.threshold, "consistency": self.consistency_required, "inputs": self.n}

    def text(self) -> list[str]:
        s, rows = self.summary, self.per_layer()
        analysed = [r for r in rows if r["status"] == ANALYSED]
        crit = (f"(criterion: padding shifts the unit's border activation by ≥ {self.threshold:g} interior "
                f"standard deviation{'' if self.threshold == 1 else 's'}, the same way, in "
                f"≥ {100 * self.consistency_required:g} % of "
                f"{self.n} inputs)")
        out = []
        if not analysed:
            out.append(f"No layer of {self.name} reads padding, so it cannot have a padding-aware unit.")
        elif s["units"] == 0:
            out.append(f"No padding-aware unit found among the {s['filters_reading_padding']} filters of the "
                       f"{len(analysed)} layers of {self.name} that read padding {crit}.")
        else:
            are = "is a padding-aware unit" if s["units"] == 1 else "are padding-aware units"
            out.append(f"{s['units']} of {s['filters']} filters ({_pct(s['units'], s['filters'])}) of "
                       f"{self.name} {are}; of the {s['filters_reading_padding']} filters "
                       f"in the {len(analysed)} layers that read padding, "
                       f"{_pct(s['units'], s['filters_reading_padding'])} {crit}.")
            top = max(analysed, key=lambda r: (r["units"] / r["filters"], r["units"]))
            holding = sum(r["units"] > 0 for r in analysed)
            verb = "holds" if holding == 1 else "hold"
            out.append(f"{holding} of the {len(analysed)} layers {verb} one; the largest share is in {top['layer']}"
                       f" ({top['units']} of {top['filters']} filters, {_pct(top['units'], top['filters'])}).")
            u = s["strongest"]
            way = "excited" if u["effect"] > 0 else "suppressed"
            out.append(f"The strongest is channel {u['channel']} of {u['layer']}: {way} where its window reads "
                       f"the {u['side']} padding, by {abs(u['effect']):.3g} interior standard deviations "
                       f"(in {100 * u['consistency']:.0f} % of the inputs).")
            out.append(self._sides_sentence())
        rest = [r for r in rows if r["status"] != ANALYSED]
        if rest:
            why: dict[str, int] = {}
            for r in rest:
                why[r["status"]] = why.get(r["status"], 0) + 1
            out.append(f"{len(rest)} of the {len(rows)} chosen layers cannot hold one: "
                       + "; ".join(f"{k} ({v})" for k, v in why.items()) + ".")
        return out

    def _sides_sentence(self) -> str:
        passes = self.passes[self.found]
        n_sides = passes.sum(1)
        one, every = int((n_sides == 1).sum()), int((n_sides == len(self.sides)).sum())
        counts = ", ".join(f"{s} {int(passes[:, j].sum())}" for j, s in enumerate(self.sides))
        return (f"{_n(one, 'unit')} {'marks' if one == 1 else 'mark'} a single side and {every} every side; "
                f"units per side: {counts}.")


# ------------------------------------------------------------------------------------------------ units()

def units(model, input_shape=None, *, data=None, n: int = 64, layers=None, seed: int = 0, batch: int = 16,
          threshold: float = THRESHOLD, consistency: float = CONSISTENCY, cache=None,
          progress: bool = True, device=None) -> PaddingUnits:
    """Find the padding-aware units of ``model``: channels whose activation marks where the window reads padding.

    The criterion is in this module's docstring: per input, the shift that the padding causes at the positions
    reading it (against the same layer with the content continued past the border), in interior standard
    deviations; a unit needs ``|mean shift| ≥ threshold`` on some side, in the same direction for at least the
    share ``consistency`` of the inputs.

    Args:
        model: an ``nn.Module`` or a reference (``pretrained:efficientnet-lite0``, ``experiment:TASK:REMEDY:SEED``,
            a spec string).
        input_shape: C×H×W or C×L (default: the model's own).
        data: a data kind of :data:`edgewise.probe.DATA` or a tensor of inputs (default: what suits the model).
        n: how many inputs.
        layers: layer names (default every convolution).
        seed: seeds the inputs.
        batch: inputs per forward pass.
        threshold: the effect size (interior standard deviations) a unit needs.
        consistency: the share of inputs that must show it.
        cache: a folder to keep the result in (computed once per model, inputs and options).
        progress: show a progress bar.
        device: where to run (default: where the model's parameters are); the model is moved there for the
            call and back after. Inputs are made in the model's floating dtype; the statistics are float64.

    Returns:
        A :class:`PaddingUnits`.

    Example:
        >>> from edgewise.testing.planted import planted_detector
        >>> model, shape, (layer, channel) = planted_detector()
        >>> found = units(model, shape, n=16, progress=False)
        >>> found.unit(found.found[0])["layer"], found.unit(found.found[0])["channel"]
        ('conv2', 5)
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise EdgewiseError(f"probe units: threshold must be a positive number of standard deviations, got "
                            f"{threshold!r}")
    if not (isinstance(consistency, (int, float)) and 0 < consistency <= 1):
        raise EdgewiseError(f"probe units: consistency must be a share of inputs in (0, 1], got {consistency!r}")
    if int(batch) < 1:
        raise EdgewiseError(f"probe units: batch must be at least 1, got {batch}")
    dev = placement(device)
    sub = subject(model, input_shape)
    names = check_layers(sub.module, layers, sub.shape)
    x = inputs(sub, data, n, seed)
    key = {"model": fingerprint(sub.module), "shape": list(sub.shape), "data": data_key(data), "n": len(x),
           "layers": names, "seed": seed, "threshold": float(threshold), "consistency": float(consistency),
           "run": run_key(sub.module, dev)}

    def compute() -> PaddingUnits:
        with running(sub.module, dev) as kind:
            return _units(sub, x.to(**kind), names, data, seed, batch, float(threshold), float(consistency), progress)

    return cached(cache, KIND, key, compute, PaddingUnits, sub.name)


def _units(sub, x, names, data, seed, batch, threshold, consistency, progress) -> PaddingUnits:
    geoms = _geometries(sub, names)
    stats = {name: _Layer(name, g, len(x)) for name, (g, st) in geoms.items() if st == ANALYSED}
    if stats:
        with progress_bar(len(x), f"padding-aware units of {sub.name}", progress) as bar:
            _scan(sub.module, x, stats, int(batch), bar)
    mods = dict(sub.module.named_modules())
    status = [stats[nm].mismatch if nm in stats and stats[nm].mismatch else st for nm, (g, st) in geoms.items()]
    rows = _unit_rows(names, status, stats, threshold)
    result = PaddingUnits(
        name=sub.name, shape=list(sub.shape), data=data_key(data) if data is not None else sub.data, n=len(x),
        seed=int(seed), threshold=threshold, consistency_required=consistency, fingerprint=fingerprint(sub.module),
        layers=list(names), status=status, channels=[int(_out_channels(mods[nm])) for nm in names],
        geometry={nm: _geom_dict(g) for nm, (g, _) in geoms.items() if g is not None}, **rows,
        shown=np.zeros(0, np.int64), kernels=np.zeros(0, np.float32), kernel_shapes=np.zeros((0, len(sub.shape)),
                                                                                             np.int64),
        maps=np.zeros(0, np.float32), map_shapes=np.zeros((0, len(sub.shape) - 1), np.int64))
    shown = result.found[:KEEP]
    kernels = [to_numpy(mods[result.layers[result.unit_layer[k]]].weight[result.unit_channel[k]]) for k in shown]
    maps = [to_numpy(stats[result.layers[result.unit_layer[k]]].total[result.unit_channel[k]] / len(x))
            for k in shown]
    result.shown = shown.astype(np.int64)
    result.kernels, result.kernel_shapes = _pack(kernels, len(sub.shape))
    result.maps, result.map_shapes = _pack(maps, len(sub.shape) - 1)
    return result


def _out_channels(m: nn.Module) -> int:
    return getattr(m, "out_channels", 0)


def _geom_dict(g: Geometry) -> dict:
    return {k: [list(v) if isinstance(v, tuple) else v for v in val] if isinstance(val, tuple) else val
            for k, val in g.__dict__.items()}


def _unit_rows(names, status, stats, threshold) -> dict:
    """The per-unit arrays over the analysed layers (in layer order)."""
    cols = {"unit_layer": [], "unit_channel": [], "effect": [], "consistency": [], "interior_mean": [],
            "interior_std": []}
    analysed = [(i, stats[nm]) for i, (nm, st) in enumerate(zip(names, status)) if st == ANALYSED]
    for i, st in analysed:
        var = to_numpy(st.m2 / max(st.count - 1, 1))
        typical = math.sqrt(float(np.mean(var)))
        sigma = np.sqrt(var + (FLOOR * typical) ** 2 + 1e-24)
        effect, consistency = _effects(st.shift, sigma, threshold)
        c = len(var)
        cols["unit_layer"].append(np.full(c, i))
        cols["unit_channel"].append(np.arange(c))
        cols["effect"].append(effect)
        cols["consistency"].append(consistency)
        cols["interior_mean"].append(to_numpy(st.mean))
        cols["interior_std"].append(np.sqrt(var))
    nsides = len(next(iter(stats.values())).sides) if stats else 0
    empty = {"unit_layer": (0,), "unit_channel": (0,), "effect": (0, nsides), "consistency": (0, nsides),
             "interior_mean": (0,), "interior_std": (0,)}
    return {k: (np.concatenate(v) if v else np.zeros(empty[k])).astype(np.int64 if k.startswith("unit") else
                                                                      np.float64)
            for k, v in cols.items()}


# ------------------------------------------------------------------------------------------------ ablation

@dataclass
class Ablation(ProbeResult):
    """What silencing the padding-aware units changes, against silencing as many random other units.

    ``pan_profile`` and ``control_profile`` (inputs × distances) hold, per input, the mean absolute change of
    layer ``at``'s map over its channels at each distance from the border (in positions of that map), divided by
    the mean absolute activation of the unablated map. For a classifier, ``*_agree`` is whether the top-1 class
    is unchanged and ``*_logit`` the absolute change of the unablated top-1 logit, per input; otherwise
    ``*_output`` is the mean absolute change of the output. ``upstream`` names the silenced layers that run
    before ``at`` (only they can change its map).
    """

    kind = "units_ablation"

    name: str
    shape: list
    data: object
    n: int
    seed: int
    how: str
    at: str
    silenced: dict
    controls: dict
    upstream: list
    classifier: bool
    distance: np.ndarray
    pan_profile: np.ndarray
    control_profile: np.ndarray
    pan_output: np.ndarray
    control_output: np.ndarray
    pan_agree: np.ndarray
    control_agree: np.ndarray
    pan_logit: np.ndarray
    control_logit: np.ndarray

    def profile(self, which: str = "pan") -> tuple[np.ndarray, np.ndarray]:
        """Mean relative change per distance over inputs and its 95 % half-width (normal, over inputs)."""
        p = getattr(self, f"{which}_profile")
        sd = p.std(0, ddof=1) if len(p) > 1 else np.zeros(p.shape[1])
        return p.mean(0), 1.96 * sd / math.sqrt(len(p))

    @property
    def summary(self) -> dict:
        pan, ctl = self.profile("pan")[0], self.profile("control")[0]
        out = {"model": self.name, "at": self.at, "how": self.how, "units": int(sum(self.silenced.values())),
               "control_units": int(sum(self.controls.values())),
               "pan_border": float(pan[0]), "pan_centre": float(pan[-1]),
               "control_border": float(ctl[0]), "control_centre": float(ctl[-1]),
               "pan_output": float(self.pan_output.mean()), "control_output": float(self.control_output.mean())}
        if self.classifier:
            out.update(pan_top1_agreement=float(self.pan_agree.mean()),
                       control_top1_agreement=float(self.control_agree.mean()),
                       pan_logit_change=float(self.pan_logit.mean()),
                       control_logit_change=float(self.control_logit.mean()))
        return out

    def text(self) -> list[str]:
        s = self.summary
        if s["units"] == 0:
            return [f"No padding-aware unit to silence in {self.name}; nothing changes."]
        far = int(self.distance[-1])
        before = sum(v for k, v in self.silenced.items() if k in self.upstream)
        where = "" if before == s["units"] else f", {before} of them in layers that run before {self.at}"
        out = [f"Silencing the {_n(s['units'], 'padding-aware unit')} ({HOW[self.how]}{where}) changes "
               f"{self.at}'s map by "
               f"{_rel(s['pan_border'])} of its mean activation at the border and {_rel(s['pan_centre'])} at "
               f"{_n(far, 'position')} from it (the centre); {_n(s['control_units'], 'random other unit')} of the "
               f"same layers {'changes' if s['control_units'] == 1 else 'change'} it by {_rel(s['control_border'])} "
               f"and {_rel(s['control_centre'])}."]
        out.append(_compare("border", s["pan_border"], s["control_border"]))
        if self.classifier:
            out.append(f"The top-1 class stays the same for {100 * s['pan_top1_agreement']:.0f} % of the "
                       f"{self.n} inputs (control: {100 * s['control_top1_agreement']:.0f} %); the top-1 logit "
                       f"moves by {s['pan_logit_change']:.3g} on average (control: {s['control_logit_change']:.3g}).")
        return out


def _rel(v: float) -> str:
    return "exactly 0" if v == 0 else f"{100 * v:.3g} %"


def _compare(where: str, pan: float, control: float) -> str:
    if pan == control:
        return f"At the {where}, the padding-aware units and the control change the map equally."
    if control == 0:
        return f"At the {where}, only the padding-aware units change the map (the control leaves it exactly as is)."
    r = pan / control
    more = "more" if r > 1 else "less"
    return f"At the {where}, silencing the padding-aware units changes the map {max(r, 1 / r) if r else 0:.3g}× " \
           f"{more} than the control." if r else f"At the {where}, only the control changes the map."


def _distance(shape: tuple[int, ...]) -> np.ndarray:
    """Per position, its distance (in positions) from the nearest border of a map of ``shape``."""
    grids = np.meshgrid(*[np.minimum(np.arange(n), n - 1 - np.arange(n)) for n in shape], indexing="ij")
    return np.minimum.reduce(grids)


def _control(found: PaddingUnits, gen: torch.Generator) -> dict[str, list[int]]:
    """Per layer, as many random non-padding-aware channels as it has padding-aware ones (fewer if it lacks)."""
    aware = found.passes.any(1)
    out = {}
    for i in sorted(set(found.unit_layer[aware].tolist())):
        here = found.unit_layer == i
        k = int(aware[here].sum())
        pool = found.unit_channel[here & ~aware]
        pick = torch.randperm(len(pool), generator=gen)[:k].numpy()
        out[found.layers[i]] = sorted(int(c) for c in pool[pick])
    return out


def _geometry(found: PaddingUnits, name: str) -> Geometry:
    """The :class:`Geometry` of layer ``name`` as ``found`` saved it."""
    g = found.geometry[name]
    return Geometry(**{k: tuple(tuple(v) if isinstance(v, list) else v for v in val) if isinstance(val, list)
                       else val for k, val in g.items()})


def _silencer(name: str, channels: list[int], value: torch.Tensor | None, geom: Geometry | None):
    """A forward hook that overwrites ``channels`` of the layer's output: with the constants ``value``, or (when
    ``value`` is None) at the positions reading padding with the content-continued output."""
    index = torch.tensor(channels, dtype=torch.long)
    mask = None if geom is None else torch.from_numpy(side_masks(geom).any(0))

    def silence(mod, args, output):
        output = output.clone()
        idx = index.to(output.device)
        if value is None:
            kept = output[:, idx]
            continued = _continued(mod, args[0], geom)[:, idx].to(kept.dtype)
            output[:, idx] = torch.where(mask.to(output.device), continued, kept)
        else:
            shape = (1, len(idx)) + (1,) * (output.dim() - 2)
            output[:, idx] = value.to(output.device, output.dtype).view(shape).expand_as(output[:, idx])
        return output
    return silence


def _silencers(module: nn.Module, chosen: dict[str, list[int]], values: dict) -> list:
    """Registers a :func:`_silencer` on every chosen layer; ``values[name]`` is ``(constants or None, geometry)``.
    Returns the handles (the caller removes them in ``finally``)."""
    mods, handles = dict(module.named_modules()), []
    try:
        for name, chans in chosen.items():
            handles.append(mods[name].register_forward_hook(_silencer(name, chans, *values[name])))
    except BaseException:
        for h in handles:
            h.remove()
        raise
    return handles


def _run(module, x, at_module, chosen, values) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's output and layer ``at``'s map on ``x`` with ``chosen`` channels silenced (hooks removed in
    ``finally``)."""
    seen = {}
    handles = []
    try:
        handles += _silencers(module, chosen, values)
        handles.append(at_module.register_forward_hook(lambda m, a, o: seen.setdefault("at", o)))
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    if "at" not in seen:
        raise EdgewiseError("probe units: the layer to measure did not run in the forward pass")
    return out, seen["at"]


def _upstream(module: nn.Module, x: torch.Tensor, layers, at: str) -> list[str]:
    """Which of ``layers`` run before layer ``at`` has produced its output (``at`` itself included), from one
    forward pass on ``x`` (hooks removed in ``finally``)."""
    mods, order, handles = dict(module.named_modules()), [], []
    try:
        for name in dict.fromkeys([*layers, at]):
            handles.append(mods[name].register_forward_hook(lambda m, a, o, name=name: order.append(name)))
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    cut = order.index(at) if at in order else len(order)
    return sorted(set(order[:cut + 1]) & set(layers))


def ablate(model, found: PaddingUnits, input_shape=None, *, data=None, n: int = 64, seed: int = 0,
           batch: int = 16, how: str = "continued", at: str | None = None, cache=None,
           progress: bool = True, device=None) -> Ablation:
    """Silence the padding-aware units in ``found`` and measure what changes near the border and at the centre.

    A silenced channel's output is replaced by a constant: its mean over the interior positions of the inputs
    ``found`` was measured on (``how="mean"``: the unit keeps its typical level but no longer marks anything), or
    zero (``how="zero"``); or only its border is replaced, by what the unit gives there with the content
    continued past the border instead of the padding (``how="continued"``: exactly the padding's part removed,
    the layer's interior untouched). The control silences, in each of the same layers, as many randomly drawn other
    units (seeded by ``seed``). The change is measured on layer ``at``'s map (default: :func:`default_at`) as a
    function of the distance from the border, and at the output (top-1 agreement and logit change for a
    classifier). Hooks are removed in ``finally``.

    Args:
        model: the model ``found`` was measured on (checked by its content hash).
        found: the result of :func:`units`.
        input_shape, data, n, seed, batch, cache, progress, device: as for :func:`units`.
        how: ``"continued"`` (the default: the attributable one), ``"mean"`` or ``"zero"`` (:data:`HOW`).
        at: the layer whose map is compared (a dotted module name).

    Returns:
        An :class:`Ablation`.

    Example:
        >>> from edgewise.testing.planted import planted_detector
        >>> model, shape, _ = planted_detector()
        >>> ab = ablate(model, units(model, shape, n=16, progress=False), shape, n=16, progress=False)
        >>> float(ab.profile()[0][1:].max())
        0.0
    """
    if how not in HOW:
        raise EdgewiseError(f"probe units: ablation how={how!r} is unknown; choose one of "
                            + ", ".join(f"{k!r} ({v})" for k, v in HOW.items()))
    if not isinstance(found, PaddingUnits):
        raise EdgewiseError(f"probe units: ablate needs the PaddingUnits that units() returned, got "
                            f"{type(found).__name__}")
    dev = placement(device)
    sub = subject(model, input_shape)
    if fingerprint(sub.module) != found.fingerprint:
        raise EdgewiseError(f"probe units: the units were found on another model (or other weights) than "
                            f"{sub.name}; run units() on this model first")
    at = at or default_at(sub)
    check_layers(sub.module, [at])
    x = inputs(sub, data, n, seed)
    key = {"model": found.fingerprint, "shape": list(sub.shape), "data": data_key(data), "n": len(x),
           "seed": seed, "how": how, "at": at, "units": found.found.tolist(), "found_n": found.n,
           "found_seed": found.seed, "found_data": found.data, "run": run_key(sub.module, dev)}

    def compute() -> Ablation:
        with running(sub.module, dev) as kind:
            return _ablate(sub, found, x.to(**kind), data, seed, batch, how, at, progress)

    return cached(cache, Ablation.kind, key, compute, Ablation, sub.name)


def default_at(sub) -> str:
    """Where :func:`ablate` compares the border with the centre by default: the deepest convolution whose map is at
    least a quarter of the input's smallest side (at most 28 positions; EfficientNet-Lite0 at 224: a 28×28 map),
    so that the border and the centre are both there; the first convolution if none is that large."""
    shapes = conv_shapes(sub.module, sub.shape)  # one zero-input pass: the order they run and their sizes
    if not shapes:
        raise EdgewiseError(f"probe units: {sub.name} has no convolution; name the layer to compare with at=")
    need = min(28, max(1, min(sub.spatial) // 4))
    big = [c for c, s in shapes.items() if min(s[2:]) >= need]
    return big[-1] if big else next(iter(shapes))


def _chosen(found: PaddingUnits) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k in sorted(found.found.tolist()):
        out.setdefault(found.layers[int(found.unit_layer[k])], []).append(int(found.unit_channel[k]))
    return out


def _values(found: PaddingUnits, chosen: dict[str, list[int]], how: str) -> dict[str, tuple]:
    """Per chosen layer, what its silencer writes: (constants, None), or (None, geometry) for ``continued``."""
    out = {}
    for name, chans in chosen.items():
        if how == "continued":
            out[name] = (None, _geometry(found, name))
            continue
        i = found.layers.index(name)
        here = np.flatnonzero(found.unit_layer == i)
        means = found.interior_mean[here[np.array(chans, dtype=np.int64)]] if chans else np.zeros(0)
        out[name] = (torch.tensor(means if how == "mean" else np.zeros(len(chans)), dtype=torch.float64), None)
    return out


def _ablate(sub, found, x, data, seed, batch, how, at, progress) -> Ablation:
    pans = _chosen(found)
    control = _control(found, generator(seed))
    mods = dict(sub.module.named_modules())
    runs = {"pan": (pans, _values(found, pans, how)), "control": (control, _values(found, control, how))}
    prof = {k: [] for k in runs}
    outs = {k: [] for k in runs}
    agree = {k: [] for k in runs}
    logit = {k: [] for k in runs}
    classifier = None
    upstream = _upstream(sub.module, x[:1], list(pans) + list(control), at)
    with torch.no_grad(), progress_bar(len(x), f"ablating padding-aware units of {sub.name}", progress) as bar:
        for start in range(0, len(x), int(batch)):
            xb = x[start:start + int(batch)]
            base_out, base_at = _run(sub.module, xb, mods[at], {}, {})
            dist = torch.from_numpy(_distance(tuple(base_at.shape[2:]))).to(base_at.device)
            scale = base_at.abs().flatten(1).mean(1).double().clamp_min(1e-30)
            classifier = base_out.dim() == 2 and base_out.shape[1] > 1
            top = base_out.argmax(1) if classifier else None
            for k, (chosen, values) in runs.items():
                out, at_map = _run(sub.module, xb, mods[at], chosen, values) if chosen else (base_out, base_at)
                change = (at_map - base_at).abs().double().mean(1)
                rows = [change[:, dist == d].mean(1) / scale for d in range(int(dist.max()) + 1)]
                prof[k].append(to_numpy(torch.stack(rows, 1)))
                outs[k].append(to_numpy((out - base_out).abs().flatten(1).double().mean(1)))
                if classifier:
                    agree[k].append(to_numpy(out.argmax(1) == top))
                    logit[k].append(to_numpy((out.gather(1, top[:, None]) - base_out.gather(1, top[:, None]))
                                             .abs().double().flatten()))
            bar.update(len(xb))
    cat = lambda v: np.concatenate(v) if v else np.zeros(0)  # noqa: E731
    return Ablation(
        name=sub.name, shape=list(sub.shape), data=data_key(data) if data is not None else sub.data, n=len(x),
        seed=int(seed), how=how, at=at, silenced={k: len(v) for k, v in pans.items()},
        controls={k: len(v) for k, v in control.items()}, upstream=upstream, classifier=bool(classifier),
        distance=np.arange(prof["pan"][0].shape[1]), pan_profile=cat(prof["pan"]),
        control_profile=cat(prof["control"]), pan_output=cat(outs["pan"]), control_output=cat(outs["control"]),
        pan_agree=cat(agree["pan"]).astype(bool), control_agree=cat(agree["control"]).astype(bool),
        pan_logit=cat(logit["pan"]), control_logit=cat(logit["control"]))

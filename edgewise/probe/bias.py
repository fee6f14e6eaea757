"""Spatial bias and blind spots (after Alsallakh et al., "Mind the Pad — CNNs can develop blind spots", ICLR 2021).

:func:`bias` averages every channel of every chosen layer at every position over many real inputs and asks
how far those mean maps are from translation invariant, and which border rows and columns stand out (the
lines that padding — above all the uneven padding of stride-2 layers, TF-"same" style: one more row/column at
the bottom/right than at the top/left — leaves). :func:`blind_spots` slides one small real stimulus over every
position of a background and maps the model's response: where is it suppressed?

Definitions (per layer, over the ``n`` inputs; ``m_c(p)`` is channel ``c``'s mean at position ``p``):

- a channel's **spread** ``s_c`` is the standard deviation of its activations over every input and position;
  a channel whose spread is 0 is *dead* and left out of the averages below;
- the **deviation from translation invariance** is the fraction of each channel's variance that position
  explains, ``var_p(m_c) / s_c²`` (law of total variance: 0 exactly when every position has the same mean,
  1 when all the variance is between positions), averaged over the live channels;
- the **bias maps**: ``z_c(p) = (m_c(p) − mean_p m_c) / s_c`` averaged over the live channels (``signed``, the
  paper's mean feature map with every channel counted alike) and its root mean square over them (``rms``,
  which no sign can cancel; the mean of ``rms²`` over positions is the deviation);
- a row's (column's, sample's) **offset** is the RMS over live channels of ``z_c`` averaged along that row,
  minus the same for the interior rows (those at least :func:`band` from both borders); an **artefact line**
  is a row within the band whose offset exceeds :data:`LINE_FACTOR` times the interior rows' RMS offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EdgewiseError
from ._common import (ProbeResult, cached, check_layers, conv_layers, data_key, each_batch, finite, fingerprint, generator,
                      inputs, placement, progress_bar, run_key, running, subject, tensor_kind, to_numpy)

__all__ = ["bias", "SpatialBias", "blind_spots", "BlindSpots", "LINE_FACTOR", "SUPPRESSED", "band", "grid",
           "default_stride", "place"]

#: a border row is an artefact line when its offset exceeds this many times the interior rows' RMS offset
LINE_FACTOR = 3.0
#: a stimulus position is suppressed where its effect on the target is below this fraction of the centre's
SUPPRESSED = 0.5
#: the most grid positions :func:`grid` chooses per axis by default (2-D; 1-D: the square of it)
GRID_PER_AXIS = 32

#: the inputs' statistics are kept under this name beside the layers'
INPUT = "(input)"

SIDES = {1: (("start", "end"),), 2: (("top", "bottom"), ("left", "right"))}
LINE_NAME = {1: ("sample",), 2: ("row", "column")}


def pct(x: float) -> str:
    """A fraction as a percentage that never rounds a non-zero value to 0 (``0.00%``)."""
    x = float(x)
    return "0%" if x == 0 else f"{100 * x:.2g}%" if abs(x) < 1e-4 else f"{x:.2%}"


def share(flags: np.ndarray) -> str:
    """The share of true ``flags`` as a percentage that reads 0% or 100% only when it is exactly that."""
    k, n = int(np.sum(flags)), int(np.size(flags))
    for digits in range(0, 4):
        text = f"{k / n:.{digits}%}"
        if (text not in (f"{0:.{digits}%}", f"{1:.{digits}%}")) or k in (0, n):
            return text
    return text


def band(size: int) -> int:
    """How many rows from a border count as near it (line candidates): a quarter of the side, 1 to 8."""
    return max(1, min(size // 4, 8))


# ------------------------------------------------------------------------------------------------ the result

@dataclass
class SpatialBias(ProbeResult):
    """Per-layer mean maps and their departures from translation invariance (:func:`bias`).

    Ragged per-layer arrays are stored flat: layer ``i``'s map is ``signed[offsets[i]:offsets[i+1]]`` reshaped
    to ``shapes[i]`` (use :meth:`map`), its profile along axis ``a`` is ``profiles`` between
    ``profile_offsets[i * ndim + a]`` and the next one (use :meth:`profile`).
    """

    kind = "bias"

    model: str
    input_shape: list
    data: object
    n: int
    seed: int
    layers: list
    channels: list          # channels per layer
    dead: list              # channels with zero spread per layer
    uniform: list           # whether every channel's mean map is uniform (max == min), per layer
    deviation: list         # fraction of variance explained by position, per layer
    lines: list             # artefact lines: dicts layer, depth, side, distance, offset, interior
    line_factor: float
    input_deviation: float  # the same numbers for the inputs themselves (the data's own position bias)
    input_uniform: bool
    input_sides: list
    input_lines: int        # artefact lines of the inputs themselves
    shapes: np.ndarray      # (L, ndim) spatial shape per layer
    offsets: np.ndarray     # (L + 1,) into signed / rms
    signed: np.ndarray      # flat signed bias maps
    rms: np.ndarray         # flat RMS bias maps
    profile_offsets: np.ndarray  # (L * ndim + 1,) into profiles
    profiles: np.ndarray    # flat offset profiles (per layer and axis, index along the axis)
    sides: np.ndarray       # (L, 2 * ndim): offset of the outermost row at each side (SIDES order)
    interior: np.ndarray    # (L, ndim): the interior rows' RMS offset per axis (nan: no interior)
    input_rms: np.ndarray   # the inputs' RMS bias map

    @property
    def ndim(self) -> int:
        return int(np.asarray(self.shapes).shape[1])

    @property
    def side_names(self) -> list[str]:
        return [s for pair in SIDES[self.ndim] for s in pair]

    def index(self, layer) -> int:
        """The position of ``layer`` (a name or a depth index) in :attr:`layers`."""
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if not -len(self.layers) <= layer < len(self.layers):
                raise EdgewiseError(f"bias: layer index {layer} is out of range; this result has "
                                    f"{len(self.layers)} layers")
            return int(layer) % len(self.layers)
        if layer not in self.layers:
            import difflib

            close = difflib.get_close_matches(str(layer), self.layers, n=3)
            raise EdgewiseError(f"bias: no layer {layer!r} in this result" + (f"; did you mean "
                                f"{', '.join(map(repr, close))}?" if close else "") + f" It holds "
                                f"{len(self.layers)} layers: {', '.join(self.layers[:6])}" +
                                (", …" if len(self.layers) > 6 else ""))
        return self.layers.index(layer)

    def map(self, layer, kind: str = "signed") -> np.ndarray:
        """Layer ``layer``'s bias map (``kind`` ``signed`` or ``rms``), shaped like its feature map."""
        if kind not in ("signed", "rms"):
            raise EdgewiseError(f"bias: map kind must be 'signed' or 'rms', got {kind!r}")
        i = self.index(layer)
        flat = self.signed if kind == "signed" else self.rms
        return np.asarray(flat[self.offsets[i]:self.offsets[i + 1]]).reshape(tuple(self.shapes[i]))

    def profile(self, layer, axis: int = 0) -> np.ndarray:
        """The offset of every row (``axis=0``) or column (``axis=1``) of ``layer`` from the interior."""
        if not 0 <= axis < self.ndim:
            raise EdgewiseError(f"bias: axis must be in 0..{self.ndim - 1}, got {axis}")
        k = self.index(layer) * self.ndim + axis
        return np.asarray(self.profiles[self.profile_offsets[k]:self.profile_offsets[k + 1]])

    def asymmetry(self) -> np.ndarray:
        """(L, ndim): (end − start) / (end + start) of the outermost rows' offsets per axis (bottom vs top,
        right vs left); 0 where both are 0."""
        s = np.asarray(self.sides, dtype=np.float64).reshape(len(self.layers), self.ndim, 2)
        total = s.sum(-1)
        return np.divide(s[..., 1] - s[..., 0], total, out=np.zeros_like(total), where=total > 0)

    @property
    def summary(self) -> dict:
        dev = np.asarray(self.deviation, dtype=np.float64)
        worst = int(np.argmax(dev))
        counts = {side: len({x["layer"] for x in self.lines if x["side"] == side}) for side in self.side_names}
        return {"layers": len(self.layers), "deviation_max": finite(dev[worst]), "deviation_max_layer":
                self.layers[worst], "deviation_median": finite(np.median(dev)),
                "uniform_layers": int(sum(self.uniform)), "layers_with_lines": len({x["layer"] for x in self.lines}),
                "lines_by_side": counts, "input_deviation": finite(self.input_deviation)}

    def text(self) -> list[str]:
        """The sentences the CLI prints and the report quotes, each computed from this result."""
        return [self._deviation_text(), self._lines_text(), *self._asymmetry_text(), self._input_text()]

    def _name(self, i: int) -> str:
        return f"{self.layers[i]} (depth {i + 1} of {len(self.layers)})"

    def _deviation_text(self) -> str:
        n = len(self.layers)
        n_uniform = int(sum(self.uniform))
        if n_uniform == n:
            return (f"Every one of the {n} probed layers is translation invariant on these inputs: each channel's "
                    "mean activation is the same at every position (max = min), deviation 0.")
        dev = np.asarray(self.deviation, dtype=np.float64)
        hi, lo = int(np.argmax(dev)), int(np.argmin(dev))
        what = "of the activations' variance (averaged over channels)"
        if dev[hi] == dev[lo]:
            text = f"Position explains {pct(dev[hi])} {what} in each of the {n} probed layers."
        else:
            text = (f"Position explains {pct(dev[hi])} {what} in {self._name(hi)}, {pct(dev[lo])} in "
                    f"{self._name(lo)}, median {pct(np.median(dev))} over the {n} layers.")
        if n_uniform:
            names = [l for l, u in zip(self.layers, self.uniform) if u]
            text += (f" {n_uniform} of them have exactly uniform mean maps (max = min in every channel): "
                     + ", ".join(names[:5]) + (", …" if len(names) > 5 else "") + ".")
        return text

    def _input_text(self) -> str:
        if self.input_uniform:
            return ("The inputs' mean is the same at every position (max = min in every channel), so any bias in "
                    "the layers comes from the network, not the data.")
        sides = ", ".join(f"{s} {v:.3g}" for s, v in zip(self.side_names, self.input_sides))
        return (f"For reference, the inputs themselves: position explains {pct(self.input_deviation)} of their "
                f"variance, their outermost {' and '.join(x + 's' for x in LINE_NAME[self.ndim])} are offset from the "
                f"interior by {sides} channel spreads, with {self.input_lines} artefact line"
                f"{'' if self.input_lines == 1 else 's'}; what the layers show beyond that is the network's.")

    def _lines_text(self) -> str:
        rule = (f"a border {'/'.join(LINE_NAME[self.ndim])} whose offset from the interior exceeds "
                f"{self.line_factor:g}× the interior's RMS offset")
        if not self.lines:
            return f"No layer has an artefact line ({rule})."
        by_side = {s: len({x["layer"] for x in self.lines if x["side"] == s}) for s in self.side_names}
        top = max(self.lines, key=lambda x: x["offset"])
        ratio = (f"{top['offset'] / top['interior']:.1f}× the interior" if top["interior"] else
                 "the interior is flat")
        return (f"Artefact lines ({rule}) appear in {len({x['layer'] for x in self.lines})} of {len(self.layers)} "
                f"layers: " + ", ".join(f"{s} in {k}" for s, k in by_side.items()) + f". The strongest: "
                f"{self._name(self.layers.index(top['layer']))}, the {top['side']} "
                f"{LINE_NAME[self.ndim][self.side_names.index(top['side']) // 2]} at distance {top['distance']} "
                f"from the border (offset {top['offset']:.3g} channel spreads; {ratio}).")

    def _asymmetry_text(self) -> list[str]:
        s = np.asarray(self.sides, dtype=np.float64).reshape(len(self.layers), self.ndim, 2)
        out = []
        for a, (start, end) in enumerate(SIDES[self.ndim]):
            more_end = int((s[:, a, 1] > s[:, a, 0]).sum())
            more_start = int((s[:, a, 0] > s[:, a, 1]).sum())
            equal = len(self.layers) - more_end - more_start
            gap = s[:, a, 1] - s[:, a, 0]
            k = int(np.argmax(np.abs(gap)))
            text = (f"{end.capitalize()} vs {start}: the outermost {end} {LINE_NAME[self.ndim][a]} departs more "
                    f"from the interior than the {start} one in {more_end} of {len(self.layers)} layers, less in "
                    f"{more_start}" + (f", equally in {equal}" if equal else ""))
            if gap[k] != 0:
                text += (f"; the largest gap is in {self._name(k)}: {end} {s[k, a, 1]:.3g} vs {start} "
                         f"{s[k, a, 0]:.3g} channel spreads")
            out.append(text + ".")
        return out


# ----------------------------------------------------------------------------------------------- bias()

class _Moments:
    """Per-layer sums of activations and their squares over inputs, in float64 on the activations' device,
    shifted by the first batch's channel means (so that large means do not cancel the variance away)."""

    def __init__(self):
        self.shift, self.s1, self.s2 = {}, {}, {}

    def add(self, name: str, a: torch.Tensor) -> None:
        if a.dim() < 3 or a.dim() > 4:
            raise EdgewiseError(f"bias: layer {name!r} outputs shape {tuple(a.shape)}, which has no 1-D or 2-D "
                                "spatial axes (N, C, L) or (N, C, H, W); choose a convolution or a block output")
        a = a.detach().double()
        if name not in self.s1:
            self.shift[name] = a.mean(dim=[0, *range(2, a.dim())]).view(-1, *[1] * (a.dim() - 2))
            self.s1[name], self.s2[name] = (torch.zeros(a.shape[1:], dtype=torch.float64, device=a.device)
                                            for _ in range(2))
        d = a - self.shift[name]
        self.s1[name] += d.sum(0)
        self.s2[name] += (d * d).sum(0)

    def stats(self, name: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean map, mean square about the shift, mean about the shift), each (C, *S), of layer ``name``."""
        mean = to_numpy(self.s1[name] / n)
        return mean + to_numpy(self.shift[name]), to_numpy(self.s2[name] / n), mean


def _layer_stats(mean: np.ndarray, sq: np.ndarray, shifted: np.ndarray) -> dict:
    """Deviation, z maps and flags of one layer from its moments (see the module docstring)."""
    c = mean.shape[0]
    flat_m, flat_sq, flat_d = mean.reshape(c, -1), sq.reshape(c, -1), shifted.reshape(c, -1)
    uniform_c = flat_m.max(1) == flat_m.min(1)
    centred = flat_d - flat_d.mean(1, keepdims=True)
    centred[uniform_c] = 0.0  # exactly uniform channels: no rounding residue
    pos_var = (centred ** 2).mean(1)
    within = np.clip(flat_sq - flat_d ** 2, 0.0, None).mean(1)
    total = within + pos_var
    live = total > 0
    z = np.zeros_like(centred)
    z[live] = centred[live] / np.sqrt(total[live])[:, None]
    zl = z[live].reshape(int(live.sum()), *mean.shape[1:])
    if live.any():
        deviation = float((pos_var[live] / total[live]).mean())
        signed, rms = zl.mean(0), np.sqrt((zl ** 2).mean(0))
    else:
        deviation, signed, rms = 0.0, np.zeros(mean.shape[1:]), np.zeros(mean.shape[1:])
    return {"deviation": deviation, "z": zl, "signed": signed, "rms": rms, "dead": int((~live).sum()),
            "uniform": bool(uniform_c.all())}


def _axis_profile(z: np.ndarray, axis: int) -> tuple[np.ndarray, float, np.ndarray]:
    """(offset of every row along ``axis`` from the interior rows, the interior's RMS offset (nan when there
    is no interior), whether each row is interior). ``z``: (live channels, *S)."""
    size = z.shape[1 + axis]
    others = tuple(d for d in range(1, z.ndim) if d != 1 + axis)
    rows = z.mean(axis=others) if others else z  # (channels, size)
    b = band(size)
    dist = np.minimum(np.arange(size), size - 1 - np.arange(size))
    inner = dist >= b
    if not len(rows) or not inner.any():
        return np.zeros(size), math.nan, inner
    inside = rows[:, inner]
    flat = inside.max(1) == inside.min(1)
    ref = np.where(flat, inside[:, 0], inside.mean(1))  # an exactly flat interior leaves no rounding residue
    off = rows - ref[:, None]
    prof = np.sqrt((off ** 2).mean(0))
    return prof, float(np.sqrt((prof[inner] ** 2).mean())), inner


def _lines(name: str, depth: int, prof: np.ndarray, interior: float, axis: int, ndim: int) -> list[dict]:
    """The artefact lines of one axis of one layer (rows within the band above LINE_FACTOR × interior)."""
    if not math.isfinite(interior):
        return []
    size, b = len(prof), band(len(prof))
    start, end = SIDES[ndim][axis]
    out = []
    for d in range(b):
        for side, i in ((start, d), (end, size - 1 - d)):
            if prof[i] > LINE_FACTOR * interior and prof[i] > 0:
                out.append({"layer": name, "depth": depth, "side": side, "distance": d, "offset": float(prof[i]),
                            "interior": interior})
    return out


def _borders(name: str, depth: int, z: np.ndarray) -> tuple[list, list, list, list]:
    """(offset profile per axis, outermost offsets per side, interior RMS per axis, artefact lines) of one
    layer's z maps (live channels, *S)."""
    ndim = z.ndim - 1
    profiles, sides, interiors, lines = [], [], [], []
    for axis in range(ndim):
        prof, interior, _ = _axis_profile(z, axis)
        profiles.append(prof)
        sides += [float(prof[0]), float(prof[-1])]
        interiors.append(interior)
        lines += _lines(name, depth, prof, interior, axis, ndim)
    return profiles, sides, interiors, lines


def _result(sub, data, n, seed, layers, moments) -> SpatialBias:
    """Assemble the result from the accumulated moments."""
    shapes, signed, rms, profiles, sides, interiors, lines = [], [], [], [], [], [], []
    dev, dead, uniform, channels = [], [], [], []
    ndim = len(sub.spatial)
    for depth, name in enumerate(layers):
        st = _layer_stats(*moments.stats(name, n))
        spatial = st["signed"].shape
        if len(spatial) != ndim:
            raise EdgewiseError(f"bias: layer {name!r} has {len(spatial)} spatial axes but the input has {ndim}; "
                                "choose layers with the input's spatial axes")
        shapes.append(spatial)
        signed.append(st["signed"].ravel())
        rms.append(st["rms"].ravel())
        dev.append(st["deviation"])
        dead.append(st["dead"])
        uniform.append(st["uniform"])
        channels.append(int(moments.s1[name].shape[0]))
        prof, side, inner, found = _borders(name, depth, st["z"])
        profiles += prof
        sides.append(side)
        interiors.append(inner)
        lines += found
    inp = _layer_stats(*moments.stats(INPUT, n))
    _, in_sides, in_inner, in_lines = _borders(INPUT, -1, inp["z"])
    sizes = [int(np.prod(s)) for s in shapes]
    return SpatialBias(
        model=sub.name, input_shape=list(sub.shape), data=data_key(data) if data is not None else sub.data, n=n,
        seed=seed, layers=list(layers), channels=channels, dead=dead, uniform=uniform, deviation=dev, lines=lines,
        line_factor=LINE_FACTOR, input_deviation=inp["deviation"], input_uniform=inp["uniform"],
        input_sides=in_sides, input_lines=len(in_lines), shapes=np.asarray(shapes, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), signed=np.concatenate(signed),
        rms=np.concatenate(rms), profile_offsets=np.concatenate([[0], np.cumsum([len(p) for p in profiles])]).astype(
            np.int64), profiles=np.concatenate(profiles), sides=np.asarray(sides, dtype=np.float64),
        interior=np.asarray(interiors, dtype=np.float64), input_rms=inp["rms"])


def bias(model, input_shape=None, *, data=None, n: int = 64, layers=None, seed: int = 0, batch: int = 16,
         cache=None, progress: bool = True, device=None) -> SpatialBias:
    """The mean activation of every channel of every chosen layer at every position over ``n`` real inputs,
    its deviation from translation invariance and the artefact lines at the borders.

    Args:
        model: an ``nn.Module`` or a reference (``pretrained:efficientnet-lite0``, ``experiment:TASK:REMEDY:SEED``,
            a spec string, …).
        input_shape: C×H×W or C×L (default: the model's own).
        data: a data kind of :data:`edgewise.probe.DATA` (default: what suits the model) or a tensor of inputs.
        n: how many inputs to average over.
        layers: layer names (default: every convolution that runs, in forward order).
        seed: seeds the inputs.
        batch: inputs per forward pass.
        cache: a folder to keep the result in (recomputed only when the model, shape or an option changes).
        progress: show a progress bar.
        device: where to run (default: where the model's parameters are); the model is moved there for the
            call and back after. Inputs are made in the model's floating dtype; the statistics are float64.

    Returns:
        a :class:`SpatialBias`; ``.text()`` says which layers deviate most, where the artefact lines are and how
        opposite sides compare.

    Example:
        >>> r = bias("pretrained:efficientnet-lite0", n=64)                 # doctest: +SKIP
        >>> r.map("_conv_stem.conv").shape, r.deviation[0]                 # doctest: +SKIP
        ((112, 112), 0.07...)
    """
    dev = placement(device)
    sub = subject(model, input_shape)
    names = check_layers(sub.module, layers, sub.shape)
    if int(batch) < 1:
        raise EdgewiseError(f"bias: batch must be at least 1, got {batch}")
    key = {"model": fingerprint(sub.module), "shape": list(sub.shape), "data": data_key(data) or sub.data,
           "n": int(n), "layers": names, "seed": int(seed), "run": run_key(sub.module, dev)}

    def compute() -> SpatialBias:
        with running(sub.module, dev) as kind:
            return _bias(sub, inputs(sub, data, n, seed).to(**kind), data, names, int(seed), int(batch), progress)

    return cached(cache, "bias", key, compute, SpatialBias, sub.name)


def _bias(sub, x: torch.Tensor, data, names: list[str], seed: int, batch: int, progress: bool) -> SpatialBias:
    """:func:`bias` on inputs ``x`` (on the model's device, in its dtype)."""
    moments = _Moments()

    def add(start, acts):
        moments.add(INPUT, x[start:start + batch])  # the data's own position bias, for reference
        for name in names:
            moments.add(name, acts[name])

    with progress_bar(len(x), "bias: mean activations", progress) as bar:
        each_batch(sub.module, x, names, add, batch=batch, bar=bar)
    return _result(sub, data, len(x), seed, names, moments)


# ----------------------------------------------------------------------------------------------- blind spots

STIMULI = {
    "digit": "a real MNIST digit (its 20×20 ink box, resized to the stimulus size), for 1-channel models",
    "patch": "the cat's face (scikit-image's 'chelsea', resized to the stimulus size), for 3-channel models",
    "signal": "an MNIST-1D signal (40 samples, resampled to the stimulus size), for 1-D models",
}
STIMULUS_NAMES = {"digit": "digit", "patch": "photo patch", "signal": "signal", "given": "given stimulus"}
BACKGROUNDS = {
    "blank": "an all-zero input (for ImageNet-normalised models: the mean colour)",
    "photo": "scikit-image's 'grass' photo (grey for 1-channel models)",
    "mean": "the mean of 64 inputs of the model's data",
}


@dataclass
class BlindSpots(ProbeResult):
    """The response to one stimulus slid over a grid of positions (:func:`blind_spots`).

    ``response[i, j]`` is the target's value with the stimulus's first corner at ``(grid0[i], grid1[j])``
    (1-D: ``response[i]`` at ``grid0[i]``); ``effect`` is ``(response − background) / (centre − background)``,
    1 at the centre; ``suppressed`` is ``effect < SUPPRESSED`` (all false when the centre's effect is not
    positive); ``correct`` is whether the top-1 class is the target class (empty for a unit target).
    """

    kind = "blind_spots"

    model: str
    input_shape: list
    stimulus: str
    background: str
    size: int
    stride: list            # grid step per axis
    target: dict
    seed: int
    centre: list            # grid indices of the centre position
    centre_response: float
    background_response: float
    suppress_fraction: float
    grid0: np.ndarray
    grid1: np.ndarray
    response: np.ndarray
    effect: np.ndarray
    suppressed: np.ndarray
    correct: np.ndarray

    @property
    def ndim(self) -> int:
        return int(np.asarray(self.response).ndim)

    @property
    def defined(self) -> bool:
        """Whether the stimulus raises the target at the centre (suppression is measured against that)."""
        return self.centre_response > self.background_response

    def border(self) -> np.ndarray:
        """Whether the stimulus touches the input's border at each grid position."""
        masks = []
        for a, g in enumerate(self._grids()):
            last = self.input_shape[1 + a] - self.size
            masks.append((g == 0) | (g == last))
        if self.ndim == 1:
            return masks[0]
        return masks[0][:, None] | masks[1][None, :]

    def _grids(self) -> list[np.ndarray]:
        return [np.asarray(self.grid0), np.asarray(self.grid1)][:self.ndim]

    def side_means(self) -> dict[str, float]:
        """The mean effect over the grid positions touching each side."""
        e = np.asarray(self.effect, dtype=np.float64)
        out = {}
        for a, (start, end) in enumerate(SIDES[self.ndim]):
            g, last = self._grids()[a], self.input_shape[1 + a] - self.size
            for side, at in ((start, 0), (end, last)):
                pick = np.flatnonzero(g == at)
                out[side] = float(np.take(e, pick, axis=a).mean())
        return out

    @property
    def target_text(self) -> str:
        t = self.target
        if t["kind"] == "logit":
            return f"the logit of class {t['class']}"
        return f"the {t['reduce']} of unit {t['layer']}:{t['channel']}"

    @property
    def summary(self) -> dict:
        e, border = np.asarray(self.effect, dtype=np.float64), self.border()
        out = {"positions": int(e.size), "defined": self.defined, "suppressed": int(np.sum(self.suppressed)),
               "border_effect": finite(e[border].mean()),
               "interior_effect": finite(e[~border].mean()) if (~border).any() else None,
               "min_effect": finite(e.min()), "sides": {k: finite(v) for k, v in self.side_means().items()}}
        if np.asarray(self.correct).size:
            c = np.asarray(self.correct, dtype=bool)
            out["top1_border"] = finite(c[border].mean())
            out["top1_interior"] = finite(c[~border].mean()) if (~border).any() else None
        return out

    def text(self) -> list[str]:
        """The sentences the CLI prints and the report quotes, each computed from this result."""
        lines = [self._centre_text()]
        if self.defined:
            lines += [self._suppressed_text(), self._border_text(), *self._sides_text()]
        if np.asarray(self.correct).size:
            lines.append(self._top1_text())
        return lines

    def _centre_text(self) -> str:
        at = f"{STIMULUS_NAMES.get(self.stimulus, self.stimulus)} of size {self.size} on a {self.background} background"
        if not self.defined:
            return (f"The {at} does not raise {self.target_text} at the centre ({self.centre_response:.6g}) above "
                    f"the background alone ({self.background_response:.6g}): there is no response to find "
                    "suppressed.")
        return (f"At the centre the {at} raises {self.target_text} from {self.background_response:.4g} "
                f"(background alone) to {self.centre_response:.4g}; effects below are relative to that rise.")

    def _suppressed_text(self) -> str:
        s, border = np.asarray(self.suppressed, dtype=bool), self.border()
        if not s.any():
            return (f"The stimulus keeps at least {self.suppress_fraction:.0%} of the centre's effect at every one "
                    f"of the {s.size} positions: no blind spot.")
        return (f"Blind spots: the effect falls below {self.suppress_fraction:.0%} of the centre's at {int(s.sum())} "
                f"of {s.size} positions ({share(s)}), {int((s & border).sum())} of them with the stimulus "
                f"touching the border ({int(border.sum())} such positions) and {int((s & ~border).sum())} inside.")

    def _border_text(self) -> str:
        e, border = np.asarray(self.effect, dtype=np.float64), self.border()
        k = np.unravel_index(int(np.argmin(e)), e.shape)
        at = ", ".join(f"{int(g[i])}" for g, i in zip(self._grids(), k))
        inner = (f", against {e[~border].mean():.2f} inside" if (~border).any() else "")
        return (f"Touching the border the stimulus keeps {e[border].mean():.2f} of the centre's effect on average"
                f"{inner}; the least, {e[k]:.2f}, with its corner at ({at}).")

    def _sides_text(self) -> list[str]:
        m = self.side_means()
        out = []
        for start, end in SIDES[self.ndim]:
            if m[start] == m[end]:
                out.append(f"{start.capitalize()} and {end} keep the same mean effect, {m[start]:.3f}.")
            else:
                weak, strong = (start, end) if m[start] < m[end] else (end, start)
                out.append(f"{weak.capitalize()} vs {strong}: at the {weak} border the stimulus keeps "
                           f"{m[weak]:.2f} of the centre's effect, at the {strong} {m[strong]:.2f}.")
        return out

    def _top1_text(self) -> str:
        c, border = np.asarray(self.correct, dtype=bool), self.border()
        inner = f", {share(c[~border])} of those inside" if (~border).any() else ""
        return (f"Top-1 stays class {self.target['class']} at {int(c.sum())} of {c.size} positions: "
                f"{share(c[border])} of those touching the border{inner}.")


def grid(length: int, size: int, stride: int | None, per_axis: int = GRID_PER_AXIS) -> np.ndarray:
    """First-corner positions of a stimulus of ``size`` along an axis of ``length``: every ``stride``-th one
    from 0, plus the last (touching the far border) and the centre one. The default stride keeps at most
    ``per_axis`` + 2 positions."""
    last = length - size
    if last < 0:
        raise EdgewiseError(f"blind_spots: the stimulus ({size}) is larger than the input ({length}); give a "
                            f"smaller size=")
    stride = default_stride(length, size, per_axis) if stride is None else stride
    if isinstance(stride, bool) or int(stride) != stride or stride < 1:
        raise EdgewiseError(f"blind_spots: stride must be a whole number ≥ 1, got {stride!r}")
    return np.asarray(sorted(set(range(0, last + 1, int(stride))) | {last, last // 2}), dtype=np.int64)


def default_stride(length: int, size: int, per_axis: int = GRID_PER_AXIS) -> int:
    """The smallest stride that keeps at most ``per_axis`` strided positions along an axis."""
    last = max(0, length - size)
    return max(1, math.ceil(last / (per_axis - 1)))


def _model_input(sub, x01: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (N, 1 or 3, H, W) as the model takes them: ImageNet-normalised for ``pretrained:``
    models, grey for one channel, repeated for three (as :func:`._common.inputs` does)."""
    from ..pretrained import IMAGENET_MEAN, IMAGENET_STD

    c = sub.shape[0]
    if c not in (1, 3):
        raise EdgewiseError(f"blind_spots: image stimuli and backgrounds have 1 or 3 channels, {sub.name} takes "
                            f"{c}; give your own model input shape or stimulus")
    if c == 1:
        return x01.mean(1, keepdim=True)
    x = x01.expand(-1, 3, *x01.shape[2:])
    if sub.imagenet:
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x.contiguous()


def _default_size(sub, stimulus: str) -> int:
    spatial = sub.spatial
    if stimulus == "signal":
        return min(40, spatial[0])
    if stimulus == "digit":
        patch = getattr(sub.module, "experiment", {}).get("config", {}).get("patch")
        return int(patch) if patch else min(20, min(spatial) // 2)
    return max(1, min(spatial) * 2 // 7)  # 64 at 224: EfficientNet-Lite0 names the cat's face there


def _stimulus(sub, stimulus: str, size: int, gen: torch.Generator) -> torch.Tensor:
    """The stimulus (C, size[, size]) in the model's input format."""
    from ..experiments import data

    if stimulus == "signal":
        if len(sub.shape) != 2:
            raise EdgewiseError(f"blind_spots: stimulus 'signal' is 1-D, {sub.name} takes 2-D images; use 'digit' "
                                "or 'patch'")
        x, _ = data.mnist1d_signals(1000, 0, 40)
        s = torch.from_numpy(x[int(torch.randint(len(x), (1,), generator=gen))])[None, None]
        if size != s.shape[-1]:
            s = F.interpolate(s, size=size, mode="linear", align_corners=False)
        return s[0].expand(sub.shape[0], -1).contiguous()
    if len(sub.shape) != 3:
        raise EdgewiseError(f"blind_spots: stimulus {stimulus!r} is an image, {sub.name} takes a 1-D signal; use "
                            "'signal'")
    if stimulus == "digit":
        digits, _ = data.digit_images("mnist", size, crop=True)
        d = digits[int(torch.randint(len(digits), (1,), generator=gen))][None]
        return _model_input(sub, d.expand(-1, 3, -1, -1))[0]
    from ..pretrained import IMAGENET_MEAN, IMAGENET_STD, photos

    p = photos(size, ["chelsea"]) * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(
        IMAGENET_MEAN).view(1, 3, 1, 1)
    return _model_input(sub, p.clamp(0, 1))[0]


def _given_stimulus(sub, stim: torch.Tensor) -> torch.Tensor:
    """A stimulus the user gives, checked: (C, s) for 1-D models, (C, s, s) for 2-D ones, C the model's."""
    want = (sub.shape[0],) + ("s",) * len(sub.spatial)
    ok = stim.dim() == len(want) and stim.shape[0] == sub.shape[0] and len(set(stim.shape[1:])) == 1
    if not ok:
        raise EdgewiseError(f"blind_spots: a given stimulus must have shape {'×'.join(map(str, want))} (square, "
                            f"the model's {sub.shape[0]} channels), got {tuple(stim.shape)}")
    return stim.detach() if stim.is_floating_point() else stim.detach().float()


def _background(sub, background: str, seed: int) -> torch.Tensor:
    if background == "blank":
        return torch.zeros(sub.shape)
    if background == "mean":
        return inputs(sub, None, 64, seed).mean(0)
    if len(sub.shape) != 3:
        raise EdgewiseError(f"blind_spots: background 'photo' is an image, {sub.name} takes a 1-D signal; use "
                            "'blank' or 'mean'")
    from ..pretrained import IMAGENET_MEAN, IMAGENET_STD, photos

    p = photos(sub.spatial, ["grass"]) * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(
        IMAGENET_MEAN).view(1, 3, 1, 1)
    return _model_input(sub, p.clamp(0, 1))[0]


def place(background: torch.Tensor, stimulus: torch.Tensor, corners) -> torch.Tensor:
    """Copies of ``background`` (C, *S) with ``stimulus`` (C, *s) pasted over it at each first corner in
    ``corners`` (N, ndim), replacing what lies under it."""
    corners = np.asarray(corners, dtype=np.int64).reshape(-1, stimulus.dim() - 1)
    out = background.expand(len(corners), *background.shape).clone()
    s = stimulus.shape[1:]
    for i, c in enumerate(corners):
        out[(i, slice(None), *(slice(int(a), int(a) + k) for a, k in zip(c, s)))] = stimulus
    return out


def _is_classifier(sub) -> bool:
    """Whether the model's output is one (N, classes) tensor."""
    with torch.no_grad():
        out = sub.module(torch.zeros((1, *sub.shape), **tensor_kind(sub.module)))
    return isinstance(out, torch.Tensor) and out.dim() == 2


class _Target:
    """What is read from the model: a logit of a classifier, or a unit's max or mean over positions."""

    def __init__(self, sub, target, reduce: str):
        self.module = sub.module
        if reduce not in ("max", "mean"):
            raise EdgewiseError(f"blind_spots: reduce must be 'max' or 'mean', got {reduce!r}")
        self.reduce = reduce
        self.layer, self.channel, self.cls = None, None, None
        if isinstance(target, (tuple, list)):
            if len(target) != 2:
                raise EdgewiseError(f"blind_spots: a unit target is (layer, channel), got {target!r}")
            self.layer, self.channel = check_layers(sub.module, [target[0]])[0], int(target[1])
        elif target is None and not _is_classifier(sub):  # any model: channel 0 of its last convolution
            convs = conv_layers(sub.module, sub.shape)
            if not convs:
                raise EdgewiseError(f"blind_spots: {sub.name} is not a classifier (its output is not (N, classes)) "
                                    "and has no convolution; name a unit with target=('layer', channel)")
            self.layer, self.channel = convs[-1], 0
        elif target is not None:
            if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
                raise EdgewiseError(f"blind_spots: target is a class index or (layer, channel), got {target!r}")
            self.cls = int(target)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(responses (N,), top-1 classes (N,) or None) for inputs ``x``."""
        if self.layer is None:
            out = self.module(x)
            if out.dim() != 2:
                raise EdgewiseError(f"blind_spots: the model's output has shape {tuple(out.shape)}, not (N, "
                                    "classes); name a unit with target=('layer', channel)")
            if not 0 <= self.cls < out.shape[1]:
                raise EdgewiseError(f"blind_spots: class {self.cls} is out of range for {out.shape[1]} outputs")
            return out[:, self.cls].double(), out.argmax(1)
        got = {}
        each_batch(self.module, x, [self.layer], lambda _, acts: got.update(acts), batch=len(x))
        a = got[self.layer]
        if not 0 <= self.channel < a.shape[1]:
            raise EdgewiseError(f"blind_spots: layer {self.layer!r} has {a.shape[1]} channels, not channel "
                                f"{self.channel}")
        a = a[:, self.channel].reshape(len(x), -1).double()
        return (a.amax(1) if self.reduce == "max" else a.mean(1)), None

    def describe(self) -> dict:
        if self.layer is None:
            return {"kind": "logit", "class": self.cls}
        return {"kind": "unit", "layer": self.layer, "channel": self.channel, "reduce": self.reduce}


def blind_spots(model, input_shape=None, *, stimulus: str | None = None, background: str = "blank",
                stride: int | None = None, target=None, size: int | None = None, reduce: str = "max",
                seed: int = 0, batch: int = 32, cache=None, progress: bool = True, device=None) -> BlindSpots:
    """Slide one small real stimulus over a grid of positions of a background and map the model's response.

    Args:
        model: an ``nn.Module`` or a reference (as for :func:`bias`).
        input_shape: C×H×W or C×L (default: the model's own).
        stimulus: ``digit``, ``patch`` or ``signal`` (:data:`STIMULI`; default by the model's input), or a
            tensor (C, s[, s]) to slide (its side is the size).
        background: ``blank``, ``photo`` or ``mean`` (:data:`BACKGROUNDS`).
        stride: grid step in pixels (default: at most 34 positions per axis in 2-D, 1026 in 1-D; the positions
            touching each border and the centre are always on the grid).
        target: a class index, or ``(layer, channel)`` for a unit (default: for a classifier, the class it
            predicts with the stimulus at the centre; for any other model, channel 0 of its last convolution).
        size: the stimulus side (default: a digit as the experiment task pastes it or 20, 2/7 of the shorter
            side for the photo patch, 40 samples for a signal).
        reduce: for a unit target, its ``max`` or ``mean`` over positions.
        seed: picks the digit or signal.
        batch: inputs per forward pass.
        cache: a folder to keep the result in.
        progress: show a progress bar.
        device: where to run (default: where the model's parameters are); the model is moved there for the
            call and back after. The stimulus and background are made in the model's floating dtype.

    Returns:
        a :class:`BlindSpots`; ``.text()`` says where the response is suppressed.

    Example:
        >>> r = blind_spots("pretrained:efficientnet-lite0")               # doctest: +SKIP
        >>> r.target, r.summary["border_effect"]                           # doctest: +SKIP
    """
    dev = placement(device)
    sub = subject(model, input_shape)
    ndim = len(sub.spatial)
    given = _given_stimulus(sub, stimulus) if isinstance(stimulus, torch.Tensor) else None
    stimulus = "given" if given is not None else stimulus or (
        "signal" if ndim == 1 else "digit" if sub.shape[0] == 1 else "patch")
    for what, value, table in (("stimulus", stimulus, {**STIMULI, "given": ""}), ("background", background,
                                                                                  BACKGROUNDS)):
        if value not in table:
            raise EdgewiseError(f"blind_spots: unknown {what} {value!r}; choose one of {', '.join(table)}")
    if given is not None:
        size = given.shape[-1]
    size = _default_size(sub, stimulus) if size is None else size
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise EdgewiseError(f"blind_spots: size must be a whole number ≥ 1, got {size!r}")
    size = int(size)
    per_axis = GRID_PER_AXIS if ndim == 2 else GRID_PER_AXIS ** 2
    grids = [grid(length, size, stride, per_axis) for length in sub.spatial]
    strides = [int(stride) if stride is not None else default_stride(length, size, per_axis)
               for length in sub.spatial]
    if int(batch) < 1:
        raise EdgewiseError(f"blind_spots: batch must be at least 1, got {batch}")
    aim = _Target(sub, target, reduce)
    key = {"model": fingerprint(sub.module), "shape": list(sub.shape), "background": background,
           "stimulus": data_key(given) if given is not None else stimulus,
           "size": size, "grid": [g.tolist() for g in grids], "target": target if not isinstance(target, tuple)
           else list(target), "reduce": reduce, "seed": int(seed), "run": run_key(sub.module, dev)}

    def compute() -> BlindSpots:
        stim = given if given is not None else _stimulus(sub, stimulus, size, generator(seed))
        back = _background(sub, background, seed)
        with running(sub.module, dev) as kind:
            return _slide(sub, aim, stim.to(**kind), back.to(**kind), grids, int(batch), progress,
                          {"stimulus": stimulus, "background": background, "size": size, "seed": int(seed),
                           "stride": strides})

    return cached(cache, "blind_spots", key, compute, BlindSpots, sub.name)


def _slide(sub, aim: _Target, stim: torch.Tensor, back: torch.Tensor, grids, batch: int, progress: bool,
           options: dict) -> BlindSpots:
    """Run the model on the background alone, then with the stimulus at every grid position."""
    shape = tuple(len(g) for g in grids)
    corners = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, len(grids))
    centre = [int(np.flatnonzero(g == (sub.spatial[a] - options["size"]) // 2)[0]) for a, g in enumerate(grids)]
    with torch.no_grad():
        if aim.layer is None and aim.cls is None:
            out = sub.module(place(back, stim, [[g[c] for g, c in zip(grids, centre)]]))
            if out.dim() != 2:
                raise EdgewiseError(f"blind_spots: the model's output has shape {tuple(out.shape)}, not (N, "
                                    "classes); name a unit with target=('layer', channel)")
            aim.cls = int(out.argmax(1)[0])
        bg = float(aim(back[None])[0][0])
        resp, top = np.zeros(len(corners)), np.zeros(len(corners), dtype=np.int64)
        with progress_bar(len(corners), "blind spots: sliding the stimulus", progress) as bar:
            for start in range(0, len(corners), batch):
                r, t = aim(place(back, stim, corners[start:start + batch]))
                resp[start:start + len(r)] = to_numpy(r)
                if t is not None:
                    top[start:start + len(r)] = to_numpy(t)
                bar.update(len(r))
    resp = resp.reshape(shape)
    centre_resp = float(resp[tuple(centre)])
    rise = centre_resp - bg
    effect = (resp - bg) / rise if rise != 0 else np.full(shape, np.nan)
    suppressed = effect < SUPPRESSED if rise > 0 else np.zeros(shape, dtype=bool)
    correct = (top.reshape(shape) == aim.cls) if aim.layer is None else np.zeros(0, dtype=bool)
    return BlindSpots(model=sub.name, input_shape=list(sub.shape), stimulus=options["stimulus"],
                      background=options["background"], size=options["size"], stride=options["stride"],
                      target=aim.describe(), seed=options["seed"], centre=centre, centre_response=centre_resp,
                      background_response=bg, suppress_fraction=SUPPRESSED, grid0=grids[0],
                      grid1=grids[1] if len(grids) > 1 else np.zeros(0, dtype=np.int64), response=resp,
                      effect=effect, suppressed=suppressed, correct=correct)

"""Exact pathway counting: how many distinct paths lead from each input position to the output.

The unit-level graph has one node per (channel, position) of every layer and one
edge per tap that reads an input unit (see :data:`edgewise.graph.KINDS`). Counts
are propagated backwards from the selected output units: with all weights set
to one, the count is the derivative of the selected outputs with respect to
an input unit, and every layer's adjoint factorises into a channel part and one
small integer matrix per spatial axis. Channels that carry identical count
maps share one row, so a 2048-channel layer costs no more than a 1-channel one.
Float mode counts in linear float64 scaled by a power of two per map, and
switches to logarithms only for a map spanning more than float64's range
(see :mod:`edgewise._numeric`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._axis import Broadcast, Flat, Window
from ._counts import AxisMap, ExactCounts, LogCounts, OutOfRange, ScaledCounts
from ._device import usable_device
from ._sets import unique_rows
from .errors import EdgewiseError
from .graph import Graph, Node
from .maps import position_summary
from .models import as_graph
from .results import Result

__all__ = ["pathways", "layer_counts", "PathCounts", "select_units"]


@dataclass(slots=True)
class _Value:
    """Counts for every channel of a node: ``rows[index[c]]`` is channel c's map."""

    rows: Any
    index: np.ndarray

    def full(self):
        return self.rows[self.index]


def select_units(shape: tuple[int, ...], to, layer: str) -> np.ndarray:
    """Boolean mask over the spatial positions of a layer for a ``to=`` selector.

    ``"all"``: every position; ``"center"``: position ``(n−1)//2`` on each axis;
    ``(y, x)`` (an int in 1-D): that position. Layers without spatial axes
    select all their units.
    """
    spatial = shape[1:]
    mask = np.zeros(spatial, dtype=bool)
    if isinstance(to, str) and to == "all" or not spatial:
        mask[...] = True
        return mask
    if isinstance(to, str) and to in ("center", "centre"):
        mask[tuple((n - 1) // 2 for n in spatial)] = True
        return mask
    pos = (to,) if isinstance(to, (int, np.integer)) else tuple(to) if isinstance(to, (tuple, list)) else None
    if pos is None or len(pos) != len(spatial) or not all(isinstance(p, (int, np.integer)) for p in pos):
        raise EdgewiseError(
            f"to={to!r}: expected 'all', 'center' or a position with {len(spatial)} integer coordinate(s) "
            f"(row, col) for layer {layer!r} of spatial shape {spatial}"
        )
    if not all(0 <= p < n for p, n in zip(pos, spatial)):
        raise EdgewiseError(f"to={tuple(pos)} lies outside layer {layer!r}, whose spatial shape is {spatial} (row, col)")
    mask[tuple(pos)] = True
    return mask


@dataclass
class PathCounts(Result):
    """Path counts from every input position (input channel 0) to the selected units.

    Attributes:
        counts: array over input positions (L or H×W). Float64 (``counts × 10**scale``
            are the counts), or an object array of Python ints when ``exact``.
        log10: base-10 logarithm of the counts (−inf where no path exists).
        scale: power of ten factored out of ``counts`` (0 whenever they fit in float64).
        exact: whether ``counts`` holds exact integers.
        layer: the target layer; ``to``: the selector used.
        cut: the layers no counted path passes through (``pathways(cut=...)``).
    """

    counts: np.ndarray
    log10: np.ndarray
    scale: int
    exact: bool
    layer: str
    to: Any
    model: str = "model"
    input_shape: tuple = ()
    summary: dict = field(default_factory=dict)
    padding: str | None = None
    norm_stats: str = "ignore"
    cut: tuple = ()

    kind = "pathways"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.log10.shape)

    def to_dict(self) -> dict:
        counts = self.counts.tolist() if self.exact else self.counts.astype(float).tolist()
        return {
            "model": self.model, "padding": self.padding, "input_shape": list(self.input_shape),
            "layer": self.layer,
            "to": self.to if isinstance(self.to, (str, int)) else list(self.to),
            "shape": list(self.shape), "exact": self.exact, "scale": self.scale,
            "counts": counts, "norm_stats": self.norm_stats, "cut": list(self.cut), **self.summary,
        }

    def arrays(self) -> dict:
        return {"log10": self.log10} if self.exact else {"counts": self.counts, "log10": self.log10}


def pathways(model, input_shape=None, to="all", layer: str | None = None, exact: bool = False,
             device=None, padding: str = "same", norm_stats: str | None = None, cut=()) -> PathCounts:
    """Count the paths from each input position to the selected units of ``layer``.

    Args:
        model: an ``nn.Module``, a traced :class:`Graph`, or a spec string.
        input_shape: C×L or C×H×W (not needed for a Graph).
        to: ``"all"`` (sum over every unit of the layer), ``"center"``, or a position
            ``(row, col)`` (an int in 1-D); a position selects every channel there.
        layer: dotted name of the target layer; default: the model's output.
        exact: exact Python integers instead of float64 (slower, any size).
        device: torch device for the float computation (default: numpy on the CPU, whatever device the
            model is on: counting is many small sums, which a GPU does not speed up at image sizes; exact
            mode always counts in Python integers on the CPU).
        padding: padding scheme when ``model`` is a spec string.
        norm_stats: ``"count"``: normalisation statistics are connections (one path from every unit a
            statistic is computed over); ``"ignore"`` (default; a Graph keeps its own). Recorded in the result.

    Returns:
        :class:`PathCounts`.

    Example:
        >>> p = pathways(nets.from_spec("4*conv3", (1, 9), padding="valid", width=1), (1, 9))
        >>> p.counts.astype(int).tolist()
        [1, 4, 10, 16, 19, 16, 10, 4, 1]
    """
    graph = as_graph(model, input_shape, padding, layer=layer, norm_stats=norm_stats)
    cut = tuple(cut)
    graph = graph.cut(cut)
    target = graph.target(layer)
    values, num = _count(graph, target, to, exact, device, keep=False)
    inp = values[graph.input]
    row = inp.rows[inp.index[0]]
    log10 = num.log10(row)
    if exact:
        counts, scale = num.to_numpy(row), 0
    else:
        top = float(np.max(log10)) if np.isfinite(log10).any() else 0.0
        scale = max(0, math.ceil(top - 300)) if top > 300 else 0
        counts = num.linear(row, log10, scale)
    return PathCounts(counts, log10, scale, exact, target, to, graph.model_name, graph.input_shape,
                      position_summary(counts, log10), graph.padding, graph.norm_stats, cut)


def layer_counts(model, input_shape=None, to="all", layer: str | None = None, exact: bool = True,
                 device=None, padding: str = "same", norm_stats: str | None = None) -> dict[str, np.ndarray]:
    """Path counts from every unit of every layer (channel 0) to the selected units.

    Returns ``{node name: counts over that node's spatial positions}`` for the
    input and every node the target depends on (the target itself included):
    the numbers written next to each neuron in a Pascal's-triangle diagram.
    """
    graph = as_graph(model, input_shape, padding, layer=layer, norm_stats=norm_stats)
    target = graph.target(layer)
    values, num = _count(graph, target, to, exact, device, keep=True)
    out = {}
    for name, v in values.items():
        row = v.rows[v.index[0]]
        out[name] = num.to_numpy(row) if exact else num.linear(row, num.log10(row), 0)
    return out


def clear_caches() -> None:
    """Forget every trace, axis matrix, counting plan and forward cost kept between calls (a cold start, for
    benchmarks)."""
    from . import _axis, _layout, _trace, limits
    from ._counts import scaled

    _trace._CACHE.clear()
    limits._COSTS.clear()
    _layout._AXIS_OPS.clear()
    _trace._FX.clear()
    _trace._CONV_AXES.clear()
    scaled._NUMPY_PLANS.clear()
    _axis.nonzeros.cache_clear()
    for cls in vars(_axis).values():
        clear = getattr(getattr(cls, "matrix", None), "cache_clear", None) if isinstance(cls, type) else None
        if clear is not None:
            clear()


def _count(graph: Graph, target: str, to, exact: bool, device, keep: bool):
    """:func:`_propagate` in the right number system: exact ints, or scaled float64 with a
    fall-back to logarithms when some count map spans more than float64's range."""
    if exact:
        num = ExactCounts()
        return _propagate(graph, target, to, num, keep), num
    device = usable_device(device, default="leave device=None to count with numpy on the CPU")
    try:
        num = ScaledCounts(device)
        return _propagate(graph, target, to, num, keep), num
    except OutOfRange:
        num = LogCounts(device)
        return _propagate(graph, target, to, num, keep), num


def _propagate(graph: Graph, target: str, to, num, keep: bool) -> dict[str, _Value]:
    """Backward pass from the selected units of ``target``; returns the counts at the input
    (and, with ``keep``, at every node on the way)."""
    node = graph[target]
    mask = select_units(node.shape, to, target)
    if not keep:
        counts = _one_map(graph, target, mask, num)
        if counts is not None:
            return {graph.input: _Value(counts, np.zeros(graph[graph.input].channels, dtype=np.int64))}
    # every node's contributions, summed once when the node is reached (a DenseNet feature map is read by
    # dozens of concatenations: one merge of all of them instead of one per reader)
    parts: dict[str, list[_Value]] = {target: [_Value(num.ones(mask)[None], np.zeros(node.channels, dtype=np.int64))]}
    done: dict[str, _Value] = {}
    accumulate, maps = _Sums(num), {}
    for nd in reversed(list(graph)):  # (only what the target depends on is ever reached: it has parts)
        if nd.name not in parts or nd.kind in ("input", "const"):
            continue
        mine = parts.pop(nd.name)
        value = mine[0] if len(mine) == 1 else accumulate(mine)
        if keep:
            done[nd.name] = value
        kind = nd.kind
        if kind == "identity" and graph.nodes[nd.inputs[0]].shape == nd.shape:  # (most nodes: norms, activations)
            parts.setdefault(nd.inputs[0], []).append(value)
            continue
        for src, contrib in _adjoint(graph, nd, value, num, maps):
            # one row shape per node: a vector's rows may come back as (k,) or (k, 1), and adding those broadcasts
            # (a cat's inputs are on its grid: nothing to check)
            if kind != "cat" and contrib.rows.shape[1:] != graph.nodes[src].shape[1:]:
                contrib = _Value(contrib.rows.reshape((contrib.rows.shape[0],) + graph.nodes[src].shape[1:]),
                                 contrib.index)
            parts.setdefault(src, []).append(contrib)
    if graph.input not in parts:
        raise EdgewiseError(f"layer {target!r} of {graph.model_name} does not depend on the input")
    done[graph.input] = accumulate(parts[graph.input])
    return done


def _one_map(graph: Graph, target: str, mask: np.ndarray, num):
    """The input's counts (one row) where every node on the way carries one count map for all its channels, as
    every channel of ``target`` at ``mask`` does and convolutions, pools, concatenations, sums, Linear layers and
    flattening keep (a plain CNN); None where a node does not (a channel selection): :func:`_propagate` without
    a channel index per node, the same sums in the same order."""
    nodes = graph.nodes
    if any(nd.kind == "select" for nd in nodes.values()):
        return None
    parts: dict[str, list] = {target: [num.ones(mask)[None]]}
    accumulate, maps = _Sums(num), {}
    for nd in reversed(list(graph)):
        mine = parts.pop(nd.name, None)
        if mine is None:
            continue
        kind = nd.kind
        if kind in ("input", "const"):
            parts[nd.name] = mine
            continue
        rows = mine[0] if len(mine) == 1 else accumulate.maps(mine)
        if kind == "cat":
            for name in nd.inputs:
                if nodes[name].kind != "const":
                    parts.setdefault(name, []).append(rows)
            continue
        if kind == "identity" and nodes[nd.inputs[0]].shape == nd.shape:
            parts.setdefault(nd.inputs[0], []).append(rows)
            continue
        if kind == "conv":
            out = [(nd.inputs[0], _conv_one_map(graph, nd, rows, num, maps))]
        else:
            out = []
            for src, contrib in _adjoint(graph, nd, _Value(rows, _zeros(nd.channels, maps)), num, maps):
                if contrib.rows.shape[0] != 1:
                    return None
                out.append((src, contrib.rows))
        for src, contrib in out:
            if contrib.shape[1:] != nodes[src].shape[1:]:  # (see _propagate)
                contrib = contrib.reshape((1,) + nodes[src].shape[1:])
            parts.setdefault(src, []).append(contrib)
    if graph.input not in parts:
        raise EdgewiseError(f"layer {target!r} of {graph.model_name} does not depend on the input")
    return accumulate.maps(parts[graph.input]) if len(parts[graph.input]) > 1 else parts[graph.input][0]


class _Sums:
    """Sums of count maps over the same channels, in arrival order, keeping identical channels merged.

    A sum of one map per part whose parts are those of the previous such sum and one more starts from
    that sum (the same additions in the same order): in a DenseNet block feature i is read by every later
    concatenation, so its sum is feature i+1's plus one map, and a block costs L additions, not L²/2.
    """

    def __init__(self, num):
        self.num, self._last = num, None  # (the maps of the last sum, kept alive so that their ids hold; it)

    def __call__(self, parts: list[_Value]) -> _Value:
        if len(parts) == 1:
            return parts[0]
        maps = [p.rows for p in parts]
        if any(m.shape[0] != 1 for m in maps):
            combos, index = unique_rows(np.stack([p.index for p in parts], axis=1), return_inverse=True)
            return _Value(self.num.add_all([p.rows[combos[:, j]] for j, p in enumerate(parts)]), index)
        return _Value(self.maps(maps), parts[0].index)  # one map for every channel in each part

    def maps(self, maps: list):
        """The sum of one-row maps."""
        last = self._last  # (its maps are one row each)
        if last is not None and len(last[0]) == len(maps) - 1 and all(a is b for a, b in zip(last[0], maps)):
            total = self.num.add_all([last[1], maps[-1]])
        else:
            total = self.num.add_all(maps)
        self._last = (maps, total)
        return total


def _group_sums(index: np.ndarray, n_rows: int, groups: np.ndarray):
    """Distinct per-group row multiplicities: (weights [K, G], key of each group)."""
    n_groups = groups.max() + 1
    hist = np.zeros((n_groups, n_rows), dtype=np.int64)
    np.add.at(hist, (groups, index), 1)
    return unique_rows(hist, return_inverse=True)


def _adjoint(graph: Graph, nd: Node, v: _Value, num, maps: dict) -> list:
    """(input name, its share of the counts) for each input of node ``nd`` holding counts ``v``; ``maps``: what
    this computation made so far (axis maps, see :func:`_spatial`; index and weight arrays)."""
    kind = nd.kind
    if kind == "identity":
        return [(nd.inputs[0], v)]
    if kind == "conv":
        src = graph.nodes[nd.inputs[0]]
        c_in, c_out, g = src.channels, nd.channels, nd.groups
        if v.rows.shape[0] == 1:
            return [(src.name, _Value(_conv_one_map(graph, nd, v.rows, num, maps), _zeros(c_in, maps)))]
        if g == 1:  # every in-channel reads every out-channel: one map
            weights, index = np.bincount(v.index, minlength=v.rows.shape[0])[None], np.zeros(c_in, dtype=np.int64)
        else:
            weights, key = _group_sums(v.index, v.rows.shape[0], np.arange(c_out) // (c_out // g))
            index = key.reshape(-1)[np.arange(c_in) // (c_in // g)]
        return [(src.name, _Value(_spatial(num, num.mix(v.rows, weights), nd.axes, *graph.grid(nd.name), maps),
                                  index))]
    if kind == "pool":
        n_in, n_out = graph.grid(nd.name)
        rows = v.rows.reshape((v.rows.shape[0],) + tuple(n_out))
        return [(nd.inputs[0], _Value(_spatial(num, rows, nd.axes, n_in, n_out, maps), v.index))]
    if kind == "linear":
        src = graph[nd.inputs[0]]
        weights = np.bincount(v.index, minlength=v.rows.shape[0])[None]
        return [(src.name, _Value(num.mix(v.rows, weights), np.zeros(src.channels, dtype=np.int64)))]
    if kind == "reshape":
        src = graph[nd.inputs[0]]
        full = v.full().reshape((src.shape[0], -1))  # one row per source channel, even for a vector (F,)
        rows, index = num.unique_rows(full)
        return [(src.name, _Value(rows.reshape((rows.shape[0],) + tuple(src.shape[1:])), index))]
    if kind in ("add", "mul"):
        return [(name, _unbroadcast(v, graph[name].shape, nd.shape, num)) for name in nd.inputs
                if graph[name].kind != "const"]
    if kind == "select":
        src = graph[nd.inputs[0]]
        hist = np.zeros((src.channels, v.rows.shape[0]), dtype=np.int64)
        np.add.at(hist, (np.asarray(nd.pick), v.index), 1)
        weights, index = unique_rows(hist, return_inverse=True)
        return [(src.name, _Value(num.mix(v.rows, weights), index))]
    if kind == "cat":  # each input its channels' maps
        if v.rows.shape[0] == 1:  # one map for every channel (no index to slice)
            return [(name, _Value(v.rows, _zeros(graph.nodes[name].channels, maps))) for name in nd.inputs
                    if graph.nodes[name].kind != "const"]
        out, offset = [], 0
        for name in nd.inputs:
            src = graph.nodes[name]
            if src.kind != "const":
                out.append((name, _Value(v.rows, v.index[offset:offset + src.channels])))
            offset += src.channels
        return out
    raise EdgewiseError(f"pathways: node {nd.name!r} has unknown kind {kind!r}")


def _conv_one_map(graph: Graph, nd: Node, rows, num, maps: dict):
    """The one map of every in-channel of convolution ``nd`` whose out-channels all hold ``rows`` (one map): it,
    times the out-channels each in-channel feeds, through the windows."""
    return _spatial(num, num.mix(rows, _weight(nd.channels // nd.groups, maps)), nd.axes, *graph.grid(nd.name), maps)


def _weight(k: int, maps: dict) -> np.ndarray:
    """``[[k]]``: the weights of one map to all channels times ``k`` (kept per computation, in ``maps``)."""
    w = maps.get(("weight", k))
    if w is None:
        w = maps["weight", k] = np.array([[k]])
    return w


def _zeros(n: int, maps: dict) -> np.ndarray:
    """``n`` zeros (int64), one array per length in a computation (``maps``, see :func:`_spatial`): the channel
    index of one map for every channel (indices are shared between values, never written)."""
    z = maps.get(n)
    if z is None:
        z = maps[n] = np.zeros(n, dtype=np.int64)
    return z


def _spatial(num, rows, axes, n_in, n_out, maps: dict):
    """The spatial adjoint: axis by axis, or on the flattened grid for an op that does not factor. ``maps`` keeps
    each op's axis maps for the rest of the computation: the same objects, whose plans the number system keeps."""
    if len(axes) == 1 and isinstance(axes[0], Flat) and len(n_out) > 1:
        flat = rows.reshape((rows.shape[0], math.prod(n_out)))
        out = num.spatial(flat, (AxisMap(axes[0], math.prod(n_in), math.prod(n_out)),))
        return out.reshape((rows.shape[0],) + tuple(n_in))
    key = (axes, n_in, n_out)
    mats = maps.get(key)
    if mats is None:
        mats = maps[key] = _mats(axes, n_in, n_out)
    return num.spatial(rows, mats) if mats else rows


def _mats(axes, n_in, n_out) -> tuple:
    """One :class:`AxisMap` per axis, None where the op maps every position to itself (a 1×1 convolution); ``()``
    where it does so on every axis."""
    mats = tuple([None if _identity(ax, i, o) else AxisMap(ax, i, o) for ax, i, o in zip(axes, n_in, n_out)])
    return mats if any(m is not None for m in mats) else ()


def _identity(ax, n_in: int, n_out: int) -> bool:
    return type(ax) is Window and n_in == n_out and ax.kernel == 1 and ax.stride == 1 and ax.pad == (0, 0)


def _unbroadcast(v: _Value, in_shape, out_shape, num) -> _Value:
    """Counts for an operand of shape ``in_shape`` broadcast to ``out_shape``."""
    if tuple(in_shape) == tuple(out_shape):
        return v
    rows, index = v.rows, v.index
    if in_shape[0] == 1 and out_shape[0] > 1:
        rows = num.mix(rows, np.bincount(index, minlength=rows.shape[0])[None])
        index = np.zeros(1, dtype=np.int64)
    mats = tuple([AxisMap(Broadcast(), 1, o) if i == 1 and o > 1 else None for i, o in zip(in_shape[1:], out_shape[1:])])
    return _Value(num.spatial(rows, mats), index)

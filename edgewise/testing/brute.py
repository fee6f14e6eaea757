"""Brute-force pathway counts over an explicit unit-level DAG.

The reference for :func:`edgewise.pathways`: every unit (node, channel,
position) of every layer is a vertex, every tap that reads a unit is an edge
(repeated taps are repeated edges), and the number of paths is counted with
Python integers by dynamic programming. Taps are computed here from the
layers' parameters with explicit loops; padding uses ``np.pad`` index arrays,
so this module shares no arithmetic with the engine. It is meant for nets of
at most a few thousand units.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

__all__ = ["brute_pathways", "unit_dag", "axis_taps"]

#: edgewise padding mode → numpy's np.pad mode (None: constant, i.e. no edge)
_NP_MODE = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap", "symmetric": "symmetric"}


def _padded_index(n: int, lo: int, hi: int, mode: str) -> list:
    """Input index at every padded position -lo .. n+hi-1 (None where a constant is read)."""
    if _NP_MODE[mode] is None:
        return [None] * lo + list(range(n)) + [None] * hi
    return np.pad(np.arange(n), (lo, hi), mode=_NP_MODE[mode]).tolist()


def _window_taps(ax, n_in: int, n_out: int) -> list[list[int]]:
    """Sliding window: output o reads padded position o*stride + t*dilation, t < kernel."""
    lo, hi = ax.pad
    extra = ax.kernel * ax.dilation + ax.stride * n_out  # room for ceil_mode overhang: no edge there
    index = _padded_index(n_in, lo, hi, ax.mode) + [None] * extra
    taps = []
    for o in range(n_out):
        row = []
        for t in range(ax.kernel):
            i = index[o * ax.stride + t * ax.dilation]
            if i is not None:
                row.append(i)
        taps.append(row)
    return taps


def _transposed_taps(ax, n_in: int, n_out: int) -> list[list[int]]:
    """Transposed convolution, in its scatter form: input i adds into outputs
    i*stride - pad + t*dilation, t < kernel; those outside the output are cropped."""
    taps: list[list[int]] = [[] for _ in range(n_out)]
    for i in range(n_in):
        for t in range(ax.kernel):
            o = i * ax.stride - ax.pad + t * ax.dilation
            if 0 <= o < n_out:
                taps[o].append(i)
    return taps


def _adaptive_taps(n_in: int, n_out: int) -> list[list[int]]:
    """Adaptive pooling: output o covers [floor(o*n/n_out), ceil((o+1)*n/n_out))."""
    return [list(range((o * n_in) // n_out, -((-(o + 1) * n_in) // n_out))) for o in range(n_out)]


def _resample_taps(ax, n_in: int, n_out: int) -> list[list[int]]:
    """Interpolation: the input positions with a non-zero weight in output o, in integer arithmetic
    on scale = p/q (input length per output length)."""
    if ax.scale is None:
        p, q = n_in, n_out
    else:
        r = Fraction(ax.scale).limit_denominator(10 ** 6)
        p, q = r.numerator, r.denominator
    taps = []
    for o in range(n_out):
        if ax.mode == "nearest":  # floor(o * p/q)
            taps.append([min(o * p // q, n_in - 1)])
            continue
        if ax.mode == "nearest-exact":  # floor((o + 1/2) * p/q)
            taps.append([min((2 * o + 1) * p // (2 * q), n_in - 1)])
            continue
        assert ax.mode in ("linear", "bilinear", "trilinear"), ax.mode
        if n_out == n_in:  # PyTorch copies the input then
            taps.append([o])
            continue
        if ax.align_corners:  # source o*(n_in-1)/(n_out-1) = num/den
            num, den = (o * (n_in - 1), n_out - 1) if n_out > 1 else (0, 1)
        else:  # source (o + 1/2)*p/q - 1/2, clamped at 0
            num, den = max((2 * o + 1) * p - q, 0), 2 * q
        left = min(num // den, n_in - 1)
        right = min(left + 1, n_in - 1)
        taps.append([left] if num % den == 0 or right == left else [left, right])
    return taps


def axis_taps(ax, n_in: int, n_out: int) -> list[list[int]]:
    """For one spatial axis op: ``taps[o]`` = input indices read by output o, repeats kept."""
    kind = type(ax).__name__
    if kind == "Window":
        return _window_taps(ax, n_in, n_out)
    if kind == "Transposed":
        return _transposed_taps(ax, n_in, n_out)
    if kind == "Adaptive":
        return _adaptive_taps(n_in, n_out)
    if kind == "Resample":
        return _resample_taps(ax, n_in, n_out)
    if kind == "Table":  # fixed connection lists: the taps are the lists themselves
        return [list(row) for row in ax.sources]
    raise TypeError(f"brute: unknown axis op {ax!r}")


def _positions(spatial) -> list[tuple[int, ...]]:
    return list(itertools.product(*[range(n) for n in spatial]))


def _node_preds(graph, nd) -> dict[tuple, list[tuple]]:
    """{unit of nd: [predecessor units]}; a unit is (node name, channel, *position)."""
    preds: dict[tuple, list[tuple]] = {}
    name, shape = nd.name, nd.shape
    if nd.kind in ("input", "const"):
        return {(name, *u): [] for u in np.ndindex(*shape)}
    if nd.kind == "identity":
        (src,) = nd.inputs
        return {(name, *u): [(src, *u)] for u in np.ndindex(*shape)}
    if nd.kind == "reshape":
        (src,) = nd.inputs
        src_shape = graph[src].shape
        flat = list(np.ndindex(*src_shape))  # C-order, like torch's view/flatten
        return {(name, *u): [(src, *flat[k])] for k, u in enumerate(np.ndindex(*shape))}
    if nd.kind == "linear":
        (src,) = nd.inputs
        every = [(src, *v) for v in np.ndindex(*graph[src].shape)]
        return {(name, *u): list(every) for u in np.ndindex(*shape)}
    if nd.kind in ("add", "mul"):
        for u in np.ndindex(*shape):
            preds[(name, *u)] = []
            for src in nd.inputs:
                s = graph[src]
                if s.kind == "const":
                    continue
                assert len(s.shape) == len(shape), (s.shape, shape)
                # broadcasting: a size-1 axis of the operand serves every position
                preds[(name, *u)].append((src, *[ui if si > 1 else 0 for ui, si in zip(u, s.shape)]))
        return preds
    if nd.kind == "select":  # output channel c is input channel pick[c], position by position
        (src,) = nd.inputs
        return {(name, c, *p): [(src, nd.pick[c], *p)] for c, *p in np.ndindex(*shape)}
    if nd.kind == "cat":
        owners = []  # out channel → (source, its channel)
        for src in nd.inputs:
            owners += [(src, c) for c in range(graph[src].channels)]
        if len(owners) != nd.channels:
            raise ValueError(f"brute: cat node {name!r} has {nd.channels} channels but its inputs "
                             f"{nd.inputs} have {len(owners)}")
        for c, *p in np.ndindex(*shape):
            src, sc = owners[c]
            preds[(name, c, *p)] = [] if graph[src].kind == "const" else [(src, sc, *p)]
        return preds
    if nd.kind in ("conv", "pool"):
        src = graph[nd.inputs[0]]
        ndim = len(src.spatial)
        # a reduction without keepdim drops the spatial axes: treat them as size 1
        out_spatial = nd.spatial if len(shape) == len(src.shape) else (1,) * ndim
        flat = len(nd.axes) == 1 and type(nd.axes[0]).__name__ == "Flat"
        axes = nd.axes[0].windows if flat else nd.axes  # Flat: its windows, plus the extra connections below
        taps = [axis_taps(ax, n_in, n_out) for ax, n_in, n_out in zip(axes, src.spatial, out_spatial)]
        c_in, c_out, g = src.channels, nd.channels, nd.groups
        for c in range(c_out):
            if nd.kind == "conv":  # every in-channel of the same group
                in_channels = range((c // (c_out // g)) * (c_in // g), (c // (c_out // g) + 1) * (c_in // g))
            else:  # per channel
                in_channels = [c]
            for o in _positions(out_spatial):
                unit = (name, c, *o) if len(shape) == len(src.shape) else (name, c)
                reads = list(itertools.product(*[taps[a][o[a]] for a in range(ndim)])) if taps else []
                if flat:
                    extra = nd.axes[0].extra[int(np.ravel_multi_index(o, out_spatial))]
                    reads += [tuple(int(q) for q in np.unravel_index(i, src.spatial)) for i in extra]
                preds[unit] = [(src.name, ci, *i) for ci in in_channels for i in reads]
        return preds
    raise ValueError(f"brute: node {name!r} has unknown kind {nd.kind!r}")


def unit_dag(graph, upto: str | None = None) -> dict[tuple, list[tuple]]:
    """The explicit unit-level DAG of ``graph`` (nodes ``upto`` depends on): unit → predecessor units."""
    target = upto if upto is not None else graph.output
    live = graph.upstream(target)
    dag: dict[tuple, list[tuple]] = {}
    for nd in graph:
        if nd.name in live:
            dag.update(_node_preds(graph, nd))
    return dag


def _selected(shape: tuple[int, ...], to) -> list[tuple[int, ...]]:
    """Indices (channel, *position) of the units ``to`` selects in a layer of ``shape``."""
    spatial = shape[1:]
    units = list(np.ndindex(*shape))
    if not spatial or (isinstance(to, str) and to == "all"):
        return units
    if isinstance(to, str) and to in ("center", "centre"):
        pos = tuple((n - 1) // 2 for n in spatial)
    else:
        pos = (int(to),) if isinstance(to, (int, np.integer)) else tuple(int(t) for t in to)
    return [u for u in units if tuple(u[1:]) == pos]


def brute_pathways(graph_or_model, input_shape=None, to="all", layer: str | None = None) -> np.ndarray:
    """Path counts from input unit (channel 0, p) to the selected units of ``layer``, for every p.

    Args:
        graph_or_model: an :class:`edgewise.Graph` or an ``nn.Module`` (traced with ``input_shape``).
        input_shape: C×L or C×H×W, for a module.
        to: ``"all"``, ``"center"`` or a position, as in :func:`edgewise.pathways`.
        layer: target layer name; default the output.

    Returns:
        Object array of Python ints over the input's spatial positions.
    """
    graph = graph_or_model
    if not hasattr(graph, "nodes"):
        from .._trace import trace

        graph = trace(graph_or_model, input_shape)
    target = graph[layer].name if layer is not None else graph.output
    dag = unit_dag(graph, target)
    # g[u] = number of paths from u to a selected target unit, pushed backwards along edges
    g = {u: 0 for u in dag}
    for idx in _selected(graph[target].shape, to):
        g[(target, *idx)] = 1
    for u in reversed(list(dag)):  # units are listed layer by layer in topological order
        if g[u]:
            for q in dag[u]:
                g[q] += g[u]
    inp = graph[graph.input]
    out = np.empty(inp.spatial, dtype=object)
    for p in _positions(inp.spatial):
        out[p] = g[(inp.name, 0, *p)]
    return out

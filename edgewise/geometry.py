"""Receptive-field geometry: integer (and rational) arithmetic over the Graph.

For every node and spatial axis: the receptive-field ``size`` (input pixels
spanned by one unit, padding included), the ``jump`` (input pixels between
neighbouring units) and the ``start`` (input coordinate of the centre of the
first unit; negative when it sits in the padding). Unit ``o`` then sees input
pixels ``start + o*jump ± (size−1)/2``. Through branches the union is taken and
any disagreement is reported as misalignment rather than hidden.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ._axis import Adaptive, Flat, Table, Transposed, Window
from .errors import EdgewiseError
from .graph import Graph, Node
from .models import as_graph
from .results import Result

__all__ = ["receptive_field", "ReceptiveField", "LayerField", "Advice", "AxisField"]


def _num(x: Fraction):
    """An int when whole, else a float: for display and JSON."""
    return int(x) if x.denominator == 1 else float(x)


def _div(x, k: int):
    """``x / k`` exactly for a whole ``k``: an int when ``x`` is an int that ``k`` divides, else a Fraction
    (a float only for a float ``x``). The field walk keeps whole numbers as ints, whose arithmetic costs tens
    of times less than Fraction's and mixes with it exactly; ``/`` on two ints would give a float, hence this."""
    if type(x) is int:
        return x // k if x % k == 0 else Fraction(x, k)
    return x / k if isinstance(x, float) else Fraction(x, k)


class _Publish:
    """The walk's fields as :class:`AxisField` promises them, with Fractions for their whole numbers (the
    walk keeps them as ints): one new object per object of the walk, so that what the walk shares (rows and
    columns alike, per-unit ops and their input) stays shared. The ids of the walk's objects are the keys:
    the caller keeps those alive."""

    def __init__(self):
        self.done: dict[int, object] = {}
        self.whole: dict[int, Fraction] = {}  # one Fraction per whole number (they are immutable)

    def __call__(self, axes: tuple) -> tuple:
        out = self.done.get(id(axes))
        if out is None:
            out = self.done[id(axes)] = tuple([self.field(a) for a in axes])
        return out

    def field(self, a: "AxisField") -> "AxisField":
        out = self.done.get(id(a))
        if out is None:
            out = self.done[id(a)] = AxisField(self.number(a.size), self.number(a.jump), self.number(a.start),
                                               a.n, a.exact, a.cover, a.per_unit)
        return out

    def number(self, x):
        if type(x) is not int:
            return x
        out = self.whole.get(x)
        if out is None:
            out = self.whole[x] = Fraction(x)
        return out


@dataclass(frozen=True)
class AxisField:
    """Receptive field of a node's units along one axis (``n`` units)."""

    size: Fraction
    jump: Fraction
    start: Fraction
    n: int
    exact: bool = True
    cover: tuple = (-np.inf, np.inf)  # input pixels read by any unit (strides may drop the last ones)
    #: (lo, hi) float arrays, one entry per unit, where the units' fields have no affine form (attention windows,
    #: fixed connection lists): then ``size`` is the widest, ``start`` the first unit's centre, ``jump`` the mean
    per_unit: tuple | None = field(default=None, compare=False, repr=False)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Unclipped (lo, hi) input coordinates of every unit, as float arrays."""
        if self.per_unit is not None:
            return self.per_unit
        centre = float(self.start) + np.arange(self.n) * float(self.jump)
        half = (float(self.size) - 1) / 2
        return centre - half, centre + half

    def through(self, w: Window, n: int | None = None) -> "AxisField":
        """The field of the units of window ``w`` on this axis; given their number ``n``, with the cover that
        :meth:`with_units` gives them."""
        if self.per_unit is not None:
            return self._through_per_unit(w, w.out_size(self.n) if n is None else n)
        ext = w.extent
        size, jump = self.size + (ext - 1) * self.jump, self.jump * w.stride
        start = self.start + (_div(ext - 1, 2) - w.pad[0]) * self.jump
        if n is None:
            return AxisField(size, jump, start, self.n, self.exact, self.cover)
        half = _div(size - 1, 2)
        lo, hi = start - half, start + (n - 1) * jump + half
        cover = (max(self.cover[0], float(lo)), min(self.cover[1], float(hi)))
        return AxisField(size, jump, start, n, self.exact, cover)

    def _through_per_unit(self, w: Window, n: int) -> "AxisField":
        """:meth:`through` for per-unit fields: each output unit's box spans the boxes of the units its taps read;
        a tap in the padding reads the box the grid would have there (the edge unit's, moved by the jump)."""
        lo_in, hi_in = self.per_unit
        x = np.arange(n)[:, None] * w.stride + np.arange(w.kernel)[None, :] * w.dilation - w.pad[0]
        c = np.clip(x, 0, self.n - 1)
        past = (x - c) * float(self.jump)
        lo, hi = (lo_in[c] + past).min(axis=1), (hi_in[c] + past).max(axis=1)
        return _per_unit_field(lo, hi, self.jump * w.stride, n, (max(self.cover[0], float(lo.min())),
                                                                min(self.cover[1], float(hi.max()))))

    def union(self) -> "AxisField":
        """One unit covering every unit of this axis (a global pool, flatten or Linear)."""
        if self.per_unit is not None:
            lo, hi = (Fraction(float(v)).limit_denominator(1000) for v in (self.per_unit[0].min(),
                                                                          self.per_unit[1].max()))
            return AxisField(hi - lo + 1, hi - lo + 1, _div(lo + hi, 2), 1, False, self.cover)
        half = _div(self.size - 1, 2)
        lo, hi = self.start - half, self.start + (self.n - 1) * self.jump + half
        return AxisField(hi - lo + 1, hi - lo + 1, _div(lo + hi, 2), 1, self.exact, self.cover)

    def with_units(self, n: int, cover) -> "AxisField":
        """This field for ``n`` units whose inputs read only the pixels in ``cover``."""
        half = _div(self.size - 1, 2)
        lo, hi = self.start - half, self.start + (n - 1) * self.jump + half
        return AxisField(self.size, self.jump, self.start, n, self.exact,
                         (max(cover[0], float(lo)), min(cover[1], float(hi))))


def _per_unit_field(lo: np.ndarray, hi: np.ndarray, jump, n: int, cover: tuple) -> AxisField:
    """An inexact field that keeps every unit's (lo, hi): the widest box as its size, the first unit's centre as its
    start."""
    size = Fraction(float(np.max(hi - lo + 1))).limit_denominator(1000)
    start = Fraction(float(lo[0] + hi[0]) / 2).limit_denominator(1000)
    return AxisField(size, jump, start, n, False, cover, (lo, hi))


@dataclass
class LayerField:
    """Receptive field of one node, per spatial axis of the input."""

    name: str
    kind: str
    op: str
    shape: tuple[int, ...]
    axes: tuple[AxisField, ...]
    spatial: bool
    fraction_off: float
    unread: tuple[int, ...] | None = None
    misaligned: bool = False
    global_via: str | None = None  # the first layer through which every unit reads every input position

    @property
    def size(self):
        return tuple(_num(a.size) for a in self.axes)

    @property
    def jump(self):
        return tuple(_num(a.jump) for a in self.axes) if self.spatial else None

    @property
    def start(self):
        return tuple(_num(a.start) for a in self.axes) if self.spatial else None

    @property
    def exact(self) -> bool:
        return all(a.exact for a in self.axes)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "op": self.op, "shape": list(self.shape),
                "size": list(self.size), "jump": self.jump and list(self.jump),
                "start": self.start and list(self.start), "exact": self.exact, "spatial": self.spatial,
                "fraction_off": self.fraction_off, "unread": self.unread and list(self.unread),
                "misaligned": self.misaligned, "global_via": self.global_via}


@dataclass
class Advice:
    """Padding-evenness advice for one input size.

    Attributes:
        uneven: ``(layer, axis, unread, pad_after)`` for each window layer whose last
            window stops ``unread`` positions before the end of its padded input, so
            it reads its padding on one side only (``unread > pad_after``: input
            pixels are dropped).
        center_offset: per axis, input pixels from the image centre to the centre
            of the output grid's receptive fields.
        even_input_sizes: nearby input sizes at which no layer is uneven.
    """

    uneven: list[tuple[str, int, int, int]]
    center_offset: tuple
    even_input_sizes: list[tuple[int, ...]]
    global_via: str | None = None
    local_size: tuple = ()
    local_layer: str | None = None  # the layer whose units' local field that is (the last one with positions)

    def to_dict(self) -> dict:
        return {"uneven_layers": [{"layer": n, "axis": a, "unread": u, "pad_after": p} for n, a, u, p in self.uneven],
                "center_offset": list(self.center_offset),
                "even_input_sizes": [list(s) for s in self.even_input_sizes],
                "global_via": self.global_via, "local_size": list(self.local_size), "local_layer": self.local_layer}

    def sentences(self) -> list[str]:
        """The advice in words."""
        names = ["row", "column"] if len(self.center_offset) == 2 else ["position"]
        out = []
        axes: dict[tuple, list[str]] = {}  # one sentence for rows and columns alike
        for name, a, unread, pad in self.uneven:
            axes.setdefault((name, unread, pad), []).append(names[a])
        for (name, unread, pad), which in axes.items():
            n = unread if unread <= pad else unread - pad
            kinds = " and ".join(w + "s" * (n > 1) for w in which)
            last = "the last" if n == 1 else f"the last {n}"
            verb = "is" if n == 1 and len(which) == 1 else "are"
            if unread <= pad:
                out.append(f"{name}: {last} padded {kinds} {verb} never read, so the padding is uneven "
                           "(more before than after).")
            else:
                out.append(f"{name}: {last} input {kinds} {verb} never read (dropped).")
        if not self.uneven:
            out.append("Every layer reads its padding evenly at this input size.")
        if self.global_via:
            size = "×".join(map(str, self.local_size))
            out.append(f"Every output unit reads every input position, through {self.global_via}. Through the windows "
                       f"alone a unit of {self.local_layer} sees {size} input "
                       f"{'pixels' if len(self.local_size) == 2 else 'samples'}"
                       + ("; the offset below is that grid's." if any(self.center_offset) else "."))
        if any(self.center_offset):
            offset = self.center_offset[0] if len(self.center_offset) == 1 else tuple(self.center_offset)
            unit = "pixels (row, col)" if len(self.center_offset) == 2 else "samples"
            out.append(f"The output grid's centre is offset by {offset} input {unit} from the input centre.")
        if self.even_input_sizes and self.uneven:
            sizes = ", ".join("x".join(map(str, s)) for s in self.even_input_sizes)
            out.append(f"Input sizes with even padding everywhere: {sizes}.")
        return out


@dataclass
class ReceptiveField(Result):
    """Receptive fields of every node of a model, with padding-evenness advice."""

    layers: list[LayerField]
    advice: Advice
    input_shape: tuple[int, ...]
    model: str = "model"
    misalignments: list[str] = field(default_factory=list)
    padding: str | None = None
    norm_stats: str = "ignore"

    kind = "receptive_field"

    def __getitem__(self, name: str) -> LayerField:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise EdgewiseError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers[:8])}, ...")

    @property
    def grid_layer(self) -> LayerField:
        """The last layer the output depends on whose units still have positions (the output itself when
        it is a map): its field is the one advice and summaries quote."""
        return self[self.advice.local_layer] if self.advice.local_layer else self.layers[-1]

    def box(self, layer: str, position) -> tuple[tuple[float, float], ...]:
        """Unclipped ``(lo, hi)`` input coordinates, per axis, of the unit at ``position`` (row, col) (its own box
        where the units' boxes have no affine form: attention windows)."""
        lf = self[layer]
        pos = _position(lf, position)
        return tuple((float(a.per_unit[0][p]), float(a.per_unit[1][p])) if a.per_unit is not None else
                     (float(a.start + p * a.jump - (a.size - 1) / 2), float(a.start + p * a.jump + (a.size - 1) / 2))
                     for a, p in zip(lf.axes, pos))

    def clipped_box(self, layer: str, position) -> tuple[tuple[float, float], ...]:
        """The :meth:`box` clipped to the input pixels the layer reads at all (strides that
        skip the last rows shrink it); with constant padding and no dilation these are
        exactly the first and last input pixels with a path to the unit."""
        return tuple((max(lo, a.cover[0]), min(hi, a.cover[1])) for (lo, hi), a in
                     zip(self.box(layer, position), self[layer].axes))

    def fraction_inside(self, layer: str) -> np.ndarray:
        """Per unit of ``layer``: fraction of its receptive-field box inside the input."""
        lf = self[layer]
        per_axis = [_inside(a, n)[1] for a, n in zip(lf.axes, self.input_shape[1:])]
        out = per_axis[0]
        for f in per_axis[1:]:
            out = np.multiply.outer(out, f)
        return out

    def to_dict(self) -> dict:
        return {"model": self.model, "padding": self.padding, "input_shape": list(self.input_shape),
                "layers": [l.to_dict() for l in self.layers], "advice": self.advice.to_dict(),
                "misalignments": self.misalignments, "norm_stats": self.norm_stats}


def _position(lf: LayerField, position) -> tuple[int, ...]:
    pos = (position,) if isinstance(position, (int, np.integer)) else tuple(position)
    n = tuple(a.n for a in lf.axes)
    if len(pos) != len(n) or not all(0 <= p < m for p, m in zip(pos, n)):
        raise EdgewiseError(f"position {position!r} is outside layer {lf.name!r}, whose grid is {n} (row, col)")
    return pos


def _dyadic(*xs: Fraction) -> bool:
    """Every number a multiple of ``1/512`` (or of a larger power of two) below a million, so that float
    arithmetic on it and on a million units of it is exact."""
    for x in xs:  # (a loop, not all() over a generator: this runs for most nodes)
        if not (-1 << 20 < x < 1 << 20 if type(x) is int else x.denominator & (x.denominator - 1) == 0
                and x.denominator <= 512 and -x.denominator << 20 < x.numerator < x.denominator << 20):
            return False
    return True


def _share_inside(a: AxisField, n_input: int) -> float:
    """Share of the units whose box lies inside the input along one axis, i.e. the mean of
    ``_inside(a, n_input)[0]``: counted in closed form where the float bounds are exact, else from them."""
    if a.per_unit is not None or a.jump < 0 or not 0 < a.n < 1 << 20 or not _dyadic(a.size, a.jump, a.start):
        return float(_inside(a, n_input)[0].mean())
    if type(a.size) is int and type(a.jump) is int and type(a.start) is int:  # (most fields) in halves
        unit, size, jump, start = 2, 2 * a.size, 2 * a.jump, 2 * a.start
    else:
        unit = 2 * max(a.size.denominator, a.jump.denominator, a.start.denominator)  # whole numbers of 1/unit
        size, jump, start = (x.numerator * (unit // x.denominator) for x in (a.size, a.jump, a.start))
    first = (size - unit) // 2 - start  # o*jump must lie in [first, last]
    last = (n_input - 1) * unit - (size - unit) // 2 - start
    if jump == 0:
        return 1.0 if first <= 0 <= last else 0.0
    return max(0, min(a.n - 1, last // jump) - max(0, -(-first // jump)) + 1) / a.n


def _fraction_off(axes: tuple[AxisField, ...], n_input: tuple[int, ...], seen: dict | None = None) -> float:
    """Share of a layer's units whose box reaches outside the input (an axis equal to the first is counted once;
    ``seen``: the shares of earlier whole-number fields by value, e.g. a 1×1 convolution's input's)."""
    shares = []
    for a, n in zip(axes, n_input):
        if shares and a is axes[0] and n == n_input[0]:
            shares.append(shares[0])
        elif seen is not None and type(a.size) is int and type(a.jump) is int and type(a.start) is int \
                and a.per_unit is None:
            key = (a.size, a.jump, a.start, a.n, n)
            shares.append(seen[key] if key in seen else seen.setdefault(key, _share_inside(a, n)))
        else:
            shares.append(_share_inside(a, n))
    return 1.0 - math.prod(shares)


def _inside(a: AxisField, n_input: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: (box fully inside?, fraction of the box inside) along one axis."""
    lo, hi = a.bounds()
    kept = np.clip(np.minimum(hi, n_input - 1) - np.maximum(lo, 0) + 1, 0, None)
    return (lo >= 0) & (hi <= n_input - 1), kept / (float(a.size) if a.per_unit is None else hi - lo + 1)


# ------------------------------------------------------------------ propagation

def _merge(fields: list[tuple[AxisField, ...]], n_out: tuple[int, ...]) -> tuple[tuple[AxisField, ...], bool]:
    """Union of the operands' fields of an elementwise op or concatenation."""
    if all(f == fields[0] and all(a.per_unit is b.per_unit for a, b in zip(f, fields[0])) for f in fields):
        return fields[0], False
    merged, misaligned = [], False
    for a, n in enumerate(n_out):
        ops = [f[a] for f in fields]
        if a and n == n_out[0] and all(f[a] is f[0] for f in fields):  # the same operands as axis 0
            merged.append(merged[0])
            continue
        aligned = _merge_aligned(ops, n)
        if aligned is not None:
            misaligned |= len({o.start for o in ops}) > 1
            merged.append(aligned)
            continue
        los, his = zip(*((np.broadcast_to(lo, (n,)), np.broadcast_to(hi, (n,))) for lo, hi in (o.bounds() for o in ops)))
        lo, hi = np.min(los, axis=0), np.max(his, axis=0)
        spatial = [o for o in ops if o.n == n and n > 1]
        jump = spatial[0].jump if spatial else ops[0].jump
        size = Fraction(float(np.max(hi - lo + 1))).limit_denominator(1000)
        start = Fraction(float(lo[0] + hi[0]) / 2).limit_denominator(1000)
        affine = np.allclose(hi - lo, hi[0] - lo[0]) and np.allclose(lo - lo[0], np.arange(n) * float(jump))
        # (a grid offset means nothing for boxes that are no grid: attention windows' own boxes are not compared)
        misaligned |= (len({(o.jump, o.start) for o in spatial}) > 1 or not affine) and \
            all(o.per_unit is None for o in ops)
        cover = (min(o.cover[0] for o in ops), max(o.cover[1] for o in ops))
        merged.append(AxisField(size, jump, start, n, all(o.exact for o in ops) and affine, cover)
                      if affine or n == 1 else _per_unit_field(lo, hi, jump, n, cover))
    return tuple(merged), misaligned


def _merge_aligned(ops: list[AxisField], n: int) -> AxisField | None:
    """What :func:`_merge` computes for operands of ``n`` units each and one jump, in exact arithmetic: the
    same numbers where its float arithmetic is exact too (:func:`_dyadic`); None where that is not sure.
    (Loops rather than generators: this runs at every residual sum; ``min`` and ``max`` keep the first of
    equals, as the loops do.)"""
    jump = ops[0].jump
    if not 1 < n < 1 << 20:
        return None
    numbers = [jump]
    for o in ops:
        if o.n != n or o.jump != jump or o.per_unit is not None:
            return None
        numbers += (o.size, o.start)
    if not _dyadic(*numbers):
        return None
    first = ops[0]
    half = _div(first.size - 1, 2)
    lo, hi, exact, cover_lo, cover_hi = first.start - half, first.start + half, first.exact, *first.cover
    for o in ops[1:]:
        half = _div(o.size - 1, 2)
        lo, hi = min(lo, o.start - half), max(hi, o.start + half)
        exact, cover_lo, cover_hi = exact and o.exact, min(cover_lo, o.cover[0]), max(cover_hi, o.cover[1])
    centre = _div(lo + hi, 2)
    if not _dyadic(hi - lo + 1, centre):
        return None
    return AxisField(hi - lo + 1, jump, centre, n, bool(exact), (cover_lo, cover_hi))


def _units_per_axis(graph: Graph, nd: Node) -> tuple[int, ...]:
    """Units along each input axis for a node whose op may work on the flattened grid."""
    return nd.spatial if len(nd.spatial) == graph.ndim else (1,) * graph.ndim


def _axis_fields(graph: Graph, nd: Node, fields: dict) -> tuple[tuple[AxisField, ...], bool]:
    ins = [fields[i] for i in nd.inputs if i in fields]
    if nd.kind == "input":
        made: dict[int, AxisField] = {}  # one object per length: equal axes are computed once below
        return tuple(made.setdefault(n, AxisField(1, 1, 0, n, True, (0.0, n - 1.0)))
                     for n in nd.spatial), False
    if nd.kind in ("add", "mul", "cat"):
        n_out = nd.spatial if nd.spatial else (1,) * graph.ndim
        # a broadcast operand (a squeeze-excitation gate, a class token) adds the global part, not a window
        local = [f for f in ins if all(a.n == n for a, n in zip(f, n_out))]
        return _merge(local if local else ins, n_out)
    src = ins[0]
    if nd.kind in ("identity", "select"):
        return src, False
    if nd.kind in ("conv", "pool") and len(nd.spatial) != graph.ndim and len(graph[nd.inputs[0]].spatial) != graph.ndim \
            and len(nd.spatial) > 0:  # on a flattened grid, whose units lost their positions when it was flattened
        return tuple(f.union() for f in src), False
    if nd.kind in ("conv", "pool") and all(isinstance(ax, Table) for ax in nd.axes) \
            and len(nd.spatial) == graph.ndim == len(graph[nd.inputs[0]].spatial):
        # fixed windows (attention windows, patch merging); all-to-all (global attention) keeps each
        # unit's own local field, the global part is in ``global_via``
        if _all_to_all(graph, nd):
            return src, False
        return tuple(_table_field(f, ax, n_in, n) for f, ax, n_in, n in zip(src, nd.axes, *graph.grid(nd.name))), False
    if nd.kind in ("conv", "pool") and any(isinstance(ax, (Table, Flat)) for ax in nd.axes):
        # fixed long-range connections: every unit sees the whole extent its input sees (jump 0)
        return tuple(AxisField(u.size, 0, u.start, n, False, f.cover)
                     for f, u, n in zip(src, (f.union() for f in src), _units_per_axis(graph, nd))), False
    if nd.kind in ("conv", "pool"):
        out, done = [], {}  # the same field through the same op (rows and columns alike) is computed once
        for f, ax, n_in, n in zip(src, nd.axes, *graph.grid(nd.name)):
            key = (id(f), ax, n_in, n)
            if key not in done:
                done[key] = _through_axis(f, ax, n_in, n)
            out.append(done[key])
        return tuple(out), False
    # linear / reshape: the units lose their positions unless the shape is unchanged
    if nd.kind == "reshape" and nd.spatial == graph[nd.inputs[0]].spatial and len(nd.shape) > 1:
        return src, False
    return tuple(f.union() for f in src), False


def _slides(graph: Graph, nd: Node) -> bool:
    """A convolution or pooling of sliding windows along every axis of the input, keeping its input's rank."""
    if nd.kind not in ("conv", "pool") or not len(nd.axes) + 1 == len(graph.input_shape) == len(nd.shape) \
            == len(graph.nodes[nd.inputs[0]].shape):
        return False
    for ax in nd.axes:
        if not isinstance(ax, Window):
            return False
    return True


def _window_fields(graph: Graph, nd: Node, src: tuple) -> tuple[tuple[AxisField, ...], tuple[int, ...]]:
    """The fields and unread positions of a node that :func:`_slides`: what :func:`_axis_fields` and
    :func:`_unread` give for it, the same field through the same window (rows and columns alike) made once."""
    axes, n_in, n_out = nd.axes, graph.nodes[nd.inputs[0]].spatial, nd.spatial
    out, unread = [], []
    for a, (f, ax, i, n) in enumerate(zip(src, axes, n_in, n_out)):
        if a and f is src[0] and (ax is axes[0] or ax == axes[0]) and i == n_in[0] and n == n_out[0]:
            out.append(out[0])
            unread.append(unread[0])
        else:
            out.append(f.through(ax, n))
            unread.append(ax.unread(i, n))
    return tuple(out), tuple(unread)


def _through_axis(f: AxisField, ax, n_in: int, n: int) -> AxisField:
    """The field of the units of a window, transposed window, adaptive pool or resampling along one axis."""
    if isinstance(ax, Adaptive) and ax.affine(n_in, n) is not None:
        k = n_in // n
        ax = Window(k, k)
    if isinstance(ax, Window):
        return f.through(ax, n)
    if isinstance(ax, Transposed):
        g = _through_transposed(f, ax, n_in, n)
    elif isinstance(ax, Adaptive):  # uneven windows: widest window, mean stride
        k = -(-n_in // n) + 1
        g = AxisField(f.size + (k - 1) * f.jump, f.jump * _div(n_in, n),
                      f.start + _div(k - 1, 2) * f.jump, n_in, False)
    else:  # Resample: nearest keeps the field, linear adds a neighbour
        taps = 1 if ax.mode.startswith("nearest") else 4 if ax.mode == "bicubic" else 2
        scale = _div(n_in, n) if ax.scale is None else Fraction(ax.scale).limit_denominator(1000)
        g = AxisField(f.size + (taps - 1) * f.jump, f.jump * scale, f.start, n_in, False)
    return g.with_units(n, f.cover)


def _through_transposed(f: AxisField, ax: Transposed, n_in: int, n_out: int) -> AxisField:
    """A transposed convolution is a window of fractional stride ``1/s`` (see :meth:`Transposed.affine`):
    unit ``o`` lies over the input units in ``[(o + pad - (k-1)d)/s, (o + pad)/s]``.

    Its box has fractional ends; it is exact in the sense that the input pixels with a path to the
    unit are the whole numbers inside it (round the ends inward), which holds when ``s == 1`` (a
    plain convolution) or, with ``d == 1`` and ``k >= s`` (no unit reads nothing), when the units
    below map onto input pixels as whole multiples of ``1/m`` (``jump == 1/m`` and the ends of the
    first box on that grid), so that rounding at this layer and at the input agree. Otherwise
    (e.g. up-sampling the output of a strided convolution) the box is the smallest affine one that
    holds every unit's field, and is marked inexact.
    """
    ext, stride, offset = ax.affine(n_in, n_out)
    exact = f.exact
    if ax.stride != 1:
        m = 1 / Fraction(f.jump) if f.jump else Fraction(0)
        half = _div(f.size - 1, 2)
        exact = (exact and ax.dilation == 1 and ax.kernel >= ax.stride and m.denominator == 1 and m >= 1
                 and ((f.start - half) * m).denominator == 1 and ((f.start + half) * m).denominator == 1)
    return AxisField(f.size + (ext - 1) * f.jump, f.jump * stride, f.start + ((ext - 1) / 2 - offset) * f.jump,
                     f.n, exact, f.cover)


def _ending_at(graph: Graph, name: str) -> Graph:
    """``graph`` cut at node ``name``: that node and what it depends on."""
    keep = graph.upstream(name) | {graph.input}
    return Graph({k: v for k, v in graph.nodes.items() if k in keep}, graph.input, name, graph.input_shape,
                 graph.model_name, graph.padding, graph.norm_stats, graph.norm_layers,
                 {k: v for k, v in graph.scales.items() if k in keep})


def _table_field(f: AxisField, ax: Table, n_in: int, n_out: int) -> AxisField:
    """Per-unit bounds through fixed connection lists, summarised affinely (marked inexact unless affine)."""
    lo_in, hi_in = f.bounds()
    rows = [np.asarray(r, dtype=np.int64) for r in ax.sources]
    lo = np.array([lo_in[r].min() if r.size else np.nan for r in rows])
    hi = np.array([hi_in[r].max() if r.size else np.nan for r in rows])
    ok = ~np.isnan(lo)
    if not ok.any():
        return AxisField(Fraction(0), Fraction(0), Fraction(0), n_out, False, f.cover)
    size = Fraction(float(np.nanmax(hi - lo + 1))).limit_denominator(1000)
    centre = (lo + hi) / 2
    idx = np.flatnonzero(ok)
    jump = Fraction(float((centre[idx[-1]] - centre[idx[0]]) / max(idx[-1] - idx[0], 1))).limit_denominator(1000)
    start = Fraction(float(centre[idx[0]] - idx[0] * float(jump))).limit_denominator(1000)
    approx = AxisField(size, jump, start, n_out)
    alo, ahi = approx.bounds()
    affine = bool(ok.all()) and np.allclose(alo, lo) and np.allclose(ahi, hi)
    cover = (max(f.cover[0], float(np.nanmin(lo))), min(f.cover[1], float(np.nanmax(hi))))
    if not affine and ok.all():  # every unit's own box, for the layers after it (windows do not tile affinely)
        return AxisField(size, jump, start, n_out, False, cover, (lo, hi))
    return AxisField(size, jump, start, n_out, f.exact and affine, cover)


def _all_to_all(graph: Graph, nd: Node) -> bool:
    """Every output unit reads every input position (global attention): a Table whose rows are all full."""
    n_in, n_out = graph.grid(nd.name)
    return all(isinstance(ax, Table) and all(len(set(r)) == i for r in ax.sources) and i > 1
               for ax, i in zip(nd.axes, n_in)) and tuple(n_in) == tuple(n_out)


def _inherited(nd: Node, via: dict) -> str | None:
    """The first ``global_via`` among the inputs of ``nd``."""
    for i in nd.inputs:
        if via.get(i):
            return via[i]
    return None


def _global_via(graph: Graph, nd: Node, via: dict) -> str | None:
    """The first layer through which the units of ``nd`` read every input position: inherited from an
    input, or ``nd`` itself when it mixes a whole map (global pool, global attention, a Linear on it)."""
    inherited = _inherited(nd, via)
    if inherited:
        return inherited
    if nd.kind not in ("linear", "conv", "pool"):
        return None
    if not nd.inputs or graph.positions_behind(nd.inputs[0]) <= 1:
        return None
    if nd.kind == "linear":
        return nd.name
    if nd.kind in ("conv", "pool") and nd.axes:
        n_in, n_out = graph.grid(nd.name)
        if all(isinstance(a, Adaptive) and o == 1 for a, o in zip(nd.axes, n_out)) or _all_to_all(graph, nd):
            return nd.name
    return None


def _windows(nd: Node) -> tuple:
    """The per-axis windows of a node (a Flat op's own windows for fixed-connection layers)."""
    if len(nd.axes) == 1 and isinstance(nd.axes[0], Flat):
        return nd.axes[0].windows
    return nd.axes


def _unread(graph: Graph, nd: Node) -> tuple[int, ...] | None:
    if nd.kind not in ("conv", "pool") or not all(isinstance(a, Window) for a in _windows(nd)):
        return None
    if _windows(nd) is not nd.axes:
        flat = nd.axes[0]
        return tuple(w.unread(i, o) for w, i, o in zip(flat.windows, flat.in_size, flat.out_size))
    return tuple(a.unread(i, o) for a, i, o in zip(nd.axes, *graph.grid(nd.name)))


def _pad_after(graph: Graph, nd: Node, axis: int) -> int:
    """Padding after the input along ``axis``: the layer's own plus that of explicit pad layers feeding it."""
    total = _windows(nd)[axis].pad[1]
    src = graph[nd.inputs[0]]
    while src.kind == "pool" and all(isinstance(a, Window) and a.extent == 1 and a.stride == 1 for a in src.axes):
        total += src.axes[axis].pad[1]
        src = graph[src.inputs[0]]
    return total


# ------------------------------------------------------------------ even input sizes, as congruences

def _affine(a: int, b: int, d: int) -> tuple[int, int, int]:
    """The length ``(a*n + b) / d`` of an axis as a function of the input length ``n``, in lowest terms."""
    g = math.gcd(a, b, d)
    return a // g, b // g, d // g


_ONE = _affine(0, 1, 1)


class _Lengths:
    """Input lengths ``n ≡ r (mod m)`` in ``[lo, hi]`` (``m == 0``: the one length ``r``), and the length of
    every node's axis on them, an affine function ``f = (a, b, d)`` of ``n`` that is a whole number at every
    such ``n`` (so that floors and remainders of it are affine too once ``m`` is fine enough)."""

    __slots__ = ("m", "r", "lo", "hi", "f")

    def __init__(self, m: int, r: int, lo: int, hi: int, f: dict):
        self.m, self.r, self.lo, self.hi, self.f = m, r, lo, hi, f

    def value(self, f) -> int:
        """``f`` at the class's representative ``r`` (its only length when ``m == 0``)."""
        return (f[0] * self.r + f[1]) // f[2]

    def step(self, f) -> int:
        """How much ``f`` grows from one length of the class to the next."""
        return f[0] * self.m // f[2]

    def lengths(self):
        """The class's lengths, in increasing order."""
        if self.m == 0:
            return range(self.r, self.r + 1) if self.lo <= self.r <= self.hi else range(0)
        return range(self.lo + (self.r - self.lo) % self.m, self.hi + 1, self.m)

    def sub(self, k: int, j: int) -> "_Lengths":
        """The lengths ``n = r + m*(k*q + j)`` (sharing the functions)."""
        m = self.m * k
        return _Lengths(m, (self.r + self.m * j) % m if m else self.r, self.lo, self.hi, self.f)

    def points(self, ns=None) -> list["_Lengths"]:
        """One class per length (of ``ns``, if given, that are in the class)."""
        ns = self.lengths() if ns is None else sorted(n for n in set(ns) if n in self.lengths())
        return [_Lengths(0, n, n, n, dict(self.f)) for n in ns]

    def at_least(self, f, c: int) -> bool:
        """Keep the lengths where ``f >= c``; whether any remain."""
        a, b, d = f
        if a == 0 or self.m == 0:
            return self.value(f) >= c and bool(self.lengths())
        self.lo = max(self.lo, -((b - c * d) // a))
        return bool(self.lengths())

    def equal(self, f, c: int) -> bool:
        """Keep the lengths where ``f == c`` (one, unless ``f`` is constant); whether any remain."""
        a, b, d = f
        if a == 0 or self.m == 0:
            return self.value(f) == c and bool(self.lengths())
        n, rest = divmod(c * d - b, a)
        if rest or n not in self.lengths():
            return False
        self.m, self.r, self.lo, self.hi = 0, n, n, n
        return True


def _through_window(c: _Lengths, f, w: Window) -> list[tuple[_Lengths, tuple]]:
    """The lengths at which window ``w`` reads its padded input ``f`` to the end, with its output length.

    The span ``f + pads - extent`` must be ``>= 0``; its remainder ``t`` modulo the stride is constant on
    ``k = stride / gcd(step, stride)`` sub-classes: without ceil_mode the last window ends exactly at the
    end when ``t == 0``; with it, unless PyTorch drops a last window that would start in the padding after,
    which happens when the ``(-t) mod stride`` positions it adds reach past ``extent - pad_after``."""
    a, b, d = f
    span = (a, b + (w.pad[0] + w.pad[1] - w.extent) * d, d)
    if not c.at_least(span, 0) or (w.mode == "reflect" and not c.at_least(f, max(w.pad) + 1)):
        return []
    s, v0, step = w.stride, c.value(span), c.step(span)
    k = s // math.gcd(step, s)
    out = []
    for j in range(k):
        t = (v0 + step * j) % s
        fill = -t % s
        reads = (fill < w.extent - w.pad[1]) if w.ceil_mode else t == 0
        sub = (c if k == 1 else c.sub(k, j)) if reads else None  # (one sub-class: c itself, which has lengths)
        if sub is not None and (k == 1 or sub.lengths()):
            sub.f = dict(sub.f) if out else sub.f  # every class but the first gets its own copy
            out.append((sub, _affine(a, span[1] + (fill + s) * d, d * s)))
    return out


def _special_lengths(c: _Lengths, fs, ones: bool) -> list[int]:
    """Lengths where two of the functions ``fs`` agree, or (``ones``) where one of them is 1."""
    found = []
    pairs = list(itertools.combinations(fs, 2)) + ([(f, _ONE) for f in fs if f[0]] if ones else [])
    for (a1, b1, d1), (a2, b2, d2) in pairs:
        den = a1 * d2 - a2 * d1
        if den:
            n, rest = divmod(b2 * d1 - b1 * d2, den)
            found += [] if rest else [n]
    return found


def _through_merge(c: _Lengths, nd: Node, fs) -> list[tuple[_Lengths, tuple]]:
    """An elementwise op needs one length other than 1 among its operands (a concatenation: one length)."""
    ones = nd.kind != "cat"
    if c.m == 0:
        values = {c.value(f) for f in fs} - ({1} if ones else set())
        return [(c, _affine(0, values.pop() if values else 1, 1))] if len(values) <= 1 else []
    distinct = set(fs) - ({_ONE} if ones else set())
    if len(distinct) <= 1:  # then the lengths where operands meet or one is 1 agree with it too
        return [(c, distinct.pop() if distinct else _ONE)]
    return [(p, g) for p in c.points(_special_lengths(c, list(distinct), ones)) for p, g in
            _through_merge(p, nd, fs)]


def _through(c: _Lengths, graph: Graph, nd: Node, axis: int) -> list[tuple[_Lengths, tuple]]:
    """The sub-classes of ``c`` on which node ``nd`` runs (and, if a window, reads to the end) along
    ``axis``, each with the node's length there: the rules of :meth:`Window.out_size` and
    :meth:`Window.unread`, solved for all lengths of a class at once."""
    if nd.kind == "input":
        return [(c, _affine(1, 0, 1))]
    ins = [c.f[i] for i in nd.inputs if i in c.f]
    if nd.kind in ("add", "mul", "cat"):
        return _through_merge(c, nd, ins)
    src = graph.nodes[nd.inputs[0]]
    f, constant = ins[0], ins[0][0] == 0 or c.m == 0
    if nd.kind in ("conv", "pool") and len(nd.shape) == len(src.shape):
        if len(nd.axes) <= axis:
            return []  # an op on the flattened grid: no per-axis length
        ax = nd.axes[axis]
        if isinstance(ax, Window):
            return _through_window(c, f, ax)
        if isinstance(ax, Transposed):
            a, b, d = f
            out = _affine(a * ax.stride, (b - d) * ax.stride + (ax.extent + ax.output_padding - 2 * ax.pad) * d, d)
            return [(c, out)] if c.at_least(out, 1) else []
        if isinstance(ax, Adaptive) or ax.scale is None:
            return [(c, _affine(0, nd.spatial[axis], 1))] if nd.spatial[axis] >= 1 else []
        if constant:  # a resampling by a factor: PyTorch's float rule, length by length
            n = int(c.value(f) / ax.scale)
            return [(c, _affine(0, n, 1))] if n >= 1 else []
    else:  # pooled to another rank, reshaped, linear: the traced length must be kept
        if src.spatial and not c.equal(f, src.spatial[axis]):
            return []
        window = nd.kind in ("conv", "pool") and nd.axes and isinstance(nd.axes[axis], Window)
        if not window:
            return [(c, _ONE)]
        if c.m == 0 or f[0] == 0:
            return [(c, _ONE)] if nd.axes[axis].unread(c.value(f), 1) == 0 else []
    return [(p, g) for q in c.points() for p, g in _through(q, graph, nd, axis)]  # length by length


def _even_lengths(graph: Graph, axis: int, lo: int, hi: int) -> list[int]:
    """Every input length in ``[lo, hi]`` along ``axis`` at which the model runs and every window reads its
    padded input to the end, in one walk over the graph: each node narrows the classes of lengths
    (``n ≡ r mod m``) to those where it is even, and gives its own length as an affine function on them."""
    for nd in graph:
        if nd.axes and nd.kind in ("conv", "pool"):
            for a in nd.axes:
                if isinstance(a, (Table, Flat)):
                    return []  # fixed connections exist for the traced length only
    classes = [_Lengths(1, 0, lo, hi, {})]
    for nd in graph:
        if nd.kind == "const":
            continue
        if nd.kind in ("identity", "select"):  # a per-unit op keeps its input's length in every class
            f = classes[0].f
            src = nd.inputs[0] if nd.inputs[0] in f else next(i for i in nd.inputs if i in f)
            for c in classes:
                c.f[nd.name] = c.f[src]
            continue
        nxt = []
        for c in classes:
            for p, g in _through(c, graph, nd, axis):
                p.f[nd.name] = g
                nxt.append(p)
        classes = nxt
        if not classes:
            return []
    return sorted(n for c in classes for n in c.lengths())


def _square(graph: Graph) -> bool:
    """Rows and columns are the same problem: every grid square (or flat) and every op the same along both."""
    if graph.ndim != 2:
        return False
    for nd in graph:  # (a loop, not all() over a generator: one pass over every node)
        if nd.kind == "const":
            continue
        shape, axes = nd.shape, nd.axes
        if not (len(shape) == 1 or (len(shape) == 3 and shape[1] == shape[2])) or \
                (axes and not (len(axes) == 2 and (axes[0] is axes[1] or axes[0] == axes[1]))):
            return False
    return True


def _even_sizes(graph: Graph, count: int = 3, radius: int = 256) -> list[tuple[int, ...]]:
    """The ``count`` nearest input sizes (per axis, zipped) at which every layer is even."""
    per_axis = []
    square = _square(graph)
    for a, n in enumerate(graph.input_shape[1:]):
        if a and square:  # the columns' answer is the rows'
            per_axis.append(per_axis[0])
            continue
        even = _even_lengths(graph, a, max(1, n - radius), n + radius)
        per_axis.append(sorted(even, key=lambda m: (abs(m - n), m))[:count])
    k = min(len(f) for f in per_axis)
    return [tuple(f[i] for f in per_axis) for i in range(k)]


def _walk(graph: Graph) -> tuple[list[LayerField], dict, dict, list[str]]:
    """Every node's LayerField, with the walk's fields and ``global_via`` by name and the
    misalignments. Per-unit ops and sliding windows, most nodes, take short paths with the same results."""
    fields: dict[str, tuple[AxisField, ...]] = {}
    via: dict[str, str | None] = {}
    off: dict[str, float] = {}
    layers, misalignments = [], []
    n_input = graph.input_shape[1:]
    publish, seen = _Publish(), {}
    for nd in graph:
        kind = nd.kind
        if kind == "const":
            continue
        first = nd.inputs[0] if nd.inputs else None
        if kind in ("identity", "select") and first in fields:  # a per-unit op keeps its input's fields
            axes, unread, misaligned, share = fields[first], None, False, off[first]
            via[nd.name] = _inherited(nd, via)
        elif first in fields and _slides(graph, nd):
            axes, unread = _window_fields(graph, nd, fields[first])
            misaligned, share = False, _fraction_off(axes, n_input, seen)
            via[nd.name] = _inherited(nd, via)  # (a window mixes no whole map)
        else:
            axes, misaligned = _axis_fields(graph, nd, fields)
            via[nd.name] = _global_via(graph, nd, via)
            unread = _unread(graph, nd)
            same = first is not None and axes is fields.get(first)  # a per-unit op keeps its input's fields
            share = off[first] if same else _fraction_off(axes, n_input, seen)
        fields[nd.name] = axes
        off[nd.name] = share
        if misaligned:
            desc = "; ".join(f"{i}: size {[_num(a.size) for a in fields[i]]}, start {[_num(a.start) for a in fields[i]]}"
                             for i in nd.inputs if i in fields)
            misalignments.append(f"{nd.name} merges receptive fields that do not line up ({desc})")
        layers.append(LayerField(nd.name, kind, nd.op, nd.shape, publish(axes), len(nd.shape) > 1 or kind == "input",
                                 share, unread, misaligned, via[nd.name]))
    return layers, fields, via, misalignments


def receptive_field(model, input_shape=None, padding: str = "same", layer: str | None = None,
                    norm_stats: str | None = None) -> ReceptiveField:
    """Receptive field size, jump and start of every node, per axis, plus padding advice.

    Args:
        model: an ``nn.Module``, a :class:`Graph` or a model reference (spec string,
            ``torchvision:NAME``, ``file.py:fn``).
        input_shape: C×L or C×H×W.
        padding: padding scheme for spec strings.
        layer: stop at this layer (dotted module name): only what it depends on is traced, and the
            advice is about its units.
        norm_stats: ``"count"``: normalisation statistics are connections (a GroupNorm makes every unit
            global); ``"ignore"`` (default; a Graph keeps its own). See :func:`edgewise.trace`.

    Example:
        >>> rf = receptive_field(nets.from_spec("3*conv3", (1, 32, 32)), (1, 32, 32))
        >>> rf["conv3"].size
        (7, 7)
    """
    graph = as_graph(model, input_shape, padding, layer=layer, norm_stats=norm_stats)
    if layer is not None and graph.output != layer:
        graph = _ending_at(graph, graph.target(layer))
    layers, fields, via, misalignments = _walk(graph)
    uneven = [(l.name, a, u, _pad_after(graph, graph[l.name], a))
              for l in layers if l.unread for a, u in enumerate(l.unread) if u > 0]
    out_axes = fields[graph.output]
    offset = tuple(_num(a.start + _div((a.n - 1) * a.jump - (n - 1), 2))
                   for a, n in zip(out_axes, graph.input_shape[1:]))
    up = graph.upstream(graph.output)
    grid = next((l for l in reversed(layers) if l.name in up and l.spatial and len(l.shape) > 1
                 and all(a.n > 1 for a in l.axes)), None)  # the last layer with positions
    local = grid if grid and not (len(graph[graph.output].shape) > 1 and
                                  all(a.n > 1 for a in out_axes)) else layers[-1]
    advice = Advice(uneven, offset, _even_sizes(graph), via[graph.output], local.size, local.name)
    return ReceptiveField(layers, advice, graph.input_shape, graph.model_name, misalignments, graph.padding,
                          graph.norm_stats)

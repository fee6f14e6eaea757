"""Depth scaling: exact centre/edge path ratios of a repeated block, per padding, with theory and fitted laws.

``scaling("conv3", depths=range(1, 65), paddings=("valid", "same", ...))`` builds
``L*conv3`` for every depth and padding, counts paths exactly, records the
exact closed-form ratio (:func:`edgewise.theory.ratio`) and the law of
:func:`edgewise.theory.depth_law` where the block is a plain stride-1
convolution with a closed form, and fits exponential and power laws with
:func:`edgewise.theory.fit_law`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from . import nets, theory
from ._counts import ExactCounts
from ._trace import parse_shape
from .errors import EdgewiseError
from .maps import position_summary
from .pathways import pathways
from .results import Result

__all__ = ["scaling", "Scaling", "parse_depths"]

_CONV = re.compile(r"^conv(\d+)(?:/d(\d+))?$")


@dataclass
class Scaling(Result):
    """Centre/edge path ratios versus depth.

    Attributes:
        block: the repeated spec block; input_shape: the input (1-D or 2-D).
        depths: the depths measured; ratios: ``{padding: [ratio per depth]}`` (exact counts,
            nan where the stack has no output); key: ``"edge"`` (1-D) or ``"corner"`` (2-D).
        theory: ``{padding: [the law's asymptotic curve per depth]}`` where a closed form applies.
        laws: ``{padding: {"kind", "params", "r2"}}`` fitted to the measured ratios.
        theory_kind: ``{padding: kind of the closed form}`` (``"numeric"`` kinds are left out).
        exact: ``{padding: [exact closed-form ratio per depth]}`` (nan where the stack has no output).
        theory_params: ``{padding: the law's numbers for the whole input}``: ``base`` and ``limit`` multiply
            over the axes (a 2-D corner ratio is the product of the 1-D ones); ``exact_depth`` and ``max_depth``
            are those of the tightest axis.
        uniform: ``{padding: True when the exact counts are equal at every position at every depth with an
            output}`` (decided on the integers, not on a rounded ratio).
        limits: ``{padding: the ratio's limit as L → ∞}`` where theory has no closed form but one layer's matrix
            gives the limit (:func:`edgewise.theory.ratio_limit`; a product over the axes).
    """

    block: str
    input_shape: tuple
    depths: list
    ratios: dict
    key: str
    theory: dict = field(default_factory=dict)
    theory_kind: dict = field(default_factory=dict)
    laws: dict = field(default_factory=dict)
    exact: dict = field(default_factory=dict)
    theory_params: dict = field(default_factory=dict)
    uniform: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)

    kind = "scaling"

    def to_dict(self) -> dict:
        return {"block": self.block, "input_shape": list(self.input_shape), "depths": self.depths,
                "ratio": f"center/{self.key}", "ratios": self.ratios, "theory": self.theory,
                "theory_kind": self.theory_kind, "laws": self.laws, "exact": self.exact,
                "theory_params": self.theory_params, "uniform": self.uniform, "limits": self.limits}


def parse_depths(text) -> list[int]:
    """``"1:64"`` (inclusive), ``"1:64:4"``, ``"1,2,4,8"`` or an iterable of ints → sorted depths ≥ 1."""
    if not isinstance(text, str):
        depths = [int(d) for d in text]
    else:
        t = text.replace(" ", "")
        try:
            if ":" in t:
                parts = [int(p) for p in t.split(":")]
                if len(parts) not in (2, 3):
                    raise ValueError
                depths = list(range(parts[0], parts[1] + 1, parts[2] if len(parts) == 3 else 1))
            else:
                depths = [int(p) for p in t.split(",") if p]
        except ValueError:
            raise EdgewiseError(f"depths {text!r}: expected START:STOP[:STEP] (inclusive) or a list like 1,2,4,8")\
                from None
    if not depths or min(depths) < 1:
        raise EdgewiseError(f"depths {text!r}: need at least one depth, all ≥ 1")
    return sorted(set(depths))


@dataclass
class _ClosedForm:
    """What theory says about one padding of the stack: the law's kind, curve and numbers, and exact ratios."""

    kind: str
    curve: list
    exact: list
    params: dict


def _axis_laws(block: str, padding: str, sizes) -> tuple[int, int, dict] | None:
    """``(k, d, {width: theory.depth_law})`` for a plain convolution block, one law per distinct axis width; None
    for another block, or where theory refuses the stack."""
    m = _CONV.match(block.replace(" ", ""))
    if not m:
        return None
    k, d = int(m.group(1)), int(m.group(2) or 1)
    try:
        return k, d, {n: theory.depth_law(padding, k, n, d) for n in set(sizes)}
    except EdgewiseError:
        return None


def _closed_form(block: str, padding: str, sizes, depths) -> _ClosedForm | None:
    """Theory of the corner (2-D) or edge (1-D) ratio of ``L*block`` per depth; None without a closed form."""
    found = _axis_laws(block, padding, sizes)
    if found is None or any(law.kind == "numeric" for law in found[2].values()):
        return None
    k, d, laws = found
    axes = [laws[n] for n in sizes]
    curve = np.prod([law.curve(depths) for law in axes], axis=0)
    exact = {}  # per width: theory.ratio is exact arithmetic, so each width is worked out once
    for n, law in laws.items():
        row = []
        for L in depths:
            try:
                row.append(theory.ratio(padding, k, n, L, d))
            except EdgewiseError:  # the stack shrank this axis away
                row.append(None)
        exact[n] = row
    values = []
    for i in range(len(depths)):
        per_axis = [exact[n][i] for n in sizes]
        values.append(math.nan if None in per_axis else _to_float(math.prod(per_axis)))
    return _ClosedForm(axes[-1].kind, [float(v) for v in curve], values, _combined(axes))


def _deep_limit(block: str, padding: str, sizes) -> float | None:
    """The ratio of ``L*block`` as L → ∞ where theory has no closed form but gives the limit on every axis (a
    product over them), else None."""
    found = _axis_laws(block, padding, sizes)
    if found is None or not all("limit" in law.params for law in found[2].values()):
        return None
    return _to_float(math.prod(found[2][n].params["limit"] for n in sizes))


def _to_float(x) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf


def _combined(laws) -> dict:
    """The laws' numbers for the whole input: a 2-D corner ratio is the product of the axes' ratios, so bases
    and limits multiply; a depth bound is the tightest axis's."""
    params = [law.params for law in laws]
    out = {}
    for key in ("base", "limit"):
        if all(key in p for p in params):
            out[key] = _to_float(math.prod(p[key] for p in params))
    for key in ("exact_depth", "max_depth"):
        if all(key in p for p in params):
            out[key] = min(p[key] for p in params)
    return out


def _is_uniform(counts) -> bool:
    """Every position has the same exact count (integers compared, never a rounded ratio)."""
    flat = np.asarray(counts, dtype=object).ravel()
    return bool(flat.size) and all(c == flat[0] for c in flat)


def scaling(block: str = "conv3", depths="1:64", paddings=("valid", "same", "full", "circular", "reflect"),
            input_shape=(1, 64), width: int = 1, progress: bool = True) -> Scaling:
    """Exact centre/edge (1-D) or centre/corner (2-D) path ratios of ``L*block`` for every depth and padding.

    Args:
        block: a spec item repeated ``L`` times, e.g. ``"conv3"``, ``"conv5/d2"``, ``"conv3/s2"``.
        depths: ``"1:64"``, ``"1,2,4"`` or a list of ints.
        paddings: names from :data:`edgewise.nets.PADDINGS`.
        input_shape: C×L or C×H×W; counts do not depend on the channel widths, so ``width`` 1 is fastest.

    Returns:
        :class:`Scaling`.
    """
    depth_list = parse_depths(depths)
    shape = parse_shape(input_shape)
    from . import limits

    limits.check_scaling(shape, len(depth_list))
    bad = [p for p in paddings if p not in nets.PADDINGS]
    if bad or not paddings:
        raise EdgewiseError(f"padding {', '.join(bad) or '(none)'}: expected names from {', '.join(nets.PADDINGS)}")
    if ":" in block:  # (no spec item has a colon)
        raise EdgewiseError(f"block {block!r} is a model reference, but scaling repeats one spec item (e.g. conv3 or "
                            f"conv5/d2) L = 1, 2, … times, which a model's fixed depth cannot be: `edgewise paths "
                            f"{block}` gives its ratio, `edgewise answer {block}` the depth laws beside its own numbers")
    if "*" in block or "," in block:
        raise EdgewiseError(f"block {block!r}: give one spec item (e.g. conv3 or conv5/d2); scaling repeats it")
    # a typo in the block is an error, not a row of vanished outputs: build it once on a roomy input
    nets.from_spec(block, (shape[0],) + (1 << 12,) * (len(shape) - 1), padding=paddings[0], width=width,
                   activation=None)
    key = "corner" if len(shape) == 3 else "edge"
    from tqdm.auto import tqdm

    ratios, theory_curves, kinds, laws, exact, params, uniform, deep = {}, {}, {}, {}, {}, {}, {}, {}
    bar = tqdm(total=len(paddings) * len(depth_list), desc="depth scaling", disable=None if progress else True,
               leave=False)
    with bar:
        for padding in paddings:
            row, flat = [], []
            for counts in _depth_counts(block, shape, padding, width, depth_list):
                if counts is None:  # the stack shrank the input away
                    row.append(math.nan)
                else:
                    row.append(float(position_summary(counts, ExactCounts().log10(counts))[f"center_{key}_ratio"]))
                    flat.append(_is_uniform(counts))
                bar.update(1)
            ratios[padding], uniform[padding] = row, bool(flat) and all(flat)
            law = _closed_form(block, padding, shape[1:], depth_list)
            if law is not None:
                theory_curves[padding], kinds[padding] = law.curve, law.kind
                exact[padding], params[padding] = law.exact, law.params
            elif (limit := _deep_limit(block, padding, shape[1:])) is not None:
                deep[padding] = limit
            laws[padding] = _fit(depth_list, row)
    return Scaling(block, shape, depth_list, ratios, key, theory_curves, kinds, laws, exact, params, uniform, deep)


def _depth_counts(block: str, shape, padding: str, width: int, depths):
    """Exact path counts (to every output unit) of ``L*block`` for each depth L of ``depths`` (sorted); None where
    the stack has no output. A one-channel stack is grown a layer at a time (:func:`_grow`) as far as it can be;
    any other depth is counted whole."""
    grown = _grow(block, shape, padding) if width == 1 and shape[0] == 1 else iter(())
    counts, done = None, 0
    for L in depths:
        while done < L and (step := next(grown, _STOP)) is not _STOP:
            counts, done = step, done + 1
        yield counts if done == L else _stack_counts(f"{L}*{block}", shape, padding, width)


_STOP = object()


def _grow(block: str, shape, padding: str):
    """Counts of ``1*block``, ``2*block``, … from one traced layer at a time, while each follows from the one
    before: a layer that keeps the input's shape goes in front of the previous stack (its adjoint applied to the
    previous counts); a layer that feeds each of its inputs to the same number α of outputs goes behind it (α
    times the previous counts). None once the stack has no output; stops where neither holds."""
    shape, size, layer, counts, num = tuple(shape), tuple(shape), None, None, ExactCounts()
    while True:
        if layer is None or not layer.keeps_shape:
            layer = _Layer.of(block, size, padding, num)
        if layer is None:  # the stack shrank the input away
            while True:
                yield None
        if not layer.chain:
            return
        if counts is None:
            counts = layer.feeds
        elif layer.keeps_shape and size == shape:
            counts = layer(counts)
        elif _is_uniform(layer.feeds):
            counts = counts * layer.feeds.flat[0]
        else:
            return
        size = layer.out
        yield counts


def _stack_counts(spec: str, shape, padding: str, width: int):
    try:
        net = nets.from_spec(spec, shape, padding=padding, width=width, activation=None)
        return pathways(net, shape, exact=True).counts
    except EdgewiseError:  # the stack shrank the input away
        return None


class _Layer:
    """One one-channel block on one input shape, traced: called on exact counts over its output, its adjoint
    (the counts over its input, in the number system ``num``, whose plans one stack's layers share);
    ``feeds``: that of all ones; ``out``: its output shape; ``chain``: whether it is a one-channel chain of nodes
    (else none of this applies)."""

    def __init__(self, graph, shape, num: ExactCounts):
        from .pathways import select_units

        target = graph[graph.target(None)]
        self.graph, self.shape, self.out, self.num = graph, tuple(shape), tuple(target.shape), num
        self.order = [nd for nd in reversed(list(graph)) if nd.kind not in ("input", "const")]
        self.chain = target.channels == 1 and all(len(nd.inputs) == 1 for nd in self.order)
        self.keeps_shape = self.out == self.shape
        self._ones = num.ones(select_units(target.shape, "all", target.name))
        self._maps: dict = {}  # (its axis maps, made once: see pathways._spatial)
        self.feeds = None
        if self.chain:
            fast = self._windows_feeds()
            self.feeds = self(None) if fast is None else fast

    @classmethod
    def of(cls, block: str, shape, padding: str, num: ExactCounts):
        """The layer, or None when it has no output."""
        from ._trace import trace

        try:
            net = nets.from_spec(f"1*{block}", shape, padding=padding, width=1, activation=None)
        except EdgewiseError:
            return None
        return cls(trace(net, shape), shape, num)

    def _windows_feeds(self):
        """``self(None)`` without a counting plan, for a chain of sliding windows: each axis's adjoint of small
        integers summed straight from the window's non-zeros (a plan per input size is what made a growing stack
        slow); None for any other chain."""
        from ._axis import Window, nonzeros

        if not all(nd.kind in ("conv", "pool") and all(isinstance(a, Window) for a in nd.axes) for nd in self.order):
            return None
        x = np.ones(self.out[1:], dtype=np.int64)
        for nd in self.order:
            n_in, n_out = self.graph.grid(nd.name)
            for axis, (op, i, o) in enumerate(zip(nd.axes, n_in, n_out)):
                rows, cols, vals = nonzeros(op, i, o)
                moved = np.moveaxis(x, axis, -1)
                out = np.zeros(moved.shape[:-1] + (i,), dtype=np.int64)
                np.add.at(out, (..., cols), moved[..., rows] * vals.astype(np.int64))
                x = np.moveaxis(out, -1, axis)
        return x.astype(object)

    def __call__(self, counts):
        from .pathways import _adjoint, _Value

        value = _Value((self._ones if counts is None else counts)[None], np.zeros(1, dtype=np.int64))
        for nd in self.order:  # a chain: each node hands its counts to its one input
            ((src, value),) = _adjoint(self.graph, nd, value, self.num, self._maps)
            value = _Value(value.rows.reshape((value.rows.shape[0],) + tuple(self.graph[src].shape[1:])),
                           value.index)
        return value.rows[value.index[0]].reshape(self.shape[1:])


def _fit(depths, ratios) -> dict | None:
    pts = [(L, r) for L, r in zip(depths, ratios) if math.isfinite(r) and r > 0]
    if len({L for L, _ in pts}) < 3:
        return None
    law = theory.fit_law([L for L, _ in pts], [r for _, r in pts])
    return {"kind": law.kind, "params": law.params, "r2": law.r2}

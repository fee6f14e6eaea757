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
from ._trace import parse_shape
from .errors import EdgewiseError
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

    kind = "scaling"

    def to_dict(self) -> dict:
        return {"block": self.block, "input_shape": list(self.input_shape), "depths": self.depths,
                "ratio": f"center/{self.key}", "ratios": self.ratios, "theory": self.theory,
                "theory_kind": self.theory_kind, "laws": self.laws, "exact": self.exact,
                "theory_params": self.theory_params, "uniform": self.uniform}


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


def _closed_form(block: str, padding: str, sizes, depths) -> _ClosedForm | None:
    """Theory of the corner (2-D) or edge (1-D) ratio of ``L*block`` per depth; None without a closed form."""
    m = _CONV.match(block.replace(" ", ""))
    if not m:
        return None
    k, d = int(m.group(1)), int(m.group(2) or 1)
    try:
        laws = {n: theory.depth_law(padding, k, n, d) for n in set(sizes)}
    except EdgewiseError:
        return None
    if any(law.kind == "numeric" for law in laws.values()):
        return None
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
    if "*" in block or "," in block:
        raise EdgewiseError(f"block {block!r}: give one spec item (e.g. conv3 or conv5/d2); scaling repeats it")
    # a typo in the block is an error, not a row of vanished outputs: build it once on a roomy input
    nets.from_spec(block, (shape[0],) + (1 << 12,) * (len(shape) - 1), padding=paddings[0], width=width,
                   activation=None)
    key = "corner" if len(shape) == 3 else "edge"
    from tqdm.auto import tqdm

    ratios, theory_curves, kinds, laws, exact, params, uniform = {}, {}, {}, {}, {}, {}, {}
    bar = tqdm(total=len(paddings) * len(depth_list), desc="depth scaling", disable=None if progress else True,
               leave=False)
    with bar:
        for padding in paddings:
            row, flat = [], []
            for L in depth_list:
                try:
                    net = nets.from_spec(f"{L}*{block}", shape, padding=padding, width=width, activation=None)
                    p = pathways(net, shape, exact=True)
                    row.append(float(p.summary[f"center_{key}_ratio"]))
                    flat.append(p.exact and _is_uniform(p.counts))
                except EdgewiseError:  # the stack shrank the input away
                    row.append(math.nan)
                bar.update(1)
            ratios[padding], uniform[padding] = row, bool(flat) and all(flat)
            law = _closed_form(block, padding, shape[1:], depth_list)
            if law is not None:
                theory_curves[padding], kinds[padding] = law.curve, law.kind
                exact[padding], params[padding] = law.exact, law.params
            laws[padding] = _fit(depth_list, row)
    return Scaling(block, shape, depth_list, ratios, key, theory_curves, kinds, laws, exact, params, uniform)


def _fit(depths, ratios) -> dict | None:
    pts = [(L, r) for L, r in zip(depths, ratios) if math.isfinite(r) and r > 0]
    if len({L for L, _ in pts}) < 3:
        return None
    law = theory.fit_law([L for L, _ in pts], [r for _, r in pts])
    return {"kind": law.kind, "params": law.params, "r2": law.r2}

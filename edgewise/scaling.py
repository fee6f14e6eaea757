"""Depth scaling: exact centre/edge path ratios of a repeated block, per padding, with theory and fitted laws.

``scaling("conv3", depths=range(1, 65), paddings=("valid", "same", ...))`` builds
``L*conv3`` for every depth and padding, counts paths exactly, overlays the
closed form of :func:`edgewise.theory.depth_law` where the block is a plain
stride-1 convolution, and fits exponential and power laws with
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
        theory: ``{padding: [law ratio per depth]}`` where a closed form applies.
        laws: ``{padding: {"kind", "params", "r2"}}`` fitted to the measured ratios.
        theory_kind: ``{padding: kind of the closed form}``.
    """

    block: str
    input_shape: tuple
    depths: list
    ratios: dict
    key: str
    theory: dict = field(default_factory=dict)
    theory_kind: dict = field(default_factory=dict)
    laws: dict = field(default_factory=dict)

    kind = "scaling"

    def to_dict(self) -> dict:
        return {"block": self.block, "input_shape": list(self.input_shape), "depths": self.depths,
                "ratio": f"center/{self.key}", "ratios": self.ratios, "theory": self.theory,
                "theory_kind": self.theory_kind, "laws": self.laws}


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


def _law_curve(block: str, padding: str, sizes, depths) -> tuple[list[float], str] | None:
    """The closed form's corner (2-D) or edge (1-D) ratio per depth, and its kind; None without one."""
    m = _CONV.match(block.replace(" ", ""))
    if not m:
        return None
    k, d = int(m.group(1)), int(m.group(2) or 1)
    try:
        laws = [theory.depth_law(padding, k, n, d) for n in sizes]
    except EdgewiseError:
        return None
    if any(law.kind == "numeric" for law in laws):
        return None
    curves = np.prod([law.curve(depths) for law in laws], axis=0)
    return [float(v) for v in curves], laws[-1].kind


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

    ratios, theory_curves, kinds, laws = {}, {}, {}, {}
    bar = tqdm(total=len(paddings) * len(depth_list), desc="depth scaling", disable=None if progress else True,
               leave=False)
    with bar:
        for padding in paddings:
            row = []
            for L in depth_list:
                try:
                    net = nets.from_spec(f"{L}*{block}", shape, padding=padding, width=width, activation=None)
                    s = pathways(net, shape, exact=True).summary
                    row.append(float(s[f"center_{key}_ratio"]))
                except EdgewiseError:  # the stack shrank the input away
                    row.append(math.nan)
                bar.update(1)
            ratios[padding] = row
            law = _law_curve(block, padding, shape[1:], depth_list)
            if law is not None:
                theory_curves[padding], kinds[padding] = law
            laws[padding] = _fit(depth_list, row)
    return Scaling(block, shape, depth_list, ratios, key, theory_curves, kinds, laws)


def _fit(depths, ratios) -> dict | None:
    pts = [(L, r) for L, r in zip(depths, ratios) if math.isfinite(r) and r > 0]
    if len({L for L, _ in pts}) < 3:
        return None
    law = theory.fit_law([L for L, _ in pts], [r for _, r in pts])
    return {"kind": law.kind, "params": law.params, "r2": law.r2}

"""How ``Layout`` pairs the units of two operands of an elementwise op, run by run, against decoding every element.

``Layout._paired_runs`` decodes each stretch where ``a − b`` stays the same once; the reference decodes every
element (what ``Layout._pairing`` does when the runs are too many). Both must find the same pairing, or the same
refusal, on random operands: units of several nodes in runs or interleaved, pairs of nodes of equal and of other
shapes, units shifted off their pair, runs that cross a node's end, constants.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewise import _layout, _trace

SETTINGS = settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def layout(shapes: list[tuple]) -> _layout.Layout:
    nodes = {}
    lay = _layout.Layout(nodes, {}, None, {}, None)
    for k, shape in enumerate(shapes):
        name = f"n{k}"
        nodes[name] = _trace._node(name, "conv", (), shape, (), 1, "", ())
        lay.register(name, shape)
    return lay


def by_elements(lay, operands):
    """``_pairing`` with every element decoded (the runs switched off)."""
    lay._paired_runs = lambda a, b: None
    try:
        return lay._pairing(operands)
    finally:
        del lay._paired_runs


def same(x, y) -> bool:
    if x is None or y is None or len(x) == 2:
        return x == y if (x is None or y is None) else tuple(x) == tuple(y)
    return all(np.array_equal(u, v) for u, v in zip(x[:6], y[:6])) and list(x[6]) == list(y[6])


SHAPES = [(4, 3, 3), (4, 3, 3), (2, 5), (36,), (4, 3, 3), (9, 2, 2)]


@st.composite
def operands(draw):
    """Two flat operands: segments of units of a pair of nodes (equal shapes mostly), some shifted, some constant."""
    lay = layout(SHAPES)
    sizes = [int(np.prod(s)) for s in SHAPES]
    a, b = [], []
    for _ in range(draw(st.integers(1, 6))):
        x = draw(st.integers(0, len(SHAPES) - 1))
        y = draw(st.sampled_from([k for k in range(len(SHAPES)) if SHAPES[k] == SHAPES[x]] + [x, 3]))
        n = draw(st.integers(1, 40))
        start = draw(st.integers(0, sizes[x] - 1))
        local = (start + np.arange(n)) % min(sizes[x], sizes[y]) if draw(st.booleans()) else \
            np.array(draw(st.lists(st.integers(0, min(sizes[x], sizes[y]) - 1), min_size=n, max_size=n)))
        shift = draw(st.sampled_from([0, 0, 0, 1, -1]))
        ua = lay._bases[x] + 1 + local
        ub = lay._bases[y] + 1 + np.clip(local + shift, 0, sizes[y] - 1)
        if draw(st.booleans()):  # a run that crosses into the next node (a's units only)
            ua = np.minimum(ua + draw(st.integers(0, 3)), lay._total)
        a.append(ua)
        b.append(ub)
    a, b = (np.concatenate(v).astype(np.float64) for v in (a, b))
    if draw(st.booleans()):  # constants (a class token's padding): live in neither, or in one only
        zero = np.array(draw(st.lists(st.booleans(), min_size=a.size, max_size=a.size)))
        (a if draw(st.booleans()) else b)[zero] = 0
    return lay, [torch.as_tensor(a), torch.as_tensor(b)]


@SETTINGS
@given(operands())
def test_pairing_run_by_run_finds_what_decoding_every_element_finds(case):
    lay, ops = case
    assert same(lay._pairing(ops), by_elements(lay, ops))


@pytest.mark.parametrize("shift", [0, 1])
def test_long_runs_of_two_node_pairs_take_the_runs_and_pair_as_decoded(shift):
    """A ViT residual: a class token (a vector node) then a map, added to another such pair."""
    lay = layout([(768,), (768, 14, 14), (768,), (768, 14, 14)])
    tok_a, map_a = np.arange(768) + lay._bases[0] + 1, np.arange(768 * 196) + lay._bases[1] + 1
    tok_b, map_b = np.arange(768) + lay._bases[2] + 1, np.arange(768 * 196) + lay._bases[3] + 1 + shift
    a = torch.as_tensor(np.concatenate([tok_a, map_a]).astype(np.float64))
    b = torch.as_tensor(np.minimum(np.concatenate([tok_b, map_b]), lay._total).astype(np.float64))
    runs = lay._paired_runs(a.numpy(), b.numpy())
    assert runs is not None and runs is not False if not shift else runs is False
    found = lay._pairing([a, b])
    assert same(found, by_elements(lay, [a, b]))
    assert (found is None) == bool(shift)
    if not shift:
        assert found[6] == [(0, 2), (1, 3)]

"""``Layout`` finding the node and unit of every element of an ids tensor, and pairing two operands' units, against
a search per element (the reference: ``np.searchsorted`` of every unit number among the nodes' first numbers).

``_layout._locate`` places whole blocks of elements that lie in one node at once and the rest one by one; the
operands here mix long stretches of one node (a class token then a map), interleaved units of many nodes, stretches
that cross a node's end mid-block, and constants (0), at lengths around the block size.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewise import _layout, _trace

SETTINGS = settings(derandomize=True, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHAPES = [(4, 3, 3), (700,), (2, 5), (36,), (4, 3, 3), (9, 20, 2), (1,), (4, 3, 3)]


def layout(shapes) -> _layout.Layout:
    nodes = {}
    lay = _layout.Layout(nodes, {}, None, {}, None)
    for k, shape in enumerate(shapes):
        nodes[f"n{k}"] = _trace._node(f"n{k}", "conv", (), shape, (), 1, "", ())
        lay.register(f"n{k}", shape)
    return lay


def reference(lay, ids: np.ndarray):
    """(node, unit, const) of every element by one search each."""
    g = ids.astype(np.int64) - 1
    const = g < 0
    which = np.searchsorted(np.asarray(lay._bases), np.maximum(g, 0), side="right") - 1
    local = g - np.asarray(lay._bases)[which]
    return np.where(const, -1, which), np.where(const, 0, local), const


@st.composite
def ids(draw):
    lay = layout(SHAPES)
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["stretch", "scattered", "constants"]))
        n = draw(st.integers(1, 300))
        if kind == "stretch":  # consecutive unit numbers, possibly across a node's end
            start = draw(st.integers(1, lay._total))
            parts.append(np.minimum(start + np.arange(n), lay._total))
        elif kind == "scattered":
            parts.append(np.array(draw(st.lists(st.integers(1, lay._total), min_size=n, max_size=n))))
        else:
            parts.append(np.zeros(n, dtype=np.int64))
    flat = np.concatenate(parts).astype(np.float64)
    rows = draw(st.sampled_from([1, 2, 3]))
    flat = flat[: flat.size - flat.size % rows]
    return lay, flat.reshape(rows, -1) if flat.size else flat


@SETTINGS
@given(ids())
def test_every_element_is_placed_in_the_node_a_search_finds(case):
    lay, values = case
    got = lay._decode(torch.as_tensor(values))
    want = reference(lay, values)
    for g, w in zip(got, want):
        assert g.shape == w.shape and np.array_equal(g, w)


def test_a_class_token_beside_a_map_pairs_with_another_such_pair():
    """A ViT residual: a token (a vector node) then a map, added to another token and map of the same shapes, with
    nodes of other shapes between them; shifting one operand's map by a unit breaks the pairing."""
    lay = layout([(768,)] + [(5,)] * 30 + [(768, 14, 14), (768,), (768, 14, 14)])
    def ids_of(token: int, grid: int, shift: int = 0) -> torch.Tensor:
        units = np.concatenate([np.arange(768) + lay._bases[token], np.arange(768 * 196) + lay._bases[grid] + shift])
        return torch.as_tensor(np.minimum(units + 1, lay._total).astype(np.float64))
    found = lay._pairing([ids_of(0, 31), ids_of(32, 33)])
    assert found[6] == [(0, 32), (31, 33)]
    assert np.array_equal(found[5], reference(lay, ids_of(0, 31).numpy())[1])
    assert lay._pairing([ids_of(0, 31), ids_of(32, 33, shift=1)]) is None

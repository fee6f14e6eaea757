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


@st.composite
def channel_rows(draw):
    """Rows of P units for a C×(3×3) tensor: each a whole channel of a node on that grid, in order (the fast answer),
    but for at most one, which holds a channel of a node on another grid, is shifted by some positions, reversed,
    constants, or broken after its first unit (each sends the tensor to the decode)."""
    lay = layout(SHAPES)
    spatial, p = (3, 3), 9
    grid = [k for k, shape in enumerate(SHAPES) if shape[1:] == spatial]
    other = [k for k in range(len(SHAPES)) if k not in grid]
    n = draw(st.integers(1, 6))
    odd = draw(st.sampled_from(["none", "shifted", "reversed", "constants", "other grid", "broken"]))
    at = draw(st.integers(0, n - 1))
    rows = []
    for i in range(n):
        kind = odd if i == at else "whole"
        node = draw(st.sampled_from(other if kind == "other grid" else grid))
        shape = SHAPES[node]
        chan = draw(st.integers(0, shape[0] - 1))
        start = lay._bases[node] + chan * max(int(np.prod(shape[1:])), 1)
        units = start + np.arange(p) + (draw(st.integers(1, 4)) if kind == "shifted" else 0)
        row = np.minimum(units, lay._total - 1) + 1.0
        if kind == "broken":  # (a unit after the first replaced by a constant or by another unit)
            row[draw(st.integers(1, p - 1))] = draw(st.sampled_from([0.0, float(lay._total)]))
        rows.append(row[::-1] if kind == "reversed" else np.zeros(p) if kind == "constants" else row)
    return lay, spatial, np.stack(rows)


@SETTINGS
@given(channel_rows())
def test_whole_channels_are_found_from_each_rows_first_unit_as_decoding_finds_them(case):
    """``Layout._whole_channels`` (each row's first unit, then one comparison) against decoding every unit: (node,
    channel) of every row where each is a whole channel of a node on the grid, in order; else None."""
    lay, spatial, rows = case
    which, local, const = reference(lay, rows)
    p = rows.shape[1]
    node, chan = which[:, 0], local[:, 0] // p
    whole = not const.any() and (which == node[:, None]).all() and (local == chan[:, None] * p + np.arange(p)).all() \
        and all(tuple(SHAPES[n][1:]) == spatial for n in node)
    got = lay._whole_channels(torch.as_tensor(rows), spatial)
    if whole:
        assert got is not None and np.array_equal(got[0], node) and np.array_equal(got[1], chan)
    else:
        assert got is None


@st.composite
def relations(draw):
    """(out_pos, in_pos, out_spatial, in_spatial): pairs of flat positions on two grids of one rank, either a product
    of per-axis relations (attention windows, patch merging: found as per-axis ops) or any set (one ``Flat`` op),
    in shuffled order."""
    rank = draw(st.integers(1, 2))
    out_spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    in_spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    n_out, n_in = int(np.prod(out_spatial)), int(np.prod(in_spatial))
    if draw(st.booleans()):  # a product of per-axis relations
        axes = [np.array(draw(st.lists(st.booleans(), min_size=o * i, max_size=o * i))).reshape(o, i)
                for o, i in zip(out_spatial, in_spatial)]
        full = axes[0] if rank == 1 else np.kron(axes[0], axes[1])
    else:
        cells = draw(st.lists(st.booleans(), min_size=n_out * n_in, max_size=n_out * n_in))
        full = np.array(cells).reshape(n_out, n_in)
    out_pos, in_pos = np.nonzero(full)
    order = np.random.default_rng(draw(st.integers(0, 2 ** 31))).permutation(out_pos.size)
    return out_pos[order], in_pos[order], out_spatial, in_spatial


def connections(axes: tuple, out_spatial: tuple, in_spatial: tuple) -> np.ndarray:
    """The (flat output, flat input) 0/1 matrix of ``relation_axes``'s ops."""
    if len(axes) == 1 and isinstance(axes[0], _layout.Flat):
        return axes[0].matrix(int(np.prod(in_spatial)), int(np.prod(out_spatial)))
    m = np.ones((1, 1), dtype=np.int64)
    for op, o, i in zip(axes, out_spatial, in_spatial):
        m = np.kron(m, op.matrix(i, o))
    return m


@given(relations(), st.integers(0, 2))
@SETTINGS
def test_relation_axes_connect_exactly_the_pairs_given_once_or_with_repeats(case, repeats):
    """The ops connect each pair given and no other, once each; the pairs given with repeats (unmade unique) and
    given once each (``distinct``: counted without making them unique) give the same ops."""
    out_pos, in_pos, out_spatial, in_spatial = case
    want = np.zeros((int(np.prod(out_spatial)), int(np.prod(in_spatial))), dtype=np.int64)
    want[out_pos, in_pos] = 1
    once = _layout.relation_axes(out_pos, in_pos, out_spatial, in_spatial, distinct=True)
    again = _layout.relation_axes(np.concatenate([out_pos] * (repeats + 1)), np.concatenate([in_pos] * (repeats + 1)),
                                  out_spatial, in_spatial)
    assert once == again
    assert np.array_equal(connections(once, out_spatial, in_spatial), want)

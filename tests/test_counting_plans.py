"""The scaled engine's banded plans: the blocks cover every non-zero of an axis matrix, and a product through
them is the dense product."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from edgewise._axis import Window
from edgewise._counts import scaled
from edgewise._counts.common import AxisMap


def _reference_blocks(m: np.ndarray):
    """Per block of ``_BLOCK`` input columns, the rows from the first to the last that read any of them."""
    out = []
    for i0 in range(0, m.shape[1], scaled._BLOCK):
        i1 = min(m.shape[1], i0 + scaled._BLOCK)
        rows = np.flatnonzero((m[:, i0:i1] != 0).any(axis=1))
        if rows.size:
            out.append((i0, i1, int(rows[0]), int(rows[-1]) + 1))
    return out


def _blocks(m: np.ndarray):
    t, tt = m.astype(np.float64), np.ascontiguousarray(m.T, dtype=np.float64)
    return scaled._column_blocks(t, tt)


@settings(max_examples=60, deadline=None)
@given(n_out=st.integers(1, 90), n_in=st.integers(65, 200), band=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_blocks_are_the_rows_that_read_each_block_of_columns(n_out, n_in, band, seed):
    rng = np.random.default_rng(seed)
    m = np.zeros((n_out, n_in), dtype=np.int64)
    for o in range(n_out):  # a band with holes, some rows and columns empty
        c = o * n_in // n_out
        m[o, c:c + band] = rng.integers(0, 3, size=len(range(c, min(n_in, c + band))))
    blocks = _blocks(m)
    ref = _reference_blocks(m)
    area = sum((o1 - o0) * (i1 - i0) for i0, i1, o0, o1 in ref)
    if area > 0.5 * n_out * n_in:
        assert blocks is None
        return
    assert [b[:4] for b in blocks] == ref
    for i0, i1, o0, o1, part, part_t in blocks:
        assert np.array_equal(part, m[o0:o1, i0:i1]) and np.array_equal(part_t, m[o0:o1, i0:i1].T)
    x = rng.integers(0, 5, size=(2, 3, n_out)).astype(np.float64)
    assert np.array_equal(scaled._banded(x, blocks, n_in, last=True), x @ m)
    y = rng.integers(0, 5, size=(2, n_out, 3)).astype(np.float64)
    assert np.array_equal(scaled._banded(y, blocks, n_in, last=False), m.T @ y)


def test_small_or_dense_matrices_have_no_blocks():
    assert _blocks(np.ones((10, 64), dtype=np.int64)) is None  # (at most two blocks of columns)
    assert _blocks(np.ones((10, 100), dtype=np.int64)) is None  # (every row reads every block)


def test_a_strided_convolution_plan_is_banded_and_read_only():
    am = AxisMap(Window(kernel=7, stride=2, dilation=1, pad=(3, 3), mode="zeros", ceil_mode=False), 224, 112)
    kind, (t, tt, blocks), _ = scaled.ScaledCounts()._dense_plan(am)
    assert kind == "dense" and blocks is not None and len(blocks) == 7
    assert [b[:4] for b in blocks] == _reference_blocks(am.dense())
    for a in (t, tt, *(p for b in blocks for p in b[4:])):
        assert not a.flags.writeable

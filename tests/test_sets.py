"""``edgewise._sets.unique`` is ``np.unique``: values, first indices, inverse and counts, with numpy's dtypes and
shapes, for whole numbers of every width, booleans, empty and 0-d arrays; other dtypes are numpy's own.
``unique_rows`` is ``np.unique(axis=0)`` (rows in its order, the same inverse); ``distinct_rows`` partitions the rows
as it does, in another order."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgewise import _sets
from edgewise._sets import distinct_rows, unique, unique_rows

FLAGS = [dict(return_index=i, return_inverse=v, return_counts=c) for i in (False, True) for v in (False, True)
         for c in (False, True)]


def same(a, **kw):
    ours, theirs = unique(a, **kw), np.unique(a, **kw)
    ours, theirs = (x if isinstance(x, tuple) else (x,) for x in (ours, theirs))
    assert len(ours) == len(theirs)
    for x, y in zip(ours, theirs):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), kw


@settings(max_examples=150, deadline=None, derandomize=True)
@given(hnp.arrays(st.sampled_from([np.int64, np.int32, np.uint8, np.int8, np.bool_]),
                  hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)),
       st.sampled_from(FLAGS))
def test_whole_numbers_give_numpys_results(a, flags):
    same(a, **flags)


@pytest.mark.parametrize("flags", FLAGS)
def test_many_repeats_and_wide_ranges(flags):
    rng = np.random.default_rng(0)
    for hi in (3, 3136, 2 ** 40):
        same(rng.integers(-hi, hi, 20_000), **flags)


@pytest.mark.parametrize("flags", FLAGS)
def test_floats_with_nans_are_numpys(flags):
    same(np.array([2.0, np.nan, 1.0, np.nan, 2.0, -0.0, 0.0]), **flags)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(0, 9), st.integers(0, 5), st.sampled_from([np.int64, np.int8, np.uint8, np.bool_]),
       st.integers(0, 2 ** 16), st.booleans())
def test_unique_rows_are_numpys(n, width, dtype, seed, inverse):
    rows = np.random.default_rng(seed).integers(-2, 3, size=(n, width)).astype(dtype)
    ours, theirs = unique_rows(rows, return_inverse=inverse), np.unique(rows, axis=0, return_inverse=inverse)
    for x, y in zip(ours if inverse else (ours,), theirs if inverse else (theirs,)):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.integers(1, 9), st.integers(1, 6), st.integers(0, 2 ** 16), st.sampled_from([3, 2 ** 20, 2 ** 40]))
def test_unique_rows_of_counts_are_numpys(n, width, seed, hi):
    """Non-negative rows (histograms, channel indices): one int64 key per row where they fit, bytes where not."""
    rows = np.random.default_rng(seed).integers(0, hi, size=(n, width))
    ours, theirs = unique_rows(rows, return_inverse=True), np.unique(rows, axis=0, return_inverse=True)
    for x, y in zip(ours, theirs):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


def test_unique_rows_sort_numbers_not_bytes():
    rows = np.array([[256, 0], [1, 0], [-1, 5], [1, 0], [0, 300]])  # little-endian bytes would put 256 before 1
    same_order = np.unique(rows, axis=0, return_inverse=True)
    for x, y in zip(unique_rows(rows, return_inverse=True), same_order):
        assert np.array_equal(x, y)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, 7), st.integers(1, 5), st.integers(0, 2 ** 16), st.sampled_from(["int64", "int8", "bool",
                                                                                       "float64", "collide"]))
def test_distinct_rows_partition_the_rows_as_numpy_unique_does(n, width, seed, kind):
    """``distinct_rows`` (rows of whole numbers by a hash, others compared as bytes) against ``np.unique(axis=0)``
    (a record per row); ``collide``: every row hashed alike, so that the check sends them to the bytes."""
    rows = np.random.default_rng(seed).integers(-1, 2, size=(n, width))
    with pytest.MonkeyPatch.context() as m:
        if kind == "collide":
            m.setattr(_sets, "_multipliers", lambda k: np.zeros(k, dtype=np.uint64))
        else:
            rows = rows.astype(kind)
        first, inverse = distinct_rows(rows)
    assert first.shape == (min(n, len({tuple(r) for r in rows.tolist()})),) and inverse.shape == (n,)
    if n == 0:
        return
    _, ref_first, ref_inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    assert sorted(first.tolist()) == sorted(ref_first.tolist())  # the first occurrence of each distinct row
    assert np.array_equal(rows[first][inverse], rows)
    pairs = set(zip(inverse.tolist(), ref_inverse.reshape(-1).tolist()))
    assert len(pairs) == len(first)  # the same partition, numbered in another order


def test_unique_rows_of_many_columns_give_numpy_and_no_overflow_warning():
    """600 columns of 0..3: the radices' product (4**600) is beyond float64, once a product that overflowed and
    warned (``RuntimeWarning`` in a user's trace of Sequencer2d); the rows go through their bytes."""
    rows = np.random.default_rng(0).integers(0, 4, size=(6, 600))[[0, 1, 2, 0, 3, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = unique_rows(rows, return_inverse=True)
    for x, y in zip(got, np.unique(rows, axis=0, return_inverse=True)):
        assert np.array_equal(x, y)

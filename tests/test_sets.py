"""``edgewise._sets.unique`` is ``np.unique``: values, first indices, inverse and counts, with numpy's dtypes and
shapes, for whole numbers of every width, booleans, empty and 0-d arrays; other dtypes are numpy's own."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgewise._sets import unique

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

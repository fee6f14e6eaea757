"""Exact path counts: numpy object arrays of Python ints."""

from __future__ import annotations

import math

import numpy as np

from .common import AxisByAxis, AxisMap, _Cache, _along, _slice_sum, _sparse_sum, window_taps


class ExactCounts(AxisByAxis):
    """Counts as numpy object arrays of Python ints."""

    exact = True

    def __init__(self, device=None):
        self.device = device
        self._cache = _Cache()

    def ones(self, mask: np.ndarray):
        return np.where(mask, 1, 0).astype(object)

    def add(self, a, b):
        return a + b

    def mix(self, rows, weights: np.ndarray):
        """out[k] = Σ_g weights[k, g] · rows[g]."""
        if weights.shape == (1, 1) and rows.shape[0] == 1:
            w = int(weights[0, 0])
            return rows if w == 1 else rows * w
        flat = rows.reshape(rows.shape[0], -1)
        out = weights.astype(object) @ flat
        return out.reshape((weights.shape[0],) + rows.shape[1:])

    def _plan(self, am: AxisMap):
        def make():
            taps = window_taps(am)
            if taps is not None:
                return "slices", taps[0]
            groups = am.groups()
            if groups is None:
                return "dense", am.dense().astype(object)
            return "sparse", [(r, c, None if (v == 1).all() else v.astype(object)) for r, c, v in groups]
        return self._cache.get_or(am.key, make)

    def _step(self, rows, axis: int, am: AxisMap, kind: str, plan):
        if kind == "dense":
            return _along(rows, axis, lambda x: x @ plan)
        if kind == "slices":
            return _slice_sum(rows, axis, plan, am.n_in)
        return _along(rows, axis, lambda x: _sparse_sum(x, plan, am.n_in, object))

    def unique_rows(self, full):
        keys, index, rows = {}, [], []
        for c in range(full.shape[0]):
            key = tuple(full[c].ravel().tolist())
            if key not in keys:
                keys[key] = len(rows)
                rows.append(full[c])
            index.append(keys[key])
        return np.stack(rows), np.array(index, dtype=np.int64)

    def to_numpy(self, row) -> np.ndarray:
        return row

    def log10(self, row) -> np.ndarray:
        flat = [math.log10(v) if v > 0 else -math.inf for v in row.ravel().tolist()]
        return np.array(flat, dtype=np.float64).reshape(row.shape)

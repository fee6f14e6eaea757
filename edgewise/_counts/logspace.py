"""Path counts as float64 natural logarithms, for any dynamic range."""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import _SMALL, AxisByAxis, AxisMap, _Cache

_SAFE = 600.0  # nats; exp(-600) ≈ 1e-261 is still a normal float64


class LogCounts(AxisByAxis):
    """Counts as float64 natural logarithms on a torch device."""

    exact = False

    def __init__(self, device=None):
        self.device = torch.device(device or "cpu")
        self._cache = _Cache()

    def ones(self, mask: np.ndarray):
        t = torch.as_tensor(mask, device=self.device)
        return torch.where(t, 0.0, -math.inf).to(torch.float64)

    def add(self, a, b):
        return torch.logaddexp(a, b)

    def mix(self, rows, weights: np.ndarray):
        if weights.shape == (1, 1) and rows.shape[0] == 1:
            return rows + math.log(float(weights[0, 0]))
        logw = torch.as_tensor(weights, dtype=torch.float64, device=self.device).log()
        flat = rows.reshape(rows.shape[0], -1)
        out = torch.logsumexp(logw[:, :, None] + flat[None, :, :], dim=1)
        return out.reshape((weights.shape[0],) + tuple(rows.shape[1:]))

    def _plan(self, am: AxisMap):
        def make():
            groups = None if am.entries <= _SMALL else am.groups()
            if groups is not None:
                return "sparse", [tuple(torch.as_tensor(np.array(a), device=self.device) for a in (r, c, np.log(v)))
                                  for r, c, v in groups]
            return "dense", torch.tensor(am.dense(), dtype=torch.float64, device=self.device)
        return self._cache.get_or(am.key, make)

    def _step(self, rows, axis: int, am: AxisMap, kind: str, plan):
        x = rows.movedim(axis, -1)
        if kind == "sparse":
            y = torch.full(x.shape[:-1] + (am.n_in,), -math.inf, dtype=x.dtype, device=x.device)
            for r, c, logv in plan:
                y[..., c] = torch.logaddexp(y[..., c], x[..., r] + logv)
            return y.movedim(-1, axis)
        top = x.amax(dim=-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        finite = torch.where(torch.isfinite(x), x, top)
        if (top - finite).max().item() <= _SAFE:
            y = torch.log((x - top).exp() @ plan) + top
        else:  # some fibre spans too many orders of magnitude for linear arithmetic
            y = torch.logsumexp(x[..., :, None] + plan.log(), dim=-2)
        return y.movedim(-1, axis)

    def unique_rows(self, full):
        rows, index = torch.unique(full.reshape(full.shape[0], -1), dim=0, return_inverse=True)
        return rows.reshape((rows.shape[0],) + tuple(full.shape[1:])), index.cpu().numpy().astype(np.int64)

    def to_numpy(self, row) -> np.ndarray:
        return row.cpu().numpy()

    def log10(self, row) -> np.ndarray:
        return row.cpu().numpy() / math.log(10)

    def linear(self, row, log10: np.ndarray, scale: int) -> np.ndarray:
        """The counts divided by 10**scale, as float64."""
        return np.where(np.isfinite(log10), 10.0 ** (log10 - scale), 0.0)

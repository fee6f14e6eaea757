"""Two number systems for path counts: exact Python ints and float64 logarithms.

Both expose the same few operations the pathway engine needs, so the engine is
written once. ``LogCounts`` keeps natural logarithms (−inf for zero) so that
counts of any size stay finite; its spatial step multiplies in linear space
after subtracting each fibre's maximum, and falls back to a log-sum-exp when a
fibre spans more than ``_SAFE`` nats (where the small entries would underflow).
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["ExactCounts", "LogCounts"]

_SAFE = 600.0  # nats; exp(-600) ≈ 1e-261 is still a normal float64


class ExactCounts:
    """Counts as numpy object arrays of Python ints."""

    exact = True

    def __init__(self, device=None):
        self.device = device

    def ones(self, mask: np.ndarray):
        return np.where(mask, 1, 0).astype(object)

    def add(self, a, b):
        return a + b

    def mix(self, rows, weights: np.ndarray):
        """out[k] = Σ_g weights[k, g] · rows[g]."""
        flat = rows.reshape(rows.shape[0], -1)
        out = weights.astype(object) @ flat
        return out.reshape((weights.shape[0],) + rows.shape[1:])

    def spatial(self, rows, mats):
        """Adjoint of a separable spatial op: axis a of ``rows`` (n_out) → n_in via Mᵀ."""
        for a, m in enumerate(mats):
            if m is None:
                continue
            rows = np.moveaxis(np.tensordot(rows, m.astype(object), axes=([a + 1], [0])), -1, a + 1)
        return rows

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


class LogCounts:
    """Counts as float64 natural logarithms on a torch device."""

    exact = False

    def __init__(self, device=None):
        self.device = torch.device(device or "cpu")

    def ones(self, mask: np.ndarray):
        t = torch.as_tensor(mask, device=self.device)
        return torch.where(t, 0.0, -math.inf).to(torch.float64)

    def add(self, a, b):
        return torch.logaddexp(a, b)

    def mix(self, rows, weights: np.ndarray):
        logw = torch.as_tensor(weights, dtype=torch.float64, device=self.device).log()
        flat = rows.reshape(rows.shape[0], -1)
        out = torch.logsumexp(logw[:, :, None] + flat[None, :, :], dim=1)
        return out.reshape((weights.shape[0],) + tuple(rows.shape[1:]))

    def spatial(self, rows, mats):
        for a, m in enumerate(mats):
            if m is None:
                continue
            x = rows.movedim(a + 1, -1)
            mt = torch.as_tensor(m, dtype=torch.float64, device=self.device)
            top = x.amax(dim=-1, keepdim=True)
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
            finite = torch.where(torch.isfinite(x), x, top)
            if (top - finite).max().item() <= _SAFE:
                y = torch.log((x - top).exp() @ mt) + top
            else:  # some fibre spans too many orders of magnitude for linear arithmetic
                y = torch.logsumexp(x[..., :, None] + mt.log(), dim=-2)
            rows = y.movedim(-1, a + 1)
        return rows

    def unique_rows(self, full):
        rows, index = torch.unique(full.reshape(full.shape[0], -1), dim=0, return_inverse=True)
        return rows.reshape((rows.shape[0],) + tuple(full.shape[1:])), index.cpu().numpy().astype(np.int64)

    def to_numpy(self, row) -> np.ndarray:
        return row.cpu().numpy()

    def log10(self, row) -> np.ndarray:
        return row.cpu().numpy() / math.log(10)

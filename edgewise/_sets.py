"""``np.unique`` of whole numbers by one sort.

numpy 2.4 finds the distinct values of an integer array through a hash table, then sorts them: on the arrays the
Graph build makes (attention pairs, unit numbers: 10⁵–10⁶ int64 values, most of them distinct) that takes 10–60×
as long as sorting the array once and keeping each value that differs from the one before (154 000 values:
35–59 ms against 1.6–2.0 ms). :func:`unique` gives ``np.unique``'s results (values, first indices, inverse in the
input's shape, counts: same values, dtypes and shapes; tested against it) that way (the inverse and first
indices through one argsort, as numpy's own sorting path does); other dtypes go to ``np.unique`` itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unique"]


def unique(a, return_index: bool = False, return_inverse: bool = False, return_counts: bool = False):
    """``np.unique(a, return_index, return_inverse, return_counts)`` (no ``axis``), sorted once for integers."""
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        return np.unique(a, return_index=return_index, return_inverse=return_inverse, return_counts=return_counts)
    flat = a.reshape(-1)
    if return_index or return_inverse:
        order = np.argsort(flat, kind="stable" if return_index else None)  # (stable: the first index of a value)
        s = flat[order]
    else:
        s = np.sort(flat)
    new = np.empty(s.shape, dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    out = [s[new]]
    if return_index:
        out.append(order[new])
    if return_inverse:
        inverse = np.empty(flat.shape, dtype=np.intp)
        inverse[order] = np.cumsum(new) - 1
        out.append(inverse.reshape(a.shape))
    if return_counts:
        out.append(np.diff(np.append(np.flatnonzero(new), s.size)))
    return out[0] if len(out) == 1 else tuple(out)

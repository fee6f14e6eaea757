"""``np.unique`` of whole numbers by one sort, and of rows through their bytes.

numpy 2.4 finds the distinct values of an integer array through a hash table, then sorts them: on the arrays the
Graph build makes (attention pairs, unit numbers: 10⁵–10⁶ int64 values, most of them distinct) that takes 10–60×
as long as sorting the array once and keeping each value that differs from the one before (154 000 values:
35–59 ms against 1.6–2.0 ms). :func:`unique` gives ``np.unique``'s results (values, first indices, inverse in the
input's shape, counts: same values, dtypes and shapes; tested against it) that way (the inverse and first
indices through one argsort, as numpy's own sorting path does); other dtypes go to ``np.unique`` itself.
Row-wise, ``np.unique(a, axis=0)`` makes a record type with one field per column and sorts records: 29 ms for a
few hundred rows of HaloNet's unfolded windows, seconds for the 1.2 million columns of a Swin attention mask.
:func:`distinct_rows` compares each row as one string of bytes; :func:`unique_rows` then puts the few distinct
rows in ``np.unique``'s order.
"""

from __future__ import annotations

import numpy as np

__all__ = ["unique", "distinct_rows", "unique_rows"]


def unique(a, return_index: bool = False, return_inverse: bool = False, return_counts: bool = False):
    """``np.unique(a, return_index, return_inverse, return_counts)`` (no ``axis``), sorted once for integers, by a
    stable sort: the values edgewise makes from grids come in long sorted runs, which it finds."""
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        return np.unique(a, return_index=return_index, return_inverse=return_inverse, return_counts=return_counts)
    flat = a.reshape(-1)
    # stable (timsort; the first index of a value): ~80x faster than quicksort on the long sorted runs of pairs
    # made from grids, 20 % slower on random values
    if return_index or return_inverse:
        order = np.argsort(flat, kind="stable")
        s = flat[order]
    else:
        s = np.sort(flat, kind="stable")
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


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the first row of each distinct row, each row's distinct-row number) of a 2-D array, in no particular order
    of the distinct rows: rows of whole numbers by a 64-bit hash of each, kept where no two distinct rows share
    one (checked: every row equals the first of its hash); else, and for other dtypes, each row compared as one
    string of bytes (3× slower on the attention rows of HaloNet's blocks)."""
    rows = np.ascontiguousarray(rows)
    if rows.shape[0] < 2:
        return np.zeros(rows.shape[0], dtype=np.int64), np.zeros(rows.shape[0], dtype=np.int64)
    if rows.dtype.kind in "iub" and rows.shape[1]:
        bits = rows.view(np.uint64) if rows.dtype.itemsize == 8 else rows.astype(np.uint64)
        _, first, inverse = unique((bits @ _multipliers(rows.shape[1])).view(np.int64), return_index=True,
                                   return_inverse=True)
        if np.array_equal(rows, rows[first[inverse]]):
            return first, inverse.reshape(-1)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _multipliers(n: int) -> np.ndarray:
    """``n`` fixed odd 64-bit numbers: a row's hash is its dot product with them, modulo 2**64."""
    m = _MULTIPLIERS.get(n)
    if m is None:
        if len(_MULTIPLIERS) >= 64:
            _MULTIPLIERS.clear()
        m = _MULTIPLIERS[n] = np.random.default_rng(n).integers(0, 2 ** 63, size=n, dtype=np.uint64) * 2 + 1
    return m


_MULTIPLIERS: dict = {}


def unique_rows(a, return_inverse: bool = False):
    """``np.unique(a, axis=0, return_inverse=return_inverse)`` of a 2-D array of whole numbers: through one int64 key
    per row where the rows are non-negative and fit one, else the distinct rows found as bytes, then sorted as numpy
    sorts them (column by column); other arrays go to ``np.unique``."""
    a = np.asarray(a)
    if a.ndim != 2 or a.dtype.kind not in "iub" or 0 in a.shape:
        return np.unique(a, axis=0, return_inverse=return_inverse)
    if a.min() >= 0:  # one int64 key per row where they fit: its order is the rows' order, column by column
        radix = a.max(axis=0).astype(np.int64) + 1
        if float(np.log2(radix).sum()) < 62:  # (the product of the radices below 2**62; summed as logarithms, which
            # cannot overflow where a product of hundreds of columns' radices does, and warns)
            place = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]]).astype(np.int64)
            _, first, inverse = unique(a.astype(np.int64, copy=False) @ place, return_index=True, return_inverse=True)
            return (a[first], inverse.reshape(-1)) if return_inverse else a[first]
    first, inverse = distinct_rows(a)
    rows = a[first]
    order = np.lexsort(rows.T[::-1])  # (the first column the primary key)
    if not return_inverse:
        return rows[order]
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rows[order], rank[inverse]

"""Summaries of any map over input positions (path counts, sensitivities, ...)."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from .errors import EdgewiseError

__all__ = [
    "anchor_points", "position_summary", "radial_profile", "center_of_mass", "center_offset",
    "gaussian_width", "GaussianWidth", "area_ratio", "map_metrics", "log_correlation",
]


def anchor_points(shape: tuple[int, ...]) -> dict[str, list[tuple[int, ...]]]:
    """The centre, mid-edge and corner positions of a 1-D or 2-D map, as (row, col) tuples.

    The centre is ``(n−1)//2`` on each axis; in 1-D the edges are the two ends,
    which are also the corners.
    """
    centre = tuple((n - 1) // 2 for n in shape)
    if len(shape) == 1:
        ends = [(0,), (shape[0] - 1,)]
        return {"center": [centre], "edge": ends, "corner": ends}
    (h, w), (cy, cx) = shape, centre
    return {
        "center": [centre],
        "edge": [(0, cx), (h - 1, cx), (cy, 0), (cy, w - 1)],
        "corner": [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)],
    }


def anchor_count(ndim: int) -> int:
    """How many border points a centre/border ratio averages over: an image's 4 corners, a signal's 2 ends."""
    return len(anchor_points((1,) * ndim)["corner"])


def _log10_mean(values: list[float]) -> float:
    top = max(values)
    if not math.isfinite(top):
        return top
    return top + math.log10(sum(10.0 ** (v - top) for v in values) / len(values))


def _pow10(x: float) -> float:
    return 10.0 ** x if x < 308 else math.inf


def log_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of log10 |a| and log10 |b| where both are positive (NaN: fewer than 3 such positions, or
    one map constant there)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        la, lb = np.log10(np.abs(a)), np.log10(np.abs(b))
    ok = np.isfinite(la) & np.isfinite(lb)
    # (max = min, not a zero standard deviation: np.std of 4096 copies of 221.26 is 5.7e-14, and r then noise)
    if ok.sum() < 3 or np.ptp(la[ok]) == 0 or np.ptp(lb[ok]) == 0:
        return math.nan
    return float(np.corrcoef(la[ok], lb[ok])[0, 1])


def position_summary(values: np.ndarray, log10: np.ndarray | None = None) -> dict:
    """Centre/edge/corner values (means over the anchor points) and their ratios, plus min/max.

    ``log10`` (base-10 logarithm of ``values``) keeps huge or exact integer maps
    finite; the ``log10_*`` entries are always finite where the map is positive.
    """
    if log10 is None:
        with np.errstate(divide="ignore"):
            log10 = np.log10(np.asarray(values, dtype=np.float64))
    out: dict = {}
    for name, points in anchor_points(log10.shape).items():
        logs = [float(log10[p]) for p in points]
        out[f"log10_{name}"] = _log10_mean(logs)
        out[name] = _pow10(out[f"log10_{name}"])
    if values.dtype == object:  # exact integers: exact means (an int when the mean is whole)
        for name, points in anchor_points(log10.shape).items():
            mean = Fraction(sum(values[p] for p in points), len(points))
            out[name] = mean.numerator if mean.denominator == 1 else float(mean)
    for name in ("edge", "corner"):
        diff = out["log10_center"] - out[f"log10_{name}"]
        if not math.isfinite(diff):  # x/0 is inf, 0/x is 0, 0/0 undefined
            zero = (out["log10_center"] == -math.inf, out[f"log10_{name}"] == -math.inf)
            diff = math.nan if all(zero) else -math.inf if zero[0] else math.inf
        out[f"log10_center_{name}_ratio"] = diff
        out[f"center_{name}_ratio"] = _pow10(diff) if math.isfinite(diff) else 0.0 if diff < 0 else diff
        if values.dtype == object and out[name] != 0:  # exact ratio, rounded once
            ratio = Fraction(out["center"]) / Fraction(out[name])
            out[f"center_{name}_ratio"] = float(ratio) if ratio < 10**300 else math.inf
    finite = log10[np.isfinite(log10)]
    out["log10_min"] = float(log10.min())
    out["log10_max"] = float(log10.max())
    out["min"], out["max"] = _pow10(out["log10_min"]) if np.isfinite(out["log10_min"]) else 0.0, _pow10(out["log10_max"])
    out["reachable_fraction"] = float(finite.size / log10.size)
    return out


# ---------------------------------------------------------------------------------------------
# Shape metrics of a map: radial profile, centre of mass, Gaussian width, high-contribution area
# ---------------------------------------------------------------------------------------------

def _check_map(values, log10=None, what: str = "map") -> np.ndarray:
    """``values`` as a 1-D or 2-D numpy array of finite numbers (object arrays of Python ints kept)."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim not in (1, 2):
        raise EdgewiseError(
            f"{what}: expected a map over input positions of shape (L,) or (H, W), got shape {arr.shape}; "
            "reduce batch/channel axes first, e.g. values.mean(axis=0)"
        )
    if arr.size == 0:
        raise EdgewiseError(f"{what}: the map is empty (shape {arr.shape}); every axis needs at least one position")
    if arr.dtype.kind not in "biufO":
        raise EdgewiseError(f"{what}: expected numbers, got dtype {arr.dtype}")
    if arr.dtype == object:
        bad = next((x for x in arr.flat if not isinstance(x, numbers.Real)), None)
        if bad is not None:
            raise EdgewiseError(
                f"{what}: object maps must hold Python ints or floats, found {type(bad).__name__} {bad!r}"
            )
        where = next((i for i in np.ndindex(*arr.shape) if isinstance(arr[i], float) and not math.isfinite(arr[i])),
                     None)
    else:
        bad = ~np.isfinite(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, dtype=bool)
        where = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None
    if where is not None:
        bad = arr[where].item() if isinstance(arr[where], np.generic) else arr[where]
        raise EdgewiseError(
            f"{what}: the map holds {bad!r} at position {where}; metrics need finite values "
            "(pass huge counts as exact ints or with their log10)"
        )
    if log10 is not None:
        log10 = np.asarray(log10)
        if log10.shape != arr.shape:
            raise EdgewiseError(f"{what}: log10 has shape {log10.shape} but the map has shape {arr.shape}")
        if np.isnan(log10).any() or (log10 == np.inf).any():
            raise EdgewiseError(f"{what}: log10 must be finite or -inf (for zeros), got NaN or +inf")
    return arr


def _object_log10(arr: np.ndarray) -> np.ndarray:
    """log10 of |x| for every element of an object array (−inf for zeros); exact for huge ints."""
    out = [math.log10(abs(x)) if x != 0 else -math.inf for x in arr.flat]
    return np.array(out, dtype=np.float64).reshape(arr.shape)


def _normalised(values, log10=None, what: str = "map") -> tuple[np.ndarray, float]:
    """Checked map as float64 ``v`` and a power ``top`` with ``values = v · 10**top`` (|v| ≤ 1 when
    ``top`` ≠ 0), so exact counts beyond float64's range stay finite; signs are kept."""
    arr = _check_map(values, log10, what)
    if log10 is None and arr.dtype != object:
        return arr.astype(np.float64), 0.0
    if arr.dtype == object:
        sign = np.array([(x > 0) - (x < 0) for x in arr.flat], dtype=np.float64).reshape(arr.shape)
        if log10 is None:
            log10 = _object_log10(arr)
    else:
        sign = np.sign(arr.astype(np.float64))
    log10 = np.asarray(log10, dtype=np.float64)
    finite = log10[np.isfinite(log10)]
    if finite.size == 0:  # every value is zero
        return np.zeros(arr.shape), 0.0
    top = float(finite.max())
    return sign * 10.0 ** (log10 - top), top


def _times_pow10(x: np.ndarray, top: float) -> np.ndarray:
    """``x · 10**top`` with overflow to ±inf instead of an error."""
    if top == 0.0:
        return np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mag = 10.0 ** np.minimum(np.log10(np.abs(x)) + top, 400.0)
    return np.where(x == 0, 0.0, np.sign(x) * mag)


def _geometric_centre(shape) -> np.ndarray:
    return (np.asarray(shape, dtype=np.float64) - 1) / 2


def _radial(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    grids = np.meshgrid(*[np.arange(n) - c for n, c in zip(v.shape, _geometric_centre(v.shape))], indexing="ij")
    dist = np.sqrt(sum(g ** 2 for g in grids))
    ring = np.floor(dist + 0.5).astype(np.int64).ravel()  # round half up: 0.5 → 1, 1.5 → 2
    count = np.bincount(ring)
    total = np.bincount(ring, weights=v.ravel())
    radii = np.flatnonzero(count)
    return radii, total[radii] / count[radii]


def radial_profile(values, log10=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the map over rings of equal distance from the geometric centre.

    The centre is ``(n−1)/2`` on each axis; a position belongs to ring
    ``floor(d + 0.5)``, its Euclidean distance ``d`` to the centre rounded to
    the nearest integer (halves up). In 1-D, ``d = |i − c|``. Only rings that
    hold at least one position are returned (an even-sized 2-D map has no ring 0).

    Args:
        values: (L,) or (H, W) map; signed values are averaged as they are.
        log10: optional base-10 logarithm of ``values`` (for counts beyond float64).

    Returns:
        ``(radii, means)``: int64 ring radii, ascending, and float64 means
        (``inf`` where a mean exceeds float64's range).

    Example:
        >>> radial_profile(np.array([1.0, 2.0, 5.0, 2.0, 1.0]))
        (array([0, 1, 2]), array([5., 2., 1.]))
    """
    v, top = _normalised(values, log10, "radial_profile")
    radii, means = _radial(v)
    return radii, _times_pow10(means, top)


def _marginals(w: np.ndarray) -> list[np.ndarray]:
    """Per-axis sums of a non-negative map (the distribution of mass along each axis)."""
    return [w.sum(axis=tuple(a for a in range(w.ndim) if a != k)) for k in range(w.ndim)]


def _weights(values, log10, what: str) -> np.ndarray:
    """|values| scaled so that the largest is 1 (all zeros stay zeros)."""
    v, _ = _normalised(values, log10, what)
    w = np.abs(v)
    top = w.max()
    return w / top if top > 0 else w


def center_of_mass(values, log10=None) -> tuple[float, ...]:
    """Centre of mass of the map with weights ``|values|``, as ``(row, col)`` (a 1-tuple in 1-D).

    NaN on every axis for a map that is zero everywhere.

    Example:
        >>> center_of_mass(np.array([[0, 0, 0], [0, 0, 3.0]]))
        (1.0, 2.0)
    """
    w = _weights(values, log10, "center_of_mass")
    if w.sum() == 0:
        return (math.nan,) * w.ndim
    return tuple(float(m @ np.arange(len(m)) / m.sum()) for m in _marginals(w))


def center_offset(values, log10=None) -> tuple[float, ...]:
    """Centre of mass minus the geometric centre ``(n−1)/2``, per axis ``(row, col)``.

    Positive row offset: the mass lies below the centre; positive col: to its right.
    """
    com = center_of_mass(values, log10)
    return tuple(float(m - c) for m, c in zip(com, _geometric_centre(np.shape(_check_map(values)))))


class GaussianWidth(NamedTuple):
    """Width of a map per axis ``(row, col)``: fitted and moment-based standard deviations.

    Attributes:
        sigma: σ of a least-squares separable Gaussian fitted to ``|values|`` (what
            :func:`map_metrics` reports as ``gaussian_sigma``). 0.0 on an axis where
            the peak is narrower than a pixel (σ < 0.2), NaN where no Gaussian fits
            (flat axis, single position, zero map; see ``note``).
        sigma_moments: square root of the weighted variance of ``|values|`` along each axis.
        center: fitted mean per axis (the moment mean where nothing was fitted).
        note: why a value is 0/NaN or the fit is doubtful; ``None`` when all is well.
    """

    sigma: tuple[float, ...]
    sigma_moments: tuple[float, ...]
    center: tuple[float, ...]
    note: str | None


_MIN_SIGMA = 0.2  # below this the neighbours of the peak hold < 1e-5 of it: a single-pixel peak
_FLAT_SIGMA = 3.0  # in units of the axis length: wider, the Gaussian drops < 1.5 % across the axis: flat


def _along(v: np.ndarray, k: int, ndim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[k] = -1
    return v.reshape(shape)


def _gaussian_model(grids: list, axes: list[int], p: np.ndarray, jacobian: bool = True):
    """The separable Gaussian ``g`` on ``grids`` (one coordinate vector per axis) with parameters ``p`` (A, then
    (μ_k, log σ_k) per fitted axis of ``axes``) and, with ``jacobian``, its Jacobian as factors: every column (∂g/∂A,
    then ∂g/∂μ_k and ∂g/∂log σ_k per fitted axis) is an outer product of one vector per axis, ``factors[k]``
    (columns × n_k)."""
    shape = tuple(len(x) for x in grids)
    base = np.ones(shape)
    factors = [np.ones((len(p), n)) for n in shape]
    for j, k in enumerate(axes):
        mu, s2 = p[1 + 2 * j], math.exp(2 * p[2 + 2 * j])
        d = grids[k] - mu
        f = np.exp(-d * d / (2 * s2))
        base = base * _along(f, k, len(shape))
        factors[k][:] = f
        factors[k][1 + 2 * j] *= p[0] * d / s2  # (the amplitude on the fitted axis's own factor)
        factors[k][2 + 2 * j] *= p[0] * d * d / s2
    return p[0] * base, factors if jacobian else None


def _normal_equations(factors: list, residual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(JᵀJ, Jᵀr)`` from the Jacobian's factors (:func:`_gaussian_model`) and the residual map: JᵀJ is the
    elementwise product of each axis's Gram matrix, and Jᵀr contracts the residual with each column's factors
    (no column is built at full size)."""
    u = factors[0]
    if residual.ndim == 1:
        return u @ u.T, u @ residual
    v = factors[1]
    return (u @ u.T) * (v @ v.T), ((u @ residual) * v).sum(axis=1)


def _fit_separable_gaussian(z: np.ndarray, mu0, sigma0, axes: list[int], iters: int = 200):
    """Levenberg–Marquardt fit of ``A · Π_k exp(−(i_k − μ_k)² / 2σ_k²)`` to ``z`` over ``axes``
    (the others are constant). Parameters: A, then (μ_k, log σ_k) per fitted axis.
    Stops early once a σ exceeds 3n (a flat axis: the fit runs away).
    Returns (params, converged)."""
    grids = [np.arange(n, dtype=np.float64) for n in z.shape]
    lo, hi = math.log(0.05), math.log(1e3 * max(z.shape))
    wide = np.log([_FLAT_SIGMA * z.shape[k] for k in axes])

    p = np.array([1.0] + [x for k in axes for x in (mu0[k], math.log(sigma0[k]))])
    g, J = _gaussian_model(grids, axes, p)
    p[0] = float(g.ravel() @ z.ravel() / max(g.ravel() @ g.ravel(), 1e-300))  # best amplitude for the start
    g, J = _gaussian_model(grids, axes, p)
    r = (g - z).ravel()
    cost, lam, converged = float(r @ r), 1e-3, False
    for _ in range(iters):
        JTJ, grad = _normal_equations(J, r.reshape(z.shape))
        damp = np.maximum(np.diag(JTJ), 1e-12 * max(float(np.diag(JTJ).max()), 1e-300))
        while True:
            step = np.linalg.lstsq(JTJ + lam * np.diag(damp), -grad, rcond=None)[0]
            new = p + step
            new[2::2] = np.clip(new[2::2], lo, hi)
            g_new, _ = _gaussian_model(grids, axes, new, jacobian=False)
            r_new = (g_new - z).ravel()
            cost_new = float(r_new @ r_new)
            if cost_new < cost or lam > 1e12:
                break
            lam *= 10
        if not cost_new < cost:  # no step lowers the cost: a (local) minimum
            converged = True
            break
        gain = cost - cost_new
        p, r, cost, lam = new, r_new, cost_new, max(lam / 10, 1e-12)
        if gain <= 1e-15 * cost or cost <= 1e-30 * z.size or np.abs(step).max() < 1e-12:
            converged = True
            break
        if (p[2::2] > wide).any():
            break
        J = _gaussian_model(grids, axes, p)[1]
    return p, converged


def gaussian_width(values, log10=None) -> GaussianWidth:
    """Per-axis standard deviation of a Gaussian fitted to ``|values|`` (and of the moments).

    The moment estimate (weighted mean and variance of ``|values|`` along each
    axis) starts a Levenberg–Marquardt least-squares fit of a separable Gaussian
    ``A · exp(−(r−μ_r)²/2σ_r² − (c−μ_c)²/2σ_c²)`` without baseline, in numpy. The
    fit recovers a sampled Gaussian to machine precision; the moments are biased
    by sampling and by truncation at the border. :func:`map_metrics` reports the
    fitted σ as ``gaussian_sigma`` and the moment σ as ``gaussian_sigma_moments``.

    Returns:
        :class:`GaussianWidth` ``(sigma, sigma_moments, center, note)``, tuples in (row, col) order.

    Example:
        >>> r = np.arange(9.0)[:, None]; c = np.arange(13.0)[None]
        >>> g = gaussian_width(np.exp(-(r - 4) ** 2 / 2 / 1.5 ** 2 - (c - 6) ** 2 / 2 / 2.5 ** 2))
        >>> [round(s, 6) for s in g.sigma]
        [1.5, 2.5]
    """
    w = _weights(values, log10, "gaussian_width")
    nan = (math.nan,) * w.ndim
    if w.sum() == 0:
        return GaussianWidth(nan, nan, nan, "the map is zero everywhere: no width")
    marg = _marginals(w)
    mu = [float(m @ np.arange(len(m)) / m.sum()) for m in marg]
    moments = [float(np.sqrt(m @ (np.arange(len(m)) - c) ** 2 / m.sum())) for m, c in zip(marg, mu)]
    notes, sigma, center = [], list(nan), list(mu)
    axes = [k for k, n in enumerate(w.shape) if n > 1]
    for k in range(w.ndim):
        if k not in axes:
            moments[k] = math.nan
            notes.append(f"axis {k} has a single position: no width")
    start = [min(max(s, 0.5), float(n)) for s, n in zip(moments, w.shape)]
    while axes:
        p, converged = _fit_separable_gaussian(w, mu, start, axes)
        flat = [k for j, k in enumerate(axes) if math.exp(p[2 + 2 * j]) > _FLAT_SIGMA * w.shape[k]]
        if not flat:
            break
        for k in flat:  # σ → ∞ is a constant along that axis: refit the others with it held constant
            notes.append(f"the map is flat along axis {k}: the fitted Gaussian grows without bound (sigma NaN)")
        axes = [k for k in axes if k not in flat]
    if axes:
        degenerate = False
        for j, k in enumerate(axes):
            s, center[k] = math.exp(p[2 + 2 * j]), float(p[1 + 2 * j])
            if s < _MIN_SIGMA:
                notes.append(f"the peak along axis {k} is narrower than a pixel (sigma reported as 0)")
                s, degenerate = 0.0, True
            elif not -0.5 <= center[k] <= w.shape[k] - 0.5:
                notes.append(f"the fitted peak along axis {k} lies outside the map (mean {center[k]:.3g})")
            sigma[k] = s
        if not converged and not degenerate:  # a degenerate fit runs to a bound: no news in that
            notes.append("the Gaussian fit did not converge in 200 iterations")
    return GaussianWidth(tuple(sigma), tuple(moments), tuple(center), "; ".join(notes) or None)


def area_ratio(values, fractions=(0.2, 0.3, 0.5, 0.99), log10=None) -> dict[float, float]:
    """Area of the smallest centred square holding ``fraction`` of the total ``|values|``, over the image area.

    The "high-contribution area ratio" of effective-receptive-field papers. Squares
    grow one pixel per side per step from the centre: on each axis the window is
    ``[c−h, c+h]`` with ``c = (n−1)//2`` for odd n, and ``[c−h, c+h+1]`` for even n
    (one more on the far side, so it is centred on the geometric centre ``(n−1)/2``;
    its smallest window is the central 2 pixels; a map even on one axis and odd on the
    other gets windows one longer on the even axis). Windows are clipped to the image,
    so on a non-square map the square becomes a band once it spans the short axis.
    In 1-D the "area" is a length. NaN for every fraction on a map that is zero everywhere.

    Returns:
        ``{fraction: ratio}``, ratios in (0, 1].

    Example:
        >>> area_ratio(np.ones((10, 10)), fractions=(0.36,))
        {0.36: 0.36}
    """
    fractions = tuple(fractions)
    for f in fractions:
        if not isinstance(f, numbers.Real) or not 0 < f <= 1:
            raise EdgewiseError(f"area_ratio: fractions must lie in (0, 1], got {f!r}")
    w = _weights(values, log10, "area_ratio")
    total = float(w.sum())
    if total == 0:
        return {f: math.nan for f in fractions}
    table = np.pad(w, [(1, 0)] * w.ndim).cumsum(axis=0)
    if w.ndim == 2:
        table = table.cumsum(axis=1)
    steps = max(w.shape)  # (every step's window on every axis at once: a long 1-D map has tens of thousands)
    box = [_window_bounds(n, steps) for n in w.shape]
    if w.ndim == 1:
        (a, b), = box
        sums = table[b + 1] - table[a]
    else:
        (a, b), (c, d) = box
        sums = table[b + 1, d + 1] - table[a, d + 1] - table[b + 1, c] + table[a, c]
    areas = np.prod([hi - lo + 1 for lo, hi in box], axis=0)
    out = {}
    for f in fractions:
        need = f * total * (1 - 1e-12)  # rounding in the running sums must not push a step further
        reached = np.flatnonzero(sums >= need)
        out[f] = int(areas[reached[0] if reached.size else steps - 1]) / w.size
    return out


def _window_bounds(n: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive bounds (lo, hi) of the centred windows on an axis of length ``n`` at steps 0 … ``steps`` − 1:
    grown by one on each side per step from ``c = (n−1)//2`` (and one more on the far side for even ``n``, so
    that every window is centred on ``(n−1)/2``), clipped to the axis; past step ``n`` − 1 the last repeats."""
    c, extra = (n - 1) // 2, 1 - n % 2
    h = np.minimum(np.arange(steps), n - 1)
    return np.maximum(c - h, 0), np.minimum(c + h + extra, n - 1)


def map_metrics(values, log10=None) -> dict:
    """Every summary of a map in one JSON-friendly dict.

    Keys: those of :func:`position_summary` (unchanged), plus ``radial_profile``
    (``{"radii", "means", "log10_means"}``), ``center_of_mass``, ``center_offset``,
    ``gaussian_sigma`` (fitted), ``gaussian_sigma_moments``, ``gaussian_note``
    (str or None) and ``area_ratio`` (``{"20", "30", "50", "99"}``): lists in
    (row, col) order and floats.

    Args:
        values: (L,) or (H, W) float map (zeros and signs allowed) or object array of Python ints.
        log10: base-10 logarithm of ``values``; when given it is trusted for the magnitudes
            (``values`` may then be scaled, like :attr:`PathCounts.counts`), which keeps
            counts beyond 1e308 finite. Computed exactly for object arrays when omitted.

    Example:
        >>> m = map_metrics(np.array([1.0, 4.0, 6.0, 4.0, 1.0]))
        >>> m["center_edge_ratio"], m["radial_profile"]["means"]
        (6.0, [6.0, 4.0, 1.0])
    """
    arr = _check_map(values, log10, "map_metrics")
    if log10 is None and arr.dtype == object:
        log10 = _object_log10(arr)
    log10 = None if log10 is None else np.asarray(log10, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # signed maps have no logarithm where negative
        out = position_summary(arr, log10)
    v, top = _normalised(arr, log10, "map_metrics")
    radii, means = _radial(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_means = np.where(means > 0, np.log10(np.where(means > 0, means, 1.0)) + top,
                             np.where(means == 0, -math.inf, math.nan))
    gw = gaussian_width(v)
    out["radial_profile"] = {
        "radii": [int(r) for r in radii],
        "means": [float(m) for m in _times_pow10(means, top)],
        "log10_means": [float(x) for x in log_means],
    }
    out["center_of_mass"] = [float(x) for x in center_of_mass(v)]
    out["center_offset"] = [float(x) for x in center_offset(v)]
    out["gaussian_sigma"] = [float(x) for x in gw.sigma]
    out["gaussian_sigma_moments"] = [float(x) for x in gw.sigma_moments]
    out["gaussian_note"] = gw.note
    out["area_ratio"] = {f"{f * 100:g}": float(r) for f, r in area_ratio(v).items()}
    return out

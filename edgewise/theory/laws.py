"""Depth laws: the exact ratio dispatcher, the theoretical :class:`DepthLaw`, and fitted laws (:func:`fit_law`)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import EdgewiseError
from ._stack import _int, _kld, _padding, center_edge_ratio, counts
from .limit import ratio_limit
from .reflect import reflect_mixing_depth, reflect_ratio, reflect_ratio_limit
from .same import same_ratio
from .saturation import same_mixing_depth, same_ratio_limit
from .survival import _sigma2, survival_constant
from .uniform import is_uniform
from .valid import valid_ratio


# ----------------------------------------------------------------------- dispatcher and depth laws

def ratio(padding: str, k: int, n: int, L: int, dilation: int = 1) -> Fraction:
    """Exact 1-D centre/edge ratio of ``L`` stride-1 layers, from the matching closed form.

    valid → :func:`valid_ratio`; same (odd k) → :func:`same_ratio`; reflect (odd k, d = 1) →
    :func:`reflect_ratio`; uniform modes (:func:`is_uniform`) → 1; anything else → the
    transfer-matrix reference :func:`counts`.

    Returns:
        :class:`fractions.Fraction`.
    """
    padding = _padding(padding)
    k, L, d = _kld(k, L, dilation)
    n = _int("width n", n, 1)
    if padding == "valid":
        return valid_ratio(k, L, n, d)
    if padding == "same" and k % 2:
        return same_ratio(k, n, L, d)
    if padding == "reflect" and k % 2 and d == 1 and (k - 1) // 2 <= n - 1 and n >= 2:
        return reflect_ratio(k, n, L)
    if is_uniform(padding, k, d):
        return Fraction(1)
    return center_edge_ratio(counts(padding, k, n, L, d))


@dataclass(frozen=True)
class DepthLaw:
    """How centre/edge grows with depth for one padding, kernel and width: the curve a plot overlays.

    Attributes:
        padding, k, n, dilation: the stack (1-D, stride 1).
        kind: ``"exponential"`` (valid), ``"sqrt-then-saturating"`` (same, odd k > 1),
            ``"bounded"`` (reflect, odd k), ``"uniform"``, or ``"numeric"`` (no closed form, ``limit`` where the
            ratio has one as L → ∞, :func:`edgewise.theory.ratio_limit`:
            even-kernel same/reflect/symmetric, wide replicate, dilated reflect).
        params: the law's numbers (``base``; ``C``, ``limit``, ``mixing_depth``, ``crossover_depth``;
            ``limit``; …).
        domain: where the law holds, in words.
    """

    padding: str
    k: int
    n: int
    dilation: int
    kind: str
    params: dict = field(default_factory=dict)
    domain: str = ""

    def curve(self, depths) -> np.ndarray:
        """The law's ratio at each depth (float; nan where the stack has no output)."""
        L = np.asarray(depths, dtype=float)
        if self.kind == "uniform":
            return np.ones_like(L)
        if self.kind == "exponential":
            return np.where(L <= self.params["max_depth"], float(self.params["base"]) ** L, np.nan)
        if self.kind == "sqrt-then-saturating":
            law = np.sqrt(np.pi * np.maximum(L, 0)) / self.params["C"]
            return np.maximum(1.0, np.minimum(law, self.params["limit"]))
        if self.kind == "bounded":
            return np.full_like(L, float(self.params["limit"]))
        return np.array([float(x) for x in self.exact(depths)])

    def __call__(self, depths) -> np.ndarray:
        return self.curve(depths)

    def exact(self, depths) -> list[Fraction]:
        """Exact ratios at each depth (:func:`ratio`)."""
        return [ratio(self.padding, self.k, self.n, int(L), self.dilation) for L in depths]


def depth_law(padding: str, k: int, n: int, dilation: int = 1) -> DepthLaw:
    """The theory of centre/edge versus depth for one 1-D stack, as a :class:`DepthLaw`.

    Args:
        padding: one of :data:`PADDINGS`; k: taps; n: width; dilation: ``d``.

    Returns:
        :class:`DepthLaw` whose ``curve`` is ``k**L`` (valid), ``min(√(πL)/C_k, limit)``
        (same), the limit 2 (reflect) or 1 (uniform modes).
    """
    padding = _padding(padding)
    k, _, d = _kld(k, 0, dilation)
    n = _int("width n", n, 1)
    law = functools.partial(DepthLaw, padding, k, n, d)
    if is_uniform(padding, k, d):
        return law("uniform", {"ratio": 1, "counts": "k**L"},
                   "every depth and width: each input is read by exactly k taps per layer")
    if padding == "valid":
        W1 = d * (k - 1)
        max_depth = (n - 1) // W1
        exact_depth = (n - 1) // (2 * W1)
        return law("exponential", {"base": k, "max_depth": max_depth, "exact_depth": exact_depth},
                   f"centre/edge = k**L exactly for L ≤ {exact_depth} (n ≥ 2L·d(k−1)+1); "
                   f"smaller partial sums up to L = {max_depth}, where the output vanishes")
    if padding == "same" and k % 2:
        C = survival_constant(k)
        s2 = _sigma2(k) * d * d
        limit = same_ratio_limit(k, n, d)
        m = len(range(((n - 1) // 2) % d, n, d))
        mix = same_mixing_depth(k, m)
        return law("sqrt-then-saturating",
                   {"C": C, "sigma2": s2, "limit": limit, "mixing_depth": mix,
                    "sqrt_law_until": 0.05 * m * m / _sigma2(k),
                    "crossover_depth": (C * limit) ** 2 / math.pi if math.isfinite(limit) else math.inf},
                   f"√(πL)/C_k within 5% for L from ~5–11 (k=7…3) up to 0.05·m²/σ² = {0.05 * m * m / _sigma2(k):.4g} "
                   f"(m = {m} sites in the centre's class, σ² = {_sigma2(k):.4g}); the limit {limit:.6g} once "
                   f"L ≫ {mix:.4g} (the mixing depth, per e-fold)")
    if padding == "reflect" and k % 2 and d == 1 and (k - 1) // 2 <= n - 1 and n >= 2:
        return law("bounded", {"limit": reflect_ratio_limit(k, n), "stationary": "(1, 2, …, 2, 1)",
                               "mixing_depth": reflect_mixing_depth(k, n)},
                   "every depth: bounded, → 2 (1-D), 4 (2-D corner) as L → ∞; odd k, r ≤ n−1")
    deep = ratio_limit(padding, k, n, d)
    if deep is None:
        return law("numeric", {}, "no closed form: exact transfer-matrix counts only")
    return law("numeric", {"limit": deep.limit, "mixing_depth": deep.mixing_depth},
               f"no closed form: exact transfer-matrix counts, tending to {deep.limit:.6g} as L → ∞ (the Perron "
               f"vector of one layer's matrix; at most {deep.mixing_depth:.4g} layers per e-fold)")


# ----------------------------------------------------------------------- fitted laws

@dataclass(frozen=True)
class Fit:
    """A least-squares line in log space: ``log ratio = a + b·x`` (``x = L`` or ``log L``)."""

    a: float
    b: float
    r2: float
    rss: float


@dataclass(frozen=True)
class Law:
    """The law that best describes ratios versus depth.

    Attributes:
        kind: ``"exponential"`` (ratio ≈ e^a·base^L), ``"power"`` (≈ e^a·L^p), ``"bounded"``
            (levels off at ``limit``: ``tail_change``, the ratio's factor between ``tail_depths``, the first and last
            of the deeper half) or ``"uniform"`` (≈ 1 throughout).
        params: ``base``/``rate``, ``exponent``, ``limit``… for the kind chosen.
        r2: R² of the chosen fit in log space (1.0 for uniform).
        exponential, power: both fits.
    """

    kind: str
    params: dict
    r2: float
    exponential: Fit
    power: Fit


def _line(x: np.ndarray, y: np.ndarray) -> Fit:
    b, a = np.polyfit(x, y, 1)
    rss = float(np.sum((y - (a + b * x)) ** 2))
    tss = float(np.sum((y - y.mean()) ** 2))
    return Fit(float(a), float(b), 1.0 - rss / tss if tss > 0 else (1.0 if rss < 1e-24 else 0.0), rss)


def fit_law(depths, ratios, uniform_tol: float = 1e-9, flat_exponent: float = 0.05) -> Law:
    """Fit ``log ratio = a + b·L`` (exponential) and ``log ratio = a + p·log L`` (power); pick a law.

    Rules, in order: every ratio within ``uniform_tol`` of 1 → ``"uniform"``; the power-law
    exponent fitted to the deeper half of the points below ``flat_exponent`` in magnitude →
    ``"bounded"`` (``limit`` = the last ratio); otherwise the fit with the smaller residual.

    Args:
        depths: ≥ 3 positive depths; ratios: the matching positive ratios.

    Returns:
        :class:`Law`.
    """
    L = np.asarray([float(x) for x in depths])
    R = np.asarray([float(x) for x in ratios])
    if L.shape != R.shape or L.ndim != 1 or L.size < 3:
        raise EdgewiseError(f"fit_law: need ≥ 3 depths and as many ratios, got {L.size} depths and {R.size} ratios")
    if (L <= 0).any() or (R <= 0).any() or not np.isfinite(R).all():
        raise EdgewiseError("fit_law: depths and ratios must be positive and finite (log space)")
    if len(set(L.tolist())) < 3:
        raise EdgewiseError("fit_law: need at least 3 distinct depths")
    order = np.argsort(L)
    L, R = L[order], R[order]
    y = np.log(R)
    exp_fit, pow_fit = _line(L, y), _line(np.log(L), y)
    if np.all(np.abs(R - 1) <= uniform_tol):
        return Law("uniform", {"ratio": 1.0}, 1.0, exp_fit, pow_fit)
    half = max(3, L.size // 2)
    tail = _line(np.log(L[-half:]), y[-half:])
    if abs(tail.b) < flat_exponent:  # (how far the deeper half moves says "levels off"; its flat line's R² cannot)
        change = float(R[-1] / R[-half])
        return Law("bounded", {"limit": float(R[-1]), "tail_exponent": tail.b, "tail_change": change,
                               "tail_depths": [int(L[-half]), int(L[-1])]}, tail.r2, exp_fit, pow_fit)
    if exp_fit.rss <= pow_fit.rss:
        return Law("exponential", {"base": math.exp(exp_fit.b), "rate": exp_fit.b, "prefactor": math.exp(exp_fit.a)},
                   exp_fit.r2, exp_fit, pow_fit)
    return Law("power", {"exponent": pow_fit.b, "prefactor": math.exp(pow_fit.a)}, pow_fit.r2, exp_fit, pow_fit)

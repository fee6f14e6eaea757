"""Monte-Carlo identities: expected squared gradients, the normal quantile and test tolerances."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..errors import EdgewiseError
from ._stack import _int


def expected_squared_gradient(paths, sigma, L: int):
    """``E[(∂y_o/∂x_p)²] = σ^{2L} · paths(p → o)`` for a linear conv net with i.i.d. zero-mean weights.

    Proof. ``∂y_o/∂x_p = Σ_π Π_ℓ w_ℓ[t_ℓ(π)]``, a sum over the paths ``π`` from ``p`` to ``o``
    of the product of the taps they use, one per layer. A path is fixed by its output unit
    and its tap sequence (read backwards from ``o``, each tap names the unit it reads), so two
    distinct paths to the same ``o`` differ in the tap of at least one layer; the expectation
    of the product of their weight products then contains an independent zero-mean factor
    and vanishes — weight sharing does not matter, only independence across taps and
    layers. Each path squared gives ``Π_ℓ E[w²] = σ^{2L}``. Summing over output units gives
    the ``to="all"`` count. This is the sum of squares over outputs, not the square of the
    gradient of ``Σ_o y_o``: two paths from ``p`` to *different* outputs with the same tap
    sequence add cross terms. With zero padding (valid/same/full) and stride 1 the tap
    sequence fixes the output, so both agree; with reflect, circular, replicate or
    symmetric padding they do not.

    Args:
        paths: path count(s) (int, Fraction, or an array of them).
        sigma: weight standard deviation; L: number of conv layers.

    Returns:
        ``paths · σ^{2L}`` (exact when ``sigma`` is an int or Fraction).
    """
    L = _int("depth L", L, 0)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, Fraction, np.floating, np.integer)) \
            or not sigma >= 0:
        raise EdgewiseError(f"expected_squared_gradient: sigma must be a non-negative number, got {sigma!r}")
    if isinstance(sigma, np.floating):
        sigma = float(sigma)
    factor = sigma ** (2 * L)
    if isinstance(paths, (list, tuple)):
        return [p * factor for p in paths]
    return paths * factor


def normal_quantile(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation, then two Newton steps on ``math.erfc``).

    Domain: ``0 < p < 1``; accurate to ~1e-15 relative in the tails used for tolerances.
    """
    if not isinstance(p, (int, float)) or not 0.0 < p < 1.0:
        raise EdgewiseError(f"normal_quantile: p must lie strictly between 0 and 1, got {p!r}")
    a = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
         1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
    b = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
         6.680131188771972e+01, -1.328068155288572e+01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
         -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
    e = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
    lo = 0.02425
    if p < lo:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1)
    elif p <= 1 - lo:
        q = p - 0.5
        t = q * q
        x = (((((a[0] * t + a[1]) * t + a[2]) * t + a[3]) * t + a[4]) * t + a[5]) * q / \
            (((((b[0] * t + b[1]) * t + b[2]) * t + b[3]) * t + b[4]) * t + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1)
    for _ in range(2):  # Newton on the tail probability: stable for p near 0 or 1
        if x > 0:
            err = 0.5 * math.erfc(x / math.sqrt(2)) - (1 - p)
            x += err / (math.exp(-x * x / 2) / math.sqrt(2 * math.pi))
        else:
            err = 0.5 * math.erfc(-x / math.sqrt(2)) - p
            x -= err / (math.exp(-x * x / 2) / math.sqrt(2 * math.pi))
    return x


def mc_tolerance(sample_std, n_samples: int, n_tests: int = 1, alpha: float = 1e-3):
    """Half-width ``z·sd/√N`` for comparing ``n_tests`` Monte-Carlo means with their expectations.

    ``z = Φ⁻¹(1 − α/(2·n_tests))`` (two-sided, Bonferroni), so all ``n_tests`` comparisons
    pass together with probability ≥ ``1 − α`` when the CLT holds.

    Args:
        sample_std: per-test sample standard deviation (float or array).
        n_samples: ``N``, the draws behind each mean; n_tests: comparisons made; alpha: family error rate.

    Returns:
        the tolerance (float or array, like ``sample_std``).
    """
    n_samples = _int("n_samples", n_samples, 2)
    n_tests = _int("n_tests", n_tests, 1)
    if not 0 < alpha < 1:
        raise EdgewiseError(f"mc_tolerance: alpha must lie in (0, 1), got {alpha}")
    z = normal_quantile(1 - alpha / (2 * n_tests))
    sd = np.asarray(sample_std, dtype=float) if not isinstance(sample_std, (int, float)) else float(sample_std)
    if np.any(np.asarray(sd) < 0):
        raise EdgewiseError("mc_tolerance: sample_std must be non-negative")
    return z * sd / math.sqrt(n_samples)

"""Closed forms and laws for the path counts of plain convolution stacks, tensor-free.

Setting: ``L`` identical 1-D convolutions of one channel with a ``k``-tap kernel
(dilation ``d``), no activation, counted with ``to="all"`` (paths from an input
position to *any* output unit). One layer is an integer matrix ``A[o, i]`` =
number of taps of output ``o`` that read input ``i``; the count map is
``(Aᵀ)ᴸ 1``. With odd ``k = 2r+1`` and stride 1 that is the number of length-``L``
walks with steps in ``{−r..r}`` started at the input position, each step kept
or resolved by the padding rule. Everything here is pure arithmetic (``math``,
``fractions``, ``numpy``) and each closed form is checked against the exact
engine (:func:`edgewise.pathways`) in ``tests/test_theory.py``.

Ratios are centre/edge in 1-D: the centre is ``(n−1)//2``, the edge value is the
mean of the two ends (as :func:`edgewise.maps.position_summary` reports them).
In 2-D a stack of square kernels counts the outer product of the 1-D maps, so
centre/corner is the square of the 1-D ratio and centre/mid-edge equals it.

Results in one line (see ``docs/theory.md``):

* valid: centre/edge = ``k**L`` (exponential) while ``n`` is wide enough;
* same (zeros): ``≈ √(πL)/C_k`` (Sparre Andersen) while ``σ²L ≪ n²``, then it
  saturates at a ratio of the Perron eigenvector (``≈ (n+1)/π`` for ``k=3``);
* reflect: bounded, ``→ 2`` (4 at a 2-D corner);
* any padding that keeps the width (even kernels, replicate, symmetric, ...): where one layer's matrix is
  primitive, the ratio tends to a ratio of its Perron vector's entries (:func:`ratio_limit`);
* full, circular, symmetric (``(k−1)d`` even), replicate (only ``k=3``, or ``k=2, d=2``):
  uniform, ``k**L`` everywhere; wider replicate kernels over-count the edges.
"""

from ._stack import PADDINGS, transfer_matrix, layer_adjoint, counts, center_edge_ratio
from .valid import multinomial_row, valid_counts, valid_ratio, valid_min_width
from .survival import survival_constant, boundary_layer
from .same import same_counts, same_ratio, half_line_survival, same_ratio_small_depth, same_law_domain
from .saturation import same_ratio_limit, same_ratio_limit_asymptotic, same_mixing_depth
from .reflect import reflect_counts, reflect_ratio, reflect_stationary, reflect_ratio_limit, reflect_mixing_depth
from .uniform import uniform_counts, is_uniform
from .limit import RatioLimit, ratio_limit
from .laws import ratio, DepthLaw, depth_law, Fit, Law, fit_law
from .erf import erf_variance, erf_std, theoretical_rf, erf_fraction, map_moments, gaussian_distance
from .stride import stride_pattern, stride_modulation, block_upsample
from .montecarlo import expected_squared_gradient, normal_quantile, mc_tolerance

__all__ = [
    "PADDINGS", "transfer_matrix", "layer_adjoint", "counts", "center_edge_ratio",
    "multinomial_row", "valid_counts", "valid_ratio", "valid_min_width",
    "same_counts", "same_ratio", "half_line_survival", "survival_constant", "same_ratio_small_depth",
    "same_ratio_limit", "boundary_layer", "same_ratio_limit_asymptotic", "same_mixing_depth", "same_law_domain",
    "reflect_counts", "reflect_ratio", "reflect_stationary", "reflect_ratio_limit", "reflect_mixing_depth",
    "uniform_counts", "is_uniform", "RatioLimit", "ratio_limit",
    "ratio", "DepthLaw", "depth_law",
    "erf_variance", "erf_std", "theoretical_rf", "erf_fraction", "map_moments", "gaussian_distance",
    "stride_pattern", "stride_modulation", "block_upsample",
    "Fit", "Law", "fit_law",
    "expected_squared_gradient", "normal_quantile", "mc_tolerance",
]

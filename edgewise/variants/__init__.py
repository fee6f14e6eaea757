"""Convolution variants from Goodfellow et al., *Deep Learning*, ch. 9, each a function and a module.

* :func:`correlate` / :func:`convolve`: cross-correlation vs true (kernel-flipped) convolution,
  valid/same/full, strided (stride = unit stride + downsampling, :func:`strided_as_downsampled`);
* :func:`locally_connected` / :func:`tiled_conv` and their layers: unshared and tiled weights;
* :func:`separable_conv`, :func:`depthwise_separable_conv`, :func:`fft_convolve` and the cost
  model :func:`conv_cost` / :func:`fft_crossover`;
* :func:`translation_equivariance` / :func:`pooling_invariance`: measured properties of any layer.

Every function is checked against a naive loop in :mod:`edgewise.testing.naive_conv`.

Example:
    >>> import numpy as np
    >>> from edgewise.variants import convolve, correlate
    >>> x, k = np.array([1., 2., 3.]), np.array([0., 1.])
    >>> convolve(x, k, "full"), correlate(x, k, "full")
    (array([0., 1., 2., 3.]), array([1., 2., 3., 0.]))
"""

from ._common import PADDINGS, output_size
from .correlation import convolve, correlate, flip, strided_as_downsampled
from .equivariance import Equivariance, translation_equivariance
from .fft import conv_cost, fast_length, fft_convolve, fft_crossover
from .layers import (DepthwiseSeparableConv1d, DepthwiseSeparableConv2d, LocallyConnected1d, LocallyConnected2d,
                     TiledConv1d, TiledConv2d)
from .pooling import pooling_invariance
from .separable import depthwise_separable_conv, factor_kernel, separable_conv
from .unshared import locally_connected, tiled_conv

__all__ = [
    "convolve", "correlate", "flip", "strided_as_downsampled", "output_size", "PADDINGS",
    "locally_connected", "tiled_conv", "LocallyConnected1d", "LocallyConnected2d", "TiledConv1d", "TiledConv2d",
    "separable_conv", "factor_kernel", "depthwise_separable_conv", "DepthwiseSeparableConv1d",
    "DepthwiseSeparableConv2d", "fft_convolve", "fast_length", "conv_cost", "fft_crossover",
    "translation_equivariance", "pooling_invariance", "Equivariance",
]

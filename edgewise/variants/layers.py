"""``nn.Module`` versions of the variants: they store their arguments and call the functions.

Weights are initialised like PyTorch's convolutions, uniform in ``±1/√fan_in`` with
``fan_in = C_in·|kernel|`` (bias too), drawn from a ``torch.Generator`` seeded with ``seed``, so
global random state is neither read nor changed.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import EdgewiseError
from ._common import check_padding, fmt, output_size, per_axis
from .separable import depthwise_separable_conv
from .unshared import locally_connected, tiled_conv

__all__ = ["LocallyConnected1d", "LocallyConnected2d", "TiledConv1d", "TiledConv2d",
           "DepthwiseSeparableConv1d", "DepthwiseSeparableConv2d"]


class _Variant(nn.Module):
    _d = 2

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, seed):
        where = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise EdgewiseError(f"{where}: channels must be at least 1, got in={in_channels}, out={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = per_axis(kernel_size, self._d, "kernel_size", where)
        self.stride = per_axis(stride, self._d, "stride", where)
        self.padding = check_padding(padding, where)
        self.seed = int(seed)
        return where, torch.Generator().manual_seed(self.seed)

    @staticmethod
    def _uniform(gen, shape, fan_in, dtype, device) -> nn.Parameter:
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        return nn.Parameter(w.to(dtype=dtype or torch.get_default_dtype(), device=device))

    def num_parameters(self) -> int:
        """Number of weights and biases."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding!r}{self._extra()}, bias={self.bias is not None}, seed={self.seed}, "
                f"params={self.num_parameters()}")

    def _extra(self) -> str:
        return ""


class _LocallyConnected(_Variant):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, input_size, stride=1,
                 padding: str = "valid", bias: bool = True, seed: int = 0, dtype=None, device=None):
        super().__init__()
        where, gen = self._setup(in_channels, out_channels, kernel_size, stride, padding, seed)
        self.input_size = per_axis(input_size, self._d, "input_size", where)
        if padding == "valid" and any(k > n for k, n in zip(self.kernel_size, self.input_size)):
            raise EdgewiseError(f"{where}: the {fmt(self.kernel_size)} kernel is larger than the "
                                f"{fmt(self.input_size)} input in 'valid' mode; use padding='same' or 'full', or a "
                                "smaller kernel")
        self.output_size = tuple(output_size(n, k, self.padding, s)
                                 for n, k, s in zip(self.input_size, self.kernel_size, self.stride))
        fan_in = self.in_channels * math.prod(self.kernel_size)
        self.weight = self._uniform(gen, (out_channels, *self.output_size, in_channels, *self.kernel_size),
                                    fan_in, dtype, device)
        self.bias = self._uniform(gen, (out_channels, *self.output_size), fan_in, dtype, device) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-self._d:]) != self.input_size:
            raise EdgewiseError(f"{type(self).__name__}: built for {fmt(self.input_size)} inputs (one kernel per "
                                f"output position), got x of shape {tuple(x.shape)}; build a layer with input_size="
                                f"{tuple(x.shape[-self._d:])}")
        return locally_connected(x, self.weight, self.bias, self.stride, self.padding)

    def _extra(self) -> str:
        return f", input_size={self.input_size}, output_size={self.output_size}"


class LocallyConnected1d(_LocallyConnected):
    """Locally connected 1-D layer (unshared convolution, eq. 9.9): one kernel per output position.

    Args:
        in_channels, out_channels: C_in, C_out.
        kernel_size: k.
        input_size: L, fixed because every output position owns its weights.
        stride, padding: as :func:`~edgewise.variants.locally_connected`.
        bias: a bias per output unit, ``(C_out, L_out)``.
        seed: seed of the initial weights; dtype, device: of the parameters.

    Parameters: ``C_out·L_out·C_in·k`` weights ``+ C_out·L_out`` biases (a Conv1d has ``C_out·C_in·k + C_out``).

    Example:
        >>> layer = LocallyConnected1d(2, 3, 5, input_size=16)
        >>> layer(torch.zeros(4, 2, 16)).shape, layer.num_parameters()
        (torch.Size([4, 3, 12]), 396)
    """

    _d = 1


class LocallyConnected2d(_LocallyConnected):
    """Locally connected 2-D layer (unshared convolution, eq. 9.9): one kernel per output position.

    Args as :class:`LocallyConnected1d` with ``kernel_size``, ``input_size``, ``stride`` ints or ``(row, col)``.
    Parameters: ``C_out·H_out·W_out·C_in·kh·kw + C_out·H_out·W_out``.

    Example:
        >>> layer = LocallyConnected2d(1, 2, 3, input_size=(6, 8))
        >>> layer(torch.zeros(1, 1, 6, 8)).shape, layer.num_parameters()
        (torch.Size([1, 2, 4, 6]), 480)
    """

    _d = 2


class _Tiled(_Variant):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, tile=2, stride=1,
                 padding: str = "valid", bias: bool = True, seed: int = 0, dtype=None, device=None):
        super().__init__()
        where, gen = self._setup(in_channels, out_channels, kernel_size, stride, padding, seed)
        self.tile = per_axis(tile, self._d, "tile", where)
        fan_in = self.in_channels * math.prod(self.kernel_size)
        shape = (out_channels, in_channels, *self.kernel_size, *self.tile)
        self.weight = self._uniform(gen, shape, fan_in, dtype, device)
        self.bias = self._uniform(gen, (out_channels, *self.tile), fan_in, dtype, device) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tiled_conv(x, self.weight, None, self.bias, self.stride, self.padding)

    def _extra(self) -> str:
        return f", tile={self.tile}"


class TiledConv1d(_Tiled):
    """Tiled 1-D convolution (eq. 9.10): ``t`` kernels used cyclically along the output.

    Args:
        in_channels, out_channels: C_in, C_out.
        kernel_size: k.
        tile: t ≥ 1 (1: an ordinary convolution; the output length: locally connected).
        stride, padding: as :func:`~edgewise.variants.tiled_conv`.
        bias: a bias per output channel and tile position, ``(C_out, t)``.
        seed: seed of the initial weights; dtype, device: of the parameters.

    Parameters: ``C_out·C_in·k·t + C_out·t``, whatever the input length.

    Example:
        >>> layer = TiledConv1d(2, 3, 5, tile=2)
        >>> layer(torch.zeros(4, 2, 16)).shape, layer.num_parameters()
        (torch.Size([4, 3, 12]), 66)
    """

    _d = 1


class TiledConv2d(_Tiled):
    """Tiled 2-D convolution (eq. 9.10): ``t_row × t_col`` kernels used cyclically over output positions.

    Args as :class:`TiledConv1d` with ``kernel_size``, ``tile``, ``stride`` ints or ``(row, col)``.
    Parameters: ``C_out·C_in·kh·kw·t_row·t_col + C_out·t_row·t_col``.

    Example:
        >>> layer = TiledConv2d(1, 2, 3, tile=2)
        >>> layer(torch.zeros(1, 1, 6, 8)).shape, layer.num_parameters()
        (torch.Size([1, 2, 4, 6]), 80)
    """

    _d = 2


class _DepthwiseSeparable(_Variant):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding: str = "same",
                 bias: bool = True, seed: int = 0, dtype=None, device=None):
        super().__init__()
        _, gen = self._setup(in_channels, out_channels, kernel_size, stride, padding, seed)
        fan_in = math.prod(self.kernel_size)
        self.depthwise = self._uniform(gen, (in_channels, *self.kernel_size), fan_in, dtype, device)
        self.pointwise = self._uniform(gen, (out_channels, in_channels), in_channels, dtype, device)
        self.bias = self._uniform(gen, (out_channels,), in_channels, dtype, device) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_separable_conv(x, self.depthwise, self.pointwise, self.bias, self.padding, self.stride)


class DepthwiseSeparableConv1d(_DepthwiseSeparable):
    """Depthwise-separable 1-D convolution: a k-tap kernel per input channel, then a 1×1 channel mix.

    Args:
        in_channels, out_channels: C_in, C_out.
        kernel_size: k.
        stride, padding: as :func:`~edgewise.variants.depthwise_separable_conv` (default ``"same"``).
        bias: a bias per output channel.
        seed: seed of the initial weights; dtype, device: of the parameters.

    Parameters: ``C_in·k + C_out·C_in + C_out`` (a Conv1d has ``C_out·C_in·k + C_out``).

    Example:
        >>> layer = DepthwiseSeparableConv1d(4, 8, 5)
        >>> layer(torch.zeros(2, 4, 16)).shape, layer.num_parameters()
        (torch.Size([2, 8, 16]), 60)
    """

    _d = 1


class DepthwiseSeparableConv2d(_DepthwiseSeparable):
    """Depthwise-separable 2-D convolution: a kh×kw kernel per input channel, then a 1×1 channel mix.

    Args as :class:`DepthwiseSeparableConv1d` with ``kernel_size`` and ``stride`` ints or ``(row, col)``.
    Parameters: ``C_in·kh·kw + C_out·C_in + C_out``; multiply-adds ``1/C_out + 1/(kh·kw)`` of a Conv2d's.

    Example:
        >>> layer = DepthwiseSeparableConv2d(4, 8, 3)
        >>> layer(torch.zeros(2, 4, 10, 10)).shape, layer.num_parameters()
        (torch.Size([2, 8, 10, 10]), 76)
    """

    _d = 2

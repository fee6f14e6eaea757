"""Drop-in convolution layers for the remedies; each subclasses nn.Conv1d / nn.Conv2d.

They keep nn.Conv's constructor signature and its ``weight`` / ``bias`` state_dict
keys (a plain conv's state loads into any of them), and extend it:

* ``padding`` also takes ``"full"`` and per-axis ``(before, after)`` pairs, and
  ``"same"`` works with any stride;
* ``padding_mode`` also takes ``"symmetric"`` (half-sample mirror) and ``"partial"``.

After construction ``pads`` holds the per-axis ``(before, after)`` amounts, and
``padding`` is the int tuple nn.Conv would hold (or ``"same"`` when the
amounts are asymmetric, PyTorch's convention: the odd extra tap after), so code
that reads ``padding`` / ``padding_mode`` of an nn.Conv still reads the truth.
Each ``forward`` is one call of the matching function in
:mod:`edgewise.remedies.functional`, which torch.fx records as a single node.
"""

from __future__ import annotations

import math

import torch
import torch.fx
import torch.nn as nn

from ..errors import EdgewiseError
from ..nets import PADDINGS
from .functional import MODES, conv_pads, coord_conv, padded_conv

__all__ = ["PaddedConv1d", "PaddedConv2d", "PartialConv1d", "PartialConv2d", "CoordConv1d", "CoordConv2d",
           "RemedyConv"]

# symbolic tracing records these calls as nodes instead of tracing into them (they need concrete sizes)
torch.fx.wrap("padded_conv")
torch.fx.wrap("coord_conv")

#: named schemes for ``padding_scheme=``: name → (mode, amount)
SCHEMES = {**PADDINGS, "partial": ("partial", "same")}


class RemedyConv:
    """Mixin of every remedy layer: padding of any amount and mode."""

    def _init_padding(self, padding, padding_mode, padding_scheme):
        if padding_scheme is not None:
            if padding_scheme not in SCHEMES:
                raise EdgewiseError(f"{type(self).__name__}: unknown padding_scheme {padding_scheme!r}; "
                                    f"choose one of {', '.join(SCHEMES)}")
            if padding != 0 or padding_mode not in ("zeros", SCHEMES[padding_scheme][0]):
                raise EdgewiseError(f"{type(self).__name__}: give either padding_scheme={padding_scheme!r} or "
                                    "padding/padding_mode, not both")
            padding_mode, amount = SCHEMES[padding_scheme]
            padding = "valid" if amount == "none" else amount
        self.padding_scheme = padding_scheme
        self.set_padding(conv_pads(padding, self.kernel_size, self.dilation), padding_mode)

    def set_padding(self, pads, padding_mode: str) -> None:
        """Set the per-axis ``(before, after)`` amounts and the mode (``padding`` follows)."""
        if padding_mode == "constant":
            padding_mode = "zeros"
        if padding_mode not in MODES:
            raise EdgewiseError(f"{type(self).__name__}: unknown padding_mode {padding_mode!r}; "
                                f"choose one of {', '.join(MODES)}")
        self.pads = tuple(tuple(int(q) for q in p) for p in pads)
        self.padding_mode = padding_mode
        same = conv_pads("same", self.kernel_size, self.dilation)
        self.padding = tuple(lo for lo, _ in self.pads) if all(lo == hi for lo, hi in self.pads) else (
            "same" if self.pads == same else self.pads)
        self._reversed_padding_repeated_twice = [q for p in reversed(self.pads) for q in p]

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", pads={self.pads}" if isinstance(self.padding, str) else "")

    def _args(self):
        return self.stride, self.pads, self.dilation, self.groups, self.padding_mode

    def _windows(self) -> tuple:
        """One :class:`edgewise._axis.Window` per axis; partial padding connects like zero padding."""
        from .._axis import Window

        mode = "zeros" if self.padding_mode == "partial" else self.padding_mode
        return tuple(Window(k, s, d, pads, mode)
                     for k, s, d, pads in zip(self.kernel_size, self.stride, self.dilation, self.pads))

    def edgewise_op(self, ndim: int):
        """Connectivity for edgewise's tracer: a convolution with these windows (coordinate channels
        are constants, partial re-weighting changes weights, not connections)."""
        return "conv", self._windows()


class _Padded(RemedyConv):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, padding_scheme=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias, "zeros",
                         device, dtype)
        self._init_padding(padding, padding_mode, padding_scheme)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return padded_conv(x, self.weight, self.bias, *self._args())


class PaddedConv1d(_Padded, nn.Conv1d):
    """nn.Conv1d with any padding amount (``valid``/``same``/``full``/ints/pairs) and mode
    (``zeros``, ``reflect``, ``replicate``, ``circular``, ``symmetric``, ``partial``).

    ``padding_scheme`` names one of :data:`edgewise.nets.PADDINGS` (or ``partial``) and sets both."""


class PaddedConv2d(_Padded, nn.Conv2d):
    """nn.Conv2d with any padding amount and mode; see :class:`PaddedConv1d`.

    Example:
        >>> conv = PaddedConv2d(1, 4, 3, padding_scheme="symmetric")
        >>> conv.padding, conv.padding_mode
        ((1, 1), 'symmetric')
    """


class _Partial(_Padded):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="partial", device=None, dtype=None):
        if padding_mode not in ("zeros", "partial"):
            raise EdgewiseError(f"{type(self).__name__}: padding_mode must be 'partial' (or 'zeros', read as "
                                f"'partial'), got {padding_mode!r}; use PaddedConv for other modes")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         "partial", device, dtype)


class PartialConv1d(_Partial, nn.Conv1d):
    """Partial-convolution padding (Liu et al. 2018) in 1-D; see :class:`PartialConv2d`."""


class PartialConv2d(_Partial, nn.Conv2d):
    """Partial-convolution padding (Liu et al. 2018, "Partial convolution based padding").

    Zero padding, then each output's weighted sum is scaled by (taps in its window) / (taps inside the
    image), the bias added after: ``W·(X⊙M) · Σ1/ΣM + b``. Inside the image it is a plain convolution;
    at the border the missing taps are made up for instead of read as zeros. The ratio map is computed
    once per input size, device and dtype. ``padding`` as nn.Conv2d (``"same"`` works with any stride).
    """


class _Extra(_Padded):
    """Shared by CoordConv and GlobalConv: an extra parameter that loading a plain conv's state sets to 0."""

    _extra = ()

    def extra_fan_in(self) -> int:
        """Inputs per output unit, the new connections included (sets the initial range)."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._reset_extra()

    def _reset_extra(self) -> None:
        for k in self._extra:  # absent while nn.Conv's constructor runs; covered by re-initialisation later
            t = getattr(self, k, None)
            if t is not None:
                bound = 1 / math.sqrt(self.extra_fan_in())  # nn.Conv's kaiming_uniform(a=√5) range
                with torch.no_grad():
                    t.uniform_(-bound, bound)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        absent = [k for k in self._extra if prefix + k not in state_dict]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        for k in absent:  # a plain conv's state: the layer then computes exactly that conv
            if prefix + k in missing_keys:
                missing_keys.remove(prefix + k)
            with torch.no_grad():
                getattr(self, k).zero_()


class _Coord(_Extra):
    _extra = ("coord_weight",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, with_r=False, padding_scheme=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, padding_scheme=padding_scheme)
        self.with_r = bool(with_r)
        self.coord_channels = len(self.kernel_size) + self.with_r
        self.coord_weight = nn.Parameter(torch.empty(out_channels, self.coord_channels, *self.kernel_size,
                                                     device=device, dtype=dtype))
        self._reset_extra()

    def extra_fan_in(self) -> int:
        return (self.in_channels // self.groups + self.coord_channels) * math.prod(self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, p, d, g, mode = self._args()
        return coord_conv(x, self.weight, self.coord_weight, self.bias, s, p, d, g, mode, self.with_r)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", with_r={self.with_r}"


class CoordConv1d(_Coord, nn.Conv1d):
    """CoordConv in 1-D: one coordinate channel (position in [−1, 1]), plus ``|x|`` if ``with_r``."""


class CoordConv2d(_Coord, nn.Conv2d):
    """CoordConv (Liu et al. 2018, "An intriguing failing of CNNs and the CoordConv solution").

    The layer convolves ``cat(x, row, col[, r])``: coordinate channels in [−1, 1] (row = y first, as
    everywhere in edgewise; ``r = sqrt(row² + col²)`` with ``with_r``), padded like the input. Their
    weights are a separate parameter ``coord_weight`` (``out × 2|3 × kh × kw``) beside the untouched
    ``weight`` (``out × in/groups × kh × kw``), so a plain Conv2d's state loads (coord_weight → 0, and
    the layer computes that conv) and grouped / depthwise convolutions work: the coordinate channels
    feed every output channel. With groups=1 this is exactly a conv with ``in + 2`` input channels.
    """

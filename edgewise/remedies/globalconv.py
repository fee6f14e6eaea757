"""Random global connections as a drop-in convolution layer (the ``global`` remedy)."""

from __future__ import annotations

import math

import torch
import torch.fx
import torch.nn as nn

from ..errors import EdgewiseError
from .functional import global_conv, global_indices
from .layers import _Extra

__all__ = ["GlobalConv1d", "GlobalConv2d"]

torch.fx.wrap("global_conv")  # one fx node per layer: the call needs concrete sizes


class _Global(_Extra):
    _extra = ("global_weight",)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None, *, n_global=8, input_size=None,
                 seed=0, padding_scheme=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype, padding_scheme=padding_scheme)
        if n_global < 1:
            raise EdgewiseError(f"{type(self).__name__}: n_global must be at least 1, got {n_global}")
        self.n_global, self.seed = int(n_global), int(seed)
        self.global_weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, self.n_global,
                                                      device=device, dtype=dtype))
        self._reset_extra()
        nd = len(self.kernel_size)
        self.register_buffer("global_index", torch.zeros((0,) * nd + (self.n_global,), dtype=torch.long,
                                                         device=device))
        self.register_buffer("global_input_size", torch.zeros(nd, dtype=torch.long, device=device))
        self._drawn_for = None
        if input_size is not None:
            self.draw_global(input_size)

    def extra_fan_in(self) -> int:
        return self.in_channels // self.groups * (math.prod(self.kernel_size) + self.n_global)

    def output_size(self, input_size) -> tuple[int, ...]:
        return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 for n, (lo, hi), k, s, d in
                     zip(input_size, self.pads, self.kernel_size, self.stride, self.dilation))

    def draw_global(self, input_size) -> None:
        """(Re)draw the random connections for ``input_size`` (spatial) from ``seed``; deterministic."""
        input_size = tuple(int(n) for n in input_size)
        if len(input_size) != len(self.kernel_size):
            raise EdgewiseError(f"{type(self).__name__}: input_size {input_size} must have "
                                f"{len(self.kernel_size)} spatial sizes")
        out = self.output_size(input_size)
        if min(out) < 1:
            raise EdgewiseError(f"{type(self).__name__}: a {'×'.join(map(str, input_size))} input gives no output")
        idx = global_indices(input_size, out, self.n_global, torch.Generator().manual_seed(self.seed))
        device = self.global_index.device
        self.global_index = idx.to(device)
        self.global_input_size = torch.tensor(input_size, dtype=torch.long, device=device)
        self._drawn_for = input_size

    def edgewise_op(self, ndim: int):
        """Connectivity for edgewise's tracer: the local windows plus the random global connections, on
        the flattened grid (:class:`edgewise._axis.Flat`)."""
        from .._axis import Flat

        if self._drawn_for is None:
            raise EdgewiseError(f"{type(self).__name__}{self._where()}: global connections are not drawn yet; "
                                "run the model once or apply the remedy with input_shape=")
        out = self.output_size(self._drawn_for)
        extra = tuple(tuple(int(i) for i in row) for row in self.global_index.reshape(-1, self.n_global).tolist())
        return "conv", (Flat(self._windows(), extra, tuple(self._drawn_for), tuple(out)),)

    def set_padding(self, pads, padding_mode: str) -> None:
        super().set_padding(pads, padding_mode)
        if getattr(self, "_drawn_for", None) is not None:  # output size may change: redraw
            self.draw_global(self._drawn_for)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.fx.Proxy):
            size = tuple(x.shape[2:])
            if self._drawn_for is None:
                self.draw_global(size)
            elif size != self._drawn_for:
                raise EdgewiseError(
                    f"{type(self).__name__}{self._where()}: its random global connections were drawn for a "
                    f"{'×'.join(map(str, self._drawn_for))} input, got {'×'.join(map(str, size))}; call "
                    f".draw_global({size}) or apply the remedy with input_shape= for this size")
        elif self._drawn_for is None:
            raise EdgewiseError(f"{type(self).__name__}{self._where()}: global connections are drawn at the first "
                                "forward; run the model once or apply the remedy with input_shape= before tracing")
        s, p, d, g, mode = self._args()
        return global_conv(x, self.weight, self.global_weight, self.global_index, self.bias, s, p, d, g, mode)

    def _where(self) -> str:
        name = getattr(self, "remedy_name", "")
        return f" {name!r}" if name else ""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for k in ("global_index", "global_input_size"):  # loaded sizes replace the (possibly undrawn) buffers
            if prefix + k in state_dict:
                setattr(self, k, torch.empty_like(state_dict[prefix + k], device=getattr(self, k).device))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        for k in ("global_index", "global_input_size"):
            if prefix + k in missing_keys:
                missing_keys.remove(prefix + k)  # a plain conv's state: keep the layer's own draw
        if self.global_index.numel():
            self._drawn_for = tuple(int(n) for n in self.global_input_size.tolist())

    def extra_repr(self) -> str:
        return super().extra_repr() + f", n_global={self.n_global}, seed={self.seed}"


class GlobalConv1d(_Global, nn.Conv1d):
    """Random global connections in 1-D; see :class:`GlobalConv2d`."""


class GlobalConv2d(_Global, nn.Conv2d):
    """A convolution plus fixed random global connections (after Krizhevsky 2010).

    Why: a unit of a convolution sees only its local window, units near the border see fewer input
    positions, and in a deep stack central inputs reach the output through many more paths than edge
    ones. Krizhevsky ("Convolutional Deep Belief Networks on CIFAR-10", 2010) combined locally connected
    convolutional units with globally connected units so that the edge pixels are modelled too; this is
    the sparse, convolution-shaped version the answers to the original question recommend: a few
    long-range connections give every unit a path from anywhere in the image, which flattens the
    pathway gap.

    Definition: for each *output position* ``p`` (one spatial unit, all its channels), ``n_global``
    distinct input positions ``global_index[p, :]`` (flattened ``row·W_in + col`` of the unpadded
    input) are drawn uniformly at random, once, from ``torch.Generator().manual_seed(seed)`` (a map of
    fewer than ``n_global`` positions is read whole, the remaining slots repeating some). They are
    shared by all output channels at ``p`` and read all input channels of the group:
    ``out[b, o, p] = conv(x)[b, o, p] + Σ_j Σ_c global_weight[o, c, j] · x[b, c, global_index[p, j]] + bias[o]``.
    ``global_weight`` (``out × in/groups × n_global``) is learnable and shared across positions, as a
    convolution's weight is (slot ``j`` of every unit); the indices are a buffer (saved in the
    state_dict with ``global_input_size``). They are drawn for one input size: at construction with
    ``input_size=(H, W)``, or at the first forward; another size raises (``draw_global`` redraws).
    """

"""Remedies for the border effect: padding modes, partial and coordinate convolutions, global connections.

Every remedy is a function (:mod:`edgewise.remedies.functional`), a drop-in layer
that subclasses the nn.Conv1d / nn.Conv2d it replaces (same constructor, same
``weight``/``bias`` keys), and a registry entry that :func:`apply` uses to rewrite
a whole model without touching the original. The padding modes that copy values
(circular, reflect, ...) also make every max/average pool that reads past its input
read that mode there (:mod:`edgewise.remedies.pools`).

Example:
    >>> from edgewise import nets, remedies
    >>> net = remedies.apply(nets.from_spec("4*conv3", (1, 32, 32)), "partial")
    >>> [c["new"] for c in remedies.changes(net)]
    ['PartialConv2d', 'PartialConv2d', 'PartialConv2d', 'PartialConv2d']
"""

from .compare import Comparison, compare, multiply_adds
from .functional import (coord_channels, coord_conv, global_conv, global_indices, pad, padded_conv, partial_conv,
                         partial_ratio)
from .globalconv import GlobalConv1d, GlobalConv2d
from .layers import CoordConv1d, CoordConv2d, PaddedConv1d, PaddedConv2d, PartialConv1d, PartialConv2d, RemedyConv
from .pools import PaddedAvgPool1d, PaddedAvgPool2d, PaddedMaxPool1d, PaddedMaxPool2d, padded_pool
from .registry import COMMON_OPTIONS, REMEDIES, Remedy, get, names
from .rewrite import apply, changes

__all__ = ["apply", "changes", "compare", "Comparison", "multiply_adds", "REMEDIES", "Remedy", "get", "names", "COMMON_OPTIONS",
           "PaddedConv1d", "PaddedConv2d", "PartialConv1d", "PartialConv2d", "CoordConv1d", "CoordConv2d",
           "GlobalConv1d", "GlobalConv2d", "RemedyConv",
           "PaddedMaxPool1d", "PaddedMaxPool2d", "PaddedAvgPool1d", "PaddedAvgPool2d", "padded_pool",
           "pad", "padded_conv", "partial_conv", "partial_ratio", "coord_channels", "coord_conv", "global_indices",
           "global_conv"]

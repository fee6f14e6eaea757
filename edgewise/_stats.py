"""Normalisation statistics as connections (``norm_stats="count"``).

A normalisation shifts and divides each unit u by statistics (mean, variance, RMS, a norm) computed over a
set S(u) of units: LayerNorm and RMSNorm over their last axes, GroupNorm over a group of channels at every
position, InstanceNorm (and BatchNorm without running statistics) over every position of a channel (of the
one sample analysed), ``F.normalize`` over one axis. Counted, the statistics are one connection from every member of S(u) to u,
whatever and however many statistics are taken (mean and variance together count once), beside u's own
direct path:

    paths(y_u) = paths(x_u) + Σ_{v ∈ S(u)} paths(x_v).

In the Graph: statistics over the channels of one position are a Linear of ones over that axis (a 1×1
convolution) added to the input; statistics over positions are a global pool, then a 1×1 convolution within
the channel groups, broadcast-added to the input. BatchNorm with running statistics (inference) divides by
constants: nothing to count. With ``norm_stats="ignore"`` (the default) every normalisation is a per-unit map.
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ._axis import Adaptive, Window
from .errors import EdgewiseError

__all__ = ["NORM_STATS", "check_norm_stats", "count_statistics", "describe"]

NORM_STATS = ("ignore", "count")


def check_norm_stats(value: str) -> str:
    if value not in NORM_STATS:
        raise EdgewiseError(f"norm_stats={value!r}: expected 'ignore' (normalisation statistics are not connections) "
                            "or 'count' (every unit a statistic is computed over connects to every unit it divides)")
    return value


def describe(graph) -> str:
    """What a result says about normalisation statistics: which layers have any, and whether they were counted."""
    layers = [name for name, _ in graph.norm_layers]
    if not layers:
        return "no normalisation with statistics computed from the input"
    ops = Counter(op for _, op in graph.norm_layers)
    what = ", ".join(f"{op} ×{k}" if k > 1 else op for op, k in ops.most_common())
    if graph.norm_stats == "count":
        return f"the statistics of {len(layers)} normalisation layer{'s' * (len(layers) > 1)} ({what}) counted " \
               "as connections (norm_stats='count')"
    return f"the statistics of {len(layers)} normalisation layer{'s' * (len(layers) > 1)} ({what}) not counted: " \
           "per-unit maps (norm_stats='ignore'; 'count' makes them connections)"


def _axes_and_groups(fx: torch.fx.Node, module, ndim: int, value) -> tuple[tuple[int, ...], int] | None:
    """(axes the statistics reduce, counted with the batch axis; channel groups) of a normalisation, or None
    when ``fx`` is not one or its statistics are constants."""
    spatial = tuple(range(2, ndim))

    def arg(i, key, default=None):
        return value(fx.args[i]) if len(fx.args) > i else value(fx.kwargs.get(key, default))

    if module is not None:
        if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            return tuple(range(ndim - len(module.normalized_shape), ndim)), 1
        if isinstance(module, nn.GroupNorm):
            return (1, *spatial), module.num_groups
        if isinstance(module, (nn.modules.instancenorm._InstanceNorm, nn.modules.batchnorm._BatchNorm)):
            # running statistics are constants; over one sample's positions only (none: nothing to count)
            return (spatial, 1) if module.running_mean is None and spatial else None
        return None
    target = fx.target
    if target in (F.layer_norm, F.rms_norm):
        shape = arg(1, "normalized_shape")
        k = 1 if isinstance(shape, int) else len(shape)
        return tuple(range(ndim - k, ndim)), 1
    if target is F.group_norm:
        return (1, *spatial), int(arg(1, "num_groups"))
    if target is F.instance_norm:
        return (spatial, 1) if arg(5, "use_input_stats", True) and spatial else None
    if target is F.batch_norm:
        return (spatial, 1) if arg(5, "training", False) and spatial else None
    if target is F.normalize:
        return (int(arg(2, "dim", 1)) % ndim,), 1
    return None


_NORM_MODULES = (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
                 nn.modules.batchnorm._BatchNorm)
_NORM_FUNCTIONS = {F.layer_norm, F.rms_norm, F.group_norm, F.instance_norm, F.batch_norm, F.normalize}


def count_statistics(layout, fx: torch.fx.Node, name: str) -> bool:
    """Note a normalisation with input-dependent statistics in ``layout.norm_layers`` and, when
    ``layout.count_stats``, map it with its statistics as connections (see the module docstring); False:
    the tracer maps ``fx`` its usual way."""
    module = layout.modules.get(fx.target) if fx.op == "call_module" else None
    if not (isinstance(module, _NORM_MODULES) if module is not None else fx.target in _NORM_FUNCTIONS):
        return False
    x = fx.args[0] if fx.args else fx.kwargs.get("input")
    if not isinstance(x, torch.fx.Node) or not layout._live(x) or not layout._meta_shape(x):
        return False
    found = _axes_and_groups(fx, module, len(layout._meta_shape(x)), layout._value)
    if found is None:
        return False
    axes, groups = found
    op = type(module).__name__ if module is not None else fx.target.__name__  # (one of _NORM_FUNCTIONS)
    layout.norm_layers.append((name, op))
    if not layout.count_stats:
        return False
    ids = layout._ids(x)
    spatial = set(range(2, ids.ndim))
    src = layout._canonical_name(ids)
    if src is not None and set(axes) <= {1} | spatial and ((spatial and set(axes) >= spatial) or set(axes) == {1}):
        layout._set(fx, layout.ids_of(_on_node(layout, src, set(axes), groups, name, op)))
        return True
    refusal = EdgewiseError(
        f"layer {name!r} ({op}) computes statistics over axes {list(axes)} of a tensor of shape {tuple(ids.shape)} "
        f"({'channel groups ' + str(groups) + ', ' if groups > 1 else ''}batch axis first); with norm_stats='count' "
        "edgewise counts statistics over the channels of each position, or over every position of each channel or "
        "group of channels. Pass norm_stats='ignore' (--norm-stats ignore) to treat normalisations as per-unit maps")
    if tuple(axes) != (ids.ndim - 1,) or groups != 1 or ids.ndim <= 2:
        raise refusal
    try:  # over the last axis, whatever it holds: a Linear of ones over that axis
        stats = layout.project(ids, ids.shape[-1], f"{name}:stats", f"{op} statistics")
    except EdgewiseError:
        raise refusal from None
    return layout._binary(fx, name, "add", operands=[ids, stats], op=f"{op} (statistics counted)")


def _on_node(layout, src: str, axes: set, groups: int, name: str, op: str) -> str:
    """``src`` + its statistics broadcast back: a global pool if they span the positions, then a 1×1
    convolution of ones within the channel groups if they span channels."""
    nd = layout.nodes[src]
    c, spatial = nd.shape[0], tuple(nd.shape[1:])
    stats, shape = src, tuple(nd.shape)
    if spatial and len(axes - {1}) == len(spatial):
        shape = (c,) + (1,) * len(spatial)
        stats = layout._add(f"{name}:stats", "pool", (src,), shape, axes=tuple(Adaptive() for _ in spatial),
                            op=f"{op} statistics over positions")
    if 1 in axes:
        what = f"{op} statistics over {'each group of ' if groups > 1 else ''}channels"
        if spatial:
            stats = layout._add(f"{name}:stats:channels", "conv", (stats,), shape,
                                axes=tuple(Window(1, 1) for _ in spatial), groups=groups, op=what)
        elif groups == 1:
            stats = layout._add(f"{name}:stats", "linear", (stats,), shape, op=what)
        else:
            raise EdgewiseError(f"layer {name!r} ({op}): channel groups of a vector; pass norm_stats='ignore'")
    return layout._add(name, "add", (src, stats), nd.shape, op=f"{op} (statistics counted)")

"""One-position finite differences computed on each nudged position's forward cone only.

Nudging input position p changes a chain of local layers only inside p's forward cone: a box that grows by
each layer's kernel span (divided by its stride). :func:`nudge_changes` propagates every nudge's box through
the chain, computing each layer on the box and the baseline around it, and sums the selected units' change
inside the final box: exactly ``f(x + ε·u_p) − f(x)`` for ``f = Σ selected units``, at the cost of the cones
rather than of whole forwards (the sums differ from two whole-output sums only by float rounding, and are
the more accurate of the two: no large ``f(x)`` cancels).

Chains of Conv1d/Conv2d (zero padding), max/average pooling without padding, zero ``Pad`` layers and
element-wise layers are supported; any other model gets ``None`` and the caller runs whole forwards.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._pad import Pad

__all__ = ["nudge_changes", "cone_fraction"]

#: layers that act on each value (or each channel's values) alone, in eval mode: the box passes through unchanged.
#: Types are matched exactly: a subclass (a remedy's drop-in convolution) may compute something else.
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Hardswish,
                nn.Hardsigmoid, nn.Softplus, nn.Mish, nn.Identity, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)
_TRAINING_MATTERS = (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)  # ... and only in eval mode
_POOLS = {1: (nn.MaxPool1d, nn.AvgPool1d), 2: (nn.MaxPool2d, nn.AvgPool2d)}
_CONV = {1: F.conv1d, 2: F.conv2d}


def _chain(model: nn.Module, layer: str | None) -> list | None:
    """The model as a list of its leaf layers, up to and including ``layer`` (None: all); None when it is not a
    plain chain (nested ``nn.Sequential`` only) or ``layer`` is not one of its leaves."""
    if not isinstance(model, nn.Sequential):
        return None
    leaves = []
    for name, child in model.named_children():
        if isinstance(child, nn.Sequential):
            inner = _chain(child, None)
            if inner is None:
                return None
            leaves += [(f"{name}.{n}", m) for n, m in inner]
        else:
            leaves.append((name, child))
    if layer is None:
        return leaves
    names = [n for n, _ in leaves]
    return leaves[:names.index(layer) + 1] if layer in names else None


def _window(module: nn.Module, nd: int, training: bool | None = None):
    """``(kernel, stride, dilation, pad)`` per axis and the function applied to an unpadded window, for a layer
    of sliding windows; ``"elementwise"``; or None (not supported); ``training``: the mode it runs in (None: its
    own)."""
    kind = type(module)
    if kind in _ELEMENTWISE:
        training = module.training if training is None else training
        return None if training and kind in _TRAINING_MATTERS else "elementwise"
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    if kind in (nn.Conv1d, nn.Conv2d) and module.weight.dim() == nd + 2:
        if module.padding_mode != "zeros" or isinstance(module.padding, str):
            return None
        conv = _CONV[nd]

        def run(w, m=module):
            return conv(w, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)

        return tup(module.kernel_size), tup(module.stride), tup(module.dilation), \
            [(p, p) for p in tup(module.padding)], run
    if kind in _POOLS.get(nd, ()):
        if any(tup(module.padding)) or module.ceil_mode or getattr(module, "return_indices", False):
            return None
        dilation = tup(getattr(module, "dilation", 1))
        return tup(module.kernel_size), tup(module.stride or module.kernel_size), dilation, [(0, 0)] * nd, module
    if kind is Pad and module.mode == "zeros" and len(module.pad) == 2 * nd:
        pads = [(module.pad[2 * (nd - 1 - a)], module.pad[2 * (nd - 1 - a) + 1]) for a in range(nd)]
        return (1,) * nd, (1,) * nd, (1,) * nd, pads, lambda w: w
    return None


def _gather(base: torch.Tensor, idx: list[torch.Tensor]) -> torch.Tensor:
    """``base`` (C, *S) at per-nudge index rows ``idx[a]`` (N, L_a) → (N, C, *L)."""
    nd = len(idx)
    grid = tuple(i.reshape(i.shape[0], *[1] * a, i.shape[1], *[1] * (nd - 1 - a)) for a, i in enumerate(idx))
    return base[(slice(None),) + grid].movedim(0, 1)  # (C, N, *L) → (N, C, *L)


def _box_at(vals: torch.Tensor, idx: list[torch.Tensor],
            start: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each nudge's box values (N, C, *w) at the window positions ``idx`` (box starts ``start``): the values
    (clamped indices) and where the window lies inside the box (N, 1, *L)."""
    nd, n = len(idx), vals.shape[0]
    local, inside = [], None
    for a, (i, s) in enumerate(zip(idx, start)):
        loc = i - s[:, None]
        ok = (loc >= 0) & (loc < vals.shape[2 + a])
        shape = (n, *[1] * a, i.shape[1], *[1] * (nd - 1 - a))
        local.append(loc.clamp(0, vals.shape[2 + a] - 1).reshape(shape))
        inside = ok.reshape(shape) if inside is None else inside & ok.reshape(shape)
    rows = torch.arange(n, device=vals.device).reshape(n, *[1] * nd)
    got = vals[(rows, slice(None), *local)]  # advanced indices split by a slice: (N, *L, C)
    return got.movedim(-1, 1), inside.unsqueeze(1)


def _step(spec, base: torch.Tensor, vals: torch.Tensor, start: list[torch.Tensor]):
    """One sliding-window layer applied to every nudge's box: the new box values and starts."""
    kernel, stride, dilation, pads, run = spec
    padded = F.pad(base[0], [p for pair in reversed(pads) for p in pair])  # (C, *S+pads), zeros
    idx, new_start = [], []
    for a, (k, s, d, (lo, hi)) in enumerate(zip(kernel, stride, dilation, pads)):
        size = base.shape[2 + a] + lo + hi
        out = (size - d * (k - 1) - 1) // s + 1
        w = min(out, (vals.shape[2 + a] - 1 + d * (k - 1)) // s + 1)
        first = torch.div(start[a] + lo - d * (k - 1) + s - 1, s, rounding_mode="floor")  # ceil
        o = first.clamp(0, out - w)
        idx.append(o[:, None] * s + torch.arange((w - 1) * s + d * (k - 1) + 1, device=base.device))
        new_start.append(o)
    window = _gather(padded, idx)
    moved, inside = _box_at(vals, idx, [st + lo for st, (lo, _) in zip(start, pads)])
    return run(torch.where(inside, moved, window)), new_start


def _plan(model: nn.Module, nd: int, layer: str | None = None,
          training: bool | None = None) -> tuple[list | None, list | None]:
    """The chain of leaf layers (up to ``layer``) and each one's :func:`_window`, or (None, None) when ``model`` is
    not a chain of supported local layers."""
    chain = _chain(model, layer)
    specs = None if chain is None else [_window(m, nd, training) for _, m in chain]
    return (None, None) if specs is None or any(s is None for s in specs) else (chain, specs)


def cone_fraction(model: nn.Module, spatial: tuple, layer: str | None = None) -> float | None:
    """The largest fraction of a layer's positions that one nudge's forward cone covers, over the layers of
    ``model`` (up to ``layer``) on an input of ``spatial`` size: what :func:`nudge_changes` computes of each layer
    for one nudge, against a whole forward pass (an upper bound on its share of the pass), in eval mode (as the
    perturbation experiment runs it); None when ``model`` is not a chain of supported local layers."""
    chain, specs = _plan(model, len(spatial), layer, training=False)
    if chain is None:
        return None
    sizes, boxes, most = list(spatial), [1] * len(spatial), 1 / math.prod(spatial)
    for spec in specs:
        if spec == "elementwise":
            continue
        kernel, stride, dilation, pads, _ = spec
        for a, (k, s, d, (lo, hi)) in enumerate(zip(kernel, stride, dilation, pads)):  # (as _step's box widths)
            sizes[a] = (sizes[a] + lo + hi - d * (k - 1) - 1) // s + 1
            boxes[a] = min(sizes[a], (boxes[a] - 1 + d * (k - 1)) // s + 1)
        most = max(most, math.prod(b / n for b, n in zip(boxes, sizes)))
    return most


def nudge_changes(model: nn.Module, x: torch.Tensor, positions: torch.Tensor, eps: float, units,
                  layer: str | None = None) -> torch.Tensor | None:
    """``f(x + ε·u_p) − f(x)`` for each flat position p of ``positions`` (``u_p``: 1 on every channel at p;
    ``f``: the sum of the units selected by ``units(shape)``, a mask over one sample's output of that shape
    (C, *spatial)), for one sample ``x`` (1, C, *spatial); None when ``model`` (up to ``layer``) is not a chain
    of supported local layers."""
    nd = x.dim() - 2
    chain, specs = _plan(model, nd, layer)
    if chain is None:
        return None
    acts = [x]
    for (_, m), spec in zip(chain, specs):
        acts.append(m(acts[-1].clone() if spec == "elementwise" else acts[-1]))  # clone: in-place activations
    y = acts[-1]
    if y.dim() != x.dim():  # a flat output (a classifier head): every unit sees every position
        return None
    spatial = x.shape[2:]
    coords = torch.unravel_index(positions, tuple(spatial)) if nd > 1 else (positions,)
    start = [c.to(torch.long) for c in coords]
    vals = _gather(x[0], [s[:, None] for s in start]) + eps  # (N, C, 1, ...): the nudged values
    for base, spec, (_, m) in zip(acts[:-1], specs, chain):
        if spec == "elementwise":
            vals = m(vals)
        else:
            vals, start = _step(spec, base, vals, start)
    idx = [s[:, None] + torch.arange(vals.shape[2 + a], device=x.device) for a, s in enumerate(start)]
    before = _gather(y[0], idx)
    weight = _gather(units(tuple(y.shape[1:])).to(y), idx)
    return ((vals - before) * weight).flatten(1).sum(dim=1)

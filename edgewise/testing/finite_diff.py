"""Finite-difference sensitivity maps: the slow reference for gradient-based sensitivity.

Every input element of every sample is nudged by ±eps and the model is run
forward (float64, no autograd) on the nudged copies; the central difference
of the selected output units is the derivative. Nothing is shared with the
fast gradient engine: unit selection, hooks and aggregation are written out
here again on purpose.
"""

from __future__ import annotations

import copy
import difflib
import math

import numpy as np
import torch
import torch.nn as nn

from ..errors import EdgewiseError

__all__ = ["finite_difference_map", "AGGREGATIONS"]

#: agg name → elementwise function of the derivative
AGGREGATIONS = {"abs": torch.abs, "sq": torch.square, "signed": lambda g: g}


def _check_to(to) -> None:
    if isinstance(to, str):
        if to not in ("all", "center", "centre", "each"):
            raise EdgewiseError(f"to={to!r}: expected 'all', 'center', 'each' or a position (row, col) (an int in 1-D)")
        return
    pos = (to,) if isinstance(to, (int, np.integer)) else tuple(to) if isinstance(to, (tuple, list)) else None
    if pos is None or not pos or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pos):
        raise EdgewiseError(f"to={to!r}: expected 'all', 'center', 'each' or a position (row, col) (an int in 1-D)")


def _unit_mask(shape: tuple[int, ...], to, layer: str) -> torch.Tensor:
    """Boolean mask over one sample's target units (C_out, *spatial_out) or (F,) for ``to`` ≠ 'each'."""
    mask = torch.zeros(shape, dtype=torch.bool)
    spatial = shape[1:]
    if len(shape) < 2 or (isinstance(to, str) and to == "all"):  # flat outputs: every unit
        mask[...] = True
        return mask
    if isinstance(to, str):  # center
        mask[(slice(None),) + tuple((n - 1) // 2 for n in spatial)] = True
        return mask
    pos = (int(to),) if isinstance(to, (int, np.integer)) else tuple(int(p) for p in to)
    if len(pos) != len(spatial):
        raise EdgewiseError(
            f"to={to!r} has {len(pos)} coordinate(s) but layer {layer!r} has {len(spatial)} spatial axes "
            f"(output shape per sample {shape}); give (row, col) in 2-D, an int in 1-D"
        )
    if not all(0 <= p < n for p, n in zip(pos, spatial)):
        raise EdgewiseError(f"to={pos} lies outside layer {layer!r}, whose spatial shape is {spatial} (row, col)")
    mask[(slice(None),) + pos] = True
    return mask


def finite_difference_map(model: nn.Module, inputs: torch.Tensor, to="all", agg: str = "abs",
                          layer: str | None = None, eps: float = 1e-4, chunk: int = 256) -> np.ndarray:
    """Sensitivity map by central differences: mean over the batch and input channels of agg(d objective / d x).

    Args:
        model: run in float64, eval mode, on a deep copy (the caller's model is never touched).
        inputs: (B, C, L) or (B, C, H, W).
        to: ``"all"`` (objective: sum of every target unit), ``"center"`` (sum over the channels
            at position ``(n−1)//2`` per axis), a position ``(row, col)`` (an int in 1-D; sum over
            the channels there), or ``"each"`` (every unit separately: the map sums
            ``agg(∂y_unit/∂x)`` over units). A flat (B, F) target selects every unit.
        agg: ``"abs"`` → |g|, ``"sq"`` → g², ``"signed"`` → g.
        layer: dotted name from ``model.named_modules()`` whose output is the target; None: the output.
        eps: step of the central difference ``(f(x+eps) − f(x−eps)) / 2eps``.
        chunk: perturbed copies per forward pass.

    Returns:
        float64 array over the input's spatial positions (L,) or (H, W).

    Example:
        >>> conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        >>> with torch.no_grad(): _ = conv.weight.copy_(torch.tensor([[[1.0, 2.0, -3.0]]]))
        >>> finite_difference_map(conv, torch.zeros(1, 1, 5), to=2, agg="signed").round(8).tolist()
        [0.0, 1.0, 2.0, -3.0, 0.0]
    """
    if agg not in AGGREGATIONS:
        raise EdgewiseError(f"agg={agg!r}: expected one of {', '.join(map(repr, AGGREGATIONS))}")
    _check_to(to)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() not in (3, 4):
        shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
        raise EdgewiseError(f"inputs: expected a tensor (B, C, L) or (B, C, H, W), got {shape}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise EdgewiseError(f"eps={eps!r}: expected a positive step")
    x = inputs.detach().to(torch.float64)
    net = copy.deepcopy(model).double().eval().to(x.device)
    modules = dict(net.named_modules())
    if layer is not None and layer not in modules:
        names = [n for n in modules if n]
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise EdgewiseError(
            f"no layer named {layer!r} in {type(model).__name__}{hint} "
            "List the layers with `[name for name, _ in model.named_modules()]`."
        )
    captured: list = []
    handle = modules[layer].register_forward_hook(lambda m, i, o: captured.append(o)) if layer is not None else None
    name = layer if layer is not None else "output"

    def target(batch: torch.Tensor) -> torch.Tensor:
        captured.clear()
        out = net(batch)
        y = captured[-1] if layer is not None else out
        if not isinstance(y, torch.Tensor):
            raise EdgewiseError(f"the {name!r} of {type(model).__name__} is a {type(y).__name__}, not a tensor; "
                                "pick a layer= whose output is one tensor")
        return y.reshape(batch.shape[0], *y.shape[1:]) if y.dim() > 1 else y.reshape(-1, 1)

    fn = AGGREGATIONS[agg]
    try:
        with torch.no_grad():
            per_sample = []
            for sample in x:
                n = sample.numel()
                mask = None
                result = torch.empty(n, dtype=torch.float64, device=x.device)
                for start in range(0, n, chunk):
                    idx = torch.arange(start, min(start + chunk, n), device=x.device)
                    k = len(idx)
                    nudge = torch.zeros(k, n, dtype=torch.float64, device=x.device)
                    nudge[torch.arange(k), idx] = eps
                    flat = sample.reshape(1, n)
                    batch = torch.cat([flat + nudge, flat - nudge]).reshape(2 * k, *sample.shape)
                    y = target(batch)
                    if mask is None and to != "each":
                        mask = _unit_mask(tuple(y.shape[1:]), to, name).to(x.device)
                    units = (y[:k] - y[k:]).reshape(k, -1) / (2 * eps)  # ∂y_unit / ∂x_element
                    if to == "each":
                        result[start:start + k] = fn(units).sum(dim=1)
                    else:
                        result[start:start + k] = fn((units * mask.reshape(1, -1)).sum(dim=1))
                per_sample.append(result.reshape(sample.shape).mean(dim=0))
    finally:
        if handle is not None:
            handle.remove()
    return torch.stack(per_sample).mean(dim=0).cpu().numpy().astype(np.float64)

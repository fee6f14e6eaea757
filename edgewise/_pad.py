"""Padding of tensors in every mode edgewise knows, ``symmetric`` included, for any pad width."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._axis import PADDING_MODES, _mirror_array
from .errors import EdgewiseError

__all__ = ["Pad", "pad"]


@functools.lru_cache(maxsize=256)
def _mirror_index(n: int, lo: int, hi: int, mode: str, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):  # a cached inference tensor could not be saved for backward later
        idx = _mirror_array(np.arange(-lo, n + hi), n, mode)
        return torch.as_tensor(idx, dtype=torch.long, device=device)


def pad(input: torch.Tensor, pad: Sequence[int], mode: str = "zeros") -> torch.Tensor:
    """:func:`torch.nn.functional.pad` with ``symmetric`` (half-sample mirror) and pads wider than the input.

    Args:
        input: ``N×C×L`` or ``N×C×H×W``.
        pad: F.pad order, last axis first: ``(left, right)`` or ``(left, right, top, bottom)``.
        mode: ``zeros`` (or ``constant``), ``reflect``, ``replicate``, ``circular``, ``symmetric``.
    """
    mode = "zeros" if mode in ("constant", "partial") else mode
    if mode not in PADDING_MODES:
        raise EdgewiseError(f"unknown padding mode {mode!r}; choose one of {', '.join(PADDING_MODES)}")
    pad = tuple(int(p) for p in pad)
    if not any(pad):
        return input
    if mode == "zeros":
        return F.pad(input, pad)
    sizes = [input.shape[-1 - a] for a in range(len(pad) // 2)]
    fits = all(max(pad[2 * a], pad[2 * a + 1]) < n for a, n in enumerate(sizes))
    if mode == "replicate" or (mode in ("reflect", "circular") and fits):
        return F.pad(input, pad, mode=mode)
    for a, n in enumerate(sizes):  # gather: symmetric, or mirror/wrap pads wider than the input
        if pad[2 * a] or pad[2 * a + 1]:
            idx = _mirror_index(n, pad[2 * a], pad[2 * a + 1], mode, input.device)
            input = input.index_select(input.dim() - 1 - a, idx)
    return input


class Pad(nn.Module):
    """Pad the spatial axes with any mode, ``symmetric`` (half-sample mirror) included.

    Args:
        padding: F.pad order, last axis first: ``(left, right)`` or ``(left, right, top, bottom)``.
        mode: one of ``zeros``, ``reflect``, ``replicate``, ``circular``, ``symmetric``.
            Unlike F.pad, reflect/symmetric/circular accept pads wider than the input.
    """

    def __init__(self, padding: Sequence[int], mode: str = "zeros"):
        super().__init__()
        if mode == "constant":
            mode = "zeros"
        if mode not in PADDING_MODES:
            raise EdgewiseError(f"Pad: unknown mode {mode!r}; choose one of {', '.join(PADDING_MODES)}")
        self.pad, self.mode = tuple(int(p) for p in padding), mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pad(x, self.pad, self.mode)

    def extra_repr(self) -> str:
        return f"{self.pad}, mode={self.mode!r}"

"""Shared machinery of the convolution variants: argument checks, shapes, padding, array kinds.

Layouts (the book's, Goodfellow et al. ch. 9, 0-based):

* single-channel: ``x`` of shape ``(L,)`` or ``(H, W)`` with a kernel of the same ndim;
* multi-channel: ``x`` of shape ``(C_in, *spatial)`` or batched ``(B, C_in, *spatial)`` with a
  kernel ``K[i, l, m(, n)]`` of shape ``(C_out, C_in, *kernel)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EdgewiseError
from ..nets import padding_amounts

__all__ = ["PADDINGS", "pad_amounts", "output_size", "check_padding", "per_axis", "as_tensors", "back",
           "Layout", "layout", "pad_input", "fmt"]

#: zero-padding schemes: valid (none), same (k−1 split, odd one after), full (k−1 each side)
PADDINGS = ("valid", "same", "full")


def fmt(shape) -> str:
    """``(3, 4)`` → ``'3×4'``, ``(5,)`` → ``'5-sample'``."""
    shape = tuple(shape)
    return f"{int(shape[0])}-sample" if len(shape) == 1 else "×".join(str(int(s)) for s in shape)


def check_padding(padding, where: str) -> str:
    """Return ``padding`` if it is one of :data:`PADDINGS`, else raise."""
    if not isinstance(padding, str) or padding not in PADDINGS:
        raise EdgewiseError(f"{where}: unknown padding {padding!r}; choose one of 'valid', 'same' or 'full' "
                            "(zero padding of 0, k−1 split with the odd one after, or k−1 on each side)")
    return padding


def pad_amounts(padding: str, k: int) -> tuple[int, int]:
    """(before, after) zeros on one axis: valid (0, 0), same ((k−1)//2, the rest), full (k−1, k−1)."""
    return padding_amounts(padding, k)


def output_size(n: int, k: int, padding: str = "valid", stride: int = 1) -> int:
    """Output length of one axis: ``⌊(n + before + after − k) / stride⌋ + 1``.

    Unit stride gives valid ``n − k + 1``, same ``n``, full ``n + k − 1``; stride ``s`` keeps every
    s-th of those, ``⌈unit / s⌉``.

    Example:
        >>> [output_size(7, 3, p) for p in ("valid", "same", "full")], output_size(7, 3, "valid", 2)
        ([5, 7, 9], 3)
    """
    lo, hi = pad_amounts(check_padding(padding, "output_size"), k)
    return (n + lo + hi - k) // stride + 1


def per_axis(value, d: int, name: str, where: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a (row, col) sequence of length ``d`` → a tuple of ints ≥ ``minimum``."""
    vals = (value,) * d if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        vals = tuple(vals)
    except TypeError:
        vals = None
    if (vals is None or len(vals) != d
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals)):
        raise EdgewiseError(f"{where}: {name}={value!r} must be an int or {d} ints "
                            f"({'(row, col)' if d == 2 else '(length,)'})")
    if min(vals) < minimum:
        raise EdgewiseError(f"{where}: {name}={value!r} must be at least {minimum} on every axis")
    return tuple(int(v) for v in vals)


def as_tensors(*arrays, where: str):
    """Torch tensors of a common float dtype (ints and bools → float64) and whether the first was numpy."""
    numpy_in = not isinstance(arrays[0], torch.Tensor)
    ts = []
    for a in arrays:
        if not isinstance(a, torch.Tensor):
            try:
                arr = np.asarray(a)
                if any(s < 0 for s in arr.strides):  # a reversed view (k[::-1]): torch takes no negative strides
                    arr = arr.copy()
                a = torch.as_tensor(arr)
            except (TypeError, ValueError, RuntimeError) as e:
                raise EdgewiseError(f"{where}: expected numpy arrays or torch tensors, got {type(a).__name__} "
                                    f"({e})") from None
        ts.append(a)
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype.is_complex:
        raise EdgewiseError(f"{where}: complex inputs are not supported; convolve the real and imaginary parts")
    if not dtype.is_floating_point:
        dtype = torch.float64
    device = ts[0].device
    return [t.to(device=device, dtype=dtype) for t in ts], numpy_in


def back(y: torch.Tensor, numpy_in: bool):
    """Return ``y`` as the caller's kind: a numpy array when the input was one."""
    return y.detach().cpu().numpy() if numpy_in else y


@dataclass(frozen=True)
class Layout:
    """How a call's ``x`` and kernel map onto batched ``(B, C_in, *spatial)`` and ``(C_out, C_in, *k)``."""

    d: int  # spatial dimensions, 1 or 2
    single: bool  # single-channel call: no channel axes on either side
    batched: bool  # x carried a batch axis

    def split(self, x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.single:
            return x[None, None], k[None, None]
        return (x if self.batched else x[None]), k

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        if self.single:
            return y[0, 0]
        return y if self.batched else y[0]


def layout(x: torch.Tensor, k: torch.Tensor, where: str, padding: str) -> Layout:
    """Work out single/multi-channel, 1-D/2-D and batching from the ndims, checking channels and sizes."""
    if k.ndim in (1, 2):
        d, single, batched = k.ndim, True, False
        if x.ndim != k.ndim:
            raise EdgewiseError(
                f"{where}: a {k.ndim}-D kernel of shape {tuple(k.shape)} is single-channel and needs a {k.ndim}-D "
                f"input, got x of shape {tuple(x.shape)}; for channels use a kernel K[out, in, "
                f"{'m, n' if x.ndim - 1 == 2 else 'm'}] of shape (C_out, C_in, *kernel)")
    elif k.ndim in (3, 4):
        d, single = k.ndim - 2, False
        if x.ndim not in (d + 1, d + 2):
            raise EdgewiseError(
                f"{where}: a kernel of shape {tuple(k.shape)} is (C_out, C_in, *kernel) for {d}-D signals, so x must "
                f"be (C_in, *spatial) or (B, C_in, *spatial) with {d} spatial axes; got x of shape {tuple(x.shape)}")
        batched = x.ndim == d + 2
        c_in = x.shape[1 if batched else 0]
        if c_in != k.shape[1]:
            raise EdgewiseError(
                f"{where}: x has {c_in} channels (shape {tuple(x.shape)}) but the kernel K[out, in, ...] of shape "
                f"{tuple(k.shape)} expects {k.shape[1]}; the kernel's second axis must equal the input channels")
    else:
        raise EdgewiseError(
            f"{where}: kernel of shape {tuple(k.shape)} has {k.ndim} axes; expected 1 or 2 (single-channel, same "
            "ndim as x) or 3 or 4 (K[out, in, *kernel] for 1-D or 2-D multi-channel signals)")
    lay = Layout(d, single, batched)
    spatial, ksize = tuple(x.shape[-d:]), tuple(k.shape[-d:])
    if min(ksize) < 1 or min(spatial) < 1:
        raise EdgewiseError(f"{where}: empty input {fmt(spatial)} or kernel {fmt(ksize)}; both need positive sizes")
    if padding == "valid" and any(kk > n for kk, n in zip(ksize, spatial)):
        raise EdgewiseError(
            f"{where}: the {fmt(ksize)} kernel is larger than the {fmt(spatial)} input in 'valid' mode, so no output "
            "position fits; use padding='same' or 'full', or a smaller kernel")
    return lay


def pad_input(x: torch.Tensor, ksize: Sequence[int], padding: str, extra: Sequence[int] | None = None):
    """Zero-pad the trailing ``len(ksize)`` axes for ``padding`` (plus ``extra`` zeros after, per axis)."""
    flat: list[int] = []
    for a in reversed(range(len(ksize))):  # F.pad wants the last axis first
        lo, hi = pad_amounts(padding, ksize[a])
        flat += [lo, hi + (extra[a] if extra is not None else 0)]
    return F.pad(x, flat) if any(flat) else x

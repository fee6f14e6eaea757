"""Where a computation runs: a user's ``device=`` (or ``--device``) checked before any work."""

from __future__ import annotations

import torch
import torch.nn as nn

from .errors import EdgewiseError

__all__ = ["usable_device", "device_of"]


def usable_device(device, who: str = "", default: str = "leave device=None to run where the model is"):
    """``device`` as a ``torch.device`` that can hold numbers here (``cuda`` is the current CUDA device), or None
    for None (run where the model's parameters are); else an EdgewiseError that starts with ``who`` and ends with
    ``default`` (how to ask for the default)."""
    if device is None:
        return None
    head = f"{who}: " if who else ""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise EdgewiseError(f"{head}device={device!r} is not a torch device ({_first_line(e)}); use e.g. 'cpu', "
                            f"'cuda' or 'cuda:0', or {default}") from None
    if dev.type == "meta":
        raise EdgewiseError(f"{head}device='meta' holds shapes but no numbers, and this measures numbers; use "
                            "'cpu' or an accelerator")
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError) as e:
        raise EdgewiseError(f"{head}device {str(dev)!r} is not available here ({_first_line(e)}); use 'cpu', or "
                            f"{default}") from None
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def device_of(model, device=None) -> torch.device:
    """Where an engine runs: ``device`` checked (:func:`usable_device`), else where ``model``'s parameters are
    (the CPU for a model reference or a model without parameters)."""
    dev = usable_device(device)
    if dev is not None:
        return dev
    p = next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None
    return p.device if p is not None else torch.device("cpu")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]

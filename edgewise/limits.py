"""Memory estimates made before any work: a request that cannot fit is refused with one line saying what to reduce.

The budget is, in order of precedence:

* ``EDGEWISE_MEMORY`` (environment): bytes, or a number with a unit, e.g. ``8G``, ``512M``, ``2GiB``;
* otherwise the smallest of :data:`DEFAULT_CAP` (16 GiB), 80 % of the memory the system reports
  available (``MemAvailable``), and the address space the process may still map (``RLIMIT_AS``).

Each ``check_*`` function estimates the bytes of one known-dense step from its sizes alone (no
tensor is allocated) and raises :class:`~edgewise.errors.EdgewiseError` naming the option to reduce when
the estimate exceeds the budget. Estimates are deliberately rough (within a small factor of the
measured peak); they exist to refuse requests that are orders of magnitude too large, fast.
"""

from __future__ import annotations

import math
import os
import re

from .errors import EdgewiseError

__all__ = ["DEFAULT_CAP", "budget", "check", "fmt_bytes", "check_layers", "check_sensitivity", "check_perturbation",
           "check_scaling", "check_runs"]

DEFAULT_CAP = 16 << 30  #: the budget's upper bound when EDGEWISE_MEMORY is not set
LAYER_BYTES = 64 << 10  # one spec layer built, traced and counted (measured 35–95 KiB on 1x64)
SCALING_BYTES = 2 << 10  # per input position of an exact depth sweep (measured ~2 KiB on 1x1000000)
RUN_BYTES = 4 << 10  # one experiment run's job description, progress entry and result record
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def fmt_bytes(n: float) -> str:
    """``n`` bytes as a short human string (``3.2 GiB``)."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def _parse(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b)?\s*", text.lower())
    if not m:
        raise EdgewiseError(f"EDGEWISE_MEMORY={text!r}: expected bytes or a size like 8G, 512M, 2GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _address_space_left() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as f:
            used = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, StopIteration):
        used = 0
    return max(0, soft - used)


def budget() -> int:
    """Bytes a request may use (see the module docstring)."""
    env = os.environ.get("EDGEWISE_MEMORY")
    if env:
        return _parse(env)
    limits = [DEFAULT_CAP]
    avail = _available()
    if avail is not None:
        limits.append(int(0.8 * avail))
    left = _address_space_left()
    if left is not None:
        limits.append(left)
    return min(limits)


def check(need: float, what: str, reduce: str) -> None:
    """Raise when ``need`` bytes exceed :func:`budget`; the message names ``what`` and what to ``reduce``."""
    have = budget()
    if need > have:
        raise EdgewiseError(f"{what} would need about {fmt_bytes(need)} of memory, more than the {fmt_bytes(have)} "
                            f"available; reduce {reduce} (or set EDGEWISE_MEMORY to raise the budget)")


def _positions(shape) -> int:
    return math.prod(int(s) for s in tuple(shape)[1:]) if len(tuple(shape)) > 1 else 1


def check_layers(n_layers: int, input_shape=None, width: int = 8) -> None:
    """A spec net of ``n_layers`` layers (modules, traced graph and counts per layer)."""
    per = LAYER_BYTES + (_positions(input_shape) * max(int(width), 1) * 4 if input_shape is not None else 0)
    check(int(n_layers) * per, f"a spec net of {n_layers} layers", "the repeat counts (N*item) in the spec")


def check_sensitivity(n_inits: int, input_shape, activations: int = 0, chunk: int = 8, n_samples: int = 1,
                      option: str = "--inits (n_inits)") -> None:
    """Monte-Carlo sensitivity: every initialisation's map is kept (for the mean and its error), and ``chunk``
    initialisations run at once through forward and backward passes (``activations`` bytes per sample)."""
    c, positions = int(input_shape[0]), _positions(input_shape)
    maps = int(n_inits) * positions * 8 * 2  # per-init maps, then their concatenation
    seeds = int(n_inits) * 40  # the list of per-initialisation seeds
    inputs = min(int(n_inits), chunk) * n_samples * c * positions * 8
    passes = min(int(n_inits), chunk) * n_samples * activations * 3  # forward, saved for backward, gradients
    what = f"the sensitivity over {n_inits} initialisations of a {'x'.join(map(str, input_shape))} input"
    check(maps + seeds + inputs + passes, what, option if passes < (maps + seeds) else f"{option} or the input size")


def check_perturbation(input_shape, activations: int = 0, n_signs: int = 512, chunk: int = 256,
                       n_samples: int = 1) -> None:
    """The perturbation experiment: ``n_signs`` sign patterns over all positions, and ``chunk`` perturbed
    copies of the input pushed through the model at once."""
    c, positions = int(input_shape[0]), _positions(input_shape)
    need = n_signs * positions * 8 + n_samples * positions * 8 * 4 + chunk * (c * positions * 8 * 2 + activations)
    check(need, f"the perturbation experiment on a {'x'.join(map(str, input_shape))} input", "the input size")


def check_scaling(input_shape, n_depths: int = 1) -> None:
    """An exact depth sweep (integer path counts at every input position)."""
    positions = _positions(input_shape)
    check(positions * SCALING_BYTES, f"exact path counts on a {'x'.join(map(str, input_shape))} input",
          "the input size (--input)")


def check_runs(n_runs: int, what: str = "the experiment", option: str = "--seeds") -> None:
    """An experiment's job list and results: a few KiB per run (and hours of training long before that)."""
    check(int(n_runs) * RUN_BYTES, f"{what} with {n_runs} runs", option)


def activation_bytes(module, input_shape) -> int:
    """Bytes of every leaf module's output for one input, from one no-grad forward of a zero input."""
    return forward_cost(module, input_shape)[0]


def forward_cost(module, input_shape) -> tuple[int, int]:
    """(activation bytes, floating-point operations) of one forward pass on one input, measured together."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    total = [0]

    def hook(_mod, _inp, out):
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in module.modules() if not list(m.children())]
    modes = [(m, m.training) for m in module.modules()]
    module.eval()  # no batch-norm statistics are updated
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        p = next(module.parameters(), None)
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        with torch.no_grad(), FlopCounterMode(display=False) as flops:
            module(torch.zeros((1, *input_shape), dtype=dtype, device=p.device if p is not None else None))
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    return total[0], int(flops.get_total_flops())

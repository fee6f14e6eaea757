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

import functools
import math
import os
import re
from typing import NamedTuple

import torch

from ._fingerprint import GraphCache, fingerprint
from .errors import EdgewiseError

__all__ = ["DEFAULT_CAP", "budget", "check", "fmt_bytes", "check_layers", "check_sensitivity", "check_perturbation",
           "check_scaling", "check_runs", "Cost", "forward_cost", "forward_costs"]

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


def check_weighted(n_inits: int, input_shape, activations: int = 0) -> None:
    """Weighted paths: every initialisation's map, and one forward pass that carries float64 weights beside the
    activations (twice their bytes, kept for the backward pass that sums them)."""
    maps = int(n_inits) * _positions(input_shape) * 8 * 2
    check(maps + activations * 5, f"the weighted paths of a {'x'.join(map(str, input_shape))} input",
          "the input size" if activations * 5 > maps else "n_inits")


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
    return forward_costs(module, input_shape).activations


class Cost(NamedTuple):
    """What one forward pass of one input takes (see :func:`forward_costs`)."""

    activations: int  #: bytes of every leaf module's output
    flops: int  #: floating-point operations as FlopCounterMode counts them
    multiply_adds: int  #: every convolution or linear weight (``*weight``) times the outputs that use it


def forward_cost(module, input_shape) -> tuple[int, int]:
    """(activation bytes, floating-point operations) of one forward pass on one input (:func:`forward_costs`)."""
    return forward_costs(module, input_shape)[:2]


def input_spec(module) -> tuple[torch.dtype, torch.device | None]:
    """The dtype and device of an input that ``module`` takes: its first parameter's (float32 where it has no
    floating-point one; no device where it has no parameter)."""
    p = next(module.parameters(), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    return dtype, p.device if p is not None else None


def forward_costs(module, input_shape) -> Cost:
    """:class:`Cost` of one forward pass on one input, measured together in one no-grad pass of a zero input
    (eval mode; modes restored after), and remembered by the architecture's fingerprint, as traces are: another
    call on this architecture and input shape runs nothing (a report asks for the same model's costs three times).

    The operations are those ``torch.utils.flop_counter.FlopCounterMode`` counts (convolutions and matrix
    products, bias additions and everything elementwise left out). Convolutions, linear layers, matrix products
    and functions without a matrix product inside are added up from shapes by :class:`_ShapeFlops` (exactly
    FlopCounterMode's formulas, without the torch._dynamo import, ~1.5 s, that entering FlopCounterMode costs a
    fresh process); any other function (attention, an einsum) runs under FlopCounterMode within the same pass.
    (``nn.MultiheadAttention`` then takes its plain path, whose projections FlopCounterMode counts; alone, in
    eval mode without gradients, it would take a fused kernel FlopCounterMode counts as nothing.)"""
    dtype, device = input_spec(module)
    where = (tuple(input_shape), dtype, device)
    arch, shareable = fingerprint(module)
    cost = _COSTS.get(module, (arch, *where), shareable)
    if cost is None:
        cost = _measure(module, torch.zeros((1, *input_shape), dtype=dtype, device=where[2]))
        arch, shareable = fingerprint(module)  # a first pass may draw (the global remedy's connections)
        _COSTS.put(module, (arch, *where), shareable, cost)
    return cost


def _measure(module, x: torch.Tensor) -> Cost:
    total, macs = [0], [0]

    def hook(_mod, _inp, out):
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    def weights(mod, _inp, out):
        per_unit = sum(p[0].numel() for n, p in mod.named_parameters(recurse=False) if n.endswith("weight"))
        macs[0] += per_unit * out[0].numel()

    handles = [m.register_forward_hook(hook) for m in module.modules() if not list(m.children())]
    handles += [m.register_forward_hook(weights) for m in module.modules()
                if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))]
    modes = [(m, m.training) for m in module.modules()]
    module.eval()  # no batch-norm statistics are updated
    try:
        with torch.no_grad(), _ShapeFlops() as counted:
            module(x)
        flops = counted.flops
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    return Cost(total[0], flops, macs[0])


#: torch functions with no matrix product or convolution inside: FlopCounterMode counts them as 0 operations
_NO_FLOPS = frozenset("""
    __get__ __set__ __getitem__ __setitem__ __len__ __iter__ __bool__ __index__ __int__ __float__ _assert size dim
    numel element_size nbytes device dtype shape to type float double half contiguous clone detach requires_grad_
    view view_as reshape reshape_as flatten unflatten squeeze unsqueeze expand expand_as permute transpose t movedim
    narrow select index_select gather split chunk unbind cat concat concatenate stack repeat roll flip tril triu
    zeros zeros_like ones ones_like empty empty_like full full_like arange linspace meshgrid tensor add add_ __add__
    __iadd__ __radd__ sub sub_ __sub__ __isub__ __rsub__ mul mul_ __mul__ __imul__ __rmul__ div div_ __truediv__
    __itruediv__ __rtruediv__ neg __neg__ abs sqrt rsqrt exp log pow __pow__ square clamp clamp_ clamp_min clamp_max
    where maximum minimum sign sum mean amax amin max min norm var std relu relu_ relu6 hardtanh hardtanh_
    leaky_relu leaky_relu_ elu gelu silu mish sigmoid tanh hardswish hardsigmoid softplus softmax log_softmax
    threshold prelu glu pad constant_pad_nd max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d
    adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d
    adaptive_max_pool3d batch_norm instance_norm layer_norm group_norm local_response_norm dropout dropout1d
    dropout2d dropout3d alpha_dropout feature_alpha_dropout interpolate upsample pixel_shuffle pixel_unshuffle
    channel_shuffle rand rand_like randn randn_like randint randperm argsort sort topk eq ne lt le gt ge __eq__ __ne__
    __lt__ __le__ __gt__ __ge__ any all nonzero masked_fill masked_fill_ new_zeros new_ones new_full new_empty zero_
    fill_ normalize swapaxes swapdims
""".split())


def _conv_flops(x, w, out, transposed: bool = False) -> int:
    """FlopCounterMode's count of a batched convolution: 2 × batch × (output, or for a transposed one input,
    positions) × weight size."""
    return 2 * x.shape[0] * math.prod((x if transposed else out).shape[2:]) * w.numel()


def _linear_flops(x, w, out) -> int:
    """A linear layer is a matrix product: 2 × rows of ``x`` × in × out features."""
    return 2 * (x.numel() // x.shape[-1]) * w.numel()


def _matmul_flops(a, b, out) -> int:
    """A matrix product of matrices or stacks of them (broadcast): 2 × output elements × the summed size."""
    return 2 * out.numel() * a.shape[-1]


#: the torch functions counted from shapes: (input, weight, output) → operations
_FLOPS = {**{f"conv{d}d": _conv_flops for d in (1, 2, 3)},
          **{f"conv_transpose{d}d": functools.partial(_conv_flops, transposed=True) for d in (1, 2, 3)},
          "linear": _linear_flops, "matmul": _matmul_flops}


class _ShapeFlops(torch.overrides.TorchFunctionMode):
    """Adds up FlopCounterMode's operations from the shapes of the torch functions a forward pass calls; a
    function it has no formula for (attention, an einsum) runs under FlopCounterMode itself, which counts the
    operations inside it. ``unknown`` names the first such function (None: FlopCounterMode was not needed)."""

    def __init__(self):
        super().__init__()
        self.flops, self.unknown = 0, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", None)
        if name in _FLOPS:
            x, w = (list(args) + [kwargs.get("input"), kwargs.get("weight")][len(args):])[:2]
            if (_matrices if name == "matmul" else _batched)(x, w):
                out = func(*args, **kwargs)
                self.flops += _FLOPS[name](x, w, out)
                return out
        elif name in _NO_FLOPS:
            return func(*args, **kwargs)
        return self._counted(func, args, kwargs, name)

    def _counted(self, func, args, kwargs, name):
        """``func(*args, **kwargs)`` counted by FlopCounterMode (importing it imports torch._dynamo, ~1.5 s once
        per process: only a model with such a function pays it)."""
        from torch.utils.flop_counter import FlopCounterMode

        self.unknown = self.unknown or name or repr(func)
        with FlopCounterMode(display=False) as counter:
            out = func(*args, **kwargs)
        self.flops += int(counter.get_total_flops())
        return out


def _matrices(a, b) -> bool:
    """Two operands of at least two dimensions (a vector's product is left to FlopCounterMode)."""
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() >= 2 and b.dim() >= 2


def _batched(x, w) -> bool:
    """A batched input and a weight of the dimensions the formulas assume (else FlopCounterMode counts)."""
    return isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor) and (
        x.dim() == w.dim() >= 3 or w.dim() == 2 and x.dim() >= 2)


#: forward costs by architecture fingerprint and input shape, dtype and device (see :func:`forward_costs`; a
#: Cost is immutable: handed out as it is)
_COSTS = GraphCache(copy=None)

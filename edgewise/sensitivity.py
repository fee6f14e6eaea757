"""Gradient sensitivity (the effective receptive field): what a network actually responds to.

Three measurements over input positions, each a :class:`Sensitivity` (or
:class:`Perturbation`) with ``.map`` and the metrics of :func:`edgewise.maps.map_metrics`:

* :func:`gradient_map` — the gradient of chosen units with respect to the input,
  for the model's own weights, averaged over a batch of inputs;
* :func:`init_sensitivity` — the expected squared gradient over fresh random
  initialisations of the same architecture (Monte-Carlo: one model re-initialised in place per
  initialisation for large nets, ``torch.func.vmap`` over stacked initialisations for small ones);
* :func:`perturbation` — the question's experiment: nudge input positions by ε
  (one at a time, and all at once with random signs) and measure the change.

Units are chosen as in :func:`edgewise.pathways`: ``to="all"`` (their sum),
``"center"``, ``(row, col)``, plus ``"each"`` (every unit separately: the map is
``Σ_units agg(∂y_unit/∂x)``). Maps are means over the batch and the input channels.
Models run in eval mode on a private copy; the caller's model is never changed.
"""

from __future__ import annotations

import copy
import difflib
import math
import sys
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from . import _init
from ._cone import nudge_changes
from ._silence import silenced, silent_layers
from .live import small_scales
from ._device import device_of
from .errors import EdgewiseError
from .maps import map_metrics
from .models import describe, load
from .pathways import select_units
from .results import Result

__all__ = ["gradient_map", "init_sensitivity", "perturbation", "reinitialise", "Sensitivity", "Perturbation",
           "AGGREGATIONS"]

#: how a gradient becomes a non-negative (or signed) contribution
AGGREGATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "abs": torch.abs,
    "sq": torch.square,
    "signed": lambda g: g,
}


@dataclass
class Sensitivity(Result):
    """A sensitivity map over input positions.

    Attributes:
        map: mean contribution of each input position (L or H×W), averaged over
            inputs, input channels and (for ``init_sensitivity``) initialisations.
        stderr: standard error of ``map`` over its independent samples (inputs for
            :func:`gradient_map`, initialisations for :func:`init_sensitivity`).
        samples: the per-sample maps whose mean is ``map`` (first axis: sample).
        agg, to, layer: the aggregation, unit selector and target layer.
        method: ``"gradient"`` or ``"init"``; n_inits, std, seed: the Monte-Carlo set-up.
        init: for ``"init"``, how the model was re-initialised: ``"builder"`` (its torchvision/timm builder),
            ``"module"`` (its own init methods), ``"default"`` (torch's per-layer defaults) or ``"std"``.
        fixed: parameters that were not re-initialised (no ``reset_parameters``).
        summary: :func:`edgewise.maps.map_metrics` of ``map``.
        readout, bias_only: the Linear or convolution whose output is the target's (None where there is none or
            the model cannot be traced), and (``"init"``) the initialisations, by index, in which every parameter
            of it but its bias was zero: their maps are exactly zero, so no pass was run for them.
        zero_scales: normalisation layers whose weight is zero: (``"init"``) in every initialisation
            (:func:`edgewise._init.zero_scales`: the last norm of each residual branch in timm's ResNets),
            (``"gradient"``) in the model's own weights; each outputs its bias whatever its input.
        small_scales: parameters that multiply a layer's output and are at most ``edgewise.live.SMALL_SCALE`` in
            magnitude (``"init"``: the same in every initialisation, as timm's and torchvision's ConvNeXt start their
            layer scales at 1e-6; ``"gradient"``: in the model's own weights), each with its largest magnitude.
    """

    map: np.ndarray
    stderr: np.ndarray
    samples: np.ndarray
    agg: str
    to: Any
    layer: str
    method: str
    model: str = "model"
    input_shape: tuple = ()
    n_inits: int | None = None
    std: float | None = None
    seed: int | None = None
    fixed: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    init: str | None = None
    readout: str | None = None
    bias_only: list = field(default_factory=list)
    zero_scales: list = field(default_factory=list)
    small_scales: dict = field(default_factory=dict)

    kind = "sensitivity"

    @property
    def log10(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log10(np.abs(self.map))

    def to_dict(self) -> dict:
        return {
            "model": self.model, "method": self.method, "input_shape": list(self.input_shape),
            "layer": self.layer, "to": _jsonable_to(self.to), "agg": self.agg,
            "n_samples": int(self.samples.shape[0]), "n_inits": self.n_inits, "std": self.std, "seed": self.seed,
            "init": self.init, "readout": self.readout, "bias_only_inits": self.bias_only,
            "zero_scale_layers": self.zero_scales, "zero_positions": self.zero_positions,
            "small_scale_parameters": self.small_scales,
            "fixed_parameters": self.fixed, "map": self.map.tolist(), "stderr": self.stderr.tolist(),
            **self.summary,
        }

    def arrays(self) -> dict:
        return {"map": self.map, "stderr": self.stderr, "samples": self.samples}

    @property
    def zero_positions(self) -> int:
        """Input positions whose sensitivity is exactly zero (for ``"init"``: in every initialisation)."""
        return int(np.count_nonzero(np.asarray(self.map) == 0))

    def first(self, n: int) -> "Sensitivity":
        """This Monte-Carlo result cut to its first ``n`` initialisations: what :func:`init_sensitivity` gives
        with ``n_inits=n`` and the same seed (its initialisations' seeds are drawn in order; the same maps
        bit for bit where it loops, to float rounding where vmap batches them differently)."""
        if self.method != "init" or not 2 <= n <= (self.n_inits or 0):
            raise EdgewiseError(f"first({n}): needs a Monte-Carlo result ({self.method!r} here) of at least {n} "
                                f"initialisations ({self.n_inits} here), and n ≥ 2")
        if n == self.n_inits:
            return self
        return replace(_from_samples(self.samples[:n]), agg=self.agg, to=self.to, layer=self.layer,
                       method=self.method, model=self.model, input_shape=self.input_shape, n_inits=n, std=self.std,
                       seed=self.seed, fixed=self.fixed, init=self.init, readout=self.readout,
                       bias_only=[i for i in self.bias_only if i < n], zero_scales=self.zero_scales,
                       small_scales=self.small_scales)


@dataclass
class Perturbation(Result):
    """The perturbation experiment: output change per input position, measured and predicted.

    The objective is ``f = Σ selected units`` (as in :func:`gradient_map`).

    Attributes:
        single: ``|f(x + ε·u_p) − f(x)| / ε`` with ``u_p`` = 1 on every channel at
            position p (one position at a time), mean over the batch.
        gradient: ``|∇f · u_p|`` from autograd: what ``single`` tends to as ε → 0.
        random_signs: all positions nudged at once by ``ε·s`` with random signs
            ``s``; position p's share is recovered as ``|mean_r Δf_r s_{r,p}| / ε``
            (unbiased for ``∇f · u_p``; noise ``random_signs_stderr`` falls as 1/√n_signs).
        total_change: root mean square of ``Δf_r / ε`` over the random-sign draws, and
            ``predicted_total``: ``sqrt(Σ_p (∇f·u_p)²)``, what linearity predicts for it
            (the cross terms of independent signs average out).
        fd_error: max |single − gradient| / max gradient (finite differences ≈ gradient).
        sign_correlation: Pearson correlation of ``random_signs`` with ``gradient``.
    """

    single: np.ndarray
    gradient: np.ndarray
    random_signs: np.ndarray
    random_signs_stderr: np.ndarray
    eps: float
    n_signs: int
    to: Any
    layer: str
    total_change: float
    predicted_total: float
    fd_error: float
    sign_correlation: float
    model: str = "model"
    input_shape: tuple = ()
    seed: int = 0
    summary: dict = field(default_factory=dict)

    kind = "perturbation"

    @property
    def map(self) -> np.ndarray:
        return self.single

    @property
    def log10(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log10(self.single)

    def to_dict(self) -> dict:
        return {
            "model": self.model, "input_shape": list(self.input_shape), "layer": self.layer,
            "to": _jsonable_to(self.to), "eps": self.eps, "n_signs": self.n_signs, "seed": self.seed,
            "total_change": self.total_change, "predicted_total": self.predicted_total,
            "fd_error": self.fd_error, "sign_correlation": self.sign_correlation,
            "single": self.single.tolist(), "gradient": self.gradient.tolist(),
            "random_signs": self.random_signs.tolist(), **self.summary,
        }

    def arrays(self) -> dict:
        return {"single": self.single, "gradient": self.gradient, "random_signs": self.random_signs,
                "random_signs_stderr": self.random_signs_stderr}


# ------------------------------------------------------------------ plumbing

class _Stop(Exception):
    """Raised by the target hook: nothing after the target layer needs computing."""


def _jsonable_to(to):
    return to if isinstance(to, (str, int)) else [int(v) for v in to]


def _find_module(model: nn.Module, layer: str) -> nn.Module:
    modules = dict(model.named_modules())
    if layer not in modules or layer == "":
        close = difflib.get_close_matches(layer, [n for n in modules if n], n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise EdgewiseError(f"layer {layer!r} is not a submodule of {type(model).__name__}{hint}. "
                            "Retrieve the list of layers with [name for name, _ in model.named_modules()].")
    return modules[layer]


class _Target:
    """``model``'s forward, stopped at ``layer``'s output, with parameters passed in (for torch.func)."""

    def __init__(self, model: nn.Module, layer: str | None):
        self.model, self.layer = model, layer
        self.module = _find_module(model, layer) if layer else None
        self._readout = ()  # not looked for yet

    def readout(self, shape) -> tuple[str, nn.Module] | None:
        """(name, module) of the Linear or convolution whose output is the target's, when there is one (from the
        traced Graph for input C×``shape``; None where it cannot be traced). If every parameter of it but its bias
        is zero (a zero-initialised classifier head, as torchvision's ViT starts), the target's output is its
        bias, whatever the input: every input gradient is exactly zero (:func:`_bias_only`)."""
        if self._readout == ():
            self._readout = None
            name = self.layer
            if name is None:
                from ._trace import trace

                try:
                    with warnings.catch_warnings():  # (what tracing warns about is said where a user traces)
                        warnings.simplefilter("ignore")
                        graph = trace(self.model, shape)
                except Exception:  # noqa: BLE001 - untraceable: no shortcut, the passes run as always
                    return None
                name = graph.output if graph[graph.output].kind in ("linear", "conv") else None
            module = None if name is None or "#" in name else _find_module(self.model, name) if name else self.model
            if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd)):
                self._readout = (name or "the model", module)
        return self._readout

    def __call__(self, state: dict | None, x: torch.Tensor) -> torch.Tensor:
        """The target's output for input ``x``, with parameters ``state`` (None: the model's own)."""
        run = (lambda: self.model(x)) if state is None else (lambda: functional_call(self.model, state, (x,)))
        if self.module is None:
            return _tensor_output(run(), "the model")
        box = []

        def hook(_mod, _inp, out):
            box.append(out)
            raise _Stop

        handle = self.module.register_forward_hook(hook)
        try:
            run()
        except _Stop:
            pass
        finally:
            handle.remove()
        if not box:
            raise EdgewiseError(f"layer {self.layer!r} was not called in the forward pass; "
                                "choose a layer that the model runs")
        return _tensor_output(box[0], f"layer {self.layer!r}")


def _weights(module: nn.Module) -> list[torch.Tensor]:
    """Every parameter of ``module`` itself but its bias."""
    return [p for n, p in module.named_parameters(recurse=False) if n != "bias"]


def _bias_only(module: nn.Module) -> bool:
    """Whether every parameter of ``module`` but its bias is zero (its output is then its bias alone)."""
    params = _weights(module)
    return bool(params) and not any(p.count_nonzero() for p in params)


def _tensor_output(y, what: str) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise EdgewiseError(f"{what} returns {type(y).__name__}, not a tensor; pass layer= to pick a layer "
                            "whose output is one tensor")
    return y


def _units(unit_shape: tuple[int, ...], to, layer: str) -> torch.Tensor:
    """Float mask over one sample's units (C, *spatial) or (F,) for the ``to`` selector."""
    if isinstance(to, str) and to == "each":
        return torch.ones(unit_shape)
    if len(unit_shape) == 1:  # a flat output: every unit
        mask = select_units(unit_shape, "all", layer)
    else:
        mask = select_units(unit_shape, to, layer)
    return torch.from_numpy(np.broadcast_to(mask, unit_shape).astype(np.float32))


def _check_to(to):
    if isinstance(to, str) and to not in ("all", "center", "centre", "each"):
        raise EdgewiseError(f"to={to!r}: expected 'all', 'center', 'each' or a position (row, col)")
    return "center" if to == "centre" else to


def _check_agg(agg: str) -> str:
    if agg not in AGGREGATIONS:
        raise EdgewiseError(f"agg={agg!r}: expected one of {', '.join(map(repr, AGGREGATIONS))}")
    return agg


def _prepare(model, input_shape, padding, device, dtype, private: bool = True) -> tuple[nn.Module, str]:
    """A private eval-mode copy of the model on ``device``/``dtype`` (``private=False``: the model itself, which
    the caller then gives up), and its display name."""
    name = describe(model)
    module = load(model, input_shape, padding=padding)
    if not isinstance(module, nn.Module):
        raise EdgewiseError(f"expected an nn.Module or a model reference, got {type(model).__name__}")
    module = (_init.keep_builder(module, copy.deepcopy(module)) if private else module).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    if dtype is not None or device is not None:
        module = module.to(device=device, dtype=dtype)
    return module, name


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


def _param_dtype(module: nn.Module, dtype) -> torch.dtype:
    from .limits import input_spec

    return dtype if dtype is not None else input_spec(module)[0]


def _inputs(inputs, n_samples: int, seed: int, device, dtype) -> torch.Tensor:
    """The batch (B, C, *spatial): the tensor given, or N(0, 1) noise of the given shape."""
    if isinstance(inputs, (str, tuple, list)) and not isinstance(inputs, torch.Tensor):
        from ._trace import parse_shape

        shape = parse_shape(inputs)
        gen = torch.Generator().manual_seed(seed)
        return torch.randn((n_samples, *shape), generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    x = torch.as_tensor(inputs)
    if x.ndim not in (3, 4):
        raise EdgewiseError(f"inputs of shape {tuple(x.shape)}: expected a batch (B, C, L) or (B, C, H, W), "
                            "or an input shape like (1, 64, 64)")
    return x.detach().to(device=device, dtype=dtype)


# torch's vmap falls back to a slow loop for ops without a batching rule (in-place ``as_strided_`` on torchvision
# models, attention kernels) and says so in a UserWarning; the results are right and a user can do nothing about
# it, so it is silenced around edgewise's vmaps.
_NO_BATCHING_RULE = r"There is a performance drop because we have not yet implemented the batching rule"


def _vmap(func, **kwargs):
    """``torch.func.vmap(func, **kwargs)`` without torch's ``as_strided_`` and missing-batching-rule
    fallback warnings (and no other)."""
    batched = vmap(func, **kwargs)

    def call(*args):
        with warnings.catch_warnings():
            # ops without a batching rule (as_strided_, attention kernels) run one by one: correct, only slower
            warnings.filterwarnings("ignore", message=_NO_BATCHING_RULE, category=UserWarning)
            return batched(*args)

    return call


def _progress(total: int | None, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="", leave=False, disable=None)


# ------------------------------------------------------------------ gradients

def _vjp(func, x: torch.Tensor):
    """``torch.func.vjp(func, x)`` for one tensor in and out: the same functorch steps (and the same numbers, inside
    ``vmap`` too), without importing ``torch._dynamo`` (about 1 s in a fresh process): torch's pull-back wraps
    ``torch.autograd.grad`` in ``torch._dynamo.compiled_autograd._disable()``, which only undoes a compiled
    autograd that torch._dynamo would have had to switch on. With torch._dynamo loaded (or functorch's helpers
    moved), it is ``torch.func.vjp`` itself."""
    if _functorch is None or "torch._dynamo" in sys.modules:
        return torch.func.vjp(func, x)
    return _functorch_vjp(func, x)


def _functorch_vjp(func, x: torch.Tensor):
    """:func:`_vjp`'s own path: ``torch.func.vjp``'s steps, the pull-back calling ``torch.autograd.grad`` itself."""
    with torch.autograd.graph.disable_saved_tensors_hooks(_NO_HOOKS), _functorch.grad_increment_nesting() as level:
        with torch.enable_grad():
            wrapped = _functorch._wrap_all_tensors(x, level)
            diff = _functorch._create_differentiable(wrapped, level)
            out = func(wrapped)
            usable = isinstance(out, torch.Tensor) and (out.is_floating_point() or out.is_complex())
            y = _functorch._undo_create_differentiable(out, level) if usable else None
    if not usable:
        return torch.func.vjp(func, x)  # torch's own checks and messages

    def pull(cotangent):
        create_graph = torch.is_grad_enabled()
        with _functorch._disable_inference_mode():
            if not out.requires_grad:
                return (torch.zeros_like(diff),)
            (g,) = torch.autograd.grad(out, diff, cotangent, retain_graph=True, create_graph=create_graph,
                                       allow_unused=True)
        return (torch.zeros_like(diff) if g is None else g,)

    return y, pull


def _functorch_helpers():
    """torch.func.vjp's private steps (``torch._functorch.eager_transforms``), or None where a torch lacks one."""
    from torch._functorch import eager_transforms as et

    names = ("grad_increment_nesting", "_wrap_all_tensors", "_create_differentiable",
             "_undo_create_differentiable", "_disable_inference_mode")
    return et if all(hasattr(et, n) for n in names) else None


_functorch = _functorch_helpers()
_NO_HOOKS = ("torch.func.{grad, vjp, jacrev, hessian} don't yet support saved tensor hooks. "
             "Please open an issue with your use case.")


def _autograd_vjp(func, x: torch.Tensor):
    """``torch.func.vjp(func, x)`` for one pull-back, with plain autograd: no functorch transform around every
    operation (the loop engine's path; ``func``'s parameters must not require gradients, so none are taken)."""
    x = x.detach().requires_grad_(True)
    y = func(x)
    return y.detach(), lambda cot: torch.autograd.grad(y, x, cot)


def _sample_maps(target: _Target, state, x, to, agg: str, signs=None, chunk: int = 64, bar=None,
                 pullback=None) -> torch.Tensor:
    """Per-sample maps (B, *spatial): mean over input channels of agg(∂objective/∂x).

    ``signs`` (the shape of the target's output) turns ``to="each"`` with
    ``agg="sq"`` into one backward pass: E_s[(s·J)²] = Σ_units J² for random ±1 ``s``.
    ``pullback``: :func:`_vjp` (None; vmap-able), or :func:`_autograd_vjp` for one pull-back.
    """
    y, pull = (pullback or _vjp)(lambda inp: target(state, inp), x)
    units = _units(tuple(y.shape[1:]), to, target.layer or "output").to(y)
    reduce = AGGREGATIONS[agg]
    if signs is not None:
        (g,) = pull(signs * units)
        return reduce(g).mean(dim=1)
    if not (to == "each" and agg != "signed"):
        (g,) = pull(units.expand_as(y).contiguous())
        return reduce(g).mean(dim=1)
    # every unit separately: one backward pass per unit, batched with vmap over one-hot cotangents
    n = units.numel()
    if bar is not None:
        bar.total = n
        bar.set_description(f"gradient of each of {n} units")
    total = torch.zeros_like(x).mean(dim=1)
    eye = torch.eye(n, dtype=y.dtype, device=y.device)
    for start in range(0, n, chunk):
        cot = eye[start:start + chunk].reshape(-1, 1, *y.shape[1:]).expand(-1, *y.shape).contiguous()
        (gs,) = _vmap(pull)(cot)
        total = total + reduce(gs).mean(dim=2).sum(dim=0)
        if bar is not None:
            bar.update(min(chunk, n - start))
    return total


def _result_from_samples(samples: torch.Tensor, **kw) -> Sensitivity:
    return replace(_from_samples(samples.detach().double().cpu().numpy()), **kw)


def _from_samples(s: np.ndarray) -> Sensitivity:
    """A result of the float64 per-sample maps ``s`` (its other fields left to the caller)."""
    mean = s.mean(axis=0)
    stderr = s.std(axis=0, ddof=1) / math.sqrt(s.shape[0]) if s.shape[0] > 1 else np.full_like(mean, np.nan)
    return Sensitivity(map=mean, stderr=stderr, samples=s, agg="", to=None, layer="", method="",
                       summary=map_metrics(mean))


def gradient_map(model, inputs, to="all", agg: str = "abs", layer: str | None = None, *, n_samples: int = 8,
                 seed: int = 0, device=None, dtype=None, padding: str = "same") -> Sensitivity:
    """The gradient of the chosen units with respect to the input, for the model's own weights.

    Args:
        model: an ``nn.Module`` or a model reference (spec string, ``torchvision:NAME``, …).
        inputs: a batch (B, C, *spatial) of real data, or an input shape (C, H, W) /
            ``"1x64x64"`` for ``n_samples`` inputs of N(0, 1) noise drawn with ``seed``.
        to: ``"all"``, ``"center"``, ``(row, col)`` (an int in 1-D) or ``"each"``.
        agg: ``"abs"``, ``"sq"`` or ``"signed"``.
        layer: dotted name (``model.named_modules()``) of the target layer; default: the output.
        device, dtype: where and in which precision to run (default: the model's; CPU for a model reference).
        padding: padding scheme when ``model`` is a spec string.

    Returns:
        :class:`Sensitivity` (``method="gradient"``; ``stderr`` over the inputs).

    Example:
        >>> s = gradient_map("8*conv3", (1, 32, 32), to="center", agg="sq")
        >>> s.summary["center_corner_ratio"] > 1
        True
    """
    to, agg = _check_to(to), _check_agg(agg)
    shape = tuple(inputs) if isinstance(inputs, (tuple, list)) else None
    device = device_of(model, device)
    module, name = _prepare(model, shape or _shape_of(inputs), padding, device, dtype)
    dt = _param_dtype(module, dtype)
    x = _inputs(inputs, n_samples, seed, device, dt)
    target = _Target(module, layer)
    readout = target.readout(tuple(x.shape[1:]))
    if readout is not None and _bias_only(readout[1]):  # the output is the readout's bias: every gradient is 0
        samples = x.new_zeros((x.shape[0], *x.shape[2:]))
    else:
        with torch.enable_grad(), _progress(None, "gradient map") as bar:
            samples = _sample_maps(target, _state(module), x, to, agg, bar=bar)
    return _result_from_samples(samples, agg=agg, to=to, layer=layer or "output", method="gradient", model=name,
                                input_shape=tuple(x.shape[1:]), seed=seed, readout=readout and readout[0],
                                zero_scales=_init.zero_norms(module),
                                small_scales=small_scales(module, tuple(x.shape[1:]), dict(module.named_parameters())))


def _shape_of(inputs):
    if isinstance(inputs, str):
        return inputs
    return tuple(torch.as_tensor(inputs).shape[1:])


# ------------------------------------------------------------------ initialisations

def _check_std(std):
    """``std`` if it is None or a positive finite number; else an error (std 0 makes every gradient 0)."""
    if std is None:
        return None
    try:
        value = float(std)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(std, bool) or not math.isfinite(value) or value <= 0:
        raise EdgewiseError(f"std={std!r}: the initial weights' standard deviation must be a positive finite number "
                            "(0 makes every weight and gradient zero); e.g. --std 0.1, or leave it out for torch's "
                            "default initialisation")
    return value


def _reinit_(module: nn.Module, seed: int, std: float | None = None, init: str = "auto") -> list[str]:
    """Re-initialise ``module`` in place from ``seed`` (see :mod:`edgewise._init`); returns the parameters left
    as they were."""
    return _init.apply(module, _init.plan(module, init, _check_std(std)), seed)


def reinitialise(model, seed: int = 0, std: float | None = None, input_shape=None, padding: str = "same", *,
                 init: str = "auto") -> nn.Module:
    """A copy of ``model`` with fresh random weights (the caller's model is untouched).

    The copy is initialised the way the model's constructor does (``init="auto"``): by re-running its
    torchvision/timm builder, else by its own init methods, else by every submodule's ``reset_parameters``
    (torch's defaults; with an :class:`~edgewise.errors.EdgewiseWarning` when the model has classes of its
    own whose initialisation is unknown). ``init="builder"``, ``"module"`` or ``"default"`` asks for one;
    the rules are in :mod:`edgewise._init`. Everything is seeded by ``seed`` (the global RNG state is
    restored afterwards). With ``std``, weights with ≥ 2 dims (convolutions, linear layers) are drawn from
    N(0, std²) instead and their biases set to zero. The method used is the copy's ``edgewise_init``.
    """
    source = load(model, input_shape, padding=padding)
    module = _init.keep_builder(source, copy.deepcopy(source))
    plan = _init.plan(module, init, _check_std(std))
    _init.apply(module, plan, seed)
    module.edgewise_init = plan.method
    return module


#: forward + backward activation bytes that one chunk of initialisations may take (sets the default chunk)
CHUNK_BYTES = 768 * 2**20


def auto_chunk(activations: int, n_samples: int = 1, parameters: int = 0, most: int = 8) -> int:
    """How many initialisations to run at once: as many as fit in :data:`CHUNK_BYTES` (forward outputs,
    those saved for backward and the gradients: 3× ``activations`` bytes per sample, and the initialisation's
    ``parameters`` bytes), at least 1, at most ``most``. ResNet-50 on 3×224×224 (122 MiB of activations,
    98 MiB of parameters) gets 1; a small net gets 8."""
    per_init = 3 * max(int(activations), 1) * max(int(n_samples), 1) + int(parameters)
    return max(1, min(int(most), CHUNK_BYTES // per_init))


def _init_seeds(seed: int, n: int) -> list[int]:
    """Independent per-initialisation seeds (runs with different ``seed`` share none)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n, dtype=np.uint32)]


def init_sensitivity(model, input_shape, to="all", n_inits: int = 64, seed: int = 0, std: float | None = None, *,
                     inputs=None, n_samples: int = 1, layer: str | None = None, chunk: int | None = None,
                     device=None, dtype=None, padding: str = "same", on_chunk=None,
                     in_place: bool = False, init: str = "auto") -> Sensitivity:
    """Expected squared gradient over ``n_inits`` fresh initialisations of the model's architecture.

    Each initialisation gets its own ``n_samples`` N(0, 1) inputs (or every one
    reads the batch ``inputs``). Two engines give the same maps (to float rounding): a loop that
    re-initialises one private copy in place and takes the input gradient alone (weights frozen; channels-last
    where a 2-D convolution net reuses its weights enough, :func:`runs_channels_last`), and
    ``torch.func.vmap`` over ``chunk`` initialisations' stacked parameters. ``chunk=None`` picks by the work of
    one forward pass (:func:`engine`): the loop when one pass is at least :data:`LOOP_FLOPS` or has at least
    :data:`LOOP_ACTIVATIONS` of activations (a plain convolution per initialisation beats vmap's grouped one
    there), else vmap over as many initialisations as fit in :data:`CHUNK_BYTES` of forward/backward
    activations (1 to 8); ``chunk=1`` asks for the loop, a larger
    ``chunk`` for vmap. ``on_chunk(done, n_inits)`` is called after each chunk (each initialisation in the
    loop; a progress hook). ``in_place=True`` reinitialises the given module itself instead of a private copy
    (for a caller that discards it: one model's memory less, 0.5 GB for ResNet-50 with the ``global`` remedy).

    Args:
        model: an ``nn.Module`` or a model reference; only its architecture is used.
        input_shape: C×L or C×H×W (e.g. ``(1, 64, 64)`` or ``"1x64x64"``).
        to: ``"all"``, ``"center"``, ``(row, col)`` or ``"each"`` (Σ over units of the
            squared gradient, estimated with one random-sign backward pass per input).
        n_inits: number of initialisations N; ``stderr`` is the standard error over them.
        seed: seeds the initialisations, the inputs and the random signs.
        std: draw weights (≥ 2 dims) from N(0, std²) and zero their biases
            instead of the model's own initialisation.
        init: how each initialisation is drawn: ``"auto"`` (the model's own, as its constructor does:
            its torchvision/timm builder re-run under the seed, else its own init methods, else torch's
            per-layer defaults, with a warning when that is a guess), ``"builder"``, ``"module"`` or
            ``"default"`` (see :func:`reinitialise` and :mod:`edgewise._init`).
        device: where the gradients are computed (None: where the model's parameters are; CPU for a
            model reference). Weights are always drawn on the CPU, so a seed gives the same weights anywhere.

    Returns:
        :class:`Sensitivity` with ``method="init"``, ``agg="sq"`` and ``init`` the method used.

    For a linear network with i.i.d. zero-mean weights of variance σ², the
    expectation equals σ^{2L} times the path counts (see :mod:`edgewise.theory`).
    """
    to = _check_to(to)
    std = _check_std(std)
    if init not in _init.INITS:
        raise EdgewiseError(f"init={init!r}: expected one of {', '.join(map(repr, _init.INITS))}")
    if n_inits < 2:
        raise EdgewiseError(f"n_inits={n_inits}: need at least 2 initialisations for a mean and its error")
    if chunk is not None and chunk < 1:
        raise EdgewiseError(f"chunk={chunk}: must be at least 1")
    from ._trace import parse_shape

    shape = parse_shape(input_shape)
    device = device_of(model, device)
    # initialise in the model's own dtype on the CPU (the random streams depend on both), then cast
    from . import limits

    limits.check_sensitivity(n_inits, shape, chunk=chunk or 1, n_samples=n_samples)  # before the model is built
    template, name = _prepare(model, shape, padding, "cpu", None, private=not in_place)
    acts, flops = limits.forward_cost(template, shape)
    if chunk is None and engine(flops, acts) == "vmap":
        chunk = auto_chunk(acts, n_samples, sum(t.numel() * t.element_size() for t in _state(template).values()))
    chunk = chunk or 1
    limits.check_sensitivity(n_inits, shape, acts, chunk, n_samples)
    dt = _param_dtype(template, dtype)
    given = None if inputs is None else _inputs(inputs, n_samples, seed, device, dt)
    # the plan is decided (and warned about) once, drawn per initialisation
    run = _Run(template, _init.plan(template, init, std), _Target(template, layer), shape, to, n_samples,
               given, device, dt, runs_channels_last(template, shape, flops))
    seeds = _init_seeds(seed, n_inits)
    maps, fixed = [], []
    zero = run.always_bias_only()
    scales = _init.zero_scales(run.plan, run.template)
    with torch.enable_grad(), _progress(n_inits, "initialisations") as bar, silenced(template, run.silent(scales)):
        for start in range(0, n_inits, chunk):
            batch = seeds[start:start + chunk]
            if zero and start and run.bias_only == list(range(start)):  # as the drawn ones showed, nothing to draw
                sample = run.skip(len(batch))
            else:
                sample, fixed = run.loop(batch[0]) if chunk == 1 else run.vmapped(batch)
            maps.append(sample)
            bar.update(len(batch))
            if on_chunk is not None:
                on_chunk(start + len(batch), n_inits)
    readout = run.target.readout(shape)
    return _result_from_samples(torch.cat(maps), agg="sq", to=to, layer=layer or "output", method="init",
                                model=name, input_shape=shape, n_inits=n_inits, std=std, seed=seed, fixed=fixed,
                                init=run.plan.method, readout=readout and readout[0], bias_only=run.bias_only,
                                zero_scales=scales,
                                small_scales=small_scales(template, shape, _init.steady(run.plan, template, fixed)))


#: forward FLOPs of one input from which :func:`init_sensitivity` loops over initialisations (measured on
#: 2-D spec nets and ResNet-18, one thread: there a plain convolution per initialisation runs as fast as or faster
#: than vmap's grouped one, and the loop needs no stacked copies; below it, per-call overhead favours vmap)
LOOP_FLOPS = 100e6
#: activation bytes of one forward pass (2 MiB: this machine's cache per core) from which a lighter net loops too:
#: vmap's stack of 8 initialisations' activations no longer fits near the core, and its grouped convolutions
#: run slower than a plain convolution per initialisation (measured, one thread, 16 initialisations, on 59 spec
#: nets, 1-D and 2-D, 4 to 32 channels, 32² to 256²: ``benchmarks/engine_choice.py``. With the FLOPs alone, vmap
#: ran ``2*conv3, maxpool2, 2*conv3`` 8 wide at 128², 160² and 192² about 1.3×, 1.7–1.8× and 1.9× slower than the
#: loop, slower than a user's plain loop; with this threshold the engine chosen took on average 1.02–1.04× the
#: faster one's time on each of three sets of nets. Rules that also asked for FLOPs per byte or channels per group
#: fitted the first 49 nets better and the last 10, measured after them, worse.)
LOOP_ACTIVATIONS = float(2 ** 21)


def engine(flops: float, activations: float = 0.0) -> str:
    """``"loop"`` or ``"vmap"``: how :func:`init_sensitivity` runs initialisations whose forward pass on one
    input takes ``flops`` floating-point operations and ``activations`` bytes of layer outputs (see
    :data:`LOOP_FLOPS` and :data:`LOOP_ACTIVATIONS`)."""
    return "loop" if flops >= LOOP_FLOPS or activations >= LOOP_ACTIVATIONS else "vmap"


#: forward FLOPs per element of a 2-D convolution net's 4-D weights from which the loop engine runs the net
#: channels-last: there oneDNN's faster channels-last convolutions repay copying each initialisation's weights into
#: that layout (measured, one thread, copy + forward + input gradient against the plain layout: ResNet-18 on 3×64×64,
#: 27 FLOPs per weight: 0.89×; 3×128×128, 106: 0.98×; 3×224×224, 325: 1.05×; ``16*conv3`` width 32 on 1×32×32,
#: 1×64×64, 1×128×128, 2048 to 32768: 1.13×, 1.24×, 1.34×)
CHANNELS_LAST_REUSE = 256


def runs_channels_last(module: nn.Module, shape, flops: float) -> bool:
    """Whether the loop engine runs ``module`` (input C×``shape[1:]``, ``flops`` per forward pass) channels-last:
    a 2-D convolution net doing at least :data:`CHANNELS_LAST_REUSE` FLOPs per element of its 4-D weights."""
    weights = sum(t.numel() for t in _state(module).values() if t.ndim == 4 and t.is_floating_point())
    return len(shape) == 3 and _has_conv2d(module) and flops >= CHANNELS_LAST_REUSE * weights


class _Run:
    """One initialisation sensitivity's set-up: the template re-initialised in place, and its two engines."""

    def __init__(self, template, plan, target, shape, to, n_samples, given, device, dtype, channels_last=False):
        self.template, self.plan, self.target, self.shape, self.to = template, plan, target, shape, to
        self.n_samples, self.given, self.device, self.dtype = n_samples, given, device, dtype
        self.signs_shape = (_output_shape(target, template, shape, _param_dtype(template, None))
                            if to == "each" else None)
        self.channels_last = channels_last  # the loop's layout (see runs_channels_last())
        self.runs: dict | None = None  # the loop's tensors in place of the template's (see _run_tensors)
        self.bias_only: list[int] = []  # initialisations (by index) whose readout outputs its bias alone
        self.done = 0  # initialisations drawn so far

    def _constant(self) -> bool:
        """Whether the initialisation just drawn makes the target's output its readout's bias alone (every
        input gradient exactly zero: a zero-initialised head); counted in ``bias_only``."""
        readout = self.target.readout(self.shape)
        constant = readout is not None and _bias_only(readout[1])
        if constant:
            self.bias_only.append(self.done)
        self.done += 1
        return constant

    def _zeros(self, n: int) -> torch.Tensor:
        return torch.zeros((n, *self.shape[1:]), dtype=self.dtype, device=self.device)

    def always_bias_only(self) -> bool:
        """Whether every initialisation of the plan leaves the readout its bias alone, known without drawing
        (a builder that writes the head's weights with zeros: :func:`edgewise._init.always_zero`)."""
        readout = self.target.readout(self.shape)
        if readout is None:
            return False
        zeros = _weights(readout[1])
        names = [n for n, p in self.template.named_parameters() if any(p is q for q in zeros)]
        return len(names) == len(zeros) and _init.always_zero(self.plan, self.template, names)

    def silent(self, scales: list[str]) -> dict:
        """The layers whose output reaches the target's only through the norms ``scales`` (zero in every
        initialisation): they run as zeros (:mod:`edgewise._silence`), the maps bit for bit the same."""
        if not scales or self.target.layer is not None:
            return {}
        from ._trace import trace

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = trace(self.template, self.shape)
        except Exception:  # noqa: BLE001 - untraceable: every layer runs
            return {}
        return silent_layers(graph, self.template, scales)

    def skip(self, n: int) -> torch.Tensor:
        """The maps of the next ``n`` initialisations when :meth:`always_bias_only`: zeros, nothing drawn."""
        self.bias_only.extend(range(self.done, self.done + n))
        self.done += n
        return self._zeros(n)

    def _inputs(self, seed: int):
        x, signs = _init_inputs(seed, self.shape, self.n_samples, self.signs_shape)
        x = self.given if self.given is not None else x.to(device=self.device, dtype=self.dtype)
        return x, None if signs is None else signs.to(device=self.device, dtype=self.dtype)

    def _maps(self, state, x, signs):
        return _sample_maps(self.target, state, x, self.to, "sq", signs).mean(dim=0)

    def loop(self, seed: int):
        """(1, *spatial) map of the initialisation ``seed``, and the parameters left as they were. The weights
        are drawn into the template as its constructor draws them; with ``channels_last`` the net then runs on
        channels-last copies of its 4-D weights and inputs (oneDNN's fast layout; the template keeps its own)."""
        fixed = _init.apply(self.template, self.plan, seed)
        if self._constant():
            return self._zeros(1), fixed
        state = _state(self.template)
        if self.runs is None:
            self.runs = _run_tensors(state, self.device, self.dtype, self.channels_last)
        with torch.no_grad():
            for k, t in self.runs.items():
                t.copy_(state[k])
        x, signs = self._inputs(seed)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        maps = _sample_maps(self.target, self.runs or None, x, self.to, "sq", signs, pullback=_autograd_vjp)
        return maps.mean(dim=0).detach().unsqueeze(0), fixed

    def vmapped(self, seeds: list[int]):
        """(len(seeds), *spatial) maps, computed at once with vmap over stacked parameters."""
        stacked, xs, signs, fixed, constant = None, [], [], [], []
        for i, s in enumerate(seeds):
            fixed = _init.apply(self.template, self.plan, s)
            constant.append(self._constant())
            state = _state(self.template)
            # written straight into the stacked (channels-last) tensors: no per-init copies
            stacked = stacked or {k: _empty_stack(len(seeds), v, self.device, self.dtype) for k, v in state.items()}
            for k, v in state.items():
                stacked[k][i].copy_(v.detach())
            x, sg = self._inputs(s)
            xs.append(x)
            signs.append(sg)
        if all(constant):
            return self._zeros(len(seeds)), fixed
        sg = None if self.signs_shape is None else torch.stack(signs)
        x = torch.stack(xs) if self.given is not None else _stack_channels_last(xs, weights=False)
        maps = _vmap(self._maps, in_dims=(0, 0, None if sg is None else 0))(stacked, x, sg)
        return maps.detach(), fixed


def _has_conv2d(module: nn.Module) -> bool:
    """Whether ``module`` has a 2-D convolution (torch's or a subclass: edgewise's remedies, timm's)."""
    return any(isinstance(m, nn.modules.conv._ConvNd) and len(m.kernel_size) == 2 for m in module.modules())


def _run_tensors(state: dict, device, dtype, channels_last: bool) -> dict[str, torch.Tensor]:
    """Empty tensors that the loop engine runs with in place of the template's ``state``, where the template's
    own will not do: on ``device``, floating-point ones in ``dtype``, 4-D ones channels-last (``channels_last``);
    the loop copies the template's values into them per initialisation (a copy is all the layout costs: drawing
    straight into channels-last memory would give other weights, as a draw fills memory in storage order)."""
    runs = {}
    for k, v in state.items():
        dt = dtype if v.is_floating_point() else v.dtype
        fmt = torch.channels_last if channels_last and v.ndim == 4 and v.is_floating_point() else None
        if v.device != device or v.dtype != dt or fmt is not None:
            runs[k] = torch.empty_like(v, device=device, dtype=dt, memory_format=fmt or torch.contiguous_format)
    return runs


def _empty_stack(n: int, v: torch.Tensor, device, dt) -> torch.Tensor:
    """An empty (n, *v.shape) tensor for n initialisations of parameter ``v``, laid out as
    :func:`_stack_channels_last` lays out 2-D convolution weights."""
    dtype = dt if v.is_floating_point() else v.dtype
    device = v.device if device is None else device
    if v.ndim != 4:
        return torch.empty((n, *v.shape), dtype=dtype, device=device)
    o, i, kh, kw = v.shape
    return torch.empty((n, o, kh, kw, i), dtype=dtype, device=device).permute(0, 1, 4, 2, 3)


def _stack_channels_last(tensors: list[torch.Tensor], weights: bool) -> torch.Tensor:
    """``torch.stack`` of 2-D convolution weights (N, O, I, kh, kw) or inputs (N, B, C, H, W), laid out
    so that vmap's grouped convolution sees its (N·O, I, kh, kw) weight and (B, N·C, H, W) input in
    channels-last order, which oneDNN runs about 1.5× faster (values are unchanged)."""
    t = torch.stack(tensors)
    if t.ndim != 5:
        return t
    if weights:
        return t.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return t.permute(1, 3, 4, 0, 2).contiguous().permute(3, 0, 4, 1, 2)


def _init_inputs(seed: int, shape, n_samples: int, signs_shape):
    """The N(0, 1) inputs and (for ``to="each"``) the random signs of one initialisation, from its seed
    alone: results do not depend on how initialisations are chunked."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n_samples, *shape), generator=gen, dtype=torch.float64)
    signs = None if signs_shape is None else torch.randint(0, 2, (n_samples, *signs_shape), generator=gen) * 2 - 1
    return x, signs


def _output_shape(target: _Target, module: nn.Module, shape, dtype) -> tuple[int, ...]:
    with torch.no_grad():
        y = target(_state(module), torch.zeros((1, *shape), dtype=dtype))
    return tuple(y.shape[1:])


# ------------------------------------------------------------------ perturbation

#: random sign patterns of the perturbation experiment's all-at-once part, by default
N_SIGNS = 512


def perturbation(model, inputs, eps: float = 1e-4, to="all", layer: str | None = None, *, n_signs: int = N_SIGNS,
                 n_samples: int = 1, seed: int = 0, chunk: int = 256, device=None, dtype=torch.float64,
                 padding: str = "same") -> Perturbation:
    """Nudge input positions by ``eps`` and measure how much the chosen units move.

    Each position alone: ``|f(x + ε·u_p) − f(x)| / ε`` for the objective
    ``f = Σ selected units`` and ``u_p`` = 1 on every channel at position p. All
    positions at once: ``n_signs`` random ±1 patterns ``s``; correlating the
    change with each position's sign recovers that position's share. Both are
    checked against the autograd gradient. For a chain of local layers each single
    nudge is computed on its forward cone only (:mod:`edgewise._cone`: the same
    change, up to float rounding, at a fraction of the cost of whole forwards).

    Args:
        model, inputs, to, layer, padding: as in :func:`gradient_map` (``to="each"`` is not
            available: the objective is one number).
        eps: size of the nudge (in input units).
        n_signs: random sign patterns for the all-at-once experiment.
        dtype: float64 by default, so that finite differences are accurate.
        device: where to run (None: where the model's parameters are; CPU for a model reference).

    Returns:
        :class:`Perturbation`.
    """
    to = _check_to(to)
    if to == "each":
        raise EdgewiseError("perturbation: to='each' is not available (the objective is the sum of the chosen "
                            "units); use 'all', 'center' or a position (row, col)")
    if not eps > 0:
        raise EdgewiseError(f"eps={eps}: must be positive")
    if n_signs < 2:
        raise EdgewiseError(f"n_signs={n_signs}: need at least 2 random sign patterns")
    shape = tuple(inputs) if isinstance(inputs, (tuple, list)) else None
    device = device_of(model, device)
    module, name = _prepare(model, shape or _shape_of(inputs), padding, device, dtype)
    dt = _param_dtype(module, dtype)
    from . import limits

    pshape = shape or tuple(_shape_of(inputs))
    limits.check_perturbation(pshape, limits.activation_bytes(module, pshape), n_signs, chunk, n_samples)
    x = _inputs(inputs, n_samples, seed, device, dt)
    target, state = _Target(module, layer), _state(module)
    spatial = tuple(x.shape[2:])
    n_pos = math.prod(spatial)

    def f(batch):  # (N, C, *spatial) -> (N,)
        y = target(state, batch)
        units = _units(tuple(y.shape[1:]), to, layer or "output").to(y)
        return (y * units).flatten(1).sum(dim=1)

    def directions(idx):  # (P, 1, *spatial): one-hot position masks, shared by every channel
        d = torch.zeros((len(idx), n_pos), dtype=dt, device=x.device)
        d[torch.arange(len(idx)), idx] = 1.0
        return d.reshape(len(idx), 1, *spatial)

    def nudged(xb, f0, idx):  # f(x + ε·u_p) − f(x): on each position's cone where the model allows
        change = nudge_changes(module, xb, idx, eps, lambda shape: _units(shape, to, layer or "output"), layer)
        return f(xb + eps * directions(idx)) - f0 if change is None else change

    gen = torch.Generator().manual_seed(seed)
    signs = (torch.randint(0, 2, (n_signs, n_pos), generator=gen) * 2 - 1).to(device=x.device, dtype=dt)
    single = torch.zeros(n_pos, dtype=dt, device=x.device)
    grad = torch.zeros_like(single)
    corr = torch.zeros((x.shape[0], n_pos), dtype=dt, device=x.device)
    corr_sq = torch.zeros_like(corr)
    total = 0.0
    with torch.no_grad(), _progress(x.shape[0] * (n_pos + n_signs), "perturbation") as bar:
        for b in range(x.shape[0]):
            xb = x[b:b + 1]
            f0 = f(xb)
            with torch.enable_grad():
                _, pull = _vjp(f, xb)
                (g,) = pull(torch.ones(1, dtype=dt, device=x.device))
            grad += g[0].sum(dim=0).reshape(-1).abs()

            def singles(start, stop, xb=xb, f0=f0):
                idx = torch.arange(start, stop, device=x.device)
                single[idx] += (nudged(xb, f0, idx) / eps).abs()
                bar.update(len(idx))

            def patterns(start, stop, xb=xb, f0=f0, b=b):
                nonlocal total
                s = signs[start:stop]
                df = (f(xb + eps * s.reshape(-1, 1, *spatial)) - f0) / eps
                total += float((df ** 2).sum())
                corr[b] += (df[:, None] * s).sum(dim=0)
                corr_sq[b] += ((df[:, None] * s) ** 2).sum(dim=0)
                bar.update(len(s))

            _each_batch(n_pos, chunk, singles)
            _each_batch(n_signs, chunk, patterns)
    B = x.shape[0]
    mean = corr / n_signs  # per sample: unbiased estimate of ∇f·u_p
    var = (corr_sq / n_signs - mean ** 2).clamp(min=0) / (n_signs - 1)
    to_np = lambda t: t.reshape(spatial).double().cpu().numpy()  # noqa: E731
    single_map, grad_map = to_np(single / B), to_np(grad / B)
    sign_map = to_np(mean.abs().mean(dim=0))
    sign_err = to_np(var.sum(dim=0).sqrt() / B)
    scale = float(grad_map.max()) or 1.0
    predicted = float(np.sqrt((grad_map ** 2).sum()))
    return Perturbation(
        single=single_map, gradient=grad_map, random_signs=sign_map, random_signs_stderr=sign_err, eps=eps,
        n_signs=n_signs, to=to, layer=layer or "output", total_change=math.sqrt(total / (n_signs * B)),
        predicted_total=predicted, fd_error=float(np.abs(single_map - grad_map).max() / scale),
        sign_correlation=_pearson(sign_map, grad_map), model=name, input_shape=tuple(x.shape[1:]), seed=seed,
        summary={"single": map_metrics(single_map), "gradient": map_metrics(grad_map),
                 "random_signs": map_metrics(sign_map)})


def _each_batch(n: int, chunk: int, work) -> None:
    """``work(start, stop)`` over ``n`` items in batches of at most ``chunk``; a batch that does not fit in memory is
    run again in halves, and the rest in batches of that size (the activations of one forward pass that the chunk
    was sized by leave out what a model makes inside its layers: Gemma4-ViT asked for 32 GB at 256)."""
    start = 0
    while start < n:
        stop = min(start + chunk, n)
        try:
            work(start, stop)
        except (RuntimeError, MemoryError) as e:
            if not _out_of_memory(e):
                raise
            if chunk == 1:
                raise EdgewiseError("the perturbation experiment does not fit in memory even one nudged input at a "
                                    "time; use a smaller input size") from None
            chunk = max(1, chunk // 2)
            continue
        start = stop


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or any(
        m in str(e) for m in ("can't allocate memory", "not enough memory", "out of memory"))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else math.nan

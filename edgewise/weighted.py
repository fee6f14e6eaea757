"""Weighted paths: the path counts with each path weighted, the expectation they turn into for a real network.

The input gradient of a network is a sum over its paths of products, one factor per step: a weight at a
convolution or Linear layer, the slope of an activation at the unit it passes, a gate's value, a normalisation's
scale. Hold every factor that depends on the data at its value in one forward pass, and draw the weights afresh,
independent with mean 0 (as initialisations are): two distinct paths to an output differ in some weight, so
their cross terms vanish, and

    E_w[Σ_o (∂y_o/∂x_p)²] = Σ over the paths from p of Π (each layer's mean squared weight) · Π (each unit's
                             squared slope, gate value or scale).

For a linear chain of layers of variance σ² that is σ^{2L} × the path count (:mod:`edgewise.theory`); for a
ResNet it weighs the paths through long residual branches and short skips as they are, and a normalisation of
weight 0 or a layer scale of 1e-6 gives its paths weight 0 or 1e-12: the cuts of :mod:`edgewise.live` follow.
The factors held fixed are the mean-field approximation (gradient independence: exact for the weights, an
assumption for the slopes). :func:`weighted_pathways` computes the map exactly for each of ``n_inits``
initialisations (weights and N(0, 1) input as :func:`edgewise.sensitivity.init_sensitivity` draws them), in one
forward pass that carries the squared factors beside the activations and one backward pass, and averages.

Rules (``_Mode``): convolutions (transposed too) and Linear layers get their weight's mean square; per-unit
functions (ReLU, GELU, SiLU, sigmoid, ...) their squared slope at the unit, by autograd; a product ``a·b`` of two
input-dependent tensors ``b²`` on ``a``'s paths and ``a²`` on ``b``'s; a product with a constant (a layer scale)
its square; normalisations their squared scale, their statistics held fixed (as the path counts ignore them); a
softmax gate its squared Jacobian; max-pools send each window's weight to its largest input; average pools,
means, ``einsum`` with constants and interpolations square their coefficients; reshapes, concatenations, slices,
padding and the like move the weights as they move the units. Attention holds its weights A (a softmax of
``q @ kᵀ``, or inside ``scaled_dot_product_attention`` and ``nn.MultiheadAttention``) at their values and weighs
the values' paths by A²; the paths through queries and keys are left out, as the path counts leave them out. A
softmax of an input-dependent tensor that is not scores is a gate (its squared Jacobian), and, moved or scaled into
a product with another input-dependent tensor, attention weights generated without keys (VOLO's outlook attention,
GCNet's context pooling): held likewise.
Anything else that reads the input (an LSTM, linear attention's ``kᵀv``) is refused by name: a missing rule would
drop paths silently. Distinct paths that differ in no random weight (``x·x``, ``x − mean(x)``) keep cross terms
that the sum of squares leaves out: ``x·x`` is taken as its slope ``2x``; a mean's own path is one of n, weight
1/n².
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ._trace import parse_shape
from .errors import EdgewiseError

__all__ = ["weighted_pathways", "weighted_map", "weighted_facts"]

_V = "_edgewise_weight"  # attribute of a tensor of the forward pass: its squared factors (the weighted stream)

# per-unit functions: the squared slope at each unit, by autograd (each is applied unit by unit)
_PER_UNIT = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "selu_",
    "celu", "celu_", "gelu", "silu", "mish", "hardswish", "hardsigmoid", "sigmoid", "sigmoid_", "tanh", "tanh_",
    "softplus", "softsign", "tanhshrink", "logsigmoid", "prelu", "rrelu", "threshold", "exp", "sqrt", "rsqrt",
    "square", "pow", "__pow__", "abs", "neg", "__neg__", "erf", "sin", "cos", "clamp", "clamp_min", "clamp_max",
    "clip", "reciprocal", "_rrelu", "hardshrink", "softshrink",
}
# ops that move units (or make a copy of them): the same op moves their weights
_MOVES = {
    "view", "reshape", "flatten", "unflatten", "permute", "transpose", "t", "contiguous", "squeeze", "unsqueeze",
    "expand", "expand_as", "__getitem__", "narrow", "select", "chunk", "split", "unbind", "tensor_split", "cat",
    "concat", "concatenate", "stack", "hstack", "vstack", "roll", "flip", "repeat", "tile", "repeat_interleave",
    "pad", "_pad", "clone", "to", "float", "double", "half", "bfloat16", "type", "type_as", "movedim", "moveaxis",
    "swapaxes", "swapdims", "view_as", "reshape_as", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "feature_alpha_dropout", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "native_channel_shuffle", "unfold", "fold", "where", "masked_fill", "index_select", "gather", "take_along_dim",
    "diagonal", "split_with_sizes", "identity", "__setitem__", "fill_diagonal_", "im2col", "T", "mT",
}
_CASTS = {"to", "float", "double", "half", "bfloat16", "type", "type_as"}
_ADD = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__", "__isub__", "rsub",
        "subtract"}
_MUL = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply"}
_DIV = {"div", "div_", "__truediv__", "__itruediv__", "true_divide", "divide"}
_CONV = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_MATMUL = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv"}
_NORMS = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "normalize"}
# what reads the input and makes no tensor of it that a path continues through
_CONSTANT = {"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "new_zeros",
             "new_ones", "new_empty", "new_full", "new_tensor", "detach", "detach_", "argmax", "argmin", "eq",
             "ne", "lt", "le", "gt", "ge", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "isnan",
             "isinf", "isfinite", "sign", "round", "floor", "ceil", "trunc", "bool", "long", "int", "argsort",
             "topk_indices", "size", "dim", "numel", "__len__", "stride", "is_contiguous", "tolist", "item"}


def _weight(t):
    """The squared factors a tensor of the forward pass carries (None: it does not depend on the input)."""
    return getattr(t, _V, None) if isinstance(t, torch.Tensor) else None


def _carry(out, weights):
    """Attach ``weights`` to ``out`` (tensors, or sequences of them for ``chunk``/``split``)."""
    if isinstance(out, torch.Tensor):
        if weights is not None:
            setattr(out, _V, weights)
        return
    for o, w in zip(out, weights):
        if isinstance(o, (torch.Tensor, list, tuple)):
            _carry(o, w)


def _name(func) -> str:
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a property: x.T, x.mT, x.shape
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


def _mean_square(w: torch.Tensor) -> torch.Tensor:
    """The mean of ``w²`` in float64; above 65536 entries from each row's norm in ``w``'s precision, their squares
    summed in float64 (float32 rounding, ~1e-7: a float64 copy of every large weight, at one call per layer per
    initialisation, cost ResNet-18's map a fifth of its time)."""
    w = w.detach()
    if w.numel() <= 1 << 16:
        return torch.linalg.vector_norm(w, dtype=torch.float64).square() / max(1, w.numel())
    rows = w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1)
    rows = rows.float() if rows.dtype in (torch.float16, torch.bfloat16) else rows  # (a half's norms: 1e-3 off)
    return torch.linalg.vector_norm(rows, dim=1).double().pow(2).sum() / max(1, w.numel())


class _Mode(TorchFunctionMode):
    """Runs the forward pass as usual and, beside each tensor that depends on the input, its squared factors."""

    def __init__(self, where: str):
        super().__init__()
        self.where = where  # the model, for messages

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = [*args, *kwargs.values()]
        flat += [x for a in flat if isinstance(a, (list, tuple)) for x in a]
        name = _name(func)
        held = [getattr(a, _SCORES) for a in flat if isinstance(a, torch.Tensor) and hasattr(a, _SCORES)]
        if name in _CONSTANT or not (held or any(_weight(a) is not None for a in flat)):
            return func(*args, **kwargs)  # nothing here that a path continues through
        if held and name in _MATMUL and any(_weight(a) is not None for a in flat):  # attention weights @ values
            if "logits" in held:
                raise self._refuse(name, "of attention logits that no softmax made weights (linear attention's "
                                         "kᵀv: its paths are the values', not held ones)")
        elif held:
            return self._on_scores(name, func, args, kwargs, held)
        # rules that read the operands' values run before the op (which may work in place: F.relu(x, inplace=True))
        before = self._before(name, func, args, kwargs)
        out = func(*args, **kwargs)
        target = args[0] if name == "__setitem__" else out  # (x[i] = y works on x and returns None)
        if _tensors(target):
            weights = before if before is not None else self._after(name, func, args, kwargs, target)
            if weights is _SCORES:
                setattr(target, _SCORES, "logits")
            else:
                _carry(target, weights)
                for mark in _marks(name, args, kwargs):
                    for o in (target if isinstance(target, (list, tuple)) else (target,)):
                        if isinstance(o, torch.Tensor):
                            setattr(o, mark, True)
        return out

    def _on_scores(self, name, func, args, kwargs, held: list):
        """Attention logits and weights are held at their values: what moves, scales, masks, biases, mixes (a Linear
        across heads) or normalises them (a sum) gives held values again, and a softmax makes logits weights;
        anything else is refused (it would use them as data)."""
        if name not in _SCORE_OPS and name not in _MOVES:
            raise self._refuse(name, "applied to a product of two input-dependent tensors (held at their values "
                                     "as attention scores, these may only be scaled, biased, masked, reshaped, mixed "
                                     "across heads and normalised, and used as data they have no rule)")
        out = func(*args, **kwargs)
        state = "weights" if name in _SOFTMAX or "weights" in held else "logits"
        for o in (out if isinstance(out, (list, tuple)) else (out,)):
            if isinstance(o, torch.Tensor):
                setattr(o, _SCORES, state)
        return out

    def _before(self, name, func, args, kwargs):
        if name in _PER_UNIT:
            if any(_weight(a) is not None for a in [*args[1:], *kwargs.values()]):
                raise self._refuse(name, "with an input-dependent parameter")
            return _weight(args[0]) * _slope(func, args, kwargs) ** 2
        if name in _MUL or name in _DIV:
            return _product(args[0], args[1] if len(args) > 1 else kwargs["other"], name in _DIV)
        if name == "addcmul":
            value = kwargs.get("value", args[3] if len(args) > 3 else 1)
            prod = _product(args[1], args[2], False)
            parts = [w for w in (_weight(args[0]), None if prod is None else prod * value ** 2) if w is not None]
            return _broadcast_sum(parts, args[0], args[1], args[2])
        if name in _NORMS:
            return _weight(args[0]) * _norm_scale(name, args, kwargs) ** 2
        if "max_pool" in name:
            return _max_pool(name, args, kwargs)
        if name in ("norm", "vector_norm", "linalg_vector_norm"):
            return _vector_norm(name, args, kwargs)
        if name in _SOFTMAX:
            return _softmax(args, kwargs)
        return None

    def _after(self, name, func, args, kwargs, out):
        if name in _MOVES:
            return _moved(func, name, args, kwargs)
        if name == "interpolate":
            return _resampled(args, kwargs, out)
        if name in _ADD:
            b = args[1] if len(args) > 1 else kwargs.get("other")
            alpha = kwargs.get("alpha", 1)
            parts = [w for w in (_weight(args[0]), None if _weight(b) is None else _weight(b) * alpha ** 2)
                     if w is not None]
            return _broadcast_sum(parts, out)
        if name in _CONV:
            return self._conv(func, args, kwargs)
        if name == "linear":
            w = args[1] if len(args) > 1 else kwargs["weight"]
            if _weight(w) is not None:
                raise self._refuse(name, "with an input-dependent weight")
            return _full_product(_weight(args[0]), _mean_square(w), w.shape[0])
        if name in _MATMUL:
            return self._matmul(func, name, args)
        if name == "einsum":
            return _einsum(func, args)
        if name in _AVG_POOLS:
            return _avg_pool(func, name, args, kwargs, out)
        if name in ("mean", "sum", "nansum", "nanmean"):
            w = func(_weight(args[0]), *args[1:], **kwargs)
            return w / (args[0].numel() / out.numel()) if name in ("mean", "nanmean") else w
        if name in ("amax", "max") and (len(args) > 1 or "dim" in kwargs):
            return _routed_max(args, kwargs, out)
        if name == "scaled_dot_product_attention":
            return _attention(args, kwargs)
        if name == "multi_head_attention_forward":
            return self._multi_head(args, kwargs)
        raise self._refuse(name)

    def _conv(self, func, args, kwargs):
        """Every weight of a convolution has its mean square m, so each out-channel of a group gets m times the
        box sum of its group's in-channels' weights (the convolution with an all-m kernel, without its cost);
        a transposed convolution likewise."""
        transposed = _name(func).startswith("conv_transpose")
        names = ("input", "weight", "bias", "stride", "padding") + (
            ("output_padding", "groups", "dilation") if transposed else ("dilation", "groups"))
        arg = dict(zip(names, args), **kwargs)
        w = arg["weight"]
        if _weight(w) is not None:
            raise self._refuse(_name(func), "with an input-dependent weight")
        v, groups = _weight(arg["input"]), arg.get("groups", 1)
        out_ch = w.shape[1] * groups if transposed else w.shape[0]
        per_group = v.reshape(v.shape[0], groups, -1, *v.shape[2:]).sum(2)
        opts = {k: arg[k] for k in ("stride", "padding", "dilation", "output_padding") if k in arg}
        summed = None if transposed else _sum_pool(per_group, tuple(w.shape[2:]), **opts)
        if summed is None:
            summed = func(per_group, v.new_ones((groups, 1, *w.shape[2:])), None, groups=groups, **opts)
        summed = summed * _mean_square(w)
        return summed if out_ch == groups else summed.repeat_interleave(out_ch // groups, dim=1)

    def _matmul(self, func, name, args):
        a, b = args[0], args[1]
        generated = hasattr(a, _GENERATED), hasattr(b, _GENERATED)
        if _weight(a) is not None and _weight(b) is not None and generated[0] != generated[1]:
            # attention weights generated without keys (VOLO's outlook attention, GCNet's context pooling) times
            # the values: held at their values, as attention's are (their own paths left out, as the counts do)
            return func(a.detach().to(_weight(b).dtype) ** 2, _weight(b)) if generated[0] else \
                func(_weight(a), b.detach().to(_weight(a).dtype) ** 2)
        if _weight(a) is not None and _weight(b) is not None:
            if hasattr(a, _POOLED) or hasattr(b, _POOLED):
                raise self._refuse(name, "of a product of softmax weights with the values (linear attention's "
                                         "φ(q)·(softmax(k)ᵀv): its paths are the queries' and values', not held ones)")
            return _SCORES  # q @ kᵀ: attention scores, held (used as anything but scores, refused)
        if _weight(a) is not None and _is_weight(b) and b.dim() == 2:  # x @ W: a Linear layer written out
            return _full_product(_weight(a), _mean_square(b), b.shape[1])
        if _weight(a) is not None:
            return func(_weight(a), b.detach().to(_weight(a).dtype) ** 2)
        return func(a.detach().to(_weight(b).dtype) ** 2, _weight(b))

    def _multi_head(self, args, kwargs):
        """``nn.MultiheadAttention`` (sequence first, as it calls this): the values' projection, each head's
        attention weights held (:func:`_attention`), the output projection."""
        names = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
                 "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
                 "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
                 "k_proj_weight", "v_proj_weight")
        a = dict(zip(names, args), **kwargs)
        if a.get("bias_k") is not None or a.get("add_zero_attn") or a.get("key_padding_mask") is not None \
                or a.get("attn_mask") is not None or a.get("is_causal"):
            raise self._refuse("multi_head_attention_forward", "with extra keys or masks")
        heads, (length, batch, dim) = a["num_heads"], a["query"].shape
        if a.get("use_separate_proj_weight"):
            w_q, w_k, w_v = a["q_proj_weight"], a["k_proj_weight"], a["v_proj_weight"]
        else:
            w_q, w_k, w_v = a["in_proj_weight"].chunk(3)
        b_q, b_k, b_v = (None, None, None) if a.get("in_proj_bias") is None else a["in_proj_bias"].chunk(3)

        def split(t):  # (L, N, E) -> (N, heads, L, E / heads)
            return t.reshape(t.shape[0], batch, heads, -1).permute(1, 2, 0, 3)

        q = split(F.linear(a["query"].detach(), w_q.detach(), None if b_q is None else b_q.detach()))
        k = split(F.linear(a["key"].detach(), w_k.detach(), None if b_k is None else b_k.detach()))
        value = _weight(a["value"])
        if value is None:
            return None
        v = split(_full_product(value, _mean_square(w_v), w_v.shape[0]))
        held = _attention_weights(q, k).to(v.dtype) ** 2 @ v  # (N, heads, L, E / heads)
        mixed = held.permute(2, 0, 1, 3).reshape(length, batch, dim)
        w_o = a["out_proj_weight"]
        return (_full_product(mixed, _mean_square(w_o), w_o.shape[0]), None)

    def _refuse(self, name: str, what: str = "") -> EdgewiseError:
        return EdgewiseError(f"weighted paths: no rule for {name!r}{' ' + what if what else ''} in {self.where}; "
                             "the weights of its paths are unknown (supported: convolutions, Linear layers, per-unit "
                             "functions, sums, products, normalisations, max/average pooling, reshapes and "
                             "concatenations)")


# attribute of attention scores, held at their values (no weights of paths): "logits" (q @ kᵀ and what follows),
# "weights" (after a softmax: what may weigh values)
_SCORES = "_edgewise_scores"
# attribute of a softmax's output of an input-dependent tensor that is not scores (and of what moves or scales it):
# in a product with another input-dependent tensor it is attention weights generated without keys, held
_GENERATED = "_edgewise_generated"
# attribute of the product of generated weights with values (and of what moves or scales it): a product with it is
# linear attention's φ(q)·(kᵀv), refused
_POOLED = "_edgewise_pooled"
_SOFTMAX = {"softmax", "_softmax"}
# what attention scores may go through and stay held values (besides the moves)
# (a Linear or a 1×1 convolution mixing heads: CaiT's and EfficientFormer-V2's talking heads; a sum renormalising
# them: ConViT's)
_SCORE_OPS = _ADD | _MUL | _DIV | {"softmax", "_softmax", "masked_fill", "masked_fill_", "where", "neg", "__neg__",
                                   "linear", "conv2d", "sum", "mean"}

_AVG_POOLS = {"avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
              "adaptive_avg_pool3d"}


def _sum_pool(v: torch.Tensor, kernel: tuple, stride=1, padding=0, dilation=1):
    """The sum of ``v`` over each window of a convolution of ``kernel`` (zero padding): a sum pool, one call,
    where the window is dense and its padding a number (None where not: the convolution with an all-ones kernel
    does it, which torch runs group by group in float64)."""
    nd = len(kernel)
    per_axis = (lambda a: (a,) * nd if isinstance(a, int) else tuple(a))
    if isinstance(padding, str) or any(d != 1 for d in per_axis(dilation)) or nd not in (1, 2, 3):
        return None
    stride, padding = per_axis(stride), per_axis(padding)
    if nd == 1:  # (avg_pool1d has no divisor_override: as a 2-D pool of height 1)
        out = _sum_pool(v.unsqueeze(2), (1, *kernel), (1, *stride), (0, *padding))
        return out.squeeze(2)
    if any(p > k // 2 for p, k in zip(padding, kernel)):  # (a pool pads at most half its window)
        v = F.pad(v, [q for p in reversed(padding) for q in (p, p)])
        padding = (0,) * nd
    pool = F.avg_pool2d if nd == 2 else F.avg_pool3d
    return pool(v, kernel, stride, padding, count_include_pad=True, divisor_override=1)


def _marks(name: str, args, kwargs) -> list[str]:
    """The marks the op's output carries: generated attention weights (a softmax's output, or a move, cast, dropout
    of them or a product or quotient with a constant), their product with the values, and the same moved or
    scaled."""
    first = args[0] if args else None
    scaled = name in _MOVES or ((name in _MUL or name in _DIV) and
                                not any(_weight(a) is not None for a in [*args[1:], *kwargs.values()]))
    marks = [_GENERATED] if name in _SOFTMAX or (scaled and hasattr(first, _GENERATED)) else []
    if (name in _MATMUL and any(hasattr(a, _GENERATED) for a in args[:2])) or (scaled and hasattr(first, _POOLED)):
        marks.append(_POOLED)
    return marks


def _tensors(out) -> bool:
    """Whether ``out`` is a tensor or a sequence holding tensors (``(output, None)`` of an attention)."""
    return isinstance(out, torch.Tensor) or (isinstance(out, (list, tuple))
                                             and any(isinstance(o, torch.Tensor) for o in out))


def _broadcast_sum(parts: list, *like):
    """The sum of ``parts`` at the shape the tensors ``like`` broadcast to (None if there are no parts)."""
    if not parts:
        return None
    total = parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])
    shape = torch.broadcast_shapes(*[t.shape for t in like if isinstance(t, torch.Tensor)])
    return total.expand(shape) if total.shape != shape else total


def _swap(a):
    """An argument with every tensor that depends on the input replaced by its weights, and every other float
    tensor (a constant operand of a concatenation) by zeros; index tensors stay."""
    if isinstance(a, (list, tuple)):
        return type(a)(_swap(x) for x in a)
    w = _weight(a)
    if w is not None:
        return w
    if isinstance(a, torch.Tensor) and a.is_floating_point():
        return torch.zeros_like(a)
    return a


def _moved(func, name, args, kwargs):
    """The weights moved as the op moves the units; a constant's weight (a padding value, a fill) is 0; a cast
    leaves them in float64."""
    if name in _CASTS:
        return _weight(args[0])
    kwargs = {k: _swap(v) for k, v in kwargs.items()}
    args = [_swap(a) for a in args]
    if name in ("pad", "_pad"):
        if len(args) > 3 and args[3] is not None:
            args[3] = 0.0
        if kwargs.get("value") is not None:
            kwargs["value"] = 0.0
    if name in ("masked_fill", "masked_fill_"):
        if len(args) > 2:
            args[2] = 0.0
        if "value" in kwargs:
            kwargs["value"] = 0.0
    if name.endswith("_") or name == "__setitem__":  # in place: on a copy (weights are shared between tensors)
        args[0] = args[0].clone()
        result = func(*args, **kwargs)
        return args[0] if name == "__setitem__" else result
    return func(*args, **kwargs)


def _is_weight(t) -> bool:
    """A parameter or a view of one (``self.weight.t()``): a random weight, whose mean square its paths get."""
    return isinstance(t, nn.Parameter) or isinstance(getattr(t, "_base", None), nn.Parameter)


def _full_product(v: torch.Tensor, m: torch.Tensor, n_out: int) -> torch.Tensor:
    """``v @ W`` for a (·, n_out) matrix W of entries all ``m``: each output gets m times the sum of ``v``."""
    return (v.sum(-1, keepdim=True) * m).expand(*v.shape[:-1], n_out)


def _product(a, b, divide: bool):
    """Squared factors of ``a·b``: ``b²`` on ``a``'s paths and ``a²`` on ``b``'s; of ``a/b``: ``1/b²`` and
    ``a²/b⁴``; ``x·x`` has slope ``2x``. A constant ``b`` (a layer scale) counts its value squared."""
    wa, wb = _weight(a), _weight(b)
    if a is b and not divide:
        return _broadcast_sum([wa * (2 * a.detach()) ** 2], a)
    value = (lambda t: t.detach() if isinstance(t, torch.Tensor) else t)
    parts = []
    if wa is not None:
        parts.append(wa / value(b) ** 2 if divide else wa * value(b) ** 2)
    if wb is not None:
        parts.append(wb * (value(a) / value(b) ** 2 if divide else value(a)) ** 2)
    return _broadcast_sum(parts, a, b)


def _arg(args, kwargs, i: int, key: str, default):
    return args[i] if len(args) > i else kwargs.get(key, default)


_ATEN = torch.ops.aten
# slopes that torch's own backward kernel for the function gives in one call, fed a gradient of ones: the numbers
# autograd gives (the same kernel), without building and running a graph for each activation
_BACKWARD = {
    "silu": lambda g, x, a, k: _ATEN.silu_backward(g, x),
    "sigmoid": lambda g, x, a, k: _ATEN.sigmoid_backward(g, torch.sigmoid(x)),
    "tanh": lambda g, x, a, k: _ATEN.tanh_backward(g, torch.tanh(x)),
    "gelu": lambda g, x, a, k: _ATEN.gelu_backward(g, x, approximate=_arg(a, k, 1, "approximate", "none")),
    "hardswish": lambda g, x, a, k: _ATEN.hardswish_backward(g, x),
    "hardsigmoid": lambda g, x, a, k: _ATEN.hardsigmoid_backward(g, x),
    "relu6": lambda g, x, a, k: _ATEN.hardtanh_backward(g, x, 0.0, 6.0),
    "hardtanh": lambda g, x, a, k: _ATEN.hardtanh_backward(g, x, _arg(a, k, 1, "min_val", -1.0),
                                                           _arg(a, k, 2, "max_val", 1.0)),
    "leaky_relu": lambda g, x, a, k: _ATEN.leaky_relu_backward(g, x, _arg(a, k, 1, "negative_slope", 0.01), False),
}
_BACKWARD.update({f"{n}_": f for n, f in _BACKWARD.items() if n in ("sigmoid", "tanh", "hardtanh", "leaky_relu")})


def _slope(func, args, kwargs) -> torch.Tensor:
    """The derivative of a per-unit function at each unit of its input (by autograd; ReLU's directly, and the
    common activations' by their backward kernels, :data:`_BACKWARD`)."""
    name = _name(func)
    if name in ("relu", "relu_"):
        return (args[0] > 0).to(args[0].dtype)
    if name in _BACKWARD:
        x = args[0].detach()
        return _BACKWARD[name](torch.ones((), dtype=x.dtype, device=x.device).expand_as(x), x, args, kwargs)
    with torch.enable_grad():
        x = args[0].detach().clone().requires_grad_(True)
        y = func(x.clone(), *args[1:], **kwargs)  # (a copy: in-place functions such as relu_)
        (slope,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    return torch.zeros_like(x) if slope is None else slope


def _norm_scale(name, args, kwargs) -> torch.Tensor:
    """Each unit's scale in a normalisation, its statistics held fixed: weight / √(variance + eps)."""
    x = args[0].detach()

    def arg(i, key, default=None):
        value = args[i] if len(args) > i else kwargs.get(key, default)
        return default if value is None and default is not None else value

    channel = (1, -1) + (1,) * (x.dim() - 2)  # a per-channel vector against (B, C, ...)
    if name == "batch_norm":
        var, weight, training, eps = arg(2, "running_var"), arg(3, "weight"), arg(5, "training", False), \
            arg(7, "eps", 1e-5)
        if training or var is None:
            var = x.transpose(0, 1).reshape(x.shape[1], -1).var(dim=1, unbiased=False)
        scale = 1 / torch.sqrt(var.detach().reshape(channel) + eps)
        return scale if weight is None else scale * weight.detach().reshape(channel)
    if name in ("layer_norm", "rms_norm"):
        dims = tuple(range(-len(arg(1, "normalized_shape")), 0))
        weight, eps = arg(2, "weight"), arg(4 if name == "layer_norm" else 3, "eps", 1e-5)
        stat = x.var(dim=dims, unbiased=False, keepdim=True) if name == "layer_norm" else \
            (x ** 2).mean(dim=dims, keepdim=True)
        scale = 1 / torch.sqrt(stat + eps)
        return scale if weight is None else scale * weight.detach()
    if name == "group_norm":
        groups, weight, eps = arg(1, "num_groups"), arg(2, "weight"), arg(4, "eps", 1e-5)
        g = x.reshape(x.shape[0], groups, -1)
        scale = (1 / torch.sqrt(g.var(dim=2, unbiased=False, keepdim=True) + eps)).expand_as(g).reshape(x.shape)
        return scale if weight is None else scale * weight.detach().reshape(channel)
    if name == "instance_norm":
        weight, eps = arg(3, "weight"), arg(7, "eps", 1e-5)
        scale = 1 / torch.sqrt(x.var(dim=tuple(range(2, x.dim())), unbiased=False, keepdim=True) + eps)
        return scale if weight is None else scale * weight.detach().reshape(channel)
    p, dim, eps = arg(1, "p", 2.0), arg(2, "dim", 1), arg(3, "eps", 1e-12)  # normalize
    return 1 / x.norm(p=p, dim=dim, keepdim=True).clamp_min(eps)


def _attention(args, kwargs):
    """``softmax(q kᵀ · scale + mask) v`` with the attention weights A held at their values: the values' weights
    through A² (queries and keys move A: their paths are left out, as the path counts leave them out)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    arg = dict(zip(names, args), **kwargs)
    if _weight(arg["value"]) is None:
        return None
    key, value = arg["key"], _weight(arg["value"])
    heads = arg["query"].shape[-3] // key.shape[-3] if arg["query"].dim() > 3 else 1
    if heads > 1:  # grouped-query attention: each key and value head serves that many query heads
        key, value = key.repeat_interleave(heads, -3), value.repeat_interleave(heads, -3)
    held = _attention_weights(arg["query"], key, arg.get("attn_mask"), arg.get("is_causal"), arg.get("scale"))
    return held.to(value.dtype) ** 2 @ value


def _einsum(func, args):
    """``einsum`` of one input-dependent operand and constants: the same sum with the constants squared (a
    parameter: its mean square); of two, attention scores (as ``q @ kᵀ``)."""
    equation, operands = args[0], list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:])
    live = [i for i, t in enumerate(operands) if _weight(t) is not None]
    if len(live) > 1:
        return _SCORES
    (i,) = live
    w = _weight(operands[i])
    squared = [w if j == i else (torch.full_like(t, _mean_square(t)) if _is_weight(t) else t.detach() ** 2).to(w)
               for j, t in enumerate(operands)]
    return func(equation, *squared)


def _attention_weights(q, k, mask=None, causal: bool = False, scale=None) -> torch.Tensor:
    """``softmax(q kᵀ · scale + mask)`` (the weights scaled dot-product attention takes), from the values."""
    q, k = q.detach(), k.detach()
    logits = (q @ k.transpose(-2, -1)) * (scale or 1 / math.sqrt(q.shape[-1]))
    if causal:
        mask = torch.ones(logits.shape[-2:], dtype=torch.bool, device=logits.device).tril()
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else logits + mask
    return torch.softmax(logits, dim=-1)


def _softmax(args, kwargs):
    """A softmax of input-dependent values that are not attention logits (a gate over a few branches: ResNeSt's
    split attention): each pair (i, j) along ``dim`` is one path of slope ``y_i (δ_ij − y_j)``, so
    ``w'_i = y_i² ((1 − 2 y_i) w_i + Σ_j y_j² w_j)``."""
    dim = args[1] if len(args) > 1 else kwargs["dim"]
    y = torch.softmax(args[0].detach(), dim=dim).to(torch.float64)
    w = _weight(args[0])
    return y ** 2 * ((1 - 2 * y) * w + (y ** 2 * w).sum(dim, keepdim=True))


def _vector_norm(name, args, kwargs):
    """``‖x‖_p`` over ``dim`` (GRN's statistic, an L2 pool): Σ over the units reduced of each one's weight times
    its slope squared, ``(|x|^(p−1) / ‖x‖^(p−1))²``."""
    x = args[0].detach()
    keys = ("ord", "dim", "keepdim") if name != "norm" else ("p", "dim", "keepdim")
    arg = dict(zip(keys, args[1:]), **kwargs)
    p = arg.get("ord", arg.get("p", 2))
    p = 2.0 if p in (None, "fro") else p
    if not isinstance(p, (int, float)) or not 1 <= p < math.inf:
        raise EdgewiseError(f"weighted paths: no rule for the {p}-norm of an input-dependent tensor")
    dim, keep = arg.get("dim"), bool(arg.get("keepdim", False))
    dims = tuple(range(x.dim())) if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
    n = x.abs().pow(p).sum(dims, keepdim=True).pow(1 / p)
    slope = (x.abs() / n.clamp_min(torch.finfo(x.dtype).tiny)).pow(p - 1)
    return (_weight(args[0]) * slope ** 2).sum(dims, keepdim=keep)


def _max_pool(name, args, kwargs):
    """A max-pool's weights: each window's output takes the weights of the input it passes (its largest)."""
    x = args[0].detach()
    nd = x.dim() - 2
    if "adaptive" in name:
        size = args[1] if len(args) > 1 else kwargs["output_size"]
        _, idx = getattr(F, f"adaptive_max_pool{nd}d")(x, size, return_indices=True)
    else:
        arg = dict(zip(("kernel_size", "stride", "padding", "dilation", "ceil_mode"), args[1:]), **kwargs)
        arg.pop("return_indices", None)
        _, idx = getattr(F, f"max_pool{nd}d")(x, return_indices=True, **arg)
    routed = _weight(args[0]).reshape(*x.shape[:2], -1).gather(2, idx.flatten(2)).reshape(idx.shape)
    return routed


def _avg_pool(func, name, args, kwargs, out):
    """An average pool's weights: Σ over each window's taps of the tap's weight times its coefficient squared,
    i.e. the pool of the weights times the coefficient (1 / the divisor the pool uses)."""
    x = args[0]
    if "adaptive" in name:
        coef = _adaptive_coef(x.shape[2:], out.shape[2:]).to(_weight(x))
    else:
        ones = torch.ones_like(x[:1, :1], dtype=torch.float64)  # (the coefficients in the weights' precision)
        coef = func(ones, *args[1:], **kwargs) / _inside(ones, args, kwargs)  # (inside / divisor) / inside
    return func(_weight(x), *args[1:], **kwargs) * coef


def _inside(ones, args, kwargs) -> torch.Tensor:
    """Taps of each average-pool window inside the input (at least 1)."""
    names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
    arg = dict(zip(names, args[1:]), **kwargs)
    nd = ones.dim() - 2
    arg.pop("count_include_pad", None)
    arg["divisor_override"] = 1
    if nd == 1:  # (avg_pool1d has no divisor_override: as a 2-D pool of height 1)
        k = arg.pop("kernel_size")
        flat = (lambda v, h: (h, v if isinstance(v, int) else v[0]))  # (height h, the 1-D value)
        arg = {**arg, "stride": flat(arg.get("stride") or k, 1), "padding": flat(arg.get("padding", 0), 0)}
        return F.avg_pool2d(ones.unsqueeze(2), flat(k, 1), **arg).squeeze(2).clamp_min(1)
    return getattr(F, f"avg_pool{nd}d")(ones, **arg).clamp_min(1)


def _adaptive_coef(n_in, n_out) -> torch.Tensor:
    """1 / (taps of each adaptive window), per output position."""
    coef = torch.ones(())
    for i, (a, b) in enumerate(zip(n_in, n_out)):
        sizes = torch.tensor([math.ceil((j + 1) * a / b) - (j * a) // b for j in range(b)], dtype=torch.float64)
        coef = coef.unsqueeze(-1) * (1 / sizes).reshape((1,) * i + (-1,))
    return coef


def _routed_max(args, kwargs, out):
    """``x.amax(dims)`` (a global max pool): the weights of the input each maximum comes from (shared by ties)."""
    x = args[0].detach()
    dim = args[1] if len(args) > 1 else kwargs["dim"]
    values = out[0] if isinstance(out, tuple) else out
    keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    v = values.detach()
    if not keep:
        for d in sorted(d % x.dim() for d in dims):
            v = v.unsqueeze(d)
    hit = (x == v).to(x.dtype)
    routed = (_weight(args[0]) * hit).sum(dims, keepdim=keep) / hit.sum(dims, keepdim=keep)
    return (routed, None) if isinstance(out, tuple) else routed


def _resampled(args, kwargs, out):
    """``F.interpolate`` (nearest, linear, bilinear, bicubic, area: each a product of one matrix per axis): the
    weights through each axis's matrix with its entries squared. The matrices are the interpolation of the unit
    vectors of that axis, the other axes left as they are."""
    names = ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias")
    arg = dict(zip(names, args), **kwargs)
    x, mode = arg["input"], arg.get("mode") or "nearest"
    if mode == "trilinear" or arg.get("antialias"):
        raise EdgewiseError(f"weighted paths: no rule for interpolate(mode={mode!r}"
                            f"{', antialias=True' if arg.get('antialias') else ''})")
    w, nd = _weight(x), x.dim() - 2
    scale = arg.get("scale_factor")
    scale = None if scale is None else (scale,) * nd if isinstance(scale, (int, float)) else tuple(scale)
    for axis, (a, b) in enumerate(zip(x.shape[2:], out.shape[2:])):
        eye = torch.eye(a, dtype=torch.float64, device=w.device)
        eye = eye.reshape(a, 1, *[a if i == axis else 1 for i in range(nd)])
        opts = {"align_corners": arg.get("align_corners")} if mode in ("linear", "bilinear", "bicubic") else {}
        if scale is None:  # (a scale factor maps coordinates by itself, not by the sizes' ratio: the same call)
            opts["size"] = [b if i == axis else 1 for i in range(nd)]
        else:
            opts.update(scale_factor=[scale[axis] if i == axis else 1.0 for i in range(nd)],
                        recompute_scale_factor=arg.get("recompute_scale_factor"))
        matrix = F.interpolate(eye, mode=mode, **opts).reshape(a, b)  # [input unit, output unit]
        w = torch.tensordot(w, matrix ** 2, dims=([axis + 2], [0])).movedim(-1, axis + 2)
    return w


def weighted_map(forward, x: torch.Tensor, units=None, where: str = "the model") -> torch.Tensor:
    """For the weights the model holds and input ``x`` (B, C, ...): per sample, Σ over the paths from each input
    position to the ``units`` of the products of squared factors, averaged over the input channels (B, *spatial).
    ``forward(x)``: the model's output (or a layer's); ``units``: a mask over one sample's output, or a function of
    its shape that makes one (default: every unit)."""
    start = torch.ones_like(x, dtype=torch.float64, requires_grad=True)
    x = x.detach()
    setattr(x, _V, start)
    with torch.enable_grad(), _Mode(where):
        y = forward(x)
    w = _weight(y)
    if w is None:
        raise EdgewiseError(f"weighted paths: the output of {where} does not depend on its input")
    units = torch.ones(()) if units is None else units(tuple(y.shape[1:])) if callable(units) else units
    with torch.enable_grad():
        (g,) = torch.autograd.grad((w * units.to(w)).sum(), start, allow_unused=True)
    return torch.zeros_like(start[:, 0]) if g is None else g.mean(dim=1)


def weighted_pathways(model, input_shape, to="all", n_inits: int = 8, seed: int = 0, std: float | None = None, *,
                      layer: str | None = None, padding: str = "same", init: str = "auto", device=None):
    """The path counts weighted: ``E_w[Σ_o (∂y_o/∂x_p)²]`` with the data-dependent factors held fixed (see the
    module's docstring), for each of ``n_inits`` initialisations, averaged.

    Args:
        model: an ``nn.Module`` or a model reference; its architecture and initialisation are used.
        input_shape: C×L or C×H×W.
        to: ``"all"``, ``"center"`` or a position: the output units whose expected squared gradients are summed;
            ``"each"`` is ``"all"`` (a sum over the units of each one's squared gradient is what this is).
        n_inits: initialisations (weights and input drawn as :func:`edgewise.sensitivity.init_sensitivity` draws
            them for the same ``seed``: the same realisations).
        std, init: how each initialisation is drawn (see :func:`edgewise.sensitivity.init_sensitivity`).
        layer: dotted name of the target layer (default: the output).
        device: where the forward and backward passes run (None: where the model's parameters are; the CPU for a
            model reference). Weights are drawn on the CPU, so a seed gives the same weights and maps anywhere.

    Returns:
        :class:`edgewise.sensitivity.Sensitivity` with ``method="weighted"`` (``stderr`` over the
        initialisations).

    Example:
        >>> w = weighted_pathways("6*conv3", (1, 16, 16), n_inits=2)
        >>> float(w.map[8, 8]) > float(w.map[0, 0])
        True
    """
    from . import _init
    from .sensitivity import (_check_std, _check_to, _init_inputs, _init_seeds, _param_dtype, _prepare,
                              _result_from_samples, _Target, _units)

    to, std = _check_to(to), _check_std(std)
    if n_inits < 1:
        raise EdgewiseError(f"n_inits={n_inits}: need at least one initialisation")
    shape = parse_shape(input_shape)
    device = _float64_device(model, device)
    from . import limits

    limits.check_weighted(n_inits, shape)  # (before the model is built)
    template, name = _prepare(model, shape, padding, "cpu", None)
    limits.check_weighted(n_inits, shape, limits.forward_cost(template, shape)[0])
    plan = _init.plan(template, init, std)
    dtype = _param_dtype(template, None)
    runner = _runner(template, device)
    target, maps = _Target(runner, layer), []
    for s in _init_seeds(seed, n_inits):
        _init.apply(template, plan, s)
        if runner is not template:
            with torch.no_grad():
                for a, b in zip(_tensors_of(runner), _tensors_of(template)):
                    a.copy_(b)
        x, _ = _init_inputs(s, shape, 1, None)
        maps.append(weighted_map(lambda inp: target(None, inp), x.to(device=device, dtype=dtype),
                                 lambda out: _units(out, to, layer or "output"), name).cpu())
    return _result_from_samples(torch.cat(maps), agg="sq", to=to, layer=layer or "output", method="weighted",
                                model=name, input_shape=shape, n_inits=n_inits, std=std, seed=seed, init=plan.method)


def _float64_device(model, device) -> torch.device:
    """Where the weighted paths run (:func:`edgewise._device.device_of`), refused before any work where float64
    (the weights' precision) is not supported."""
    from ._device import device_of, usable_device

    dev = usable_device(device, "weighted paths") or device_of(model)
    try:
        torch.zeros(1, dtype=torch.float64, device=dev)
    except (RuntimeError, TypeError) as e:
        raise EdgewiseError(f"weighted paths: device {str(dev)!r} has no float64 numbers, which the weighted paths "
                            f"are summed in ({str(e).strip().splitlines()[0]}); use device='cpu'") from None
    return dev


def _runner(template: nn.Module, device: torch.device) -> nn.Module:
    """What runs the passes: the template (drawn on the CPU: the random streams depend on the device) where it is,
    else a copy on ``device`` that each initialisation is copied into, whose parameters stay parameters (the
    rules tell a weight from data by that)."""
    return template if device.type == "cpu" else copy.deepcopy(template).to(device)


def _tensors_of(module: nn.Module):
    return [*module.parameters(), *module.buffers()]


def weighted_facts(measured, weighted) -> dict | None:
    """What :func:`edgewise.facts.weighted_words` says of the weighted paths ``weighted`` beside the sensitivity map
    ``measured`` (None without weighted paths): initialisations, whether the map is the same everywhere, both
    centre/border ratios (log10, as :func:`edgewise.maps.position_summary` takes them), the zeros of each, and the
    correlation of their logs."""
    if weighted is None:
        return None
    from .maps import log_correlation, position_summary

    w, m = np.asarray(weighted.map, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    key = "corner" if w.ndim == 2 else "edge"
    return {"n_inits": int(weighted.n_inits), "uniform": bool(w.max() == w.min()),
            "log10_ratio": position_summary(w)[f"log10_center_{key}_ratio"],
            "measured_log10_ratio": position_summary(m)[f"log10_center_{key}_ratio"],
            "zeros": int((w == 0).sum()), "measured_zeros": int((m == 0).sum()),
            "same_zeros": bool(np.array_equal(w == 0, m == 0)), "log_correlation": log_correlation(m, w)}

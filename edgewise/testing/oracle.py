"""Path counts through autograd on the real, full-width network: the baseline for :func:`edgewise.pathways`.

With every convolution/linear weight set to one, biases to zero, every
activation, normalisation and dropout replaced by the identity, max-pooling by
sum-pooling, average and adaptive pooling by window sums and interpolation
weights by one wherever they are non-zero, the network is linear with
non-negative integer weights, and

    count(p) = d (sum of the selected outputs) / d x[0, 0, p]

is the number of paths from input unit (channel 0, p) to the selected units.
This module computes exactly that, with ``torch.autograd``, at full width and
without looking at edgewise's graph or tracer: the replacements are made on
the fly by a :class:`torch.overrides.TorchFunctionMode` that intercepts the
functional calls inside the model's own ``forward`` (so they apply equally to
``nn.Conv2d`` modules and to ``F.relu`` written in a forward method).

Which tensors "carry paths" is read off ``requires_grad``: the input requires
grad and the copied parameters do not, so ``x * scale`` with a constant
``scale`` is the identity (as in the engine) while ``a * b`` of two input-
dependent tensors has the paths of both operands (``a + b``): a squeeze-excitation
or gating product ``x * g(x)`` counts the paths of both.

Data-dependent mixing (attention) is a connection pattern, not a weight
-----------------------------------------------------------------------
``softmax(q kᵀ · scale + bias/mask) @ v`` carries paths through the VALUE
branch only: output token i (every channel) is connected to value token j
(every channel of its head) once for each key j that query i may attend to,
and not at all where j is masked out. Queries and keys carry no paths (the
attention weights are a data-dependent choice, like a max-pool's); a
relative-position bias is a constant. Concretely, inside the forward pass:

* **scores.** A product (``matmul``, ``@``, ``mm``, ``bmm``, ``einsum``,
  ``tensordot``, ...) of TWO input-dependent operands (``q @ kᵀ``) yields a
  detached *scores* tensor that holds only the constant part of the logits:
  zero for the ``q·k`` part, plus whatever constants are added afterwards
  (bias, mask). Scores may only be scaled or divided by constants, have
  tensors added or subtracted (an input-dependent addend counts as zero: it is
  part of the logits), be ``masked_fill``-ed / ``where``-d / ``__setitem__``-ed,
  reshaped, cast, dropped out, and passed to ``softmax``. Anything else
  (another product, an activation, ``log_softmax``, ...) raises
  :class:`EdgewiseError`, because it would silently drop paths.
* **masking rule.** An entry of the softmax input is *masked* iff its constant
  part is ``< MASKED_BELOW`` (= -50; ``-inf`` included). This catches ``-inf``,
  ``finfo.min``, ``-1e4``/``-1e9`` masks and Swin's ``-100`` (plus a bias), and
  leaves ordinary relative-position biases alone (exp(-50) ≈ 2e-22).
* **softmax** of scores returns a detached 0/1 tensor: 1 where not masked,
  0 where masked. ``softmax`` of an input-dependent tensor that is not scores
  is a gate (see :class:`_MoreRules`): followed only into a product; used
  otherwise (a classifier's output) it raises :class:`EdgewiseError`.
* **talking heads** (CaiT, EfficientFormer-v2): a Linear or a 1×1 convolution
  applied to scores, or to the 0/1 pattern (or a view of it), mixes heads; it
  runs with ones weights and no bias, so mixed scores are scores again (a key
  masked in any mixed head stays masked) and a mixed pattern is a pattern,
  non-zero where any mixed head attends. A wider kernel is refused.
* **products with ONE input-dependent operand** are linear: the constant operand
  is replaced by ones if it is a weight (an ``nn.Parameter`` or a view of one)
  and by its 0/1 non-zero pattern otherwise (so the 0/1 attention pattern, or
  a renormalised copy of it, is used as is). ``addmm``/``baddbmm``/``addbmm``/
  ``addmv``/``addr`` are the product plus their ``input`` (``beta`` times it).
* **F.scaled_dot_product_attention**: out = A @ value with A the structural
  0/1 pattern: ``is_causal`` (lower triangle, top-left aligned), a boolean
  ``attn_mask`` (True = may attend), a float ``attn_mask`` (``< MASKED_BELOW``
  = masked; one that depends on the input, such as SAM's relative-position
  term q·R, is part of the logits like q·kᵀ and masks nothing);
  ``enable_gqa`` repeats value heads. Query and key carry no paths.
* **F.multi_head_attention_forward** (so ``nn.MultiheadAttention`` and the
  transformer layers built on it): value projection with ones, per-head
  A @ v_h, output projection with ones; A from ``attn_mask`` (bool True =
  NOT allowed, PyTorch's MHA convention; float ``< MASKED_BELOW``; 2-D or
  per-head 3-D), ``key_padding_mask`` likewise, and ``is_causal`` when no
  ``attn_mask`` is given. ``bias_k``/``bias_v``/``add_zero_attn`` add constant
  keys, which carry no paths. ``static_k``/``static_v`` are refused.
* **torchvision's swin ``shifted_window_attention``** (v1 and v2) is replaced
  while the forward runs by a structural value path: pad to window multiples,
  roll by -shift (no shift along an axis whose padded size is at most the
  window), partition into windows, and connect two tokens iff they share a
  window and, when shifted, a mask region (torchvision's region labels:
  slices ``[0, -w), [-w, -s), [-s, None)`` per axis, last assignment wins);
  then the ones output projection, roll back and crop. Each token of a group
  reaches every token of that group, padding tokens carry no paths.
* casts of a float64 tensor to a lower floating precision (``x.float()``, ``.half()``, ``.to(torch.float32)``,
  as in fp32 norms and attention) keep it float64, so counts are not rounded beyond 2**24.
* **generated attention weights.** ``softmax`` of an input-dependent tensor that is
  not scores (VOLO's outlook attention, a constant query times live keys) is a
  pathless all-ones tensor that may only be dropped out, reshaped, cast, scaled
  by constants and multiplied with one input-dependent operand (the values);
  anything else, the model's output included, is refused. A softmax of an
  input-dependent tensor is kept as a gate (its own paths, for an elementwise
  product); in a matrix product with one other input-dependent operand it is
  such weights, all ones (the values' paths only: VOLO, GCNet's context pooling).
* **torch.lstm** (``nn.LSTM``) is unrolled in time with ones weights, activations
  the identity and each product the sum of its operands (:func:`_lstm`);
  ``max`` over a dimension is a sum over it (like ``amax``).
* dropout of any tensor is the identity; conv_transpose uses ones weights like
  convolutions; data movement (permute, reshape, roll, cat, pad,
  pixel/channel shuffle, slicing, ...) is left to autograd.

Multi-head attention needs nothing special: with ones weights every value
channel of a head is the same sum, and ``attn_ones @ v`` per head connects each
head's channels only within the head before the output projection mixes them.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import weakref

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..errors import EdgewiseError

__all__ = ["ones_network", "autograd_pathways", "MASKED_BELOW"]

#: a softmax-input entry whose constant part is below this (``-inf`` included) is masked out
MASKED_BELOW = -50.0

#: per-unit ops: the identity in the pathway semantics
_LAYERS = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
_IDENTITY = {
    "normalize", "rms_norm",  # a division by a statistic, which is not counted (as for LayerNorm)
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardsigmoid", "silu", "gelu", "mish",
    "sigmoid", "sigmoid_", "tanh", "tanh_", "elu", "elu_", "selu", "selu_", "celu", "celu_", "leaky_relu",
    "leaky_relu_", "softplus", "softsign", "logsigmoid", "tanhshrink", "hardshrink", "softshrink", "threshold",
    "threshold_", "prelu", "rrelu", "rrelu_",
    "batch_norm", "instance_norm", "layer_norm", "group_norm",
    "clamp", "clamp_", "clip", "clip_", "abs", "abs_", "exp", "exp_", "neg", "neg_", "__neg__", "__pos__",
    "square", "square_",  # (squared ReLU: MetaFormer's ConvFormer, CAFormer)
    "stochastic_depth",
}
#: dropout: the identity on any tensor (also the 0/1 attention pattern, and with ``training=True``)
_DROPOUT = {"dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "alpha_dropout_",
            "feature_alpha_dropout", "feature_alpha_dropout_", "feature_dropout", "feature_dropout_"}
_ADD = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__", "__isub__", "rsub",
        "subtract"}
_MUL = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply", "div", "div_", "__truediv__",
        "__rtruediv__", "__itruediv__", "true_divide", "divide"}
#: elementwise binary ops with the paths of both (input-dependent) operands
_BINARY = _ADD | _MUL
#: products: linear with one input-dependent operand, attention scores with two
_PRODUCT = {"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "mv", "dot", "vdot", "inner", "outer", "ger",
            "tensordot", "einsum"}
#: input + product (the product as a plain function of the two operands)
_ADD_PRODUCT = {"addmm": torch.mm, "baddbmm": torch.bmm, "addbmm": lambda a, b: torch.bmm(a, b).sum(0),
                "addmv": torch.mv, "addr": torch.outer}
_SOFTMAX = {"softmax", "_softmax"}
#: what attention scores may go through besides add/sub, softmax and dropout: scaling and masking ...
_SCORE_VALUE = _MUL | {"masked_fill", "masked_fill_", "where", "__setitem__"}
#: ... reshaping and casting (other tensor arguments, e.g. of ``expand_as``, only lend their shape or dtype) ...
_SCORE_SHAPE = {
    "view", "view_as", "reshape", "reshape_as", "unsqueeze", "squeeze", "flatten", "unflatten", "transpose",
    "permute", "movedim", "moveaxis", "swapaxes", "swapdims", "t", "contiguous", "expand", "expand_as", "repeat",
    "to", "float", "double", "half", "bfloat16", "type", "type_as", "clone", "detach", "__getitem__", "chunk",
    "split", "unbind", "narrow", "select", "__get__",
}
#: ... and metadata queries
_SCORE_META = {"size", "dim", "numel", "__len__", "stride", "is_contiguous", "is_floating_point", "element_size",
               "data_ptr", "get_device", "__format__", "__repr__", "new_zeros", "new_ones", "new_full",
               "new_empty", "zeros_like", "ones_like", "full_like", "empty_like"}
#: ops that are neither linear in the counts nor a per-unit map: refuse rather than guess
_REFUSE = {
    "log_softmax", "softmin", "glu", "pow", "__pow__", "sqrt", "rsqrt",
    "var", "std", "max", "min", "amin", "argmax", "sort", "topk", "grid_sample", "bilinear", "embedding",
    "local_response_norm", "lp_pool1d", "lp_pool2d", "fractional_max_pool2d", "fractional_max_pool3d",
}


def ones_network(model: nn.Module, norm_stats: str = "ignore") -> nn.Module:
    """A deep copy of ``model`` that computes the pathway network (see the module docstring).

    Convolution (also transposed) and linear weights are set to one and biases to
    zero in the copy (its parameters no longer require grad); everything else is
    substituted while the returned module's ``forward`` runs. ``model`` itself is
    left untouched.
    """
    net = copy.deepcopy(model)
    originals: dict[int, torch.Tensor] = {}  # a layer on constants (a position-bias MLP) keeps its real weights
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)):
                for p in (m.weight, m.bias):
                    if p is not None:
                        originals[id(p)] = p.detach().clone()
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    for p in net.parameters():
        p.requires_grad_(False)
    return _OnesNetwork(net, originals, norm_stats == "count").eval()


class _OnesNetwork(nn.Module):
    def __init__(self, net: nn.Module, originals: dict, count_stats: bool = False):
        super().__init__()
        self.net, self.originals, self.count_stats = net, originals, count_stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _swin_replaced(), _PathwayMode(self.originals, self.count_stats) as mode:
            out = self.net(x)
            mode.check_output(out)
            if mode._is_weights(out):
                raise EdgewiseError(_SOFTMAX_REFUSED.format(where="the output"))
            return out


def _live(t) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _remember(registry: dict, out):
    """Register every tensor in ``out`` in ``registry`` (id → weak reference, dropped with the tensor)."""
    for t in tree_flatten(out)[0]:
        if isinstance(t, torch.Tensor):
            key = id(t)
            registry[key] = weakref.ref(t, lambda r, key=key: registry.pop(key, None) if registry.get(key) is r
                                        else None)
    return out


def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _is_weight(t: torch.Tensor) -> bool:
    """An ``nn.Parameter`` or a view of one (``w.t()``, ``w.T``, ``w[:k]``)."""
    while t is not None:
        if isinstance(t, nn.Parameter):
            return True
        t = t._base
    return False


def _as_weight(t):
    """The constant operand of a linear product: ones for a weight, its 0/1 non-zero pattern otherwise."""
    if not isinstance(t, torch.Tensor) or t.dtype == torch.bool:
        return t
    return torch.ones_like(t) if _is_weight(t) else (t != 0).to(t.dtype)


def _blocked(mask) -> torch.Tensor:
    """Where a float mask (added to logits) masks its entry out; ``-inf`` included."""
    if _live(mask):
        raise EdgewiseError("ones_network: an attention mask that depends on the input is not supported")
    return mask.detach() < MASKED_BELOW


_SOFTMAX_REFUSED = (
    "ones_network: softmax of an input-dependent tensor that is not attention scores (a product of two "
    "input-dependent tensors, q @ kᵀ) reaches {where}; it has a pathway counterpart only as generated attention "
    "weights in a product with the values: a softmax output, a gate over branches is not counted")


def _refuse_scores(name: str):
    raise EdgewiseError(
        f"ones_network: {name} applied to attention scores (a product of two input-dependent tensors, "
        f"such as q @ kᵀ). Scores carry no paths; the oracle lets them only be scaled, masked, biased, "
        f"reshaped, dropped out and passed to softmax, whose 0/1 output is the attention's connection pattern")


_NOTHING = object()
#: a statistic: the square root (or reciprocal) of a reduction, reached through per-unit maps
_ROOTS = {"sqrt", "sqrt_", "rsqrt", "rsqrt_", "reciprocal", "reciprocal_"}
_REDUCTIONS = {"mean", "sum", "amax"}
_GATE_PRODUCT = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "multiply"}
_GATE_MOVES = {"cat", "concat", "concatenate", "stack", "roll", "flip"}  # (besides the moves scores may make)


class _MoreRules:
    """Softmax gates, normalisation statistics written by hand and linear attention, on registries of tensors
    (weak references by id, as for the scores).

    * a softmax of an input-dependent tensor that is not scores is a *gate*: the identity (like sigmoid; its
      denominator is a statistic), which may only be moved, cast or dropped out (still a gate) and then multiply
      another input-dependent tensor or be multiplied with one by ``@``; anything else, the model's output
      included, raises;
    * a mean/sum/amax of an input-dependent tensor is a *reduction* (a sum, as always); kept as the same tensor
      by per-unit maps (``+ ε``, ``·2``, activations), its ``sqrt``/``rsqrt``/``reciprocal`` is a statistic: a
      constant, without paths (so ``x · rsqrt(mean(x², 1) + ε)`` is ``x``, as ``F.rms_norm`` is);
    * ``C @ (A @ B)`` with all three input-dependent and only casts or scaling between the two products (no
      softmax) is linear attention: ``e₀ @ (1 @ B)`` with a ones matrix for A and a selector of one column
      for C, so every row of the result reads every row of B (each key's value) once, per channel;
    * ``A @ B`` read by a layer is the *state* of linear attention: ``A @ 1`` when a convolution reads it (its
      channels are A's rows, A holds the values), ``1 @ B`` for a Linear (B's columns); layers, moves, per-unit
      maps and elementwise ops among states keep it one, and ``state @ w`` (``w @ state``) with ``w``
      input-dependent reads it out with ``w`` replaced by a selector of its first row (column): every position
      of ``w`` reads each state unit once. Anything else on a state raises.
    """

    def _registry(self, what: str) -> dict:
        return self.__dict__.setdefault(what, {})

    def _put(self, what: str, t, payload=True):
        reg = self._registry(what)
        if isinstance(t, torch.Tensor):
            key = id(t)
            reg[key] = (weakref.ref(t, lambda r, key=key: reg.pop(key, None) if reg.get(key, (None,))[0] is r
                                    else None), payload)
        return t

    def _get(self, what: str, t):
        got = self._registry(what).get(id(t)) if isinstance(t, torch.Tensor) else None
        return got[1] if got is not None and got[0]() is t else None

    def check_output(self, out) -> None:
        for t in tree_flatten(out)[0]:
            if self._get("_gates", t) is not None:
                raise EdgewiseError("ones_network: the model's output is a softmax of an input-dependent tensor "
                                    "that is not attention scores; a softmax is counted only as attention's choice "
                                    "of keys or as a gate multiplying another tensor")

    def _more(self, func, name, args, kwargs):
        if self.__dict__.pop("_plain", False):  # the rest of __torch_function__, asked for by _rest
            return _NOTHING
        if name not in _MORE_NAMES and not (self.__dict__.get("_gates") or self.__dict__.get("_raw")
                                            or self.__dict__.get("_states")):
            return _NOTHING
        leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        # states of linear attention: A @ B read by a layer
        if name in _LAYERS and args and self._get("_raw", args[0]) is not None:
            a, b = self._get("_raw", args[0])
            if name == "linear":  # the Linear's channels are B's columns: B holds the values
                state = torch.matmul(torch.ones_like(a), b)
            else:  # a convolution's channels are A's rows: A holds the values
                state = torch.matmul(a, torch.ones_like(b))
            args = (self._put("_states", state), *args[1:])
            leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        states = [t for t in leaves if self._get("_states", t) is not None]
        if states:
            return self._on_state(func, name, args, kwargs, leaves)
        # linear attention: C @ (A @ B)
        if name in _PRODUCT and len(args) >= 2 and _live(args[0]) and self._get("_raw", args[1]) is not None \
                and not self._is_scores(args[0]):
            a, b = self._get("_raw", args[1])
            q = args[0].detach()
            pick = torch.zeros_like(q)
            pick[..., 0] = 1
            return torch.matmul(pick, torch.matmul(torch.ones_like(a), b))
        raw = next((self._get("_raw", t) for t in leaves if self._get("_raw", t) is not None), None)
        if raw is not None and (name in ("float", "to", "contiguous", "double", "half", "type_as") or (
                name in _MUL and not any(_live(t) for t in leaves))):
            return self._put("_raw", self._on_scores(func, name, args, kwargs), raw)
        # gates
        gates = [t for t in leaves if self._get("_gates", t) is not None]
        if gates:
            if name in _SCORE_META:
                return func(*args, **kwargs)
            if name in _SCORE_SHAPE or name in _DROPOUT or name in _GATE_MOVES:
                out = args[0] if name in _DROPOUT else func(*args, **kwargs)
                for t in tree_flatten(out)[0]:
                    self._put("_gates", t)
                return out
            if (name in _GATE_PRODUCT or name in _PRODUCT) and sum(_live(t) for t in leaves) == 2:
                if name in _PRODUCT:
                    return self._raw_product(func, name, args, kwargs)
                return _NOTHING
            raise EdgewiseError(f"ones_network: the output of a softmax that is not attention reaches {name}; a "
                                "softmax gate may only be moved and multiply another input-dependent tensor")
        if name in _SOFTMAX and args and _live(args[0]) and not self._is_scores(args[0]):
            return self._put("_gates", args[0].clone())
        # statistics
        if name in _REDUCTIONS and args and _live(args[0]) and not self._is_scores(args[0]):
            x, dim = args[0], _arg(args, kwargs, 1, "dim")
            keep = _arg(args, kwargs, 2, "keepdim", False)
            return self._put("_pending", x.sum() if dim is None else x.sum(dim=dim, keepdim=keep))
        if name in _ROOTS and args and _live(args[0]):
            if self._get("_pending", args[0]) is None:
                raise EdgewiseError(f"ones_network: {name} of an input-dependent tensor that is not a mean or sum "
                                    "(a normalisation statistic) has no pathway counterpart")
            return func(args[0].detach(), *args[1:], **kwargs)
        if name in _PRODUCT and sum(_live(t) for t in leaves) == 2 and len(leaves) == 2 and \
                not any(self._is_scores(t) for t in leaves):
            return self._raw_product(func, name, args, kwargs)
        return _NOTHING

    def _rest(self, func, args, kwargs):
        """What __torch_function__ does without these rules."""
        self._plain = True
        return self.__torch_function__(func, (), args, kwargs)

    def _on_state(self, func, name, args, kwargs, leaves):
        """A state (every column the pooled values, ``A @ 1``) through layers, moves, per-unit maps and
        elementwise ops among states stays one; ``state @ w`` with ``w`` input-dependent reads it out: ``w``
        replaced by a selector of one row, so every position of ``w`` reads each state unit once."""
        live = [t for t in leaves if _live(t)]
        others = [t for t in live if self._get("_states", t) is None]
        if name in _PRODUCT and len(args) == 2 and len(others) == 1:
            left = self._get("_states", args[0]) is not None
            w = args[1] if left else args[0]
            pick = torch.zeros_like(w.detach())
            if left:
                pick[..., 0, :] = 1
                return torch.matmul(args[0], pick)
            pick[..., :, 0] = 1
            return torch.matmul(pick, args[1])
        if name in _REDUCTIONS:
            return _NOTHING  # a sum over the states: a sum as always, no longer a state
        if name in _LAYERS or name in _SCORE_SHAPE or name in _DROPOUT or name in _IDENTITY or name in _SCORE_META \
                or (name in _BINARY and not others):
            out = self._rest(func, args, kwargs)
            if name not in _SCORE_META:
                for t in tree_flatten(out)[0]:
                    self._put("_states", t)
            return out
        raise EdgewiseError(f"ones_network: the state of linear attention (a product of two input-dependent tensors "
                            f"read by a layer) reaches {name}; it may only go through layers, moves, per-unit maps and "
                            "elementwise ops among states into a product that reads it out")

    def _raw_product(self, func, name, args, kwargs):
        """A @ B of two input-dependent operands: attention scores, kept with its operands in case it is the
        context of linear attention."""
        gated = [self._get("_gates", t) is not None for t in args[:2]]
        if name in ("matmul", "__matmul__", "bmm") and len(args) == 2 and sum(gated) == 1:
            # generated attention weights (a softmax of a live tensor that is not scores) times the values: the
            # values' paths, once per weight (VOLO's outlook attention, GCNet's context pooling)
            out = torch.matmul(*(torch.ones_like(t) if g else t for t, g in zip(args, gated)))
        else:
            out = self._product(func, args, kwargs)
        if name in ("matmul", "__matmul__", "bmm") and len(args) == 2:
            self._put("_raw", out, (args[0], args[1]))
        return out


_MORE_NAMES = _PRODUCT | _SOFTMAX | _REDUCTIONS | _ROOTS


class _PathwayMode(_MoreRules, TorchFunctionMode):
    """Swaps each op for its pathway counterpart while a forward pass runs."""

    def __init__(self, originals: dict | None = None, count_stats: bool = False):
        super().__init__()
        self._count_stats = count_stats
        self._scores: dict[int, weakref.ref] = {}
        self._originals = originals or {}
        self._patterns: dict[int, weakref.ref] = {}  # softmax outputs of scores: the 0/1 attention patterns
        self._weights: dict[int, weakref.ref] = {}  # softmax outputs of input-dependent tensors (not scores)

    # ------------------------------------------------------------------ attention scores
    def _is_scores(self, t) -> bool:
        r = self._scores.get(id(t)) if isinstance(t, torch.Tensor) else None
        return r is not None and r() is t

    def _mark(self, out):
        """Register every tensor in ``out`` as attention scores; return ``out``."""
        return _remember(self._scores, out)

    def _on_scores(self, func, name, args, kwargs):
        leaves, spec = tree_flatten((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        if name in _SOFTMAX:
            x = args[0]
            if not self._is_scores(x):
                _refuse_scores(name)
            dtype = kwargs.get("dtype") or next((d for d in args[1:] if isinstance(d, torch.dtype)), x.dtype)
            return self._mark_pattern((~(x < MASKED_BELOW)).to(dtype))  # 1: may attend, 0: masked out
        if name in _DROPOUT:
            return args[0]
        if name in _SCORE_META:
            return func(*args, **kwargs)
        live = [t for t in tensors if _live(t)]
        if name in _ADD:  # an input-dependent addend is part of the logits: its q·k-like value counts as 0
            leaves = [torch.zeros_like(t, requires_grad=False) if _live(t) else t for t in leaves]
        elif name in _SCORE_SHAPE:  # other tensors lend only their shape or dtype
            leaves = [t.detach() if _live(t) else t for t in leaves]
        elif name in _SCORE_VALUE:
            if live:
                _refuse_scores(f"{name} with an input-dependent operand")
            if name in ("__setitem__", "masked_fill", "masked_fill_") and not self._is_scores(args[0]):
                _refuse_scores(f"{name} of a constant tensor with")
        else:
            _refuse_scores(name)
        a, k = tree_unflatten(leaves, spec)
        out = func(*a, **k)
        return self._mark(out) if name != "__setitem__" else out

    # ------------------------------------------------------------------ talking heads
    def _mark_pattern(self, t: torch.Tensor) -> torch.Tensor:
        return _remember(self._patterns, t)

    def _is_pattern(self, t) -> bool:
        """An attention pattern (a softmax of scores) or a view of one (``attn.permute(...)``)."""
        while isinstance(t, torch.Tensor):
            r = self._patterns.get(id(t))
            if r is not None and r() is t:
                return True
            t = t._base
        return False

    def _mix_heads(self, func, name, args, kwargs):
        """Talking heads: a Linear or convolution applied to attention scores or to the 0/1 pattern mixes heads.
        With ones weights and no bias the mixed scores' constant parts add up (a key masked in any mixed head
        stays masked) and the mixed pattern is non-zero where any mixed head attends; the result is scores or a
        pattern again. A kernel wider than 1 would mix queries or keys: refused."""
        w = _arg(args, kwargs, 1, "weight")
        if name.startswith("conv"):
            rest = [_arg(args, kwargs, i, k, d) for i, (k, d) in
                    enumerate([("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)], start=3)]
            if any(int(k) != 1 for k in w.shape[2:]) or any(int(v) != 1 for v in np.atleast_1d(rest[0])) or \
                    isinstance(rest[1], str) or any(int(v) != 0 for v in np.atleast_1d(rest[1])) or \
                    name.startswith("conv_transpose"):
                raise EdgewiseError(f"ones_network: {name} with a kernel wider than 1 applied to attention scores")
            out = func(args[0], torch.ones_like(w), None, *rest)
        elif name == "linear":
            out = F.linear(args[0], torch.ones_like(w))
        else:
            raise EdgewiseError(f"ones_network: {name} applied to attention scores")
        return self._mark(out) if self._is_scores(args[0]) else self._mark_pattern(out)

    # ------------------------------------------------------------------ generated attention weights
    def _is_weights(self, t) -> bool:
        r = self._weights.get(id(t)) if isinstance(t, torch.Tensor) else None
        return r is not None and r() is t

    def _mark_weights(self, out):
        return _remember(self._weights, out)

    def _on_weights(self, func, name, args, kwargs):
        """A softmax of an input-dependent tensor that is not scores (generated attention weights, VOLO's
        outlook attention; a constant query times keys) is a pathless all-ones pattern: it may be dropped out,
        reshaped, cast, scaled by constants and multiplied with ONE input-dependent operand (the values), where
        it connects every output to every value it weighs, once. Anything else is refused."""
        leaves = tree_flatten((args, kwargs))[0]
        live = [t for t in leaves if _live(t)]
        if name in _DROPOUT:
            return args[0]
        if name in _SCORE_META:
            return func(*args, **kwargs)
        if name in _SOFTMAX:
            return self._mark_weights(torch.ones_like(args[0]))
        if name in _SCORE_SHAPE and not live:
            return self._mark_weights(func(*args, **kwargs))
        if name in _MUL and not live:
            return self._mark_weights(func(*args, **kwargs))
        if name in _PRODUCT and len(live) == 1:
            return self._product(func, args, kwargs)
        raise EdgewiseError(_SOFTMAX_REFUSED.format(where=name))

    # ------------------------------------------------------------------ products and attention
    def _product(self, func, args, kwargs):
        leaves, spec = tree_flatten((args, kwargs))
        idx = [i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor)]
        if len({leaves[i].dtype for i in idx if leaves[i].is_floating_point()}) > 1:
            # (a float32 operand beside one kept in float64 by the casts rule above: both in float64, as the
            # model's own float32 product of the two would be)
            leaves = [t.double() if i in idx and t.is_floating_point() else t for i, t in enumerate(leaves)]
            args, kwargs = tree_unflatten(leaves, spec)
        live = [i for i in idx if _live(leaves[i])]
        if not live:
            return func(*args, **kwargs)
        if len(live) > 1:
            if len(idx) != 2:
                raise EdgewiseError(f"ones_network: {getattr(func, '__name__', func)} of more than two "
                                    "input-dependent operands has no pathway counterpart")
            leaves = [torch.zeros_like(t, requires_grad=False) if i in idx else t for i, t in enumerate(leaves)]
            a, k = tree_unflatten(leaves, spec)
            return self._mark(func(*a, **k))
        leaves = [_as_weight(t) if (i in idx and i not in live) else t for i, t in enumerate(leaves)]
        a, k = tree_unflatten(leaves, spec)
        return func(*a, **k)

    def _add_product(self, name, args, kwargs):
        inp = _arg(args, kwargs, 0, "input")
        m1, m2 = (args[i] if len(args) > i else next(kwargs[k] for k in keys if k in kwargs)
                  for i, keys in ((1, ("mat1", "batch1", "mat", "vec1")), (2, ("mat2", "batch2", "vec", "vec2"))))
        beta = kwargs.get("beta", 1)
        prod = self._product(_ADD_PRODUCT[name], (m1, m2), {})
        if beta == 0:
            return prod
        if not _live(inp) and not self._is_scores(inp) and beta != 1:
            inp = inp * beta
        return self.__torch_function__(torch.add, (torch.Tensor,), (prod, inp))

    def _sdpa(self, args, kwargs):
        q, k, v = (_arg(args, kwargs, i, n) for i, n in enumerate(("query", "key", "value")))
        mask = _arg(args, kwargs, 3, "attn_mask")
        causal = _arg(args, kwargs, 5, "is_causal", False)
        L, S = q.shape[-2], k.shape[-2]
        allowed = torch.ones((L, S), dtype=torch.bool, device=v.device)
        if causal:
            allowed = allowed.tril()
        if mask is not None and mask.dtype != torch.bool and _live(mask):
            mask = None  # computed from the input (SAM's q·R): part of the logits, like q·kᵀ; it masks nothing
        if mask is not None:
            allowed = allowed & (mask if mask.dtype == torch.bool else ~_blocked(mask))
        if kwargs.get("enable_gqa", False) and v.dim() >= 3 and q.shape[-3] != v.shape[-3]:
            v = v.repeat_interleave(q.shape[-3] // v.shape[-3], dim=-3)
        out = torch.matmul(allowed.to(v.dtype), v)
        # keys/values shared by every query head (multi-query attention: a head axis of 1) are broadcast
        return out.expand(*torch.broadcast_shapes(q.shape[:-2], out.shape[:-2]), *out.shape[-2:])

    def _mha(self, args, kwargs):
        names = ("query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight", "in_proj_bias",
                 "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight", "out_proj_bias", "training",
                 "key_padding_mask", "need_weights", "attn_mask", "use_separate_proj_weight", "q_proj_weight",
                 "k_proj_weight", "v_proj_weight", "static_k", "static_v", "average_attn_weights", "is_causal")
        a = dict(zip(names, args))
        a.update(kwargs)
        if a.get("static_k") is not None or a.get("static_v") is not None:
            raise EdgewiseError("ones_network: multi-head attention with static_k/static_v is not supported")
        query, key, value = a["query"], a["key"], a["value"]
        batched = query.dim() == 3
        if not batched:
            query, key, value = query[:, None], key[:, None], value[:, None]
        L, N, E = query.shape
        S = key.shape[0]
        heads = int(a["num_heads"])
        w = a.get("v_proj_weight") if a.get("use_separate_proj_weight", False) else a["in_proj_weight"][2 * E:]
        v = F.linear(value, torch.ones_like(w))  # S, N, E: every value channel sums the token's channels
        v = v.reshape(S, N, heads, E // heads).permute(1, 2, 0, 3)  # N, H, S, E/H
        allowed = torch.ones((N, heads, L, S), dtype=torch.bool, device=v.device)
        mask, kpm = a.get("attn_mask"), a.get("key_padding_mask")
        if mask is not None:
            blocked = mask if mask.dtype == torch.bool else _blocked(mask)  # MHA: True = may NOT attend
            allowed = allowed & ~(blocked if blocked.dim() == 2 else blocked.reshape(N, heads, L, S))
        elif a.get("is_causal", False):
            allowed = allowed & torch.ones((L, S), dtype=torch.bool, device=v.device).tril()
        if kpm is not None:
            blocked = kpm if kpm.dtype == torch.bool else _blocked(kpm)
            allowed = allowed & ~blocked.reshape(N, 1, 1, S)
        pattern = allowed.to(v.dtype)
        out = torch.matmul(pattern, v).permute(2, 0, 1, 3).reshape(L, N, E)
        out = F.linear(out, torch.ones_like(a["out_proj_weight"]))
        weights = None
        if a.get("need_weights", True):
            weights = pattern / pattern.sum(-1, keepdim=True).clamp_min(1)
            weights = weights.mean(1) if a.get("average_attn_weights", True) else weights
            weights = weights if batched else weights[0]
        return (out if batched else out[:, 0]), weights

    # ------------------------------------------------------------------ dispatch
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _LAYERS and args and (self._is_scores(args[0]) or self._is_pattern(args[0])) and not (
                self._get("_raw", args[0]) is not None and args[0].dim() <= 3):  # (without heads: a state, _more)
            return self._mix_heads(func, name, args, kwargs)
        more = self._more(func, name, args, kwargs)  # gates, statistics, linear attention (_MoreRules)
        if more is not _NOTHING:
            return more
        if name in _LAYERS and args and isinstance(args[0], torch.Tensor) and not _live(args[0]) and self._originals \
                and not self._is_scores(args[0]):  # (a layer reading attention scores is refused below)
            # a layer applied to constants computes a constant (a relative-position bias): with its real weights
            def real(t):
                return self._originals[id(t)].to(t) if isinstance(t, torch.Tensor) and id(t) in self._originals else t

            return func(*map(real, args), **{k: real(v) for k, v in kwargs.items()})
        if name in _CASTS and args and isinstance(args[0], torch.Tensor) and args[0].dtype == torch.float64:
            kept = _keep_double(func, name, args, kwargs)
            if kept is not None:
                return kept
        if self._scores and any(self._is_scores(t) for t in tree_flatten((args, kwargs))[0]):
            return self._on_scores(func, name, args, kwargs)
        if self._weights and any(self._is_weights(t) for t in tree_flatten((args, kwargs))[0]):
            return self._on_weights(func, name, args, kwargs)
        if name in _DROPOUT and args and isinstance(args[0], torch.Tensor):
            return args[0]
        if self._count_stats and name in _NORMS and args and _live(args[0]):
            return _with_statistics(name, args, kwargs)
        if name in _IDENTITY and args and _live(args[0]):
            return args[0]
        if name in ("pow", "__pow__") and len(args) == 2 and _live(args[0]) and not isinstance(args[1], torch.Tensor):
            return args[0]  # x ** k with a number k: a per-unit map
        if name in _BINARY and len(args) >= 2:
            a, b = args[0], args[1]
            if _live(a) or _live(b):
                live = [t for t in (a, b) if _live(t)]
                out = live[0] if len(live) == 1 else live[0] + live[1]
                shape = torch.broadcast_shapes(*(t.shape for t in (a, b) if isinstance(t, torch.Tensor)))
                return out if tuple(out.shape) == tuple(shape) else out.expand(shape)
        if name in _PRODUCT:
            return self._product(func, args, kwargs)
        if name in _ADD_PRODUCT:
            return self._add_product(name, args, kwargs)
        if name == "scaled_dot_product_attention":
            return self._sdpa(args, kwargs)
        ops = [_arg(args, kwargs, i, n) for i, n in enumerate(("input", "tensor1", "tensor2"))] \
            if name == "addcmul" else []
        if any(_live(t) for t in ops):  # input + value · t1 · t2: the paths of each input-dependent operand
            live = [t for t in ops if _live(t)]
            out = live[0] if len(live) == 1 else sum(live[1:], live[0])
            shape = torch.broadcast_shapes(*(t.shape for t in ops if isinstance(t, torch.Tensor)))
            return out if tuple(out.shape) == tuple(shape) else out.expand(shape)
        if name == "lstm" and args and _live(args[0]):
            return _lstm(*args, **kwargs)
        if name == "multi_head_attention_forward":
            return self._mha(args, kwargs)
        if not (args and _live(args[0])):
            return func(*args, **kwargs)
        x = args[0]
        if name in _SOFTMAX:  # generated attention weights: refused unless they meet the values (_on_weights)
            dtype = kwargs.get("dtype") or next((d for d in args[1:] if isinstance(d, torch.dtype)), x.dtype)
            return self._mark_weights(torch.ones(x.shape, dtype=dtype, device=x.device))
        if name == "max" and isinstance(_arg(args, kwargs, 1, "dim"), int):  # values over a dim: like amax
            dim, keep = _arg(args, kwargs, 1, "dim"), bool(_arg(args, kwargs, 2, "keepdim", False))
            values = x.sum(dim=dim, keepdim=keep)
            return torch.return_types.max((values, torch.zeros(values.shape, dtype=torch.long, device=x.device)))
        if name in ("conv1d", "conv2d", "conv3d"):
            w = _arg(args, kwargs, 1, "weight")
            rest = [_arg(args, kwargs, i, k, d) for i, (k, d) in
                    enumerate([("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)], start=3)]
            return func(x, torch.ones_like(w), None, *rest)
        if name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            w = _arg(args, kwargs, 1, "weight")
            rest = [_arg(args, kwargs, i, k, d) for i, (k, d) in enumerate(
                [("stride", 1), ("padding", 0), ("output_padding", 0), ("groups", 1), ("dilation", 1)], start=3)]
            return func(x, torch.ones_like(w), None, *rest)
        if name == "linear":
            return F.linear(x, torch.ones_like(_arg(args, kwargs, 1, "weight")))
        if name in ("max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices"):
            if _arg(args, kwargs, 6, "return_indices", False):
                raise EdgewiseError("ones_network: max pooling with return_indices is not supported")
            n = int(name[8])
            return _sum_pool(x, n, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                             _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1),
                             _arg(args, kwargs, 5, "ceil_mode", False))
        if name in ("avg_pool1d", "avg_pool2d"):
            n = int(name[8])
            return _sum_pool(x, n, _arg(args, kwargs, 1, "kernel_size"), _arg(args, kwargs, 2, "stride"),
                             _arg(args, kwargs, 3, "padding", 0), 1, _arg(args, kwargs, 4, "ceil_mode", False))
        if name in ("adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
                    "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices"):
            n = int(name.split("pool")[1][0])
            size = _arg(args, kwargs, 1, "output_size")
            size = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
            size = tuple(x.shape[-n + a] if s is None else int(s) for a, s in enumerate(size))
            probe = [_probe(lambda e, s=s: F.adaptive_avg_pool1d(e, s), x.shape[-n + a], x.dtype)
                     for a, s in enumerate(size)]
            return _separable(x, probe)
        if name in ("mean", "amax"):
            dim = _arg(args, kwargs, 1, "dim")
            keep = _arg(args, kwargs, 2, "keepdim", False)
            return x.sum() if dim is None else x.sum(dim=dim, keepdim=keep)
        if name in ("interpolate", "upsample"):
            return _interpolate(x, args, kwargs)
        if name in _REFUSE:
            raise EdgewiseError(f"ones_network: {name} has no pathway counterpart")
        return func(*args, **kwargs)  # linear structural ops: cat, view, flatten, pad, slicing, ...


#: normalisations whose statistics ``norm_stats="count"`` makes connections
_NORMS = {"layer_norm", "rms_norm", "group_norm", "instance_norm", "batch_norm", "normalize"}


def _with_statistics(name: str, args, kwargs) -> torch.Tensor:
    """``x`` plus the sum of the units each unit's statistics are computed over (broadcast back):
    one path from every member of the statistics' set, beside the unit's own."""
    x = args[0]
    rest = x.dim() - 2
    if name in ("layer_norm", "rms_norm"):
        shape = _arg(args, kwargs, 1, "normalized_shape")
        k = 1 if isinstance(shape, int) else len(shape)
        return x + x.sum(dim=tuple(range(x.dim() - k, x.dim())), keepdim=True)
    if name == "group_norm":
        g = int(_arg(args, kwargs, 1, "num_groups"))
        per = x.reshape(x.shape[0], g, -1).sum(-1, keepdim=True)
        return x + per.expand(x.shape[0], g, x[0].numel() // g).reshape(x.shape)
    if name == "normalize":
        return x + x.sum(dim=_arg(args, kwargs, 2, "dim", 1), keepdim=True)
    counted = _arg(args, kwargs, 5, "use_input_stats", True) if name == "instance_norm" else \
        _arg(args, kwargs, 5, "training", False)
    if not counted or not rest:  # running statistics are constants; one sample without positions: nothing
        return x
    return x + x.sum(dim=tuple(range(2, 2 + rest)), keepdim=True)


#: casts to a lower floating precision (``x.float()`` in a model's fp32 norm or attention): the counts stay in
#: float64, which holds them exactly up to 2**53 (float32 would round them above 2**24, and overflow past 2**128)
_CASTS = {"float", "half", "bfloat16", "to", "type", "type_as"}


def _keep_double(func, name, args, kwargs):
    """``args[0]`` (float64) itself, moved to the cast's device, when the cast only lowers its floating
    precision; None for any other cast (to an integer type, no change of dtype)."""
    if name in ("float", "half", "bfloat16"):
        return args[0]
    x = args[0]
    try:  # the dtype and device the cast gives, from a shape-less run on the meta device
        probe = func(torch.empty(0, dtype=x.dtype, device="meta"), *args[1:], **kwargs)
    except Exception:
        return None
    if not isinstance(probe, torch.Tensor) or not probe.is_floating_point() or probe.dtype == torch.float64:
        return None
    return x if probe.device.type == "meta" else x.to(probe.device)


def _lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    """The pathway counterpart of ``torch.lstm`` (``nn.LSTM``), unrolled in time.

    With ones weights, activations the identity and each product replaced by the sum of its operands (the
    paths of both): gates = 1·x_t + 1·h_{t-1} (every gate unit reads every input and hidden unit once),
    c_t = f + c_{t-1} + i + g (for f ⊙ c_{t-1} + i ⊙ g), h_t = o + c_t (for o ⊙ tanh(c_t)). The zero initial
    state is a constant: it adds no paths, and f ⊙ c_{-1} keeps f's paths (a product with a constant is a
    scaling). Runs with the pathway mode off: it is written with ones already.
    """
    with torch._C.DisableTorchFunction():
        if isinstance(hx, (tuple, list)) and any(_live(h) or bool((h != 0).any()) for h in hx):
            raise EdgewiseError("ones_network: nn.LSTM with a non-zero or input-dependent initial state is not "
                                "supported")
        x = input if batch_first else input.transpose(0, 1)  # N, T, C
        dirs = 2 if bidirectional else 1
        per = 4 if has_biases else 2
        for layer in range(num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh = params[(layer * dirs + d) * per], params[(layer * dirs + d) * per + 1]
                if w_hh.shape[1] * 4 != w_hh.shape[0]:
                    raise EdgewiseError("ones_network: nn.LSTM with proj_size is not supported")
                hid = w_hh.shape[1]
                gx = F.linear(x, torch.ones(w_ih.shape, dtype=x.dtype, device=x.device))
                h = c = torch.zeros((x.shape[0], hid), dtype=x.dtype, device=x.device)
                steps = range(x.shape[1]) if d == 0 else range(x.shape[1] - 1, -1, -1)
                hs = [None] * x.shape[1]
                for t in steps:
                    gates = gx[:, t] + F.linear(h, torch.ones(w_hh.shape, dtype=x.dtype, device=x.device))
                    i, f, g, o = gates.chunk(4, dim=-1)
                    c = f + c + i + g
                    h = o + c
                    hs[t] = h
                outs.append(torch.stack(hs, 1))
            x = torch.cat(outs, -1)
        out = x if batch_first else x.transpose(0, 1)
        return out, h[None].detach(), c[None].detach()


@contextlib.contextmanager
def _swin_replaced():
    """Swap torchvision's swin ``shifted_window_attention`` for :func:`_swin_window_attention` meanwhile."""
    mod = sys.modules.get("torchvision.models.swin_transformer")
    original = getattr(mod, "shifted_window_attention", None)
    if original is None:
        yield
        return
    mod.shifted_window_attention = _swin_window_attention
    try:
        yield
    finally:
        mod.shifted_window_attention = original


def _window_labels(n: int, window: int, shift: int) -> list[int]:
    """torchvision's mask region of each (rolled) index along one axis: slices [0,-w), [-w,-s), [-s,None); last wins."""
    labels = [0] * n
    for label, sl in enumerate((slice(0, -window), slice(-window, -shift), slice(-shift, None))):
        for i in range(n)[sl]:
            labels[i] = label
    return labels


def _swin_window_attention(input, qkv_weight, proj_weight, relative_position_bias, window_size, num_heads,
                           shift_size, *rest, **kwargs):
    """The value path of torchvision's ``shifted_window_attention`` (signature kept; v1 and v2).

    Tokens are connected iff, after padding to window multiples and rolling by
    -shift, they sit in the same window and (when shifted) the same mask region;
    within such a group every token reaches every token. Value and output
    projections have ones weights; biases, the relative-position bias, the
    logit scale and dropout carry no paths. Runs with the pathway mode off: it
    is written with ones already.
    """
    with torch._C.DisableTorchFunction():
        B, H, W, C = input.shape
        wh, ww = int(window_size[0]), int(window_size[1])
        pad_b, pad_r = (-H) % wh, (-W) % ww
        x = F.pad(input, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = H + pad_b, W + pad_r
        sh = 0 if wh >= ph else int(shift_size[0])
        sw = 0 if ww >= pw else int(shift_size[1])
        # position (r, c) of the padded map sits at ((r - sh) % ph, (c - sw) % pw) after the roll
        rr = [(r - sh) % ph for r in range(ph)]
        cc = [(c - sw) % pw for c in range(pw)]
        lab_r = _window_labels(ph, wh, sh) if sh + sw > 0 else [0] * ph
        lab_c = _window_labels(pw, ww, sw) if sh + sw > 0 else [0] * pw
        nwc = pw // ww
        group = torch.tensor([[((rr[r] // wh * nwc + cc[c] // ww) * 3 + lab_r[rr[r]]) * 3 + lab_c[cc[c]]
                               for c in range(pw)] for r in range(ph)], device=input.device).reshape(-1)
        dv = qkv_weight.shape[0] // 3
        v = F.linear(x, torch.ones((dv, C), dtype=x.dtype, device=x.device)).reshape(B, ph * pw, dv)
        sums = torch.zeros((B, int(group.max()) + 1, dv), dtype=v.dtype, device=v.device).index_add(1, group, v)
        out = F.linear(sums[:, group], torch.ones_like(proj_weight))
        return out.reshape(B, ph, pw, -1)[:, :H, :W].contiguous()


def _sum_pool(x, n, kernel, stride, padding, dilation, ceil_mode):
    """Sum over each pooling window; padding and ceil-mode overhang read nothing."""
    def tup(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n

    k = tup(kernel)
    s = tup(stride if stride not in (None, ()) else kernel)
    p, d = tup(padding), tup(dilation)
    # the real op's output size (PyTorch's ceil-mode rule), from a shape-only run
    meta = torch.empty(x.shape, device="meta")
    pool = F.max_pool1d if n == 1 else F.max_pool2d
    out = pool(meta, k, s, p, d, bool(ceil_mode)).shape[-n:]
    pads = []
    for a in reversed(range(n)):
        need = (out[a] - 1) * s[a] + (k[a] - 1) * d[a] + 1
        pads += [p[a], max(0, need - x.shape[-n + a] - p[a])]
    xp = F.pad(x, pads)
    c = x.shape[1]
    w = torch.ones((c, 1) + k, dtype=x.dtype, device=x.device)
    conv = F.conv1d if n == 1 else F.conv2d
    y = conv(xp, w, None, s, 0, d, c)
    return y[(...,) + tuple(slice(0, o) for o in out)]


def _probe(op, n_in: int, dtype) -> torch.Tensor:
    """0/1 matrix [n_in, n_out] of the inputs each output of a 1-D op reads (non-zero weight)."""
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]
    return (op(eye)[:, 0, :] != 0).to(dtype)


def _separable(x, mats):
    """Apply one [n_in, n_out] matrix per trailing spatial axis."""
    n = len(mats)
    for a, m in enumerate(mats):
        axis = x.dim() - n + a
        x = torch.tensordot(x, m.to(x.device), dims=([axis], [0])).movedim(-1, axis)
    return x


def _interpolate(x, args, kwargs):
    n = x.dim() - 2
    size = _arg(args, kwargs, 1, "size")
    scale = _arg(args, kwargs, 2, "scale_factor")
    mode = _arg(args, kwargs, 3, "mode", "nearest")
    align = _arg(args, kwargs, 4, "align_corners")
    recompute = _arg(args, kwargs, 5, "recompute_scale_factor")
    sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
    scales = tuple(scale) if isinstance(scale, (tuple, list)) else (scale,) * n
    mode1 = {"bilinear": "linear", "trilinear": "linear", "bicubic": None}.get(mode, mode)
    if mode == "bicubic" and n == 2:  # separable: each axis probed as a 1-pixel-high image
        return _separable(x, [_probe(lambda e, a=a: F.interpolate(
            e[:, :, None, :], size=(1, sizes[a]) if size is not None else None,
            scale_factor=(1.0, scales[a]) if scale is not None else None, mode="bicubic", align_corners=align,
            recompute_scale_factor=recompute)[:, :, 0, :], x.shape[-n + a], x.dtype) for a in range(n)])
    if mode1 is None:
        raise EdgewiseError(f"ones_network: interpolation mode {mode!r} is not supported")
    mats = []
    for a in range(n):
        def op(e, a=a):
            return F.interpolate(e, size=sizes[a], scale_factor=scales[a], mode=mode1,
                                 align_corners=align, recompute_scale_factor=recompute)
        mats.append(_probe(op, x.shape[-n + a], x.dtype))
    return _separable(x, mats)


def _select(shape: tuple[int, ...], to) -> torch.Tensor:
    """0/1 seed over a layer's units (C, *spatial): all, the centre position or one position."""
    seed = torch.zeros(shape, dtype=torch.float64)
    spatial = shape[1:]
    if to == "all" or not spatial:
        seed[...] = 1
    elif to in ("center", "centre"):
        seed[(slice(None),) + tuple((n - 1) // 2 for n in spatial)] = 1
    else:
        pos = (to,) if isinstance(to, int) else tuple(to)
        seed[(slice(None),) + pos] = 1
    return seed


def _capture(net: "_OnesNetwork", layer: str, x: torch.Tensor):
    """Run ``net`` on ``x`` and return what sub-module ``layer`` output on its selected call."""
    name, _, call = layer.partition("#")
    want = int(call or 0)
    try:
        module = net.net.get_submodule(name)
    except AttributeError:
        raise EdgewiseError(f"autograd_pathways: the model has no sub-module {name!r}") from None
    seen = []

    def hook(mod, inputs, output):
        seen.append(output)

    handle = module.register_forward_hook(hook)
    try:
        net(x)
    finally:
        handle.remove()
    if len(seen) <= want:
        raise EdgewiseError(f"autograd_pathways: {name!r} ran {len(seen)} time(s); call #{want} was asked for")
    return seen[want]


def autograd_pathways(model: nn.Module, input_shape, to="all", dtype=torch.float64,
                      layer: str | None = None, scale_log2: int = 0, norm_stats: str = "ignore",
                      device=None) -> np.ndarray:
    """Path counts from every input position (channel 0) to the selected output units, by autograd.

    Args:
        model: the model (not modified).
        input_shape: C×L or C×H×W.
        to: ``"all"``, ``"center"`` or a position (row, col) of the output map.
        dtype: computation dtype; float64 holds integers exactly up to 2**53.
        layer: count paths to the output of this sub-module (dotted name from
            ``named_modules()``; ``name#k`` for its (k+1)-th call) instead of the model's output.
        scale_log2: the backward pass is seeded with ``2**-scale_log2`` instead of 1,
            so the result is ``counts * 2**-scale_log2`` (exactly: a power of two);
            use it to bring counts beyond float64's range (deep ResNets) back into it.
        norm_stats: ``"count"``: a normalisation's output unit also reads, once each, every unit its
            statistics are computed over (``x + x.sum(those axes)``); ``"ignore"``: the identity.
        device: where the all-ones copy runs (default: where the model's parameters are, else the CPU).

    Returns:
        float array over the input positions (L or H×W).
    """
    device = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    net = ones_network(model, norm_stats).to(device=device, dtype=dtype)
    x = torch.zeros((1, *input_shape), dtype=dtype, device=device, requires_grad=True)
    if layer is None:
        y = net(x)
    else:
        y = _capture(net, layer, x)
    if not isinstance(y, torch.Tensor):
        raise EdgewiseError(f"autograd_pathways: the model returns {type(y).__name__}, not a tensor")
    if not y.requires_grad:
        raise EdgewiseError("autograd_pathways: the selected output carries no paths from the input (attention "
                            "weights and other constants carry none); select a layer whose output depends on it")
    seed = _select(tuple(y.shape[1:]), to).to(device=device, dtype=dtype)[None] * 2.0 ** -scale_log2
    (grad,) = torch.autograd.grad(y, x, seed)
    return grad[0, 0].detach().cpu().numpy()

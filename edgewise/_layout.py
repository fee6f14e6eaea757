"""Tensors whose axes are not (batch, channel, *spatial): which unit of the Graph each element holds.

A traced tensor is *canonical* when it is laid out like its Graph node: shape ``(1, *node.shape)``,
element k is unit k. Transformers, channel shuffles and window partitions move units around
(permute, reshape, roll, chunk, cat along tokens, ...). Such a tensor is described by ``ids``: a
float64 tensor of its own shape holding 1 + the global number of the unit in each element, 0 where
the element is a constant (a class token, zero padding). Data movement runs on the ids themselves,
so it is followed exactly, whatever the op; an op that computes (Linear, attention, +, ×, reductions)
turns its operands back into Graph nodes and its result into ids again:

* a Linear over an axis whose elements are the channels of one position is a 1×1 convolution
  (of a channel selection when it reads some channels only); over a vector it is a Linear;
* an elementwise op of two operands pairs their units element by element (``add``/``mul`` nodes);
* attention connects each query's units to the *values* of the keys it may attend (same channel),
  once per key: the scores (queries, keys, softmax) carry no paths, like a max-pool's choice.
  Tokens without a position (class tokens) are vector nodes; the connections among positions
  become a ``pool`` node whose per-axis ``Table`` (or flat ``Flat``) lists the keys of each query;
* a mean/sum/max over every position of a channel is a global pool;
* an elementwise op whose operands do not pair unit by unit (a channel slice of one map plus another, a
  (C, 1, 1) gate, a channels-last pair) makes each operand a Graph node (channels first or last) and
  becomes an add/mul node with broadcasting; a map whose positions come from several layers (a cat along
  positions) is one moved map per layer, added;
* functions the tracer keeps whole (timm's ``window_reverse``, ``deblockify``, ...) run on the ids when
  they only move data, which is checked: the result must commute with a random renaming of the units;
* attention scores may be rearranged (transposed, viewed, split) like data: every score element keeps
  the number of its query token, so ``v @ attnᵀ`` and per-head views are followed;
* attention across channels (XCiT, DaViT: the "tokens" of the values are channels) is a grouped 1×1
  convolution, one group per head; scores mixed across heads (talking heads) stay scores when every
  mixed head attends the same keys; after the softmax the weights are followed as the oracle's 0/1
  pattern under constant arithmetic (ConViT's gated positional attention); a product of the queries with
  a constant (SAM's relative positions) is a :class:`LogitTerm` that may only join the logits; key tokens
  that hold the same units are each a key.

Statistics and softmax. Normalisations are the identity by default: a unit's paths run through its own
value, not through the mean, variance or norm it is divided by (BatchNorm, LayerNorm, GroupNorm, RMSNorm and
``F.normalize`` alike); ``norm_stats="count"`` makes the statistics connections (:mod:`edgewise._stats`).
A softmax is mapped as attention's choice of keys (its scores carry no paths), or, of any other
input-dependent tensor, as a gate: "exp of the unit, divided by a statistic"
(the identity, consistent with the rule for normalisations), followed only where it multiplies another
tensor (selective-kernel / split attention) or weighs linear attention's keys; a softmax used otherwise (a
classifier output) is refused. Those rules, reductions that are not global pools, statistics written by
hand and linear attention are in ``_layout_more``. One more
exception: a softmax that flows only (through dropout, scaling and data movement) into a product with
values is attention weights generated without keys (VOLO's outlook attention; a constant query times keys,
a learned-query pooling): the values' path, once per value weighed, as for attention.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
import sys
import weakref

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ._axis import Adaptive, Flat, Table, Window
from ._sets import distinct_rows, unique, unique_rows
from ._shapes import _arg
from ._stats import count_statistics
from .errors import EdgewiseError

__all__ = ["Layout", "Scores"]

MOVE_FUNCTIONS = {
    torch.permute, torch.transpose, torch.swapaxes, torch.swapdims, torch.movedim, torch.t, torch.reshape,
    torch.flatten, torch.unflatten, torch.squeeze, torch.unsqueeze, torch.chunk, torch.split, torch.unbind,
    torch.tensor_split, torch.narrow, torch.select, torch.cat, torch.concat, torch.stack, torch.roll, torch.flip,
    operator.getitem, F.pad, F.pixel_shuffle, F.pixel_unshuffle, torch.channel_shuffle, F.channel_shuffle,
}
MOVE_METHODS = {
    "permute", "transpose", "swapaxes", "swapdims", "movedim", "t", "view", "reshape", "flatten", "unflatten",
    "squeeze", "unsqueeze", "contiguous", "expand", "expand_as", "repeat", "chunk", "split", "unbind", "narrow",
    "select", "roll", "flip", "view_as", "reshape_as", "tensor_split",
}
#: layers that no case of ``Layout.handle`` is about while no units are followed (exact types, not subclasses)
_PLAIN_MODULES = frozenset({nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Dropout,
                            nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                            nn.AdaptiveAvgPool2d, nn.Linear})
MOVE_MODULES = (nn.Flatten, nn.Unflatten, nn.ChannelShuffle, nn.PixelShuffle, nn.PixelUnshuffle)
_REPEATS = {torch.repeat_interleave, "repeat_interleave"}
#: im2col (``nn.Unfold`` / ``F.unfold``, ``Tensor.unfold``): a gather with zero padding, followed on the ids
MOVE_FUNCTIONS |= {F.unfold}
MOVE_METHODS |= {"unfold"}
_OLD_RESHAPE = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze,
                "view", "reshape", "flatten", "squeeze", "unsqueeze"}
_MATMUL = {torch.matmul, operator.matmul, torch.bmm, "matmul", "bmm", "__matmul__"}
_SOFTMAX = {F.softmax, torch.softmax, "softmax", F.dropout, "dropout"}
_SOFTMAX_ONLY = {F.softmax, torch.softmax, "softmax"}
_REDUCE = {torch.mean: "mean", "mean": "mean", torch.sum: "sum", "sum": "sum", torch.amax: "max", "amax": "max"}
_WEIGHT_ARITHMETIC = {
    operator.mul: operator.mul, operator.imul: operator.mul, torch.mul: operator.mul, "mul": operator.mul,
    "mul_": operator.mul, operator.truediv: operator.truediv, operator.itruediv: operator.truediv,
    torch.div: operator.truediv, "div": operator.truediv, "div_": operator.truediv,
    operator.add: operator.add, operator.iadd: operator.add, torch.add: operator.add, "add": operator.add,
    "add_": operator.add, operator.sub: operator.sub, operator.isub: operator.sub, torch.sub: operator.sub,
    "sub": operator.sub, "sub_": operator.sub,
}
_RADIX = 1 << 40  # place keys: node · RADIX + position
_CONST = -1
_MASK_BELOW = -50.0  # an additive constant this negative before a softmax masks the entry (Swin uses -100)


class Scores:
    """Attention scores q·kᵀ: which query tokens (``q`` ids, (..., Lq, D)) may attend which keys."""

    def __init__(self, q: torch.Tensor | None, allowed: torch.Tensor, qi: torch.Tensor | None = None,
                 qrows: torch.Tensor | None = None):
        self.allowed = allowed
        if qi is None:  # every score element knows its query token: 1 + a row of ``qrows``
            q = q.expand(*allowed.shape[:-1], q.shape[-1])
            qrows = q.reshape(-1, q.shape[-1])
            qi = (torch.arange(qrows.shape[0], dtype=torch.float64) + 1).reshape(q.shape[:-1])[..., None]
            qi = qi.expand(allowed.shape)
        self.qi, self.qrows = qi, qrows

    @property
    def q(self) -> torch.Tensor:
        """The query ids (…, Lq, D), one query token per row of the scores."""
        if self.qi.stride(-1) != 0 and not bool((self.qi == self.qi[..., :1]).all()):  # (0: one query a row by make)
            raise EdgewiseError("attention scores whose rows are not one query each (the scores were rearranged "
                                "across queries and keys)")
        return self.qrows[(self.qi[..., 0] - 1).long()]

    def masked(self, allowed: torch.Tensor) -> "Scores":
        shape = torch.broadcast_shapes(self.allowed.shape, allowed.shape)
        return Scores(None, (self.allowed & allowed).expand(shape), self.qi.expand(shape), self.qrows)


class Weights(Scores):
    """Attention weights: softmax(scores) as the autograd oracle computes them, a constant ``value`` that is 1
    where the query may attend the key and 0 where it is masked, then scaled, gated, mixed with constant weights
    (ConViT's positional attention) and renormalised as the model does; a query attends every key where its
    weight is non-zero, once."""

    def __init__(self, value: torch.Tensor, qi: torch.Tensor, qrows: torch.Tensor):
        shape = torch.broadcast_shapes(value.shape, qi.shape)
        value = value.double().expand(shape)
        super().__init__(None, value != 0, qi.expand(shape), qrows)
        self._value = value

    @classmethod
    def of(cls, s: Scores) -> "Weights":
        """The softmax of ``s``: 1 where a query may attend a key (its value made when first read: most weights
        go straight to the values, which need only where they are non-zero)."""
        shape = torch.broadcast_shapes(s.allowed.shape, s.qi.shape)
        w = cls.__new__(cls)
        Scores.__init__(w, None, s.allowed.bool().expand(shape), s.qi.expand(shape), s.qrows)
        w._value = None
        return w

    @property
    def value(self) -> torch.Tensor:
        if self._value is None:
            self._value = self.allowed.double()
        return self._value

    def masked(self, allowed: torch.Tensor) -> "Weights":
        return Weights(self.value * allowed, self.qi, self.qrows)


class LogitTerm:
    """A product of an input-dependent tensor with a constant that is not a Linear over channels (SAM's
    decomposed relative positions ``einsum("bhwc,hkc->bhwk", q, R)``). Added to attention logits it is part of
    them and carries no paths, like q·kᵀ; used in any other way it is refused with ``message``."""

    def __init__(self, message: str):
        self.message = message


def _signatures(node: np.ndarray, chan: np.ndarray):
    """Distinct (node, channel row) signatures of the rows and each row's signature index; the usual case
    (every row of a node reads the same channels) without numpy's slow row-wise unique."""
    sigs, inverse = [], np.zeros(node.size, dtype=np.int64)
    for n in unique(node):
        rows = np.flatnonzero(node == n)
        block = chan[rows]
        if (block == block[:1]).all():
            inverse[rows] = len(sigs)
            sigs.append(np.concatenate([[n], block[0]]))
            continue
        uniq, inv = unique_rows(block, return_inverse=True)
        inverse[rows] = len(sigs) + inv.reshape(-1)
        sigs += [np.concatenate([[n], u]) for u in uniq]
    return sigs, inverse


def _is_patch_merging(fn) -> bool:
    """torchvision's Swin pads and gathers the four 2×2 phases with a function that fx keeps whole."""
    return getattr(fn, "__name__", "") in ("_patch_merging_pad", "_patch_merging_pad_v2") and \
        getattr(fn, "__module__", "").startswith("torchvision")


def _torchvision_swin():
    mod = sys.modules.get("torchvision.models.swin_transformer")
    return getattr(mod, "shifted_window_attention", None) if mod else None


from ._layout_more import LayoutMore  # noqa: E402  (needs Scores above)


class Layout(LayoutMore):
    """The units of every non-canonical tensor of a trace, and the nodes made to compute on them.

    ``add(name, kind, inputs, shape, **node_fields) -> name`` adds a Graph node (the tracer's),
    ``canon`` maps fx nodes of canonical tensors to Graph node names, ``nodes`` is the Graph so far.
    """

    count_stats = False  # normalisation statistics as connections (edgewise._stats)
    check_known_rows = False  # tests: check every remembered row layout against reading the tensor

    def __init__(self, nodes: dict, canon: dict, add, modules: dict, model: nn.Module):
        self.nodes, self.canon, self._add, self.modules, self.model = nodes, canon, add, modules, model
        self.units: dict = {}  # fx node → ids tensor, tuple of them, or Scores
        self._bases: list[int] = []
        self._names: list[str] = []
        self._number: dict[str, int] = {}  # name → its index in _names / _bases
        self._total = 0
        self._consts: dict = {}
        self._paired = None
        self._rows: dict = {}  # data address → what :meth:`_row_positions` finds in an ids tensor made in row form
        self._expanded: dict = {}  # fx node of x.expand(...)/x.expand_as(y) → x: an elementwise op broadcasts x

    # ------------------------------------------------------------------ numbering
    def register(self, name: str, shape) -> None:
        """Give a new Graph node its range of global unit numbers."""
        self._number[name] = len(self._names)
        self._bases.append(self._total)
        self._names.append(name)
        self._total += math.prod(shape)

    def _index(self, name: str) -> int:
        return self._number[name]

    def ids_of(self, name: str) -> torch.Tensor:
        nd = self.nodes[name]
        base = self._bases[self._index(name)]
        return (torch.arange(math.prod(nd.shape), dtype=torch.float64) + (base + 1)).reshape((1, *nd.shape))

    def _single(self, ids: torch.Tensor) -> int | None:
        """The index of the node that holds every element of ``ids``, when all are units of one node; else None (a
        constant element, units of several nodes). One pass for the smallest and largest, no decoding."""
        if not ids.numel():
            return None
        lo, hi = torch.aminmax(ids)
        return self._node_between(float(lo) - 1, float(hi) - 1)

    def _node_between(self, lo, hi) -> int | None:
        """The index of the node whose unit numbers (ids − 1) include ``lo`` and ``hi``; None when lo < 0 (a constant)
        or they are units of different nodes."""
        if lo < 0:
            return None
        which = bisect.bisect_right(self._bases, lo) - 1
        end = self._bases[which + 1] if which + 1 < len(self._bases) else self._total
        return which if hi < end else None

    def _decode(self, ids: torch.Tensor):
        """(node index, unit within the node, const mask) of every element, as numpy arrays."""
        g = ids.detach().numpy().astype(np.int64) - 1
        lows, highs = _block_bounds(g.reshape(-1))
        lo, hi = (int(lows.min()), int(highs.max())) if g.size else (0, 0)
        one = self._node_between(lo, hi) if g.size else None
        if one is not None:  # (units of one node, the common case: no search per element)
            return np.full(g.shape, one, dtype=np.int64), g - self._bases[one], np.zeros(g.shape, dtype=bool)
        # each element's node among those whose numbers lie between the smallest and the largest (a few, of hundreds)
        start = max(bisect.bisect_right(self._bases, max(lo, 0)) - 1, 0)
        bases = np.asarray(self._bases[start:max(bisect.bisect_right(self._bases, hi), start + 1)], dtype=np.int64)
        which, local = _locate(g.reshape(-1), bases, lows, highs, start)
        which, local = which.reshape(g.shape), local.reshape(g.shape)
        if lo >= 0:
            return which, local, np.zeros(g.shape, dtype=bool)
        const = g < 0
        return np.where(const, -1, which), np.where(const, 0, local), const

    def _unit_ids(self, which: int, local) -> torch.Tensor:
        return torch.as_tensor(np.asarray(local, dtype=np.float64) + (self._bases[which] + 1))

    def _spatial(self, which: int) -> tuple[int, ...]:
        return tuple(self.nodes[self._names[which]].shape[1:])

    # ------------------------------------------------------------------ entry point
    def handle(self, fx: torch.fx.Node, name: str) -> bool:
        """Follow ``fx`` if it moves units or computes on non-canonical tensors; False: the tracer's own
        path applies (after the operands were made canonical where that is all that was needed)."""
        target = fx.target
        self._paired = None  # (the last pairing found, kept while this op is handled: see _pairs)
        if self._dead(fx):  # computes nothing the output reads (the shape tracer's copies inside leaf layers)
            return True
        if target in (getattr, "size", "dim", len) or "tensor_meta" not in fx.meta and target in (
                operator.getitem, operator.floordiv, operator.eq):
            if not (target is operator.getitem and isinstance(self.units.get(fx.args[0]), tuple)):
                return False  # shape arithmetic
        if fx.op == "call_module" and not self.units:
            module = self.modules.get(target)
            if type(module) in _PLAIN_MODULES and not self.__dict__.get("_gates") and not self.__dict__.get("_states"):
                # a plain layer on canonical tensors: what the cases below return
                return _statistics_used(module) and count_statistics(self, fx, name)
        if count_statistics(self, fx, name):
            return True
        args = fx.all_input_nodes
        held = self._held(args)
        lazy = [self.units[a] for a in held if isinstance(self.units[a], _Unmapped)]
        if lazy:
            return self._on_unmapped(fx, args, lazy[0])
        module = self.modules.get(target) if fx.op == "call_module" else None
        if any(isinstance(self.units[a], LogitTerm) for a in held) and \
                target is not F.scaled_dot_product_attention and \
                not any(isinstance(self.units[a], Scores) for a in held):
            return self._on_logit_term(fx)
        if self._expanded and module is None and len(fx.args) >= 2 and any(
                isinstance(a, torch.fx.Node) and a in self._expanded for a in fx.args[:2]):
            from ._trace import _function_op

            try:
                kind = _function_op(target, fx.args, fx.kwargs, 0)[0]
            except Exception:  # noqa: BLE001 - not an elementwise op: the cases below
                kind = None
            if kind in ("add", "mul"):  # x ⊙ g.expand_as(x): g broadcast, as without the expand
                return self._binary(fx, name, kind)
        more = self.dispatch(fx, name, args, module)  # statistics, gates, linear attention (_layout_more)
        if more is not None:
            return more
        held = self._held(args)  # again: dispatch may have made a pending sum units
        has_units = bool(held)
        if fx.op == "call_module":
            if isinstance(self.units.get(fx.args[0] if fx.args else None), Scores):
                if isinstance(module, nn.Softmax) and not isinstance(self.units[fx.args[0]], Weights):
                    self.units[fx] = Weights.of(self.units[fx.args[0]])
                    return True
                if isinstance(module, (nn.Softmax, nn.Dropout, nn.Identity)):  # the softmax / dropout of attention
                    self.units[fx] = self.units[fx.args[0]]
                    return True
                if isinstance(self.units[fx.args[0]], _Generated):
                    raise EdgewiseError(_weights_refused(fx, type(module).__name__))
                if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                    return self._mix_scores(fx, module, name)
                raise EdgewiseError(f"{fx.name}: attention scores reach {type(module).__name__}; edgewise follows "
                                    "scores only through scaling, additive biases/masks, softmax and dropout into a "
                                    "product with the values")
            if isinstance(module, nn.MultiheadAttention):
                return self._mha(fx, module, name)
            if isinstance(module, _WINDOW_POOLS) and has_units and self._ids(fx.args[0]).shape[0] != 1:
                return self._pool_module(fx, module, name)  # a pool of windows held in the batch axis (SAM2)
            if type(module) in (nn.Conv1d, nn.Conv2d) and isinstance(self.units.get(fx.args[0]), torch.Tensor) and \
                    self.units[fx.args[0]].ndim == module.weight.ndim and self.units[fx.args[0]].shape[0] > 1:
                return self._batched_conv(fx, module, name)
            if isinstance(module, nn.Softmax) and fx.args and self._live(fx.args[0]):
                return self._weights(fx)
            if isinstance(module, nn.Fold) and fx.args and self._live(fx.args[0]):
                return self._fold(fx, name)
            if isinstance(module, nn.LSTM) and fx.args and self._live(fx.args[0]):
                return self._lstm(fx, module, name)
            if isinstance(module, nn.Linear) and has_units:
                self._set(fx, self.project(self._ids(fx.args[0]), module.out_features, name, "Linear"))
                return True
            if isinstance(module, nn.Unfold):  # im2col: data movement with zero padding
                return self._move(fx)
            if isinstance(module, nn.modules.padding._ConstantPadNd) and min(_pair_list(module.padding)) < 0:
                return self._move(fx)  # a crop: followed on the ids
            if isinstance(module, MOVE_MODULES) and (has_units or isinstance(module, (nn.ChannelShuffle, nn.PixelShuffle,
                                                                                       nn.PixelUnshuffle, nn.Unflatten))):
                return self._move(fx)
        elif fx.op in ("call_function", "call_method"):
            if target is F.scaled_dot_product_attention:
                return self._sdpa(fx, name)
            if target in (F.conv1d, F.conv2d) and fx.op == "call_function":
                return self._functional_conv(fx, name)
            if target is _torchvision_swin() and target is not None:
                return self._swin(fx, name)
            if target in _MATMUL or target in (torch.einsum,):
                if has_units or any(isinstance(self.units[a], Scores) for a in held):
                    return self._matmul(fx, name)
                return False
            if target is F.linear and has_units:
                self._set(fx, self.project(self._ids(fx.args[0]), self._meta_shape(fx)[-1], name, "F.linear"))
                return True
            scores = [a for a in held if isinstance(self.units[a], Scores)]
            if scores:
                return self._on_scores(fx, scores[0])
            if target in (F.softmax, torch.softmax, "softmax") and self._live(fx.args[0]):
                return self._weights(fx)
            if target is F.fold and any(self._live(a) for a in args):
                return self._fold(fx, name)
            if not any(self._live(a) for a in args):
                return False  # arithmetic on constants
            if target in _REPEATS and not self._live(fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("repeats")):
                return self._move(fx)  # copies of units along an axis (gcvit's global query per window)
            if target in ("expand", "expand_as") and isinstance(fx.args[0], torch.fx.Node) and self._live(fx.args[0]):
                self._expanded[fx] = fx.args[0]  # (ECA's gate.expand_as(x): a product broadcasts the gate itself)
            if target in MOVE_FUNCTIONS or target in MOVE_METHODS or _is_patch_merging(target):
                if has_units or self._new_move(fx):
                    return self._move(fx)
                return False
            if has_units and target in _REDUCE:
                return self._reduce(fx, name)
            if target in (torch.max, "max") and self._live(fx.args[0]) and _max_dim(fx) is not None:
                return self._max_over(fx, name)
            if target in (torch.addcmul, "addcmul"):  # c + a·x with constants c, a (ResMLP's Affine): per unit
                live = [a for a in fx.args if isinstance(a, torch.fx.Node) and self._live(a)]
                if len(live) == 1 and live[0] is not fx.args[0] and \
                        tuple(self._meta_shape(fx)) == tuple(self._ids(live[0]).shape):
                    self._set(fx, self._ids(live[0]))
                    return True
            if fx.op == "call_function" and _autowrapped(target) and self._moves(fx):
                return True
        if not has_units:
            return False
        return self._compute(fx, name, module)

    def _held(self, args: list) -> list:
        """The operands among ``args`` whose units are followed (in ``units``), in order."""
        units = self.units
        return [a for a in args if a in units] if units else []

    def _on_unmapped(self, fx, args, lazy: "_Unmapped") -> bool:
        """An op reading a tensor whose units could not be mapped: added to attention scores it is part of the
        logits and carries no paths (a relative-position term computed from the queries, HaloNet); data movement
        and elementwise ops pass it on; anything else raises the error that made it."""
        from ._trace import _IDENTITY_METHODS, _is_identity_function

        target = fx.target
        scores = [a for a in args if isinstance(self.units.get(a), Scores)]
        if scores and target in (operator.add, torch.add, "add"):
            return self._on_scores(fx, scores[0])
        if fx.op != "call_module" and (target in MOVE_FUNCTIONS or target in MOVE_METHODS or
                                       _is_identity_function(target) or target in _IDENTITY_METHODS or
                                       target in (operator.add, operator.mul, operator.truediv, torch.add, torch.mul,
                                                  "add", "mul", "div")) and not scores:
            self.units[fx] = lazy
            return True
        raise lazy.error

    def raise_unmapped(self, fx) -> None:
        """Raise the error of ``fx``'s units if they could not be mapped (a model's output)."""
        if isinstance(self.units.get(fx), _Unmapped):
            raise self.units[fx].error
        if isinstance(self.units.get(fx), _Generated):
            raise EdgewiseError(_weights_refused(fx, "the output"))

    # ------------------------------------------------------------------ recurrent layers
    def _lstm(self, fx, m: nn.LSTM, name) -> bool:
        """``nn.LSTM`` unrolled in time over sequences of positions of one map (Sequencer's rows and columns).

        Step t of a sequence: gates = W_ih·x_t + W_hh·h_{t-1} (1×1 convolutions), c_t = f ⊙ c_{t-1} + i ⊙ g,
        h_t = o ⊙ tanh(c_t); products have the paths of both operands, activations are per unit, the zero
        initial state is a constant (its product with f is a scaling, as for any constant). Every step is a set
        of nodes on the map's grid whose units at the step's positions are used; h_{t-1} and c_{t-1} are moved
        from the previous positions of each sequence to the current ones.
        """
        hx = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("hx")
        if hx is not None or getattr(m, "proj_size", 0):
            raise EdgewiseError(f"layer {name!r}: nn.LSTM with an initial state or proj_size is not supported")
        x = self._ids(fx.args[0])
        if not m.batch_first:
            x = x.transpose(0, 1)
        if x.ndim != 3:
            raise EdgewiseError(f"layer {name!r}: nn.LSTM on an input of shape {tuple(x.shape)} (batched sequences "
                                "expected)")
        hid, dirs = m.hidden_size, 2 if m.bidirectional else 1
        for layer in range(m.num_layers):
            gx = self.project(x, 4 * hid, f"{name}:l{layer}:ih", "LSTM W_ih")
            which, local, const = self._decode(gx[..., 0])
            if const.any() or len(unique(which)) != 1:
                raise EdgewiseError(f"layer {name!r}: nn.LSTM over constants or over positions of several maps")
            g_node = self._names[int(which.flat[0])]
            spatial = self._spatial(int(which.flat[0]))
            npos = max(math.prod(spatial), 1)
            place = local % npos  # (N, T): the position of every step of every sequence
            if unique(place).size != place.size:
                raise EdgewiseError(f"layer {name!r}: nn.LSTM whose steps do not each sit at a position of their own")
            outs = []
            for d in range(dirs):
                steps = range(place.shape[1]) if d == 0 else range(place.shape[1] - 1, -1, -1)
                h = c = prev = None
                hs = {}
                for t in steps:
                    label = f"{name}:l{layer}:{'fb'[d]}{t}"
                    gates = g_node
                    if h is not None:
                        axes = relation_axes(place[:, t], place[:, prev], spatial, spatial)
                        h_moved = self._add(f"{label}:h", "pool", (h,), (hid, *spatial), axes=axes, op="LSTM step")
                        c = self._add(f"{label}:c", "pool", (c,), (hid, *spatial), axes=axes, op="LSTM step")
                        rec = self._add(f"{label}:hh", "conv", (h_moved,), (4 * hid, *spatial),
                                        axes=tuple(Window(1, 1) for _ in spatial), op="LSTM W_hh")
                        gates = self._add(f"{label}:gates", "add", (g_node, rec), (4 * hid, *spatial), op="LSTM")
                    i, f, g, o = (self._add(f"{label}:{k}", "select", (gates,), (hid, *spatial),
                                            pick=tuple(range(q * hid, (q + 1) * hid)), op="LSTM gate")
                                  for q, k in enumerate("ifgo"))
                    ig = self._add(f"{label}:ig", "mul", (i, g), (hid, *spatial), op="LSTM i*g")
                    fc = f if c is None else self._add(f"{label}:fc", "mul", (f, c), (hid, *spatial), op="LSTM f*c")
                    c = self._add(f"{label}:cell", "add", (fc, ig), (hid, *spatial), op="LSTM c")
                    h = self._add(f"{label}:hidden", "mul", (o, c), (hid, *spatial), op="LSTM o*tanh(c)")
                    hs[t], prev = h, t
                # one map of h: every position from the step that computed it
                grid = torch.zeros((1, hid, npos), dtype=torch.float64)
                for t, node in hs.items():
                    ids = self.ids_of(node).reshape(hid, npos)
                    grid[0][:, place[:, t]] = ids[:, place[:, t]]
                joined = self.canonical(grid.reshape(1, hid, *spatial), f"{name}:l{layer}:{'fb'[d]}")
                outs.append(self.ids_of(joined).reshape(hid, npos)[:, place].permute(1, 2, 0))
            x = torch.cat(outs, -1)
        out = x if m.batch_first else x.transpose(0, 1)
        state = _Unmapped(EdgewiseError(f"layer {name!r}: the final state (h_n, c_n) of nn.LSTM is not mapped"))
        self.units[fx] = (out, (state, state))
        return True

    # ------------------------------------------------------------------ generated attention weights, fold
    def _weights(self, fx) -> bool:
        """A softmax of an input-dependent tensor that is not q·kᵀ: attention weights generated by a layer
        (VOLO's outlook attention). Like scores they carry no paths; each row is one query, at the place of the
        units it was computed from, and may attend every key of the product with the values it meets next."""
        ids = self._ids(fx.args[0])
        self.units[fx] = _Generated(ids, torch.ones(ids.shape, dtype=torch.bool))
        return True

    def _on_generated(self, fx, a) -> bool:
        """Generated weights go only through dropout, casts, scaling by constants and data movement into a
        product with the values; anything else (a gate over branches, a classifier output) is refused."""
        t = fx.target
        others = [x for x in fx.all_input_nodes if x is not a]
        ok = t in (F.dropout, "dropout", "float", "to", "type_as", "contiguous") or (
            t in (operator.mul, operator.truediv, torch.mul, torch.div, "mul", "div") and
            not any(self._live(x) for x in others)) or (
            (t in MOVE_METHODS or t in MOVE_FUNCTIONS) and t not in (torch.cat, torch.concat, torch.stack, F.pad)
            and t is not operator.getitem)
        if not ok:
            raise EdgewiseError(_weights_refused(fx, str(getattr(t, "__name__", t))))
        self._on_scores_of(fx, a)
        got = self.units[fx]
        for w in (got if isinstance(got, tuple) else (got,)):
            if isinstance(w, Scores):
                w.__class__ = _Generated  # still generated weights after a reshape
        return True

    def _fold(self, fx, name) -> bool:
        """``F.fold`` / ``nn.Fold`` (col2im): each column's channel (c, kernel offset) is added at the position
        its block and offset land on; per offset, a fixed move of block positions, then the sum of the offsets."""
        import inspect

        if fx.op == "call_module":
            m = self.modules[fx.target]
            x = self._ids(fx.args[0])
            out, kernel, dil, pad, stride = m.output_size, m.kernel_size, m.dilation, m.padding, m.stride
        else:
            bound = inspect.signature(F.fold).bind(*self._value(fx.args), **self._value(fx.kwargs))
            bound.apply_defaults()
            a = bound.arguments
            x, out, kernel, dil, pad, stride = (a["input"], a["output_size"], a["kernel_size"], a["dilation"],
                                                a["padding"], a["stride"])
        out, kernel, dil, pad, stride = (tuple(v) if isinstance(v, (tuple, list)) else (v, v)
                                         for v in (out, kernel, dil, pad, stride))
        if x.ndim != 3 or x.shape[0] != 1:
            raise EdgewiseError(f"layer {name!r}: fold of a tensor of shape {tuple(x.shape)} (batch 1, channels × "
                                "kernel, blocks expected)")
        blocks = tuple((o + 2 * p - d * (k - 1) - 1) // s + 1 for o, p, d, k, s in zip(out, pad, dil, kernel, stride))
        c = x.shape[1] // math.prod(kernel)
        cols = x.reshape(1, c, kernel[0], kernel[1], *blocks)
        total = None
        for ky in range(kernel[0]):
            for kx in range(kernel[1]):
                part = cols[:, :, ky, kx]
                if not bool((part > 0).any()):
                    continue
                src = self.canonical(part.contiguous(), name)
                axes = []
                for o, p, d, s, nb, k in zip(out, pad, dil, stride, blocks, (ky, kx)):
                    m = np.zeros((o, nb), dtype=bool)
                    lands = np.arange(nb) * s - p + k * d
                    inside = (lands >= 0) & (lands < o)
                    m[lands[inside], np.flatnonzero(inside)] = True
                    axes.append(_window_or_table(m))
                moved = self._add(f"{name}:offset", "pool", (src,), (c, *out), axes=tuple(axes), op="fold")
                total = moved if total is None else self._add(name, "add", (total, moved), (c, *out), op="fold")
        if total is None:
            raise EdgewiseError(f"layer {name!r}: fold of constants only")
        self._set(fx, self.ids_of(total))
        return True

    # ------------------------------------------------------------------ helpers
    def _dead(self, fx) -> bool:
        """Whether no path leads from ``fx`` to the traced graph's output: such a node's units are never read
        (its users are dead too), so it is skipped rather than mapped (the meta-device shape tracer records a
        second, unused copy of what runs inside leaf layers, e.g. BatchNormAct2d's conv, norm and activation)."""
        graph = fx.graph
        if getattr(self, "_live_graph", None) is not graph:
            keep = set()
            for n in reversed(graph.nodes):  # (topological order: a node's users come after it)
                if n.op == "output" or not keep.isdisjoint(n.users):
                    keep.add(n)
            self._live_graph, self._reaching = graph, keep
        return fx not in self._reaching

    def _live(self, a) -> bool:
        """Whether fx node ``a`` holds units (not a constant, not shape arithmetic)."""
        return a in self.units or (a in self.canon and self.nodes[self.canon[a]].kind != "const")

    def _meta_shape(self, fx) -> tuple[int, ...]:
        meta = fx.meta.get("tensor_meta")
        return tuple(map(int, meta.shape)) if meta is not None else ()

    def _ids(self, a) -> torch.Tensor:
        """ids of an fx operand: its units, a canonical node's numbering, or zeros for a constant."""
        if not isinstance(a, torch.fx.Node):
            return a
        got = self.units.get(a)
        if isinstance(got, torch.Tensor):
            return got
        if isinstance(got, _Unmapped):
            raise got.error
        if got is not None:
            raise EdgewiseError(f"{a.name}: a tuple or attention scores used as a tensor")
        if a in self.canon and self.nodes[self.canon[a]].kind != "const":
            return self.ids_of(self.canon[a])
        shape = self._meta_shape(a)
        return torch.zeros(shape, dtype=torch.float64)

    def _value(self, a):
        """An fx argument with tensors replaced by ids and shape arithmetic by its traced value."""
        def one(x):
            if not isinstance(x, torch.fx.Node):
                return x
            if "tensor_meta" in x.meta and x.meta["tensor_meta"] is not None or x in self.units or x in self.canon:
                return self._ids(x) if not isinstance(self.units.get(x), tuple) else self.units[x]
            return x.meta.get("value")
        return torch.fx.node.map_aggregate(a, one)

    def _set(self, fx, ids) -> None:
        """Record ``fx``'s units, as the Graph node itself when they are that node's canonical layout."""
        if isinstance(ids, torch.Tensor):
            name = self._canonical_name(ids)
            if name is not None:
                self.canon[fx] = name
                return
        self.units[fx] = ids

    def _canonical_name(self, ids: torch.Tensor, reshaped: bool = False) -> str | None:
        """The node whose units ``ids`` hold in their own order and shape (with ``reshaped``: in their own
        order, any shape with the batch axis first)."""
        if ids.ndim == 0 or ids.shape[0] != 1 or ids.numel() == 0:
            return None
        corner = ids[(0,) * ids.ndim]  # (the first element, without the copy a reshape of a permuted tensor makes)
        first = int(corner) - 1
        if first < 0:
            return None
        which = self._node_between(first, first)  # (one unit: its node by one search, without decoding arrays)
        if which is None:
            which = int(self._decode(corner.reshape(1))[0][0])
        if first != self._bases[which]:
            return None  # (not the node's first unit)
        name = self._names[which]
        nd = self.nodes[name]
        if not (tuple(ids.shape[1:]) == tuple(nd.shape) or (reshaped and ids.numel() == math.prod(nd.shape))):
            return None
        flat = ids.reshape(-1)
        probe = torch.linspace(0, flat.numel() - 1, min(flat.numel(), 257)).long()
        if not torch.equal(flat[probe], probe.double() + (first + 1)):
            return None
        expect = torch.arange(flat.numel(), dtype=torch.float64) + (first + 1)
        return name if torch.equal(flat, expect) else None

    def _new_move(self, fx) -> bool:
        """A data movement on canonical tensors that the tracer's own reshape/cat kinds do not cover."""
        if fx.target in (torch.cat, torch.concat):
            dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim", 0)
            return int(dim) % len(self._meta_shape(fx)) != 1
        if fx.target in _OLD_RESHAPE:
            src = fx.args[0] if isinstance(fx.args[0], torch.fx.Node) else None
            if src not in self.canon:
                return False
            out = self._meta_shape(fx)[1:]
            in_shape = self.nodes[self.canon[src]].shape
            return self._meta_shape(fx)[:1] != (1,) or not (len(out) == 1 or (
                len(out) == len(in_shape) and tuple(out[1:]) == tuple(in_shape[1:])))
        if fx.target is F.pad:  # a pad is a pool node, a crop (negative padding) or a traced size is followed
            raw = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("pad")
            if isinstance(raw, torch.fx.Node) or any(isinstance(p, torch.fx.Node) for p in raw):
                return True
            return min(raw, default=0) < 0
        return fx.target not in ("contiguous", "expand", "expand_as", "repeat")

    # ------------------------------------------------------------------ data movement
    def _move(self, fx) -> bool:
        args, kwargs = self._value(fx.args), self._value(fx.kwargs)
        if fx.target is operator.getitem and isinstance(args[0], tuple):
            if not isinstance(args[0][args[1]], (torch.Tensor, tuple, Scores, _Unmapped)):
                return False  # a None or a size returned beside the tensors: its traced value is used
            self._set(fx, args[0][args[1]])
            return True
        if fx.op == "call_module":
            out = self.modules[fx.target](*args, **kwargs)
        elif fx.target is F.pad and (args[2] if len(args) > 2 else kwargs.get("mode", "constant")) == "constant":
            pad = args[1] if len(args) > 1 else kwargs["pad"]
            out = F.pad(args[0] if args else kwargs["input"], pad)  # (padded with constants, id 0: not `value`)
        elif fx.op == "call_method":
            out = getattr(args[0], fx.target)(*args[1:], **kwargs)
        elif fx.target in (torch.channel_shuffle, F.channel_shuffle):  # no float kernel
            out = F.channel_shuffle(args[0].long(), *args[1:], **kwargs).double()
        else:
            out = fx.target(*args, **kwargs)
        if isinstance(out, (tuple, list)):
            self.units[fx] = tuple(out)
        else:
            self._set(fx, out)
        return True

    def _moves(self, fx) -> bool:
        """Run a function kept whole by the tracer (timm's ``window_reverse``, ``deblockify``, ...) on the ids
        if it only moves data: then it commutes with renaming the units (checked with a random renaming)."""
        try:
            args, kwargs = self._value(fx.args), self._value(fx.kwargs)
            found: list = []
            torch.fx.node.map_aggregate((args, kwargs), lambda x: found.append(x) if isinstance(x, torch.Tensor)
                                        else None)
            if not found:
                return False
            values = torch.unique(torch.cat([t.reshape(-1) for t in found]))
            values = values[values > 0]
            gen = torch.Generator().manual_seed(0)
            renamed = values[torch.randperm(values.numel(), generator=gen)]

            def rename(t):
                if not isinstance(t, torch.Tensor):
                    return t
                idx = torch.searchsorted(values.contiguous(), t.contiguous()).clamp(max=max(values.numel() - 1, 0))
                hit = (t > 0) & (values[idx] == t) if values.numel() else torch.zeros_like(t, dtype=torch.bool)
                if bool(((t > 0) & ~hit).any()):
                    raise ValueError("new units")
                return torch.where(hit, renamed[idx] if values.numel() else t, t)

            out = fx.target(*args, **kwargs)
            again = fx.target(*torch.fx.node.map_aggregate(args, rename), **torch.fx.node.map_aggregate(kwargs, rename))
            outs = list(out) if isinstance(out, (tuple, list)) else [out]
            agains = list(again) if isinstance(again, (tuple, list)) else [again]
            if not all(isinstance(o, torch.Tensor) and o.dtype == torch.float64 and torch.equal(rename(o), g)
                       or _plain(o) and o == g for o, g in zip(outs, agains)):  # (a None or a size beside)
                return False
        except Exception:
            return False
        if isinstance(out, (tuple, list)):
            self.units[fx] = tuple(out)
        else:
            self._set(fx, out)
        return True

    # ------------------------------------------------------------------ canonical operands
    def canonical(self, ids: torch.Tensor, name: str) -> str:
        """The Graph node laid out as ``ids`` (1, C, *S): a node, a channel selection or their concatenation."""
        if ids.ndim < 2 or ids.shape[0] != 1:
            raise EdgewiseError(f"layer {name!r}: a tensor of shape {tuple(ids.shape)} whose units edgewise cannot "
                                "map back to channels × positions (the batch axis holds units)")
        known = self._canonical_name(ids)
        if known is not None:
            return known
        flat = self._canonical_name(ids, reshaped=True)
        if flat is not None:  # a view in the node's own order (x.flatten(2) for a layer on the flattened grid)
            return self._add(f"{name}:view", "reshape", (flat,), tuple(ids.shape[1:]), op="view")
        c = ids.shape[1]
        spatial = tuple(ids.shape[2:])
        p = math.prod(spatial)
        whole = self._whole_channels(ids[0].reshape(c, p), spatial)
        if whole is not None:  # (channels of nodes, each whole and in order: a channel shuffle, a split)
            node, chan = whole
            ok = True
        else:
            which, local, const = self._decode(ids[0].reshape(c, p))
            node = np.where(const, -1, which).max(1)
            kinds, of = unique(node, return_inverse=True)  # (each layer's grid looked up once, not per channel)
            grids = [self._spatial(int(n)) for n in kinds]
            sizes = np.array([max(math.prod(g), 1) for g in grids])[of]
            chan = np.where(const, -1, local // sizes[:, None]).max(1)
            ok = ~const.any() & (which == node[:, None]).all(1) & (local == chan[:, None] * p + np.arange(p)).all(1)
            ok &= np.array([g == spatial for g in grids])[of]
        if not np.all(ok):
            live = unique(which[~const])
            if live.size > 1 and not const.all(1).any():  # side by side (a cat along positions): one part per layer
                flat = ids[0].reshape(c, p)
                parts = [self.canonical(torch.where(torch.as_tensor(which == w), flat, 0).reshape(ids.shape), name)
                         for w in live]
                node = parts[0]
                for extra in parts[1:]:
                    node = self._add(f"{name}:join", "add", (node, extra), (c, *spatial), op="positions of several layers")
                return node
            return self._moved(which, local, const, node, chan, sizes, spatial, name)
        starts = [0, *np.flatnonzero(node[1:] != node[:-1]) + 1]
        layers = list(dict.fromkeys(int(n) for n in node[starts]))
        if len(starts) > len(layers) + 1:  # channels of a few layers interleaved (a channel shuffle)
            return self._interleaved(node, chan, layers, spatial, name)
        parts = [self._select(int(node[start]), chan[start:stop], name)
                 for start, stop in zip(starts, [*starts[1:], c])]
        if len(parts) == 1:
            return parts[0]
        return self._add(f"{name}:cat", "cat", tuple(parts), (c, *spatial), op="torch.cat")

    def _whole_channels(self, rows: torch.Tensor, spatial: tuple):
        """(node index, channel) of each row of ``rows`` (C, P) where every row holds one whole channel of a node
        on the grid ``spatial``, its positions in order; else None. From each row's first unit and one comparison,
        without decoding every unit."""
        first = rows[:, 0].numpy().astype(np.int64) - 1
        if not first.size or first.min() < 0:
            return None
        bases = self._base_array()
        node = np.searchsorted(bases, first, side="right") - 1
        chan, pos = np.divmod(first - bases[node], max(math.prod(spatial), 1))
        if pos.any() or any(self._spatial(int(n)) != spatial for n in unique(node)):
            return None
        expect = torch.as_tensor(first + 1, dtype=torch.float64)[:, None] + torch.arange(rows.shape[1],
                                                                                        dtype=torch.float64)
        return (node, chan) if torch.equal(rows, expect) else None

    def _interleaved(self, node: np.ndarray, chan: np.ndarray, layers: list, spatial, name: str) -> str:
        """Channels of ``layers`` in an interleaved order (channel k: channel ``chan[k]`` of layer ``node[k]``):
        each layer's channels in their own order, concatenated, then one selection puts them in place (four
        nodes for a channel shuffle instead of one per channel)."""
        parts, at = [], {}
        for w in layers:
            chans = unique(chan[node == w])
            at.update({(w, int(ch)): len(at) + i for i, ch in enumerate(chans)})
            parts.append(self._select(w, chans, name))
        joined = self._add(f"{name}:cat", "cat", tuple(parts), (len(at), *spatial), op="torch.cat")
        pick = tuple(at[int(w), int(ch)] for w, ch in zip(node, chan))
        return self._add(f"{name}:select", "select", (joined,), (len(pick), *spatial), pick=pick,
                         op="channel selection")

    def _moved(self, which, local, const, node, chan, sizes, spatial, name) -> str:
        """A map whose positions moved the same way in every channel (a roll, a crop, a pad, a spatial
        concatenation part): a pool with the move as fixed per-axis connections, then the channels."""
        pos = np.where(const, -1, local % sizes[:, None])
        one = node[0]
        same = (pos == pos[:1]).all() and (node == one).all() and ((which == one) | const).all() and \
            (chan >= 0).all() and bool(self._spatial(int(one)))
        # every element of a row must be of that row's channel (a row holding several channels is not a move)
        same = same and bool((const | (local // sizes[:, None] == chan[:, None])).all())
        if not same:
            grouped = self._moved_per_channel(which, local, const, node, chan, sizes, spatial, name)
            if grouped is not None:
                return grouped
            raise EdgewiseError(f"layer {name!r} reads a tensor whose positions were rearranged differently per "
                                "channel, or mixed from several layers; edgewise cannot map it to a layer")
        src = self._names[int(one)]
        live = pos[0] >= 0
        in_spatial = self._spatial(int(one))
        if len(in_spatial) != len(spatial):  # e.g. tokens (C, H·W) taken from a (C, H, W) map: view it first
            if math.prod(in_spatial) != math.prod(spatial):
                raise EdgewiseError(f"layer {name!r} reads a {len(in_spatial)}-D map's positions moved onto a "
                                    f"{len(spatial)}-D grid of another size; edgewise cannot map it to a layer")
            src = self._add(f"{name}:view", "reshape", (src,), (self.nodes[src].shape[0], *spatial), op="view")
            in_spatial = spatial
        axes = relation_axes(np.flatnonzero(live), pos[0][live], spatial, in_spatial)
        moved = self._add(f"{name}:move", "pool", (src,), (self.nodes[src].shape[0], *spatial), axes=axes,
                          op="data movement")
        return self._select(self._index(moved), chan, name)

    def _moved_per_channel(self, which, local, const, node, chan, sizes, spatial, name) -> str | None:
        """A map whose channels moved positions in different ways (space-to-depth, a DCT's k×k blocks turned
        into channels): rows (channels) grouped by their source node and position move; per group one
        data-movement pool node and its channels; the groups concatenated along the channels in row order.
        None when a row is not one channel of one node (the caller refuses)."""
        pos = np.where(const, -1, local % sizes[:, None])
        rows_ok = ((which == node[:, None]) | const).all(1) & (chan >= 0) & \
            ((local // sizes[:, None] == chan[:, None]) | const).all(1)
        if not rows_ok.all() or not all(len(self._spatial(int(n))) == len(spatial) for n in unique(node)):
            return None  # (a move between grids of different rank is not a per-axis relation)
        keys = np.concatenate([node[:, None], pos], axis=1)
        groups, group_of = unique_rows(keys, return_inverse=True)
        group_of = group_of.reshape(-1)
        if len(groups) > 1024:
            return None  # nearly one move per channel: not a structured rearrangement
        moved: dict[int, int] = {}
        for g, key in enumerate(groups):
            src = int(key[0])
            live = key[1:] >= 0
            axes = relation_axes(np.flatnonzero(live), key[1:][live], spatial, self._spatial(src))
            made = self._add(f"{name}:move", "pool", (self._names[src],), (self.nodes[self._names[src]].shape[0],
                                                                          *spatial), axes=axes, op="data movement")
            moved[g] = self._index(made)
        parts, start = [], 0
        for k in range(1, len(node) + 1):
            if k == len(node) or group_of[k] != group_of[start]:
                parts.append(self._select(moved[int(group_of[start])], chan[start:k], name))
                start = k
        if len(parts) == 1:
            return parts[0]
        return self._add(f"{name}:cat", "cat", tuple(parts), (len(node), *spatial), op="channels moved differently")

    def _batched_conv(self, fx, module, name) -> bool:
        """A convolution applied to a tensor whose batch axis holds units (MViTv2 pools each head's queries, keys and
        values with one depthwise convolution, heads in the batch axis): the same kernel on every batch slice, so
        one grouped convolution over the slices side by side in the channels."""
        from ._trace import _conv_axes

        ids = self.units[fx.args[0]]
        n, c = ids.shape[0], ids.shape[1]
        spatial = tuple(ids.shape[2:])
        src = self.canonical(ids.reshape(1, n * c, *spatial), name)
        axes = _conv_axes(module, len(spatial))
        out = self._meta_shape(fx)
        if tuple(a.out_size(i) for a, i in zip(axes, spatial)) != tuple(out[2:]) or out[0] != n:
            raise EdgewiseError(f"layer {name!r} maps {tuple(ids.shape)} → {out}, not what its kernel, stride and "
                                "padding give")
        node = self._add(name, "conv", (src,), (n * out[1], *out[2:]), axes=axes, groups=n * module.groups,
                         op=f"{type(module).__name__} per batch slice")
        self.units[fx] = self.ids_of(node).reshape(out)
        return True

    def _functional_conv(self, fx, name) -> bool:
        """``F.conv1d``/``F.conv2d`` with a constant weight (timm's BlurPool2d): a convolution node, one connection
        per weight tap (as for ``nn.Conv2d``), with the call's stride, padding, dilation and groups."""
        arg = functools.partial(_arg, fx)
        x, weight, bias = arg(0, "input"), arg(1, "weight"), arg(2, "bias")
        if not isinstance(x, torch.fx.Node) or not self._live(x):
            return False
        if any(isinstance(t, torch.fx.Node) and self._live(t) for t in (weight, bias)):
            raise EdgewiseError(f"layer {name!r}: a convolution whose weight or bias depends on the input (a dynamic "
                                "convolution) has no fixed connections")
        wshape = self._meta_shape(weight) if isinstance(weight, torch.fx.Node) else tuple(weight.shape)
        n = len(wshape) - 2
        stride, padding, dilation, groups = (self._value(arg(i, k, d)) for i, k, d in
                                             ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1), (6, "groups", 1)))
        k = wshape[2:]
        s = tuple(stride) if isinstance(stride, (tuple, list)) else (stride,) * n
        d = tuple(dilation) if isinstance(dilation, (tuple, list)) else (dilation,) * n
        if isinstance(padding, str):
            pads = [(0, 0)] * n if padding == "valid" else \
                [((di * (ki - 1)) // 2, di * (ki - 1) - (di * (ki - 1)) // 2) for ki, di in zip(k, d)]
        else:
            pads = [(p, p) for p in (tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * n)]
        if x in self.units:
            self.canon[x] = self.canonical(self.units.pop(x), name)
        src = self.canon[x]
        axes = tuple(Window(int(k[a]), int(s[a]), int(d[a]), tuple(int(p) for p in pads[a]), "zeros") for a in range(n))
        out_shape = self._meta_shape(fx)[1:]
        in_shape = self.nodes[src].shape
        if len(in_shape) != n + 1 or tuple(a.out_size(i) for a, i in zip(axes, in_shape[1:])) != tuple(out_shape[1:]) \
                or in_shape[0] != wshape[1] * int(groups) or out_shape[0] != wshape[0]:
            raise EdgewiseError(f"layer {name!r}: a functional convolution maps {in_shape} → {out_shape}, which its "
                                f"weight {wshape}, stride, padding and groups do not give")
        self.canon[fx] = self._add(name, "conv", (src,), out_shape, axes=axes, groups=int(groups),
                                   op=f"F.conv{n}d")
        return True

    def _compute(self, fx, name, module) -> bool:
        """Ops that need canonical operands: elementwise ops keep or pair units; the rest get their
        operands made canonical and go the tracer's way."""
        from ._trace import _IDENTITY_METHODS, _function_op, _is_identity_function, _shape_preserving

        target = fx.target
        if fx.op == "call_method" and target in ("type_as", "to") and fx.args and fx.args[0] in self.units:
            self._set(fx, self._ids(fx.args[0]))  # x.type_as(y), x.to(y): y lends only its dtype
            return True
        tensors = [a for a in fx.all_input_nodes if self._live(a)]
        if (module is not None and _shape_preserving(module)) or (
                module is None and (_is_identity_function(target) or target in _IDENTITY_METHODS or (
                    target in (operator.pow, torch.pow, "pow") and fx.args and fx.args[0] in tensors))):
            if len(tensors) == 1:  # (x ** k with a number k: per unit, as StarReLU's relu(x) ** 2 on tokens)
                self._set(fx, self._ids(tensors[0]))
                return True
        if module is None and target in ("type_as", "to") and fx.args and fx.args[0] in tensors:
            self._set(fx, self._ids(fx.args[0]))  # x.type_as(y), x.to(y): y lends only its dtype and device
            return True
        if module is None:
            try:
                kind, _ = _function_op(target, fx.args, fx.kwargs, 0)
            except Exception:
                kind = None
            if kind in ("add", "mul"):
                return self._binary(fx, name, kind)
        for a in tensors:
            if a in self.units:
                self.canon[a] = self.canonical(self.units.pop(a), name)
        return False

    def _binary(self, fx, name, kind, operands=None, op=None) -> bool:
        if operands is None:
            operands = [self._ids(self._expanded.get(a, a)) for a in
                        (fx.args[0], fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("other"))]
        operands = [o for o in operands if isinstance(o, torch.Tensor)]
        if len(operands) == 1:
            self._set(fx, operands[0])
            return True
        pairs = self._pairs(operands)
        if pairs is None:
            if self._pair_channels(fx, name, kind, operands):
                return True
            try:
                return self._broadcast_binary(fx, name, kind, operands, op)
            except EdgewiseError as e:  # refused where its units are needed (attention logits need none)
                self.units[fx] = _Unmapped(e)
                return True
        shape = np.broadcast_shapes(*(tuple(o.shape) for o in operands))
        if isinstance(pairs, _RowPairs):  # (both operands in rows: the output made row by row, nothing decoded)
            made = [self._index(self._add(name if k == 0 else f"{name}:{k}", kind,
                                          tuple(self._names[n] for n in pair), self.nodes[self._names[pair[0]]].shape,
                                          op=op or _op_name(fx.target))) for k, pair in enumerate(pairs.nodes)]
            self._set(fx, self._rows_ids(np.asarray(made, dtype=np.int64)[pairs.pair_of_rows()], pairs.pos, shape))
            return True
        if len(pairs) == 2:  # each operand the units of one node, paired: the new node's ids in one step
            sa, sb = (self.nodes[self._names[n]] for n in pairs)
            new = self._add(name, kind, (sa.name, sb.name), sa.shape, op=op or _op_name(fx.target))
            out = torch.as_tensor(np.broadcast_to(operands[0].numpy(), shape) +
                                  float(self._bases[self._index(new)] - self._bases[pairs[0]]))
            known = next((k for k in self._rows_pair(operands, shape) if k is not None), None)
            if known is not None:  # (an operand in rows, the same units: the new node's rows at the same positions)
                self._made_in_rows(out, np.full(len(known[1]), self._index(new)), known[2][:, 0])
            self._set(fx, out)
            return True
        a, b, both, wa, wb, la, node_pairs = pairs
        radix = len(self._names)  # (above every node index paired: the new nodes come after)
        firsts = np.empty(len(node_pairs), dtype=np.int64)
        for k, (na, nb) in enumerate(node_pairs):
            sa, sb = self.nodes[self._names[na]], self.nodes[self._names[nb]]
            new = self._add(name if k == 0 else f"{name}:{k}", kind, (sa.name, sb.name), sa.shape,
                            op=op or _op_name(fx.target))
            firsts[k] = self._bases[self._index(new)] + 1
        if len(node_pairs) > 1:  # each element its pair's new node (the pairs are sorted, as their keys)
            keys = np.array([na * radix + nb for na, nb in node_pairs], dtype=np.int64)
            firsts = firsts[np.searchsorted(keys, wa * radix + wb)]
        if both.size and both.size == a.size:  # (every element a unit of both operands)
            out = (la + firsts).astype(np.float64)
        else:
            out = np.where(a > 0, a, b)
            if both.size:
                out[both] = la + firsts
        self._set(fx, torch.as_tensor(out.reshape(shape)))
        return True

    def _pair_channels(self, fx, name, kind, operands) -> bool:
        """``a ± b`` / ``a · b`` of operands of one shape that hold, element by element, units at the same position
        of maps on the same grid but of other channels (RoPE's ``x·cos + rotate(x)·sin``): per pair of maps, the
        channels each operand reads, selected, and added/multiplied on that grid. False
        when the operands' shapes differ or some pair of units is not at one position: the caller's broadcasting
        applies."""
        if tuple(operands[0].shape) != tuple(operands[1].shape):
            return False
        a, b = (np.ascontiguousarray(t) for t in np.broadcast_arrays(*(o.numpy() for o in operands)))
        shape = a.shape
        a, b = a.reshape(-1), b.reshape(-1)
        both = np.flatnonzero((a > 0) & (b > 0))
        if not both.size:
            return False
        wa, la, _ = self._decode(torch.as_tensor(a[both]))
        wb, lb, _ = self._decode(torch.as_tensor(b[both]))
        sizes = self._sizes()
        pa, pb = la % sizes[wa], lb % sizes[wb]
        if not np.array_equal(pa, pb) or any(self._spatial(int(x)) != self._spatial(int(y))
                                             for x, y in set(zip(wa.tolist(), wb.tolist()))):
            return False
        ca, cb = la // sizes[wa], lb // sizes[wb]
        out = np.where(a > 0, a, b)
        sig = np.stack([wa, ca, wb, cb], 1)
        maps = unique_rows(sig[:, [0, 2]])
        for k, (na, nb) in enumerate(maps.tolist()):
            rows = np.flatnonzero((sig[:, 0] == na) & (sig[:, 2] == nb))
            chans, channel = unique_rows(sig[rows][:, [1, 3]], return_inverse=True)
            spatial = self._spatial(na)
            src_a = self._select(na, chans[:, 0], name)
            src_b = self._select(nb, chans[:, 1], name)
            new = self._add(name if k == 0 else f"{name}:{k}", kind, (src_a, src_b), (len(chans), *spatial),
                            op=f"{_op_name(fx.target)} (channels paired at each position)")
            npos = max(math.prod(spatial), 1)
            out[both[rows]] = channel.reshape(-1) * npos + pa[rows] + (self._bases[self._index(new)] + 1)
        self._set(fx, torch.as_tensor(out.reshape(shape)))
        return True

    def _pairable(self, operands) -> bool:
        """Whether the live units of two operands pair element by element (same node shapes, same units)."""
        return self._pairs(operands) is not None

    def _pairs(self, operands):
        """How the live units of two operands pair element by element (same node shapes, same units), or None where
        they do not: ``(na, nb)`` for operands that are the units of one node each (their indices), else
        ``(a, b, both, wa, wb, la, node pairs)``: the operands broadcast and flat, the elements live in both, there
        each one's nodes and (equal) units, and the distinct pairs of nodes. Found once per op: its checks
        (``_layout_more``) and the add or product itself ask for the same operands."""
        memo = self._paired
        if memo is not None and memo[0] is operands[0] and memo[1] is operands[1]:
            return memo[2]
        found = self._pairing(operands)
        self._paired = operands[0], operands[1], found
        return found

    def _pairing(self, operands):
        shape = np.broadcast_shapes(*(tuple(o.shape) for o in operands))
        ka, kb = self._rows_pair(operands, shape)
        if ka is not None and kb is not None:  # (both in rows, as remembered: paired row by row, nothing decoded)
            found = self._paired_rows(ka, kb)
            if self.check_known_rows:
                full = found.elements(self, operands, shape) if isinstance(found, _RowPairs) else found
                assert _same_answer(full, self._pairing_read(operands, shape)), "remembered pairing differs"
            return found
        return self._pairing_read(operands, shape)

    def _paired_rows(self, ka: tuple, kb: tuple):
        """:meth:`_pairing` of two operands whose rows :meth:`_row_positions` knows (``ka``, ``kb``): every element live,
        row r of each one position of one node, its channels in order; paired where the rows' positions agree and
        the paired nodes have one shape: ``(na, nb)`` for one pair of nodes, else a :class:`_RowPairs`."""
        wa, wb = ka[1][:, 0], kb[1][:, 0]
        if not np.array_equal(ka[2], kb[2]):
            return None
        radix = len(self._names) + 1
        node_pairs = [(int(k // radix), int(k % radix)) for k in unique(wa * radix + wb)]
        if any(self.nodes[self._names[x]].shape != self.nodes[self._names[y]].shape for x, y in node_pairs):
            return None
        return node_pairs[0] if len(node_pairs) == 1 else _RowPairs(wa, wb, ka[2][:, 0], node_pairs)

    def _rows_ids(self, rows_node: np.ndarray, pos: np.ndarray, shape: tuple, remember: bool = True) -> torch.Tensor:
        """Ids of ``shape`` (rows × channels, any leading axes) whose row r holds position ``pos[r]`` of node
        ``rows_node[r]``, its channels in order, remembered so (:meth:`_made_in_rows`) unless ``remember`` is False."""
        first = torch.as_tensor((self._base_array()[rows_node] + 1 + pos).astype(np.float64))[:, None]
        step, channels = self._sizes()[rows_node], torch.arange(shape[-1], dtype=torch.float64)
        steps, counts = unique(step, return_counts=True)
        main = int(steps[counts.argmax()])  # (the rows of the other nodes' sizes, a class token's, written again)
        ids = first + channels * main  # (one pass over the output: a per-row product would take three)
        other = np.flatnonzero(step != main)
        if other.size:
            ids[other] = first[other] + channels * torch.as_tensor(step[other].astype(np.float64))[:, None]
        ids = ids.reshape(shape)
        return self._made_in_rows(ids, rows_node, pos) if remember else ids

    def _base_array(self) -> np.ndarray:
        """Every node's first unit number, by node index (``_bases`` as an array, kept as nodes are added)."""
        return self._per_node("_bases_known", lambda n: self._bases[n], np.int64)

    def _pairing_read(self, operands, shape):
        """:meth:`_pairing`, reading the operands' units."""
        if math.prod(shape) > 4096:  # a sample first: large operands that do not pair (attention logits) fail it at once
            sa, sb = _sample([o.numpy() for o in operands], shape, 1024)
            live = (sa > 0) & (sb > 0)
            if not np.array_equal(*(self._decode(torch.as_tensor(v[live]))[1] for v in (sa, sb))):
                return None
        na, nb = (self._single(o) for o in operands)
        if na is not None and nb is not None:  # units of one node each: paired when a − b is their bases' difference
            paired = self.nodes[self._names[na]].shape == self.nodes[self._names[nb]].shape and \
                bool((np.subtract(*(o.numpy() for o in operands)) == self._bases[na] - self._bases[nb]).all())
            return (na, nb) if paired else None
        a, b = (np.ascontiguousarray(t).reshape(-1) for t in np.broadcast_arrays(*(o.numpy() for o in operands)))
        both = np.flatnonzero((a > 0) & (b > 0))
        if not both.size:
            return a, b, both, None, None, None, ()
        va, vb = (a, b) if both.size == a.size else (a[both], b[both])
        wa, la, _ = self._decode(torch.as_tensor(va))
        wb, lb, _ = self._decode(torch.as_tensor(vb))
        if not np.array_equal(la, lb):  # the cheap test first (and no Python set of millions of pairs)
            return None
        radix = len(self._names) + 1
        node_pairs = [(int(k // radix), int(k % radix)) for k in unique(wa * radix + wb)]
        if any(self.nodes[self._names[x]].shape != self.nodes[self._names[y]].shape for x, y in node_pairs):
            return None
        return a, b, both, wa, wb, la, node_pairs

    def _broadcast_binary(self, fx, name, kind, operands, op=None) -> bool:
        """``a ± b`` / ``a · b`` of operands laid out as (1, C, *S) whose units do not pair one to one (a channel
        slice of one map plus another map, a (C, 1, 1) map or a vector broadcast over positions): each operand
        becomes a Graph node and the result an add/mul node with the usual broadcasting."""
        shape = tuple(torch.broadcast_shapes(*(o.shape for o in operands)))
        if len(shape) < 2 or shape[0] != 1:
            raise EdgewiseError(f"layer {name!r} combines units of two operands that edgewise cannot pair element "
                                f"by element, in a tensor of shape {shape} whose axes are not (batch, channel, "
                                "*positions)")
        operands = [o.reshape((1,) * (len(shape) - o.ndim) + tuple(o.shape)) for o in operands]
        grid = self._token_grid(operands, shape)
        if grid is not None:  # tokens (1, N, C) of a grid: the operands channels first on that grid
            try:
                srcs = tuple(self.canonical(o.permute(0, 2, 1).reshape(
                    1, o.shape[2], *(grid if o.shape[1] == shape[1] else (1,) * len(grid))), name) for o in operands)
            except EdgewiseError:
                srcs = None
            if srcs is not None:
                new = self._add(name, kind, srcs, (shape[2], *grid), op=_op_name(fx.target))
                self._set(fx, self.ids_of(new).reshape(1, shape[2], shape[1]).permute(0, 2, 1).contiguous())
                return True
        last = len(shape) - 1
        perms = [tuple(range(len(shape)))] + ([(0, last, *range(1, last))] if last > 1 else [])
        error = None
        for perm in perms:  # channels first, or channels last (a token / NHWC layout)
            try:
                srcs = tuple(self.canonical(o.permute(*perm), name) for o in operands)
            except EdgewiseError as e:
                error = error or e
                continue
            out_shape = tuple(shape[d] for d in perm)[1:]
            new = self._add(name, kind, srcs, out_shape, op=op or _op_name(fx.target))
            back = [perm.index(d) for d in range(len(shape))]
            self._set(fx, self.ids_of(new).permute(*back).contiguous())
            return True
        raise error

    def _token_grid(self, operands, shape):
        """The grid of operands laid out as tokens (1, N, C) (or broadcast: (1, N, 1) over channels, (1, 1, C)
        over positions) whose tokens' units all sit on maps of one multi-axis grid of N positions (a channel slice
        of tokens times other tokens, as in gMLP's gate; SwiftFormer's per-token weights and its global query);
        else None."""
        if len(shape) != 3 or any(o.shape[1] not in (1, shape[1]) or o.shape[2] not in (1, shape[2])
                                  for o in operands):
            return None
        full = [o for o in operands if o.shape[1] == shape[1]]
        if not full:
            return None
        live = torch.cat([o.reshape(-1) for o in full])
        live = live[live > 0]
        if not live.numel():
            return None
        which, _, _ = self._decode(live)
        grids = {self._spatial(int(w)) for w in unique(which)}
        grid = grids.pop() if len(grids) == 1 else ()
        return grid if len(grid) > 1 and math.prod(grid) == shape[1] else None

    # ------------------------------------------------------------------ Linear over the last axis
    def project(self, ids: torch.Tensor, out_features: int, name: str, op: str) -> torch.Tensor:
        """A Linear over the last axis: per position, a 1×1 convolution of the channels it reads (a
        convolution over the positions it reads when a row gathers several, as after patch merging)."""
        lead, f_in = tuple(ids.shape[:-1]), ids.shape[-1]
        rows = ids.reshape(-1, f_in)
        quick = self._row_positions(rows)
        if quick is not None:  # (the common case: every row one position of a node, its channels in order)
            live, which, pos, chan, signatures = quick
            every, const = bool(live.all()), np.zeros(which.shape, dtype=bool)
        else:
            which, local, const = self._decode(rows)
            signatures, live = None, ~const.all(1)
            if not live.any():
                return torch.zeros((*lead, out_features), dtype=torch.float64)
            every = bool(live.all())
            if not every:
                which, local, const = which[live], local[live], const[live]
            p = self._sizes()[np.maximum(which, 0)]
            pos, chan = local % p, local // p
        if lead == (1,) and not const.any() and (which == which[:, :1]).all() and not (pos == pos[:, :1]).all():
            return self.project(self._flat(which[0, 0], local[0], name), out_features, name, op)
        if const.any() or not ((which == which[:, :1]).all() and (pos == pos[:, :1]).all()):
            made = self._project_across(which, pos, chan, const, lead, out_features, name, op)
            if made is None:
                made = self._gather_positions(which, pos, chan, const, np.flatnonzero(live), lead, out_features,
                                              name, op)
        else:
            sigs, inverse = signatures or _signatures(which[:, 0], chan)
            made_nodes = np.empty(len(sigs), dtype=np.int64)
            for k, sig in enumerate(sigs):
                src = self._select(int(sig[0]), sig[1:], name)
                new = self._pointwise(name if k == 0 else f"{name}:{k}", src, self._spatial(int(sig[0])), out_features,
                                      op)
                made_nodes[k] = self._index(new)
            rows_node = made_nodes[np.asarray(inverse).reshape(-1)]  # (row r: position pos[r] of its map's node)
            if every:  # (all rows at once, remembered in rows)
                return self._rows_ids(rows_node, pos[:, 0], (*lead, out_features))
            made = self._rows_ids(rows_node, pos[:, 0], (len(rows_node), out_features), remember=False)  # (copied)
        if every:
            return torch.as_tensor(made).reshape(*lead, out_features)
        out = np.zeros((rows.shape[0], out_features), dtype=np.float64)
        out[live] = np.asarray(made)
        return torch.as_tensor(out).reshape(*lead, out_features)

    def _sizes(self) -> np.ndarray:
        """Positions per node (at least 1), by node index."""
        return self._per_node("_sizes_known", lambda n: max(math.prod(self._spatial(n)), 1), np.int64)

    def _gridded(self) -> np.ndarray:
        """Whether each node has positions (spatial axes), by node index."""
        return self._per_node("_gridded_known", lambda n: bool(self._spatial(n)), bool)

    def _per_node(self, key: str, value, dtype) -> np.ndarray:
        """``value(node index)`` of every node, kept in ``key`` as nodes are added (their shapes do not change)."""
        known = self.__dict__.get(key)
        if known is None or len(known) < len(self._names):
            start = 0 if known is None else len(known)
            new = np.fromiter((value(n) for n in range(start, len(self._names))), dtype=dtype)
            known = self.__dict__[key] = new if known is None else np.concatenate([known, new])
        return known

    def _row_positions(self, rows: torch.Tensor):
        """``(live, which, pos, chan, signatures)`` as :meth:`project` decodes them, where every row of ``rows``
        (tokens × features) is one position of one node, its channels in order, or all constant (ViT's class token
        beside the patches, a node read channels-last): found from each row's first unit and one comparison; else
        None."""
        n_rows, f_in = rows.shape
        if not n_rows or not f_in or rows.dtype != torch.float64:
            return None
        known = self._known_rows(rows)
        if known is not None:
            return known
        first = rows[:, 0].numpy().astype(np.int64) - 1
        live = first >= 0
        every = bool(live.all())
        if not live.any() or not every and bool(rows[torch.as_tensor(~live)].any()):
            return None
        g = first if every else first[live]
        bases = self._base_array()
        which = np.searchsorted(bases, g, side="right") - 1
        local, sizes = g - bases[which], self._sizes()[which]
        layers, inverse = unique(which, return_inverse=True)
        chans = np.array([self.nodes[self._names[w]].shape[0] if self.nodes[self._names[w]].shape else 1
                          for w in layers])
        if (local >= sizes).any() or (chans != f_in).any():
            return None  # (a row that does not start at channel 0, or reads part of a node's channels)
        step = torch.as_tensor(sizes[:1] if (sizes == sizes[0]).all() else sizes[:, None], dtype=torch.float64)
        expect = torch.as_tensor(g + 1, dtype=torch.float64)[:, None] + torch.arange(f_in, dtype=torch.float64) * step
        if not torch.equal(rows if every else rows[torch.as_tensor(live)], expect):
            return None
        signatures = [np.concatenate([[w], np.arange(f_in)]) for w in layers], inverse.reshape(-1)  # (_signatures')
        found = live, which[:, None], local[:, None], np.broadcast_to(np.arange(f_in), (len(g), f_in)), signatures
        if every and rows.is_contiguous():  # (read again by a later op, or paired by an add: answered at once)
            self._remember_rows(rows, rows if rows._base is None else rows._base, found)
        return found

    def _made_in_rows(self, ids: torch.Tensor, which: np.ndarray, local: np.ndarray) -> torch.Tensor:
        """Remember that ``ids`` (…, F), just made, holds in row r (of ``ids.reshape(-1, F)``) position ``local[r]``
        of node ``which[r]``, its channels in order: :meth:`_row_positions` then answers without reading it."""
        if ids.dtype == torch.float64 and ids.is_contiguous() and ids.numel():
            f = ids.shape[-1]
            layers, inverse = unique(which, return_inverse=True)
            signatures = [np.concatenate([[w], np.arange(f)]) for w in layers], inverse.reshape(-1)
            self._remember_rows(ids.reshape(-1, f), ids, (np.ones(len(which), dtype=bool), which[:, None],
                                                           local[:, None], np.broadcast_to(np.arange(f), (len(which), f)),
                                                           signatures))
        return ids

    def _remember_rows(self, rows: torch.Tensor, keep: torch.Tensor, found: tuple) -> None:
        """Keep ``found``, what :meth:`_row_positions` answers for ``rows`` (contiguous), while ``keep`` (a tensor whose
        life keeps the memory of ``rows``) lives and nothing writes to it."""
        self._rows[rows.data_ptr()] = (weakref.ref(keep), keep._version, rows.numel(), rows.shape[-1], found)

    def _rows_pair(self, operands: list, shape: tuple):
        """What :meth:`_row_positions` answers for each of two operands of shape ``shape`` (None where unknown)."""
        return [self._known_tensor(o) if tuple(o.shape) == tuple(shape) else None
                for o in operands]

    def _known_tensor(self, t: torch.Tensor):
        """:meth:`_known_rows` of ``t``'s rows (its last axis the channels); None at once where ``t`` is not contiguous
        (its rows would be a copy, never remembered)."""
        return self._known_rows(t.view(-1, t.shape[-1])) if t.ndim and t.shape[-1] and t.is_contiguous() else None

    def _known_rows(self, rows: torch.Tensor):
        """:meth:`_row_positions` of ``rows`` when it is (a view of) a tensor :meth:`_made_in_rows` remembered and
        nothing has written to it since; else None. (While that tensor lives, no other can start at its address.)"""
        hit = self._rows.get(rows.data_ptr())
        if hit is None:
            return None
        ref, version, numel, f, quick = hit
        t = ref()
        if t is None or t._version != version or rows.numel() != numel or rows.shape[-1] != f or \
                not rows.is_contiguous():
            return None
        if self.check_known_rows:  # (tests: the remembered answer is the one reading the tensor gives)
            self._rows.pop(rows.data_ptr())
            read = self._row_positions(rows)
            self._rows[rows.data_ptr()] = hit
            assert read is not None and _same_rows(read, quick), "remembered rows differ from the tensor's"
        return quick

    def _rerun(self, fx, a, tensor):
        """``fx``'s op run again with ``tensor`` in place of its operand ``a`` (the other arguments' values)."""
        args = torch.fx.node.map_arg(fx.args, lambda x: tensor if x is a else self._value(x))
        kwargs = torch.fx.node.map_arg(fx.kwargs, lambda x: tensor if x is a else self._value(x))
        if fx.op == "call_method":
            return getattr(args[0], fx.target)(*args[1:], **kwargs)
        return fx.target(*args, **kwargs)

    def _pointwise(self, label: str, src: str, spatial, out_features: int, op: str) -> str:
        """A Linear over the channels of each position: a 1×1 convolution of ``src`` (a Linear of a vector)."""
        if spatial:
            return self._add(label, "conv", (src,), (out_features, *spatial),
                             axes=tuple(Window(1, 1) for _ in spatial), op=op)
        return self._add(label, "linear", (src,), (out_features,), op=op)

    def _flat(self, which: int, local: np.ndarray, name: str) -> torch.Tensor:
        """Units of node ``which`` in a vector (a flatten in any order): the node flattened, then picked."""
        src = self._names[int(which)]
        flat = self._add(f"{name}:flatten", "reshape", (src,), (math.prod(self.nodes[src].shape),), op="flatten")
        picked = self._select(self._index(flat), local, name)
        return self.ids_of(picked)

    def _select(self, which: int, chans, name: str) -> str:
        """Node ``which`` itself, or a selection of its channels ``chans`` (in that order)."""
        src = self._names[which]
        if len(chans) == self.nodes[src].shape[0] and np.array_equal(chans, np.arange(len(chans))):
            return src
        chans = tuple(int(c) for c in chans)
        return self._add(f"{name}:select", "select", (src,), (len(chans), *self._spatial(which)), pick=chans,
                         op="channel selection")

    def _project_across(self, which, pos, chan, const, lead, out_features, name, op):
        """Linear rows that are neither one position of one layer nor a window of positions: channels of several
        layers at one position (a concatenation along channels read token by token), one channel at several
        positions (a Linear across tokens: MLP-Mixer, gMLP), or patches of a flat token sequence (a patch
        embedding by Linear). ``made`` (rows, out_features) as in :meth:`project`, or None (not one of these)."""
        if const.any():
            return None
        if (pos == pos[:, :1]).all():
            return self._project_joined(which, pos, chan, out_features, name, op)
        if (which == which[:, :1]).all() and (chan == chan[:, :1]).all():
            return self._mix_positions(which, pos, chan, out_features, name, op)
        if len(lead) == 2 and lead[0] == 1 and (which == which[:, :1]).all():
            grid = self._patch_grid(int(which[0, 0]), pos)
            if grid is not None:
                return self._gather_positions(which, pos, chan, const, np.arange(which.shape[0]), (1, *grid),
                                              out_features, name, op)
        return None

    def _project_joined(self, which, pos, chan, out_features, name, op):
        """Every row reads one position of maps on the same grid, channels of several of them: per distinct
        (layer, channel) row, the maps' channels concatenated, then a 1×1 convolution (a Linear on vectors)."""
        spatial = {self._spatial(int(w)) for w in unique(which)}
        if len(spatial) != 1:
            return None
        spatial = spatial.pop()
        npos = max(math.prod(spatial), 1)
        made = np.zeros((which.shape[0], out_features), dtype=np.float64)
        sigs, inverse = unique_rows(np.concatenate([which, chan], 1), return_inverse=True)
        inverse = inverse.reshape(-1)
        f_in = which.shape[1]
        for k, sig in enumerate(sigs):
            ids = torch.stack([self._unit_ids(int(w), int(c) * npos + np.arange(npos))
                               for w, c in zip(sig[:f_in], sig[f_in:])]).reshape(1, f_in, *spatial)
            src = self.canonical(ids, name)
            new = self._pointwise(name if k == 0 else f"{name}:{k}", src, spatial, out_features, op)
            sel = inverse == k
            made[sel] = np.arange(out_features)[None, :] * npos + pos[sel, :1] + (self._bases[self._index(new)] + 1)
        return made

    def _mix_positions(self, which, pos, chan, out_features, name, op):
        """A Linear across positions (token mixing): every row reads one channel of one map at several distinct
        positions. Its weights connect each output feature of a row to every position the row reads, once per
        weight, in each channel alike: a per-channel ``pool`` node. Output feature f sits at the position of
        the row's f-th input when there are as many features as inputs (gMLP's spatial gate, MLP-Mixer's
        second token Linear); otherwise (a hidden layer over tokens, one row per channel) on a grid of its
        own, (1, …, F), whose token axis returns to the grid it came from when a later Linear has as many
        features as that grid has positions."""
        src_index = int(which[0, 0])
        if not (which == src_index).all():
            return None
        in_spatial = self._spatial(src_index)
        n_rows, n_read = pos.shape
        srt = np.sort(pos, axis=1)
        if not in_spatial or (srt[:, 1:] == srt[:, :-1]).any():
            return None
        homes = self.__dict__.setdefault("_token_home", {})
        src_name = self._names[src_index]
        chans, chan_of = unique(chan[:, 0], return_inverse=True)
        chan_of = chan_of.reshape(-1)
        one_row_each = chans.size == n_rows
        home = None
        if out_features == n_read:
            out_spatial, out_pos = in_spatial, pos
        elif one_row_each and src_name in homes and out_features == math.prod(homes[src_name]):
            out_spatial = homes[src_name]
            out_pos = np.broadcast_to(np.arange(out_features), (n_rows, out_features))
        elif one_row_each:
            out_spatial = (1,) * (len(in_spatial) - 1) + (out_features,)
            out_pos = np.broadcast_to(np.arange(out_features), (n_rows, out_features))
            home = homes.get(src_name, in_spatial)
        else:
            return None
        n_in = math.prod(in_spatial)
        if bool((pos == pos[:1]).all()) and bool((out_pos == out_pos[:1]).all()):
            if not one_row_each:
                return None
            relation = np.add.outer(out_pos[0].astype(np.int64) * n_in, pos[0]).reshape(-1)
        else:  # per channel: its outputs distinct, and the same (output, input) pairs as every other channel
            relation = None
            for c in range(chans.size):
                mine = np.flatnonzero(chan_of == c)
                outs = out_pos[mine].reshape(-1)
                if unique(outs).size != outs.size:
                    return None
                pairs = np.sort(np.concatenate([np.add.outer(out_pos[r].astype(np.int64) * n_in, pos[r]).reshape(-1)
                                                for r in mine]), kind="stable")  # (sorted runs: see _sets.unique)
                if relation is None:
                    relation = pairs
                elif not np.array_equal(pairs, relation):
                    return None
        src = self._select(src_index, chans, name)
        new = self._add(name, "pool", (src,), (chans.size, *out_spatial),
                        axes=relation_axes(relation // n_in, relation % n_in, out_spatial, in_spatial),
                        op=f"{op} across positions")
        if home is not None:
            homes[new] = home
        base = self._bases[self._index(new)] + 1
        return (chan_of[:, None] * math.prod(out_spatial) + out_pos + base).astype(np.float64)

    def _patch_grid(self, src_index: int, pos):
        """The grid of a flat token sequence whose rows read patches of one map (a patch embedding by Linear,
        NaFlexViT): the rows' first positions, when they are a row-major product grid; else None."""
        spatial = self._spatial(src_index)
        if len(spatial) < 2:
            return None
        anchor = np.stack(np.unravel_index(pos.min(axis=1), spatial), 1)
        axes = [unique(anchor[:, a]) for a in range(len(spatial))]
        grid = tuple(a.size for a in axes)
        if math.prod(grid) != pos.shape[0]:
            return None
        expect = np.stack([g.reshape(-1) for g in np.meshgrid(*axes, indexing="ij")], 1)
        return grid if np.array_equal(anchor, expect) else None

    def _gather_positions(self, which, pos, chan, const, rows, lead, out_features, name, op) -> torch.Tensor:
        """A Linear whose rows read the same channels at several positions of one map (2×2 patch merging):
        a convolution from that map onto the grid of the rows (``lead`` without the batch axis)."""
        nodes = unique(which[~const])
        chans = unique(chan[~const])
        keys = np.where(const, -1, pos * len(chans) + np.searchsorted(chans, chan))
        srt = np.sort(keys, axis=1)
        dup = ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any()
        places = np.where(srt >= 0, srt // len(chans), -1)  # (each row's positions, ascending, constants first)
        n_pos = (places[:, :1] >= 0).sum(1) + ((places[:, 1:] != places[:, :-1]) & (places[:, 1:] >= 0)).sum(1)
        if nodes.size == 1 and not dup and np.array_equal((~const).sum(1), n_pos * len(chans)) and \
                lead[:1] == (1,) and self._spatial(int(nodes[0])) and len(lead) - 1 != len(self._spatial(int(nodes[0]))):
            return self._gather_groups(int(nodes[0]), pos, chans, const, rows, lead, out_features, name, op)
        spatial_out = tuple(lead[1:])
        if nodes.size != 1 or dup or not np.array_equal((~const).sum(1), n_pos * len(chans)) or \
                lead[:1] != (1,) or len(spatial_out) != len(self._spatial(int(nodes[0]))):
            raise EdgewiseError(
                f"layer {name!r} ({op}) mixes units of several positions in a way edgewise cannot map (a Linear "
                "across tokens or positions); edgewise maps a Linear over the channels of each position, or over the "
                "same channels of a window of positions (patch merging)")
        src_index = int(nodes[0])
        spatial_in = self._spatial(src_index)
        first = places >= 0  # (each (row, position) pair once, not once per channel)
        first[:, 1:] &= places[:, 1:] != places[:, :-1]
        r, k = np.nonzero(first)
        axes = relation_axes(rows[r], places[r, k], spatial_out, spatial_in, distinct=True)
        src = self._select(src_index, chans, name)
        new = self._add(name, "conv", (src,), (out_features, *spatial_out), axes=axes, op=op)
        npos = math.prod(spatial_out)
        return (np.arange(out_features)[None, :] * npos + rows[:, None]) + (self._bases[self._index(new)] + 1.0)

    # ------------------------------------------------------------------ reductions
    def _reduce(self, fx, name) -> bool:
        ids = self._ids(fx.args[0])
        dims = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
        dims = list(range(ids.ndim)) if dims is None else dims if isinstance(dims, (tuple, list)) else [dims]
        dims = sorted(int(d) % ids.ndim for d in dims)
        keep = [d for d in range(ids.ndim) if d not in dims]
        rows = ids.permute(*keep, *dims).reshape(-1, math.prod(ids.shape[d] for d in dims))
        if self._partial(rows):  # a pool over groups of positions written as a view + reduction (Hiera)
            self._set(fx, self.pool_groups(rows, name, f"{_REDUCE[fx.target]} over groups of positions")
                      .reshape(self._meta_shape(fx)))
            return True
        which, local, const = self._decode(rows)
        if const.any() or not (which == which[:, :1]).all():
            if self._reduce_layers(fx, name, which, local, const):
                return True
            raise EdgewiseError(f"layer {name!r} reduces over constants or over several layers' units")
        sizes = max(math.prod(self._spatial(int(which[0, 0]))), 1)
        chan = local // sizes
        src = self._names[int(which[0, 0])]
        full = np.sort(local % sizes, axis=1)
        if len(unique(which)) != 1 or not (chan == chan[:, :1]).all() or full.shape[1] != sizes or \
                not (full == np.arange(sizes)).all():
            raise EdgewiseError(f"layer {name!r} reduces over part of the positions or across channels; edgewise "
                                "maps reductions over all positions of each channel (a global pool) only")
        nd = self.nodes[src]
        pooled = self._add(f"{name}:pool", "pool", (src,), (nd.shape[0],) + (1,) * len(nd.spatial),
                           axes=tuple(Adaptive() for _ in nd.spatial), op=f"global {_REDUCE[fx.target]}")
        if keep == [0, 1] and self._meta_shape(fx)[1:] == (chan.shape[0],) + (1,) * len(nd.spatial):
            picked = self._select(self._index(pooled), chan[:, 0], name)  # keepdim: the pooled map itself
            self._set(fx, self.ids_of(picked))
            return True
        vec = self._add(name, "reshape", (pooled,), (nd.shape[0],), op="flatten")
        out = self._unit_ids(self._index(vec), chan[:, 0]).reshape(self._meta_shape(fx)) \
            if self._meta_shape(fx) else self._unit_ids(self._index(vec), chan[:, 0])
        self._set(fx, out.reshape(self._meta_shape(fx)))
        return True

    def _gather_groups(self, src_index, pos, chans, const, rows, lead, out_features, name, op) -> torch.Tensor:
        """A Linear over tokens that each hold the same channels at a group of positions of one map, laid out
        without that map's grid (a patch embedding written as view + permute + Linear): a convolution onto
        a new grid, one position per group, placed as :meth:`pool_groups` places them."""
        spatial = self._spatial(src_index)
        sigs = [unique(r[~c]) for r, c in zip(pos, const)]
        out_spatial, out_pos = self._place_groups(sigs, spatial, name, op)
        if unique(out_pos).size != len(sigs) or len(sigs) != math.prod(out_spatial):
            raise EdgewiseError(f"layer {name!r} ({op}) reads groups of positions that do not tile a grid once each; "
                                "edgewise cannot place its outputs")
        o = np.repeat(out_pos, [len(g) for g in sigs])
        axes = relation_axes(o, np.concatenate(sigs), out_spatial, spatial)
        src = self._select(src_index, chans, name)
        new = self._add(name, "conv", (src,), (out_features, *out_spatial), axes=axes, op=op)
        n_out = math.prod(out_spatial)
        return np.arange(out_features)[None, :] * n_out + out_pos[:, None] + (self._bases[self._index(new)] + 1.0)

    def _place_groups(self, sigs, spatial, name: str, what: str):
        """(grid shape, flat position on it) for groups of positions (flat indices on ``spatial``): per axis,
        the groups' distinct first coordinates, in order, are the new grid's coordinates."""
        corner = np.asarray([[int(c.min()) for c in np.unravel_index(np.asarray(sig), spatial)] for sig in sigs])
        ticks = [unique(corner[:, a]) for a in range(len(spatial))]
        out_spatial = tuple(len(t) for t in ticks)
        out_pos = np.ravel_multi_index(tuple(np.searchsorted(t, corner[:, a]) for a, t in enumerate(ticks)),
                                       out_spatial)
        return out_spatial, out_pos

    # ------------------------------------------------------------------ pools of groups of positions
    def _partial(self, rows: torch.Tensor) -> bool:
        """Whether a reduction's rows (R, k) read live units of a map, but not as many as it has positions
        (a pool over windows, not a global pool; more than that is refused by :meth:`pool_groups`)."""
        which, local, const = self._decode(rows[:1])
        if const.all() or not bool(self._spatial(int(which[~const][0]))):
            return False
        return rows.shape[1] != math.prod(self._spatial(int(which[~const][0])))

    def pool_groups(self, rows: torch.Tensor, name: str, what: str) -> torch.Tensor:
        """A reduction (max, mean, sum) of each row of ``rows`` (R, k ids): rows reading one channel of one map
        at a group of positions (constants, i.e. padding, read nothing) are a ``pool`` node onto a new grid,
        one output position per group, placed by the group's first row/column along each axis; returns
        the ids (R,) of the results. The same groups must be pooled in every channel read."""
        which, local, const = self._decode(rows)
        live = ~const
        rowlive = live.any(1)
        out = np.zeros(rows.shape[0], dtype=np.float64)
        if not rowlive.any():
            return torch.as_tensor(out)
        nodes = unique(which[live])
        spatial = self._spatial(int(nodes[0])) if nodes.size == 1 else ()
        if nodes.size != 1 or not spatial:
            raise EdgewiseError(f"layer {name!r} ({what}) pools units of several layers or of a vector; edgewise "
                                "maps pools over positions of one feature map")
        npos = math.prod(spatial)
        pos, chan = local % npos, local // npos
        ch = np.where(live, chan, -1).max(1)
        srt = np.sort(np.where(live, pos, -1), axis=1)
        if ((chan != ch[:, None]) & live).any() or ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
            raise EdgewiseError(f"layer {name!r} ({what}) pools across channels or reads a unit twice; edgewise "
                                "maps pools over distinct positions of each channel")
        sigs, inv = unique_rows(srt[rowlive], return_inverse=True)
        inv = inv.reshape(-1)
        chans = unique(ch[rowlive])
        if unique(np.searchsorted(chans, ch[rowlive]) * len(sigs) + inv).size != len(chans) * len(sigs):
            raise EdgewiseError(f"layer {name!r} ({what}) pools different groups of positions in different "
                                "channels; edgewise cannot map it to one pooling layer")
        out_spatial, out_pos = self._place_groups([sig[sig >= 0] for sig in sigs], spatial, name, what)
        if len(sigs) != math.prod(out_spatial) or unique(out_pos).size != len(sigs):
            raise EdgewiseError(f"layer {name!r} ({what}) pools groups of positions that do not tile a grid; "
                                "edgewise cannot place its outputs")
        o = np.repeat(out_pos, (sigs >= 0).sum(1))
        i = sigs[sigs >= 0]
        axes = relation_axes(o, i, out_spatial, spatial)
        src = self._names[int(nodes[0])]
        node = self._add(f"{name}:pool", "pool", (src,), (self.nodes[src].shape[0], *out_spatial), axes=axes,
                         op=what)
        base = self._bases[self._index(node)] + 1
        out[rowlive] = base + ch[rowlive] * math.prod(out_spatial) + out_pos[inv]
        return torch.as_tensor(out)

    def _pool_module(self, fx, m: nn.Module, name: str) -> bool:
        """A max/average pool module on a tensor whose batch axis holds units (windows of a map): each output
        element pools the live units of its window (zero padding reads nothing)."""
        ids = self._ids(fx.args[0])
        n = ids.ndim - 2
        if n not in (1, 2):
            raise EdgewiseError(f"layer {name!r}: {type(m).__name__} on a {ids.ndim}-D tensor whose batch axis holds "
                                "units; edgewise follows 1-D and 2-D pools of windows only")
        k = _pair_n(m.kernel_size, n)
        s = _pair_n(m.stride if m.stride not in (None, ()) else m.kernel_size, n)
        p = _pair_n(m.padding, n)
        d = _pair_n(getattr(m, "dilation", 1), n)
        x = ids if n == 2 else ids[:, :, None]
        k, s, p, d = ((1,) * (2 - n) + k, (1,) * (2 - n) + s, (0,) * (2 - n) + p, (1,) * (2 - n) + d)
        cols = F.unfold(x, k, d, p, s)  # (N, C·kk, L): exact copies of the ids, 0 in the padding
        out_shape = self._meta_shape(fx)
        N, C = ids.shape[:2]
        if getattr(m, "return_indices", False) or cols.shape[-1] != math.prod(out_shape[2:]):
            raise EdgewiseError(f"layer {name!r}: {type(m).__name__} on a tensor whose batch axis holds units, with "
                                "settings (ceil_mode, return_indices) edgewise cannot follow")
        rows = cols.reshape(N, C, math.prod(k), -1).transpose(2, 3).reshape(-1, math.prod(k))
        self._set(fx, self.pool_groups(rows, name, type(m).__name__).reshape(out_shape))
        return True

    def _reduce_layers(self, fx, name, which, local, const) -> bool:
        """A mean/sum/max over an axis that stacks several layers' maps unit by unit (CrossViT averages its
        branches' heads: ``torch.stack(heads).mean(0)``): the sum of those layers, an ``add`` node, as for
        ``a + b`` (a max, like a max-pool, keeps the paths of every operand)."""
        if const.any() or not (which == which[:1]).all() or not (local == local[:, :1]).all():
            return False
        layers = [self._names[int(w)] for w in which[0]]
        shape = self.nodes[layers[0]].shape
        if any(self.nodes[n].shape != shape for n in layers):
            return False
        node = layers[0]
        for k, extra in enumerate(layers[1:]):
            node = self._add(name if k == 0 else f"{name}:{k}", "add", (node, extra), shape, op=_op_name(fx.target))
        out = self._unit_ids(self._index(node), local[:, 0])
        self._set(fx, out.reshape(self._meta_shape(fx)))
        return True

    # ------------------------------------------------------------------ attention

    def _max_over(self, fx, name) -> bool:
        """``x.max(dim)`` (values and indices) over every position of each channel: a global max pool, like
        ``amax``; the indices carry no units."""
        ids = self._ids(fx.args[0])
        dim, keep = _max_dim(fx)
        dim %= ids.ndim
        moved = ids.movedim(dim, -1)
        rows = moved.reshape(-1, moved.shape[-1])
        which, local, const = self._decode(rows)
        if const.any() or len(unique(which)) != 1:
            raise EdgewiseError(f"layer {name!r}: max over constants or over several layers' units")
        src = self._names[int(which[0, 0])]
        nd = self.nodes[src]
        sizes = max(math.prod(nd.spatial), 1)
        chan = local // sizes
        full = np.sort(local % sizes, axis=1)
        if not nd.spatial or not (chan == chan[:, :1]).all() or not (full == np.arange(sizes)).all():
            raise EdgewiseError(f"layer {name!r}: max over part of the positions or across channels; edgewise maps "
                                "a max over all positions of each channel (a global max pool) only")
        pooled = self._add(f"{name}:pool", "pool", (src,), (nd.shape[0],) + (1,) * len(nd.spatial),
                           axes=tuple(Adaptive() for _ in nd.spatial), op="global max")
        vec = self._add(name, "reshape", (pooled,), (nd.shape[0],), op="flatten")
        values = self._unit_ids(self._index(vec), chan[:, 0]).reshape(moved.shape[:-1])
        if keep:
            values = values.unsqueeze(dim)
        self.units[fx] = (values, torch.zeros_like(values))
        return True

    # ------------------------------------------------------------------ attention
    def _on_scores(self, fx, a) -> bool:
        if isinstance(self.units[a], _Generated):
            return self._on_generated(fx, a)
        return self._on_scores_of(fx, a)

    def _on_scores_of(self, fx, a) -> bool:
        s: Scores = self.units[a]
        t = fx.target
        if isinstance(s, Weights) or t in _SOFTMAX_ONLY:
            return self._on_weights(fx, a)
        if t in _SOFTMAX or t in ("float", "to", "type_as", "contiguous") or t in (operator.mul, operator.truediv,
                                                                                    torch.mul, torch.div, "mul", "div"):
            self.units[fx] = s
            return True
        if t in (operator.add, torch.add, "add"):
            other = [x for x in fx.args if x is not a][0]
            value = self.const_value(other)
            self.units[fx] = s if value is None else s.masked(~(torch.as_tensor(value).double() <= _MASK_BELOW))
            return True
        if t == "masked_fill":
            mask = self.const_value(fx.args[1])
            self.units[fx] = s if mask is None else s.masked(~torch.as_tensor(mask).bool())
            return True
        if t in MOVE_METHODS or t in MOVE_FUNCTIONS and t is not operator.getitem and t not in (
                torch.cat, torch.concat, torch.stack, F.pad):  # rearranged scores: follow the query of every score
            def run(tensor):
                return self._rerun(fx, a, tensor)
            qi, allowed = run(s.qi), run(s.allowed.double())
            if isinstance(qi, torch.Tensor):
                self.units[fx] = Scores(None, allowed > 0.5, qi, s.qrows)
            else:
                self.units[fx] = tuple(Scores(None, al > 0.5, q, s.qrows) for q, al in zip(qi, allowed))
            return True
        if fx.op == "call_function" and _autowrapped(t) and self._adds_to_scores(fx, a):
            self.units[fx] = s  # a term computed from the queries added to the logits: the keys attended unchanged
            return True
        raise EdgewiseError(f"{fx.name}: attention scores reach {t!r}; edgewise follows scores only through scaling, "
                            "additive biases/masks, softmax and dropout into a product with the values")

    def _on_weights(self, fx, a) -> bool:
        """Attention weights (after the softmax) are a constant per (query, key): arithmetic with constants and
        with other weights of the same queries, renormalisation by their own sums and rearrangements are followed
        on their value; anything input-dependent is refused."""
        s: Scores = self.units[a]
        t = fx.target
        if not isinstance(s, Weights):  # the softmax of scores
            self.units[fx] = Weights.of(s)
            return True
        if t in _SOFTMAX_ONLY:
            raise EdgewiseError(f"{fx.name}: a softmax of attention weights (after a softmax); edgewise cannot map it")
        if t in (F.dropout, "dropout", "float", "to", "type_as", "contiguous", "clone", "detach"):
            self.units[fx] = s
            return True

        def other_value():
            rest = [x for x in fx.args[:2] if x is not a]
            if len(rest) != 1:
                return s.value, s.qi
            o = rest[0]
            got = self.units.get(o) if isinstance(o, torch.fx.Node) else None
            if isinstance(got, Weights):
                return got.value, got.qi
            value = self.const_value(o)
            if value is None or got is not None:
                raise EdgewiseError(f"{fx.name}: attention weights combined with an input-dependent tensor by {t!r}; "
                                    "edgewise cannot map it")
            return torch.as_tensor(value, dtype=torch.float64), None

        first = fx.args[0] is a
        if t in _WEIGHT_ARITHMETIC:
            value, qi = other_value()
            if qi is not None and not torch.equal(*torch.broadcast_tensors(qi, s.qi)):
                raise EdgewiseError(f"{fx.name}: attention weights of different queries combined")
            op = _WEIGHT_ARITHMETIC[t]
            out = op(s.value, value) if first else op(value, s.value)
            self.units[fx] = Weights(out, s.qi, s.qrows)
            return True
        if t in ("masked_fill", "masked_fill_"):
            mask = self.const_value(fx.args[1])
            fill = self.const_value(fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("value"))
            if mask is None or fill is None:
                raise EdgewiseError(f"{fx.name}: attention weights masked by an input-dependent mask")
            self.units[fx] = Weights(s.value.masked_fill(torch.as_tensor(mask).bool(), float(fill)), s.qi, s.qrows)
            return True
        if t in _REDUCE and _REDUCE[t] in ("sum", "mean"):  # a statistic of the weights: a constant
            args = torch.fx.node.map_arg(fx.args, lambda x: s.value if x is a else self._value(x))
            kwargs = torch.fx.node.map_arg(fx.kwargs, lambda x: self._value(x))
            self._consts[fx] = getattr(args[0], t)(*args[1:], **kwargs) if isinstance(t, str) else t(*args, **kwargs)
            return True
        if t in MOVE_METHODS or t in MOVE_FUNCTIONS and t is not operator.getitem and t not in (
                torch.cat, torch.concat, torch.stack, F.pad):
            def run(tensor):
                return self._rerun(fx, a, tensor)
            qi, value = run(s.qi), run(s.value)
            if isinstance(qi, torch.Tensor):
                self.units[fx] = Weights(value, qi, s.qrows)
            else:
                self.units[fx] = tuple(Weights(v, q, s.qrows) for q, v in zip(qi, value))
            return True
        raise EdgewiseError(f"{fx.name}: attention weights (after the softmax) reach {t!r}; edgewise follows them "
                            "only through arithmetic with constants, renormalisation, rearrangement and dropout into "
                            "a product with the values")

    def _mix_scores(self, fx, module: nn.Module, name: str) -> bool:
        """Talking heads (CaiT, EfficientFormer-v2): a Linear over the last axis or a 1×1 convolution over axis 1
        mixes attention scores (or weights) across heads. Mixed scores are still scores: they carry no paths and
        choose the same keys, which edgewise can say only when every head mixed allows the same keys for the
        same query token."""
        s: Scores = self.units[fx.args[0]]
        if isinstance(module, nn.Linear):
            axis, width = s.allowed.ndim - 1, module.out_features
        else:
            if any(k != 1 for k in _pair_list(module.kernel_size)) or any(t != 1 for t in _pair_list(module.stride)) \
                    or (not isinstance(module.padding, str) and any(p != 0 for p in _pair_list(module.padding))) or \
                    module.padding_mode != "zeros" or s.allowed.ndim != len(_pair_list(module.kernel_size)) + 2:
                raise EdgewiseError(f"{fx.name}: attention scores reach {type(module).__name__} with a kernel wider "
                                    "than 1; edgewise follows scores mixed across heads (1×1) only")
            axis, width = 1, module.out_channels
        qi = s.qi.expand(s.allowed.shape)
        sizes = np.append(self._sizes(), 1)
        place, _ = self._places(s.qrows[None], sizes, name, "query")
        where = torch.as_tensor(place[0])[(qi - 1).long()]
        if not bool((s.allowed == s.allowed.narrow(axis, 0, 1)).all()) or not bool(
                (where == where.narrow(axis, 0, 1)).all()):
            raise EdgewiseError(f"layer {name!r}: attention scores of heads that allow different keys, or of other "
                                f"query tokens, mixed by {type(module).__name__}; edgewise maps talking heads only "
                                "when every head mixed attends the same keys")
        shape = list(s.allowed.shape)
        shape[axis] = width
        if isinstance(s, Weights):  # as the oracle: the weights mixed with ones, without a bias
            ones = torch.ones(module.weight.shape, dtype=torch.float64)
            value = F.linear(s.value, ones) if isinstance(module, nn.Linear) else \
                (F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d)(s.value, ones, None, 1, 0, 1, module.groups)
            self.units[fx] = Weights(value, qi.narrow(axis, 0, 1).expand(shape), s.qrows)
            return True
        self.units[fx] = Scores(None, s.allowed.narrow(axis, 0, 1).expand(shape), qi.narrow(axis, 0, 1).expand(shape),
                                s.qrows)
        return True

    def _adds_to_scores(self, fx, a) -> bool:
        """Whether a function kept whole by the tracer (MViTv2's ``cal_rel_pos_type``) only adds to the scores ``a`` a
        term computed from input-dependent tensors (queries) and constants that vanishes with those tensors:
        ``f(S, q) - S`` must not depend on ``S`` and ``f(S, 0) = S``, checked on random values. Such a term is part
        of the logits and masks nothing (the oracle counts an input-dependent addend of the scores as zero)."""
        meta = a.meta.get("tensor_meta")
        dtype = getattr(meta, "dtype", torch.float32) if meta is not None else torch.float32
        shape = tuple(self.units[a].allowed.shape)
        gen = torch.Generator().manual_seed(0)

        def run(scores, fill: bool):
            def one(x):
                if x is a:
                    return scores.clone()
                if not isinstance(x, torch.fx.Node):
                    return x
                if isinstance(self.units.get(x), (Scores, tuple)):
                    raise ValueError("other scores")
                if self._live(x):
                    size = self._meta_shape(x)
                    return torch.randn(size, generator=gen, dtype=dtype) if fill else torch.zeros(size, dtype=dtype)
                value = self.const_value(x)
                return value if value is not None else x.meta.get("value")

            args, kwargs = torch.fx.node.map_arg(fx.args, one), torch.fx.node.map_arg(fx.kwargs, one)
            return fx.target(*args, **kwargs)

        try:
            s1, s2 = (torch.randn(shape, generator=gen, dtype=dtype) for _ in range(2))
            g1 = torch.Generator().manual_seed(1)
            gen.set_state(g1.get_state())
            out1 = run(s1, True)
            gen.set_state(g1.get_state())
            out2 = run(s2, True)
            out0 = run(s1, False)
            tol = dict(rtol=1e-4, atol=1e-4)
            return isinstance(out1, torch.Tensor) and tuple(out1.shape) == shape and \
                torch.allclose(out1 - s1, out2 - s2, **tol) and torch.allclose(out0, s1, **tol)
        except Exception:
            return False

    def _matmul(self, fx, name) -> bool:
        a, b = fx.args[0], fx.args[1]
        form = "matmul"
        if fx.target is torch.einsum:
            a, b, form = *_einsum_operands(fx), _einsum_form(fx.args[0])
        sa = self.units.get(a)
        if isinstance(sa, Scores):
            if form not in ("matmul", "attend"):
                raise EdgewiseError(f"layer {name!r}: attention weights used in einsum {fx.args[0]!r}")
            self._set(fx, self.attend(self._query(sa), self._ids(b), sa.allowed, name))
            return True
        sb = self.units.get(b)
        if isinstance(sb, Scores) and form == "matmul":  # v @ attnᵀ: values as columns, scores transposed
            st = (_Generated if isinstance(sb, _Generated) else Scores)(
                None, sb.allowed.transpose(-1, -2), sb.qi.transpose(-1, -2), sb.qrows)
            out = self.attend(self._query(st), self._ids(a).transpose(-1, -2), st.allowed, name)
            self._set(fx, out.transpose(-1, -2))
            return True
        ia, ib = self._ids(a), self._ids(b)
        live_a, live_b = bool((ia > 0).any()), bool((ib > 0).any())
        if live_a and live_b and form in ("matmul", "scores"):  # q @ kᵀ: the scores
            self.units[fx] = Scores(ia, torch.ones(self._meta_shape(fx), dtype=torch.bool))
            return True
        if live_b and not live_a and form in ("matmul", "scores") and ia.ndim >= 2:
            # constant queries (a class token made only of constants, a learned query) times keys: scores, which
            # must reach a softmax and the values (anything else is refused where the scores go)
            self.units[fx] = Scores(ia, torch.ones(self._meta_shape(fx), dtype=torch.bool))
            return True
        if live_a and not live_b and form == "matmul":  # x @ W: a Linear over the last axis
            self._set(fx, self.project(ia, self._meta_shape(fx)[-1], name, "matmul"))
            return True
        message = (f"layer {name!r}: a matrix product edgewise cannot map (only x @ W with a constant W, "
                   "and attention: softmax(q @ kᵀ) @ v)")
        if live_a != live_b:  # maybe a relative-position term of the logits (SAM's q·R): decided where it is used
            self.units[fx] = LogitTerm(message)
            return True
        raise EdgewiseError(message)

    def _query(self, s: Scores) -> torch.Tensor:
        """The query ids of ``s``, one token per row. A row of generated weights computed from units of several
        positions (GCNet's context pooling: one softmax over every position of a map) is a query of no position,
        as a learned query is: its ids constants."""
        q = s.q
        if isinstance(s, _Generated) and q.numel():
            which, local, const = self._decode(q)
            place = np.where(const, -1, which * _RADIX + local % np.append(self._sizes(), 1)[np.maximum(which, 0)])
            mixed = (place != place[..., :1]).any(-1)
            if mixed.any():
                q = q.clone()
                q[torch.as_tensor(mixed)] = 0
        return q

    def _on_logit_term(self, fx) -> bool:
        """A :class:`LogitTerm` may be rearranged, scaled by constants and added to other logit terms on its way
        to the attention logits; anything else raises the error of the product it came from."""
        terms = [self.units[a] for a in fx.all_input_nodes if isinstance(self.units.get(a), LogitTerm)]
        others = [a for a in fx.all_input_nodes if not isinstance(self.units.get(a), LogitTerm) and self._live(a)]
        t = fx.target
        moves = (t in MOVE_METHODS or t in MOVE_FUNCTIONS) and t not in (torch.cat, torch.concat, torch.stack)
        arithmetic = t in _WEIGHT_ARITHMETIC or t in ("float", "to", "type_as", "contiguous", "clone")
        if fx.op != "call_module" and (moves or arithmetic) and not others:
            self.units[fx] = terms[0]
            return True
        raise EdgewiseError(terms[0].message)

    def attend(self, q: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None, name: str) -> torch.Tensor:
        """Attention's value path: output (…, i, d) reads v (…, j, d) for every key j that query i may attend."""
        lq, lk, dv = q.shape[-2], v.shape[-2], v.shape[-1]
        lead = torch.broadcast_shapes(q.shape[:-2], v.shape[:-2],
                                      allowed.shape[:-2] if allowed is not None else ())
        if not bool((v > 0).any()):  # constant values (a dead copy the shape tracer recorded): no paths
            return torch.zeros((*lead, lq, dv), dtype=torch.float64)
        q = q.expand(*lead, *q.shape[-2:]).reshape(-1, lq, q.shape[-1])
        v = v.expand(*lead, lk, dv).reshape(-1, lk, dv)
        allowed = (torch.ones((lq, lk), dtype=torch.bool) if allowed is None else allowed)
        allowed = allowed.expand(*lead, lq, lk).reshape(-1, lq, lk).numpy()
        if allowed.shape[0] != q.shape[0]:
            allowed = np.broadcast_to(allowed, (q.shape[0], lq, lk))
        across = self._attend_channels(v, allowed, lead, name)
        if across is not None:
            return across
        sizes = np.append(self._sizes(), 1)
        qkey, _ = self._places(q, sizes, name, "query")
        vkey, vchan = self._places(v, sizes, name, "value")
        keys, inverse = unique(np.concatenate([qkey.ravel(), vkey.ravel()]), return_inverse=True)
        qplace = inverse[:qkey.size].reshape(qkey.shape)
        vplace = inverse[qkey.size:].reshape(vkey.shape)
        vlive = vkey != _CONST
        qplace = self._distinct_queries(qplace, vplace, vlive, allowed, name, keys[qplace] == _CONST)
        # the value channel of every (batch, d): the same along the keys
        ch = np.where(vlive[..., None], vchan, -1).max(axis=1)
        if ((vchan != ch[:, None, :]) & vlive[..., None]).any():
            raise EdgewiseError(f"layer {name!r}: a value channel changes along the keys")
        # the relation among places, which must be the same for every channel
        groups, group_of = distinct_rows(ch)  # (the groups' order is never used: their count and membership)
        relation = _shared_relation(qplace, vplace, vlive, allowed, group_of, keys.size)
        b = i = pair = None
        if relation is None:
            b, i, j = np.nonzero(allowed & vlive[:, None, :])
            pair = qplace[b, i] * keys.size + vplace[b, j]
            for g in range(len(groups)):
                mine = unique(pair[group_of[b] == g])
                if relation is None:
                    relation = mine
                elif not np.array_equal(mine, relation):
                    raise EdgewiseError(f"layer {name!r}: heads attend different key sets; edgewise needs one pattern")
        rel = np.stack([relation // keys.size, relation % keys.size], 1)
        node_of = np.where(keys >= 0, keys // _RADIX, -1)
        times = {}
        srt = np.sort(np.where(vlive, vplace, -1), axis=1)
        if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():  # a row holds the same key units twice
            if b is None:
                b, i, j = np.nonzero(allowed & vlive[:, None, :])
            times = _key_repeats(b, i, j, lq, qplace, vplace, keys, node_of, self._spatial, name)
        pos_of = np.where(keys >= 0, keys % _RADIX, -1)
        is_grid = (keys >= 0) & self._gridded()[np.maximum(node_of, 0)]
        held = unique(vplace[vlive])
        vgrid = set(node_of[held[is_grid[held]]].tolist())
        if len(vgrid) != 1:
            raise EdgewiseError(f"layer {name!r}: attention needs values at the positions of one feature map "
                                f"(found {len(vgrid)})")
        src = self._names[vgrid.pop()]
        spatial = self._spatial(self._index(src))
        npos, chans = math.prod(spatial), self.nodes[src].shape[0]
        query_places = unique(qplace)
        grid_q = query_places[is_grid[query_places]]
        qgrid = set(node_of[grid_q].tolist())
        if len(qgrid) > 1:
            raise EdgewiseError(f"layer {name!r}: queries at the positions of several feature maps")
        # queries may sit on another grid than the values (PVT's spatial-reduction attention)
        q_spatial = self._spatial(qgrid.pop()) if grid_q.size else spatial
        q_shape = (chans, *q_spatial)
        if len(q_spatial) != len(spatial) and not (grid_q.size and q_spatial and spatial):
            raise EdgewiseError(f"layer {name!r}: queries on a {len(q_spatial)}-D grid attend values on a "
                                f"{len(spatial)}-D one")
        made: dict = {}
        if grid_q.size:
            gg = rel[is_grid[rel[:, 0]] & is_grid[rel[:, 1]]]
            if len(q_spatial) == len(spatial):
                node = self._add(f"{name}:attend", "pool", (src,), q_shape,
                                 axes=relation_axes(pos_of[gg[:, 0]], pos_of[gg[:, 1]], q_spatial, spatial,
                                                    distinct=True),  # (distinct places of one map each)
                                 op="attention")
            else:
                node = self._attend_flat(src, pos_of[gg[:, 0]], pos_of[gg[:, 1]], q_spatial, spatial, name)
            for p in unique(rel[~is_grid[rel[:, 1]], 1]):
                askers = unique(rel[(rel[:, 1] == p) & is_grid[rel[:, 0]], 0])
                if askers.size == 0:
                    continue
                if askers.size != grid_q.size:
                    raise EdgewiseError(f"layer {name!r}: a token without a position attended by some positions only")
                col = self._add(f"{name}:token", "reshape", (self._names[node_of[p]],), (chans,) + (1,) * len(q_spatial),
                                op="broadcast")
                repeats = {times.get((int(q), int(p)), 1) for q in askers}
                if len(repeats) != 1:
                    raise EdgewiseError(f"layer {name!r}: positions attend copies of a token different numbers "
                                        "of times")
                for _ in range(repeats.pop()):
                    node = self._add(f"{name}:mix", "add", (node, col), q_shape, op="attention")
            made[-1] = node
        pooled_by: dict = {}
        for p in query_places[~is_grid[query_places]]:
            mine = rel[rel[:, 0] == p, 1]
            parts = []
            if is_grid[mine].any():
                gpos = unique(pos_of[mine[is_grid[mine]]])
                key = tuple(gpos.tolist())
                if key not in pooled_by:  # one pooled vector per set of positions attended
                    if gpos.size == npos:
                        axes, what = tuple(Adaptive() for _ in spatial), "attention (all positions)"
                    else:  # a token without a position (e.g. a padding token of a window) attends some
                        axes = relation_axes(np.zeros(gpos.size, dtype=np.int64), gpos, (1,) * len(spatial), spatial)
                        what = "attention (some positions)"
                    pooled = self._add(f"{name}:pool", "pool", (src,), (chans,) + (1,) * len(spatial), axes=axes,
                                       op=what)
                    pooled_by[key] = self._add(f"{name}:flat", "reshape", (pooled,), (chans,), op="flatten")
                parts.append(pooled_by[key])
            parts += [self._names[node_of[k]] for k in mine[~is_grid[mine]]
                      for _ in range(times.get((int(p), int(k)), 1))]
            if not parts:
                continue
            node = parts[0]
            for extra in parts[1:]:
                node = self._add(f"{name}:mix", "add", (node, extra), (chans,), op="attention")
            made[int(p)] = node
        # ids of the output (B, Lq, dv): the query's place, the value's channel
        target = np.full(keys.size, -1)
        for p, node in made.items():  # (a token without a position: its own node; every place on the grid: made[-1])
            target[is_grid if p == -1 else p] = self._index(node)
        base = np.where(target >= 0, np.asarray(self._bases + [0])[target] + 1, 0)
        stride = np.where(is_grid, math.prod(q_spatial), 1)
        offset = np.where(is_grid, pos_of, 0)
        tq = qplace  # (B, Lq)
        out = base[tq][..., None] + ch[:, None, :] * stride[tq][..., None] + offset[tq][..., None]
        out = np.where((base[tq][..., None] > 0) & (ch[:, None, :] >= 0), out, 0).astype(np.float64)
        out = torch.as_tensor(out).reshape(*lead, lq, dv)
        rows_node = target[tq].reshape(-1)
        if (target[tq] >= 0).all() and (ch == np.arange(dv)).all() and \
                all(self.nodes[self._names[w]].shape[:1] == (dv,) for w in unique(rows_node).tolist()):
            self._made_in_rows(out, rows_node, offset[tq].reshape(-1))  # (each query's row: its node's position)
        return out

    def _attend_channels(self, v: torch.Tensor, allowed: np.ndarray, lead, name: str) -> torch.Tensor | None:
        """Attention across channels (XCiT's XCA, DaViT's channel attention): the "tokens" of ``v`` (G, Lk, dv)
        are channels, each row one channel of one map over its positions. Output (g, i, d) reads the value
        channel of every row j that i may attend, at the position of d: per group g (a head) a 1×1 convolution
        from the head's value channels to its Lq output channels, once per channel. None when ``v`` is laid
        out as tokens (the usual attention)."""
        if self._known_tensor(v) is not None:
            if self.check_known_rows:  # (rows of tokens, as remembered: each row one position, its channels in order)
                assert self._attend_channels_read(v, allowed, lead, name) is None, "remembered value rows differ"
            return None
        return self._attend_channels_read(v, allowed, lead, name)

    def _attend_channels_read(self, v: torch.Tensor, allowed: np.ndarray, lead, name: str) -> torch.Tensor | None:
        """:meth:`_attend_channels`, reading the values' units."""
        src_index = self._single(v)  # (None: a constant, or units of several nodes)
        if src_index is None or v.shape[-1] < 2:
            return None
        spatial = self._spatial(src_index)
        npos = max(math.prod(spatial), 1)
        chan, pos = np.divmod(v.numpy().astype(np.int64) - (self._bases[src_index] + 1), npos)
        if not spatial or not (chan == chan[..., :1]).all() or (pos == pos[..., :1]).all():
            return None
        groups, lq, lk = allowed.shape
        if not (pos == pos[:, :1, :]).all() or any(unique(pos[g, 0]).size != pos.shape[-1] for g in range(groups)):
            raise EdgewiseError(f"layer {name!r}: attention across channels whose value rows do not hold the same "
                                "positions, each once")
        if not allowed.all():
            raise EdgewiseError(f"layer {name!r}: attention across channels with a mask; edgewise maps it only when "
                                "every channel of a head attends every channel of the head")
        src = self._select(src_index, chan[:, :, 0].reshape(-1), name)
        new = self._add(name, "conv", (src,), (groups * lq, *spatial), axes=tuple(Window(1, 1) for _ in spatial),
                        groups=groups, op="attention across channels")
        out_chan = np.arange(groups * lq).reshape(groups, lq, 1)
        out = out_chan * npos + pos[:, :1, :] + (self._bases[self._index(new)] + 1)
        return torch.as_tensor(out.astype(np.float64)).reshape(*lead, lq, v.shape[-1])

    def _attend_flat(self, src: str, q_pos, v_pos, q_spatial, spatial, name: str) -> str:
        """Attention between grids of different rank (Next-ViT: queries on the 2-D map, keys and values average-
        pooled along its flattened 1-D token sequence): the connections on the flattened grids, viewed back as
        the queries' grid (flattening is row-major, as the tokens are)."""
        chans = self.nodes[src].shape[0]
        n_in, n_out = math.prod(spatial), math.prod(q_spatial)
        if len(spatial) > 1:
            src = self._add(f"{name}:flatten", "reshape", (src,), (chans, n_in), op="flatten")
        axes = relation_axes(np.asarray(q_pos), np.asarray(v_pos), (n_out,), (n_in,))
        node = self._add(f"{name}:attend", "pool", (src,), (chans, n_out), axes=axes, op="attention")
        if len(q_spatial) > 1:
            node = self._add(f"{name}:view", "reshape", (node,), (chans, *q_spatial), op="view")
        return node

    def _distinct_queries(self, qplace, vplace, vlive, allowed, name: str, qconst):
        """The place that names each query row (B, Lq) in the output: its query token's, unless rows with the same
        query token attend different keys (gcvit's global query, shared by every window); then the place of the
        value row of the same index (the output row's own token, which each row attends), when that tells the
        rows apart. The place only names the output unit: its connections are the keys of the rows named so.
        Constant query tokens (a window's padding, ``qconst``) keep their shared place, as before: their rows are
        padding, cropped away later."""
        # batch rows alike in every respect (the heads of a window) give the same pairs: each checked once
        n = qplace.shape[0]
        keep = distinct_rows(np.concatenate([qplace, vplace, vlive, qconst, np.packbits(
            allowed.reshape(n, -1), axis=1)], 1).astype(np.int64))[0] if n > 1 else np.arange(n)

        def consistent(places) -> bool:
            places, alive, vp, qc = places[keep], vlive[keep], vplace[keep], qconst[keep]
            if unique(places.reshape(-1)).size == places.size:
                return True  # (every row its own place: a place's keys are its row's; MaxViT's windows)
            b, i, j = np.nonzero(allowed[keep] & alive[:, None, :] & ~qc[..., None])
            k = int(vp.max()) + 2
            rows = unique((b * places.shape[1] + i) * k + vp[b, j])
            per_row = np.bincount(rows // k, minlength=places.size)
            pairs = unique(places[b, i] * k + vp[b, j])
            per_place = np.bincount(pairs // k, minlength=int(places.max()) + 1)
            return bool((per_row == per_place[places.reshape(-1)])[~qc.reshape(-1)].all())

        same_rows = (qplace == qplace[:1]).all() and (vplace == vplace[:1]).all() and (vlive == vlive[:1]).all() \
            and (allowed == allowed[:1]).all()
        if same_rows and unique(qplace[0]).size == qplace.shape[1]:
            return qplace  # every batch row (head) alike, one row per query token: nothing to tell apart
        if consistent(qplace):
            return qplace
        if vplace.shape == qplace.shape and bool(vlive.all()) and not qconst.any() and consistent(vplace):
            return vplace
        raise EdgewiseError(f"layer {name!r}: the same query token attends different keys in different rows (a "
                            "query shared by several windows) and the rows cannot be told apart by their values")

    def _places(self, t: torch.Tensor, sizes, name: str, what: str):
        """Per token (B, L): a key for its place (node·RADIX + position, or CONST) and the channel of every element."""
        known = self._known_tensor(t)
        if known is not None:  # (every token one position of one node, its channels in order)
            key = (known[1][:, 0] * _RADIX + known[2][:, 0]).reshape(t.shape[:-1])
            found = key, np.broadcast_to(np.arange(t.shape[-1]), tuple(t.shape))
            if self.check_known_rows:
                assert _same_answer(found, self._places_read(t, sizes, name, what)), "remembered places differ"
            return found
        return self._places_read(t, sizes, name, what)

    def _places_read(self, t: torch.Tensor, sizes, name: str, what: str):
        """:meth:`_places`, reading the tensor's units."""
        n = self._single(t)
        if n is not None:  # (units of one node: no constants, one size)
            chan, pos = np.divmod(t.numpy().astype(np.int64) - (self._bases[n] + 1), sizes[n])
            if not (pos == pos[..., :1]).all():
                raise EdgewiseError(f"layer {name!r}: a {what} token mixes units of several positions or constants")
            return n * _RADIX + pos[..., 0], chan
        # each token's node from its first element (a class token beside the patches: a few nodes); every element
        # must be a unit of that node at the first one's position, or, in a constant token, a constant
        w, _, const = self._decode(t[..., :1])
        g = t.detach().numpy().astype(np.int64) - 1
        bases = np.append(self._bases, 0)
        local = g - bases[w]
        chan, pos = np.divmod(local, sizes[w])
        inside = (local >= 0) & (g < np.append(self._bases[1:], [self._total, 0])[w])
        # (a constant channel of a token of units, after its first: the normaliser column of linear attention's
        # values padded with ones (EfficientViT's LiteMLA), a channel with no units)
        if not np.where(const, g < 0, (g < 0) | (inside & (pos == pos[..., :1]))).all() and not (
                what == "query" and self._one_position(t, sizes, pos[..., 0], const[..., 0])):
            raise EdgewiseError(f"layer {name!r}: a {what} token mixes units of several positions or constants")
        return np.where(const[..., 0], _CONST, w[..., 0] * _RADIX + pos[..., 0]), np.where(const | (g < 0), -1, chan)

    def _one_position(self, t: torch.Tensor, sizes, first_pos, const_token) -> bool:
        """Whether every token of ``t`` holds units of one position of maps of one shape, from several maps (a
        query rotated in parts and concatenated: Gemma4's 2-D RoPE): a query is named by its place alone, which
        its first unit's gives."""
        which, local, const = self._decode(t)
        shapes = {self._spatial(int(n)) for n in unique(which[~const])}
        if len(shapes) != 1 or const_token.any():
            return False
        pos = local % sizes[np.maximum(which, 0)]
        return bool(np.where(const, True, pos == first_pos[..., None]).all())

    def _sdpa(self, fx, name) -> bool:
        arg = functools.partial(_arg, fx)
        terms = [self.units[x] for x in (arg(0, "query"), arg(1, "key"), arg(2, "value"))
                 if isinstance(self.units.get(x), LogitTerm)]
        if terms:
            raise EdgewiseError(terms[0].message)
        q, v = self._ids(arg(0, "query")), self._ids(arg(2, "value"))
        allowed = torch.ones((*q.shape[:-1], v.shape[-2]), dtype=torch.bool)
        mask = arg(3, "attn_mask")
        if isinstance(self.units.get(mask), LogitTerm):
            mask = None  # a float mask computed from the queries is part of the logits: it masks nothing
        if mask is not None:
            value = self.const_value(mask)
            if value is None:
                raise EdgewiseError(f"layer {name!r}: an attention mask that depends on the input")
            value = torch.as_tensor(value)
            allowed = allowed & (value if value.dtype == torch.bool else value > _MASK_BELOW)
        if arg(5, "is_causal", False):
            allowed = allowed & torch.ones(allowed.shape[-2:], dtype=torch.bool).tril()
        self._set(fx, self.attend(q, v, allowed, name))
        return True

    def _mha(self, fx, m: nn.MultiheadAttention, name) -> bool:
        arg = functools.partial(_arg, fx)
        if arg(3, "key_padding_mask") is not None or arg(5, "attn_mask") is not None:
            raise EdgewiseError(f"layer {name!r}: nn.MultiheadAttention with masks is not supported")
        q, v = self._ids(arg(0, "query")), self._ids(arg(2, "value"))
        if not m.batch_first:
            q, v = q.transpose(0, 1), v.transpose(0, 1)
        vp = self.project(v, m.embed_dim, f"{name}:value", "in_proj (values)")
        out = self.project(self.attend(q, vp, None, name), m.embed_dim, name, "out_proj")
        self.units[fx] = (out if m.batch_first else out.transpose(0, 1), None)
        return True

    def _swin(self, fx, name) -> bool:
        """torchvision's ``shifted_window_attention``: windows on the padded, rolled grid, regions masked."""
        x = self._ids(_arg(fx, 0, "input"))  # (the weights and bias are not read: no ids made for them)
        window, shift = (list(self._value(_arg(fx, i, key))) for i, key in ((4, "window_size"), (6, "shift_size")))
        _, h, w, c = x.shape
        labels = []
        for n, win, s in zip((h, w), window, shift):
            padded = n + (win - n % win) % win
            s = 0 if win >= padded else s
            rolled = (np.arange(n) - s) % padded
            region = np.zeros(n, dtype=np.int64) if s == 0 else np.digitize(rolled, [padded - win, padded - s])
            labels.append(rolled // win * 3 + region)
        same = [lab[:, None] == lab[None, :] for lab in labels]
        qkv = self.project(x, 3 * c, f"{name}:qkv", "qkv")
        tokens = qkv.reshape(1, h * w, 3 * c)
        out = self._windows(tokens, same, c, name + ":attention")
        if out is None:
            allowed = torch.as_tensor((same[0][:, None, :, None] & same[1][None, :, None, :]).reshape(h * w, h * w))
            out = self.attend(tokens, tokens[..., 2 * c:], allowed[None], name + ":attention")
        self._set(fx, self.project(out.reshape(1, h, w, c), c, name, "proj"))
        return True

    def _windows(self, tokens: torch.Tensor, same: list, c: int, name: str) -> torch.Tensor | None:
        """What :meth:`attend` makes of Swin's window attention where ``tokens`` (1, H·W, 3C) are one node read
        channels-last (queries, keys, values: its channel thirds): the token at (i, j) attends the key at (k, l)
        where ``same[0][i, k]`` and ``same[1][j, l]``, a product of per-axis relations, so the pool node's axes are
        those relations, with no (H·W)² mask to search. None for any other layout (then :meth:`attend` decides)."""
        known = self._known_tensor(tokens) if tokens.shape[0] == 1 else None
        in_order = known is not None and bool((known[1] == known[1][0, 0]).all()) and \
            np.array_equal(known[2][:, 0], np.arange(len(known[2])))  # (as remembered: token t is position t)
        n = int(known[1][0, 0]) if in_order else self._single(tokens)
        spatial = (len(same[0]), len(same[1]))
        if n is None or self._spatial(n) != spatial or self.nodes[self._names[n]].shape[0] != 3 * c:
            return None
        npos, base = math.prod(spatial), self._bases[n] + 1
        layout = torch.arange(npos, dtype=torch.float64)[:, None] + torch.arange(3 * c, dtype=torch.float64) * npos
        if in_order and self.check_known_rows:
            assert torch.equal(tokens[0], layout + base), "remembered window tokens differ"
        if not in_order and not torch.equal(tokens[0], layout + base):
            return None
        src = self._names[n]
        node = self._add(f"{name}:attend", "pool", (src,), (3 * c, *spatial),
                         axes=tuple(_window_or_table(m) for m in same), op="attention")
        # the output at token t, channel d: the pool node's unit at the value channel 2C + d, position t
        return (layout[None, :, 2 * c:] + (self._bases[self._index(node)] + 1)).contiguous()

    # ------------------------------------------------------------------ constants
    def const_value(self, a):
        """The value of a constant operand (a buffer, parameter, or arithmetic on them), or None."""
        if not isinstance(a, torch.fx.Node):
            return a
        if a in self._consts:
            return self._consts[a]
        value = None
        try:
            if a.op == "get_attr":
                value = operator.attrgetter(a.target)(self.model)
            elif "value" in a.meta:  # shape arithmetic, recorded when shapes were propagated
                value = a.meta["value"]
            elif a.op in ("call_function", "call_method", "call_module") and not self._live(a) and \
                    not isinstance(self.units.get(a), (tuple, Scores)):
                args = torch.fx.node.map_arg(a.args, self.const_value)
                kwargs = torch.fx.node.map_arg(a.kwargs, self.const_value)
                if a.op == "call_function":
                    value = a.target(*args, **kwargs)
                elif a.op == "call_method":
                    value = getattr(args[0], a.target)(*args[1:], **kwargs)
                else:
                    value = self.modules[a.target](*args, **kwargs)
            if isinstance(value, torch.Tensor):
                value = value.detach()
        except Exception:
            value = None
        self._consts[a] = value
        return value


_BLOCK = 128


def _block_bounds(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest of each block of :data:`_BLOCK` elements of flat ``g``, the rest (fewer) last."""
    m = g.size - g.size % _BLOCK
    blocks = g[:m].reshape(-1, _BLOCK)
    lows, highs = [blocks.min(1)], [blocks.max(1)]
    if m < g.size:
        lows.append(g[m:].min(keepdims=True))
        highs.append(g[m:].max(keepdims=True))
    return np.concatenate(lows), np.concatenate(highs)


def _same_rows(a: tuple, b: tuple) -> bool:
    """Whether two answers of :meth:`Layout._row_positions` are equal (arrays by value, the signatures too)."""
    (*arrays_a, (sigs_a, inv_a)), (*arrays_b, (sigs_b, inv_b)) = a, b
    return all(np.array_equal(x, y) for x, y in zip(arrays_a, arrays_b)) and np.array_equal(inv_a, inv_b) and \
        len(sigs_a) == len(sigs_b) and all(np.array_equal(x, y) for x, y in zip(sigs_a, sigs_b))


class _RowPairs:
    """:meth:`Layout._pairing` of two operands in rows that pair several nodes: per row, each operand's node
    (``wa``, ``wb``) and the position (``pos``, the same in both), and the distinct pairs of nodes (``nodes``,
    sorted)."""

    __slots__ = ("wa", "wb", "pos", "nodes")

    def __init__(self, wa: np.ndarray, wb: np.ndarray, pos: np.ndarray, nodes: list):
        self.wa, self.wb, self.pos, self.nodes = wa, wb, pos, nodes

    def pair_of_rows(self) -> np.ndarray:
        """The index in ``nodes`` of every row's pair."""
        radix = max(max(self.wa.max(), self.wb.max()) + 1, 1)
        keys = np.array([na * radix + nb for na, nb in self.nodes], dtype=np.int64)
        return np.searchsorted(keys, self.wa * radix + self.wb)

    def elements(self, layout: "Layout", operands: list, shape: tuple) -> tuple:
        """The same answer element by element, as reading the operands gives it: ``(a, b, both, wa, wb, la, nodes)``."""
        f = shape[-1]
        la = (np.arange(f, dtype=np.int64)[None, :] * layout._sizes()[self.wa][:, None] + self.pos[:, None]).reshape(-1)
        a, b = (o.numpy().reshape(-1) for o in operands)
        return a, b, np.arange(a.size), np.repeat(self.wa, f), np.repeat(self.wb, f), la, self.nodes


def _same_answer(a, b) -> bool:
    """Whether two answers of :meth:`Layout._pairing` or :meth:`Layout._places` are equal (None, or tuples of node
    indices, arrays and lists of pairs)."""
    if a is None or b is None or len(a) != len(b):
        return a is b
    return all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a, b))


def _locate(g: np.ndarray, bases: np.ndarray, lows: np.ndarray, highs: np.ndarray, start: int = 0):
    """(``start`` + the index in ``bases``, the sorted first unit numbers of some nodes, of each element's node; its
    unit within that node) for flat unit numbers ``g`` (a negative one, a constant, gets any answer), whose blocks have
    the bounds :func:`_block_bounds` gives. A tensor's units come in long stretches of one node: each block whose
    smallest and largest number lie in one node is placed at once, the other elements one by one."""
    n = g.size
    m = n - n % _BLOCK
    which, local = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    todo = np.arange(m, n)
    if m:
        blocks = g[:m].reshape(-1, _BLOCK)
        first = np.searchsorted(bases, lows[:m // _BLOCK], side="right") - 1
        split = (first != np.searchsorted(bases, highs[:m // _BLOCK], side="right") - 1) | (first < 0)
        first[split] = 0
        which[:m].reshape(-1, _BLOCK)[:] = first[:, None] + start
        np.subtract(blocks, bases[first][:, None], out=local[:m].reshape(-1, _BLOCK))
        if split.any():
            todo = np.concatenate([(np.flatnonzero(split)[:, None] * _BLOCK + np.arange(_BLOCK)).reshape(-1), todo])
    if todo.size:
        w = np.maximum(np.searchsorted(bases, g[todo], side="right") - 1, 0)
        which[todo], local[todo] = w + start, g[todo] - bases[w]
    return which, local


def _sample(arrays: list, shape: tuple, k: int) -> list:
    """The values of each array (broadcast to ``shape``, not materialised) at ``k`` elements spread over it."""
    at = np.unravel_index(np.linspace(0, math.prod(shape) - 1, k).astype(np.int64), shape)
    return [np.broadcast_to(a, shape)[at] for a in arrays]


def _op_name(target) -> str:
    from ._trace import _qualname  # (a cycle: _trace imports this module)

    return _qualname(target)


def _key_repeats(b, i, j, lq, qplace, vplace, keys, node_of, spatial, name) -> dict:
    """{(query place, key place): n} where a query attends n > 1 keys that hold the same units (prefix tokens
    that were one constant in an earlier block, a token copied): each key is a path of its own. Keys on a grid
    that repeat are refused (a pool node has one connection per position)."""
    per_query = b * lq + i
    uk, n = unique(per_query * keys.size + vplace[b, j], return_counts=True)
    if not uk.size or n.max() == 1:
        return {}
    qp = qplace.reshape(-1)[uk // keys.size]
    vp = uk % keys.size
    times: dict = {}
    for q, v, k in zip(qp.tolist(), vp.tolist(), n.tolist()):
        if times.setdefault((q, v), k) != k:
            raise EdgewiseError(f"layer {name!r}: queries at one place attend copies of a token different numbers of "
                                "times")
    for (q, v), k in times.items():
        if k > 1 and keys[v] >= 0 and spatial(int(node_of[v])):
            raise EdgewiseError(f"layer {name!r}: a query attends {k} keys that hold the same position of a map")
    return {key: k for key, k in times.items() if k > 1}


def _statistics_used(module: nn.Module) -> bool:
    """False for a plain layer that :func:`count_statistics` leaves to the tracer whatever its operands: all but
    a BatchNorm without running statistics."""
    return type(module) in (nn.BatchNorm1d, nn.BatchNorm2d) and module.__dict__["_buffers"].get("running_mean") is None


def _plain(v) -> bool:
    """None, a number, or a list/tuple of them (no tensors)."""
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, (int, float, bool))


class _Generated(Scores):
    """A softmax of an input-dependent tensor that is not q·kᵀ, allowed only into a product with values."""


def _weights_refused(fx, where: str) -> str:
    return (f"{fx.name}: softmax of an input-dependent tensor that is not attention scores reaches {where}; edgewise "
            "follows such a softmax only as generated attention weights into a product with the values (a softmax "
            "gate over branches or a classifier output has no pathway counterpart)")


class _Unmapped:
    """The units of a tensor edgewise could not map (the error it met), refused only where they are needed."""

    def __init__(self, error: EdgewiseError):
        self.error = error


def _max_dim(fx):
    """(dim, keepdim) of ``torch.max(x, dim)`` / ``x.max(dim)`` with a whole-number dim, else None."""
    dim = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
    keep = fx.args[2] if len(fx.args) > 2 else fx.kwargs.get("keepdim", False)
    return (dim, bool(keep)) if isinstance(dim, int) and not isinstance(dim, bool) else None


def _shared_relation(qplace, vplace, vlive, allowed, group_of, n_keys: int):
    """The (query place, key place) pairs of attention rows, computed once per distinct row (heads and batch
    rows with the same places and mask give the same pairs), when every channel group holds the same distinct
    rows; else None (then the pairs are compared group by group)."""
    n = qplace.shape[0]
    rows = np.concatenate([qplace, np.where(vlive, vplace, -1),
                           np.packbits(allowed.reshape(n, -1), axis=1).astype(np.int64)], 1)
    first, sig = distinct_rows(rows)
    sets = [unique(sig[group_of == g]) for g in range(int(group_of.max()) + 1)]
    if any(not np.array_equal(s, sets[0]) for s in sets[1:]):
        return None
    b, i, j = np.nonzero(allowed[first] & vlive[first][:, None, :])
    return unique(qplace[first][b, i] * n_keys + vplace[first][b, j])


def _autowrapped(fn) -> bool:
    from ._trace import _timm_autowrap

    return fn in _timm_autowrap()


_WINDOW_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)


def _pair_n(v, n: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _pair_list(p) -> list:
    return list(p) if isinstance(p, (tuple, list)) else [p]


def relation_axes(out_pos: np.ndarray, in_pos: np.ndarray, out_spatial: tuple[int, ...],
                  in_spatial: tuple[int, ...], distinct: bool = False) -> tuple:
    """The spatial op of the pairs (output position, input position), flat indices: per axis a sliding
    ``Window`` or a ``Table`` when the pairs are a product of per-axis relations (attention windows, patch
    merging), else one ``Flat`` op (connection lists on the flattened grid, e.g. a transposed map).
    ``distinct``: no pair is given twice (the caller knows; then they are not made unique)."""
    if len(out_spatial) != len(in_spatial):  # a pool/conv node keeps the rank of its input's grid
        raise EdgewiseError(f"connections from a {len(in_spatial)}-D grid {tuple(in_spatial)} onto a "
                            f"{len(out_spatial)}-D grid {tuple(out_spatial)} cannot be one layer")
    out_c, in_c = np.unravel_index(out_pos, out_spatial), np.unravel_index(in_pos, in_spatial)
    per_axis = []
    for a, lengths in enumerate(zip(out_spatial, in_spatial)):
        m = np.zeros(lengths, dtype=bool)
        m[out_c[a], in_c[a]] = True
        per_axis.append(m)
    product = np.ones(1, dtype=np.int64)
    for m in per_axis:
        product = np.multiply.outer(product, m.sum(1)).reshape(-1)
    n_in, n_out = math.prod(in_spatial), math.prod(out_spatial)
    pairs = None if distinct else unique(out_pos.astype(np.int64) * n_in + in_pos)
    counts = np.bincount(out_pos if distinct else pairs // n_in, minlength=n_out)
    if np.array_equal(counts, product):
        return tuple(_window_or_table(m) for m in per_axis)
    if distinct:  # (sorted runs: see _sets.unique)
        pairs = np.sort(out_pos.astype(np.int64) * n_in + in_pos, kind="stable")
    order = np.argsort(pairs // n_in, kind="stable")
    rows = np.split((pairs % n_in)[order], np.cumsum(counts)[:-1])
    extra = tuple(tuple(int(i) for i in r) for r in rows)
    return (Flat((), extra, tuple(in_spatial), tuple(out_spatial)),)


def _window_or_table(m: np.ndarray):
    """A boolean (n_out, n_in) connection matrix as a zero-padded sliding Window when it is one, else a Table (kept
    per matrix: a transformer's blocks ask for the same few, and both answers are immutable)."""
    key = (m.shape, np.packbits(m).tobytes())
    hit = _AXIS_OPS.get(key)
    if hit is None:
        if len(_AXIS_OPS) >= 256:
            _AXIS_OPS.clear()
        hit = _AXIS_OPS[key] = _find_window_or_table(m)
    return hit


_AXIS_OPS: dict = {}


def _find_window_or_table(m: np.ndarray):
    n_out, n_in = m.shape
    rows = [np.flatnonzero(r) for r in m]
    table = Table(tuple(tuple(int(i) for i in r) for r in rows))
    full = [r for r in rows if r.size]
    if not full:
        return table
    k_max = max(r.size for r in full)
    for stride in range(1, n_in + 1):
        widest = next((o for o, r in enumerate(rows) if r.size == k_max), None)
        r = rows[widest]
        dil = int(np.diff(r).min()) if r.size > 1 else 1
        kernel = k_max if r.size > 1 else 1
        lo = widest * stride - int(r[0])
        if lo < 0:
            continue
        hi = max(0, (n_out - 1) * stride + (kernel - 1) * dil + 1 - n_in - lo)
        w = Window(kernel, stride, dil, (lo, hi), "zeros")
        if w.out_size(n_in) == n_out and np.array_equal(w.matrix(n_in, n_out) > 0, m) and \
                w.matrix(n_in, n_out).max() <= 1:
            return w
        if stride > 4 * k_max:
            break
    return table


def _einsum_operands(fx):
    ops = list(fx.args[1:])
    if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
        ops = list(ops[0])
    if len(ops) != 2:
        raise EdgewiseError(f"{fx.name}: einsum of {len(ops)} operands is not supported")
    return ops


def _einsum_form(equation: str) -> str:
    """``"scores"`` for ``...id,...jd->...ij``, ``"attend"`` for ``...ij,...jd->...id`` (same batch letters)."""
    eq = equation.replace(" ", "")
    lhs, out = eq.split("->")
    a, b = lhs.split(",")
    batch = out[:-2]
    if len(a) == len(b) == len(out) >= 2 and a[:-2] == b[:-2] == batch:
        i, j = out[-2], out[-1]
        if a[-2] == i and b[-2] == j and a[-1] == b[-1] not in out:
            return "scores"
        if a[-2:] == i + b[-2] and b[-1] == j and b[-2] not in out:
            return "attend"
    return "other"

"""More of :class:`edgewise._layout.Layout`: reductions that are not global pools, normalisation statistics
written by hand, softmax gates and linear attention (a mixin, so that these rules sit apart from the rest).

* **Reductions across branches or over some positions.** ``x.sum(dim)`` / ``mean`` / ``amax`` over axes that
  are not all the positions of a channel is the sum of its slices (``x[:, 0] + x[:, 1] + …``): the paths of
  every operand, as for ``+`` (ResNeSt's and SKNet's sum over the radix / the branches). A mean over some
  positions of a map (the same positions for every channel, e.g. the tokens left after LeViT's subsampling)
  is a pool over those positions.
* **Statistics.** The square root (``sqrt``, ``rsqrt``) of such a reduction, reached through per-unit maps
  only (``x²``, ``+ ε``), is a normalisation statistic (RMSNorm written by hand: ``x · rsqrt(mean(x², 1) + ε)``):
  like LayerNorm's, it carries no paths, so a product with it is the identity on the other operand. So is an L2
  norm (``x.norm(dim=…)``), a mean, move or per-unit map of a statistic, and an elementwise op of statistics
  (ConvNeXt V2's global response norm: ``x · (‖x‖ / mean_c ‖x‖)``, the norm over the positions of each channel).
* **Softmax gates.** A softmax of an input-dependent tensor that is not attention scores is followed only as a
  gate: its output may be moved (view, transpose, …) and then only multiply another tensor (or be the weights
  of linear attention). Like ``sigmoid`` it is a per-unit map (its denominator is a statistic), so the
  product has the paths of both operands. Used otherwise (a model's output, a convolution's input) it is refused.
* **Linear attention** ``φ(q) @ (φ(k)ᵀ @ v)``: the product of two input-dependent tensors followed (through
  scaling and casts only, no softmax) by a product with a third on its left is attention without a mask:
  each channel of a query token reads the same channel of the value of every key, once per key.
* **States.** Such a product read by a layer instead (EfficientViM's ``h = x @ abᵀ`` into a 1×1 Conv1d) is the
  state of linear attention: the layer's channel axis holds the values' channels (rows for a convolution,
  columns for a Linear), the other axis the states, which have no units of their own; the state is one unit
  per value channel, the pool of that channel over the contracted positions. Layers, moves, per-unit maps and
  elementwise ops among states keep it a state; a product with another input-dependent tensor over the state
  axis reads it out, once, at every position of that tensor; a sum over the state axis adds its columns.
"""

from __future__ import annotations

import math
import operator

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F

from ._axis import Adaptive, Table
from ._sets import unique
from .errors import EdgewiseError

__all__ = ["LayoutMore"]

_SOFTMAX_FN = {F.softmax, torch.softmax, "softmax"}
_ROOTS = {torch.sqrt, torch.rsqrt, torch.reciprocal, "sqrt", "rsqrt", "reciprocal", "sqrt_", "rsqrt_"}
_L2 = {torch.norm, torch.linalg.vector_norm, "norm"}  # the root of a sum of squares: a statistic at once
_CASTS = {"float", "to", "contiguous", "double", "half", "bfloat16", "type_as"}
_SCALE = {operator.mul, operator.truediv, torch.mul, torch.div, "mul", "div"}
_PRODUCT_FN = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_MAX_SLICES = 256  # a sum of more slices than this (a mean over many channels) is refused, not enumerated


def _watched(args, *tables) -> bool:
    """Whether some operand is in one of ``tables`` (units, gates, states)."""
    tables = [t for t in tables if t]
    return bool(tables) and any(a in t for a in args for t in tables)


def _elementwise(target) -> str | None:
    from ._trace import _ADD, _ADD_METHODS, _MUL, _MUL_METHODS

    return "add" if target in _ADD or target in _ADD_METHODS else "mul" if target in _MUL or target in _MUL_METHODS \
        else None


def _tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class _Pending:
    """A reduction over axes that are not all positions of a channel, not yet made into Graph nodes: a
    statistic if it reaches sqrt/rsqrt through per-unit maps, else the sum of its slices."""

    def __init__(self, ids: torch.Tensor, dims: list[int], shape: tuple[int, ...], op: str):
        self.ids, self.dims, self.shape, self.op = ids, dims, shape, op


class _Statistic:
    """A normalisation statistic (the root of a reduction): carries no paths."""


class _Fake:
    """A stand-in fx node for Layout methods that read operands from ``fx.args`` (ids tensors pass as is)."""

    def __init__(self, a, b, target):
        self.args, self.kwargs, self.target, self.name = (a, b), {}, target, str(target)


class LayoutMore:
    """The rules above; ``dispatch`` is called by ``Layout.handle`` before its own cases."""

    # ------------------------------------------------------------------ entry point
    def dispatch(self, fx, name: str, args, module):
        """True/False when handled here (as ``handle`` returns), None to go on with ``handle``'s own cases."""
        gates = self.__dict__.setdefault("_gates", set())
        states = self.__dict__.setdefault("_states", set())
        target = fx.target
        if not _watched(args, self.units, gates, states) and not (
                isinstance(module, nn.Softmax) or (module is None and (
                    target in _SOFTMAX_FN or target in _REDUCE or target in _MATMUL or target in _L2))):
            return None  # canonical operands of an op none of these rules is about: the tracer's own way
        if any(isinstance(self.units.get(a), (_Pending, _Statistic)) for a in args):
            return self._on_statistic(fx, name, args, module)
        if module is None and target in _L2 and fx.args and self._live(fx.args[0]):
            self.units[fx] = _Statistic()  # an L2 norm (ConvNeXt V2's GRN: over the positions of each channel)
            return True
        if any(a in gates for a in args):
            self._on_gate(fx, name, args, module)
        first = fx.args[0] if fx.args else None
        if isinstance(first, torch.fx.Node) and isinstance(self.units.get(first), _Raw) and (
                isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)) or (module is None and target is F.linear)) \
                and self.units[first].allowed.ndim <= 3:  # with heads: scores mixed across heads (_mix_scores)
            self._make_state(first, name, "rows" if isinstance(module, (nn.Conv1d, nn.Conv2d)) else "columns")
        if any(a in states for a in args):
            done = self._on_state(fx, name, args, module)
            if done is not None:
                return done
        live = [a for a in args if self._live(a) and not isinstance(self.units.get(a), (Scores, tuple))]
        is_softmax = isinstance(module, nn.Softmax) or (module is None and target in _SOFTMAX_FN)
        if is_softmax and first in live and not self._generated(fx):  # (into a product: generated weights)
            self._set(fx, self._ids(first))  # a gate: the identity, usable only as a factor
            gates.add(fx)
            return True
        if isinstance(module, (nn.Conv1d, nn.Conv2d)) and first in self.units and isinstance(self.units[first],
                                                                                        torch.Tensor) and \
                not (self.units[first].ndim == module.weight.ndim and self.units[first].shape[0] > 1):
            return self._pointwise_rows(fx, name, module)  # (a batch axis of heads: Layout._batched_conv)
        kind = _elementwise(target) if module is None else None
        if kind and len(live) == 2 and len(fx.args) >= 2 and all(a in live for a in fx.args[:2]) and \
                len(self._meta_shape(fx)) > 2 + len(self.nodes["input"].shape) - 1:
            ops = [self._ids(a) for a in fx.args[:2]]  # more axes than (batch, channel, *positions)
            if not self._pairable(ops):
                return self._merged_or_unmapped(fx, name, kind, ops)
        if kind and len(fx.args) >= 2 and all(isinstance(a, torch.fx.Node) and a in live for a in fx.args[:2]) \
                and any(a in self.units for a in fx.args[:2]):
            ops = [self._ids(a) for a in fx.args[:2]]
            if not self._pairable(ops):
                if self._pair_channels(fx, name, kind, ops):  # (a GLU's halves on tokens with a class token)
                    return True
                fake = _Fake(*ops, target)
                try:
                    self._broadcast_binary(fake, name, kind, ops)
                except EdgewiseError:  # a token layout with heads, (B, heads, N, C): tokens moved last
                    return self._merged_or_unmapped(fx, name, kind, ops)
                out = self.canon.pop(fake, None)
                self._set(fx, self.ids_of(out) if out is not None else self.units.pop(fake))
                return True
        if module is None and target in _REDUCE and first in live:
            return self._reduce_more(fx, name)
        if module is None and target in _MATMUL and len(fx.args) >= 2 and all(
                isinstance(a, torch.fx.Node) for a in fx.args[:2]):
            a, b = fx.args[0], fx.args[1]
            raw = self._raw_product(b)
            if raw is not None and a in live:  # q @ (kᵀ @ v): linear attention
                self._set(fx, self.attend(self._ids(a), raw.b, None, name))
                return True
            if a in live and b in live and (a in self.units or b in self.units):
                ia, ib = self._ids(a), self._ids(b)
                if bool((ia > 0).any()) and bool((ib > 0).any()):
                    self.units[fx] = _Raw(ia, torch.ones(self._meta_shape(fx), dtype=torch.bool), ib, fx)
                    return True
        return None

    # ------------------------------------------------------------------ gates
    def _on_gate(self, fx, name, args, module) -> None:
        """A softmax gate may be moved, cast or dropped out (still a gate), multiply a tensor or be the
        weights of linear attention; anything else is refused."""
        from ._layout import _MATMUL, MOVE_FUNCTIONS, MOVE_METHODS, MOVE_MODULES

        t = fx.target
        if module is not None:
            if isinstance(module, (nn.Dropout, nn.Identity) + MOVE_MODULES):
                self._gates.add(fx)
                return
        elif t in MOVE_FUNCTIONS or t in MOVE_METHODS or t in _CASTS or t in (F.dropout, "dropout", "clone"):
            self._gates.add(fx)
            return
        elif t in _PRODUCT_FN or t in _MATMUL:
            live = [a for a in fx.args[:2] if isinstance(a, torch.fx.Node) and self._live(a)]
            if len(live) == 2:
                return
        what = type(module).__name__ if module is not None else getattr(t, "__name__", str(t))
        raise EdgewiseError(
            f"layer {name!r}: the output of a softmax that is not attention (its input is not q @ kᵀ) reaches "
            f"{what}; edgewise follows such a softmax only as a gate, a factor of a product with another "
            "input-dependent tensor (split attention, selective kernels) or the key side of linear attention")

    def check_output(self, fx) -> None:
        """Refuse a model output that is a softmax gate (a classifier's softmax) or a statistic; a pending
        reduction becomes the sum of its slices."""
        if isinstance(self.units.get(fx), _Pending):
            self._materialise(fx, fx.name)
        if fx in self.__dict__.get("_gates", ()):
            raise EdgewiseError(
                f"the output {fx.name!r} is a softmax of an input-dependent tensor; edgewise follows a softmax only "
                "as attention's choice of keys or as a gate multiplying another tensor. Analyse the layer before it "
                "(layer=...).")
        if isinstance(self.units.get(fx), _Statistic):
            raise EdgewiseError(f"the output {fx.name!r} is a normalisation statistic (the square root of a mean, "
                                "or an L2 norm), which carries no paths. Analyse the layer before it (layer=...).")

    def _pointwise_rows(self, fx, name, module):
        """A 1×1 convolution (stride 1, no groups) of a tensor whose rows are not channels of one map (CoaT's
        ``aggregate``: a Conv1d over the class tokens of three stages): every output channel is the sum of the
        input rows, element by element (one edge per weight). None: the rows are a map after all."""
        ids = self.units[fx.args[0]]
        try:
            self.canon[fx.args[0]] = self.canonical(ids, name)
            del self.units[fx.args[0]]
            return None
        except EdgewiseError as e:
            error = e
        n = ids.ndim - 2
        simple = all(k == 1 for k in _tuple(module.kernel_size)) and all(s == 1 for s in _tuple(module.stride)) \
            and all(p == 0 for p in _tuple(module.padding)) if not isinstance(module.padding, str) else False
        rows, outs = ids.shape[1], module.out_channels
        if not simple or module.groups != 1 or n < 0 or ids.shape[0] != 1:
            raise error
        try:  # rows that are the channels of vectors (a state of linear attention): a Linear over axis 1
            self._set(fx, self.project(ids.movedim(1, -1), outs, name, type(module).__name__).movedim(-1, 1))
            return True
        except EdgewiseError:
            pass
        if rows * outs > 4096 or (rows == 1 and outs > 1):
            raise error
        made = []
        for o in range(outs):
            acc = ids[:, 0]
            for i in range(1, rows):
                acc = self.combine(acc, ids[:, i], f"{name}:{o}" if outs > 1 else name, "add")
            made.append(acc)
        self._set(fx, torch.stack(made, 1))
        return True

    # ------------------------------------------------------------------ states of linear attention
    def _make_state(self, a, name: str, axis: str) -> None:
        """``A @ B`` (both input-dependent) read by a layer: the state of linear attention. The layer's channel
        axis (rows for a convolution, columns for a Linear) holds the values' channels, the other axis the
        states (the weights' channels), which have no units of their own: every state holds, per value channel,
        the pool of that channel over the contracted positions (each read once)."""
        raw: _Raw = self.units[a]
        values = raw.a if axis == "rows" else raw.b.transpose(-1, -2)  # (…, channels, positions)
        lead, c, other = tuple(values.shape[:-2]), values.shape[-2], raw.allowed.shape[-1 if axis == "rows" else -2]
        if lead != (1,):
            raise EdgewiseError(f"layer {name!r}: a product of two input-dependent tensors with heads read by a "
                                "layer; edgewise maps such a linear-attention state only without heads")
        pooled = self._some_positions(values.reshape(c, values.shape[-1]), f"{name}:state", "sum")
        if pooled is None:
            raise EdgewiseError(f"layer {name!r}: a product of two input-dependent tensors read by a layer, whose "
                                "value rows are not one channel of one map each; edgewise cannot map this state")
        ids = pooled.reshape(1, c, 1).expand(1, c, other)
        self.units[a] = ids if axis == "rows" else ids.transpose(-1, -2)
        self._states.add(a)

    def _on_state(self, fx, name, args, module):
        """Ops on a state: layers, moves, per-unit maps and elementwise ops among states keep it one; a product
        with another input-dependent tensor over the state axis reads it out at that tensor's positions."""
        from ._layout import _MATMUL, MOVE_FUNCTIONS, MOVE_METHODS, MOVE_MODULES, _REDUCE
        from ._trace import _IDENTITY_METHODS, _is_identity_function, _shape_preserving

        t, states = fx.target, self._states
        live = [a for a in args if self._live(a)]
        others = [a for a in live if a not in states]
        if module is None and t in _MATMUL and len(fx.args) >= 2 and len(others) == 1:
            return self._read_state(fx, name)
        if module is not None:
            ok = isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Dropout, nn.Identity) + MOVE_MODULES) or \
                _shape_preserving(module)
        else:
            ok = t in MOVE_FUNCTIONS or t in MOVE_METHODS or _is_identity_function(t) or t in _IDENTITY_METHODS \
                or t is F.linear or (_elementwise(t) is not None and not others)
            if t in _REDUCE:
                return None  # a sum over the states: the sum of its slices, no longer a state
        if not ok:
            what = type(module).__name__ if module is not None else getattr(t, "__name__", str(t))
            raise EdgewiseError(f"layer {name!r}: the state of linear attention (a product of two input-dependent "
                                f"tensors read by a layer) reaches {what}; edgewise follows it through layers, "
                                "moves, per-unit maps and elementwise ops among states into a product that reads "
                                "it out")
        states.add(fx)
        return None

    def _read_state(self, fx, name) -> bool:
        """``state @ w`` (or ``w @ state``) with ``w`` input-dependent: every position of ``w``'s free axis reads
        each unit of the state once (the weights carry no paths); a broadcast of the state over that map."""
        a, b = fx.args[0], fx.args[1]
        left = a in self._states
        s_ids, w_ids = self._ids(a if left else b), self._ids(b if left else a)
        if not left:
            s_ids, w_ids = s_ids.transpose(-1, -2), w_ids.transpose(-1, -2)
        # s_ids (1, C, S) repeats its units along S; w_ids (1, S, N): N positions of one map, in order
        if s_ids.ndim != 3 or s_ids.shape[0] != 1 or not bool((s_ids == s_ids[..., :1]).all()):
            raise EdgewiseError(f"layer {name!r}: a linear-attention state read out over an axis it does not repeat")
        which, local, const = self._decode(w_ids[0, 0])
        n = w_ids.shape[-1]
        if const.any() or not (which == which[0]).all():
            raise EdgewiseError(f"layer {name!r}: a linear-attention state read out by weights that are not one map")
        grid = self._spatial(int(which[0]))
        size = math.prod(grid) if grid else 1
        if not grid or size != n or not np.array_equal(local % size, np.arange(n)):
            raise EdgewiseError(f"layer {name!r}: a linear-attention state read out by weights whose positions are "
                                "not a feature map in order")
        vec = self.canonical(s_ids[:, :, 0], name)
        c = self.nodes[vec].shape[0]
        col = self._add(f"{name}:state", "reshape", (vec,), (c,) + (1,) * len(grid), op="state")
        out = self._add(name, "pool", (col,), (c, *grid), axes=tuple(Table(((0,),) * n_ax) for n_ax in grid),
                        op="linear attention (read-out)")  # every position reads the one state position
        ids = self.ids_of(out).reshape(1, c, n)
        self._set(fx, ids if left else ids.transpose(-1, -2))
        return True

    # ------------------------------------------------------------------ linear attention
    def _raw_product(self, b):
        """The raw ``A @ B`` (both input-dependent) that ``b`` is, through casts and scaling only; else None."""
        from ._layout import _MATMUL

        node = b
        while isinstance(node, torch.fx.Node) and isinstance(self.units.get(node), _Raw):
            raw = self.units[node]
            if raw.fx is node and node.target in _MATMUL:
                return raw
            if node.target in _CASTS or node.target in _SCALE or node.target in (F.dropout, "dropout"):
                nxt = [a for a in node.all_input_nodes if self.units.get(a) is raw]
                if not nxt:
                    return None
                node = nxt[0]
                continue
            return None
        return None

    # ------------------------------------------------------------------ reductions
    def _products_reached(self, fx: torch.fx.Node) -> list:
        """The matrix products ``fx``'s output reaches through dropout, casts, scaling by constants and data
        movement only."""
        from ._layout import _MATMUL, MOVE_FUNCTIONS, MOVE_METHODS

        passing = {F.dropout, "dropout", "float", "to", "type_as", "contiguous"}
        scaling = {"mul", "div", torch.mul, torch.div, operator.mul, operator.truediv}
        stack, seen, found = list(fx.users), set(), []
        while stack:
            u = stack.pop()
            if u in seen:
                continue
            seen.add(u)
            if u.target in _MATMUL or u.target is torch.einsum:
                found.append(u)
            elif (u.op == "call_module" and isinstance(self.modules.get(u.target), (nn.Dropout, nn.Identity))) or (
                    u.op != "call_module" and (u.target in passing or u.target in MOVE_FUNCTIONS or
                                               u.target in MOVE_METHODS)) or (
                    u.target in scaling and not any(self._live(a) for a in u.all_input_nodes if a is not fx)):
                stack.extend(u.users)
        return found

    def _generated(self, fx: torch.fx.Node) -> bool:
        """Whether a softmax's output is attention weights generated without keys (VOLO's outlook attention):
        it reaches a matrix product with the values whose result no further product reads. (Linear attention's
        ``softmax(k)ᵀ @ v`` is read by ``q @ ·``: there the softmax is a gate on the key side.)"""
        products = self._products_reached(fx)
        return bool(products) and not any(self._products_reached(p) for p in products)

    def _merged_or_unmapped(self, fx, name, kind, ops) -> bool:
        """:meth:`_merged_binary`, or, where it cannot pair the operands, units refused only where they are
        needed (a term of attention logits needs none: HaloNet's relative positions)."""
        from ._layout import _Unmapped

        try:
            self._merged_binary(fx, name, kind, *ops)
        except EdgewiseError as e:
            self.units[fx] = _Unmapped(e)
        return True

    def _reduce_more(self, fx, name):
        """A reduction on units: a global pool as before (None: the tracer's own case for a canonical map),
        else a pool over some positions, or a pending reduction (a statistic or the sum of its slices)."""
        from ._layout import _REDUCE

        first = fx.args[0]
        ids = self._ids(first)
        dims = fx.args[1] if len(fx.args) > 1 else fx.kwargs.get("dim")
        dims = list(range(ids.ndim)) if dims is None else dims if isinstance(dims, (tuple, list)) else [dims]
        dims = sorted(int(d) % ids.ndim for d in dims)
        if first not in self.units:  # a canonical map: all its spatial axes is the tracer's global pool
            if dims == list(range(2, ids.ndim)) and ids.ndim > 2:
                return None
        shape = self._meta_shape(fx)
        keep = [d for d in range(ids.ndim) if d not in dims]
        rows = ids.permute(*keep, *dims).reshape(-1, math.prod(ids.shape[d] for d in dims))
        if first in self.units:
            which, _, const = self._decode(rows[:1, :1])
            per_row = 1 if const.all() else max(math.prod(self._spatial(int(which[0, 0]))), 1)
            if rows.shape[1] == per_row:  # as many elements as positions: _reduce's global pool (it checks the rest)
                try:
                    return self._reduce(fx, name)
                except (EdgewiseError, ValueError):
                    pass
        pooled = self._some_positions(rows, name, _REDUCE[fx.target])
        if pooled is not None:
            self._set(fx, pooled.reshape(shape))
            return True
        live_rows = rows.numpy()
        ordered = np.sort(np.where(live_rows > 0, live_rows, -np.arange(live_rows.shape[1]) - 1.0), axis=1)
        if first in self.units and not (ordered[:, 1:] == ordered[:, :-1]).any():  # groups of distinct units
            try:  # positions grouped differently per output (Hiera's unrolled 2×2 pools)
                return self._reduce(fx, name)
            except (EdgewiseError, ValueError):
                pass
        self.units[fx] = _Pending(ids, dims, shape, _REDUCE[fx.target])
        return True

    def _some_positions(self, rows: torch.Tensor, name: str, op: str):
        """Rows (one per output element) that read the same positions of one map, each in one channel: a pool
        over those positions (ids of the output elements), else None."""
        which, local, const = self._decode(rows)
        if const.any() or not (which == which[:1, :1]).all():
            return None
        w = int(which[0, 0])
        ndim = len(self.nodes["input"].shape) - 1
        while len(self._spatial(w)) != ndim and self.nodes[self._names[w]].kind == "reshape" and \
                self.nodes[self._names[w]].op == "view":  # a flat view of a map (for a Conv1d): the map itself
            src = self.nodes[self.nodes[self._names[w]].inputs[0]]
            if src.shape[0] != self.nodes[self._names[w]].shape[0] or math.prod(src.shape) != math.prod(
                    self.nodes[self._names[w]].shape):
                break
            w = self._index(src.name)
        spatial = self._spatial(w)
        if not spatial or len(spatial) != ndim:
            return None
        size = math.prod(spatial)
        chan, pos = local // size, np.sort(local % size, axis=1)
        if not (chan == chan[:, :1]).all() or not (pos == pos[:1]).all() or unique(pos[0]).size != pos.shape[1]:
            return None
        from ._layout import relation_axes

        src = self._names[w]
        c = self.nodes[src].shape[0]
        one = (1,) * len(spatial)
        if pos.shape[1] == size:
            axes, what = tuple(Adaptive() for _ in spatial), f"global {op}"
        else:
            axes = relation_axes(np.zeros(pos.shape[1], dtype=np.int64), pos[0], one, spatial)
            what = f"{op} over some positions"
        node = self._add(f"{name}:pool", "pool", (src,), (c, *one), axes=axes, op=what)
        vec = self._add(f"{name}:flat", "reshape", (node,), (c,), op="flatten")
        return self._unit_ids(self._index(vec), chan[:, 0])

    def _materialise(self, a, name: str) -> None:
        """Turn a pending reduction held by fx node ``a`` into the sum of its slices."""
        p: _Pending = self.units[a]
        n = math.prod(p.ids.shape[d] for d in p.dims)
        if n > _MAX_SLICES:
            raise EdgewiseError(f"layer {name!r}: a {p.op} over {n} elements across channels or branches (not a "
                                "global pool); edgewise maps such a sum only up to "
                                f"{_MAX_SLICES} terms, and its square root only as a normalisation statistic")
        acc = None
        for index in np.ndindex(*[p.ids.shape[d] for d in p.dims]):  # each slice keeps its axes (keepdim)
            where = dict(zip(p.dims, index))
            part = p.ids[tuple(slice(where[d], where[d] + 1) if d in where else slice(None) for d in range(p.ids.ndim))]
            acc = part if acc is None else self.combine(acc, part, f"{name}:sum", "add")
        self.units[a] = acc.reshape(p.shape)

    def combine(self, a: torch.Tensor, b: torch.Tensor, name: str, kind: str) -> torch.Tensor:
        """ids of ``a + b`` (kind ``add``) or ``a · b`` (``mul``) of two ids tensors, broadcast."""
        fake = _Fake(a, b, "sum" if kind == "add" else "mul")
        deep = len(torch.broadcast_shapes(a.shape, b.shape)) > 2 + len(self.nodes["input"].shape) - 1
        if deep and not self._pairable([a, b]):  # more axes than (batch, channel, *positions)
            self._merged_binary(fake, name, kind, a, b)
        else:
            try:
                self._binary(fake, name, kind)
            except EdgewiseError:
                self._merged_binary(fake, name, kind, a, b)
        if fake in self.canon:
            name = self.canon.pop(fake)
            return self.ids_of(name).reshape(torch.broadcast_shapes(a.shape, b.shape))
        return self.units.pop(fake)

    def _merged_binary(self, fx, name, kind, a, b) -> None:
        """An elementwise op of operands with more axes than (batch, channel, *positions) (ResNeSt's
        (B, radix, C, H, W)): the leading axes merged into channels, then broadcast as usual."""
        nsp = len(self.nodes["input"].shape) - 1
        shape = tuple(torch.broadcast_shapes(a.shape, b.shape))
        extra = len(shape) - 2 - nsp
        error = EdgewiseError(f"layer {name!r} combines units of two operands that edgewise cannot pair element "
                              f"by element, in a tensor of shape {shape}")
        if shape[0] != 1:
            raise error
        a, b = (o.reshape((1,) * (len(shape) - o.ndim) + tuple(o.shape)) for o in (a, b))
        full_a, full_b = a.expand(shape), b.expand(shape)
        same = [d for d in range(1, len(shape)) if shape[d] > 1 and all(
            bool((t == t.narrow(d, 0, 1)).all()) for t in (full_a, full_b))]
        if same:  # axes along which both operands repeat their units (a state of linear attention): once
            squeeze = tuple(0 if d in same else slice(None) for d in range(len(shape)))
            got = self.combine(full_a[squeeze], full_b[squeeze], name, kind)
            self._set(fx, got.reshape([1 if d in same else n for d, n in enumerate(shape)]).expand(shape))
            return
        both = (a > 0) & (b > 0)
        if not bool(both.all()):  # a constant operand element (a padded class token) leaves the other as it is
            full_a, full_b = a.expand(shape), b.expand(shape)
            both = both.expand(shape)
            box = tuple(slice(int(i.min()), int(i.max()) + 1) if i.numel() else slice(0, 0)
                        for i in (torch.nonzero(both.reshape(shape[d], -1).any(1) if d == 0 else
                                                both.movedim(d, 0).reshape(shape[d], -1).any(1)).reshape(-1)
                                  for d in range(len(shape))))
            inside = torch.zeros(shape, dtype=torch.bool)
            inside[box] = True
            if not bool(both[box].all()) or bool((both & ~inside).any()):
                raise error
            out = torch.where(full_a > 0, full_a, full_b).clone()
            inner = _Fake(full_a[box], full_b[box], fx.target)
            self._merged_binary(inner, name, kind, full_a[box], full_b[box])
            got = self.canon.pop(inner, None)
            out[box] = self.ids_of(got).reshape(out[box].shape) if got is not None else self.units.pop(inner)
            self._set(fx, out)
            return
        if extra >= 1:  # (B, radix, C, *positions): the leading axes are channels
            lead = shape[1:2 + extra]
            ops = [o.expand(*o.shape[:1], *lead, *o.shape[2 + extra:]).reshape(1, math.prod(lead),
                                                                                *o.shape[2 + extra:]) for o in (a, b)]
            perm, grid = tuple(range(len(shape))), None
        else:  # the one axis as long as the operands' grid holds the positions: moved last, the rest channels
            w, _, const = self._decode(a[a > 0][:1] if bool((a > 0).any()) else b[b > 0][:1])
            if const.all():
                raise error
            grid = self._spatial(int(w[0]))
            axes = [d for d in range(1, len(shape)) if grid and shape[d] == math.prod(grid)]
            if len(axes) > 1 and math.prod(grid) > 1:  # (heads, tokens, channels), as many channels as tokens:
                axes = [d for d in axes if self._positions_along(a.expand(shape), d)]  # where positions change
            if math.prod(grid) == 1:  # one position: any axis of length 1 holds it
                axes = axes[:1]
            if len(axes) != 1:
                raise error
            perm = (0, *[d for d in range(1, len(shape)) if d != axes[0]], axes[0])
            rest = [shape[d] for d in perm[1:-1]]
            ops = [o.expand(shape).permute(*perm).reshape(1, math.prod(rest), *grid) for o in (a, b)]
        inner = _Fake(ops[0], ops[1], fx.target)
        self._broadcast_binary(inner, name, kind, ops)
        out = self.canon.pop(inner, None)
        out = self.ids_of(out) if out is not None else self.units.pop(inner)
        out = out.reshape(tuple(shape[d] for d in perm))
        back = [perm.index(d) for d in range(len(shape))]
        self._set(fx, out.permute(*back).contiguous())

    def _positions_along(self, ids: torch.Tensor, axis: int) -> bool:
        """Whether every element's position depends on its index along ``axis`` alone (a token axis)."""
        which, local, const = self._decode(ids.movedim(axis, 0).reshape(ids.shape[axis], -1))
        sizes = np.array([max(math.prod(self._spatial(int(n))), 1) for n in range(len(self._names))])
        pos = np.where(const, -1, local % sizes[np.maximum(which, 0)])
        first = np.where(const, -1, pos).max(1, keepdims=True)
        return bool(((pos == first) | const).all()) and unique(first).size == first.size

    # ------------------------------------------------------------------ statistics
    def _on_statistic(self, fx, name, args, module):
        """Ops on a pending reduction or a statistic."""
        from ._trace import _IDENTITY_METHODS, _is_identity_function
        from ._layout import MOVE_FUNCTIONS, MOVE_METHODS

        t = fx.target
        kinds = {a: self.units.get(a) for a in args}
        stats = [a for a, u in kinds.items() if isinstance(u, (_Pending, _Statistic))]
        others = [a for a in args if a not in stats and self._live(a)]
        unary = module is None and not others
        if unary and len(stats) == 1:
            s = kinds[stats[0]]
            if t in _ROOTS and fx.args[0] is stats[0]:
                self.units[fx] = _Statistic()
                return True
            per_unit = _is_identity_function(t) or t in _IDENTITY_METHODS or t in _SCALE or t in (
                operator.add, operator.sub, torch.add, torch.sub, "add", "sub", operator.pow, torch.pow, "pow")
            if per_unit and (isinstance(s, _Statistic) or tuple(self._meta_shape(fx)) == s.shape):
                if t in (operator.pow, torch.pow, "pow") and isinstance(fx.args[1] if len(fx.args) > 1 else None,
                                                                     torch.fx.Node):
                    pass
                else:
                    self.units[fx] = s
                    return True
            if isinstance(s, _Statistic) and (t in MOVE_FUNCTIONS or t in MOVE_METHODS or t in _REDUCE):
                self.units[fx] = s  # (a mean of statistics: GRN's over the channels)
                return True
        if module is None and not others and all(isinstance(kinds[a], _Statistic) for a in stats) and (
                t in _SCALE or _elementwise(t)):
            self.units[fx] = _Statistic()  # statistics combined: GRN's norm divided by its mean
            return True
        if module is None and len(others) == 1 and all(isinstance(kinds[a], _Statistic) for a in stats) and (
                t in _PRODUCT_FN or t in (operator.truediv, torch.div, "div")) and fx.args[0] in others + stats:
            divisor = fx.args[1] if len(fx.args) > 1 else None
            if t not in (operator.truediv, torch.div, "div") or divisor in stats:
                self._set(fx, self._ids(others[0]))  # times / divided by a statistic: the identity
                if others[0] in self.__dict__.get("_gates", ()):
                    self._gates.add(fx)
                return True
        if all(isinstance(kinds[a], _Pending) for a in stats):
            for a in stats:
                self._materialise(a, name)
            return None  # the sum of the slices goes on as units
        what = type(module).__name__ if module is not None else getattr(t, "__name__", str(t))
        raise EdgewiseError(f"layer {name!r}: a normalisation statistic (the square root of a mean, or an L2 norm) "
                            f"reaches {what}; edgewise follows it only as a factor or divisor of another tensor (it "
                            "carries no paths)")


from ._layout import _MATMUL, _REDUCE, Scores  # noqa: E402  (defined before Layout imports this module)


class _Raw(Scores):
    """``A @ B`` of two input-dependent operands, not yet through a softmax: attention scores, or the context
    of linear attention (then ``b``, the ids of B, are the values)."""

    def __init__(self, q, allowed, b: torch.Tensor, fx):
        super().__init__(q, allowed)
        self.a, self.b, self.fx = q, b, fx

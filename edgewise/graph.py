"""The Graph: a model's structure with the geometry of every layer.

Engines (receptive fields, pathways, ...) are interpreters over this graph;
nothing else in edgewise looks at module types or names.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Iterator

from .errors import EdgewiseError

__all__ = ["Node", "Graph", "KINDS"]

#: what a node does to positions and channels
KINDS = {
    "input": "the model input",
    "const": "a tensor that does not depend on the input (parameter, buffer)",
    "identity": "per-unit op: activation, normalisation, dropout, scalar arithmetic",
    "conv": "convolution: every in-channel of a group to every out-channel, per tap",
    "pool": "per-channel spatial op: pooling, explicit padding, up-sampling, spatial mean",
    "linear": "full connection from every input unit to every output unit",
    "reshape": "same units in another shape (flatten, view, squeeze)",
    "add": "elementwise sum/difference (broadcasting): paths of both operands",
    "mul": "elementwise product/quotient (broadcasting): paths of both operands",
    "cat": "concatenation along channels",
    "select": "channels picked from one input (``pick``), at their own positions",
}


@dataclass(frozen=True)
class Node:
    """One tensor-producing operation.

    Attributes:
        name: dotted module path from ``named_modules()`` (``layer4.2.conv1``),
            or the torch.fx node name for functional ops (``add_3``). A module
            called more than once gets ``#k`` appended on the k-th extra call.
        kind: one of :data:`KINDS`.
        inputs: names of the nodes this one reads (tensors only).
        shape: output shape without the batch axis: ``(C, *spatial)`` or ``(F,)``.
        axes: per spatial axis, the operation along it (``edgewise._axis``);
            set for ``conv`` and ``pool`` nodes.
        groups: convolution groups.
        op: what it was in the model (``Conv2d``, ``torch.cat``, ...).
        pick: for ``select`` nodes, the input channel of every output channel.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    axes: tuple = ()
    groups: int = 1
    op: str = ""
    pick: tuple[int, ...] = ()

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def is_padding(self) -> bool:
        """An explicit padding layer (a 1-tap, stride-1 window on every axis): it adds positions, not paths."""
        from ._axis import Window

        return self.kind == "pool" and bool(self.axes) and all(
            isinstance(a, Window) and a.kernel == 1 and a.stride == 1 for a in self.axes)


@dataclass
class Graph:
    """A traced model: nodes in topological order, one input, one output.

    Example:
        >>> g = edgewise.trace(edgewise.nets.from_spec("3*conv3", (1, 16)), (1, 16))
        >>> [n.name for n in g][:3]
        ['input', 'conv1', 'relu1']
    """

    nodes: dict[str, Node]
    input: str
    output: str
    input_shape: tuple[int, ...]
    model_name: str = "model"
    padding: str | None = None  # the padding scheme of a spec net (None: as the model defines it)
    norm_stats: str = "ignore"  # whether normalisation statistics are connections ("count") or not ("ignore")
    norm_layers: tuple = ()  # (layer, op) of every normalisation whose statistics depend on the input
    scales: dict = field(default_factory=dict)  # products of a layer's output and one parameter: node -> parameter
    _consumers: dict[str, list[str]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ndim(self) -> int:
        """Number of spatial axes of the input (1 or 2)."""
        return len(self.input_shape) - 1

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def __getitem__(self, name: str) -> Node:
        if name in self.nodes:
            return self.nodes[name]
        close = difflib.get_close_matches(name, list(self.nodes), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise EdgewiseError(
            f"no layer named {name!r} in {self.model_name}.{hint} "
            "List the layers with `edgewise rf MODEL` or `[n.name for n in edgewise.trace(model, shape)]`."
        )

    def copy(self) -> "Graph":
        """The same graph with its own node table (nodes themselves are immutable)."""
        return dataclasses.replace(self, nodes=dict(self.nodes))

    def cut(self, names) -> "Graph":
        """This graph with each node of ``names`` reading nothing (a constant): no path passes through it. For a
        layer whose output does not depend on its input (a normalisation of weight 0 outputs its bias), the counts
        of the cut graph are those of the paths that can carry a gradient."""
        names = tuple(dict.fromkeys(names))
        for n in names:
            if self[n].kind == "input":
                raise EdgewiseError(f"cannot cut {n!r}: it is the input of {self.model_name}")
        if not names:
            return self
        out = self.copy()
        for n in names:
            out.nodes[n] = dataclasses.replace(out.nodes[n], kind="const", inputs=())
        return out

    def consumers(self, name: str) -> list[str]:
        """Names of the nodes that read ``name``'s output."""
        if self._consumers is None:  # (built on first use: a copy of a cached trace often never asks)
            self._consumers = {n: [] for n in self.nodes}
            for node in self.nodes.values():
                for src in node.inputs:
                    self._consumers[src].append(node.name)
        return self._consumers[name]

    def target(self, layer: str | None) -> str:
        """The node an analysis ends at: ``layer`` (checked) or, by default, the output."""
        return self[layer].name if layer is not None else self.output

    def grid(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Per-axis (input lengths, output lengths) of the spatial op at a conv/pool node; a
        reduction that drops its axes (``x.mean([2, 3])``) counts them as length 1."""
        node, src = self.nodes[name], self.nodes[self.nodes[name].inputs[0]]
        n_out = node.spatial if len(node.shape) == len(src.shape) else (1,) * len(src.spatial)
        return src.spatial, n_out

    def positions_behind(self, name: str) -> int:
        """How many positions the map behind ``name`` has, looking back through flattening and per-unit nodes (a
        Linear reading ``flatten`` → ``Dropout`` of a 6×6 map: 36); 1 for a vector a global layer made."""
        nd = self.nodes[name]
        while nd.kind in ("reshape", "identity") and len(nd.inputs) == 1 and len(nd.shape) == 1:
            nd = self.nodes[nd.inputs[0]]
        return math.prod(nd.spatial) if len(nd.shape) > 1 else 1

    def upstream(self, name: str) -> set[str]:
        """Names of ``name`` and every node it depends on."""
        seen, stack = set(), [name]
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.nodes[cur].inputs)
        return seen

    def path_layers(self, name: str | None = None) -> tuple[int, int, int]:
        """(fewest, most, all): how many weighted layers (convolutions, Linear layers) the paths from the input to
        ``name`` (default: the output) pass, at fewest and at most, and how many such layers lie on those paths.
        Where fewest = most = all, every path passes the same layers (a chain of them)."""
        target = self.target(name)
        live = {self.input}
        depth: dict[str, tuple[int, int]] = {self.input: (0, 0)}
        for nd in self:
            ins = [depth[i] for i in nd.inputs if i in live]
            if nd.name == self.input or not ins:
                continue
            step = nd.kind in ("conv", "linear")
            live.add(nd.name)
            depth[nd.name] = (min(lo for lo, _ in ins) + step, max(hi for _, hi in ins) + step)
        if target not in depth:
            raise EdgewiseError(f"layer {target!r} of {self.model_name} does not depend on the input")
        on = self.upstream(target) & live
        return (*depth[target], sum(self.nodes[n].kind in ("conv", "linear") for n in on))

    def __repr__(self) -> str:
        lines = [f"Graph({self.model_name}, input {self.input_shape}, {len(self)} nodes)"]
        for n in self:
            src = ", ".join(n.inputs)
            lines.append(f"  {n.name:<28} {n.kind:<8} {n.op:<22} {str(n.shape):<18} <- {src}")
        return "\n".join(lines)

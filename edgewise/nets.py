"""Spec strings that build real networks: ``from_spec("16*conv3", (1, 64))``.

Grammar (comma-separated layers; spaces ignored)::

    layer   := [N*] item
    item    := convK[/sS][/dD][/cC] | maxpoolK[/sS] | avgpoolK[/sS] | gap | gmp | fcN | res(layer, ...)

``convK`` is a K-tap convolution (stride S, dilation D, C out-channels; the
default width otherwise), followed by the activation. Pools have stride K
unless ``/sS`` is given. ``gap`` is a global average pool, ``gmp`` a global max pool, ``fcN`` flattens
and applies a Linear layer with N outputs. ``res(...)`` adds its input to the
output of its layers (a 1×1 projection is inserted when the shapes differ).
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn as nn

from ._pad import Pad  # defined below nets and _trace, which both use it; re-exported here
from ._trace import parse_shape
from .errors import EdgewiseError

__all__ = ["from_spec", "axis_slice", "Pad", "Residual", "PADDINGS", "DEFAULT_SPEC", "DEFAULT_INPUT", "QUESTION_SPEC",
           "padding_amounts"]

#: padding schemes a spec net can use: name → (mode of out-of-image taps, amount)
PADDINGS = {
    "valid": ("zeros", "none"),
    "same": ("zeros", "same"),
    "full": ("zeros", "full"),
    "circular": ("circular", "same"),
    "reflect": ("reflect", "same"),
    "replicate": ("replicate", "same"),
    "symmetric": ("symmetric", "same"),
}

#: the built-in default network: a small VGG-style 2-D net
DEFAULT_SPEC = "2*conv3, maxpool2, 2*conv3, maxpool2, 3*conv3"
DEFAULT_INPUT = (1, 64, 64)
#: the network in the question that edgewise exists to answer
QUESTION_SPEC = "conv64/s4, conv64/s4"

GRAMMAR = (
    "spec grammar: comma-separated layers, each `[N*]item` with item one of "
    "convK[/sS][/dD][/cC], maxpoolK[/sS], avgpoolK[/sS], gap, gmp, fcN, res(layer, ...); "
    "e.g. '16*conv3', 'conv64/s4, conv64/s4', '2*conv3, maxpool2, res(conv3, conv3), gap, fc10'"
)


def padding_amounts(padding: str, kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis for a named scheme: valid 0, same (k−1)·d split, full (k−1)·d each side."""
    mode, amount = PADDINGS[padding]
    total = (kernel - 1) * dilation
    if amount == "none":
        return 0, 0
    if amount == "full":
        return total, total
    return total // 2, total - total // 2


class Residual(nn.Module):
    """``x + body(x)``, with a 1×1 projection of ``x`` when the shapes differ."""

    def __init__(self, body: nn.Module, proj: nn.Module | None = None):
        super().__init__()
        self.body, self.proj = body, proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + (x if self.proj is None else self.proj(x))


# ----------------------------------------------------------------------- parser

@dataclass
class _Tok:
    kind: str
    args: dict
    children: list
    pos: int
    text: str


_ITEM = re.compile(r"(conv|maxpool|avgpool|fc)(\d+)((?:/[sdc]\d+)*)$|gap$|gmp$")


def _fail(spec: str, pos: int, length: int, why: str):
    caret = " " * pos + "^" * max(1, length)
    raise EdgewiseError(f"bad spec: {why}\n  {spec}\n  {caret}\n{GRAMMAR}")


def _split(spec: str, start: int, end: int) -> list[tuple[int, int]]:
    """Top-level comma-separated spans of spec[start:end]."""
    spans, depth, begin = [], 0, start
    for i in range(start, end):
        c = spec[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                _fail(spec, i, 1, "unmatched ')'")
        elif c == "," and depth == 0:
            spans.append((begin, i))
            begin = i + 1
    if depth:
        _fail(spec, start, end - start, "unclosed '('")
    spans.append((begin, end))
    return spans


def _parse(spec: str, start: int, end: int) -> list[_Tok]:
    toks = []
    for a, b in _split(spec, start, end):
        while a < b and spec[a] == " ":
            a += 1
        while b > a and spec[b - 1] == " ":
            b -= 1
        text = spec[a:b]
        if not text:
            _fail(spec, a, 1, "empty layer")
        reps = 1
        m = re.match(r"(\d+)\s*\*\s*", text)
        if m:
            reps = int(m.group(1))
            if reps < 1:
                _fail(spec, a, m.end(), "repeat count must be at least 1")
            a += m.end()
            text = spec[a:b]
        if text.startswith("res(") and text.endswith(")"):
            tok = _Tok("res", {}, _parse(spec, a + 4, b - 1), a, text)
        else:
            mm = _ITEM.match(text.lower())
            if not mm:
                _fail(spec, a, b - a, f"unknown layer {text!r}")
            if text.lower() in ("gap", "gmp"):
                tok = _Tok(text.lower(), {}, [], a, text)
            else:
                opts = dict(s=None, d=1, c=None)
                for o in re.findall(r"/([sdc])(\d+)", mm.group(3)):
                    opts[o[0]] = int(o[1])
                if mm.group(1) in ("maxpool", "avgpool", "fc") and (opts["d"] != 1 or opts["c"] is not None):
                    _fail(spec, a, b - a, f"{mm.group(1)} takes no /d or /c option")
                if mm.group(1) == "fc" and opts["s"]:
                    _fail(spec, a, b - a, "fc takes no /s option")
                if int(mm.group(2)) < 1 or (opts["s"] is not None and opts["s"] < 1) or opts["d"] < 1:
                    _fail(spec, a, b - a, "sizes, strides and dilations must be at least 1")
                if opts["c"] is not None and opts["c"] < 1:
                    _fail(spec, a, b - a, f"{text!r} asks for {opts['c']} channels; /cN must be at least 1 "
                                          "(leave /c out for the default width)")
                tok = _Tok(mm.group(1), dict(k=int(mm.group(2)), **opts), [], a, text)
        from . import limits

        limits.check_layers(len(toks) + reps * _count(tok))  # before a list of `reps` entries is built
        toks.extend([tok] * reps)
    return toks


def _count(tok) -> int:
    """Layers a token stands for (a residual block: its body's)."""
    return 1 + sum(_count(t) for t in tok.children) if tok.kind == "res" else 1


# ----------------------------------------------------------------------- builder

class _Builder:
    def __init__(self, spec, shape, padding, width, activation, bias=True):
        self.spec, self.padding, self.width, self.activation, self.bias = spec, padding, width, activation, bias
        self.channels, self.size = shape[0], list(shape[1:])  # size None once flattened
        self.ndim = len(shape) - 1
        self.counts: dict[str, int] = {}

    def name(self, kind: str) -> str:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return f"{kind}{self.counts[kind]}"

    def layers(self, toks: list[_Tok], last_is_output: bool) -> list[tuple[str, nn.Module]]:
        out = []
        for i, tok in enumerate(toks):
            final = last_is_output and i == len(toks) - 1
            out.extend(self.layer(tok, final))
        return out

    def _need_spatial(self, tok: _Tok):
        if self.size is None:
            _fail(self.spec, tok.pos, len(tok.text), f"{tok.kind} after fc: the feature map is already flattened")

    def _shrink(self, tok: _Tok, k: int, s: int, d: int, pads: tuple[int, int]) -> None:
        new = [(n + pads[0] + pads[1] - (k - 1) * d - 1) // s + 1 for n in self.size]
        if min(new) < 1:
            _fail(self.spec, tok.pos, len(tok.text),
                  f"{tok.text} gets a {'x'.join(map(str, self.size))} input, too small for its "
                  f"{(k - 1) * d + 1}-wide window with padding '{self.padding}' (use fewer layers, a larger "
                  "input or padding='same')")
        self.size = new

    def layer(self, tok: _Tok, final: bool) -> list[tuple[str, nn.Module]]:
        conv = nn.Conv1d if self.ndim == 1 else nn.Conv2d
        if tok.kind == "conv":
            self._need_spatial(tok)
            k, d = tok.args["k"], tok.args["d"]
            s = tok.args["s"] or 1
            out_ch = tok.args["c"] or self.width
            mode, _ = PADDINGS[self.padding]
            lo, hi = padding_amounts(self.padding, k, d)
            layers = []
            if lo == hi and mode != "symmetric":
                c = conv(self.channels, out_ch, k, s, padding=lo, dilation=d, padding_mode=mode, bias=self.bias)
            else:
                layers.append((self.name("pad"), Pad((lo, hi) * self.ndim, mode)))
                c = conv(self.channels, out_ch, k, s, padding=0, dilation=d, bias=self.bias)
            self._shrink(tok, k, s, d, (lo, hi))
            self.channels = out_ch
            name = self.name("conv")
            layers.append((name, c))
            if self.activation and not final:
                layers.append((name.replace("conv", self.activation), _activation(self.activation)))
            return layers
        if tok.kind in ("maxpool", "avgpool"):
            self._need_spatial(tok)
            k, s = tok.args["k"], tok.args["s"] or tok.args["k"]
            pool = {("maxpool", 1): nn.MaxPool1d, ("maxpool", 2): nn.MaxPool2d,
                    ("avgpool", 1): nn.AvgPool1d, ("avgpool", 2): nn.AvgPool2d}[tok.kind, self.ndim]
            self._shrink(tok, k, s, 1, (0, 0))
            return [(self.name(tok.kind), pool(k, s))]
        if tok.kind in ("gap", "gmp"):
            self._need_spatial(tok)
            self.size = [1] * self.ndim
            pool = {("gap", 1): nn.AdaptiveAvgPool1d, ("gap", 2): nn.AdaptiveAvgPool2d,
                    ("gmp", 1): nn.AdaptiveMaxPool1d, ("gmp", 2): nn.AdaptiveMaxPool2d}[tok.kind, self.ndim]
            return [(self.name(tok.kind), pool(1))]
        if tok.kind == "fc":
            layers = []
            if self.size is not None:
                layers.append((self.name("flatten"), nn.Flatten()))
                self.channels *= int(torch.tensor(self.size).prod())
                self.size = None
            name = self.name("fc")
            layers.append((name, nn.Linear(self.channels, tok.args["k"])))
            self.channels = tok.args["k"]
            if self.activation and not final:
                layers.append((name.replace("fc", self.activation), _activation(self.activation)))
            return layers
        # residual block
        self._need_spatial(tok)
        before = (self.channels, list(self.size))
        name = self.name("res")
        body = nn.Sequential(OrderedDict(self.layers(tok.children, last_is_output=False)))
        if self.size is None:
            _fail(self.spec, tok.pos, len(tok.text), "res(...) cannot contain fc layers")
        proj = None
        if (self.channels, self.size) != before:
            strides = {b // a for a, b in zip(self.size, before[1]) if a}
            stride = strides.pop() if len(strides) == 1 else None
            if not stride or [-(-b // stride) for b in before[1]] != self.size:
                _fail(self.spec, tok.pos, len(tok.text),
                      f"res(...) maps {before[1]} to {self.size}: the shortcut cannot be matched by a strided "
                      "1x1 projection (use padding='same' inside residual blocks)")
            proj = conv(before[0], self.channels, 1, stride)
        return [(name, Residual(body, proj))]


def _activation(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}
    if name not in acts:
        raise EdgewiseError(f"unknown activation {name!r}; choose one of {', '.join(acts)} or None")
    return acts[name]()


def from_spec(spec: str, input_shape, padding: str = "same", width: int = 8,
              activation: str | None = "relu", seed: int | None = 0, bias: bool = True) -> nn.Sequential:
    """Build a real network from a spec string (see the module docstring for the grammar).

    Args:
        spec: e.g. ``"16*conv3"`` or ``"conv64/s4, conv64/s4"``.
        input_shape: C×L (1-D) or C×H×W (2-D); fixes the dimensionality.
        padding: one of :data:`PADDINGS` (valid, same, full, circular, reflect, replicate, symmetric).
        width: out-channels of convolutions without ``/cC``.
        activation: ``"relu"``, ``"tanh"``, ``"gelu"``, ``"sigmoid"`` or None (a linear net).
        seed: seed for the initial weights (None: torch's global generator).
        bias: whether convolutions have a bias (without one, zero stays zero: full padding is then
            exactly translation-equivariant on a zero background).

    Example:
        >>> net = from_spec("3*conv6", (1, 16), padding="valid")
        >>> net(torch.zeros(1, 1, 16)).shape
        torch.Size([1, 8, 1])
    """
    if not isinstance(spec, str) or not spec.strip():
        raise EdgewiseError(f"bad spec {spec!r}: expected a non-empty string. {GRAMMAR}")
    if padding not in PADDINGS:
        raise EdgewiseError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    if width < 1:
        raise EdgewiseError(f"width must be at least 1, got {width}")
    shape = parse_shape(input_shape)
    toks = _parse(spec, 0, len(spec))
    from . import limits

    limits.check_layers(sum(_count(t) for t in toks), shape, width)
    builder = _Builder(spec, shape, padding, width, activation, bias)
    fork = torch.random.fork_rng() if seed is not None else contextlib.nullcontext()
    with fork:
        if seed is not None:  # (built on the CPU: its generator alone, as edgewise._init._seeder says why)
            torch.random.default_generator.manual_seed(seed)
        net = nn.Sequential(OrderedDict(builder.layers(toks, last_is_output=True)))
    net.spec, net.padding, net.input_shape = spec, padding, shape
    return net



def axis_slice(graph, axis: int = -1, max_layers: int | None = None) -> nn.Sequential:
    """The 1-D network one spatial axis of a traced model sees along its main path (for diagrams).

    Follows the main path from the output back to the input: at each node, among its inputs as large as it (not a
    squeeze-excitation gate multiplied into it), the one with the most sliding windows behind it (a residual's
    branch, not its identity; the convolved half of a channel split). Keeps the convolutions and
    pools (their kernel, stride, dilation, padding and padding mode along ``axis``) and rebuilds them as
    one-channel ``Conv1d`` / ``MaxPool1d`` / ``AdaptiveAvgPool1d`` layers, each with an explicit :class:`Pad`;
    branches that the main path skips (a residual's identity) are left out. Layers on the path that mix positions
    other than by windows (attention, transposed or resampling layers) cannot be drawn as a chain: the slice leaves
    them out and names those below its last layer in ``left_out`` (its counts are then not the model's).
    ``layer_names`` maps each child to the model's layer it comes from (``layer2_0_conv2`` → ``layer2.0.conv2``).

    Args:
        graph: a traced :class:`edgewise.Graph`.
        axis: the spatial axis (-1: columns, or the only axis in 1-D).
        max_layers: keep only the first this many layers.

    Example:
        >>> g = edgewise.trace(from_spec("2*conv3, maxpool2", (1, 16, 16)), (1, 16, 16))
        >>> [name for name, _ in axis_slice(g).named_children()]
        ['conv1_pad', 'conv1', 'conv2_pad', 'conv2', 'maxpool1']
    """
    from ._axis import Adaptive, Window

    def mixes(node) -> bool:  # a layer that moves paths between positions: not a 1-tap, stride-1 window
        op = node.axes[axis] if node.kind in ("conv", "pool") and node.axes else None
        return op is not None and not (isinstance(op, Window) and (op.kernel, op.stride) == (1, 1))

    behind: dict[str, int] = {}  # the most such layers on any path from the input to each node
    for node in graph:
        behind[node.name] = mixes(node) + max((behind[i] for i in node.inputs if i in behind), default=0)
    chain, name = [], graph.output
    while name != graph.input:
        node = graph[name]
        if node.kind in ("conv", "pool") and node.axes:
            chain.append(node)
        live = [i for i in node.inputs if graph[i].kind != "const"]
        if not live:
            break
        # the main path: among the inputs as large as the node (x in torchvision's squeeze-excitation `scale * x`,
        # not the pooled gate; else all), the one with the most layers behind it (ShuffleNet's convolved half of a
        # channel split, not the half it passes on; a residual's branch, not its identity, attention's too), the
        # first of equals
        same = [i for i in live if graph[i].shape[1:] == node.shape[1:]] or live
        name = max(same, key=lambda i: behind[i])
    layers: list[tuple[str, nn.Module]] = []  # named after the model's layers (dots are not allowed)
    left_out: list[tuple[int, str]] = []  # (layers drawn below it, name) of each layer that cannot be drawn
    origin: dict[str, str] = {}  # each child's name -> the model's layer it comes from
    for node in reversed(chain):
        op, name = node.axes[axis], node.name.replace(".", "_").replace("#", "_")
        origin[name] = origin[f"{name}_pad"] = node.name
        if not isinstance(op, (Window, Adaptive)):
            left_out.append((sum(not isinstance(m, Pad) for _, m in layers), node.name))
        if isinstance(op, Window):
            if op.pad != (0, 0):
                layers.append((f"{name}_pad", Pad(op.pad, op.mode)))
            if op.kernel == 1 and op.stride == 1:  # an explicit padding layer: its Pad is all it does
                continue
            layers.append((name, nn.Conv1d(1, 1, op.kernel, op.stride, dilation=op.dilation, bias=False)
                           if node.kind == "conv" else
                           nn.MaxPool1d(op.kernel, op.stride, dilation=op.dilation, ceil_mode=op.ceil_mode)))
        elif isinstance(op, Adaptive):
            layers.append((name, nn.AdaptiveAvgPool1d(node.spatial[axis] if len(node.shape) > 1 else 1)))
    if not any(not isinstance(m, Pad) for _, m in layers):
        raise EdgewiseError(f"{graph.model_name} has no sliding-window layer along its spatial axis {axis}")
    if max_layers is not None:
        kept, count = [], 0
        for name, m in layers:
            if not isinstance(m, Pad):
                if count == max_layers:
                    break
                count += 1
            kept.append((name, m))
        layers = kept
    while isinstance(layers[-1][1], Pad):  # padding with no layer left to read it
        layers.pop()
    names = [n for n, _ in layers]
    drawn_layers = sum(not isinstance(m, Pad) for _, m in layers)
    unique = [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]
    net = nn.Sequential(OrderedDict((u, m) for u, (_, m) in zip(unique, layers)))
    net.padding = graph.padding
    net.left_out = [name for below, name in left_out if below < drawn_layers]
    net.layer_names = {u: origin[n] for u, n in zip(unique, names)}  # (dots are not allowed in a child's name)
    return net

"""The even-input-size advice, solved as congruences in one graph walk, against the brute-force search it
replaced (kept here as the reference): the same even lengths, length by length, on real models, random traced
nets (strided, dilated, pooled with ceil_mode, residual, concatenated, transposed, resampled, flattened) and
random hand-built graphs whose branches meet at some lengths only."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn as nn
import torchvision
from hypothesis import given, settings, strategies as st

from edgewise import nets, trace
from edgewise._axis import Adaptive, Flat, Resample, Table, Transposed, Window
from edgewise.geometry import _even_lengths, _even_sizes
from edgewise.graph import Graph, Node


# ------------------------------------------------------------------ the reference: one graph walk per length

def _sizes_along(graph: Graph, axis: int, n: int) -> dict[str, int] | None:
    """Length of ``axis`` at every node for input length ``n``; None if the model would not run."""
    sizes: dict[str, int] = {}
    for nd in graph:
        if nd.kind == "const":
            continue
        if nd.kind == "input":
            sizes[nd.name] = n
            continue
        if nd.kind in ("conv", "pool") and any(isinstance(a, (Table, Flat)) for a in nd.axes):
            return None
        ins = [sizes[i] for i in nd.inputs if i in sizes]
        traced_in = graph[nd.inputs[0]].spatial
        if nd.kind in ("conv", "pool") and len(nd.shape) == len(graph[nd.inputs[0]].shape) and len(nd.axes) <= axis:
            return None
        if nd.kind in ("conv", "pool") and len(nd.shape) == len(graph[nd.inputs[0]].shape):
            ax = nd.axes[axis]
            out = ax.out_size(ins[0]) if isinstance(ax, (Window, Transposed)) else (
                nd.spatial[axis] if isinstance(ax, Adaptive) or ax.scale is None else int(ins[0] / ax.scale))
            if out < 1 or (isinstance(ax, Window) and ax.mode in ("reflect",) and max(ax.pad) >= ins[0]):
                return None
        elif nd.kind in ("add", "mul", "cat"):
            spatial = {s for s in ins if s != 1} if nd.kind != "cat" else set(ins)
            if len(spatial) > 1:
                return None
            out = spatial.pop() if spatial else 1
        elif nd.kind in ("identity", "select"):
            out = ins[0]
        else:
            if traced_in and ins[0] != traced_in[axis]:
                return None
            out = 1
        sizes[nd.name] = out
    return sizes


def _even(graph: Graph, axis: int, n: int) -> bool:
    sizes = _sizes_along(graph, axis, n)
    if sizes is None:
        return False
    for nd in graph:
        if nd.kind in ("conv", "pool") and isinstance(nd.axes[axis] if nd.axes else None, Window):
            if nd.axes[axis].unread(sizes[nd.inputs[0]], sizes[nd.name]) > 0:
                return False
    return True


def _even_sizes_reference(graph: Graph, count: int = 3, radius: int = 256) -> list[tuple[int, ...]]:
    per_axis = []
    for a, n in enumerate(graph.input_shape[1:]):
        cands = sorted(range(max(1, n - radius), n + radius + 1), key=lambda m: (abs(m - n), m))
        per_axis.append([m for m in cands if _even(graph, a, m)][:count])
    k = min(len(f) for f in per_axis)
    return [tuple(f[i] for f in per_axis) for i in range(k)]


def _agree(graph: Graph, radius: int = 48, count: int = 3) -> None:
    for a, n in enumerate(graph.input_shape[1:]):
        lo, hi = max(1, n - radius), n + radius
        assert _even_lengths(graph, a, lo, hi) == [m for m in range(lo, hi + 1) if _even(graph, a, m)], (a, graph)
    assert _even_sizes(graph, count, radius) == _even_sizes_reference(graph, count, radius)


# ------------------------------------------------------------------ real models

@pytest.mark.parametrize("name, shape", [("resnet50", (3, 224, 224)), ("resnet18", (3, 200, 171)),
                                         ("squeezenet1_0", (3, 97, 97)), ("densenet121", (3, 96, 96)),
                                         ("mobilenet_v2", (3, 97, 120)), ("googlenet", (3, 96, 96))])
def test_torchvision_models_match_the_search(name, shape):
    kwargs = {"init_weights": False} if name == "googlenet" else {}
    graph = trace(torchvision.models.get_model(name, weights=None, **kwargs), shape)
    _agree(graph, radius=256)


@pytest.mark.parametrize("spec, shape", [("conv3/s2, maxpool3/s2, conv5/d2", (1, 33, 30)),
                                         ("3*conv3/s2, gap, fc3", (1, 40)), ("conv3, conv3/s2, fc4", (1, 12, 12))])
def test_spec_nets_match_the_search(spec, shape):
    _agree(trace(nets.from_spec(spec, shape), shape), radius=64)


# ------------------------------------------------------------------ random traced nets

class _Res(nn.Module):
    def __init__(self, body: nn.Module, short: nn.Module):
        super().__init__()
        self.body, self.short = body, short

    def forward(self, x):
        return self.body(x) + self.short(x)


class _Cat(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module):
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


def _random_layer(rng: random.Random, d: int) -> nn.Module:
    conv, pad_cls = (nn.Conv1d, nn.ConvTranspose1d, nn.MaxPool1d, nn.AvgPool1d), (nn.ZeroPad1d, nn.ReflectionPad1d)
    if d == 2:
        conv, pad_cls = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d), (nn.ZeroPad2d, nn.ReflectionPad2d)
    Conv, Tconv, Max, Avg = conv
    k, s = rng.randint(1, 5), rng.randint(1, 3)
    kind = rng.choice(["conv", "conv", "conv", "max", "avg", "res", "cat", "tconv", "up", "pad"])
    if kind == "conv":
        return Conv(2, 2, k, stride=s, dilation=rng.randint(1, 2), padding=rng.randint(0, k // 2 + 1),
                    padding_mode=rng.choice(["zeros", "zeros", "reflect", "circular"]))
    if kind == "max":
        k = max(k, 2)
        return Max(k, stride=s, padding=rng.randint(0, k // 2), dilation=rng.randint(1, 2),
                   ceil_mode=rng.random() < 0.5)
    if kind == "avg":
        k = max(k, 2)
        return Avg(k, stride=s, padding=rng.randint(0, k // 2), ceil_mode=rng.random() < 0.5)
    if kind == "res" and rng.random() < 0.3:  # an even kernel padded on one side: the branches do not line up
        return _Res(nn.Sequential(pad_cls[0]((1, 0) * d), Conv(2, 2, 2)), nn.Identity())
    if kind == "res":
        body = Conv(2, 2, k, stride=s, padding=rng.randint(0, k // 2 + 1))
        short = Conv(2, 2, 1, stride=s) if s > 1 or rng.random() < 0.5 else nn.Identity()
        return _Res(body, short)
    if kind == "cat":
        k2 = rng.choice([1, 3, 5])
        return _Cat(Conv(2, 1, k, stride=s, padding=k // 2), Conv(2, 1, k2, stride=s, padding=k2 // 2))
    if kind == "tconv":
        s = rng.randint(1, 3)
        return Tconv(2, 2, k, stride=s, padding=rng.randint(0, (k - 1) // 2), output_padding=rng.randint(0, s - 1))
    if kind == "up":
        return nn.Upsample(scale_factor=rng.choice([2, 3]), mode="nearest")
    pads = tuple(rng.randint(0, 2) for _ in range(2 * d))
    return rng.choice(pad_cls)(pads)


def _random_net(seed: int, d: int) -> tuple[nn.Module, tuple[int, ...]] | None:
    """A random stack (None when it does not run at its traced size)."""
    rng = random.Random(seed)
    layers = [nn.Conv1d(1, 2, 1) if d == 1 else nn.Conv2d(1, 2, 1)]
    layers += [_random_layer(rng, d) for _ in range(rng.randint(1, 5))]
    head = rng.choice(["none", "gap", "flatten"])
    shape = (1,) + tuple(rng.randint(9, 40) for _ in range(d))
    if rng.random() < 0.5:  # a square input: rows and columns are often one problem
        shape = (1,) + (shape[1],) * d
    net = nn.Sequential(*layers)
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, *shape))
    except RuntimeError:
        return None
    if head == "gap":
        net.append(nn.AdaptiveAvgPool1d(1) if d == 1 else nn.AdaptiveAvgPool2d(1))
        net.append(nn.Flatten())
        net.append(nn.Linear(2, 3))
    elif head == "flatten":
        net.append(nn.Flatten())
        net.append(nn.Linear(out[0].numel(), 3))
    return net, shape


@settings(derandomize=True, max_examples=120, deadline=None)
@given(seed=st.integers(0, 10 ** 6), d=st.sampled_from([1, 2]))
def test_random_traced_nets_match_the_search(seed, d):
    made = _random_net(seed, d)
    if made is None:
        return
    net, shape = made
    _agree(trace(net, shape))


# ------------------------------------------------------------------ random hand-built graphs

def _random_graph(seed: int) -> Graph:
    """A random 1-D DAG: windows of every kind (asymmetric pads, reflect, ceil_mode), transposed windows,
    adaptive pools, resampling by a factor, and adds/cats of any two earlier nodes, so that branches often
    meet at a few lengths only (or where one of them is 1); the shapes are those of the traced length."""
    rng = random.Random(seed)
    n0 = rng.randint(5, 40)
    nodes = {"input": Node("input", "input", (), (1, n0))}
    names = ["input"]

    def add(kind, inputs, axes=()):
        name = f"n{len(nodes)}"
        ref = _sizes_along(Graph({**nodes, name: Node(name, kind, inputs, (1, 1), axes)}, "input", name, (1, n0)),
                          0, n0)
        length = ref[name] if ref and name in ref else rng.randint(1, 3)
        nodes[name] = Node(name, kind, inputs, (1, length), axes)
        names.append(name)

    for _ in range(rng.randint(1, 8)):
        src = rng.choice(names[-3:])
        r = rng.random()
        if r < 0.45:
            k = rng.randint(1, 5)
            w = Window(k, rng.randint(1, 4), rng.randint(1, 2), (rng.randint(0, 3), rng.randint(0, 3)),
                       rng.choice(["zeros", "zeros", "reflect"]), rng.random() < 0.4)
            add(rng.choice(["conv", "pool"]), (src,), (w,))
        elif r < 0.55:
            s = rng.randint(1, 3)
            add("conv", (src,), (Transposed(rng.randint(1, 4), s, 1, rng.randint(0, 1), rng.randint(0, s - 1)),))
        elif r < 0.62:
            add("pool", (src,), (Adaptive(),))
        elif r < 0.7:
            add("pool", (src,), (Resample("nearest", False, rng.choice([0.5, 1 / 3, 2.0, 0.4])),))
        elif r < 0.92 and len(names) > 1:
            add(rng.choice(["add", "mul", "cat"]), (src, rng.choice(names)))
        else:
            add("identity", (src,))
    if rng.random() < 0.3:
        add("reshape", (names[-1],))
    return Graph(nodes, "input", names[-1], (1, n0))


@settings(derandomize=True, max_examples=300, deadline=None)
@given(seed=st.integers(0, 10 ** 6))
def test_random_graphs_match_the_search(seed):
    _agree(_random_graph(seed), radius=40, count=4)


def test_branches_that_meet_at_one_length():
    """An add of a same-length branch and a valid 3-tap branch runs only where the latter is 1 long (n = 3)."""
    nodes = {"input": Node("input", "input", (), (1, 3)),
             "a": Node("a", "conv", ("input",), (1, 3), (Window(3, 1, 1, (1, 1)),)),
             "b": Node("b", "conv", ("input",), (1, 1), (Window(3),)),
             "add": Node("add", "add", ("a", "b"), (1, 3))}
    graph = Graph(nodes, "input", "add", (1, 3))
    assert _even_lengths(graph, 0, 1, 50) == [3]
    _agree(graph)

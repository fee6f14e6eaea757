"""The fast paths of tracing and counting against the slow ones they replace.

* shapes from layer hyper-parameters (``edgewise._shapes``) against the meta-device pass;
* the architecture fingerprint: every change that can change a trace changes it, weights do not;
* the trace cache: shared between model objects as copies, bounded, never handing out a mutated Graph;
* counting: strided-slice window sums and in-place sums bit for bit as the column-group / pairwise ones.
"""

from __future__ import annotations

import contextlib
import dis
import gc
import math
import operator

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise import _fx_fast, _meta, _shapes, _trace
from edgewise._axis import Window
from edgewise._counts import AxisMap, ExactCounts, ScaledCounts
from edgewise._counts.common import _slice_sum, _sparse_sum, window_taps
from edgewise._counts.scaled import Scaled
from edgewise._fingerprint import GraphCache, fingerprint
from edgewise._pad import Pad
from edgewise.errors import EdgewiseError
from edgewise.testing.random_nets import random_net

SETTINGS = settings(derandomize=True, max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pytestmark = [pytest.mark.filterwarnings("ignore:Using padding='same'"), pytest.mark.usefixtures("fx_path")]


@contextlib.contextmanager
def torch_kernels():
    """The shape passes with every op run by torch (``edgewise._meta``'s results made without running it off)."""
    made = _meta.result, _meta.module_result
    _meta.result = _meta.module_result = lambda *a: None
    try:
        yield
    finally:
        _meta.result, _meta.module_result = made


def slow_trace(model, shape, **kw):
    """A trace with shapes from the meta-device pass only (the fallback of the fast shapes and of the shape
    tracer's own values), every op run by torch."""
    orig = _trace.infer_shapes, _trace._take_traced
    _trace.infer_shapes = _trace._take_traced = lambda *a: False
    try:
        with torch_kernels():
            return _trace._trace(model, tuple(shape), None, **kw)
    finally:
        _trace.infer_shapes, _trace._take_traced = orig


def node_shapes(fx_graph) -> dict:
    """Every node's recorded (shape, dtype) and shape arithmetic (with its type), by name."""
    def one(n):
        meta, value = n.meta.get("tensor_meta"), n.meta.get("value")
        return (None if meta is None else (tuple(meta.shape), meta.dtype)), type(value), value
    return {n.name: one(n) for n in fx_graph.nodes}


def meta_pass_shapes(model, fx_graph, shape) -> dict:
    """:func:`node_shapes` after the meta-device pass on ``fx_graph`` (whatever was recorded before dropped)."""
    for n in fx_graph.nodes:
        n.meta.pop("tensor_meta", None)
        n.meta.pop("value", None)
    with torch_kernels():
        _trace._propagate_shapes(model, fx_graph, shape, torch.float32, "cpu")
    return node_shapes(fx_graph)


def zoo(name: str, **kw) -> nn.Module:
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.get_model(name, weights=None, **kw)


class Stem(nn.Module):
    """Shapes the fast pass knows: strided, dilated, grouped, ceil-mode, 'same'/'valid', Flatten, functions."""

    def __init__(self, two_d: bool = True):
        super().__init__()
        conv, pool, bn = (nn.Conv2d, nn.MaxPool2d, nn.BatchNorm2d) if two_d else (nn.Conv1d, nn.MaxPool1d,
                                                                                    nn.BatchNorm1d)
        avg, adaptive = (nn.AvgPool2d, nn.AdaptiveAvgPool2d) if two_d else (nn.AvgPool1d, nn.AdaptiveAvgPool1d)
        self.a = conv(2, 6, 5, stride=2, padding=3, dilation=2, padding_mode="reflect")
        self.b = conv(6, 6, 3, padding="same", groups=3, padding_mode="circular")
        self.bn = bn(6)
        self.p = pool(3, stride=2, padding=1, ceil_mode=True)
        self.q = avg(2, ceil_mode=True)
        self.c = conv(12, 4, 1, padding="valid")
        self.g = adaptive(3)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 3 ** (2 if two_d else 1), 5)

    def forward(self, x):
        y = torch.relu(self.bn(self.b(self.a(x))))
        y = self.p(y) + 1.0
        y = torch.cat([self.q(y), self.q(y * 2)], 1)
        return self.fc(self.flat(self.g(F.relu(self.c(y)))))


class ChannelsLast(nn.Module):
    """A ConvNeXt-like block: permutes (as method, function and keyword), LayerNorm as a layer and as
    ``F.layer_norm`` with weights, Linear over channels, a layer scale and stochastic depth."""

    def __init__(self, c: int = 4):
        super().__init__()
        torchvision = pytest.importorskip("torchvision")
        self.conv, self.norm = nn.Conv2d(c, c, 3, padding=1, groups=c), nn.LayerNorm(c)
        self.up, self.act, self.down = nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c)
        self.scale, self.depth = nn.Parameter(torch.full((c, 1, 1), 0.1)), torchvision.ops.StochasticDepth(0.1, "row")
        self.w, self.b = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x):
        y = self.down(self.act(self.up(self.norm(self.conv(x).permute(0, 2, 3, 1)))))
        x = x + self.depth(self.scale * torch.permute(y, [0, 3, 1, 2]))
        y = F.layer_norm(x.permute([0, 2, 3, 1]), (4,), weight=self.w, bias=self.b, eps=1e-6)
        return y.permute(dims=(0, 3, 1, 2))


class BadSizes(nn.Module):
    """Shape arithmetic that torch refuses when it runs: a view that does not fit, no chunks, a division by 0, a failed
    assertion, an axis expanded that is not 1, an index past the end."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, x):
        if self.op == "view":
            return x.view(x.size(0), 5, -1)
        if self.op == "chunk":
            return x.chunk(0, 1)[0]
        if self.op == "assert":
            torch._assert(x.shape[1] == 5, "wrong size")
            return x
        if self.op == "expand":
            return x.expand(1, 3, -1, -1)
        if self.op == "index":
            return x[:, 9]
        return x.view(x.size(1) // 0)


class Sizes(nn.Module):
    """Shape arithmetic the fast pass follows: ``x.size()`` whole, by axis and sliced, ``//``, ``*``, ``+``, ``-``,
    ``view``/``reshape`` with those sizes (and -1, and a tuple), ``transpose``, ``chunk`` into unequal parts, a mean
    over given axes."""

    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.size()
        y = y.view(b, 2, c // 2, h, w - 0 * 1)
        y = torch.transpose(y, 1, 2).contiguous().reshape((b, -1, h + 1 - 1, y.size(-1)))
        first, second = y.chunk(4, dim=1)[1:3]  # parts of 2, 2, 2 channels
        y = torch.cat([first.view(b, y.size()[1:2][0] // 3, h, -1), second], 1) * 1.0
        return self.head(y) + y.mean([1], keepdim=True).transpose(2, 3).transpose(3, 2)


class Parts(nn.Module):
    """Tensors split into parts (``torch.split`` by a size and by sizes, ``Tensor.split``, ``unbind`` from the front
    and from the back), ``%`` on sizes, a pad and a crop by traced numbers (as Swin pads to whole windows), a roll,
    and functional pools (stride None, keyword arguments, ceil mode)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        odd = x.shape[-1] % 2
        x = F.pad(x, (0, odd, 0, 0, 0, 0), value=1.0)  # (a traced width; the channel axis padded by nothing)
        a, b = torch.split(x, [2, 4], dim=1)
        c, d = b.split(2, 1)
        v = x.view(x.shape[0], 3, 2, x.shape[2], x.shape[3])
        y = self.conv(a) + c * d + torch.unbind(v, 1)[odd] + v.unbind(-4)[2]
        y = torch.roll(F.pad(y, (0, 2))[:, :, : x.shape[2], : x.shape[3]], shifts=(1, -odd), dims=(2, 3))
        return F.max_pool2d(F.avg_pool2d(y, 3, None, 1), kernel_size=2, stride=1, padding=1, ceil_mode=True)


class Ops(nn.Module):
    """Functional padding (zeros, widths that crop, reflection), group norm, ``mul``/``add`` as methods, ``/``, a
    matrix product, an ``nn.Softmax``, ``F.linear``, ``torch.stack``, ``F.normalize`` and
    ``F.scaled_dot_product_attention`` (with a mask) over the positions, and ``F.interpolate`` by a factor and to a
    traced size."""

    def __init__(self):
        super().__init__()
        self.qkv, self.softmax, self.proj = nn.Conv2d(4, 12, 1), nn.Softmax(dim=-1), nn.Linear(4, 4)
        self.weight, self.bias = nn.Parameter(torch.ones(4)), nn.Parameter(torch.zeros(4))
        self.register_buffer("mask", torch.zeros(1, 1, 1))

    def forward(self, x):
        y = F.pad(F.pad(x, (1, 2, -1, 1)), (1, 1, 1, 1), mode="reflect")
        y = F.group_norm(y, 2, self.weight, self.bias)
        y = y.mul(2.0).add(y) / 2
        b, c, h, w = y.shape
        q, k, v = self.qkv(y).flatten(2).transpose(1, 2).chunk(3, -1)
        a = F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), self.mask).squeeze(1)
        a = F.normalize(torch.stack([a, a], 1).mean(1), dim=-1)
        s = F.linear(self.softmax(q @ k.transpose(-2, -1)) @ v, self.proj.weight, self.proj.bias)
        y = (a + s).transpose(1, 2).reshape(b, c, h, w)
        return F.interpolate(F.interpolate(y, scale_factor=0.5), size=(h, w + 1), mode="bilinear")


class Reductions(nn.Module):
    """Sums, means, maxima and minima over given axes (methods and functions, keepdim or not: split attention's sum
    over its branches, CrossViT's token mean), powers (``**``, ``pow``, ``torch.pow`` by numbers and tensors),
    ``clamp`` by numbers (a parameter's, then ``exp``: Swin V2's logit scale), ``rsqrt``/``sqrt``/``abs`` and
    ``reshape_as``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 1)
        self.scale = nn.Parameter(torch.ones(4, 1, 1))

    def forward(self, x):
        y = self.conv(x).view(1, 2, 4, x.shape[2], x.shape[3])  # (1, 2, 4, H, W): two branches
        s = y.sum(1) + torch.sum(y, dim=1) + y.mean(dim=(1,)) + torch.mean(y, 1, keepdim=True).squeeze(1)
        m = s.amax(dim=(2, 3), keepdim=True) - torch.amin(s, (2, 3), True) + s.amax(-1, keepdim=True).mean(2, True)
        p = (s ** 2 + torch.pow(s, 0.5) + s.pow(m)) * torch.rsqrt(m.abs() + 1).sqrt()
        c = torch.clamp(p, min=0.0) + p.clamp(max=1) + torch.clamp(p, -1, 1) * torch.clamp(self.scale, max=4.6).exp()
        flat = c.flatten(2)
        return c.reshape_as(flat) + flat.sum(-1, True)


class Tokens(nn.Module):
    """What transformers do to shapes: ``x.shape`` unpacked, a size compared and asserted, ``x.dim()``, a class token
    expanded to the batch, indexing with whole numbers, slices, None and ``...``, a relative-position table read
    through an index buffer, einsum, softmax (function and method), (un)squeeze, swapaxes/swapdims, ``torch.chunk``,
    ``nn.MultiheadAttention`` without weights (batch first or not)."""

    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))
        self.table = nn.Parameter(torch.zeros(7, 2))
        self.register_buffer("index", torch.randint(0, 7, (25, 25), generator=torch.Generator().manual_seed(0)))
        self.mha = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        self.batch_first = batch_first

    def forward(self, x):
        n, c, h, w = x.shape
        torch._assert(h == 10, "height")
        torch._assert(x.dim() == 4, "rank")
        t = self.conv(x).flatten(2).transpose(1, 2)  # (1, 25, 8)
        t = torch.cat([self.cls.expand(n, -1, -1), t], dim=1)  # (1, 26, 8)
        bias = self.table[self.index].permute(2, 0, 1).unsqueeze(0)  # (1, 2, 25, 25)
        q = t[:, 1:].view(n, 25, 2, 4).swapaxes(1, 2)  # (1, 2, 25, 4)
        a, b = torch.chunk(q, 2, dim=-1)
        s = torch.einsum("b h i d, b h j d -> b h i j", a, b)
        s = F.softmax(s + bias.softmax(-1), dim=-1)
        y = torch.einsum("bhij,bhjd->bhid", s, b).swapdims(1, 2).reshape(n, 25, 4)
        u = t if self.batch_first else t.transpose(0, 1)
        o, _ = self.mha(u, u, u, need_weights=False)
        o = o if self.batch_first else o.transpose(0, 1)
        z = o[..., 0, None, :4] + y[:, None, 3, :].squeeze(1).unsqueeze(1)  # (shapes only: the output reads o)
        whole = torch.squeeze(z[:, :, None], 2).squeeze() + o[0, 1, :4]  # noqa: F841  (the batch axis squeezed too)
        return o[:, 0]


@pytest.mark.parametrize("model, shape", [
    (Tokens(), (3, 10, 10)), (Tokens(False), (3, 10, 10)), (Parts(), (6, 5, 7)), (Parts(), (6, 8, 6)),
    (Ops(), (4, 5, 6)),
    ("small:vit", (3, 32, 32)), ("small:maxvit", (3, 32, 32)), ("small:swin", (3, 20, 18)),
    (Stem(), (2, 23, 17)), (Stem(), (2, 31, 30)), (Stem(False), (2, 41)),
    ("resnet18", (3, 67, 45)), ("densenet121", (3, 64, 64)), ("vgg11_bn", (3, 64, 80)),
    ("squeezenet1_1", (3, 99, 99)), ("mobilenet_v2", (3, 57, 57)), ("convnext_tiny", (3, 64, 64)),
    (ChannelsLast(), (4, 9, 7)), ("shufflenet_v2_x0_5", (3, 64, 64)), (Sizes(), (6, 5, 7)),
])
def test_fast_shapes_are_the_meta_shapes(model, shape):
    if isinstance(model, str) and model.startswith("small:"):
        from test_modern import small

        model = small(model[6:])[0]
    model = zoo(model) if isinstance(model, str) else model
    assert_meta_shapes(model.eval(), shape)
    assert list(_trace._trace(model, shape, None)) == list(slow_trace(model, shape))


def assert_meta_shapes(model: nn.Module, shape) -> None:
    """The one-pass shapes are known and, node by node, those the meta pass records (shapes, dtypes, numbers)."""
    fast, slow = _trace._Tracer().trace(model), _trace._Tracer().trace(model)
    assert _shapes.infer_shapes(model, fast, shape, torch.float32)
    with torch_kernels():
        _trace._propagate_shapes(model, slow, shape, torch.float32, "cpu")
    for a, b in zip(fast.nodes, slow.nodes, strict=True):
        ma, mb = a.meta.get("tensor_meta"), b.meta.get("tensor_meta")
        assert (ma is None) == (mb is None), a.name
        if ma is not None:
            assert (tuple(ma.shape), ma.dtype) == (tuple(mb.shape), mb.dtype), a.name
        va, vb = a.meta.get("value"), b.meta.get("value")  # shape arithmetic: the same numbers, of the same types
        assert (type(va), va) == (type(vb), vb), a.name


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 1, 3)])
def test_reductions_powers_and_clamps_are_the_meta_shapes(shape):
    """Shapes only (powers of a map and a minimum have no pathway counterpart: the Graph build refuses them)."""
    assert_meta_shapes(Reductions().eval(), shape)


class Transposed(nn.Module):
    """Transposed convolutions (an upsampling decoder: strided, padded, dilated, grouped, an output padding), 2-D
    or 1-D; ``sized``: one called with ``output_size`` (left to the meta pass)."""

    def __init__(self, two_d: bool = True, sized: bool = False):
        super().__init__()
        conv = nn.ConvTranspose2d if two_d else nn.ConvTranspose1d
        self.up = conv(4, 6, 3, stride=2, padding=1, output_padding=1, dilation=2, groups=2)
        self.out = conv(6, 2, 2, stride=3)
        self.sized, self.two_d = sized, two_d

    def forward(self, x):
        y = self.up(x)
        if not self.sized:
            return self.out(y)
        size = (y.shape[2] * 3, y.shape[3] * 3) if self.two_d else (y.shape[2] * 3,)
        return self.out(y, output_size=size)


@pytest.mark.parametrize("two_d, shape", [(True, (4, 5, 6)), (True, (4, 1, 2)), (False, (4, 7))])
def test_transposed_convolutions_are_the_meta_shapes(two_d, shape):
    model = Transposed(two_d).eval()
    assert_meta_shapes(model, shape)
    assert list(_trace._trace(model, shape, None)) == list(slow_trace(model, shape))
    sized = Transposed(two_d, sized=True).eval()
    assert not _shapes.infer_shapes(sized, _trace._Tracer().trace(sized), shape, torch.float32)


class Refused(nn.Module):
    """Reductions and clamps the one-pass shapes leave to the meta pass: a sum in another dtype, a sum over every
    axis, a clamp by a tensor, an ``amax`` without axes."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.register_buffer("top", torch.ones(1, 4, 1, 1))

    def forward(self, x):
        if self.op == "dtype":
            return x.sum(1, dtype=torch.float64)
        if self.op == "all":
            return x.sum() + x
        if self.op == "tensor clamp":
            return torch.clamp(x, max=self.top)
        return x.amax() + x


@pytest.mark.parametrize("op", ["dtype", "all", "tensor clamp", "amax"])
def test_reductions_and_clamps_it_does_not_know_go_to_the_meta_pass(op):
    model = Refused(op)
    assert not _shapes.infer_shapes(model, _trace._Tracer().trace(model), (4, 3, 3), torch.float32)


class Conversions(nn.Module):
    """What models of today do with a tensor's attributes: ``x.ndim`` asserted, ``x.device`` and ``x.dtype`` passed
    on (a constant table moved to the input's device and dtype: EfficientFormer's and ConvIT's position tables), a
    device's type compared with a string, ``.float()``, ``type_as``, ``sin``/``cos``/negation (rotary embeddings),
    an in-place ``add_``; ``op``: one the one-pass shapes leave to the meta pass (a conversion to another dtype or
    by another tensor, an in-place sum that would broadcast its tensor)."""

    def __init__(self, op: str | None = None):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.register_buffer("table", torch.arange(4.0).view(1, 4, 1, 1))
        self.register_buffer("index", torch.arange(4).view(1, 4, 1, 1))
        self.op = op

    def forward(self, x):
        y = self.conv(x)
        torch._assert(y.ndim == 4, "a map")
        t = self.table.to(device=y.device, dtype=y.dtype) + self.index.to(y.dtype) + self.table.to(x.device)
        if self.op == "double":
            return y.double()
        if self.op == "half":
            return y.to(torch.float16)
        if self.op == "tensor":
            return y.to(t)
        if self.op == "in-place":
            return t.add_(y)
        torch._assert(y.device.type != "cuda", "not on a GPU")  # (a device's type compared with a string)
        r = ((y.sin() + torch.cos(y)) * -y - torch.neg(y)).float().type_as(t)
        r.add_(t)
        return r


@pytest.mark.parametrize("shape", [(4, 5, 6), (4, 1, 3)])
def test_tensor_attributes_and_conversions_are_the_meta_shapes(shape):
    """Shapes only (sines have no pathway counterpart); the device and dtype are not recorded as shape arithmetic
    (the Graph build would move its own tensors to the meta device)."""
    model = Conversions().eval()
    assert_meta_shapes(model, shape)
    fx = _trace._Tracer().trace(model)
    assert _shapes.infer_shapes(model, fx, shape, torch.float32)
    assert not any(isinstance(n.meta.get("value"), (torch.device, torch.dtype, str)) for n in fx.nodes)


@pytest.mark.parametrize("op", ["double", "half", "tensor", "in-place"])
def test_conversions_it_does_not_know_go_to_the_meta_pass(op):
    model = Conversions(op).eval()
    assert not _shapes.infer_shapes(model, _trace._Tracer().trace(model), (4, 3, 3), torch.float32)


class Moved(nn.Module):
    """Attention scores with a constant bias moved to the input's device and dtype (ConvIT's position table)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("table", torch.ones(1, 4, 1))

    def forward(self, x):
        y = self.conv(x).flatten(2)
        scores = y @ y.transpose(1, 2) + self.table.to(device=y.device, dtype=y.dtype)
        return torch.softmax(scores, -1) @ y


def test_a_constant_moved_to_the_inputs_device_traces_as_with_the_meta_pass():
    model, shape = Moved().eval(), (3, 6, 5)
    fx = _trace._Tracer().trace(model)
    assert _shapes.infer_shapes(model, fx, shape, torch.float32)
    assert list(_trace._trace(model, shape, None).nodes.items()) == list(slow_trace(model, shape).nodes.items())


PADS = [(Pad, ((1, 2), "zeros")), (Pad, ((3, 0, 1, 2), "reflect")), (Pad, ((9, 9), "circular")),
        (nn.ZeroPad2d, ((1, 2, 3, 4),)), (nn.ReflectionPad1d, ((2, 1),)), (nn.ReplicationPad2d, (1,)),
        (nn.CircularPad2d, ((1, 0, 2, 0),)), (nn.ConstantPad1d, ((0, 3), 1.0)), (nn.ReflectionPad2d, ((5, 5, 5, 5),))]


@pytest.mark.parametrize("pad, args", PADS, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("shape", [(2, 7), (2, 4), (2, 7, 6), (2, 4, 4)])
def test_padding_layers_get_the_shapes_torch_gives_them_or_the_meta_pass(pad, args, shape):
    """A pad the fast pass knows has the shape torch computes; one torch refuses (a reflection as wide as the
    input, a 1-D pad on a 2-D map) falls back, so the model's own error is reported."""
    model = nn.Sequential(pad(*args))
    fx = _trace._Tracer().trace(model)
    try:
        expected = tuple(model(torch.zeros(1, *shape)).shape)
    except (RuntimeError, NotImplementedError, EdgewiseError):
        expected = None
    if _shapes.infer_shapes(model, fx, shape, torch.float32):
        assert tuple(list(fx.nodes)[-1].meta["tensor_meta"].shape) == expected
    else:  # fell back only where torch refuses, or pads an axis that is not spatial (unbatched input)
        widths = model[0].pad if pad is Pad else model[0].padding
        assert expected is None or len(widths) // 2 != len(shape) - 1


class FunctionalPad(nn.Module):
    def __init__(self, pad, mode):
        super().__init__()
        self.pad, self.mode = pad, mode

    def forward(self, x):
        return F.pad(x, self.pad, mode=self.mode)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (3, 3), (2, 2, 1, 0), (-1, 2), (0, 1, 4, 0)])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4), (2, 4, 4)])
def test_functional_padding_gets_the_shape_torch_gives_it_or_the_meta_pass(mode, pad, shape):
    """F.pad's shape is torch's wherever the fast pass gives one; it falls back only where torch refuses, or where a
    mode other than zeros pads the channels (torch takes the input as unbatched) or by a width not less than the
    axis (torch takes some of those)."""
    model = FunctionalPad(pad, mode)
    try:
        expected = tuple(model(torch.zeros(1, *shape)).shape)
    except (RuntimeError, NotImplementedError):
        expected = None
    fx = _trace._Tracer().trace(model)
    if _shapes.infer_shapes(model, fx, shape, torch.float32):
        assert tuple(list(fx.nodes)[-1].meta["tensor_meta"].shape) == expected
    else:
        sides = [n for n in shape[:0:-1] for _ in "lr"]
        assert expected is None or mode != "constant" and (len(pad) // 2 >= len(shape) or any(
            p < 0 or p >= n for p, n in zip(pad, sides)))


class Resize(nn.Module):
    def __init__(self, module: bool, **kw):
        super().__init__()
        self.up = nn.Upsample(**kw) if module else None
        self.kw = kw

    def forward(self, x):
        return self.up(x) if self.up is not None else F.interpolate(x, **self.kw)


@pytest.mark.parametrize("module", [True, False])
@pytest.mark.parametrize("kw", [dict(scale_factor=2), dict(scale_factor=1.7, mode="bilinear"), dict(size=5),
                                dict(size=(4, 9), mode="bicubic", align_corners=True), dict(scale_factor=(0.5, 3.3)),
                                dict(scale_factor=0.3, mode="linear"), dict(size=3, mode="area"),
                                dict(scale_factor=2, mode="nearest", align_corners=True), dict(size=4, scale_factor=2),
                                dict(scale_factor=2, mode="trilinear")], ids=str)
@pytest.mark.parametrize("shape", [(2, 7), (2, 7, 6)])
def test_resizing_gets_the_shape_torch_gives_it_or_the_meta_pass(module, kw, shape):
    """``nn.Upsample`` and ``F.interpolate`` get torch's shape (sizes, factors rounded down as torch rounds them),
    and fall back exactly where torch refuses (a mode for another number of axes, align_corners for nearest, a
    size and a factor, a size of other axes)."""
    model = Resize(module, **kw)
    try:
        expected = tuple(model(torch.zeros(1, *shape)).shape)
    except (RuntimeError, ValueError, NotImplementedError):
        expected = None
    fx = _trace._Tracer().trace(model)
    known = _shapes.infer_shapes(model, fx, shape, torch.float32)
    assert known == (expected is not None)
    if known:
        assert tuple(list(fx.nodes)[-1].meta["tensor_meta"].shape) == expected


class Roll(nn.Module):
    def __init__(self, shifts, dims):
        super().__init__()
        self.shifts, self.dims = shifts, dims

    def forward(self, x):
        return torch.roll(x, self.shifts, self.dims)


@pytest.mark.parametrize("shifts, dims", [(1, None), (1, 2), ((1, 2), (2, 3)), ((1, 2), (2,)), ((1, 2), None), (1, 4),
                                          (1, -5), (-3, -1)])
def test_roll_keeps_its_shape_or_leaves_torchs_error_to_the_meta_pass(shifts, dims):
    model = Roll(shifts, dims)
    try:
        expected = tuple(model(torch.zeros(1, 2, 3, 4)).shape)
    except (RuntimeError, IndexError):
        expected = None
    known = _shapes.infer_shapes(model, _trace._Tracer().trace(model), (2, 3, 4), torch.float32)
    assert known == (expected is not None)


class Recurrent(nn.Module):
    """A recurrent layer over the rows of a 1×H×W map (Sequencer2d's LSTM along each axis): ``kind`` LSTM, GRU or RNN,
    batch-first or not, bidirectional, stacked, an LSTM's projection, a sequence without a batch axis; ``states``:
    its final states read too (then the meta pass); ``wrong``: an input size the layer was not made for (its own
    error, from the meta pass)."""

    def __init__(self, kind, batch_first=True, bidirectional=False, proj=0, layers=1, unbatched=False, states=False,
                 wrong=False):
        super().__init__()
        extra = {"proj_size": proj} if proj else {}
        self.rnn = getattr(nn, kind)(5 if wrong else 4, 6, num_layers=layers, batch_first=batch_first,
                                     bidirectional=bidirectional, **extra)
        self.states, self.batch_first, self.unbatched = states, batch_first, unbatched

    def forward(self, x):
        seq = x.flatten(0, 1)  # (1, H, W): H steps of W features, batch first
        seq = seq[0] if self.unbatched else seq if self.batch_first else seq.transpose(0, 1)
        out, last = self.rnn(seq)
        if self.states:
            h = last[0] if isinstance(last, tuple) else last
            return out.sum() + h.sum()
        return out


@pytest.mark.parametrize("kind, options", [
    ("LSTM", {}), ("LSTM", {"bidirectional": True, "proj": 3}), ("GRU", {"batch_first": False}),
    ("RNN", {"bidirectional": True, "batch_first": False}), ("LSTM", {"states": True}), ("GRU", {"states": True}),
    ("GRU", {"layers": 2, "bidirectional": True}), ("GRU", {"unbatched": True, "layers": 3}),
    ("LSTM", {"unbatched": True, "bidirectional": True}), ("LSTM", {"wrong": True})],
    ids=["lstm", "lstm-bi-proj", "gru", "rnn-bi", "lstm-states", "gru-states", "gru-stacked", "gru-unbatched",
         "lstm-unbatched", "wrong"])
def test_recurrent_layers_shapes_are_those_of_the_meta_pass(kind, options):
    """A sequence alone through the layer: its output's shape without the meta pass, node by node as the meta
    pass records it; its final states read, or an input it cannot take: left to the meta pass."""
    model = Recurrent(kind, **options).eval()
    fx = _trace._Tracer().trace(model)
    known = _shapes.infer_shapes(model, fx, (1, 3, 4), torch.float32)
    assert known == (not options.get("states") and not options.get("wrong"))
    if options.get("wrong"):
        with pytest.raises(RuntimeError):
            model(torch.zeros(1, 1, 3, 4))
        return
    if known:
        fast = node_shapes(fx)
        assert fast == meta_pass_shapes(model, fx, (1, 3, 4))


@SETTINGS
@given(random_net())
def test_fast_shapes_give_the_graph_of_the_meta_pass_on_random_nets(case):
    assert list(_trace._trace(case.model, case.input_shape, None)) == list(slow_trace(case.model,
                                                                                     case.input_shape))


class Optional(nn.Module):
    """Optional arguments, which the trace holds at their defaults (torch.fx's ``concrete_args``: one placeholder
    each after the input's, and a check of each None)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x, mask=None, scale: float = 2.0, times: int = 3, flag: bool = False, mode: str = "a"):
        y = self.conv(x)
        if mask is not None:
            y = y * mask
        return y * scale * times if not flag and mode == "a" else y


def test_optional_arguments_held_at_their_defaults_keep_the_fast_shapes():
    model = Optional().eval()
    fx = _trace._Tracer().trace(model, _trace._defaults(model))
    assert sum(n.op == "placeholder" for n in fx.nodes) == 6
    assert _shapes.infer_shapes(model, fx, (3, 8, 8), torch.float32)
    fast = node_shapes(fx)
    assert fast["scale_1"][2] == 2.0 and fast["times_1"][1] is int and fast["mask_1"] == (None, type(None), None)
    assert fast == meta_pass_shapes(model, fx, (3, 8, 8))
    assert list(edgewise.trace(model, (3, 8, 8))) == list(slow_trace(model, (3, 8, 8)))


def test_timms_layers_keep_the_fast_shapes():
    """timm's BatchNormAct2d (a BatchNorm2d subclass the trace keeps whole) has its input's shape where the input
    fits it, as the meta pass has it (where it does not, the meta pass reports torch's error); its 'same'-padded
    convolutions and pools and weight-standardised convolutions have the meta pass's shapes at odd sizes."""
    timm = pytest.importorskip("timm")
    fits = nn.Sequential(nn.Conv2d(3, 8, 3), timm.layers.BatchNormAct2d(8, act_layer=nn.SiLU)).eval()
    misfit = nn.Sequential(nn.Conv2d(3, 8, 3), timm.layers.BatchNormAct2d(6)).eval()
    byob = timm.create_model("test_byobnet", pretrained=False).eval()
    from timm.layers.pool2d_same import MaxPool2dSame

    same = nn.Sequential(timm.layers.Conv2dSame(3, 4, 3, stride=2), MaxPool2dSame(3, 2),
                         timm.layers.AvgPool2dSame(2, 2), timm.layers.StdConv2d(4, 5, 3, padding=1),
                         timm.layers.ScaledStdConv2d(5, 4, 3, stride=2), timm.layers.StdConv2dSame(4, 4, 5, 3)).eval()
    for model, shape in ((fits, (3, 9, 7)), (byob, (3, 64, 64)), (same, (3, 67, 53)), (same, (3, 40, 41))):
        fx = _trace._Tracer().trace(model)
        assert _shapes.infer_shapes(model, fx, shape, torch.float32)
        assert node_shapes(fx) == meta_pass_shapes(model, fx, shape)
    assert not _shapes.infer_shapes(misfit, _trace._Tracer().trace(misfit), (3, 9, 7), torch.float32)
    with pytest.raises(EdgewiseError, match="does not run on an input of shape 3x9x7"):
        edgewise.trace(misfit, (3, 9, 7))


class Traced(nn.Module):
    """Control flow on the input's shape (so the shape tracer traces it, with values on the meta device) and ops
    whose shapes the one-pass rules do not derive."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("lo", torch.tensor(-1.0))
        self.register_buffer("hi", torch.tensor(1.0))
        self.mixed = False

    def forward(self, x):
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1))
        # (buffers as arguments: attribute nodes made without a proxy; a bound and a number: no meta kernel)
        y = torch.clamp(self.conv(x), self.lo, 1.0 if self.mixed else self.hi)
        y = torch.roll(y, 1, -1) + y[..., : y.shape[-1]]
        return y.unsqueeze(1).float().sum(2)


def test_the_shape_tracers_own_values_give_the_meta_pass_shapes():
    """Where the shape tracer traced a model, each node's value on the meta device is already known: its shapes
    are the meta pass's, without running the model again."""
    model, shape = Traced().eval(), (3, 7, 5)
    with pytest.raises(Exception):
        _trace._Tracer().trace(model)  # (the shape tracer's case)
    fx = _trace._fx_graph(model, shape, [], set(), None)
    assert not _shapes.infer_shapes(model, fx, shape, torch.float32)
    assert _trace._take_traced(model, fx, torch.float32)
    assert all(_trace._TRACED not in n.meta for n in fx.nodes)
    traced = node_shapes(fx)
    assert traced["lo"][0] == ((), torch.float32) and traced["sum_1"][0] == ((1, 1, 7, 6), torch.float32)
    assert traced == meta_pass_shapes(model, fx, shape)
    assert list(_trace._trace(model, shape, None)) == list(slow_trace(model, shape))
    fx = _trace._fx_graph(model, shape, [], set(), None)
    assert not _trace._take_traced(model, fx, torch.float64)  # traced for another dtype: the meta pass
    assert all("tensor_meta" not in n.meta for n in fx.nodes)


def test_the_shape_tracer_leaves_a_node_without_a_value_to_the_meta_pass():
    """A node whose value the tracer could not find (an op failing on meta tensors, a layer whose forward made
    proxies of the layers it calls) sends the whole graph to the meta pass."""
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(x) + 1

    class Wrapped(Traced):
        def __init__(self):
            super().__init__()
            self.inner = Inner()

        def forward(self, x):
            return self.inner(super().forward(x))

    model, shape = Wrapped().eval(), (3, 7, 5)
    leaf = _trace._Tracer.is_leaf_module
    _trace._Tracer.is_leaf_module = lambda self, m, q: isinstance(m, Inner) or leaf(self, m, q)
    try:
        fx = _trace._fx_graph(model, shape, [], set(), None)
    finally:
        _trace._Tracer.is_leaf_module = leaf
    inner = next(n for n in fx.nodes if n.target == "inner")
    assert _trace._TRACED not in inner.meta and not _trace._take_traced(model, fx, torch.float32)
    model = Traced().eval()
    model.mixed = True  # (torch.clamp of a meta tensor by a tensor and a number asks for .item())
    fx = _trace._fx_graph(model, shape, [], set(), None)
    clamp = next(n for n in fx.nodes if n.target is torch.clamp)
    assert _trace._TRACED not in clamp.meta and not _trace._take_traced(model, fx, torch.float32)
    assert list(_trace._trace(model, shape, None)) == list(slow_trace(model, shape))


def test_unknown_ops_and_bad_inputs_fall_back_to_the_meta_pass():
    class Views(nn.Module):  # x.numel() is shape arithmetic the fast pass does not follow
        def forward(self, x):
            return x.view(1, x.numel())

    model = Views()
    fx = _trace._Tracer().trace(model)
    assert not _shapes.infer_shapes(model, fx, (2, 4, 4), torch.float32)
    assert all("tensor_meta" not in n.meta and "value" not in n.meta for n in fx.nodes)  # nothing half-recorded
    assert edgewise.trace(model, (2, 4, 4))[edgewise.trace(model, (2, 4, 4)).output].shape == (32,)
    for op in ("view", "chunk", "divide", "assert", "expand", "index"):  # refused by torch: the meta pass reports it
        model = BadSizes(op)
        assert not _shapes.infer_shapes(model, _trace._Tracer().trace(model), (2, 4, 4), torch.float32)
    wrong = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(5, 4, 3))  # channels do not fit: the model's own error
    with pytest.raises(EdgewiseError, match="does not run on an input of shape 3x9x9"):
        edgewise.trace(wrong, (3, 9, 9))
    with pytest.raises(EdgewiseError, match="does not run"):
        edgewise.trace(nn.Sequential(nn.Conv2d(3, 4, 5)), (3, 3, 3))  # empty output
    for bad in (nn.LayerNorm(5), nn.LayerNorm((4, 4))):  # normalised axes that are not the input's last
        model = nn.Sequential(nn.Conv2d(3, 4, 1), bad)
        assert not _shapes.infer_shapes(model, _trace._Tracer().trace(model), (3, 5, 6), torch.float32)


# ------------------------------------------------------------ fingerprint

def net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, groups=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


@pytest.mark.parametrize("change", [
    lambda m: setattr(m[0], "stride", (2, 2)), lambda m: setattr(m[0], "padding", (2, 2)),
    lambda m: setattr(m[0], "dilation", (2, 1)), lambda m: setattr(m[4], "groups", 4),
    lambda m: setattr(m[0], "kernel_size", (3, 1)), lambda m: setattr(m[0], "padding_mode", "reflect"),
    lambda m: setattr(m[3], "ceil_mode", True), lambda m: setattr(m[5], "output_size", 2),
    lambda m: m.__setitem__(2, nn.GELU()), lambda m: m.__setitem__(3, nn.AvgPool2d(2)),
    lambda m: setattr(m[0], "stride", (1.0, 1)),  # another type, equal value
    lambda m: setattr(m[2], "forward", lambda x: x * 2),  # forward replaced on the instance
    lambda m: m[1].register_forward_hook(lambda *a: None),
    lambda m: m[0].register_buffer("mask", torch.ones(3)), lambda m: m.add_module("extra", nn.ReLU()),
])
def test_every_structural_change_changes_the_fingerprint(change):
    model = net()
    before = fingerprint(model)
    change(model)
    assert fingerprint(model)[0] != before[0]


def test_weights_and_statistics_do_not_change_the_fingerprint_and_instances_share_it():
    a, b = net(), net()
    with torch.no_grad():
        b[0].weight.mul_(3)
        b[1].running_mean.add_(1)
    b[1].num_batches_tracked += 5
    b.train()
    assert fingerprint(a) == fingerprint(b) and fingerprint(a)[1]
    a[0].register_buffer("index", torch.arange(4))  # an integer table is compared by value
    b[0].register_buffer("index", torch.arange(4).flip(0))
    assert fingerprint(a)[0] != fingerprint(b)[0]


def test_patching_a_class_forward_changes_the_fingerprint():
    class Block(nn.Module):
        def forward(self, x):
            return x + 1

    model = nn.Sequential(Block())
    before = fingerprint(model)[0]
    Block.forward = lambda self, x: x * 1
    assert fingerprint(model)[0] != before


def test_opaque_attributes_keep_the_fingerprint_private():
    model = net()
    model[2].helper = object()  # cannot be compared by value: valid for this object only
    assert not fingerprint(model)[1]
    model[2].helper = [1, (2, "a"), None, F.relu]
    assert fingerprint(model)[1]


# ------------------------------------------------------------ cache

def test_a_new_object_of_a_seen_architecture_gets_a_copy():
    shape = (3, 12, 12)
    a, b = net(), net()
    ga = edgewise.trace(a, shape)
    gb = edgewise.trace(b, shape)
    assert gb is not ga and list(gb) == list(ga) and gb.consumers("0") == ga.consumers("0")
    assert edgewise.trace(b, shape) is gb  # the same object: the same Graph, as before
    ga.nodes.pop("7")
    gb.nodes.clear()
    gb.padding = "zeros"
    third = edgewise.trace(net(), shape)  # a third object: what the first trace produced, whatever callers did
    assert list(third) == list(_trace._trace(net(), shape, None)) and third.padding is None
    b[0].stride = (2, 2)
    assert edgewise.trace(b, shape)["0"].shape == (8, 6, 6)


def test_the_shared_cache_is_bounded_and_model_entries_die_with_the_model():
    cache = GraphCache(size=3)
    models = [nn.Sequential(nn.Conv1d(1, 1, k)) for k in range(1, 7)]
    for m in models:
        key, shared = fingerprint(m)
        cache.put(m, key, shared, edgewise.trace(m, (1, 9)))
    assert len(cache._shared) == 3 and len(cache._by_model) == 6
    del m, models
    gc.collect()
    assert len(cache._by_model) == 0


def test_trace_keyword_arguments_are_part_of_the_key():
    model = net()
    assert edgewise.trace(model, (3, 12, 12), name="a").model_name == "a"
    assert edgewise.trace(net(), (3, 12, 12), name="b").model_name == "b"
    assert edgewise.trace(net(), (3, 12, 12), layer="3").output == "3"
    assert edgewise.trace(net(), (3, 12, 12)).output == "7"


# ------------------------------------------------------------ counting

@st.composite
def _window(draw):
    k, s, d = draw(st.integers(1, 7)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    pad = (draw(st.integers(0, (k - 1) * d)), draw(st.integers(0, (k - 1) * d)))
    w = Window(k, s, d, pad, "zeros", draw(st.booleans()))
    n_in = draw(st.integers(max(1, w.extent - sum(pad)), 40))
    return w, n_in, w.out_size(n_in)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(_window(), st.integers(1, 3))
def test_strided_slices_sum_bit_for_bit_as_the_column_groups(case, axis):
    w, n_in, n_out = case
    am = AxisMap(w, n_in, n_out)
    rng = np.random.default_rng(n_in * 31 + n_out)
    shape = [2, 3, 4]
    shape[axis - 1] = n_out
    x = rng.random((1, *shape)) * 10.0 ** rng.integers(-5, 5, size=(1, *shape))
    taps, growth = window_taps(am)
    assert growth == am.growth()
    groups = [(r, c, None if (v == 1).all() else v.astype(np.float64)) for r, c, v in am.groups()]
    slow = np.moveaxis(_sparse_sum(np.moveaxis(x, axis, -1), groups, n_in, np.float64), -1, axis)
    assert np.array_equal(_slice_sum(x, axis, taps, n_in), slow)
    assert _slice_sum(x.astype(object), axis, taps, n_in).shape == slow.shape


@settings(derandomize=True, max_examples=300, deadline=None)
@given(_window())
def test_a_zero_padded_windows_matrix_is_its_taps(case):
    """The zero-padded Window's matrix, built as strided diagonals, against its taps one output at a time."""
    w, n_in, n_out = case
    ref = np.zeros((n_out, n_in), dtype=np.int64)
    for o in range(n_out):
        for i in w.taps(o, n_in):
            ref[o, i] += 1
    m = w.matrix(n_in, n_out)
    assert m.dtype == ref.dtype and np.array_equal(m, ref)


def test_add_all_is_add_folded_bit_for_bit():
    num, rng = ScaledCounts(), np.random.default_rng(0)
    for trial in range(30):
        parts = []
        for _ in range(rng.integers(2, 7)):
            m = rng.random((2, 5)) * 2.0 ** rng.integers(-40, 40)
            m[rng.random((2, 5)) < 0.2] = 0
            e = int(rng.choice([0, 0, 0, 300, -200]))
            hi = rng.choice([math.log2(m.max()) if m.max() > 0 else -math.inf, 999.5])
            parts.append(Scaled(m, e, float(hi), math.log2(m[m > 0].min()) if (m > 0).any() else math.inf))
        if trial % 5 == 0:
            parts[1] = Scaled(np.zeros((2, 5)), 0, -math.inf, math.inf)
        saved = [p.m.copy() for p in parts]
        fold = parts[0]
        for p in parts[1:]:
            fold = num.add(fold, p)
        fast = num.add_all(parts)
        assert np.array_equal(fast.m, fold.m) and (fast.e, fast.hi, fast.lo) == (fold.e, fold.hi, fold.lo)
        assert all(np.array_equal(p.m, m) for p, m in zip(parts, saved))  # the operands are left as they were


@pytest.mark.parametrize("length", [3001, 4096])
def test_long_strided_1d_float_counts_equal_exact(length):
    model = nn.Sequential(nn.Conv1d(1, 2, 7, stride=2, padding=3), nn.MaxPool1d(3, 2, 1, ceil_mode=True),
                          nn.Conv1d(2, 2, 5, dilation=3, padding=6))
    f, e = (edgewise.pathways(model, (1, length), exact=x) for x in (False, True))
    assert f.counts.tolist() == [float(v) for v in e.counts.tolist()]


def test_float_counts_on_densenet_and_resnet_equal_exact():
    for name in ("densenet121", "resnet18"):
        graph = edgewise.trace(zoo(name), (3, 40, 40))
        f, e = edgewise.pathways(graph), edgewise.pathways(graph, exact=True)
        ref = np.array([math.log10(v) for v in e.counts.ravel()]).reshape(f.log10.shape)
        np.testing.assert_allclose(f.log10, ref, rtol=0, atol=1e-12)


def test_exact_counts_use_the_slices_for_windows():
    kind, _ = ExactCounts()._plan(AxisMap(Window(3, 2, 1, (1, 1)), 20, 10))
    assert kind == "slices"


def test_another_input_size_reuses_the_symbolic_graph_and_recomputes_shapes():
    model = zoo("resnet18")
    edgewise.trace(model, (3, 64, 64))
    key = fingerprint(model)[0]
    assert _trace._FX.get(key) is not None
    for shape in [(3, 97, 75), (3, 32, 32)]:
        assert list(edgewise.trace(zoo("resnet18"), shape)) == list(slow_trace(zoo("resnet18"), shape))


def test_constants_fx_stores_on_the_model_are_removed_and_not_shared():
    class TimesTwo(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x) * torch.tensor(2.0)

    model = TimesTwo()
    before = set(vars(model))
    g = edgewise.trace(model, (1, 8, 8))
    assert set(vars(model)) == before and edgewise.trace(model, (1, 8, 8)) is g
    assert _trace._FX.get(fingerprint(model)[0]) is None
    assert list(edgewise.trace(TimesTwo(), (1, 9, 9))) == list(slow_trace(TimesTwo(), (1, 9, 9)))
    with pytest.raises(EdgewiseError):  # and after a failed trace too
        edgewise.trace(model, (1, 2, 2))
    assert set(vars(model)) == before


# ------------------------------------------------------------ graph building

def built_without_shortcuts(model, shape, norm_stats):
    """The Graph with every layer through all of ``Layout.handle``'s cases (no plain-layer shortcut)."""
    from edgewise import _layout

    orig = _layout._PLAIN_MODULES
    _layout._PLAIN_MODULES = frozenset()
    try:
        return _trace._trace(model, tuple(shape), None, norm_stats=norm_stats)
    finally:
        _layout._PLAIN_MODULES = orig


def same_graph(fast, slow):
    """The same Graph (or the same error) either way."""
    def outcome(build):
        try:
            g = build()
        except EdgewiseError as e:
            return str(e)
        return list(g), g.output, g.norm_layers, g.norm_stats

    assert outcome(fast) == outcome(slow)


@settings(SETTINGS, max_examples=30)
@given(random_net(), st.sampled_from(["ignore", "count"]))
def test_plain_layers_build_the_graph_of_every_case_on_random_nets(case, norm_stats):
    model, shape = case.model, tuple(case.input_shape)
    same_graph(lambda: _trace._trace(model, shape, None, norm_stats=norm_stats),
               lambda: built_without_shortcuts(model, shape, norm_stats))


def batch_statistics():
    """BatchNorm without running statistics: its statistics are connections under norm_stats='count'."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU(),
                         nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 62 * 62, 2))


@pytest.mark.parametrize("name", ["resnet18", "densenet121", "mobilenet_v2", "googlenet", "shufflenet_v2_x0_5",
                                  batch_statistics])
@pytest.mark.parametrize("norm_stats", ["ignore", "count"])
def test_plain_layers_build_the_graph_of_every_case_on_zoo_models(name, norm_stats):
    if callable(name):
        model = name()
    else:
        model = zoo(name, **({"aux_logits": False, "init_weights": False} if name == "googlenet" else {}))
    shape = (3, 64, 64)
    same_graph(lambda: _trace._trace(model, shape, None, norm_stats=norm_stats),
               lambda: built_without_shortcuts(model, shape, norm_stats))


class TrainOnly(nn.Module):
    """A branch only in training mode: a trace must see the inference graph."""

    def __init__(self):
        super().__init__()
        self.conv, self.aux = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(x) + self.aux(x) if self.training else self.conv(x)


class Recorded(nn.Module):
    """Overrides train(): the trace goes through it, as model.eval() does."""

    calls: list = []

    def __init__(self):
        super().__init__()
        self.body = TrainOnly()

    def train(self, mode: bool = True):
        Recorded.calls.append(mode)
        return super().train(mode)

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize("make", [lambda: nn.Sequential(TrainOnly(), nn.ReLU()), Recorded])
def test_traced_in_eval_mode_and_the_flags_restored(make):
    model = make().train()
    model[-1].eval() if isinstance(model, nn.Sequential) else None  # flags differ between modules
    flags = [m.training for m in model.modules()]
    Recorded.calls.clear()
    graph = _trace._trace(model, (1, 8, 8), None)
    assert not any(n.name.endswith("aux") for n in graph)
    assert [m.training for m in model.modules()] == flags
    assert (False in Recorded.calls) == isinstance(model, Recorded)



class Caching(nn.Module):
    """A forward that keeps what it sees: a proxy in a dict (timm's attention-bias caches) and in a list, its own
    buffer and a torch layer's buffer reassigned (ConViT's ``rel_indices``)."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.register_buffer("index", torch.arange(2.0))
        self.cache, self.seen = {}, []

    def forward(self, x):
        self.cache.setdefault("bias", x.mean())
        self.seen.append(x)
        self.index = torch.zeros(2)
        self.bn.running_mean = torch.ones(2)
        return self.bn(self.conv(x)) + self.cache["bias"]


def test_a_trace_leaves_the_models_caches_and_buffers_as_they_were():
    model = Caching()
    index, mean, attrs = model.index, model.bn.running_mean, dict(vars(model))
    _trace._trace(model, (2, 8, 8), None)
    assert model.cache == {} and model.seen == [] and model.index is index and model.bn.running_mean is mean
    assert {k: v for k, v in vars(model).items()} == attrs


# ------------------------------------------------------------ fx arguments

class _FxArgs(_trace._Tracer):
    """The tracer with torch.fx's own ``create_arg``, ``create_node``, ``call_module``, ``getattr`` and ``trace``
    (the reference of the fast ones)."""

    create_arg = torch.fx.Tracer.create_arg
    create_node = torch.fx.Tracer.create_node
    call_module = torch.fx.Tracer.call_module
    getattr = torch.fx.Tracer.getattr
    trace = torch.fx.Tracer.trace


def fx_signature(graph: torch.fx.Graph) -> list:
    """Each node's torch.fx fields (less the shape tracer's values, which :class:`_ShapeRef` finds only for
    functions: see ``test_the_shape_tracers_own_values_give_the_meta_pass_shapes`` for those)."""
    return [(n.op, str(n.target), n.name, str(n.args), str(n.kwargs), n.type,
             repr({k: v for k, v in n.meta.items() if k != _trace._TRACED}),
             type(n.meta.get("nn_module_stack")), [u.name for u in n.users], [a.name for a in n.all_input_nodes])
            for n in graph.nodes]


class Arguments(nn.Module):
    """Every kind of argument torch.fx treats apart: a parameter and a buffer used by functions, a tensor
    constant, a namedtuple, a dict with a non-str key, keyword arguments, slices, dtypes and None."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.scale = nn.Parameter(torch.ones(4, 1, 1))
        self.register_buffer("shift", torch.zeros(4, 1, 1))

    def forward(self, x):
        y = F.conv2d(x, self.conv.weight, bias=None, stride=(1, 1), padding=1) * self.scale + self.shift
        y = y + torch.tensor(0.5) + self.conv(x).to(dtype=torch.float32)
        y = torch.stack(torch.return_types.max((y, y))).sum(0)  # a namedtuple as an argument
        y = torch.add(y, y, alpha=1)
        return y[:, :, 1:, None, :].squeeze(3).sum(dim=(1,), keepdim=True) + {1: y}[1].mean(1, keepdim=True)


class Buffers(nn.Module):
    """Buffers passed to functions as tensors (torch.fx names each by walking every buffer): nested, one tensor
    registered under two names (the first walked wins), one the forward replaces (passing the new tensor and the
    old, which is no buffer then), and one it moves to another buffer's name."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        shared = torch.ones(1, 2, 1, 1)
        self.register_buffer("lo", torch.full((), -1.0))
        self.conv.register_buffer("hi", torch.full((), 2.0))
        self.conv.register_buffer("shared", shared)
        self.register_buffer("shared_too", shared)
        self.register_buffer("replaced", torch.zeros(1, 2, 1, 1))
        self.register_buffer("moved", torch.zeros(1, 2, 1, 1))

    def forward(self, x):
        y = torch.clamp(self.conv(x), self.lo, self.conv.hi) * self.shared_too + self.conv.shared
        before = self.replaced
        self.replaced = self.replaced + 1  # (a new tensor under the old name; the old one no buffer now)
        self.moved = self.lo  # (a tensor held under two names now: torch.fx's walk finds the first)
        return torch.add(y, self.replaced) * torch.clamp(y, self.moved, self.conv.hi) + torch.mul(y, before)


class Parameters(nn.Module):
    """Parameters a forward reads as tensors (torch.fx names each by walking every parameter): nested, one
    registered under two names (the first walked wins), one read twice, and one the forward replaces with a new
    parameter (which the table made at the first read does not hold: torch.fx's walk then names it)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        shared = nn.Parameter(torch.ones(1, 2, 1, 1))
        self.conv.shared, self.shared_too = shared, shared
        self.scale = nn.Parameter(torch.ones(1, 2, 1, 1))
        self.replaced = nn.Parameter(torch.zeros(1, 2, 1, 1))

    def forward(self, x):
        y = F.conv2d(x, self.conv.weight, self.conv.bias, padding=1) * self.shared_too + self.conv.shared
        before = self.replaced
        self.replaced = nn.Parameter(torch.ones(1, 2, 1, 1))
        return y * self.replaced + before * self.scale + self.scale * self.conv.weight.sum()


class Shared(nn.Module):
    """Modules called more than once (torch.fx keys their later calls ``name@1``), nested and at the top."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sequential(nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)))

    def forward(self, x):
        return self.block(self.conv(self.block(self.conv(x)))) + self.block[1](x)


class Constants(nn.Module):
    """Plain tensor attributes (not parameters or buffers) that forward reads: one nested, one held under
    two names (torch.fx's map keeps the name it walks last), and a module whose forward is its own attribute."""

    def __init__(self):
        super().__init__()
        shared = torch.full((1, 2, 1, 1), 2.0)
        self.inner = nn.Sequential(nn.Conv2d(2, 2, 1))
        self.inner.offset, self.twice = torch.ones(1, 2, 1, 1), shared
        self.inner[0].again = shared
        self.act = nn.Identity()
        self.act.forward = lambda x: torch.relu(x)  # an instance forward: its globals are checked at its call

    def forward(self, x):
        return self.act(self.inner(x) + self.inner.offset) * self.twice


def _forward_in(source: str):
    """A forward function whose globals are its own (a module of its own file)."""
    space: dict = {}
    exec(source, space)
    return space["forward"]


class _Scaled(nn.Module):
    """A leaf function imported by name into its forward's globals: torch.fx wraps it at the module's first call."""

    forward = _forward_in("from math import sqrt\ndef forward(self, x):\n    return x * sqrt(x.size(1))\n")


class _Through(nn.Module):
    def forward(self, x):
        return x


class Wrapped(nn.Module):
    """Two calls of a class whose globals hold ``sqrt``, and of a class whose second object has a forward of its
    own with other globals."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.d = _Scaled(), _Scaled(), _Through(), _Through()
        self.d.forward = _forward_in("from math import floor\ndef forward(x):\n    return x * floor(x.size(1))\n")

    def forward(self, x):
        return self.d(self.c(self.b(self.a(x))))


class Names(nn.Module):
    """Node names torch.fx's namespace must mend: a keyword, builtins, a leading digit, names that end in
    ``_<digits>`` and collide with the names of function calls (``add``, ``add_1``), and repeats."""

    def __init__(self):
        super().__init__()
        for name in ("class", "sum", "input", "1", "add", "add_1", "relu_2", "x_01", "t", "t_1", "t_5"):
            self.add_module(name, nn.ReLU())

    def forward(self, x):
        m = dict(self.named_children())
        y = m["class"](x) + m["sum"](x)
        y = m["add"](y) + m["add_1"](y) + m["1"](y)
        y = torch.relu(y) + torch.relu(y) + m["relu_2"](y) + m["x_01"](y) + m["input"](y)
        y = m["t_1"](y) * m["t_5"](y) * m["t_1"](y) * m["t"](y) * m["t"](y)  # (t_1 again after t_5: t_6)
        return y + y.sum() + m["add_1"](y)


_MODULE_SPECIALS = {k: nn.Module.__dict__[k] for k in ("__getattr__", "__call__")}


class Reads(nn.Module):
    """A parent reading its children's parameters and buffer (one through an op before any proxy touches it), a
    pre-hook on a module whose forward runs and a hook on a leaf (torch.fx runs the one, skips the other), and a
    probe that records whether ``nn.Module``'s special methods are set while the forward runs."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)
        self.block = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU())
        self.block.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        self.block[0].register_forward_hook(lambda mod, args, out: out + 1)
        self.touched = []

    def forward(self, x):
        self.touched.append(any(nn.Module.__dict__[k] is not v for k, v in _MODULE_SPECIALS.items()))
        w = self.conv.weight.flip(0)
        y = F.conv2d(x, w, padding=1) + self.conv.weight.sum() + self.bn.running_mean.view(1, -1, 1, 1)
        return self.block(y) + self.block[0].weight.mean()


class _Own(nn.Conv2d):
    """A layer with its own ``__getattr__`` (it calls torch's)."""

    def __getattr__(self, name):
        return super().__getattr__(name)


class OwnGetattr(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _Own(2, 2, 3, padding=1)

    def forward(self, x):
        return self.conv(x) * self.conv.weight.mean()


def _maxvit():
    from test_modern import small

    return small("maxvit")[0]


@pytest.mark.parametrize("make", [lambda: zoo("resnet18"), lambda: zoo("densenet121"), lambda: zoo("vit_b_16"),
                                  lambda: zoo("mobilenet_v3_small"), lambda: zoo("swin_t"), _maxvit, Arguments, Shared,
                                  Constants, Wrapped, Reads, OwnGetattr, Names, Buffers, Parameters],
                         ids=["resnet18", "densenet121", "vit_b_16", "mobilenet_v3_small", "swin_t", "maxvit",
                              "arguments", "shared", "constants", "wrapped", "reads", "own-getattr", "names", "buffers",
                              "parameters"])
def test_the_fast_fx_arguments_give_torch_fx_graph_and_constants(make, monkeypatch):
    fast_model, ref_model = make().eval(), make().eval()
    fast_tracer, ref_tracer = _trace._Tracer(), _FxArgs()
    with monkeypatch.context() as m:  # the fast tracer makes its nodes itself
        m.setattr(torch.fx.Graph, "create_node", lambda *a, **k: pytest.fail("torch.fx's create_node was used"))
        fast = fast_tracer.trace(fast_model, _trace._defaults(fast_model))
    ref = ref_tracer.trace(ref_model, _trace._defaults(ref_model))
    assert dis.get_instructions is _fx_fast._GET_INSTRUCTIONS  # (kept per code object only while tracing)
    assert _fx_fast.LEAN_NODES and _fx_fast.LEAN_TRACE  # (else the fast tracer is torch.fx's own)
    fast_tracer.tensor_attrs.get(None)  # (collected on first use)
    fast_attrs, ref_attrs = ({name: t for t, name in tr.tensor_attrs.items()} for tr in (fast_tracer, ref_tracer))
    assert sorted(fast_attrs) == sorted(ref_attrs)
    assert all(torch.equal(fast_attrs[k], ref_attrs[k]) for k in fast_attrs)
    assert fx_signature(fast) == fx_signature(ref) and len(fast.nodes) == len(ref.nodes)
    assert fast.python_code("self").src == ref.python_code("self").src
    assert fast_tracer.node_name_to_scope == ref_tracer.node_name_to_scope
    assert (fast_tracer.num_calls, fast_tracer.module_stack) == (ref_tracer.num_calls, ref_tracer.module_stack)
    assert (fast_tracer.scope.module_path, fast_tracer.scope.module_type) == \
        (ref_tracer.scope.module_path, ref_tracer.scope.module_type)
    fast.lint()


def test_node_names_and_target_names_are_torch_fx_own():
    """The names the fast tracer gives nodes, on random candidates (dotted paths, ``_<digits>`` suffixes, capitals,
    keywords, builtins, illegal characters, a trailing newline), in sequences that collide: torch.fx's namespace
    and ``Graph._target_to_str`` are the reference."""
    import random

    rng = random.Random(0)
    words = ["layer1.0.conv1", "relu", "add", "add_1", "x_01", "class", "sum", "1", "a..b", "Block.convA", "__add__",
             "t_5", "t", "_", "__", "", "é", "n\n", "a-b", "getattr_2"]
    alphabet = "aB_019.é\n -"
    graph = torch.fx.Graph()
    for _ in range(300):
        cands = [rng.choice(words) if rng.random() < 0.5 else
                 "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(30)]
        ours, theirs = torch.fx.graph._Namespace(), torch.fx.graph._Namespace()
        assert [_fx_fast._create_name(ours, c) for c in cands] == [theirs.create_name(c, None) for c in cands]
        assert [_fx_fast._target_name(graph, c) for c in cands] == [graph._target_to_str(c) for c in cands]
    for fn in (torch.relu, F.conv2d, torch.Tensor.add, operator.getitem, math.sqrt):
        assert _fx_fast._target_name(graph, fn) == graph._target_to_str(fn)


def test_module_calls_are_routed_without_setting_nn_module_special_methods():
    """The fast trace routes calls through ``nn.Module._call_impl`` and sets ``__getattr__`` on the model's own
    classes (setting a special method on ``nn.Module`` updates ~600 subclasses); every class is as it was after."""
    before = {c: dict(vars(c)) for c in (nn.Module, nn.Conv2d, nn.BatchNorm2d, nn.Sequential, nn.ReLU, Reads)}
    model = Reads().eval()
    _trace._Tracer().trace(model, _trace._defaults(model))
    assert model.touched == [False]
    assert {c: dict(vars(c)) for c in before} == before
    ref = Reads().eval()
    _FxArgs().trace(ref, _trace._defaults(ref))
    assert ref.touched == [True]  # (the probe sees torch.fx's patching)


class _Fails(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return nn.ReLU()(self.conv(x))  # a module that is not a submodule: torch.fx refuses it


def test_a_fast_trace_leaves_the_functions_it_wraps_as_they_were():
    """torch.fx's leaf functions (``math``'s, those in a forward's globals) are patched for a trace and put back."""
    spaces = (vars(math), _Scaled.forward.__globals__, Wrapped.forward.__globals__)
    before = [dict(d) for d in spaces]
    model = Wrapped()
    graph = _trace._Tracer().trace(model, None)
    assert any(n.target is math.sqrt for n in graph.nodes)  # (recorded as a leaf call while patched)
    assert all(d == b and all(d[k] is v for k, v in b.items()) for d, b in zip(spaces, before))


def test_a_failed_fast_trace_restores_every_class_and_fails_as_torch_fx():
    before = {c: dict(vars(c)) for c in (nn.Module, nn.Conv2d, _Fails)}
    with pytest.raises(NameError, match="not installed as a submodule") as fast:
        _trace._Tracer().trace(_Fails(), None)
    with pytest.raises(NameError) as ref:
        _FxArgs().trace(_Fails(), None)
    assert str(fast.value) == str(ref.value)
    assert {c: dict(vars(c)) for c in before} == before


def test_torch_fx_patching_where_a_class_or_a_compiled_module_would_bypass_the_fast_routing():
    assert _fx_fast.LEAN_MODULES
    model = Reads()
    assert sorted(c.__name__ for c in _fx_fast._lean_classes(m for _, m in _trace._named_modules(model))) == \
        ["BatchNorm2d", "Conv2d", "ReLU", "Reads", "Sequential"]
    assert _fx_fast._lean_classes(OwnGetattr().modules()) is None  # its own __getattr__
    compiled = Reads()
    compiled.block._compiled_call_impl = compiled.block._call_impl  # (what Module.compile sets)
    assert _fx_fast._lean_classes(compiled.modules()) is None
    compiled.block._compiled_call_impl = None
    compiled.touched = []
    _trace._Tracer().trace(compiled, None)
    assert compiled.touched == [False]


class _ShapeRef(_trace._ShapeTracer):
    create_node = torch.fx.Tracer.create_node
    call_module = torch.fx.Tracer.call_module

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        return attr_val if getattr(self, "_quiet", False) else \
            torch.fx.Tracer.getattr(self, attr, attr_val, parameter_proxy_cache)


def test_the_shape_tracer_gives_torch_fx_nodes_too(monkeypatch):
    """The fallback tracer for control flow on shapes (swin_t's padding branches) makes the same nodes."""
    fast_model, ref_model = zoo("swin_t").eval(), zoo("swin_t").eval()
    x = torch.zeros((1, 3, 64, 64), device="meta")
    fast = _trace._ShapeTracer(x).trace(fast_model, _trace._defaults(fast_model))
    monkeypatch.setattr(_fx_fast, "LEAN_TRACE", False)  # torch.fx's own trace under the shape tracer's
    ref = _ShapeRef(x).trace(ref_model, _trace._defaults(ref_model))
    assert fx_signature(fast) == fx_signature(ref)
    stored = sorted(k for k in vars(fast_model) if k.startswith("_tensor_constant"))
    assert stored == sorted(k for k in vars(ref_model) if k.startswith("_tensor_constant"))
    assert all(torch.equal(getattr(fast_model, k), getattr(ref_model, k)) for k in stored)


# ------------------------------------------------------------ remedy layers' shapes

def fast_and_meta_shapes(model, shape) -> tuple[bool, dict, dict]:
    """(whether the fast pass knew every layer, its shapes, the meta-device pass's shapes) of ``model``."""
    fx = _trace._fx_graph(model, shape, _trace._caches([m for _, m in _trace._named_modules(model)]), set(), None)
    known = _shapes.infer_shapes(model, fx, shape, torch.float32)
    fast = {n.name: tuple(n.meta.pop("tensor_meta").shape) for n in fx.nodes if "tensor_meta" in n.meta}
    with torch_kernels():
        _trace._propagate_shapes(model, fx, shape, torch.float32, "cpu")
    return known, fast, {n.name: tuple(n.meta["tensor_meta"].shape) for n in fx.nodes if "tensor_meta" in n.meta}


@pytest.mark.parametrize("remedy", edgewise.remedies.names())
@pytest.mark.parametrize("spec, shape", [("conv64/s4, conv64/s4", (1, 512)), ("2*conv3, maxpool2, conv3", (1, 20, 18)),
                                         ("conv3/s2, conv5/d2, maxpool2, conv3", (2, 33, 29))])
def test_remedy_layers_get_the_meta_pass_shapes_without_it(remedy, spec, shape):
    """edgewise's remedy layers (partial, CoordConv, global connections, padding modes) take their shapes from
    their own windows: no meta-device pass (which imports torch._dynamo in a fresh process)."""
    model = edgewise.remedies.apply(edgewise.nets.from_spec(spec, shape), remedy, input_shape=shape)
    known, fast, meta = fast_and_meta_shapes(model, shape)
    assert known and fast == meta


def test_a_users_own_windowed_convolution_keeps_the_meta_pass():
    """A user's edgewise_op describes connectivity; its shapes still come from running it, so that a description
    that disagrees with what the layer does is caught by the trace's shape check."""
    class Cropping(nn.Conv2d):
        def edgewise_op(self, ndim):
            return "conv", tuple(Window(3, 1, 1, (1, 1)) for _ in range(ndim))  # claims 'same'; the layer is 'valid'

    model = nn.Sequential(Cropping(1, 2, 3))
    known, _, meta = fast_and_meta_shapes(model, (1, 8, 8))
    assert not known and meta["_0"] == (1, 2, 6, 6)
    with pytest.raises(EdgewiseError, match="maps"):
        edgewise.trace(model, (1, 8, 8))


def test_node_ops_name_functions_without_memory_addresses():
    """A Graph node's ``op`` is the same in every process: a qualified name, never a repr with an address."""
    import functools

    class Call:
        def __call__(self, x):
            return x

    assert [_trace._qualname(f) for f in (torch.mean, operator.add, F.relu, "add")] == \
        ["torch.mean", "operator.add", "F.relu", "add"]
    for odd in (functools.partial(torch.add, other=1), Call()):
        assert " at 0x" not in _trace._qualname(odd) and not _trace._qualname(odd).startswith("<")
    from test_modern import small

    for family in ("vit", "swin", "maxvit"):  # tokens added off the canonical layout (Layout's own nodes)
        graph = edgewise.trace(small(family)[0].eval(), small(family)[1])
        assert not [n.op for n in graph if "0x" in n.op or n.op.startswith("<")], family


def test_a_trace_under_another_name_is_the_same_graph(monkeypatch):
    """The name only labels the Graph: tracing the same model under two names (a remedy comparison names each
    variant; the sensitivity engine traces it unnamed) traces once, and each call gets its own name."""
    import edgewise._trace as tr
    from edgewise import nets, trace

    calls = []
    real = tr._trace
    monkeypatch.setattr(tr, "_trace", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = nets.from_spec("3*conv3, maxpool2", (1, 16, 16))
    named = trace(model, (1, 16, 16), name="circular")
    plain = trace(model, (1, 16, 16))
    again = trace(model, (1, 16, 16), name="circular")
    assert len(calls) == 1
    assert (named.model_name, plain.model_name, again.model_name) == ("circular", "Sequential", "circular")
    assert plain.nodes == named.nodes and list(plain.nodes) == list(named.nodes)

"""``edgewise._meta``: the meta tensors it makes without running an op are the ones torch makes (shape, dtype,
strides), or None where its shortcut does not apply (then torch runs the op, and raises the model's own error);
and the shape passes take them instead of running the op."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgewise import _meta, _shapes, _trace


def meta(*shape, dtype=torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def call(target, args, kwargs):
    return getattr(args[0], target)(*args[1:], **kwargs) if isinstance(target, str) else target(*args, **kwargs)


X = meta(2, 3, 4)
MADE = [
    (operator.add, (X, meta(3, 1)), {}), (operator.mul, (X, 2), {}), (operator.truediv, (1.5, X), {}),
    (torch.sub, (meta(1, 3, 1), meta(2, 1, 4)), {}), ("mul", (X, meta(4)), {}), ("div", (X, meta()), {}),
    (operator.add, (meta(2, 3, dtype=torch.float16), 0.5), {}), (torch.add, (meta(), meta()), {}),
    (F.linear, (X, meta(5, 4), meta(5)), {}), (F.linear, (meta(4), meta(5, 4)), {}),
    (F.linear, (X,), {"weight": meta(5, 4)}), (F.linear, (X, nn.Parameter(meta(5, 4))), {"bias": None}),
    (F.layer_norm, (X, (4,), meta(4), meta(4), 1e-6), {}), (F.layer_norm, (X, [3, 4]), {"weight": meta(3, 4)}),
    (F.layer_norm, (X, torch.Size([2, 3, 4])), {}), (F.rms_norm, (X, (4,), meta(4)), {"eps": 1e-6}),
    (F.normalize, (X,), {"dim": -1}), (F.normalize, (X, 2.0, 0), {}),
    (F.normalize, (X,), {}), (torch.cat, ([X, meta(2, 5, 4)], 1), {}), (torch.cat, ((X, X),), {"dim": -1}),
    (torch.cat, ([X],), {}), (torch.cat, (), {"tensors": [X, X], "dim": 0}),
    (F.layer_norm, (X.transpose(1, 2), (3,)), {}), (F.rms_norm, (meta(2, 4, 6, 8).permute(0, 2, 3, 1), (4,)), {}),
    (F.interpolate, (meta(2, 3, 8, 8),), {"scale_factor": 2.5, "mode": "bicubic"}),
    (F.interpolate, (meta(2, 3, 8, 8), (5, 7)), {}), (F.interpolate, (meta(2, 3, 8, 8), 3, None, "nearest-exact"), {}),
    (F.interpolate, (meta(2, 3, 7),), {"scale_factor": 0.5, "mode": "linear", "align_corners": True}),
    (F.interpolate, (meta(1, 2, 3, 4, 5),), {"scale_factor": (2, 1.5, 0.7), "mode": "trilinear"}),
    (F.interpolate, (meta(2, 3, 9, 8),), {"size": (4, 4), "mode": "bilinear", "antialias": True}),
    (F.interpolate, (meta(2, 3, 9, 8),), {"scale_factor": 1.3, "mode": "area", "recompute_scale_factor": True}),
    (F.gelu, (X,), {}), (F.gelu, (X,), {"approximate": "tanh"}), (F.silu, (X,), {"inplace": False}),
    (torch.rsqrt, (X,), {}), ("exp", (X,), {}), (operator.neg, (X,), {}), ("sigmoid", (X,), {}), (torch.abs, (X,), {}),
    (operator.pow, (X, 2), {}), ("pow", (X, 0.5), {}), (torch.pow, (2.0, X), {}), (operator.pow, (X, meta(4)), {}),
    (torch.mean, (X, 1), {}), ("mean", (X, (0, 2)), {"keepdim": True}), ("sum", (X,), {"dim": -1}),
    (torch.amax, (X, [1, 2], True), {}), ("amin", (X, 0), {}),
    (F.scaled_dot_product_attention, (meta(1, 4, 16, 8), meta(1, 4, 9, 8), meta(1, 4, 9, 10)), {}),
    (F.scaled_dot_product_attention, meta(1, 16, 3, 4, 8).permute(2, 0, 3, 1, 4).unbind(0), {}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8)), {"attn_mask": meta(16, 9)}),
    (F.scaled_dot_product_attention, (meta(2, 4, 16, 8), meta(2, 4, 9, 8), meta(2, 4, 9, 8)),
     {"attn_mask": torch.empty(2, 1, 16, 9, dtype=torch.bool, device="meta"), "scale": 0.3, "dropout_p": 0.0}),
    (F.scaled_dot_product_attention, (meta(1, 4, 16, 8), meta(1, 4, 16, 8), meta(1, 4, 16, 8)), {"is_causal": True}),
    (F.scaled_dot_product_attention, (meta(2, 1, 4, 16, 8), meta(2, 1, 4, 9, 8), meta(2, 1, 4, 9, 8)), {}),
    (torch.clamp, (X, meta(), meta(4)), {}), ("clamp", (X,), {"min": meta()}), (torch.clip, (X, None, meta(4)), {}),
]
REFUSED = [
    (operator.add, (X.transpose(0, 2), X.transpose(0, 2)), {}),  # not contiguous: torch keeps the layout
    (operator.add, (X, meta(4, dtype=torch.float64)), {}),  # promoted
    (operator.add, (meta(2, 3, dtype=torch.int64), 1.5), {}),  # a whole-number tensor becomes floating
    (operator.add, (X, True), {}), (operator.mul, (X, 1j), {}), (torch.add, (X, X), {"alpha": 2}),
    (operator.iadd, (X, X), {}), ("add_", (X, X), {}), (F.relu, (X,), {}), (operator.add, (X, torch.empty(4)), {}),
    (F.linear, (X, meta(5, 4, dtype=torch.float64)), {}), (F.linear, (X, meta(5, 3)), {}),
    (F.linear, (X, meta(5, 4), meta(4)), {}), (F.linear, (meta(), meta(5, 4)), {}), (F.linear, (X, meta(4)), {}),
    (F.linear, (X, meta(5, 4), None, None), {}),
    (F.layer_norm, (X, (3,)), {}), (F.layer_norm, (X, (4,), meta(3)), {}), (F.layer_norm, (X, (2, 2, 3, 4)), {}),
    (F.layer_norm, (X, ()), {}), (F.rms_norm, (X, (4,)), {"bias": meta(4)}), (F.rms_norm, (X, 4), {}),
    (F.layer_norm, (X, (4.0,)), {}),
    (F.layer_norm, (X, (4,), None, meta(4, dtype=torch.float16)), {}), (F.layer_norm, (X.int(), (4,)), {}),
    (F.normalize, (X,), {"dim": 3}), (F.normalize, (X.transpose(0, 1),), {}), (F.normalize, (X,), {"out": X}),
    (torch.cat, ([X, meta(2, 5, 3)], 1), {}), (torch.cat, ([X, meta(2, 3)], 0), {}), (torch.cat, ([],), {}),
    (torch.cat, ([X, meta(2, 3, 4, dtype=torch.float16)],), {}), (torch.cat, ([X, X], 3), {}),
    (torch.cat, ([meta(), meta()],), {}), (torch.cat, (X, 0), {}),
    (F.interpolate, (meta(2, 3, 8, 8).to(memory_format=torch.channels_last), 4), {}),  # (kept channels-last)
    (F.interpolate, (meta(2, 3, 8, 8), 4), {"antialias": True}), (F.interpolate, (X, 4), {"mode": "bilinear"}),
    (F.interpolate, (meta(2, 3, 8, 8), 4, 2.0), {}), (F.interpolate, (meta(2, 3, 8, 8),), {}),
    (F.interpolate, (meta(2, 3, 8, 8), 4), {"align_corners": True}),
    (F.gelu, (X.transpose(0, 1),), {}), (F.silu, (X,), {"inplace": True}), ("exp", (X, X), {}),
    (torch.sqrt, (X.int(),), {}), (torch.sum, (X,), {}), ("sum", (X, 1), {"dtype": torch.float64}),
    ("amax", (X,), {}), (torch.mean, (X.transpose(0, 2), 1), {}), ("mean", (X, (1, 1)), {}),
    (operator.pow, (X.int(), 2), {}), (torch.mean, (X, 3), {}),
    (F.scaled_dot_product_attention, (meta(1, 4, 16, 8), meta(1, 2, 9, 8), meta(1, 2, 9, 8)), {"enable_gqa": True}),
    (F.scaled_dot_product_attention, (meta(1, 4, 16, 8), meta(1, 1, 9, 8), meta(1, 1, 9, 8)), {}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8)), {"dropout_p": 0.1}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8)), {"attn_mask": meta(9, 16)}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8)),
     {"attn_mask": meta(16, 9, dtype=torch.float16)}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8, dtype=torch.float16)), {}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 8), meta(4, 9, 8)),
     {"attn_mask": meta(16, 9), "is_causal": True}),
    (F.scaled_dot_product_attention, (meta(4, 16, 8), meta(4, 9, 7), meta(4, 9, 8)), {}),
    (F.scaled_dot_product_attention, (meta(16, 8), meta(9, 8), meta(9, 8)), {}),
    (torch.clamp, (X.transpose(0, 2), meta()), {}), (torch.clamp, (X, meta(5, 3, 4)), {}),
    (torch.clamp, (X, meta(dtype=torch.float64)), {}), (torch.clamp, (X, None, None), {}),
    (torch.clamp, (X, 0.0, meta(4)), {}),
]


@pytest.mark.parametrize("case", range(len(MADE)))
def test_made_as_torch_makes_it(case):
    target, args, kwargs = MADE[case]
    out, ref = _meta.result(target, args, kwargs), call(target, args, kwargs)
    assert out is not None
    assert (out.shape, out.dtype, out.stride(), out.device) == (ref.shape, ref.dtype, ref.stride(), ref.device)


@pytest.mark.parametrize("case", range(len(REFUSED)))
def test_left_to_torch(case):
    target, args, kwargs = REFUSED[case]
    assert _meta.result(target, args, kwargs) is None


def test_operands_that_do_not_broadcast_raise_as_torch_does():
    with pytest.raises(RuntimeError):
        _meta.result(operator.add, (meta(2, 3), meta(4)), {})
    with pytest.raises(RuntimeError):
        meta(2, 3) + meta(4)


def test_linear_layers_are_made_and_others_run():
    layer = nn.Linear(4, 5)
    out, ref = _meta.module_result(layer, (X,), {}), layer.to("meta")(X)
    assert (out.shape, out.dtype, out.stride()) == (ref.shape, ref.dtype, ref.stride())
    assert _meta.module_result(nn.Linear(4, 5, bias=False), (X,), {}).shape == (2, 3, 5)
    assert _meta.module_result(nn.Linear(3, 5), (X,), {}) is None  # (torch raises the model's error)
    assert _meta.module_result(nn.Linear(4, 5).double(), (X,), {}) is None
    assert _meta.module_result(nn.Linear(4, 5), (X,), {"extra": 1}) is None
    assert _meta.module_result(nn.LazyLinear(5), (X,), {}) is None  # (a subclass: its own forward)
    assert _meta.module_result(nn.Conv1d(3, 5, 1), (X,), {}) is None


class Shapes(nn.Module):
    """Control flow on a size (only the shape tracer traces it) through the layers and functions ``_meta`` makes:
    batch norm, linear layers, layer and RMS norms, normalize, cat, arithmetic and clamps."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.fc, self.norm = nn.Linear(8, 8), nn.LayerNorm(8)
        self.w = nn.Parameter(torch.ones(8))

    def forward(self, x):
        y = self.bn(self.conv(x))
        if y.shape[-1] % 2 == 0:
            y = y * 2
        t = self.fc(y.flatten(2).transpose(1, 2).contiguous())
        t = torch.cat([self.norm(t), F.layer_norm(t, (8,)), F.rms_norm(t, (8,), self.w)], -1) + 1.0
        return F.normalize(torch.clamp(t, min=self.w[0]) - t / 3 * 0.5, dim=-1)


@pytest.mark.parametrize("shape", [(3, 4, 6), (3, 5, 5)])
@pytest.mark.parametrize("meta_pass", [False, True])
def test_the_shape_passes_take_them_and_trace_as_with_torch_kernels(shape, meta_pass, monkeypatch):
    """The shape tracer (or the meta pass after it) makes the layers' and functions' results here instead of running
    them, and the Graph is the one torch's own meta kernels give."""
    model = Shapes().eval()
    with pytest.raises(Exception):
        _trace._Tracer().trace(model)  # (the shape tracer's case)
    if meta_pass:  # (the shape tracer's values not taken: the meta pass runs)
        monkeypatch.setattr(_trace, "_take_traced", lambda *a: False)
    monkeypatch.setattr(_trace, "infer_shapes", lambda *a: False)
    result, module_result = _meta.result, _meta.module_result
    with monkeypatch.context() as torch_only:
        torch_only.setattr(_meta, "result", lambda *a: None)
        torch_only.setattr(_meta, "module_result", lambda *a: None)
        reference = _trace._trace(model, shape, None)
    made, ran = [], []
    def spy(made_by, key):
        def one(target, args, kwargs):
            out = made_by(target, args, kwargs)
            if out is not None:
                made.append(key(target))
            return out
        return one

    monkeypatch.setattr(_meta, "result", spy(result, lambda t: t))
    monkeypatch.setattr(_meta, "module_result", spy(module_result, type))
    for cls in (nn.Linear, nn.BatchNorm2d, nn.LayerNorm):  # (norms: passed through)
        monkeypatch.setattr(cls, "forward", lambda self, *a, _f=cls.forward: ran.append(type(self)) or _f(self, *a))
    assert list(_trace._trace(model, shape, None).nodes.items()) == list(reference.nodes.items())
    assert not ran
    assert {nn.Linear, F.layer_norm, F.rms_norm, F.normalize, torch.cat, operator.add, operator.mul, operator.sub,
            operator.truediv, torch.clamp} <= set(made)


class Held(nn.Module):
    """A plain tensor attribute (not a buffer: timm's rotary bands) times a grid made on a device the trace read
    from it (a constant in the graph), through an op the one-pass shapes leave to the meta pass."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bands = torch.linspace(1.0, 2.0, 4).view(1, 4, 1, 1)

    def forward(self, x):
        y = self.conv(x)
        grid = torch.ones(1, 1, y.shape[2], y.shape[3], device=self.bands.device)
        return (y * self.bands * grid).repeat_interleave(2, dim=1)


def test_the_meta_pass_reads_held_tensors_and_fixed_devices_on_the_meta_device(monkeypatch):
    """Without running the model again on the CPU (what it falls back to when an op meets a CPU tensor), and with
    the shapes a CPU run gives."""
    model, shape = Held().eval(), (3, 5, 6)
    inputs = []
    run = _trace._ShapeProp.run
    monkeypatch.setattr(_trace._ShapeProp, "run", lambda self, x: inputs.append(x.device.type) or run(self, x))
    fx = _trace._fx_graph(model, shape, [], set(), None)
    assert not _shapes.infer_shapes(model, fx, shape, torch.float32)
    _trace._propagate_shapes(model, fx, shape, torch.float32, "cpu")
    assert inputs == ["meta"]
    on_cpu = _trace._fx_graph(model, shape, [], set(), None)
    _trace._ShapeProp(model, on_cpu).run(torch.zeros(1, *shape))
    shapes = [(n.name, tuple(n.meta["tensor_meta"].shape)) for n in fx.nodes if "tensor_meta" in n.meta]
    assert shapes == [(n.name, tuple(n.meta["tensor_meta"].shape)) for n in on_cpu.nodes if "tensor_meta" in n.meta]
    assert shapes[-1] == ("output", (1, 8, 5, 6))

"""A fresh process's start-up: forward FLOPs counted from shapes (the same numbers as torch's FlopCounterMode,
without the torch._dynamo import it costs), and the report's Pascal diagrams written by the figure worker (the
same files as draw_diagram / draw_strip write)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings

from edgewise import limits, nets
from edgewise.remedies import REMEDIES, apply
from edgewise.report.builder import DEFAULT_MODELS
from edgewise.testing.random_nets import random_net


def _reference(module, shape) -> int:
    """FlopCounterMode's count of one forward pass (what forward_cost returned before)."""
    from torch.utils.flop_counter import FlopCounterMode

    module.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(torch.zeros((1, *shape)))
    return int(counter.get_total_flops())


def _shape_count(module, shape) -> tuple[int, str | None]:
    """(the count from shapes, the first function it could not count)."""
    module.eval()
    with torch.no_grad(), limits._ShapeFlops() as counted:
        module(torch.zeros((1, *shape)))
    return counted.flops, counted.unknown


def _default_nets_and_remedies():
    for spec, shape in DEFAULT_MODELS:
        net = nets.from_spec(spec, shape)
        yield spec, net, shape
        for remedy in REMEDIES:
            try:
                yield f"{spec} {remedy}", apply(net, remedy, input_shape=shape), shape
            except Exception:  # noqa: BLE001 - a remedy that does not fit this net (valid, nonoverlapping)
                continue


class _Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(2, 3, 3, stride=2, groups=1)
        self.down = nn.Conv2d(3, 4, 3, dilation=2, groups=1, padding="same")
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        return self.head(self.down(self.up(x)).mean((2, 3)))


class _Attention(nn.Module):
    """A product the shape count does not know (an einsum): counted by FlopCounterMode."""

    def forward(self, x):
        q = x.flatten(2)
        return torch.softmax(torch.einsum("bci,bcj->bij", q, q), -1)


class _Products(nn.Module):
    """Matrix products the shape count knows: ``@`` of stacks, and ``torch.matmul`` broadcasting a matrix over a
    stack of groups (as ``global_conv`` mixes channels)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, 5, 3))

    def forward(self, x):
        q = x.flatten(2)  # (1, 6, 12)
        scores = torch.softmax(q.transpose(1, 2) @ q, -1)  # (1, 12, 12)
        return torch.matmul(self.w, (q @ scores).reshape(1, 2, 3, 12))  # (1, 2, 5, 12)


def _torchvision(name):
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


@pytest.mark.parametrize("make, shape", [
    (lambda: _torchvision("resnet18"), (3, 32, 32)),
    (lambda: _torchvision("mobilenet_v3_small"), (3, 32, 32)),
    (lambda: _torchvision("efficientnet_b0"), (3, 32, 32)),
    (lambda: _torchvision("densenet121"), (3, 32, 32)),
    (lambda: nets.from_spec("16*conv3", (1, 16, 16)), (1, 16, 16)),
    (lambda: _Transposed(), (2, 7, 9)),
    (lambda: _Products(), (6, 3, 4)),
], ids=["resnet18", "mobilenet_v3_small", "efficientnet_b0", "densenet121", "spec", "transposed", "products"])
def test_shape_count_equals_flop_counter(make, shape, monkeypatch):
    module = make()
    flops, unknown = _shape_count(module, shape)
    assert unknown is None
    assert flops == _reference(module, shape) > 0
    _no_flop_counter(monkeypatch)
    assert limits.forward_cost(module, shape)[1] == flops


def _no_flop_counter(monkeypatch):
    """forward_cost may not fall back to FlopCounterMode (it imports torch._dynamo)."""
    import torch.utils.flop_counter

    def refuse(*args, **kwargs):
        raise AssertionError("forward_cost fell back to FlopCounterMode")

    monkeypatch.setattr(torch.utils.flop_counter, "FlopCounterMode", refuse)


def test_default_page_nets_and_remedies_counted_from_shapes(monkeypatch):
    expected = {name: _reference(module, shape) for name, module, shape in _default_nets_and_remedies()}
    _no_flop_counter(monkeypatch)
    seen = 0
    for name, module, shape in _default_nets_and_remedies():
        flops, unknown = _shape_count(module, shape)
        assert unknown is None, name
        assert flops == limits.forward_cost(module, shape)[1] == expected[name], name
        seen += 1
    assert seen >= 2 * (len(REMEDIES) - 1)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_net(linear=True))
def test_random_nets_counted_like_flop_counter(case):
    """Residual, branching, grouped/depthwise, strided, dilated, padded, pooled, up-sampled nets with linear
    heads: the count from shapes (or the fallback) equals FlopCounterMode's."""
    assert limits.forward_cost(case.model, case.input_shape)[1] == _reference(case.model, case.input_shape)


def test_unknown_functions_fall_back_to_flop_counter():
    module, shape = _Attention(), (2, 3, 4)
    assert _shape_count(module, shape)[1] == "einsum"
    assert limits.forward_cost(module, shape)[1] == _reference(module, shape) == 2 * 12 * 2 * 12


def test_activation_bytes_unchanged():
    net = nets.from_spec("conv8, maxpool2, conv8", (1, 16, 16))
    leaves = [m for m in net.modules() if not list(m.children())]
    outputs, x = [], torch.zeros(1, 1, 16, 16)
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.nbytes)) for m in leaves]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    assert limits.forward_cost(net, (1, 16, 16))[0] == sum(outputs) > 0


def test_counting_imports_no_dynamo():
    """torch._dynamo's first import takes ~1.5 s of a fresh process: counting a spec net's forward pass, and
    the loop engine's sensitivity, need none (vmap's gradients import it, through torch.func)."""
    code = ("import sys; from edgewise import limits, nets; from edgewise.sensitivity import init_sensitivity; "
            "limits.forward_cost(nets.from_spec('4*conv3', (1, 12, 12)), (1, 12, 12)); "
            "init_sensitivity('4*conv3', (1, 12, 12), n_inits=2, chunk=1); print('torch._dynamo' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "False"


def _svg(path) -> str:
    """An SVG without what differs between two saves of one figure (its date, its random clip-path, marker and
    image ids)."""
    import re

    text = re.sub(r"<dc:date>[^<]*</dc:date>", "", path.read_text())
    return re.sub(r"\b([mp]|image)[0-9a-f]{10}\b", r"\1", text)


@pytest.mark.parametrize("draw, spec, shape, padding, parallel", [
    ("draw_diagram", "2*conv3, maxpool2, 2*conv3", (1, 20), "reflect", True),
    ("draw_diagram", "2*conv3, maxpool2, 2*conv3", (1, 20), "reflect", False),
    ("draw_strip", nets.QUESTION_SPEC, (1, 256), "same", True),
], ids=["neurons-worker", "neurons-here", "strip-worker"])
def test_a_diagram_written_by_the_renderer_is_the_one_draw_writes(tmp_path, draw, spec, shape, padding, parallel):
    """The report sketches its Pascal diagrams and has the figure worker write them: the same PNG bytes and SVG
    (hover titles included) as draw_diagram / draw_strip, the PNG as wide as the report's check assumes."""
    from matplotlib.image import imread

    from edgewise.report import diagram, render
    from edgewise.report.figures import png_size

    fn = getattr(diagram, draw)
    direct = fn(spec, shape, padding, out=tmp_path / "direct" / "p.svg")
    fig, titles, sketched = diagram.sketch(fn, spec, shape, padding, out=tmp_path / "report" / "p.svg")
    r = render.Renderer(parallel)
    try:
        text, png = r.figure(fig, tmp_path / "report" / "p", "p", "caption", (10, 10), titles)
        page = r.fill(text)
    finally:
        r.close()
    assert (png, png.with_suffix(".svg")) == (sketched.png, sketched.svg)
    assert sketched.png.read_bytes() == direct.png.read_bytes()
    assert _svg(sketched.svg) == _svg(direct.svg) and "<title>" in _svg(sketched.svg)
    assert png_size(fig) == imread(direct.png).shape[1::-1]
    assert (sketched.rows, sketched.drawn, sketched.style) == (direct.rows, direct.drawn, direct.style)
    assert 'id="p"' in page and 'width="10"' in page


def _reference_plain_attention(module, shape) -> int:
    """FlopCounterMode's count with nn.MultiheadAttention on its plain path (its fused fast path, taken in eval mode
    without gradients, is one kernel FlopCounterMode counts as nothing)."""
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        return _reference(module, shape)
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def _small_transformers():
    from torchvision.models import maxvit, swin_transformer, vision_transformer

    torch.manual_seed(0)
    yield "vit", vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                      hidden_dim=16, mlp_dim=32, num_classes=4), (3, 32, 32)
    yield "swin", swin_transformer.SwinTransformer([4, 4], 16, [1, 1], [2, 2], [2, 2], num_classes=4), (3, 32, 32)
    yield "swin_v2", swin_transformer.SwinTransformer([4, 4], 16, [1, 1], [2, 2], [2, 2], num_classes=4,
                                                      block=swin_transformer.SwinTransformerBlockV2,
                                                      downsample_layer=swin_transformer.PatchMergingV2), (3, 32, 32)
    yield "maxvit", maxvit.MaxVit((64, 64), 8, 2, [16], [1], 8, 0.0, num_classes=4), (3, 64, 64)


@pytest.mark.parametrize("name", ["vit", "swin", "swin_v2", "maxvit"])
def test_transformers_counted_in_one_pass(name, monkeypatch):
    """Swin's masks and normalisations are counted from shapes; ViT's attention and MaxViT's einsum run under
    FlopCounterMode inside the same pass (no second forward), and the sum is FlopCounterMode's over the whole
    pass."""
    module, shape = next((m, s) for n, m, s in _small_transformers() if n == name)
    want = _reference_plain_attention(module, shape)
    passes = []
    module.register_forward_pre_hook(lambda *a: passes.append(1))
    assert limits.forward_cost(module, shape)[1] == want > 0 and len(passes) == 1
    unknown = _shape_count(module, shape)[1]
    assert unknown == {"vit": "multi_head_attention_forward", "maxvit": "einsum"}.get(name), unknown

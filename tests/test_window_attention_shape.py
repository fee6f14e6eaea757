"""The shape rule for torchvision's ``shifted_window_attention`` (``_shapes._window_attention``) against running the
function on meta tensors (``_shapes._on_meta``, what the shape pass does for the other functions torch.fx keeps
whole): equal on Swin V1 and V2 at input sizes that are and are not whole windows; no answer (the meta run decides)
where the operands do not fit the function."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torchvision
from torchvision.models.swin_transformer import shifted_window_attention

from edgewise import _shapes, _trace


def both_ways(monkeypatch, model, shape) -> list:
    """(rule, meta) shapes of every call the shape pass makes of the function, tracing ``model`` at ``shape``."""
    seen, rule = [], _shapes._window_attention

    def check(node, shapes):
        got = rule(node, shapes)
        if node.target is shifted_window_attention:
            seen.append((got, _shapes._on_meta(model, node, shapes, {}, torch.float32)))
        return got

    monkeypatch.setattr(_shapes, "_window_attention", check)
    _trace._trace(model, shape, None)
    return seen


@pytest.mark.parametrize("name, shape", [("swin_t", (3, 224, 224)), ("swin_t", (3, 200, 232)),
                                         ("swin_v2_t", (3, 160, 160)), ("swin_v2_t", (3, 96, 136))])
def test_the_rule_gives_the_shape_the_function_gives_on_meta(monkeypatch, name, shape):
    calls = both_ways(monkeypatch, torchvision.models.get_model(name).eval(), shape)
    assert len(calls) == 12
    assert all(rule == meta for rule, meta in calls)


class Operands(nn.Module):
    """The function's weights for C = 8 and windows of 4×4: projection to ``out`` channels, ``heads`` heads."""

    def __init__(self, out: int = 8, heads: int = 2):
        super().__init__()
        self.qkv, self.proj = nn.Linear(8, 24), nn.Linear(8, out)
        self.register_buffer("bias", torch.zeros(1, heads, 16, 16))


@pytest.mark.parametrize("out, heads, fits", [(8, 2, True), (6, 2, False), (8, 3, False)])
def test_operands_that_do_not_fit_are_left_to_the_meta_run(out, heads, fits):
    model = Operands(out, heads)
    graph = torch.fx.Graph()
    x = graph.placeholder("x")
    attrs = {k: graph.get_attr(k) for k in ("qkv.weight", "proj.weight", "bias", "qkv.bias", "proj.bias")}
    node = graph.call_function(shifted_window_attention, (
        x, attrs["qkv.weight"], attrs["proj.weight"], attrs["bias"], [4, 4], heads, [2, 2]),
        {"qkv_bias": attrs["qkv.bias"], "proj_bias": attrs["proj.bias"], "training": False})
    shapes = {x: (1, 8, 8, 8), **{n: tuple(model.get_parameter(k).shape if k != "bias" else model.bias.shape)
                                  for k, n in attrs.items()}}
    assert (_shapes._window_attention(node, shapes) == (1, 8, 8, 8)) is fits
    if fits:
        assert _shapes._on_meta(model, node, shapes, {}, torch.float32) == (1, 8, 8, 8)
    else:
        with pytest.raises(_shapes._Unknown):  # (the function itself fails on these operands)
            _shapes._on_meta(model, node, shapes, {}, torch.float32)

"""Tracing real modules into a Graph: shapes, op mapping, names and errors."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgewise import EdgewiseError, nets, trace
from edgewise._axis import Adaptive, Resample, Window


class Functional(nn.Module):
    """Functional ops, a reused module, broadcasting and concatenation."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect")
        self.b = nn.Conv2d(2, 4, (3, 1), stride=(2, 1), padding=(1, 0))
        self.act = nn.ReLU()
        self.gate = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8 * 6 * 4, 3)

    def forward(self, x):
        y = self.act(self.a(F.pad(x, (1, 0, 2, 1))))  # asymmetric pad: left 1, right 0, top 2, bottom 1
        y = F.max_pool2d(y, 2, ceil_mode=True)
        z = self.act(self.b(x))
        u = torch.cat([y, F.interpolate(z, size=y.shape[-2:], mode="nearest")], dim=1)
        u = u * torch.sigmoid(self.gate(u.mean([2, 3], keepdim=True)))
        return self.head(u.view(u.size(0), -1))


def activations(model, x):
    """Real output shape of every leaf module (without the batch axis)."""
    shapes, hooks = {}, []
    for name, m in model.named_modules():
        if not list(m.children()):
            hooks.append(m.register_forward_hook(lambda m, i, o, name=name: shapes.setdefault(name, tuple(o.shape[1:]))
                                                 and None))
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


def test_functional_model_shapes_and_ops():
    model = Functional()
    g = trace(model, (2, 9, 6))
    real = activations(model, torch.zeros(1, 2, 9, 6))
    for name, shape in real.items():
        assert g[name].shape == shape, name
    assert g["act"].shape == (4, 12, 7) and g["act#1"].shape == (4, 5, 6)  # reused module: #1 suffix
    pad = next(n for n in g if n.op == "F.pad")
    assert pad.axes == (Window(1, 1, 1, (2, 1), "zeros"), Window(1, 1, 1, (1, 0), "zeros"))
    assert g["a"].axes[0].mode == "reflect" and g["b"].axes == (Window(3, 2, 1, (1, 1)), Window(1, 1, 1, (0, 0)))
    pool = next(n for n in g if n.op == "F.max_pool2d")
    assert pool.axes[0].ceil_mode and pool.shape == (4, 6, 4)
    kinds = {n.kind for n in g}
    assert kinds >= {"input", "conv", "pool", "cat", "mul", "reshape", "linear", "identity"}
    assert isinstance(next(n for n in g if n.op == "F.interpolate").axes[0], Resample)
    mean = next(n for n in g if n.op == "mean")
    assert mean.axes == (Adaptive(), Adaptive()) and mean.shape == (8, 1, 1)
    assert g.output == "head" and g[g.output].shape == (3,)


def test_non_square_axes_are_not_transposed():
    conv = nn.Conv2d(1, 1, (5, 1), stride=(1, 3), padding=(2, 0))
    g = trace(conv, (1, 10, 7))
    assert g[g.output].shape == (1, 10, 3)
    assert g[g.output].axes[0].kernel == 5 and g[g.output].axes[1].stride == 3


def test_training_flags_restored_after_success_and_error():
    model = Functional().train()
    trace(model, (2, 9, 6))
    assert all(m.training for m in model.modules())
    with pytest.raises(EdgewiseError):
        trace(model, (2, 3, 3))  # too small for the Linear head
    assert all(m.training for m in model.modules())


def test_unsupported_op_names_layer():
    class Transposer(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return torch.sort(self.conv(x), dim=3).values

    with pytest.raises(EdgewiseError, match=r"layer 'sort' of Transposer uses torch.sort"):
        trace(Transposer(), (1, 8, 8))


def test_untraceable_and_bad_models():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(EdgewiseError, match="could not trace Branchy with torch.fx.*control flow"):
        trace(Branchy(), (1, 4))

    class TwoOut(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(EdgewiseError, match="not a single tensor"):
        trace(TwoOut(), (1, 4))
    with pytest.raises(EdgewiseError, match="does not run on an input of shape 1x3x3") as e:
        trace(nn.Conv2d(1, 1, 5), (1, 3, 3))
    assert "Its first convolution" not in str(e.value)  # (axes and channels agree: the size is what fails)


def test_an_input_of_the_wrong_rank_or_channels_is_told_what_the_first_convolution_takes():
    """torch's own message for `-i 3x16` on ResNet ("expected input[1, 1, 3, 16] to have 3 channels, but got 1")
    names neither the 2-D convolution nor a shape that works."""
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    with pytest.raises(EdgewiseError, match=r"Its first convolution, 0 \(Conv2d\), has 2 spatial axes and the input "
                       r"1: pass channels × H × W, e.g. 3x224x224$"):
        trace(net, (3, 16))
    with pytest.raises(EdgewiseError, match=r"Its first convolution, 0, takes 3 channels and the input has 1: "
                       r"e.g. 3x224x224$"):
        trace(net, (1, 16, 16))
    with pytest.raises(EdgewiseError, match=r"\(Conv1d\), has 1 spatial axis and the input 2: pass channels × L, "
                       r"e.g. 1x224$"):
        trace(nn.Conv1d(1, 2, 3), (1, 8, 8))
    with pytest.raises(EdgewiseError, match="expects an nn.Module"):
        trace("3*conv3", (1, 4))
    with pytest.raises(EdgewiseError, match="C×L"):
        trace(nn.Conv1d(1, 1, 3), "1x2x3x4")


def test_lookup_suggests_close_names():
    g = trace(nets.from_spec("3*conv3", (1, 16)), (1, 16))
    assert [n.name for n in g][:3] == ["input", "conv1", "relu1"]
    with pytest.raises(EdgewiseError, match="Did you mean 'conv2'"):
        g["conv22"]


def test_spec_net_graph_and_symmetric_pad():
    g = trace(nets.from_spec("conv3, res(conv3, conv3/s2/c4)", (1, 8, 8), padding="symmetric"), (1, 8, 8))
    assert g["pad1"].axes[0] == Window(1, 1, 1, (1, 1), "symmetric")
    add = next(n for n in g if n.kind == "add")
    assert set(add.inputs) == {"res1.body.relu3", "res1.proj"} or len(add.inputs) == 2
    assert g[g.output].shape == (4, 4, 4)


def test_a_model_built_for_one_size_is_told_that_size():
    """timm's LeViT, CoaT, NesT, Hiera … run at the size they were built for only; at another, torch's message
    ("The size of tensor a (16) must match the size of tensor b (196)") did not say which size works."""

    class Fixed(nn.Module):
        pretrained_cfg = {"input_size": (1, 8, 8)}

        def __init__(self):
            super().__init__()
            self.conv, self.pos = nn.Conv2d(1, 2, 2, stride=2), nn.Parameter(torch.zeros(1, 2, 4, 4))

        def forward(self, x):
            return self.conv(x) + self.pos

    with pytest.raises(EdgewiseError, match=r"It was built for 1x8x8 \(its pretrained_cfg input_size\), and some "
                       r"models run at that size only: try an input of 1x8x8$"):
        trace(Fixed(), (1, 6, 6))
    assert trace(Fixed(), (1, 8, 8)).output

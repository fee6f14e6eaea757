"""Spec nets, the Pad layer and model references."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import edgewise
from edgewise import EdgewiseError, nets
from edgewise.models import as_graph, load


@pytest.mark.parametrize("padding,expected", [("valid", 10), ("same", 16), ("full", 22), ("circular", 16),
                                               ("reflect", 16), ("replicate", 16), ("symmetric", 16)])
def test_padding_sets_output_length(padding, expected):
    net = nets.from_spec("3*conv3", (1, 16), padding=padding)
    assert net(torch.zeros(1, 1, 16)).shape == (1, 8, expected)


def test_goodfellow_and_question_nets_build():
    assert nets.from_spec("3*conv6", (1, 16), padding="valid")(torch.zeros(1, 1, 16)).shape[-1] == 1
    out = nets.from_spec(nets.QUESTION_SPEC, (3, 256, 256))(torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 8, 16, 16)


def test_options_strides_dilation_channels_pools_and_heads():
    net = nets.from_spec("conv3/s2/d2/c5, maxpool2, avgpool3/s1, res(conv3, conv3/c7), gap, fc4", (2, 32, 32))
    assert net(torch.zeros(1, 2, 32, 32)).shape == (1, 4)
    conv = net.conv1
    assert (conv.stride, conv.dilation, conv.out_channels, conv.in_channels) == ((2, 2), (2, 2), 5, 2)
    assert net.res1.proj is not None and net.res1.proj.out_channels == 7


def test_global_max_pool_and_no_bias():
    net = nets.from_spec("conv3/c4, conv3/s2, gmp, fc2", (3, 12, 10), bias=False, padding="symmetric")
    assert isinstance(net.gmp1, nn.AdaptiveMaxPool2d) and net(torch.zeros(2, 3, 12, 10)).shape == (2, 2)
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(1, 3, 12, 10)
    assert torch.equal(net.gmp1(x), x.amax((2, 3), keepdim=True))
    one_d = nets.from_spec("conv3, gmp", (1, 9))
    assert isinstance(one_d.gmp1, nn.AdaptiveMaxPool1d) and one_d.conv1.bias is not None


def test_activation_and_width():
    linear = nets.from_spec("2*conv3", (1, 8), activation=None, width=3)
    assert not any(isinstance(m, nn.ReLU) for m in linear.modules())
    assert linear.conv1.out_channels == 3
    relu = nets.from_spec("2*conv3", (1, 8))
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 1  # none after the output layer


def test_seed_is_explicit_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a, b = nets.from_spec("conv3", (1, 8), seed=3), nets.from_spec("conv3", (1, 8), seed=3)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, nets.from_spec("conv3", (1, 8), seed=4).conv1.weight)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("mode,np_mode", [("reflect", "reflect"), ("symmetric", "symmetric"),
                                          ("replicate", "edge"), ("circular", "wrap"), ("zeros", "constant")])
def test_pad_matches_numpy(mode, np_mode):
    x = torch.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    got = nets.Pad((2, 5, 1, 3), mode)(x)[0, 0].numpy()
    want = np.pad(x[0, 0].numpy(), ((1, 3), (2, 5)), mode=np_mode)
    np.testing.assert_array_equal(got, want)


def test_even_kernel_same_padding_is_asymmetric():
    net = nets.from_spec("conv4", (1, 10), padding="reflect")
    assert isinstance(net.pad1, nets.Pad) and net.pad1.pad == (1, 2)
    assert net(torch.zeros(1, 1, 10)).shape[-1] == 10


@pytest.mark.parametrize("spec,token", [("conv3, cnv3", "cnv3"), ("3*conv3, maxpool2/c3", "maxpool2/c3"),
                                        ("res(conv3", "res(conv3"), ("conv3,,conv3", ""), ("fc3/s2", "fc3/s2")])
def test_bad_spec_points_at_token(spec, token):
    with pytest.raises(EdgewiseError) as e:
        nets.from_spec(spec, (1, 32))
    msg = str(e.value)
    assert "grammar" in msg and "^" in msg
    lines = msg.splitlines()
    caret = lines[2].index("^") - 2
    assert lines[1].strip() == spec and spec[caret:].startswith(token)


def test_too_small_input_and_bad_options():
    with pytest.raises(EdgewiseError, match="too small"):
        nets.from_spec("8*conv3", (1, 10), padding="valid")
    with pytest.raises(EdgewiseError, match="unknown padding 'zero'"):
        nets.from_spec("conv3", (1, 10), padding="zero")
    with pytest.raises(EdgewiseError, match="C×L"):
        nets.from_spec("conv3", (1, 2, 3, 4))
    with pytest.raises(EdgewiseError, match="shortcut"):
        nets.from_spec("res(conv3)", (1, 10), padding="valid")
    with pytest.raises(EdgewiseError, match="flattened"):
        nets.from_spec("fc3, conv3", (1, 10))


def test_load_references(tmp_path, monkeypatch):
    assert type(load("torchvision:resnet18")).__name__ == "ResNet"
    with pytest.raises(EdgewiseError, match="did you mean"):
        load("torchvision:resnet05")
    (tmp_path / "mymodel.py").write_text(
        "import torch.nn as nn\ndef make():\n    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())\n")
    assert isinstance(load(f"{tmp_path}/mymodel.py:make"), nn.Sequential)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load("mymodel:make"), nn.Sequential)
    with pytest.raises(EdgewiseError, match="has no attribute 'nope'"):
        load("mymodel:nope")
    with pytest.raises(EdgewiseError, match="does not exist"):
        load("missing.py:make")
    with pytest.raises(EdgewiseError, match="needs an input shape"):
        load("3*conv3")
    g = as_graph("3*conv3", "1x12", padding="valid")
    assert g[g.output].shape == (8, 6)


def test_axis_slice_is_the_spec_built_in_one_dimension():
    """The 1-D slice of a 2-D spec net counts the same paths as that spec built on a 1-D input."""
    from edgewise.nets import axis_slice

    for padding in ("same", "valid", "reflect", "circular"):
        spec = "2*conv3, maxpool2, conv5/d2, conv3/s2"
        g = edgewise.trace(nets.from_spec(spec, (1, 32, 32), padding=padding), (1, 32, 32))
        sliced = axis_slice(g)
        expect = edgewise.pathways(nets.from_spec(spec, (1, 32), padding=padding, width=1), (1, 32), exact=True)
        assert edgewise.pathways(sliced, (1, 32), exact=True).counts.tolist() == expect.counts.tolist()
    assert [n for n, _ in axis_slice(g, max_layers=2).named_children()] == ["conv1_pad", "conv1", "conv2_pad",
                                                                             "conv2"]


def test_axis_slice_follows_a_resnets_main_path():
    torchvision = pytest.importorskip("torchvision")
    from edgewise.nets import axis_slice

    g = edgewise.trace(torchvision.models.resnet18(), (3, 64, 64))
    layers = [m for m in axis_slice(g) if not isinstance(m, edgewise.nets.Pad)]
    assert len(layers) == 1 + 1 + 16 + 1  # stem conv, max pool, 16 block convs, global average pool
    assert (layers[0].kernel_size, layers[0].stride) == ((7,), (2,))
    with pytest.raises(edgewise.EdgewiseError, match="no sliding-window layer"):
        axis_slice(edgewise.trace(torch.nn.Flatten(), (1, 4, 4)))


def test_axis_slice_passes_squeeze_excitation_gates_by():
    """torchvision's squeeze-excitation returns ``scale * x``: the pooled gate is the product's first input, and the
    slice once followed it (MobileNet V3-Small's ended at the first gate's pool, 3 of its "22" layers). It follows x,
    the input as large as the product: every depthwise and stem window, one global pool at the end."""
    torchvision = pytest.importorskip("torchvision")
    from edgewise.nets import axis_slice

    g = edgewise.trace(torchvision.models.mobilenet_v3_small(), (3, 128, 128))
    names = [n for n, m in axis_slice(g).named_children() if not isinstance(m, edgewise.nets.Pad)]
    pools = [n for n in names if "avgpool" in n]
    assert pools == ["avgpool"] and names[-1] == "avgpool"
    windows = [nd.name for nd in g if nd.kind == "conv" and nd.groups > 1]  # the depthwise convolutions
    assert names[:-1] == ["features_0_0"] + [n.replace(".", "_") for n in windows]


def test_axis_slice_follows_the_convolved_half_of_a_channel_split():
    """ShuffleNet V2's stride-1 blocks concatenate the half they pass on with the half they convolve: the slice
    follows the convolved half, the deeper one (it once followed the first input, and saw 6 windows in all)."""
    torchvision = pytest.importorskip("torchvision")
    from edgewise.nets import axis_slice

    g = edgewise.trace(torchvision.models.shufflenet_v2_x1_0(), (3, 64, 64))
    names = [n for n, m in axis_slice(g).named_children() if not isinstance(m, edgewise.nets.Pad)]
    blocks = sorted({nd.name.rsplit(".branch", 1)[0].replace(".", "_") for nd in g if ".branch" in nd.name})
    assert len(blocks) == 16 and names[:2] == ["conv1_0", "maxpool"] and names[-1] == "mean"
    # one depthwise window per block, in order (a downsampling block's two halves have one each: the first is taken)
    assert [n.rsplit("_branch", 1)[0] for n in names[2:-1]] == blocks
    assert all("branch2" in n for n in names[2:-1] if not n.split("_")[1] == "0")  # stride 1: the convolved half


@pytest.mark.parametrize("family, attentions", [("vit", 1), ("swin", 4)])
def test_axis_slice_follows_attention_and_names_what_it_leaves_out(family, attentions):
    """Attention mixes positions by connection lists, which a chain of windows cannot draw. Swin-T's slice once
    followed each block's identity past its window attention (a tie in windows behind: the first input won), and
    ViT's skipped its attention layers without a word: the slice now takes the attention branch and names every
    such layer below its last drawn one in ``left_out``."""
    pytest.importorskip("torchvision")
    from test_modern import small

    from edgewise.nets import axis_slice

    model, shape = small(family)
    g = edgewise.trace(model, shape)
    left = axis_slice(g).left_out
    attends = [nd.name for nd in g if nd.op == "attention" and nd.name.endswith(":attend")]
    assert left == attends[:len(left)] and len(left) == attentions
    assert all(g[n].op == "attention" for n in left)
    plain = edgewise.trace(nets.from_spec("2*conv3, maxpool2", (1, 16, 16)), (1, 16, 16))
    assert axis_slice(plain).left_out == []

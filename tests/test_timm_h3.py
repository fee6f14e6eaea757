"""Split attention and selective kernels (softmax gates, sums over branches), reductions over some positions
(LeViT), normalisation statistics written by hand (MobileNet-v5's RMSNorm2d), linear attention and a
convolutional relative-position term (CoaT), states of linear attention (EfficientViM): hand-built small modules
against the autograd oracle, hand-computed counts, and the real timm models (see NOTES-h3.md for the
definitions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.testing.oracle import autograd_pathways

timm = pytest.importorskip("timm")
from tests.test_timm_ops import check, counts  # noqa: E402


def oracle_equal(net, shape, to="all"):
    """edgewise == oracle, without brute force (the graphs here can be large)."""
    return check(net, shape, brute=False, to=to)


# ----------------------------------------------------------------------------- softmax gates, sums over branches

class RadixGate(nn.Module):
    """ResNeSt's split attention, written out: branches summed, a global pool, a gate with a softmax over the
    radix, the branches weighted by it and summed."""

    def __init__(self, cin=1, chs=1, radix=2, mid=1):
        super().__init__()
        self.radix = radix
        self.conv = nn.Conv1d(cin, chs * radix, 1)
        self.fc = nn.Conv1d(chs, mid, 1)
        self.fc2 = nn.Conv1d(mid, chs * radix, 1)

    def forward(self, x):
        x = self.conv(x)
        b, rc, n = x.shape
        x = x.reshape(b, self.radix, rc // self.radix, n)
        gap = x.sum(dim=1).mean(2, keepdim=True)
        attn = self.fc2(torch.relu(self.fc(gap)))
        attn = attn.view(b, 1, self.radix, -1).transpose(1, 2)
        attn = F.softmax(attn, dim=1).reshape(b, -1).view(b, -1, 1)
        return (x * attn.reshape(b, self.radix, rc // self.radix, 1)).sum(dim=1)


def test_split_attention_hand_count():
    """Input 1×3, one channel per branch, two branches: every output position q sums x₀·g₀ + x₁·g₁, where xᵣ
    reads input position q once and the gate gᵣ (a softmax over the radix: per unit, like sigmoid) reads every
    position twice (the pooled sum of both branches). So each of the 3 outputs has 2·([q = p] + 2) paths from
    position p: 14 in all, for every p. (A softmax that mixed the radix would give 2·(1 + 3·4) = 26.)"""
    net = RadixGate()
    np.testing.assert_array_equal(counts(net, (1, 3)), [14, 14, 14])
    np.testing.assert_array_equal(autograd_pathways(net.eval(), (1, 3)), [14, 14, 14])


class Split2d(nn.Module):
    def __init__(self, attn):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.attn = attn

    def forward(self, x):
        return self.attn(self.stem(x))


@pytest.mark.parametrize("make", [
    lambda: timm.layers.SplitAttn(4, 4, radix=2, rd_channels=2),
    lambda: timm.layers.SplitAttn(4, 4, radix=2, groups=2, rd_channels=2),
    lambda: timm.layers.SplitAttn(4, 4, radix=1, rd_channels=2),
    lambda: timm.layers.SelectiveKernel(4, 4, kernel_size=[3, 5], rd_channels=2),
    lambda: timm.layers.SelectiveKernel(4, 4, kernel_size=[3, 5], split_input=False, rd_channels=2),
], ids=["splat-r2", "splat-r2-g2", "splat-r1", "sk", "sk-nosplit"])
def test_timm_split_attention_layers(make):
    torch.manual_seed(0)
    oracle_equal(Split2d(make()), (2, 7, 6))


def test_a_softmax_that_is_not_a_gate_is_refused():
    class Softmaxed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.conv2 = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):
            return self.conv2(self.conv(x).softmax(dim=1))

    with pytest.raises(EdgewiseError, match="softmax that is not attention.*Conv2d"):
        edgewise.trace(Softmaxed(), (2, 5, 5))
    with pytest.raises(EdgewiseError, match="softmax"):
        autograd_pathways(Softmaxed().eval(), (2, 5, 5))


# ----------------------------------------------------------------------------- reductions and statistics

class SubsampledMean(nn.Module):
    """LeViT's head: the mean over the tokens that are left after a subsampling attention (positions 0, 2 of
    each axis of a 4×4 map)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)

    def forward(self, x):
        x = self.conv(x)
        b, c, h, w = x.shape
        t = x.permute(0, 2, 3, 1)[:, ::2, ::2].reshape(b, -1, c)
        return t.mean(1)


def test_mean_over_some_positions_hand_count():
    """Two channels read each input position once; the mean reads the four kept positions: 2 paths from each of
    them, none from the others."""
    want = np.zeros((4, 4))
    want[::2, ::2] = 2
    np.testing.assert_array_equal(counts(SubsampledMean(), (1, 4, 4)), want)
    oracle_equal(SubsampledMean(), (1, 4, 4))


class HandRms(nn.Module):
    """RMSNorm over channels written by hand (timm's ``rms_norm2d``): x · rsqrt(mean(x², 1) + ε) · w."""

    def __init__(self, norm=True, sqrt=False):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 2, 3)
        self.weight = nn.Parameter(torch.ones(3))
        self.norm, self.sqrt = norm, sqrt

    def forward(self, x):
        x = self.conv(x)
        if self.norm:
            v = torch.mean(x.pow(2), dim=1, keepdim=True)
            x = x / torch.sqrt(v + 1e-5) if self.sqrt else x * torch.rsqrt(v + 1e-5)
            x = x * self.weight.reshape(1, -1, 1, 1)
        return self.conv2(x)


@pytest.mark.parametrize("sqrt", [False, True])
def test_hand_written_rms_norm_is_the_identity(sqrt):
    """The root of a mean over channels is a statistic: no paths, like F.rms_norm's (hand count: the same net
    without the norm)."""
    shape = (2, 5, 6)
    ours = counts(HandRms(sqrt=sqrt), shape)
    np.testing.assert_array_equal(ours, counts(HandRms(norm=False), shape))
    np.testing.assert_array_equal(ours, autograd_pathways(HandRms(sqrt=sqrt).eval(), shape))


def test_timm_rms_norm2d_layer():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.norm = timm.layers.RmsNorm2d(4)

        def forward(self, x):
            return self.norm(self.conv(x))

    oracle_equal(Net(), (2, 5, 5))


def test_a_root_of_a_map_is_refused():
    class Root(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)

        def forward(self, x):
            x = self.conv(x)
            return x * torch.rsqrt(x.abs() + 1)

    with pytest.raises(EdgewiseError, match="rsqrt"):
        edgewise.trace(Root(), (2, 5, 5))
    with pytest.raises(EdgewiseError, match="rsqrt"):
        autograd_pathways(Root().eval(), (2, 5, 5))


def test_sum_across_channels_is_the_sum_of_the_slices():
    """A sum over channels that is not a statistic: the paths of every channel (like adding the slices)."""
    class ChannelSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(x).sum(1, keepdim=True)

    ours = oracle_equal(ChannelSum(), (1, 4, 4))
    conv = counts(nn.Conv2d(1, 1, 3, padding=1), (1, 4, 4))
    np.testing.assert_array_equal(ours, 3 * conv)


# ----------------------------------------------------------------------------- linear attention

class LinearAttention(nn.Module):
    """EfficientViT-MIT's ReLU linear attention, ``relu(q) @ (relu(k)ᵀ @ v)`` per head, optionally with a class
    token (a constant: its value carries no paths), or CoaT's softmax over the keys."""

    def __init__(self, dim=4, heads=2, cls=False, phi="relu"):
        super().__init__()
        self.embed = nn.Conv2d(2, dim, 2, stride=2)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.heads, self.phi = heads, phi
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls else None

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        if self.cls is not None:
            t = torch.cat([self.cls.expand(b, -1, -1), t], 1)
        n = t.shape[1]
        q, k, v = self.qkv(t).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if self.phi == "relu":
            ctx = torch.relu(k).transpose(-1, -2) @ v
            y = torch.relu(q) @ ctx
        else:
            ctx = k.softmax(dim=2).transpose(-1, -2) @ v
            y = (q @ ctx) * 0.5
        y = y.transpose(1, 2).reshape(b, n, c)
        if self.cls is not None:
            y = y[:, 1:]
        return y.transpose(1, 2).reshape(b, c, h, w)


@pytest.mark.parametrize("cls", [False, True], ids=["tokens", "class-token"])
@pytest.mark.parametrize("phi", ["relu", "softmax"])
def test_linear_attention_hand_count(cls, phi):
    """Input 2×4×6, 2×2 patches: 6 tokens of 4 channels. Each input pixel reaches the 4 embedding channels of its
    token, each value channel 4 ways (the qkv Linear); every output (6 tokens × 4 channels) reads its channel of
    every key's value once: 6 · 4 · 4 = 96 paths from every pixel. (Counting the context's d = 2 rows as well
    would give 192; counting the q/k side, more.)"""
    net = LinearAttention(cls=cls, phi=phi)
    np.testing.assert_array_equal(counts(net, (2, 4, 6)), np.full((4, 6), 96.0))
    np.testing.assert_array_equal(autograd_pathways(net.eval(), (2, 4, 6)), np.full((4, 6), 96.0))


class ConvRelPos(nn.Module):
    """CoaT's factorised attention with its convolutional relative-position term, a class token in front."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        from timm.models.coat import ConvRelPosEnc, FactorAttnConvRelPosEnc

        self.embed = nn.Conv2d(2, dim, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        crpe = ConvRelPosEnc(head_chs=dim // heads, num_heads=heads, window={3: 1, 5: 1})
        self.attn = FactorAttnConvRelPosEnc(dim, num_heads=heads, shared_crpe=crpe)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        t = torch.cat([self.cls.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], 1)
        t = self.attn(t, (h, w))
        return t[:, 1:].transpose(1, 2).reshape(b, c, h, w)


def test_conv_relative_position_term():
    torch.manual_seed(0)
    oracle_equal(ConvRelPos(), (2, 8, 6))


def test_a_state_used_otherwise_is_refused_by_both():
    """A linear-attention state (a product of two input-dependent tensors read by a layer) may not be added to
    a tensor that is not a state, nor read by a layer with a wider kernel: refused by the tracer and the oracle."""
    class State(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 1)
            self.mix = nn.Conv1d(4, 4, 1)

        def forward(self, x):
            x = self.conv(x).flatten(2)
            h = self.mix(x @ x.transpose(-2, -1))
            return (h + x[..., :4]).reshape(1, 4, 2, 2)

    with pytest.raises(EdgewiseError, match="state of linear attention"):
        edgewise.trace(State(), (2, 4, 4))
    with pytest.raises(EdgewiseError, match="state of linear attention"):
        autograd_pathways(State().eval(), (2, 4, 4))


class StateSpace(nn.Module):
    """EfficientViM's HSM-SSD mixer (3 states) after a 1×1 convolution: its output ``y`` or its hidden state
    averaged over the states."""

    def __init__(self, out="y"):
        super().__init__()
        from timm.models.efficientvim import HSMSSD

        self.conv = nn.Conv2d(2, 4, 1)
        self.mixer = HSMSSD(4, state_dim=3)
        self.out = out

    def forward(self, x):
        y, h = self.mixer(self.conv(x))
        return y if self.out == "y" else h.mean(-1)


def test_state_space_mixer_hand_count():
    """Input 2×4×4. ``h = x @ abᵀ`` read by a layer is a linear-attention state: one unit per value channel, the
    pool of that channel over the 16 positions (1 path from each pixel, per channel). hz_proj (4 → 8): 4 paths
    each; ``h·act(z) + h·D``: 4 + 4 + 4 = 12; out_proj (4 → 4): 48; the read-out ``h @ c`` gives each of the
    16 positions every state unit once: 4 channels · 16 positions · 48 = 3072 from every pixel. The mean over
    the 3 states adds its 3 (identical) columns: 4 · 3 · 48 = 576."""
    for out, want in (("y", 3072.0), ("states", 576.0)):
        torch.manual_seed(0)
        net = StateSpace(out)
        np.testing.assert_array_equal(counts(net, (2, 4, 4)), np.full((4, 4), want))
        np.testing.assert_array_equal(autograd_pathways(net.eval(), (2, 4, 4)), np.full((4, 4), want))
    rf = edgewise.receptive_field(StateSpace("y"), (2, 4, 4))  # every output reads the whole input
    assert all(lay.global_via for lay in rf.layers[-1:])


class LinearState(nn.Module):
    """A Linear applied to the context of linear attention before the read-out: ``relu(q) @ lin(relu(k)ᵀ @ v)``."""

    def __init__(self, dim=4):
        super().__init__()
        self.embed = nn.Conv2d(2, dim, 2, stride=2)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.lin = nn.Linear(dim, dim)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).chunk(3, dim=-1)
        y = torch.relu(q) @ self.lin(torch.relu(k).transpose(-1, -2) @ v)
        return y.transpose(1, 2).reshape(b, c, h, w)


def test_linear_on_a_state_hand_count():
    """Input 2×4×6, 6 tokens: a pixel reaches each value channel 4 ways, so each state unit (a value channel
    pooled over the keys) 4 ways; the Linear's 4 outputs read 4 state units each (16); the read-out gives each of
    the 6 tokens every unit once: 6 · 4 · 16 = 384."""
    net = LinearState()
    np.testing.assert_array_equal(counts(net, (2, 4, 6)), np.full((4, 6), 384.0))
    np.testing.assert_array_equal(autograd_pathways(net.eval(), (2, 4, 6)), np.full((4, 6), 384.0))


# ----------------------------------------------------------------------------- layouts and the oracle

def test_multi_query_attention_shares_keys_across_heads():
    """F.scaled_dot_product_attention with keys/values of one head for every query head (MobileNet-v5's MQA)."""
    class Mqa(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = nn.Conv2d(2, 4, 1)
            self.kv = nn.Conv2d(2, 4, 2, stride=2)

        def forward(self, x):
            b, _, h, w = x.shape
            q = self.q(x).reshape(b, 2, 2, h * w).transpose(-1, -2)
            k, v = self.kv(x).flatten(2).transpose(1, 2).unsqueeze(1).chunk(2, dim=-1)
            o = F.scaled_dot_product_attention(q, k, v)
            return o.transpose(1, 2).reshape(b, h, w, 4).permute(0, 3, 1, 2)

    oracle_equal(Mqa(), (2, 4, 6))


def test_shared_module_keeps_its_weights_after_a_trace():
    """A module registered under two names (CoaT's shared position encodings) is swapped once by the shape
    pass: its weights stay real, and the oracle run after the trace still sees them."""
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(2, 2, 3, padding=1)
            self.b = self.a

        def forward(self, x):
            return self.b(self.a(x))

    net = Shared()
    edgewise.trace(net, (2, 5, 5))
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert all(p.device.type == "cpu" for p in net.state_dict().values())


# ----------------------------------------------------------------------------- the real timm models

def _timm(name, shape, **kw):
    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False, **kw).eval()
    ours = counts(net, shape)
    ref = autograd_pathways(net, shape)
    assert np.array_equal(ours == 0, ref == 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    edgewise.receptive_field(net, shape)  # the geometry engine reads the same graph


@pytest.mark.parametrize("name, size, kw", [
    ("skresnet18", 32, {}),
    ("resnest14d", 32, {}),
    ("levit_128s", 64, {"img_size": 64}),
    ("coat_lite_tiny", 32, {"img_size": 32}),
    ("efficientvim_m1", 64, {}),
])
def test_timm_families(name, size, kw):
    _timm(name, (3, size, size), **kw)


@pytest.mark.slow
@pytest.mark.parametrize("name, size, kw", [
    ("coat_tiny", 64, {"img_size": 64}),
    ("mobilenetv5_base", 64, {}),
])
def test_timm_families_slow(name, size, kw):
    _timm(name, (3, size, size), **kw)

"""Token mixing, patch embeddings by Linear, register tokens, unfold/fold, generated attention weights and LSTMs
(timm's MLP-Mixer/gMLP, EdgeNeXt, NaFlexViT, HaloNet, TNT, VOLO and Sequencer families): small hand-written
modules against the autograd oracle, hand-computed counts, and the real timm models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.testing.oracle import autograd_pathways

from test_timm_ops import check, counts  # noqa: E402  (the same helpers: edgewise == oracle == brute force)

timm = pytest.importorskip("timm")



# ----------------------------------------------------------------------------- a Linear across positions

class SpatialGate(nn.Module):
    """gMLP's spatial gating unit on tokens: u · Linear_tokens(v), with u and v the two channel halves."""

    def __init__(self, n=16):
        super().__init__()
        self.embed = nn.Conv2d(2, 4, 3, padding=1)
        self.proj = nn.Linear(n, n)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # B, N, C
        u, v = t.chunk(2, dim=-1)
        v = self.proj(v.transpose(-1, -2))
        y = u * v.transpose(-1, -2)
        return y.transpose(1, 2).reshape(1, 2, *x.shape[-2:])


class TokenMlp(nn.Module):
    """MLP-Mixer's token mixing: positions → hidden features → positions, plus the residual."""

    def __init__(self, n=4, hidden=3, conv=True):
        super().__init__()
        self.embed = nn.Conv2d(2, 2, 3, padding=1) if conv else nn.Identity()
        self.fc1, self.fc2 = nn.Linear(n, hidden), nn.Linear(hidden, n)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)  # B, N, C
        t = t + self.fc2(F.gelu(self.fc1(t.transpose(1, 2)))).transpose(1, 2)
        return t.transpose(1, 2).reshape(x.shape[0], -1, *x.shape[-2:])


def test_spatial_gate_equals_the_oracle():
    check(SpatialGate(), (2, 4, 4))


def test_token_mlp_hand_count():
    """Each position of a channel reaches the 3 hidden features once each, and each of them all 4 output
    positions: 12 paths, plus 1 through the residual (without the convolution in front)."""
    net, shape = TokenMlp(conv=False), (2, 2, 2)
    np.testing.assert_array_equal(counts(net, shape), np.full((2, 2), 13.0))
    g = edgewise.trace(net, shape)
    hidden = g["fc1"]
    assert hidden.kind == "pool" and hidden.shape == (2, 1, 3)  # a per-channel op onto hidden features
    assert g["fc2"].shape == (2, 2, 2)  # back on the grid the tokens came from
    check(net, shape)
    check(TokenMlp(n=16, hidden=5), (2, 4, 4))


class HalvesMixer(nn.Module):
    """Channel 0, 1 mix the first half of the positions, channels 2, 3 the second: not one per-channel op."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.tokens = nn.Linear(8, 8)

    def forward(self, x):
        t = self.conv(x).flatten(2)
        return self.tokens(torch.cat([t[:, :2, :8], t[:, 2:, 8:]], 1))


def test_addcmul_with_constants_is_per_unit():
    class Affine(nn.Module):  # ResMLP: beta + alpha · x
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.alpha, self.beta = nn.Parameter(torch.full((2, 1, 1), 3.0)), nn.Parameter(torch.ones(2, 1, 1))

        def forward(self, x):
            return torch.addcmul(self.beta, self.alpha, self.conv(x))

    ours = check(Affine(), (1, 3, 3))
    assert ours[1, 1] == 18  # 9 taps × 2 channels, not scaled by alpha


def test_a_linear_across_different_positions_per_channel_is_refused():
    with pytest.raises(EdgewiseError, match="across tokens or positions") as info:
        edgewise.trace(HalvesMixer(), (1, 4, 4))
    assert "'tokens'" in str(info.value)


def test_token_operands_stay_on_their_grid():
    """SwiftFormer's additive attention: per-token weights (1, N, 1) times the queries, a global query (1, 1, C)
    times the keys: elementwise ops on tokens of a 2-D grid keep that grid (the receptive field needs it)."""
    from timm.models.swiftformer import EfficientAdditiveAttention

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), EfficientAdditiveAttention(4, 4))
    g = edgewise.trace(net, (2, 4, 4))
    assert all(len(n.shape) == 3 for n in g if n.kind in ("mul", "add", "conv"))
    edgewise.receptive_field(g)
    check(net, (2, 4, 4), brute=False)


# ----------------------------------------------------------------------------- channels of several layers as tokens

class JoinedTokens(nn.Module):
    """EdgeNeXt: a concatenation along channels of several layers, read as tokens by a Linear."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 3, 1)
        self.fc = nn.Linear(5, 4)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], 1)
        b, c, h, w = y.shape
        t = self.fc(y.reshape(b, c, h * w).permute(0, 2, 1))
        return t.permute(0, 2, 1).reshape(b, 4, h, w)


def test_channels_of_several_layers_read_as_tokens():
    check(JoinedTokens(), (2, 5, 4))


# ----------------------------------------------------------------------------- a patch embedding by Linear

class LinearPatches(nn.Module):
    """NaFlexViT: the image cut into 2×2 patches by reshapes, a flat token sequence, a Linear."""

    def __init__(self, c=2, p=2, out=3):
        super().__init__()
        self.p = p
        self.proj = nn.Linear(c * p * p, out)

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.p
        t = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), -1)
        return self.proj(t).transpose(1, 2).reshape(b, -1, h // p, w // p)


def test_patch_embedding_by_linear():
    net, shape = LinearPatches(), (2, 4, 6)
    np.testing.assert_array_equal(counts(net, shape), np.full((4, 6), 3.0))  # one tap per output feature
    g = edgewise.trace(net, shape)
    assert g["proj"].kind == "conv" and [(a.kernel, a.stride) for a in g["proj"].axes] == [(2, 2), (2, 2)]
    check(net, shape)


# ----------------------------------------------------------------------------- register tokens

class Registers(nn.Module):
    """Two constant register tokens before the positions, two attention layers (q = k = v = the tokens)."""

    def __init__(self, n_reg=2):
        super().__init__()
        self.reg = nn.Parameter(torch.zeros(1, n_reg, 1))
        self.n_reg = n_reg

    def forward(self, x):
        t = torch.cat([self.reg.expand(x.shape[0], -1, -1), x.transpose(1, 2)], 1)
        t = F.scaled_dot_product_attention(t, t, t)
        t = F.scaled_dot_product_attention(t, t, t)
        return t[:, self.n_reg:].transpose(1, 2)


def test_register_tokens_are_separate_keys():
    """After the first layer both registers hold the same units (each reads both positions); in the second,
    every position reads both registers and both positions: 4 paths from each input to each output, 8 in all
    (6 if the two registers were taken for one key)."""
    net, shape = Registers(), (1, 2)
    np.testing.assert_array_equal(counts(net, shape), np.array([8.0, 8.0]))
    check(net, shape)
    check(Registers(3), (1, 3))


# ----------------------------------------------------------------------------- unfold and fold

class UnfoldFold(nn.Module):
    def __init__(self, k=2, stride=1, padding=0):
        super().__init__()
        self.args = dict(kernel_size=k, stride=stride, padding=padding)
        self.unfold = nn.Unfold(**self.args)

    def forward(self, x):
        return F.fold(self.unfold(x), output_size=x.shape[-2:], **self.args)


def test_fold_of_unfold_hand_count():
    """Every position comes back once per 2×2 window that holds it: 1 in a corner, 2 on an edge, 4 inside."""
    np.testing.assert_array_equal(counts(UnfoldFold(), (1, 3, 3)), [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    check(UnfoldFold(), (2, 4, 5))
    check(UnfoldFold(3, 2, 1), (2, 5, 5))


class PixelTokens(nn.Module):
    """TNT: pixels of 2×2 patches (nn.Unfold) as tokens, a Linear over their channels."""

    def __init__(self):
        super().__init__()
        self.unfold = nn.Unfold(kernel_size=2, stride=2)
        self.fc = nn.Linear(2, 3)
        self.proj = nn.Linear(12, 5)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.unfold(x).reshape(b, c, 4, -1).permute(0, 3, 2, 1)  # B, patches, pixels, C
        t = self.proj(self.fc(t).reshape(b, -1, 12))  # the pixels of a patch into a patch token
        return t.transpose(1, 2).reshape(b, 5, h // 2, w // 2)


class PairMixer(nn.Module):
    """HaloNet's Tensor.unfold: non-overlapping pairs of rows, a Linear across each pair (positions)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.mix = nn.Linear(2, 2)

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.shape
        return self.mix(y.unfold(2, 2, 2)).permute(0, 1, 2, 4, 3).reshape(b, c, h, w)


def test_unfold_is_data_movement():
    check(PixelTokens(), (2, 4, 6), brute=False)
    check(PairMixer(), (2, 4, 3))


def test_a_sum_over_windows_of_positions_is_a_pool_not_a_crash():
    class Part(nn.Module):
        def forward(self, x):
            return x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(1, 2, 2, 3, 4).sum(-1)

    counts = edgewise.pathways(Part(), (2, 4, 6)).counts  # each pixel in exactly one 2×2 window
    np.testing.assert_array_equal(counts, np.ones((4, 6)))
    np.testing.assert_array_equal(counts, autograd_pathways(Part(), (2, 4, 6)))


def test_halo_attention_equals_the_oracle():
    """timm's HaloAttn: key/value windows by Tensor.unfold, relative-position logits computed from the queries
    (a term of the logits: no paths, even though edgewise cannot lay it out)."""
    from timm.layers.halo_attn import HaloAttn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), HaloAttn(8, 8, num_heads=2, block_size=4, halo_size=1))
    check(net, (2, 8, 8), brute=False)


# ----------------------------------------------------------------------------- generated attention weights

def test_outlook_attention_equals_the_oracle():
    """VOLO: attention weights made by a Linear from the centre token, softmax, product with unfolded values,
    fold; and a max over tokens (the aux head) as a global max pool."""
    from timm.models.volo import OutlookAttention

    class Outlook(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.attn = OutlookAttention(4, num_heads=2, kernel_size=3, padding=1)

        def forward(self, x):
            t = self.attn(self.conv(x).permute(0, 2, 3, 1))
            return t.permute(0, 3, 1, 2) + t.flatten(1, 2).max(1)[0][:, :, None, None]

    torch.manual_seed(0)
    check(Outlook(), (2, 5, 6), brute=False)


class _ContextPool(nn.Module):
    """GCNet's global context block (timm's ``GlobalContext``): a softmax over every position of a 1×1
    convolution's map weighs the map's values (``x @ attn``: the values as rows, the weights as one column), the
    pooled context goes through a 1×1 MLP (with a LayerNorm) and is added to, or gates, every position."""

    def __init__(self, fuse_add: bool, fuse_scale: bool):
        super().__init__()
        from timm.layers import GlobalContext

        self.conv = nn.Conv2d(2, 8, 3, padding=1)
        self.gc = GlobalContext(8, use_attn=True, fuse_add=fuse_add, fuse_scale=fuse_scale)

    def forward(self, x):
        return self.gc(self.conv(x))


@pytest.mark.parametrize("fuse_add, fuse_scale", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(2, 6, 6), (2, 7, 5)])
def test_a_global_context_pooling_equals_the_oracle_and_brute_force(fuse_add, fuse_scale, shape):
    """The weights' one query is made from every position: a query of no position, as a learned query is (each
    context channel reads its channel at every position, once); the oracle follows them as generated weights."""
    ours = check(_ContextPool(fuse_add, fuse_scale), shape)
    assert ours.min() > 0


@pytest.mark.parametrize("name", ["gcresnet33ts", "gcresnext26ts"])
def test_timm_gcnets_trace_and_equal_the_oracle(name):
    net = edgewise.models.load(f"timm:{name}")
    np.testing.assert_allclose(counts(net, (3, 64, 64), "all"), autograd_pathways(net, (3, 64, 64)), rtol=1e-9)


class SoftmaxGate(nn.Module):
    """Split attention: a softmax over branches multiplies the branches, which path counting cannot express."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        return y * y.mean((2, 3), keepdim=True).softmax(1)


def test_a_softmax_gate_is_a_gate_for_both():
    """A softmax over branches that multiplies them is a gate (the identity per unit, as in _layout_more):
    tracer and oracle count the paths of both factors."""
    np.testing.assert_array_equal(edgewise.pathways(SoftmaxGate(), (2, 4, 4)).counts,
                                  autograd_pathways(SoftmaxGate(), (2, 4, 4)))


class ClassQuery(nn.Module):
    """CaiT/VOLO class attention whose query is made of the constant class token only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.cls = nn.Parameter(torch.zeros(1, 1, 4))
        self.q, self.kv = nn.Linear(4, 4), nn.Linear(4, 8)

    def forward(self, x):
        t = torch.cat([self.cls, self.conv(x).flatten(2).transpose(1, 2)], 1)
        k, v = self.kv(t).chunk(2, -1)
        attn = (self.q(t[:, :1]) @ k.transpose(-2, -1)).softmax(-1)
        return (attn @ v)[:, 0]


def test_constant_query_attends_every_position():
    check(ClassQuery(), (2, 3, 4), brute=False)


# ----------------------------------------------------------------------------- LSTM

class Columns(nn.Module):
    """Sequencer: an LSTM along each column of a map (rows in time), then a Linear."""

    def __init__(self, bidirectional=True, layers=1, batch_first=True):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.lstm = nn.LSTM(3, 2, num_layers=layers, batch_first=batch_first, bidirectional=bidirectional)
        self.fc = nn.Linear(4 if bidirectional else 2, 2)
        self.batch_first = batch_first

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)
        b, h, w, c = x.shape
        v = x.permute(0, 2, 1, 3).reshape(-1, h, c)
        v = v if self.batch_first else v.transpose(0, 1)
        v, _ = self.lstm(v)
        v = v if self.batch_first else v.transpose(0, 1)
        return self.fc(v.reshape(b, w, h, -1).permute(0, 2, 1, 3)).permute(0, 3, 1, 2)


class Steps(nn.Module):
    """One channel, one hidden unit, two time steps: the samples of a 1-D input."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(1, 1, batch_first=True)

    def forward(self, x):
        return self.lstm(x.transpose(1, 2))[0].transpose(1, 2)


def test_lstm_hand_count():
    """Gates read x_t and h_{t-1} once per weight; c_t = f·c_{t-1} + i·g and h_t = o·tanh(c_t) have the paths of
    both operands. x_0: 4 paths to h_0 (o, f, i, g), 19 to h_1 (4 + 15); x_1: 4 to h_1. So 23 and 4."""
    np.testing.assert_array_equal(counts(Steps(), (1, 2)), [23.0, 4.0])
    check(Steps(), (1, 3))


@pytest.mark.parametrize("kw", [{}, {"bidirectional": False}, {"layers": 2}, {"batch_first": False}],
                         ids=["bidirectional", "forward", "two-layers", "time-first"])
def test_lstm_equals_the_oracle(kw):
    check(Columns(**kw), (2, 4, 3), brute=False)


def test_lstm_final_state_is_not_mapped():
    class State(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(1, 2, batch_first=True)

        def forward(self, x):
            return self.lstm(x.transpose(1, 2))[1][0].transpose(0, 1).transpose(1, 2)

    with pytest.raises(EdgewiseError, match="final state"):
        edgewise.pathways(State(), (1, 3))


# ----------------------------------------------------------------------------- the real timm models

ROOT = Path(__file__).resolve().parent.parent


def _sweep():
    if "timm_sweep" in sys.modules:
        return sys.modules["timm_sweep"]
    spec = importlib.util.spec_from_file_location("timm_sweep", ROOT / "benchmarks" / "timm_sweep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


FAST = ["gmlp_ti16_224", "tnt_s_legacy_patch16_224",
        "volo_d1_224",
        "naflexvit_base_patch16_parfac_gap",
        "mixer_s32_224", "resmlp_12_224"]  # the last two: MLP-Mixer and ResMLP (Affine: addcmul), same family
SLOW = ["halonet_h1", "sequencer2d_s"]


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_timm_family_traces_and_equals_the_oracle(name):
    r = _sweep().check_model(name, size=64)
    assert r["status"] == "traced", r.get("error")
    assert r["oracle"]["status"] == "match", r["oracle"]

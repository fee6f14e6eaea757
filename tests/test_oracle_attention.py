"""The autograd oracle on attention, windows, transposed convolution and data movement, against hand counts.

The path definition checked here (see :mod:`edgewise.testing.oracle`): attention
connects output token i (every channel) to value token j once for each key j
that query i may attend to; queries and keys carry no paths; a mask entry of
-inf / below ``MASKED_BELOW`` / False (sdpa) / True (MHA) removes the
connection. With ones weights, from input (token j, channel c) to output
(token i, channel m) through value projection → attention → output projection
there are ``E_head · Σ_heads A_h[i, j]`` paths (``E · A[i, j]`` when every head
shares the mask), ``E`` being the embedding width.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgewise import EdgewiseError
from edgewise.testing.oracle import MASKED_BELOW, _PathwayMode, autograd_pathways, ones_network

torchvision = pytest.importorskip("torchvision")
from torchvision.models import swin_transformer  # noqa: E402

C = 3  # channels of the 1×C×2×2 maps (4 tokens)
N = 4


def causal_blocked(n: int) -> torch.Tensor:
    """True where query i may NOT attend key j (j > i)."""
    return torch.ones(n, n, dtype=torch.bool).triu(1)


def tokens_counts(allowed: np.ndarray, e: int, to: str = "all") -> np.ndarray:
    """Hand count on a 2×2 map: paths from (token j, channel 0) = Σ_{i selected, m} E · A[i, j].

    That is E² · #queries seeing j for 'all', E² · A[0, j] for 'center' (token 0 of a 2×2 map).
    """
    rows = allowed if to == "all" else allowed[:1]  # 'center' of a 2×2 map is token 0 = (0, 0)
    return (e * e * rows.sum(0)).reshape(2, 2).astype(float)


class Tokens(nn.Module):
    """1×C×H×W map → tokens → ``attend`` → back to a map."""

    def forward(self, x):
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        return self.attend(t).transpose(1, 2).reshape(b, -1, h, w)


class HandAttention(Tokens):
    """Single-head attention written out: Linear qkv, q@kᵀ (or einsum / bmm / baddbmm), mask, softmax, @v, proj."""

    def __init__(self, c=C, mask=None, how="matmul", mask_style="add"):
        super().__init__()
        self.qkv, self.proj, self.how, self.mask_style = nn.Linear(c, 3 * c), nn.Linear(c, c), how, mask_style
        self.register_buffer("mask", mask)

    def attend(self, t):
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        scale = q.shape[-1] ** -0.5
        if self.how == "matmul":
            a = (q @ k.transpose(-2, -1)) * scale
        elif self.how == "einsum":
            a = torch.einsum("bid,bjd->bij", q * scale, k)
        elif self.how == "bmm":
            a = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        else:  # baddbmm, as inside F.multi_head_attention_forward: mask + q kᵀ in one call
            m = torch.zeros(1, N, N, dtype=q.dtype) if self.mask is None else self.mask.to(q.dtype)
            a = torch.baddbmm(m, q * scale, k.transpose(1, 2))
        if self.mask is not None and self.how != "baddbmm":
            if self.mask_style == "add":
                a = a + self.mask
            elif self.mask_style == "masked_fill":
                a = a.masked_fill(self.mask < 0, float("-inf"))
            else:  # a view round trip and an in-place add, as Swin/timm write it
                a = a.view(1, 1, N, N)
                a += self.mask.unsqueeze(0)
                a = a.view(1, N, N)
        a = F.dropout(a.softmax(dim=-1), p=0.5)  # dropout is the identity, even with training=True
        return self.proj(a @ v)


class SDPA(Tokens):
    def __init__(self, c=4, heads=2, **kw):
        super().__init__()
        self.qkv, self.proj, self.heads, self.kw = nn.Linear(c, 3 * c), nn.Linear(c, c), heads, kw

    def attend(self, t):
        b, n, c = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, **self.kw)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


class MHA(Tokens):
    def __init__(self, e=4, heads=2, batch_first=True, **kw):
        super().__init__()
        self.mha, self.batch_first, self.kw = nn.MultiheadAttention(e, heads, batch_first=batch_first), batch_first, kw

    def attend(self, t):
        if not self.batch_first:
            t = t.transpose(0, 1)
        y, w = self.mha(t, t, t, **self.kw)
        if self.kw.get("need_weights", True):
            assert w is not None and not w.requires_grad
        return y if self.batch_first else y.transpose(0, 1)


def integer_counts(model, shape, to="all"):
    counts = autograd_pathways(model, shape, to=to)
    assert np.array_equal(counts, np.round(counts)), "a real-valued weight leaked into the counts"
    return counts


# ----------------------------------------------------------------------------- (1) attention written by hand

ALL = np.ones((N, N), dtype=bool)
CAUSAL = ~causal_blocked(N).numpy()


@pytest.mark.parametrize("how", ["matmul", "einsum", "bmm", "baddbmm"])
def test_hand_written_attention_counts_every_key(how):
    net = HandAttention(how=how)
    for to in ("all", "center"):
        assert np.array_equal(integer_counts(net, (C, 2, 2), to), tokens_counts(ALL, C, to)), to
    assert tokens_counts(ALL, C).tolist() == [[36, 36], [36, 36]]  # E² · 4 queries


@pytest.mark.parametrize("fill, style", [
    (float("-inf"), "add"), (-1e9, "add"), (torch.finfo(torch.float64).min, "add"), (-100.0, "add"),
    (-100.0, "inplace"), (float("-inf"), "masked_fill"), (-1e4, "baddbmm"),
])
def test_hand_written_causal_mask(fill, style):
    mask = torch.zeros(N, N, dtype=torch.float64).masked_fill(causal_blocked(N), fill)
    net = HandAttention(mask=mask, how="baddbmm" if style == "baddbmm" else "matmul", mask_style=style)
    assert np.array_equal(integer_counts(net, (C, 2, 2)), tokens_counts(CAUSAL, C))
    assert tokens_counts(CAUSAL, C).tolist() == [[36, 27], [18, 9]]  # key j is seen by the 4 - j queries i >= j


def test_a_bias_above_the_threshold_masks_nothing():
    bias = torch.full((N, N), MASKED_BELOW + 1.0, dtype=torch.float64)
    bias[0, 1] = MASKED_BELOW - 1.0  # just below: masked
    allowed = ALL.copy()
    allowed[0, 1] = False
    assert np.array_equal(integer_counts(HandAttention(mask=bias), (C, 2, 2)), tokens_counts(allowed, C))


# ----------------------------------------------------------------------------- (2) scaled_dot_product_attention

@pytest.mark.parametrize("kw, allowed", [
    ({}, ALL),
    ({"is_causal": True}, CAUSAL),
    ({"attn_mask": ~causal_blocked(N)}, CAUSAL),  # sdpa: True = may attend
    ({"attn_mask": torch.zeros(N, N, dtype=torch.float64).masked_fill(causal_blocked(N), float("-inf"))}, CAUSAL),
    ({"dropout_p": 0.5}, ALL),
])
def test_sdpa(kw, allowed):
    for to in ("all", "center"):
        assert np.array_equal(integer_counts(SDPA(**kw), (4, 2, 2), to), tokens_counts(allowed, 4, to)), to


def test_sdpa_grouped_query_heads():
    class GQA(Tokens):
        def __init__(self):
            super().__init__()
            self.q, self.kv, self.proj = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 4)

        def attend(self, t):  # 4 query heads of width 1, 1 key/value head of width 1
            q = self.q(t).transpose(1, 2)[..., None]
            k, v = (u.transpose(1, 2)[..., None] for u in self.kv(t).chunk(2, dim=-1))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            return self.proj(y[..., 0].transpose(1, 2))

    # value width 1 (one channel read of each token), 4 heads × proj width 4 reading it: 1 · 4 · 4 paths per (i, j)
    expected = 16 * CAUSAL.sum(0).reshape(2, 2)
    assert np.array_equal(integer_counts(GQA(), (4, 2, 2)), expected)


# ----------------------------------------------------------------------------- (3) nn.MultiheadAttention

@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention(batch_first, need_weights):
    net = MHA(batch_first=batch_first, need_weights=need_weights)
    for to in ("all", "center"):
        assert np.array_equal(integer_counts(net, (4, 2, 2), to), tokens_counts(ALL, 4, to)), to


@pytest.mark.parametrize("mask", [causal_blocked(N), torch.zeros(N, N).masked_fill(causal_blocked(N), -math.inf)])
def test_multihead_attention_causal_mask(mask):
    net = MHA(attn_mask=mask.double() if mask.is_floating_point() else mask)  # MHA: True = may NOT attend
    assert np.array_equal(integer_counts(net, (4, 2, 2)), tokens_counts(CAUSAL, 4))
    net = MHA(attn_mask=mask.double() if mask.is_floating_point() else mask, is_causal=True)
    assert np.array_equal(integer_counts(net, (4, 2, 2)), tokens_counts(CAUSAL, 4))


def test_multihead_attention_per_head_masks_and_key_padding():
    # head 0 causal, head 1 full: E_head · Σ_h #queries per key, summed over the E output channels
    per_head = torch.stack([causal_blocked(N), torch.zeros(N, N, dtype=torch.bool)])
    counts = integer_counts(MHA(attn_mask=per_head), (4, 2, 2))
    seen = CAUSAL.sum(0) + ALL.sum(0)
    assert np.array_equal(counts, (4 * 2 * seen).reshape(2, 2).astype(float))
    assert counts.tolist() == [[64, 56], [48, 40]]
    # key 3 padded away: no query reaches it
    pad = torch.tensor([[False, False, False, True]])
    allowed = ALL.copy()
    allowed[:, 3] = False
    assert np.array_equal(integer_counts(MHA(key_padding_mask=pad), (4, 2, 2)), tokens_counts(allowed, 4))


def test_multihead_attention_extra_constant_keys_and_unbatched():
    class Unbatched(Tokens):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True, kdim=3, vdim=3)
            self.up = nn.Linear(4, 4)

        def attend(self, t):  # t: 1×N×4; keys/values get 3 of the channels through kdim/vdim
            y, _ = self.mha(t[0], t[0, :, :3], t[0, :, :3])
            return self.up(y)[None]

    # value projection reads channels 0..2 only; bias_k/v and the zero key carry no paths
    # paths (j, c=0) → (i, m): 4 value channels · 1 (per head, summed by out_proj) → 4 · 4 (up) per (i, j)
    assert np.array_equal(integer_counts(Unbatched(), (4, 2, 2)), np.full((2, 2), 4.0 * 4 * 4 * N))


def test_transformer_encoder_layer():
    e, f = 4, 8
    layer = nn.TransformerEncoderLayer(e, 2, dim_feedforward=f, dropout=0.0, batch_first=True)

    class Enc(Tokens):
        def __init__(self):
            super().__init__()
            self.layer = layer

        def attend(self, t):
            return self.layer(t)

    # h = x + SA(x): δ + E paths per (j, c) → (i, m); out = h + FF(h), FF = F · Σ_c h: total (1 + N·E²)(1 + F·E)
    assert np.array_equal(integer_counts(Enc(), (e, 2, 2)), np.full((2, 2), (1.0 + N * e * e) * (1 + f * e)))


# ----------------------------------------------------------------------------- (4) Swin's shifted windows

def swin_brute_force(h: int, w: int, window: int, shift: int, c: int) -> np.ndarray:
    """Paths from every (row, col), channel 0, to all outputs of one shifted-window attention with ones weights."""
    ph, pw = h + (-h) % window, w + (-w) % window
    sh, sw = (0 if window >= ph else shift), (0 if window >= pw else shift)
    label = np.zeros((ph, pw), dtype=int)  # torchvision's region labels, on the rolled padded map
    count = 0
    for hs in (slice(0, -window), slice(-window, -sh), slice(-sh, None)):
        for ws in (slice(0, -window), slice(-window, -sw), slice(-sw, None)):
            label[hs, ws] = count
            count += 1
    counts = np.zeros((h, w))
    for wr, wc in itertools.product(range(ph // window), range(pw // window)):
        cells = [(wr * window + a, wc * window + b) for a in range(window) for b in range(window)]
        for (r1, c1), (r2, c2) in itertools.product(cells, cells):
            if sh + sw > 0 and label[r1, c1] != label[r2, c2]:
                continue
            q = ((r1 + sh) % ph, (c1 + sw) % pw)  # rolled by -shift: rolled (r, c) holds original (r+s, c+s)
            k = ((r2 + sh) % ph, (c2 + sw) % pw)
            if q[0] < h and q[1] < w and k[0] < h and k[1] < w:
                counts[k] += c * c  # value ones (c) × output projection ones (c) for every output channel
    return counts


class ChannelsLast(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


SWIN_CASES = [(8, 8, 4, 2), (8, 8, 4, 0), (6, 7, 4, 2), (4, 8, 4, 2), (9, 9, 3, 1)]


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("h, w, window, shift", SWIN_CASES)
def test_shifted_window_attention_against_brute_force(h, w, window, shift, v2, monkeypatch):
    import edgewise.testing.oracle as oracle

    calls = []
    replacement = oracle._swin_window_attention
    monkeypatch.setattr(oracle, "_swin_window_attention", lambda *a, **k: calls.append(1) or replacement(*a, **k))
    c = 4
    cls = swin_transformer.ShiftedWindowAttentionV2 if v2 else swin_transformer.ShiftedWindowAttention
    net = ChannelsLast(cls(c, [window, window], [shift, shift], num_heads=2))
    expected = swin_brute_force(h, w, window, shift, c)
    assert expected.max() > 0
    assert np.array_equal(integer_counts(net, (c, h, w)), expected)
    assert calls == [1]  # torchvision's function was replaced by the structural value path
    # the generic rules (q@kᵀ scores, -100 mask below MASKED_BELOW) agree with the structural replacement
    ones = ones_network(net).net.double()
    x = torch.zeros((1, c, h, w), dtype=torch.float64, requires_grad=True)
    with _PathwayMode():
        y = ones(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert np.array_equal(g[0, 0].numpy(), expected)
    assert swin_transformer.shifted_window_attention.__module__ == swin_transformer.__name__  # restored


def test_shifted_windows_are_not_uniform():
    counts = swin_brute_force(8, 8, 4, 2, 1)
    # regions of the shifted frame: tokens near the wrap-around see fewer keys than the centre of the map
    assert counts[3, 3] == 16 and counts[0, 0] == 4 and counts[7, 7] == 4


def test_tiny_swin_transformer_generic_equals_replaced():
    net = swin_transformer.SwinTransformer([4, 4], 8, [2], [2], [4, 4], stochastic_depth_prob=0.0, num_classes=5)
    counts = integer_counts(net, (3, 32, 32))
    ones = ones_network(net).net.double()
    x = torch.zeros((1, 3, 32, 32), dtype=torch.float64, requires_grad=True)
    with _PathwayMode():
        y = ones(x)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert (counts > 0).all() and np.array_equal(g[0, 0].numpy(), counts)


# ----------------------------------------------------------------------------- gates and whole models

def test_squeeze_excitation_counts_both_operands():
    from torchvision.ops import SqueezeExcitation

    # out = x * g(x): x[0, p] reaches its own output once and every output through the gate:
    # gate[c] = S · Σ x (ones 1×1 convs C→S→C after the global window sum): 1 + C·H·W·S paths
    assert np.array_equal(integer_counts(SqueezeExcitation(4, 2), (4, 2, 2)), np.full((2, 2), 1.0 + 4 * 2 * 2 * 2))


def tiny(name):
    from torchvision.models import convnext, maxvit, vision_transformer

    return {
        "vit": lambda: vision_transformer.VisionTransformer(16, 8, 1, 2, 8, 16, num_classes=5),
        "maxvit": lambda: maxvit.MaxVit((32, 32), 8, 2, [8], [1], 4, 0.0, num_classes=5),
        "convnext": lambda: convnext.ConvNeXt([convnext.CNBlockConfig(8, 16, 1), convnext.CNBlockConfig(16, None, 1)],
                                              num_classes=5),
        "shufflenet": lambda: torchvision.models.shufflenet_v2_x0_5(),
    }[name]()


@pytest.mark.parametrize("name, size", [("vit", 16), ("maxvit", 32), ("convnext", 32), ("shufflenet", 32)])
def test_tiny_transformers_and_shuffles_give_integer_counts(name, size):
    counts = integer_counts(tiny(name), (3, size, size))
    assert np.isfinite(counts).all() and (counts > 0).all()
    if name == "vit":  # disjoint patches, unmasked attention: every pixel alike
        assert (counts == counts[0, 0]).all()


# ----------------------------------------------------------------------------- (5) transposed convolution

def conv_transpose_brute_force(cin, cout, size, k, stride, pad, out_pad, dilation, groups, to):
    """Paths from input channel 0 at each position to the selected outputs of a ones ConvTranspose2d."""
    h, w = size
    oh = (h - 1) * stride - 2 * pad + dilation * (k - 1) + out_pad + 1
    ow = (w - 1) * stride - 2 * pad + dilation * (k - 1) + out_pad + 1
    outs_of_group0 = cout // groups  # input channel 0 feeds the first group's output channels
    counts = np.zeros((h, w))
    for iy, ix, ky, kx in itertools.product(range(h), range(w), range(k), range(k)):
        y, x = iy * stride - pad + ky * dilation, ix * stride - pad + kx * dilation
        if 0 <= y < oh and 0 <= x < ow and (to == "all" or (y, x) == ((oh - 1) // 2, (ow - 1) // 2)):
            counts[iy, ix] += outs_of_group0
    return counts


@pytest.mark.parametrize("k, stride, pad, out_pad, dilation, groups", [
    (3, 2, 1, 1, 1, 1), (2, 2, 0, 0, 1, 2), (3, 1, 0, 0, 2, 1), (4, 3, 2, 2, 1, 2),
])
def test_conv_transpose2d(k, stride, pad, out_pad, dilation, groups):
    net = nn.ConvTranspose2d(2, 4, k, stride, pad, out_pad, groups=groups, dilation=dilation)
    for to in ("all", "center"):
        exp = conv_transpose_brute_force(2, 4, (4, 5), k, stride, pad, out_pad, dilation, groups, to)
        assert np.array_equal(integer_counts(net, (2, 4, 5), to), exp), to


def test_conv_transpose1d():
    net = nn.ConvTranspose1d(1, 3, 3, stride=2)
    # every input feeds 3 taps × 3 channels; all taps land inside the output
    assert np.array_equal(integer_counts(net, (1, 5)), np.full(5, 9.0))


# ----------------------------------------------------------------------------- (6) data movement

def jacobian(net, shape):
    """d output / d input of the ones network, flattened: a 0/1 matrix for pure data movement."""
    ones = ones_network(net).double()
    x = torch.zeros((1, *shape), dtype=torch.float64, requires_grad=True)
    y = ones(x)
    rows = [torch.autograd.grad(y.reshape(-1)[i], x, retain_graph=True)[0].reshape(-1) for i in range(y.numel())]
    return torch.stack(rows).numpy(), y.shape


class Lambda(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def torchvision_shuffle(x):
    from torchvision.models.shufflenetv2 import channel_shuffle

    return channel_shuffle(x, 2)


@pytest.mark.parametrize("fn", [lambda x: F.channel_shuffle(x, 2), nn.ChannelShuffle(2), torchvision_shuffle])
def test_channel_shuffle_is_the_permutation(fn):
    net = fn if isinstance(fn, nn.Module) else Lambda(fn)
    jac, shape = jacobian(net, (6, 2, 3))
    perm = torch.arange(6).reshape(2, 3).t().reshape(-1)  # groups 2 × 3 channels → interleaved
    x = torch.arange(36, dtype=torch.float64).reshape(1, 6, 2, 3)
    expected = np.eye(36)[x[:, perm].reshape(-1).long().numpy()]
    assert tuple(shape) == (1, 6, 2, 3) and np.array_equal(jac, expected)


def test_roll_is_a_circular_shift():
    net = Lambda(lambda x: torch.roll(x, shifts=(1, 2), dims=(2, 3)))
    jac, _ = jacobian(net, (1, 3, 4))
    idx = torch.arange(12, dtype=torch.float64).reshape(1, 1, 3, 4)
    assert np.array_equal(jac, np.eye(12)[torch.roll(idx, (1, 2), (2, 3)).reshape(-1).long().numpy()])
    # output (0, 0) reads input ((0 - 1) % 3, (0 - 2) % 4) = (2, 2)
    counts = autograd_pathways(net, (1, 3, 4), to=(0, 0))
    assert counts[2, 2] == 1 and counts.sum() == 1


@pytest.mark.parametrize("fn", [
    lambda x: F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2),
    lambda x: x.permute(0, 2, 3, 1).reshape(1, -1, 4).unflatten(1, (2, 2)).permute(0, 3, 1, 2),
    lambda x: torch.cat(torch.chunk(x, 2, dim=1)[::-1], dim=1).roll(2, 1).transpose(2, 3).transpose(2, 3),
    lambda x: torch.stack(x.unbind(2), dim=2) + torch.cat(x.split(1, dim=3), dim=3)[..., :] * 0.0,
])
def test_pure_data_movement_is_the_identity(fn):
    jac, shape = jacobian(Lambda(fn), (4, 2, 2))
    assert tuple(shape) == (1, 4, 2, 2)
    if np.array_equal(jac, np.eye(16)):
        return
    assert np.array_equal(jac, 2 * np.eye(16))  # the last case: both operands of the sum carry the paths


def test_pad_and_linear_on_tokens():
    net = nn.Sequential(nn.ZeroPad2d((1, 0, 0, 1)), Lambda(lambda x: x.permute(0, 2, 3, 1)), nn.Linear(2, 3),
                        Lambda(lambda x: x.permute(0, 3, 1, 2)))
    assert np.array_equal(integer_counts(net, (2, 2, 2)), np.full((2, 2), 3.0))


def test_constant_matmul_operands():
    class Const(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 5))  # a weight: ones, whatever its value (zero included)
            self.w.data[0, 0] = 0.0
            self.register_buffer("pattern", torch.tensor([[0.0, 2.5], [-1.0, 0.0]]))  # not a weight: 0/1 pattern

        def forward(self, x):  # 1×3×2×2
            t = x.flatten(2).transpose(1, 2) @ self.w  # 1×4×5
            t = t.transpose(1, 2).reshape(1, 5, 2, 2)
            return self.pattern @ t @ self.w.t()[:2, :2].T

    # (j=(r,c), ch 0) → every w column (5) → pattern row r' with pattern[r', r] ≠ 0 → all 2 output columns
    pattern_hits = np.array([1, 1])  # column r of the pattern has one non-zero entry each
    expected = 5 * 2 * pattern_hits[:, None] * np.ones((2, 2))
    assert np.array_equal(integer_counts(Const(), (3, 2, 2)), expected)


# ----------------------------------------------------------------------------- (7) refusals

class Misuse(Tokens):
    def __init__(self, how):
        super().__init__()
        self.qkv, self.how = nn.Linear(C, 3 * C), how

    def attend(self, t):
        q, k, v = self.qkv(t).chunk(3, dim=-1)
        s = q @ k.transpose(-2, -1)
        if self.how == "product":
            return s @ v  # scores used as weights without a softmax
        if self.how == "relu":
            return torch.relu(s).softmax(-1) @ v
        if self.how == "log_softmax":
            return s.log_softmax(-1) @ v
        if self.how == "times_input":
            return (s * q.sum(-1, keepdim=True)).softmax(-1) @ v
        if self.how == "softmax_of_input":
            return t.softmax(-1)
        return s.softmax(-1)  # only the (pathless) weights are returned


@pytest.mark.parametrize("how, words", [
    ("product", "matmul applied to attention scores"),
    ("relu", "relu applied to attention scores"),
    ("log_softmax", "log_softmax applied to attention scores"),
    ("times_input", "with an input-dependent operand applied to attention scores"),
    ("softmax_of_input", "softmax of an input-dependent tensor that is not attention scores"),
    ("weights_only", "carries no paths"),
])
def test_misuse_of_scores_is_refused(how, words):
    with pytest.raises(EdgewiseError) as info:
        autograd_pathways(Misuse(how), (C, 2, 2))
    assert words in str(info.value), str(info.value)


def test_three_input_dependent_operands_are_refused():
    net = Lambda(lambda x: torch.einsum("bcij,bcjk,bckl->bcil", x, x, x))
    with pytest.raises(EdgewiseError, match="more than two input-dependent operands"):
        autograd_pathways(net, (1, 2, 2))


def test_static_values_are_refused():
    class Static(Tokens):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(4, 2)

        def attend(self, t):
            t0, m = t.transpose(0, 1), self.mha
            y, _ = F.multi_head_attention_forward(
                t0, t0, t0, 4, 2, m.in_proj_weight, m.in_proj_bias, None, None, False, 0.0, m.out_proj.weight,
                m.out_proj.bias, static_v=torch.zeros(2, N, 2, dtype=t.dtype))
            return y.transpose(0, 1)

    with pytest.raises(EdgewiseError, match="static_k/static_v"):
        autograd_pathways(Static(), (4, 2, 2))


def test_the_model_is_left_alone():
    net = HandAttention()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    autograd_pathways(net, (C, 2, 2))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())

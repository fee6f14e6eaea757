"""Attention variants of timm (issue 15, helper h2): attention across channels (XCiT, DaViT), RoPE on all
tokens but the prefix tokens (EVA / DINOv3, Qwen3-ViT), talking heads (CaiT, EfficientFormer-v2), ConViT's
gated positional attention, SAM's decomposed relative positions. Each pattern hand-built small and checked
against the autograd oracle, with a count computed by hand; then the real timm model of each family."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.testing.oracle import autograd_pathways
from test_timm_ops import check, counts

timm = pytest.importorskip("timm")
from timm.layers.pos_embed_sincos import apply_rot_embed_cat  # noqa: E402


def tokens_of(x):
    """(1, C, H, W) → (1, H·W, C)."""
    return x.flatten(2).transpose(1, 2)


# ----------------------------------------------------------------------------- attention across channels

class ChannelAttention(nn.Module):
    """XCiT's XCA (``davit=False``: softmax(q·kᵀ over tokens) @ v) or DaViT's channel attention
    (``davit=True``: softmax(kᵀ·v) applied to q: q is the value path), on a map of C channels."""

    def __init__(self, c=4, heads=2, kernel=3, davit=False, fused=False):
        super().__init__()
        self.embed = nn.Conv2d(1, c, kernel, padding=kernel // 2)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.heads, self.davit, self.fused = heads, davit, fused

    def forward(self, x):
        x = self.embed(x)
        _, c, h, w = x.shape
        t = tokens_of(x)
        qkv = self.qkv(t).reshape(1, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 4, 1)  # 3,B,H,C',N
        q, k, v = qkv.unbind(0)
        if self.davit:
            q, k, v = (z.transpose(-1, -2) for z in (q, k, v))  # B,H,N,C' as in DaViT
            attn = (k.transpose(-1, -2) @ v).softmax(-1)  # B,H,C',C'
            out = attn @ q.transpose(-1, -2)  # the value path runs through q
        elif self.fused:
            out = F.scaled_dot_product_attention(F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, scale=1.0)
        else:
            attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)).softmax(-1)
            out = attn @ v  # B,H,C',N
        out = self.proj(out.permute(0, 3, 1, 2).reshape(1, h * w, c))
        return out.transpose(1, 2).reshape(1, c, h, w)


@pytest.mark.parametrize("kind", [{}, {"davit": True}, {"fused": True}], ids=["xca", "davit", "xca-sdpa"])
def test_attention_across_channels_is_a_grouped_1x1_connection(kind):
    check(ChannelAttention(**kind), (1, 6, 5))
    # by hand, with a 1x1 embedding: input (ch 0, p) → C embedding units → each value unit reads C of them →
    # each output channel reads the d = C/heads value channels of its head at the same token → proj reads C:
    # C · C · d · C = 4·4·2·4 = 128 paths per position (attention over tokens would give 16× that, over all
    # channels 2×)
    net = ChannelAttention(kernel=1, **kind)
    np.testing.assert_array_equal(counts(net, (1, 4, 4)), np.full((4, 4), 128.0))
    g = edgewise.trace(net, (1, 4, 4))
    across = [n for n in g if n.op == "attention across channels"]
    assert len(across) == 1 and across[0].kind == "conv" and across[0].groups == 2


# ----------------------------------------------------------------------------- RoPE, prefix tokens unrotated

class RopeViT(nn.Module):
    """EVA / DINOv3: a class token and registers (constants in the first block), RoPE on the patch tokens only
    (``apply_rot_embed_cat``), attention without a residual, read out at the class token."""

    def __init__(self, c=2, prefix=3, blocks=2, rope=True, half=False, kernel=1):
        super().__init__()
        self.embed = nn.Conv2d(1, c, kernel, padding=kernel // 2)
        self.prefix_tokens = nn.Parameter(torch.randn(1, prefix, c))
        self.qkv = nn.ModuleList(nn.Linear(c, 3 * c) for _ in range(blocks))
        self.proj = nn.ModuleList(nn.Linear(c, c) for _ in range(blocks))
        self.head = nn.Linear(c, 1)
        self.rope, self.half, self.npt = rope, half, prefix

    def forward(self, x):
        x = self.embed(x)
        _, c, h, w = x.shape
        n = h * w
        emb = torch.cat([torch.linspace(0.1, 1.0, n * c).reshape(n, c).sin(),
                         torch.linspace(0.2, 2.0, n * c).reshape(n, c).cos()], -1)
        t = torch.cat([self.prefix_tokens, tokens_of(x)], 1)
        for qkv, proj in zip(self.qkv, self.proj):
            q, k, v = qkv(t).reshape(1, t.shape[1], 3, 1, c).permute(2, 0, 3, 1, 4).unbind(0)
            if self.rope:
                npt = self.npt
                q = torch.cat([q[:, :, :npt], apply_rot_embed_cat(q[:, :, npt:], emb, half=self.half)], 2).type_as(v)
                k = torch.cat([k[:, :, :npt], apply_rot_embed_cat(k[:, :, npt:], emb, half=self.half)], 2).type_as(v)
            t = proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(1, -1, c))
        return self.head(t[:, 0])


@pytest.mark.parametrize("half", [False, True])
def test_rope_on_patch_tokens_with_constant_prefix_tokens(half):
    check(RopeViT(half=half, kernel=3), (1, 4, 5))
    # by hand (C = 2 channels, N = 4 patch tokens, T = 3 prefix tokens, two blocks): the first block's values
    # at patch tokens carry C paths per unit and every token reads every patch token, so after proj every token
    # carries C² per unit; the second block reads N + T tokens (the T prefix tokens are copies of one pooled
    # vector, and each is a key of its own): (N + T)·C³ per value unit, C more for proj and head: (N+T)·C⁵
    ours = counts(RopeViT(half=half), (1, 2, 2))
    np.testing.assert_array_equal(ours, np.full((2, 2), (4 + 3) * 2 ** 5))
    np.testing.assert_array_equal(ours, counts(RopeViT(rope=False), (1, 2, 2)))  # RoPE moves no paths


class RotatedValues(nn.Module):
    """An elementwise sum of two operands that read other channels at the same position (a rotation of the
    values themselves): each output unit has the paths of both units it pairs."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        t = self.fc(tokens_of(self.embed(x)))
        cos = torch.linspace(0.5, 1.5, t.shape[1] * 4).reshape(1, -1, 4)
        rot = torch.stack([-t[..., 1::2], t[..., ::2]], -1).reshape(t.shape)
        return (t * cos + rot * cos.flip(-1))[:, :, :3].transpose(1, 2).reshape(1, 3, *x.shape[2:])


def test_channels_paired_at_each_position():
    check(RotatedValues(), (1, 5, 6))


# ----------------------------------------------------------------------------- talking heads

class TalkingHeads(nn.Module):
    """CaiT (``conv=False``: Linear over heads before and after the softmax) or EfficientFormer-v2 (1×1
    convolutions over the head axis), optionally with a causal mask shared by all heads."""

    def __init__(self, c=4, heads=2, conv=False, causal=False, per_head_mask=False, kernel=1):
        super().__init__()
        self.embed = nn.Conv1d(1, c, 3, padding=1)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        if conv:
            self.mix_l = nn.Conv2d(heads, heads, kernel, padding=kernel // 2)
            self.mix_w = nn.Conv2d(heads, heads, 1)
        else:
            self.mix_l, self.mix_w = nn.Linear(heads, heads), nn.Linear(heads, heads)
        self.heads, self.conv, self.causal, self.per_head_mask = heads, conv, causal, per_head_mask

    def forward(self, x):
        t = self.embed(x).transpose(1, 2)
        n, c = t.shape[1], t.shape[2]
        q, k, v = self.qkv(t).reshape(1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = q @ k.transpose(-2, -1)
        if self.causal:
            attn = attn.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        if self.per_head_mask:
            blocked = torch.zeros(self.heads, n, n, dtype=torch.bool)
            blocked[0, 0, 1] = True
            attn = attn.masked_fill(blocked, float("-inf"))
        if self.conv:
            attn = self.mix_w(self.mix_l(attn).softmax(-1))
        else:
            attn = self.mix_l(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).softmax(-1)
            attn = self.mix_w(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        out = self.proj((attn @ v).transpose(1, 2).reshape(1, n, c))
        return out.transpose(1, 2)


@pytest.mark.parametrize("conv", [False, True], ids=["linear", "conv"])
@pytest.mark.parametrize("causal", [False, True], ids=["all", "causal"])
def test_talking_heads_keep_the_keys(conv, causal):
    ours = check(TalkingHeads(conv=conv, causal=causal), (1, 7))
    # by hand: input p reaches the C embedding units at each token e of its window (3 taps, 2 at the ends);
    # a value unit reads C of them; every channel of query i reads the same channel of every key e it may
    # attend, and proj and the C outputs multiply by C: C³ · Σ_e (queries attending e). Mixing heads does not
    # change which keys a query attends.
    attending = np.arange(7, 0, -1) if causal else np.full(7, 7)  # causal: key e is attended by queries e..6
    np.testing.assert_array_equal(ours, 4 ** 3 * np.convolve(attending, [1, 1, 1], "same"))


def test_talking_heads_of_heads_with_other_keys_are_refused():
    net = TalkingHeads(per_head_mask=True)
    with pytest.raises(EdgewiseError, match="talking heads|allow different keys"):
        edgewise.trace(net, (1, 7))
    with pytest.raises(EdgewiseError, match="kernel wider than 1"):
        edgewise.trace(TalkingHeads(conv=True, kernel=3), (1, 7))
    with pytest.raises(EdgewiseError, match="kernel wider than 1"):
        autograd_pathways(TalkingHeads(conv=True, kernel=3), (1, 7))


# ----------------------------------------------------------------------------- gated positional attention

class GatedAttention(nn.Module):
    """ConViT's GPSA: softmax(content scores) and softmax(constant positional scores), gated and renormalised
    by their own sum (``band=None``); or the content weights multiplied by a constant band (|i - j| ≤ 1) and
    renormalised, which leaves only the band's keys."""

    def __init__(self, c=4, heads=2, band=False, causal=True):
        super().__init__()
        self.embed = nn.Conv1d(1, c, 1)
        self.qk, self.v, self.proj = nn.Linear(c, 2 * c), nn.Linear(c, c), nn.Linear(c, c)
        self.pos_proj = nn.Linear(3, heads)
        self.gating = nn.Parameter(torch.ones(heads))
        self.heads, self.band, self.causal = heads, band, causal

    def forward(self, x):
        t = self.embed(x).transpose(1, 2)
        n, c = t.shape[1], t.shape[2]
        q, k = self.qk(t).reshape(1, n, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        v = self.v(t).reshape(1, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        content = q @ k.transpose(-2, -1)
        if self.causal:
            content = content.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        content = content.softmax(-1)
        i = torch.arange(n)
        if self.band:
            attn = content * ((i[:, None] - i[None, :]).abs() <= 1).float()
        else:
            rel = torch.stack([(i[:, None] - i[None, :]).float(), (i[:, None] - i[None, :]).float() ** 2,
                               torch.ones(n, n)], -1)[None].to(t.dtype)
            pos = self.pos_proj(rel).permute(0, 3, 1, 2).softmax(-1)
            gate = torch.sigmoid(self.gating).view(1, -1, 1, 1)
            attn = (1.0 - gate) * content + gate * pos
        attn /= attn.sum(dim=-1).unsqueeze(-1)
        out = self.proj((attn @ v).transpose(1, 2).reshape(1, n, c))
        return out.transpose(1, 2)


def test_gated_positional_attention_reaches_every_key():
    # the content part is causal, the positional part reaches every key: every query attends every key
    ours = check(GatedAttention(), (1, 6))
    np.testing.assert_array_equal(ours, np.full(6, 4 * 4 * 6 * 4.0))  # C · C · 6 queries · C


def test_attention_weights_times_a_constant_band():
    ours = check(GatedAttention(band=True, causal=False), (1, 6))
    # the band |i - j| <= 1: a key is read by 2 queries at the ends, 3 inside
    np.testing.assert_array_equal(ours, np.array([2, 3, 3, 3, 3, 2]) * 4 * 4 * 4.0)
    # with the causal mask too: query i reads keys i-1 and i, so key p is read by queries p and p+1
    ours = check(GatedAttention(band=True, causal=True), (1, 6))
    np.testing.assert_array_equal(ours, np.array([2, 2, 2, 2, 2, 1]) * 4 * 4 * 4.0)


# ----------------------------------------------------------------------------- relative positions from queries

class RelPosAttention(nn.Module):
    """SAM's decomposed relative positions: einsum(q, R_h) + einsum(q, R_w) added to the logits (``fused``:
    as sdpa's float attn_mask); ``misuse`` adds the same product to the values instead (refused)."""

    def __init__(self, c=4, h=3, w=4, fused=False, misuse=False):
        super().__init__()
        self.embed = nn.Conv2d(1, c, 3, padding=1)
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.rel_h = nn.Parameter(torch.randn(2 * h - 1, c))
        self.rel_w = nn.Parameter(torch.randn(2 * w - 1, c))
        self.fused, self.misuse = fused, misuse

    def forward(self, x):
        x = self.embed(x)
        _, c, h, w = x.shape
        q, k, v = self.qkv(tokens_of(x)).reshape(1, h * w, 3, c).permute(2, 0, 1, 3).unbind(0)
        rh = self.rel_h[(torch.arange(h)[:, None] - torch.arange(h)[None, :]) + h - 1]  # (h, h, c)
        rw = self.rel_w[(torch.arange(w)[:, None] - torch.arange(w)[None, :]) + w - 1]
        r_q = q.reshape(1, h, w, c)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
        if self.misuse:
            v = v + rel_h.reshape(1, h * w, h)[..., :1]
        bias = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(1, h * w, h * w)
        if self.fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        else:
            out = ((q @ k.transpose(-2, -1)) * c ** -0.5 + bias).softmax(-1) @ v
        return self.proj(out).transpose(1, 2).reshape(1, c, h, w)


@pytest.mark.parametrize("fused", [False, True], ids=["matmul", "sdpa"])
def test_relative_positions_from_the_queries_are_part_of_the_logits(fused):
    ours = check(RelPosAttention(fused=fused), (1, 3, 4))
    # every token attends every token: a position's paths are its embedding taps · C · C · 12 queries · C
    taps = np.outer([2, 3, 2], [2, 3, 3, 2])
    np.testing.assert_array_equal(ours, taps * 4 * 4 * 12 * 4)


def test_a_product_with_a_constant_used_as_a_value_is_refused():
    with pytest.raises(EdgewiseError, match="a matrix product edgewise cannot map"):
        edgewise.trace(RelPosAttention(misuse=True), (1, 3, 4))


# ----------------------------------------------------------------------------- the real timm models

REAL = {
    "davit": ("davit_tiny", {"depths": (1, 1, 1, 1)}, (3, 64, 64)),
    "xcit": ("xcit_nano_12_p8_224", {"img_size": 32, "depth": 2}, (3, 32, 32)),
    "eva": ("vit_tiny_patch16_dinov3_qkvb", {"img_size": 48, "depth": 2}, (3, 48, 48)),
    "qwen3_vit": ("qwen3_vit_88m", {"img_size": 64, "depth": 2}, (3, 64, 64)),
    "cait": ("cait_xxs24_224", {"img_size": 32, "depth": 2, "depth_token_only": 1}, (3, 32, 32)),
    "efficientformer_v2": ("efficientformerv2_s0", {"img_size": 64}, (3, 64, 64)),
    "convit": ("convit_tiny", {"img_size": 48, "depth": 2, "local_up_to_layer": 1}, (3, 48, 48)),
    "vision_transformer_sam": ("samvit_base_patch16_224",
                               {"img_size": 64, "depth": 2, "global_attn_indexes": (1,), "window_size": 2,
                                "embed_dim": 96, "num_heads": 2}, (3, 64, 64)),
    # four register tokens and a class token, one constant in the first block: copies as keys in the second
    # (counted once each before, 19 % too few paths)
    "vision_transformer (registers)": ("vit_small_patch14_reg4_dinov2", {"img_size": 56, "depth": 2}, (3, 56, 56)),
}


@pytest.mark.parametrize("family", sorted(REAL))
def test_real_timm_model_equals_the_oracle(family):
    name, kwargs, shape = REAL[family]
    torch.manual_seed(0)
    net = timm.create_model(name, pretrained=False, **kwargs).eval()
    ours = counts(net, shape)
    ref = autograd_pathways(net, shape)
    assert np.array_equal(ours == 0, ref == 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


class ProductOut(nn.Module):
    def forward(self, x):
        t = tokens_of(x)  # a token layout: the product reaches edgewise's handling of matrix products
        return torch.einsum("bnc,nc->bn", t, torch.ones(t.shape[1], t.shape[2]))


def test_a_product_with_a_constant_returned_is_refused():
    with pytest.raises(EdgewiseError, match="a matrix product edgewise cannot map"):
        edgewise.trace(ProductOut(), (1, 4, 5))


class ReassignsBuffer(nn.Module):
    """ConViT's pattern: a buffer recomputed in forward when the token count changes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.register_buffer("table", torch.zeros(1), persistent=False)

    def forward(self, x):
        n = x.shape[2] * x.shape[3]
        if self.table.shape[0] != n:
            self.table = torch.arange(n, dtype=x.dtype)
        return self.conv(x) + 0 * self.table.reshape(1, 1, *x.shape[2:])


def test_a_trace_leaves_reassigned_buffers_alone():
    net = ReassignsBuffer()
    edgewise.trace(net, (1, 4, 5))
    assert type(net.table) is torch.Tensor and net.table.shape == (1,)
    check(net, (1, 4, 5))

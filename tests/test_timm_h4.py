"""Patterns of timm families traced exactly since issue 15's sweep (tresnet, gcvit, swiftformer, nextvit, mobilevit,
crossvit, mvitv2): each hand-built small and compared with the autograd oracle, with hand-computed counts that a
wrong definition would miss, and the real timm models at 64 px."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise._axis import Resample
from edgewise.testing.oracle import autograd_pathways

timm = pytest.importorskip("timm")
from test_timm_ops import check, counts  # noqa: E402
from timm.models.mvitv2 import cal_rel_pos_type  # noqa: E402  (a timm fx leaf function: kept whole when traced)


def ones_(net: nn.Module) -> nn.Module:
    """Deterministic weights (the counts do not depend on them; the oracle's scores need none)."""
    torch.manual_seed(0)
    return net.eval()


# ----------------------------------------------------------------------------- space-to-depth (TResNet)

class SpaceToDepthNet(nn.Module):
    """TResNet's stem: every channel of the result reads a different phase of the 2×2 blocks."""

    def __init__(self, pad=1):
        super().__init__()
        self.conv = nn.Conv2d(4, 1, 3, padding=pad)

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4).contiguous().view(n, c * 4, h // 2, w // 2)
        return self.conv(x)


def test_space_to_depth_hand_count():
    # pixel (y, x) is channel (y % 2, x % 2) at (y // 2, x // 2) of a 3×3 map; a 3×3 'same' convolution reaches
    # 2, 3, 2 outputs along each axis from there: counts outer([2, 2, 3, 3, 2, 2]) (one channel, one output channel)
    net = ones_(SpaceToDepthNet())
    ours = check(net, (1, 6, 6))
    f = np.array([2, 2, 3, 3, 2, 2], dtype=float)
    np.testing.assert_array_equal(ours, np.outer(f, f))


def test_space_to_depth_timm_layer():
    net = ones_(nn.Sequential(timm.layers.SpaceToDepth(4), nn.Conv2d(32, 3, 3, padding=1)))
    check(net, (2, 12, 8), brute=False)


# ----------------------------------------------------------------------------- functional convolution (BlurPool)

class FunctionalConv(nn.Module):
    def __init__(self, groups=1, stride=1, padding=0):
        super().__init__()
        self.register_buffer("w", torch.ones(2, 2 // groups, 3, 3))
        self.groups, self.stride, self.padding = groups, stride, padding

    def forward(self, x):
        return F.conv2d(torch.cat([x, x], 1), self.w, stride=self.stride, padding=self.padding, groups=self.groups)


def test_functional_conv_hand_count():
    # a 3×3 window without padding on 4×4: pixel (y, x) lies in 1, 2, 2, 1 windows along each axis; the input
    # channel is repeated twice and each of the 2 output channels reads both copies (groups=1): × 4
    ours = check(ones_(FunctionalConv()), (1, 4, 4))
    f = np.array([1, 2, 2, 1], dtype=float)
    np.testing.assert_array_equal(ours, 4 * np.outer(f, f))
    # depthwise: each output channel reads its own copy only: × 2
    ours = check(ones_(FunctionalConv(groups=2)), (1, 4, 4))
    np.testing.assert_array_equal(ours, 2 * np.outer(f, f))


@pytest.mark.parametrize("stride,padding", [(2, 1), (1, "same")])
def test_functional_conv_against_oracle(stride, padding):
    check(ones_(FunctionalConv(groups=2, stride=stride, padding=padding)), (1, 7, 6))


def test_blurpool():
    net = ones_(nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), timm.layers.BlurPool2d(3, filt_size=3, stride=2)))
    check(net, (1, 9, 8), brute=False)


class DynamicConv(nn.Module):
    def forward(self, x):
        return F.conv2d(x, x[:, :, :3, :3].reshape(1, 1, 3, 3))


def test_functional_conv_with_input_weight_refused():
    with pytest.raises(EdgewiseError, match="dynamic convolution"):
        edgewise.trace(DynamicConv(), (1, 6, 6))


# ----------------------------------------------------------------------------- dead code

class DeadBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        torch.cumsum(y, dim=2)  # computed, never read: nothing to map
        return y


def test_dead_node_is_skipped():
    check(ones_(DeadBranch()), (1, 5, 5))


# ----------------------------------------------------------------------------- global query per window (GCViT)

class GlobalQueryWindows(nn.Module):
    """GCViT's WindowAttentionGlobal: keys and values per 4×4 window, one query set shared by every window."""

    def __init__(self, dim=2, window=4):
        super().__init__()
        self.window = window
        self.embed = nn.Conv2d(1, dim, 1)
        self.q_src = nn.Sequential(nn.AdaptiveAvgPool2d(window), nn.Conv2d(dim, dim, 1))
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        k = self.window
        q = self.q_src(x).flatten(2).transpose(1, 2)  # (1, k*k, C)
        win = x.permute(0, 2, 3, 1).reshape(b, h // k, k, w // k, k, c).permute(0, 1, 3, 2, 4, 5)
        win = win.reshape(-1, k * k, c)
        kv = self.kv(win).reshape(win.shape[0], k * k, 2, c).permute(2, 0, 1, 3)
        key, value = kv.unbind(0)
        q = q.repeat_interleave(win.shape[0] // q.shape[0], dim=0)
        attn = (q @ key.transpose(-2, -1)).softmax(-1)
        out = attn @ value
        out = out.reshape(b, h // k, w // k, k, k, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)
        return out


def test_global_query_attends_its_window_only():
    # one channel: every output token reads the 16 values of its own window once (the shared query carries no
    # paths): 16 paths from every pixel. Reading the union of the windows would give 64.
    net = ones_(GlobalQueryWindows(dim=1))
    ours = check(net, (1, 8, 8), brute=False)
    np.testing.assert_array_equal(ours, np.full((8, 8), 16.0))
    check(ones_(GlobalQueryWindows(dim=2)), (1, 8, 8), brute=False)


class PaddedWindows(nn.Module):
    """Swin's window attention on a map padded to whole windows: the padding tokens are constant queries, shared by
    windows that attend different keys (their rows are cropped away afterwards)."""

    def __init__(self, dim=1, window=4):
        super().__init__()
        self.window = window
        self.embed = nn.Conv2d(1, dim, 1)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        k = self.window
        t = F.pad(x.permute(0, 2, 3, 1), (0, 0, 0, (-w) % k, 0, (-h) % k))
        hp, wp = t.shape[1], t.shape[2]
        win = t.reshape(b, hp // k, k, wp // k, k, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, k * k, c)
        out = F.scaled_dot_product_attention(win, win, win)
        out = out.reshape(b, hp // k, wp // k, k, k, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        return out[:, :h, :w].permute(0, 3, 1, 2)


def test_padded_windows_hand_count():
    # 6×6 padded to 8×8, 4×4 windows: a pixel reaches the real tokens of its window: 16, 8, 8 or 4
    ours = check(ones_(PaddedWindows()), (1, 6, 6), brute=False)
    rows = np.array([4, 4, 4, 4, 2, 2], dtype=float)
    np.testing.assert_array_equal(ours, np.outer(rows, rows))
    check(ones_(PaddedWindows(dim=2)), (1, 7, 5), brute=False)


# ----------------------------------------------------------------------------- keys pooled on the token sequence

class PooledTokenAttention(nn.Module):
    """Next-ViT's E-MHSA: keys and values average-pooled along the flattened token sequence (AvgPool1d)."""

    def __init__(self, dim=1, kernel=3, stride=2):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, 1)
        self.pool = nn.AvgPool1d(kernel, stride)
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # (B, N, C)
        q = self.q(t)
        pooled = self.pool(t.transpose(1, 2)).transpose(1, 2)
        out = F.scaled_dot_product_attention(q[:, None], self.k(pooled)[:, None], self.v(pooled)[:, None])[:, 0]
        return out.transpose(1, 2).reshape(b, c, h, w)


def test_keys_pooled_on_tokens_hand_count():
    # 16 tokens (row-major), windows of 3 at stride 2 start at 0, 2, ..., 12: token p lies in 1 or 2 windows
    # (token 15 in none); all 16 queries attend every pooled key: count = 16 · windows containing p
    ours = check(ones_(PooledTokenAttention()), (1, 4, 4), brute=False)
    cover = np.array([sum(s <= p < s + 3 for s in range(0, 13, 2)) for p in range(16)], dtype=float)
    np.testing.assert_array_equal(ours, 16 * cover.reshape(4, 4))
    g = edgewise.trace(ones_(PooledTokenAttention(dim=2)), (1, 4, 6))
    edgewise.receptive_field(g)
    check(ones_(PooledTokenAttention(dim=2)), (1, 4, 6), brute=False)


# ----------------------------------------------------------------------------- patches unfolded into the batch

class UnfoldAttention(nn.Module):
    """MobileViT: the map cut into 2×2 patches, pixels at the same offset of every patch attend each other (the
    offset in the batch axis), folded back."""

    def __init__(self, dim=1, p=2):
        super().__init__()
        self.p = p
        self.embed = nn.Conv2d(1, dim, 1)
        self.v = nn.Linear(dim, dim)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        p, nh, nw = self.p, h // self.p, w // self.p
        t = x.reshape(b * c * nh, p, nw, p).transpose(1, 2)
        t = t.reshape(b, c, nh * nw, p * p).transpose(1, 3).reshape(b * p * p, nh * nw, c)
        t = F.scaled_dot_product_attention(t, t, self.v(t))
        t = t.contiguous().view(b, p * p, nh * nw, c).transpose(1, 3).reshape(b * c * nh, nw, p, p)
        return t.transpose(1, 2).reshape(b, c, h, w)


def test_unfolded_patches_attend_same_offset():
    # 4×4 map, 2×2 patches: a pixel reaches the pixels at its offset in all 4 patches (4 paths); attending every
    # pixel would give 16
    ours = check(ones_(UnfoldAttention()), (1, 4, 4), brute=False)
    np.testing.assert_array_equal(ours, np.full((4, 4), 4.0))
    check(ones_(UnfoldAttention(dim=2)), (1, 6, 4), brute=False)


# ----------------------------------------------------------------------------- bicubic resize, stacked heads (CrossViT)

@pytest.mark.parametrize("n_in,n_out,align", [(64, 240, False), (64, 224, False), (7, 5, False), (5, 13, True),
                                              (4, 12, True), (3, 9, False), (9, 4, False), (8, 8, False)])
def test_bicubic_pairs_match_pytorch(n_in, n_out, align):
    ours = Resample("bicubic", align, None).matrix(n_in, n_out) > 0
    eye = torch.eye(n_in, dtype=torch.float64)[:, None, None, :]
    ref = F.interpolate(eye, size=(1, n_out), mode="bicubic", align_corners=align)[:, 0, 0, :].abs() > 1e-12
    np.testing.assert_array_equal(ours, ref.numpy().T)


def test_bicubic_hand_count():
    # 4 → 4 with align_corners: whole-number sources, one pixel each (a copy); 3 → 9 (align_corners=False): outputs
    # 1, 4, 7 sit on pixels 0, 1, 2 (one tap), the others have 4 taps, clamped into the image: output 0 (source -1/3)
    # reads pixels 0 and 1, output 8 (source 7/3) pixels 1 and 2, the others 3 pixels
    assert Resample("bicubic", True, None).matrix(4, 4).tolist() == np.eye(4, dtype=int).tolist()
    m = Resample("bicubic", False, None).matrix(3, 9)
    assert m.sum(1).tolist() == [2, 1, 3, 3, 1, 3, 3, 1, 2]


class Bicubic(nn.Module):
    def __init__(self, size=(13, 11), align=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.size, self.align = size, align

    def forward(self, x):
        return self.conv(F.interpolate(x, size=self.size, mode="bicubic", align_corners=self.align))


@pytest.mark.parametrize("size,align", [((13, 11), False), ((5, 4), False), ((12, 9), True)])
def test_bicubic_against_oracle(size, align):
    net = ones_(Bicubic(size, align))
    check(net, (1, 7, 6), brute=False)
    edgewise.receptive_field(edgewise.trace(net, (1, 7, 6)))


class StackedHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        return torch.mean(torch.stack([self.a(x), self.b(x)], dim=0), dim=0)


def test_mean_over_stacked_layers_hand_count():
    # the mean of a stack of two maps is their sum: 2 output channels × (1 path through a + the 3×3 windows of b)
    ours = check(ones_(StackedHeads()), (1, 3, 3), brute=False)
    f = np.array([2, 3, 2], dtype=float)
    np.testing.assert_array_equal(ours, 2 * (1 + np.outer(f, f)))


# ----------------------------------------------------------------------------- pooled heads, rel-pos on scores (MViTv2)

class PooledHeads(nn.Module):
    """MViTv2: each head's queries/keys/values pooled by one depthwise convolution with the heads in the batch axis,
    a decomposed relative-position term added to the scores by ``cal_rel_pos_type``, residual pooling."""

    def __init__(self, dim=4, heads=2, rel_pos=True):
        super().__init__()
        self.heads, self.hd, self.rel = heads, dim // heads, rel_pos
        self.embed = nn.Conv2d(1, dim, 1)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.pool_q = nn.Conv2d(self.hd, self.hd, 3, stride=2, padding=1, groups=self.hd)
        self.pool_kv = nn.Conv2d(self.hd, self.hd, 3, stride=2, padding=1, groups=self.hd)
        self.rel_pos_h = nn.Parameter(torch.randn(7, self.hd))
        self.rel_pos_w = nn.Parameter(torch.randn(7, self.hd))

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).reshape(b, h * w, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4).unbind(0)

        def pool(z, conv):
            z = conv(z.reshape(-1, h, w, self.hd).permute(0, 3, 1, 2))
            size = [z.shape[2], z.shape[3]]
            return z.reshape(b, self.heads, self.hd, -1).transpose(2, 3), size

        q, q_size = pool(q, self.pool_q)
        k, k_size = pool(k, self.pool_kv)
        v, _ = pool(v, self.pool_kv)
        attn = q @ k.transpose(-2, -1)
        if self.rel:
            attn = cal_rel_pos_type(attn, q, False, q_size, k_size, self.rel_pos_h, self.rel_pos_w)
        out = attn.softmax(-1) @ v + q
        return out.transpose(2, 3).reshape(b, c, *q_size)


@pytest.mark.parametrize("rel_pos", [True, False])
def test_pooled_heads_against_oracle(rel_pos):
    check(ones_(PooledHeads(rel_pos=rel_pos)), (1, 8, 6), brute=False)


def test_pooled_heads_hand_count():
    # one head of one channel: pixel p reaches the pooled keys whose 3×3 window (stride 2, padding 1) holds it;
    # 4×4 → 2×2 pooled values, all attended by the 4 queries; plus the residual pooled query itself
    net = PooledHeads(dim=1, heads=1, rel_pos=False)
    ours = check(ones_(net), (1, 4, 4), brute=False)
    f = np.array([1, 2, 1, 1], dtype=float)  # windows {-1, 0, 1} and {1, 2, 3} along each axis
    np.testing.assert_array_equal(ours, 4 * np.outer(f, f) + np.outer(f, f))


def scores_times_query(attn, q):
    return attn * q.sum(-1, keepdim=True)


def test_opaque_function_on_scores_must_only_add():
    """A function kept whole that does more than add a query term to the scores is refused, not guessed."""
    from timm.layers import _fx

    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(1, 3)

        def forward(self, x):
            t = x.flatten(2).transpose(1, 2)
            q, k, v = self.qkv(t).unbind(-1)
            attn = scores_times_query(q[..., None] @ k[:, None], q[..., None])
            return (attn.softmax(-1) @ v[..., None]).transpose(1, 2).reshape(x.shape)

    _fx.register_notrace_function(scores_times_query)
    try:
        with pytest.raises(EdgewiseError, match="attention scores reach"):
            edgewise.trace(Bad(), (1, 3, 3))
    finally:
        _fx._autowrap_functions.discard(scores_times_query)


# ----------------------------------------------------------------------------- the real timm models

def _real(name, **kw):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **kw).eval()


REAL = [("tresnet_m", {}), ("gcvit_xxtiny", {"img_size": 64}), ("swiftformer_xs", {"img_size": 64}),
        ("nextvit_small", {}), ("mobilevit_xxs", {"img_size": 64}), ("mvitv2_tiny", {"img_size": 64})]


@pytest.mark.parametrize("name,kw", REAL, ids=[n for n, _ in REAL])
def test_real_timm_model(name, kw):
    model = _real(name, **kw)
    graph = edgewise.trace(model, (3, 64, 64))
    edgewise.receptive_field(graph)
    ours = counts(model, (3, 64, 64))
    ref = autograd_pathways(model, (3, 64, 64))
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_real_crossvit():  # about 6 s on an idle core (bicubic resize to 240 and 224 px, two branches)
    model = _real("crossvit_tiny_240")
    ours = counts(model, (3, 64, 64))
    np.testing.assert_allclose(ours, autograd_pathways(model, (3, 64, 64)), rtol=1e-12)

"""timm's building blocks, hand-built small: each construct the tracer maps for timm (issue 15) is checked against
the autograd oracle (:func:`edgewise.testing.oracle.autograd_pathways`) and, where cheap, brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.testing.brute import brute_pathways
from edgewise.testing.oracle import autograd_pathways

timm = pytest.importorskip("timm")
from timm.layers import Conv2dSame  # noqa: E402
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame  # noqa: E402


def counts(net, shape, to="all"):
    net.eval()
    c = edgewise.pathways(net, shape, to=to, exact=True).counts
    return np.array([float(v) for v in np.asarray(c).ravel()]).reshape(np.asarray(c).shape)


def check(net, shape, brute=True, to="all"):
    """edgewise == oracle (and == brute force on the Graph)."""
    torch.manual_seed(0)
    ours = counts(net, shape, to)
    ref = autograd_pathways(net, shape, to=to)
    assert np.array_equal(ours == 0, ref == 0)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    if brute:
        g = edgewise.trace(net, shape)
        np.testing.assert_array_equal(np.asarray(brute_pathways(g, to=to), dtype=float), ours)
    return ours


# ----------------------------------------------------------------------------- TF 'same' padding (timm leaves)

class SameNet(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.conv = Conv2dSame(2, 3, 3, stride=2)
        self.pool = pool
        self.conv2 = Conv2dSame(3, 2, 2, stride=1)

    def forward(self, x):
        return self.conv2(self.pool(self.conv(x)))


@pytest.mark.parametrize("pool", [MaxPool2dSame(3, stride=2), AvgPool2dSame(2, stride=2)], ids=["max", "avg"])
@pytest.mark.parametrize("shape", [(2, 9, 10), (2, 8, 7)])
def test_tf_same_conv_and_pool(pool, shape):
    net = SameNet(pool)
    g = edgewise.trace(net, shape)
    assert g["conv"].kind == "conv" and g["pool"].kind == "pool"
    for ax, n in zip(g["conv"].axes, shape[1:]):  # TensorFlow: total padding from the size, odd one at the end
        total = max((-(-n // 2) - 1) * 2 + 3 - n, 0)
        assert ax.pad == (total // 2, total - total // 2)
    check(net, shape)


# ----------------------------------------------------------------------------- nn.Linear subclasses

class CastLinear(nn.Linear):
    """timm.layers.Linear's pattern: a subclass that casts its weight in forward."""

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), self.bias)


class ChannelsLastMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = CastLinear(3, 4)
        self.head = timm.layers.Linear(4, 2)

    def forward(self, x):
        x = self.fc(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.head(x.mean((2, 3)))


def test_linear_subclass_is_a_leaf_over_channels():
    g = edgewise.trace(ChannelsLastMlp(), (2, 5, 6))
    assert g["fc"].kind == "conv" and g["fc"].op == "Linear"
    check(ChannelsLastMlp(), (2, 5, 6))


# ----------------------------------------------------------------------------- broadcasting elementwise ops

class DualPath(nn.Module):
    """DPN: a channel slice of one map plus another map, and a dense part concatenated."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 6, 1)
        self.b = nn.Conv2d(6, 4, 3, padding=1)

    def forward(self, x):
        x = self.a(x)
        y = self.b(x)
        return torch.cat([x[:, :4] + y, x[:, 4:]], dim=1)


class VectorBroadcast(nn.Module):
    """A channel slice of a channels-last map plus another (MambaOut's gated block), and a (C, 1, 1) gate
    times a map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        x = self.conv(x)
        z = self.conv2(x)
        y = (x.permute(0, 2, 3, 1)[..., 1:] + z.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return y * x[:, :2].amax((2, 3), keepdim=True)


@pytest.mark.parametrize("net", [DualPath, VectorBroadcast])
def test_broadcast_add_and_mul(net):
    check(net(), (2, 5, 4))


# ----------------------------------------------------------------------------- shapes, masks, control flow

class ShapeControl(nn.Module):
    """Python control flow on shapes (fx's TraceError; traced with values on the meta device), a crop."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.crop = nn.ZeroPad2d((-1, 1, -1, 1))

    def forward(self, x):
        if x.shape[-1] % 2:
            x = F.pad(x, (0, 1))
        h = int(x.shape[-2])
        if h > 4:
            x = self.conv(x)
        return self.crop(x)


def test_control_flow_on_shapes_and_crops():
    check(ShapeControl(), (2, 6, 7))
    check(ShapeControl(), (2, 6, 8))


class MaskedAttention(nn.Module):
    """Causal attention whose mask is built from the traced shape; a normalised query (F.normalize); an
    optional mask argument of forward left at its default."""

    def __init__(self, dim=4):
        super().__init__()
        self.embed = nn.Conv2d(2, dim, 2, stride=2)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = timm.layers.Linear(dim, dim)

    def forward(self, x, attn_mask=None):
        x = self.embed(x).flatten(2).transpose(1, 2)
        n = x.shape[1]
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if attn_mask is None:
            attn_mask = torch.ones(n, n, dtype=torch.bool).tril()
        y = F.scaled_dot_product_attention(F.normalize(q, dim=-1), k, v, attn_mask=attn_mask)
        return self.proj(y).transpose(1, 2).reshape(1, -1, 2, 3)


def test_mask_built_from_shapes():
    net = MaskedAttention()
    ours = counts(net, (2, 4, 6))
    assert ours.max() > ours.min() > 0  # causal: the first tokens are read by more queries
    np.testing.assert_array_equal(ours, np.asarray(brute_pathways(edgewise.trace(net, (2, 4, 6))), dtype=float))


class SoftmaxModuleAttention(nn.Module):
    """Scores through nn.Softmax / nn.Dropout modules, and values on the left: ``v @ attnᵀ`` (SHViT)."""

    def __init__(self, dim=4):
        super().__init__()
        self.embed = nn.Conv2d(2, dim, 2, stride=2)
        self.qkv = nn.Conv2d(dim, 3 * dim, 1)
        self.softmax = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(0.0)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).flatten(2).split([c, c, c], dim=1)
        attn = self.drop(self.softmax(q.transpose(-2, -1) @ k))
        return (v @ attn.transpose(-2, -1)).reshape(b, c, h, w)


def test_scores_through_modules_and_transposed():
    check(SoftmaxModuleAttention(), (2, 4, 6))


def test_normalize_is_the_identity_like_other_statistics():
    """F.normalize divides by a statistic (ignored, like LayerNorm's). The oracle has no rule for it, so the
    reference is the same net without it."""
    class Norm(nn.Module):
        def __init__(self, normalize=True):
            super().__init__()
            self.conv, self.normalize = nn.Conv2d(2, 3, 3, padding=1), normalize

        def forward(self, x):
            x = self.conv(x)
            return F.normalize(x, dim=1) if self.normalize else x

    np.testing.assert_array_equal(counts(Norm(), (2, 5, 5)), autograd_pathways(Norm(False).eval(), (2, 5, 5)))


def test_softmax_over_channels_is_refused():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(x).softmax(dim=1)

    with pytest.raises(EdgewiseError, match="softmax"):
        edgewise.trace(Gate(), (2, 5, 5))


def test_timm_window_functions_move_units():
    """timm's autowrapped window_reverse (kept whole by the tracer) runs on the unit numbers."""
    from timm.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    net = SwinTransformer(img_size=16, patch_size=2, embed_dim=8, depths=(1, 1), num_heads=(1, 1), window_size=4,
                          num_classes=3)
    check(net, (3, 16, 16), brute=False, to="all")


class SpatialReductionAttention(nn.Module):
    """PVT v2: queries on the full grid, keys and values on a strided (reduced) grid."""

    def __init__(self, dim=4):
        super().__init__()
        self.embed = nn.Conv2d(2, dim, 1)
        self.q = nn.Linear(dim, dim)
        self.sr = nn.Conv2d(dim, dim, 2, stride=2)
        self.kv = nn.Linear(dim, 2 * dim)

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        q = self.q(x.flatten(2).transpose(1, 2))
        k, v = self.kv(self.sr(x).flatten(2).transpose(1, 2)).chunk(2, dim=-1)
        y = F.scaled_dot_product_attention(q, k, v)
        return y.transpose(1, 2).reshape(b, c, h, w)


def test_queries_and_values_on_different_grids():
    check(SpatialReductionAttention(), (2, 4, 6))


class Squared(nn.Module):
    """StarReLU-style: s · relu(x)² + b, a per-unit map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.scale * torch.relu(self.conv(x)) ** 2 + torch.pow(self.conv(x), 3)


def test_powers_with_a_number_are_per_unit():
    net, shape = Squared(), (1, 6, 6)
    ours = edgewise.pathways(net, shape, exact=True).counts
    ref = autograd_pathways(net, shape)
    assert np.array_equal(np.array(ours, dtype=float), ref)

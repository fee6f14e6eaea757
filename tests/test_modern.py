"""Architectures of today (issue 15): axes with roles, attention and gates as connections, prefixes.

Counts are checked against the autograd oracle (:mod:`edgewise.testing.oracle`), which follows the
same path definition (attention's value path) without looking at edgewise's tracer; receptive fields
against the oracle's support of single units.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import edgewise
from edgewise import EdgewiseError
from edgewise.testing.oracle import autograd_pathways

torchvision = pytest.importorskip("torchvision")
from torchvision.models import convnext, maxvit, shufflenetv2, swin_transformer, vision_transformer  # noqa: E402


def small(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    """Small members of each family, built from torchvision's own classes."""
    torch.manual_seed(0)
    if name == "vit":
        return vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                    hidden_dim=16, mlp_dim=32), (3, 32, 32)
    if name == "swin":
        return swin_transformer.SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                                                window_size=[3, 3], stochastic_depth_prob=0.0), (3, 20, 18)
    if name == "swin_v2":  # (cosine attention and a log-spaced position table; its own block and merging)
        return swin_transformer.SwinTransformer(patch_size=[2, 2], embed_dim=8, depths=[2, 2], num_heads=[2, 2],
                                                window_size=[3, 3], stochastic_depth_prob=0.0,
                                                block=swin_transformer.SwinTransformerBlockV2,
                                                downsample_layer=swin_transformer.PatchMergingV2), (3, 22, 16)
    if name == "maxvit":
        return maxvit.MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[8, 16],
                             block_layers=[1, 1], head_dim=4, stochastic_depth_prob=0.0, num_classes=10), (3, 32, 32)
    if name == "convnext":
        cfg = [convnext.CNBlockConfig(8, 16, 1), convnext.CNBlockConfig(16, None, 1)]
        return convnext.ConvNeXt(cfg, num_classes=10), (3, 32, 32)
    if name == "shufflenet":
        return shufflenetv2.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 64], num_classes=10), (3, 32, 32)
    raise KeyError(name)


FAMILIES = ["vit", "swin", "swin_v2", "maxvit", "convnext", "shufflenet"]


def exact_equal(counts, reference, what):
    ours = np.array([float(v) for v in np.asarray(counts).ravel()]).reshape(np.asarray(counts).shape)
    assert ours.shape == reference.shape, what
    assert np.array_equal(ours == 0, reference == 0), f"{what}: zero pattern differs"
    np.testing.assert_allclose(ours, reference, rtol=1e-12, err_msg=what)


@pytest.mark.parametrize("family", FAMILIES)
def test_counts_equal_the_oracle(family):
    net, shape = small(family)
    net.eval()
    for to in ("all", "center"):
        ours = edgewise.pathways(net, shape, to=to, exact=True)
        exact_equal(ours.counts, autograd_pathways(net, shape, to=to), f"{family} to={to}")


class Interleaved(nn.Module):
    """Two ShuffleNet units: the second shuffle interleaves the channels of two layers (the first unit's
    concatenation and a branch), read whole or in part."""

    def __init__(self, part: bool):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 3, padding=1), nn.Conv2d(2, 3, 1)
        self.c = nn.Conv2d(3, 3, 3, padding=2, dilation=2)
        self.part, self.head = part, nn.Conv2d(5 if part else 6, 4, 3)

    def forward(self, x):
        y = F.channel_shuffle(torch.cat([self.a(x), self.b(x)], 1), 2)  # a0 b0 a1 b1 a2 b2
        y1, y2 = y.chunk(2, dim=1)
        y = F.channel_shuffle(torch.cat([y1, self.c(y2)], 1), 2)  # a0 c0 b0 c1 a1 c2: two layers, six runs
        return self.head(y[:, 1:] if self.part else y)


@pytest.mark.parametrize("part", [False, True])
def test_interleaved_channels_are_a_few_nodes_with_the_oracles_counts(part):
    net, shape = Interleaved(part).eval(), (2, 7, 6)
    selects = [n for n in edgewise.trace(net, shape) if n.kind == "select"]
    assert len(selects) <= 4  # one per layer at most and one putting them in order, not one per channel
    for to in ("all", "center"):
        exact_equal(edgewise.pathways(net, shape, to=to, exact=True).counts, autograd_pathways(net, shape, to=to),
                    f"to={to}")


def test_vit_is_uniform_and_global_convnext_is_not():
    vit, shape = small("vit")
    counts = edgewise.pathways(vit, shape, exact=True).counts
    assert counts.max() == counts.min() > 0  # non-overlapping patches, then global attention
    rf = edgewise.receptive_field(vit, shape)
    assert rf.layers[-1].global_via is not None and "self_attention" in rf.layers[-1].global_via
    assert rf["conv_proj"].size == (8, 8) and rf["conv_proj"].global_via is None
    net, shape = small("convnext")
    counts = edgewise.pathways(net, shape, exact=True).counts
    assert counts.max() > counts.min()  # 7×7 depthwise convolutions, zero padding


def test_swin_windows_are_local_and_shifted():
    net, shape = small("swin")
    g = edgewise.trace(net, shape)
    attends = [n for n in g if n.op == "attention"]
    assert len(attends) == 4 and all(n.kind == "pool" for n in attends)
    # every unit of the first window attention reads its 3×3 window: at most 3 positions per axis
    first = attends[0]
    assert all(max(len(r) for r in ax.sources) == 3 for ax in first.axes)
    # the shifted block's windows start elsewhere: its tables differ from the first block's
    assert first.axes != attends[1].axes


def support(net, shape, layer, position) -> tuple[tuple[int, int], ...]:
    """Bounding box of the input positions with a path to one unit (from the oracle)."""
    counts = autograd_pathways(net, shape, to=position, layer=layer)
    nz = np.nonzero(counts)
    return tuple((int(a.min()), int(a.max())) for a in nz)


@pytest.mark.parametrize("family, layer", [("convnext", "features.1"), ("shufflenet", "stage2")])
def test_receptive_field_boxes_equal_the_oracle(family, layer):
    net, shape = small(family)
    net.eval()
    rf = edgewise.receptive_field(net, shape, layer=layer)
    lf = rf[layer]
    assert lf.exact and lf.global_via is None
    g = edgewise.trace(net, shape, layer=layer)
    n = g[layer].shape[1:]
    for pos in [(n[0] // 2, n[1] // 2), (0, 0), (n[0] - 1, 1)]:
        box = rf.clipped_box(layer, pos)
        assert support(net, shape, layer, pos) == tuple((math.ceil(lo), math.floor(hi)) for lo, hi in box), pos


# ------------------------------------------------------------------ squeeze-excitation gates

def without_se(net: nn.Module) -> nn.Module:
    """The same network with every squeeze-excitation gate replaced by the identity."""
    from torchvision.ops.misc import SqueezeExcitation

    for name, m in list(net.named_modules()):
        for child, sub in list(m.named_children()):
            if isinstance(sub, SqueezeExcitation):
                setattr(m, child, nn.Identity())
    return net


@pytest.mark.parametrize("name, local", [("efficientnet_b0", 851), ("mobilenet_v3_large", 595),
                                         ("regnet_y_400mf", 575)])
def test_se_gates_are_global_with_the_local_field_of_the_convolutions(name, local):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torchvision.models.get_model(name, weights=None)
    rf = edgewise.receptive_field(net, (3, 224, 224))
    spatial = [lf for lf in rf.layers if len(lf.shape) == 3 and lf.shape[1] > 1]
    assert spatial[-1].size == (local, local) and spatial[-1].exact
    assert spatial[-1].global_via is not None and spatial[-1].global_via.endswith(("avgpool", "se.avgpool"))
    assert rf.advice.center_offset == (-15.5, -15.5)
    assert any("reads every input position" in s for s in rf.advice.sentences())
    # the local field is the field of the same network without its gates (nothing global there)
    plain = edgewise.receptive_field(without_se(net), (3, 224, 224))
    last = [lf for lf in plain.layers if len(lf.shape) == 3 and lf.shape[1] > 1][-1]
    assert last.size == (local, local) and last.global_via is None


def test_se_local_field_matches_the_oracle_without_gates():
    """At a small input, the local field of an SE net's unit is the oracle's support once the gates are gone."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = torchvision.models.get_model("mobilenet_v3_small", weights=None).eval()
    shape, layer = (3, 96, 96), "features.3"
    gated = edgewise.receptive_field(net, shape, layer=layer)
    assert gated[layer].global_via is not None
    plain_net = without_se(net)
    box = gated.clipped_box(layer, (5, 5))
    assert support(plain_net, shape, layer, (5, 5)) == tuple((math.ceil(lo), math.floor(hi)) for lo, hi in box)


# ------------------------------------------------------------------ hand-written attention, tokens, roll

class TinyTransformer(nn.Module):
    """Patches → tokens with a class token → hand-written attention → a cyclic shift → the class token."""

    def __init__(self, shift: int = 1):
        super().__init__()
        self.embed = nn.Conv2d(1, 6, 2, stride=2)
        self.cls = nn.Parameter(torch.zeros(1, 1, 6))
        self.qkv = nn.Linear(6, 18)
        self.proj = nn.Linear(6, 6)
        self.shift = shift
        self.mix = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        b = x.shape[0]
        t = self.embed(x)
        h, w = t.shape[-2:]
        t = torch.roll(t, shifts=(self.shift, self.shift), dims=(2, 3))  # circular: a wrap-around connection
        t = self.mix(t)
        tokens = torch.cat([self.cls.expand(b, -1, -1), t.flatten(2).transpose(1, 2)], dim=1)
        q, k, v = self.qkv(tokens).chunk(3, dim=-1)
        attn = (q @ k.transpose(-2, -1) / math.sqrt(6)).softmax(dim=-1)
        tokens = tokens + self.proj(attn @ v)
        return self.head(tokens[:, 0])


def test_class_token_roll_and_manual_attention_equal_the_oracle():
    net, shape = TinyTransformer().eval(), (1, 8, 10)
    ours = edgewise.pathways(net, shape, exact=True)
    exact_equal(ours.counts, autograd_pathways(net, shape), "tiny transformer")
    # the roll moves the zero-padded border of the 3×3 convolution: the map is no longer centred
    plain = edgewise.pathways(TinyTransformer(shift=0).eval(), shape, exact=True).counts
    assert plain[0, 0] == plain[-1, -1] and ours.counts[0, 0] != ours.counts[-1, -1]


class Causal(nn.Module):
    """Tokens along a 1-D signal with causal scaled-dot-product attention: later samples read earlier ones."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3, padding=1)
        self.qkv = nn.Linear(4, 12)

    def forward(self, x):
        t = self.conv(x).transpose(1, 2)
        q, k, v = self.qkv(t).unflatten(-1, (3, 2, 2)).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return out.transpose(1, 2).flatten(2).transpose(1, 2)


def test_causal_attention_and_heads_equal_the_oracle():
    net, shape = Causal().eval(), (1, 9)
    ours = edgewise.pathways(net, shape, exact=True).counts
    exact_equal(ours, autograd_pathways(net, shape), "causal sdpa")
    assert ours[0] > ours[-1]  # the first sample is read by every later query


class TokenMixer(nn.Module):
    """A Linear across halves of the positions into hidden features (several rows per channel), which edgewise
    does not map (a Linear across all the positions of each channel, MLP-Mixer's token mixing, it does)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.tokens = nn.Linear(8, 3)

    def forward(self, x):
        return self.tokens(self.conv(x).flatten(2).unflatten(-1, (2, 8)))


def test_unmappable_layouts_name_the_layer_and_offer_a_prefix():
    with pytest.raises(EdgewiseError) as info:
        edgewise.pathways(TokenMixer(), (1, 4, 4))
    msg = str(info.value)
    assert "'tokens'" in msg and "across tokens or positions" in msg, msg


class Sorted(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))

    def forward(self, x):
        return torch.sort(self.features(x).flatten(1), dim=1).values


def test_a_prefix_is_analysed_when_a_later_op_is_not_supported():
    net = Sorted()
    with pytest.raises(EdgewiseError) as info:
        edgewise.trace(net, (1, 9, 9))
    msg = str(info.value)
    assert "uses torch.sort" in msg and "layer 'sort'" in msg, msg
    suggested = msg.split("layer='")[1].split("'")[0]  # the hint can be followed as it is
    assert edgewise.pathways(net, (1, 9, 9), layer=suggested, exact=True).counts.shape == (9, 9)
    assert edgewise.trace(net, (1, 9, 9), layer=suggested).output == suggested
    counts = edgewise.pathways(net, (1, 9, 9), layer="features.2", exact=True).counts
    exact_equal(counts, autograd_pathways(net.features, (1, 9, 9)), "prefix")
    assert edgewise.receptive_field(net, (1, 9, 9), layer="features").layers[-1].size == (5, 5)
    g = edgewise.trace(net, (1, 9, 9), layer="features")
    assert g.output == "features" and "features.2" in g
    with pytest.raises(EdgewiseError, match="Did you mean .features"):
        edgewise.trace(net, (1, 9, 9), layer="featurs")


def test_cli_layer_option(tmp_path):
    from edgewise.cli import main

    script = tmp_path / "net.py"
    script.write_text("import torch, torch.nn as nn\n"
                      "class Sorted(nn.Module):\n"
                      "    def __init__(self):\n"
                      "        super().__init__()\n"
                      "        self.features = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))\n"
                      "    def forward(self, x):\n"
                      "        return torch.sort(self.features(x).flatten(1), dim=1).values\n"
                      "def make():\n    return Sorted()\n")
    for cmd in (["rf"], ["paths", "--exact"], ["sensitivity", "--inits", "2"]):
        assert main([*cmd, f"{script}:make", "--input", "1x9x9", "--layer", "features", "--json"]) == 0, cmd


@pytest.mark.parametrize("family", ["vit", "shufflenet"])
def test_engine_equals_brute_force_on_the_new_node_kinds(family):
    """select nodes, attention pools and token broadcasts through the explicit unit DAG."""
    from edgewise.testing.brute import brute_pathways

    net, shape = small(family)
    if family == "vit":
        net = vision_transformer.VisionTransformer(image_size=8, patch_size=4, num_layers=1, num_heads=1,
                                                   hidden_dim=2, mlp_dim=2, num_classes=2)
        shape = (3, 8, 8)
    else:
        net = shufflenetv2.ShuffleNetV2([1, 1, 1], [2, 4, 4, 4, 4], num_classes=2)
        shape = (3, 16, 16)
    g = edgewise.trace(net.eval(), shape)
    assert {"select"} <= {n.kind for n in g} or family == "vit"
    exact_equal(edgewise.pathways(g, exact=True).counts, np.asarray(brute_pathways(g), dtype=float), family)


def test_transposed_map_is_a_relabelling():
    class T(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x).transpose(2, 3)

    net, shape = T(), (1, 7, 9)
    ours = edgewise.pathways(net, shape, exact=True).counts
    exact_equal(ours, autograd_pathways(net, shape), "transpose")


class SpatialCat(nn.Module):
    """Two branches side by side along the width, then a convolution over both, then split again."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 3, 3, padding=1)
        self.b = nn.Conv2d(1, 3, 5, padding=2)
        self.mix = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x):
        both = torch.cat([self.a(x), self.b(x)], dim=3)
        left, right = self.mix(both).chunk(2, dim=3)
        return left + right


def test_spatial_concatenation_and_split_equal_the_oracle():
    net, shape = SpatialCat().eval(), (1, 6, 7)
    exact_equal(edgewise.pathways(net, shape, exact=True).counts, autograd_pathways(net, shape), "spatial cat")


def test_a_token_major_output_is_its_layer():
    """Swin keeps (N, H, W, C) between stages: a prefix ending there is that layer's units."""
    net, shape = small("swin")
    g = edgewise.trace(net.eval(), shape, layer="features.1")
    assert g.output == "features.1" and len(g[g.output].shape) == 3
    exact_equal(edgewise.pathways(g, exact=True).counts,
                autograd_pathways(edgewise.models.prefix(net, "features.1"), shape, to="all"), "token-major")


def test_class_token_rows_keep_one_shape_through_many_blocks():
    """A class token's counts arrive at a vector node both as (k,) rows (through a reshape) and as (k, 1) rows
    (through a Linear); adding those broadcast to (k, k) and crashed ViT-Tiny at 2×2 tokens from block 10 on."""
    timm = pytest.importorskip("timm")
    net = timm.create_model("vit_tiny_patch16_224", img_size=32, pretrained=False)
    np.testing.assert_allclose(edgewise.pathways(net, (3, 32, 32)).counts, autograd_pathways(net, (3, 32, 32)),
                               rtol=1e-12)


@pytest.mark.parametrize("family, layer", [("swin", "add_1"), ("swin", "add_3"), ("swin", "features.2.reduction"),
                                           ("swin", "add_7"), ("swin_v2", "add_3"), ("swin_v2", "add_7")])
def test_attention_window_boxes_are_each_units_own(family, layer):
    """Swin-T's last stage was said to see 752×752 px of a 224-px image, its output grid offset by (240, 240) px:
    the fields of attention windows were summarised as one affine grid after each block, and the next block's
    windows grew from that summary, drifting a little further each time. Each unit now keeps its own box through
    windows, merges and the next windows; it equals the bounding box of the positions with a path to it (exact
    counts, themselves held to the autograd oracle for these families above)."""
    net, shape = small(family)
    net.eval()
    g = edgewise.trace(net, shape)
    rf = edgewise.receptive_field(g)
    assert not rf[layer].exact and any(a.per_unit is not None for a in rf[layer].axes)
    n = g[layer].shape[1:]
    for pos in {(0, 0), (n[0] // 2, n[1] // 2), (n[0] - 1, n[1] - 1), (0, n[1] - 1)}:
        counts = edgewise.pathways(g, layer=layer, to=pos, exact=True).counts
        support = tuple((int(a.min()), int(a.max())) for a in np.nonzero(counts != 0))
        box = rf.clipped_box(layer, pos)
        assert support == tuple((math.ceil(lo), math.floor(hi)) for lo, hi in box), pos
    widest = [max(hi - lo + 1 for lo, hi in zip(*a.bounds())) for a in rf[layer].axes]
    assert list(rf[layer].size) == pytest.approx(widest)  # (the widest: past the image only where merging pads)
    # a grid offset means nothing for boxes that are no grid: no "merges fields that do not line up" at each residual
    assert rf.misalignments == [] and not rf[layer].misaligned


class GlobalResponseNorm(nn.Module):
    """ConvNeXt V2's GRN after a convolution: x + γ·(x·N(x)) + β with N(x) = ‖x‖ / mean_c ‖x‖, the L2 norm over the
    positions of each channel, in timm's channels-last layout or channels-first."""

    def __init__(self, channels_last: bool):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.gamma, self.beta = nn.Parameter(torch.ones(3)), nn.Parameter(torch.zeros(3))
        self.channels_last = channels_last

    def forward(self, x):
        x = self.conv(x)
        if self.channels_last:
            x = x.permute(0, 2, 3, 1)
            g = x.norm(p=2, dim=(1, 2), keepdim=True)
            x = x + torch.addcmul(self.beta, self.gamma, x * (g / (g.mean(dim=-1, keepdim=True) + 1e-6)))
            return x.permute(0, 3, 1, 2)
        g = torch.norm(x, p=2, dim=(2, 3), keepdim=True)
        return x + self.gamma.view(1, -1, 1, 1) * (x * (g / (g.mean(dim=1, keepdim=True) + 1e-6)))


@pytest.mark.parametrize("channels_last", [True, False])
def test_a_global_response_norm_is_a_statistic(channels_last):
    """`edgewise paths timm:convnextv2_atto` stopped at GRN's `norm`. An L2 norm is a normalisation statistic (the
    root of a sum of squares, like hand-written RMSNorm's): it carries no paths, so GRN adds the identity to its
    input: twice the convolution's counts, as the oracle gives."""
    model = GlobalResponseNorm(channels_last)
    p = edgewise.pathways(model, (1, 6, 6))
    exact_equal(p.counts, autograd_pathways(model, (1, 6, 6)), "grn")
    conv = edgewise.pathways(nn.Conv2d(1, 3, 3, padding=1), (1, 6, 6)).counts
    np.testing.assert_array_equal(p.counts, 2 * conv)


def test_convnext_v2_counts_equal_the_oracle():
    pytest.importorskip("timm")
    model = edgewise.models.load("timm:convnextv2_atto")
    exact_equal(edgewise.pathways(model, (3, 32, 32)).counts, autograd_pathways(model, (3, 32, 32)), "convnextv2")


def test_a_norm_used_as_a_pool_is_refused_with_its_reason():
    """A statistic carries no paths: an L2 norm read by a layer, or returned, is refused, saying why."""
    class Norms(nn.Module):
        def __init__(self, head: bool):
            super().__init__()
            self.conv, self.head = nn.Conv2d(1, 2, 3), head

        def forward(self, x):
            x = torch.norm(self.conv(x), p=2, dim=(2, 3))
            return self.head(x) if self.head else x

    with pytest.raises(EdgewiseError, match=r"statistic \(the square root of a mean, or an L2 norm\) reaches Linear"):
        edgewise.pathways(Norms(nn.Linear(2, 3)), (1, 6, 6))
    with pytest.raises(EdgewiseError, match="the output 'norm' is a normalisation statistic"):
        edgewise.pathways(Norms(None), (1, 6, 6))


class Squares(nn.Module):
    """MetaFormer's activations: SquaredReLU (``torch.square``) on a map, StarReLU (``s·relu(x)**2 + b``) on tokens."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 2, stride=2)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 4)
        self.scale, self.bias = nn.Parameter(torch.ones(1)), nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = torch.square(torch.relu(self.conv(self.stem(x)))).square()
        t = x.flatten(2).transpose(1, 2)  # tokens (B, N, C)
        t = t + self.fc2(self.scale * torch.relu(self.fc1(t)) ** 2 + self.bias)
        return t.transpose(1, 2).reshape(x.shape)


def test_squared_activations_are_per_unit():
    """`edgewise paths timm:convformer_s18` stopped at SquaredReLU's `square`, and timm:caformer_s18 at StarReLU's
    `relu(x) ** 2` on tokens: both are per-unit maps, as the oracle has them."""
    model = Squares()
    exact_equal(edgewise.pathways(model, (1, 12, 12)).counts, autograd_pathways(model, (1, 12, 12)), "squares")


class EfficientChannelAttention(nn.Module):
    """ECA: a global mean, a 1-D convolution across the channels (channels as its positions), a sigmoid gate
    broadcast with ``expand_as`` (or by the product itself)."""

    def __init__(self, expand: bool):
        super().__init__()
        self.conv, self.mix = nn.Conv2d(1, 4, 3, padding=1), nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.expand = expand

    def forward(self, x):
        x = self.conv(x)
        y = torch.sigmoid(self.mix(x.mean((2, 3)).view(x.shape[0], 1, -1))).view(x.shape[0], -1, 1, 1)
        return x * (y.expand_as(x) if self.expand else y)


@pytest.mark.parametrize("expand", [True, False])
def test_a_gate_expanded_before_its_product_is_broadcast(expand):
    """`edgewise paths timm:ecaresnet50d` (and every ECA net) stopped at `x * y.expand_as(x)`: the expanded gate's
    units could not be paired with x's. The product now broadcasts the gate, as it does without the expand."""
    model = EfficientChannelAttention(expand)
    exact_equal(edgewise.pathways(model, (1, 6, 6)).counts, autograd_pathways(model, (1, 6, 6)), "eca")


def test_eca_resnet_counts_equal_the_oracle():
    pytest.importorskip("timm")
    model = edgewise.models.load("timm:ecaresnet26t")
    exact_equal(edgewise.pathways(model, (3, 32, 32)).counts, autograd_pathways(model, (3, 32, 32)), "ecaresnet26t")


class GatedTokens(nn.Module):
    """Tokens with a class token, attention, and a GLU MLP whose two halves are chunks of one Linear (EVA-02's
    GluMlp: ``act(x1) * x2``)."""

    def __init__(self):
        super().__init__()
        self.stem, self.qkv = nn.Conv2d(1, 4, 2, stride=2), nn.Linear(4, 12)
        self.fc1, self.fc2, self.head = nn.Linear(4, 8), nn.Linear(4, 4), nn.Linear(4, 3)
        self.cls = nn.Parameter(torch.zeros(1, 1, 4))

    def forward(self, x):
        x = self.stem(x)
        t = torch.cat([self.cls.expand(x.shape[0], -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        t = t + F.scaled_dot_product_attention(*self.qkv(t).chunk(3, dim=-1))
        a, b = self.fc1(t).chunk(2, dim=-1)
        return self.head((t + self.fc2(F.gelu(a) * b))[:, 0])


def test_a_glu_on_tokens_with_a_class_token_pairs_its_halves():
    """`edgewise paths timm:eva02_tiny_patch14_224` stopped at its MLP's `act(x1) * x2`: with a class token the
    tokens are rows of two maps, and the halves (other channels of the same rows) were not paired channel by
    channel there, as they were without one."""
    model = GatedTokens()
    exact_equal(edgewise.pathways(model, (1, 8, 8)).counts, autograd_pathways(model, (1, 8, 8)), "glu tokens")


def test_eva02_counts_equal_the_oracle():
    pytest.importorskip("timm")
    model = edgewise.models.load("timm:eva02_tiny_patch14_224")
    exact_equal(edgewise.pathways(model, (3, 224, 224)).counts, autograd_pathways(model, (3, 224, 224)), "eva02")

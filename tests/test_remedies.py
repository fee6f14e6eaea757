"""Remedies: every registry entry against a naive numpy reference, and rewrites of real models."""

import copy
import json
import re
import hashlib
import itertools

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn as nn

from edgewise import EdgewiseError, nets, remedies
from edgewise._axis import Window
from edgewise.remedies import REMEDIES, apply, changes
from edgewise.testing.tolerances import tolerance

torchvision = pytest.importorskip("torchvision")

NAMES = ["valid", "same", "full", "circular", "reflect", "replicate", "symmetric", "partial", "nonoverlapping",
         "coordconv", "global"]
NP_MODE = {"zeros": "constant", "partial": "constant", "reflect": "reflect", "symmetric": "symmetric",
           "replicate": "edge", "circular": "wrap"}
PADDING_REMEDY = {"valid": ("zeros", "valid"), "same": ("zeros", "same"), "full": ("zeros", "full"),
                  **{m: (m, "same") for m in ("circular", "reflect", "replicate", "symmetric", "partial")}}
RTOL, ATOL = tolerance(torch.float64)


def seeded(fn, seed=0):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return fn()


def checksum(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode() + v.detach().cpu().numpy().tobytes())
    h.update(str([(n, type(m).__name__, m.training) for n, m in model.named_modules()]).encode())
    return h.hexdigest()


# ------------------------------------------------------------------ naive references (numpy, no F.conv)

def amounts(how, k, d, s=None, own=None):
    """Per-axis (before, after) of a padding amount; "same" keeps ``own`` on an axis whose windows do not overlap
    ((k − 1)·d + 1 ≤ stride ``s``)."""
    t = [(ki - 1) * di for ki, di in zip(k, d)]
    pads = {"valid": [(0, 0)] * len(k), "same": [(x // 2, x - x // 2) for x in t], "full": [(x, x) for x in t]}[how]
    if how == "same" and s is not None:
        pads = [o if x + 1 <= si else p for p, o, x, si in zip(pads, own, t, s)]
    return pads


def naive_conv(xp, w, stride, dilation, groups):
    """Correlate the already padded ``xp`` (B×C×…) with ``w`` (O×C/g×k…), one tap at a time."""
    B, C = xp.shape[:2]
    O, Cg, *k = w.shape
    out_size = [(n - (ki - 1) * d - 1) // s + 1 for n, ki, s, d in zip(xp.shape[2:], k, stride, dilation)]
    out = np.zeros((B, O, *out_size))
    for taps in itertools.product(*[range(ki) for ki in k]):
        sl = tuple(slice(t * d, t * d + s * (m - 1) + 1, s) for t, d, s, m in zip(taps, dilation, stride, out_size))
        patch = xp[(slice(None), slice(None), *sl)]
        for g in range(groups):
            og = slice(g * O // groups, (g + 1) * O // groups)
            out[:, og] += np.einsum("bc...,oc->bo...", patch[:, g * Cg:(g + 1) * Cg], w[og][(..., *taps)])
    return out


def np_pad(x, pads, mode):
    return np.pad(x, [(0, 0), (0, 0), *pads], mode=NP_MODE[mode])


def partial_reference(x, w, b, stride, dilation, groups, pads):
    """Liu et al.: zero-pad, then scale each output by |window| / |window ∩ image| (explicit mask), then add b."""
    raw = naive_conv(np_pad(x, pads, "zeros"), w, stride, dilation, groups)
    mask = np.pad(np.ones((1, 1, *x.shape[2:])), [(0, 0), (0, 0), *pads])
    count = naive_conv(mask, np.ones((1, 1, *w.shape[2:])), stride, dilation, 1)
    ratio = np.where(count > 0, np.prod(w.shape[2:]) / np.maximum(count, 1), 0)
    return raw * ratio + b.reshape(1, -1, *[1] * (x.ndim - 2))


def coords(size, with_r):
    axes = [np.linspace(-1, 1, n) if n > 1 else np.zeros(1) for n in size]
    ch = list(np.meshgrid(*axes, indexing="ij"))
    if with_r:
        ch.append(np.sqrt(sum(c ** 2 for c in ch)))
    return np.stack(ch)[None]


def reference(remedy, conv, layer, x):
    """What ``layer`` = apply(conv, remedy) must compute on ``x``, from numpy alone."""
    w, b = conv.weight.detach().double().numpy(), conv.bias.detach().double().numpy()
    k, s, d, g = conv.kernel_size, conv.stride, conv.dilation, conv.groups
    bias = b.reshape(1, -1, *[1] * len(k))
    own = [(p, p) for p in conv.padding]
    if remedy in PADDING_REMEDY:
        mode, how = PADDING_REMEDY[remedy]
        pads = amounts(how, k, d, s, own)
        if mode == "partial":
            return partial_reference(x, w, b, s, d, g, pads)
        return naive_conv(np_pad(x, pads, mode), w, s, d, g) + bias
    if remedy == "nonoverlapping":
        return naive_conv(np_pad(x, own, "zeros"), w, [max(a, b) for a, b in zip(k, s)], d, g) + bias
    local = naive_conv(np_pad(x, own, "zeros"), w, s, d, g) + bias
    if remedy == "coordconv":
        c = np.repeat(coords(x.shape[2:], layer.with_r), len(x), 0)
        return local + naive_conv(np_pad(c, own, "zeros"), layer.coord_weight.detach().double().numpy(), s, d, 1)
    if remedy == "global":
        gw = layer.global_weight.detach().double().numpy()
        idx = layer.global_index.numpy().reshape(-1, layer.n_global)
        flat = x.reshape(*x.shape[:2], -1)
        out = local.reshape(*local.shape[:2], -1).copy()
        Og, Cg = gw.shape[0] // g, gw.shape[1]
        for p, j, o in itertools.product(range(len(idx)), range(layer.n_global), range(gw.shape[0])):
            grp = o // Og
            out[:, o, p] += flat[:, grp * Cg:(grp + 1) * Cg, idx[p, j]] @ gw[o, :, j]
        return out.reshape(local.shape)
    raise AssertionError(f"no reference for remedy {remedy!r}: add one to tests/test_remedies.py")


# (spatial size, kernel, stride, dilation, groups): odd and even sizes and kernels, stride > 1, dilation
CASES = [((7,), 3, 1, 1, 1), ((8,), 4, 2, 1, 1), ((9,), 3, 1, 2, 2), ((7, 8), 3, 1, 1, 1),
         ((8, 6), (3, 2), 2, 1, 1), ((9, 7), 3, (1, 2), 2, 2), ((8, 8), 3, 2, 1, 2)]  # (the last: a quarter of the
# input's positions, where global_conv picks the inputs before mixing their channels)


def make_conv(size, k, s, d, g, in_ch=4, out_ch=4):
    cls = nn.Conv1d if len(size) == 1 else nn.Conv2d
    return seeded(lambda: cls(in_ch, out_ch, k, s, padding=1, dilation=d, groups=g).double())


@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-k{c[1]}-s{c[2]}-d{c[3]}-g{c[4]}")
@pytest.mark.parametrize("remedy", NAMES)
def test_layer_matches_naive_reference(remedy, case):
    size, k, s, d, g = case
    conv = make_conv(size, k, s, d, g)
    opts = {"zero_init": False, "n_global": 3} if remedy == "global" else {"zero_init": False} \
        if remedy == "coordconv" else {}
    layer = apply(conv, remedy, skip_pointwise=False, **opts)
    x = torch.randn((2, 4, *size), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = layer(x).detach().numpy()
    want = reference(remedy, conv, layer, x.numpy())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("remedy", [r for r in PADDING_REMEDY if r != "valid"])
def test_padding_wider_than_the_input(remedy):
    conv = seeded(lambda: nn.Conv1d(2, 3, 3, padding=1, dilation=3).double())  # same: 3 taps each side of 3
    layer = apply(conv, remedy)
    x = torch.randn(2, 2, 3, dtype=torch.float64)
    np.testing.assert_allclose(layer(x).detach().numpy(), reference(remedy, conv, layer, x.numpy()), atol=1e-12)


def test_every_registry_entry_has_a_reference_and_the_names_are_exact():
    assert list(REMEDIES) == NAMES == remedies.names()
    for r in REMEDIES.values():
        assert r.description and "\n" not in r.description and callable(r.transform)
        assert all(isinstance(v, tuple) and len(v) == 2 for v in r.options.values())


def test_coordconv_with_radius_and_1d_coordinate():
    conv = make_conv((5, 4), 3, 1, 1, 1)
    layer = apply(conv, "coordconv", with_r=True, zero_init=False)
    assert layer.coord_weight.shape == (4, 3, 3, 3)
    x = torch.randn(1, 4, 5, 4, dtype=torch.float64)
    np.testing.assert_allclose(layer(x).detach().numpy(), reference("coordconv", conv, layer, x.numpy()), atol=1e-12)
    assert remedies.coord_channels((4,)).flatten().tolist() == pytest.approx([-1.0, -1 / 3, 1 / 3, 1.0])


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
def test_pad_matches_numpy_even_when_wider_than_the_input(mode):
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for pad in [(1, 2, 0, 1), (5, 6, 4, 3)]:
        got = remedies.pad(x, pad, mode)[0, 0].numpy()
        np.testing.assert_array_equal(got, np.pad(x[0, 0].numpy(), ((pad[2], pad[3]), (pad[0], pad[1])),
                                                  mode=NP_MODE[mode]))


# ------------------------------------------------------------------ layers as drop-ins

@pytest.mark.parametrize("remedy", NAMES)
def test_plain_conv_state_loads_into_the_remedy_layer(remedy):
    conv = make_conv((7, 7), 3, 1, 1, 1)
    cls = type(apply(conv, remedy))
    fresh = seeded(lambda: cls(4, 4, 3, 1, 1, 1, 1, True).double(), seed=5)
    fresh.load_state_dict(conv.state_dict())  # strict: same keys; coord/global weights become 0
    x = torch.randn(2, 4, 7, 7, dtype=torch.float64)
    if cls is remedies.PartialConv2d:  # re-weighting only changes the border
        torch.testing.assert_close(fresh(x)[..., 1:-1, 1:-1], conv(x)[..., 1:-1, 1:-1])
    else:
        torch.testing.assert_close(fresh(x), conv(x))
    plain = nn.Conv2d(4, 4, 3, padding=1).double()
    plain.load_state_dict({k: v for k, v in fresh.state_dict().items() if k in ("weight", "bias")})


def test_padded_conv_constructor_and_attributes():
    c = remedies.PaddedConv2d(1, 2, 3, padding_scheme="symmetric")
    assert (c.padding, c.padding_mode, c.pads) == ((1, 1), "symmetric", ((1, 1), (1, 1)))
    c = remedies.PaddedConv1d(1, 2, 4, stride=2, padding="same", padding_mode="reflect")
    assert (c.padding, c.pads) == ("same", ((1, 2),))  # odd extra tap after, like PyTorch
    assert remedies.PaddedConv2d(1, 2, 3, padding="full").padding == (2, 2)
    assert isinstance(c, nn.Conv1d) and set(c.state_dict()) == {"weight", "bias"}
    with pytest.raises(EdgewiseError, match="either padding_scheme"):
        remedies.PaddedConv2d(1, 2, 3, padding=1, padding_scheme="reflect")
    with pytest.raises(EdgewiseError, match="unknown padding_mode 'mirror'.*symmetric"):
        remedies.PaddedConv2d(1, 2, 3, padding_mode="mirror")
    with pytest.raises(EdgewiseError, match="padding_mode must be 'partial'"):
        remedies.PartialConv2d(1, 2, 3, padding_mode="reflect")


def test_partial_ratio_is_cached_and_survives_inference_mode():
    conv = remedies.PartialConv2d(2, 3, 3, padding=1)
    with torch.inference_mode():
        conv(torch.randn(1, 2, 6, 5))  # builds the cached ratio inside inference mode
    a = remedies.partial_ratio((6, 5), (3, 3), padding=1)
    assert a is remedies.partial_ratio((6, 5), (3, 3), padding=1)
    assert a[0, 0, 0, 0] == 9 / 4 and a[0, 0, 2, 2] == 1
    x = torch.randn(1, 2, 6, 5, requires_grad=True)
    conv(x).sum().backward()  # the cached tensor is not an inference tensor
    assert x.grad is not None


@pytest.mark.parametrize("remedy", NAMES)
def test_gradients(remedy):
    conv = make_conv((5, 4), 3, 1, 1, 1, in_ch=2, out_ch=2)
    layer = apply(conv, remedy, skip_pointwise=False, **({"n_global": 2} if remedy == "global" else {}))
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    extra = {"coordconv": "coord_weight", "global": "global_weight"}.get(remedy, "weight")
    params = {k: getattr(layer, k).detach().clone().requires_grad_() for k in dict.fromkeys(["weight", extra])}

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(params, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params.values()), fast_mode=True)


def test_global_connections_are_seeded_distinct_saved_and_size_checked():
    conv = make_conv((6, 6), 3, 1, 1, 1)
    a, b = apply(conv, "global", input_shape=(4, 6, 6)), apply(conv, "global", input_shape=(4, 6, 6))
    idx = a.global_index
    assert idx.shape == (6, 6, 8) and idx.dtype == torch.long and 0 <= idx.min() and idx.max() < 36
    assert all(len(set(row.tolist())) == 8 for row in idx.reshape(-1, 8))  # distinct per output position
    assert torch.equal(idx, b.global_index)
    assert not torch.equal(idx, apply(conv, "global", seed=1, input_shape=(4, 6, 6)).global_index)
    state = a.state_dict()
    assert {"global_index", "global_input_size", "global_weight"} <= set(state)
    fresh = remedies.GlobalConv2d(4, 4, 3, padding=1, seed=99).double()  # not drawn yet
    fresh.load_state_dict(state)
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), a(x))
    with pytest.raises(EdgewiseError, match=r"drawn for a 6×6 input, got 7×6.*draw_global"):
        a(torch.randn(1, 4, 7, 6, dtype=torch.float64))
    lazy = remedies.GlobalConv1d(2, 2, 3, padding=1, n_global=3, seed=4)
    lazy(torch.randn(1, 2, 9))
    assert lazy.global_index.shape == (9, 3) and lazy.global_input_size.tolist() == [9]


@pytest.mark.parametrize("size, stride, groups", [((6, 6), 1, 1), ((8, 8), 2, 2), ((9,), 2, 1), ((12,), 4, 1)],
                         ids=["mix-first", "pick-first-2d-grouped", "mix-first-1d-stride2", "pick-first-1d"])
def test_global_conv_gradients_are_those_of_its_definition(size, stride, groups):
    """Both orders global_conv takes (mix the channels then pick, or pick then mix: a layer with at most a quarter
    of its input's positions) have the gradients of the formula, for the input and both weights."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1, 4, *size, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(4, 4 // groups, *(3,) * len(size), dtype=torch.float64, generator=gen, requires_grad=True)
    gw = torch.randn(4, 4 // groups, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    out_size = [(n + 2 - 3) // stride + 1 for n in size]
    idx = remedies.global_indices(size, out_size, 3, gen)
    assert torch.autograd.gradcheck(lambda *t: remedies.global_conv(*t, idx, None, stride, 1, 1, groups), (x, w, gw))


def test_global_indices_large_maps_without_a_dense_draw():
    idx = remedies.global_indices((224, 224), (112, 112), 8, torch.Generator().manual_seed(0))
    assert idx.shape == (112, 112, 8)
    s = idx.reshape(-1, 8).sort(1).values
    assert not (s[:, 1:] == s[:, :-1]).any()


# ------------------------------------------------------------------ apply on spec nets

@pytest.mark.parametrize("padding", list(nets.PADDINGS))
@pytest.mark.parametrize("spec,shape", [("4*conv3", (1, 20, 20)), ("conv4, conv3/s2/d2", (2, 15)),
                                        ("2*conv2, maxpool2, conv3", (1, 12, 11))])
def test_padding_remedy_equals_the_spec_net_built_with_that_padding(padding, spec, shape):
    for start in ("same", "reflect"):  # 'reflect' builds Pad layers for even kernels, which are folded
        net = apply(nets.from_spec(spec, shape, padding=start), padding)
        want = nets.from_spec(spec, shape, padding=padding)
        x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(net(x), want(x))
        assert (net.spec, net.input_shape, net.padding) == (spec, shape, padding)


def test_full_grows_each_layer_by_k_minus_1():
    net = nets.from_spec("4*conv3", (1, 20, 20))
    out = apply(net, "full")(torch.zeros(1, 1, 20, 20))
    assert out.shape[-2:] == (20 + 4 * 2, 20 + 4 * 2)
    assert apply(nets.from_spec("3*conv5", (1, 16), padding="valid"), "full")(torch.zeros(1, 1, 16)).shape[-1] \
        == 16 - 12 + 3 * 8


def test_changes_record_folding_names_and_accumulate():
    net = apply(nets.from_spec("conv4, conv3", (1, 16, 16), padding="symmetric"), "coordconv")
    rec = changes(net)
    assert [(c["layer"], c["old"], c["new"]) for c in rec] == [("conv1", "Conv2d", "CoordConv2d"),
                                                               ("conv2", "Conv2d", "CoordConv2d")]
    assert rec[0]["change"].startswith("folds pad1 into it") and isinstance(net.pad1, nn.Identity)
    twice = apply(net, "partial")
    assert changes(twice)[:2] == rec and changes(twice)[3]["change"] == "padding (1, 1) symmetric → partial"
    assert type(twice.conv2) is remedies.CoordConv2d and twice.conv2.padding_mode == "partial"
    assert changes(nets.from_spec("conv3", (1, 8))) == []
    with pytest.raises(EdgewiseError, match="'conv1' is already a CoordConv2d"):
        apply(net, "global")


def test_layers_option_and_pointwise_skipping():
    net = nets.from_spec("conv3, conv1/c4, conv3", (1, 10, 10))
    assert [c["layer"] for c in changes(apply(net, "symmetric"))] == ["conv1", "conv3"]
    assert [c["layer"] for c in changes(apply(net, "symmetric", skip_pointwise=False))] == ["conv1", "conv2",
                                                                                              "conv3"]
    assert [c["layer"] for c in changes(apply(net, "coordconv"))] == ["conv1", "conv2", "conv3"]
    assert [c["layer"] for c in changes(apply(net, "reflect", layers=["conv3"]))] == ["conv3"]
    with pytest.raises(EdgewiseError, match=r"no convolution 'conv4'; did you mean .*Its convolutions: conv1"):
        apply(net, "reflect", layers=["conv4"])


def test_errors_name_the_model_and_the_fix():
    with pytest.raises(EdgewiseError, match="unknown remedy 'symetric'; did you mean 'symmetric'.*valid, same"):
        apply(nets.from_spec("conv3", (1, 8)), "symetric")
    with pytest.raises(EdgewiseError, match="Sequential has no nn.Conv1d/nn.Conv2d"):
        apply(nn.Sequential(nn.Linear(2, 2)), "same")
    with pytest.raises(EdgewiseError, match=r"takes no option 'n_globl'.*n_global \(default 8\)"):
        apply(nets.from_spec("conv3", (1, 8)), "global", n_globl=3)
    with pytest.raises(EdgewiseError, match=r"remedy 'full' does not fit spec net '3\*conv3, fc10'.*at conv1 \(10×10 px where the "
                       r"original has 8×8\).*dense head; the pass stops after conv3\).*size-keeping"):
        apply(nets.from_spec("3*conv3, fc10", (1, 8, 8)), "full")
    with pytest.raises(EdgewiseError, match="every convolution .* is 1×1.*skip_pointwise=False"):
        apply(nets.from_spec("conv1", (1, 8)), "reflect")


def test_remedy_layers_trace_as_one_fx_call_each():
    net = nets.from_spec("conv3, conv2/s2", (1, 9, 9))
    for name in NAMES:
        new = apply(net, name)
        gm = torch.fx.symbolic_trace(new)
        x = torch.randn(1, 1, 9, 9)
        torch.testing.assert_close(gm(x), new(x))
        calls = [n.target for n in gm.graph.nodes if n.op == "call_function"]
        ours = [c for c in calls if c in (remedies.padded_conv, remedies.coord_conv, remedies.global_conv)]
        assert len(ours) == (0 if name == "nonoverlapping" else 2)
        on_meta = copy.deepcopy(new).to("meta")(torch.zeros(1, 1, 9, 9, device="meta"))  # no CPU-only tensors
        assert on_meta.shape == new(x).shape


# ------------------------------------------------------------------ apply on torchvision models

@pytest.fixture(scope="module")
def zoo():
    tv = torchvision.models
    return {name: seeded(lambda: getattr(tv, name)(weights=None)) for name in ("resnet18", "mobilenet_v2", "vgg11")}


@pytest.mark.parametrize("remedy", NAMES)
def test_rewrite_keeps_parameters_modes_and_never_mutates(zoo, remedy):
    model = zoo["resnet18"]
    model.train()
    model.layer2.eval()  # a mixed mode must survive
    before = checksum(model)
    new = apply(model, remedy)
    assert checksum(model) == before and model.training and not hasattr(model, "remedy_changes")
    old_state, new_state = model.state_dict(), new.state_dict()
    assert set(old_state) <= set(new_state)
    assert all(torch.equal(old_state[k], new_state[k]) for k in old_state)
    added = set(new_state) - set(old_state)
    assert all(k.rsplit(".", 1)[1] in ("coord_weight", "global_weight", "global_index", "global_input_size")
               for k in added)
    old_modes, new_modes = ({n: m.training for n, m in net.named_modules()} for net in (model, new))
    assert all(new_modes[n] == t for n, t in old_modes.items())  # (a padded pool keeps its name, as a Sequential)
    assert all(t == new_modes[n.rpartition(".")[0]] for n, t in new_modes.items() if n not in old_modes)
    rec = changes(new)
    assert rec and all(type(new.get_submodule(c["layer"])).__name__ == c["new"] for c in rec)
    model.eval()


@pytest.mark.parametrize("model_name,remedy", [("resnet18", "same"), ("mobilenet_v2", "same"), ("vgg11", "same"),
                                               ("resnet18", "coordconv"), ("mobilenet_v2", "coordconv"),
                                               ("resnet18", "global"), ("mobilenet_v2", "global")])
def test_rewrite_is_a_no_op_where_the_remedy_is(zoo, model_name, remedy):
    model = zoo[model_name].eval()
    new = apply(model, remedy, input_shape=(3, 48, 48))
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(new(x), model(x), rtol=1e-4, atol=1e-5)


def test_rewrite_that_breaks_a_residual_model_says_so(zoo):
    """The message names the first layer whose output size differs from the original's (it named the last window
    the failing pass entered, layer1.0.conv2, which keeps its input's size), with both sizes."""
    with pytest.raises(EdgewiseError, match=r"remedy 'valid' does not fit ResNet on the 64×64-px input: it changes "
                       r"the feature-map size at conv1 \(29×29 px where the original has 32×32\), but a later layer "
                       r"needs that size \(a residual sum, a concatenation or a dense head; the pass stops after "
                       r"layer1.0.conv2\)"):
        apply(zoo["resnet18"], "valid", input_shape=(3, 64, 64))


class _Patchify(nn.Module):
    """ConvNeXt in small: a 4×4/4 patchify stem, a 7×7 depthwise block with a residual, a 2×2/2 downsampling; the
    strided layers' windows tile their input and pad nothing."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 4, stride=4)
        self.dw = nn.Conv2d(4, 4, 7, padding=3, groups=4)
        self.down = nn.Conv2d(4, 8, 2, stride=2)

    def forward(self, x):
        x = self.stem(x)
        return self.down(x + self.dw(x))


@pytest.mark.parametrize("remedy", ["same", "circular", "reflect", "partial"])
def test_half_a_window_keeps_non_overlapping_windows_on_their_grid(remedy):
    """ViT-B/16's `same` and `reflect` rows read "never reads 3087", ConvNeXt's "never reads 127": half a window
    of padding on a 16×16/16 patch embedding shifts every window off the grid it tiles and leaves the last 7 pixel
    rows unread. A layer whose windows do not overlap keeps its own padding under amount='same'."""
    from edgewise import pathways, trace

    net, shape = _Patchify(), (1, 32, 32)
    new = apply(net, remedy, input_shape=shape)
    assert new.stem.pads == ((0, 0), (0, 0)) and new.down.pads == ((0, 0), (0, 0)) and new.dw.pads == ((3, 3),) * 2
    rec = {c["layer"]: c for c in changes(new)}
    assert rec["stem"]["unchanged"] and rec["down"]["unchanged"]
    assert rec["dw"]["unchanged"] == (remedy == "same")
    counts = pathways(trace(new, shape), to="all").counts
    assert (counts > 0).all()  # every pixel is read
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert new(x).shape == net(x).shape
        if remedy == "same":
            torch.testing.assert_close(new(x), net(x))
    # a strided layer whose windows overlap still pads half a window; full pads the whole window everywhere
    assert apply(nn.Conv2d(1, 1, 3, stride=2), remedy).pads == ((1, 1), (1, 1))
    assert apply(nn.Conv2d(1, 1, 4, stride=4), "full").pads == ((3, 3), (3, 3))


# ------------------------------------------------------------------ pools that pad

_NUMPY_MODES = {"circular": "wrap", "reflect": "reflect", "replicate": "edge", "symmetric": "symmetric"}


def _numpy_padded(x: torch.Tensor, widths, mode: str) -> torch.Tensor:
    """``x`` padded by numpy (an independent padding): ``widths`` one (before, after) per spatial axis."""
    arr = np.pad(x.numpy(), [(0, 0), (0, 0), *widths], mode=_NUMPY_MODES[mode])
    return torch.from_numpy(arr)


@pytest.mark.parametrize("pool, mode", [(nn.MaxPool2d(3, 2, 1), "circular"), (nn.AvgPool2d(3, 2, 1), "reflect"),
                                        (nn.MaxPool1d(5, 2, 2), "symmetric"), (nn.AvgPool1d(3, 1, 1), "replicate"),
                                        (nn.MaxPool2d(3, 1, 1, ceil_mode=True), "circular"),
                                        (nn.MaxPool2d((3, 1), 2, (1, 0)), "reflect"),
                                        (nn.MaxPool2d(3, 2, ceil_mode=True), "circular"),  # GoogLeNet's pools
                                        (nn.MaxPool2d(2, 2, ceil_mode=True), "reflect"),
                                        (nn.AvgPool2d(3, 2, 1, ceil_mode=True), "symmetric"),
                                        (nn.MaxPool1d(3, 2, ceil_mode=True), "replicate")])
@pytest.mark.parametrize("size", [11, 12])
def test_a_padded_pool_reads_the_mode_wherever_it_read_past_the_input(pool, mode, size):
    """The pool reads the mode's copies where it read −∞ (max) or zeros (average), and in the last windows
    ceil_mode adds past the input: the same windows (as many as the pool has) over the input padded in that mode
    by numpy, as far as the last window reaches."""
    from edgewise.remedies.pools import padded_pool

    n = 1 if isinstance(pool, (nn.MaxPool1d, nn.AvgPool1d)) else 2
    x = torch.randn(2, 3, *([size] * n), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    per_axis = lambda v: v if isinstance(v, tuple) else (v,) * n  # noqa: E731
    k, s, p = per_axis(pool.kernel_size), per_axis(pool.stride or pool.kernel_size), per_axis(pool.padding)
    out = pool(x).shape[2:]  # torch's own count of windows
    widths = [(p[a], max(p[a], (out[a] - 1) * s[a] + k[a] - size - p[a])) for a in range(n)]
    f = getattr(torch.nn.functional, f"{'max' if 'Max' in type(pool).__name__ else 'avg'}_pool{n}d")
    expected = f(_numpy_padded(x, widths, mode), k, s)
    layer = padded_pool(pool, mode)
    assert layer is not None and torch.equal(layer(x), expected)
    assert layer.edgewise_op(n)[1] == tuple(Window(k[a], s[a], 1, (p[a], p[a]), mode, pool.ceil_mode)
                                            for a in range(n))


def test_pools_that_never_read_past_the_input_are_left():
    from edgewise.remedies.pools import padded_pool

    assert padded_pool(nn.MaxPool2d(2), "circular") is None
    assert padded_pool(nn.MaxPool2d(3, 1, ceil_mode=True), "circular") is None  # at stride 1 ceil_mode adds none
    assert padded_pool(nn.MaxPool2d(3, 2, 1, return_indices=True), "circular") is None
    assert padded_pool(nn.MaxPool2d(3, 2, ceil_mode=True), "circular") is not None


def test_ceil_mode_pools_padded_count_as_the_autograd_oracle_and_leave_a_googlenet_like_net_no_border():
    """GoogLeNet's 3×3/2 pools pad nothing but, with ceil_mode, add a last window reading −∞ past the input: with
    circular convolutions alone a net of them keeps an edge; with its pools reading circularly too its counts
    repeat (no border), and the traced counts equal autograd's on the all-ones network (which sums each pool's
    windows over the input the module itself pads)."""
    from edgewise import pathways, trace
    from edgewise.facts import map_spread
    from edgewise.testing.oracle import autograd_pathways

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                          nn.Conv2d(4, 4, 3, padding=1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(4, 2, 1))
    shape = (1, 32, 32)  # 32 → 16 → 8: each pool's last window runs one past the input
    spreads = {}
    for pools in (True, False):
        new = apply(model, "circular", input_shape=shape, pools=pools)
        graph = trace(new, shape)
        counts = pathways(graph, exact=True).counts
        assert np.array_equal(np.asarray(counts, dtype=np.float64), autograd_pathways(new, shape)), pools
        by_fx = trace(new, shape, layer="5")  # (a layer: the torch.fx path, not the direct trace)
        assert [nd.axes for nd in by_fx] == [nd.axes for nd in graph]
        spreads[pools] = map_spread(pathways(graph))
        said = [c["change"] for c in changes(new) if c["old"] == "MaxPool2d"]
        assert said == (["the last windows ceil_mode adds (−∞ past the input) → circular"] * 2 if pools else [])
    assert spreads[True]["period"] == [4, 4] and spreads[True]["max_over_min"] > 1  # stride 4 by now: a pattern
    assert spreads[False]["period"] is None and spreads[False]["max_over_min"] > 1


def test_circular_with_its_pools_leaves_a_resnet_no_border_effect():
    """ResNet's 3×3/2 max pool pads with −∞: with circular convolutions alone its edge windows still read fewer
    inputs (max/min 3.99× at 64 px, no period); padded circularly too, the counts repeat every 32 px: no border."""
    from edgewise import pathways, trace
    from edgewise.facts import map_spread

    model = seeded(lambda: torchvision.models.resnet18(weights=None))
    spreads = {}
    for pools in (True, False):
        new = apply(model, "circular", input_shape=(3, 64, 64), pools=pools)
        spreads[pools] = map_spread(pathways(trace(new, (3, 64, 64))))
        padded = [c for c in changes(new) if c["old"] == "MaxPool2d"]
        said = "padding (1, 1) (−∞) → circular"
        assert [c["change"] for c in padded] == ([said] if pools else [])
    assert spreads[True]["period"] == [32, 32] and spreads[False]["period"] is None
    assert spreads[True]["max_over_min"] < spreads[False]["max_over_min"]
    assert not [c for c in changes(apply(model, "same")) if c["old"] == "MaxPool2d"]  # zeros: not the pool's edge
    with pytest.raises(EdgewiseError, match="pools"):
        apply(model, "same", pools=True)


def test_circular_with_its_ceil_mode_pools_leaves_googlenet_no_border_effect():
    """GoogLeNet's 3×3/2 stem pools pad nothing but add, by ceil_mode, last windows past the input: read circularly
    too, its counts repeat every 16 px; with the convolutions alone they have no period."""
    from edgewise import pathways, trace
    from edgewise.facts import map_spread

    model = torchvision.models.googlenet(weights=None, init_weights=False, aux_logits=False)
    spreads = {pools: map_spread(pathways(trace(apply(model, "circular", pools=pools), (3, 224, 224))))
               for pools in (True, False)}
    assert spreads[True]["period"] == [16, 16] and spreads[True]["max_over_min"] < 2.3
    assert spreads[False]["period"] is None and spreads[False]["max_over_min"] > 10


def test_a_misfit_at_a_concatenation_names_it():
    """A U-Net's skip is a concatenation, which the misfit message did not name among the layers that need a size."""
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x):
            y = self.a(x)
            return torch.cat([self.b(y), y], 1)

    with pytest.raises(EdgewiseError, match="a residual sum, a concatenation or a dense head"):
        apply(Skip(), "valid", input_shape=(1, 16, 16))


class _Reduction(nn.Module):
    """Inception's reduction block in small: a valid 3×3/2 convolution beside a 3×3/2 max pool, concatenated: the
    branches agree in size only while the convolution pads nothing."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.branch = nn.Conv2d(4, 4, 3, stride=2)
        self.pool = nn.MaxPool2d(3, 2)

    def forward(self, x):
        x = self.stem(x)
        return torch.cat([self.branch(x), self.pool(x)], 1)


def test_a_padding_mode_that_changes_a_valid_branch_suggests_keeping_each_layers_amount(tmp_path, capsys):
    """'circular' pads by half a window by default: the valid branch grows and the concatenation fails. The message
    says amount='keep' (each layer's own amount, in the mode) fits; compare and the command line take it."""
    from edgewise.cli import main
    from edgewise.remedies import compare

    hint = r"or pass amount='keep' \(edgewise remedies --amount keep\) to pad each layer by its own amount in this mode"
    with pytest.raises(EdgewiseError, match=hint):
        apply(_Reduction(), "circular", input_shape=(1, 17, 17))
    with pytest.raises(EdgewiseError, match="amount='half': choose"):  # said once, not as every padding row's misfit
        compare(_Reduction(), (1, 17, 17), ["circular"], amount="half")
    from edgewise.cli import _parser
    from edgewise.remedies.transforms import AMOUNTS

    action = next(a for a in _parser()._subparsers._group_actions[0].choices["remedies"]._actions
                  if a.dest == "amount")
    assert set(action.choices) == set(AMOUNTS)
    with pytest.raises(EdgewiseError) as e:  # (a remedy with no amount to keep gets no such hint)
        apply(_Reduction(), "full", input_shape=(1, 17, 17))
    assert "amount='keep'" not in str(e.value)
    new = apply(_Reduction(), "circular", input_shape=(1, 17, 17), amount="keep")
    assert [c["change"] for c in changes(new) if c["layer"] == "stem"] == ["padding (1, 1) zeros → circular"]
    rows = {r["name"]: r for r in compare(_Reduction(), (1, 17, 17), ["circular", "full"], amount="keep").rows}
    assert "error" not in rows["circular"] and rows["circular"]["amount"] == "keep"
    assert "error" in rows["full"] and "amount" not in rows["full"]  # (full has no amount option)
    source = tmp_path / "reduction.py"
    source.write_text("import torch, torch.nn as nn\n\n" + __import__("inspect").getsource(_Reduction)
                      + "\n\ndef make_model():\n    return _Reduction()\n")
    assert main(["remedies", f"{source}:make_model", "-i", "1x17x17", "--remedies", "circular,reflect,global",
                 "--amount", "keep", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "circular and reflect: each layer's own padding amount (--amount keep), in their mode." in out
    assert "does not fit" not in out
    from edgewise.testing.claims import check_remedies_output

    assert check_remedies_output(out, tmp_path / "out") == []
    wrong = out.replace("circular and reflect: each", "circular: each")
    assert any("the --amount line names" in p for p in check_remedies_output(wrong, tmp_path / "out"))


class _FunctionalPool(nn.Module):
    """Inception's branch pool: ``F.avg_pool2d(x, 3, 1, 1)`` called in forward, beside a module max pool."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        x = self.pool(self.a(x))
        return self.b(torch.nn.functional.avg_pool2d(x, 3, 1, 1))


def test_pools_a_rewrite_cannot_reach_are_named_and_the_checkers_read_them_back(tmp_path, capsys):
    """circular pads the module max pool too, but not the average pool forward calls as a function: the row lists
    it, the command line and the report say so under the table, and the checkers hold each note to the saved rows
    (a wrong count fails, and a missing note fails)."""
    from edgewise import trace
    from edgewise.cli import main
    from edgewise.remedies import compare
    from edgewise.remedies.compare import edge_pools
    from edgewise.report.builder import build
    from edgewise.testing.claims import check_edge_pool_notes, check_remedies_output, check_report

    assert edge_pools(trace(_FunctionalPool(), (1, 16, 16))) == ["pool", "avg_pool2d"]  # the original: both
    rows = {r["name"]: r for r in compare(_FunctionalPool(), (1, 16, 16), ["circular", "partial", "global"]).rows}
    assert rows["circular"]["edge_pools"] == ["avg_pool2d"]  # (its max pool now reads circularly)
    assert "edge_pools" not in rows["partial"] and "edge_pools" not in rows["global"]  # (no pools option)
    source = tmp_path / "pools.py"
    source.write_text("import torch, torch.nn as nn\n\n" + __import__("inspect").getsource(_FunctionalPool)
                      + "\n\ndef make_model():\n    return _FunctionalPool()\n")
    assert main(["remedies", f"{source}:make_model", "-i", "1x16x16", "--remedies", "circular,reflect",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    said = ("circular and reflect: 1 pool still reads −∞ or zeros past the input (avg_pool2d), which their rewrite "
            "cannot reach: 1 called as function in forward")
    assert said in out and check_remedies_output(out, tmp_path / "out") == []
    saved = [{"name": "circular", "edge_pools": ["avg_pool2d"]}, {"name": "reflect", "edge_pools": ["avg_pool2d"]}]
    assert any("saved row has 1" in p for p in check_edge_pool_notes(out.replace(": 1 pool still", ": 2 pools still"),
                                                                      saved))
    assert any("no note says so" in p for p in check_edge_pool_notes(out.replace(said, ""), saved))
    model = _FunctionalPool()
    model.reference = "functional pool"
    page = tmp_path / "page"
    build([model], [(1, 16, 16)], out=page, n_inits=2, remedy_inits=0, progress=False)
    text = (page / "index.html").read_text()
    assert "1 pool still reads −∞ or zeros past the input (avg_pool2d)" in text
    assert check_report(page) == []
    (page / "index.html").write_text(text.replace(": 1 pool still reads", ": 3 pools still read"))
    assert any("leaves 3 pools reading past the input" in p for p in check_report(page))


def test_the_note_on_unreached_pools_says_what_each_is():
    """A function's name has a dot, a layer's class none: the note counts the calls and names the classes."""
    from edgewise.report.tables import _edge_pool_notes

    rows = [{"name": "circular", "edge_pools": ["avg_pool2d", "avg_pool2d_1", "stem.pool"],
             "edge_pool_ops": ["torch._C._nn.avg_pool2d", "F.avg_pool2d", "MaxPool2dSame"]},
            {"name": "reflect", "edge_pools": ["stem.pool"], "edge_pool_ops": ["MaxPool2dSame"]}]
    first, second = _edge_pool_notes(rows)
    assert first == ("circular: 3 pools still read −∞ or zeros past the input (avg_pool2d, avg_pool2d_1 and "
                     "stem.pool), which its rewrite cannot reach: 2 called as functions in forward (as modules they "
                     "would read the mode too); layers of a class it does not rewrite (MaxPool2dSame: its own "
                     "padding, or indices returned).")
    assert second.startswith("reflect: 1 pool still reads −∞ or zeros past the input (stem.pool), which its rewrite "
                             "cannot reach: layers of a class it does not rewrite (MaxPool2dSame")


def test_a_report_with_each_layers_own_amount_measures_inception_like_nets_and_says_so(tmp_path, capsys):
    """`edgewise report --amount keep`: the padding modes fit the reduction block, the page's remedy table says which
    rows kept each layer's amount, the config records it, and the checker holds the line to the saved rows."""
    from edgewise.cli import main
    from edgewise.testing.claims import check_report

    source = tmp_path / "reduction.py"
    source.write_text("import torch, torch.nn as nn\n\n" + __import__("inspect").getsource(_Reduction)
                      + "\n\ndef make_model():\n    return _Reduction()\n")
    page = tmp_path / "page"
    assert main(["report", f"{source}:make_model", "-i", "1x17x17", "--inits", "2", "--remedy-inits", "0",
                 "--amount", "keep", "--out", str(page), "--no-progress"]) == 0
    capsys.readouterr()
    text = __import__("html").unescape((page / "index.html").read_text())
    lines = re.findall(r"([\w ,]+): each layer's own padding amount \(--amount keep\), in their mode\.", text)
    named = [set(re.split(r", | and ", names)) for names in lines]  # (one per remedy table, in its rank order)
    assert {"circular", "reflect", "replicate", "symmetric", "partial"} in named, named
    assert "circular does not fit" not in text and "does not fit — circular" not in text
    assert json.loads((page / "report.json").read_text())["config"]["amount"] == "keep"
    assert check_report(page) == []
    raw = (page / "index.html").read_text()
    (page / "index.html").write_text(re.sub(r"circular, (?=[\w ,]+: each layer&#x27;s own padding amount)", "", raw,
                                            count=1))  # (one table's line: the other still names it)
    assert any("the --amount line names" in p for p in check_report(page))


def test_the_answer_with_each_layers_own_amount_lists_the_padding_modes_and_says_how_they_pad(tmp_path, capsys):
    """`edgewise answer --amount keep`: the reduction block's padding modes fit, and each says how it pads."""
    from edgewise.cli import main

    source = tmp_path / "reduction.py"
    source.write_text("import torch, torch.nn as nn\n\n" + __import__("inspect").getsource(_Reduction)
                      + "\n\ndef make_model():\n    return _Reduction()\n")
    for amount in ("keep", None):
        out = tmp_path / f"answer-{amount}"
        assert main(["answer", f"{source}:make_model", "-i", "1x17x17", "--inits", "2", "--out", str(out)]
                    + (["--amount", amount] if amount else [])) == 0
        capsys.readouterr()
        text = (out / "answer.md").read_text()
        listed = re.findall(r"^- (circular|reflect)( \(each layer's own padding amount\))?: (does not fit)?", text,
                            re.M)
        if amount:
            assert sorted(listed) == [("circular", " (each layer's own padding amount)", ""),
                                      ("reflect", " (each layer's own padding amount)", "")], listed
        else:
            assert sorted(listed) == [("circular", "", "does not fit"), ("reflect", "", "does not fit")], listed


def test_a_layer_that_pads_nothing_keeps_no_padding_mode_to_change():
    """With each layer's own amount a valid convolution made circular pads nothing: it computes what it did, and its
    record says so (it once read "padding (0, 0) zeros → circular", unchanged False)."""
    model = nets.from_spec("3*conv3", (1, 16, 16), padding="valid")
    new = apply(model, "circular", amount="keep", input_shape=(1, 16, 16))
    assert [(c["change"], c["unchanged"]) for c in changes(new)] == [("padding (0, 0) unchanged", True)] * 3
    x = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(new(x), model(x))
    mixed = apply(_Reduction(), "circular", amount="keep", input_shape=(1, 17, 17))
    assert {c["layer"]: c["unchanged"] for c in changes(mixed) if c["old"] == "Conv2d"} == {"stem": False,
                                                                                           "branch": True}


def test_global_connections_on_back_to_back_convolutions_in_a_sequential():
    """A 1-D net with a depthwise convolution right before a 1×1 one in an nn.Sequential: `global` did not fit
    ("GlobalConv1d '3': global connections are not drawn yet"), because looking for a padding layer before the
    1×1 convolution asked the depthwise one, already rewritten, for its windows."""
    net = nn.Sequential(nn.Conv1d(1, 4, 9, stride=4, padding=4), nn.ReLU(), nn.Conv1d(4, 4, 5, padding=2, groups=4),
                        nn.Conv1d(4, 8, 1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2))
    new = apply(net, "global", input_shape=(1, 64))
    assert [c["new"] for c in changes(new)] == ["GlobalConv1d"] * 3
    from edgewise.remedies import compare

    assert "error" not in {r["name"]: r for r in compare(net, (1, 64), ["global"]).rows}["global"]


def test_a_rewrite_whose_measuring_pass_fails_is_not_taken_for_one_that_fits(monkeypatch):
    """The check runs the rewritten model under the cost counter; when that pass fails and a plain pass does not,
    the remedy still does not fit, with the counter's error (it was let through as fitting)."""
    from edgewise.remedies import rewrite

    def broken(model, shape):
        raise RuntimeError("the counter failed")

    monkeypatch.setattr(rewrite, "forward_costs", broken)
    with pytest.raises(EdgewiseError, match=r"remedy 'circular' does not fit .*: RuntimeError: the counter failed"):
        apply(nets.from_spec("2*conv3", (1, 8, 8)), "circular", input_shape=(1, 8, 8))

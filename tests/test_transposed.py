"""Transposed convolutions and up-sampling: exact path counts and receptive fields.

Path counts of nets with ConvTranspose1d/2d, ``F.conv_transpose*d``, ``nn.Upsample`` and
``F.interpolate`` are compared with the brute-force reference (:mod:`edgewise.testing.brute`)
and with autograd on the all-ones network (:mod:`edgewise.testing.oracle`); receptive fields
with probing (:mod:`edgewise.testing.probe`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import edgewise
from edgewise import EdgewiseError
from edgewise._axis import Resample, Transposed, nonzeros
from edgewise.testing import brute_pathways
from edgewise.testing.brute import axis_taps
from edgewise.testing.oracle import autograd_pathways
from edgewise.testing.probe import probe_box

SETTINGS = settings(derandomize=True, max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

MAX_UNITS = 700  # channels × positions per layer: the brute-force DAG stays small


def exact(model, shape, **kw) -> np.ndarray:
    return edgewise.pathways(model, shape, exact=True, **kw).counts


def assert_same(actual, expected, what=""):
    actual, expected = np.asarray(actual, dtype=object), np.asarray(expected, dtype=object)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.tolist() == expected.tolist(), f"{what}:\nengine {actual.tolist()}\nref    {expected.tolist()}"


def oracle_counts(model, shape, to="all") -> np.ndarray:
    got = autograd_pathways(model, shape, to=to)
    assert np.abs(got).max(initial=0) < 2 ** 52, "counts beyond float64's exact integers"
    return np.rint(got).astype(np.int64).astype(object)


def rounding_artifacts(model, shape) -> bool:
    """Whether an interpolation of ``model`` gives some input a weight PyTorch's float64 rounding made
    non-zero where the exact weight is 0 (~1e-17; e.g. linear ×5): the autograd oracle counts such a
    weight as a connection, edgewise (and the brute-force reference) do not."""
    calls = []
    hooks = [m.register_forward_pre_hook(lambda m, a: calls.append((m, a[0].shape[2:])))
             for m in model.modules() if isinstance(m, nn.Upsample)]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *shape)))
    finally:
        for h in hooks:
            h.remove()
    for m, spatial in calls:
        n = len(spatial)
        sizes = m.size if isinstance(m.size, (tuple, list)) else (m.size,) * n
        scales = m.scale_factor if isinstance(m.scale_factor, (tuple, list)) else (m.scale_factor,) * n
        mode = "linear" if "linear" in m.mode else m.mode
        for a, n_in in enumerate(spatial):
            eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]
            w = F.interpolate(eye, size=sizes[a], scale_factor=scales[a], mode=mode, align_corners=m.align_corners,
                              recompute_scale_factor=m.recompute_scale_factor).abs()
            if ((w > 0) & (w < 1e-9)).any():
                return True
    return False


def check_counts(model, shape, data=None):
    """Engine == brute force == autograd oracle, for the whole output, its centre and a drawn position."""
    graph = edgewise.trace(model, shape)
    out = graph[graph.output]
    selectors = ["all", "center"]
    if data is not None and out.spatial:
        selectors.append(tuple(data.draw(st.integers(0, n - 1), label=f"axis {a}") for a, n in enumerate(out.spatial)))
    oracle = not rounding_artifacts(model, shape)
    for to in selectors:
        engine = exact(graph, None, to=to)
        assert_same(engine, brute_pathways(graph, to=to), f"brute, to={to}, {model}")
        if oracle:
            assert_same(engine, oracle_counts(model, shape, to=to), f"oracle, to={to}, {model}")


# --------------------------------------------------------------------------- the axis op

@st.composite
def transposed_axis(draw):
    k, s, d = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    p = draw(st.integers(0, (k - 1) * d))
    q = draw(st.integers(0, max(s, d) - 1))
    n_in = draw(st.integers(1, 9))
    ax = Transposed(k, s, d, p, q)
    assume(ax.out_size(n_in) >= 1)
    return ax, n_in


@settings(derandomize=True, max_examples=150, deadline=None)
@given(transposed_axis())
def test_axis_matrix_is_what_torch_scatters(case):
    """M[o, i] = d out[o] / d in[i] of a one-channel ConvTranspose1d with unit weights; sizes as PyTorch's."""
    ax, n_in = case
    conv = nn.ConvTranspose1d(1, 1, ax.kernel, ax.stride, ax.pad, ax.output_padding, bias=False,
                              dilation=ax.dilation).double()
    nn.init.ones_(conv.weight)
    jac = torch.autograd.functional.jacobian(lambda x: conv(x)[0, 0], torch.zeros((1, 1, n_in), dtype=torch.float64))
    expected = np.rint(jac[:, 0, 0].numpy()).astype(np.int64)
    n_out = expected.shape[0]
    assert ax.out_size(n_in) == n_out
    assert ax.matrix(n_in, n_out).tolist() == expected.tolist()
    rows, cols, vals = nonzeros(ax, n_in, n_out)
    dense = np.zeros((n_out, n_in), dtype=np.int64)
    dense[rows, cols] = vals
    assert dense.tolist() == expected.tolist()
    assert list(zip(cols.tolist(), rows.tolist())) == sorted(zip(cols.tolist(), rows.tolist()))  # column-major order
    taps = axis_taps(ax, n_in, n_out)
    assert [sorted(t) for t in taps] == [np.flatnonzero(r).tolist() for r in expected]


@settings(derandomize=True, max_examples=150, deadline=None)
@given(transposed_axis())
def test_affine_window_holds_every_tap(case):
    """Output o reads exactly the inputs i in [o/s - offset, o/s - offset + extent - 1] whose tap index is whole."""
    ax, n_in = case
    extent, stride, offset = ax.affine(n_in, ax.out_size(n_in))
    m = ax.matrix(n_in, ax.out_size(n_in))
    for o, row in enumerate(m):
        lo = o * stride - offset
        hi = lo + extent - 1
        want = [i for i in range(n_in) if lo <= i <= hi and (o + ax.pad - i * ax.stride) % ax.dilation == 0]
        assert np.flatnonzero(row).tolist() == want


# --------------------------------------------------------------------------- random nets

def _conv(ndim):
    return nn.Conv1d if ndim == 1 else nn.Conv2d


def _convT(ndim):
    return nn.ConvTranspose1d if ndim == 1 else nn.ConvTranspose2d


@st.composite
def chain_net(draw, kinds=("convT", "convT", "convT", "conv", "upsample", "relu")):
    """A stack of 1–4 layers mixing ConvTranspose (strides 1–3, kernels 1–5, dilation 1–2, padding,
    output_padding, groups), convolutions, up-sampling and activations, with an input it runs on."""
    ndim = draw(st.sampled_from([1, 1, 2]), label="ndim")
    spatial = tuple(draw(st.integers(2, 6 if ndim == 1 else 4)) for _ in range(ndim))
    c = draw(st.integers(1, 2))
    shape = input_shape = (c, *spatial)
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        c_out = draw(st.integers(1, 3))
        if kind == "convT":
            groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0 and c_out % g == 0]))
            k = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
            s = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
            d = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
            p = tuple(draw(st.integers(0, (ki - 1) * di)) for ki, di in zip(k, d))
            q = tuple(draw(st.integers(0, max(si, di) - 1)) for si, di in zip(s, d))
            m = _convT(ndim)(c, c_out, k, s, p, q, groups=groups, bias=draw(st.booleans()), dilation=d)
        elif kind == "conv":
            k = draw(st.integers(1, 3))
            m = _conv(ndim)(c, c_out, k, draw(st.integers(1, 2)), draw(st.integers(0, k // 2)),
                            padding_mode=draw(st.sampled_from(["zeros", "zeros", "circular", "reflect"])))
        elif kind == "upsample":
            c_out = c
            mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear"]))
            mode = "bilinear" if mode == "linear" and ndim == 2 else mode
            align = draw(st.booleans()) if "linear" in mode else None
            if draw(st.booleans()):
                m = nn.Upsample(scale_factor=draw(st.sampled_from([2.0, 3.0, 1.5, 2.5, 0.5, 1.7])), mode=mode,
                                align_corners=align)
            else:
                size = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
                m = nn.Upsample(size=size[0] if ndim == 1 else size, mode=mode, align_corners=align)
        else:
            c_out, m = c, nn.ReLU()
        try:
            with torch.no_grad():
                y = m(torch.zeros((1, *shape)))
        except RuntimeError:  # the layer does not fit the map (reflect padding wider than it, ...)
            continue
        if min(y.shape[2:]) < 1 or math.prod(y.shape[1:]) > MAX_UNITS:
            continue
        layers.append(m)
        c, shape = c_out, tuple(y.shape[1:])
    assume(any(isinstance(m, nn.modules.conv._ConvTransposeNd) for m in layers))
    return nn.Sequential(*layers), input_shape


@SETTINGS
@given(chain_net(), st.data())
def test_chains_match_brute_and_oracle(case, data):
    net, shape = case
    check_counts(net, shape, data)


class UNet(nn.Module):
    """One encoder/decoder level: conv, strided-conv down, ConvTranspose up, skip concatenation, conv."""

    def __init__(self, ndim, c, w, down, up, out_padding, groups, use_output_size):
        super().__init__()
        (kd, pd), (ku, pu) = down, up
        self.enc = _conv(ndim)(c, w, 3, padding=1)
        self.down = _conv(ndim)(w, w, kd, stride=2, padding=pd)
        self.up = _convT(ndim)(w, w, ku, stride=2, padding=pu, output_padding=0 if use_output_size else out_padding,
                               groups=groups)
        self.dec = _conv(ndim)(2 * w, 1, 3, padding=1)
        self.use_output_size = use_output_size

    def forward(self, x):
        e = F.relu(self.enc(x))
        d = F.relu(self.down(e))
        u = self.up(d, output_size=e.shape[2:]) if self.use_output_size else self.up(d)
        return self.dec(torch.cat([e, F.relu(u)], dim=1))


@st.composite
def unet(draw):
    ndim = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(3, 9 if ndim == 1 else 6))
    fits = []  # (down (k, p), up (k, p), output_padding) that bring the map back to n
    for kd, pd in [(3, 1), (2, 0), (4, 1), (1, 0)]:
        m = (n + 2 * pd - kd) // 2 + 1
        for ku, pu in [(2, 0), (3, 1), (4, 1), (3, 0), (1, 0), (5, 2)]:
            q = n - ((m - 1) * 2 - 2 * pu + ku)
            if m >= 1 and 0 <= q <= 1:
                fits.append(((kd, pd), (ku, pu), q))
    assume(fits)
    down, up, q = draw(st.sampled_from(fits))
    c, w = draw(st.integers(1, 2)), draw(st.sampled_from([1, 2]))
    groups = draw(st.sampled_from([1, w]))
    net = UNet(ndim, c, w, down, up, q, groups, draw(st.booleans()))
    return net, (c, *(n,) * ndim)


@SETTINGS
@given(unet(), st.data())
def test_unet_matches_brute_and_oracle(case, data):
    net, shape = case
    check_counts(net, shape, data)


class FunctionalUp(nn.Module):
    def __init__(self, c, c_out, k, stride, padding, output_padding, dilation, groups=1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c, c_out // groups, *k))
        self.args = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                         dilation=dilation)
        self.fn = F.conv_transpose1d if len(k) == 1 else F.conv_transpose2d

    def forward(self, x):
        return F.relu(self.fn(x, self.weight, None, **self.args))


@pytest.mark.parametrize("k, stride, padding, output_padding, dilation, shape", [
    ((3,), 2, 1, 1, 1, (2, 5)),
    ((4,), 3, 2, 2, 1, (1, 4)),
    ((2, 3), (2, 1), (0, 1), (1, 0), (1, 2), (2, 3, 4)),
])
def test_functional_conv_transpose(k, stride, padding, output_padding, dilation, shape):
    net = FunctionalUp(shape[0], 3, k, stride, padding, output_padding, dilation)
    graph = edgewise.trace(net, shape)
    (up,) = [nd for nd in graph if nd.kind == "conv"]
    assert [type(a).__name__ for a in up.axes] == ["Transposed"] * len(k) and up.channels == 3
    check_counts(net, shape)


def test_functional_conv_transpose_with_groups_is_refused():
    net = FunctionalUp(2, 2, (3,), 2, 1, 0, 1, groups=2)
    with pytest.raises(EdgewiseError, match="groups=2"):
        edgewise.trace(net, (2, 5))


# --------------------------------------------------------------------------- by hand

def test_stride_two_kernel_three_by_hand():
    """ConvTranspose1d(k=3, s=2, p=1) on 4 samples → 7: even outputs read one input, odd ones two,
    so the first and last inputs have fewer paths (2 and 2 vs 3)."""
    net = nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1)
    assert exact(net, (1, 4)).tolist() == [2, 3, 3, 2]
    assert exact(net, (1, 4), to=3).tolist() == [0, 1, 1, 0]  # output 3 sits between inputs 1 and 2


def test_kernel_equal_to_stride_is_uniform():
    """k == s tiles the output: every input reaches exactly k outputs, also after a second such layer."""
    net = nn.Sequential(nn.ConvTranspose2d(1, 2, 2, stride=2), nn.ConvTranspose2d(2, 1, 2, stride=2))
    assert exact(net, (1, 3, 3)).tolist() == [[32] * 3] * 3


def test_output_padding_only_lengthens():
    """output_padding adds positions at the end: the same taps, one more output that none reaches here."""
    a, b = nn.ConvTranspose1d(1, 1, 1, stride=2), nn.ConvTranspose1d(1, 1, 1, stride=2, output_padding=1)
    ga, gb = edgewise.trace(a, (1, 3)), edgewise.trace(b, (1, 3))
    assert ga[ga.output].spatial == (5,) and gb[gb.output].spatial == (6,)
    assert exact(a, (1, 3)).tolist() == exact(b, (1, 3)).tolist() == [1, 1, 1]
    assert exact(b, (1, 3), to=5).tolist() == [0, 0, 0]


# --------------------------------------------------------------------------- receptive fields

def _rounded(box):
    return tuple((math.ceil(lo - 1e-9), math.floor(hi + 1e-9)) for lo, hi in box)


def check_fields(model, shape, data, dilated: bool):
    graph = edgewise.trace(model, shape)
    rf = edgewise.receptive_field(graph)
    for nd in graph:
        if nd.kind not in ("conv", "pool", "cat") or not nd.spatial:
            continue
        pos = tuple(data.draw(st.integers(0, n - 1), label=f"{nd.name} axis {a}") for a, n in enumerate(nd.spatial))
        probed = probe_box(graph, nd.name, pos)
        box = _rounded(rf.clipped_box(nd.name, pos))
        if probed is None:
            continue
        # every input that reaches the unit lies in its box ...
        assert all(lo <= p_lo and p_hi <= hi for (lo, hi), (p_lo, p_hi) in zip(box, probed)), (nd.name, pos, box, probed)
        # ... and the box is that span exactly where the field says so (dilation leaves holes at the ends)
        if rf[nd.name].exact and not dilated and nd.kind != "cat":
            assert probed == box, (nd.name, pos, probed, box, rf[nd.name].to_dict())


@SETTINGS
@given(chain_net(kinds=("convT", "convT", "conv", "relu")), st.data())
def test_fields_match_probing(case, data):
    """(Up-sampling layers are left out: their fields are approximate and flagged inexact.)"""
    net, shape = case
    dilated = any(max(getattr(m, "dilation", (1,))) > 1 for m in net)
    assume(not any(isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.padding_mode != "zeros" for m in net))
    check_fields(net, shape, data, dilated)


@SETTINGS
@given(unet(), st.data())
def test_unet_fields_hold_the_probed_span(case, data):
    net, shape = case
    check_fields(net, shape, data, dilated=False)


def test_transposed_field_by_hand():
    """k=3, s=2, p=1 on the input: unit o lies over inputs [(o-1)/2, (o+1)/2]: size 2, jump 1/2, start 0;
    exact, since the inputs it reads are the whole numbers in that interval."""
    rf = edgewise.receptive_field(nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1), (1, 4))
    lf = rf[rf.layers[-1].name]
    assert (lf.axes[0].size, lf.axes[0].jump, lf.axes[0].start) == (Fraction(2), Fraction(1, 2), Fraction(0))
    assert lf.exact


def test_upsampling_a_strided_conv_is_inexact():
    """After a stride-2 convolution, a stride-2 ConvTranspose's fields step in pairs (not affine): the box
    holds the field but is flagged inexact."""
    net = nn.Sequential(nn.Conv1d(1, 1, 3, stride=2, padding=1), nn.ConvTranspose1d(1, 1, 2, stride=2))
    rf = edgewise.receptive_field(net, (1, 8))
    assert not rf[rf.layers[-1].name].exact


def test_transposed_layers_in_even_size_advice():
    """The even-size search runs a ConvTranspose at other input sizes (PyTorch's output-size rule)."""
    net = nn.Sequential(nn.Conv1d(1, 1, 3, stride=2), nn.ConvTranspose1d(1, 1, 3, stride=2, output_padding=1))
    rf = edgewise.receptive_field(net, (1, 10))
    assert rf.advice.even_input_sizes


# --------------------------------------------------------------------------- up-sampling

@st.composite
def upsample_net(draw):
    """conv → Upsample/F.interpolate (nearest, nearest-exact, (bi)linear with either align_corners; integer,
    fractional or recomputed scale factors, or size=) → conv."""
    ndim = draw(st.sampled_from([1, 2]))
    spatial = tuple(draw(st.integers(1, 9 if ndim == 1 else 5)) for _ in range(ndim))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear"]))
    mode = "bilinear" if mode == "linear" and ndim == 2 else mode
    align = draw(st.booleans()) if "linear" in mode else None
    how = draw(st.sampled_from(["scale", "scale", "size"]))
    if how == "scale":
        scale = tuple(draw(st.sampled_from([2.0, 3.0, 4.0, 1.5, 2.5, 0.5, 1.7, 1.3, 1 / 3, 2 / 3]))
                      for _ in range(ndim))
        kw = dict(scale_factor=scale[0] if ndim == 1 else scale,
                  recompute_scale_factor=draw(st.sampled_from([None, True])))
    else:
        size = tuple(draw(st.integers(1, 13 if ndim == 1 else 7)) for _ in range(ndim))
        kw = dict(size=size[0] if ndim == 1 else size)
    up = nn.Upsample(mode=mode, align_corners=align, **kw)
    try:
        y = up(torch.zeros((1, 1, *spatial)))
    except (RuntimeError, ValueError):
        assume(False)
    assume(min(y.shape[2:]) >= 1 and math.prod(y.shape[2:]) <= 120)
    c = draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    k2 = draw(st.integers(1, 3))
    net = nn.Sequential(_conv(ndim)(c, 2, k, padding=k // 2), up, _conv(ndim)(2, 1, k2, padding=k2 // 2))
    return net, (c, *spatial)


@settings(derandomize=True, max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(upsample_net(), st.data())
def test_upsampling_matches_brute_and_oracle(case, data):
    net, shape = case
    check_counts(net, shape, data)


class Interp(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.conv, self.kw = nn.Conv2d(1, 2, 3, padding=1), kw

    def forward(self, x):
        return F.interpolate(self.conv(x), **self.kw)


@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"),
    dict(scale_factor=(1.5, 2.5), mode="bilinear", align_corners=False),
    dict(scale_factor=1.7, mode="bilinear", align_corners=True),
    dict(size=(7, 4), mode="bilinear", align_corners=False),
    dict(size=(6, 9), mode="nearest-exact"),
    dict(scale_factor=0.6, mode="nearest", recompute_scale_factor=True),
])
def test_functional_interpolate(kw):
    check_counts(Interp(**kw), (1, 4, 5))


def test_linear_with_the_input_size_copies():
    """PyTorch copies when the output has the input's length, whatever the scale factor: ×1.3 on 2 samples
    (→ 2) reads one input per output, not the two that (o + 1/2)/1.3 − 1/2 would interpolate between."""
    up = nn.Upsample(scale_factor=1.3, mode="linear")
    assert Resample("linear", False, 1 / 1.3).sources(1, 2, 2) == [1]
    assert exact(up, (1, 2)).tolist() == [1, 1] == oracle_counts(up, (1, 2)).tolist()


def test_nearest_with_a_decimal_scale_is_exact():
    """×3.7 from 11 samples: output 37 reads input 10 (37/3.7 = 10); in floating point 37 * (1/3.7) < 10."""
    up = nn.Upsample(scale_factor=3.7, mode="nearest")
    assert 37 * (1 / 3.7) < 10
    assert Resample("nearest", False, 1 / 3.7).sources(37, 11, 40) == [10]
    assert exact(up, (1, 11), to=37).tolist() == oracle_counts(up, (1, 11), to=37).tolist() == [0] * 10 + [1]


def test_rounding_artifacts_are_not_connections():
    """Linear ×5: output 2 sits exactly on input 0 ((2 + 1/2)/5 − 1/2 = 0); PyTorch's rounding gives input 1
    a weight of ~1e-17 there, which is not a connection."""
    up = nn.Upsample(scale_factor=5.0, mode="linear")
    assert rounding_artifacts(up, (1, 3))
    assert exact(up, (1, 3), to=2).tolist() == brute_pathways(up, (1, 3), to=2).tolist() == [1, 0, 0]

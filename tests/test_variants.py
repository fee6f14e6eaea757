"""Convolution variants (Goodfellow et al. ch. 9) against the naive loops in edgewise.testing.naive_conv."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgewise import EdgewiseError
from edgewise import variants as V
from edgewise.testing.naive_conv import (naive_convolve, naive_correlate, naive_depthwise_separable,
                                         naive_locally_connected, naive_output_length, naive_tiled)

#: float64 agreement between a fast variant and its loop (sums of a few dozen O(1) products)
TOL = dict(rtol=1e-10, atol=1e-10)
PADS = ("valid", "same", "full")



def rng(seed=0):
    return np.random.default_rng(seed)


def close(a, b, **kw):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, **(kw or TOL))


# 1-D and 2-D, single- and multi-channel, odd and even input and kernel sizes: (x shape, kernel shape)
CASES = [
    ((9,), (3,)), ((8,), (4,)), ((7,), (2,)),
    ((2, 10), (3, 2, 3)), ((3, 7), (2, 3, 4)),
    ((7, 6), (3, 2)), ((6, 8), (4, 4)),
    ((2, 7, 8), (3, 2, 3, 2)), ((2, 6, 5), (2, 2, 2, 3)),
]


def _draw(case, seed):
    r = rng(seed)
    return r.normal(size=case[0]), r.normal(size=case[1])


# --------------------------------------------------------------- convolution vs cross-correlation

def test_naive_loops_agree_with_numpy():
    r = rng(9)
    x, k = r.normal(size=9), r.normal(size=4)
    close(naive_convolve(x, k, "full"), np.convolve(x, k, "full"))
    close(naive_correlate(x, k, "full"), np.correlate(x, k, "full"))
    close(naive_correlate(x, k, "valid"), np.correlate(x, k, "valid"))
    # 2-D, through numpy alone: a rank-1 kernel convolves as 1-D passes down the columns, then along the rows
    x2, a, b = r.normal(size=(6, 7)), r.normal(size=3), r.normal(size=2)
    cols = np.stack([np.convolve(x2[:, c], a, "full") for c in range(7)], axis=1)
    both = np.stack([np.convolve(row, b, "full") for row in cols])
    close(naive_convolve(x2, np.outer(a, b), "full"), both)
    close(naive_correlate(x2, np.outer(a, b), "full"), naive_convolve(x2, np.outer(a[::-1], b[::-1]), "full"))
    # book fig. 9.1: the top-left output of a 2×2 kernel is aw + bx + ey + fz
    close(naive_correlate(np.arange(12.0).reshape(3, 4), np.array([[1.0, 10.0], [100.0, 1000.0]]))[0, 0],
          np.array(0 + 10 * 1 + 100 * 4 + 1000 * 5))


@pytest.mark.parametrize("ci", range(len(CASES)))
def test_correlate_and_convolve_match_naive_loops(ci):
    x, k = _draw(CASES[ci], ci)
    for padding, stride in itertools.product(PADS, (1, 2, 3)):
        close(V.correlate(x, k, padding, stride), naive_correlate(x, k, padding, stride))
        close(V.convolve(x, k, padding, stride), naive_convolve(x, k, padding, stride))


def test_numpy_in_numpy_out_torch_in_torch_out_and_batches():
    x, k = _draw(CASES[7], 1)
    y = V.correlate(x, k, "same")
    assert isinstance(y, np.ndarray) and y.shape == (3, 7, 8)
    yt = V.correlate(torch.tensor(x), torch.tensor(k), "same")
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float64
    close(yt, y)
    batch = np.stack([x, 2 * x])
    yb = V.correlate(batch, k, "same")
    close(yb[0], y)
    close(yb[1], 2 * y)
    assert V.correlate(np.arange(5), np.array([1, 1])).dtype == np.float64  # ints become float64


@pytest.mark.parametrize("shapes", [((7,), (3,)), ((6,), (4,)), ((5, 6), (2, 3)), ((4, 4), (3, 3))])
def test_true_convolution_commutes_cross_correlation_reverses(shapes):
    x, k = _draw(shapes, 3)
    close(V.convolve(x, k, "full"), V.convolve(k, x, "full"))
    ck, kc = V.correlate(x, k, "full"), V.correlate(k, x, "full")
    close(ck, V.flip(kc))  # correlate(x, k) is correlate(k, x) reversed on every axis ...
    assert np.abs(ck - kc).max() > 1e-3  # ... and not equal to it


@pytest.mark.parametrize("ci", [0, 1, 3, 6, 8])
def test_convolve_is_correlate_with_the_flipped_kernel(ci):
    x, k = _draw(CASES[ci], ci)
    for padding in PADS:
        close(V.convolve(x, k, padding), V.correlate(x, V.flip(k), padding))
    kt = torch.tensor(k)
    assert torch.equal(V.flip(V.flip(kt)), kt)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("ci", range(3, len(CASES)))
def test_correlate_agrees_with_torch_conv(ci):
    x, k = _draw(CASES[ci], ci)
    xt, kt = torch.tensor(x)[None], torch.tensor(k)
    if kt.ndim == xt.ndim - 1:  # single-channel 2-D case
        xt, kt = xt[None], kt[None, None]
    conv = F.conv1d if kt.ndim == 3 else F.conv2d
    got = V.correlate(xt, kt, "valid", stride=2)
    close(got, conv(xt, kt, stride=2))
    close(V.correlate(xt, kt, "same"), conv(xt, kt, padding="same"))  # PyTorch's split for even kernels too
    full = tuple(s - 1 for s in kt.shape[2:])
    close(V.correlate(xt, kt, "full"), conv(xt, kt, padding=full))


def test_output_sizes_and_the_numpy_same_offset_for_even_kernels():
    assert [V.output_size(7, 3, p) for p in PADS] == [5, 7, 9]
    assert [V.output_size(8, 4, p, 3) for p in PADS] == [2, 3, 4]
    for n, k, s, p in itertools.product((5, 6), (1, 2, 3, 4), (1, 2, 3), PADS):
        if k <= n or p != "valid":
            assert V.output_size(n, k, p, s) == naive_output_length(n, k, p, s)
    x = rng(2).normal(size=9)
    odd, even = rng(3).normal(size=3), rng(4).normal(size=4)
    close(V.convolve(x, odd, "same"), np.convolve(x, odd, "same"))
    full = np.convolve(x, even, "full")
    close(V.convolve(x, even, "same"), full[2:2 + 9])  # PyTorch split: starts at ⌈(k−1)/2⌉ ...
    close(np.convolve(x, even, "same"), full[1:1 + 9])  # ... numpy at ⌊(k−1)/2⌋


# --------------------------------------------------------------------- stride = downsampling

@pytest.mark.parametrize("ci", [0, 1, 2, 4, 5, 6, 7, 8])
def test_strided_is_unit_stride_then_downsampling(ci):
    x, k = _draw(CASES[ci], ci + 10)
    d = k.ndim if k.ndim <= 2 else k.ndim - 2
    for padding, s in itertools.product(PADS, (2, 3, 4)):
        dense = V.correlate(x, k, padding)
        sub = dense[(Ellipsis,) + (slice(None, None, s),) * d]  # eq. 9.8
        close(V.correlate(x, k, padding, stride=s), sub)
        close(V.strided_as_downsampled(x, k, s, padding), sub)
        close(V.strided_as_downsampled(x, k, s, padding, flipped=True), V.convolve(x, k, padding, s))
    if d == 2:
        close(V.correlate(x, k, "same", stride=(1, 2)), V.correlate(x, k, "same")[..., :, ::2])


# ------------------------------------------------------------- locally connected and tiled

LOCAL = [((2, 9), 3, 1), ((3, 8), 4, 2), ((2, 7, 6), (3, 2), 1), ((1, 8, 9), (2, 3), (2, 3))]


@pytest.mark.parametrize("xs,ks,stride", LOCAL)
def test_locally_connected_and_tiled_match_naive_loops(xs, ks, stride):
    r = rng(5)
    x = r.normal(size=xs)
    d = len(xs) - 1
    ks = (ks,) * d if isinstance(ks, int) else ks
    for padding in PADS:
        out = tuple(naive_output_length(n, k, padding, s) for n, k, s in
                    zip(xs[1:], ks, (stride,) * d if isinstance(stride, int) else stride))
        w = r.normal(size=(2, *out, xs[0], *ks))
        close(V.locally_connected(x, w, stride=stride, padding=padding),
              naive_locally_connected(x, w, padding, stride))
        for t in (1, 2, 3):
            kern = r.normal(size=(2, xs[0], *ks, *(t,) * d))
            close(V.tiled_conv(x, kern, tile=t, stride=stride, padding=padding), naive_tiled(x, kern, padding, stride))


@pytest.mark.parametrize("xs,ks,stride", LOCAL)
def test_tiled_spans_convolution_to_locally_connected(xs, ks, stride):
    r = rng(6)
    x = torch.tensor(r.normal(size=(2, *xs)))  # batched
    d = len(xs) - 1
    ks = (ks,) * d if isinstance(ks, int) else ks
    k1 = torch.tensor(r.normal(size=(3, xs[0], *ks, *(1,) * d)))
    close(V.tiled_conv(x, k1, stride=stride, padding="same"),
          V.correlate(x, k1[(Ellipsis,) + (0,) * d], "same", stride))  # t = 1: ordinary convolution
    out = V.correlate(x, k1[(Ellipsis,) + (0,) * d], "same", stride).shape[2:]
    kt = torch.tensor(r.normal(size=(3, xs[0], *ks, *out)))
    bias = torch.tensor(r.normal(size=(3, *out)))
    w = kt.permute(0, *range(2 + d, 2 + 2 * d), 1, *range(2, 2 + d))  # W[i,j,k,l,m,n] = K[i,l,m,n,j,k]
    close(V.tiled_conv(x, kt, bias=bias, stride=stride, padding="same"),  # t = output size: locally connected
          V.locally_connected(x, w, bias, stride, "same"))


def test_tiled_bias_cycles_with_the_kernels():
    kern = torch.zeros(1, 1, 1, 3)
    bias = torch.tensor([[1.0, 2.0, 3.0]])
    assert V.tiled_conv(torch.zeros(1, 7), kern, bias=bias).tolist() == [[1, 2, 3, 1, 2, 3, 1]]


@pytest.mark.parametrize("cls,args,x,params", [
    (V.LocallyConnected1d, (2, 3, 3, 8), (2, 2, 8), 3 * 6 * 2 * 3 + 3 * 6),
    (V.LocallyConnected2d, (1, 2, (2, 3), (5, 6)), (2, 1, 5, 6), 2 * 4 * 4 * 6 + 2 * 4 * 4),
    (V.TiledConv1d, (2, 3, 3, 2), (2, 2, 8), 3 * 2 * 3 * 2 + 3 * 2),
    (V.TiledConv2d, (1, 2, (2, 3), (2, 3)), (2, 1, 5, 6), 2 * 6 * 6 + 2 * 6),
    (V.DepthwiseSeparableConv1d, (2, 3, 3), (2, 2, 8), 2 * 3 + 3 * 2 + 3),
    (V.DepthwiseSeparableConv2d, (2, 3, (3, 2)), (2, 2, 5, 6), 2 * 6 + 3 * 2 + 3),
])
def test_modules_shapes_params_seeds_and_repr(cls, args, x, params):
    state = torch.random.get_rng_state()
    a, b, c = cls(*args, seed=1), cls(*args, seed=1), cls(*args, seed=2)
    assert torch.equal(state, torch.random.get_rng_state())  # explicit seeds only
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    assert a.num_parameters() == params == sum(p.numel() for p in a.parameters())
    y = a(torch.randn(x, generator=torch.Generator().manual_seed(0)))
    assert y.shape[:2] == (x[0], args[1])
    assert f"params={params}" in repr(a) and "seed=1" in repr(a)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in a.parameters())
    assert "bias=False" in repr(cls(*args, bias=False))


def test_module_forward_is_its_function():
    lc = V.LocallyConnected2d(2, 3, 3, (6, 7), stride=2, padding="same", dtype=torch.float64)
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = naive_locally_connected(x[0].numpy(), lc.weight.detach().numpy(), "same", 2) + lc.bias.detach().numpy()
    close(lc(x)[0], ref)
    tc = V.TiledConv1d(2, 2, 3, tile=2, padding="full", dtype=torch.float64)
    x1 = torch.randn(2, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    b = tc.bias.detach().numpy()[:, np.arange(11) % 2]
    close(tc(x1), naive_tiled(x1.numpy(), tc.weight.detach().numpy(), "full") + b)
    with pytest.raises(EdgewiseError, match=r"built for 6×7 inputs.*input_size=\(5, 7\)"):
        lc(torch.zeros(1, 2, 5, 7, dtype=torch.float64))


def test_gradcheck_locally_connected_and_tiled():
    g = torch.Generator().manual_seed(0)

    def p(*shape):
        return torch.randn(shape, dtype=torch.float64, generator=g, requires_grad=True)

    assert torch.autograd.gradcheck(lambda x, w, b: V.locally_connected(x, w, b, padding="same"),
                                    (p(2, 5), p(2, 5, 2, 3), p(2, 5)))
    assert torch.autograd.gradcheck(lambda x, w: V.locally_connected(x, w, stride=2),
                                    (p(1, 1, 4, 5), p(2, 2, 2, 1, 2, 2)))
    assert torch.autograd.gradcheck(lambda x, k, b: V.tiled_conv(x, k, bias=b, padding="full"),
                                    (p(1, 5), p(2, 1, 2, 3), p(2, 3)))
    assert torch.autograd.gradcheck(lambda x, k: V.tiled_conv(x, k, stride=(1, 2)),
                                    (p(1, 4, 5), p(1, 1, 2, 2, 2, 2)))
    for layer in (V.LocallyConnected2d(1, 2, 2, (3, 4), dtype=torch.float64),
                  V.TiledConv2d(1, 2, 2, tile=(2, 1), padding="same", dtype=torch.float64)):
        assert torch.autograd.gradcheck(layer, (p(2, 1, 3, 4),))


# --------------------------------------------------------------------- separable and FFT

@pytest.mark.parametrize("hw,kk,stride", [((7, 6), (3, 3), 1), ((6, 8), (2, 4), 2), ((5, 5), (4, 1), (2, 1))])
def test_separable_is_correlation_with_the_outer_product(hw, kk, stride):
    r = rng(7)
    x = r.normal(size=(2, *hw))
    col, row = r.normal(size=(2, kk[0])), r.normal(size=(2, kk[1]))
    for padding in PADS:
        got = V.separable_conv(x, col, row, padding, stride)
        for c in range(2):
            close(got[c], naive_correlate(x[c], np.outer(col[c], row[c]), padding, stride))
        shared = V.separable_conv(torch.tensor(x[0]), torch.tensor(col[0]), torch.tensor(row[0]), padding, stride)
        close(shared, naive_correlate(x[0], np.outer(col[0], row[0]), padding, stride))
    sobel = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    c, rw = V.factor_kernel(sobel)
    close(np.outer(c, rw), sobel)
    close(V.separable_conv(x[0], c, rw, "same"), V.correlate(x[0], sobel, "same"))


@pytest.mark.parametrize("xs,ks,stride", [((3, 9), 3, 1), ((3, 8), 4, 2), ((2, 7, 6), (3, 2), 1),
                                          ((2, 6, 6), (2, 3), (2, 1))])
def test_depthwise_separable_matches_naive_and_the_composed_kernel(xs, ks, stride):
    r = rng(8)
    x = r.normal(size=xs)
    ks = (ks,) if isinstance(ks, int) else ks
    dw, pw = r.normal(size=(xs[0], *ks)), r.normal(size=(4, xs[0]))
    composed = pw.reshape(4, xs[0], *(1,) * len(ks)) * dw[None]  # K[i, l, m, n] = P[i, l] D[l, m, n]
    for padding in PADS:
        got = V.depthwise_separable_conv(x, dw, pw, padding=padding, stride=stride)
        close(got, naive_depthwise_separable(x, dw, pw, padding, stride))
        close(got, naive_correlate(x, composed, padding, stride))


@pytest.mark.parametrize("ci", range(len(CASES)))
def test_fft_convolution_matches_naive_convolution(ci):
    x, k = _draw(CASES[ci], ci + 20)
    for padding, stride in itertools.product(PADS, (1, 2)):
        close(V.fft_convolve(x, k, padding, stride), naive_convolve(x, k, padding, stride))


def test_cost_model_numbers():
    assert V.conv_cost((32, 32), 5) == 25 * 32 * 32
    direct, sep = V.conv_cost((64, 64), 7, "direct", "valid"), V.conv_cost((64, 64), 7, "separable", "valid")
    assert direct == 49 * 58 * 58 and sep == 7 * 58 * 64 + 7 * 58 * 58
    assert 3.3 < direct / sep < 3.7  # ≈ k/2
    dws = V.conv_cost((32, 32), 3, "depthwise_separable", in_channels=16, out_channels=64)
    assert dws / V.conv_cost((32, 32), 3, in_channels=16, out_channels=64) == pytest.approx(1 / 64 + 1 / 9)
    assert V.fft_crossover((64, 64)) == 7 and V.fft_crossover((256, 256)) == 8
    assert V.fft_crossover(256) == 30 and V.fft_crossover(16) is None
    assert V.fft_crossover((64, 64), in_channels=64, out_channels=64) == 4
    # FFT cost barely moves with the kernel; direct grows as k²
    f3, f15 = V.conv_cost((128, 128), 3, "fft"), V.conv_cost((128, 128), 15, "fft")
    assert f15 / f3 < 1.3 and V.conv_cost((128, 128), 15) / V.conv_cost((128, 128), 3) == 25


# ------------------------------------------------------------------------- properties

def test_circular_conv_is_exactly_equivariant_to_circular_shifts():
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular").double()
    for axis, shift in ((-1, 1), (-2, 3), (-1, -2)):
        eq = V.translation_equivariance(conv, (2, 12, 10), shift=shift, axis=axis, circular=True)
        assert max(eq.max_interior, eq.max_border) < 1e-7 and eq.fraction_equivariant == 1.0
        assert eq.n_border > 0 and eq.n_interior > 0
    eq32 = V.translation_equivariance(conv.float(), (2, 12, 10), circular=True)
    assert eq32.max_border < 1e-6


def test_zero_padding_breaks_equivariance_only_at_the_border():
    net = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv1d(4, 2, 5, padding=2)).double()
    eq = V.translation_equivariance(net, (1, 24), shift=2)
    assert eq.max_interior < 1e-12 and eq.max_border > 0.05
    assert eq.interior.shape == eq.error_by_position.shape == (22,)
    assert (eq.error_by_position[eq.interior] < 1e-12).all()
    assert eq.n_border == 6 and not eq.interior[:3].any() and not eq.interior[-3:].any() and eq.interior[3:-3].all()
    assert eq.fraction_equivariant < 1.0
    valid = V.translation_equivariance(nn.Conv2d(1, 2, 3).double(), (1, 8, 9), axis=-2)
    assert valid.n_border == 0 and np.isnan(valid.max_border) and valid.max_interior < 1e-12
    circ = V.translation_equivariance(nn.Conv2d(1, 2, 3, padding=1).double(), (1, 8, 8), circular=True)
    assert circ.max_border > 0.05 and circ.max_interior < 1e-12  # zero padding vs circular shifts
    fixed = V.translation_equivariance(net, (1, 24), shift=2, border=3)
    assert fixed.n_interior == eq.n_interior == 16  # j and j − 2 both in [3, 20]
    assert "border max" in str(eq)
    assert eq.to_dict()["n_border"] == 6 and set(eq.arrays()) == {"error_by_position", "interior"}


def test_pooling_invariance_max_beats_average_and_grows_with_size():
    shape = (1, 24, 24)
    mx = {k: V.pooling_invariance(nn.MaxPool2d(k, 1), shape) for k in (2, 3, 4)}
    assert mx[2] < mx[3] < mx[4]
    for k, f in mx.items():
        assert abs(f - (k - 1) / (k + 1)) < 0.03  # iid noise: the max of k+1 columns sits in neither edge one
    assert V.pooling_invariance(nn.AvgPool2d(3, 1), shape) < mx[3] - 0.3
    assert V.pooling_invariance(nn.MaxPool2d(2, 2), shape) > 0.25
    blob_max = V.pooling_invariance(nn.MaxPool2d(3, 1), shape, image="blob")
    assert blob_max > V.pooling_invariance(nn.AvgPool2d(3, 1), shape, image="blob")
    assert blob_max < mx[3]  # a smooth ramp moves its window maxima: little invariance
    assert V.pooling_invariance(nn.MaxPool1d(3, 1), (2, 30), axis=-1, seed=3) == pytest.approx(0.5, abs=0.05)


# ---------------------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call,message", [
    (lambda: V.correlate(np.ones(5), np.ones((2, 2))), r"single-channel and needs a 2-D input"),
    (lambda: V.correlate(np.ones((2, 3, 4, 5, 6)), np.ones((1, 2, 3, 3))), r"must be \(C_in, \*spatial\)"),
    (lambda: V.correlate(np.ones(5), np.ones((1, 1, 1, 1, 1))), r"has 5 axes"),
    (lambda: V.convolve(np.ones((4, 4)), np.ones((5, 3))), r"5×3 kernel is larger than the 4×4 input in 'valid'"),
    (lambda: V.correlate(np.ones(4), np.ones(2), padding="half"), r"unknown padding 'half'.*'valid', 'same' or 'full'"),
    (lambda: V.correlate(np.ones(4), np.ones(2), stride=0), r"stride=0 must be at least 1"),
    (lambda: V.correlate(np.ones((3, 4, 4)), np.ones((2, 2, 3, 3))),
     r"x has 3 channels .* expects 2; the kernel's second axis"),
    (lambda: V.strided_as_downsampled(np.ones((4, 4)), np.ones((2, 2)), (1, 2, 3)), r"must be an int or 2 ints"),
    (lambda: V.tiled_conv(np.ones((1, 5)), np.ones((1, 1, 2, 2)), tile=0), r"tile=0 must be at least 1"),
    (lambda: V.tiled_conv(np.ones((1, 5)), np.ones((1, 1, 2, 2)), tile=3),
     r"tile=3 but kernels .* have tile sizes \(2,\) .* kernels of shape \(1, 1, 2, 3\)"),
    (lambda: V.tiled_conv(np.ones((2, 5)), np.ones((1, 1, 2, 2))), r"x has 2 channels .* expect 1"),
    (lambda: V.tiled_conv(np.ones((1, 5)), np.ones((1, 1, 2))), r"must be \(C_out, C_in, k, t\)"),
    (lambda: V.TiledConv2d(1, 1, 3, tile=0), r"tile=0 must be at least 1"),
    (lambda: V.locally_connected(np.ones((1, 6)), np.ones((1, 3, 1, 3))),
     r"gives a 4-sample output, but w holds kernels for a 3-sample output; build w with shape \(1, 4, 1, 3\)"),
    (lambda: V.locally_connected(np.ones((2, 6)), np.ones((1, 4, 1, 3))), r"x has 2 channels"),
    (lambda: V.LocallyConnected1d(1, 1, 9, 5), r"9-sample kernel is larger than the 5-sample input"),
    (lambda: V.factor_kernel(np.eye(3)), r"not separable"),
    (lambda: V.separable_conv(np.ones((2, 5, 5)), np.ones((3, 3)), np.ones(3)), r"col of shape \(3, 3\) must be"),
    (lambda: V.depthwise_separable_conv(np.ones((2, 5)), np.ones((2, 3)), np.ones((4, 3))),
     r"pointwise \(C_out, C_in\)"),
    (lambda: V.fft_convolve(np.ones(3), np.ones(4), "valid"),
     r"4-sample kernel is larger than the 3-sample input in 'valid' mode"),
    (lambda: V.conv_cost(8, 3, "winograd"), r"unknown method 'winograd'"),
    (lambda: V.translation_equivariance(nn.Conv1d(1, 1, 3), (1, 8), axis=-2), r"axis=-2 is not a spatial axis"),
    (lambda: V.translation_equivariance(nn.Conv1d(1, 1, 3), (1, 8), shift=8), r"shift=8 must be smaller"),
    (lambda: V.translation_equivariance(nn.Flatten(), (1, 8)), r"needs an output with the same spatial axes"),
    (lambda: V.pooling_invariance(nn.MaxPool1d(2), (1, 8), image="cat"), r"unknown image 'cat'"),
])
def test_bad_inputs_say_what_to_do(call, message):
    with pytest.raises(EdgewiseError, match=message):
        call()


def test_public_names():
    assert set(V.__all__) <= set(dir(V))
    for name in ("convolve", "correlate", "locally_connected", "tiled_conv", "LocallyConnected1d", "TiledConv2d",
                 "fft_convolve", "separable_conv", "translation_equivariance", "pooling_invariance"):
        assert name in V.__all__


def test_docstring_examples_run():
    import doctest
    import importlib

    names = ("_common", "correlation", "unshared", "separable", "fft", "layers", "equivariance", "pooling", "__init__")
    for name in names:
        mod = importlib.import_module("edgewise.variants" + ("" if name == "__init__" else "." + name))
        result = doctest.testmod(mod, extraglobs={"np": np, "torch": torch}, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name

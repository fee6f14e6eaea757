"""The finite-difference sensitivity reference against explicit matrix algebra on linear models."""

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import EdgewiseError
from edgewise.testing import finite_diff
from edgewise.testing.finite_diff import finite_difference_map

AGG = {"abs": np.abs, "sq": np.square, "signed": lambda g: g}
RTOL, ATOL = 1e-8, 1e-9


def seeded(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return module


def conv_matrix(conv, in_spatial) -> tuple[np.ndarray, tuple[int, ...]]:
    """Explicit matrix of a conv's linear part: rows (c_out, *out positions), columns (c_in, *in positions)."""
    w = conv.weight.detach().double().numpy()
    c_out, c_in, *kernel = w.shape
    stride, pad, dil = conv.stride, conv.padding, conv.dilation
    out_spatial = [(n + 2 * p - d * (k - 1) - 1) // s + 1
                   for n, p, d, k, s in zip(in_spatial, pad, dil, kernel, stride)]
    m = np.zeros((c_out, *out_spatial, c_in, *in_spatial))
    for o, c in itertools.product(range(c_out), range(c_in)):
        for out in itertools.product(*map(range, out_spatial)):
            for tap in itertools.product(*map(range, kernel)):
                src = tuple(q * s + t * d - p for q, s, t, d, p in zip(out, stride, tap, dil, pad))
                if all(0 <= i < n for i, n in zip(src, in_spatial)):
                    m[(o, *out, c, *src)] += w[(o, c, *tap)]
    return m.reshape(c_out * int(np.prod(out_spatial)), c_in * int(np.prod(in_spatial))), (c_out, *out_spatial)


def expected_map(matrix, out_shape, in_shape, to, agg):
    """Map from an explicit input→output matrix: mean over input channels of agg(selected rows summed)."""
    if to == "each":
        per_elem = AGG[agg](matrix).sum(axis=0)
    else:
        mask = np.zeros(out_shape, dtype=bool)
        if to == "all" or len(out_shape) == 1:
            mask[...] = True
        elif to == "center":
            mask[(slice(None), *[(n - 1) // 2 for n in out_shape[1:]])] = True
        else:
            mask[(slice(None), *((to,) if isinstance(to, int) else to))] = True
        per_elem = AGG[agg](mask.reshape(-1).astype(float) @ matrix)
    return per_elem.reshape(in_shape).mean(axis=0)


def inputs(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("agg", ["abs", "sq", "signed"])
@pytest.mark.parametrize("to", ["all", "center", 0, 4, "each"])
def test_conv1d_matches_the_explicit_matrix(to, agg):
    conv = seeded(nn.Conv1d(2, 3, 3, padding=1, dilation=2), 1)
    m, out_shape = conv_matrix(conv, (8,))
    got = finite_difference_map(conv, inputs(2, 2, 8), to=to, agg=agg)
    assert got.dtype == np.float64 and got.shape == (8,)
    np.testing.assert_allclose(got, expected_map(m, out_shape, (2, 8), to, agg), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("to", [(2, 0), (0, 1), "center", "each"])
def test_conv2d_on_a_non_square_input_picks_row_col(to, stride):
    conv = seeded(nn.Conv2d(2, 2, 3, padding=1, stride=stride), 2)
    m, out_shape = conv_matrix(conv, (5, 4))
    got = finite_difference_map(conv, inputs(1, 2, 5, 4), to=to, agg="sq")
    np.testing.assert_allclose(got, expected_map(m, out_shape, (2, 5, 4), to, "sq"), rtol=RTOL, atol=ATOL)
    if to == (2, 0) and stride == 1:  # the unit at row 2, col 0 reads rows 1..3 and cols 0..1
        assert np.argwhere(got > 0).tolist() == [[r, c] for r in (1, 2, 3) for c in (0, 1)]


def test_linear_after_flatten_selects_every_feature():
    net = seeded(nn.Sequential(nn.Flatten(), nn.Linear(2 * 6, 4)), 3)
    w = net[1].weight.detach().double().numpy()
    x = inputs(3, 2, 6)
    for agg in AGG:
        np.testing.assert_allclose(finite_difference_map(net, x, agg=agg), AGG[agg](w.sum(0)).reshape(2, 6).mean(0),
                                   rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(finite_difference_map(net, x, to="each", agg=agg),
                                   AGG[agg](w).sum(0).reshape(2, 6).mean(0), rtol=RTOL, atol=ATOL)
    # a flat target has no positions: "center" and a position select every feature, like "all"
    for to in ("center", 3):
        np.testing.assert_allclose(finite_difference_map(net, x, to=to), finite_difference_map(net, x), rtol=1e-12)


def test_each_differs_from_all_for_abs_and_sq_but_not_signed():
    conv = seeded(nn.Conv1d(1, 2, 3, padding=1), 4)
    x = inputs(1, 1, 6)
    for agg in ("abs", "sq"):
        assert not np.allclose(finite_difference_map(conv, x, "each", agg), finite_difference_map(conv, x, "all", agg))
    np.testing.assert_allclose(finite_difference_map(conv, x, "each", "signed"),
                               finite_difference_map(conv, x, "all", "signed"), rtol=RTOL, atol=ATOL)


def test_nested_layer_by_dotted_name():
    a, b = seeded(nn.Conv1d(1, 2, 3, padding=1), 5), seeded(nn.Conv1d(2, 2, 3, padding=1), 6)
    net = nn.Sequential(a, nn.Sequential(b, nn.Tanh()), nn.Conv1d(2, 1, 1))
    (ma, _), (mb, out_shape) = conv_matrix(a, (7,)), conv_matrix(b, (7,))
    x = inputs(2, 1, 7)
    got = finite_difference_map(net, x, to=(3,), layer="1.0", agg="signed")
    np.testing.assert_allclose(got, expected_map(mb @ ma, out_shape, (1, 7), 3, "signed"), rtol=RTOL, atol=ATOL)
    assert not np.allclose(finite_difference_map(net, x, to=3, layer="1.1", agg="signed"), got)  # after tanh
    with pytest.raises(EdgewiseError, match=r"no layer named '1\.2' in Sequential; did you mean .*'1\.0'"):
        finite_difference_map(net, x, layer="1.2")


def test_batch_mean_and_a_nonlinear_model_against_autograd():
    net = seeded(nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh(), nn.Conv2d(3, 2, 3, stride=2)), 7)
    x = inputs(2, 2, 6, 5) * 0.5
    got = finite_difference_map(net, x, to=(1, 0), agg="sq")
    parts = [finite_difference_map(net, x[i:i + 1], to=(1, 0), agg="sq") for i in range(2)]
    np.testing.assert_allclose(got, np.mean(parts, axis=0), rtol=1e-12)
    ref, xd = copy.deepcopy(net).double(), x.double().requires_grad_(True)  # autograd only checks the reference
    ref(xd)[:, :, 1, 0].sum().backward()
    np.testing.assert_allclose(got, (xd.grad ** 2).mean(dim=(0, 1)).numpy(), rtol=1e-6, atol=1e-12)


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_callers_model_is_untouched_and_no_hooks_remain(monkeypatch):
    model = seeded(nn.Sequential(nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2), nn.ReLU(), nn.Conv1d(2, 1, 3)), 8)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copies, real = [], copy.deepcopy

    def spy(obj, memo=None):
        out = real(obj, memo)
        if obj is model:
            copies.append(out)
        return out

    monkeypatch.setattr(finite_diff.copy, "deepcopy", spy)
    x = inputs(2, 1, 9)
    finite_difference_map(model, x, to="center", layer="1")
    with pytest.raises(EdgewiseError, match=r"to=\(7,\) lies outside layer '1', whose spatial shape is \(7,\)"):
        finite_difference_map(model, x, to=7, layer="1")
    assert len(copies) == 2 and all(hooks(c) == 0 for c in copies) and hooks(model) == 0
    assert model.training and all(m.training for m in model.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_bad_arguments_name_the_valid_values():
    conv = nn.Conv1d(1, 1, 3)
    x = torch.zeros(1, 1, 5)
    with pytest.raises(EdgewiseError, match=r"agg='l2': expected one of 'abs', 'sq', 'signed'"):
        finite_difference_map(conv, x, agg="l2")
    with pytest.raises(EdgewiseError, match=r"to='middle': expected 'all', 'center', 'each' or a position"):
        finite_difference_map(conv, x, to="middle")
    with pytest.raises(EdgewiseError, match=r"to=\(1, 1\) has 2 coordinate\(s\) but layer 'output' has 1 spatial"):
        finite_difference_map(conv, x, to=(1, 1))
    with pytest.raises(EdgewiseError, match=r"expected a tensor \(B, C, L\) or \(B, C, H, W\), got \(5,\)"):
        finite_difference_map(conv, torch.zeros(5))
    with pytest.raises(EdgewiseError, match="eps=0"):
        finite_difference_map(conv, x, eps=0)

"""The visualization engine's fast paths against the slow ones: channels-last layer forms (1×1 convolutions as
matrix products, pads as one copy), crops gathered and their gradients put back without autograd, and the
per-model memo (a second call proves nothing again and gives the same numbers)."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgewise import nets
from edgewise import visualize as V
from edgewise.visualize import fold, memo, window


class _MBBlock(nn.Module):
    """An EfficientNet-like block: 1×1 expansion, an unevenly zero-padded strided depthwise convolution,
    BatchNorms, ReLU6, a 1×1 projection; then a residual block of the same kind at stride 1."""

    def __init__(self, c=3, e=8, o=6):
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c, o, 3, stride=2, bias=False),
                                  nn.BatchNorm2d(o), nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(o, e, 1, bias=False), nn.BatchNorm2d(e), nn.ReLU6())
        self.dw = nn.Sequential(nn.ConstantPad2d((1, 2, 1, 2), 0.0), nn.Conv2d(e, e, 4, stride=2, groups=e),
                                nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(e, o, 1, bias=False), nn.BatchNorm2d(o))
        self.res = nn.Sequential(nn.Conv2d(o, e, 1), nn.ReLU6(), nn.Conv2d(e, e, 3, padding=1, groups=e),
                                 nn.ReLU6(), nn.Conv2d(e, o, 1))
        self.head = nn.Conv2d(o, 5, 3, padding=1)

    def forward(self, x):
        x = self.project(self.dw(self.expand(self.stem(x))))
        return self.head(x + self.res(x))


def _mb_net(seed=0):
    torch.manual_seed(seed)
    model = _MBBlock()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


class _OwnForward(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


def _forward_backward(model, x, g):
    x = x.detach().requires_grad_(True)
    y = model(x)
    y.backward(g)
    return y.detach(), x.grad


def test_channels_last_forms_give_the_plain_layers_values_and_gradients():
    model = _mb_net()
    x = torch.rand(2, 3, 24, 30, generator=torch.Generator().manual_seed(1))
    g = torch.randn(2, 5, 6, 8, generator=torch.Generator().manual_seed(2))
    cl = x.contiguous(memory_format=torch.channels_last)
    want_y, want_dx = _forward_backward(model, cl, g)
    with fold.channels_last_forms(model) as n:
        assert n == 4 + 2  # four 1×1 convolutions and two pads
        got_y, got_dx = _forward_backward(model, cl, g)
        plain_y, plain_dx = _forward_backward(model, x, g)  # a standard-layout input takes the layers as they are
    torch.testing.assert_close(got_y, want_y, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_dx, want_dx, rtol=1e-5, atol=1e-6)
    ref_y, ref_dx = _forward_backward(model, x, g)
    assert torch.equal(plain_y, ref_y) and torch.equal(plain_dx, ref_dx)
    assert not any("forward" in vars(m) for m in model.modules())


def test_the_one_copy_pad_is_bit_identical_to_f_pad():
    x = torch.randn(2, 5, 7, 9, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=torch.channels_last)
    for padding, value in (((0, 1, 0, 1), 0.0), ((2, 0, 3, 1), -1.5), ((0, 0, 0, 0), 0.0)):
        pad = nn.ConstantPad2d(padding, value)
        g = torch.randn(2, 5, 7 + padding[2] + padding[3], 9 + padding[0] + padding[1])
        want_y, want_dx = _forward_backward(pad, x, g)
        with fold.channels_last_forms(pad):
            got_y, got_dx = _forward_backward(pad, x, g)
        assert torch.equal(got_y, want_y) and torch.equal(got_dx, want_dx), padding
        assert got_y.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_forms_leave_other_layers_alone():
    strided, grouped, own = nn.Conv2d(4, 4, 1, stride=2), nn.Conv2d(4, 4, 1, groups=2), _OwnForward(4, 4, 1)
    padded, negative = nn.Conv2d(4, 4, 1, padding=1), nn.ConstantPad2d((-1, 1, 0, 0), 0.0)
    model = nn.Sequential(strided, grouped, own, padded, negative, nn.Conv1d(4, 4, 1))
    with fold.channels_last_forms(model) as n:
        assert n == 0 and not any("forward" in vars(m) for m in model.modules())


def _slices_with_autograd(canvas, crops, offset, grads):
    """The reference: each pass's crops sliced from a leaf with autograd, stacked, the gradients propagated."""
    leaf = canvas.detach().requires_grad_(True)
    rows = len(canvas) // len(crops.objectives)
    total = 0
    for objs, g in zip(crops.passes(rows), grads):
        parts = [leaf[p * rows:(p + 1) * rows, :, crops.starts[p][0] + offset[0]:][:, :, :crops.sizes[p][0],
                                                                                    crops.starts[p][1] + offset[1]:]
                 [..., :crops.sizes[p][1]] for p in objs]
        total = total + (torch.cat(parts) * g).sum()
    total.backward()
    return leaf.grad


def test_gathered_crops_and_their_gradients_match_slicing_with_autograd():
    model = nets.from_spec("conv3/c6, maxpool2, conv3/c6, conv3/c5", (3, 20, 28), seed=0)
    objs = [V.unit("conv3", 1, p) for p in ("center", "top_left", "bottom_right", "top", (4, 9))]
    for o in objs:
        o.check({"conv3": (5, 10, 14)})
    crops = window.plan(model, objs, (3, 20, 28))
    rows, offset = 3, (1, 2)
    canvas = torch.randn(len(objs) * rows, 3, 22, 30, generator=torch.Generator().manual_seed(0))
    passes = crops.passes(rows)
    gen = torch.Generator().manual_seed(1)
    xs = [crops.gather(canvas, group, offset) for group in passes]
    grads = [torch.randn(x.shape, generator=gen) for x in xs]
    got = torch.zeros_like(canvas)
    for group, x, g in zip(passes, xs, grads):
        assert x.is_contiguous(memory_format=torch.channels_last)
        crops.put(got, group, offset, g)
    want = _slices_with_autograd(canvas, crops, offset, grads)
    assert torch.equal(got, want)
    for group, x in zip(passes, xs):
        for i, p in enumerate(group):
            (r0, c0), (h, w) = crops.starts[p], crops.sizes[p]
            assert torch.equal(x[i * rows:(i + 1) * rows],
                               canvas[p * rows:(p + 1) * rows, :, r0 + 1:r0 + 1 + h, c0 + 2:c0 + 2 + w])


@pytest.mark.parametrize("jitter", [0, 1])
def test_the_fast_engine_on_an_efficientnet_like_net_gives_the_plain_forwards_results(jitter):
    model = _mb_net()
    shape = (3, 32, 40)
    objs = [V.unit("res", 2, p) for p in ("center", "top_left", "bottom_right", "right")]
    kw = dict(seeds=2, steps=5, jitter=jitter, preprocess=lambda x: (x - 0.45) / 0.25)
    full = V.maximize(model, objs, shape, crop=False, **kw)
    fast = V.maximize(model, objs, shape, **kw)
    assert fast.config["crop"] and not full.config["crop"]
    np.testing.assert_allclose(fast.values, full.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.final, full.final, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.images, full.images, atol=1e-4)
    assert not any("forward" in vars(m) or m._forward_hooks for m in model.modules())


def _counting(model):
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(tuple(a[0].shape)))
    return calls


def test_the_memo_proves_once_per_model_and_changes_nothing():
    memo.clear()
    model = _mb_net()
    calls = _counting(model)
    objs = [V.unit("res", 2, p) for p in ("center", "top_left")]
    kw = dict(seeds=2, steps=3, preprocess=torch.sigmoid)
    first = V.maximize(model, objs, (3, 32, 40), **kw)
    # the plain forward on the probe (one whole row), then each crop on it (one row each)
    assert calls.count((1, 3, 32, 40)) == 1 and len([c for c in calls if c[0] == 1]) == 3 and first.config["crop"]
    calls.clear()
    second = V.maximize(model, objs, (3, 32, 40), **kw)
    assert not [c for c in calls if c[0] == 1]  # nothing proved again: no probe
    memo.clear()
    calls.clear()
    third = V.maximize(model, objs, (3, 32, 40), **kw)
    assert calls.count((1, 3, 32, 40)) == 1
    for a, b in ((first, second), (first, third)):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.values, b.values)
        assert np.array_equal(a.final, b.final)
    # a new position, another preprocess or input shape is proved anew; a changed architecture forgets
    calls.clear()
    V.maximize(model, [V.unit("res", 2, "bottom_left")], (3, 32, 40), **kw)
    V.maximize(model, objs, (3, 32, 40), seeds=2, steps=1)
    assert calls.count((1, 3, 32, 40)) == 2
    known = memo.memo(model)
    assert known
    model.head = nn.Conv2d(6, 5, 5, padding=2)
    assert memo.memo(model) == {}


def test_a_failed_check_is_remembered_and_still_runs_the_full_input():
    model = nets.from_spec("conv3, conv3, conv3", (1, 16, 16), padding="circular", seed=0)
    objs = [V.unit("conv3", 0, p) for p in ("top_left", "center")]
    runs = [V.maximize(model, objs, (1, 16, 16), seeds=2, steps=3) for _ in range(2)]
    plain = V.maximize(model, objs, (1, 16, 16), seeds=2, steps=3, crop=False)
    for r in runs:
        assert not r.config["crop"]
        assert np.array_equal(r.images, plain.images) and np.array_equal(r.values, plain.values)


def test_a_second_call_still_checks_the_objectives_channels():
    model = _mb_net()
    V.maximize(model, V.unit("res", 2), (3, 32, 40), seeds=1, steps=1)
    with pytest.raises(Exception, match="channel 9 is outside layer 'res'"):
        V.maximize(model, V.unit("res", 9), (3, 32, 40), seeds=1, steps=1)
    with pytest.raises(Exception, match="outside the feature map"):
        V.maximize(model, V.unit("res", 1, (40, 0)), (3, 32, 40), seeds=1, steps=1)


def test_pad_and_matmul_forms_match_functional_references():
    x = torch.randn(3, 4, 5, 6, generator=torch.Generator().manual_seed(3)).contiguous(
        memory_format=torch.channels_last)
    conv = nn.Conv2d(4, 7, 1)
    with fold.channels_last_forms(conv):
        y = conv(x)
    torch.testing.assert_close(y, F.conv2d(x.contiguous(), conv.weight, conv.bias), rtol=1e-5, atol=1e-6)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_the_memo_stays_small_when_every_call_brings_a_new_preprocess():
    model = nets.from_spec("conv3/c4, conv3/c4", (1, 12, 12), seed=0)
    for k in range(memo.SIZE + 6):
        V.maximize(model, V.unit("conv2", 0, "top_left"), (1, 12, 12), seeds=1, steps=0,
                   preprocess=lambda x, k=k: x * (1 + k))
    assert len(memo.memo(model)) == memo.SIZE


def test_an_infinite_pixel_cap_puts_every_objective_of_a_size_in_one_pass():
    import math

    assert window.per_pass(math.inf, 10 ** 6) >= 10 ** 9 and window.per_pass(100, 30) == 3
    assert window.per_pass(10, 30) == 1


def test_a_second_model_object_of_the_same_architecture_finds_the_facts(monkeypatch):
    from edgewise.visualize import engine

    memo.clear()
    a, b = _mb_net(seed=0), _mb_net(seed=1)  # other weights, same architecture
    V.maximize(a, V.unit("res", 2, "top_left"), (3, 32, 40), seeds=1, steps=1)
    assert memo.memo(b) is memo.memo(a)
    seen = []
    plain = engine.forward_to
    monkeypatch.setattr(engine, "forward_to", lambda m, x, acts: seen.append(tuple(x.shape)) or plain(m, x, acts))
    V.maximize(b, V.unit("res", 2, "top_left"), (3, 32, 40), seeds=1, steps=1)
    assert seen and (1, 3, 32, 40) not in seen  # no probe: only the step's and the final crops
    b.register_forward_hook(lambda m, i, o: None)  # a hook: b's fingerprint is its own from here on
    assert memo.memo(b) == {}


class _Downsample(nn.Module):
    """A strided convolution plus an average pool: equal map sizes only for inputs of even length."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 2, 3, padding=1)
        self.conv = nn.Conv2d(2, 2, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Conv2d(2, 3, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.conv(x) + self.pool(x))


def _agree_verdicts(model):
    return {k[-1][1]: v for k, v in memo.memo(model).items() if k[0] == "agree" and k[-1] is not None}


def test_tight_crops_are_used_where_they_agree_and_the_grid_where_they_do_not():
    memo.clear()
    shape = (2, 20, 24)
    # plain padding: the tight crops (ending where the fields end, here in a partial stride) agree
    plain = nets.from_spec("conv3, conv3/s2, conv3, conv3", shape, seed=5)
    objs = [V.unit("conv4", 1, p) for p in ("center", "top_left")]
    for o in objs:
        o.check({"conv4": (8, 10, 12)})
    tight, grid = (window.plan(plain, objs, shape, tight=t) for t in (True, False))
    assert tight.sizes != grid.sizes and all(a <= b for t, g in zip(tight.sizes, grid.sizes) for a, b in zip(t, g))
    kw = dict(seeds=2, steps=4)
    fast, full = V.maximize(plain, objs, shape, **kw), V.maximize(plain, objs, shape, crop=False, **kw)
    assert fast.config["crop"] and list(_agree_verdicts(plain).values()) == [True]  # the tight plan, first
    np.testing.assert_allclose(fast.values, full.values, rtol=1e-4, atol=1e-5)
    # a sum of a strided convolution and a pool: an odd tight crop gives maps of unequal sizes; the grid's agree
    torch.manual_seed(0)
    odd = _Downsample().eval()
    objs = [V.unit("head", 1, p) for p in ("center", "top_left", "bottom_right")]
    fast, full = V.maximize(odd, objs, (2, 32, 32), **kw), V.maximize(odd, objs, (2, 32, 32), crop=False, **kw)
    verdicts = _agree_verdicts(odd)
    assert fast.config["crop"] and list(verdicts.values()) == [False, True]
    assert any(n % 2 for size in list(verdicts)[0] for n in size)  # the tight plan had odd crops
    np.testing.assert_allclose(fast.values, full.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.images, full.images, atol=1e-4)

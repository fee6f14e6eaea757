"""Activation maximisation: coordinates, objectives, the truncated forward, hooks, a seeded run that works."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import EdgewiseError, nets
from edgewise import visualize as V

SHAPE = (3, 20, 28)  # non-square on purpose


def net(seed=0):
    return nets.from_spec("conv3/c6, maxpool2, conv3/c6, conv3/c5", SHAPE, seed=seed)


def no_hooks(model):
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_anchors_on_a_non_square_map():
    shape = (10, 14)
    assert V.resolve("top_left", shape) == (0, 0)
    assert V.resolve("bottom_right", shape) == (9, 13)
    assert V.resolve("top_right", shape) == (0, 13) and V.resolve("bottom_left", shape) == (9, 0)
    assert V.resolve("center", shape) == (4, 6) and V.resolve("top", shape) == (0, 6)
    assert V.resolve("left", shape) == (4, 0) and V.resolve((9, 13), shape) == (9, 13)
    assert V.resolve("start", (7,)) == (0,) and V.resolve("end", (7,)) == (6,) and V.resolve(3, (7,)) == (3,)
    with pytest.raises(EdgewiseError, match=r"position \(10, 0\) is outside the feature map of 'x', whose spatial "
                                            r"shape is \(10, 14\) \(row, col\)"):
        V.resolve((10, 0), shape, "x")
    with pytest.raises(EdgewiseError, match="unknown position 'middle_top'.*one of center, top"):
        V.resolve("middle_top", shape)


def test_corner_unit_really_is_the_corner():
    model = net()
    acts = V.activations(model, torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(1)), "conv3")["conv3"]
    assert acts.shape[2:] == (10, 14)
    for anchor, (r, c) in {"top_right": (0, 13), "bottom_left": (9, 0)}.items():
        obj = V.unit("conv3", 2, anchor)
        assert torch.equal(obj({"conv3": acts}), acts[:, 2, r, c])
        assert obj.index == (r, c)
    tiled = V.channel("conv3", 4)
    assert torch.allclose(tiled({"conv3": acts}), acts[:, 4].mean((1, 2)))


def test_objective_arithmetic():
    acts = {"a": torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)}
    u, v = V.unit("a", 1, (2, 3)), V.unit("a", 0, "top_left")
    combo = 2 * u - v + 0.5 * V.channel("a", 2)
    expected = 2 * acts["a"][:, 1, 2, 3] - acts["a"][:, 0, 0, 0] + 0.5 * acts["a"][:, 2].mean((1, 2))
    assert torch.allclose(combo(acts), expected)
    assert combo.layers() == {"a"} and torch.allclose((-u)(acts), -acts["a"][:, 1, 2, 3])


def test_truncated_forward_equals_the_full_models_activation():
    model = net()
    x = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(2))
    full = {}
    handle = model.conv2.register_forward_hook(lambda m, i, o: full.setdefault("conv2", o))
    model(x)
    handle.remove()
    calls = []
    later = model.conv3.register_forward_hook(lambda m, i, o: calls.append(1))
    got = V.activations(model, x, "conv2")["conv2"]
    later.remove()
    assert torch.equal(got, full["conv2"]) and calls == []  # conv3 never ran
    assert no_hooks(model)


def test_hooks_are_removed_after_success_and_after_an_error():
    model = net()
    V.maximize(model, V.unit("conv2", 0), SHAPE, seeds=1, steps=1)
    assert no_hooks(model)
    with pytest.raises(EdgewiseError, match="channel 9 is outside layer 'conv3', which has 5 channels"):
        V.maximize(model, V.unit("conv3", 9), SHAPE, seeds=1, steps=1)
    assert no_hooks(model)
    with pytest.raises(EdgewiseError, match="Sequential has no layer 'conv4'; did you mean 'conv3', 'conv2', 'conv1'"):
        V.maximize(model, V.unit("conv4", 0), SHAPE, seeds=1, steps=1)
    assert no_hooks(model)

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    model.relu1 = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        V.activations(model, torch.zeros(1, *SHAPE), "conv3")
    assert no_hooks(model)


def test_weights_and_modes_are_left_as_they_were():
    model = net().train()
    model.conv1.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    V.maximize(model, V.unit("conv3", 1), SHAPE, seeds=2, steps=3)
    assert model.training and not model.conv1.weight.requires_grad and model.conv2.weight.requires_grad
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_seeded_short_run_increases_the_objective_and_is_reproducible():
    model = net()
    objs = [V.unit("conv3", 1, p) for p in ("center", "top_left", "bottom_right")]
    a = V.maximize(model, objs, SHAPE, seeds=3, steps=40, lr=0.05)
    assert a.images.shape == (3, 3, *SHAPE) and a.values.shape == (40, 3, 3) and a.final.shape == (3, 3)
    assert 0 <= a.images.min() and a.images.max() <= 1
    assert (a.values[-5:].mean(0) > a.values[:5].mean(0)).all()  # every position, every seed
    assert a.objectives == ["unit('conv3', 1, (4, 6))", "unit('conv3', 1, (0, 0))", "unit('conv3', 1, (9, 13))"]
    b = V.maximize(model, objs, SHAPE, seeds=3, steps=40, lr=0.05)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.final, b.final)
    c = V.maximize(model, objs, SHAPE, seeds=3, steps=40, lr=0.05, seed=1)
    assert not np.array_equal(a.images, c.images)
    # the seeds of one position start from different images and end at different ones
    assert not np.allclose(a.images[0, 0], a.images[0, 1])


@pytest.mark.parametrize("param", ["pixels", "fourier"])
def test_parameterisations_without_jitter_report_what_the_model_saw(param):
    model = net()
    vis = V.maximize(model, V.unit("conv2", 3, "center"), SHAPE, seeds=2, steps=5, param=param, jitter=0)
    with torch.no_grad():
        acts = V.activations(model, torch.from_numpy(vis.images[0]), "conv2")["conv2"]
    r, c = V.resolve("center", acts.shape[2:])
    assert np.allclose(acts[:, 3, r, c].numpy(), vis.final[0], atol=1e-5)
    # without jitter, the last step's objective is the final one before the last update
    assert vis.values.shape == (5, 1, 2)


def test_bad_arguments():
    model = net()
    with pytest.raises(EdgewiseError, match="unknown parameterisation 'fft'; choose one of fourier, pixels"):
        V.maximize(model, V.unit("conv2", 0), SHAPE, param="fft")
    with pytest.raises(EdgewiseError, match="needs one or more objectives"):
        V.maximize(model, [], SHAPE)
    with pytest.raises(EdgewiseError, match="seeds must be"):
        V.maximize(model, V.unit("conv2", 0), SHAPE, seeds=0)


def test_results_render_in_a_notebook():
    model = net()
    vis = V.maximize(model, [V.unit("conv2", 0, p) for p in ("center", "top_left")], SHAPE, seeds=2, steps=2)
    assert "data:image/png;base64," in vis._repr_html_()
    pd = V.position_dependence(model, "conv2", 0, SHAPE, ("center", "top_left"), seeds=2, steps=2)
    assert "data:image/png;base64," in pd._repr_html_()


class _Branches(nn.Module):
    """A depthwise convolution, then two branches (3×3 and dilated 3×3) concatenated, then a strided conv."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.a = nn.Conv2d(6, 4, 3, padding=1)
        self.b = nn.Conv2d(6, 4, 3, padding=2, dilation=2)
        self.down = nn.Conv2d(8, 5, 3, stride=2, padding=1)
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.3

    def forward(self, x):
        x = torch.relu(self.dw(torch.relu(self.stem(x))))
        return self.down(torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1))


def _batchnorm_net():
    """conv → BatchNorm → ReLU twice (the second strided; the first conv without bias) → conv, in eval mode with
    non-trivial running statistics."""
    g = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Conv2d(6, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.Conv2d(6, 4, 3, padding=1))
    for name, t in model.state_dict().items():
        if t.is_floating_point():
            t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "var" in name or "weight" in name and t.ndim == 1
                    else torch.randn(t.shape, generator=g) * 0.3)
    return model.eval()


CROP_CASES = {  # name: (model, input shape, layer)
    "strided, dilated, pooled": (nets.from_spec("conv3, conv3/s2, conv3/d2, maxpool2, conv3", (3, 32, 40), seed=1),
                                 (3, 32, 40), "conv4"),
    "residual": (nets.from_spec("conv3, res(conv3, conv3), maxpool2, res(conv3, conv3)", (3, 28, 28), seed=2),
                 (3, 28, 28), "res2"),
    "reflect": (nets.from_spec("conv3, maxpool2, conv3, conv3", (2, 24, 30), padding="reflect", seed=3),
                (2, 24, 30), "conv3"),
    "depthwise, branching": (_Branches(), (3, 26, 30), "down"),
    "1-D": (nets.from_spec("conv5, maxpool2, conv3, conv3/s2", (2, 64), seed=4), (2, 64), "conv3"),
    "batchnorm (folded)": (_batchnorm_net(), (3, 24, 24), "6"),
}


@pytest.mark.parametrize("case", list(CROP_CASES))
@pytest.mark.parametrize("param", ["pixels", "fourier"])
def test_receptive_field_crops_give_the_full_inputs_results(case, param):
    model, shape, layer = CROP_CASES[case]
    anchors = ("center", "top_left", "bottom_right", "top", "right") if len(shape) == 3 else ("center", "start", "end")
    objs = [V.unit(layer, 1, p) for p in anchors]
    kw = dict(seeds=2, steps=6, param=param, jitter=1)
    full = V.maximize(model, objs, shape, crop=False, **kw)
    cropped = V.maximize(model, objs, shape, **kw)
    assert cropped.config["crop"] and not full.config["crop"], case
    # float summation order differs between crop and full input: equal to a few ulps, not bit for bit
    np.testing.assert_allclose(cropped.values, full.values, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cropped.final, full.final, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(cropped.images, full.images, atol=1e-4)
    assert no_hooks(model)


def test_crops_fall_back_to_the_full_input_where_they_would_not_be_exact():
    # circular padding: a border unit reads the far side of the image, outside its clipped box
    model = nets.from_spec("conv3, conv3, conv3", (1, 16, 16), padding="circular", seed=0)
    objs = [V.unit("conv3", 0, p) for p in ("top_left", "center")]
    a = V.maximize(model, objs, (1, 16, 16), seeds=2, steps=3)
    b = V.maximize(model, objs, (1, 16, 16), seeds=2, steps=3, crop=False)
    assert not a.config["crop"] and np.array_equal(a.images, b.images) and np.array_equal(a.values, b.values)
    # a whole-channel objective reads every position: no crop
    tiled = V.maximize(net(), V.channel("conv3", 0), SHAPE, seeds=1, steps=1)
    assert not tiled.config["crop"]


def test_device_defaults_to_the_models_and_cpu_gives_the_same_result():
    model = net()
    objs = [V.unit("conv3", 1, p) for p in ("center", "top_left")]
    a = V.maximize(model, objs, SHAPE, seeds=2, steps=3)
    b = V.maximize(model, objs, SHAPE, seeds=2, steps=3, device="cpu")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.values, b.values)
    pd = V.position_dependence(model, "conv3", 1, SHAPE, ("center", "top_left"), seeds=2, steps=2, device="cpu")
    assert pd.images.shape[:2] == (2, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_device_cuda_runs_there_and_leaves_the_model_where_it_was():
    model = net()
    objs = [V.unit("conv3", 1, p) for p in ("center", "top_left")]
    a = V.maximize(model, objs, SHAPE, seeds=2, steps=3, param="pixels")
    b = V.maximize(model, objs, SHAPE, seeds=2, steps=3, param="pixels", device="cuda")
    assert all(p.device.type == "cpu" for p in model.parameters())
    np.testing.assert_allclose(a.final, b.final, rtol=1e-3, atol=1e-4)


def test_the_crop_plan_holds_each_receptive_field_on_the_stride_grid():
    from edgewise.visualize import window

    objs = [V.unit("conv3", 1, p) for p in ("center", "top_left", "bottom_right")]
    for o in objs:
        o.check({"conv3": (5, 10, 14)})
    crops = window.plan(net(), objs, SHAPE)
    # conv3 of conv3, maxpool2, conv3, conv3: field 14 px, stride 2; clipped at the image border
    assert crops.starts == [(2, 6), (0, 0), (12, 20)] and crops.sizes == [(14, 14), (8, 8), (8, 8)]
    assert crops.groups == [((14, 14), [0]), ((8, 8), [1, 2])]
    assert [repr(o) for o in crops.objectives] == ["unit('conv3', 1, (3, 3))", "unit('conv3', 1, (0, 0))",
                                                   "unit('conv3', 1, (3, 3))"]
    canvas = torch.arange(3 * 2 * 3 * 22 * 30, dtype=torch.float32).reshape(6, 3, 22, 30)  # 3 objectives × 2 rows
    passes = crops.passes(2, cap=2 * 64)  # at most 128 pixels a pass: the 8×8 group splits in two
    assert passes == [[0], [1], [2]] and crops.passes(2) == [[0], [1, 2]]
    assert torch.equal(crops.gather(canvas, passes[2], (1, 1)), canvas[4:6, :, 13:21, 21:29])
    assert torch.equal(crops.gather(canvas, [1, 2], (1, 1)),
                       torch.cat([canvas[2:4, :, 1:9, 1:9], canvas[4:6, :, 13:21, 21:29]]))


def test_a_model_split_over_devices_is_refused():
    model = net()
    model.conv1.to("meta")
    with pytest.raises(EdgewiseError, match="several devices"):
        V.maximize(model, V.unit("conv3", 0), SHAPE, seeds=1, steps=1, device="cpu")
    assert no_hooks(model)


def test_folded_batchnorms_are_restored_and_recorded_layers_are_not_folded():
    from edgewise.visualize.fold import folded

    model = _batchnorm_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = model(x)
        with folded(model, keep={"4"}) as n:  # the second BatchNorm is recorded: only the first pair folds
            assert n == 1 and "forward" in vars(model[1]) and "forward" not in vars(model[4])
            got = model(x)
    torch.testing.assert_close(got, plain, rtol=1e-5, atol=1e-5)
    assert model[0].bias is None and "forward" not in vars(model[1])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    vis = V.maximize(model, V.unit("3", 0), (3, 24, 24), seeds=1, steps=2)
    assert vis.config["crop"] and model[0].bias is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

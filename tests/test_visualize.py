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

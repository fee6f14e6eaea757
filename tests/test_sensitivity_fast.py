"""The fast Monte-Carlo sensitivity (issue 17): the loop engine against the vmap engine and the per-model reference,
the builder replay against real builds, the engine choice and ``device=``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from edgewise import _init, models, nets
from edgewise import sensitivity as S
from edgewise.testing.random_nets import BLOCKS, random_net

F64 = torch.float64
# no up-sampling: nearest neighbours create exact ties that max pooling splits differently with rounding
SMOOTH_ENOUGH = tuple(k for k in BLOCKS if k != "upsample")


def _reference(net, shape, seed, n_inits, to="all", layer=None):
    """Each initialisation's map the slow way: a re-initialised copy per seed, one gradient map each."""
    maps = []
    for s in S._init_seeds(seed, n_inits):
        x, _ = S._init_inputs(s, shape, 1, None)
        maps.append(S.gradient_map(S.reinitialise(net, s), x, to=to, agg="sq", layer=layer, dtype=F64).map)
    return np.stack(maps)


# ------------------------------------------------------------------ the two engines agree

@settings(derandomize=True, max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_net(kinds=SMOOTH_ENOUGH, max_blocks=4), to=st.sampled_from(["all", "center", "each"]))
def test_loop_and_vmap_engines_agree_on_random_nets(case, to):
    """Residual, branching, strided, dilated, pooled, normalised, gated, concatenating: one loop step per
    initialisation gives the vmap engine's samples (float64, to rounding)."""
    loop = S.init_sensitivity(case.model, case.input_shape, to=to, n_inits=3, seed=1, chunk=1, dtype=F64,
                              init="default")
    vmapped = S.init_sensitivity(case.model, case.input_shape, to=to, n_inits=3, seed=1, chunk=3, dtype=F64,
                                 init="default")
    np.testing.assert_allclose(loop.samples, vmapped.samples, rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("spec,shape,layer,to,n_samples", [
    ("conv3/s2, conv5/d2, maxpool2, conv3", (2, 17, 13), None, (1, 2), 1),      # strided, dilated, pooled
    ("conv3, res(conv3, conv3), conv3/c4, avgpool2, fc5", (1, 12, 12), None, "all", 2),  # residual, head
    ("4*conv3", (3, 20), "conv3", 7, 2),                                        # 1-D, inner layer
    ("3*conv3", (1, 10, 10), None, "each", 2),                                  # random signs
])
def test_the_loop_engine_is_the_per_model_reference(spec, shape, layer, to, n_samples):
    net = nets.from_spec(spec, shape, width=4)
    res = S.init_sensitivity(net, shape, to=to, n_inits=3, seed=4, chunk=1, dtype=F64, layer=layer,
                             n_samples=n_samples)
    if n_samples == 1:
        np.testing.assert_allclose(res.samples, _reference(net, shape, 4, 3, to, layer), rtol=1e-10)
    again = S.init_sensitivity(net, shape, to=to, n_inits=3, seed=4, chunk=2, dtype=F64, layer=layer,
                               n_samples=n_samples)
    np.testing.assert_allclose(res.samples, again.samples, rtol=1e-9)


def test_the_loop_engine_in_float32_and_on_given_inputs():
    """The model's own dtype (no cast copy) and a batch every initialisation reads."""
    shape = (1, 12, 12)
    net = nets.from_spec("conv3, res(conv3, conv3), conv3", shape, width=4)
    batch = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0))
    a = S.init_sensitivity(net, shape, n_inits=4, seed=2, chunk=1, inputs=batch)
    b = S.init_sensitivity(net, shape, n_inits=4, seed=2, chunk=4, inputs=batch)
    assert a.samples.dtype == np.float64 and a.map.shape == (12, 12)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-4)


def test_the_loop_is_deterministic_and_leaves_the_model_and_global_rng_alone():
    net = nets.from_spec("3*conv3", (1, 16, 16), width=4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    a = S.init_sensitivity(net, (1, 16, 16), n_inits=3, seed=7, chunk=1)
    b = S.init_sensitivity(net, (1, 16, 16), n_inits=3, seed=7, chunk=1)
    c = S.init_sensitivity(net, (1, 16, 16), n_inits=3, seed=8, chunk=1)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, c.samples)
    assert torch.equal(state, torch.random.get_rng_state())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.requires_grad for p in net.parameters())


def test_on_chunk_is_called_per_initialisation_in_the_loop():
    calls = []
    S.init_sensitivity("2*conv3", (1, 8, 8), n_inits=3, chunk=1, on_chunk=lambda d, n: calls.append((d, n)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# ------------------------------------------------------------------ which engine

def test_the_engine_follows_the_work_of_one_forward_pass():
    assert S.engine(S.LOOP_FLOPS) == "loop" and S.engine(S.LOOP_FLOPS / 2) == "vmap"
    from edgewise import limits

    deep = nets.from_spec("16*conv3", (1, 64, 64), width=32)  # issue 17's deep narrow net: 1.1 GFLOP
    assert S.engine(limits.forward_cost(deep, (1, 64, 64))[1]) == "loop"
    tiny = nets.from_spec("4*conv3", (1, 24), width=16)
    assert S.engine(limits.forward_cost(tiny, (1, 24))[1]) == "vmap"


@pytest.mark.parametrize("spec, shape, width, expected", [
    (nets.DEFAULT_SPEC, (1, 64, 64), 8, "vmap"),  # the report's net: 8.6 MFLOP, 0.7 MB of activations
    (nets.DEFAULT_SPEC, (1, 128, 128), 8, "loop"),  # 34 MFLOP, but 2.9 MB of activations
    ("8*conv3", (1, 4096), 8, "vmap"),  # 11 MFLOP, 1.97 MB
    ("4*conv3", (1, 32, 32), 32, "vmap"),  # 57 MFLOP, 0.9 MB: stacked, still near the core
])
def test_a_light_net_with_large_activations_loops(spec, shape, width, expected):
    from edgewise import limits

    acts, flops = limits.forward_cost(nets.from_spec(spec, shape, width=width), shape)
    assert flops < S.LOOP_FLOPS and S.engine(flops, acts) == expected
    assert S.engine(flops) == "vmap"  # (the FLOPs alone)


def test_the_engine_thresholds():
    assert S.engine(0, S.LOOP_ACTIVATIONS) == S.engine(S.LOOP_FLOPS, 0) == "loop"
    assert S.engine(S.LOOP_FLOPS * 0.99, S.LOOP_ACTIVATIONS * 0.99) == "vmap"


def test_init_sensitivity_runs_the_engine_chosen_for_the_net(monkeypatch):
    """``chunk=None`` runs what :func:`engine` chooses from the net's FLOPs and activations."""
    ran = []
    loop, vmapped = S._Run.loop, S._Run.vmapped
    monkeypatch.setattr(S._Run, "loop", lambda self, seed: ran.append("loop") or loop(self, seed))
    monkeypatch.setattr(S._Run, "vmapped", lambda self, seeds: ran.append("vmap") or vmapped(self, seeds))
    S.init_sensitivity(nets.DEFAULT_SPEC, (1, 128, 128), n_inits=2)
    S.init_sensitivity(nets.DEFAULT_SPEC, (1, 32, 32), n_inits=2)
    assert ran == ["loop", "loop", "vmap"]


# ------------------------------------------------------------------ the builder replay

tv = pytest.importorskip("torchvision")


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "densenet121"])
def test_the_builder_replay_is_bit_identical_to_a_build(name):
    model = models.load(f"torchvision:{name}")
    plan = _init.plan(model)
    assert plan.method == "builder" and _init._replay(plan.builder) is not None
    for seed in (0, 2**31 + 5):
        _init.apply(model, plan, seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ref = tv.models.get_model(name, weights=None).state_dict()
        assert all(torch.equal(ref[k], v) for k, v in model.state_dict().items())


def test_the_replay_skips_overwritten_draws_but_not_their_place_in_the_stream():
    replay = _init._replay(("torchvision", "resnet18", {}))
    dead = [s for s in replay.steps if s.key is None]
    # every convolution's default kaiming_uniform_ is replaced by the builder's kaiming_normal_: their 32-bit
    # numbers (one per weight) are taken two at a time as int64 values, in chunks, before the first live draw
    # (the BatchNorm running statistics' fills, which draw nothing, may come between)
    model = tv.models.resnet18()
    words = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(s.op is torch.ops.aten.random_.default for s in dead)
    assert sum(s.shape[0] * (2 if s.dtype == torch.int64 else 1) for s in dead) == words
    assert max(s.shape[0] for s in dead) == _init.SKIP_CHUNK
    first_live = next(i for i, s in enumerate(replay.steps) if s.key is not None and _init._draws(s.op))
    assert replay.steps.index(dead[-1]) < first_live
    assert {s.key for s in replay.steps if s.key} >= {"conv1.weight", "fc.weight", "fc.bias", "bn1.weight"}


@pytest.mark.parametrize("words", [0, 1, 2, 7, 2 * _init.SKIP_CHUNK + 3])
def test_skipping_takes_as_many_numbers_from_the_stream_as_float_uniform_draws(words):
    """The steps that skip overwritten draws leave the generator where ``words`` float32 ``uniform_`` values do."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        for step in _init._skip(words):
            step.op(torch.empty(step.shape, dtype=step.dtype), *step.args, **step.kwargs)
        after_skip = torch.rand(4)
        torch.manual_seed(11)
        torch.empty(words).uniform_()
        after_draws = torch.rand(4)
    assert torch.equal(after_skip, after_draws)


def test_the_replay_into_another_dtype_and_a_subset_of_the_tensors():
    """A float64 copy gets the float32 draws (as the build and copy did); a model holding only some of the
    builder's tensors (a traced cut) gets those, and the stream of the others is still consumed."""
    model = models.load("torchvision:resnet18")
    plan = _init.plan(model)
    double = model.double()
    _init.apply(double, plan, 3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        ref = tv.models.resnet18(weights=None).state_dict()
    assert double.fc.weight.dtype == F64 and torch.equal(double.fc.weight, ref["fc.weight"].double())
    cut = _init.keep_builder(model, torch.fx.symbolic_trace(model))
    del cut.fc
    _init.apply(cut, _init.plan(cut), 3)
    assert torch.equal(cut.get_submodule("layer4.1.conv2").weight.float(), ref["layer4.1.conv2.weight"])


class _Drawn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.token = nn.Parameter(torch.randn(4))  # an out-of-place draw: not replayed, built instead


def test_a_builder_that_cannot_be_replayed_is_built(monkeypatch):
    builder = ("torchvision", "not-a-real-builder", {})
    monkeypatch.setattr(_init, "_build", lambda b, device=None: _Drawn())
    monkeypatch.setitem(_init._REPLAYS, repr(builder), _init._record(builder))
    assert _init._REPLAYS[repr(builder)] is None
    model = _Drawn()
    _init.apply(model, _init.InitPlan("builder", builder=builder), 5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = _Drawn()
    assert torch.equal(model.token, ref.token) and torch.equal(model.conv.weight, ref.conv.weight)


# ------------------------------------------------------------------ device=

def test_device_defaults_to_the_models_parameters():
    assert S.device_of("2*conv3", None) == torch.device("cpu")
    assert S.device_of(nn.Conv2d(1, 1, 3), None) == torch.device("cpu")
    assert S.device_of(nn.ReLU(), None) == torch.device("cpu")
    assert S.device_of(nn.Conv2d(1, 1, 3), "cpu") == torch.device("cpu")
    net = nets.from_spec("3*conv3", (1, 10, 10), width=3)
    a = S.init_sensitivity(net, (1, 10, 10), n_inits=3, device="cpu")
    b = S.init_sensitivity(net, (1, 10, 10), n_inits=3)
    np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("chunk", [1, 3])
def test_a_cuda_model_runs_on_cuda_with_the_cpu_draws(chunk):
    net = nets.from_spec("3*conv3", (1, 10, 10), width=3)
    cpu = S.init_sensitivity(net, (1, 10, 10), n_inits=3, chunk=chunk, dtype=F64)
    gpu = S.init_sensitivity(net.cuda(), (1, 10, 10), n_inits=3, chunk=chunk, dtype=F64)
    np.testing.assert_allclose(gpu.samples, cpu.samples, rtol=1e-9)
    cpu_net = nets.from_spec("3*conv3", (1, 10, 10), width=3)
    for kwargs in ({"device": "cuda"}, {}):  # device None: the model's (a CUDA model's inputs go there too)
        g = S.gradient_map(cpu_net.cuda() if not kwargs else cpu_net, (1, 10, 10), dtype=F64, **kwargs)
        np.testing.assert_allclose(g.map, S.gradient_map(cpu_net.cpu(), (1, 10, 10), dtype=F64).map, rtol=1e-9)
    p = S.perturbation(cpu_net.cuda(), (1, 10, 10), n_signs=8)
    assert p.single.shape == (10, 10)

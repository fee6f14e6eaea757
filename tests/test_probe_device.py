"""The probes' ``device=`` and dtype: every tensor a probe makes follows the model (its device and floating dtype),
``device="cpu"`` is the default on a CPU model, a bad device is an EdgewiseError, the model stays where it was,
and the cache tells dtypes apart. CUDA checks skip where no GPU is present."""

import contextlib
import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise.errors import EdgewiseError
from edgewise.probe import ablate, bias, blind_spots, explain_border1d, explain_ratio, perturb, readout, units
from edgewise.probe._common import CACHE_VERSION, conv_shapes, tensor_kind
from edgewise.probe.units import default_at
from edgewise.testing.planted import planted_detector

SHAPE = (1, 16, 16)
N = 8
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
#: the perturbation baseline re-initialises these test nets with torch's defaults, as it says
pytestmark = pytest.mark.filterwarnings("ignore:the own initialisation of:UserWarning")


class ResidualNet(nn.Module):
    """A small classifier with a strided residual block, a 1×1 strided shortcut and a BatchNorm with
    non-trivial statistics."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.down = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.body = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.skip = nn.Conv2d(6, 8, 1, stride=2)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = torch.relu(self.bn(self.body(torch.relu(self.down(h)))) + self.skip(h))
        return self.fc(h.mean((2, 3)))


def residual_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ResidualNet()
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def planted() -> nn.Module:
    return planted_detector()[0].eval()


def _units_then_ablate(model, shape, **kw):
    found = units(model, shape, n=N, progress=False, **kw)
    return found, ablate(model, found, shape, n=N, progress=False, **kw)


#: probe → (model factory, input shape, call returning one result or a tuple of them)
PROBES = {
    "bias": (residual_net, SHAPE, lambda m, s, **kw: bias(m, s, data="digits", n=N, progress=False, **kw)),
    "blind_spots": (residual_net, SHAPE,
                    lambda m, s, **kw: blind_spots(m, s, stride=4, size=6, progress=False, **kw)),
    "units": (planted, (1, 28, 28), _units_then_ablate),
    "readout": (residual_net, SHAPE,
                lambda m, s, **kw: readout(m, s, data="digits", n=N, progress=False, **kw)),
    "perturb": (residual_net, SHAPE,
                lambda m, s, **kw: perturb(m, s, data="digits", n=3, stride=5, n_inits=1, eps=0.1, progress=False,
                                           **kw)),
}
#: tolerance of float32 against float64, relative and (times each array's largest magnitude) absolute: a few
#: float32 roundings through a handful of layers; looser where a result is a difference of two float32 forward
#: passes (the ablation's output change, the perturbation's difference quotient at eps=0.1) or a ridge fit
RTOL = {"bias": 1e-4, "blind_spots": 1e-4, "units": 1e-3, "readout": 1e-3, "perturb": 1e-3}


def _results(out) -> tuple:
    return out if isinstance(out, tuple) else (out,)


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _unchanged(model, before: dict) -> bool:
    after = model.state_dict()
    return set(after) == set(before) and all(after[k].dtype == v.dtype and after[k].device == v.device and
                                              torch.equal(after[k], v) for k, v in before.items())


def _assert_same(a, b, rtol: float = 0.0, exact_flags: bool = True) -> None:
    """Every field of two results equal: arrays within ``rtol`` (0: bit for bit), the rest exactly."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            assert y.dtype == x.dtype, f.name  # results come back in the same numpy dtypes whatever the model's
            if rtol == 0:
                np.testing.assert_array_equal(x, y, err_msg=f.name)
            else:
                scale = float(np.nanmax(np.abs(x))) if np.isfinite(x).any() else 0.0
                np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale, equal_nan=True, err_msg=f.name)
        elif isinstance(x, np.ndarray):
            if exact_flags or rtol == 0:
                np.testing.assert_array_equal(x, y, err_msg=f.name)
        elif rtol == 0 or (isinstance(x, (str, bool)) and f.name != "fingerprint"):  # float64 weights hash apart
            assert x == y, f.name


# ------------------------------------------------------------------------------------- dtype follows the model

@pytest.mark.parametrize("probe", PROBES)
def test_float64_model_matches_float32_and_stays_float64(probe):
    make, shape, run = PROBES[probe]
    m32 = make()
    m64 = copy.deepcopy(m32).double()
    before = _state(m64)
    r32, r64 = _results(run(m32, shape)), _results(run(m64, shape))
    for a, b in zip(r32, r64):
        _assert_same(a, b, RTOL[probe])
    assert _unchanged(m64, before)  # the float64 model computed in float64 and was left as it was


def test_a_real_network_in_float64():
    """torchvision's ResNet-18 (random weights, BatchNorm statistics made non-trivial) at 3×32×32: the bias maps and
    the padding-aware units of its float64 copy are its float32 ones."""
    torchvision = pytest.importorskip("torchvision")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        m32 = torchvision.models.resnet18(weights=None, num_classes=10).eval()
        for m in m32.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    m64 = copy.deepcopy(m32).double()
    shape, layers = (3, 32, 32), ["conv1", "layer1.0.conv1", "layer2.0.conv1", "layer2.0.downsample.0"]
    for probe in (bias, units):
        a, b = (probe(m, shape, data="noise", n=4, layers=layers, progress=False) for m in (m32, m64))
        _assert_same(a, b, 1e-3)


def test_units_float64_finds_the_planted_unit_with_the_same_effect():
    model = planted()
    r32, r64 = units(model, (1, 28, 28), n=N, progress=False), units(copy.deepcopy(model).double(), (1, 28, 28),
                                                                      n=N, progress=False)
    assert r64.found.tolist() == r32.found.tolist() and len(r64.found) >= 1
    np.testing.assert_allclose(r64.effect, r32.effect, rtol=1e-4, atol=1e-6, equal_nan=True)


def test_float64_perturbation_resolves_a_nudge_below_float32_resolution():
    """A nudge of 1e-9 vanishes in float32 inputs (x + 1e-9 == x for x of order 1), not in float64: the float64
    model's map at that nudge is its map at a comfortable 1e-4 (the net is piecewise linear), the float32 one's is
    rounding noise. A probe that built float32 inputs for the float64 model could not show this."""
    m64 = residual_net().double()
    opts = dict(data="digits", n=2, stride=5, baseline=None, progress=False)
    tiny, ref = perturb(m64, SHAPE, eps=1e-9, **opts), perturb(m64, SHAPE, eps=1e-4, **opts)
    np.testing.assert_allclose(tiny.trained, ref.trained, rtol=1e-3, atol=1e-3 * ref.trained.max())
    m32 = perturb(residual_net(), SHAPE, eps=1e-9, **opts)
    assert not np.allclose(m32.trained, ref.trained, rtol=0.1)


@contextlib.contextmanager
def default_dtype(dtype):
    was = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(was)


@pytest.mark.parametrize("probe", PROBES)
def test_float32_model_under_a_float64_default_dtype(probe):
    """With torch's default dtype float64, a tensor a probe made without the model's dtype (``torch.zeros(shape)``)
    would be float64 and the float32 convolutions would refuse it."""
    make, shape, run = PROBES[probe]
    model = make()
    with default_dtype(torch.float64):
        got = _results(run(model, shape))
    for a, b in zip(got, _results(run(model, shape))):
        _assert_same(a, b, RTOL[probe])
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_zero_input_passes_follow_the_model():
    m64 = residual_net().double()
    assert tensor_kind(m64) == {"device": torch.device("cpu"), "dtype": torch.float64}
    assert tensor_kind(nn.ReLU()) == {"device": torch.device("cpu"), "dtype": torch.float32}
    assert list(conv_shapes(m64, SHAPE)) == ["stem", "down", "body", "skip"]  # the order they run in
    assert conv_shapes(m64, SHAPE)["down"] == (1, 8, 8, 8)


def test_default_at_runs_one_forward_pass():
    from edgewise.probe import subject

    model = residual_net()
    calls = []
    handle = model.register_forward_pre_hook(lambda m, a: calls.append(a[0].dtype))
    try:
        at = default_at(subject(model, SHAPE))
    finally:
        handle.remove()
    assert calls == [torch.float32]
    assert at == "skip"  # the deepest convolution (in running order) whose map is at least 16 // 4 wide


# -------------------------------------------------------------------------------------------------- device=

@pytest.mark.parametrize("probe", PROBES)
def test_explicit_cpu_equals_the_default(probe):
    make, shape, run = PROBES[probe]
    model = make()
    before = _state(model)
    for a, b in zip(_results(run(model, shape)), _results(run(model, shape, device="cpu"))):
        _assert_same(a, b)
    assert _unchanged(model, before)


@pytest.mark.parametrize("probe", PROBES)
@pytest.mark.parametrize("device, message", [("gpu7", "is not a torch device"),
                                             ("meta", "holds shapes but no numbers")]
                         + ([] if torch.cuda.is_available() else [("cuda", "is not available here")]))
def test_a_bad_device_is_an_edgewise_error(probe, device, message):
    make, shape, run = PROBES[probe]
    model = make()
    before = _state(model)
    with pytest.raises(EdgewiseError, match=message):
        run(model, shape, device=device)
    assert _unchanged(model, before)


@pytest.mark.parametrize("explain", [explain_border1d, explain_ratio])
def test_the_explanations_check_their_device_before_any_work(explain):
    with pytest.raises(EdgewiseError, match="is not a torch device"):
        explain(device="gpu7", progress=False)


def test_the_cache_keys_name_the_device_and_dtype(tmp_path):
    model = residual_net()
    opts = dict(data="digits", n=N, progress=False, cache=tmp_path)
    first = bias(model, SHAPE, **opts)
    again = bias(model, SHAPE, device="cpu", **opts)  # the same key: read back
    _assert_same(first, again)
    bias(copy.deepcopy(model).double(), SHAPE, **opts)
    keys = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("bias-*/key.json"))]
    assert sorted(k["run"]["dtype"] for k in keys) == ["float32", "float64"]
    assert {k["run"]["device"] for k in keys} == {"cpu"} and {k["v"] for k in keys} == {CACHE_VERSION}


def test_a_float64_tensor_of_inputs_keeps_its_precision():
    from edgewise.probe import inputs, subject

    x = torch.rand((4, *SHAPE), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert inputs(subject(residual_net(), SHAPE), x).dtype == torch.float64
    m64 = residual_net().double()
    r = perturb(m64, SHAPE, data=x, n=4, eps=1e-9, stride=5, baseline=None, progress=False)
    ref = perturb(m64, SHAPE, data=x, n=4, eps=1e-4, stride=5, baseline=None, progress=False)
    np.testing.assert_allclose(r.trained, ref.trained, rtol=1e-3, atol=1e-3 * ref.trained.max())


# ----------------------------------------------------------------------------------------------------- CUDA

@cuda
@pytest.mark.parametrize("probe", PROBES)
def test_cuda_matches_the_cpu_and_the_model_comes_back(probe):
    make, shape, run = PROBES[probe]
    model = make()
    before = _state(model)
    on_cpu = _results(run(model, shape))
    on_gpu = _results(run(model, shape, device="cuda"))
    for a, b in zip(on_cpu, on_gpu):
        _assert_same(a, b, RTOL[probe], exact_flags=False)
    assert _unchanged(model, before)  # moved for the call, back on the CPU bit for bit


@cuda
@pytest.mark.parametrize("probe", PROBES)
def test_a_model_on_the_gpu_is_probed_there_by_default(probe):
    make, shape, run = PROBES[probe]
    model = make().cuda()
    before = _state(model)
    on_gpu = _results(run(model, shape))
    on_cpu = _results(run(copy.deepcopy(model).cpu(), shape))
    for a, b in zip(on_cpu, on_gpu):
        _assert_same(a, b, RTOL[probe], exact_flags=False)
    assert _unchanged(model, before) and next(model.parameters()).is_cuda

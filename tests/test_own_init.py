"""Monte-Carlo sensitivity with the architecture's own initialisation (issue 15): builder, module, default."""

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from edgewise import _init, models, nets, remedies
from edgewise import sensitivity as S
from edgewise.errors import EdgewiseError, EdgewiseWarning

torchvision = pytest.importorskip("torchvision")
F64 = torch.float64


@pytest.fixture(scope="module")
def resnet18():
    return models.load("torchvision:resnet18")


def _std_close(t: torch.Tensor, expected: float, rel: float = 0.1) -> bool:
    return abs(float(t.detach().std()) - expected) < rel * expected


# ------------------------------------------------------------------ (a) builder vs torch's default

def test_auto_uses_the_torchvision_builder_and_its_kaiming_fan_out(resnet18):
    assert getattr(resnet18, _init.BUILDER_ATTR) == ("torchvision", "resnet18", {})
    own = S.reinitialise(resnet18, seed=3)
    default = S.reinitialise(resnet18, seed=3, init="default")
    assert own.edgewise_init == "builder" and default.edgewise_init == "default"
    for name in ("conv1", "layer1.0.conv1", "layer3.1.conv2"):
        w_own, w_def = own.get_submodule(name).weight, default.get_submodule(name).weight
        o, i, kh, kw = w_own.shape
        assert _std_close(w_own, math.sqrt(2 / (o * kh * kw))), name      # kaiming_normal_, fan_out, relu
        assert _std_close(w_def, 1 / math.sqrt(3 * i * kh * kw)), name    # kaiming_uniform_(a=√5): bound/√3
    assert torch.all(own.bn1.weight == 1) and torch.all(own.bn1.bias == 0)
    assert not torch.equal(own.conv1.weight, resnet18.conv1.weight)  # the caller's model is untouched


def test_builder_weights_are_a_fresh_build_under_the_seed(resnet18):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    own = S.reinitialise(resnet18, seed=7)
    assert torch.equal(state, torch.random.get_rng_state())  # the global stream is left alone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ref = torchvision.models.resnet18(weights=None)
    for k, v in ref.state_dict().items():
        assert torch.equal(own.state_dict()[k], v), k


def test_a_traced_copy_keeps_the_builder(resnet18):
    """A torch.fx GraphModule (what cutting a model at a layer gives) drops attributes on deepcopy; the builder
    mark is carried over, and its tensors (a subset of the builder's) get the builder's weights."""
    gm = _init.keep_builder(resnet18, torch.fx.symbolic_trace(resnet18))
    own, ref = S.reinitialise(gm, seed=3), S.reinitialise(resnet18, seed=3)
    assert own.edgewise_init == "builder" and torch.equal(own.conv1.weight, ref.conv1.weight)


def test_a_torchvision_model_built_outside_edgewise_is_recognised():
    net = torchvision.models.resnet34(weights=None)
    assert _init.builder_of(net) == ("torchvision", "resnet34", {})
    assert _init.builder_of(torchvision.models.resnet18(weights=None)) == ("torchvision", "resnet18", {})


def test_timm_models_rerun_create_model():
    timm = pytest.importorskip("timm")
    net = timm.create_model("resnet18", pretrained=False, num_classes=7)
    assert _init.builder_of(net)[:2] == ("timm", "resnet18")
    own = S.reinitialise(net, seed=5)
    assert own.edgewise_init == "builder"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = timm.create_model("resnet18", pretrained=False, num_classes=7)
    assert torch.equal(own.conv1.weight, ref.conv1.weight) and torch.equal(own.fc.weight, ref.fc.weight)
    marked = _init.mark_builder(timm.create_model("resnet18", pretrained=False, num_classes=3), "timm", "resnet18",
                                {"num_classes": 3})
    assert _init.plan(marked).builder == ("timm", "resnet18", {"num_classes": 3})


def test_a_remedy_keeps_the_builder_and_its_new_weights_get_their_default(resnet18):
    net = remedies.apply(resnet18, "coordconv", layers=["conv1"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = _init.plan(net)
    assert not [w for w in caught if issubclass(w.category, EdgewiseWarning)]
    assert p.method == "builder" and p.defaulted == ("conv1.coord_weight",)
    own = S.reinitialise(net, seed=1)
    ref = S.reinitialise(resnet18, seed=1)
    assert torch.equal(own.conv1.weight, ref.conv1.weight)
    assert float(own.conv1.coord_weight.detach().abs().max()) > 0  # drawn, not left at the remedy's zero start


# ------------------------------------------------------------------ (b) seeds

@pytest.mark.parametrize("init", ["builder", "default"])
def test_same_seed_same_weights_other_seed_other_weights(resnet18, init):
    a, b, c = (S.reinitialise(resnet18, seed, init=init) for seed in (1, 1, 2))
    for k in ("conv1.weight", "layer2.0.downsample.0.weight", "fc.weight"):
        wa, wb, wc = (m.state_dict()[k] for m in (a, b, c))
        assert torch.equal(wa, wb) and not torch.equal(wa, wc), k


# ------------------------------------------------------------------ (c) spec nets, own methods, unknown classes

def test_spec_nets_use_torch_default_without_a_warning():
    """A spec net is built from torch.nn / edgewise layers only: their defaults are its own initialisation."""
    net = nets.from_spec("4*conv3", (1, 16, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = S.init_sensitivity(net, (1, 16, 16), n_inits=2)
        again = S.reinitialise(net, seed=0)
    assert res.init == "default" and again.edgewise_init == "default"
    assert not [w for w in caught if issubclass(w.category, EdgewiseWarning)]
    with pytest.raises(EdgewiseError, match="no builder is known for Sequential"):
        S.reinitialise(net, init="builder")
    with pytest.raises(EdgewiseError, match="defines its own init method"):
        S.reinitialise(net, init="module")


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        nn.init.normal_(self.conv.weight, std=2.0)  # inline: invisible from outside

    def forward(self, x):
        return self.conv(x)


class _OwnInit(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 16, 3, padding=1)
        self.head = nn.Linear(16, 2)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=0.5)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.conv(x).mean(dim=(2, 3)))


def test_an_unknown_class_falls_back_to_the_default_with_a_warning():
    with pytest.warns(EdgewiseWarning, match="own initialisation of _Plain is unknown"):
        res = S.init_sensitivity(_Plain(), (1, 8, 8), n_inits=3)
    assert res.init == "default"
    with warnings.catch_warnings(record=True) as caught:  # asked for explicitly: no warning
        warnings.simplefilter("always")
        net = S.reinitialise(_Plain(), init="default")
    assert not [w for w in caught if issubclass(w.category, EdgewiseWarning)]
    assert _std_close(net.conv.weight, 1 / math.sqrt(3 * 9), rel=0.5)


def test_a_models_own_init_method_is_run_after_the_layer_defaults():
    net = _OwnInit()
    plan = _init.plan(net)
    assert plan.method == "module" and plan.calls == (("", "_init_weights", "apply"),)
    a, b = S.reinitialise(net, seed=4), S.reinitialise(net, seed=4)
    assert a.edgewise_init == "module" and torch.equal(a.conv.weight, b.conv.weight)
    assert _std_close(a.conv.weight, 0.5, rel=0.15) and torch.all(a.conv.bias == 0)
    assert not torch.equal(a.head.weight, net.head.weight)  # the layers the method leaves alone: their default
    d = S.reinitialise(net, seed=4, init="default")
    assert d.edgewise_init == "default" and _std_close(d.conv.weight, 1 / math.sqrt(3 * 36), rel=0.2)


def test_bad_init_arguments_say_what_to_do():
    with pytest.raises(EdgewiseError, match="init='kaiming': expected one of 'auto', 'default'"):
        S.init_sensitivity("conv3", (1, 6, 6), n_inits=2, init="kaiming")
    with pytest.raises(EdgewiseError, match="pass one of them"):
        S.reinitialise("conv3", std=0.1, init="builder", input_shape=(1, 6, 6))
    assert S.reinitialise("conv3", std=0.1, input_shape=(1, 6, 6)).edgewise_init == "std"


# ------------------------------------------------------------------ (d) the effective field on ResNet-18

def test_vectorised_builder_initialisations_equal_a_loop_over_models(resnet18):
    """The stacked-parameter path draws exactly the builder's weights of each per-init seed."""
    shape = (3, 32, 32)
    res = S.init_sensitivity(resnet18, shape, n_inits=2, seed=1, chunk=2, dtype=F64)
    assert res.init == "builder"
    for seed, sample in zip(S._init_seeds(1, 2), res.samples):
        x, _ = S._init_inputs(seed, shape, 1, None)
        ref = S.gradient_map(S.reinitialise(resnet18, seed), x, agg="sq", dtype=F64)
        np.testing.assert_allclose(sample, ref.map, rtol=1e-8)


def test_resnet18_own_init_concentrates_the_effective_field(resnet18):
    """Measured (README): with torch's default init the residual branches are weak (std ~2.4× smaller than
    kaiming fan_out, ×1/6 variance per conv in eval mode), the skip paths dominate and the field is flat;
    the model's own init gives a Gaussian-like effective field about the centre."""
    shape = (3, 64, 64)
    own = S.init_sensitivity(resnet18, shape, n_inits=4, seed=0, init="auto")
    default = S.init_sensitivity(resnet18, shape, n_inits=4, seed=0, init="default")
    assert own.init == "builder" and default.init == "default"
    so, sd = own.summary, default.summary
    assert so["area_ratio"]["50"] < 0.6 * sd["area_ratio"]["50"]  # half the sensitivity in a much smaller area
    assert so["log10_center_corner_ratio"] > sd["log10_center_corner_ratio"] + 0.3
    assert max(so["gaussian_sigma"]) < 32  # a bump inside the 64×64 input; the default's is flat (σ ≫ 64 or none)
    assert all(not (s < 2 * max(so["gaussian_sigma"])) for s in sd["gaussian_sigma"])


# ------------------------------------------------------------------ (e) every saved result says which init

def test_the_method_is_saved_with_the_result(tmp_path):
    res = S.init_sensitivity("2*conv3", (1, 8, 8), n_inits=2)
    d = res.to_dict()
    assert d["init"] == "default" and d["std"] is None
    assert S.init_sensitivity("2*conv3", (1, 8, 8), n_inits=2, std=0.2).to_dict()["init"] == "std"
    written = res.save(tmp_path)
    saved = [json.loads(p.read_text()) for p in written if p.suffix == ".json"]
    assert saved and all(s["init"] == "default" for s in saved)
    assert S.gradient_map("2*conv3", (1, 8, 8)).to_dict()["init"] is None


def test_a_referenced_model_is_built_under_a_fixed_seed_and_leaves_the_random_state():
    """`edgewise sensitivity timm:seresnet18 --weights` gave centre/corner 2.66× in one run and 5.41× in the next:
    the builder drew the model's weights from whatever state torch's generator was in. They are now those of
    `torch.manual_seed(0); build()`, and the caller's stream goes on as if nothing had been drawn."""
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    expected = torchvision.models.resnet18(weights=None).state_dict()
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    for _ in range(2):
        got = models.load("torchvision:resnet18").state_dict()
        assert all(torch.equal(expected[k], v) for k, v in got.items())
    assert torch.equal(torch.random.get_rng_state(), state)


def test_zero_scales_name_the_norms_a_builder_starts_at_zero_and_the_map_says_what_stays_silent():
    """timm's SE-ResNet-18 starts the last BatchNorm of each of its 8 residual branches at weight 0 (zero_init_last):
    at initialisation every block passes its shortcut alone, and the 1×1/2 shortcuts read one position in two, so
    most input pixels have exactly zero sensitivity in every initialisation. Both facts are kept with the result
    and said in words; torchvision's ResNet-18 (zero_init_residual=False) starts none at zero."""
    pytest.importorskip("timm")
    from edgewise.facts import silent_words

    net = models.load("timm:seresnet18")
    p = _init.plan(net)
    assert _init.zero_scales(p, net) == [f"layer{i}.{j}.bn2" for i in range(1, 5) for j in range(2)]
    assert all(not net.get_submodule(n).weight.any() for n in _init.zero_scales(p, net))
    assert _init.zero_scales(_init.plan(models.load("torchvision:resnet18")), models.load("torchvision:resnet18")) == []
    assert _init.zero_scales(_init.plan(net, "default"), net) == []  # (torch's defaults start every weight at 1)
    r = S.init_sensitivity(net, (3, 32, 32), n_inits=2, seed=0)
    zero = int((r.map == 0).sum())
    assert r.zero_scales == _init.zero_scales(p, net) and r.zero_positions == zero and 0 < zero < r.map.size
    assert r.to_dict()["zero_positions"] == zero and r.first(2).zero_scales == r.zero_scales
    text = silent_words(zero, r.map.size, "px", r.zero_scales)
    assert text == (f"{zero} of 1024 px ({100 * zero / 1024:.1f} %) have exactly zero sensitivity: no "
                    "initialisation's gradient reaches them; its builder starts 8 normalisation layers at weight 0 in "
                    "each initialisation (layer1.0.bn2, layer1.1.bn2, layer2.0.bn2 and 5 more), so each outputs its "
                    "bias whatever its input")
    own = S.gradient_map(net, (3, 32, 32), agg="sq")  # (the loaded model's own weights: the builder's under seed 0)
    assert own.zero_scales == r.zero_scales and own.zero_positions > 0
    assert silent_words(own.zero_positions, 1024, "px", own.zero_scales, over="input").endswith(
        "no input's gradient reaches them; its weights hold 8 normalisation layers at weight 0 (layer1.0.bn2, "
        "layer1.1.bn2, layer2.0.bn2 and 5 more), so each outputs its bias whatever its input")
    assert silent_words(0, 1024, "px", []) == ""
    assert silent_words(1, 8, "samples", ["bn"]).endswith("(bn), so it outputs its bias whatever its input")


def test_a_map_zero_at_the_centre_is_said_in_words_not_as_nan(tmp_path):
    """`edgewise answer timm:seresnet18 -i 3x32x32` read "the expected squared gradient at the centre is nan that at
    the corner (95 % interval nan … nan)", "nan× larger" and, for the perturbation, "2.85e+10× less" (rounding
    error over rounding error): at 32 px its centre has exactly zero sensitivity. Those ends are now said as what
    they are, and a zero centre over a positive border is a ratio of 0, not 0/0."""
    pytest.importorskip("timm")
    from edgewise.answer import answer
    from edgewise.facts import zero_ends

    a = answer("timm:seresnet18", (3, 32, 32), out=tmp_path, n_inits=2)
    assert "nan" not in a.text.lower().replace("nonoverlapping", "")
    assert a.facts["init_sensitivity"]["center_corner_ratio"] == 0.0
    assert "the expected squared gradient is exactly 0 at the centre and positive on average over the 4 corners" \
        in a.text
    assert "moves the output by rounding error alone where the gradient is exactly 0" in a.text
    assert zero_ends(2.0, "corner") is None and zero_ends(math.nan, "end") == (
        "exactly 0 at the centre and at every end", "both")
    assert zero_ends(math.inf, "corner")[1] == "border" and zero_ends(0.0, "end")[0].endswith("over the 2 ends")

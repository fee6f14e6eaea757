"""The paths that can carry a gradient at initialisation: path counts with the layers that start silent cut out
(``pathways(cut=...)``, :mod:`edgewise.live`), said beside the Monte-Carlo sensitivity and read back by the report's
checker."""

import json
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn as nn

from edgewise import models, trace
from edgewise import sensitivity as S
from edgewise.errors import EdgewiseError
from edgewise.facts import live_words
from edgewise.live import live_facts, live_pathways
from edgewise.pathways import pathways


class Block(nn.Module):
    """conv → [conv → bn → conv → the same bn] + shortcut → strided conv: the branch can be cut at its norm."""

    def __init__(self, branch: bool = True):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.branch = branch
        self.conv1 = nn.Conv2d(3, 3, 5, padding=2)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.down = nn.Conv2d(3, 2, 1, stride=2)
        self.head = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        if self.branch:
            x = x + self.bn(self.conv2(self.bn(self.conv1(x))))
        return self.head(self.down(x))


@pytest.mark.parametrize("to", ["all", "center", (2, 3)])
def test_cut_counts_equal_those_of_the_model_written_without_the_branch(to):
    """Cutting the norm (both of its calls) leaves exactly the paths of the model that has no branch, in exact
    integers; the counts of the uncut model differ, and the result records what was cut."""
    shape = (1, 12, 12)
    g = trace(Block(), shape)
    calls = [n.name for n in g if n.name.split("#")[0] == "bn"]
    assert len(calls) == 2
    cut = pathways(g, to=to, exact=True, cut=calls)
    plain = pathways(trace(Block(branch=False), shape), to=to, exact=True)
    assert cut.counts.tolist() == plain.counts.tolist() and cut.cut == tuple(calls)
    assert pathways(g, to=to, exact=True).counts.tolist() != plain.counts.tolist()
    assert np.allclose(pathways(g, to=to, cut=calls).counts.astype(float), plain.counts.astype(float), rtol=1e-12)
    assert cut.to_dict()["cut"] == calls and g.cut([]) is g


def test_cutting_the_input_or_an_unknown_layer_is_refused():
    g = trace(Block(), (1, 8, 8))
    with pytest.raises(EdgewiseError, match="it is the input"):
        g.cut([g.input])
    with pytest.raises(EdgewiseError, match="no layer named 'bnn'.*Did you mean 'bn'"):
        pathways(g, cut=["bnn"])
    with pytest.raises(EdgewiseError, match="does not depend on the input"):
        pathways(g, cut=["down"])  # (every path passes through it)


def test_live_words_say_what_the_facts_hold():
    facts = {"cut": ["a.bn", "b.bn"], "no_path": 48, "positions": 64, "zero_sensitivity": 48, "same_zeros": True,
             "log_correlation": 0.7012}
    assert live_words(facts, "px") == ("counting only the paths that avoid them, 48 of 64 px have none: exactly the "
                                       "positions whose sensitivity is zero; the sensitivity's log map correlates "
                                       "with those paths' log counts at r = 0.70")
    assert live_words({**facts, "same_zeros": False, "zero_sensitivity": 50}, "px").startswith(
        "counting only the paths that avoid them, 48 of 64 px have none, against 50 with zero sensitivity;")
    assert live_words({**facts, "cut": ["bn", "bn#1"], "no_path": 0, "zero_sensitivity": 0, "same_zeros": True,
                       "log_correlation": float("nan")}, "samples") == "every sample has a path that avoids it"
    assert live_words(None, "px") == ""


@pytest.fixture(scope="module")
def seresnet():
    pytest.importorskip("timm")
    return models.load("timm:seresnet18")


def test_the_paths_that_avoid_the_zero_norms_are_where_the_sensitivity_is(seresnet):
    """timm's SE-ResNet-18 starts bn2 of each block at weight 0. Its Monte-Carlo sensitivity is exactly zero at
    most pixels, and those are exactly the pixels with no path that avoids the 8 norms; the sensitivity follows
    the paths left (r > 0.5) and not all paths (r < 0)."""
    shape = (3, 32, 32)
    r = S.init_sensitivity(seresnet, shape, n_inits=4, seed=0)
    g = trace(seresnet, shape)
    live = live_pathways(r, g)
    f = live_facts(r, live)
    assert live.cut == tuple(r.zero_scales) and len(r.zero_scales) == 8
    assert f["same_zeros"] and f["no_path"] == r.zero_positions == f["zero_sensitivity"] and 0 < f["no_path"] < 1024
    assert f["log_correlation"] > 0.5
    from edgewise.maps import log_correlation

    assert log_correlation(r.map, pathways(g).counts) < 0
    assert live_pathways(S.init_sensitivity(nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 8, 8), n_inits=2), None) is None


def test_cli_says_it(seresnet, capsys, tmp_path):
    from edgewise.cli import main

    assert main(["sensitivity", "timm:seresnet18", "-i", "3x32x32", "--inits", "2", "--out", str(tmp_path)]) == 0
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    saved = np.load(tmp_path / "pathways_live.log10.npy")
    n = int(np.isinf(saved).sum())
    assert (f"Counting only the paths that avoid them, {n} of 1024 px have none: exactly the positions whose "
            "sensitivity is zero; the sensitivity's log map correlates with those paths' log counts at r = ") in text
    assert json.loads((tmp_path / "pathways_live.json").read_text())["cut"][0] == "layer1.0.bn2"
    assert main(["sensitivity", "timm:seresnet18", "-i", "3x32x32", "--inits", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["live_paths"]["no_path"] == n and out["live_paths"]["same_zeros"]


def test_the_verdict_says_it_and_the_checker_reads_it_back(tmp_path):
    """The verdict's "N of M px have none" and "exactly the positions whose sensitivity is zero" hold only while
    the saved count of the paths left and the saved sensitivity map say so."""
    from edgewise.report.verdict import _silent
    from edgewise.testing.claims import _SPAN, _check_claim

    zero = np.ones((8, 8))
    zero[2:, :] = 0
    np.save(tmp_path / "sensitivity_init.map.npy", zero)
    (tmp_path / "sensitivity_init.json").write_text(json.dumps({"zero_scale_layers": ["a.bn2"]}))
    live = np.where(zero > 0, 1.0, -np.inf)
    np.save(tmp_path / "pathways_live.log10.npy", live)
    facts = {"cut": ["a.bn2"], "no_path": 48, "positions": 64, "zero_sensitivity": 48, "same_zeros": True,
             "log_correlation": 0.5}
    q4 = {"zero_positions": 48, "positions": 64, "zero_scales": ["a.bn2"], "live_paths": facts}

    def problems():
        block = _silent(q4, "px")
        return block, [p for kind, key, of, text in _SPAN.findall(block) if kind == "claim"
                       for p in _check_claim(key, of, tmp_path, {}, {}, text)]

    block, found = problems()
    assert found == [] and 'data-claim="no-path"' in block and 'data-claim="same-zeros"' in block
    assert 'data-field="q4.live_paths.log_correlation">0.50<' in block
    live[0, 0] = -np.inf  # one more position without a path: both claims are now false
    np.save(tmp_path / "pathways_live.log10.npy", live)
    _, found = problems()
    assert found == ["says 48 of 64 positions have no path that avoids the silent layers, the saved map has 49 of 64",
                     "says the positions without such a path are those of zero sensitivity, but 1 positions differ"]


def test_a_report_on_a_model_with_silent_branches_passes_its_checker(seresnet, tmp_path):
    from edgewise.report import build
    from edgewise.testing.claims import check_report

    build([seresnet], [(3, 32, 32)], out=tmp_path, n_inits=2, remedy_inits=0, progress=False)
    assert check_report(tmp_path) == []
    page = (tmp_path / "index.html").read_text()
    assert 'data-claim="no-path"' in page and 'data-claim="same-zeros"' in page
    assert list(tmp_path.glob("data/*/pathways_live.log10.npy"))


class LayerScaled(nn.Module):
    """A patchify stem (2×2/2: every pixel read once), a residual block whose branch is multiplied by a layer scale
    ``gamma`` (as ConvNeXt's), a global mean: through the shortcut alone every pixel has the same paths."""

    def __init__(self, gamma: float = 1e-6):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 2, stride=2)
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.gamma = nn.Parameter(torch.full((4,), gamma))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = self.stem(x)
        x = x + torch.relu(self.conv(x)) * self.gamma.view(1, -1, 1, 1)
        return self.head(x.mean((2, 3)))


def test_a_layer_scale_is_recorded_and_a_small_one_mutes_its_branch():
    """The Graph records which product multiplies by which parameter (a product of two live tensors, SE's gate,
    is none); a scale the initialisation keeps at 1e-6 is named, cut, and the paths left are uniform."""
    shape = (1, 8, 8)
    g = trace(LayerScaled(), shape)
    assert list(g.scales.values()) == ["gamma"] and g[next(iter(g.scales))].kind == "identity"
    r = S.init_sensitivity(LayerScaled(), shape, n_inits=2, seed=0, init="default")  # (gamma: kept as it is)
    assert "gamma" in r.fixed and r.small_scales == {"gamma": pytest.approx(1e-6)}
    assert r.to_dict()["small_scale_parameters"] == r.small_scales and r.first(2).small_scales == r.small_scales
    f = live_facts(r, live_pathways(r, g))
    assert f["uniform"] and f["no_path"] == 0 and f["cut"] == list(g.scales)
    assert not live_facts(r, pathways(g))["uniform"]  # (all the paths: the branch's 3×3 windows are not)
    assert S.init_sensitivity(LayerScaled(0.5), shape, n_inits=2, init="default").small_scales == {}
    assert S.gradient_map(LayerScaled(), shape, agg="sq").small_scales == {"gamma": pytest.approx(1e-6)}
    assert S.gradient_map(LayerScaled(0.5), shape, agg="sq").small_scales == {}


def test_scaled_and_uniform_words():
    from edgewise.facts import scaled_words

    small = {f"s{i}.gamma": 1e-6 for i in range(5)}
    assert scaled_words(small) == ("in every initialisation, 5 parameters that multiply a layer's output (s0.gamma, "
                                   "s1.gamma, s2.gamma and 2 more) are at most 1e-06 in magnitude, so a gradient "
                                   "through any of them is scaled by that or less")
    assert scaled_words({"g": 0.001}, over="input") == (
        "in its weights, 1 parameter that multiplies a layer's output (g) is at most 0.001 in magnitude, so a "
        "gradient through it is scaled by that or less")
    assert scaled_words({}) == ""
    facts = {"cut": ["mul"], "no_path": 0, "positions": 64, "zero_sensitivity": 0, "same_zeros": True,
             "uniform": True, "log_correlation": float("nan")}
    assert live_words(facts, "px") == "counting only the paths that avoid it, the same number reach every px (max = min)"


@pytest.mark.filterwarnings("ignore:the own initialisation")
def test_a_report_on_a_layer_scaled_model_says_why_its_sensitivity_is_flat(tmp_path):
    """The verdict names the layer scales and says the paths that avoid them are uniform; the checker reads the
    count, the largest scale and the uniformity back, and refuses each once the saved data says otherwise."""
    from edgewise.report import build
    from edgewise.testing.claims import check_report

    build([LayerScaled()], [(1, 16, 16)], out=tmp_path, n_inits=2, remedy_inits=0, progress=False)
    assert check_report(tmp_path) == []
    page = (tmp_path / "index.html").read_text()
    for claim in ("small-scales", "small-scale-max", "live-uniform"):
        assert f'data-claim="{claim}"' in page
    (data,) = tmp_path.glob("data/*/")
    saved = json.loads((data / "sensitivity_init.json").read_text())
    saved["small_scale_parameters"] = {"gamma": 1e-6, "other": 1e-5}
    (data / "sensitivity_init.json").write_text(json.dumps(saved))
    live = np.load(data / "pathways_live.log10.npy")
    live[0, 0] += 1
    np.save(data / "pathways_live.log10.npy", live)
    found = " ".join(check_report(tmp_path))
    assert "says 1 for small-scales, the saved result gives 2" in found
    assert "says 1e-06 for small-scale-max, the saved result gives 1e-05" in found
    assert "says every position has the same number of paths that avoid the silent layers" in found


@pytest.mark.filterwarnings("ignore:the own initialisation")
def test_the_answer_says_it_for_both_sets_of_weights():
    """`edgewise answer` names the tiny layer scales and the uniform paths left at initialisation and, the model's
    own weights holding them too, for its weights; a module given as such is not said to have random weights."""
    from edgewise.answer import answer

    a = answer(LayerScaled(), (1, 16, 16), n_inits=2)
    init, own = (next(line for line in a.text.splitlines() if line.startswith(f"- **{head}")) for head in
                 ("Sensitivity at initialisation", "With this model's weights"))
    assert "In every initialisation, 1 parameter that multiplies a layer's output (`gamma`) is at most 1e-06" in init
    assert "In its weights, 1 parameter that multiplies a layer's output (`gamma`) is at most 1e-06" in own
    for line in (init, own):
        assert "Counting only the paths that avoid it, the same number reach every px (max = min)." in line
    assert own.startswith("- **With this model's weights** (8 inputs)") and a.facts["own_weights"]["random_weights"] is None


def _brute_path_layers(g, target):
    """(fewest, most, all) weighted layers over every input → target path, enumerated one by one."""
    counts, seen, up = [], set(), g.upstream(target)

    def walk(name, n, on):
        if name == target:
            counts.append(n)
            seen.update(on)
            return
        for c in g.consumers(name):
            if c in up:
                weighted = g[c].kind in ("conv", "linear")
                walk(c, n + weighted, on | {c} if weighted else on)

    walk(g.input, 0, frozenset())
    return min(counts), max(counts), len(seen)


@pytest.mark.parametrize("which", ["chain", "block", "resnet18"])
def test_path_layers_equal_every_path_enumerated(which):
    """The theory's L: how many convolutions and Linear layers the paths pass, at fewest and at most, and how many
    lie on them, from one pass over the Graph, equal to enumerating every path (a chain: all three equal)."""
    from edgewise import nets

    if which == "chain":
        g = trace(nets.from_spec("5*conv3, maxpool2, 2*conv3", (1, 16, 16)), (1, 16, 16))
    elif which == "block":
        g = trace(Block(), (1, 8, 8))
    else:
        pytest.importorskip("torchvision")
        g = trace(models.load("torchvision:resnet18"), (3, 32, 32))
    assert g.path_layers() == _brute_path_layers(g, g.output)
    expected = {"chain": (7, 7, 7), "block": (3, 5, 5), "resnet18": (5, 18, 21)}[which]
    assert g.path_layers() == expected


def test_theory_words_say_whether_every_path_weighs_the_same():
    from edgewise.facts import theory_words

    chain, branches = theory_words((6, 6, 6)), theory_words((5, 18, 21))
    assert chain.endswith("Every path of this model passes the same 6 weighted layers (convolutions and Linear "
                          "layers), so for its linear version, where each layer's weights share one variance, that "
                          "expectation is proportional to the path counts.")
    assert branches.endswith("This model's paths pass 5 to 18 of its 21 weighted layers (convolutions and Linear "
                             "layers), so they do not all weigh the same, and for its linear version that expectation "
                             "need not follow the path counts.")
    assert "(5, 5, 6)" not in theory_words((5, 5, 6)) and "pass 5 to 5 of its 6" in theory_words((5, 5, 6))


def test_the_sensitivity_figure_names_the_paths_left():
    """The green curve's legend and the caption name what the paths avoid, in the figure's own words."""
    from edgewise.report.figures import panel_text
    from edgewise.report.sensitivity import _live_label, plot_sensitivity

    r = S.init_sensitivity(LayerScaled(), (1, 8, 8), n_inits=2, seed=0, init="default")
    g = trace(LayerScaled(), (1, 8, 8))
    fig = plot_sensitivity(r, paths=pathways(g), live=live_pathways(r, g))
    assert "with the path counts and the paths avoiding the scale ≤ 1e-06" in panel_text(fig)
    assert _live_label(replace(r, zero_scales=["a.bn", "b.bn"], small_scales={})) == \
        "paths avoiding the 2 zero-weight norms"

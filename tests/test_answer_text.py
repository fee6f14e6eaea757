"""The answer's sentences (``edgewise answer``, ``edgewise.answer``) say what the engines' numbers say, for models
where the words differ: unread positions and ends, uniform counts, a global layer, a narrow or an even spread."""

import math
import re

import numpy as np
import pytest

import edgewise
from edgewise import nets
from edgewise.answer import answer


@pytest.fixture(scope="module")
def question():
    return answer("conv64/s4, conv64/s4", (1, 256), n_inits=2, perturb=False)


def line(text: str, start: str) -> str:
    return next(x for x in text.splitlines() if x.startswith(start))


def test_a_ratio_over_an_unread_end_says_so_and_max_min_is_over_the_positions_read(question):
    """The non-overlapping remedy never reads the last 31 samples: its centre/end ratio divides by the mean of
    one end with paths and one without, and its max/min is over the positions it reads."""
    f = question.facts["alternatives"]
    for name, v in f.items():
        if v["uniform"]:
            continue
        said = line(question.text, f"- {name}:")
        assert ("over the positions read" in said) == bool(v["unread"]), said
        assert ("over all positions" in said) == (not v["unread"]), said
        unread_anchor = bool(v["unread_anchors"]["center"] or v["unread_anchors"]["corner"])
        assert ("no path, zeros in the ratio's mean" in said) == unread_anchor, said
    said = line(question.text, "- nonoverlapping:")
    assert ("centre/end 2× (1 of its 2 ends has no path, zeros in the ratio's mean), max/min 1× over the positions "
            "read; never reads 31 samples (the last 31 samples, 225–255)") in said


def test_the_spread_of_the_centre_units_paths_is_set_against_an_even_one(question):
    """68.3 samples against √((256² − 1)/12) = 73.9 for the 256 samples its 316-sample field covers, not against
    the field's size (the answer once set 68.3 beside 316 and called the effective field √depth-wide); 8 %
    narrower is not "only" (a tenth or more is)."""
    e = question.facts["erf"]
    assert e["even_std"] == [pytest.approx(math.sqrt((256**2 - 1) / 12))] and e["rf_size"] == [316.0]
    said = line(question.text, "- The path counts to the centre unit")
    assert e["center_paths_sigma"][0] > 0.9 * 73.9  # narrower, but by less than a tenth: not "only"
    assert (f"of {e['center_paths_sigma'][0]:.1f} samples, against 73.9 samples for an even spread over the "
            "positions its receptive field (316 samples) covers.") in said
    assert "grows like" not in question.text and "follows the path counts" not in question.text


def test_an_even_spread_is_not_called_narrow():
    """One 4-sample window every 4 samples and a global pool: every input reaches the output once, evenly."""
    a = answer("conv4/s4, gap", (1, 16), padding="valid", n_inits=2, perturb=False)
    said = line(a.text, "- The path counts to the centre unit")
    e = a.facts["erf"]
    assert e["global_via"] and "only" not in said
    assert f"for an even spread over all positions of the signal (it reads every one through `{e['global_via']}`)" \
        in said


def test_uniform_counts_are_said_uniform():
    """Circular padding: every position has the same count (max = min), not "1× as many paths"."""
    a = answer("3*conv3", (1, 10, 10), padding="circular", n_inits=2, perturb=False)
    counts = edgewise.pathways(nets.from_spec("3*conv3", (1, 10, 10), padding="circular"), (1, 10, 10)).counts
    assert counts.max() == counts.min()
    said = line(a.text, "- **Pathways.**")
    assert "Every input position has the same number of paths to the output (max = min" in said
    assert "as many paths" not in said


def test_unread_positions_of_the_model_are_said_where():
    """A window of 3 every 2 samples on 16 never reads the last sample."""
    a = answer("conv3/s2", (1, 16), padding="valid", n_inits=2, perturb=False)
    counts = edgewise.pathways(nets.from_spec("conv3/s2", (1, 16), padding="valid"), (1, 16)).counts
    assert np.flatnonzero(counts == 0).tolist() == [15]
    said = line(a.text, "- **Pathways.**")
    assert re.search(r"\(1 of its 2 ends has no path, zeros in the ratio's mean\); 1 sample has no path at all "
                     r"\(the last sample, 15\); the counts of the positions read span 10\^[0-9.]+ … ", said), said


def test_a_remedy_that_changes_nothing_is_named_not_listed():
    """ResNet-18 already pads by half its windows with zeros: `same` is the model itself, which the report says and
    the answer once listed as a remedy with the model's own numbers."""
    tv = pytest.importorskip("torchvision")
    a = answer(tv.models.resnet18(), (3, 32, 32), n_inits=2, perturb=False, name="resnet18")
    assert a.facts["unchanged"] == ["same"] and "same" not in a.facts["alternatives"]
    assert not any(x.startswith("- same:") for x in a.text.splitlines())
    assert "(same rewrites layers that compute what they did, so it is this model too and not listed.)" in a.text


def test_no_correlation_is_quoted_where_the_path_counts_are_all_equal():
    """timm's ViT (patches that tile the input, then attention) and one window per 4 samples: every position has
    the same count, and r was printed as "nan"."""
    a = answer("conv4/s4, gap", (1, 16), padding="valid", n_inits=2, perturb=False)
    assert math.isnan(a.facts["init_sensitivity"]["log_correlation_with_paths"]) and a.facts["paths"]["uniform"]
    assert "nan" not in a.text
    assert a.text.count("the path counts are the same at every position, so no correlation with them can be "
                        "taken") == 2
    b = answer("3*conv3", (1, 10, 10), n_inits=2, perturb=False)
    r = b.facts["init_sensitivity"]["log_correlation_with_paths"]
    assert (f"Measured with its nonlinearities (Monte-Carlo); its log-map correlates with the log path counts at "
            f"r = {r:.2f}") in b.text

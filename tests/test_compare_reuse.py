"""remedies.compare reuses what it already knows: the first n of the original's measured initialisations,
and the original's row for a remedy that leaves the model computing what it did."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgewise import EdgewiseError, nets, remedies
from edgewise.remedies.compare import _row
from edgewise.remedies.rewrite import apply, changes
from edgewise.report.tables import remedy_rows
from edgewise.sensitivity import gradient_map, init_sensitivity

tv = pytest.importorskip("torchvision")
SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return tv.models.resnet18(weights=None)


@pytest.fixture(scope="module")
def five(resnet):
    return init_sensitivity(resnet, SHAPE, n_inits=5, seed=2)


def test_first_n_initialisations_are_a_run_of_n(resnet, five):
    three = init_sensitivity(resnet, SHAPE, n_inits=3, seed=2)  # the loop engine: the same maps bit for bit
    cut = five.first(3)
    for k in ("map", "stderr", "samples"):
        assert np.array_equal(getattr(cut, k), getattr(three, k)), k
    assert cut.summary == three.summary and (cut.n_inits, cut.seed, cut.init) == (3, 2, three.init)
    assert five.first(5) is five and five.n_inits == 5 and len(five.samples) == 5  # the longer run is kept
    net = nets.from_spec("3*conv3", (1, 16, 16))  # vmap batches 6 and 4 seeds: the same to float rounding
    six, four = (init_sensitivity(net, (1, 16, 16), n_inits=n, seed=1) for n in (6, 4))
    np.testing.assert_allclose(six.first(4).map, four.map, rtol=1e-5)
    for bad in (6, 1):
        with pytest.raises(EdgewiseError, match=f"first\\({bad}\\)"):
            five.first(bad)
    with pytest.raises(EdgewiseError, match="'gradient'"):
        gradient_map(net, (1, 16, 16), n_samples=3).first(2)


def test_compare_takes_the_original_from_a_longer_run(resnet, five):
    measured = remedies.compare(resnet, SHAPE, ["circular"], n_inits=3, seed=2, progress=False)
    reused = remedies.compare(resnet, SHAPE, ["circular"], n_inits=3, seed=2, original=five, progress=False)
    assert reused.rows == measured.rows and reused.rows[0]["n_inits"] == 3
    for k in ("original", "circular"):
        assert np.array_equal(reused.sensitivity[k], measured.sensitivity[k]), k
    others = [init_sensitivity(resnet, SHAPE, n_inits=5, seed=7),  # another seed, unit or draw: measured again
              init_sensitivity(resnet, SHAPE, n_inits=5, seed=2, to="center"),
              init_sensitivity(resnet, SHAPE, n_inits=5, seed=2, std=0.1)]
    for other in others:
        assert remedies.compare(resnet, SHAPE, ["circular"], n_inits=3, seed=2, original=other,
                                progress=False).rows == measured.rows


def _same_function(old: nn.Module, new: nn.Module, shape) -> bool:
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(old.eval()(x), new.eval()(x))


@pytest.mark.parametrize("make, shape, remedy, unchanged", [
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 5, padding=2)), (1, 9, 9),
     "same", True),
    (lambda: nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(1, 2, 3)), (1, 9, 9), "same", True),  # a folded pad layer
    (lambda: nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(1, 2, 3)), (1, 9, 9), "reflect", True),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")), (1, 9, 9), "circular", True),
    (lambda: nn.Sequential(nn.Conv1d(1, 2, 4, padding="same")), (1, 11), "same", True),  # uneven: 1 before, 2 after
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 4, stride=4)), (1, 8, 8), "nonoverlapping", True),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)), (1, 9, 9), "reflect", False),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 9, 9), "same", False),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)), (1, 9, 9), "partial", False),
    (lambda: apply(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)), "partial"), (1, 9, 9), "same", False),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1)), (1, 9, 9), "coordconv", False),
])
def test_unchanged_means_the_same_function(make, shape, remedy, unchanged):
    torch.manual_seed(3)
    model = make()
    new = apply(model, remedy, input_shape=shape, zero_init=False) if remedy == "coordconv" else \
        apply(model, remedy, input_shape=shape)
    record = changes(new)[len(changes(model)):]
    assert record and all(c["unchanged"] is unchanged for c in record)
    assert _same_function(model, new, shape) is unchanged


def test_a_remedy_that_changes_nothing_repeats_the_original(resnet, five):
    c = remedies.compare(resnet, SHAPE, ["same", "circular"], n_inits=3, seed=2, original=five, progress=False)
    base, same, circular = c.rows
    assert same["unchanged"] is True and "unchanged" not in circular and "unchanged" not in base
    # what measuring it would have given: the same numbers
    row, log10, sens = _row("same", apply(resnet, "same", input_shape=SHAPE), SHAPE, base, 3, 2, disposable=True)
    assert {k: v for k, v in same.items() if k != "unchanged"} == row
    assert np.array_equal(c.maps["same"], log10) and np.array_equal(c.sensitivity["same"], sens)
    assert same["changed_layers"] == 17 and same["parameters_change"] == same["multiply_adds_change"] == 0
    notes = remedy_rows(c).notes
    assert "same: its 17 rewritten layers compute what they did, so its numbers are the original's." in notes
    assert not any(n.startswith("circular:") for n in notes)

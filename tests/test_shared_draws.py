"""A comparison draws each initialisation of a builder's weights once: the padding remedies' copies of a model get,
seed for seed, the weights the original got, copied instead of drawn again (``edgewise._init.shared_draws``). The
maps are those of drawing each time, bit for bit; what is kept stays within its seeds and its byte budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgewise import _init
from edgewise.answer import gather
from edgewise.models import load
from edgewise.remedies import apply, compare
from edgewise.sensitivity import _init_seeds, init_sensitivity

SHAPE = (3, 32, 32)


@pytest.fixture
def stores(monkeypatch):
    """Every store a shared_draws block makes (to read its hits and misses after the block)."""
    made, real = [], _init._Draws

    def record(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(_init, "_Draws", record)
    return made


def _maps(comparison) -> dict:
    return {k: v for k, v in comparison.sensitivity.items()}


def test_a_comparison_equals_drawing_every_time(stores, monkeypatch):
    """ResNet-18 (a torchvision builder) with padding remedies, coordconv and global: the same maps with the store
    as with a budget of zero (nothing kept). Every padding remedy's draws hit; the first remedy with tensors of its
    own (coordconv) lets the store go, as global's passes need the memory more (ResNet-50's report peaked 0.37 GiB
    higher with it)."""
    chosen = ["circular", "reflect", "coordconv", "global"]
    shared = compare("torchvision:resnet18", SHAPE, chosen, n_inits=3, progress=False)
    (store,) = stores
    assert store.misses == 3 + 3 + 3 and store.hits == 3 * 2 and store.used == 0 == store.budget
    monkeypatch.setattr(_init, "SHARED_DRAW_BYTES", 0)
    drawn = compare("torchvision:resnet18", SHAPE, chosen, n_inits=3, progress=False)
    assert stores[1].hits == 0 and stores[1].used == 0
    for name, m in _maps(drawn).items():
        assert np.array_equal(_maps(shared)[name], m), name
    assert not _init._SHARED  # nothing is kept once the block ends


def test_only_its_seeds_and_only_within_its_budget():
    model = load("torchvision:resnet18", SHAPE)
    seeds = _init_seeds(0, 4)
    size = _init._replay(_init.builder_of(model)).nbytes
    with _init.shared_draws(seeds[:3], budget=2 * size) as store:
        init_sensitivity(model, SHAPE, n_inits=4, seed=0)
        assert set(s for _, s in store.items) == set(seeds[:2]) and store.used == 2 * size
        with _init.shared_draws(seeds) as inner:  # a block inside another uses the outer store
            assert inner is store
        init_sensitivity(apply(model, "circular", input_shape=SHAPE), SHAPE, n_inits=4, seed=0)
        assert store.hits == 2


def test_a_copied_draw_is_the_drawn_one_for_every_tensor():
    """The store's tensors, filled into a model, equal a replay drawn straight into it (parameters and buffers,
    the BatchNorm statistics the builder writes included)."""
    model = load("torchvision:resnet18", SHAPE)
    plan = _init.plan(model)
    _init.apply(model, plan, 7)
    direct = {k: v.clone() for k, v in model.state_dict().items()}
    other = load("torchvision:resnet18", SHAPE)
    with _init.shared_draws([7]) as store:
        _init.apply(other, plan, 7)  # drawn into the store, then copied
        _init.apply(other, plan, 7)  # copied from the store
    assert (store.misses, store.hits) == (1, 1)
    for k, v in other.state_dict().items():
        assert torch.equal(v, direct[k]), k


def test_the_report_draws_the_remedy_seeds_once(stores):
    """gather: the section-5 sensitivity draws the first remedy_inits initialisations into the store and the
    padding remedies copy them; the comparison's maps equal a comparison that draws its own."""
    ev = gather("torchvision:resnet18", SHAPE, n_inits=4, remedy_inits=2, perturb=False)
    (store,) = stores
    assert store.keep == frozenset(_init_seeds(0, 2))
    # section 5's four lookups; the weighted paths' copies of the first two (they take the same seeds); each padding
    # remedy's two copies (all five come before coordconv closes the store)
    assert store.misses >= 4 and store.hits == 2 + 2 * 5 and store.used == 0
    alone = compare(ev.module, SHAPE, [r["name"] for r in ev.comparison.rows[1:] if "error" not in r
                                        and not r.get("unchanged")], n_inits=2, progress=False)
    for name, m in _maps(alone).items():
        assert np.array_equal(ev.comparison.sensitivity[name], m), name

"""``Layout`` remembering ids tensors it made in rows (each row one position of one node, its channels in order):
a Linear, an add, attention's places and pairings read the answer instead of the tensor.

With ``Layout.check_known_rows`` every remembered answer is compared with the one reading the tensor gives
(``_row_positions``, ``_pairing``, ``_places``); ``tests/test_build_fast.py`` compares whole Graphs traced with
and without the memory. Here: real transformers and ConvNeXt in check mode, and the memory's refusals (a tensor
written in place, a tensor gone, another shape)."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
import torchvision

import edgewise
from edgewise import _layout, _trace

from test_layout_decode import layout


def _small_vit():
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=16, mlp_dim=32)


MODELS = {
    "vit": (_small_vit, (3, 32, 32)),
    "convnext_tiny": (lambda: torchvision.models.convnext_tiny(), (3, 64, 64)),
    "swin_t": (lambda: torchvision.models.swin_t(), (3, 64, 64)),
    "maxvit_t": (lambda: torchvision.models.maxvit_t(), (3, 224, 224)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_remembered_rows_are_those_reading_gives(name, monkeypatch):
    make, shape = MODELS[name]
    used = []
    known = _layout.Layout._known_rows

    def counting(self, rows):
        found = known(self, rows)
        used.append(found is not None)
        return found

    monkeypatch.setattr(_layout.Layout, "check_known_rows", True)  # (an assertion fails on any difference)
    monkeypatch.setattr(_layout.Layout, "_known_rows", counting)
    _trace._CACHE.clear()
    _trace._FX.clear()
    p = edgewise.pathways(make(), shape, to="all")
    assert any(used), "no remembered rows were used"
    monkeypatch.setattr(_layout.Layout, "_remember_rows", lambda self, *args: None)
    _trace._CACHE.clear()
    _trace._FX.clear()
    q = edgewise.pathways(make(), shape, to="all")
    assert np.array_equal(p.log10, q.log10)


def _rows_of(lay, name: str) -> torch.Tensor:
    """Node ``name``'s ids laid out as tokens (positions × channels), remembered as made in rows."""
    ids = lay.ids_of(name)[0]
    tokens = ids.reshape(ids.shape[0], -1).T.contiguous()
    npos = tokens.shape[0]
    return lay._made_in_rows(tokens, np.full(npos, lay._index(name)), np.arange(npos))


def test_a_remembered_tensor_answers_until_written_or_gone():
    lay = layout([(4, 3, 3), (5,)])
    tokens = _rows_of(lay, "n0")
    known = lay._known_rows(tokens)
    assert known is not None
    lay._rows.clear()
    assert _layout._same_rows(known, lay._row_positions(tokens))  # (what reading it gives)
    tokens = _rows_of(lay, "n0")
    assert lay._known_rows(tokens.reshape(-1, 4)) is not None  # (a view of the same rows)
    assert lay._known_rows(tokens.reshape(-1, 2)) is None  # (other rows of the same memory)
    assert lay._known_rows(tokens[1:]) is None
    tokens[0, 0] = 0.0  # (written in place: forgotten, and now not in rows at all)
    assert lay._known_rows(tokens) is None and lay._row_positions(tokens) is None
    tokens = _rows_of(lay, "n0")
    address = tokens.data_ptr()
    del tokens
    gc.collect()
    assert lay._rows[address][0]() is None  # (gone: a tensor later made at its address is never answered for)


@pytest.mark.parametrize("order", ["same", "reversed", "other shape"])
def test_pairing_remembered_rows_as_reading_them(order):
    """Two operands in rows pair (an add of two nodes' units) only where their rows hold the same positions of
    nodes of one shape, as reading every element finds."""
    lay = layout([(4, 3, 3), (5,), (4, 3, 3), (4, 9)])
    a = _rows_of(lay, "n0")
    ids = lay.ids_of("n2" if order != "other shape" else "n3")[0]
    b = ids.reshape(4, -1).T.contiguous()
    positions = np.arange(9)
    if order == "reversed":
        b, positions = b.flip(0).contiguous(), positions[::-1].copy()
    index = lay._index("n2" if order != "other shape" else "n3")
    b = lay._made_in_rows(b, np.full(9, index), positions)
    remembered = lay._pairing([a[None], b[None]])
    read = lay._pairing_read([a[None], b[None]], (1, 9, 4))
    assert _layout._same_answer(remembered, read)
    assert (remembered is None) == (order != "same")


def test_pairing_rows_of_several_nodes_as_reading_them():
    """Tokens beside the positions (ViT's class token): each operand's rows hold two nodes; the pairs of nodes are
    found row by row, and element by element they are what reading the operands gives."""
    lay = layout([(4, 3, 3), (4,), (4, 3, 3), (4,)])

    def tokens(token: str, grid: str) -> torch.Tensor:
        ids = torch.cat([lay.ids_of(token)[0][None], lay.ids_of(grid)[0].reshape(4, -1).T]).contiguous()
        rows_node = np.array([lay._index(token)] + [lay._index(grid)] * 9)
        return lay._made_in_rows(ids, rows_node, np.array([0, *range(9)]))

    a, b = tokens("n1", "n0")[None], tokens("n3", "n2")[None]
    found = lay._pairing([a, b])
    assert isinstance(found, _layout._RowPairs) and found.nodes == [(0, 2), (1, 3)]
    assert _layout._same_answer(found.elements(lay, [a, b], (1, 10, 4)), lay._pairing_read([a, b], (1, 10, 4)))
    assert found.pair_of_rows().tolist() == [1] + [0] * 9

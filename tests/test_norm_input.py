"""A normalisation layer made for other channels or axes than it gets is the model's error, reported as torch
reports it, through every way a trace can take (the direct trace, the one-pass shapes, the meta-device pass);
before, each of them passed norms through by their input's shape and traced a model that does not run."""

import itertools
import warnings

import pytest
import torch
from torch import nn

import edgewise
from edgewise import EdgewiseError, pathways
from edgewise._shapes import _NORM_RULES, norm_fits


class Permuted(nn.Module):
    """The norm on a channels-last view (the torch.fx path: the direct trace does not take a permute)."""

    def __init__(self, norm: nn.Module, channels: int = 8):
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, channels, 3, padding=1), norm

    def forward(self, x):
        return self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def plain(norm: nn.Module) -> nn.Module:
    """The norm after a convolution to 8 channels (the direct trace, else the one-pass shapes)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3), norm)


def runs(model: nn.Module, shape) -> bool:
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(torch.zeros((1, *shape)))
    except (RuntimeError, ValueError):
        return False
    return True


BAD = {
    "BatchNorm2d for 4 channels": lambda: plain(nn.BatchNorm2d(4)),
    "BatchNorm1d on a feature map": lambda: plain(nn.BatchNorm1d(8)),
    "GroupNorm for 4 channels": lambda: plain(nn.GroupNorm(2, 4)),
    "InstanceNorm2d for 4 channels": lambda: plain(nn.InstanceNorm2d(4, affine=True)),
    "LayerNorm over another map size": lambda: plain(nn.LayerNorm([8, 16, 16])),
    "LayerNorm on channels-last, other width": lambda: Permuted(nn.LayerNorm(10)),
    "RMSNorm on channels-last, other width": lambda: Permuted(nn.RMSNorm(10)),
    "BatchNorm2d on channels-last": lambda: Permuted(nn.BatchNorm2d(8)),
}
GOOD = {
    "BatchNorm2d": lambda: plain(nn.BatchNorm2d(8)),
    "GroupNorm": lambda: plain(nn.GroupNorm(2, 8)),
    "InstanceNorm2d": lambda: plain(nn.InstanceNorm2d(8, affine=True)),
    "LayerNorm over the map": lambda: plain(nn.LayerNorm([8, 14, 14])),
    "LayerNorm on channels-last": lambda: Permuted(nn.LayerNorm(8)),
    "RMSNorm on channels-last": lambda: Permuted(nn.RMSNorm(8)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_norm_that_does_not_fit_its_input_is_the_models_error(case):
    model = BAD[case]()
    assert not runs(model, (3, 16, 16))
    with pytest.raises(EdgewiseError, match=r"does not run on an input of shape 3x16x16 .*(Error|normalized_shape)"):
        edgewise.trace(model, (3, 16, 16))
    with pytest.raises(EdgewiseError, match="does not run"):
        pathways(BAD[case](), (3, 16, 16))


@pytest.mark.parametrize("case", list(GOOD))
def test_norms_that_fit_still_trace(case):
    model = GOOD[case]()
    assert runs(model, (3, 16, 16))
    g = edgewise.trace(model, (3, 16, 16))
    assert g[g.output].shape == ((8, 14, 14) if isinstance(model, nn.Sequential) else (8, 16, 16))


def _norms():
    yield from (nn.BatchNorm1d(4), nn.BatchNorm2d(4), nn.BatchNorm2d(4, affine=False, track_running_stats=False),
                nn.GroupNorm(2, 4), nn.GroupNorm(4, 4, affine=False), nn.InstanceNorm1d(4),
                nn.InstanceNorm2d(4, affine=True), nn.InstanceNorm2d(4, track_running_stats=True),
                nn.LayerNorm(4), nn.LayerNorm([4, 5]), nn.RMSNorm(4), nn.RMSNorm([4, 5]), nn.SyncBatchNorm(4))


SHAPES = [(1, 4), (1, 5), (1, 4, 5), (1, 5, 4), (1, 4, 4, 5), (1, 4, 5, 5), (1, 2, 4, 5), (1, 3, 4), (2, 4, 5, 5)]


@pytest.mark.parametrize("norm, shape", list(itertools.product(list(_norms()), SHAPES)),
                         ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else "x".join(map(str, v)))
def test_norm_fits_only_where_torch_runs_the_layer_and_keeps_the_shape(norm, shape):
    """The shape passes skip running norms that fit: a fit must be one torch runs, to the same shape (norms that
    torch runs but norm_fits is unsure of are run, which costs time, never a wrong answer)."""
    norm.eval()
    if norm_fits(norm, shape):
        with torch.no_grad():
            assert tuple(norm(torch.zeros(shape)).shape) == shape


def test_every_norm_with_a_rule_fits_its_usual_input():
    """(So that the passes keep skipping them: each rule accepts the input its layer is made for.)"""
    usual = {nn.LayerNorm: (nn.LayerNorm(5), (1, 4, 5)), nn.RMSNorm: (nn.RMSNorm(5), (1, 4, 5)),
             nn.GroupNorm: (nn.GroupNorm(2, 4), (1, 4, 5, 5)), nn.BatchNorm1d: (nn.BatchNorm1d(4), (1, 4, 5)),
             nn.BatchNorm2d: (nn.BatchNorm2d(4), (1, 4, 5, 5)), nn.SyncBatchNorm: (nn.SyncBatchNorm(4), (1, 4, 5, 5)),
             nn.InstanceNorm1d: (nn.InstanceNorm1d(4), (1, 4, 5)),
             nn.InstanceNorm2d: (nn.InstanceNorm2d(4), (1, 4, 5, 5))}
    assert set(usual) == set(_NORM_RULES)
    for norm, shape in usual.values():
        assert norm_fits(norm, shape), norm


@pytest.mark.parametrize("channels", [4, 8])
def test_a_norm_subclass_kept_whole_is_held_to_its_base_rule(channels):
    """timm's ``BatchNormAct2d`` (a ``BatchNorm2d`` the trace keeps whole and passes through) made for other
    channels is the model's error too; before, only exact torch classes had their input checked."""
    timm_layers = pytest.importorskip("timm.layers")
    model = nn.Sequential(nn.Conv2d(3, 8, 3), timm_layers.BatchNormAct2d(channels))
    if channels != 8:
        assert not runs(model, (3, 16, 16))
        with pytest.raises(EdgewiseError, match=r"does not run on an input of shape 3x16x16 .*running_mean"):
            edgewise.trace(model, (3, 16, 16))
    else:
        assert runs(model, (3, 16, 16))
        g = edgewise.trace(model, (3, 16, 16))
        assert g[g.output].shape == (8, 14, 14)

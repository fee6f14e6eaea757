"""The absolute-position task: where its generators put things, and that tiny seeded runs behave."""

import math

import numpy as np
import pytest
import torch

from edgewise import EdgewiseError, remedies
from edgewise.experiments.tasks import absolute
from edgewise.experiments.tasks.absolute import TASK, VARIANTS, location, make_data, red_green, run_one
from edgewise.experiments.train import build_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


#: small data and a small net: every test here trains for well under a second
TINY = dict(n_train=64, n_test=64, epochs=2, batch_size=16,
            model="conv3/c4, conv3/s2/c4, conv3/s2/c8, conv3/s2/c8, gmp, fc2")


def _boxes(img):
    """(rows, cols) covered by the red and the green square of one (3, H, W) image."""
    out = []
    for ch in (0, 1):
        r, c = np.nonzero(img[ch].numpy())
        out.append((set(r.tolist()), set(c.tolist())))
    return out


def test_task_entry():
    assert TASK.name == "absolute-position" and list(TASK.splits) == ["similar", "dissimilar"]
    assert set(TASK.sizes["quick"]) == set(TASK.sizes["full"])
    assert all(r in remedies.names() for r in TASK.remedies)
    assert TASK.config()["variant"] == "red-green"


def test_red_green_colours_order_and_bands():
    config = TASK.config("quick", **TINY)
    size, box, band = config["size"], config["box"], config["band"]
    (x, y), tests, shape = make_data(config)
    assert shape == (3, size, size) and x.shape == (64, 3, size, size) and x.dtype == torch.float32
    assert set(y.tolist()) == {0, 1}
    top = range(size // 4 - 1 - band, size // 4 - 1 + band + box)  # rows a top-band square may cover
    bottom = range(top.start + size // 2, top.stop + size // 2)
    for images, labels, swapped in ((x, y, False), *((*tests[s], s == "dissimilar") for s in tests)):
        assert (images[:, 2] == 0).all() and set(images.unique().tolist()) == {0.0, 1.0}  # black, pure red/green
        assert (images[:, :2].sum((2, 3)) == box * box).all()  # one whole square per colour
        for img, label in zip(images, labels.tolist()):
            (red_rows, red_cols), (green_rows, green_cols) = _boxes(img)
            if label == 0:  # red left of green, never overlapping
                assert max(red_cols) < min(green_cols)
            else:
                assert max(green_cols) < min(red_cols)
            band_rows = top if (label == 0) != swapped else bottom
            assert red_rows <= set(band_rows) and green_rows <= set(band_rows)


def test_dissimilar_moves_each_square_by_half_the_height():
    (similar, y), (moved, y2) = make_data(TASK.config("quick", **TINY))[1].values()
    assert torch.equal(y, y2)
    half = similar.shape[-2] // 2
    down = torch.roll(similar, half, dims=-2)  # the bands are half an image apart, so a roll is the ±half move
    assert torch.equal(moved, down)
    assert not torch.equal(moved, similar)


def test_squares_reach_both_side_borders():
    x, _, _ = red_green(400, 32, 4, 3, np.random.default_rng(0))
    cols = x[:, :2].sum((1, 2)) > 0
    assert cols[:, 0].any() and cols[:, -1].any()


def test_location_quadrants_and_distances_from_the_border():
    size, d, near = 32, 6, 5
    digits = np.ones((3, d, d), np.float32)  # solid patches: the ink's box is the pasted box
    for far in (False, True):
        x, y = location(300, size, digits, near, np.random.default_rng(1), far=far)
        assert set(y.tolist()) == {0, 1}
        for img, label in zip(x[:, 0], y.tolist()):
            rows, cols = np.nonzero(img)
            assert len(rows) == d * d
            # distance of the digit from the image's corner of its class, per axis
            gaps = (rows.min(), cols.min()) if label == 0 else (size - 1 - rows.max(), size - 1 - cols.max())
            assert all(near <= g <= size // 2 - d if far else 0 <= g < near for g in gaps)
            half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
            assert img[half, half].sum() == img.sum()  # inside the class's quadrant


def test_location_data_with_real_digits():
    config = TASK.config("quick", variant="location", **TINY)
    size, near = config["size"], config["near"]
    (x, y), tests, shape = make_data(config)
    assert shape == (1, size, size) and x.shape == (64, 1, size, size)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert len({tuple(np.nonzero(img[0].numpy().ravel())[0][:5]) for img in x}) > 10  # varied digits
    for split, (images, labels) in {"train": (x, y), **tests}.items():
        bottom_right = images[:, 0, size // 2:, size // 2:].sum((1, 2))
        assert torch.equal(bottom_right == images.sum((1, 2, 3)), labels == 1)
        ink = images[:, 0] > 0
        near_border = ink[:, :near].any((1, 2)) | ink[:, -near:].any((1, 2)) | ink[:, :, :near].any((1, 2)) \
            | ink[:, :, -near:].any((1, 2))
        assert not near_border.any() if split == "dissimilar" else near_border.all()


def test_data_are_deterministic_and_follow_the_data_seed():
    a = make_data(TASK.config("quick", **TINY))
    b = make_data(TASK.config("quick", **{**TINY, "epochs": 5, "lr": 0.1}))  # training options share the data
    assert a[0][0] is b[0][0]
    absolute._make_data.cache_clear()  # regenerate from scratch: the same data seed, the same data
    c = make_data(TASK.config("quick", **TINY))
    assert torch.equal(a[0][0], c[0][0]) and torch.equal(a[1]["dissimilar"][0], c[1]["dissimilar"][0])
    d = make_data(TASK.config("quick", **TINY, data_seed=1))
    assert not torch.equal(a[0][0], d[0][0])


@pytest.mark.parametrize("remedy", ["full", "circular"])
def test_translation_invariant_nets_see_the_dissimilar_split_as_the_similar_one(remedy):
    # the move is half the image, a multiple of the net's total stride: full padding without bias and circular
    # padding give every moved image the logits of the original, so they cannot prefer either split
    config = TASK.config("quick", **TINY)
    _, tests, shape = make_data(config)
    net = build_model(config, remedy, shape, seed=0).eval()
    with torch.no_grad():
        similar, dissimilar = net(tests["similar"][0]), net(tests["dissimilar"][0])
    assert torch.allclose(similar, dissimilar, atol=1e-5)
    same = build_model(config, "same", shape, seed=0).eval()
    with torch.no_grad():
        assert not torch.allclose(same(tests["similar"][0]), same(tests["dissimilar"][0]), atol=1e-3)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_tiny_run_is_deterministic_and_lowers_the_loss(variant):
    config = TASK.config("quick", variant=variant, **{**TINY, "epochs": 3, "n_train": 128})
    seen = []
    first = run_one(config, "same", 0, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert set(first["accuracy"]) == {"similar", "dissimilar"}
    assert all(0 <= a <= 1 for a in first["accuracy"].values())
    assert len(first["loss"]) == 3 and all(math.isfinite(v) for v in first["loss"])
    assert first["loss"][-1] < first["loss"][0]
    assert run_one(config, "same", 0) == first


def test_zero_padding_takes_the_shortcut():
    metrics = run_one(TASK.config("quick", epochs=4), "same", 0)
    assert metrics["accuracy"]["similar"] > 0.9 and metrics["accuracy"]["dissimilar"] < 0.3


def test_bad_options_raise():
    with pytest.raises(EdgewiseError, match="unknown variant 'upside-down'.*red-green, location"):
        run_one(TASK.config("quick", variant="upside-down"), "same", 0)
    with pytest.raises(EdgewiseError, match="does not fit"):
        make_data(TASK.config("quick", band=8))
    with pytest.raises(EdgewiseError, match="near must be in"):
        make_data(TASK.config("quick", variant="location", near=20))
    with pytest.raises(EdgewiseError, match="unknown digits"):
        make_data(TASK.config("quick", variant="location", digits="emnist"))
    with pytest.raises(EdgewiseError, match="has no option 'colour'"):
        TASK.config("quick", colour="blue")

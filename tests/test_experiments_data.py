"""The packaged real data: MNIST subset, sklearn digits, MNIST-1D signals, and pasting onto canvases."""

import numpy as np
import pytest
import torch

from edgewise import EdgewiseError
from edgewise.experiments import data


def test_mnist_subset_is_read_from_the_package():
    x, y = data.mnist_5k()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert sorted(np.unique(y)) == list(range(10)) and len(y) == 5000
    assert x[:, :2].max() == 0 or x[:, :2].mean() < 1  # MNIST digits are centred: the top rows are blank


def test_sklearn_digits():
    x, y = data.sklearn_digits()
    assert x.shape == (1797, 8, 8) and x.max() == 16 and list(y[:10]) == list(range(10))


@pytest.mark.parametrize("n", [37, 40])
def test_mnist1d_signals_exact_count_and_global_state_untouched(n):
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    x, y = data.mnist1d_signals(n, seed=5, length=40)
    assert np.random.rand() == expected
    assert x.shape == (n, 40) and x.dtype == np.float32 and y.shape == (n,) and set(y) <= set(range(10))
    again, _ = data.mnist1d_signals.__wrapped__(n, seed=5, length=40)
    assert np.array_equal(x, again)


def test_paste_1d_2d_and_errors():
    out = data.paste(torch.ones(2, 1, 3), (8,), [[0], [5]])
    assert out[0, 0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0] and out[1, 0].tolist() == [0] * 5 + [1] * 3
    img = data.paste(torch.arange(6.).reshape(1, 1, 2, 3), (4, 5), [(2, 2)])
    assert img[0, 0, 2:, 2:].tolist() == [[0, 1, 2], [3, 4, 5]] and img.sum() == 15
    with pytest.raises(EdgewiseError, match="falls off the"):
        data.paste(torch.ones(1, 1, 3), (8,), [[6]])
    with pytest.raises(EdgewiseError, match="patches have 1 spatial axes, the canvas 2"):
        data.paste(torch.ones(1, 1, 3), (8, 8), [[0, 0]])

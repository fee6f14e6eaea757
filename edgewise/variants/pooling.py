"""Local translation invariance of pooling, measured (Goodfellow et al. §9.3, fig. 9.8).

Max pooling reports the largest response in a window, so a small shift of the input leaves
many pooled outputs unchanged — how many depends on the data, which this module measures.
"""

from __future__ import annotations

import torch

from .._trace import parse_shape
from ..errors import EdgewiseError
from .equivariance import layer_kind, spatial_axis

__all__ = ["pooling_invariance", "IMAGES"]

#: inputs :func:`pooling_invariance` can draw
IMAGES = ("noise", "blob")


def _images(kind: str, shape, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` inputs of ``shape = (C, *spatial)``: iid normal noise, or one Gaussian blob each."""
    if kind == "noise":
        return torch.randn((count, *shape), generator=gen, dtype=torch.float64)
    grids = torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape[1:]], indexing="ij")
    out = []
    for _ in range(count):
        centre = [torch.rand((), generator=gen, dtype=torch.float64) * n for n in shape[1:]]
        sigma = max(shape[1:]) / 4
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        out.append(torch.exp(-r2 / (2 * sigma ** 2)).expand(shape[0], *shape[1:]))
    return torch.stack(out)


def pooling_invariance(pool, input_shape, shift: int = 1, seed: int = 0, n: int = 16, axis: int = -1,
                       image: str = "noise", rtol: float = 1e-9) -> float:
    """Fraction of pooled outputs left unchanged when the input moves by ``shift`` pixels (§9.3, fig. 9.8).

    Outputs are compared at the *same* position (invariance, not equivariance). The shift is a
    real translation: the shifted input is the next window of a larger image, so new content
    enters at one edge. Every output position counts.

    Measured (32×32, 32 inputs, 1-pixel shift): on iid noise max pooling keeps ≈ (k−1)/(k+1) —
    0.33, 0.50, 0.60 for k = 2, 3, 4, at stride 1 and 2 alike (the largest of k+1 columns must sit
    in neither the leaving nor the entering one); average pooling keeps 0. On a smooth Gaussian
    blob max pooling keeps only the windows that straddle the peak, ≈ (k−1)/W_out: 0.03, 0.06, 0.09.
    Local invariance is a property of peaky detector responses, not of max pooling alone.

    Args:
        pool: a callable on ``(B, C, *spatial)``, e.g. ``nn.MaxPool2d(2, stride=1)``.
        input_shape: ``C×L`` or ``C×H×W`` without the batch axis.
        shift: pixels to move along ``axis``.
        seed: seed of the inputs.
        n: number of random inputs averaged over.
        axis: ``-1`` (columns) or ``-2`` (rows).
        image: ``"noise"`` (iid normal) or ``"blob"`` (one Gaussian blob of σ = size/4 at a random place).
        rtol: an output is unchanged when it moves by at most ``rtol`` times the largest |output|.

    Returns:
        The fraction in [0, 1].

    Example:
        >>> f = pooling_invariance(torch.nn.MaxPool2d(3, stride=1), (1, 32, 32))
        >>> 0.4 < f < 0.6  # (k − 1)/(k + 1) for iid noise
        True
    """
    where = "pooling_invariance"
    shape = parse_shape(input_shape)
    d = len(shape) - 1
    dim = spatial_axis(axis, d, where)
    if image not in IMAGES:
        raise EdgewiseError(f"{where}: unknown image {image!r}; choose one of {', '.join(IMAGES)}")
    if n < 1 or not 0 < abs(int(shift)) < shape[dim - 1]:
        raise EdgewiseError(f"{where}: need n ≥ 1 and 0 < |shift| < {shape[dim - 1]} (the axis length); got n={n}, "
                            f"shift={shift}")
    shift = int(shift)
    dtype, device = layer_kind(pool)
    ext = list(shape)
    ext[dim - 1] += abs(shift)
    big = _images(image, tuple(ext), n, torch.Generator().manual_seed(seed)).to(dtype=dtype, device=device)
    length = shape[dim - 1]
    x = big.narrow(dim, max(shift, 0), length)
    xs = big.narrow(dim, max(-shift, 0), length)
    with torch.no_grad():
        y, ys = pool(x), pool(xs)
    scale = float(y.abs().max()) or 1.0
    return float(((ys - y).abs() <= rtol * scale).to(torch.float64).mean())

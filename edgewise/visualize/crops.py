"""Receptive-field crops of preferred images and how alike two crops are (only pixels inside the image count)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..errors import EdgewiseError

__all__ = ["rf_crop", "similarity", "pairwise", "shift", "MIN_PIXELS", "MIN_STD", "MIN_CEILING"]

#: fewest spatial pixels, inside the image for both crops, that :func:`similarity` correlates (the valid
#: corner of a 3×3 field at a same-padded corner)
MIN_PIXELS = 4
#: standard deviation (images in [0, 1]) below which a crop counts as flat in :func:`similarity`
MIN_STD = 1e-3
#: seed-to-seed similarity below which a position's preferred pattern counts as unreproducible
MIN_CEILING = 0.1
_FILLS = ("grey", "mean")


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _int_box(box, ndim: int) -> list[tuple[int, int]]:
    box = list(box)
    if len(box) != ndim:
        raise EdgewiseError(f"box has {len(box)} axes but the image has {ndim} spatial axes")
    out = []
    for pair in box:
        lo, hi = (float(v) for v in pair)
        if not (lo.is_integer() and hi.is_integer()) or hi < lo:
            raise EdgewiseError(f"box {tuple(box)} must hold whole-pixel (lo, hi) pairs with lo ≤ hi (hi "
                                "inclusive), as ReceptiveField.box gives for aligned fields")
        out.append((int(lo), int(hi)))
    return out


def rf_crop(image, box, input_hw=None, fill: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of ``image`` inside a receptive-field ``box``, on a canvas the size of the box.

    Args:
        image: (C, *spatial) or (*spatial) array or tensor.
        box: per spatial axis the unclipped ``(lo, hi)`` input coordinates, hi inclusive (``rf.box(layer, pos)``);
            it may hang over the border.
        input_hw: the image's spatial size (checked against ``image``; default: taken from it).
        fill: the value of canvas pixels that lie off the image.

    Returns:
        ``(crop, mask)``: crop has the image's leading axes and the box's size; mask (box size, bool) is True
        where the canvas pixel lies inside the image. Canvas pixel ``i`` is input pixel ``lo + i``.
    """
    img = _np(image)
    ndim = len(box) if box is not None else 0
    if ndim < 1 or img.ndim < ndim:
        raise EdgewiseError(f"rf_crop needs a box with one (lo, hi) per spatial axis and an image with that many "
                            f"spatial axes; got box {box!r} and image shape {img.shape}")
    spatial = img.shape[img.ndim - ndim:]
    if input_hw is not None and tuple(int(n) for n in input_hw) != tuple(spatial):
        raise EdgewiseError(f"input size {tuple(input_hw)} does not match the image's spatial shape {spatial}")
    bounds = _int_box(box, ndim)
    size = tuple(hi - lo + 1 for lo, hi in bounds)
    crop = np.full(img.shape[:img.ndim - ndim] + size, fill, dtype=np.float64)
    mask = np.zeros(size, dtype=bool)
    src, dst = [], []
    for (lo, hi), n in zip(bounds, spatial):
        a, b = max(lo, 0), min(hi, n - 1)
        if b < a:  # the box misses the image along this axis
            return crop, mask
        src.append(slice(a, b + 1))
        dst.append(slice(a - lo, b - lo + 1))
    lead = (Ellipsis,)
    crop[lead + tuple(dst)] = img[lead + tuple(src)]
    mask[tuple(dst)] = True
    return crop, mask


def similarity(a, mask_a, b, mask_b, min_pixels: int = MIN_PIXELS, min_std: float = MIN_STD) -> float:
    """Pearson correlation of two aligned crops over the pixels inside the image for both (channels pooled).

    Args:
        a, b: crops of one shape, (C, *size) or (*size), e.g. from :func:`rf_crop`.
        mask_a, mask_b: (*size) bool, True where the pixel is inside the image.
        min_pixels: fewest jointly valid spatial pixels (default :data:`MIN_PIXELS`).
        min_std: smallest standard deviation over those pixels (default :data:`MIN_STD`).

    Returns:
        r in [−1, 1]; NaN with fewer than ``min_pixels`` jointly valid pixels, or when either crop is flat
        over them. Symmetric; masked and non-finite pixels are ignored.
    """
    a, b = _np(a), _np(b)
    ma, mb = np.asarray(mask_a, dtype=bool), np.asarray(mask_b, dtype=bool)
    if a.shape != b.shape or ma.shape != mb.shape or a.shape[a.ndim - ma.ndim:] != ma.shape:
        raise EdgewiseError(f"similarity needs aligned crops and masks of one shape; got crops {a.shape}, "
                            f"{b.shape} and masks {ma.shape}, {mb.shape}")
    lead = tuple(range(a.ndim - ma.ndim))
    joint = ma & mb & np.isfinite(a).all(axis=lead) & np.isfinite(b).all(axis=lead)
    if int(joint.sum()) < max(1, int(min_pixels)):
        return math.nan
    x, y = a[..., joint].ravel(), b[..., joint].ravel()
    x, y = x - x.mean(), y - y.mean()
    sx, sy = float(np.dot(x, x)), float(np.dot(y, y))
    floor = max(float(min_std), 1e-12) ** 2 * x.size
    if sx < floor or sy < floor:
        return math.nan
    return float(np.clip(np.dot(x, y) / math.sqrt(sx * sy), -1.0, 1.0))


def _nanmean(values) -> float:
    vals = np.asarray(list(values), dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else math.nan


def pairwise(crops: np.ndarray, masks: np.ndarray, min_pixels: int = MIN_PIXELS,
             min_ceiling: float = MIN_CEILING) -> tuple[np.ndarray, np.ndarray]:
    """Seed-averaged similarities between positions, and their noise-ceiling normalisation.

    Args:
        crops: (P, S, C, *size) aligned crops, P positions × S ≥ 2 seeds.
        masks: (P, *size) which crop pixels are inside the image, per position.

    Returns:
        ``(similarity, normalised)``, both (P, P): ``similarity[p, p]`` is the mean over pairs of different seeds
        (the noise ceiling), ``similarity[p, q]`` the mean over all seed pairs; ``normalised[p, q]`` is
        ``similarity[p, q] / sqrt(similarity[p, p]·similarity[q, q])`` (NaN unless both ceilings reach
        ``min_ceiling``).
    """
    crops, masks = np.asarray(crops), np.asarray(masks, dtype=bool)
    n_pos, n_seeds = crops.shape[:2]
    if n_seeds < 2:
        raise EdgewiseError("the seed-to-seed noise ceiling needs at least 2 seeds per position")
    sim = np.full((n_pos, n_pos), np.nan)
    for p in range(n_pos):
        sim[p, p] = _nanmean(similarity(crops[p, s], masks[p], crops[p, t], masks[p], min_pixels)
                             for s, t in itertools.combinations(range(n_seeds), 2))
        for q in range(p + 1, n_pos):
            sim[p, q] = sim[q, p] = _nanmean(similarity(crops[p, s], masks[p], crops[q, t], masks[q], min_pixels)
                                             for s in range(n_seeds) for t in range(n_seeds))
    ceil = np.diag(sim).copy()
    ceil[~(ceil >= max(float(min_ceiling), 1e-12))] = np.nan
    with np.errstate(invalid="ignore"):
        norm = sim / np.sqrt(np.outer(ceil, ceil))
    return sim, norm


def shift(image, offset, fill: float | str = "grey") -> np.ndarray:
    """``image`` (C, *spatial) moved by ``offset`` pixels per spatial axis (output[y] = image[y − offset]);
    uncovered pixels get ``fill``: a number, ``"grey"`` (0.5) or ``"mean"`` (the image's mean per channel)."""
    img = _np(image)
    offset = [int(d) for d in offset]
    ndim = len(offset)
    if fill == "grey":
        value = np.full(img.shape[:img.ndim - ndim], 0.5)
    elif fill == "mean":
        value = img.reshape(img.shape[:img.ndim - ndim] + (-1,)).mean(-1)
    elif isinstance(fill, (int, float)):
        value = np.full(img.shape[:img.ndim - ndim], float(fill))
    else:
        raise EdgewiseError(f"unknown fill {fill!r}; use a number or one of {', '.join(_FILLS)}")
    out = np.broadcast_to(value.reshape(value.shape + (1,) * ndim), img.shape).copy()
    src, dst = [], []
    for d, n in zip(offset, img.shape[img.ndim - ndim:]):
        if abs(d) >= n:
            return out
        src.append(slice(max(0, -d), n - max(0, d)))
        dst.append(slice(max(0, d), n - max(0, -d)))
    out[(Ellipsis, *dst)] = img[(Ellipsis, *src)]
    return out

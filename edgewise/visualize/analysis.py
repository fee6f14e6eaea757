"""Does a unit's preferred input depend on where its receptive field sits? (Zipser 2015)

The same channel is visualised at several positions of its map (one batched :func:`maximize`, several random
starts per position). Each preferred image is cut to its unit's receptive-field box (:func:`rf_crop`), so crops
of different positions are aligned pixel for pixel, and pixels that fall off the image are masked out.

Definitions (all per channel; ``S`` seeds, positions ``p``, ``q``, reference position ``r``, by default the
centre):

* ``similarity(a, b)``: Pearson correlation of two aligned crops over the pixels inside the image for both
  (all channels pooled); NaN below :data:`MIN_PIXELS` such pixels, or when either crop is flat there (standard
  deviation below :data:`MIN_STD`: a saturated all-bright patch has no pattern to correlate).
* seed similarity (noise ceiling) ``ceil[p]``: mean similarity over the S·(S−1)/2 pairs of different seeds at p.
* ``similarity[p, q]`` (p ≠ q): mean over all S² seed pairs (every row of the batch starts from its own noise).
* ``normalised[p, q] = similarity[p, q] / sqrt(ceil[p]·ceil[q])``: 1 when the two positions agree as well as
  two runs at one position do. NaN unless both ceilings reach :data:`MIN_CEILING` (below it the unit has no
  reproducible preferred pattern there). Not clipped: noise can take it past 1.
* ``cross_activation[p, q]``: the unit at p shown q's preferred images shifted by the offset between the two
  boxes (q's field lands on p's; uncovered pixels are 0.5 grey or the image mean), mean over seeds, divided by
  its mean response to its own preferred images (NaN when that is ≤ 0). The diagonal is 1.
* ``index = 1 − mean over p of clip(normalised[p, r], −1, 1)``, for p ≠ r whose unit differs from r's (NaN
  terms skipped): 0 when every position prefers the centre's pattern, 1 when they are unrelated, up to 2 when
  they are opposite.
* ``activation_index = 1 − mean over the same p of clip(cross_activation[p, r], −1, 1)``: how much of its
  best response the unit at p loses when shown the centre's preferred image instead of its own.

Defaults differ from :func:`maximize`'s: ``param="pixels"``, ``jitter=0``, ``lr=0.1``. Pixels the unit ignores
then stay at their grey start and barely move the correlation, and no jitter blurs the pattern of units whose
field is only a few pixels wide (a jitter of 2 erases a 5×5 unit's pattern).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import EdgewiseError
from ..results import Result
from .crops import _FILLS, MIN_CEILING, MIN_PIXELS, _int_box, _nanmean, pairwise, rf_crop, shift
from .engine import _frozen, activations, maximize, model_device, placed
from .objectives import channel as channel_objective
from .objectives import resolve, unit
from .results import Visualization

__all__ = ["position_dependence", "PositionDependence", "index_vs_rf", "IndexVsRF", "tiled", "MIN_CEILING",
           "POSITIONS", "DEFAULTS"]

#: what position analysis passes to :func:`maximize` unless told otherwise
DEFAULTS = {"param": "pixels", "jitter": 0, "lr": 0.1}
#: default positions: the centre, two edges, a corner and the opposite corner
POSITIONS = ("center", "top", "left", "top_left", "bottom_right")


# ------------------------------------------------------------------ results

@dataclass
class PositionDependence(Result):
    """How the preferred input of one channel changes with the position of its unit.

    Attributes:
        model, layer, channel, input_shape: what was measured.
        labels: the positions as given (anchors, or indices as text); ``positions``: resolved (row, col).
        boxes: per position, the unclipped receptive-field box ((lo, hi) per axis, hi inclusive).
        rf_size: the field's size per axis (px); ``fraction_inside``: per position, the share of the box inside
            the image.
        seed_similarity: (P,) the noise ceiling; ``similarity``, ``normalised``, ``cross_activation``: (P, P).
        reference: the index of the reference position (the centre).
        index, activation_index: the position-dependence indices (NaN when no position differs from the
            reference).
        images: (P, S, C, *spatial) preferred images; ``final``: (P, S) the unit's value on them.
        seconds: wall time of the measurement; ``config``: settings.
    """

    model: str
    layer: str
    channel: int
    input_shape: tuple
    labels: list
    positions: list
    boxes: list
    rf_size: tuple
    fraction_inside: np.ndarray
    seed_similarity: np.ndarray
    similarity: np.ndarray
    normalised: np.ndarray
    cross_activation: np.ndarray
    reference: int
    index: float
    activation_index: float
    images: np.ndarray = field(repr=False)
    final: np.ndarray = field(repr=False)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)
    kind = "position_dependence"

    def to_dict(self) -> dict:
        return {"model": self.model, "layer": self.layer, "channel": self.channel,
                "input_shape": list(self.input_shape), "labels": self.labels,
                "positions": [list(p) for p in self.positions],
                "boxes": [[list(ax) for ax in b] for b in self.boxes], "rf_size": list(self.rf_size),
                "fraction_inside": self.fraction_inside, "seed_similarity": self.seed_similarity,
                "similarity": self.similarity, "normalised": self.normalised,
                "cross_activation": self.cross_activation, "reference": self.reference,
                "index": self.index, "activation_index": self.activation_index, "final": self.final,
                "seconds": self.seconds, "config": self.config}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"images": self.images, "final": self.final, "similarity": self.similarity,
                "normalised": self.normalised, "cross_activation": self.cross_activation}

    def visualization(self) -> Visualization:
        """The preferred images as a :class:`Visualization` (one objective per position), for its grid figure."""
        return Visualization(self.images, np.zeros((0, *self.final.shape), np.float32), self.final,
                             [repr(unit(self.layer, self.channel, tuple(p))) for p in self.positions], self.config)

    def crops(self) -> tuple[np.ndarray, np.ndarray]:
        """Aligned receptive-field crops (P, S, C, *rf_size), NaN off the image, and masks (P, *rf_size)."""
        pairs = [[rf_crop(img, box) for img in row] for row, box in zip(self.images, self.boxes)]
        return (np.stack([np.stack([c for c, _ in row]) for row in pairs]),
                np.stack([row[0][1] for row in pairs]))


@dataclass
class IndexVsRF(Result):
    """The position-dependence index of several channels per layer against receptive-field size.

    Attributes:
        layers, channels: per layer, the channels measured.
        rf_size: (L, axes) receptive-field size (px); ``rf_fraction``: (L,) size / image size, mean over axes.
        index, activation_index: (L, K) per layer and channel (NaN where a layer has fewer channels).
        mean_index: (L,) mean over channels; ``trend``: Spearman rank correlation of ``mean_index`` with
            ``rf_fraction`` (Zipser: positive); NaN with fewer than 3 layers.
        seconds: (L,) wall time per layer. ``results``: the :class:`PositionDependence` of every channel.
    """

    model: str
    input_shape: tuple
    layers: list
    channels: list
    positions: list
    rf_size: np.ndarray
    rf_fraction: np.ndarray
    index: np.ndarray
    activation_index: np.ndarray
    mean_index: np.ndarray
    trend: float
    seconds: np.ndarray
    config: dict = field(default_factory=dict)
    results: list = field(default_factory=list, repr=False)
    kind = "index_vs_rf"

    def to_dict(self) -> dict:
        return {"model": self.model, "input_shape": list(self.input_shape), "layers": self.layers,
                "channels": self.channels, "positions": self.positions, "rf_size": self.rf_size,
                "rf_fraction": self.rf_fraction, "index": self.index, "activation_index": self.activation_index,
                "mean_index": self.mean_index, "trend": self.trend, "seconds": self.seconds,
                "config": self.config}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"index": self.index, "activation_index": self.activation_index, "rf_fraction": self.rf_fraction}


# ------------------------------------------------------------------ measurement

def _model_name(model) -> str:
    return str(getattr(model, "spec", type(model).__name__))


def _label(position) -> str:
    return position if isinstance(position, str) else str(tuple(int(p) for p in np.atleast_1d(position)))


def _map_shape(model, layer: str, shape, preprocess, device=None) -> tuple[int, ...]:
    device = model_device(model, device)
    x = torch.full((1, *shape), 0.5, device=device)
    with _frozen(model), placed(model, device), torch.no_grad():
        a = activations(model, (preprocess or (lambda t: t))(x), layer)[layer]
    if a.ndim != len(shape) + 1:
        raise EdgewiseError(f"layer {layer!r} has output shape {tuple(a.shape[1:])}, not a "
                            f"{len(shape) - 1}-D map with channels; choose a convolutional layer")
    return tuple(a.shape[1:])


def _geometry(model, layer: str, shape, map_shape, positions):
    from ..geometry import receptive_field

    rf = receptive_field(model, tuple(shape))
    lf = rf[layer]
    if tuple(a.n for a in lf.axes) != tuple(map_shape[1:]):
        raise EdgewiseError(f"the receptive-field trace of {layer!r} has a {tuple(a.n for a in lf.axes)} grid but "
                            f"the layer's output is {tuple(map_shape[1:])}; position analysis needs them to agree")
    if not lf.exact:
        warnings.warn(f"the receptive field of {layer!r} is not exact (uneven or merged windows); boxes are "
                      "approximate", stacklevel=3)
    idx = [resolve(p, map_shape[1:], layer) for p in positions]
    boxes = [rf.box(layer, i) for i in idx]
    for b in boxes:
        _int_box(b, len(idx[0]))
    inside = rf.fraction_inside(layer)
    frac = np.array([float(inside[i]) for i in idx])
    size = tuple(int(round(float(s))) for s in lf.size)
    return idx, boxes, frac, size


def _responses(model, layer, ch, index, images, preprocess, chunk: int = 256) -> np.ndarray:
    """The unit (layer, ch, index[i]) on images[i], for every i."""
    device = model_device(model)
    prep = preprocess or (lambda t: t)
    out = []
    with _frozen(model), torch.no_grad():
        for a in range(0, len(images), chunk):
            x = torch.as_tensor(np.asarray(images[a:a + chunk]), dtype=torch.float32, device=device)
            act = activations(model, prep(x), layer)[layer][:, ch]
            rows = torch.arange(len(x), device=device)
            where = torch.as_tensor(np.asarray(index[a:a + chunk]), device=device).T
            out.append(act[(rows, *where)].double().cpu().numpy())
    return np.concatenate(out)


def _cross_activation(model, layer, ch, idx, boxes, images, fill, preprocess) -> np.ndarray:
    n_pos, n_seeds = images.shape[:2]
    shifted, where = [], []
    for p, q in itertools.product(range(n_pos), repeat=2):
        offset = [bp[0] - bq[0] for bp, bq in zip(boxes[p], boxes[q])]
        for s in range(n_seeds):
            shifted.append(shift(images[q, s], offset, fill))
            where.append(idx[p])
    resp = _responses(model, layer, ch, where, np.stack(shifted), preprocess).reshape(n_pos, n_pos, n_seeds)
    resp = resp.mean(-1)
    own = np.diag(resp).copy()
    own[~(own > 0)] = np.nan
    return resp / own[:, None]


def _indices(norm, cross, idx, ref) -> tuple[float, float]:
    others = [p for p in range(len(idx)) if p != ref and tuple(idx[p]) != tuple(idx[ref])]
    if not others:
        return math.nan, math.nan
    return (1.0 - _nanmean(np.clip(norm[others, ref], -1, 1)),
            1.0 - _nanmean(np.clip(cross[others, ref], -1, 1)))


def _prepare(model, input_shape, seeds, positions, reference):
    from .._trace import parse_shape

    if not isinstance(model, nn.Module):
        raise EdgewiseError(f"position analysis needs an nn.Module, got {type(model).__name__}")
    shape = tuple(parse_shape(input_shape))
    if int(seeds) < 2:
        raise EdgewiseError(f"seeds must be at least 2 (the seed-to-seed noise ceiling needs pairs); got {seeds}")
    positions = [positions] if isinstance(positions, str) else list(positions)
    if not positions:
        raise EdgewiseError("give at least one position")
    labels = [_label(p) for p in positions]
    if _label(reference) not in labels:
        positions, labels = [reference] + positions, [_label(reference)] + labels
    return shape, positions, labels, labels.index(_label(reference))


def _analyse(model, layer, ch, shape, labels, idx, boxes, frac, size, vis_images, final, ref, fill,
             preprocess, min_pixels, min_ceiling, seconds, config) -> PositionDependence:
    pairs = [[rf_crop(img, box, shape[1:]) for img in row] for row, box in zip(vis_images, boxes)]
    crops = np.stack([np.stack([c for c, _ in row]) for row in pairs])
    masks = np.stack([row[0][1] for row in pairs])
    sim, norm = pairwise(crops, masks, min_pixels, min_ceiling)
    cross = _cross_activation(model, layer, ch, idx, boxes, vis_images, fill, preprocess)
    index, act_index = _indices(norm, cross, idx, ref)
    return PositionDependence(
        model=_model_name(model), layer=layer, channel=int(ch), input_shape=shape, labels=labels,
        positions=[tuple(int(v) for v in i) for i in idx], boxes=[tuple(tuple(ax) for ax in b) for b in boxes],
        rf_size=size, fraction_inside=frac, seed_similarity=np.diag(sim).copy(), similarity=sim, normalised=norm,
        cross_activation=cross, reference=ref, index=index, activation_index=act_index,
        images=vis_images.astype(np.float32), final=np.asarray(final), seconds=seconds, config=config)


def _measure(model, layer, channels, input_shape, positions, reference, seeds, steps, fill, min_pixels,
             min_ceiling, options) -> list[PositionDependence]:
    """One batched maximize over channels × positions × seeds, then the per-channel analysis."""
    if fill not in _FILLS:
        raise EdgewiseError(f"unknown fill {fill!r}; use one of {', '.join(_FILLS)}")
    start = time.perf_counter()
    options = {**DEFAULTS, **options}
    shape, positions, labels, ref = _prepare(model, input_shape, seeds, positions, reference)
    preprocess = options.get("preprocess")
    with placed(model, model_device(model, options.get("device"))):
        map_shape = _map_shape(model, layer, shape, preprocess)
        for ch in channels:
            if not 0 <= int(ch) < map_shape[0]:
                raise EdgewiseError(f"channel {ch} is outside layer {layer!r}, which has {map_shape[0]} channels")
        idx, boxes, frac, size = _geometry(model, layer, shape, map_shape, positions)
        objectives = [unit(layer, int(ch), i) for ch in channels for i in idx]
        vis = maximize(model, objectives, shape, seeds=int(seeds), steps=int(steps), **options)
        n_pos = len(idx)
        out = []
        config = dict(vis.config, positions=labels, reference=labels[ref], fill=fill, min_pixels=int(min_pixels),
                      min_ceiling=float(min_ceiling))
        per = (time.perf_counter() - start) / max(1, len(channels))
        for k, ch in enumerate(channels):
            t = time.perf_counter()
            res = _analyse(model, layer, int(ch), shape, labels, idx, boxes, frac, size,
                           vis.images[k * n_pos:(k + 1) * n_pos], vis.final[k * n_pos:(k + 1) * n_pos], ref, fill,
                           preprocess, min_pixels, min_ceiling, 0.0, dict(config))
            res.seconds = per + time.perf_counter() - t
            out.append(res)
    return out


def position_dependence(model: nn.Module, layer: str, channel: int, input_shape, positions=POSITIONS, *,
                        seeds: int = 4, steps: int = 128, reference="center", fill: str = "grey",
                        min_pixels: int = MIN_PIXELS, min_ceiling: float = MIN_CEILING,
                        **options) -> PositionDependence:
    """Visualise unit ``(layer, channel)`` at several positions and measure how its preferred input changes.

    Args:
        model: any module with a spatial ``layer`` whose receptive fields are whole-pixel boxes.
        positions: (row, col) indices or anchors (``center``, ``top``, ``top_left``, ...), resolved on the
            layer's real map; ``reference`` (default ``center``) is added first when missing.
        seeds: random starts per position (≥ 2, for the noise ceiling); ``steps``: optimisation steps.
        fill: what fills pixels uncovered by a shift in the cross-activation test: ``grey`` (0.5) or ``mean``.
        min_pixels: fewest jointly valid pixels for a similarity (:data:`MIN_PIXELS`).
        min_ceiling: seed-to-seed similarity a position needs for its normalised similarities (:data:`MIN_CEILING`).
        options: passed to :func:`maximize` (``lr``, ``param``, ``jitter``, ``preprocess``, ``seed``,
            ``progress``, ``device``, ``crop``) over :data:`DEFAULTS`; ``preprocess`` also applies to the
            cross-activation images, ``device`` (default: the model's) to the whole analysis.

    Returns:
        a :class:`PositionDependence` (definitions in the module docstring).

    Example:
        >>> pd = position_dependence(net, "conv6", 0, (1, 32, 32), seeds=3, steps=48)  # doctest: +SKIP
        >>> pd.index, pd.normalised
    """
    return _measure(model, layer, [int(channel)], input_shape, positions, reference, seeds, steps, fill,
                    min_pixels, min_ceiling, options)[0]


def _spearman(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    rx, ry = (np.argsort(np.argsort(v[ok])).astype(float) for v in (x, y))  # ties broken by order
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else math.nan


def index_vs_rf(model: nn.Module, input_shape, layers: Sequence[str] | None = None, channels=(0, 1, 2),
                positions=POSITIONS, *, seeds: int = 3, steps: int = 64, reference="center", fill: str = "grey",
                min_pixels: int = MIN_PIXELS, min_ceiling: float = MIN_CEILING, **options) -> IndexVsRF:
    """The position-dependence index of a few channels of each layer against receptive-field size.

    Args:
        layers: dotted layer names (default: every convolution).
        channels: channel numbers to measure in every layer (those beyond a layer's width are skipped).
        positions, seeds, steps, reference, fill, min_pixels, min_ceiling, options: as for
            :func:`position_dependence`; one batched :func:`maximize` per layer covers all its channels.

    Returns:
        an :class:`IndexVsRF`. Zipser (2015): the index rises with ``rf_fraction`` (positive ``trend``).
    """
    from .._trace import parse_shape

    shape = tuple(parse_shape(input_shape))
    if layers is None:
        layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    layers = [layers] if isinstance(layers, str) else list(layers)
    channels = [int(c) for c in np.atleast_1d(channels)]
    if not layers or not channels:
        raise EdgewiseError("index_vs_rf needs at least one layer and one channel")
    results, used, seconds = [], [], []
    for layer in layers:
        width = _map_shape(model, layer, shape, options.get("preprocess"), options.get("device"))[0]
        chs = [c for c in channels if 0 <= c < width]
        if not chs:
            raise EdgewiseError(f"none of channels {channels} exists in layer {layer!r} ({width} channels)")
        t = time.perf_counter()
        results.append(_measure(model, layer, chs, shape, positions, reference, seeds, steps, fill, min_pixels,
                                min_ceiling, options))
        seconds.append(time.perf_counter() - t)
        used.append(chs)
    k = max(len(c) for c in used)
    index = np.full((len(layers), k), np.nan)
    act = np.full((len(layers), k), np.nan)
    for i, rs in enumerate(results):
        index[i, :len(rs)] = [r.index for r in rs]
        act[i, :len(rs)] = [r.activation_index for r in rs]
    rf_size = np.array([rs[0].rf_size for rs in results], dtype=float)
    rf_fraction = (rf_size / np.asarray(shape[1:], dtype=float)).mean(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_index = np.nanmean(index, axis=1)
    return IndexVsRF(model=_model_name(model), input_shape=shape, layers=layers, channels=used,
                     positions=results[0][0].labels, rf_size=rf_size, rf_fraction=rf_fraction, index=index,
                     activation_index=act, mean_index=mean_index, trend=_spearman(rf_fraction, mean_index),
                     seconds=np.array(seconds), config=dict(results[0][0].config),
                     results=[r for rs in results for r in rs])


def tiled(model: nn.Module, layer: str, channel: int | Sequence[int], input_shape, seeds: int = 4,
          **options) -> Visualization:
    """The preferred image of a whole channel (its mean over every position): :func:`maximize` of
    :func:`~edgewise.visualize.channel` for one or several channels; options as for :func:`maximize`."""
    chs = [int(c) for c in np.atleast_1d(channel)]
    return maximize(model, [channel_objective(layer, c) for c in chs], input_shape, seeds=seeds, **options)

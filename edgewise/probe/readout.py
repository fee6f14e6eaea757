"""Position information readout (after Islam, Jia & Bruce, ICLR 2020): how well can position be read from a
layer's features?

For each chosen layer the frozen model's features are taken on real inputs, and a readout is fitted to predict
a position map *at the feature map's own positions*: ``horizontal`` (x, 0 at the left column and 1 at the
right), ``vertical`` (y, 0 at the top row and 1 at the bottom) and ``gaussian`` (1 at the map's centre, falling
off with the distance from it). A 1-D model has ``horizontal`` (along its one axis) and ``gaussian``.

The readout cannot make position up by itself: it is one linear map over channels shared by every position (a
1×1 convolution with no padding), so two positions with equal features get equal predictions, and everything
it predicts about position comes from the features. It is fitted in closed form by ridge regression on
standardised channels (exact and deterministic, no SGD); the ridge strength is chosen per target on a
validation split from :data:`ALPHAS`, then the readout is refitted on training + validation inputs and scored
on held-out test inputs (:data:`SPLIT`). Scores, as in the paper: the Spearman correlation between the
predicted and the target map over positions, per test image then averaged over images; and the mean absolute
error (MAE) over positions and images, beside the MAE of predicting the target's mean everywhere.

Where a layer's features are uniform over positions in every input (every channel's max equals its min,
checked exactly), every readout's prediction is constant over the map: the layer carries no position
information, and its Spearman is 0 by definition. This is what circular padding gives on a constant input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EdgewiseError
from ._common import (ProbeResult, cached, check_layers, data_key, each_batch, fingerprint, generator,
                      inputs, placement, progress_bar, run_key, running, subject, to_numpy)

__all__ = ["readout", "Readout", "TARGETS", "target_maps", "spearman", "ridge_fit", "ALPHAS", "SPLIT",
           "MAX_LAYERS", "SIGMA"]

KIND = "readout"

#: target name → what it is at each position of a feature map
TARGETS = {
    "horizontal": "x across the map: 0 at the left column, 1 at the right (1-D: along the signal)",
    "vertical": "y across the map: 0 at the top row, 1 at the bottom (2-D only)",
    "gaussian": "exp(−d² / (2·0.25²)), d the distance from the map's centre with the map scaled to [0, 1]",
}
#: width of the Gaussian target, in units of the map's side
SIGMA = 0.25
#: ridge strengths tried, relative to standardised (unit-variance) channels
ALPHAS = tuple(10.0 ** k for k in range(-6, 3))
#: fractions of the inputs for fitting, choosing the ridge strength, and testing
SPLIT = (0.5, 0.25, 0.25)
#: a model with more convolutions than this is read at this many, spread evenly (first and last included)
MAX_LAYERS = 12


# -------------------------------------------------------------------------------------------------- targets

def _axis(n: int) -> np.ndarray:
    """Positions 0 … n−1 scaled to [0, 1] (a one-position axis sits at 0.5, its centre)."""
    return np.linspace(0.0, 1.0, n) if n > 1 else np.full(1, 0.5)


def target_maps(spatial, targets) -> np.ndarray:
    """The target maps ``(len(targets), *spatial)`` for a feature map of size ``spatial`` (L or H, W)."""
    spatial = tuple(int(s) for s in spatial)
    grids = np.meshgrid(*[_axis(s) for s in spatial], indexing="ij")
    out = []
    for t in targets:
        if t == "horizontal":
            out.append(grids[-1])
        elif t == "vertical":
            out.append(grids[0])
        else:
            out.append(np.exp(-sum((g - 0.5) ** 2 for g in grids) / (2 * SIGMA ** 2)))
    return np.stack(out).astype(np.float64)


def _check_targets(targets, ndim: int, name: str) -> list[str]:
    if targets is None:
        return ["horizontal", "vertical", "gaussian"] if ndim == 2 else ["horizontal", "gaussian"]
    targets = [targets] if isinstance(targets, str) else list(targets)
    for t in targets:
        if t not in TARGETS:
            raise EdgewiseError(f"readout: unknown target {t!r}; choose from {', '.join(TARGETS)}")
        if t == "vertical" and ndim == 1:
            raise EdgewiseError(f"readout: {name} takes 1-D inputs, which have no 'vertical' target; use "
                                "'horizontal' (along the signal) or 'gaussian'")
    if not targets or len(set(targets)) != len(targets):
        raise EdgewiseError(f"readout: targets must be distinct names from {', '.join(TARGETS)}, got {targets}")
    return targets


# --------------------------------------------------------------------------------------------------- scores

def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 0 … n−1 of ``v``, ties given their average rank."""
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
    return (np.bincount(inv, weights=ranks) / counts)[inv]


def spearman(prediction, target) -> float:
    """Spearman's rank correlation of two maps over positions. nan when the target is constant (no ranking to
    match); 0 when the prediction is constant (it ranks nothing: no position information)."""
    p, t = np.ravel(prediction).astype(np.float64), np.ravel(target).astype(np.float64)
    if t.max() == t.min():
        return math.nan
    if p.max() == p.min():
        return 0.0
    rp, rt = _ranks(p), _ranks(t)
    rp, rt = rp - rp.mean(), rt - rt.mean()
    return float(rp @ rt / math.sqrt((rp @ rp) * (rt @ rt)))


# ------------------------------------------------------------------------------------------------ the ridge

class _Moments:
    """Running sums over rows (one row = one position of one input) of a layer's features x and targets y."""

    def __init__(self, c: int, t: int):
        self.n = 0
        self.sx, self.sy = np.zeros(c), np.zeros(t)
        self.sxx, self.sxy, self.syy = np.zeros((c, c)), np.zeros((c, t)), np.zeros(t)
        self.lo, self.hi = np.full(c, np.inf), np.full(c, -np.inf)

    def add(self, f: torch.Tensor, y: torch.Tensor) -> None:
        """Add inputs' features ``f`` (B, C, P) against the targets ``y`` (T, P), in float64 (summed on their
        device, accumulated here)."""
        b, _, p = f.shape
        x = f.permute(0, 2, 1).reshape(-1, f.shape[1])
        self.n += b * p
        self.sx += to_numpy(x.sum(0))
        self.sy += b * to_numpy(y.sum(1))
        self.sxx += to_numpy(x.T @ x)
        self.sxy += to_numpy(torch.einsum("bcp,tp->ct", f, y))
        self.syy += b * to_numpy((y ** 2).sum(1))
        self.lo, self.hi = np.minimum(self.lo, to_numpy(x.amin(0))), np.maximum(self.hi, to_numpy(x.amax(0)))

    def __add__(self, other: "_Moments") -> "_Moments":
        out = _Moments(len(self.sx), len(self.sy))
        for k in ("n", "sx", "sy", "sxx", "sxy", "syy"):
            setattr(out, k, getattr(self, k) + getattr(other, k))
        out.lo, out.hi = np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi)
        return out


def _solve(m: _Moments, alphas) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each ridge strength (one per target column), the readout (w (C, T) with zeros for channels that
    are constant over the rows, b (T,)) minimising mean squared error + α·‖w·sd‖² (ridge on standardised
    channels, intercept free). One eigendecomposition serves every α (torch's: far faster than numpy's here)."""
    keep = m.hi > m.lo  # a channel constant over every row cannot help (exact, not a variance threshold)
    mu, my = m.sx / m.n, m.sy / m.n
    cxx = m.sxx / m.n - np.outer(mu, mu)
    cxy = m.sxy / m.n - np.outer(mu, my)
    k = np.flatnonzero(keep)
    sd = np.sqrt(np.maximum(np.diag(cxx)[k], 1e-300))
    vals, vecs = torch.linalg.eigh(torch.from_numpy(cxx[np.ix_(k, k)] / np.outer(sd, sd)))
    proj = vecs.T @ torch.from_numpy(cxy[k] / sd[:, None])
    out = []
    for alpha in alphas:
        w = np.zeros_like(cxy)
        w[k] = (vecs @ (proj / (vals.clamp(min=0.0) + alpha)[:, None])).numpy() / sd[:, None]
        out.append((w, my - mu @ w))
    return out


def _mse(m: _Moments, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared error of the readout (w, b) per target over the rows summed in ``m``."""
    quad = (w * (torch.from_numpy(m.sxx) @ torch.from_numpy(w)).numpy()).sum(0)
    total = m.syy - 2 * np.einsum("ct,ct->t", w, m.sxy) - 2 * b * m.sy + quad + 2 * b * (m.sx @ w) + m.n * b ** 2
    return total / m.n


def ridge_fit(x, y, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The readout of rows ``x`` (R, C) onto ``y`` (R, T) that :func:`readout` fits: ridge on standardised
    columns with strength ``alpha``, free intercept. Returns (w (C, T), b (T,)) in the raw units of ``x``."""
    x, y = torch.as_tensor(np.asarray(x, np.float64)), torch.as_tensor(np.asarray(y, np.float64))
    m = _Moments(x.shape[1], y.shape[1])
    m.add(x.T[None], y.T)
    return _solve(m, [alpha])[0]


def _choose(fit: _Moments, val: _Moments) -> np.ndarray:
    """The ridge strength per target with the lowest validation error (the smaller one on a tie)."""
    errors = np.stack([_mse(val, w, b) for w, b in _solve(fit, ALPHAS)])  # (alphas, T)
    return np.asarray(ALPHAS)[np.argmin(errors, axis=0)]


# --------------------------------------------------------------------------------------------------- result

@dataclass
class Readout(ProbeResult):
    """How much position a linear readout recovers from each layer's features.

    Attributes:
        model, shape, data, n: what was probed (model name, input shape, data kind, inputs per seed).
        seeds: the seeds the scores vary over; ``over`` says what they seed (``input seeds``: the inputs and
            their split; ``model seeds``: trained networks, for results combined with :meth:`stack`).
        targets, layers: the axes of the score arrays. ``maps``: each layer's feature-map size; ``channels``.
        split: inputs used to fit, to choose the ridge strength, and to test, per seed.
        spearman: (seeds, layers, targets) mean over test inputs of each input's Spearman correlation between
            the predicted and the target map (nan where the target is constant on the map).
        mae: (seeds, layers, targets) mean absolute error over positions and test inputs.
        mae_constant: the same for predicting the target's fitted mean everywhere (the no-information baseline).
        ridge: (seeds, layers, targets) the chosen ridge strength.
        uniform: (seeds, layers) whether every channel's max equals its min over positions, in every input.
        example_prediction, example_target: (targets, *map) the deepest layer's prediction for the first test
            input of the first seed, and the target maps.
    """

    model: str
    shape: list
    data: str
    n: int
    seeds: list
    over: str
    targets: list
    layers: list
    maps: list
    channels: list
    split: dict
    spearman: np.ndarray
    mae: np.ndarray
    mae_constant: np.ndarray
    ridge: np.ndarray
    uniform: np.ndarray
    example_prediction: np.ndarray
    example_target: np.ndarray
    kind = KIND

    def interval(self, name: str = "spearman") -> tuple[np.ndarray, np.ndarray]:
        """Mean and 95 % half-width over seeds of a score array (layers, targets); half-width nan for 1 seed."""
        from ..experiments.results import interval

        values = np.asarray(getattr(self, name), dtype=np.float64)
        mean, half = np.full(values.shape[1:], np.nan), np.full(values.shape[1:], np.nan)
        for idx in np.ndindex(*values.shape[1:]):
            v = values[(slice(None), *idx)]
            if np.isfinite(v).all():
                mean[idx], half[idx] = interval(v)
        return mean, half

    @classmethod
    def stack(cls, results, over: str = "model seeds", seeds=None) -> "Readout":
        """Several results of the same layers and targets (e.g. one per trained seed) as one, over ``seeds``
        (default 0, 1, …); the example maps are the first result's."""
        results = list(results)
        first = results[0]
        for r in results[1:]:
            if r.layers != first.layers or r.targets != first.targets or r.maps != first.maps:
                raise EdgewiseError(f"Readout.stack: {r.model} was read at other layers, targets or map sizes than "
                                    f"{first.model}; stack results of the same network with the same options")
        cat = {k: np.concatenate([getattr(r, k) for r in results])
               for k in ("spearman", "mae", "mae_constant", "ridge", "uniform")}
        seeds = list(seeds) if seeds is not None else list(range(len(cat["spearman"])))
        return cls(model=first.model, shape=first.shape, data=first.data, n=first.n, seeds=seeds, over=over,
                   targets=first.targets, layers=first.layers, maps=first.maps, channels=first.channels,
                   split=first.split, example_prediction=first.example_prediction,
                   example_target=first.example_target, **cat)

    @property
    def summary(self) -> dict:
        mean, half = self.interval("spearman")
        mae, mae_half = self.interval("mae")
        base = self.interval("mae_constant")[0]
        deepest = {t: {"spearman": _num(mean[-1, j]), "spearman_half_width": _num(half[-1, j]),
                       "mae": _num(mae[-1, j]), "mae_half_width": _num(mae_half[-1, j]),
                       "mae_constant": _num(base[-1, j])} for j, t in enumerate(self.targets)}
        return {"model": self.model, "data": self.data, "seeds": len(self.seeds), "over": self.over,
                "deepest_layer": self.layers[-1], "deepest": deepest,
                "uniform_layers": [l for l, u in zip(self.layers, self.uniform.all(0)) if u]}

    def text(self) -> list[str]:
        return _sentences(self)


def _num(x) -> float | None:
    x = float(x)
    return round(x, 4) if math.isfinite(x) else None


# ------------------------------------------------------------------------------------------------ sentences

def _pm(mean: float, half: float, digits: int = 2) -> str:
    if mean == 0 and (half == 0 or math.isnan(half)):  # every seed exactly 0 (half-width 0, or nan for one seed)
        return "0 exactly"
    return _fixed(mean, digits) + (f" ± {_fixed(half, digits)}" if math.isfinite(half) else "")


def _fixed(v: float, digits: int) -> str:
    """``v`` with ``digits`` decimals, or two significant digits where that would print a non-zero as 0."""
    text = f"{v:.{digits}f}"
    return f"{v:.2g}" if v != 0 and float(text) == 0 else text


def _versus(a: float, b: float) -> str:
    return "below" if a < b else "equal to" if a == b else "above"


def _where(r: Readout, i: int) -> str:
    return f"{r.layers[i]} ({'×'.join(map(str, r.maps[i]))})"


def _sentences(r: Readout) -> list[str]:
    mean, half = r.interval("spearman")
    mae, mae_half = r.interval("mae")
    base = r.interval("mae_constant")[0]
    k = len(r.seeds)
    spread = f" (mean ± 95 % interval over {k} {r.over})" if k > 1 else f" ({r.over[:-1]} {r.seeds[0]})"
    out = [f"Position read from {r.model}'s features by a linear readout shared by every position, on "
           f"{r.data} inputs ({r.split['n_train'] + r.split['n_val']} to fit, {r.split['n_test']} held out)"
           f"{spread}: Spearman correlation with the target map and mean absolute error, per layer."]
    last = len(r.layers) - 1
    parts = []
    for j, t in enumerate(r.targets):
        if math.isfinite(mean[last, j]):
            parts.append(f"{t} Spearman {_pm(mean[last, j], half[last, j])}, "
                         f"MAE {_pm(mae[last, j], mae_half[last, j], 3)} ({_versus(mae[last, j], base[last, j])} "
                         f"the {base[last, j]:.3f} of predicting the mean)")
        else:
            parts.append(f"{t}: no score (the target is constant on this map)")
    out.append(f"At the deepest layer read, {_where(r, last)}: " + "; ".join(parts) + ".")
    unread = []
    for j, t in enumerate(r.targets):
        col = mean[:, j]
        if not np.isfinite(col).any() or len(r.layers) == 1:
            continue
        if not np.nanmax(col) > 0:
            unread.append(t)
            continue
        best = int(np.nanargmax(col))
        out.append(f"The {t} map is read best at {_where(r, best)}: Spearman {_pm(col[best], half[best, j])}.")
    if unread:
        out.append(f"No layer ranks the {_list(unread)} map{'s' if len(unread) > 1 else ''}: the mean Spearman is "
                   "0 or below at every layer.")
    uniform = r.uniform.all(0)
    if uniform.any():
        names = [r.layers[i] for i in np.flatnonzero(uniform)]
        out.append(f"At {len(names)} of {len(r.layers)} layers ({_list(names)}) every channel's maximum equals its "
                   f"minimum over positions in every input: the features are uniform, so any readout predicts the "
                   "same value everywhere and these layers carry no position information (Spearman 0 by "
                   "definition).")
    else:
        out.append(f"No layer's features are uniform over positions: at each of the {len(r.layers)} layers some "
                   "channel differs between positions in some input.")
    undefined = [(t, r.layers[i]) for j, t in enumerate(r.targets) for i in range(len(r.layers))
                 if not np.isfinite(mean[i, j]) and not np.isfinite(r.spearman[:, i, j]).any()]
    if undefined:
        out.append(f"Left out: {_list([f'{t} at {l}' for t, l in undefined])}, where the target map is constant "
                   "(a map of one position, or 2 per axis for the Gaussian), so no ranking can be matched.")
    return out


def _list(items, most: int = 6) -> str:
    items = list(items)
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


# ---------------------------------------------------------------------------------------------- the probe

def _spread(names: list[str], most: int = MAX_LAYERS) -> list[str]:
    """``names`` when at most ``most``, else ``most`` of them evenly spaced (first and last kept)."""
    if len(names) <= most:
        return list(names)
    return [names[i] for i in sorted(set(np.round(np.linspace(0, len(names) - 1, most)).astype(int)))]


def _split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the fitting, validation and test inputs: a seeded permutation cut by :data:`SPLIT`."""
    perm = torch.randperm(n, generator=generator(seed + 7919)).numpy()
    a, b = max(1, round(n * SPLIT[0])), max(1, round(n * SPLIT[1]))
    return perm[:a], perm[a:a + b], perm[a + b:]


def _abs_error(pred: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Sum over inputs of the mean absolute error over positions, per target (pred (B, T, P), y (T, P)); one
    memory layout, so equal predictions give bit-equal errors."""
    return to_numpy((pred.contiguous() - y).abs().mean(2).sum(0))


class _Maps:
    """What the passes learn about each layer on first sight (channels, map size, target maps) and whether its
    features have been uniform over positions in every input so far."""

    def __init__(self, layers: list[str], targets: list[str]):
        self.targets, self.shapes, self.ys = targets, {}, {}
        self.uniform = {l: True for l in layers}

    def view(self, name: str, a: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """The layer's output as float64 (B, C, P) on its device, and whether it is uniform over positions in
        every input. The target maps are kept on the same device."""
        if name not in self.ys:
            if a.dim() < 3:
                raise EdgewiseError(f"readout: layer {name} gives shape {tuple(a.shape)}, not a feature map "
                                    "(batch, channels, positions…); choose convolutional layers")
            self.shapes[name] = (int(a.shape[1]), [int(s) for s in a.shape[2:]])
            maps = target_maps(a.shape[2:], self.targets)
            self.ys[name] = torch.from_numpy(maps.reshape(len(self.targets), -1)).to(a.device)
        f = a.detach().double().flatten(2)
        flat = bool((f.amax(2) == f.amin(2)).all())
        self.uniform[name] &= flat
        return f, flat


def _fit(module, x, fit_i, val_i, layers, maps: _Maps, batch: int, bar) -> dict:
    """Layer → (w, b, chosen α per target, the fitted mean per target; tensors on the inputs' device): α chosen
    on the validation inputs, then the readout refitted on fitting + validation inputs."""
    order = np.concatenate([fit_i, val_i])
    is_val = np.isin(order, val_i)
    moments = {}

    def on_batch(start, acts):
        val = torch.from_numpy(is_val[start:start + batch]).to(x.device)
        for name, a in acts.items():
            f, _ = maps.view(name, a)
            pair = moments.setdefault(name, [_Moments(f.shape[1], len(maps.targets)) for _ in range(2)])
            for part, rows in ((pair[0], ~val), (pair[1], val)):
                if rows.any():
                    part.add(f[rows], maps.ys[name])

    each_batch(module, x[torch.from_numpy(order).to(x.device)], layers, on_batch, batch=batch, bar=bar)
    fitted = {}
    for name, (fit, val) in moments.items():
        alphas, both = _choose(fit, val), fit + val
        sols = _solve(both, alphas)
        w = np.stack([w[:, j] for j, (w, _) in enumerate(sols)], 1)
        b = np.array([b[j] for j, (_, b) in enumerate(sols)])
        on = lambda v: torch.from_numpy(v).to(x.device)  # noqa: E731
        fitted[name] = (on(w), on(b), alphas, on(both.sy / both.n))
    return fitted


def _score(module, x, layers, maps: _Maps, fitted: dict, batch: int, bar):
    """(Spearman, MAE, MAE of the fitted mean) per layer and target over the held-out inputs ``x``, and the
    deepest layer's prediction and targets for the first of them."""
    L, T = len(layers), len(maps.targets)
    rho, err, err0 = np.zeros((L, T)), np.zeros((L, T)), np.zeros((L, T))
    example = {}

    def on_batch(start, acts):
        for i, name in enumerate(layers):
            f, flat = maps.view(name, acts[name])
            w, b, _, mean = fitted[name]
            if flat:
                f = f[:, :, :1].expand_as(f)  # equal features give an exactly equal prediction at every position
            pred, y = torch.einsum("bcp,ct->btp", f, w) + b[None, :, None], maps.ys[name]
            err[i] += _abs_error(pred, y)
            err0[i] += _abs_error(mean[None, :, None].expand_as(pred), y)
            pred, y = to_numpy(pred), to_numpy(y)
            for j in range(T):
                rho[i, j] += sum(spearman(p[j], y[j]) for p in pred)
            if start == 0 and i == L - 1:
                size = maps.shapes[name][1]
                example.update(prediction=pred[0].reshape(T, *size), target=y.reshape(T, *size))

    each_batch(module, x, layers, on_batch, batch=batch, bar=bar)
    return rho / len(x), err / len(x), err0 / len(x), example


def _one_seed(module, x: torch.Tensor, layers: list[str], targets: list[str], seed: int, batch: int, bar):
    """Scores of one seed's inputs: (spearman, mae, mae_constant, ridge (L, T); uniform (L,); maps, channels,
    the deepest layer's example prediction)."""
    fit_i, val_i, test_i = _split(len(x), seed)
    maps = _Maps(layers, targets)
    fitted = _fit(module, x, fit_i, val_i, layers, maps, batch, bar)
    rho, err, err0, example = _score(module, x[torch.from_numpy(test_i).to(x.device)], layers, maps, fitted, batch, bar)
    ridge = np.stack([fitted[l][2] for l in layers])
    return (rho, err, err0, ridge, np.array([maps.uniform[l] for l in layers]),
            [maps.shapes[l][1] for l in layers], [maps.shapes[l][0] for l in layers], example)


def readout(model, input_shape=None, *, data=None, n: int = 64, layers=None, targets=None, seed: int = 0,
            seeds: int = 1, batch: int = 16, cache=None, progress: bool = True, device=None) -> Readout:
    """Fit a position readout on each layer's frozen features and score it on held-out inputs.

    Args:
        model: an ``nn.Module`` or a reference (``pretrained:efficientnet-lite0``, ``experiment:TASK:REMEDY:SEED``,
            a spec string …).
        input_shape: C×H×W or C×L (default: the model's own).
        data: a data kind of :data:`edgewise.probe._common.DATA` (``photos``, ``digits``, ``task``,
            ``constant`` …) or a tensor of inputs; default the kind that suits the model.
        n: inputs per seed, split into fitting / validation / test by :data:`SPLIT` (at least 4).
        layers: layer names (default every convolution, or :data:`MAX_LAYERS` of them spread evenly).
        targets: names from :data:`TARGETS` (default horizontal, vertical, gaussian; 1-D: horizontal, gaussian).
        seed, seeds: the first input seed and how many consecutive seeds to run (intervals over them).
        batch: inputs per forward pass. cache: a folder to keep results in. progress: show a progress bar.
        device: where to run (default: where the model's parameters are); the model is moved there for the call
            and back after. Inputs are made in the model's floating dtype; the readout is fitted in float64.

    Returns:
        A :class:`Readout`.

    Example:
        >>> r = readout("conv3/c8, 3*conv3, gap, fc10", (1, 24, 24), data="constant", n=8, progress=False)
        >>> bool(r.uniform[0, -1]), float(r.spearman[0, -1, 0]) > 0.5  # zero padding: the border tells
        (False, True)
    """
    dev = placement(device)
    sub = subject(model, input_shape)
    chosen = check_layers(sub.module, layers) if layers is not None else _spread(check_layers(sub.module, None, sub.shape))
    targets = _check_targets(targets, len(sub.spatial), sub.name)
    if int(n) < 4:
        raise EdgewiseError(f"readout: n = {n} inputs cannot be split into fitting, validation and test inputs; "
                            "use n >= 4 (64 or more for stable scores)")
    if int(seeds) < 1:
        raise EdgewiseError(f"readout: seeds must be at least 1, got {seeds}")
    if isinstance(data, torch.Tensor) and len(data) < 4:
        raise EdgewiseError(f"readout: {len(data)} inputs given; at least 4 are needed to fit and test a readout")
    n = len(data) if isinstance(data, torch.Tensor) else int(n)
    seed_list = [int(seed) + k for k in range(int(seeds))]
    key = {"model": fingerprint(sub.module), "shape": list(sub.shape),
           "data": data_key(data if data is not None else sub.data), "n": n, "seeds": seed_list, "layers": chosen,
           "targets": targets, "imagenet": sub.imagenet,
           "method": {"alphas": list(ALPHAS), "split": list(SPLIT), "sigma": SIGMA}, "run": run_key(sub.module, dev)}

    def compute() -> Readout:
        per_seed = []
        with progress_bar(n * len(seed_list), f"readout {sub.name}", progress) as bar, \
                running(sub.module, dev) as kind:
            for s in seed_list:
                x = inputs(sub, data, n, s).to(**kind)
                per_seed.append(_one_seed(sub.module, x, chosen, targets, s, batch, bar))
        first = per_seed[0]
        fit_i, val_i, test_i = _split(n, seed_list[0])
        return Readout(model=sub.name, shape=list(sub.shape), data=data if isinstance(data, str) else
                       ("inputs given" if data is not None else sub.data), n=n, seeds=seed_list,
                       over="input seeds", targets=targets, layers=chosen, maps=first[5], channels=first[6],
                       split={"n_train": len(fit_i), "n_val": len(val_i), "n_test": len(test_i)},
                       spearman=np.stack([p[0] for p in per_seed]), mae=np.stack([p[1] for p in per_seed]),
                       mae_constant=np.stack([p[2] for p in per_seed]), ridge=np.stack([p[3] for p in per_seed]),
                       uniform=np.stack([p[4] for p in per_seed]),
                       example_prediction=first[7]["prediction"], example_target=first[7]["target"])

    return cached(cache, KIND, key, compute, Readout, sub.name)

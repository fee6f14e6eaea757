"""The asker's perturbation on a trained network: nudge one input position (or a small patch) of real inputs and
measure how far the output moves, centre against edges and corners, trained against at initialisation.

For every input ``x`` (``n`` real inputs from :func:`~edgewise.probe._common.inputs`), every position ``p`` of a
grid over the input (stride ``stride``; the first and last row/column and the centre always included) and every
patch side ``k``:

* the patch ``P`` is the ``k×k`` square (``k`` samples in 1-D) nearest to being centred on ``p`` that lies
  inside the input (at a border it touches the border), on every channel;
* the input moves by ``+ε·P`` and by ``−ε·P`` (both signs: a bias-free ReLU net is piecewise linear with kinks
  exactly at zero, where a gradient is 0 but a finite step of one sign is not);
* the change per unit perturbation is ``‖f(x ± ε·P) − f(x)‖₂ / ε`` of the whole output vector
  (``target="output"``) or ``|Δ f_c| / ε`` of the logit ``c`` the model ranks first on ``x``
  (``target="logit"``), averaged over the two signs.

The map at ``p`` is that change averaged over the inputs. Regions (:func:`regions`), per axis of length ``s``
with band ``b = max(1, ⌈s/8⌉)``: *near* a side means fewer than ``b`` positions from it; *central* means within
``s/8`` of the middle ``(s−1)/2``. In 2-D, **corner** = near a side on both axes, **edge** = near a side on
exactly one, **centre** = central on both; in 1-D, **end** (stored as edge) = near either end, **centre** =
central. The baseline is the same architecture re-initialised with :func:`edgewise.sensitivity.reinitialise`
(``n_inits`` seeds; drawn on the CPU in float32 whatever the model's device and dtype, so every device draws the
same weights) and probed with the very same inputs.

For a bias-free ReLU network (positively homogeneous) on an all-zero input, ``f(±ε·P) = ε·f(±P)``: the map is
``(‖f(P)‖ + ‖f(−P)‖)/2`` for every ``ε`` although every input gradient is exactly zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import EdgewiseError
from ._common import (ProbeResult, cached, data_key, finite, fingerprint, inputs, placement, progress_bar, run_key,
                      running, subject, tensor_kind, to_numpy)

__all__ = ["perturb", "PerturbResult", "regions", "grid", "region_means", "REGIONS", "explain_ratio",
           "RatioExplanation"]

KIND = "perturb"
#: a relative output change (‖Δoutput‖ / ‖output‖) below this is within ~100× float32 rounding: not a signal
RESOLUTION = 1e-5
#: region codes of :func:`regions` (0: none of them)
REGIONS = {"center": 1, "edge": 2, "corner": 3}
TARGETS = ("output", "logit")


# ----------------------------------------------------------------------------------------------- geometry

def grid(side: int, stride: int) -> np.ndarray:
    """Positions probed along an axis of ``side``: every ``stride``-th, plus the last and the middle."""
    return np.array(sorted(set(range(0, side, stride)) | {side - 1, (side - 1) // 2}), dtype=np.int64)


def _axis_labels(pos: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """(near a side, central) for positions ``pos`` on an axis of ``side`` (module docstring)."""
    band = max(1, math.ceil(side / 8))
    near = np.minimum(pos, side - 1 - pos) < band
    central = np.abs(pos - (side - 1) / 2) <= side / 8
    return near, central


def regions(axes: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Region codes (:data:`REGIONS`) of the grid whose positions per axis are ``axes`` on an input of spatial
    ``shape``."""
    labels = [_axis_labels(a, s) for a, s in zip(axes, shape)]
    if len(labels) == 1:
        near, central = labels[0]
        return np.where(near, REGIONS["edge"], np.where(central, REGIONS["center"], 0)).astype(np.int64)
    (n0, c0), (n1, c1) = labels
    near = n0[:, None].astype(int) + n1[None, :].astype(int)
    out = np.where(near == 2, REGIONS["corner"], np.where(near == 1, REGIONS["edge"], 0))
    return np.where(c0[:, None] & c1[None, :], REGIONS["center"], out).astype(np.int64)


def region_means(maps: np.ndarray, region: np.ndarray) -> dict[str, np.ndarray]:
    """Mean of ``maps`` (…, *grid) over each region's positions: name → array of the leading shape."""
    flat = maps.reshape(*maps.shape[:maps.ndim - region.ndim], -1)
    return {name: flat[..., (region == code).ravel()].mean(axis=-1) for name, code in REGIONS.items()
            if (region == code).any()}


def _patch_masks(axes: list[np.ndarray], shape: tuple[int, ...], k: int, index: np.ndarray) -> torch.Tensor:
    """(len(index), 1, *shape) masks for grid positions ``index`` (flat, row-major over the grid): the k-wide
    patch inside the input nearest to centred on each."""
    starts = [np.clip(a - k // 2, 0, s - k) for a, s in zip(axes, shape)]
    coords = np.unravel_index(index, tuple(len(a) for a in axes))
    out = torch.zeros((len(index), 1, *shape))
    for i, c in enumerate(zip(*coords)):
        out[(i, 0, *(slice(st[j], st[j] + k) for st, j in zip(starts, c)))] = 1.0
    return out


# ------------------------------------------------------------------------------------------------- result

@dataclass
class PerturbResult(ProbeResult):
    """How far the output moves when one input position (or patch) moves, per position, trained and at init.

    Attributes:
        model: the model's name; input_shape: C×L or C×H×W; data: the data kind (or ``{"tensor": hash}``).
        patches: the patch sides, one map per side; eps: the perturbation's size (input units); stride: grid
            step; target: ``"output"`` or ``"logit"``; n_inits: initialisations of the baseline (0: none).
        axes: the probed positions per spatial axis (the grid).
        region: region codes over the grid (:data:`REGIONS`).
        trained: (patches, n, *grid) per-input change per unit perturbation, the model's own weights.
        init: (patches, n_inits, n, *grid) the same for each re-initialisation.
        dead: fraction of the trained per-input values that are exactly 0, per patch side.
        output_norm: (1 + n_inits, n) ‖output‖₂ of each model (trained first) on each clean input.
    """

    model: str
    input_shape: list
    data: object
    patches: list
    eps: float
    stride: int
    target: str
    n_inits: int
    seed: int
    axes: list
    region: np.ndarray
    trained: np.ndarray
    init: np.ndarray
    dead: list = field(default_factory=list)
    output_norm: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    kind = KIND

    @property
    def ndim(self) -> int:
        return self.region.ndim

    def map(self, which: str = "trained", patch: int | None = None) -> np.ndarray:
        """The mean map over inputs (and initialisations) for ``patch`` (default the first side)."""
        p = self.patches.index(patch) if patch is not None else 0
        if which == "trained":
            return self.trained[p].mean(axis=0)
        if not self.n_inits:
            raise EdgewiseError("perturb: this result has no initialisation baseline (baseline=None)")
        return self.init[p].mean(axis=(0, 1))

    def means(self, which: str = "trained", patch: int | None = None) -> dict[str, float]:
        """Region → mean change over the region's positions."""
        return {k: float(v) for k, v in region_means(self.map(which, patch), self.region).items()}

    def ratios(self, which: str = "trained", patch: int | None = None) -> dict[str, float]:
        """``center/edge`` and (2-D) ``center/corner``: ratios of region means (inf where the border is 0)."""
        return _border_ratios(self.means(which, patch))

    def interval(self, which: str = "trained", patch: int | None = None, level: float = 0.95,
                 n_boot: int = 1000) -> dict[str, tuple[float, float]]:
        """Bootstrap interval (over inputs, resampled with the result's seed) of each region mean and ratio."""
        p = self.patches.index(patch) if patch is not None else 0
        per = self.trained[p] if which == "trained" else self.init[p].mean(axis=0)  # (n, *grid)
        rng = np.random.default_rng(self.seed)
        pick = rng.integers(0, per.shape[0], size=(n_boot, per.shape[0]))
        boot = region_means(per[pick].mean(axis=1), self.region)  # name → (n_boot,)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot.update(_border_ratios(boot))
        lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
        with np.errstate(invalid="ignore"):  # ratios that are inf in some resamples
            return {k: (float(np.nanpercentile(v, lo)), float(np.nanpercentile(v, hi))) for k, v in boot.items()}

    def relative(self, which: str = "trained") -> float:
        """Median over inputs, positions and patch sides of the output change relative to the output's norm
        (``change × ε / ‖output‖``); below :data:`RESOLUTION` the map is float32 rounding, not a signal."""
        if self.output_norm.size == 0:
            return math.inf
        per = self.trained if which == "trained" else self.init
        norm = self.output_norm[0][None] if which == "trained" else self.output_norm[1:]  # (…, n)
        norm = norm.reshape(1, *norm.shape, *([1] * self.ndim))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = per * self.eps / norm
        return float(np.nanmedian(rel))

    def resolved(self, which: str = "trained") -> bool:
        """Whether the output moves by more than float32 rounding (:meth:`relative` ≥ :data:`RESOLUTION`)."""
        return self.relative(which) >= RESOLUTION

    def init_ratios(self, patch: int | None = None) -> dict[str, list[float]]:
        """Each initialisation's own ratios (its map over the inputs)."""
        p = self.patches.index(patch) if patch is not None else 0
        out: dict[str, list[float]] = {}
        for m in self.init[p].mean(axis=1):
            for k, v in _border_ratios(region_means(m, self.region)).items():
                out.setdefault(k, []).append(v)
        return out

    @property
    def summary(self) -> dict:
        out = {"model": self.model, "target": self.target, "eps": self.eps, "n": int(self.trained.shape[1]),
               "n_inits": self.n_inits, "grid": [len(a) for a in self.axes],
               "relative_change": {"trained": finite(self.relative("trained")),
                                   **({"init": finite(self.relative("init"))} if self.n_inits else {})}}
        for k in self.patches:
            key = f"patch{k}"
            out[key] = {"trained": self.means("trained", k), "trained_ratios": _finite(self.ratios("trained", k)),
                        "dead": self.dead[self.patches.index(k)] if self.dead else None}
            if self.n_inits:
                out[key].update(init=self.means("init", k), init_ratios=_finite(self.ratios("init", k)))
        return out

    def text(self) -> list[str]:
        """Sentences computed from the maps: the centre/border contrast per patch side, trained and at init."""
        far = "corners" if self.ndim == 2 else "ends"
        border = "corner" if self.ndim == 2 else "edge"
        what = "the output vector" if self.target == "output" else "the top-1 logit"
        out = []
        for k in self.patches:
            size = f"{k}×{k} patch" if self.ndim == 2 else f"{k}-sample patch"
            r = self.ratios("trained", k)[f"center/{border}"]
            lo, hi = self.interval("trained", k)[f"center/{border}"]
            n = self.trained.shape[1]
            spread = (f"95 % interval {_x(lo)}–{_x(hi)} over the {n} inputs" if n > 1 else
                      "one input: no interval")
            s = f"Perturbing a {size} by ±{self.eps:.3g}, {what} of {self.model} moves {_compare(r, far)} ({spread})"
            if self.n_inits and not self.resolved("init"):
                s += (f"; at initialisation ({self.n_inits} seed{'s' if self.n_inits > 1 else ''}) the output "
                      f"moves by only {self.relative('init'):.2g} of its norm, within float32 rounding, so its map "
                      "is noise and no contrast is read from it")
            elif self.n_inits:
                ri = self.ratios("init", k)[f"center/{border}"]
                each = self.init_ratios(k)[f"center/{border}"]
                s += (f"; at initialisation ({self.n_inits} seeds) {_compare(ri, far)}"
                      f" (seeds {_x(min(each))}–{_x(max(each))})" if self.n_inits > 1 else
                      f"; at initialisation (one seed) {_compare(ri, far)}")
                s += f", so training {_change(r, ri)} the contrast"
            out.append(s + ".")
            if self.ndim == 2:
                re = self.ratios("trained", k)["center/edge"]
                out.append(f"With the {size}, the centre against the edges: {_compare(re, 'edges')}.")
            if self.dead:
                d = self.dead[self.patches.index(k)]
                out.append(f"With the {size}, the output does not move at all in {d:.0%} of the (input, position) "
                           "pairs." if d > 0 else f"With the {size}, the output moves at every position of "
                                                  "every input.")
        return out


def _border_ratios(means: dict) -> dict:
    """``center/edge`` and ``center/corner`` (where the region exists) of region means, floats or arrays."""
    return {f"center/{r}": _ratio(means["center"], means[r]) for r in ("edge", "corner") if r in means}


def _ratio(a, b):
    if isinstance(a, np.ndarray):  # bootstrap samples: inf / nan where the border is 0
        return a / b
    if b == 0:
        return math.inf if a > 0 else math.nan
    return a / b


def _finite(d: dict) -> dict:
    return {k: finite(v) for k, v in d.items()}


def _x(r: float) -> str:
    if not math.isfinite(r):
        return "∞" if r > 0 else "undefined"
    text = f"{r:.3g}"
    if float(text) == 1 and r != 1:  # not exactly 1: enough digits to show it
        text = next(t for t in (f"{r:.{d}f}" for d in range(3, 17)) if float(t) != 1)
    return f"{text}×"


def _compare(r: float, far: str) -> str:
    """'N× more at the centre than at the corners' (or the other way round, or 'equally'), from the ratio."""
    if math.isnan(r):
        return f"neither at the centre nor at the {far}"
    if r == 1:
        return f"equally at the centre and at the {far}"
    if r > 1:
        return f"{_x(r)} more at the centre than at the {far}"
    return f"{_x(1 / r)} more at the {far} than at the centre"


def _change(trained: float, init: float) -> str:
    if not (math.isfinite(trained) and math.isfinite(init)):
        return "changed" if trained != init else "left unchanged"
    if trained > 0 and init > 0 and (trained > 1 and init < 1 or trained < 1 and init > 1):
        return "reversed"
    t, i = abs(math.log(trained)), abs(math.log(init))
    if t == i:
        return "left unchanged"
    return "sharpened" if t > i else "weakened"


# -------------------------------------------------------------------------------------------------- engine

def _outputs(module, x: torch.Tensor, batch: int) -> torch.Tensor:
    """The model's output on ``x`` in batches, flattened to (N, units)."""
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            y = module(x[s:s + batch])
            if not isinstance(y, torch.Tensor):
                raise EdgewiseError(f"perturb: the model returns {type(y).__name__}, not a tensor; wrap it so "
                                    "that it returns its logits")
            out.append(y.flatten(1).double())
    return torch.cat(out)


def _changes(module, x: torch.Tensor, axes: list[np.ndarray], shape, ks: list[int], eps: float, target: str,
             batch: int, bar) -> tuple[np.ndarray, np.ndarray]:
    """(patches, n, G) change per unit perturbation of every input at every grid position (both signs' mean),
    and (n,) the clean outputs' norms. Masks are built ``batch // 2`` positions at a time (a full set at
    224×224 and stride 1 would take 10 GB)."""
    y0 = _outputs(module, x, batch)
    top = y0.argmax(dim=1)
    g = math.prod(len(a) for a in axes)
    step = max(1, batch // 2)
    out = np.zeros((len(ks), len(x), g))
    for p, k in enumerate(ks):
        for start in range(0, g, step):
            index = np.arange(start, min(start + step, g))
            mask = _patch_masks(axes, shape, k, index).to(x.device, x.dtype)
            for i in range(len(x)):
                moved = torch.cat([x[i:i + 1] + eps * mask, x[i:i + 1] - eps * mask])
                dy = (_outputs(module, moved, batch) - y0[i]) / eps
                change = dy.norm(dim=1) if target == "output" else dy[:, top[i]].abs()
                out[p, i, index] = to_numpy(change.view(2, -1).mean(dim=0))
        bar.update(len(x))
    return out, to_numpy(y0.norm(dim=1))


def _check(patches, shape, eps, target, stride, n_inits, baseline) -> tuple[list[int], int]:
    ks = [int(patches)] if isinstance(patches, (int, np.integer)) else [int(k) for k in patches]
    spatial = shape[1:]
    if not ks or any(k < 1 for k in ks):
        raise EdgewiseError(f"perturb: patch sides must be at least 1, got {patches!r}; e.g. patch=(1, 3)")
    if max(ks) > min(spatial):
        raise EdgewiseError(f"perturb: a patch of side {max(ks)} is larger than the input "
                            f"{'x'.join(map(str, shape))}; choose sides up to {min(spatial)}")
    if eps is not None and not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise EdgewiseError(f"perturb: eps={eps!r} must be a positive number (the size of the nudge in input "
                            "units), e.g. eps=0.01")
    if target not in TARGETS:
        raise EdgewiseError(f"perturb: target={target!r}; choose 'output' (the norm of the output change) or "
                            "'logit' (the top-1 logit's change)")
    if baseline not in ("init", None):
        raise EdgewiseError(f"perturb: baseline={baseline!r}; choose 'init' (re-initialised copies) or None")
    if baseline == "init" and int(n_inits) < 1:
        raise EdgewiseError(f"perturb: n_inits={n_inits} must be at least 1 with baseline='init'")
    stride = int(stride) if stride is not None else max(1, math.ceil(max(spatial) / 16))
    if stride < 1:
        raise EdgewiseError(f"perturb: stride={stride} must be at least 1")
    return ks, stride


def perturb(model, input_shape=None, *, data=None, n: int = 32, patch=1, eps: float | None = None,
            stride: int | None = None, seed: int = 0, baseline: str | None = "init", n_inits: int = 3,
            target: str = "output", batch: int = 64, cache=None, progress: bool = True,
            device=None) -> PerturbResult:
    """Perturb each position (and patch) of ``n`` real inputs and measure how far the output moves.

    Args:
        model: an ``nn.Module`` or a model reference (``pretrained:efficientnet-lite0``,
            ``experiment:border-digits:same:0``, a spec string with ``input_shape``).
        input_shape: C×L or C×H×W (default: the model's own).
        data: a data kind of :data:`~edgewise.probe._common.DATA` (default: what suits the model) or a tensor.
        n: inputs; patch: a side or a tuple of sides (one map each); eps: the nudge in input units (default
            1 % of the inputs' root mean square, 0.01 for all-zero inputs); stride: grid step (default: at
            most 16 steps per axis; borders and centre always probed).
        baseline: ``"init"``: also measure ``n_inits`` re-initialisations of the architecture on the same
            inputs; None: the trained model only.
        target: ``"output"`` (‖Δoutput‖₂/ε) or ``"logit"`` (|Δ top-1 logit|/ε).
        batch: forward batch size; cache: a folder for cached results; progress: show a bar.
        device: where to run (default: where the model's parameters are); the model is moved there for the call
            and back after. Inputs and nudges are made in the model's floating dtype (in float64 a nudge far
            below float32's resolution still moves the output).

    Returns:
        :class:`PerturbResult`.

    Example:
        >>> r = perturb("conv3/c8, conv3/c8, gap, fc10", (1, 16, 16), data="digits", n=4, progress=False)
        >>> sorted(r.means())
        ['center', 'corner', 'edge']
    """
    dev = placement(device)
    sub = subject(model, input_shape)
    ks, stride = _check(patch, sub.shape, eps, target, stride, n_inits, baseline)
    n_inits = int(n_inits) if baseline == "init" else 0
    x = inputs(sub, data, n, seed)
    if eps is None:
        rms = float(x.double().pow(2).mean().sqrt())
        eps = 0.01 * rms if rms > 0 else 0.01
    key = {"model": fingerprint(sub.module), "shape": list(sub.shape), "data": data_key(data if data is not None
           else sub.data), "n": int(n), "patches": ks, "eps": float(eps), "stride": stride, "seed": int(seed),
           "n_inits": n_inits, "target": target, "run": run_key(sub.module, dev)}

    def compute() -> PerturbResult:
        inits = _inits(sub, dev, int(seed), n_inits)
        with running(sub.module, dev) as kind:
            return _compute(sub, x.to(**kind), ks, float(eps), stride, int(seed), n_inits, inits, target,
                            int(batch), progress, data_key(data if data is not None else sub.data))

    return cached(cache, KIND, key, compute, PerturbResult, sub.name)


def _inits(sub, device, seed: int, n_inits: int):
    """The baseline's ``n_inits`` re-initialisations of ``sub``'s architecture, one at a time, each drawn on the
    CPU in float32 (the same weights whatever the model's device and dtype: a model that is elsewhere, or that
    ``device`` will move, is first copied to the CPU in float32)."""
    import copy

    from ..sensitivity import _init_seeds, reinitialise

    cpu32 = {"device": torch.device("cpu"), "dtype": torch.float32}
    stays = tensor_kind(sub.module) == cpu32 and (device is None or device.type == "cpu")
    source = sub.module if stays or not n_inits else copy.deepcopy(sub.module).to(**cpu32)
    return (reinitialise(source, s, input_shape=sub.shape).eval() for s in _init_seeds(seed, n_inits))


def _compute(sub, x, ks, eps, stride, seed, n_inits, inits, target, batch, progress, data) -> PerturbResult:
    axes = [grid(s, stride) for s in sub.spatial]
    shape_grid = tuple(len(a) for a in axes)
    with progress_bar((1 + n_inits) * len(ks) * len(x), f"perturb {sub.name}", progress) as bar:
        trained, norm = _changes(sub.module, x, axes, sub.spatial, ks, eps, target, batch, bar)
        runs = [_changes(m.to(x.device, x.dtype), x, axes, sub.spatial, ks, eps, target, batch, bar) for m in inits]
    init = np.stack([c for c, _ in runs], axis=1) if runs else np.zeros((len(ks), 0, len(x), trained.shape[-1]))
    return PerturbResult(
        model=sub.name, input_shape=list(sub.shape), data=data, patches=ks, eps=eps, stride=stride, target=target,
        n_inits=n_inits, seed=seed, axes=[a.tolist() for a in axes], region=regions(axes, sub.spatial),
        trained=trained.reshape(len(ks), len(x), *shape_grid), init=init.reshape(len(ks), n_inits, len(x),
                                                                                   *shape_grid),
        dead=[float((trained[p] == 0).mean()) for p in range(len(ks))],
        output_norm=np.stack([norm] + [nm for _, nm in runs]))


# ------------------------------------------------------------------------------ the trained ratio, explained

#: the explanation's weights (trained at the centre, trained everywhere, re-initialised) and probe inputs
WEIGHTS = ("center", "everywhere", "init")
PROBES = {"center": "the test digits at the centre", "uniform": "the same digits at uniformly random spots",
          "mix": "the report's probe: test digits at the centre, the edges and the corners",
          "noise": "N(0, 1) noise (what the report's initialisation baseline reads)"}


@dataclass
class RatioExplanation(ProbeResult):
    """Why a trained border-digits net looks far more sensitive at the centre than at the corners.

    Attributes:
        rows: one dict per (weights, probe): ``grad_anchor`` (centre pixel / mean of the four corner pixels of
            the squared input gradient, the report's ratio), ``grad_region`` (the same with :func:`regions`),
            ``grad_zero`` (fraction of (input, corner pixel) pairs whose gradient is exactly 0), ``pert_anchor``
            and ``pert_region`` (the same two ratios of the ±ε perturbation map).
        stats: per training placement, the training inputs' per-pixel mean and variance at the centre pixel
            and the four corner pixels, and how often a corner pixel is not 0.
        size, n, n_inits, stride, eps: how it was measured.
    """

    rows: list
    stats: dict
    size: str
    n: int
    n_inits: int
    stride: int
    eps: float

    kind = "perturb-explain"

    def row(self, weights: str, probe: str) -> dict:
        return next(r for r in self.rows if r["weights"] == weights and r["probe"] == probe)

    @property
    def summary(self) -> dict:
        return {"rows": self.rows, "stats": self.stats}

    def text(self) -> list[str]:
        """The conclusion, every number read from :attr:`rows` and :attr:`stats`."""
        g = lambda w, p, k="grad_anchor": _x(_num(self.row(w, p)[k]))  # noqa: E731
        mix = self.row("center", "mix")
        ref = self.stats["report_init"]
        out = [f"The report's {g('center', 'mix')} (squared gradient, centre pixel against the corner pixels, "
               f"{self.n} test digits at the centre, edges and corners) is set against {_x(_num(ref['ratio']))} at "
               f"initialisation measured on N(0, 1) noise ({ref['n_inits']} draws); on the same digits the "
               f"re-initialised net ({self.n_inits} seeds) gives {g('init', 'mix')} and the net trained everywhere "
               f"{g('everywhere', 'mix')}."]
        z = mix["grad_zero"]
        out.append(f"The corner pixels' gradient is exactly 0 in {z:.0%} of the (digit, corner pixel) pairs: the net "
                   "is bias-free "
                   "with ReLU, so an all-zero neighbourhood gives pre-activations of exactly 0 and a zero "
                   "gradient." if z > 0 else "No corner pixel has an exactly zero gradient on those digits.")
        out.append(f"A finite ±ε perturbation does not stop at that kink: it puts the trained net at "
                   f"{g('center', 'mix', 'pert_anchor')} and the re-initialised one at "
                   f"{g('init', 'mix', 'pert_anchor')} on the same digits.")
        c, u = self.row("center", "center"), self.row("center", "uniform")
        out.append(f"Where the probe digits sit moves the gradient ratio from {_x(_num(c['grad_anchor']))} "
                   f"(all at the centre) to {_x(_num(u['grad_anchor']))} (uniformly placed); where the weights "
                   f"were trained moves it from {g('center', 'uniform')} to {g('everywhere', 'uniform')} "
                   "(uniform probe).")
        for where in ("center", "everywhere"):
            s = self.stats[where]
            out.append(f"Trained {'at the centre' if where == 'center' else 'everywhere'}, the training inputs' "
                       f"corner pixels are {_share(s['corner_nonzero'])} (mean "
                       f"{s['corner_mean']:.3g}, variance {s['corner_var']:.3g}; the centre pixel: non-zero in "
                       f"{s['center_nonzero']:.0%}, mean {s['center_mean']:.3g}, variance {s['center_var']:.3g}).")
        data_f = _num(self.row("init", "mix")["grad_anchor"]) / _num(ref["ratio"])
        train_f = _num(mix["grad_anchor"]) / _num(self.row("init", "mix")["grad_anchor"])
        out.append(f"So of the {_x(_num(mix['grad_anchor']) / _num(ref['ratio']))} between the report's two "
                   f"numbers, the probe inputs (digits on a zero background instead of noise, same random weights) "
                   f"account for {_x(data_f)} and training for {_x(train_f)}.")
        return out


def _share(f: float) -> str:
    """'never non-zero' for exactly 0, else 'non-zero in N % of them'."""
    return "never non-zero" if f == 0 else f"non-zero in {f:.2%} of them"


def _num(v) -> float:
    return math.inf if v is None else float(v)


def _anchor_ratio(m: np.ndarray, axes: list[np.ndarray], shape) -> float:
    """Centre pixel over the mean of the four corner pixels (as :func:`edgewise.maps.anchor_points`)."""
    from ..maps import anchor_points

    where = [{int(p): i for i, p in enumerate(a)} for a in axes]
    pts = anchor_points(tuple(shape))
    value = lambda p: m[tuple(w[c] for w, c in zip(where, p))]  # noqa: E731
    return _ratio(float(value(pts["center"][0])), float(np.mean([value(p) for p in pts["corner"]])))


def _ratio_row(nets, x: torch.Tensor, shape, stride: int, eps: float, device) -> dict:
    """The gradient and perturbation ratios of ``nets`` (maps averaged over them) on inputs ``x``, computed on
    ``device``."""
    from ..maps import anchor_points
    from ..sensitivity import gradient_map

    spatial = shape[1:]
    full = [np.arange(s) for s in spatial]
    grads = [gradient_map(m, x, agg="sq", device=device) for m in nets]
    g = np.mean([r.map for r in grads], axis=0)
    corner = tuple(np.array(pts) for pts in zip(*anchor_points(tuple(spatial))["corner"]))
    zero = float(np.mean([(r.samples[(slice(None),) + corner] == 0).mean() for r in grads]))
    perts = [perturb(m, shape, data=x, n=len(x), eps=eps, stride=stride, baseline=None, progress=False,
                     device=device) for m in nets]
    p = np.mean([r.map() for r in perts], axis=0)
    region = perts[0].region
    axes = [np.array(a) for a in perts[0].axes]
    rm = lambda m, reg: region_means(m, reg)  # noqa: E731
    gm, pm = rm(g, regions(full, spatial)), rm(p, region)
    return {"grad_anchor": finite(_anchor_ratio(g, full, spatial)), "grad_region": finite(_ratio(gm["center"],
            gm["corner"])), "grad_zero": zero, "pert_anchor": finite(_anchor_ratio(p, axes, spatial)),
            "pert_region": finite(_ratio(pm["center"], pm["corner"]))}


def _train_stats(x: torch.Tensor) -> dict:
    """The training inputs' per-pixel mean/variance at the centre pixel and the four corner pixels."""
    from ..maps import anchor_points

    pts = anchor_points(tuple(x.shape[2:]))
    m, v = x.mean(dim=(0, 1)), x.var(dim=0).mean(dim=0)
    nz = (x != 0).any(dim=1).float().mean(dim=0)
    at = lambda t, name: float(np.mean([float(t[p]) for p in pts[name]]))  # noqa: E731
    return {"center_mean": at(m, "center"), "center_var": at(v, "center"), "corner_mean": at(m, "corner"),
            "corner_var": at(v, "corner"), "center_nonzero": at(nz, "center"), "corner_nonzero": at(nz, "corner")}


def _uniform(x: torch.Tensor, patch: int, seed: int) -> torch.Tensor:
    """Digits cut from centre-placed canvases ``x`` and pasted back at uniformly random spots."""
    from ..experiments.tasks.placement import corners, place

    canvas = tuple(x.shape[2:])
    top = [(c - patch) // 2 for c in canvas]
    digits = x[:, :, top[0]:top[0] + patch, top[1]:top[1] + patch]
    return place(digits, corners("everywhere", (patch, patch), canvas, len(x), np.random.default_rng(seed)), canvas)


def explain_ratio(size: str = "quick", *, per_split: int = 16, n_inits: int = 3, stride: int = 3, seed: int = 0,
                  eps: float = 0.01, cache=None, progress: bool = True, device=None) -> RatioExplanation:
    """Explain the trained border-digits net's centre/corner sensitivity ratio with controls.

    Weights trained at the centre, trained everywhere and re-initialised (``n_inits`` seeds) × probe inputs at
    the centre, placed uniformly, the report's mix of placements, and noise; squared gradient against the ±ε
    perturbation; plus the training inputs' statistics.

    Args:
        size: the task's size; per_split: test digits per placement (the report's 16); stride: the
            perturbation grid's step (1: every pixel; 3 keeps it under half a minute); eps: the nudge.
        device: where the gradients and perturbations are computed (default: the CPU, where the trained nets
            are loaded).

    Returns:
        :class:`RatioExplanation`.

    Example:
        >>> e = explain_ratio(progress=False)  # doctest: +SKIP
        >>> e.text()[0]  # doctest: +SKIP
    """
    from ..experiments import tasks, trained_model
    from ..sensitivity import _init_seeds, init_sensitivity, reinitialise

    dev = placement(device)

    def compute() -> RatioExplanation:
        nets = {"center": trained_model("border-digits", "same", seed, size),
                "everywhere": trained_model("border-digits", "same", seed, size, train_at="everywhere")}
        shape = nets["center"].input_shape
        task = tasks.get("border-digits")
        cfg = nets["center"].experiment["config"]
        tests = task.data(cfg)[1]
        n = per_split * len(tests)
        centre = tests["center"][0][:n]
        probes = {"center": centre, "uniform": _uniform(centre, int(cfg["patch"]), seed),
                  "mix": torch.cat([x[:per_split] for x, _ in tests.values()]),
                  "noise": torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))}
        groups = {"center": [nets["center"]], "everywhere": [nets["everywhere"]],
                  "init": [reinitialise(nets["center"], s, input_shape=shape) for s in _init_seeds(seed, n_inits)]}
        rows = []
        with progress_bar(len(groups) * len(probes), "explaining the trained ratio", progress) as bar:
            for w, models in groups.items():
                for p, x in probes.items():
                    rows.append({"weights": w, "probe": p, **_ratio_row(models, x, shape, stride, eps, dev)})
                    bar.update(1)
        stats = {"center": _train_stats(task.data(cfg)[0][0]),
                 "everywhere": _train_stats(task.data(nets["everywhere"].experiment["config"])[0][0]),
                 "report_init": {"n_inits": 32, "ratio": finite(init_sensitivity(
                     nets["center"], shape, n_inits=32, seed=seed, device=dev).summary["center_corner_ratio"])}}
        return RatioExplanation(rows=rows, stats=stats, size=size, n=n, n_inits=n_inits, stride=stride, eps=eps)

    key = {"size": size, "per_split": per_split, "n_inits": n_inits, "stride": stride, "seed": seed, "eps": eps,
           "run": run_key(None, dev)}
    return cached(cache, RatioExplanation.kind, key, compute, RatioExplanation)

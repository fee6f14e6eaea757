"""Why does ``border-1d`` (trained at the middle, zero padding) score worse at one end of the sequence than at
the other? Four pieces of evidence, each measured, and a conclusion worded from them:

(a) **the padding**: the receptive-field advice for the net on its input length (is any window layer padded
    unevenly?), the mirror test (the net with every kernel flipped, run on the flipped input, must give the same
    logits; then the architecture treats both ends alike, pool phases included) and the test splits (are the
    start and end splits exactly the middle split shifted?);
(b) **the data control**: the same task with ``reverse: true`` (every signal reversed in time before it is
    placed), trained and scored like the default over the same seeds: does the deficit move to the other end?
(c) **the perturbation profile** (:func:`edgewise.probe.perturb.perturb`, one sample at a time, ±ε) of the
    trained net on the middle test split, default and reversed: the signal's first quarter against its last
    quarter, the silence before the signal against the silence after it;
(d) **the class information** of MNIST-1D's samples: a logistic regression on the first ``k`` against the last
    ``k`` samples of the raw signals.

The conclusion says "not the padding" only when no window layer is uneven and the mirror test agrees within
:data:`MIRROR_RTOL` of the largest logit; "the data" only when the reversed control moves the deficit to the other
end (the start − end accuracy gap changes sign) and the end that carries more class information (for every ``k``)
is the end of the default deficit. Otherwise it names the evidence that disagrees.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EdgewiseError
from ..facts import and_list
from ._common import ProbeResult, cached, placement, progress_bar, run_key, running
from .perturb import _x

__all__ = ["explain_border1d", "Border1dExplanation", "MIRROR_RTOL", "VARIANTS"]

KIND = "explain-border1d"
TASK = "border-1d"
#: the mirror test passes when max |Δlogit| ≤ this × the largest |logit| (float32 rounding through a few layers)
MIRROR_RTOL = 1e-4
#: the two trainings compared: the task as it is, and its signals reversed in time
VARIANTS = ("default", "reversed")
#: signal samples a logistic regression reads from each end
KS = (5, 10, 20)


@dataclass
class Border1dExplanation(ProbeResult):
    """The evidence on border-1d's start/end asymmetry.

    Attributes:
        size: the task size; seeds: the training seeds; n: middle-split signals the profile averages over.
        length, canvas: samples per signal and per sequence; splits: the test splits, in order.
        uneven_layers: names of the window layers the receptive-field advice finds unevenly padded;
            center_offset: the advice's offset of the output's centre from the input's (samples).
        mirror_diff: max |Δlogit| between the net on the start split and its kernel-flipped mirror on the same
            signals flipped; mirror_scale: the largest |logit| there.
        splits_are_shifts: whether the start and end test splits are exactly the middle split shifted.
        accuracy: (variant, seed, split) test accuracy; variants :data:`VARIANTS`.
        profile: (variant, n, canvas) ‖Δoutput‖₂/ε when one sample of a middle-split signal moves by ±ε, for
            the seed-``seeds[0]`` net of each variant; eps: ε per variant.
        ks: samples per end read by the logistic regressions; information: (2, len(ks)) their test accuracy on
            the first k (row 0) and the last k (row 1) samples of the raw signals; chance: 1 / classes.
    """

    size: str
    seeds: list
    n: int
    length: int
    canvas: int
    splits: list
    uneven_layers: list
    center_offset: list
    mirror_diff: float
    mirror_scale: float
    splits_are_shifts: bool
    accuracy: np.ndarray
    profile: np.ndarray
    eps: list
    ks: list
    information: np.ndarray
    chance: float

    kind = KIND

    # ------------------------------------------------------------------------------------------- numbers

    @property
    def offset(self) -> int:
        """First sample of the middle split's signals."""
        return (self.canvas - self.length) // 2

    def mean_accuracy(self, variant: str) -> dict[str, float]:
        """Split → accuracy averaged over the seeds."""
        acc = self.accuracy[VARIANTS.index(variant)]
        return {s: float(acc[:, i].mean()) for i, s in enumerate(self.splits)}

    def gap(self, variant: str) -> float:
        """Mean accuracy at the start minus at the end (negative: the deficit is at the start)."""
        m = self.mean_accuracy(variant)
        return m["start"] - m["end"]

    def deficit(self, variant: str) -> str | None:
        """The end that scores worse on average (``"start"``/``"end"``), None when they score the same."""
        g = self.gap(variant)
        return "start" if g < 0 else "end" if g > 0 else None

    @property
    def informative_end(self) -> str | None:
        """The end of the raw signal whose k samples carry more class information for every k, else None."""
        first, last = self.information
        if (first > last).all():
            return "start"
        if (last > first).all():
            return "end"
        return None

    def profile_end(self, variant: str) -> str | None:
        """The end of the signal (``"start"``/``"end"``) whose quarter moves the trained net's output more."""
        p = self.profile_stats(variant)
        return "start" if p["first_quarter"] > p["last_quarter"] else "end" if p["last_quarter"] > \
            p["first_quarter"] else None

    def profile_stats(self, variant: str) -> dict[str, float]:
        """The mean profile's first and last quarter of the signal, the silence before and after it, and where
        it peaks (sample)."""
        m = self.profile[VARIANTS.index(variant)].mean(axis=0)
        a, q = self.offset, self.length // 4
        signal = m[a:a + self.length]
        return {"first_quarter": float(signal[:q].mean()), "last_quarter": float(signal[-q:].mean()),
                "before": float(m[:a].mean()) if a else math.nan,
                "after": float(m[a + self.length:].mean()) if a + self.length < self.canvas else math.nan,
                "peak": int(np.argmax(m))}

    @property
    def mirror_passes(self) -> bool:
        return self.mirror_diff <= MIRROR_RTOL * self.mirror_scale

    @property
    def padding_cleared(self) -> bool:
        """No window layer is uneven and the mirror test passes."""
        return not self.uneven_layers and self.mirror_passes

    @property
    def data_explains(self) -> bool:
        """The reversal moves the deficit to the other end, and the default deficit sits at the informative end."""
        d, r = self.deficit("default"), self.deficit("reversed")
        return d is not None and r is not None and d != r and self.informative_end == d

    @property
    def summary(self) -> dict:
        return {"accuracy": {v: self.mean_accuracy(v) for v in VARIANTS},
                "gap": {v: self.gap(v) for v in VARIANTS},
                "profile": {v: self.profile_stats(v) for v in VARIANTS},
                "information": {f"{end}{k}": float(self.information[i, j]) for i, end in enumerate(("first", "last"))
                                for j, k in enumerate(self.ks)},
                "uneven_layers": self.uneven_layers, "mirror_diff": self.mirror_diff,
                "splits_are_shifts": self.splits_are_shifts, "padding_cleared": self.padding_cleared,
                "data_explains": self.data_explains}

    # --------------------------------------------------------------------------------------------- words

    def text(self) -> list[str]:
        """The evidence and the conclusion, every number and verdict read from the fields."""
        return [self._padding_sentence(), self._splits_sentence(), self._accuracy_sentence(),
                *(self._profile_sentence(v) for v in VARIANTS), self._information_sentence(), self._conclusion()]

    def _padding_sentence(self) -> str:
        if self.uneven_layers:
            layers = (f"{len(self.uneven_layers)} window layer{'s' if len(self.uneven_layers) > 1 else ''} "
                      f"({', '.join(self.uneven_layers)}) read{'' if len(self.uneven_layers) > 1 else 's'} "
                      f"padding on one side only")
        else:
            layers = "no window layer reads padding on one side only"
        off = ("the output's centre is the input's" if not any(self.center_offset) else
               f"the output's centre is {', '.join(f'{o:g}' for o in self.center_offset)} samples off the input's")
        mirror = "within" if self.mirror_passes else "beyond"
        return (f"Padding: on a sequence of {self.canvas} samples {layers} ({off}); the net with every kernel "
                f"flipped, run on the flipped start split, gives "
                f"logits that differ by at most {self.mirror_diff:.2g} (largest |logit| {self.mirror_scale:.3g}), "
                f"{mirror} the tolerance {MIRROR_RTOL:g} × the largest logit.")

    def _splits_sentence(self) -> str:
        return ("The start and end test splits are exactly the middle split shifted to the ends." if
                self.splits_are_shifts else "The start and end test splits are not exactly the middle split "
                "shifted to the ends: they differ by more than the placement.")

    def _accuracy_sentence(self) -> str:
        n = len(self.seeds)
        who = f"{n} seeds" if n > 1 else f"seed {self.seeds[0]}"

        def scores(v: str) -> str:
            acc, mean = self.accuracy[VARIANTS.index(v)], self.mean_accuracy(v)
            each = lambda i: f" ({', '.join(f'{a:.2f}' for a in acc[:, i])})" if n > 1 else ""  # noqa: E731
            return ", ".join(f"{s} {mean[s]:.2f}{each(i)}" for i, s in enumerate(self.splits))

        return (f"Accuracy ({who}): trained at the middle, {scores('default')}; trained and tested on the same "
                f"signals reversed in time, {scores('reversed')}.")

    def _profile_sentence(self, variant: str) -> str:
        p, a = self.profile_stats(variant), self.offset
        who = "default signals" if variant == "default" else "reversed signals"
        s = (f"Trained on the {who}, nudging one sample of a middle signal (±{self.eps[VARIANTS.index(variant)]:.2g}, "
             f"{self.profile.shape[1]} signals) moves the output "
             f"{_more(p['first_quarter'], p['last_quarter'], FIRST_Q, LAST_Q)}")
        if not (math.isnan(p["before"]) or math.isnan(p["after"])):
            s += f" and {_more(p['before'], p['after'], 'in the silence before it', 'in the silence after it')}"
        return s + f"; most at sample {p['peak']} (the signal spans samples {a}–{a + self.length - 1})."

    def _information_sentence(self) -> str:
        pairs = ", ".join(f"k = {k}: first {f:.2f}, last {l:.2f}" for k, f, l in zip(self.ks, *self.information))
        return (f"Class information in MNIST-1D's {self.length}-sample signals: a logistic regression on the first k "
                f"against the last k samples scores {pairs} (chance {self.chance:.2f}).")

    def _conclusion(self) -> str:
        d, r, info = self.deficit("default"), self.deficit("reversed"), self.informative_end
        if d is None:
            return ("Conclusion: trained at the middle, the net scores the same at the start and at the end, so "
                    "there is no asymmetry to explain.")
        if self.data_explains:
            data = (f"the class sits in the signal's {info} (its {_END_WORD[info]} k samples carry more class "
                    f"information than its {_END_WORD[_OTHER[info]]} k for k = {and_list(self.ks)}) and reversing the "
                    f"signals moves the deficit from the {d} to the {r}; " + self._profile_clause())
        else:
            why = []
            if r == d or r is None:
                why.append(f"reversing the signals {'leaves the deficit at the ' + d if r == d else 'removes it'}")
            if info != d:
                why.append(f"the signal's {_END_WORD[d]} k samples do not carry more class information than its "
                           f"{_END_WORD[_OTHER[d]]} k for every k = {and_list(self.ks)}" if info is None else
                           f"the class information sits at the signal's {info}, not its {d}")
            data = "the data does not explain it: " + " and ".join(why)
        if self.data_explains and self.padding_cleared and self.splits_are_shifts:
            return f"Conclusion: the deficit at the {d} is the data's, not the padding's nor a bug: {data}."
        splits = ("the test splits are pure shifts of one another" if self.splits_are_shifts else
                  "the test splits are not pure shifts of one another, so the data pipeline is suspect")
        return (f"Conclusion (deficit at the {d}): {_padding_clause(self)}; {splits}; "
                + (f"the data explains it: {data}" if self.data_explains else data) + ".")

    def _profile_clause(self) -> str:
        """Whether the trained nets' sensitivity follows the informative end through the reversal."""
        info = self.informative_end
        d, r = self.profile_end("default"), self.profile_end("reversed")

        def moved(end):
            return f"most by the signal's {_END_WORD[end]} quarter" if end else "equally by both quarters"

        said = (f"the net trained on the default signals is moved {moved(d)}, the one trained on reversed signals "
                f"{moved(r)}")
        if info is not None and d == info and r == _OTHER[info]:
            return f"the perturbation profile follows the information: {said}"
        return f"but the perturbation profile does not follow the information: {said}"


_END_WORD = {"start": "first", "end": "last"}
_OTHER = {"start": "end", "end": "start"}
FIRST_Q, LAST_Q = "in the signal's first quarter", "in the signal's last quarter"


def _padding_clause(e: Border1dExplanation) -> str:
    """'not the padding' when cleared, else which padding evidence disagrees."""
    if e.padding_cleared:
        return "not the padding (no uneven layer, the mirror test passes)"
    why = []
    if e.uneven_layers:
        why.append(f"{', '.join(e.uneven_layers)} {'is' if len(e.uneven_layers) == 1 else 'are'} padded unevenly")
    if not e.mirror_passes:
        why.append(f"the mirror test fails (max |Δlogit| {e.mirror_diff:.2g} against {e.mirror_scale:.3g})")
    return "the padding may contribute: " + " and ".join(why)


def _more(a: float, b: float, where_a: str, where_b: str) -> str:
    """'R× more WHERE_A than WHERE_B' (or the other way round, or 'equally'), from two non-negative means."""
    if a == b:
        return f"equally {where_a} and {where_b}"
    big, small, wb, ws = (a, b, where_a, where_b) if a > b else (b, a, where_b, where_a)
    return f"{_x(big / small) if small > 0 else '∞×'} more {wb} than {ws}"


# ------------------------------------------------------------------------------------------------ evidence

def _trained(seed: int, size: str, reverse: bool):
    from ..experiments import tasks, trained_model

    net = trained_model(TASK, "same", seed, size, reverse=reverse)
    return net, tasks.get(TASK).data(net.experiment["config"])[1]


def _padding(net, tests: dict, device) -> dict:
    """(a): the receptive-field advice, the mirror test on the start split (on ``device``), whether the splits are
    shifts."""
    from .. import receptive_field

    advice = receptive_field(net, net.input_shape).advice.to_dict()
    mirror = copy.deepcopy(net)
    with torch.no_grad(), running(net, device) as kind:
        for m in mirror.to(kind["device"]).modules():
            if isinstance(m, torch.nn.Conv1d):
                m.weight.copy_(m.weight.flip(-1))
        x = tests["start"][0][:200].to(**kind)
        y = net(x)
        diff = float((y - mirror(x.flip(-1))).abs().max())
    cfg = net.experiment["config"]
    length, canvas = int(cfg["length"]), int(cfg["canvas"])
    mid = tests["middle"][0]
    shifts = all(torch.equal(tests[s][0], torch.roll(mid, o - (canvas - length) // 2, -1))
                 for s, o in (("start", 0), ("end", canvas - length)))
    return {"uneven_layers": [u["layer"] for u in advice["uneven_layers"]],
            "center_offset": [float(o) for o in advice["center_offset"]], "mirror_diff": diff,
            "mirror_scale": float(y.abs().max()), "splits_are_shifts": bool(shifts)}


def _accuracies(net, tests: dict, device) -> list[float]:
    """Test accuracy per split, computed on ``device``."""
    from ..experiments.train import accuracy

    with running(net, device) as kind:
        return [accuracy(net, x.to(**kind), y.to(kind["device"])) for x, y in tests.values()]


def _profile(net, tests: dict, n: int, device) -> tuple[np.ndarray, float]:
    """(c): (n, canvas) output change per unit ±ε at every sample of ``n`` middle-split signals, and ε."""
    from .perturb import perturb

    x = tests["middle"][0][:n]
    r = perturb(net, data=x, n=len(x), stride=1, patch=1, baseline=None, progress=False, device=device)
    return r.trained[0], float(r.eps)


def _information(config: dict) -> tuple[np.ndarray, float]:
    """(d): test accuracy of a logistic regression on the first and on the last k samples of the task's raw
    signals (its own ``n_train`` for fitting, ``n_test`` for scoring), and chance."""
    from sklearn.linear_model import LogisticRegression

    from ..experiments import data

    n_train, n_test, length = int(config["n_train"]), int(config["n_test"]), int(config["length"])
    x, y = data.mnist1d_signals(n_train + n_test, int(config["data_seed"]), length)
    out = np.zeros((2, len(KS)))
    for j, k in enumerate(KS):
        for i, cols in enumerate((slice(0, k), slice(length - k, length))):
            clf = LogisticRegression(max_iter=2000).fit(x[:n_train, cols], y[:n_train])
            out[i, j] = clf.score(x[n_train:, cols], y[n_train:])
    return out, 1 / len(np.unique(y))


def _variant(reverse: bool, seeds: list[int], size: str, n: int, device, bar) -> dict:
    """(b) and (c) for one variant: accuracy per seed and split, and the first seed's profile (and its net)."""
    out: dict = {"accuracy": []}
    for s in seeds:
        net, tests = _trained(s, size, reverse)
        out["accuracy"].append(_accuracies(net, tests, device))
        if s == seeds[0]:
            out["first"] = (net, tests)
            out["profile"], out["eps"] = _profile(net, tests, n, device)
        bar.update(1)
    return out


def _check(size: str, seeds: int, n: int) -> None:
    from ..experiments import tasks

    sizes = tasks.get(TASK).sizes
    if size not in sizes:
        raise EdgewiseError(f"explain border-1d: unknown size {size!r}; choose one of {', '.join(sizes)}")
    if int(seeds) < 1:
        raise EdgewiseError(f"explain border-1d: seeds={seeds} must be at least 1 (trainings per variant)")
    n_test = int(sizes[size]["n_test"])
    if not 1 <= int(n) <= n_test:
        raise EdgewiseError(f"explain border-1d: n={n} middle-split signals for the profile; choose 1 to {n_test} "
                            f"(the {size} size's test split)")


def explain_border1d(size: str = "quick", *, seeds: int = 1, seed: int = 0, n: int = 64, cache=None,
                     progress: bool = True, device=None) -> Border1dExplanation:
    """Why border-1d (trained at the middle, zero padding) scores worse at one end: padding, data control,
    perturbation profile and class information, measured.

    Args:
        size: the task's size (``quick`` trains in seconds). seeds: trainings per variant (seeds ``seed`` …
            ``seed + seeds − 1``); the first one is the net the mirror test and the profile read, the same
            weights as ``trained_model("border-1d", "same", seed, size)``. n: middle-split signals for the
            profile. cache: a folder for the cached result; progress: show a bar.
        device: where the nets are run (default: the CPU, where they are loaded); each is moved there for its
            measurements and back after.

    Returns:
        :class:`Border1dExplanation` (``text()``: the evidence and the conclusion).

    Example:
        >>> e = explain_border1d(progress=False)  # doctest: +SKIP
        >>> e.text()[-1]  # doctest: +SKIP
        'Conclusion: the deficit at the start is the data's, ...'
    """
    _check(size, seeds, n)
    dev = placement(device)
    seeds_list = list(range(int(seed), int(seed) + int(seeds)))

    def compute() -> Border1dExplanation:
        with progress_bar(len(VARIANTS) * len(seeds_list) + 1, f"explaining {TASK}", progress) as bar:
            runs = [_variant(v == "reversed", seeds_list, size, int(n), dev, bar) for v in VARIANTS]
            net, tests = runs[0]["first"]
            information, chance = _information(net.experiment["config"])
            bar.update(1)
        cfg = net.experiment["config"]
        return Border1dExplanation(
            size=size, seeds=seeds_list, n=int(n), length=int(cfg["length"]), canvas=int(cfg["canvas"]),
            splits=list(tests), accuracy=np.array([r["accuracy"] for r in runs]),
            profile=np.stack([r["profile"] for r in runs]), eps=[r["eps"] for r in runs], ks=list(KS),
            information=information, chance=float(chance), **_padding(net, tests, dev))

    key = {"task": TASK, "size": size, "seeds": int(seeds), "seed": int(seed), "n": int(n), "run": run_key(None, dev)}
    return cached(cache, KIND, key, compute, Border1dExplanation)

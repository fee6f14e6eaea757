"""What a task is: data, a network per remedy, and one seeded run that returns metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ...errors import EdgewiseError

__all__ = ["Task", "Progress", "check_config"]

#: ``progress(done, total)``: called by a run as it goes (steps or epochs), for the per-run bar
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Task:
    """One registry entry.

    Attributes:
        name: the registry key (``absolute-position``, …).
        summary: what the task tests, one or two sentences.
        prediction: the outcome theory predicts, one or two sentences.
        sizes: ``quick`` and ``full`` configurations (plain JSON values); a run's config is one of them with
            the user's overrides on top.
        run_one: ``run_one(config, remedy, seed, progress=None, checkpoint=None) -> metrics``: train and
            test one network (``checkpoint``: a file to resume from and save to after every epoch). The
            metrics hold ``accuracy`` (test split → fraction correct), ``loss`` (training loss per epoch)
            and anything else the task's figures need (JSON values only).
        remedies: the remedies a sweep compares when none are given.
        splits: describes each test split (split → one line); the table's columns in this order.
        axis: what the ``remedies`` axis of this task varies (for table headers).
        contrast: two splits ``(a, b)`` whose paired per-seed difference ``a − b`` is the task's headline
            (seeds share their training data and initial weights, so the paired interval is much tighter).
        notes: ``notes(runs) -> lines``: the task's own numbers beyond accuracy, for the summary.
        data: ``data(config)``: the task's data, whose first item is the training set ``(x, y)``; lets
            :func:`edgewise.experiments.trained_model` train the task's network outside a sweep.
        per_axis: integer options that may also be a list of integers, one per spatial axis (a canvas given
            as ``[height, width]``); the task checks the list's length.
    """

    name: str
    summary: str
    prediction: str
    sizes: dict[str, dict[str, Any]]
    run_one: Callable[..., dict] = field(repr=False)
    remedies: tuple[str, ...]
    splits: dict[str, str]
    axis: str = "remedy"
    contrast: tuple[str, str] | None = None
    notes: Callable[[list[dict]], list[str]] | None = field(default=None, repr=False)
    data: Callable[[dict], tuple] | None = field(default=None, repr=False)
    per_axis: tuple[str, ...] = ()

    def config(self, size: str = "quick", /, **overrides) -> dict:
        """The resolved configuration for ``size`` with ``overrides`` (unknown keys raise)."""
        if size not in self.sizes:
            raise EdgewiseError(f"task {self.name!r} has no size {size!r}; choose one of {', '.join(self.sizes)}")
        return check_config(self.name, {**self.sizes[size], **overrides}, self.sizes[size], self.per_axis)


#: options that count something or scale the data or training (0 trains nothing / builds nothing): at least 1,
#: or above 0 for ``lr``
_POSITIVE = frozenset({"epochs", "batch_size", "n_train", "n_test", "width", "length", "canvas", "patch", "size",
                       "box", "band", "digit_size", "lr"})
#: options where 0 is meaningful but a negative value is not
_NON_NEGATIVE = frozenset({"data_seed", "jitter", "noise", "near", "weight_decay"})

_KIND = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_config(task: str, config: dict, known: dict, per_axis=()) -> dict:
    """``config`` if every key is one of ``known``'s and every value fits its default (same type: bool, int,
    float or str; finite; counts ≥ 1, ``lr`` > 0); else an error naming the option, the value and the fix.
    Float options given as integers become floats (``lr=1`` is ``lr=1.0``, one cache key). An option named in
    ``per_axis`` may also be a list of values, each checked so."""
    bad = sorted(set(config) - set(known))
    if bad:
        raise EdgewiseError(f"task {task!r} has no option {', '.join(map(repr, bad))}; its options: "
                            f"{', '.join(sorted(known))}")
    out = dict(config)
    for key, value in config.items():
        if key in per_axis and isinstance(value, (list, tuple)) and value:
            out[key] = [_check_option(task, key, v, known[key]) for v in value]
        else:
            out[key] = _check_option(task, key, value, known[key])
    return out


def _check_option(task: str, key: str, value, default):
    def refuse(why: str):
        example = str(default).lower() if isinstance(default, bool) else default
        return EdgewiseError(f"task {task!r}: option {key}={value!r} {why}; give e.g. --set {key}={example} "
                             f"(the default)")

    kind = type(default)
    if kind not in _KIND:  # a structured default (list, dict, None): left to the task
        return value
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise refuse(f"must be {_KIND[kind]}, not {type(value).__name__}")
    if kind in (int, float):
        if not math.isfinite(value):
            raise refuse("must be a finite number")
        if key in _POSITIVE and value <= 0:
            raise refuse("must be at least 1" if kind is int else "must be above 0")
        if key in _NON_NEGATIVE and value < 0:
            raise refuse("must not be negative")
        if kind is float:
            value = float(value)
    return value

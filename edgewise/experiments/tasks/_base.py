"""What a task is: data, a network per remedy, and one seeded run that returns metrics."""

from __future__ import annotations

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

    def config(self, size: str = "quick", **overrides) -> dict:
        """The resolved configuration for ``size`` with ``overrides`` (unknown keys raise)."""
        if size not in self.sizes:
            raise EdgewiseError(f"task {self.name!r} has no size {size!r}; choose one of {', '.join(self.sizes)}")
        return check_config(self.name, {**self.sizes[size], **overrides}, self.sizes[size])


def check_config(task: str, config: dict, known: dict) -> dict:
    """``config`` if every key is one of ``known``'s, else an error listing the valid keys."""
    bad = sorted(set(config) - set(known))
    if bad:
        raise EdgewiseError(f"task {task!r} has no option {', '.join(map(repr, bad))}; its options: "
                            f"{', '.join(sorted(known))}")
    return dict(config)

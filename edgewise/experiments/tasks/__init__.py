"""The task registry: ``absolute-position``, ``border-digits``, ``border-1d``, ``symmetry``, ``border-distance``."""

from __future__ import annotations

from ...errors import unknown_name
from ._base import Task
from .absolute import TASK as _absolute
from .border_distance import TASK as _distance
from .digits import TASK as _digits
from .signals import TASK as _signals
from .symmetry import TASK as _symmetry

__all__ = ["Task", "TASKS", "get", "names"]

#: every task by name, in the order the docs list them
TASKS: dict[str, Task] = {t.name: t for t in (_absolute, _digits, _signals, _symmetry, _distance)}


def names() -> list[str]:
    """The registry's names, in order."""
    return list(TASKS)


def get(name) -> Task:
    """The task called ``name`` (a Task passes through); unknown names list the valid ones."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise unknown_name("task", "tasks", name, TASKS)
    return TASKS[name]

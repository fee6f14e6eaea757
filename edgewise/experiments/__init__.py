"""Experiments: train small CNNs on tasks where the border matters and measure what each remedy buys.

    >>> from edgewise import experiments
    >>> exp = experiments.run("border-digits", ["same", "circular"], seeds=3)  # doctest: +SKIP
    >>> print(exp.text())  # doctest: +SKIP
"""

from .results import Experiment, interval
from .runner import run, run_key
from .tasks import TASKS, Task, get, names
from .trained import trained_model

__all__ = ["run", "run_key", "Experiment", "interval", "TASKS", "Task", "get", "names", "trained_model"]

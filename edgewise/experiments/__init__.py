"""Experiments: train small CNNs on tasks where the border matters and measure what each remedy buys.

    >>> from edgewise import experiments
    >>> exp = experiments.run("border-digits", ["same", "circular"], seeds=3)  # doctest: +SKIP
    >>> print(exp.text())  # doctest: +SKIP
"""

from .. import models as _models
from .results import Experiment, interval
from .runner import run, run_key
from .tasks import TASKS, Task, get, names
from .trained import from_reference, trained_model

__all__ = ["run", "run_key", "Experiment", "interval", "TASKS", "Task", "get", "names", "trained_model"]

# experiment:TASK[:REMEDY[:SEED]] model references: edgewise.models resolves them through its registry
_models.register_resolver("experiment", from_reference)

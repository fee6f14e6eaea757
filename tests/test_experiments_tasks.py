"""Every registered task (parametrised over the registry, so a new task is tested without new code)."""

import math

import pytest

from edgewise import EdgewiseError, remedies
from edgewise.experiments import TASKS, get, names

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_registry_names_and_lookup():
    assert names() == ["absolute-position", "border-digits", "border-1d", "symmetry", "border-distance"]
    assert get("symmetry") is TASKS["symmetry"] and get(TASKS["symmetry"]) is TASKS["symmetry"]


@pytest.mark.parametrize("name", list(TASKS))
def test_task_is_documented_and_sized(name):
    task = TASKS[name]
    assert task.summary.strip() and task.prediction.strip() and task.splits
    assert set(task.sizes) == {"quick", "full"} and set(task.sizes["quick"]) == set(task.sizes["full"])
    valid = remedies.names() if task.axis == "remedy" else task.remedies
    assert task.remedies and all(r in valid for r in task.remedies)
    with pytest.raises(EdgewiseError, match="has no option 'no_such_option'"):
        task.config("quick", no_such_option=1)


@pytest.mark.parametrize("name", list(TASKS))
def test_a_few_seeded_epochs_lower_the_loss(name):
    task = TASKS[name]
    config = task.config("quick", epochs=3)
    epochs = []
    metrics = task.run_one(config, task.remedies[0], 0, progress=lambda done, total: epochs.append((done, total)))
    assert epochs == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert set(metrics["accuracy"]) == set(task.splits)
    assert all(0 <= a <= 1 for a in metrics["accuracy"].values())
    loss = metrics["loss"]
    assert len(loss) == 3 and all(math.isfinite(v) for v in loss) and loss[-1] < loss[0]

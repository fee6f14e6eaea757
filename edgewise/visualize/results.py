"""The result of activation maximisation: images, objective curves, configuration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..results import Result

__all__ = ["Visualization"]


@dataclass
class Visualization(Result):
    """Preferred inputs of several objectives, several random starts each.

    Attributes:
        images: (objectives, seeds, C, *spatial) in [0, 1], the un-jittered window the model sees.
        values: (steps, objectives, seeds): the objective at every step (on the jittered images).
        final: (objectives, seeds): the objective on ``images``.
        objectives: a description of each objective (positions resolved to indices).
        config: the resolved configuration of the run.
    """

    images: np.ndarray
    values: np.ndarray
    final: np.ndarray
    objectives: list[str]
    config: dict
    kind = "visualization"

    def to_dict(self) -> dict:
        return {"objectives": self.objectives, "config": self.config, "final": self.final,
                "start": self.values[0] if len(self.values) else None, "shape": list(self.images.shape)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"images": self.images, "values": self.values, "final": self.final}

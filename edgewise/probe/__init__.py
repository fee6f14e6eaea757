"""What trained networks learned about position: spatial bias, padding-aware units, position readout and the
asker's perturbation, each one call on any model (:mod:`edgewise.probe._common` holds what they share)."""

from ._common import DATA, Subject, inputs, subject
from .bias import BlindSpots, SpatialBias, bias, blind_spots

__all__ = ["DATA", "Subject", "inputs", "subject", "bias", "blind_spots", "SpatialBias", "BlindSpots"]

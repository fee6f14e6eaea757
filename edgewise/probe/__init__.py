"""What trained networks learned about position, each measurement one call on any model:

- :func:`bias` and :func:`blind_spots` (:mod:`.bias`): the mean activation at every position, and a stimulus slid
  over every position (after Alsallakh et al., "Mind the Pad", ICLR 2021);
- :func:`units` and :func:`ablate` (:mod:`.units`): channels whose activation marks the border, and what silencing
  them changes (after Garcia-Gasulla et al., "Padding Aware Neurons", 2023);
- :func:`perturb` (:mod:`.perturb`): the question's thought experiment on trained weights, every input position
  nudged, against the same architecture at initialisation; :func:`explain_ratio` takes apart the trained
  border-digits net's centre/corner ratio with controls;
- :func:`readout` (:mod:`.readout`): how much position a linear map shared by every position reads from each
  layer's frozen features (after Islam et al., "How much position information do CNNs encode?", ICLR 2020);
- :func:`explain_border1d` (:mod:`.explain`): why the border-1d net loses accuracy at one end, measured;

:mod:`edgewise.probe._common` holds what they share (the model, real offline inputs, layer activations, the cache).
"""

from ._common import DATA, Subject, inputs, subject
from .bias import BlindSpots, SpatialBias, bias, blind_spots
from .explain import Border1dExplanation, explain_border1d
from .perturb import PerturbResult, RatioExplanation, explain_ratio, perturb
from .readout import Readout, readout
from .units import Ablation, PaddingUnits, ablate, units

__all__ = ["DATA", "Subject", "inputs", "subject", "bias", "blind_spots", "SpatialBias", "BlindSpots", "units",
           "ablate", "PaddingUnits", "Ablation", "perturb", "PerturbResult", "explain_ratio", "RatioExplanation", "readout", "Readout", "explain_border1d", "Border1dExplanation"]

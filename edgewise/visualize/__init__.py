"""Position-specific feature visualization: does a unit's preferred input depend on where its field sits?

    >>> from edgewise import visualize as V
    >>> vis = V.maximize(net, [V.unit("conv3", 0, p) for p in ("center", "top_left")], (1, 32, 32))  # doctest: +SKIP
"""

from .analysis import IndexVsRF, PositionDependence, index_vs_rf, position_dependence, tiled
from .engine import activations, hooked, maximize
from .objectives import ANCHORS, Channel, Objective, Unit, channel, resolve, unit
from .results import Visualization

__all__ = ["maximize", "activations", "hooked", "unit", "channel", "Objective", "Unit", "Channel", "ANCHORS",
           "resolve", "Visualization", "position_dependence", "PositionDependence", "index_vs_rf", "IndexVsRF",
           "tiled"]

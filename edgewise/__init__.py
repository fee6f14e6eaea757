"""edgewise: measure, explain and fix how CNNs treat the positions of their input."""

from . import nets, remedies, sensitivity, theory, variants
from .answer import answer
from .scaling import scaling
from ._trace import trace
from .geometry import ReceptiveField, receptive_field
from .pathways import PathCounts, layer_counts, pathways
from .weighted import weighted_pathways
from .errors import EdgewiseError
from .graph import Graph, Node

__all__ = ["trace", "receptive_field", "pathways", "layer_counts", "nets", "sensitivity", "theory", "scaling",
           "remedies", "variants",
           "answer", "weighted_pathways", "Graph", "Node",
           "PathCounts", "ReceptiveField", "EdgewiseError"]
__version__ = "0.1.0"

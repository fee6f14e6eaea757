"""Slow, obviously correct references and random-model generators for edgewise's tests.

Nothing here is fast or clever on purpose: every reference builds the explicit
object the fast engine reasons about implicitly (a unit-level DAG, a naive loop)
so that the two can be compared on small random models.
"""

from .brute import brute_pathways, unit_dag
from .tolerances import TOLERANCES, assert_close_rel, tolerance

__all__ = ["brute_pathways", "unit_dag", "TOLERANCES", "tolerance", "assert_close_rel"]

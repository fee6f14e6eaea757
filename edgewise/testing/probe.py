"""Receptive field by probing: which input positions can reach a unit at all."""

from __future__ import annotations

import numpy as np

from .brute import brute_pathways

__all__ = ["probe_box"]


def probe_box(graph, layer: str, position) -> tuple[tuple[int, int], ...] | None:
    """Per axis, the (first, last) input position with a path to the unit at ``position``
    of ``layer`` (every channel there), found by brute-force reachability; None if none."""
    reach = np.argwhere(brute_pathways(graph, to=position, layer=layer) > 0)
    if reach.size == 0:
        return None
    return tuple((int(lo), int(hi)) for lo, hi in zip(reach.min(axis=0), reach.max(axis=0)))

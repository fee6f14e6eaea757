"""The paths that can carry a gradient at initialisation: path counts with the layers that start silent cut out.

A normalisation whose weight starts at 0 (timm's ResNets: the last norm of every residual branch) outputs its bias
whatever its input, so no gradient crosses it and a Monte-Carlo sensitivity at initialisation only sees the paths
that avoid it. :func:`live_pathways` counts those paths (``pathways(cut=...)``), and :func:`live_facts` sets them
against the sensitivity: which positions have none, whether those are exactly the positions whose sensitivity is
zero, and how the two maps correlate.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["live_pathways", "live_facts"]


def live_pathways(sensitivity, graph):
    """The :class:`~edgewise.pathways.PathCounts` of ``graph`` to the units ``sensitivity`` measured, through no
    layer of its ``zero_scales``; None when it names none."""
    from .pathways import pathways

    if not sensitivity.zero_scales:
        return None
    to = "all" if sensitivity.to == "each" else sensitivity.to
    layer = None if sensitivity.layer in (None, "output", graph.output) else sensitivity.layer
    base = set(sensitivity.zero_scales)
    cut = [nd.name for nd in graph if nd.name.split("#")[0] in base]  # (every call of a norm called twice)
    return pathways(graph, to=to, layer=layer, cut=cut)


def live_facts(sensitivity, live) -> dict | None:
    """``{"cut", "no_path", "positions", "zero_sensitivity", "same_zeros", "log_correlation"}``: the layers cut,
    the positions with no path that avoids them (of all), the positions whose sensitivity is exactly zero, whether
    those are the same positions, and the correlation of the log sensitivity with the log counts of the paths
    left (NaN where none can be taken); None without ``live``."""
    from .maps import log_correlation

    if live is None:
        return None
    log10 = np.asarray(live.log10, dtype=float)
    none = ~(log10 > -math.inf)
    zero = np.asarray(sensitivity.map) == 0
    counts = np.power(10.0, log10 - (log10[~none].max() if (~none).any() else 0.0))  # (any scale: a log correlation)
    return {"cut": list(live.cut), "no_path": int(none.sum()), "positions": int(none.size),
            "zero_sensitivity": int(zero.sum()), "same_zeros": bool(np.array_equal(none, zero)),
            "log_correlation": log_correlation(sensitivity.map, counts)}

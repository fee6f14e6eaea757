"""The paths that can carry a gradient at initialisation: path counts with the layers that start silent cut out.

A normalisation whose weight starts at 0 (timm's ResNets: the last norm of every residual branch) outputs its bias
whatever its input, so no gradient crosses it; a layer scale that starts at 1e-6 (ConvNeXt) passes a millionth of
one (:func:`small_scales` finds those). A Monte-Carlo sensitivity at initialisation sees, in effect, only the paths
that avoid both. :func:`live_pathways` counts those paths (``pathways(cut=...)``), and :func:`live_facts` sets them
against the sensitivity: which positions have none, whether those are exactly the positions whose sensitivity is
zero, whether every position has the same number, and how the two maps correlate.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["live_pathways", "live_facts", "small_scales", "SMALL_SCALE"]

#: a parameter that multiplies a layer's output (a layer scale) and is at most this large in magnitude mutes what it
#: multiplies: a gradient through it shrinks by that factor (timm's and torchvision's ConvNeXt start theirs at 1e-6)
SMALL_SCALE = 1e-3


def small_scales(model, shape, values: dict) -> dict[str, float]:
    """``{parameter: its largest magnitude}`` for each parameter that multiplies a layer's output in ``model``'s
    traced Graph (``Graph.scales``) and whose value in ``values`` (name → tensor) is at most :data:`SMALL_SCALE` in
    magnitude; {} where no such value exists or the model cannot be traced."""
    largest = {k: float(v.detach().abs().max()) for k, v in values.items()
               if v.numel() and v.is_floating_point() and not k.endswith("bias")}
    tiny = {k: m for k, m in largest.items() if m <= SMALL_SCALE}
    if not tiny:  # (most models: no trace needed)
        return {}
    import warnings

    from ._trace import trace

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = trace(model, shape)
    except Exception:  # noqa: BLE001 - untraceable: nothing known to multiply a layer's output
        return {}
    return {k: tiny[k] for k in dict.fromkeys(graph.scales.values()) if k in tiny}


def live_pathways(sensitivity, graph):
    """The :class:`~edgewise.pathways.PathCounts` of ``graph`` to the units ``sensitivity`` measured, through no
    layer of its ``zero_scales`` and no product by one of its ``small_scales``; None when it names none."""
    from .pathways import pathways

    small = sensitivity.small_scales
    if not sensitivity.zero_scales and not small:
        return None
    to = "all" if sensitivity.to == "each" else sensitivity.to
    layer = None if sensitivity.layer in (None, "output", graph.output) else sensitivity.layer
    base = set(sensitivity.zero_scales)
    cut = [nd.name for nd in graph if nd.name.split("#")[0] in base  # (every call of a norm called twice)
           or graph.scales.get(nd.name) in small]
    return pathways(graph, to=to, layer=layer, cut=cut)


def live_facts(sensitivity, live) -> dict | None:
    """``{"cut", "no_path", "positions", "uniform", "zero_sensitivity", "same_zeros", "log_correlation"}``: the
    layers cut, the positions with no path that avoids them (of all), whether every position has the same number
    of such paths (max = min), the positions whose sensitivity is exactly zero, whether those are the positions
    without such a path, and the correlation of the log sensitivity with the log counts of the paths left (NaN
    where none can be taken); None without ``live``."""
    from .facts import LOG10_TIE
    from .maps import log_correlation

    if live is None:
        return None
    log10 = np.asarray(live.log10, dtype=float)
    none = ~(log10 > -math.inf)
    zero = np.asarray(sensitivity.map) == 0
    counts = np.power(10.0, log10 - (log10[~none].max() if (~none).any() else 0.0))  # (any scale: a log correlation)
    uniform = not none.any() and float(log10.max() - log10.min()) < LOG10_TIE
    return {"cut": list(live.cut), "no_path": int(none.sum()), "positions": int(none.size), "uniform": uniform,
            "zero_sensitivity": int(zero.sum()), "same_zeros": bool(np.array_equal(none, zero)),
            "log_correlation": log_correlation(sensitivity.map, counts)}

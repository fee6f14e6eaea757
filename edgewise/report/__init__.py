"""The report (:func:`build`: one self-contained HTML page), figures and diagrams: the only place that plots.

Everything draws on :class:`matplotlib.figure.Figure` objects with the Agg
canvas, never through ``pyplot``, so nothing opens a window, touches the user's
backend or accumulates in pyplot's figure registry.
"""

import importlib
import importlib.util

# name -> submodule defining it; each loads on first use, so formatting helpers (``edgewise.report._format``)
# come without matplotlib, and the builder (which imports every engine) without an import cycle
_LAZY = {"build": "builder", "Report": "builder",
         "plot_pathways": "figures", "plot_receptive_field": "figures", "png_data_uri": "figures",
         "save_figure": "figures",
         "plot_sensitivity": "sensitivity", "plot_perturbation": "sensitivity",
         "draw_diagram": "diagram", "Diagram": "diagram"}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)  # a submodule, as when this file imported them
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

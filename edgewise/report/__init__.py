"""The report (:func:`build`: one self-contained HTML page), figures and diagrams: the only place that plots.

Everything draws on :class:`matplotlib.figure.Figure` objects with the Agg
canvas, never through ``pyplot``, so nothing opens a window, touches the user's
backend or accumulates in pyplot's figure registry.
"""

from .diagram import Diagram, draw_diagram
from .figures import plot_pathways, plot_receptive_field, png_data_uri, save_figure
from .sensitivity import plot_perturbation, plot_sensitivity

__all__ = ["build", "Report", "plot_pathways", "plot_receptive_field", "plot_sensitivity", "plot_perturbation", "png_data_uri", "save_figure", "draw_diagram", "Diagram"]


def __getattr__(name):  # the builder imports every engine: load it on first use (and no import cycle)
    if name in ("build", "Report"):
        from . import builder

        return getattr(builder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

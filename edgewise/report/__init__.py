"""Figures and diagrams of edgewise results: the only place that plots.

Everything draws on :class:`matplotlib.figure.Figure` objects with the Agg
canvas, never through ``pyplot``, so nothing opens a window, touches the user's
backend or accumulates in pyplot's figure registry.
"""

from .diagram import Diagram, draw_diagram
from .figures import plot_pathways, plot_receptive_field, png_data_uri, save_figure
from .sensitivity import plot_perturbation, plot_sensitivity

__all__ = ["plot_pathways", "plot_receptive_field", "plot_sensitivity", "plot_perturbation", "png_data_uri", "save_figure", "draw_diagram", "Diagram"]

"""PNG data URIs of results' standard figures (for notebooks), below both their users.

:mod:`edgewise.results` (``_repr_html_``) and :mod:`edgewise.report.figures` both use :func:`png_data_uri`; it
lives here, importing neither, so that they do not import each other. The drawing functions are named in
:data:`FIGURES` and imported by name only when a figure is drawn (plotting lives in :mod:`edgewise.report`).
"""

from __future__ import annotations

import base64
import importlib
import io

__all__ = ["FIGURES", "figure_for", "png_data_uri"]

#: result kind → (module, function) drawing its standard figure; the module is imported when needed
FIGURES = {
    "pathways": ("edgewise.report.figures", "plot_pathways"),
    "receptive_field": ("edgewise.report.figures", "plot_receptive_field"),
    "remedy_comparison": ("edgewise.report.remedies", "plot_comparison"),
    "scaling": ("edgewise.report.scaling", "plot_scaling"),
    "sensitivity": ("edgewise.report.sensitivity", "plot_sensitivity"),
    "perturbation": ("edgewise.report.sensitivity", "plot_perturbation"),
    "experiment": ("edgewise.report.experiments", "plot_accuracy"),
    "visualization": ("edgewise.report.visualize", "plot_grid"),
    "position_dependence": ("edgewise.report.position", "plot_similarity_matrix"),
    "index_vs_rf": ("edgewise.report.position", "plot_index_vs_rf"),
}
#: kinds whose drawing function takes png_data_uri's extra keyword arguments
_TAKES_OPTIONS = {"pathways"}


def figure_for(result, **kw):
    """The standard :class:`matplotlib.figure.Figure` of ``result``, or None when its kind has none."""
    kind = getattr(result, "kind", None)
    if kind not in FIGURES:
        return None
    module, name = FIGURES[kind]
    draw = getattr(importlib.import_module(module), name)
    return draw(result, **kw) if kind in _TAKES_OPTIONS else draw(result)


def png_data_uri(result, dpi: int = 100, **kw) -> str | None:
    """``data:image/png;base64,...`` of the result's standard figure (for notebooks), or None when
    the result has no figure."""
    fig = figure_for(result, **kw)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

"""Figures of results: path-count heatmaps and curves, receptive-field profiles.

Every function returns a :class:`matplotlib.figure.Figure` drawn on the Agg
canvas (no display, no ``pyplot`` state); :func:`save_figure` writes it and
:func:`png_data_uri` embeds it in a notebook.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine
from matplotlib.ticker import MaxNLocator
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .._png import png_data_uri  # below this module and edgewise.results, which both use it; re-exported
from ..errors import EdgewiseError
from ..results import write_atomic
from ._format import fmt_ratio

__all__ = ["plot_pathways", "plot_receptive_field", "png_data_uri", "save_figure", "STYLE", "Panel", "panels",
           "panel_text"]

#: readable fonts and a colour-blind-safe look, applied while a figure is built
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",  # text stays text in SVG: searchable, and sharp at any zoom
}
#: Okabe–Ito colours (distinguishable with every common colour-vision deficiency)
BLUE, ORANGE, VERMILION, GREEN, GREY = "#0072B2", "#E69F00", "#D55E00", "#009E73", "#999999"
#: perceptually uniform, colour-blind-safe colour maps allowed for maps of counts
CMAPS = ("viridis", "cividis")


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout on the Agg canvas (never registered with pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points."""
    # 0.6 em is a little wider than DejaVu Sans's average glyph, so lines never run past the edge
    return textwrap.fill(text, max(20, int(width_in * 72 / (0.6 * fontsize))))


@dataclass(frozen=True)
class Panel:
    """One drawn panel as a caption names it: what it shows, whether its value axis (or colour scale) is
    logarithmic, and where it sits (``left``/``middle``/``right``, ``top``/``bottom``; empty when alone)."""

    what: str
    log: bool = False
    where: str = ""


_PLACES = {("row", 2): ("left", "right"), ("row", 3): ("left", "middle", "right"),
           ("column", 2): ("top", "bottom"), ("column", 3): ("top", "middle", "bottom")}


def record_panels(fig: Figure, drawn: list[tuple[str, bool]], layout: str = "row", omitted: list[str] = ()) -> None:
    """Attach ``(what, log)`` of each panel, in drawing order along ``layout``, and what was left out
    (with why), to ``fig``, so its caption is written from what was drawn."""
    places = _PLACES.get((layout, len(drawn)), ("",) * len(drawn))
    fig.edgewise_panels = [Panel(what, log, where) for (what, log), where in zip(drawn, places)]
    fig.edgewise_omitted = list(omitted)


def panels(fig: Figure) -> list[Panel]:
    """The panels a plot function of this package drew on ``fig``, in order (empty when it recorded none)."""
    return list(getattr(fig, "edgewise_panels", []))


def panel_text(fig: Figure) -> str:
    """The panels in words for a caption: ``(left) A (log scale); (right) B`` and what was left out."""
    text = "; ".join((f"({p.where}) " if p.where else "") + p.what + (" (log scale)" if p.log else "")
                     for p in panels(fig))
    omitted = getattr(fig, "edgewise_omitted", [])
    return text + "".join(f"; not shown: {o}" for o in omitted)


#: decades a curve may span on a linear axis; beyond them only a log axis shows both ends
LOG_AXIS_DECADES = 2.0


def needs_log(*curves) -> bool:
    """Whether positive ``curves`` together span more than :data:`LOG_AXIS_DECADES` decades."""
    values = np.concatenate([np.ravel(c) for c in curves]) if curves else np.zeros(0)
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 0 and math.log10(values.max() / values.min()) > LOG_AXIS_DECADES


def _target(result) -> str:
    to, layer = getattr(result, "to", "all"), getattr(result, "layer", "output")
    if isinstance(to, str) and to == "all":
        return f"all units of {layer}"
    if isinstance(to, str) and to in ("center", "centre"):
        return f"the centre unit of {layer}"
    pos = tuple(to) if isinstance(to, (list, tuple)) else (to,)
    return f"unit {pos[0] if len(pos) == 1 else pos} of {layer}"


def _padding_of(result, padding):
    return padding if padding is not None else getattr(result, "padding", None)


def _subtitle(result, padding) -> str:
    parts = [str(getattr(result, "model", "model"))]
    if padding:
        parts.append(f"{padding} padding")
    s = getattr(result, "summary", {}) or {}
    ratio = s.get("log10_center_corner_ratio" if len(result.log10.shape) == 2 else "log10_center_edge_ratio")
    if ratio is not None and s.get("log10_center", 0.0) != -math.inf:
        parts.append(f"centre/{'corner' if len(result.log10.shape) == 2 else 'edge'} {fmt_ratio(ratio)}")
    return " · ".join(parts)


def _scaled(log10: np.ndarray) -> tuple[np.ndarray, int]:
    """(values, s) with values·10**s the counts and values finite in float64 (0 where no path)."""
    finite = log10[np.isfinite(log10)]
    top = float(finite.max()) if finite.size else 0.0
    s = math.ceil(top - 300) if top > 300 else 0
    with np.errstate(over="ignore", invalid="ignore"):
        vals = np.where(np.isfinite(log10), 10.0 ** (log10 - s), 0.0)
    return vals, s


def plot_pathways(result, *, padding: str | None = None, cmap: str = "viridis", title: str | None = None) -> Figure:
    """Path counts over the input: a log10 heatmap (2-D) or a curve (1-D).

    Args:
        result: a :class:`edgewise.PathCounts` (anything with ``log10``, ``model``,
            ``layer``, ``to`` and ``summary`` works).
        padding: padding scheme to name in the title (default: ``result.padding`` if set).
        cmap: ``"viridis"`` or ``"cividis"`` (2-D only).
        title: replaces the first title line.

    Returns:
        the :class:`~matplotlib.figure.Figure`.

    Example:
        >>> fig = plot_pathways(edgewise.pathways("4*conv3", (1, 32, 32)))
        >>> save_figure(fig, "paths.png")
    """
    if cmap not in CMAPS:
        raise EdgewiseError(f"plot_pathways: cmap {cmap!r} is not allowed; use one of {', '.join(CMAPS)} "
                            "(perceptually uniform and colour-blind safe)")
    log10 = np.asarray(result.log10, dtype=np.float64)
    if log10.ndim not in (1, 2):
        raise EdgewiseError(f"plot_pathways draws 1-D or 2-D inputs; this result has shape {log10.shape}")
    padding = _padding_of(result, padding)
    head = title or f"Paths from each input position to {_target(result)}"
    with matplotlib.rc_context(STYLE):
        if log10.ndim == 2:
            h, w = log10.shape
            fig = new_figure(6.4, max(3.2, min(9.0, 5.0 * h / w + 1.2)))
            ax = fig.add_subplot()
            _heatmap(fig, ax, log10, cmap, "log10 paths", "no path")
        else:
            fig = new_figure(6.4, 4.0)
            ax = fig.add_subplot()
            _curve(ax, log10, "paths to output")
        record_panels(fig, [("paths from each input position" + (" in colour" if log10.ndim == 2 else ""),
                             log10.ndim == 2 or ax.get_yscale() == "log")])
        fig.suptitle(textwrap.fill(head, 70), fontsize=12)
        ax.set_title(textwrap.fill(_subtitle(result, padding), 60 if log10.ndim == 2 else 80), fontsize=10, color="#333333")
    return fig


def _heatmap(fig: Figure, ax, log10: np.ndarray, cmap: str, label: str, missing: str) -> None:
    """A log10 map with (row, col) pixel axes and a labelled colour bar; grey where log10 is −inf."""
    colours = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(log10), cmap=colours, interpolation="nearest", origin="upper")
    fig.colorbar(im, ax=ax, shrink=0.9).set_label(label)
    ax.set_xlabel("input column x (px)")
    ax.set_ylabel("input row y (px)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if not np.isfinite(log10).all():
        ax.text(1.0, -0.12, f"grey: {missing}", transform=ax.transAxes, ha="right", va="top", fontsize=9,
                color="#555555")


def _curve(ax, log10: np.ndarray, label: str) -> None:
    """A 1-D map as a curve (log axis when it spans more than a factor 100)."""
    vals, s = _scaled(log10)
    x = np.arange(log10.shape[0])
    style = dict(marker="o", markersize=3.5) if x.size <= 80 else {}
    ax.plot(x, vals, color=BLUE, linewidth=1.8, **style)
    if s or needs_log(vals):
        ax.set_yscale("log")
    elif vals.max() > 0:
        ax.set_ylim(0, vals.max() * 1.08)
    ax.set_xlabel("input position (sample)")
    ax.set_ylabel(label + (f" (× 1e{s})" if s else ""))
    ax.set_xlim(-0.5, x.size - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def plot_receptive_field(rf, graph=None) -> Figure:
    """Receptive-field size per layer and the share of units whose field falls off the image.

    Args:
        rf: a :class:`edgewise.ReceptiveField`.
        graph: the :class:`edgewise.Graph` it was computed from; its explicit padding layers
            (``Node.is_padding``) are left out, since they add positions, not a layer of computation.
    """
    padding = {nd.name for nd in graph if nd.is_padding} if graph is not None else set()
    layers = [l for l in rf.layers if getattr(l, "jump", None) is not None and l.kind != "identity"
              and l.name not in padding]
    if not layers:
        raise EdgewiseError("plot_receptive_field: the model has no spatial layers to show")
    names = [l.name for l in layers]
    sizes = np.array([[float(v) for v in l.size] for l in layers])
    off = np.array([100.0 * float(l.fraction_off) for l in layers])
    in_sizes = list(rf.input_shape[1:])
    with matplotlib.rc_context(STYLE):
        width = max(6.4, 0.35 * len(names) + 2.5)
        fig = new_figure(width, 6.0)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
        x = np.arange(len(names))
        unit = "px" if sizes.shape[1] == 2 else "samples"
        square = sizes.shape[1] == 2 and np.array_equal(sizes[:, 0], sizes[:, 1]) and in_sizes[0] == in_sizes[1]
        if square or sizes.shape[1] == 1:
            axis_names = [""]
        else:
            axis_names = [", rows (y)", ", columns (x)"]
        for a, (colour, marker) in enumerate([(BLUE, "o"), (ORANGE, "s")][:len(axis_names)]):
            top.plot(x, sizes[:, a], color=colour, marker=marker, label=f"receptive field{axis_names[a]}")
            top.axhline(in_sizes[a], color=colour, linestyle="--", linewidth=1,
                        label=f"input size{axis_names[a]} ({in_sizes[a]} {unit})")
        top.set_ylim(0, max(float(sizes.max()), max(in_sizes)) * (1.3 if len(axis_names) == 1 else 1.6))
        top.set_ylabel(f"receptive field size ({unit})")
        top.legend(frameon=False, loc="upper left", ncols=2 if len(axis_names) == 2 else 1)
        top.grid(True, color="#e5e5e5", linewidth=0.8)
        fig.suptitle(wrap(f"Receptive fields of {getattr(rf, 'model', 'model')} "
                          f"(input {'x'.join(map(str, rf.input_shape))})", width, 12), fontsize=12)
        bottom.bar(x, off, color=VERMILION, width=0.7)
        bottom.set_ylabel("units with RF\npartly off " + ("image" if unit == "px" else "the signal") + " (%)")
        bottom.set_ylim(0, 105)
        bottom.set_xticks(x, names, rotation=60, ha="right")
        skipped = [l.name for l in rf.layers if l.name in padding]
        bottom.set_xlabel("layer" + (f" (padding layers {', '.join(skipped)} not drawn)" if skipped else ""))
        bottom.grid(True, axis="y", color="#e5e5e5", linewidth=0.8)
        record_panels(fig, [("receptive-field size of each layer against the input size", False),
                            ("share of each layer's units whose field reaches past the image border", False)],
                      layout="column")
    return fig


def png_size(fig: Figure, dpi: int = 150) -> tuple[int, int]:
    """(width, height) in pixels of the PNG :func:`save_figure` writes: the size matplotlib's canvas gives the
    figure at ``dpi``, asked of the canvas itself (it truncates, but rounds up a size a hair under a whole pixel:
    22 inches from arithmetic, 21.999999999999996, are 3300 pixels at 150 dpi, not 3299; reading the pixels as
    one column fewer shears the image)."""
    shown = fig.dpi
    fig.dpi = dpi
    try:
        return fig.canvas.get_width_height(physical=True)
    finally:
        fig.dpi = shown


def save_figure(fig: Figure, path, svg: bool = False, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as PNG (and SVG with ``svg=True`` or an ``.svg`` path); returns the paths written.

    ``path``'s suffix is replaced: ``out/paths`` and ``out/paths.svg`` both give
    ``out/paths.png`` (plus ``out/paths.svg`` when SVG is asked for).
    """
    path = Path(path)
    svg = svg or path.suffix.lower() == ".svg"
    targets = [(path.with_suffix(".png"), "png")] + ([(path.with_suffix(".svg"), "svg")] if svg else [])
    written = []
    with matplotlib.rc_context(STYLE):
        for target, fmt in targets:
            with _laid_out(fig, dpi if fmt == "png" else None):
                if fmt == "png":
                    data = _png(fig, dpi)
                else:
                    buf = io.BytesIO()
                    fig.savefig(buf, format=fmt, dpi=dpi)
                    data = buf.getvalue()
            write_atomic(target, data)
            written.append(target)
    return written


def write_svg_png(fig: Figure, svg, titles: dict[str, str]) -> tuple[Path, Path]:
    """Write ``fig`` as ``svg`` and the PNG beside it, the SVG's neurons titled (their hover tooltips)."""
    png, svg = save_figure(fig, svg, svg=True)
    _titles(svg, titles)
    return png, svg


def _titles(svg: Path, titles: dict[str, str]) -> None:
    """Give the SVG groups with these ids a ``<title>`` (the tooltip a browser shows on hover)."""
    text = svg.read_text()
    text = re.sub(r'<g id="(ew[0-9_]+)">',
                  lambda m: m.group(0) + (f"<title>{html.escape(titles[m.group(1)])}</title>"
                                          if m.group(1) in titles else ""), text)
    svg.write_text(text)


#: zlib level of the PNGs: 3 compresses a figure in about two thirds of the time of Pillow's default 6, and as
#: RGB the file comes out smaller than the default RGBA at 6
PNG_COMPRESSION = 3


def _png(fig: Figure, dpi: int) -> bytes:
    """``fig`` as PNG at ``dpi``: the pixels ``savefig`` draws, without the alpha channel when every pixel is
    opaque (a quarter fewer bytes to compress)."""
    raw = io.BytesIO()
    with matplotlib.rc_context({"savefig.bbox": "standard"}):  # the whole figure, as png_size says, never cropped
        fig.savefig(raw, format="rgba", dpi=dpi)
    image = Image.frombuffer("RGBA", png_size(fig, dpi), raw.getbuffer(), "raw", "RGBA", 0, 1)
    if image.getextrema()[3][0] == 255:
        image = image.convert("RGB")
    info = PngInfo()
    info.add_text("Software", "edgewise")
    out = io.BytesIO()
    image.save(out, format="png", pnginfo=info, dpi=(dpi, dpi), compress_level=PNG_COMPRESSION)
    return out.getvalue()


@contextlib.contextmanager
def _laid_out(fig: Figure, dpi: int | None):
    """``fig`` laid out once by its layout engine (on the Agg canvas at ``dpi``; None: left to ``savefig``), its
    engine detached meanwhile: ``savefig`` draws a figure with an engine twice, once to lay it out and once to
    render it, and the first draw costs about a fifth of a figure's time. The pixels are the same."""
    engine = fig.get_layout_engine()
    placeholder = isinstance(engine, PlaceHolderLayoutEngine)  # 'none': nothing to lay out
    if engine is None or (dpi is None and not placeholder):
        yield
        return
    # without these, set_layout_engine(None) would pick an engine from the rc
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        if not placeholder:
            if not isinstance(fig.canvas, FigureCanvasAgg):  # an unpickled figure's canvas is the base class
                FigureCanvasAgg(fig)
            shown = fig.dpi
            fig.set_dpi(dpi)  # text is measured at the dpi it is drawn at
            try:
                engine.execute(fig)
            finally:
                fig.set_dpi(shown)
        fig.set_layout_engine(None)
        try:
            yield
        finally:
            fig.set_layout_engine(engine)

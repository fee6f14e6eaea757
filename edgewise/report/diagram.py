"""Neuron diagrams of 1-D networks with the number of paths written at every neuron.

``draw_diagram("4*conv3", (1, 9), padding="valid")`` draws the input row at the
bottom and one row per convolution or pooling layer above it, joins every
neuron to the inputs its taps read, and writes inside each neuron how many
paths lead from it to the output: the Pascal's-triangle picture behind
edgewise's pathway counts (1 4 10 16 19 16 10 4 1 at the input here).

``draw_strip`` draws networks whose kernels are too wide for that (``conv64/s4``):
every neuron a dot coloured by its exact count, the count written on every k-th
neuron, and the taps of one neuron per layer.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

from .. import nets
from .._axis import Window, mirror
from .._trace import parse_shape, trace
from ..errors import EdgewiseError
from ..graph import Graph
from ..models import describe, load
from ..pathways import layer_counts
from ..results import write_atomic
from .figures import CMAPS, GREY, STYLE, VERMILION, new_figure, write_svg_png

__all__ = ["draw_diagram", "draw_strip", "sketch", "write_svg_png", "Diagram", "MAX_LAYERS", "MAX_POSITIONS",
           "MAX_STRIP_POSITIONS", "short_count", "diagram_path", "SUFFIXES"]

#: what ``out`` may end in: the SVG and the PNG are always written (same stem), ``.pdf`` adds a PDF
SUFFIXES = (".svg", ".png", ".pdf")
#: the file written inside a folder given as ``out``
FOLDER_NAME = "diagram.svg"

#: the largest networks a diagram stays readable for
MAX_LAYERS = 12
MAX_POSITIONS = 40
#: the longest input a strip diagram draws (one dot per position)
MAX_STRIP_POSITIONS = 512
_MAX_ROW = 64  # neurons in one row, virtual padding neurons included

_UNIT = 0.5  # inches per input pixel
_DY = 1.6  # row spacing, in input pixels
_R = 0.33  # neuron radius, in input pixels; grows to _R_MAX when the widest count needs it
_R_MAX = 0.42
_INK, _EDGE, _SELECTED, _PAD_FILL = "#222222", "#4d4d4d", "#cfe6f5", "#f2f2f2"
_FONT, _MIN_FONT = 10.0, 6.5  # label font sizes (pt): the largest, and the smallest written inside a neuron
_ROOM = 0.88  # share of a neuron's inner radius a number's box may reach
_SHORT_FROM = 10**4  # counts from here on are written short (12.3k); the exact count is in the SVG tooltip
_STRIP_WIDTH, _STRIP_DY = 10.5, 1.0  # strip diagrams: target data width and row spacing (inches)
_STRIP_FONT = 9.0  # counts written above strip neurons (pt)
_STRIP_DOT, _STRIP_MIN_DOT = 26.0, 5.0  # widest strip dot, and narrowest (pt): denser rows are a band of cells
_STRIP_BAR, _STRIP_PAD = 12.0, "#dddddd"  # height (pt) of such a band; fill of zero padding


@dataclass
class _Stage:
    """An explicit padding layer folded into the row below it."""

    lo: int
    hi: int
    n_in: int
    mode: str


@dataclass
class _Row:
    name: str
    op: str
    detail: str
    n: int
    x: np.ndarray
    jump: float
    # per neuron: [(virtual position in the row below, neuron it reads or None for a constant, taps)]
    taps: list = field(default_factory=list)
    counts: list = field(default_factory=list)

    def xpos(self, p: int) -> float:
        """x of (possibly virtual, out-of-row) position ``p``."""
        if 0 <= p < self.n:
            return float(self.x[p])
        if p < 0:
            return float(self.x[0] + p * self.jump)
        return float(self.x[-1] + (p - self.n + 1) * self.jump)


@dataclass
class Diagram:
    """What :func:`draw_diagram` or :func:`draw_strip` drew and wrote.

    Attributes:
        svg, png: the files written.
        model: the model's display name; ``padding``, ``to``: as drawn.
        rows: bottom (input) to top (output): ``{"name", "op", "counts"}`` with the
            exact path count of every neuron (channel 0) to the selected output units.
        style: ``"neurons"`` (:func:`draw_diagram`) or ``"strip"`` (:func:`draw_strip`).
        drawn: what the picture shows, for captions: ``padding_taps`` (``zero``, ``mirror``,
            ``wrap``), ``counts`` (least and most), ``short_labels`` (some count written as
            12.3k), and for strips ``label_steps`` (row → k), ``inside`` (rows numbered inside
            their dots) and ``fan`` (row → the neuron whose taps are drawn).
    """

    svg: Path
    png: Path
    model: str
    padding: str | None
    to: object
    rows: list[dict]
    style: str = "neurons"
    drawn: dict = field(default_factory=dict)
    pdf: Path | None = None  # written when ``out`` ended in .pdf

    def to_dict(self) -> dict:
        return {"model": self.model, "padding": self.padding, "to": self.to if not isinstance(self.to, tuple)
                else list(self.to), "svg": str(self.svg), "png": str(self.png), "rows": self.rows,
                "style": self.style, "drawn": self.drawn, **({"pdf": str(self.pdf)} if self.pdf else {})}

    @property
    def files(self) -> list[Path]:
        """Every file written."""
        return [self.svg, self.png] + ([self.pdf] if self.pdf else [])


def _resolve(q: int, n_src: int, mode: str, stages: list[_Stage]) -> int | None:
    """Neuron of the drawn row that tap ``q`` (in the coordinates of the layer's input) reads."""
    idx = mirror(q, n_src, mode)
    for st in reversed(stages):
        if idx is None:
            return None
        idx = mirror(idx - st.lo, st.n_in, st.mode)
    return idx


def _detail(nd) -> str:
    ax = nd.axes[0]
    if isinstance(ax, Window):
        parts = [f"k{ax.kernel}"] + [f"{c}{v}" for c, v in (("s", ax.stride), ("d", ax.dilation)) if v != 1]
        if ax.pad != (0, 0) or ax.mode != "zeros":
            parts.append(f"pad {ax.pad[0]},{ax.pad[1]}" + (f" {ax.mode}" if ax.mode != "zeros" else ""))
        return " ".join(parts)
    if len(nd.shape) < 2 or nd.spatial[0] == 1:  # an adaptive pool to one position: a global pool, or attention's
        return "global"
    return type(ax).__name__.lower()


def _rows(graph: Graph) -> list[_Row]:
    """The drawn rows, bottom to top, with every neuron's taps into the row below."""
    n_in = graph.input_shape[1]
    rows = [_Row("input", "input", f"{n_in} positions", n_in, np.arange(n_in, dtype=float), 1.0)]
    where: dict[str, tuple[int, list[_Stage]]] = {graph.input: (0, [])}
    for nd in graph:
        if nd.kind in ("input", "const"):
            continue
        live = [i for i in nd.inputs if graph[i].kind != "const"]
        if nd.kind in ("add", "mul", "cat") or len(live) != 1:
            raise EdgewiseError(
                f"draw_diagram draws a chain of layers, but {nd.name!r} ({nd.op}) combines {len(live)} inputs; "
                "draw a spec without res(...) blocks")
        if nd.kind in ("linear", "reshape"):
            raise EdgewiseError(
                f"draw_diagram draws convolution and pooling layers, but {nd.name!r} is a {nd.op} "
                f"({nd.kind}) whose units have no position; leave fc layers out of the spec")
        if live[0] not in where:
            raise EdgewiseError(f"draw_diagram: {nd.name!r} reads {live[0]!r}, which is not drawn")
        row_index, stages = where[live[0]]
        if nd.kind == "identity":
            where[nd.name] = (row_index, stages)
            continue
        if row_index != len(rows) - 1:
            raise EdgewiseError(f"draw_diagram draws a chain of layers, but {nd.name!r} branches off "
                                f"{rows[row_index].name!r}")
        src, below = graph[live[0]], rows[row_index]
        if nd.is_padding:
            where[nd.name] = (row_index, stages + [_Stage(*nd.axes[0].pad, src.spatial[0], nd.axes[0].mode)])
            continue
        if len(rows) > MAX_LAYERS:
            raise EdgewiseError(f"draw_diagram draws at most {MAX_LAYERS} layers (convolutions and pools); "
                                f"{graph.model_name} has more. Use a shorter spec")
        ax, n_src, n_out = nd.axes[0], src.spatial[0], nd.spatial[0] if len(nd.shape) > 1 else 1
        shift = sum(st.lo for st in stages)
        taps = []
        for o in range(n_out):
            if isinstance(ax, Window):
                raw = [o * ax.stride + t * ax.dilation - ax.pad[0] for t in range(ax.kernel)]
                mode = ax.mode
            else:  # adaptive pooling, resampling: the connection matrix says which inputs
                m = ax.matrix(n_src, n_out)[o]
                raw = [q for q in np.flatnonzero(m) for _ in range(int(m[q]))]
                mode = "zeros"
            found: dict[tuple[int, int | None], int] = {}
            for q in raw:
                key = (q - shift, _resolve(q, n_src, mode, stages))
                found[key] = found.get(key, 0) + 1
            taps.append([(p, i, k) for (p, i), k in found.items()])
        x = np.array([np.mean([below.xpos(p) for p, _, k in t for _ in range(k)]) for t in taps])
        jump = below.jump * (ax.stride if isinstance(ax, Window) else n_src / max(n_out, 1))
        detail = _detail(nd) + "".join(f" pad {st.lo},{st.hi}"
                                       + (f" {st.mode}" if st.mode != "zeros" else "") for st in stages)
        rows.append(_Row(nd.name, nd.op, detail, n_out, x, jump, taps))
        where[nd.name] = (len(rows) - 1, [])
    if len(rows) == 1:
        raise EdgewiseError(f"draw_diagram: {graph.model_name} has no convolution or pooling layer to draw")
    return rows


def short_count(count: int) -> str:
    """A count short enough for a neuron: exact below 10 000, else 3 significant digits (``12.3k``, ``4.56M``,
    ``7.1e21``)."""
    c = int(count)
    if c < _SHORT_FROM:
        return str(c)
    for exp, suffix in ((3, "k"), (6, "M"), (9, "G"), (12, "T")):
        if c < 10 ** (exp + 3) * 0.9995:  # would not round up into the next suffix
            v = c / 10**exp
            return f"{v:.{max(0, 2 - len(str(int(v))) + 1)}f}{suffix}"
    text = f"{c:.1e}"  # mantissa from the exact int's float: only 2 digits are shown
    mant, exp = text.split("e")
    return f"{mant}e{int(exp)}"


@functools.lru_cache(maxsize=None)
def _box(text: str) -> tuple[float, float]:
    """Width and height (pt) of ``text``'s layout box at 1 pt, as matplotlib draws it."""
    with matplotlib.rc_context(STYLE):
        fig = new_figure(1, 1)
        bb = fig.text(0, 0, text, fontsize=100, ha="center", va="center").get_window_extent(
            fig.canvas.get_renderer())
    return bb.width * 72 / fig.dpi / 100, bb.height * 72 / fig.dpi / 100


def _fit(texts, radius: float) -> float:
    """The largest font size (pt, at most ``_FONT``) at which every text's box fits in a circle of ``radius`` pt,
    with an eighth of the radius to spare (a number touching the rim reads as crammed)."""
    return min(_FONT, _ROOM * radius / _half(texts))


def _half(texts) -> float:
    """Half the diagonal of the widest text's box at 1 pt: the circle radius it needs."""
    return max(float(np.hypot(*_box(t))) / 2 for t in texts)


def _prepare(model_or_spec, input_shape, padding, width, limit: int, what: str):
    """(graph, display name, padding) of the model to draw, checked to be 1-D and at most ``limit`` long."""
    shape = parse_shape(input_shape)
    if len(shape) != 2:
        raise EdgewiseError(f"{what} draws 1-D networks; input shape {'x'.join(map(str, shape))} is 2-D. "
                            "Use an input like 1x9")
    if shape[1] > limit:
        raise EdgewiseError(f"{what} draws at most {limit} input positions; got {shape[1]}. "
                            "Use a shorter input such as 1x9")
    if isinstance(model_or_spec, str) and ":" not in model_or_spec:
        model = nets.from_spec(model_or_spec, shape, padding=padding, width=width, activation=None)
    else:
        model = load(model_or_spec, shape, padding=padding)
        padding = getattr(model, "padding", None)  # only spec nets know their padding scheme
    name = describe(model_or_spec) if isinstance(model_or_spec, str) else describe(model)
    return trace(model, shape, name=name), name, padding


def _counted(graph: Graph, to) -> list[_Row]:
    """The drawn rows with every neuron's exact path count (channel 0) to the ``to`` output units."""
    rows = _rows(graph)
    counts = layer_counts(graph, to=to, exact=True)
    for r in rows:
        r.counts = [int(c) for c in counts[r.name]]
    return rows


def diagram_path(out) -> Path:
    """The file ``out`` names: a folder (one that exists, or any path ending in a slash) gets ``diagram.svg``
    inside it; a file must end in one of :data:`SUFFIXES`, else an EdgewiseError lists them."""
    text = os.fspath(out)
    path = Path(out)
    if text.endswith(("/", os.sep)) or path.is_dir():
        return path / FOLDER_NAME
    if path.suffix.lower() not in SUFFIXES:
        raise EdgewiseError(f"cannot write {text!r}: the file name's suffix picks the format, one of "
                            f"{', '.join(SUFFIXES)} (the SVG and PNG are always written, .pdf adds a PDF); or give a "
                            f"folder ending in '/' to get {FOLDER_NAME} inside it")
    return path


def _save(fig, out, titles: dict[str, str]) -> tuple[Path, Path, Path | None]:
    out = diagram_path(out)
    png, svg = write_svg_png(fig, out.with_suffix(".svg"), titles)
    pdf = None
    if out.suffix.lower() == ".pdf":
        buf = io.BytesIO()
        with matplotlib.rc_context(STYLE):
            fig.savefig(buf, format="pdf")
        pdf = out
        write_atomic(pdf, buf.getvalue())
    return svg, png, pdf


def _written(sketched) -> Diagram:
    """The :class:`Diagram` of a :func:`sketch`, once its files are written."""
    fig, titles, d = sketched
    svg, png, pdf = _save(fig, d.svg if d.pdf is None else d.pdf, titles)
    return dataclasses.replace(d, svg=svg, png=png, pdf=pdf)


def sketch(draw, model_or_spec, input_shape, padding: str = "valid", to="all", out="net.svg", width: int = 1,
           title: str | None = None, labels: dict | None = None, **options):
    """(figure, SVG hover titles, :class:`Diagram`) of :func:`draw_diagram` or :func:`draw_strip` (``draw``), its
    files not written yet: the report has them written by its figure worker (:func:`write_svg_png`). ``labels``:
    the name each row shows, by its layer's name in ``model_or_spec`` (a slice's rows by the model's layers)."""
    path = diagram_path(out)  # a format it cannot write: refused before any work
    strip = draw is draw_strip
    limit = MAX_STRIP_POSITIONS if strip else MAX_POSITIONS
    graph, name, padding = _prepare(model_or_spec, input_shape, padding, width, limit, draw.__name__)
    rows = _counted(graph, to)
    for r in rows:
        r.name = (labels or {}).get(r.name, r.name)
    if strip:
        fig, drawn, titles = _draw_strip(rows, graph, padding, to, title, **options)
    else:
        widest = max(r.n for r in rows)
        if widest > _MAX_ROW:
            raise EdgewiseError(f"draw_diagram: layer rows up to {widest} neurons wide do not fit a readable "
                                f"diagram (at most {_MAX_ROW}); use a shorter input")
        fig, drawn, titles = _draw(rows, graph, padding, to, title)
    d = Diagram(path.with_suffix(".svg"), path.with_suffix(".png"), name, padding, to,
                [{"name": r.name, "op": r.op, "counts": r.counts} for r in rows], "strip" if strip else "neurons",
                drawn, path if path.suffix.lower() == ".pdf" else None)
    return fig, titles, d


def _padding_reads(rows: list[_Row]) -> list[dict[int, int | None]]:
    """Per row: the out-of-row (padding) positions some tap above reads → the neuron each copies (None: a
    constant)."""
    pads: list[dict[int, int | None]] = [{} for _ in rows]
    for r in range(1, len(rows)):
        for taps in rows[r].taps:
            for p, i, _ in taps:
                if not 0 <= p < rows[r - 1].n:
                    pads[r - 1][p] = i
    return pads


def _kind(row: _Row, p: int, i: int | None) -> str:
    """What a tap on position ``p`` reading neuron ``i`` is: an ordinary ``tap``, a ``zero`` padding tap, a
    ``mirror`` (a nearby copy) or a ``wrap`` (a copy too far away for an arc: circular padding)."""
    if i is None:
        return "zero"
    if i == p:
        return "tap"
    return "wrap" if abs(row.xpos(i) - row.xpos(p)) > 3.5 * row.jump else "mirror"


def _summary(rows: list[_Row], kinds: set[str], labels: list[str], **more) -> dict:
    """What a diagram drew, for its caption and the report's numbers."""
    real = [c for r in rows for c in r.counts]
    return {"padding_taps": sorted(kinds - {"tap"}), "counts": [min(real), max(real)],
            "short_labels": any(not t.lstrip("=").isdigit() for t in labels), **more}


def draw_diagram(model_or_spec, input_shape, padding: str = "valid", to="all", out="net.svg",
                 width: int = 1, title: str | None = None) -> Diagram:
    """Draw a small 1-D network neuron by neuron, with each neuron's number of paths to the output.

    Neurons sit in rows, the input at the bottom and the output on top; one row per
    convolution or pooling layer (activations and other per-unit layers are skipped;
    explicit padding layers are folded into the layer that reads them). Lines join each
    neuron to the neurons its taps read: a tap on zero padding goes to a grey virtual
    neuron, a tap on reflect/replicate/circular/symmetric padding goes (curved, in
    vermilion) to the real neuron it mirrors. Inside every neuron: the exact number of
    paths from it to the selected output units (channel 0), or from 10 000 on a short
    form (12.3k) with the exact number in the SVG's tooltip; neurons grow and the font
    shrinks until the widest number fits.

    Args:
        model_or_spec: a spec string (built with ``width`` channels, 1 by default, so
            the numbers are the pure Pascal triangle), an ``nn.Module`` or a model reference.
        input_shape: C×L, e.g. ``(1, 9)`` or ``"1x9"`` (at most 40 positions).
        padding: padding scheme for spec strings (see :data:`edgewise.nets.PADDINGS`).
        to: ``"all"``, ``"center"`` or an output position.
        out: output file ending in .svg, .png or .pdf (see :func:`diagram_path`; a folder gets
            ``diagram.svg``); the SVG and PNG are written next to each other with the same stem, and
            a PDF as well when ``out`` ends in .pdf.
        width: channels of spec convolutions.
        title: replaces the first title line.

    Returns:
        :class:`Diagram` (paths written and the counts drawn).

    Example:
        >>> d = draw_diagram("4*conv3", (1, 9), padding="valid", out="pascal.svg")
        >>> d.rows[0]["counts"]
        [1, 4, 10, 16, 19, 16, 10, 4, 1]
    """
    return _written(sketch(draw_diagram, model_or_spec, input_shape, padding, to, out, width, title))


def draw_strip(model_or_spec, input_shape, padding: str = "valid", to="all", out="net.svg",
               width: int = 1, title: str | None = None, fan: int = 0) -> Diagram:
    """Draw a 1-D network with wide kernels as rows of dots, one per neuron, coloured by paths to the output.

    The same rows as :func:`draw_diagram` (input at the bottom, every neuron above the
    middle of the inputs it reads), but each neuron is a dot coloured by its exact number
    of paths on a log colour scale. The number itself is written inside the dot where it
    fits at a readable size, else above every k-th dot (k a power of 2, counted inward from
    both edges, the numbered dots ringed). Padding positions read by some tap are grey
    dots (zero padding) or vermilion rings (copies of a real neuron). Lines: the taps of
    neuron ``fan`` of each layer (ringed in black). Exact counts: in the SVG's tooltips and
    in ``Diagram.rows``.

    Args:
        model_or_spec, padding, to, width, title: as :func:`draw_diagram`.
        input_shape: C×L with L at most :data:`MAX_STRIP_POSITIONS`.
        out: output file (SVG and PNG with the same stem, and a PDF too for .pdf; as :func:`draw_diagram`).
        fan: which neuron of each layer has its taps drawn (clipped to the layer; 0: the leftmost).

    Example:
        >>> d = draw_strip("conv64/s4, conv64/s4", (1, 256), padding="same", out="q.svg")
        >>> d.drawn["label_steps"]  # numbers on every 16th input, every 4th conv1 neuron, inside every conv2 one
        {'input': 16, 'conv1': 4, 'conv2': 1}
    """
    return _written(sketch(draw_strip, model_or_spec, input_shape, padding, to, out, width, title, fan=fan))


def _heading(ax, x: float, y: float, graph_name: str, padding, to, title, more: str = "") -> None:
    """Title and subtitle (what the numbers are, then ``more``), centred at ``x`` just above ``y``."""
    target = ("all output units" if to == "all" else "the centre output unit" if to in ("center", "centre")
              else f"output unit {to}")
    sub = " · ".join(([f"{padding} padding"] if padding else []) + [f"numbers: paths from each neuron to {target}{more}"])
    ax.annotate(title or f"Paths to the output of {graph_name}", (x, y), xytext=(0, 34), textcoords="offset points",
                ha="center", va="center", fontsize=12, fontweight="bold", color=_INK)
    ax.annotate(sub, (x, y), xytext=(0, 17), textcoords="offset points", ha="center", va="center", fontsize=9.5,
                color=_INK)


def _legend(ax, x: float, y: float, kinds: set[str], modes: list[str], tap_label: str, ncols: int,
            strip: bool = False) -> None:
    handles = [Line2D([], [], color=_EDGE, linewidth=1.2, label=tap_label)]
    if "zero" in kinds:
        handles.append(Line2D([], [], color=GREY, linestyle=(0, (3, 2)), marker="s" if strip else "o",
                              markerfacecolor=_STRIP_PAD if strip else _PAD_FILL,
                              markeredgecolor="none" if strip else GREY, label="tap on zero padding"))
    if strip and kinds & {"mirror", "wrap"}:  # strips draw every copy in place, near or far
        handles.append(Line2D([], [], color=VERMILION, linewidth=1.2, marker="s", markerfacecolor="white",
                              markeredgecolor=VERMILION,
                              label=f"tap on padding that copies a real neuron ({', '.join(modes) or 'padding'})"))
    elif "mirror" in kinds:
        handles.append(Line2D([], [], color=VERMILION, linewidth=1.2,
                              label=f"padding tap → the neuron it copies ({', '.join(modes) or 'padding'})"))
    if "wrap" in kinds and not strip:
        handles.append(Line2D([], [], color=VERMILION, linewidth=1.2, marker="o", markerfacecolor="white",
                              markeredgecolor=VERMILION, linestyle="-",
                              label="tap on a padded copy of neuron i (=i, counted from 0)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(x, y), bbox_transform=ax.transData,
              ncols=min(len(handles), ncols), frameon=False, fontsize=9, handlelength=2.4)


def _draw(rows: list[_Row], graph: Graph, padding, to, title):
    """The neuron-by-neuron figure, what it drew, and the SVG tooltips."""
    pads = _padding_reads(rows)
    kinds = {_kind(rows[r - 1], p, i) for r in range(1, len(rows)) for t in rows[r].taps for p, i, _ in t}
    # virtual neurons: zero padding some tap reads; ghosts: padding copying a far-away neuron (circular), in place
    virtual = [{p for p, i in pad.items() if i is None} for pad in pads]
    ghosts = [{p: i for p, i in pad.items() if _kind(row, p, i) == "wrap"} for row, pad in zip(rows, pads)]
    labels = [short_count(c) for row in rows for c in row.counts]
    copies = [f"={i}" for g in ghosts for i in g.values()]
    # the neuron radius (pt) that holds the widest number at 9 pt, within [_R, _R_MAX] input pixels
    pt = _UNIT * 72
    radius = float(np.clip(_half(labels + copies) * 9 / _ROOM + 1.2, _R * pt, _R_MAX * pt))
    font = _fit(labels + copies, radius - 1.2)  # inside the 1.2 pt edge
    r_data = radius / pt
    xs = [x for r, row in enumerate(rows) for x in list(row.x) + [row.xpos(p) for p in pads[r]]]
    x0, x1 = min(xs) - 0.8, max(xs) + 0.8
    # room for the widest row name at 9 pt (Inception V3's "Mixed_5d_branch3x3dbl_3_conv" overran 3.4 units)
    names = max(_box(line)[0] for row in rows for line in (row.name, row.detail)) * 9 / 72 / _UNIT
    label_x, label_w = x0 - 0.2, max(3.4, names + 0.4)
    top = (len(rows) - 1) * _DY
    y0, y1 = -1.9, top + 1.7  # room for the legend below and the title above
    width_in = (x1 - x0 + label_w) * _UNIT
    if width_in < 7.0:  # keep the title and legend readable on tiny nets
        grow = 7.0 / _UNIT - (x1 - x0 + label_w)
        x0, x1 = x0 - grow / 2, x1 + grow / 2
        width_in = 7.0
    titles = {}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(width_in, (y1 - y0) * _UNIT)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x0 - label_w, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.axis("off")
        tops = set(np.flatnonzero(_selected(rows[-1].n, to)))
        modes = sorted({st for st in _modes(graph) if st != "zeros"})

        # patches join with add_artist: the limits are set above, and add_patch's update of the data limits took a
        # third of a diagram's sketch
        straight, curved = [], []  # (start, end, style) of each straight tap; a patch per bowed (mirror) tap
        for r in range(1, len(rows)):
            below, row = rows[r - 1], rows[r]
            yb, yt = (r - 1) * _DY, r * _DY
            for o, taps in enumerate(row.taps):
                for p, i, k in taps:
                    kind = _kind(below, p, i)
                    end = (below.xpos(i if kind in ("tap", "mirror") else p), yb)
                    style, rad = {"tap": (dict(color=_EDGE, linewidth=0.9), 0.0),
                                  "zero": (dict(color=GREY, linestyle=(0, (3, 2)), linewidth=0.9), 0.0),
                                  "wrap": (dict(color=VERMILION, linewidth=1.1), 0.0),
                                  # bow outward, away from the ordinary taps
                                  "mirror": (dict(color=VERMILION, linewidth=1.1), 0.35 * (1 if p < 0 else -1)),
                                  }[kind]
                    style["linewidth"] *= 1 + 0.7 * (k - 1)
                    if rad:
                        curved.append(FancyArrowPatch((row.x[o], yt), end, arrowstyle="-", shrinkA=radius,
                                                      shrinkB=radius, connectionstyle=f"arc3,rad={rad}", zorder=1,
                                                      alpha=0.85, **style))
                    else:
                        straight.append(((row.x[o], yt), end, style))
                    if k > 1:
                        mx, my = (row.x[o] + end[0]) / 2, (yt + yb) / 2
                        ax.text(mx, my, f"×{k}", fontsize=7, ha="center", va="center", color=_INK, zorder=3,
                                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
        _add_lines(ax, straight, r_data)
        for patch in curved:  # the coloured bows over the grey lines they cross
            ax.add_artist(patch)
        for r, row in enumerate(rows):
            y = r * _DY
            for o in range(row.n):
                c = row.counts[o]
                fill = _SELECTED if r == len(rows) - 1 and o in tops else "white"
                ax.add_artist(Circle((row.x[o], y), r_data, facecolor=fill, edgecolor=_INK if c else GREY,
                                    linewidth=1.2, zorder=2, gid=f"ew{r}_{o}"))
                titles[f"ew{r}_{o}"] = f"{row.name}[{o}]: {c} paths"
                ax.text(row.x[o], y, short_count(c), ha="center", va="center", fontsize=font,
                        color=_INK if c else GREY, zorder=3)
            for p in sorted(virtual[r]):
                ax.add_artist(Circle((row.xpos(p), y), r_data, facecolor=_PAD_FILL, edgecolor=GREY, linewidth=1.0,
                                    linestyle=(0, (2, 2)), zorder=2))
            for p, i in sorted(ghosts[r].items()):
                ax.add_artist(Circle((row.xpos(p), y), r_data, facecolor="white", edgecolor=VERMILION, linewidth=1.0,
                                    linestyle=(0, (2, 2)), zorder=2))
                ax.text(row.xpos(p), y, f"={i}", ha="center", va="center", fontsize=font, color=VERMILION,
                        style="italic", zorder=3)
            ax.text(label_x, y, f"{row.name}\n{row.detail}", ha="right", va="center", fontsize=9, color=_INK,
                    linespacing=1.15)
        mid = (x0 - label_w + x1) / 2
        _heading(ax, mid, top + r_data, graph.model_name, padding, to, title)
        _legend(ax, mid, -r_data - 0.3, kinds, modes, "tap (connection)", 2 if width_in < 11 else 3)
    return fig, _summary(rows, kinds, labels, font=round(font, 2), radius_pt=round(radius, 2)), titles


def _add_lines(ax, lines, shrink: float) -> None:
    """Straight ``(start, end, style)`` lines, each shortened by ``shrink`` (data units; the axes' scale is the
    same along x and y) at both ends so that it stops at the rims of the neurons it joins, as one collection:
    a patch per tap, shrunk by bisecting its path, took a third of a diagram's drawing. Not snapped to pixels, as
    the patches were not (snapped, a vertical line is drawn one pixel wide and darker)."""
    if not lines:
        return
    ends = np.array([(a, b) for a, b, _ in lines], dtype=float)  # (n, 2 ends, xy)
    step = ends[:, 1] - ends[:, 0]
    cut = shrink * step / np.linalg.norm(step, axis=1, keepdims=True)
    ax.add_collection(LineCollection(np.stack([ends[:, 0] + cut, ends[:, 1] - cut], axis=1),
                                     colors=[st["color"] for _, _, st in lines],
                                     linewidths=[st["linewidth"] for _, _, st in lines],
                                     linestyles=[st.get("linestyle", "solid") for _, _, st in lines],
                                     alpha=0.85, zorder=1, snap=False), autolim=False)


def _share_ticks(lo: float) -> list[float]:
    """Colour-bar ticks from ``lo`` to 1: 1-2-5 steps, or finer when the range is under a decade."""
    e = int(np.floor(np.log10(lo)))
    for steps in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 8)):
        ticks = [round(m * 10.0**k, 12) for k in range(e, 1) for m in steps if lo <= m * 10.0**k <= 1]
        if len(ticks) >= 4:
            break
    return ticks if len(ticks) <= 8 else ticks[:: -(-len(ticks) // 8)]


def _edge_sample(n: int, k: int) -> list[int]:
    """Every k-th of ``n`` positions counted inward from both edges (both edges included), none closer than k."""
    chosen: list[int] = []
    for i in range(0, n, k):
        for o in (i, n - 1 - i):
            if all(abs(o - c) >= k for c in chosen):
                chosen.append(o)
    return sorted(chosen)


def _draw_strip(rows: list[_Row], graph: Graph, padding, to, title, fan: int = 0):
    """The strip figure (see :func:`draw_strip`), what it drew, and the SVG tooltips."""
    pads = _padding_reads(rows)
    xs = [x for r, row in enumerate(rows) for x in list(row.x) + [row.xpos(p) for p in pads[r]]]
    x0, x1 = min(xs) - 1, max(xs) + 1
    unit = float(np.clip(_STRIP_WIDTH / (x1 - x0), 0.015, 0.08))  # inches per input position
    names = max(_box(line)[0] for row in rows for line in (row.name, row.detail)) * 9 / 72 + 0.3  # inches
    pt, dy, label_w = unit * 72, _STRIP_DY / unit, names / unit
    # colour: a neuron's count over the most in its row, so every row shows its own edge-to-centre profile
    # (one scale for all rows would spend the colours on the gap between layers)
    shares = [[c / max(row.counts) if c else 0.0 for c in row.counts] for row in rows]
    lo = min(v for row in shares for v in row if v > 0)
    norm = LogNorm(lo, 1) if lo < 1 else Normalize(0, 1)
    cmap = matplotlib.colormaps[CMAPS[0]]
    width_in = (x1 - x0) * unit + names + 1.1  # data, row names, colour bar
    y0, y1 = -0.7 / unit, (len(rows) - 1) * dy + 0.85 / unit
    colour = {"tap": _EDGE, "zero": GREY, "mirror": VERMILION, "wrap": VERMILION}
    titles, steps, inside, bars, fans, labels = {}, {}, [], [], {}, []
    kinds: set[str] = set()
    with matplotlib.rc_context(STYLE):
        fig = new_figure(width_in, (y1 - y0) * unit)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0, 0, ((x1 - x0) * unit + names) / width_in, 1))
        ax.set_xlim(x0 - label_w, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.axis("off")
        for r, row in enumerate(rows):
            y = r * dy
            # a dot per neuron where dots stay visible, else a band of touching cells (a dense input row)
            size = min(0.8 * row.jump * pt, _STRIP_DOT)
            bar = size < _STRIP_MIN_DOT
            half = _STRIP_BAR / 2 if bar else size / 2  # pt above the row's centre line

            def cell(x, **style):  # add_artist, not add_patch: the limits are set (see _draw)
                if bar:
                    w = row.jump - min(0.3 / pt, 0.1 * row.jump)  # a hairline gap between cells
                    return ax.add_artist(Rectangle((x - w / 2, y - half / pt), w, 2 * half / pt, zorder=2, **style))
                return ax.add_artist(Circle((x, y), half / pt, zorder=2, **style))

            texts = [short_count(c) for c in row.counts]
            font = 0.0 if bar else _fit(texts, half - 0.8)
            if font >= _MIN_FONT:
                step = 1
                inside.append(row.name)
            else:  # above every k-th neuron, k the smallest power of 2 that keeps the numbers apart
                font = _STRIP_FONT
                need = max(_box(t)[0] for t in texts) * font + 4
                step = next(2**j for j in range(20) if 2**j * row.jump * pt >= need)
            steps[row.name] = step
            if bar:
                bars.append(row.name)
            numbered = set(range(row.n)) if step == 1 else set(_edge_sample(row.n, step))
            for o, c in enumerate(row.counts):
                fill = cmap(norm(shares[r][o])) if c > 0 else "white"
                edge = _INK if row.name in inside else GREY if not c else "none"
                cell(row.x[o], facecolor=fill, edgecolor=edge, linewidth=0.8, gid=f"ew{r}_{o}")
                titles[f"ew{r}_{o}"] = f"{row.name}[{o}]: {c} paths"
                if o not in numbered:
                    continue
                labels.append(texts[o])
                if row.name in inside:
                    light = c == 0 or sum(fill[:3]) > 1.6  # dark text on the bright end of the colour map
                    ax.text(row.x[o], y, texts[o], ha="center", va="center", fontsize=font, zorder=3,
                            color=_INK if light else "white")
                else:  # a tick from the number down to its neuron
                    ax.annotate(texts[o], (row.x[o], y + half / pt), xytext=(0, 6), textcoords="offset points",
                                ha="center", va="bottom", fontsize=font, color=_INK, zorder=4,
                                arrowprops=dict(arrowstyle="-", color=_INK, linewidth=0.7, shrinkA=0, shrinkB=0),
                                bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.8))
            for p, i in pads[r].items():
                kinds.add(_kind(row, p, i))
                cell(row.xpos(p), facecolor=_STRIP_PAD if i is None else "white",
                     edgecolor="none" if i is None else VERMILION, linewidth=0.8)
            ax.text(x0 - 0.15 / unit, y, f"{row.name}\n{row.detail}", ha="right", va="center", fontsize=9,
                    color=_INK, linespacing=1.15)
            if r:  # the taps of one neuron per layer, under the cells so each line ends at a cell's rim
                o, below = min(fan, row.n - 1), rows[r - 1]
                fans[row.name] = o
                taps = row.taps[o]
                ax.add_collection(LineCollection(
                    [[(row.x[o], y), (below.xpos(p), y - dy)] for p, _, _ in taps],
                    colors=[colour[_kind(below, p, i)] for p, i, _ in taps],
                    linestyles=["--" if i is None else "-" for _, i, _ in taps],
                    linewidths=[0.6 * k for _, _, k in taps], alpha=0.8, zorder=1))
                ax.add_artist(Circle((row.x[o], y), (half + 2.2) / pt, facecolor="none", edgecolor=_INK,
                                    linewidth=1.4, zorder=3))
        mid = (x0 - label_w + x1) / 2
        _heading(ax, mid, (len(rows) - 1) * dy + 0.2 / unit, graph.model_name, padding, to, title,
                 " · colour: the same ÷ the most in its row")
        _legend(ax, mid, -0.22 / unit, kinds | {"tap"}, sorted(_modes(graph) - {"zeros"}),
                f"taps of the ringed neuron ({', '.join(f'{n}[{o}]' for n, o in fans.items())})", 3, strip=True)
        cax = fig.add_axes((1 - 0.8 / width_in, 0.2, 0.12 / width_in, 0.55))
        bar = fig.colorbar(ScalarMappable(norm, cmap), cax=cax, label="paths ÷ the most in its row")
        bar.set_ticks(_share_ticks(lo), labels=[f"{v:g}" for v in _share_ticks(lo)])
        bar.ax.minorticks_off()
    drawn = _summary(rows, kinds, labels, label_steps=steps, inside=inside, bars=bars, fan=fans)
    return fig, drawn, titles


def _selected(n: int, to) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    if to == "all":
        mask[:] = True
    elif to in ("center", "centre"):
        mask[(n - 1) // 2] = True
    else:
        pos = to[0] if isinstance(to, (tuple, list)) else to
        if 0 <= int(pos) < n:
            mask[int(pos)] = True
    return mask


def _modes(graph: Graph) -> set[str]:
    return {a.mode for nd in graph for a in nd.axes if isinstance(a, Window)}

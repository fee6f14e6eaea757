"""Neuron diagrams of small 1-D networks with the number of paths written at every neuron.

``draw_diagram("4*conv3", (1, 9), padding="valid")`` draws the input row at the
bottom and one row per convolution or pooling layer above it, joins every
neuron to the inputs its taps read, and writes next to each neuron how many
paths lead from it to the output: the Pascal's-triangle picture behind
edgewise's pathway counts (1 4 10 16 19 16 10 4 1 at the input here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from .. import nets
from .._axis import Window, mirror
from .._trace import parse_shape, trace
from ..errors import EdgewiseError
from ..graph import Graph
from ..models import describe, load
from ..pathways import layer_counts
from .figures import GREY, STYLE, VERMILION, new_figure, save_figure
from ._format import fmt_number

__all__ = ["draw_diagram", "Diagram", "MAX_LAYERS", "MAX_POSITIONS"]

#: the largest networks a diagram stays readable for
MAX_LAYERS = 12
MAX_POSITIONS = 40
_MAX_ROW = 64  # neurons in one row, virtual padding neurons included

_UNIT = 0.5  # inches per input pixel
_DY = 1.6  # row spacing, in input pixels
_R = 0.33  # neuron radius, in input pixels
_INK, _EDGE, _SELECTED = "#222222", "#4d4d4d", "#cfe6f5"


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
    """What :func:`draw_diagram` drew and wrote.

    Attributes:
        svg, png: the files written.
        model: the model's display name; ``padding``, ``to``: as drawn.
        rows: bottom (input) to top (output): ``{"name", "op", "counts"}`` with the
            exact path count of every neuron (channel 0) to the selected output units.
    """

    svg: Path
    png: Path
    model: str
    padding: str | None
    to: object
    rows: list[dict]

    def to_dict(self) -> dict:
        return {"model": self.model, "padding": self.padding, "to": self.to if not isinstance(self.to, tuple)
                else list(self.to), "svg": str(self.svg), "png": str(self.png), "rows": self.rows}


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


def _label(count) -> tuple[str, float]:
    """Text for a neuron and the font size that fits it inside the circle."""
    text = fmt_number(int(count)) if int(count) < 10**6 else fmt_number(log10=float(np.log10(float(count))), digits=2)
    size = min(10.0, 36.0 / max(len(text), 1))
    return text, size


def draw_diagram(model_or_spec, input_shape, padding: str = "valid", to="all", out="net.svg",
                 width: int = 1, title: str | None = None) -> Diagram:
    """Draw a small 1-D network neuron by neuron, with each neuron's number of paths to the output.

    Neurons sit in rows, the input at the bottom and the output on top; one row per
    convolution or pooling layer (activations and other per-unit layers are skipped;
    explicit padding layers are folded into the layer that reads them). Lines join each
    neuron to the neurons its taps read: a tap on zero padding goes to a grey virtual
    neuron, a tap on reflect/replicate/circular/symmetric padding goes (curved, in
    vermilion) to the real neuron it mirrors. Inside every neuron: the exact number of
    paths from it to the selected output units (channel 0).

    Args:
        model_or_spec: a spec string (built with ``width`` channels, 1 by default, so
            the numbers are the pure Pascal triangle), an ``nn.Module`` or a model reference.
        input_shape: C×L, e.g. ``(1, 9)`` or ``"1x9"`` (at most 40 positions).
        padding: padding scheme for spec strings (see :data:`edgewise.nets.PADDINGS`).
        to: ``"all"``, ``"center"`` or an output position.
        out: output file; the SVG and PNG are written next to each other with the same stem.
        width: channels of spec convolutions.
        title: replaces the first title line.

    Returns:
        :class:`Diagram` (paths written and the counts drawn).

    Example:
        >>> d = draw_diagram("4*conv3", (1, 9), padding="valid", out="pascal.svg")
        >>> d.rows[0]["counts"]
        [1, 4, 10, 16, 19, 16, 10, 4, 1]
    """
    shape = parse_shape(input_shape)
    if len(shape) != 2:
        raise EdgewiseError(f"draw_diagram draws 1-D networks; input shape {'x'.join(map(str, shape))} is 2-D. "
                            "Use an input like 1x9")
    if shape[1] > MAX_POSITIONS:
        raise EdgewiseError(f"draw_diagram draws at most {MAX_POSITIONS} input positions; got {shape[1]}. "
                            "Use a shorter input such as 1x9")
    if isinstance(model_or_spec, str) and ":" not in model_or_spec:
        model = nets.from_spec(model_or_spec, shape, padding=padding, width=width, activation=None)
    else:
        model = load(model_or_spec, shape, padding=padding)
        padding = getattr(model, "padding", None)  # only spec nets know their padding scheme
    name = describe(model_or_spec) if isinstance(model_or_spec, str) else describe(model)
    graph = trace(model, shape, name=name)
    rows = _rows(graph)
    widest = max(r.n for r in rows)
    if widest > _MAX_ROW:
        raise EdgewiseError(f"draw_diagram: layer rows up to {widest} neurons wide do not fit a readable diagram "
                            f"(at most {_MAX_ROW}); use a shorter input")
    counts = layer_counts(graph, to=to, exact=True)
    for r in rows:
        r.counts = [int(c) for c in counts[r.name]]
    fig = _draw(rows, graph, padding, to, title)
    out = Path(out)
    if out.suffix.lower() not in (".svg", ".png"):
        out = out.with_suffix(".svg")
    png, svg = save_figure(fig, out.with_suffix(".svg"), svg=True)
    return Diagram(svg, png, name, padding, to,
                   [{"name": r.name, "op": r.op, "counts": r.counts} for r in rows])


def _draw(rows: list[_Row], graph: Graph, padding, to, title):
    # virtual neurons: padding positions some tap lands on, per row
    # and ghosts: padding positions that copy a far-away neuron (circular wrap-around), drawn in place
    virtual: list[set[int]] = [set() for _ in rows]
    ghosts: list[dict[int, int]] = [{} for _ in rows]
    kinds = set()
    for r in range(1, len(rows)):
        below = rows[r - 1]
        for taps in rows[r].taps:
            for p, i, _ in taps:
                if i is None:
                    virtual[r - 1].add(p)
                elif i != p and _far(below, p, i):
                    ghosts[r - 1][p] = i
                kinds.add("zero" if i is None else "tap" if i == p else "ghost" if _far(below, p, i) else "mirror")
    xs = [x for r, row in enumerate(rows)
          for x in list(row.x) + [row.xpos(p) for p in list(virtual[r]) + list(ghosts[r])]]
    x0, x1 = min(xs) - 0.8, max(xs) + 0.8
    label_x, label_w = x0 - 0.2, 3.4
    top = (len(rows) - 1) * _DY
    y0, y1 = -1.9, top + 1.7  # room for the legend below and the title above
    width_in = (x1 - x0 + label_w) * _UNIT
    if width_in < 7.0:  # keep the title and legend readable on tiny nets
        grow = 7.0 / _UNIT - (x1 - x0 + label_w)
        x0, x1 = x0 - grow / 2, x1 + grow / 2
        width_in = 7.0
    with matplotlib.rc_context(STYLE):
        fig = new_figure(width_in, (y1 - y0) * _UNIT)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x0 - label_w, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal")
        ax.axis("off")
        shrink = _R * _UNIT * 72  # circle radius in points
        tops = set(np.flatnonzero(_selected(rows[-1].n, to)))
        modes = sorted({st for st in _modes(graph) if st != "zeros"})

        for r in range(1, len(rows)):
            below, row = rows[r - 1], rows[r]
            yb, yt = (r - 1) * _DY, r * _DY
            for o, taps in enumerate(row.taps):
                for p, i, k in taps:
                    far = i is not None and i != p and _far(below, p, i)
                    end = (below.xpos(p if i is None or far else i), yb)
                    if far:
                        style = dict(color=VERMILION, linewidth=1.1)
                        rad = 0.0
                    elif i is None:
                        style = dict(color=GREY, linestyle=(0, (3, 2)), linewidth=0.9)
                        rad = 0.0
                    elif i != p:
                        style = dict(color=VERMILION, linewidth=1.1)
                        rad = 0.35 * (1 if p < 0 else -1)  # bow outward, away from the ordinary taps
                    else:
                        style = dict(color=_EDGE, linewidth=0.9)
                        rad = 0.0
                    style["linewidth"] *= 1 + 0.7 * (k - 1)
                    ax.add_patch(FancyArrowPatch((row.x[o], yt), end, arrowstyle="-", shrinkA=shrink,
                                                 shrinkB=shrink, connectionstyle=f"arc3,rad={rad}", zorder=1,
                                                 alpha=0.85, **style))
                    if k > 1:
                        mx, my = (row.x[o] + end[0]) / 2, (yt + yb) / 2
                        ax.text(mx, my, f"×{k}", fontsize=7, ha="center", va="center", color=_INK, zorder=3,
                                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
        for r, row in enumerate(rows):
            y = r * _DY
            for o in range(row.n):
                c = row.counts[o]
                fill = _SELECTED if r == len(rows) - 1 and o in tops else "white"
                ax.add_patch(Circle((row.x[o], y), _R, facecolor=fill, edgecolor=_INK if c else GREY,
                                    linewidth=1.2, zorder=2))
                text, size = _label(c)
                ax.text(row.x[o], y, text, ha="center", va="center", fontsize=size, color=_INK if c else GREY,
                        zorder=3)
            for p in sorted(virtual[r]):
                ax.add_patch(Circle((row.xpos(p), y), _R, facecolor="#f2f2f2", edgecolor=GREY, linewidth=1.0,
                                    linestyle=(0, (2, 2)), zorder=2))
            for p, i in sorted(ghosts[r].items()):
                ax.add_patch(Circle((row.xpos(p), y), _R, facecolor="white", edgecolor=VERMILION, linewidth=1.0,
                                    linestyle=(0, (2, 2)), zorder=2))
                ax.text(row.xpos(p), y, f"={i}", ha="center", va="center", fontsize=min(9.0, 30.0 / len(str(i))),
                        color=VERMILION, style="italic", zorder=3)
            ax.text(label_x, y, f"{row.name}\n{row.detail}", ha="right", va="center", fontsize=9, color=_INK,
                    linespacing=1.15)
        head = title or f"Paths to the output of {graph.model_name}"
        target = ("all output units" if to == "all" else "the centre output unit" if to in ("center", "centre")
                  else f"output unit {to}")
        sub = " · ".join(([f"{padding} padding"] if padding else []) +
                         [f"numbers: paths from each neuron to {target}"])
        ax.text((x0 - label_w + x1) / 2, top + 1.25, head, ha="center", va="center", fontsize=12,
                fontweight="bold", color=_INK)
        ax.text((x0 - label_w + x1) / 2, top + 0.75, sub, ha="center", va="center", fontsize=9.5, color=_INK)
        handles = [Line2D([], [], color=_EDGE, linewidth=1.2, label="tap (connection)")]
        if "zero" in kinds:
            handles.append(Line2D([], [], color=GREY, linestyle=(0, (3, 2)), marker="o", markerfacecolor="#f2f2f2",
                                  markeredgecolor=GREY, label="tap on zero padding"))
        if "mirror" in kinds:
            handles.append(Line2D([], [], color=VERMILION, linewidth=1.2,
                                  label=f"padding tap → the neuron it copies ({', '.join(modes) or 'padding'})"))
        if "ghost" in kinds:
            handles.append(Line2D([], [], color=VERMILION, linewidth=1.2, marker="o", markerfacecolor="white",
                                  markeredgecolor=VERMILION, linestyle="-",
                                  label="tap on a padded copy of neuron i (=i, counted from 0)"))
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=((x0 - label_w + x1) / 2, y0 + 0.1),
                  bbox_transform=ax.transData, ncols=min(len(handles), 2 if width_in < 11 else 3), frameon=False,
                  fontsize=9, handlelength=2.4)
    return fig


def _far(row: _Row, p: int, i: int) -> bool:
    """Whether padding position ``p`` copies a neuron too far away for a readable arc (circular wraps)."""
    return abs(row.xpos(i) - row.xpos(p)) > 3.5 * row.jump


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

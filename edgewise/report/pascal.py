"""The Pascal's-triangle picture of a model: a 1-D slice of its architecture drawn neuron by neuron (or, for wide
kernels, as strips of neurons), with the number of paths from every neuron to the output."""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from .. import nets
from .._trace import trace
from ..errors import EdgewiseError
from ..facts import and_list, spread
from ..pathways import pathways
from . import page
from .tables import ratio_text

__all__ = ["diagram"]


def _slice_length(sliced, lengths, read_all: bool = False, uneven: bool = False) -> int | None:
    """The first of ``lengths`` that leaves ≥ 3 output units, else the last that leaves one; among them, where there
    are such, those at which the slice does what the model does on its own input:

    - ``read_all`` (the model reads every position along the sliced axis): the slice reads every input too.
      Swin-T's slice (strides 4, 2, 2, 2, then a global pool) on 40 positions drops the last 8; on 32 it reads all.
    - ``uneven`` (the model's counts differ between positions): the slice's counts differ too. ConvNeXt-T's slice
      on 12 positions has 3 units a row, each reading all 3 below through its 7 taps: every input gets 27 paths.
    """
    wants = dict.fromkeys([(read_all, uneven), (read_all, False), (False, False)])  # (in order, once each)
    for reads, varies in wants:
        n = _shortest(sliced, lengths, lambda g: _shows(pathways(g).counts, reads, varies))
        if n is not None:
            return n
    return None


def _shows(counts, reads: bool, varies: bool) -> bool:
    """Whether a slice's input ``counts`` read every position (if ``reads``) and differ (if ``varies``)."""
    read = counts[counts > 0]
    return (not reads or read.size == counts.size) and (not varies or (read.size > 0 and read.max() > read.min()))


def _shortest(sliced, lengths, keep) -> int | None:
    """:func:`_slice_length` among the lengths whose traced Graph ``keep`` accepts."""
    fallback = None
    for n in lengths:
        try:
            g = trace(sliced, (1, n))
        except (EdgewiseError, RuntimeError):
            continue
        width = g[g.output].shape[-1]
        if width < 1 or not keep(g):
            continue
        if width >= 3:
            return n
        fallback = n
    return fallback


def _spread(paths) -> float:
    """log10 of max/min of a model's path counts over the positions it reads (:func:`edgewise.facts.spread`: 0 when
    they are all equal, NaN when none is read)."""
    return spread(log10=paths.log10)["log10_max_over_min"]


def _reads_every_column(paths) -> bool:
    """Whether every position along the last axis has a path to the output (in some row, in 2-D)."""
    log10 = np.asarray(paths.log10, dtype=float)
    return bool(np.isfinite(log10).reshape(-1, log10.shape[-1]).any(axis=0).all())


#: widest diagram (px) the report embeds; wider ones have neurons too small to read
MAX_DIAGRAM_WIDTH = 4000
#: widest kernel (taps × dilation) drawn neuron by neuron: beyond it the padding neurons alone overflow a row, and
#: the slice is drawn as strips instead
MAX_DRAWN_KERNEL = 15


def _draw_slice(s, w):
    """(figure, its SVG hover titles, diagram, layers kept, layers in all, png size, the layers below the drawn ones
    that the slice leaves out (:func:`edgewise.nets.axis_slice`)) of the deepest readable 1-D slice, or why there is
    none; the figure is written by the report's renderer (:meth:`.sections.Writer.diagram`).

    Narrow kernels: neuron by neuron on the shortest input (5…40 positions) that leaves ≥ 3 output units. Wide
    kernels: as strips on the model's own input length when it is at most MAX_STRIP_POSITIONS."""
    from .diagram import MAX_LAYERS, MAX_POSITIONS, MAX_STRIP_POSITIONS, draw_diagram, draw_strip, sketch
    from .figures import png_size

    whole = nets.axis_slice(s.ev.graph)
    total = sum(1 for m in whole if not isinstance(m, nets.Pad))
    widest = max(((m.kernel_size[0] - 1) * m.dilation[0] + 1 for m in whole if isinstance(m, nn.Conv1d)), default=1)
    own = s.ev.graph.input_shape[-1]
    read_all = _reads_every_column(s.ev.paths)
    uneven = _spread(s.ev.paths) > 0  # (NaN: nothing read, nothing to show)
    if widest > MAX_DRAWN_KERNEL:
        draw, lengths = draw_strip, [own] if own <= MAX_STRIP_POSITIONS else range(5, MAX_STRIP_POSITIONS + 1)
    else:
        draw, lengths = draw_diagram, range(5, MAX_POSITIONS + 1)
    why = f"no input of {min(lengths)} to {max(lengths)} positions leaves an output"
    for depth in sorted({MAX_LAYERS, 8, 6, 4, 3, 2, 1}, reverse=True):  # fewer layers: a narrower drawing
        sliced = nets.axis_slice(s.ev.graph, max_layers=depth)
        kept = sum(1 for m in sliced if not isinstance(m, nets.Pad))
        n = _slice_length(sliced, lengths, read_all, uneven)
        if kept < depth and depth != MAX_LAYERS or n is None:
            continue
        try:
            fig, titles, d = sketch(draw, sliced, (1, n), out=w.out / "figures" / f"{s.slug}-pascal.svg",
                                    title=f"Paths to the output in a 1-D slice of {s.ev.name}",
                                    labels=sliced.layer_names)
        except EdgewiseError as e:
            why = str(e).splitlines()[0]
            continue
        wd, h = png_size(fig)
        if wd <= MAX_DIAGRAM_WIDTH:
            return fig, titles, d, kept, total, (wd, h), sliced.left_out
        why = f"even {kept} layer(s) on {n} positions draw {wd} px wide; its kernels are too wide to read"
    return why


def _left_out(graph, names: list[str]) -> str:
    """" It leaves out 11 layers on the way that mix positions other than by sliding windows (attention: a, b, c and
    8 more), so its counts are not the model's." where the slice does."""
    if not names:
        return ""
    ops = and_list(sorted({graph[n].op for n in names}))
    shown = and_list(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
    return (f" It leaves out {len(names)} layer{'s' * (len(names) > 1)} on the way that mix positions other than by "
            f"sliding windows ({ops}: {shown}), so its counts are not the model's.")


def _caption(s, d, kept: int, total: int, left_out: list[str] = ()) -> str:
    """What the picture shows, read off what :mod:`.diagram` drew."""
    drawn, pads = d.drawn, set(d.drawn["padding_taps"])
    part = ("the model's sliding-window layers" if left_out else "the model's layers") if kept == total else \
        f"its first {kept} of {total} sliding-window layers"
    axis = "along its one axis" if len(s.ev.graph.input_shape) == 2 else "along the columns"
    text = (f"Pascal's triangle of a 1-D slice: {part} {axis}, one channel, on {len(d.rows[0]['counts'])} input "
            f"positions (bottom row) up to {d.rows[-1]['name']} (top row).{_left_out(s.ev.graph, left_out)}")
    if d.style == "strip":
        dots = [r["name"] for r in d.rows if r["name"] not in drawn["bars"]]
        shape = " or ".join(([f"a dot ({', '.join(dots)})"] if dots else [])
                            + ([f"a cell of a band ({', '.join(drawn['bars'])})"] if drawn["bars"] else []))
        above = [f"{_nth(k)} {name}" for name, k in drawn["label_steps"].items() if name not in drawn["inside"]]
        where = ([f"inside every {', '.join(drawn['inside'])} neuron"] if drawn["inside"] else []) + (
            [f"above {' and '.join(above)} neuron, counted inward from both edges (so both edge neurons are "
             "numbered) and tied to its neuron by a tick"] if above else [])
        text += (f" Each neuron is {shape}, coloured by its exact number of paths to the output divided by the most "
                 f"in its row (log colour scale); the exact count is written {', and '.join(where)}. Lines: the "
                 f"taps of the ringed neuron of each layer ({', '.join(f'{n}[{o}]' for n, o in drawn['fan'].items())})"
                 + ("; dashed grey ones read zero padding (light grey cells)" if "zero" in pads else "")
                 + ("; vermilion rings are padding cells that copy a real neuron (mirrored or wrapped)"
                    if pads & {"mirror", "wrap"} else "") + ".")
    else:
        text += (" Each neuron shows its number of paths to the output."
                 + (" Grey dashed neurons: zero padding." if "zero" in pads else "")
                 + (" Curved vermilion taps: padding that copies a mirrored neuron." if "mirror" in pads else "")
                 + (" Vermilion '=i' neurons: padding that wraps around to neuron i." if "wrap" in pads else ""))
    counts = d.rows[0]["counts"]
    read = [c for c in counts if c]
    if read and len(read) < len(counts):
        others = f"{_paths(read[0])} each" if min(read) == max(read) else f"{min(read):,} … {max(read):,}"
        text += f" {len(counts) - len(read)} of the {len(counts)} inputs get no path, the others {others}"
        if _reads_every_column(s.ev.paths):
            own = s.ev.graph.input_shape[-1]
            where = "positions" if len(s.ev.graph.input_shape) == 2 else "columns"
            text += (f" (the model itself reads all {own} of its own {where}; at no input length the diagram can "
                     "draw does this slice)")
        text += "; "
    elif min(counts) == max(counts):
        text += f" Every input gets {_paths(counts[0])}"
        gap = _spread(s.ev.paths)
        if gap > 0:
            text += (f" (the model's own counts differ, max/min {ratio_text(10 ** gap)} over its input; at no "
                     "input length the diagram can draw does this slice show that)")
        text += "; "
    else:
        text += f" The inputs get {min(counts):,} … {max(counts):,} paths; "
    low, high = drawn["counts"]
    text += f"every count in the picture is {low:,}." if low == high else \
        f"counts in the picture run from {low:,} to {high:,}."
    svg = f"figures/{d.svg.name}"
    if drawn["short_labels"]:
        return text + (" Counts of 10,000 or more are written to 3 significant digits (12.3k = 12,300 rounded); "
                       f"hover a neuron in {svg}, or read report.json, for its exact count.")
    return text + f" Hover a neuron in {svg} for its count."


def _paths(n: int) -> str:
    """``1 path``, ``12,000 paths``."""
    return f"{n:,} path" + ("" if n == 1 else "s")


def _nth(k: int) -> str:
    """``every``, ``every 2nd``, ``every 16th``."""
    return "every" + {1: "", 2: " 2nd", 3: " 3rd"}.get(k, f" {k}th")


def diagram(s, w) -> str:
    """Pascal's triangle of a 1-D slice of the model, as many layers as stay readable: neuron by neuron on the
    shortest input that leaves ≥ 3 output units, or as strips of neurons on the model's own input when its
    kernels are too wide for that."""
    try:
        drawn = _draw_slice(s, w)
    except EdgewiseError as e:
        drawn = str(e)
    if isinstance(drawn, str):
        return page.note(f"No Pascal's-triangle diagram for {s.ev.name}: {drawn}. The path counts above are exact "
                         "all the same.")
    fig, titles, d, kept, total, (wd, h), left_out = drawn
    w.record("diagram", s.key, {"style": d.style, "positions": len(d.rows[0]["counts"]), "layers": kept,
                                "label_steps": d.drawn.get("label_steps", {r["name"]: 1 for r in d.rows}),
                                "padding_taps": d.drawn["padding_taps"], "rows": d.rows, "left_out": left_out})
    return w.diagram(fig, titles, f"{s.slug}-pascal", _caption(s, d, kept, total, left_out),
                     (wd * 2 // 3, h * 2 // 3))

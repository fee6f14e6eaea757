"""The Pascal's-triangle picture of a model: a 1-D slice of its architecture drawn neuron by neuron, with the
number of paths from every neuron to the output."""

from __future__ import annotations

import torch.nn as nn

from .. import nets
from ..errors import EdgewiseError
from . import page

__all__ = ["diagram"]


def _slice_length(sliced) -> int | None:
    """The shortest input (5…40 positions) that leaves ≥ 3 output units, else the longest that leaves one."""
    from .._trace import trace
    from .diagram import MAX_POSITIONS

    fallback = None
    for n in range(5, MAX_POSITIONS + 1):
        try:
            g = trace(sliced, (1, n))
        except (EdgewiseError, RuntimeError):
            continue
        width = g[g.output].shape[-1]
        if width >= 3:
            return n
        fallback = n if width >= 1 else fallback
    return fallback


#: widest diagram (px) the report embeds; wider ones have neurons too small to read
MAX_DIAGRAM_WIDTH = 4000
#: widest kernel (taps × dilation) a diagram draws: beyond it the padding neurons alone overflow a row
MAX_DRAWN_KERNEL = 15


def _draw_slice(s, w):
    """(diagram, layers kept, layers in all, positions, png size) of the deepest readable 1-D slice, or the reason
    there is none."""
    from matplotlib.image import imread

    from .diagram import MAX_LAYERS, draw_diagram

    whole = nets.axis_slice(s.ev.graph)
    total = sum(1 for m in whole if not isinstance(m, nets.Pad))
    widest = max(((m.kernel_size[0] - 1) * m.dilation[0] + 1 for m in whole if isinstance(m, nn.Conv1d)), default=1)
    if widest > MAX_DRAWN_KERNEL:
        return f"its kernels span up to {widest} positions, too wide to draw neuron by neuron"
    why = "no input of 5 to 40 positions leaves an output"
    for depth in sorted({MAX_LAYERS, 8, 6, 4, 3, 2, 1}, reverse=True):  # fewer layers: a narrower drawing
        sliced = nets.axis_slice(s.ev.graph, max_layers=depth)
        kept = sum(1 for m in sliced if not isinstance(m, nets.Pad))
        n = _slice_length(sliced)
        if kept < depth and depth != MAX_LAYERS or n is None:
            continue
        try:
            d = draw_diagram(sliced, (1, n), out=w.out / "figures" / f"{s.slug}-pascal.svg",
                             title=f"Paths to the output in a 1-D slice of {s.ev.name}")
        except EdgewiseError as e:
            why = str(e).splitlines()[0]
            continue
        h, wd = imread(d.png).shape[:2]
        if wd <= MAX_DIAGRAM_WIDTH:
            return d, kept, total, n, (wd, h)
        d.svg.unlink()
        d.png.unlink()
        why = f"even {kept} layer(s) on {n} positions draw {wd} px wide; its kernels are too wide to read"
    return why


def diagram(s, w) -> str:
    """Pascal's triangle of a 1-D slice of the model: as many layers as stay readable, on the shortest input
    that leaves ≥ 3 output units."""
    try:
        drawn = _draw_slice(s, w)
    except EdgewiseError as e:
        drawn = str(e)
    if isinstance(drawn, str):
        return page.note(f"No Pascal's-triangle diagram for {s.ev.name}: {drawn}. The path counts above are exact "
                         "all the same.")
    d, kept, total, n, (wd, h) = drawn
    w.files += [d.svg, d.png]
    counts = d.rows[0]["counts"]
    part = "the model's layers" if kept == total else f"its first {kept} of {total} sliding-window layers"
    caption = (f"Pascal's triangle of a 1-D slice: {part} along the columns, one channel, on {n} input positions "
               f"(bottom row). Each neuron shows its number of paths to the output; the inputs get "
               f"{min(counts)} … {max(counts)}. Grey: zero padding; curved vermilion taps: padding that reads a "
               "mirrored or wrapped input.")
    w.record("diagram", s.key, {"positions": n, "layers": kept, "rows": d.rows})
    return w.png(d.png, f"{s.slug}-pascal", caption, (wd * 2 // 3, h * 2 // 3))

"""Figures of feature visualizations: a grid of preferred inputs (positions × seeds), or a row of seeds.

Each cell shows one optimised image (RGB, or grey through ``cividis`` for one channel) with the
objective's final value under it. Given receptive-field boxes (``edgewise.receptive_field(...).box``),
each row's box is outlined, clipped to the image, in a red-free colour with a white halo, and its centre is
marked with ``+``: a reader sees where the unit's field sits and how much of it falls off the image.

    >>> vis = V.maximize(net, [V.unit("conv3", 0, p) for p in ("center", "top_left")], (3, 32, 32))  # doctest: +SKIP
    >>> rf = edgewise.receptive_field(net, (3, 32, 32))                                                # doctest: +SKIP
    >>> fig = plot_grid(vis, positions=["center", "top_left"],
    ...                 rf_boxes=[rf.box("conv3", p) for p in ((15, 15), (0, 0))])                    # doctest: +SKIP
"""

from __future__ import annotations

import re
import textwrap

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import EdgewiseError
from ._format import fmt_number
from .figures import BLUE, STYLE, new_figure

__all__ = ["plot_grid", "plot_tiled", "OUTLINE", "row_labels"]

#: the receptive-field outline: Okabe–Ito blue (no red, distinguishable with every common colour-vision
#: deficiency), drawn over a white halo so that it shows on dark and light images alike
OUTLINE = BLUE
_HALO = [patheffects.withStroke(linewidth=3.4, foreground="white")]
_UNIT = re.compile(r"^unit\('(?P<layer>[^']*)', (?P<ch>-?\d+), (?P<pos>.*)\)$")
_CHANNEL = re.compile(r"^channel\('(?P<layer>[^']*)', (?P<ch>-?\d+)\)$")
_CELL = 1.55  # inches per image


def _images(vis) -> np.ndarray:
    images = np.asarray(vis.images)
    if images.ndim != 5:
        raise EdgewiseError(f"plot_grid draws 2-D images (objectives, seeds, C, H, W); this visualization has "
                            f"images of shape {images.shape}")
    if images.shape[2] not in (1, 3):
        raise EdgewiseError(f"plot_grid draws 1-channel (grey) or 3-channel (RGB) images; these have "
                            f"{images.shape[2]} channels")
    return images


def _unit(text: str):
    return _UNIT.match(text.strip())


def row_labels(vis, positions=None) -> list[str]:
    """One label per objective: the position name given in ``positions`` (an anchor or ``(row, col)``) and,
    when it says more, the resolved ``(row, col)`` read from ``vis.objectives``; else the objective itself."""
    n = len(vis.objectives)
    if positions is not None and len(positions) != n:
        raise EdgewiseError(f"positions: {len(positions)} labels for {n} objectives (one per row)")
    labels = []
    for i, text in enumerate(vis.objectives):
        m = _unit(text)
        where = m.group("pos") if m else None
        if positions is not None:
            given = positions[i]
            name = given if isinstance(given, str) else str(tuple(int(v) for v in given))
            labels.append(name if where is None or where == name else f"{name.replace('_', ' ')}\n{where}")
        elif where is not None:
            labels.append(where)
        else:
            labels.append(textwrap.fill(text, 22))
    return labels


def _subject(objectives: list[str]) -> str | None:
    """``channel c of layer`` when every objective reads the same channel of the same layer."""
    found = {(m.group("layer"), m.group("ch")) for m in (_unit(t) or _CHANNEL.match(t.strip()) for t in objectives)
             if m is not None}
    if len(found) == 1 and all(_unit(t) or _CHANNEL.match(t.strip()) for t in objectives):
        layer, ch = found.pop()
        return f"channel {ch} of {layer}"
    return None


def _config_line(vis) -> str:
    c = vis.config or {}
    parts = [f"{c['steps']} steps" if "steps" in c else None,
             f"{c['param']} parameterisation" if "param" in c else None,
             f"lr {c['lr']:g}" if "lr" in c else None, f"jitter {c['jitter']} px" if "jitter" in c else None,
             f"input {'×'.join(map(str, c['input_shape']))}" if "input_shape" in c else None]
    return " · ".join(p for p in parts if p)


def _clipped(box, h: int, w: int):
    """The box's pixel-edge rectangle clipped to the image: (x0, y0, x1, y1), the fraction of the box's
    area inside the image, and its centre (x, y)."""
    if len(box) != 2:
        raise EdgewiseError(f"rf_boxes: a box is ((row_lo, row_hi), (col_lo, col_hi)); got {box!r}")
    (r0, r1), (c0, c1) = ((float(lo), float(hi)) for lo, hi in box)
    if r1 < r0 or c1 < c0:
        raise EdgewiseError(f"rf_boxes: a box's lo must not exceed its hi; got {box!r}")
    y0, y1 = max(r0 - 0.5, -0.5), min(r1 + 0.5, h - 0.5)
    x0, x1 = max(c0 - 0.5, -0.5), min(c1 + 0.5, w - 0.5)
    area = (r1 - r0 + 1) * (c1 - c0 + 1)
    inside = max(0.0, y1 - y0) * max(0.0, x1 - x0) / area
    return (x0, y0, x1, y1), inside, ((c0 + c1) / 2, (r0 + r1) / 2)


def _draw_box(ax, box, h: int, w: int, view) -> float:
    """Outline the box just outside its pixels (so that the halo hides none of them), kept inside the
    image where the box is clipped; mark its centre. ``view``: the shown (x0, x1, y0, y1), for the gap."""
    (x0, y0, x1, y1), inside, (cx, cy) = _clipped(box, h, w)
    if inside > 0:
        pad = 0.012 * max(view[1] - view[0], view[3] - view[2])
        x0 = x0 - pad if x0 > -0.5 else x0 + pad
        y0 = y0 - pad if y0 > -0.5 else y0 + pad
        x1 = x1 + pad if x1 < w - 0.5 else x1 - pad
        y1 = y1 + pad if y1 < h - 0.5 else y1 - pad
        ax.add_patch(Rectangle((x0, y0), max(x1 - x0, 0), max(y1 - y0, 0), fill=False, edgecolor=OUTLINE,
                               linewidth=1.4, path_effects=_HALO, label="receptive field"))
    if -0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5:
        ax.plot([cx], [cy], marker="+", markersize=8, markeredgewidth=1.6, color=OUTLINE, path_effects=_HALO,
                label="unit's centre")
    return inside


def _view(box, h: int, w: int, zoom: float | None) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) shown: the whole image, or a window ``zoom``× the box's size (at most the image's),
    centred on the box and moved inside the image, so a corner unit's field sits in the window's corner."""
    if zoom is None or box is None:
        return -0.5, w - 0.5, -0.5, h - 0.5
    out = []
    for (lo, hi), n in zip(box[::-1], (w, h)):  # columns first: x
        span = min(float(n), zoom * (hi - lo + 1))
        a = (lo + hi) / 2 - span / 2
        a = min(max(a, -0.5), n - 0.5 - span)
        out += [a, a + span]
    return tuple(out)


def _field_text(box, h: int, w: int) -> str:
    (r0, r1), (c0, c1) = box
    size_r, size_c = r1 - r0 + 1, c1 - c0 + 1
    size = f"{size_r:g} px" if size_r == size_c else f"{size_r:g}×{size_c:g} px"
    inside = _clipped(box, h, w)[1]
    return f"field {size}, {100 * inside:.0f} % in"


def _grid(vis, rows: list[str], title: str, rf_boxes, note: str | None, zoom: float | None = None) -> Figure:
    images = _images(vis)
    n_obj, n_seeds, n_ch, h, w = images.shape
    if rf_boxes is not None and len(rf_boxes) != n_obj:
        raise EdgewiseError(f"rf_boxes: {len(rf_boxes)} boxes for {n_obj} objectives (one per row, or None)")
    if zoom is not None and not (zoom >= 1):
        raise EdgewiseError(f"zoom must be at least 1 (the window's size in receptive-field sizes); got {zoom!r}")
    views = [_view(rf_boxes[p] if rf_boxes is not None else None, h, w, zoom) for p in range(n_obj)]
    zoomed = any(v != (-0.5, w - 0.5, -0.5, h - 0.5) for v in views)
    final = np.asarray(vis.final, dtype=np.float64) if getattr(vis, "final", None) is not None else None
    aspect = h / w
    label_width = 1.5
    with matplotlib.rc_context(STYLE):
        fig = new_figure(label_width + _CELL * n_seeds, 1.05 + (_CELL * aspect + 0.32) * n_obj)
        axes = fig.subplots(n_obj, n_seeds, squeeze=False)
        for p in range(n_obj):
            label = rows[p]
            box = rf_boxes[p] if rf_boxes is not None else None
            if box is not None:
                label = f"{label}\n{_field_text(box, h, w)}"
            for s in range(n_seeds):
                ax = axes[p, s]
                img = np.clip(images[p, s], 0.0, 1.0)
                if n_ch == 1:
                    ax.imshow(img[0], cmap="cividis", vmin=0.0, vmax=1.0, interpolation="nearest")
                else:
                    ax.imshow(np.moveaxis(img, 0, -1), interpolation="nearest")
                x0, x1, y0, y1 = views[p]
                if box is not None:
                    _draw_box(ax, box, h, w, views[p])
                ax.set_xlim(x0, x1)
                ax.set_ylim(y1, y0)
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ("top", "right"):
                    ax.spines[side].set_visible(True)
                if p == 0:
                    ax.set_title(f"seed {s}", fontsize=10)
                if s == 0:
                    ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9, labelpad=6)
                if final is not None:
                    ax.set_xlabel(fmt_number(float(final[p, s]), digits=3), fontsize=8, labelpad=2,
                                  color="#333333")
        fig.suptitle(textwrap.fill(title, 60 + 14 * max(0, n_seeds - 3)), fontsize=12)
        parts = [_config_line(vis), "number under each image: the objective's final value"]
        if rf_boxes is not None and any(b is not None for b in rf_boxes):
            parts.append("blue outline: the unit's receptive field, clipped to the image; +: its centre")
        if zoomed:
            parts.append(f"each row zoomed to {zoom:g}× its receptive field (at most the whole image)")
        if note:
            parts.append(note)
        fig.supxlabel(textwrap.fill("; ".join(p for p in parts if p), 40 + 22 * n_seeds), fontsize=8,
                      color="#333333")
    return fig


def plot_grid(vis, title: str | None = None, positions=None, rf_boxes=None, zoom: float | None = None) -> Figure:
    """Preferred inputs of several objectives (rows, e.g. one unit at several positions) × seeds (columns).

    Args:
        vis: a :class:`edgewise.visualize.Visualization` with 2-D images (1 or 3 channels).
        title: the figure's title (default: what was maximised, from the objectives).
        positions: one label per row, e.g. the anchors asked for (``"top_left"``) or ``(row, col)``; the
            resolved ``(row, col)`` is added under an anchor's name (default: the resolved positions).
        rf_boxes: one receptive-field box per row (or None for a row without one), each
            ``((row_lo, row_hi), (col_lo, col_hi))`` in input pixels, unclipped, as
            :meth:`edgewise.ReceptiveField.box` returns: outlined (clipped to the image), centre marked,
            and its size and the share of it inside the image added to the row's label.
        zoom: with ``rf_boxes``, show each row only in a window this many times its receptive field (at most
            the image; moved inside it, so a corner unit's field stays in the window's corner): for small
            fields, whose pattern is a speck in the whole image.

    Returns:
        the :class:`~matplotlib.figure.Figure` (Agg canvas, not registered with pyplot).
    """
    rows = row_labels(vis, positions)
    if title is None:
        subject = _subject(vis.objectives)
        title = (f"Preferred input of {subject} at each position" if subject and len(rows) > 1
                 else f"Preferred input of {subject}" if subject
                 else f"Preferred inputs of {len(rows)} objective{'s' * (len(rows) != 1)}")
    return _grid(vis, rows, title, rf_boxes, None, zoom)


def plot_tiled(vis, title: str | None = None) -> Figure:
    """Preferred inputs of a channel objective (the channel's mean over every position): a row of seeds
    (one row per objective when there are several).

    Args:
        vis: a :class:`edgewise.visualize.Visualization`, typically of ``V.channel(layer, ch)``.
        title: the figure's title (default: the channel, "tiled over all positions").
    """
    rows = []
    for text in vis.objectives:
        m = _CHANNEL.match(text.strip())
        rows.append(f"{m.group('layer')}\nchannel {m.group('ch')}" if m else textwrap.fill(text, 22))
    if title is None:
        subject = _subject(vis.objectives)
        title = (f"Preferred input of {subject}, tiled (mean over all positions)" if subject
                 else f"Preferred inputs of {len(rows)} objective{'s' * (len(rows) != 1)}")
    return _grid(vis, rows, title, None, None)


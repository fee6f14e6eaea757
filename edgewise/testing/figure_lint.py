"""What a reader would miss in a figure: a title, axis labels, a colour bar, a readable font, a safe colour map,
text cut off by the figure's edge or titles touching other text."""

from __future__ import annotations

from matplotlib.image import AxesImage
from matplotlib.text import Text

__all__ = ["figure_problems", "layout_problems", "SAFE_CMAPS", "MIN_FONT"]

#: perceptually uniform, colour-blind-safe colour maps (grey for pictures of inputs)
SAFE_CMAPS = {"viridis", "cividis", "magma", "inferno", "plasma", "gray", "Greys", "gray_r", "Greys_r"}
#: smallest font size (points) a figure may use
MIN_FONT = 7.0


def _is_colorbar(ax) -> bool:
    return getattr(ax, "_colorbar", None) is not None


def _labelled(ax, which: str) -> bool:
    """``ax`` or an axes sharing that axis with it has a label (shared axes label the outer one only)."""
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    return any((a.get_xlabel() if which == "x" else a.get_ylabel()).strip() for a in shared.get_siblings(ax))


def figure_problems(fig) -> list[str]:
    """Each problem as a sentence; an empty list for a figure a reader can read without its caption."""
    problems = []
    axes = [a for a in fig.axes if a.get_visible() and not _is_colorbar(a)]
    suptitle = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
    if not suptitle and not all(a.get_title().strip() for a in axes):
        problems.append("no title (neither a figure title nor one per axes)")
    scalar_images = []
    for i, ax in enumerate(axes):
        images = [im for im in ax.get_images() if isinstance(im, AxesImage) and im.get_array() is not None
                  and im.get_array().ndim == 2]
        if not ax.axison:  # a picture tile (an input image): no axes to label
            continue
        for which in ("x", "y"):
            if not _labelled(ax, which) and not (which == "x" and not ax.get_xticks().size):
                problems.append(f"axes {i} ({ax.get_title() or 'untitled'}): no {which} label")
        scalar_images += images
    for im in scalar_images:
        name = im.get_cmap().name.removesuffix("_r") if im.get_cmap().name not in SAFE_CMAPS else im.get_cmap().name
        if name not in SAFE_CMAPS:
            problems.append(f"colour map {im.get_cmap().name!r} is not perceptually uniform and colour-blind safe")
    if scalar_images and not any(_is_colorbar(a) for a in fig.axes):
        problems.append("a map of values without a colour bar")
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT:
            problems.append(f"text {t.get_text()[:30]!r} at {t.get_fontsize():.1f} pt (< {MIN_FONT:g} pt)")
            break
    return problems + layout_problems(fig)


def _shown_ticklabels(axis) -> list:
    """The tick labels an axis draws: those of ticks inside its view interval (the locator makes more)."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    return [tick.label1 for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if lo - span <= tick.get_loc() <= hi + span]


def _texts(fig) -> list:
    """Every text a reader sees: figure titles and labels, and each visible axes' titles, axis labels,
    drawn tick labels, legend and annotations."""
    found = [t for t in (fig._suptitle, fig._supxlabel, fig._supylabel) if t is not None] + list(fig.texts)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title] + list(ax.texts)
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                found += [axis.label] + _shown_ticklabels(axis)
        if ax.get_legend() is not None:
            found += list(ax.get_legend().get_texts())
    return [t for t in found if t.get_visible() and t.get_text().strip()]


def layout_problems(fig, tolerance: float = 1.0, gap: float = 2.0) -> list[str]:
    """Titles and labels a reader cannot read whole: text cut off by the figure's edge (beyond ``tolerance``
    pixels), and a title (figure or panel) closer than ``gap`` points to any other text (the axis labels of
    the row above, say)."""
    fig.draw_without_rendering()  # lay out first: constrained layout places everything on draw
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    problems = []
    texts = _texts(fig)
    boxes = {id(t): t.get_window_extent(renderer) for t in texts}
    for t in texts:
        b = boxes[id(t)]
        if (b.x0 < frame.x0 - tolerance or b.x1 > frame.x1 + tolerance or b.y0 < frame.y0 - tolerance
                or b.y1 > frame.y1 + tolerance):
            problems.append(f"text {t.get_text()[:40]!r} is cut off by the figure's edge")
    titles = [t for t in texts if t is fig._suptitle or any(t is a.title for a in fig.axes)]
    pad = gap * fig.dpi / 72
    for t in titles:
        box = boxes[id(t)].padded(pad)
        for other in texts:
            if other is not t and box.overlaps(boxes[id(other)]):
                problems.append(f"title {t.get_text()[:40]!r} touches {other.get_text()[:40]!r}")
    return problems

"""What a reader would miss in a figure: a title, axis labels, a colour bar, a readable font, a safe colour map."""

from __future__ import annotations

from matplotlib.image import AxesImage
from matplotlib.text import Text

__all__ = ["figure_problems", "SAFE_CMAPS", "MIN_FONT"]

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
    return problems

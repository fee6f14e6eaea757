"""One self-contained HTML page: figures embedded as PNG data, inline CSS, no script, nothing fetched.

The pieces are plain strings of HTML: :func:`image` (a figure's PNG, shown at :func:`shown_size`),
:func:`table`, :func:`markdown` and :func:`paragraph` make them, :func:`page` puts sections and a table of contents
around them.
"""

from __future__ import annotations

import base64
import html
import re

from matplotlib.figure import Figure

__all__ = ["shown_size", "image", "table", "markdown", "paragraph", "note", "page", "slug"]

_CSS = """
:root { --ink: #1a1a1a; --muted: #555; --rule: #ddd; --accent: #0072B2; --bg: #fff; --panel: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: var(--ink); background: var(--bg); }
header { padding: 2rem max(1.5rem, calc(50% - 34rem)) 1rem; border-bottom: 1px solid var(--rule); }
header h1 { margin: 0 0 .3rem; font-size: 1.8rem; }
header p { margin: .2rem 0; color: var(--muted); }
nav { padding: .6rem max(1.5rem, calc(50% - 34rem)); background: var(--panel); border-bottom: 1px solid var(--rule);
      font-size: .95rem; display: flex; flex-wrap: wrap; row-gap: .25rem; }
nav a { margin-right: 1.1rem; color: var(--accent); text-decoration: none; white-space: nowrap; }
main { padding: 0 max(1.5rem, calc(50% - 34rem)) 3rem; }
section { border-bottom: 1px solid var(--rule); padding: 1.2rem 0 1.6rem; }
h2 { font-size: 1.45rem; margin: .6rem 0 .4rem; }
h3 { font-size: 1.15rem; margin: 1.2rem 0 .3rem; }
h4 { font-size: 1.02rem; margin: 1rem 0 .2rem; }
.blurb { color: var(--muted); margin: .2rem 0 .8rem; max-width: 52rem; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--rule); background: #fff; }
figcaption { color: var(--muted); font-size: .92rem; margin-top: .35rem; max-width: 52rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; font-variant-numeric: tabular-nums; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { border-bottom: 1px solid var(--rule); padding: .25rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: var(--panel); }
.scroll { overflow-x: auto; }
.note { background: #fff8e6; border-left: 4px solid #E69F00; padding: .5rem .8rem; margin: .8rem 0; }
.answer { background: var(--panel); padding: .2rem 1.2rem .6rem; border-radius: 6px; margin: .8rem 0; }
code { font-size: .92em; background: var(--panel); padding: 0 .2em; border-radius: 3px; }
footer { color: var(--muted); font-size: .85rem; padding: 1rem max(1.5rem, calc(50% - 34rem)); }
"""


def slug(text: str) -> str:
    """An HTML id from any text: ``"conv64/s4, conv64/s4"`` → ``"conv64-s4-conv64-s4"``."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def shown_size(fig: Figure, dpi: int = 110) -> tuple[int, int]:
    """The (width, height) in CSS pixels at which the page shows ``fig``, whatever resolution its PNG has."""
    return tuple(round(v * dpi) for v in fig.get_size_inches())


def image(png: bytes, ident: str, caption: str, size: tuple[int, int], alt: str | None = None) -> str:
    """``<figure>`` with PNG bytes embedded, shown at ``size`` (width, height) CSS pixels at most."""
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(alt or caption, quote=True)
    return (f'<figure id="{html.escape(ident)}"><img src="data:image/png;base64,{data}" width="{size[0]}" '
            f'height="{size[1]}" alt="{alt}"><figcaption>{html.escape(caption)}</figcaption></figure>')


def table(headers, rows, caption: str | None = None) -> str:
    """A ``<table>`` of already formatted cells (escaped here)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def markdown(text: str) -> str:
    """Markdown (CommonMark with tables) as HTML; raw HTML in the text is escaped. Tables scroll sideways on
    their own, as :func:`table`'s do, rather than widening the page."""
    from markdown_it import MarkdownIt

    out = MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
    return out.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def paragraph(text: str, cls: str | None = None) -> str:
    """A ``<p>`` of plain text (escaped)."""
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def note(text: str) -> str:
    """A highlighted remark: something the reader should know (a skipped part, a caveat)."""
    return f'<div class="note">{html.escape(text)}</div>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str = "") -> str:
    """The whole document: ``sections`` are ``(id, title, inner HTML)``, listed in a table of contents."""
    nav = "".join(f'<a href="#{html.escape(i)}">{html.escape(t)}</a>' for i, t, _ in sections)
    body = "".join(f'<section id="{html.escape(i)}"><h2>{html.escape(t)}</h2>{inner}</section>'
                   for i, t, inner in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
            f"<nav>{nav}</nav><main>{body}</main><footer>{html.escape(footer)}</footer></body></html>\n")

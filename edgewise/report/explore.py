"""The interactive explorer: one self-contained ``explore.html`` that counts pathways in the browser.

``write_explore("out/", "8*conv3", (1, 24), padding="valid")`` writes a page that opens on that network, with a
stack editor (kernel, stride, dilation, padding per layer or global, max/avg/global pooling, repeat counts, 1-D or
separable 2-D input) and four views that update as the controls move: the neuron diagram with every neuron's path
count, the count curve (1-D) or map (2-D), the centre/edge ratio against depth 1…64 beside the closed forms of
:mod:`edgewise.theory`, and the receptive field of a clicked unit. The counts are exact integers (JavaScript
BigInt) with the conventions of :func:`edgewise.pathways` (one channel per layer, every weight one), so the page
and the engine give the same numbers (``tests/test_explore.py`` checks them in a real browser).

The page has inline JavaScript and CSS only (``explore_assets/``, package data): no library, no request, no
network. The URL hash holds the configuration.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .. import nets
from .._trace import parse_shape
from ..errors import EdgewiseError
from ..results import write_atomic

__all__ = ["explore_config", "explore_html", "write_explore", "FILE_NAME", "EDITOR_CONFIG", "SUPPORTED"]

#: the file written into the output folder
FILE_NAME = "explore.html"
#: what the page opens on without a model: the stack editor with a small 1-D net
EDITOR_CONFIG = {"input": [16], "padding": "same", "to": "all",
                 "rows": [{"kind": "conv", "k": 3, "s": 1, "d": 1, "rep": 4, "pad": None}]}
#: spec items the explorer draws (a chain of sliding windows along each axis)
SUPPORTED = ("conv", "maxpool", "avgpool", "gap", "gmp")
_MAX_LENGTH, _MAX_SIDE = 4096, 1024  # the page's own limits (LIMITS in engine.js)
_ASSETS = ("engine.js", "draw.js", "app.js")


def explore_config(spec: str | None = None, input_shape=None, padding: str = "same", to="all") -> dict:
    """The page's starting configuration for a spec string (the editor's default without one).

    Args:
        spec: a spec string whose layers the explorer supports (``convK[/sS][/dD]``, ``maxpoolK[/sS]``,
            ``avgpoolK[/sS]``, ``gap``, ``gmp``, with ``N*`` repeats); None for the editor.
        input_shape: C×L or C×H×W (C is ignored: the page counts one channel); default 1×64.
        padding: the global padding (one of :data:`edgewise.nets.PADDINGS`).
        to: ``"all"``, ``"center"`` or an output position (an int in 1-D, ``(row, col)`` in 2-D).

    Returns:
        ``{"input": [L] or [H, W], "padding", "to", "rows": [{"kind", "k", "s", "d", "rep", "pad"}, ...]}``.

    Raises:
        EdgewiseError: a layer the explorer does not draw (``fc``, ``res(...)``, ``/cN``), a model reference that
            is not a spec string, a shape that is not 1-D or 2-D, or a spec that edgewise.nets refuses.

    Example:
        >>> explore_config("2*conv3, maxpool2", (1, 32))["rows"][0]
        {'kind': 'conv', 'k': 3, 's': 1, 'd': 1, 'rep': 2, 'pad': None}
    """
    if padding not in nets.PADDINGS:
        raise EdgewiseError(f"unknown padding {padding!r}; choose one of {', '.join(nets.PADDINGS)}")
    if spec is None:
        config = json.loads(json.dumps(EDITOR_CONFIG))
        config["padding"] = padding
        if input_shape is not None:
            config["input"] = _input(input_shape)
        return config
    if not isinstance(spec, str) or not spec.strip():
        raise EdgewiseError(f"expected a spec string such as '8*conv3', got {spec!r}")
    if ":" in spec:
        raise EdgewiseError(f"the explorer opens spec strings of conv and pool layers (e.g. '8*conv3', "
                            f"'2*conv3, maxpool2, conv5/s2'), not model references; got {spec!r}")
    shape = (1, 64) if input_shape is None else input_shape
    size = _input(shape)
    toks = nets._parse(spec, 0, len(spec))  # the grammar's own errors (with a caret) for malformed specs
    rows: list[dict] = []
    last = None
    for tok in toks:
        if tok.kind not in SUPPORTED:
            what = {"res": "a residual block res(...) branches", "fc": "a dense layer's units have no position"}
            raise EdgewiseError(
                f"layer {tok.text!r} is not supported by the explorer ({what.get(tok.kind, tok.kind)}); it "
                f"draws chains of {', '.join(SUPPORTED)} layers. Leave {tok.text!r} out, e.g. "
                f"'{_without(toks, tok)}'")
        if tok.kind == "conv" and tok.args.get("c") is not None:
            raise EdgewiseError(f"layer {tok.text!r} asks for {tok.args['c']} channels, but the explorer "
                                f"counts one channel per layer (width 1); leave /c{tok.args['c']} out")
        if tok is last:  # `N*item` repeats the same token object: one row with a repeat count
            rows[-1]["rep"] += 1
            continue
        last = tok
        if tok.kind in ("gap", "gmp"):
            rows.append({"kind": tok.kind, "k": 1, "s": 1, "d": 1, "rep": 1, "pad": None})
        else:
            k = tok.args["k"]
            s = tok.args["s"] or (1 if tok.kind == "conv" else k)
            rows.append({"kind": tok.kind, "k": k, "s": s, "d": tok.args.get("d") or 1, "rep": 1, "pad": None})
    nets.from_spec(spec, (1, *size), padding=padding, width=1, activation=None)  # sizes too small: nets' message
    return {"input": size, "padding": padding, "to": _to(to, len(size)), "rows": rows}


def _without(toks, bad) -> str:
    """The spec with the unsupported layers left out (repeats written back as N*item)."""
    kept: list[list] = []
    for t in toks:
        if t.kind not in SUPPORTED:
            continue
        if kept and kept[-1][0] is t:
            kept[-1][1] += 1
        else:
            kept.append([t, 1])
    return ", ".join(f"{n}*{t.text}" if n > 1 else t.text for t, n in kept) or "8*conv3"


def _input(shape) -> list[int]:
    shape = parse_shape(shape)
    if len(shape) not in (2, 3):
        raise EdgewiseError(f"the explorer draws 1-D (CxL) or 2-D (CxHxW) inputs; got "
                            f"{'x'.join(map(str, shape))}")
    size = list(shape[1:])
    limit = _MAX_LENGTH if len(size) == 1 else _MAX_SIDE
    if max(size) > limit:
        raise EdgewiseError(f"input {'x'.join(map(str, shape))} is larger than the explorer draws (at most "
                            f"{limit} positions per axis {'in 1-D' if len(size) == 1 else 'in 2-D'})")
    return size


def _to(to, ndim: int):
    if isinstance(to, str) and to in ("all", "center", "centre"):
        return "center" if to == "centre" else to
    pos = [to] if isinstance(to, int) else list(to) if isinstance(to, (tuple, list)) else None
    if pos is None or len(pos) != ndim or not all(isinstance(p, int) and p >= 0 for p in pos):
        raise EdgewiseError(f"to={to!r}: expected 'all', 'center' or an output position with {ndim} "
                            "coordinate(s)")
    return pos


def _asset(name: str) -> str:
    return resources.files("edgewise.report").joinpath("explore_assets", name).read_text(encoding="utf-8")


def explore_html(config: dict | None = None) -> str:
    """The whole page for a configuration from :func:`explore_config` (default: the editor)."""
    config = explore_config() if config is None else config
    data = json.dumps(config).replace("<", "\\u003c")  # nothing in the JSON can close the <script> element
    js = "\n".join(_asset(name) for name in _ASSETS)
    page = _asset("explore.html")
    for mark, value in (("/*EW_CSS*/", _asset("explore.css")), ("/*EW_CONFIG*/", data), ("/*EW_JS*/", js)):
        page = page.replace(mark, value, 1)
    return page


def write_explore(out, spec: str | None = None, input_shape=None, padding: str = "same", to="all") -> Path:
    """Write ``out/explore.html`` opened on ``spec`` (the stack editor without one); returns its path.

    Example:
        >>> write_explore("out/explore", "8*conv3", (1, 24), padding="valid")  # doctest: +SKIP
        PosixPath('out/explore/explore.html')
    """
    page = explore_html(explore_config(spec, input_shape, padding, to))
    path = Path(out) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, page.encode("utf-8"))
    return path

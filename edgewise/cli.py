"""The ``edgewise`` command line: ``report`` (everything, as one HTML page), ``paths``, ``rf``, ``diagram``,
``sensitivity``, ``scaling``, ``remedies``, ``answer``, ``experiment``, ``visualize``, ``explore`` and ``probe``.

Results go to stdout (a short table, or JSON with ``--json`` and nothing else);
progress, notes and errors go to stderr. Errors exit with status 2 and one red
line (no traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import contextlib
import math

import numpy as np
import sys
import textwrap
import traceback
import warnings
from pathlib import Path

from . import __version__
from ._cli_common import add_device, add_norm_stats
from ._cli_common import check_device as _check_device
from ._cli_common import check_out as _check_out
from ._cli_common import emit_json as _emit_json
from ._cli_common import parse_to as _parse_to
from ._cli_common import report_files as _report_files

__all__ = ["main"]

MODEL_HELP = (
    "model: a spec string ('16*conv3', 'conv64/s4, conv64/s4'), torchvision:NAME, timm:NAME, "
    "path/to/file.py:make_model or package.module:make_model (default: the built-in net '{spec}' on {shape})"
)
EPILOG = """\
examples:
  edgewise report --out out/report            # the question answered for the two built-in nets
  edgewise report torchvision:resnet18 --input 3x64x64 --out out/resnet18
  edgewise report --train --visualize --out out/report-trained
  edgewise paths '4*conv3' --input 1x9 --padding valid --width 1 --exact
  edgewise paths '16*conv3' --input 1x64x64 --to center --out results/
  edgewise paths torchvision:resnet18 --input 3x224x224 --json > resnet18.json
  edgewise rf 'conv64/s4, conv64/s4' --input 1x224x224
  edgewise diagram '4*conv3' --input 1x9 --padding valid --out pascal.svg
  edgewise explore '8*conv3' --input 1x24 --padding valid --out out/explore
  edgewise sensitivity '8*conv3' --input 1x32x32 --inits 64 --out results/
  edgewise scaling conv3 --depths 1:64 --padding valid,same,full,circular,reflect --out results/
  edgewise answer '16*conv3' --input 1x32x32 --out answer/
  edgewise remedies torchvision:resnet18 --input 3x64x64 --remedies same,reflect,symmetric,global --out out/
  edgewise experiment absolute-position --remedies valid,same,full,circular --seeds 3 --out out/abs
  edgewise experiment border-digits --size full --backend process --json
  edgewise visualize experiment:border-digits:same --layer conv3 --channel 0 --positions center,top,top_left
  edgewise visualize pretrained:efficientnet-lite0 --input 3x128x128 --layer _blocks.8 --steps 64
  edgewise probe bias pretrained:efficientnet-lite0 -n 64 --out out/probe-bias
  edgewise probe units experiment:border-digits:same:0 --data task
  edgewise probe readout pretrained:efficientnet-lite0 --remedies circular
  edgewise probe perturb experiment:border-digits:same:0 --stride 1 --patch 1,3 --inits 3

Model options (--padding, --width, --activation) apply to spec strings only.
"""
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "none")


# ------------------------------------------------------------------- parsing

def _parser() -> argparse.ArgumentParser:
    from .nets import DEFAULT_INPUT, DEFAULT_SPEC, PADDINGS

    default_shape = "x".join(map(str, DEFAULT_INPUT))
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="edgewise", formatter_class=fmt, epilog=EPILOG,
        description=_wrap("Measure how a CNN treats the positions of its input: path counts from every input "
                    "position to the output, receptive fields and padding advice."))
    parser.add_argument("--version", action="version", version=f"edgewise {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout (and nothing else)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    common.add_argument("--threads", metavar="N", default=None,
                        help="torch threads (default: $EDGEWISE_THREADS, else one fewer than the cores, at least 1: "
                             "a second thread waiting for a busy core makes small convolutions several times "
                             "slower; `experiment`: threads per run, default 1, part of the cache key)")

    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("model", nargs="?", metavar="MODEL",
                       help=MODEL_HELP.format(spec=DEFAULT_SPEC, shape=default_shape))
    model.add_argument("-i", "--input", metavar="SHAPE",
                       help="input shape without the batch axis, CxL (1-D) or CxHxW (2-D), e.g. 1x64 or 3x224x224 "
                            f"(default {default_shape} for the built-in net, 3x224x224 for torchvision models)")
    model.add_argument("--padding", choices=list(PADDINGS), default=None,
                       help="padding scheme of spec nets (default: same)")
    model.add_argument("--width", type=int, default=None, metavar="N",
                       help="channels of spec convolutions without /cN (default: 8)")
    model.add_argument("--layer", metavar="NAME",
                       help="analyse the model up to this layer (dotted module name, as listed by `edgewise rf`): "
                            "only what it depends on is traced, so ops later in the model do not matter")
    model.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                       help="activation after spec layers (default: relu; counts do not depend on it)")

    counting = argparse.ArgumentParser(add_help=False)  # commands whose numbers are path counts
    add_norm_stats(counting)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("paths", parents=[model, counting, common], formatter_class=fmt,
                       help="count the paths from every input position to the output",
                       description=_wrap("Count the paths from every input position (input channel 0) to the selected "
                                   "output units, and compare centre, edge and corner."))
    p.add_argument("--to", default="all", metavar="all|center|Y,X",
                   help="output units the paths end at: all (default), center, or a position Y,X (X in 1-D)")
    p.add_argument("--exact", action="store_true", help="exact integers instead of float64 (slower, any size)")
    p.add_argument("--out", metavar="DIR", help="write pathways.png (heatmap, or curve in 1-D), pathways.json and "
                                                "pathways.*.npy into DIR")
    p.set_defaults(handler=_cmd_paths)

    r = sub.add_parser("rf", parents=[model, counting, common], formatter_class=fmt,
                       help="receptive field of every layer, with padding-evenness advice",
                       description=_wrap("Receptive-field size, jump and start of every layer, the share of units "
                                   "whose field falls off the image, and advice on input sizes that read "
                                   "their padding evenly."))
    r.add_argument("--out", metavar="DIR", help="write receptive_field.json and receptive_field.png into DIR")
    r.set_defaults(handler=_cmd_rf)

    d = sub.add_parser("diagram", parents=[common], formatter_class=fmt,
                       help="draw a small 1-D net neuron by neuron with its path counts",
                       description=_wrap("Draw a small 1-D network (at most 12 layers, 40 input positions) as rows of "
                                   "neurons joined by their taps, with every neuron's number of paths to the output. "
                                   "Writes an SVG and a PNG with the same stem (and a PDF for --out FILE.pdf)."))
    d.add_argument("spec", nargs="?", default=None, metavar="SPEC",
                   help="spec string of a 1-D net (default: '4*conv3' on 1x9, Pascal's triangle)")
    d.add_argument("-i", "--input", metavar="SHAPE", help="input shape CxL, e.g. 1x9 (default 1x9)")
    d.add_argument("--padding", choices=list(PADDINGS), default="valid", help="padding scheme (default: valid)")
    d.add_argument("--to", default="all", metavar="all|center|X", help="output units the paths end at (default: all)")
    d.add_argument("--width", type=int, default=1, metavar="N",
                   help="channels per convolution (default 1: the numbers form the pure Pascal triangle)")
    d.add_argument("--out", default="net.svg", metavar="FILE",
                   help="FILE.svg, FILE.png or FILE.pdf: the SVG and PNG are always written with that stem, .pdf "
                        "adds a PDF; a folder (existing, or ending in /) gets diagram.svg and diagram.png inside "
                        "it (default: net.svg)")
    d.set_defaults(handler=_cmd_diagram, out_kind="diagram")

    sv = sub.add_parser("sensitivity", parents=[model, common], formatter_class=fmt,
                        help="gradient sensitivity (effective receptive field) at initialisation or for the weights",
                        description=_wrap("The expected squared gradient of the chosen output units with respect to "
                                          "every input position over fresh random initialisations (Monte-Carlo), or "
                                          "with --weights the gradient for the model's own weights; with "
                                          "--perturb the perturbation experiment as well."))
    sv.add_argument("--to", default="all", metavar="all|center|each|Y,X",
                    help="output units: all (their sum, default), center, each (every unit separately) or Y,X")
    sv.add_argument("--inits", type=int, default=32, metavar="N", help="random initialisations (default 32)")
    sv.add_argument("--std", type=float, default=None, help="weights from N(0, std²), zero biases (default: the "
                                                            "model's own initialisation, see --init)")
    sv.add_argument("--init", choices=["auto", "default", "builder", "module"], default="auto",
                    help="how initialisations are drawn: auto (default: the model's torchvision/timm builder, else "
                         "its own init methods, else torch's per-layer defaults), or one of them")
    sv.add_argument("--weights", action="store_true", help="use the model's own weights (8 noise inputs)")
    sv.add_argument("--agg", choices=["abs", "sq", "signed"], default="sq", help="aggregation with --weights")
    sv.add_argument("--perturb", action="store_true", help="also run the perturbation experiment, with the model's "
                                                           "weights and with a fresh random initialisation")
    sv.add_argument("--seed", type=int, default=0)
    add_device(sv)
    sv.add_argument("--out", metavar="DIR", help="write sensitivity.png/.json/.npy (and perturbation_{weights,random}.*) into DIR")
    sv.set_defaults(handler=_cmd_sensitivity)

    sc = sub.add_parser("scaling", parents=[common], formatter_class=fmt,
                        help="exact centre/edge path ratios versus depth, with theory and fitted laws",
                        description=_wrap("Stack BLOCK 1, 2, … times for each padding, count paths exactly, and "
                                          "compare the centre/edge (1-D) or centre/corner (2-D) ratio with the "
                                          "closed forms of edgewise.theory; fit exponential and power laws."))
    sc.add_argument("block", nargs="?", default="conv3", metavar="BLOCK",
                    help="the repeated spec item, e.g. conv3, conv5/d2, conv3/s2 (default conv3)")
    sc.add_argument("--depths", default="1:64", help="START:STOP[:STEP] (inclusive) or a list 1,2,4 (default 1:64)")
    sc.add_argument("--padding", default="valid,same,full,circular,reflect",
                    help="comma-separated padding schemes (default valid,same,full,circular,reflect)")
    sc.add_argument("-i", "--input", default="1x64", metavar="SHAPE", help="input shape CxL or CxHxW (default 1x64)")
    sc.add_argument("--out", metavar="DIR", help="write scaling.png and scaling.json into DIR")
    sc.set_defaults(handler=_cmd_scaling)

    rm = sub.add_parser("remedies", parents=[model, counting, common], formatter_class=fmt,
                        help="apply each remedy and compare pathway maps, receptive fields, parameters and cost",
                        description=_wrap("Rewrite MODEL with each remedy (padding modes, partial convolution, "
                                          "non-overlapping strides, CoordConv, random global connections) and compare "
                                          "centre/edge/corner path ratios, receptive fields, uneven padding, parameter "
                                          "count and multiply-adds with the original."))
    rm.add_argument("--remedies", metavar="A,B,...", help="comma-separated remedy names (default: all)")
    rm.add_argument("--inits", type=int, default=0, metavar="N",
                    help="also compare the expected squared gradient over N random initialisations (default 0: off)")
    rm.add_argument("--amount", choices=("same", "keep", "full", "valid"),  # (edgewise.remedies.transforms.AMOUNTS)
                    help="how much the padding modes (circular, reflect, replicate, symmetric, partial) pad: same "
                         "((k-1)·d split, the default), keep (each layer's own amount: a model whose valid layers "
                         "must keep their size, as Inception V3's, still runs), full or valid")
    rm.add_argument("--out", metavar="DIR", help="write remedies.png (map grid), remedy_comparison.json and the "
                                                 "maps as .npy into DIR")
    rm.set_defaults(handler=_cmd_remedies)

    an = sub.add_parser("answer", parents=[model, counting, common], formatter_class=fmt,
                        help="answer the question for a model: is the effect real, what does theory say, what helps",
                        description=_wrap("Run pathways, receptive fields, Monte-Carlo sensitivity, the perturbation "
                                          "experiment and the closed forms on MODEL and write a short answer in "
                                          "Markdown whose every number comes from this run, with its figures."))
    an.add_argument("--inits", type=int, default=32, metavar="N", help="random initialisations (default 32)")
    an.add_argument("--seed", type=int, default=0)
    an.add_argument("--amount", choices=("same", "keep", "full", "valid"),  # (edgewise.remedies.transforms.AMOUNTS)
                    help="how much the padding-mode remedies pad: same (half a window, the default), keep (each "
                         "layer's own amount), full or valid")
    an.add_argument("--perturb", action=argparse.BooleanOptionalAction, default=None,
                    help="the perturbation experiment, or with --no-perturb not (default: on an input of at most "
                         "4096 positions when it takes at most 0.75 TFLOP and 25 GB of layer outputs; the answer says "
                         "why where it is left out)")
    an.add_argument("--out", metavar="DIR", default="answer", help="folder for answer.md, answer.json and figures "
                                                                    "(default ./answer)")
    an.set_defaults(handler=_cmd_answer)

    from ._cli_experiment import add_parser as add_experiment

    add_experiment(sub, common, fmt, _wrap)

    from ._cli_visualize import add_parser as add_visualize

    add_visualize(sub, model, common, fmt, _wrap)

    from ._cli_explore import add_parser as add_explore

    add_explore(sub, common, fmt, _wrap)

    from ._cli_report import add_parser as add_report

    add_report(sub, common, fmt, _wrap)

    from ._cli_probe import add_parser as add_probe

    add_probe(sub, common, fmt, _wrap)
    return parser


def _wrap(text: str) -> str:
    return textwrap.fill(text, 79)


def _check_seeds(args) -> None:
    """Every command's ``--seed`` (a random seed: ≥ 0) and ``--seeds`` (a count: ≥ 1), checked before any work."""
    from .errors import EdgewiseError

    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise EdgewiseError(f"--seed {seed}: a random seed must be 0 or more, e.g. --seed 0")
    seeds = getattr(args, "seeds", None)
    if seeds is not None and seeds < 1:
        raise EdgewiseError(f"--seeds {seeds}: the number of seeds must be at least 1, e.g. --seeds 3")




# ------------------------------------------------------------------- helpers

_PIPE_WIDTH = 10_000  # columns of a console that is not a terminal: every table at its natural width
_MARKDOWN_PIPE_WIDTH = 100


def _console(stderr: bool = False):
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or redirected: there is no screen to fit, and rich's 80-column default would cut table cells
        # (ResNet-50's layer1.0.conv1 became layer1.0.…), so tables are printed at their full width.
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, width=_PIPE_WIDTH)
    return console


def _progress(err, message: str):
    """A spinner on stderr while slow work runs (only on a terminal)."""
    if err.is_terminal:
        return err.status(message, spinner="dots")
    return contextlib.nullcontext()


@contextlib.contextmanager
def _steps(err, message: str):
    """:func:`_progress` whose text follows the work: yields ``say(text)``, which shows "MESSAGE: TEXT…" (a
    no-op off a terminal)."""
    with _progress(err, f"{message}…") as status:
        yield (lambda text: status.update(f"{message}: {text}…")) if status is not None else (lambda text: None)


def _build(args, err):
    """The traced Graph of the model the options name (see :func:`_build_module`)."""
    return _build_module(args, err)[0]


def _build_module(args, err):
    """(traced Graph, nn.Module) of the model the options name; the Graph's ``model_name`` is the
    reference as given, its ``padding`` the spec padding or None."""
    from . import models, nets
    from ._trace import named_output, parse_shape, trace
    from .errors import EdgewiseError

    ref = args.model
    if ref is None:
        ref = nets.DEFAULT_SPEC
        shape = parse_shape(args.input) if args.input else tuple(nets.DEFAULT_INPUT)
    elif args.input:
        shape = parse_shape(args.input)
    elif models.default_input(ref) is not None:  # torchvision:, pretrained:, timm: (its configured size)
        shape = models.default_input(ref)
    elif ":" in ref:
        raise EdgewiseError(f"model {ref!r} needs --input, e.g. --input 3x224x224 (CxHxW) or --input 1x64 (CxL)")
    else:
        raise EdgewiseError(f"spec {ref!r} needs --input, e.g. --input 1x64 (1-D) or --input 1x64x64 (2-D)")
    if ":" not in ref:  # a spec string: the model options apply
        opts = {"padding": args.padding or "same",
                "activation": None if args.activation == "none" else args.activation}
        if args.width is not None:
            opts["width"] = args.width
    else:
        opts = {}
        ignored = [f"--{n}" for n, v in (("padding", args.padding), ("width", args.width)) if v is not None]
        if ignored:
            verb = "applies" if len(ignored) == 1 else "apply"
            err.print(f"note: {' and '.join(ignored)} {verb} to spec strings only; ignored for {ref}",
                      style="yellow", markup=False)
    module = models.load(ref, shape, **opts)
    layer = getattr(args, "layer", None)
    if layer:  # every analysis of this command stops at the layer: cut the model there
        module = models.prefix(module, layer)
        return named_output(trace(module, shape, name=ref, norm_stats=_norm_stats(args)), layer), module
    return trace(module, shape, name=ref, norm_stats=_norm_stats(args)), module


def _norm_stats(args) -> str:
    return getattr(args, "norm_stats", None) or "ignore"


def _shape_text(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


# ------------------------------------------------------------------- commands

def _cmd_paths(args, out, err) -> int:
    import numpy as np

    from ._stats import describe as describe_norm_stats
    from .pathways import pathways
    from .report._format import fmt_number, fmt_ratio
    from .results import to_jsonable

    to = _parse_to(args.to)
    with _progress(err, "tracing the model and counting paths…"):
        graph = _build(args, err)
        result = pathways(graph, to=to, layer=args.layer, exact=args.exact)
    name, padding = graph.model_name, graph.padding
    doc = result.to_dict()

    if args.out:
        from .report.figures import plot_pathways, save_figure
        from .results import write_json, write_npy

        outdir = Path(args.out)
        with _progress(err, "drawing…"):
            written = save_figure(plot_pathways(result, padding=padding), outdir / "pathways.png")
        written.append(write_json(outdir / "pathways.json", doc))
        written.append(write_npy(outdir / "pathways.log10.npy", np.asarray(result.log10, dtype=np.float64)))
        counts = _counts_array(result)
        if counts is not None:
            written.append(write_npy(outdir / "pathways.counts.npy", counts))
        _report_files(err if args.json else out, written)

    if args.json:
        _emit_json(doc)
        return 0

    from rich.table import Table

    s = result.summary
    node = graph[result.layer]
    table = Table(title=f"Paths from each input position to {_target_text(result.to, result.layer)}",
                  show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("model", name)
    if padding:
        table.add_row("padding", padding)
    table.add_row("input", f"{_shape_text(result.input_shape)} (positions of channel 0)")
    table.add_row("target", f"{result.layer} {_shape_text(node.shape)}, to={to_jsonable(result.to)}")
    table.add_row("numbers", "exact integers" if result.exact else
                  "float64" + (f" (counts stored × 1e-{result.scale})" if result.scale else ""))
    table.add_row("normalisation", describe_norm_stats(graph))
    for k, v in _ratio_rows(result):
        table.add_row(k, v)
    out.print(table)
    return 0


def _ratio_rows(result) -> list[tuple[str, str]]:
    """The ``edgewise paths`` table's rows about the map: anchor counts, centre/border ratios (with the unread
    points their means take in), the spread in :mod:`edgewise.facts`' words, and the unread positions."""
    from .facts import anchor_words, many, map_spread, no_border
    from .report._format import fmt_number, fmt_ratio

    s, m = result.summary, map_spread(result)
    two_d = len(result.shape) == 2
    unit = "px" if two_d else "samples"
    rows = [(k, fmt_number(s[k], s[f"log10_{k}"])) for k in ("center", "edge") + (("corner",) if two_d else ())]
    for k in ("edge",) + (("corner",) if two_d else ()):
        border, n = ("mid-edge", 4) if two_d and k == "edge" else ("corner", 4) if two_d else ("end", 2)
        if s["log10_center"] == -math.inf and s[f"log10_{k}"] == -math.inf:
            rows.append((f"center / {k}", "— (no paths at either)"))
            continue
        notes = anchor_words(m["unread_anchors"], border, key=k, n=n)
        rows.append((f"center / {k}", fmt_ratio(s[f"log10_center_{k}_ratio"])
                     + (f"  ({'; '.join(notes)})" if notes else "")))
    rows.append(("min … max", f"{fmt_number(s['min'], s['log10_min'])} … {fmt_number(s['max'], s['log10_max'])}"))
    if m["uniform"]:
        spread = "uniform: every position has the same count (max = min)"
    elif m["unread"] == m["positions"]:
        spread = "no position has a path"
    else:
        spread = f"max/min {fmt_ratio(m['log10_max_over_min'])} over " + \
            (f"the {m['positions'] - m['unread']} positions read" if m["unread"] else "all positions") + \
            (f"; {no_border(m['period'], unit, counts='the counts')}" if m["period"] else "")
    rows.append(("spread", spread))
    n = m["unread"]
    if n:
        rows.append(("unread", f"{many(n, unit)} {'has' if n == 1 else 'have'} no path ({m['unread_where']})"))
    return rows


def _counts_array(result):
    """Counts as a plain numpy array (int64 when exact and small enough, else float64), or None."""
    import numpy as np

    if not result.exact:
        return np.asarray(result.counts, dtype=np.float64) if result.scale == 0 else None
    flat = [int(v) for v in np.asarray(result.counts).ravel().tolist()]
    shape = np.asarray(result.counts).shape
    if all(abs(v) < 2**63 for v in flat):
        return np.array(flat, dtype=np.int64).reshape(shape)
    if max(result.log10.max(), 0) < 308:
        return np.array([float(v) for v in flat], dtype=np.float64).reshape(shape)
    return None


def _target_text(to, layer) -> str:
    if to == "all":
        return f"all units of {layer}"
    if to == "center":
        return f"the centre unit of {layer}"
    return f"unit {to} of {layer}"


def _cmd_rf(args, out, err) -> int:
    from ._stats import describe as describe_norm_stats
    from .geometry import receptive_field

    with _progress(err, "tracing the model…"):
        graph = _build(args, err)
        rf = receptive_field(graph)
    name, padding, shape = graph.model_name, graph.padding, graph.input_shape
    doc = rf.to_dict()

    if args.out:
        from .report.figures import plot_receptive_field, save_figure
        from .results import write_json

        outdir = Path(args.out)
        written = save_figure(plot_receptive_field(rf, graph=graph), outdir / "receptive_field.png")
        written.append(write_json(outdir / "receptive_field.json", doc))
        _report_files(err if args.json else out, written)

    if args.json:
        _emit_json(doc)
        return 0

    from rich.table import Table
    from rich.text import Text

    from .report.tables import receptive_field_rows

    rows = receptive_field_rows(rf)
    table = Table(title=f"Receptive fields of {name}" + (f", {padding} padding" if padding else "")
                        + f", input {_shape_text(shape)}", title_justify="left")
    for col in rows.headers:
        table.add_column(col, justify="left" if col in ("layer", "op") else "right", no_wrap=col == "off-image")
    for i, row in enumerate(rows.rows):
        table.add_row(*row, style="yellow" if i in rows.flagged else None)
    out.print(table)
    for note in rows.notes:
        out.print(Text(note, style="dim"))
    norms = describe_norm_stats(graph)
    out.print(Text(norms[:1].upper() + norms[1:] + ".", style="dim"))
    advice = Table.grid(padding=(0, 1))
    advice.add_column(width=3, justify="right")
    advice.add_column()
    for sentence in rf.advice.sentences():
        advice.add_row("•", Text(sentence))
    for m in getattr(rf, "misalignments", []) or []:
        advice.add_row("•", Text(f"warning: {m}", style="yellow"))
    out.print()
    out.print("Advice", style="bold")
    out.print(advice)
    return 0


def _cmd_diagram(args, out, err) -> int:
    from ._trace import parse_shape
    from .report.diagram import draw_diagram

    spec = args.spec or "4*conv3"
    if args.input:
        shape = parse_shape(args.input)
    elif args.spec is None:
        shape = (1, 9)
    else:
        from .errors import EdgewiseError

        raise EdgewiseError(f"spec {spec!r} needs --input, e.g. --input 1x9")
    with _progress(err, "drawing…"):
        diagram = draw_diagram(spec, shape, padding=args.padding, to=_parse_to(args.to), out=args.out,
                               width=args.width)
    if args.json:
        _emit_json(diagram.to_dict())
        return 0
    _report_files(out, diagram.files)
    out.print(f"paths from each input position: {' '.join(map(str, diagram.rows[0]['counts']))}",
              markup=False, highlight=False)
    return 0


def _perturb_cost(err, module, shape, n_samples: int) -> None:
    """Say, before it starts, what the perturbation experiment asked for costs (on ``n_samples`` inputs with the
    model's weights and as many with a fresh initialisation) where `edgewise answer` and the report would leave it
    out (:func:`edgewise.answer.perturb_skip`)."""
    from .answer import cost_words, over_words, perturb_skip

    c = perturb_skip(module, shape, 2 * n_samples)
    if c is None:
        return
    size = (f"on {c['positions']} input positions, more than the {c['limit']} `edgewise answer` and the report run "
            "it on unasked" if c["why"] == "positions" else
            f"{cost_words(c)}: {over_words(c)} in `edgewise answer` and the report")
    err.print(f"Running the perturbation experiment as asked, on {n_samples} inputs with the model's weights and "
              f"{n_samples} with a fresh initialisation, {size}; this takes a while.", markup=False, highlight=False)


def _cmd_sensitivity(args, out, err) -> int:
    from .report._format import fmt_ratio
    from .sensitivity import gradient_map, init_sensitivity, perturbation, reinitialise

    to = _parse_to(args.to) if args.to.strip().lower() != "each" else "each"
    with _progress(err, "tracing the model…"):
        graph, module = _build_module(args, err)
    shape = graph.input_shape
    if args.weights:
        with _progress(err, "taking the gradient with the model's weights…"):
            result = gradient_map(module, shape, to=to, agg=args.agg, seed=args.seed,
                                  device=args.device)  # the module ends at --layer
        weighted, refused = None, None
    else:
        from . import limits
        from ._init import shared_draws
        from .answer import weighted_inits
        from .sensitivity import _init_seeds

        limits.check_sensitivity(args.inits, shape, chunk=1)  # (before the seeds below: --inits 1000000000)
        # the weighted paths take the first initialisations' weights as drawn here (a builder's copied, not redrawn)
        with shared_draws(_init_seeds(args.seed, weighted_inits(module, shape, args.inits))):
            with _steps(err, "sensitivity at initialisation") as say:
                result = init_sensitivity(module, shape, to=to, n_inits=args.inits, seed=args.seed, std=args.std,
                                          init=args.init, device=args.device,  # the module ends at --layer
                                          on_chunk=lambda done, total: say(f"{done}/{total} initialisations"))
            weighted, refused = _weighted(args, err, module, shape, to)
    result.model = graph.model_name
    result.layer = args.layer or result.layer
    pert = {}
    if args.perturb:  # the model's weights and a fresh initialisation (seed + 1: spec nets are built with seed)
        samples = 4  # noise inputs each
        _perturb_cost(err, module, shape, samples)
        for which, net in (("weights", module), ("random", reinitialise(module, args.seed + 1, init=args.init))):
            pert[which] = perturbation(net, shape, to="all" if to == "each" else to,
                                       n_samples=samples, seed=args.seed, device=args.device)
            pert[which].model = f"{graph.model_name} ({'its weights' if which == 'weights' else 'random init'})"
    from .live import live_facts, live_pathways
    from .weighted import weighted_facts

    live = live_pathways(result, graph)  # (None unless some layer starts silent)
    if args.out:
        from .pathways import pathways
        from .report import plot_perturbation, plot_sensitivity, save_figure

        outdir = Path(args.out)
        written = save_figure(plot_sensitivity(result, paths=pathways(graph), live=live, weighted=weighted),
                              outdir / "sensitivity.png")
        written += result.save(outdir) + (live.save(outdir, "pathways_live") if live is not None else [])
        written += weighted.save(outdir, "weighted_pathways") if weighted is not None else []
        for which, p in pert.items():
            stem = f"perturbation_{which}"
            written += save_figure(plot_perturbation(p), outdir / f"{stem}.png") + p.save(outdir, stem)
        _report_files(err if args.json else out, written)
    if args.json:
        _emit_json({"sensitivity": result.to_dict(), "live_paths": live_facts(result, live),
                    "weighted_paths": weighted_facts(result.map, weighted), "weighted_refused": refused,
                    "perturbation": {which: p.to_dict() for which, p in pert.items()} or None})
        return 0
    s = result.summary
    from .models import random_weights
    from .nets import DEFAULT_SPEC

    why = random_weights(args.model or DEFAULT_SPEC) if args.weights else None
    what = (f"mean {args.agg} gradient, model's weights{f' (random: {why})' if why else ''}, "
            f"{result.samples.shape[0]} inputs" if args.weights else
            f"E[(∂y/∂x)²] over {result.n_inits} initialisations, init: {result.init}")
    out.print(f"Sensitivity of {_target_text(result.to, result.layer)} of {graph.model_name} ({what})",
              markup=False, highlight=False)
    rows = [("center / edge", fmt_ratio(s["log10_center_edge_ratio"]))]
    if len(shape) == 3:
        rows.append(("center / corner", fmt_ratio(s["log10_center_corner_ratio"])))
    rows += [("centre of mass offset (px)", ", ".join(f"{v:+.2f}" for v in s["center_offset"])),
             ("Gaussian sigma (px)", ", ".join(f"{v:.2f}" for v in s["gaussian_sigma"])
              + (f" (fit not to be trusted: {s['gaussian_note']}; by moments "
                 + ", ".join(f"{v:.2f}" for v in s["gaussian_sigma_moments"]) + ")" if s.get("gaussian_note") else "")),
             ("area holding 20/30/50/99 %", " / ".join(f"{100 * s['area_ratio'][k]:.1f}%" for k in
                                                       ("20", "30", "50", "99")))]
    for which, p in pert.items():
        ps, label = p.summary["single"], "its weights" if which == "weights" else "random init"
        rows += [(f"perturbation, {label}", "centre/edge " + fmt_ratio(ps["log10_center_edge_ratio"])
                  + ("" if len(shape) == 2 else ", centre/corner " + fmt_ratio(ps["log10_center_corner_ratio"]))),
                 ("  finite diff. vs gradient", f"max rel. error {p.fd_error:.1e}"),
                 ("  random signs vs gradient", f"r = {p.sign_correlation:.2f} ({p.n_signs} patterns)")]
    for k, v in rows:
        out.print(f"  {k:<28} {v}", markup=False, highlight=False)
    from .facts import live_words, scaled_words, silent_words, weighted_words, words_for

    unit, over = words_for(shape).unit, "input" if args.weights else "initialisation"
    for text in (silent_words(result.zero_positions, result.map.size, unit, result.zero_scales, over=over),
                 scaled_words(result.small_scales, over=over), live_words(live_facts(result, live), unit),
                 weighted_words(weighted_facts(result.map, weighted), unit, "corner" if len(shape) == 3 else "edge")):
        if text:
            out.print(text[0].upper() + text[1:] + ".", markup=False, highlight=False)
    if refused:
        out.print(f"Weighted paths: not computed ({refused}).", style="dim", markup=False, highlight=False)
    return 0


def _weighted(args, err, module, shape, to):
    """(the weighted paths at the sensitivity's first initialisations, None) or (None, why they are not computed)."""
    from .answer import weighted_or_why

    with _progress(err, "weighted paths…"):
        return weighted_or_why(module, shape, args.inits, args.seed, to=to, std=args.std, init=args.init,
                               device=args.device)


def _cmd_scaling(args, out, err) -> int:
    from .report.scaling import law_text
    from .scaling import scaling

    paddings = tuple(p.strip() for p in args.padding.split(",") if p.strip())
    result = scaling(args.block, args.depths, paddings, input_shape=args.input)
    if args.out:
        from .report import save_figure
        from .report.scaling import plot_scaling

        outdir = Path(args.out)
        written = save_figure(plot_scaling(result), outdir / "scaling.png") + result.save(outdir)
        _report_files(err if args.json else out, written)
    if args.json:
        _emit_json(result.to_dict())
        return 0
    from rich.table import Table

    from .report._format import fmt_number

    table = Table(title=f"centre/{result.key} path ratio of L*{result.block}, input "
                        f"{_shape_text(result.input_shape)} (exact counts; theory in brackets)", title_justify="left")
    table.add_column("L", justify="right")
    for p in paddings:
        table.add_column(p, justify="right")
    shown = result.depths if len(result.depths) <= 12 else sorted(
        {result.depths[i] for i in np.linspace(0, len(result.depths) - 1, 12).round().astype(int)})
    for L in shown:
        i = result.depths.index(L)
        cells = []
        for p in paddings:
            r = result.ratios[p][i]
            cell = "—" if not math.isfinite(r) else fmt_number(r, math.log10(r))
            if p in result.theory and math.isfinite(result.theory[p][i]):
                t = result.theory[p][i]
                cell += f" [{fmt_number(t, math.log10(t))}]"
            cells.append(cell)
        table.add_row(str(L), *cells)
    out.print(table)
    for p in paddings:
        deep = result.limits.get(p)
        said = "uniform: max = min at every depth (exact counts)" if result.uniform.get(p) else \
            f"fitted: {law_text(result.laws.get(p), arrow=deep is None)}"
        theory = (f"; theory: {result.theory_kind[p]}" if p in result.theory_kind else
                  f"; theory: no closed form, tending to {deep:.3g} as L → ∞ (Perron vector)" if deep is not None
                  else "")
        out.print(f"  {p:<10} {said}{theory}", markup=False, highlight=False)
    return 0


def _cmd_remedies(args, out, err) -> int:
    from .remedies import compare

    chosen = [r.strip() for r in args.remedies.split(",") if r.strip()] if args.remedies else None
    with _progress(err, "tracing the model…"):
        graph, module = _build_module(args, err)
    with _progress(err, "applying and measuring each remedy…"):
        result = compare(module, graph.input_shape, chosen, n_inits=args.inits, norm_stats=_norm_stats(args),
                         amount=args.amount)
    result.model = graph.model_name
    if args.out:
        from .report import save_figure
        from .report.remedies import plot_comparison

        outdir = Path(args.out)
        written = save_figure(plot_comparison(result), outdir / "remedies.png") + result.save(outdir)
        if args.inits:
            written += save_figure(plot_comparison(result, sensitivity=True), outdir / "remedies_sensitivity.png")
        _report_files(err if args.json else out, written)
    if args.json:
        _emit_json(result.to_dict())
        return 0
    from rich.table import Table
    from rich.text import Text

    from .report.tables import remedy_rows

    rows = remedy_rows(result)
    table = Table(title=f"Remedies for {graph.model_name}, input {_shape_text(graph.input_shape)}",
                  title_justify="left")
    for col in rows.headers:
        table.add_column(col, justify="left" if col == "remedy" else "right", no_wrap=True)
    for i, row in enumerate(rows.rows):
        table.add_row(*row, style="dim" if i in rows.flagged else None)
    out.print(table)
    out.print(Text(rows.notes[0], style="dim"))
    from ._stats import describe as describe_norm_stats

    norms = describe_norm_stats(graph)  # of the original; every variant is counted the same way
    out.print(Text(f"Normalisation: {norms}.", style="dim"))
    for m in rows.notes[1:]:
        out.print(Text(m, style="yellow"))
    return 0


def _cmd_answer(args, out, err) -> int:
    from rich.markdown import Markdown

    from .answer import answer

    with _progress(err, "tracing the model…"):
        graph, module = _build_module(args, err)
    with _steps(err, "computing the answer") as say:
        from .models import random_weights
        from .nets import DEFAULT_SPEC

        result = answer(module, graph.input_shape, out=args.out, n_inits=args.inits, seed=args.seed,
                        name=graph.model_name, norm_stats=_norm_stats(args), amount=args.amount,
                        random=random_weights(args.model or DEFAULT_SPEC), step=say, perturb=args.perturb)
    if args.json:
        _emit_json(result.to_dict())
        return 0
    # Markdown fills the console's width (centred headings), so off a terminal it keeps a readable one.
    out.print(Markdown(result.text), width=None if out.is_terminal else _MARKDOWN_PIPE_WIDTH)
    _report_files(err, result.files)
    return 0


# ------------------------------------------------------------------- entry point

def main(argv=None) -> int:
    """Run the ``edgewise`` command line; returns the exit status (0 ok, 2 error)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    out, err = _console(), _console(stderr=True)
    debug = getattr(args, "debug", False)
    from .errors import EdgewiseError

    try:
        with warnings.catch_warnings():
            # torch's note about read-only numpy arrays concerns engine internals, not the user's input
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            _check_seeds(args)
            _check_out(args)
            _check_device(args)
            from ._threads import resolve_threads, using_threads

            if args.command == "experiment":  # threads per run, a setting of the runs themselves (cache key)
                args.threads = None if args.threads is None else resolve_threads(args.threads)
                return args.handler(args, out, err)
            with using_threads(resolve_threads(args.threads)):
                return args.handler(args, out, err)
    except EdgewiseError as e:
        if debug:
            traceback.print_exc()
        first, *rest = str(e).splitlines() or [type(e).__name__]
        err.print(f"edgewise {args.command}: error: {first}", style="bold red", markup=False, highlight=False,
                  soft_wrap=True)
        for line in rest:  # e.g. the spec with a caret under the offending layer
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted", style="red")
        return 130
    except BrokenPipeError:  # e.g. `edgewise paths --json | head`
        return 0
    except Exception as e:  # a bug: say so in one line; --debug shows where
        if debug:
            traceback.print_exc()
        else:
            err.print(f"edgewise {args.command}: internal error: {type(e).__name__}: {e} "
                      "(rerun with --debug for the traceback)", style="bold red", markup=False, highlight=False,
                      soft_wrap=True)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

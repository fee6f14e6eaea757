"""The ``edgewise probe`` command: what a trained network does with positions (bias, units, readout, perturb)."""

from __future__ import annotations

from pathlib import Path

from ._cli_common import add_device

__all__ = ["add_parser"]

#: probe → (help line, description)
_PROBES = {
    "bias": ("spatial bias maps (mean activation at every position) and blind spots (Alsallakh et al. 2021)",
             "The mean activation of every channel of every layer at every position over real inputs, how far it "
             "is from translation-invariant, the lines that uneven padding leaves, and a blind-spot map: a small "
             "stimulus slid over every position and the model's response to it."),
    "units": ("padding-aware units: channels whose activation marks the border (Garcia-Gasulla et al. 2023)",
              "Find the channels whose activations mark the border (criterion in `edgewise.probe.units`), count "
              "them per layer, show their kernels and maps, and silence them to measure what changes near the "
              "border against the centre (beside silencing as many random channels)."),
    "readout": ("position information: a per-position linear readout of position from frozen features "
                "(Islam et al. 2020)",
                "Fit a linear map shared by every position (it cannot create position information) from each "
                "layer's features to the horizontal, vertical and Gaussian position maps, and score it on held-out "
                "inputs (Spearman correlation, mean absolute error), on real data and on a constant input."),
    "perturb": ("the question's thought experiment on a trained net: nudge one input position, watch the output",
                "Perturb every input position (and small patches) of real inputs and measure how much the output "
                "moves: centre against edges and corners, the trained weights against the same architecture at "
                "random initialisation."),
}


def add_parser(sub, common, fmt, wrap) -> None:
    """Register ``probe`` and its four measurements on the CLI's subparsers."""
    import argparse

    from .nets import PADDINGS
    from .probe import DATA

    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("model", metavar="MODEL",
                        help="pretrained:efficientnet-lite0, experiment:TASK[:REMEDY[:SEED]], torchvision:NAME, "
                             "timm:NAME, a spec string (needs --input), path/to/file.py:make_model")
    shared.add_argument("-i", "--input", metavar="SHAPE", help="input shape CxL or CxHxW (default: the model's own, "
                                                               "3x224x224 for pretrained/torchvision)")
    shared.add_argument("--padding", choices=list(PADDINGS), default=None, help="padding of spec nets (default same)")
    shared.add_argument("--width", type=int, default=None, metavar="N", help="channels of spec convolutions")
    shared.add_argument("--data", choices=list(DATA), default=None,
                        help="inputs: " + "; ".join(f"{k}: {v}" for k, v in DATA.items())
                             + " (default: task for experiment nets, signals for 1-D, photos for 3 channels, "
                               "digits for 1)")
    shared.add_argument("-n", "--n", type=int, default=None, metavar="N", dest="n", help="number of inputs")
    shared.add_argument("--layer", metavar="A,B",
                        help="layers to probe (dotted names; default every convolution that runs, in forward order)")
    shared.add_argument("--seed", type=int, default=0)
    add_device(shared)
    shared.add_argument("--out", metavar="DIR", help="folder for the figures, the result (JSON + NPY) and the cache "
                                                     "(default out/probe/PROBE)")
    shared.add_argument("--no-progress", action="store_true", help="hide the progress bars")

    pr = sub.add_parser("probe", formatter_class=fmt, help="what a trained network learned about position",
                        description=wrap("Four measurements of what a network (trained, or any) does with the "
                                         "positions of its input, each saved with its figures and cached by "
                                         "content (a second run with the same model and options is instant)."))
    kinds = pr.add_subparsers(dest="probe", metavar="PROBE", required=True)
    for name, (help_line, description) in _PROBES.items():
        p = kinds.add_parser(name, parents=[shared, common], formatter_class=fmt, help=help_line,
                             description=wrap(description))
        _OPTIONS[name](p)
        p.set_defaults(handler=_cmd_probe)


def _bias_options(p) -> None:
    p.add_argument("--stride", type=int, default=None, metavar="PX",
                   help="blind spots: step of the stimulus grid (default: at most about 1000 positions)")
    p.add_argument("--no-blind-spots", action="store_true", help="skip the blind-spot map")
    p.add_argument("--target", metavar="CLASS|LAYER:C",
                   help="blind spots: the class whose logit is read, or a unit LAYER:CHANNEL (default: the class "
                        "predicted with the stimulus at the centre; for a model that is not a classifier, channel 0 "
                        "of its last convolution)")


def _units_options(p) -> None:
    p.add_argument("--threshold", type=float, default=None, metavar="SIGMA",
                   help="effect of the padding, in interior standard deviations, that makes a unit padding-aware "
                        "(default 1)")
    p.add_argument("--no-ablate", action="store_true", help="find the units but do not silence them")
    p.add_argument("--how", choices=("continued", "mean", "zero"), default="continued",
                   help="how the found units are silenced: continued (only what the padding does to them is "
                        "removed: their border is recomputed with the image continued; the default), mean (their "
                        "interior mean) or zero")
    p.add_argument("--at", metavar="LAYER", help="the layer whose map the ablation compares near the border and at "
                                                 "the centre (default: the deepest convolution whose map is at "
                                                 "least a quarter of the input's side, or 28)")


def _readout_options(p) -> None:
    p.add_argument("--remedies", metavar="A,B",
                   help="also read the same weights with these remedies applied, e.g. circular (edgewise remedies "
                        "names); every variant is measured on the data and on a constant input")


def _perturb_options(p) -> None:
    p.add_argument("--patch", default="1", metavar="A,B", help="patch sides to perturb, one map each (default 1)")
    p.add_argument("--stride", type=int, default=None, metavar="PX",
                   help="step of the grid of perturbed positions (default: at most 16 steps per axis; the border "
                        "rows/columns and the centre are always perturbed)")
    p.add_argument("--eps", type=float, default=None, help="the nudge (default 1 %% of the inputs' RMS)")
    p.add_argument("--inits", type=int, default=3, metavar="N",
                   help="random initialisations of the same architecture measured on the same inputs (default 3; "
                        "0: the trained weights only)")
    p.add_argument("--target", choices=("output", "logit"), default="output",
                   help="what moves: the output's norm (default) or the top-1 logit")


_OPTIONS = {"bias": _bias_options, "units": _units_options, "readout": _readout_options,
            "perturb": _perturb_options}


def _subject(args, err):
    """The probed model: a reference (spec strings take --input, --padding, --width) as a :class:`Subject`."""
    from ._trace import parse_shape
    from .errors import EdgewiseError
    from .probe import subject

    ref = args.model
    opts = {}
    if ":" not in ref:  # a spec string: the model options apply
        if not args.input:
            raise EdgewiseError(f"spec {ref!r} needs --input, e.g. --input 1x32x32 (CxHxW) or --input 1x64 (CxL)")
        opts = {"padding": args.padding or "same"}
        if args.width is not None:
            opts["width"] = args.width
    elif args.padding is not None or args.width is not None:
        err.print(f"note: --padding and --width apply to spec strings only; ignored for {ref}", style="yellow",
                  markup=False)
    return subject(ref, parse_shape(args.input) if args.input else None, **opts)


def _common(args, cache) -> dict:
    """The options every probe takes, from the command line."""
    opts = {"data": args.data, "seed": args.seed, "cache": cache, "progress": not (args.no_progress or args.json),
            "device": args.device}
    if args.n is not None:
        opts["n"] = args.n
    return opts


def _run_bias(args, sub, cache):
    from .probe import bias, blind_spots
    from .report.probe_bias import plot_bias_grid, plot_bias_profiles, plot_blind_spots

    r = bias(sub, layers=args.layer, **_common(args, cache))
    parts = [("bias", r, {"bias_grid": plot_bias_grid, "bias_profiles": plot_bias_profiles})]
    if not args.no_blind_spots:
        opts = _common(args, cache)
        opts.pop("data"), opts.pop("n", None)
        b = blind_spots(sub, stride=args.stride, target=_target(args), **opts)
        parts.append(("blind_spots", b, {"blind_spots": plot_blind_spots}))
    return parts


def _target(args):
    """--target as blind_spots takes it: a class index, (layer, channel), or None (blind_spots' default)."""
    from .errors import EdgewiseError

    text = args.target
    if text is None:
        return None
    layer, colon, channel = text.rpartition(":")
    try:
        return (layer, int(channel)) if colon else int(text)
    except ValueError:
        raise EdgewiseError(f"--target {text!r}: expected a class index (e.g. 285) or LAYER:CHANNEL (e.g. "
                            "conv3:0)") from None


def _run_units(args, sub, cache):
    from .probe import ablate, units
    from .report.probe_units import plot_ablation, plot_unit_gallery, plot_units_per_layer

    opts = _common(args, cache)
    if args.threshold is not None:
        opts["threshold"] = args.threshold
    found = units(sub, layers=args.layer, **opts)
    figures = {}
    if found.summary["layers_analysed"]:
        figures["units_per_layer"] = plot_units_per_layer
    if found.summary["units"]:
        figures["units_gallery"] = plot_unit_gallery
    parts = [("units", found, figures)]
    if not args.no_ablate and found.summary["units"]:
        opts.pop("threshold", None)
        ab = ablate(sub, found, how=args.how, at=args.at, **opts)
        parts.append(("units_ablation", ab, {"units_ablation": plot_ablation}))
    return parts


def _run_perturb(args, sub, cache):
    from .errors import EdgewiseError
    from .probe import perturb
    from .report.probe_perturb import plot_perturb_map, plot_regions

    try:
        patches = tuple(int(p) for p in args.patch.split(",") if p.strip())
    except ValueError:
        raise EdgewiseError(f"--patch {args.patch!r}: expected patch sides, e.g. --patch 1,3") from None
    r = perturb(sub, patch=patches, eps=args.eps, stride=args.stride, n_inits=args.inits,
                baseline="init" if args.inits else None, target=args.target, **_common(args, cache))
    return [("perturb", r, {"perturb_map": plot_perturb_map, "perturb_regions": plot_regions})]


def _run_readout(args, sub, cache):
    from .probe import readout
    from .probe._common import with_remedy
    from .report.probe_readout import plot_readout_curves, plot_readout_example

    variants = [("", sub)] + [(f"_{r}", with_remedy(sub, r)) for r in
                              filter(None, (t.strip() for t in (args.remedies or "").split(",")))]
    opts = _common(args, cache)
    parts, curves = [], {}
    for suffix, variant in variants:
        for kind in dict.fromkeys((opts["data"] or variant.data, "constant")):  # --data constant: once
            r = readout(variant, layers=args.layer, **{**opts, "data": kind})
            stem = f"readout{suffix}" + ("_constant" if kind == "constant" else "")
            curves[f"{variant.name}, {kind}"] = r
            parts.append((stem, r, {f"{stem}_example": plot_readout_example}))
    first = parts[0]
    first[2]["readout_curves"] = lambda _: plot_readout_curves(curves)
    return parts


_RUN = {"bias": _run_bias, "units": _run_units, "perturb": _run_perturb, "readout": _run_readout}


def _cmd_probe(args, out, err) -> int:
    from ._cli_common import emit_json
    from ._outputs import check_folder
    from .report import save_figure

    if args.n is not None and args.n < 1:
        from .errors import EdgewiseError

        raise EdgewiseError(f"-n {args.n}: the number of inputs must be at least 1, e.g. -n 64")
    outdir = Path(args.out or Path("out") / "probe" / args.probe)
    if args.out is None:
        check_folder(outdir)
    sub = _subject(args, err)
    from .models import random_weights

    why = random_weights(args.model)
    note = (f"note: {args.model} has random weights ({why}): the probes measure the architecture at initialisation, "
            "not what training taught it; for a trained net name pretrained:efficientnet-lite0, experiment:TASK or "
            "your own file.py:make_model") if why else None
    if note:
        err.print(note, style="yellow", markup=False, highlight=False)
    parts = _RUN[args.probe](args, sub, outdir / "cache")
    written, doc = [], {"model": sub.name, "input_shape": list(sub.shape), "probe": args.probe, "out": str(outdir),
                        "random_weights": why}
    for stem, result, figures in parts:
        written += result.save(outdir, stem)
        for name, draw in figures.items():
            written += save_figure(draw(result), outdir / f"{name}.png")
        doc[stem] = {"summary": result.summary, "text": result.text()}
    console = err if args.json else out
    for p in written:
        console.print(f"wrote {p}", markup=False, highlight=False)
    if args.json:
        emit_json(doc)
        return 0
    for stem, result, _ in parts:
        out.print(f"{sub.name} — {stem.replace('_', ' ')}:", style="bold", markup=False, highlight=False)
        for line in result.text():
            out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    return 0

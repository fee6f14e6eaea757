"""The ``edgewise report`` command: the whole question answered for one or more models, as one HTML page."""

from __future__ import annotations

__all__ = ["add_parser"]


def add_parser(sub, common, fmt, wrap) -> None:
    """Register ``report`` on the CLI's subparsers."""
    import argparse

    from ._cli_common import add_norm_stats
    from .nets import DEFAULT_SPEC, PADDINGS, QUESTION_SPEC

    rp = sub.add_parser(
        "report", parents=[common], formatter_class=fmt,
        help="everything at once: one self-contained HTML page (figures embedded) plus the raw numbers",
        description=wrap("Answer the question for MODEL (pathways, depth scaling, receptive fields, sensitivity, "
                         "remedies; with --train the experiments, with --visualize position-specific feature "
                         "visualization) and write DIR/index.html, a page that needs no network to view, with "
                         "the figures as PNG and the numbers as JSON/CSV/NPY beside it. Without MODEL: the "
                         f"question's own network '{QUESTION_SPEC}' on 1x256 and the VGG-style '{DEFAULT_SPEC}' "
                         "on 1x64x64."))
    rp.add_argument("models", nargs="*", metavar="MODEL",
                    help="spec strings, torchvision:NAME, timm:NAME, pretrained:efficientnet-lite0, "
                         "experiment:TASK[:REMEDY], path/to/file.py:make_model or package.module:make_model "
                         "(default: the two built-in nets)")
    rp.add_argument("-i", "--input", action="append", metavar="SHAPE",
                    help="input shape CxL or CxHxW: once for all models or once per model, in order "
                         "(default 3x224x224 for torchvision/pretrained models, a timm model's configured size)")
    rp.add_argument("--padding", choices=list(PADDINGS), default="same", help="padding of spec nets (default same)")
    rp.add_argument("--out", metavar="DIR", default="out/report", help="report folder (default out/report)")
    rp.add_argument("--train", action="store_true",
                    help="add the experiments (every task × remedy × seed, cached in DIR/experiments) and the "
                         "sensitivity of a trained network")
    rp.add_argument("--visualize", action="store_true", help="add position-specific feature visualization")
    rp.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                    help="section 8, what trained networks learned about position (edgewise probe: bias, blind "
                         "spots, padding-aware units, readout, perturbation) on the trained models, or on "
                         "pretrained:efficientnet-lite0 when none is trained (default: on for trained models; on "
                         "the default page with --train, or once an earlier --probe run into the same --out "
                         "cached it; about 65 s of probing)")
    rp.add_argument("--size", choices=("quick", "full"), default="quick", help="experiment size (default quick)")
    rp.add_argument("--seeds", type=int, default=3, metavar="N", help="experiment seeds (default 3)")
    rp.add_argument("--inits", type=int, default=32, metavar="N",
                    help="random initialisations for the Monte-Carlo sensitivity (default 32)")
    rp.add_argument("--amount", choices=("same", "keep", "full", "valid"),  # (edgewise.remedies.transforms.AMOUNTS)
                    help="how much the padding-mode remedies pad: same (half a window, the default), keep (each "
                         "layer's own amount: for a model whose valid layers must keep their size, as Inception "
                         "V3's), full or valid")
    rp.add_argument("--remedy-inits", type=int, default=None, metavar="N",
                    help="initialisations per remedy for its sensitivity (default: --inits; 0: path counts only)")
    rp.add_argument("--perturb", action=argparse.BooleanOptionalAction, default=None,
                    help="the perturbation experiment (section 5) on every model, or with --no-perturb on none "
                         "(default: on a model whose input has at most 4096 positions and whose experiment takes at "
                         "most 0.75 TFLOP and 25 GB of layer outputs; the page says why where it is left out)")
    rp.add_argument("--trained", action="store_true",
                    help="the models' weights are trained (default: only pretrained:/experiment: references)")
    rp.add_argument("--force", action="store_true",
                    help="write into --out even if it holds files that are not an edgewise report (replaced)")
    rp.add_argument("--seed", type=int, default=0)
    add_norm_stats(rp)
    rp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rp.set_defaults(handler=_cmd_report, out_kind="report")


def _shapes(args) -> list | None:
    """One shape per model from --input (given once for all, or once per model), or None for the default."""
    from . import models as models_mod
    from ._trace import parse_shape
    from .errors import EdgewiseError

    models, given = args.models, args.input or []
    if not models:
        if given:
            raise EdgewiseError("--input needs a MODEL; without one the report uses its two built-in nets")
        return None
    if len(given) not in (0, 1, len(models)):
        raise EdgewiseError(f"{len(models)} models but {len(given)} --input shapes: give one for all or one per model")
    shapes = []
    for i, ref in enumerate(models):
        if given:
            shapes.append(parse_shape(given[0] if len(given) == 1 else given[i]))
        elif models_mod.default_input(ref) is not None:  # torchvision:, pretrained:, timm: (its configured size)
            shapes.append(models_mod.default_input(ref))
        elif ref.startswith("experiment:"):
            shapes.append(None)  # a trained task net knows its input
        else:
            raise EdgewiseError(f"model {ref!r} needs --input, e.g. --input 1x64x64 (CxHxW) or --input 1x256 (CxL)")
    return shapes


def _cmd_report(args, out, err) -> int:
    from . import models as models_mod
    from ._cli_common import emit_json
    from .report.builder import build

    shapes = _shapes(args)
    refs = None
    if args.models:  # experiment: nets are trained once here, so the report sees their input shape
        refs = [models_mod.load(r, s, padding=args.padding) if s is None else r for r, s in zip(args.models, shapes)]
    result = build(refs, shapes, out=args.out, train=args.train, visualize=args.visualize, n_inits=args.inits,
                   remedy_inits=args.remedy_inits, seed=args.seed, padding=args.padding, size=args.size,
                   seeds=args.seeds, trained_weights=True if args.trained else None,
                   progress=not (args.no_progress or args.json), force=args.force, norm_stats=args.norm_stats,
                   probe=args.probe, amount=args.amount, perturb=args.perturb)
    if args.json:
        emit_json({"path": str(result.path), "sections": result.sections, "config": result.config,
                   "files": [str(p) for p in result.files]})
        return 0
    out.print(f"wrote {result.path} ({len(result.files)} files in {result.path.parent}, "
              f"{result.config['seconds']:.0f} s)", markup=False, highlight=False, soft_wrap=True)
    out.print(f"open it with: xdg-open {result.path}   (self-contained: figures embedded, no network needed)",
              markup=False, highlight=False, soft_wrap=True)
    return 0

"""The ``edgewise visualize`` command: a unit's preferred input at several positions, and how much it changes."""

from __future__ import annotations

from pathlib import Path

from ._cli_common import add_device

__all__ = ["add_parser"]


def add_parser(sub, model, common, fmt, wrap) -> None:
    """Register ``visualize`` on the CLI's subparsers."""
    vz = sub.add_parser(
        "visualize", parents=[model, common], formatter_class=fmt,
        help="preferred input of a unit at several positions: does it depend on where its field sits?",
        description=wrap("Optimise the input that maximally activates channel C of LAYER at each position (all "
                         "positions × seeds in one batch), show the images with each unit's receptive field, "
                         "the channel's tiled image, and the position-dependence index against receptive-field "
                         "size for several layers (Zipser 2015). MODEL may also be experiment:TASK[:REMEDY[:SEED]] "
                         "(a task's network, trained on the spot) or pretrained:efficientnet-lite0."))
    vz.add_argument("--channel", type=int, default=0, metavar="C", help="channel of the layer (default 0)")
    vz.add_argument("--positions", default="center,top,left,top_left,bottom_right", metavar="P,Q",
                    help="anchors (center, top, bottom, left, right, top_left, …) or row:col pairs "
                         "(default center,top,left,top_left,bottom_right)")
    vz.add_argument("--seeds", type=int, default=4, metavar="N", help="random starts per position (default 4)")
    vz.add_argument("--steps", type=int, default=128, metavar="N", help="optimisation steps (default 128)")
    vz.add_argument("--lr", type=float, default=0.1, help="learning rate (default 0.1)")
    vz.add_argument("--param", choices=("pixels", "fourier"), default="pixels",
                    help="image parameterisation (default pixels: pixels a unit ignores keep their grey start, "
                         "so crops compare only what the unit sees)")
    vz.add_argument("--jitter", type=int, default=0, metavar="PX",
                    help="jitter inside a fixed canvas, in pixels (default 0: jitter blurs the pattern of units "
                         "whose field is a few pixels wide)")
    vz.add_argument("--index-layers", metavar="A,B", help="layers for the index-vs-receptive-field plot "
                                                          "(default: up to 4 convolutions spread over the depth; "
                                                          "'none' skips the plot)")
    vz.add_argument("--index-channels", default="0,1", metavar="A,B",
                    help="channels measured in each of those layers (default 0,1)")
    vz.add_argument("--seed", type=int, default=0)
    add_device(vz)
    vz.add_argument("--out", metavar="DIR", default="out/visualize",
                    help="folder for the figures, visualization.json and .npy (default out/visualize)")
    vz.set_defaults(handler=_cmd_visualize)


def _positions(text: str):
    out = []
    for p in filter(None, (t.strip() for t in text.split(","))):
        out.append(tuple(int(v) for v in p.split(":")) if ":" in p else p)
    return out


def _load(args):
    """(reference, model, input shape, preprocess) for the command's MODEL and --input."""
    import torch

    from . import models, nets
    from ._trace import parse_shape
    from .errors import EdgewiseError

    ref = args.model or nets.DEFAULT_SPEC
    shape = parse_shape(args.input) if args.input else (tuple(nets.DEFAULT_INPUT) if args.model is None else None)
    opts = {}
    if ":" not in ref:  # a spec string: the model options apply
        if shape is None:
            raise EdgewiseError(f"spec {ref!r} needs --input, e.g. --input 1x32x32")
        opts = {"padding": args.padding or "same", "activation": None if args.activation == "none" else args.activation}
        if args.width is not None:
            opts["width"] = args.width
    model = models.load(ref, shape, **opts)
    shape = shape or getattr(model, "input_shape", None)  # experiment: models know theirs
    if shape is None:
        raise EdgewiseError(f"model {ref!r} needs --input, e.g. --input 3x128x128 (CxHxW)")
    if len(shape) != 3:
        raise EdgewiseError(f"visualize needs a 2-D model (input CxHxW), got input {'x'.join(map(str, shape))}")
    preprocess = None
    if ref.startswith("pretrained:"):  # ImageNet-trained: images in [0, 1] are normalised as in training
        from .pretrained import IMAGENET_MEAN, IMAGENET_STD

        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]

        def imagenet(x):
            return (x - mean) / std

        preprocess = imagenet
    return ref, model, tuple(shape), preprocess


def _index_layers(args, model, layer: str) -> list[str]:
    import torch.nn as nn

    if args.index_layers:
        return [] if args.index_layers == "none" else [n.strip() for n in args.index_layers.split(",") if n.strip()]
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if len(convs) <= 4:
        return convs
    picks = {convs[round(i * (len(convs) - 1) / 3)] for i in range(4)}
    return [c for c in convs if c in picks]


def _cmd_visualize(args, out, err) -> int:
    from .errors import EdgewiseError

    if not args.layer:
        raise EdgewiseError("visualize needs --layer NAME: the layer whose unit to maximise (dotted module name, "
                            "as listed by `edgewise rf MODEL`)")
    if args.seeds < 2:  # (said before the model is loaded, as position_dependence would say it after)
        raise EdgewiseError(f"--seeds {args.seeds}: seeds must be at least 2 (the seed-to-seed noise ceiling needs "
                            "pairs), e.g. --seeds 2")
    import numpy as np

    from .report import save_figure
    from .report.position import plot_index_vs_rf, plot_similarity_matrix
    from .report.visualize import plot_grid, plot_tiled
    from .visualize import index_vs_rf, position_dependence, tiled

    ref, model, shape, preprocess = _load(args)
    opts = {"steps": args.steps, "lr": args.lr, "param": args.param, "jitter": args.jitter, "seed": args.seed,
            "preprocess": preprocess, "device": args.device}
    positions = _positions(args.positions)
    progress = not args.json
    err.print(f"maximising {args.layer} channel {args.channel} at {len(positions)} positions × {args.seeds} seeds",
              markup=False, highlight=False)
    pd = position_dependence(model, args.layer, args.channel, shape, positions, seeds=args.seeds,
                             progress=progress, **opts)
    err.print("maximising the whole channel (tiled)", markup=False, highlight=False)
    tile = tiled(model, args.layer, args.channel, shape, seeds=args.seeds, progress=progress, **opts)
    layers = _index_layers(args, model, args.layer)
    ivr = None
    if layers:
        err.print(f"position-dependence index of {', '.join(layers)}", markup=False, highlight=False)
        channels = [int(c) for c in args.index_channels.split(",") if c.strip()]
        ivr = index_vs_rf(model, shape, layers, channels, positions, seeds=min(args.seeds, 3),
                          steps=max(1, args.steps // 2), progress=progress, **{k: v for k, v in opts.items()
                                                                                 if k != "steps"})
    outdir = Path(args.out)
    written = save_figure(plot_grid(pd.visualization(), positions=pd.labels, rf_boxes=pd.boxes,
                                    title=f"{ref}: {args.layer} channel {args.channel}, preferred input by position"),
                          outdir / "visualize_grid.png")
    written += save_figure(plot_tiled(tile, title=f"{ref}: {args.layer} channel {args.channel}, tiled"),
                           outdir / "visualize_tiled.png")
    written += save_figure(plot_similarity_matrix(pd), outdir / "visualize_similarity.png")
    written += pd.save(outdir, "position_dependence") + tile.save(outdir, "tiled")
    if ivr is not None:
        written += save_figure(plot_index_vs_rf(ivr), outdir / "visualize_index_vs_rf.png")
        written += ivr.save(outdir, "index_vs_rf")
    console = err if args.json else out
    for p in written:
        console.print(f"wrote {p}", markup=False, highlight=False)
    summary = {"model": ref, "layer": args.layer, "channel": args.channel, "input_shape": list(shape),
               "positions": [{"label": str(l), "unit": list(p), "box": [list(a) for a in b],
                              "fraction_inside": float(f), "objective": float(np.mean(v)),
                              "similarity_to_reference": float(pd.normalised[i, pd.reference]),
                              "cross_activation": float(pd.cross_activation[i, pd.reference])}
                             for i, (l, p, b, f, v) in enumerate(zip(pd.labels, pd.positions, pd.boxes,
                                                                      pd.fraction_inside, pd.final))],
               "index": pd.index, "activation_index": pd.activation_index, "out": str(outdir)}
    if ivr is not None:
        summary["index_vs_rf"] = {"layers": ivr.layers, "rf_fraction": ivr.rf_fraction,
                                  "mean_index": ivr.mean_index, "trend": ivr.trend}
    if args.json:
        from ._cli_common import emit_json

        emit_json(summary)
        return 0
    from rich.table import Table

    table = Table(title=f"{ref}: {args.layer} channel {args.channel}, input {'x'.join(map(str, shape))}",
                  title_justify="left")
    for col in ("position", "unit (row, col)", "field inside", "objective", "similarity to centre",
                "cross-activation"):
        table.add_column(col, justify="left" if col == "position" else "right")
    for row in summary["positions"]:
        table.add_row(row["label"], str(tuple(row["unit"])), f"{row['fraction_inside']:.0%}",
                      f"{row['objective']:.3g}", f"{row['similarity_to_reference']:.2f}",
                      f"{row['cross_activation']:.2f}")
    out.print(table)
    out.print(f"position-dependence index {pd.index:.2f} (0: the same preferred input everywhere; 1: unrelated), "
              f"activation index {pd.activation_index:.2f}", markup=False, highlight=False)
    if ivr is not None:
        for name, frac, idx in zip(ivr.layers, ivr.rf_fraction, ivr.mean_index):
            out.print(f"  {name:<24} receptive field {frac:5.0%} of the image   index {idx:.2f}", markup=False,
                      highlight=False)
        out.print(f"  trend (Spearman, index vs field size): {ivr.trend:.2f}", markup=False, highlight=False)
    return 0

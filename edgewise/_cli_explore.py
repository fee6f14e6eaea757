"""The ``edgewise explore`` command: write the interactive explorer page (``explore.html``)."""

from __future__ import annotations

__all__ = ["add_parser"]


def add_parser(sub, common, fmt, wrap) -> None:
    """Register ``explore`` on the CLI's subparsers."""
    from .nets import PADDINGS

    ex = sub.add_parser(
        "explore", parents=[common], formatter_class=fmt,
        help="write explore.html: change the network in the browser and watch the path counts change",
        description=wrap("Write one self-contained page (inline JavaScript, no network) that counts the paths from "
                         "every input position to the output of a 1-D or separable 2-D stack of convolutions and "
                         "pools, exactly (BigInt) and with the conventions of `edgewise paths`: the neuron diagram, "
                         "the count curve or map, centre/edge against depth beside the closed forms of "
                         "edgewise.theory, and the receptive field of a clicked unit. With MODEL the page opens on "
                         "that spec; without, on the stack editor."),
        epilog="examples:\n  edgewise explore\n  edgewise explore '8*conv3' --input 1x24 --padding valid --out out/explore\n"
               "  edgewise explore '2*conv3, maxpool2, conv5/s2' --input 1x32x32")
    ex.add_argument("model", nargs="?", default=None, metavar="MODEL",
                    help="a spec string of conv/pool layers: convK[/sS][/dD], maxpoolK[/sS], avgpoolK[/sS], gap, gmp "
                         "with N* repeats (e.g. '8*conv3'); default: the stack editor")
    ex.add_argument("-i", "--input", metavar="SHAPE", help="input shape CxL or CxHxW (default 1x64; the editor: 1x16)")
    ex.add_argument("--padding", choices=list(PADDINGS), default="same", help="padding scheme (default: same)")
    ex.add_argument("--to", default="all", metavar="all|center|Y,X", help="output units the paths end at (default: all)")
    ex.add_argument("--out", metavar="DIR", default="out/explore", help="folder for explore.html (default out/explore)")
    ex.set_defaults(handler=_cmd_explore)


def _cmd_explore(args, out, err) -> int:
    from ._cli_common import emit_json, parse_to, report_files
    from .report.explore import explore_config, explore_html, FILE_NAME
    from .results import write_atomic
    from pathlib import Path

    to = parse_to(args.to)
    config = explore_config(args.model, args.input, padding=args.padding, to=to)
    path = Path(args.out) / FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, explore_html(config).encode("utf-8"))
    if args.json:
        emit_json({"path": str(path), "config": config})
        return 0
    report_files(out, [path])
    out.print("open it in a browser (it works offline); the address bar holds the configuration you see",
              markup=False, highlight=False)
    return 0

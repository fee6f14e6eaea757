"""Helpers shared by edgewise.cli and its command modules (``_cli_report``, ``_cli_experiment``,
``_cli_visualize``): they sit below all of them, so no command module imports ``edgewise.cli`` (which imports
them). Keep this module light: it is imported by ``edgewise --help``."""

from __future__ import annotations

import json
import sys

__all__ = ["emit_json", "report_files", "check_out", "add_norm_stats", "parse_to", "add_device", "check_device"]


def add_norm_stats(parser) -> None:
    """``--norm-stats`` for the commands whose numbers are path counts or receptive fields."""
    parser.add_argument("--norm-stats", choices=["ignore", "count"], default="ignore",
                        help="whether the statistics of LayerNorm/GroupNorm/InstanceNorm/RMSNorm are connections: "
                             "ignore (default: normalisations are per-unit maps) or count (every unit a statistic "
                             "is computed over also reaches every unit it normalises)")


def add_device(parser) -> None:
    """``--device`` for the commands that run the model (sensitivity, visualize, probe)."""
    parser.add_argument("--device", metavar="DEV", default=None,
                        help="where to run the model: cpu, cuda, cuda:1, mps … (default: where it is loaded, the CPU)")


def check_device(args) -> None:
    """A command's ``--device``, checked before any work (exit 2 with one line if it cannot be used here); it
    becomes a ``torch.device`` (or stays None)."""
    if getattr(args, "device", None) is not None:
        from ._device import usable_device

        args.device = usable_device(args.device, "--device", "leave out --device to run where the model is")


def emit_json(doc) -> None:
    """``doc`` as one line of JSON on stdout (``--json``: nothing else goes there)."""
    from .results import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(doc)) + "\n")
    sys.stdout.flush()


def report_files(console, paths) -> None:
    for p in paths:
        console.print(f"wrote {p}", markup=False, highlight=False)


def check_out(args) -> None:
    """Every command's ``--out``, checked before any work (exit 2 with one line if it cannot be written).

    A command declares what its ``--out`` is with ``set_defaults(out_kind=...)``: ``"folder"`` (the default),
    ``"diagram"`` (a file whose suffix picks the format, or a folder that gets ``diagram.svg``; ``args.out``
    becomes the file) or ``"report"`` (a folder that must be empty or hold a report, unless ``--force``)."""
    out = getattr(args, "out", None)
    if out is None:  # no --out, or a command whose default folder depends on its arguments (checked there)
        return
    from ._outputs import check_file, check_folder

    kind = getattr(args, "out_kind", "folder")
    if kind == "diagram":
        from .report.diagram import diagram_path

        args.out = check_file(diagram_path(out))
    elif kind == "report":
        from .report.folder import check_out as check_report

        check_report(out, force=getattr(args, "force", False))
    else:
        check_folder(out)


def parse_to(text: str):
    """``--to``: ``all``, ``center`` (``centre``) or a position ``Y,X`` (``X`` in 1-D)."""
    from .errors import EdgewiseError

    t = text.strip().lower()
    if t in ("all", "center", "centre"):
        return "center" if t == "centre" else t
    try:
        pos = tuple(int(p) for p in t.strip("()[] ").split(","))
    except ValueError:
        raise EdgewiseError(f"--to {text!r}: expected all, center, or a position Y,X (X in 1-D), e.g. --to 3,4") \
            from None
    return pos[0] if len(pos) == 1 else pos

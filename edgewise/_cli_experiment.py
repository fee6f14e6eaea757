"""The ``edgewise experiment`` command: run a task over remedies × seeds and print the accuracy table."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["add_parser"]


def add_parser(sub, common, fmt, wrap) -> None:
    """Register ``experiment`` on the CLI's subparsers."""
    ex = sub.add_parser(
        "experiment", parents=[common], formatter_class=fmt,
        help="train small CNNs on a task where the border matters, once per remedy and seed",
        description=wrap("Train the task's network once per remedy and seed and test it on every split; print "
                         "mean test accuracy ± 95 % interval over seeds. Every finished run is saved at once under "
                         "--out (and a checkpoint after every epoch), so an interrupted sweep resumes where it "
                         "stopped. `edgewise experiment list` shows the tasks."))
    ex.add_argument("task", metavar="TASK",
                    help="absolute-position, border-digits, border-1d, symmetry, border-distance, or 'list'")
    ex.add_argument("--remedies", metavar="A,B",
                    help="remedies to compare (symmetry: initialisations); default: the task's own list")
    ex.add_argument("--seeds", type=int, default=3, metavar="N", help="seeds 0…N−1 per remedy (default 3)")
    ex.add_argument("--size", choices=("quick", "full"), default="quick",
                    help="quick: well under a minute per task on 2 cores; full: real results (default quick)")
    ex.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="override a task option, e.g. --set epochs=20 (JSON values; repeatable)")
    ex.add_argument("--backend", choices=("inprocess", "process", "ray"), default="inprocess",
                    help="where runs execute: this process, a local process pool, or Ray (the 'ray' extra)")
    ex.add_argument("--workers", type=int, metavar="N", help="parallel runs for process/ray (default: one per core)")
    ex.add_argument("--out", metavar="DIR", help="results folder: runs/, config.json, experiment.json, table.md, "
                                                 "table.csv and figures (default out/experiments/TASK)")
    ex.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    ex.set_defaults(handler=_cmd_experiment)


def _overrides(pairs: list[str]) -> dict:
    from .errors import EdgewiseError

    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise EdgewiseError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value  # a bare word: a string option such as variant=location
    return out


def _list(out) -> int:
    from rich.table import Table

    from .experiments import TASKS

    table = Table(title="Experiment tasks", title_justify="left", show_lines=True)
    for col in ("task", "what it tests", "what theory predicts", "default remedies"):
        table.add_column(col)
    for t in TASKS.values():
        table.add_row(t.name, t.summary, t.prediction, ", ".join(t.remedies))
    out.print(table)
    return 0


def _cmd_experiment(args, out, err) -> int:
    from .experiments import get, run
    from .experiments.results import rows_csv

    if args.task == "list":
        return _list(out)
    task = get(args.task)
    outdir = Path(args.out or Path("out") / "experiments" / task.name)
    if args.out is None:  # the default folder, known only now (a given --out was checked before the command ran)
        from ._outputs import check_folder

        check_folder(outdir)
    exp = run(task, args.remedies, args.seeds, args.size, out=outdir, backend=args.backend, workers=args.workers,
              threads=1 if args.threads is None else args.threads, progress=not args.no_progress, options=_overrides(args.overrides))
    from .report import save_figure
    from .report.experiments import experiment_figures
    from .results import write_atomic

    written = [outdir / "experiment.json"]
    write_atomic(outdir / "table.md", (exp.text(markdown=True) + "\n").encode())
    write_atomic(outdir / "table.csv", rows_csv(exp).encode())
    written += [outdir / "table.md", outdir / "table.csv"]
    for name, fig in experiment_figures(exp).items():
        written += save_figure(fig, outdir / f"{task.name}_{name}.png")
    console = err if args.json else out
    for p in written:
        console.print(f"wrote {p}", markup=False, highlight=False)
    if args.json:
        doc = exp.to_dict()
        doc.pop("runs")
        doc["out"] = str(outdir)
        from ._cli_common import emit_json

        emit_json(doc)
        return 0
    from rich.text import Text

    n = len(exp.seeds)
    out.print(Text(f"{task.name} ({args.size}): test accuracy (%), mean ± 95 % interval over {n} seed"
                   f"{'s' * (n != 1)}", style="bold"))
    out.print(exp.text(), markup=False, highlight=False)
    for note in exp.notes:
        out.print(note, markup=False, highlight=False)
    for split, what in task.splits.items():
        out.print(Text(f"{split}: {what}", style="dim"))
    out.print(Text(f"prediction: {task.prediction}", style="dim"))
    return 0


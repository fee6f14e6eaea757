"""Acceptance study of the position readout: valid vs zero ('same') vs circular padding, on trained nets.

    PYTHONPATH=. .venv/bin/python scripts/readout_paddings.py [--seeds 0,1,2] [--n 512] [--out out/readout-paddings]

1. The experiment tasks' trained networks (``absolute-position``, ``border-digits``; quick size) with remedies
   valid, same and circular, seeds 0, 1, 2: a readout per layer on the task's own test data, on a constant input
   and on Gaussian noise; Spearman and MAE with 95 % intervals over the three trained seeds.
2. EfficientNet-Lite0 (ImageNet weights) as trained (zero padding) and the same weights with circular padding
   (:func:`edgewise.remedies.apply`), on photos (intervals over input seeds) and on a constant input.

Checked (the script exits 1 and names what failed):
- zero padding carries more position information than valid padding at the deepest layer of every task net, on
  the constant input and on noise, for every target: the lower end of its interval over seeds lies above the
  upper end of valid padding's;
- a constant input through circular padding carries none, exactly: every channel of every layer is uniform over
  positions (max == min) for every seed, on the task nets and on EfficientNet-Lite0.
The task-data comparison is printed and saved, not asserted (see NOTES.md for why it differs by task).

Writes ``OUT/results.json`` (every number, timings) and a copy in benchmarks/results/readout_paddings.json, the
readouts' cache under ``OUT/cache``, and the figures docs/img/probe-readout-*.png.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgewise import remedies
from edgewise.experiments import trained_model
from edgewise.probe._common import subject
from edgewise.probe.readout import Readout, readout
from edgewise.report.figures import save_figure
from edgewise.report.probe_readout import plot_readout_curves, plot_readout_example
from edgewise.results import write_json

TASKS = ("absolute-position", "border-digits")
REMEDIES = ("valid", "same", "circular")
LABEL = {"valid": "valid (no padding)", "same": "zero padding", "circular": "circular padding"}
DATA = ("task", "constant", "noise")
ROOT = Path(__file__).resolve().parent.parent


def table(r: Readout) -> list[dict]:
    """One row per layer: map size, and per target Spearman and MAE as mean and 95 % half-width."""
    mean, half = r.interval("spearman")
    mae, mae_half = r.interval("mae")
    rows = []
    for i, layer in enumerate(r.layers):
        row = {"layer": layer, "map": r.maps[i], "uniform_every_seed": bool(r.uniform[:, i].all())}
        for j, t in enumerate(r.targets):
            row[t] = {"spearman": _f(mean[i, j]), "spearman_half": _f(half[i, j]), "mae": _f(mae[i, j]),
                      "mae_half": _f(mae_half[i, j])}
        rows.append(row)
    return rows


def _f(x) -> float | None:
    return round(float(x), 4) if math.isfinite(float(x)) else None


def show(title: str, r: Readout) -> None:
    print(f"  {title}")
    mean, half = r.interval("spearman")
    mae = r.interval("mae")[0]
    for i, layer in enumerate(r.layers):
        cells = "  ".join(f"{t[:5]} {_pm(mean[i, j], half[i, j])} ({mae[i, j]:.3f})"
                          for j, t in enumerate(r.targets))
        flag = "  uniform" if r.uniform[:, i].all() else ""
        print(f"    {layer:<34s} {'×'.join(map(str, r.maps[i])):>7s}  {cells}{flag}")


def _pm(m, h) -> str:
    if not math.isfinite(m):
        return "   n/a     "
    return f"{m:5.2f}±{h:4.2f}" if math.isfinite(h) else f"{m:5.2f}     "


def task_nets(seeds, n: int, cache: Path, timings: dict) -> dict:
    """task → data → remedy → Readout stacked over the trained seeds."""
    out = {}
    for task in TASKS:
        out[task] = {d: {} for d in DATA}
        for remedy in REMEDIES:
            per = {d: [] for d in DATA}
            for seed in seeds:
                t = time.perf_counter()
                net = trained_model(task, remedy, seed)
                timings[f"train {task} {remedy} {seed}"] = round(time.perf_counter() - t, 2)
                for d in DATA:
                    t = time.perf_counter()
                    per[d].append(readout(net, data=d, n=16 if d == "constant" else n, seed=0, cache=cache,
                                          progress=False))
                    timings[f"readout {task} {remedy} {seed} {d}"] = round(time.perf_counter() - t, 2)
            for d in DATA:
                out[task][d][remedy] = Readout.stack(per[d], over="trained seeds", seeds=seeds)
                out[task][d][remedy].model = f"{task} net ({LABEL[remedy]})"
    return out


def efficientnet(n: int, input_seeds: int, cache: Path, timings: dict) -> dict:
    """padding → data → Readout for EfficientNet-Lite0 as trained and with circular padding."""
    sub = subject("pretrained:efficientnet-lite0")
    models = {"same": sub.module, "circular": remedies.apply(sub.module, "circular", input_shape=sub.shape)}
    out = {}
    for padding, module in models.items():
        module.eval()
        out[padding] = {}
        for d, k, seeds in (("photos", n, input_seeds), ("constant", 8, 1)):
            t = time.perf_counter()
            r = readout(module, sub.shape, data=d, n=k, seeds=seeds, cache=cache, progress=True)
            r.model = f"EfficientNet-Lite0 ({LABEL[padding]})"
            out[padding][d] = r
            timings[f"readout efficientnet-lite0 {padding} {d}"] = round(time.perf_counter() - t, 2)
    return out


def clearly_above(a: Readout, b: Readout) -> dict:
    """Per target: whether ``a``'s 95 % interval over seeds at its deepest layer lies wholly above ``b``'s (None
    where ``b``'s deepest map is too small for the target to have a score)."""
    am, ah = a.interval("spearman")
    bm, bh = b.interval("spearman")
    out = {}
    for j, t in enumerate(a.targets):
        if not math.isfinite(bm[-1, j]):
            out[t] = None
            continue
        out[t] = bool(am[-1, j] - np.nan_to_num(ah[-1, j]) > bm[-1, j] + np.nan_to_num(bh[-1, j]))
    return out


def check(nets: dict, eff: dict) -> list[str]:
    """The acceptance checks; returns what failed (empty: all passed)."""
    failed = []
    for task, by_data in nets.items():
        for d in ("constant", "noise"):
            for t, ok in clearly_above(by_data[d]["same"], by_data[d]["valid"]).items():
                if ok is False:
                    failed.append(f"{task}, {d} input, {t}: zero padding is not clearly above valid padding at the "
                                  "deepest layer (95 % intervals over seeds overlap or are reversed)")
        circ = by_data["constant"]["circular"]
        if not circ.uniform.all() or np.any(circ.spearman != 0):
            failed.append(f"{task}: circular padding on a constant input is not uniform at every layer and seed")
    circ = eff["circular"]["constant"]
    if not circ.uniform.all() or np.any(circ.spearman != 0):
        failed.append("EfficientNet-Lite0 with circular padding: a constant input is not uniform at every layer")
    return failed


def figures(nets: dict, eff: dict) -> list[Path]:
    img = ROOT / "docs" / "img"
    written = []
    for task, by_data in nets.items():
        for d in DATA:
            fig = plot_readout_curves({LABEL[p]: by_data[d][p] for p in ("same", "valid", "circular")},
                                      title=f"{task} nets (quick, trained): position readout per layer, "
                                            f"{'the task’s test images' if d == 'task' else d + ' input'}")
            written += save_figure(fig, img / f"probe-readout-{task}-{d}")
        written += save_figure(plot_readout_example(by_data["constant"]["same"]),
                               img / f"probe-readout-{task}-example")
    curves = {f"{LABEL[p]}, {d}": eff[p][d] for d in ("photos", "constant") for p in ("same", "circular")}
    fig = plot_readout_curves(curves, title="EfficientNet-Lite0 (ImageNet weights): position readout per layer, "
                                            "as trained (zero padding) and with circular padding")
    written += save_figure(fig, img / "probe-readout-efficientnet")
    written += save_figure(plot_readout_example(eff["same"]["photos"]), img / "probe-readout-efficientnet-example")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2", help="trained seeds of the task nets")
    ap.add_argument("--n", type=int, default=512, help="task / noise inputs per readout")
    ap.add_argument("--photos", type=int, default=96, help="photos per EfficientNet-Lite0 readout")
    ap.add_argument("--input-seeds", type=int, default=3, help="input seeds of the EfficientNet-Lite0 photo readouts")
    ap.add_argument("--out", default=str(ROOT / "out" / "readout-paddings"))
    ap.add_argument("--no-figures", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    out, timings = Path(args.out), {}
    start = time.perf_counter()
    nets = task_nets(seeds, args.n, out / "cache", timings)
    eff = efficientnet(args.photos, args.input_seeds, out / "cache", timings)
    timings["total"] = round(time.perf_counter() - start, 1)
    for task, by_data in nets.items():
        for d in DATA:
            print(f"\n{task}, {d} data — Spearman mean±95 % half-width over trained seeds {seeds} (MAE)")
            for p in REMEDIES:
                show(LABEL[p], by_data[d][p])
    for p in ("same", "circular"):
        for d in ("photos", "constant"):
            print(f"\nEfficientNet-Lite0, {LABEL[p]}, {d}")
            show(LABEL[p], eff[p][d])
    failed = check(nets, eff)
    print("\nzero padding clearly above valid at the deepest layer (95 % intervals over trained seeds apart):")
    for task, bd in nets.items():
        for d in DATA:
            print(f"  {task:<18s} {d:<9s} {clearly_above(bd[d]['same'], bd[d]['valid'])}")
    doc = {"seeds": seeds, "n": args.n, "photos": args.photos, "input_seeds": args.input_seeds,
           "nets": {t: {d: {p: table(r) for p, r in by.items()} for d, by in bd.items()} for t, bd in nets.items()},
           "efficientnet_lite0": {p: {d: table(r) for d, r in by.items()} for p, by in eff.items()},
           "text": {f"{t} {d} {p}": r.text() for t, bd in nets.items() for d, by in bd.items() for p, r in by.items()}
           | {f"efficientnet-lite0 {p} {d}": r.text() for p, by in eff.items() for d, r in by.items()},
           "acceptance": {"passed": not failed, "failed": failed},
           "zero_above_valid_at_the_deepest_layer": {t: {d: clearly_above(bd[d]["same"], bd[d]["valid"]) for d in DATA}
                                                     for t, bd in nets.items()},
           "timings_s": timings,
           "threads": torch.get_num_threads(), "torch": torch.__version__}
    write_json(out / "results.json", doc)
    write_json(ROOT / "benchmarks" / "results" / "readout_paddings.json", doc)
    if not args.no_figures:
        for p in figures(nets, eff):
            print("wrote", p)
    print(f"\ntotal {timings['total']} s; acceptance: {'passed' if not failed else 'FAILED'}")
    for f in failed:
        print("  FAILED:", f)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

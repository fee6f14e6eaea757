"""Why does border-1d (trained at the middle, zero padding) score far worse at the start than at the end?

A thin command line over :func:`edgewise.probe.explain.explain_border1d`: prints the evidence and the conclusion
(``text()``), saves its summary and sentences as JSON (with ``--out``, the whole result: JSON + ``.npy``) and the
figure (:func:`edgewise.report.probe_explain.plot_border1d`).

Run::

    PYTHONPATH=. .venv/bin/python scripts/explain_border1d.py [--seeds 3] [--json PATH] [--out DIR] [--figure PNG]
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="quick")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-n", type=int, default=64, help="middle-split signals the perturbation profile averages over")
    ap.add_argument("--cache", default=None, help="a folder for the cached result")
    ap.add_argument("--json", default="benchmarks/results/explain_border1d.json",
                    help="the summary, the sentences and the time, as JSON")
    ap.add_argument("--out", default=None, help="a folder for the whole result (JSON + .npy)")
    ap.add_argument("--figure", default="docs/img/probe-explain-border1d.png")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from edgewise.probe.explain import explain_border1d

    t0 = time.perf_counter()
    result = explain_border1d(args.size, seeds=args.seeds, seed=args.seed, n=args.n, cache=args.cache)
    for sentence in result.text():
        print(sentence)
    seconds = time.perf_counter() - t0
    print(f"({seconds:.0f} s)")
    if args.json:
        from edgewise.results import write_json

        write_json(args.json, {"summary": result.summary, "text": result.text(), "seconds": seconds,
                               "seeds": result.seeds, "size": result.size, "n": result.n})
    if args.out:
        result.save(args.out)
    if args.figure:
        from edgewise.report.figures import save_figure
        from edgewise.report.probe_explain import plot_border1d

        save_figure(plot_border1d(result), args.figure)


if __name__ == "__main__":
    main()

"""How long `edgewise report` takes, part by part, against its budgets and against `edgewise answer`.

    .venv/bin/python benchmarks/report.py                 # default report, then --train --visualize (quick)
    .venv/bin/python benchmarks/report.py --no-train --json out.json

The budgets (issue 7): the default report under 3 minutes on 2 cores, with --train --visualize (quick sizes,
experiments not cached) under 15. The baseline in the same run is `edgewise.answer` on the same two models:
the report's sections 1–6 reuse its engine results, so the ratio says what the report adds on top.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from edgewise.answer import answer
from edgewise.report.builder import DEFAULT_MODELS, build

BUDGETS = {"default": 180.0, "train+visualize": 900.0}


def _timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-train", action="store_true", help="time the default report only")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        _, base = _timed(lambda: [answer(m, s) for m, s in DEFAULT_MODELS])
        runs = [("default", {})] + ([] if args.no_train else [("train+visualize", {"train": True, "visualize": True})])
        for name, options in runs:
            report, seconds = _timed(lambda: build(out=Path(tmp) / name, progress=False, **options))
            rows[name] = {"seconds": round(seconds, 1), "budget": BUDGETS[name], "vs_answer": round(seconds / base, 2),
                          "parts": report.config["seconds_per_part"]}
    print(f"baseline: edgewise.answer on the two default models: {base:.1f} s")
    for name, r in rows.items():
        verdict = "within" if r["seconds"] <= r["budget"] else "OVER"
        print(f"{name:16s} {r['seconds']:7.1f} s  ({r['vs_answer']:.2f}× answer; {verdict} the {r['budget']:.0f} s budget)")
        for part, sec in sorted(r["parts"].items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {sec:7.1f} s  {part}")
    if args.json:
        Path(args.json).write_text(json.dumps({"answer_seconds": base, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

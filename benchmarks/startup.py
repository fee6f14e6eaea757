"""Start-up of `edgewise` commands in fresh processes: this checkout against another (e.g. the main branch).

    .venv/bin/python benchmarks/startup.py --against ../main                  # every command, 5 runs each
    .venv/bin/python benchmarks/startup.py --against ../main --json benchmarks/results/startup.json

Each command runs in a new process with the edgewise package of each checkout (``PYTHONPATH``), interleaved
(A B A B ...); printed are the medians of wall and CPU seconds (the CPU seconds of the child process, which a busy
machine inflates less) and the ratio. The baseline is the same command on the other checkout; torch's own import
(``python -c "import torch"``, measured in the same run) is the floor every command pays.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import machine_line  # benchmarks/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent.parent  # the checkout this script belongs to
PY, CLI = sys.executable, str(Path(sys.executable).with_name("edgewise"))
GATHER = ("import torch; torch.set_num_threads(1)\nfrom edgewise.answer import gather\n"
          "from edgewise.report.builder import DEFAULT_MODELS\n"
          "for model, shape in DEFAULT_MODELS: gather(model, shape, remedy_inits=8)")
COMMANDS = {
    "python -c 'import torch' (the floor)": [PY, "-c", "import torch"],
    "python -c 'import edgewise.cli'": [PY, "-c", "import edgewise.cli"],
    "edgewise --help": [CLI, "--help"],
    "edgewise paths '16*conv3' --input 1x64x64": [CLI, "paths", "16*conv3", "--input", "1x64x64"],
    "edgewise rf 'conv64/s4, conv64/s4' --input 1x224x224": [CLI, "rf", "conv64/s4, conv64/s4", "--input",
                                                             "1x224x224"],
    "the default report's engines (answer.gather on its two models)": [PY, "-c", GATHER],
}


def _run(cmd: list[str], code: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``cmd`` in a fresh process with the edgewise package of checkout ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=Path.home())
    wall, after = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", metavar="CHECKOUT", type=Path, required=True,
                    help="the checkout to compare with (its edgewise package is put first on PYTHONPATH)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per command and checkout (default 5)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    print(machine_line())
    checkouts = {"this": HERE, "against": args.against.resolve()}
    rows = {}
    for name, cmd in COMMANDS.items():
        runs = {k: [] for k in checkouts}
        for _ in range(args.repeats):
            for k, code in checkouts.items():
                runs[k].append(_run(cmd, code))
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        rows[name] = {k: {"wall": round(med[k][0], 3), "cpu": round(med[k][1], 3),
                          "runs": [[round(w, 3), round(c, 3)] for w, c in v]} for k, v in runs.items()}
        print(f"{name:62s} {med['this'][0]:6.2f} s (CPU {med['this'][1]:5.2f}) vs {med['against'][0]:6.2f} s "
              f"(CPU {med['against'][1]:5.2f}): {med['against'][0] / med['this'][0]:.2f}×", flush=True)
    load = os.getloadavg()[0]
    print(f"load average {load:.2f} at end; this = {HERE}, against = {checkouts['against']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"this": str(HERE), "against": str(checkouts["against"]),
                                               "load_at_end": load, "repeats": args.repeats, "commands": rows},
                                              indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

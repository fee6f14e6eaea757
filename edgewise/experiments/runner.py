"""Run a task over remedies × seeds: cached per configuration, written atomically, resumable, on any backend."""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from .. import remedies as remedies_mod
from ..errors import EdgewiseError, EdgewiseWarning
from ..results import to_jsonable, write_json
from . import tasks
from .backends import BACKENDS, run_jobs
from .results import Experiment

__all__ = ["run", "run_key"]

#: bump when the meaning of a cached run changes, so old caches are not reused
CACHE_VERSION = 1


def run_key(task: str, config: dict, remedy: str, seed: int, threads: int = 1) -> str:
    """The cache key of one run: a content hash of its resolved configuration (torch's thread count included:
    float sums, hence results, depend slightly on it)."""
    doc = json.dumps(to_jsonable({"v": CACHE_VERSION, "task": task, "config": config, "remedy": remedy,
                                  "seed": seed, "threads": threads}), sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def _remedies(task: tasks.Task, chosen) -> list[str]:
    if chosen is None:
        return list(task.remedies)
    chosen_text = chosen if isinstance(chosen, str) else ",".join(map(str, chosen))
    chosen = [c.strip() for c in (chosen.split(",") if isinstance(chosen, str) else chosen) if c.strip()]
    if not chosen:
        raise EdgewiseError(f"no {task.axis} given for task {task.name!r} (got {chosen_text!r}); name at least one, "
                            f"e.g. --remedies {','.join(task.remedies[:2])}, or leave --remedies out for the "
                            f"task's own: {', '.join(task.remedies)}")
    if task.axis == "remedy":
        for c in chosen:
            remedies_mod.get(c)  # raises with the valid names and a close match
    else:
        bad = [c for c in chosen if c not in task.remedies]
        if bad:
            raise EdgewiseError(f"task {task.name!r} varies the {task.axis}; unknown {task.axis} "
                                f"{', '.join(map(repr, bad))}. Valid: {', '.join(task.remedies)}")
    if len(set(chosen)) != len(chosen):
        raise EdgewiseError(f"{task.axis} listed twice: {', '.join(chosen)}")
    return chosen


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise EdgewiseError(f"seeds must be at least 1, got {seeds}")
        return list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise EdgewiseError(f"seeds must be a count or distinct integers, got {seeds}")
    return seeds


def _cached(path: Path, job: dict) -> dict | None:
    """The finished run saved at ``path``, or None when there is none or it is not that run's valid record
    (damaged, edited or another run's): such a file is named in a warning and the run is done again."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        problem = _record_problem(record, job)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problem = f"unreadable: {e}"
    if problem:
        warnings.warn(f"ignoring the cached run {path} ({problem}); running it again", EdgewiseWarning, stacklevel=3)
        return None
    return record


def _record_problem(record, job: dict) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    for field in ("key", "remedy", "seed"):
        if record.get(field) != job[field]:
            return f"its {field} is {record.get(field)!r}, not {job[field]!r}"
    if not isinstance(record.get("seconds"), (int, float)):
        return "no run time"
    metrics = record.get("metrics")
    if metrics is None:
        return None if isinstance(record.get("error"), str) else "neither metrics nor an error"
    accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
    if not isinstance(accuracy, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 and math.isfinite(v) for v in accuracy.values()):
        return "its metrics hold no accuracies"
    missing = [s for s in job["task"].splits if s not in accuracy]
    if missing:
        return f"no accuracy on {', '.join(missing)}"
    return None


def run(task, remedies=None, seeds=3, size: str = "quick", *, out=None, backend: str = "inprocess",
        workers: int | None = None, threads: int = 1, progress: bool = True, options: dict | None = None,
        **overrides) -> Experiment:
    """Train ``task`` once per remedy and seed; test every split.

    Args:
        task: a name from :data:`edgewise.experiments.TASKS` (or a Task).
        remedies: names (a list or ``"same,full"``) from :data:`edgewise.remedies.REMEDIES` — or, for a task
            whose axis is not the remedy (``symmetry``: the initialisation), its own choices. Default: the task's.
        seeds: a count (seeds 0…n−1) or a list of seeds.
        size: ``quick`` (tests, the report) or ``full`` (real results).
        out: a folder for results. Each finished run is written to ``out/runs/<key>.json`` at once (and a
            checkpoint after every epoch while it trains), so an interrupted sweep resumes where it stopped;
            ``config.json`` and ``experiment.json`` are written beside. None: nothing is written or reused.
        backend: ``inprocess``, ``process`` (a local process pool) or ``ray`` (the ``ray`` extra).
        workers: parallel runs (default: one per core for the pools).
        threads: torch threads per run. A run's numbers depend slightly on it, so it is fixed (and part of
            the cache key) whatever the backend; 1 suits these small networks, and the pools add parallelism.
        progress: show an overall bar and one bar per running run.
        options: task options as a dict (for options whose names are also parameters here, e.g. ``size``).
        **overrides: task options replacing the size's defaults (e.g. ``epochs=2``). Every option is checked
            against the size's default (type, finite, counts ≥ 1) before anything is written to ``out``.

    Returns:
        An :class:`Experiment`: every run's metrics and, per remedy, each split's mean and 95 % interval.

    Example:
        >>> exp = run("absolute-position", ["same", "full"], seeds=2, progress=False)  # doctest: +SKIP
        >>> print(exp.text())  # doctest: +SKIP
    """
    t = tasks.get(task)
    config = t.config(size, **{**(options or {}), **overrides})
    chosen = _remedies(t, remedies)
    from .. import limits

    limits.check_runs(len(chosen) * (int(seeds) if isinstance(seeds, int) else len(seeds)),
                      f"{t.name} ({len(chosen)} {t.axis} choices × seeds)", "--seeds (seeds)")
    seed_list = _seeds(seeds)
    if backend not in BACKENDS:
        raise EdgewiseError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if int(threads) < 1:
        raise EdgewiseError(f"threads must be at least 1, got {threads}")
    if workers is not None and int(workers) < 1:
        raise EdgewiseError(f"workers must be at least 1, got {workers}; leave it out for one per core")
    out = Path(out) if out is not None else None
    jobs = []
    for remedy in chosen:
        for seed in seed_list:
            key = run_key(t.name, config, remedy, seed, int(threads))
            jobs.append({"index": len(jobs), "task": t, "config": config, "remedy": remedy, "seed": seed, "key": key,
                         "threads": int(threads),
                         "checkpoint": str(out / "runs" / f"{key}.ckpt") if out else None})
    results: dict[int, dict] = {}
    if out is not None:
        write_json(out / "config.json", {"task": t.name, "size": size, "config": config, t.axis: chosen,
                                          "seeds": seed_list, "threads": int(threads)})
        for job in jobs:
            cached = _cached(out / "runs" / f"{job['key']}.json", job)
            if cached is not None:
                results[job["index"]] = cached
    pending = [j for j in jobs if j["index"] not in results]

    overall = tqdm(total=len(jobs), initial=len(results), desc=f"{t.name} ({size})", unit="run",
                   disable=None if progress else True, position=0)
    bars: dict[int, tqdm] = {}
    lines: dict[int, int] = {}  # run → its terminal line under the overall bar

    def on_progress(i: int, done: int, total: int) -> None:
        if not progress:
            return
        if i not in bars:  # one line per running run: the lowest free one
            job, used = jobs[i], set(lines.values())
            lines[i] = next(n for n in range(1, len(used) + 2) if n not in used)
            bars[i] = tqdm(total=total, desc=f"  {job['remedy']} seed {job['seed']}", unit="epoch", leave=False,
                           position=lines[i], disable=None)
        bars[i].n = done
        bars[i].refresh()

    def on_done(i: int, result: dict) -> None:
        job = jobs[i]
        record = {"remedy": job["remedy"], "seed": job["seed"], "key": job["key"], **result}
        if out is not None:
            write_json(out / "runs" / f"{job['key']}.json", record)
            ckpt = Path(job["checkpoint"])
            if ckpt.exists():
                ckpt.unlink()
        results[i] = record
        if i in bars:
            bars.pop(i).close()
            lines.pop(i)
        overall.update(1)

    try:
        run_jobs(pending, backend, workers, on_progress, on_done)
    finally:
        for bar in bars.values():
            bar.close()
        overall.close()
    runs = [results[j["index"]] for j in jobs]
    notes = t.notes([r for r in runs if "metrics" in r]) if t.notes else []
    exp = Experiment(t.name, size, config, chosen, seed_list, list(t.splits), runs, t.axis, t.contrast, notes)
    if out is not None:
        exp.save(out)
    return exp

"""Sweep: does edgewise trace every architecture family of timm, and do its path counts equal autograd's?

A *family* is a module of ``timm.models`` (``timm.list_modules()``: ``resnet``, ``efficientnet``,
``vision_transformer``, ...). Each family is represented by its **smallest model by parameter count**
among all of ``timm.list_models(module=family)`` (counted on the meta device, so nothing is allocated;
ties go to the first name in sorted order). Where timm has a ``test_*`` model for the family (``test_vit``,
``test_resnet``, ...) that is the one picked. The picks depend only on the timm version and are cached in
``benchmarks/results/timm_picks.json`` (``--repick`` recomputes them; computing all takes about 4 minutes
on 2 cores).

Per family, in its own forked process with a time limit (``--timeout``, default 150 s, counted from the
model's build; a hang or a crash is recorded, the sweep goes on):

1. **build** ``timm.create_model(name, pretrained=False)`` (nothing is downloaded) under ``torch.manual_seed(0)``,
   at the smallest input that runs, tried in this order: ``img_size=S`` passed to ``create_model`` (ViTs and
   other models with a fixed grid accept it) and input 3×S×S; no keyword and 3×S×S; no keyword and the
   size of the model's pretrained configuration (``pretrained_cfg["input_size"]``). S is ``--input`` (64).
   When the first model built has a ``patch_size`` that does not divide S (DeepSeek-ViT's 14 px), the largest
   multiple of it below S, S', is tried too: on that same model right after its try at S (a second build of a
   400M-parameter model costs more than the rest of its check), then without keywords (that model reused) and
   with ``img_size=S'``, before the configuration's size.
2. **trace** ``edgewise.trace(model, shape)``: traced, or refused with the first line of the
   ``EdgewiseError`` and a *reason* (the op named in the message, e.g. ``permute``, or the kind of failure).
3. For a traced model: ``edgewise.receptive_field`` on the Graph, and ``edgewise.pathways(graph,
   exact=True)`` against :func:`edgewise.testing.oracle.autograd_pathways` on the same input: *match*
   (equal below 2**53, relative 1e-12 above, as in ``tests/test_zoo.py``), *mismatch*, or *oracle-refused*
   (the oracle has no pathway counterpart for an op, e.g. softmax).
4. For a traced model: :func:`edgewise.weighted_pathways` (one initialisation, torch's defaults): computed, or
   refused with the op that has no rule.

Results go to ``--out`` (JSON, default ``benchmarks/results/timm_sweep.json``) and a Markdown summary is
printed: families, traced %, refused % with the top reasons, and how many traced models equal the oracle.

Run::

    .venv/bin/python benchmarks/timm_sweep.py                      # every family, 3x64x64, 60 s per model
    .venv/bin/python benchmarks/timm_sweep.py --families 10 --per-family
    .venv/bin/python benchmarks/timm_sweep.py --only resnet,convnext --input 96 --timeout 120 --out /tmp/s.json

The exit status is 0 whatever the numbers are (this measures, it does not gate); 2 on bad options.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

# measure the checkout this script is in (a worktree's edgewise), not whichever edgewise the venv has installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: pretrained=False never downloads anyway

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_OUT = RESULTS / "timm_sweep.json"
PICKS = RESULTS / "timm_picks.json"
SEED = 0
RTOL_AUTOGRAD = 1e-12  # float64 autograd vs exact integers beyond 2**53 (tests/test_zoo.py)
#: counts above 2**MAX_BITS are compared after scaling the oracle by 2**-(bits - MAX_BITS) (float64 holds ~2**1023)
MAX_BITS = 900


# ------------------------------------------------------------------------------------------------ picking

def families() -> list[str]:
    """Every module of ``timm.models`` that registers at least one model, sorted."""
    import timm

    return sorted(m for m in timm.list_modules() if timm.list_models(module=m))


def count_params(name: str) -> int:
    """Parameters of ``name`` built on the meta device (no memory, no initialisation arithmetic)."""
    import timm

    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = timm.create_model(name, pretrained=False)
    return sum(p.numel() for p in model.parameters())


def pick(family: str) -> dict:
    """The family's smallest model by parameter count (ties: first in sorted order); models that cannot be
    built on the meta device are skipped, and if none can, the first name is taken."""
    import timm

    names = sorted(timm.list_models(module=family))
    best, skipped = None, 0
    for name in names:
        try:
            n = count_params(name)
        except Exception:
            skipped += 1
            continue
        if best is None or n < best[0]:
            best = (n, name)
    if best is None:
        return {"model": names[0], "params": None, "candidates": len(names), "skipped": skipped}
    return {"model": best[1], "params": int(best[0]), "candidates": len(names), "skipped": skipped}


def load_picks(path: Path = PICKS) -> dict[str, dict]:
    """Cached picks for the installed timm version ({} when there are none or they are for another version)."""
    import timm

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("picks", {}) if data.get("timm") == timm.__version__ else {}


def save_picks(picks: dict[str, dict], path: Path = PICKS) -> None:
    import timm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"timm": timm.__version__, "rule": "smallest parameter count in the family "
                                 "(meta device), ties to the first sorted name", "picks": dict(sorted(picks.items()))},
                                indent=1) + "\n")


# ------------------------------------------------------------------------------------------------ checking

def build(name: str, size: int):
    """(model in eval mode, input shape, create_model keywords) for the first configuration whose forward
    pass runs (see the module docstring), or raise the last failure."""
    import timm

    cfg = (timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None)
    cfg_shape = tuple(int(v) for v in getattr(cfg, "input_size", None) or (3, 224, 224))
    attempts = [({"img_size": size}, (3, size, size)), ({}, (3, size, size)), ({}, cfg_shape)]
    seen, last = set(), None
    built: dict = {}  # one build per keyword set (a build of a large model takes seconds)
    reuse: set = set()
    for i, (kwargs, shape) in enumerate(attempts):
        key = (tuple(kwargs.items()), shape)
        if key in seen:
            continue
        seen.add(key)
        try:
            model = built.get(tuple(kwargs.items())) if shape[1:] in reuse else None
            if model is None:
                torch.manual_seed(SEED)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = timm.create_model(name, pretrained=False, **kwargs).eval()
                built[tuple(kwargs.items())] = model
                smaller = _patch_multiple(model, size)
                if smaller and not reuse:  # S is no multiple of the patch size: the largest that is, first on
                    reuse.add((smaller, smaller))  # the models already built (a build of a large one takes seconds)
                    attempts[i + 1:i + 1] = [(kwargs, (3, smaller, smaller))]
                    attempts[-1:-1] = [({}, (3, smaller, smaller)), ({"img_size": smaller}, (3, smaller, smaller))]
            with torch.no_grad():
                model(torch.zeros((1, *shape)))
            return model, shape, kwargs
        except Exception as e:  # a keyword the model does not take, or an input size it does not run at
            last = e
    raise last


def _patch_multiple(model, size: int) -> int | None:
    """The largest multiple of the model's patch size (``patch_size`` of its first module that has one, e.g.
    timm's ``PatchEmbed``) at most ``size``, when ``size`` is not one itself (a 14-pixel patch and S = 64)."""
    for m in model.modules():
        p = getattr(m, "patch_size", None)
        p = p[0] if isinstance(p, (tuple, list)) and len(set(p)) == 1 else p
        if isinstance(p, int) and p > 0:
            return (size // p) * p if size % p and size >= p else None
    return None


def reason(message: str) -> str:
    """A short category for a refusal: the op the message names, else the kind of failure."""
    m = re.search(r"\buses ([\w.]+), which", message)
    if m:
        return m.group(1)
    message = re.sub(r"^layer '[^']*'( \(in module [^)]*\))?( of \S+)?:? ", "", message)  # the place, not the kind
    m = re.search(r"could not trace .*? with torch\.fx: (\w+): (.*)", message)
    if m:
        return f"torch.fx {m.group(1)}: {_generic(m.group(2))}"
    m = re.search(r"does not run on an input of shape \S+ \(batch axis added\): (\w+)", message)
    if m:
        return f"does not run ({m.group(1)})"
    if "not a single tensor" in message:
        return "output is not one tensor"
    return _generic(message)


def _generic(text: str, words: int = 8) -> str:
    """The first words of a message with names, shapes and numbers blanked, so that messages of one kind group."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "(…)", text)
    text = re.sub(r"\d+", "N", text)
    return " ".join(text.split()[:words])


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return (s.splitlines()[0] if s else type(e).__name__)[:400]


def model_frame(e: BaseException) -> str | None:
    """``file.py:line function`` of the innermost frame in timm's code where ``e`` was raised (a torch.fx
    failure names no place of its own), or None."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f"{os.sep}timm{os.sep}" in f.filename]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename.split(os.sep + 'timm' + os.sep, 1)[1]}:{f.lineno} {f.name}"


def compare(exact: np.ndarray, oracle: np.ndarray, scale_log2: int) -> dict:
    """Exact integer counts vs the oracle's float64 (which is ``counts * 2**-scale_log2``)."""
    if exact.shape != oracle.shape:
        return {"equal": False, "why": f"shapes {exact.shape} vs {oracle.shape}"}
    ints = [int(v) for v in exact.ravel()]
    e = np.array([float(v >> scale_log2) if scale_log2 else float(v) for v in ints]).reshape(exact.shape)
    if not np.array_equal(e == 0, oracle == 0):
        return {"equal": False, "why": "different unreachable positions", "zeros": [int((e == 0).sum()),
                                                                                   int((oracle == 0).sum())]}
    small = np.array([0 < v < 2 ** 53 for v in ints]).reshape(exact.shape) if not scale_log2 else e < 0
    if not np.array_equal(e[small], oracle[small]):
        return {"equal": False, "why": "counts below 2**53 differ"}
    big = e > 0
    rel = float(np.max(np.abs(oracle[big] - e[big]) / e[big], initial=0.0))
    if not rel <= RTOL_AUTOGRAD:
        return {"equal": False, "why": f"relative difference {rel:.3g} > {RTOL_AUTOGRAD}", "rel": rel}
    return {"equal": True, "rel": rel}


def check_model(name: str, size: int = 64, report=None) -> dict:
    """Build, trace, receptive field, exact pathways vs the autograd oracle for one timm model.

    ``report(partial result)`` is called after every stage (the sweep's parent keeps the last one, so a
    timeout still says how far the model got). Returns the result dict.
    """
    import edgewise
    from edgewise.errors import EdgewiseError
    from edgewise.testing.oracle import autograd_pathways

    report = report or (lambda r: None)
    r: dict = {"model": name, "stage": "build", "times": {}}

    def stage(what: str):
        r["stage"] = what
        report(dict(r))

    report(dict(r))
    t = time.perf_counter()
    try:
        model, shape, kwargs = build(name, size)
    except Exception as e:
        r.update(status="build-failed", error=f"{type(e).__name__}: {first_line(e)}", reason="build failed")
        r["times"]["build"] = round(time.perf_counter() - t, 3)
        stage("done")
        return r
    r["times"]["build"] = round(time.perf_counter() - t, 3)
    r.update(input=list(shape), kwargs=kwargs, params=int(sum(p.numel() for p in model.parameters())))
    stage("trace")

    t = time.perf_counter()
    try:
        graph = edgewise.trace(model, shape, name=f"timm:{name}")
        r.update(status="traced", nodes=len(list(graph)))
    except EdgewiseError as e:
        r.update(status="refused", error=first_line(e), reason=reason(first_line(e)))
        if e.__cause__ is not None and (where := model_frame(e.__cause__)):
            r["where"] = where  # torch.fx failures: the line of timm's code
        elif m := re.search(r"\(in module '[^']*', (\w+)\)", r["error"]):
            r["where"] = m.group(1)  # unsupported ops: the class of the module they sit in
    except Exception as e:  # a crash of the tracer itself, not a refusal: a bug
        r.update(status="tracer-error", error=f"{type(e).__name__}: {first_line(e)}",
                 reason=f"tracer crashed ({type(e).__name__})", traceback=traceback.format_exc(limit=-3))
    r["times"]["trace"] = round(time.perf_counter() - t, 3)
    if r["status"] != "traced":
        stage("done")
        return r
    stage("receptive_field")

    t = time.perf_counter()
    try:
        rf = edgewise.receptive_field(graph)
        deepest = max((lf for lf in rf.layers if lf.spatial and lf.kind != "input"), default=None,
                      key=lambda lf: np.prod([float(v) for v in lf.size]))
        r["rf"] = {"status": "ok", "largest": list(deepest.size) if deepest else None,
                   "misaligned": len(rf.misalignments)}
    except Exception as e:
        r["rf"] = {"status": "error", "error": f"{type(e).__name__}: {first_line(e)}"}
    r["times"]["receptive_field"] = round(time.perf_counter() - t, 3)
    stage("pathways")

    t = time.perf_counter()
    try:
        exact = edgewise.pathways(graph, exact=True).counts
    except Exception as e:
        r["oracle"] = {"status": "pathways-error", "error": f"{type(e).__name__}: {first_line(e)}"}
        r["times"]["pathways"] = round(time.perf_counter() - t, 3)
        stage("done")
        return r
    r["times"]["pathways"] = round(time.perf_counter() - t, 3)
    bits = max((int(v).bit_length() for v in exact.ravel()), default=0)
    scale = max(0, bits - MAX_BITS)
    r["log2_max_count"] = bits
    stage("oracle")

    t = time.perf_counter()
    try:
        oracle = autograd_pathways(model, shape, scale_log2=scale)
        r["oracle"] = {"status": "match" if (c := compare(exact, oracle, scale))["equal"] else "mismatch", **c}
    except EdgewiseError as e:
        r["oracle"] = {"status": "oracle-refused", "error": first_line(e), "reason": reason(first_line(e))}
    except Exception as e:
        r["oracle"] = {"status": "oracle-error", "error": f"{type(e).__name__}: {first_line(e)}"}
    r["times"]["oracle"] = round(time.perf_counter() - t, 3)
    stage("weighted")

    t = time.perf_counter()
    try:  # (one initialisation, torch's defaults: whether every layer has a rule, not what the map says)
        edgewise.weighted_pathways(model, shape, n_inits=1, init="default")
        r["weighted"] = {"status": "ok"}
    except EdgewiseError as e:
        r["weighted"] = {"status": "refused", "error": first_line(e),
                         "reason": first_line(e).removeprefix("weighted paths: ").split(" (")[0].split(";")[0]}
    except Exception as e:
        r["weighted"] = {"status": "error", "error": f"{type(e).__name__}: {first_line(e)}"}
    r["times"]["weighted"] = round(time.perf_counter() - t, 3)
    stage("done")
    return r


# ------------------------------------------------------------------------------------------------ the sweep

def _worker(family: str, picked: dict | None, size: int, threads: int, conn) -> None:
    """One family in a forked process: pick (unless cached), then :func:`check_model`, reporting each stage."""
    try:
        torch.set_num_threads(threads)
        if picked is None:
            t = time.perf_counter()
            picked = pick(family)
            picked["seconds"] = round(time.perf_counter() - t, 2)
        conn.send(("picked", picked))
        conn.send(("partial", check_model(picked["model"], size, lambda r: conn.send(("partial", r)))))
        conn.send(("done", None))
    except BaseException as e:  # noqa: BLE001 -- report anything, the parent decides
        try:
            conn.send(("error", f"{type(e).__name__}: {first_line(e)}"))
        except Exception:
            pass
    finally:
        conn.close()


class _Job:
    def __init__(self, family, picked, size, threads, ctx):
        self.family, self.picked = family, picked
        self.recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_worker, args=(family, picked, size, threads, send), daemon=True)
        self.proc.start()
        send.close()
        self.started = time.perf_counter()
        self.deadline = None  # set once the pick is known: the time limit covers the checks only
        self.checking = None  # when the checks began
        self.result: dict = {}
        self.finished = False
        self.error = None

    def drain(self, timeout_s: float, pick_limit: float) -> None:
        try:
            while self.recv.poll():
                kind, payload = self.recv.recv()
                if kind == "picked":
                    self.picked = payload
                    self.checking = time.perf_counter()
                    self.deadline = self.checking + timeout_s
                elif kind == "partial":
                    self.result = payload
                elif kind == "done":
                    self.finished = True
                elif kind == "error":
                    self.error, self.finished = payload, True
        except (EOFError, OSError):
            self.finished = True
        if self.deadline is None and time.perf_counter() - self.started > pick_limit:
            self.deadline = time.perf_counter()  # picking hung: give up on this family


def run_sweep(fams: list[str], size: int = 64, timeout_s: float = 150.0, jobs: int = 1, progress: bool = True,
              repick: bool = False, pick_limit: float = 300.0, picks_path: Path = PICKS) -> list[dict]:
    """Check one model per family (see the module docstring); one result dict per family, in order.
    The picks are read from and written back to ``picks_path``."""
    import tqdm

    picks = {} if repick else load_picks(picks_path)
    ctx = mp.get_context("fork")  # the parent has imported torch, timm and edgewise once; each child starts warm
    threads = max(1, (os.cpu_count() or 1) // jobs)  # no oversubscription: timings stay comparable
    todo = collections.deque(fams)
    running: list[_Job] = []
    results: dict[str, dict] = {}
    bar = tqdm.tqdm(total=len(fams), desc="timm families", unit="family", disable=not progress, file=sys.stderr)
    try:
        while todo or running:
            while todo and len(running) < jobs:
                fam = todo.popleft()
                running.append(_Job(fam, picks.get(fam), size, threads, ctx))
            mp.connection.wait([j.recv for j in running] + [j.proc.sentinel for j in running], timeout=0.5)
            for job in list(running):
                job.drain(timeout_s, pick_limit)
                timed_out = job.deadline is not None and time.perf_counter() > job.deadline and not job.finished
                dead = not job.proc.is_alive() and not job.finished
                if dead:
                    job.drain(timeout_s, pick_limit)  # messages sent just before exiting
                    dead = not job.finished
                if not (job.finished or timed_out or dead):
                    continue
                if job.proc.is_alive():
                    job.proc.kill()
                job.proc.join()
                job.recv.close()
                running.remove(job)
                results[job.family] = _record(job, timed_out and not dead, timeout_s)
                if job.picked:
                    picks[job.family] = {k: v for k, v in job.picked.items() if k != "seconds"}
                bar.update(1)
                bar.set_postfix(traced=sum(r["status"] == "traced" for r in results.values()), refresh=False)
    finally:
        bar.close()
        for job in running:
            job.proc.kill()
        save_picks({f: p for f, p in picks.items() if p}, picks_path)
    return [results[f] for f in fams]


def _record(job: _Job, timed_out: bool, timeout_s: float) -> dict:
    r = dict(job.result) if job.result else {"model": (job.picked or {}).get("model"), "times": {}}
    r["family"] = job.family
    r["pick"] = job.picked
    r["seconds"] = round(time.perf_counter() - (job.checking or job.started), 2)  # the checks, without picking
    if timed_out:
        where = r.get("stage", "pick")
        if r.get("status") == "traced":  # traced, but a later check ran out of time
            if where == "receptive_field":
                r["rf"] = {"status": "timeout"}
            if where in ("pathways", "oracle"):
                r["oracle"] = {"status": f"timeout ({where})"}
            if where == "weighted":
                r["weighted"] = {"status": "timeout"}
        else:
            r.update(status="timeout", reason=f"timeout in {where} (> {timeout_s:g} s)")
    elif job.error is not None:
        r.update(status="sweep-error", error=job.error, reason="sweep error")
    elif not job.finished or r.get("stage") != "done":
        code = job.proc.exitcode
        r.update(status="crashed", reason=f"process died (exit code {code})", stage=r.get("stage"))
    return r


# ------------------------------------------------------------------------------------------------ summary

def summarize(results: list[dict]) -> dict:
    n = len(results)
    status = collections.Counter(r["status"] for r in results)
    reasons = collections.Counter(r.get("reason", "?") for r in results if r["status"] != "traced")
    places: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        if r["status"] != "traced" and r.get("where"):
            places[r.get("reason", "?")][r["where"]] += 1
    traced = [r for r in results if r["status"] == "traced"]
    oracle = collections.Counter(r.get("oracle", {}).get("status", "not run") for r in traced)
    oracle_reasons = collections.Counter(r["oracle"].get("reason", "?") for r in traced
                                         if r.get("oracle", {}).get("status") == "oracle-refused")
    rf = collections.Counter(r.get("rf", {}).get("status", "not run") for r in traced)
    weighted = collections.Counter(r.get("weighted", {}).get("status", "not run") for r in traced)
    weighted_reasons = collections.Counter(r["weighted"].get("reason", "?") for r in traced
                                           if r.get("weighted", {}).get("status") == "refused")
    compared = oracle["match"] + oracle["mismatch"]
    times = sorted(r.get("seconds", 0.0) for r in results)

    def pct(k, d):
        return round(100.0 * k / d, 1) if d else 0.0

    return {
        "families": n, "status": dict(status), "traced": len(traced), "traced_pct": pct(len(traced), n),
        "refused": status["refused"], "refused_pct": pct(status["refused"], n),
        "not_refused_failures": {k: v for k, v in status.items() if k not in ("traced", "refused")},
        "reasons": reasons.most_common(),
        "reason_places": {k: v.most_common() for k, v in places.items()},
        "receptive_field": dict(rf), "oracle": dict(oracle),
        "oracle_compared": compared, "oracle_match": oracle["match"],
        "oracle_match_pct_of_compared": pct(oracle["match"], compared),
        "oracle_match_pct_of_traced": pct(oracle["match"], len(traced)),
        "oracle_refusal_reasons": oracle_reasons.most_common(),
        "weighted": dict(weighted), "weighted_refusal_reasons": weighted_reasons.most_common(),
        "seconds_per_family": {"median": times[len(times) // 2] if times else 0.0, "max": times[-1] if times else 0.0},
    }


def markdown(summary: dict, results: list[dict], meta: dict, per_family: bool = False, top: int = 12) -> str:
    s = summary
    lines = [f"timm {meta['timm']}, torch {meta['torch']}, edgewise at {meta['commit']}, {meta['date']}; input "
             f"3x{meta['input']}x{meta['input']} (or the model's own size), {meta['timeout']:g} s per model, "
             f"{meta['seconds']:.0f} s in all", "",
             "| families | traced | refused | other failures | traced = oracle | oracle refused | mismatch "
             "| errors after tracing |", "|---|---|---|---|---|---|---|---|"]
    other = ", ".join(f"{k} {v}" for k, v in sorted(s["not_refused_failures"].items())) or "0"
    o = s["oracle"]
    after = [f"{k} {v}" for k, v in sorted(o.items()) if k not in ("match", "mismatch", "oracle-refused")]
    after += [f"receptive_field {k} {v}" for k, v in sorted(s["receptive_field"].items()) if k != "ok"]
    lines.append(f"| {s['families']} | {s['traced']} ({s['traced_pct']} %) | {s['refused']} ({s['refused_pct']} %) | "
                 f"{other} | {s['oracle_match']}/{s['oracle_compared']} compared "
                 f"({s['oracle_match_pct_of_compared']} %) | {o.get('oracle-refused', 0)} | {o.get('mismatch', 0)} | "
                 f"{', '.join(after) or 0} |")
    lines += ["", "| reason a family is not traced | families | where (most common) |", "|---|---|---|"]
    for r, k in s["reasons"][:top]:
        places = s.get("reason_places", {}).get(r, [])
        where = ", ".join(f"`{p}`" + (f" ×{n}" if n > 1 else "") for p, n in places[:2])
        lines.append(f"| {r.replace('|', '/')} | {k} | {where} |")
    if len(s["reasons"]) > top:
        lines.append(f"| ({len(s['reasons']) - top} more) | {sum(k for _, k in s['reasons'][top:])} | |")
    if s["oracle_refusal_reasons"]:
        lines += ["", "| why the oracle refused a traced model | models |", "|---|---|"]
        lines += [f"| {r.replace('|', '/')} | {k} |" for r, k in s["oracle_refusal_reasons"]]
    w = s.get("weighted", {})
    if w:
        lines += ["", f"Weighted paths (`edgewise.weighted_pathways`, one initialisation) of the traced: "
                      f"{w.get('ok', 0)} computed, {w.get('refused', 0)} refused, "
                      f"{sum(v for k, v in w.items() if k not in ('ok', 'refused'))} other."]
        if s["weighted_refusal_reasons"]:
            lines += ["", "| why the weighted paths were refused | models |", "|---|---|"]
            lines += [f"| {r.replace('|', '/')} | {k} |" for r, k in s["weighted_refusal_reasons"]]
    if per_family:
        lines += ["", "| family | model | input | status | reason / oracle | seconds |", "|---|---|---|---|---|---|"]
        for r in results:
            what = r.get("reason", "") if r["status"] != "traced" else r.get("oracle", {}).get("status", "")
            shape = "x".join(map(str, r.get("input", []))) or "-"
            lines.append(f"| {r['family']} | {r.get('model')} | {shape} | {r['status']} | {what.replace('|', '/')} | "
                         f"{r.get('seconds', 0):.1f} |")
    return "\n".join(lines)


def _commit(where: Path) -> str:
    """Short commit of the git checkout holding ``where`` (+dirty when it has uncommitted changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", type=int, metavar="N", help="a random sample of N families (seeded), default all")
    ap.add_argument("--only", metavar="F1,F2", help="these families only (comma-separated module names)")
    ap.add_argument("--input", type=int, default=64, metavar="S", help="input side S: 3xSxS (default 64)")
    ap.add_argument("--timeout", type=float, default=150.0, metavar="SEC", help="per model (default 150)")
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                    help="families checked at once, one single-threaded process each (default: CPUs, at most 4)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"JSON results (default {DEFAULT_OUT.relative_to(HERE.parent)})")
    ap.add_argument("--repick", action="store_true", help="recompute the smallest model of every family")
    ap.add_argument("--picks", type=Path, default=PICKS, help="cache of the picks (default results/timm_picks.json)")
    ap.add_argument("--per-family", action="store_true", help="print one table row per family too")
    ap.add_argument("--seed", type=int, default=SEED, help="seed of the --families sample (default 0)")
    ap.add_argument("--label", help="what edgewise was measured (default: the commit of its git checkout)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    if argv is None:  # run as a script: `kill` unwinds like Ctrl-C, so the workers are stopped too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import timm

    import edgewise

    fams = families()
    if args.only:
        wanted = [f.strip() for f in args.only.split(",") if f.strip()]
        unknown = [f for f in wanted if f not in fams]
        if unknown:
            ap.error(f"unknown families {unknown}; timm has {', '.join(fams)}")
        fams = wanted
    if args.families is not None:
        if args.families < 1:
            ap.error("--families must be at least 1")
        fams = sorted(random.Random(args.seed).sample(fams, min(args.families, len(fams))))
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")

    t = time.perf_counter()
    results = run_sweep(fams, args.input, args.timeout, args.jobs, not args.no_progress, args.repick,
                        picks_path=args.picks)
    seconds = time.perf_counter() - t
    source = Path(edgewise.__file__).resolve().parent
    meta = {"date": datetime.date.today().isoformat(), "commit": args.label or _commit(source),
            "edgewise_path": str(source), "timm": timm.__version__,
            "torch": torch.__version__, "edgewise": getattr(edgewise, "__version__", "?"),
            "python": platform.python_version(), "cpus": os.cpu_count(), "input": args.input,
            "timeout": args.timeout, "jobs": args.jobs, "seconds": round(seconds, 1),
            "families_sampled": args.families, "seed": args.seed, "only": args.only,
            "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])])}
    summary = summarize(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=1,
                                   default=str) + "\n")
    print(markdown(summary, results, meta, args.per_family))
    print(f"\nresults: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

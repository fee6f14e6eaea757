"""Where runs execute: in this process, in a local process pool, or on Ray (optional extra).

Every backend takes the same jobs and reports to the same two callbacks, so the runner does not care which
one runs: ``on_progress(index, done, total)`` as a run trains and ``on_done(index, result)`` when it ends.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import queue as queue_mod
import time
from typing import Callable

import torch

from .._threads import cores
from ..errors import EdgewiseError

__all__ = ["BACKENDS", "execute", "run_jobs"]

BACKENDS = ("inprocess", "process", "ray")

OnProgress = Callable[[int, int, int], None]
OnDone = Callable[[int, dict], None]


def execute(job: dict, report: Callable[[int, int], None] | None = None) -> dict:
    """Run one job (task, config, remedy, seed, threads, checkpoint); return ``metrics`` or ``error``, and ``seconds``.

    An EdgewiseError (a remedy that does not fit the task's model) is a result, not a failure of the sweep.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(job["threads"])  # results depend (slightly) on it: fixed per run, whatever the backend
    start = time.perf_counter()
    try:
        metrics = job["task"].run_one(job["config"], job["remedy"], job["seed"], progress=report,
                                      checkpoint=job.get("checkpoint"))
        out = {"metrics": metrics}
    except EdgewiseError as e:
        out = {"error": str(e)}
    finally:
        torch.set_num_threads(before)
    out["seconds"] = time.perf_counter() - start
    return out


def default_workers(backend: str) -> int:
    """One worker per core for the pools, one for the in-process backend."""
    return 1 if backend == "inprocess" else cores()


def run_jobs(jobs: list[dict], backend: str, workers: int | None, on_progress: OnProgress, on_done: OnDone) -> None:
    """Execute ``jobs`` on ``backend`` with ``workers`` workers, reporting through the callbacks."""
    if backend not in BACKENDS:
        raise EdgewiseError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    workers = workers or default_workers(backend)
    if workers < 1:
        raise EdgewiseError(f"workers must be at least 1, got {workers}")
    if not jobs:
        return
    {"inprocess": _inprocess, "process": _pool, "ray": _ray}[backend](jobs, workers, on_progress, on_done)


def _inprocess(jobs, workers, on_progress, on_done):
    for job in jobs:
        i = job["index"]
        on_done(i, execute(job, lambda d, t, i=i: on_progress(i, d, t)))


# the progress queue of a pool worker (set by the pool's initializer)
_QUEUE = None


def _init_worker(q) -> None:
    global _QUEUE
    _QUEUE = q


def _pool_execute(job: dict) -> dict:
    i = job["index"]
    return execute(job, lambda d, t: _QUEUE.put((i, d, t)))


def _drain(q, on_progress) -> None:
    while True:
        try:
            on_progress(*q.get_nowait())
        except queue_mod.Empty:
            return


def _pool(jobs, workers, on_progress, on_done):
    # spawn, not fork: a forked child of a process that has started OpenMP threads can hang
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    before = set(mp.active_children())
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(q,))
    try:
        futures = {pool.submit(_pool_execute, job): job["index"] for job in jobs}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            _drain(q, on_progress)
            for f in done:
                on_done(futures[f], f.result())
    except BaseException:
        _stop(pool, before)
        raise
    pool.shutdown()


def _stop(pool: cf.ProcessPoolExecutor, before: set, patience: float = 60.0) -> None:
    """Stop the pool's workers now (Ctrl-C or an error: a running job would otherwise finish first).

    The workers are taken before shutdown, which drops the executor's reference to them. The pool's manager thread
    is joined at the end: it reaps the workers too, and one it reaps while we poll can look alive to the caller.
    """
    workers = set((getattr(pool, "_processes", None) or {}).values())
    for p in workers:
        p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + patience
    while workers and time.monotonic() < deadline:
        for p in workers:
            p.join(timeout=1)
            if p.is_alive():  # SIGTERM not honoured in time (a worker deep in an import): make sure
                p.kill()
        workers = {p for p in workers | set(mp.active_children()) if p not in before and p.is_alive()}
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:  # it exits once its workers are gone
        manager.join(timeout=max(deadline - time.monotonic(), 1.0))


def _ray(jobs, workers, on_progress, on_done):
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError as e:
        raise EdgewiseError("the ray backend needs Ray: pip install 'edgewise[ray]'") from e
    started = not ray.is_initialized()
    if started:  # a local instance; connect to a cluster by calling ray.init(address=...) before the sweep
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    q = Queue()
    remote = ray.remote(num_cpus=1)(_ray_execute)
    refs: dict = {}
    try:
        refs = {remote.remote(job, q): job["index"] for job in jobs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            while not q.empty():
                on_progress(*q.get())
            for r in done:
                on_done(refs[r], ray.get(r))
    except BaseException:
        for r in refs:
            ray.cancel(r, force=True)
        raise
    finally:
        q.shutdown()
        if started:
            ray.shutdown()


def _ray_execute(job: dict, q) -> dict:
    i = job["index"]
    return execute(job, lambda d, t: q.put((i, d, t)))

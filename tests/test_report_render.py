"""The figure worker: the same page and the same PNG bytes as drawing in this process, and every figure drawn
even when the worker cannot draw it (a figure that does not pickle, a worker that died)."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from matplotlib.ticker import FuncFormatter

from edgewise.report import builder, render
from edgewise.report.figures import new_figure, save_figure


def _figure(title: str, local_formatter: bool = False):
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    ax.plot(np.arange(10), np.arange(10) ** 2, label=title)
    ax.set_title(title)
    ax.set_xlabel("position")
    ax.set_ylabel("paths")
    if local_formatter:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))  # a lambda: does not pickle
    return fig


def _png(fig, path) -> bytes:
    return save_figure(fig, path)[0].read_bytes()


def test_the_worker_writes_the_bytes_this_process_would(tmp_path):
    figs = [_figure(f"figure {i}") for i in range(3)] + [_figure("local", local_formatter=True)]
    r = render.Renderer(parallel=True)
    try:
        html = [r.figure(f, tmp_path / "worker" / f"f{i}", f"f{i}", f"caption {i}")[0] for i, f in enumerate(figs)]
        assert [h.startswith("\x00") for h in html] == [True, True, True, False]  # the lambda is drawn here
        page = r.fill("<main>" + "".join(html) + "</main>")
    finally:
        r.close()
    assert "\x00" not in page and page.count("<figure") == 4
    for i, f in enumerate(figs):
        assert (tmp_path / "worker" / f"f{i}.png").read_bytes() == _png(f, tmp_path / "here" / f"f{i}")
        assert f'id="f{i}"' in page and f"caption {i}" in page


def test_figures_the_worker_did_not_write_are_drawn_here(tmp_path):
    r = render.Renderer(parallel=True)
    r._proc.kill()  # the worker dies before it draws anything
    r._proc.wait()
    text = r.figure(_figure("lost"), tmp_path / "lost", "lost", "drawn after all")[0]
    page = r.fill(text)
    r.close()
    assert 'id="lost"' in page and (tmp_path / "lost.png").read_bytes() == _png(_figure("lost"), tmp_path / "x")


def test_close_stops_the_worker_of_a_failed_report(tmp_path):
    r = render.Renderer(parallel=True)
    r.figure(_figure("never shown"), tmp_path / "a", "a", "a")
    proc = r._proc
    r.close()
    assert proc.poll() is not None
    r.close()  # twice is harmless


def test_a_script_without_a_main_guard_can_use_the_worker(tmp_path):
    """The worker is a fresh interpreter: the caller's script is not imported again (multiprocessing's spawn
    would, and fail)."""
    script = tmp_path / "plain.py"
    script.write_text(textwrap.dedent(f"""
        from pathlib import Path
        from edgewise.report.figures import new_figure
        from edgewise.report.render import Renderer
        fig = new_figure(3, 2)
        fig.add_subplot().plot([0, 1], [1, 0])
        r = Renderer(parallel=True)
        text, png = r.figure(fig, Path({str(tmp_path)!r}) / "fig", "fig", "a figure")
        assert text.startswith("\\x00"), text
        print(r.fill(text)[:8])
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "<figure" and (tmp_path / "fig.png").stat().st_size > 0


def test_a_report_drawn_by_the_worker_is_the_report_drawn_here(tmp_path, monkeypatch):
    def built(folder, parallel):
        monkeypatch.setattr(builder, "worth_a_worker", lambda: parallel)
        report = builder.build("4*conv3", (1, 16, 16), out=tmp_path / folder, n_inits=4, remedy_inits=0,
                               progress=False)
        page = re.sub(r"computed in \d+ s", "computed in N s", report.path.read_text())
        return page, {p.name: p.read_bytes() for p in (tmp_path / folder / "figures").glob("*.png")}

    here, worker = built("here", False), built("worker", True)
    assert here[0] == worker[0] and "\x00" not in worker[0]
    assert here[1] == worker[1] and len(worker[1]) >= 8


@pytest.mark.parametrize("env, threads, cores, expected", [
    ("1", 1, 2, True), ("0", 1, 2, False), ("1", 2, 2, False), ("1", 1, 1, False), ("1", 3, 8, True)])
def test_a_worker_only_where_a_core_is_free(monkeypatch, env, threads, cores, expected):
    import edgewise._threads as th

    monkeypatch.setenv(render.ENV, env)
    monkeypatch.setattr(th, "cores", lambda: cores)
    monkeypatch.setattr(render.torch, "get_num_threads", lambda: threads)
    assert render.worth_a_worker() is expected


def test_fill_can_be_called_once_per_part_and_draws_each_figure_once(tmp_path, monkeypatch):
    r = render.Renderer(parallel=True)
    texts = [r.figure(_figure(f"part {i}"), tmp_path / f"p{i}", f"p{i}", f"part {i}")[0] for i in range(3)]
    first = r.fill(texts[0])
    saved = []
    monkeypatch.setattr(render, "save_figure", lambda fig, path: saved.append(path))
    rest = [r.fill(t) for t in texts[1:]]
    r.close()
    assert saved == [] and 'id="p0"' in first and ['id="p1"' in rest[0], 'id="p2"' in rest[1]] == [True, True]

"""The torch thread count: its default, the --threads / $EDGEWISE_THREADS override, and that it is restored."""

import pytest
import torch

from edgewise import _threads, cli
from edgewise.errors import EdgewiseError


@pytest.mark.parametrize("n_cores, expected", [(1, 1), (2, 1), (4, 3), (16, 15)])
def test_default_leaves_one_core_free(monkeypatch, n_cores, expected):
    monkeypatch.setattr(_threads, "cores", lambda: n_cores)
    monkeypatch.delenv(_threads.ENV, raising=False)
    assert _threads.default_threads() == expected
    assert _threads.resolve_threads(None) == expected


def test_explicit_value_beats_the_environment_which_beats_the_default(monkeypatch):
    monkeypatch.setattr(_threads, "cores", lambda: 8)
    monkeypatch.setenv(_threads.ENV, "3")
    assert _threads.resolve_threads(None) == 3
    assert _threads.resolve_threads("5") == 5
    assert _threads.resolve_threads(2) == 2
    monkeypatch.setenv(_threads.ENV, "")
    assert _threads.resolve_threads(None) == 7


@pytest.mark.parametrize("value, message", [("0", "at least 1, got 0"), ("-2", "at least 1, got -2"),
                                            ("two", "whole number of threads, got 'two'"),
                                            ("1.5", "whole number of threads, got '1.5'")])
def test_bad_values_are_refused(monkeypatch, value, message):
    with pytest.raises(EdgewiseError, match=message):
        _threads.resolve_threads(value)
    monkeypatch.setenv(_threads.ENV, value)
    with pytest.raises(EdgewiseError, match=message):
        _threads.resolve_threads(None)


def test_using_threads_restores_even_after_an_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError):
        with _threads.using_threads(target):
            assert torch.get_num_threads() == target
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def _seen_threads(monkeypatch, argv) -> int:
    seen = {}

    def handler(args, out, err):
        seen["threads"] = torch.get_num_threads()
        return 0

    monkeypatch.setattr(cli, "_cmd_paths", handler)
    before = torch.get_num_threads()
    assert cli.main(argv) == 0
    assert torch.get_num_threads() == before  # the command's setting does not leak into the caller
    return seen["threads"]


def test_the_cli_runs_commands_with_the_chosen_threads(monkeypatch):
    monkeypatch.delenv(_threads.ENV, raising=False)
    monkeypatch.setattr(_threads, "cores", lambda: 3)
    assert _seen_threads(monkeypatch, ["paths", "4*conv3", "--input", "1x16"]) == 2
    assert _seen_threads(monkeypatch, ["paths", "4*conv3", "--input", "1x16", "--threads", "1"]) == 1
    monkeypatch.setenv(_threads.ENV, "1")
    assert _seen_threads(monkeypatch, ["paths", "4*conv3", "--input", "1x16"]) == 1


def test_the_cli_refuses_bad_threads_in_one_line(capsys):
    assert cli.main(["paths", "4*conv3", "--input", "1x16", "--threads", "0"]) == 2
    assert "threads must be at least 1, got 0" in capsys.readouterr().err


def test_experiment_threads_are_per_run_and_default_to_one(monkeypatch, tmp_path):
    import edgewise.experiments as experiments

    seen = []

    def fake_run(task, remedies, seeds, size, **kw):
        seen.append(kw["threads"])
        raise EdgewiseError("stopped here")

    monkeypatch.setattr(experiments, "run", fake_run)
    monkeypatch.setattr(_threads, "cores", lambda: 8)
    for argv, expected in [([], 1), (["--threads", "3"], 3)]:
        assert cli.main(["experiment", "absolute-position", "--out", str(tmp_path / str(expected)), *argv]) == 2
        assert seen[-1] == expected

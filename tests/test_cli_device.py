"""`--device` on the commands that run the model (sensitivity, visualize, probe): checked before any work with
one clear line, and handed to the engine as a torch.device (no GPU here: the CPU stands in for it); and every
engine's ``device=`` in Python checked by the same rule."""

from __future__ import annotations

import json

import pytest
import torch

import edgewise.probe as probe_package
import edgewise.sensitivity as sensitivity_module
import edgewise.visualize.analysis as analysis_module
import edgewise
from edgewise.cli import main
from edgewise.errors import EdgewiseError

SENSITIVITY = ["sensitivity", "4*conv3", "--input", "1x9", "--inits", "2"]
VISUALIZE = ["visualize", "2*conv3", "--input", "1x8x8", "--layer", "conv1", "--steps", "1", "--seeds", "2"]
PROBE = ["probe", "bias", "conv3/c4, conv3/c4", "--input", "1x12x12", "-n", "2", "--data", "noise",
         "--no-blind-spots", "--no-progress"]


def _spy(monkeypatch, module, name) -> list:
    """The ``device`` keyword of every call of ``module.name`` (which still runs)."""
    seen, real = [], getattr(module, name)

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


@pytest.mark.parametrize("argv, module, name", [
    (SENSITIVITY, sensitivity_module, "init_sensitivity"),
    (SENSITIVITY + ["--weights"], sensitivity_module, "gradient_map"),
    (SENSITIVITY + ["--perturb"], sensitivity_module, "perturbation"),
    (VISUALIZE, analysis_module, "maximize"),
    (PROBE, probe_package, "bias"),
], ids=["sensitivity", "weights", "perturb", "visualize", "probe"])
def test_the_device_reaches_the_engine_and_changes_no_number(tmp_path, capsys, monkeypatch, argv, module, name):
    def result(extra, out):
        assert main([*argv, "--json", "--out", str(tmp_path / out), *extra]) == 0
        return json.loads(capsys.readouterr().out)

    default = result([], "a")
    seen = _spy(monkeypatch, module, name)
    on_cpu = result(["--device", "cpu"], "b")
    assert seen and all(d == torch.device("cpu") for d in seen)
    for doc in (default, on_cpu):
        doc.pop("out", None)
        for part in doc.values():
            if isinstance(part, dict):
                part.pop("seconds", None)
    assert json.dumps(on_cpu, sort_keys=True).replace(str(tmp_path / "b"), "") == \
        json.dumps(default, sort_keys=True).replace(str(tmp_path / "a"), "")


@pytest.mark.parametrize("device, fragment", [
    ("gpu7", "is not a torch device"),
    ("meta", "holds shapes but no numbers"),
    pytest.param("cuda", "is not available here",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here")),
])
@pytest.mark.parametrize("argv", [SENSITIVITY, VISUALIZE, PROBE], ids=["sensitivity", "visualize", "probe"])
def test_a_device_that_cannot_be_used_is_one_line_before_any_work(tmp_path, capsys, monkeypatch, argv, device,
                                                                  fragment):
    monkeypatch.setattr(sensitivity_module, "init_sensitivity", lambda *a, **k: pytest.fail("ran anyway"))
    monkeypatch.setattr(analysis_module, "maximize", lambda *a, **k: pytest.fail("ran anyway"))
    monkeypatch.setattr(probe_package, "bias", lambda *a, **k: pytest.fail("ran anyway"))
    assert main([*argv, "--device", device, "--out", str(tmp_path / "o")]) == 2
    out, err = capsys.readouterr()
    err = " ".join(err.split())  # the console wraps long lines
    assert not out and err.startswith(f"edgewise {argv[0]}: error: --device: ") and fragment in err
    assert "Traceback" not in err and (device == "meta" or "leave out --device" in err)


ENGINES = {
    "pathways": lambda device: edgewise.pathways("3*conv3", (1, 8, 8), device=device),
    "init_sensitivity": lambda device: sensitivity_module.init_sensitivity("3*conv3", (1, 8, 8), n_inits=2,
                                                                           device=device),
    "gradient_map": lambda device: sensitivity_module.gradient_map("3*conv3", (1, 8, 8), device=device),
    "perturbation": lambda device: sensitivity_module.perturbation("3*conv3", (1, 8, 8), device=device),
    "maximize": lambda device: edgewise.visualize.maximize(edgewise.nets.from_spec("2*conv3", (1, 8, 8)),
                                                           edgewise.visualize.unit("conv2", 0), (1, 8, 8), seeds=1, steps=1,
                                                           device=device),
    "probe": lambda device: probe_package.bias("conv3/c4", (1, 12, 12), n=2, data="noise", progress=False,
                                               device=device),
}


@pytest.mark.parametrize("name", ENGINES)
@pytest.mark.parametrize("device, fragment", [("gpu7", "is not a torch device"),
                                              ("meta", "holds shapes but no numbers")])
def test_every_engine_refuses_a_device_it_cannot_use_with_an_edgewise_error(name, device, fragment):
    with pytest.raises(EdgewiseError, match=fragment):
        ENGINES[name](device)


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_runs_on_an_explicit_cpu(name):
    ENGINES[name](torch.device("cpu"))

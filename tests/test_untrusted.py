"""Files edgewise reads back and code it is pointed at: a planted or damaged cache never runs code or crashes a
sweep, and a model factory's mistakes are the user's clear error, never a silent exit."""

import dataclasses
import json

import pytest
import torch

from edgewise import EdgewiseError
from edgewise.cli import main
from edgewise.errors import EdgewiseWarning
from edgewise.experiments import run, run_key
from edgewise.models import load
from edgewise.testing import toy_task
from edgewise.testing.toy_task import TOY


class Planted:
    """A pickle that, if unpickled, creates ``marker``: what an attacker's checkpoint would do with os.system."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def strip(exp):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in exp.runs]


def key(**overrides):
    return run_key(TOY.name, TOY.config("quick", **overrides), "same", 0)


def test_planted_checkpoint_runs_no_code_and_the_run_starts_over(tmp_path):
    clean = run(TOY, "same", seeds=1, progress=False)
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "out" / "runs" / f"{key()}.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": Planted(marker)}, ckpt)
    with pytest.warns(EdgewiseWarning, match=f"ignoring the checkpoint {ckpt}"):
        again = run(TOY, "same", seeds=1, out=tmp_path / "out", progress=False)
    assert not marker.exists()
    assert strip(again) == strip(clean)


@pytest.mark.parametrize("content", [
    b"not a checkpoint at all",
    "truncated",
    {"model": {}, "optimizer": {}, "losses": [0.5]},  # layout: no generator, no state
    "foreign",  # another model's weights: right layout, wrong shapes
])
def test_damaged_checkpoint_is_named_and_recomputed(tmp_path, content):
    clean = run(TOY, "same", seeds=1, progress=False, epochs=3)
    ckpt = tmp_path / "runs" / f"{key(epochs=3)}.ckpt"

    def stop_after_epoch_1(config, remedy, seed, progress=None, checkpoint=None):
        def report(done, total):
            if done == 1:
                raise KeyboardInterrupt
        return toy_task.run_one(config, remedy, seed, report, checkpoint)

    with pytest.raises(KeyboardInterrupt):
        run(dataclasses.replace(TOY, run_one=stop_after_epoch_1), "same", seeds=1, out=tmp_path, progress=False,
            epochs=3)
    good = ckpt.read_bytes()
    if content == "truncated":
        ckpt.write_bytes(good[:len(good) // 2])
    elif content == "foreign":
        doc = torch.load(ckpt, weights_only=True)
        doc["model"] = {k: torch.zeros(*v.shape, 2) for k, v in doc["model"].items()}
        torch.save(doc, ckpt)
    elif isinstance(content, dict):
        torch.save(content, ckpt)
    else:
        ckpt.write_bytes(content)
    with pytest.warns(EdgewiseWarning, match=f"ignoring the checkpoint {ckpt}"):
        again = run(TOY, "same", seeds=1, out=tmp_path, progress=False, epochs=3)
    assert strip(again) == strip(clean)


def test_a_good_checkpoint_still_resumes_without_a_warning(tmp_path, recwarn):
    """weights_only loading keeps everything a checkpoint needs (Adam state, generator, losses)."""
    saved = tmp_path / "c.ckpt"
    model = torch.nn.Linear(3, 2)
    from edgewise.experiments.train import fit

    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 4)
    fit(model, x, y, epochs=1, batch_size=4, lr=0.1, seed=0, checkpoint=saved)
    seen = []
    fit(model, x, y, epochs=2, batch_size=4, lr=0.1, seed=0, checkpoint=saved,
        progress=lambda done, total: seen.append(done))
    assert seen == [1, 2]
    assert not [w for w in recwarn if issubclass(w.category, EdgewiseWarning)]


@pytest.mark.parametrize("record", [
    "{not json",
    json.dumps([1, 2]),
    json.dumps({"remedy": "same", "seed": 0, "key": "0" * 16, "seconds": 1, "metrics": {"accuracy": {"test": 1}}}),
    json.dumps({"remedy": "same", "seed": 0, "key": "KEY", "seconds": 1, "metrics": {"accuracy": "all of it"}}),
    json.dumps({"remedy": "same", "seed": 0, "key": "KEY", "seconds": 1}),
])
def test_damaged_run_record_is_named_and_recomputed(tmp_path, record):
    clean = run(TOY, "same", seeds=1, progress=False)
    path = tmp_path / "runs" / f"{key()}.json"
    path.parent.mkdir(parents=True)
    path.write_text(record.replace("KEY", key()))
    with pytest.warns(EdgewiseWarning, match=f"ignoring the cached run {path}"):
        again = run(TOY, "same", seeds=1, out=tmp_path, progress=False)
    assert strip(again) == strip(clean)
    assert json.loads(path.read_text())["metrics"] == clean.runs[0]["metrics"]


FACTORIES = {
    "exits": ("import sys\ndef make():\n    sys.exit(0)\n", ["called sys.exit(0)"]),
    "nothing": ("import torch.nn as nn\ndef make():\n    net = nn.Conv2d(1, 1, 3)\n",
                ["returned NoneType", "return model"]),
    "raises": ("import torch.nn as nn\n\ndef make():\n    raise RuntimeError('my bug')\n",
               ["RuntimeError: my bug", "line 4"]),
    "syntax": ("def make(:\n    pass\n", ["syntax error", "line 1"]),
    "body": ("x = 1 / 0\n", ["ZeroDivisionError", "line 1"]),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_model_factory_mistakes_are_the_users_clear_error(tmp_path, monkeypatch, capsys, name):
    code, fragments = FACTORIES[name]
    path = tmp_path / f"user_{name}.py"
    path.write_text(code)
    with pytest.raises(EdgewiseError) as e:
        load(f"{path}:make")
    for fragment in fragments:
        assert fragment in str(e.value)
    if name != "nothing":
        assert str(path) in str(e.value)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EdgewiseError, match=fragments[0].replace("(", r"\(").replace(")", r"\)")):
        load(f"user_{name}:make")
    assert main(["rf", f"{path}:make", "--input", "1x9x9"]) == 2  # an error exit, never a silent 0
    err = capsys.readouterr().err
    assert "error:" in err and "internal error" not in err

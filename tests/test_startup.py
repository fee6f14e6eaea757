"""Start-up (issue 17): importing edgewise pulls in no plotting, no torch._dynamo and no torchvision, and the
sensitivity engines' dynamo-free vector-Jacobian product gives torch.func.vjp's numbers bit for bit."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgewise import nets
from edgewise import sensitivity as S
from edgewise.testing.random_nets import BLOCKS, random_net

HEAVY = ("matplotlib", "torch._dynamo", "torchvision")


def _loaded_after(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", ["import edgewise", "import edgewise.cli",
                                  "from edgewise.report._format import fmt_ratio",
                                  "from edgewise.cli import _parser; _parser()"])
def test_importing_edgewise_loads_no_plotting_dynamo_or_torchvision(code):
    """Every command pays for what `import edgewise` loads: plotting and the rest load where they are used."""
    assert _loaded_after(code) == []


def test_the_report_package_still_exports_its_names():
    import edgewise.report as report
    from edgewise.report import figures

    assert report.save_figure is figures.save_figure and "build" in dir(report) and callable(report.build)
    code = "import edgewise; print(edgewise.report.figures.STYLE is not None, edgewise.report.draw_diagram.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "draw_diagram"], done.stderr[-2000:]  # submodules without an import
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        report.nope  # noqa: B018


def test_the_sensitivity_engines_do_not_import_dynamo():
    """The Monte-Carlo (vmap and loop), gradient and perturbation engines run without torch._dynamo (about a
    second of a fresh process's start-up)."""
    code = ("from edgewise import sensitivity as S\n"
            "S.init_sensitivity('3*conv3', (1, 10, 10), n_inits=4, chunk=2)\n"
            "S.init_sensitivity('3*conv3', (1, 10, 10), n_inits=2, chunk=1, to='each')\n"
            "S.gradient_map('3*conv3', (1, 10, 10), to='each', n_samples=2)\n"
            "S.perturbation('3*conv3', (1, 8, 8), n_signs=8)")
    assert _loaded_after(code) == []


SMOOTH_ENOUGH = tuple(k for k in BLOCKS if k != "upsample")


def _engines(model, shape, to, dtype):
    """Every array the sensitivity engines return for ``model`` (vmap and loop Monte-Carlo, gradient maps)."""
    out = [S.init_sensitivity(model, shape, to=to, n_inits=4, seed=1, chunk=c, dtype=dtype, init="default").samples
           for c in (1, 2)]
    out += [S.gradient_map(model, shape, to=to, agg=agg, n_samples=2, dtype=dtype).samples for agg in ("abs", "sq")]
    return out


@settings(derandomize=True, max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=random_net(kinds=SMOOTH_ENOUGH, max_blocks=4), to=st.sampled_from(["all", "center", "each"]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_the_dynamo_free_vjp_is_torch_func_vjp_bit_for_bit(case, to, dtype):
    """Residual, branching, strided, dilated, pooled, normalised, gated nets; float32 included, where a
    different backward (a loop, or autograd around vmap) differs in the last bits."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "_vjp", S._functorch_vjp)  # its own path, also once the reference has imported dynamo
        mine = _engines(case.model, case.input_shape, to, dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "_vjp", torch.func.vjp)
        theirs = _engines(case.model, case.input_shape, to, dtype)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec, shape", [(nets.QUESTION_SPEC, (1, 256)), (nets.DEFAULT_SPEC, nets.DEFAULT_INPUT)])
def test_the_default_reports_numbers_are_torch_func_vjps(spec, shape):
    """The default report's two nets, as the report measures them (float32 Monte-Carlo, float64 perturbation)."""
    def run():
        p = S.perturbation(spec, shape, n_signs=16)
        return [S.init_sensitivity(spec, shape, n_inits=8).samples, S.gradient_map(spec, shape, agg="sq").samples,
                p.gradient, p.single, p.random_signs]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "_vjp", S._functorch_vjp)  # its own path even where another test has imported dynamo
        mine = run()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S, "_vjp", torch.func.vjp)
        theirs = run()
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)


def test_the_vjp_keeps_torch_funcs_errors_and_zero_gradients():
    x = torch.ones(3)
    with pytest.raises(RuntimeError, match="floating-point"):
        S._functorch_vjp(lambda t: (t > 0).long(), x)
    y, pull = S._functorch_vjp(lambda t: torch.ones(2), x)  # an output that does not depend on the input
    assert torch.equal(y, torch.ones(2)) and torch.equal(pull(torch.ones(2))[0], torch.zeros(3))

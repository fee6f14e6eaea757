"""Suite-wide settings."""

import os
import subprocess
import sys

import pytest
import torch

# Reports in tests draw their figures in the test process: two test processes already keep both cores busy, and a
# figure worker per report would only add its start-up. tests/test_report_render.py checks the worker itself.
os.environ.setdefault("EDGEWISE_FIGURE_WORKER", "0")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread per test process: the suite runs one process per core (pytest -n 2), and on a busy
    2-core machine a second torch thread mostly waits for a core (tiny convolutions slow down 10–100×)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: needs headless Chromium (scripts/setup_browser.sh); skipped when it "
                                       "is missing, a failure then under EDGEWISE_REQUIRE_BROWSER=1 (CI)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked ``browser`` skip, before their fixtures are built, when Chromium cannot be used here (a machine
    without root cannot install it), and fail instead where ``EDGEWISE_REQUIRE_BROWSER=1`` (CI).
    ``EDGEWISE_NO_BROWSER=1`` skips them even where the browser is installed."""
    if item.get_closest_marker("browser") is None:
        return
    if os.environ.get("EDGEWISE_NO_BROWSER") == "1":
        pytest.skip("EDGEWISE_NO_BROWSER=1: no real browser")
    from edgewise.testing.browser import missing_reason

    why = missing_reason()
    if why is None:
        return
    if os.environ.get("EDGEWISE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"EDGEWISE_REQUIRE_BROWSER=1 but the browser is missing: {why}", pytrace=False)
    pytest.skip(f"browser checks skipped: {why}")


@pytest.fixture(scope="session")
def baseline() -> int:
    """Address space (bytes) of a process that has imported torch and the CLI (about 3.3 GB here: CUDA
    libraries): the floor under which memory-limited subprocess tests add their allowance."""
    code = "import torch, edgewise.cli; print(open('/proc/self/status').read().split('VmSize:')[1].split()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip()) * 1024


@pytest.fixture(scope="module")
def fx_path():
    """Trace through torch.fx only, the direct trace of plain CNNs (``edgewise._direct``) off: for the tests of
    the torch.fx path (module-scoped: hypothesis tests take it too)."""
    from edgewise import _trace

    orig = _trace.direct_graph
    _trace.direct_graph = lambda *args: None
    yield
    _trace.direct_graph = orig

"""Suite-wide settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """One intra-op thread per test process: the suite runs one process per core (pytest -n 2), and on a busy
    2-core machine a second torch thread mostly waits for a core (tiny convolutions slow down 10–100×)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

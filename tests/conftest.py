"""Shared fixtures: the benchmark folder (tests skip with the reason when it is missing)."""

from __future__ import annotations

import os

import pytest
import torch

from restorelab.data.benchmarks import SHARED

CI_CORES = 2


@pytest.fixture(autouse=True)
def _threads():
    """CI's two cores, shared among the pytest-xdist workers (``-n 2``: one thread each)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, CI_CORES // workers))


@pytest.fixture
def datasets_dir():
    if not SHARED.is_dir():
        pytest.skip(
            f"benchmark folder {SHARED} is missing (only the course's own machines have it)"
        )
    return SHARED

"""Shared fixtures: the benchmark folder (tests skip with the reason when it is missing)."""

from __future__ import annotations

import pytest
import torch

from restorelab.data.benchmarks import SHARED


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture
def datasets_dir():
    if not SHARED.is_dir():
        pytest.skip(
            f"benchmark folder {SHARED} is missing (only the course's own machines have it)"
        )
    return SHARED

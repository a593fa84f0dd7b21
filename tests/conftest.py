"""Shared fixtures: the benchmark folder (tests skip with the reason when it is missing)."""

from __future__ import annotations

import os
import random
import socket
import sys

import pytest
import torch

from restorelab.data.benchmarks import SHARED

CI_CORES = 2
# Every test that leases sandbox users (restorelab.competition.sandbox) runs on one pytest-xdist
# worker (--dist loadgroup, the default in pyproject.toml): a uid that one test released would
# otherwise be leased at once by the other worker, whose processes a grading's check "no process
# of my users is left" would then see.
SANDBOX_USERS = pytest.mark.xdist_group("competition_grading")


def quiet_port(listener: socket.socket | None = None) -> int:
    """A free port on 127.0.0.1 below the ephemeral range (32768-60999, Linux's default).

    ``bind(0)`` and every outgoing connection take ports from that range, so a port chosen there
    and bound a few seconds later (by Gradio, by torch.distributed's store) can be taken in
    between by the other worker, and inside a sandbox's network namespace the same number is
    reused at once. Nothing takes a port below the range unless asked for it by number.
    ``listener``: bound to the port and left bound (a server); without it, the port is checked
    free and returned."""
    for port in random.Random().sample(range(20000, 32768), 200):
        sock = listener or socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            if listener is None:
                sock.close()
    raise RuntimeError("no free port on 127.0.0.1 among 200 tried in 20000-32767")


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


@pytest.fixture
def python_others_cannot_run(tmp_path, monkeypatch):
    """As root: the grader's Python behind a 0700 folder (a link to this one), as under a 0700
    /root, so the sandbox user cannot run it (a new interpreter path: the fallback probes it)."""
    if os.geteuid() != 0:
        pytest.skip("only root could run submissions as root")
    from restorelab.competition import sandbox

    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    (closed / "python").symlink_to(sys.executable)
    monkeypatch.setattr(sandbox.sys, "executable", str(closed / "python"))

"""Grading a class in the sandbox: three honest teams and fourteen hostile ones.

One class is graded once (a session fixture: xdist may interleave other modules' tests on this
module's worker, which would tear a module fixture down; 3 teams at a time) and every test
reads its reports.
Each hostile team must end as a recorded failure with its reason, within its own time bound;
the truth must stay unread; the honest teams must score exactly what they score graded alone.
The sandbox limits are small (60 s wall, 15 s CPU, 1.5 GB, 64 processes) so the hostile
fixtures end fast. The network fixture connects only to a server this module starts on
127.0.0.1. Tests that need bubblewrap skip with the reason when it cannot run here; the fallback
(resource limits only) is tested without it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import psutil
import pytest
from conftest import SANDBOX_USERS, quiet_port

from restorelab import models
from restorelab.cli import main
from restorelab.competition import Limits, Truth, grade_class, make, sandbox, score, synthetic_pairs
from restorelab.competition.sandbox import BASE_UID, USERS, bwrap_problem
from restorelab.io import file_sha256

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "competition"))
import classroom  # noqa: E402  (the fixture folder's builder)

# one xdist worker grades the class once and runs every test of this module (--dist loadgroup)
pytestmark = [pytest.mark.slow, SANDBOX_USERS]
LIMITS = Limits(wall_seconds=60, cpu_seconds=15, memory_mb=1500, processes=64, file_mb=40,
                disk_mb=64)  # fmt: skip
JOBS = 3
# team -> (what the reason starts with, a phrase it holds, the most seconds the run may take)
HOSTILE = {
    "raises": (("failed",), "RuntimeError: team raises", 40),
    "loops": (("timeout",), "limit", 70),
    "memory": (("memory", "failed"), "emory", 40),
    "forkbomb": (("processes", "memory", "timeout"), "limit", 70),
    "toobig": (("rejected",), "rrdbnet has 16,723,907 parameters, over the 10,000,000 limit", 60),
    "private": (("failed",), "No such file or directory", 40),
    "escape": (("failed",), "could not write outside", 40),
    "network": (("failed",), "ConnectionRefusedError", 40),
    "printer": (("output", "memory"), "limit", 40),
    "pickled": (
        ("rejected",),
        "refused by torch.load(weights_only=True): UnpicklingError: Unsupported global: GLOBAL",
        40,
    ),
    "badsize": (("rejected",), "32x32 pixels, expected 64x64", 40),
    "nan": (("rejected",), "NaN or infinite values", 40),
    "symlink": (("rejected",), "a symbolic link, not a file (refused)", 40),
    "diskfill": (("disk",), "64 MB disk limit", 40),
}
assert set(HOSTILE) == set(classroom.HOSTILE)


def _needs_bwrap() -> None:
    problem = bwrap_problem()
    if problem:
        pytest.skip(f"the bubblewrap sandbox cannot run here: {problem}")


@pytest.fixture(scope="session")
def server():
    """A TCP server on 127.0.0.1 that records every connection it gets.

    Its port lies below the ephemeral range (:func:`conftest.quiet_port`). A port from that
    range (``bind(0)``) failed CI once: inside the sandbox the Jupyter kernel binds its own five
    ports there, or a connect picks its source port there (a TCP self-connection). When one of
    them equals the server's port, the hostile team's connect succeeds inside its own
    namespace."""
    listener = socket.socket()
    quiet_port(listener)
    listener.listen()
    listener.settimeout(0.2)
    received, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                received.append(connection.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], received
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture(scope="session")
def course(tmp_path_factory, server):
    """The competition (10 synthetic 64 px pages, 3 test) and every team's submission."""
    root = tmp_path_factory.mktemp("course")
    make(synthetic_pairs(10, 64, page_seed=3), root / "comp", 3, seed=0, source="test")
    targets = {"PRIVATE": str(root / "comp" / "private"), "MARKER": str(root / "unpickled"),
               "OUTSIDE": str(root / "escaped.txt"), "PORT": str(server[0])}  # fmt: skip
    classroom.build(root / "submissions", classroom.HONEST + classroom.HOSTILE, targets)
    return root


def _grade(course: Path, results: str, teams=None, isolation="bwrap") -> dict[str, dict]:
    reports = grade_class(course / "submissions", course / "comp" / "public",
                          course / "comp" / "private", course / results, LIMITS, isolation,
                          JOBS, teams)  # fmt: skip
    return {report["team"]: report for report in reports}


@pytest.fixture(scope="session")
def graded(course):
    _needs_bwrap()
    return _grade(course, "results")


@pytest.fixture(scope="session")
def alone(course):
    _needs_bwrap()
    return _grade(course, "alone", list(classroom.HONEST))


def test_honest_teams_pass_with_their_model_sizes(graded, course):
    expected = {
        "alpha": models.build("dncnn", "color_blind", depth=3, features=16, batch_norm=False),
        "bravo": models.build("dncnn", "color_blind", depth=2, features=8, batch_norm=False),
        "charlie": models.build("srcnn", "rgb", features=(16, 8)),
    }
    for team, model in expected.items():
        report = graded[team]
        assert report["status"] == "ok", report["reason"]
        assert report["parameters"] == models.count_params(model)
        assert report["isolation"] == "bwrap"
        assert (course / "results" / "thumbs" / f"{team}.png").is_file()
    baseline = score(course / "comp" / "public" / "test" / "scan", course / "comp" / "private")
    assert graded["bravo"]["score"] == pytest.approx(baseline["score"])  # an identity model
    assert graded["alpha"]["score"] < baseline["score"]  # trained a little: better than nothing


@pytest.mark.parametrize("team", HOSTILE)
def test_each_hostile_team_is_a_recorded_failure(graded, team):
    starts, phrase, bound = HOSTILE[team]
    report = graded[team]
    assert report["status"] == "failed" and report["score"] is None
    assert report["reason"].split(":")[0] in starts, report["reason"]
    assert phrase in report["reason"], report["reason"]
    assert report["seconds"] is not None and report["seconds"] < bound


def test_the_truth_stays_unread_and_the_host_untouched(graded, course, server):
    comp = course / "comp"
    manifest = json.loads((comp / "private" / "manifest.json").read_text())
    for folder in ("public", "private"):  # nothing planted, nothing changed
        files = {str(p.relative_to(comp / folder)) for p in (comp / folder).rglob("*.png")}
        assert files == set(manifest["sha256"][folder])
        for relative, digest in manifest["sha256"][folder].items():
            assert file_sha256(comp / folder / relative) == digest
    assert all(report["score"] != 0 for report in graded.values())  # no one submitted the truth
    assert not (course / "unpickled").exists()  # the pickle's code never ran
    assert not (course / "escaped.txt").exists()
    assert server[1] == []  # no connection reached the test's server


def test_this_module_runs_on_one_worker(request):
    """Under ``--dist loadgroup`` xdist marks each grouped test's id with its group and sends the
    group to one worker. pytest 9.2 ignores that mark (it keeps ids elsewhere): both workers
    then graded the class at once, reusing each other's released sandbox users."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not request.config.option.loadgroup:
        pytest.skip("not run by pytest-xdist workers with --dist loadgroup")
    assert request.node.nodeid.endswith("@competition_grading"), (
        f"{request.node.nodeid}: xdist's group was not applied (see the pytest pin in "
        "requirements.txt)"
    )


def test_no_sandbox_process_outlives_the_grading(graded):
    uids = {report["uid"] for report in graded.values()} - {None}
    assert uids and all(BASE_UID <= uid < BASE_UID + USERS for uid in uids)
    running = [p.pid for p in psutil.process_iter(["uids", "status"])
               if p.info["uids"].real in uids and p.info["status"] != psutil.STATUS_ZOMBIE]  # fmt: skip
    assert running == []  # zombies run no code: their parents (or init) reap them


def test_other_teams_score_as_when_graded_alone(graded, alone):
    for team in classroom.HONEST:
        assert alone[team]["status"] == "ok"
        assert graded[team]["score"] == alone[team]["score"]
        assert graded[team]["images"] == alone[team]["images"]


def test_the_leaderboard_ranks_the_class(graded, course):
    results = course / "results"
    lines = (results / "leaderboard.csv").read_text().splitlines()
    assert len(lines) == 1 + len(graded)
    ranked = sorted(classroom.HONEST, key=lambda team: graded[team]["score"])
    assert [line.split(",")[:3] for line in lines[1:4]] == [
        [str(rank), team, "ok"] for rank, team in enumerate(ranked, start=1)
    ]
    assert all(",failed," in line for line in lines[4:])
    page = (results / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "http" not in page  # self-contained
    assert "RuntimeError: team raises" in page
    assert "| 1 | " in (results / "leaderboard.md").read_text()


def test_regrading_one_team_changes_only_its_row(graded, course, tmp_path):
    copy = tmp_path / "course"
    shutil.copytree(course, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("work", "logs", "alone", "fallback"))  # fmt: skip
    shutil.rmtree(copy / "submissions" / "bravo")
    shutil.copytree(copy / "submissions" / "raises", copy / "submissions" / "bravo")
    before = {p.name: p.read_bytes() for p in (copy / "results" / "teams").iterdir()}
    reports = grade_class(copy / "submissions", copy / "comp" / "public", copy / "comp" / "private",
                          copy / "results", LIMITS, "bwrap", 1, ["bravo"])  # fmt: skip
    assert [r["team"] for r in reports] == ["bravo"] and reports[0]["status"] == "failed"
    after = {p.name: p.read_bytes() for p in (copy / "results" / "teams").iterdir()}
    assert after.keys() == before.keys()
    assert [name for name in after if after[name] != before[name]] == ["bravo.json"]
    rows = (copy / "results" / "leaderboard.csv").read_text()
    assert ",bravo,failed," in rows and ",alpha,ok," in rows


def test_the_private_folder_must_not_be_visible(course, tmp_path):
    with pytest.raises(ValueError, match="the private folder is inside"):
        grade_class(course / "submissions", course / "comp" / "public", course / "comp" / "private",
                    course / "comp", LIMITS, "rlimits", 1, ["raises"])  # fmt: skip


def test_fallback_without_bwrap_warns_and_still_limits(course, capsys, graded_or_none,
                                                      monkeypatch):  # fmt: skip
    try:
        sandbox.fallback_uid(BASE_UID)
    except PermissionError:  # our own fixtures may run as root: the fallback's limits still bind
        monkeypatch.setattr(sandbox, "fallback_uid", lambda uid: None)
    status = main(["competition", "grade", str(course / "submissions"),
                   "--public", str(course / "comp" / "public"),
                   "--private", str(course / "comp" / "private"),
                   "--results", str(course / "fallback"), "--isolation", "rlimits",
                   "--team", "alpha", "--team", "raises", "--team", "memory",
                   "--wall-seconds", "60", "--cpu-seconds", "15", "--memory-mb", "1500",
                   "--jobs", "2"])  # fmt: skip
    captured = capsys.readouterr()
    assert status == 0
    assert "WARNING:" in captured.err and "Isolation is weaker" in captured.err
    reports = {p.stem: json.loads(p.read_text()) for p in (course / "fallback" / "teams").iterdir()}
    assert reports["alpha"]["status"] == "ok" and reports["alpha"]["isolation"] == "rlimits"
    assert reports["raises"]["reason"].startswith("failed: In [")
    assert "emory" in reports["memory"]["reason"]
    if graded_or_none:  # the same score as in the bwrap sandbox
        assert reports["alpha"]["score"] == graded_or_none["alpha"]["score"]
    assert Truth(course / "comp" / "private").names  # the truth still checks out


@pytest.mark.usefixtures("python_others_cannot_run")
def test_the_fallback_refuses_to_grade_as_root_with_a_python_others_cannot_run(course, capsys):
    status = main(["competition", "grade", str(course / "submissions"),
                   "--public", str(course / "comp" / "public"),
                   "--private", str(course / "comp" / "private"),
                   "--results", str(course / "refused"), "--isolation", "rlimits",
                   "--team", "alpha"])  # fmt: skip
    error = capsys.readouterr().err
    assert status != 0 and "never runs submissions as root" in error and "bubblewrap" in error
    assert not (course / "refused" / "teams").exists()  # no team was run


@pytest.fixture
def graded_or_none(request):
    return None if bwrap_problem() else request.getfixturevalue("graded")

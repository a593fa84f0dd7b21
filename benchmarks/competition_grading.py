"""Grading a hostile class: 33 teams (3 honest + 30 hostile) run in the sandbox and scored.

Run: ``python benchmarks/competition_grading.py [--jobs 2] [--isolation auto]``. Writes
``benchmarks/results/competition_grading.{json,md}``.

The class is every fixture team of the test suite (tests/fixtures/competition): the honest
alpha, bravo, charlie (small models, a few training steps), the 14 hostile teams of the first
grading tests, the 8 ``g_*`` teams that attack the grader (a FIFO, a link to the private folder,
a declared-model bomb, an image bomb, module shadowing, lying outputs, outputs one level
brighter, HTML in a reason) and the
8 ``k_*`` teams that attack the limits (shared memory, memfd, a tmpfs in a nested namespace, an
unlinked file, a sparse file, 200k empty files, a deep tree, a double fork). The competition:
10 synthetic 64 px pages, 3 held out. The limits are small (60 s wall, 15 s CPU, 1.5 GB, 64
processes, 64 MB of disk), so the team that loops forever costs 15 s of CPU; with the defaults
(30 min wall) it would cost that much instead. The network team connects to a server this script
starts on 127.0.0.1 only. The class is graded once; each team's wall seconds come from its
report. Also measured: the grader's own peak memory (its process, not the sandboxes), whether
any byte of a private page reached a file under results/, and whether a process of a sandbox
user outlived the grading.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path

from report import save

from restorelab.competition import Limits, grade_class, make, synthetic_pairs
from restorelab.competition.sandbox import BASE_UID, USERS, running_processes

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests" / "fixtures" / "competition"))
import classroom  # noqa: E402

TEAMS = classroom.HONEST + classroom.HOSTILE + classroom.GRADING_HOSTILE + classroom.KERNEL_HOSTILE
LIMITS = Limits(wall_seconds=60, cpu_seconds=15, memory_mb=1500, processes=64, file_mb=40,
                disk_mb=64)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="teams graded at once (default 2)")
    parser.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "rlimits"))
    args = parser.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(synthetic_pairs(10, 64, page_seed=3), root / "comp", 3, seed=0, source="benchmark")
        targets = {"PRIVATE": str(root / "comp" / "private"), "MARKER": str(root / "unpickled"),
                   "OUTSIDE": str(root / "escaped.txt"), "PORT": str(listener.getsockname()[1])}  # fmt: skip
        teams = TEAMS
        classroom.build(root / "submissions", teams, targets)
        start = time.perf_counter()
        reports = grade_class(root / "submissions", root / "comp" / "public",
                              root / "comp" / "private", root / "results", LIMITS,
                              args.isolation, args.jobs)  # fmt: skip
        seconds = time.perf_counter() - start
        try:
            listener.accept()
            reached = True
        except BlockingIOError:
            reached = False
        unpickled, escaped = (root / "unpickled").exists(), (root / "escaped.txt").exists()
        secrets = [p.read_bytes() for p in (root / "comp" / "private" / "test" / "clean").iterdir()]
        leaked = sorted(str(p.relative_to(root)) for p in (root / "results").rglob("*")
                        if p.is_file() and not p.is_symlink()
                        and any(secret in p.read_bytes() for secret in secrets))  # fmt: skip
    strays = sum(len(running_processes(uid)) for uid in range(BASE_UID, BASE_UID + USERS))
    grader_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    listener.close()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "jobs": args.jobs,
        "isolation": reports[0]["isolation"],
        "teams": len(teams),
        "total_seconds": round(seconds, 1),
        "limits": LIMITS.__dict__,
        "reports": {
            r["team"]: {k: r[k] for k in ("status", "reason", "score", "seconds")} for r in reports
        },  # fmt: skip
        "server_reached": reached,
        "pickle_ran": unpickled,
        "escaped_file_written": escaped,
        "files_with_private_bytes": leaked,
        "sandbox_processes_left": strays,
        "grader_peak_mb": round(grader_mb),
    }
    lines = [
        f"Grading {len(teams)} teams ({args.jobs} at a time, isolation {result['isolation']}) on "
        f"{result['machine']}: {seconds:.1f} s in all; the grader's own peak memory "
        f"{grader_mb:.0f} MB.",
        "",
        "| team | status | seconds | Y-MAE | reason |",
        "|---|---|---|---|---|",
    ]
    for team, r in result["reports"].items():
        score = "" if r["score"] is None else f"{r['score']:.4f}"
        reason = r["reason"].replace("|", "\\|")[:160]
        lines.append(f"| {team} | {r['status']} | {r['seconds']} | {score} | {reason} |")
    lines += ["", f"Server on 127.0.0.1 reached: {reached}; pickle payload ran: {unpickled}; "
              f"file outside the work folder written: {escaped}; files under results/ holding a "
              f"private page's bytes: {len(leaked)}; sandbox processes left: {strays}."]  # fmt: skip
    save("competition_grading", result, lines)


if __name__ == "__main__":
    main()

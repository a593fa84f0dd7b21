"""The kernel enforces the sandbox's limits: hostile scripts a watchdog cannot see are stopped.

Each ``k_*`` fixture (tests/fixtures/competition) runs as a plain script in the sandbox
(``python team.py`` in its work folder, a tmpfs from ``work_folder``) in both isolations, with
small limits (200 MB memory, 50 MB and 2,000 files of disk, 20 s) so each ends in a second or
two. Every run must end with the limit's name as its status, no process of the sandbox user
may be left when ``run`` returns, and no file of it once its lease ends. Tests skip with the
reason where the machine cannot enforce a limit (not root, no cgroup, no bubblewrap).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
from pathlib import Path

import psutil
import pytest
from conftest import SANDBOX_USERS

from restorelab.competition import sandbox
from restorelab.competition.cgroup import CgroupUnavailable, RunCgroup
from restorelab.competition.sandbox import (
    Limits,
    Mounts,
    Outcome,
    bwrap_problem,
    python_paths,
    run,
    running_processes,
    sandbox_user,
    work_folder,
)
from restorelab.competition.trees import (
    WRITABLE_FOLDERS,
    remove_tree,
    remove_user_files,
    walk_entries,
)

pytestmark = SANDBOX_USERS
FIXTURES = Path(__file__).parent / "fixtures" / "competition"
LIMITS = Limits(wall_seconds=20, cpu_seconds=20, memory_mb=200, processes=32, file_mb=45,
                disk_mb=50, disk_files=2000)  # fmt: skip
ISOLATIONS = ("bwrap", "rlimits")
# the watchdog (memory outside the tmpfs work folder) or the kernel (the cgroup's cap: memory
# plus the tmpfs disk), whichever comes first
OVER_MEMORY = "200 MB"
# fixture -> (status, a phrase of the reason or the log) in the tmpfs work folder
KERNEL_STOPS = {
    "k_shm": ("memory", OVER_MEMORY),
    "k_memfd": ("memory", OVER_MEMORY),
    "k_nested_tmpfs": ("failed", "user namespace refused"),
    "k_unlinked": ("disk", "50 MB disk limit"),
    "k_sparse": ("disk", "50 MB disk limit"),
    "k_inodes": ("disk", "2000 files and folders"),
    "k_deep": ("disk", "2000 files and folders"),
    "k_doublefork": ("ok", ""),
}
# the fallback has no bwrap to forbid user namespaces: its own tmpfs is still memory
FALLBACK_STOPS = {"k_nested_tmpfs": ("memory", OVER_MEMORY)}
NO_USERNS = "nested user namespaces are allowed"
# run team.py by a path relative to the work folder (the fallback's user may not be able to
# open it by its absolute path, under the tests' 0700 temporary folder)
RUN_TEAM = "exec(compile(open('team.py').read(), 'team.py', 'exec'))"


def _needs_kernel_limits(isolation: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("cgroups and a tmpfs work folder need root")
    try:
        RunCgroup(f"restorelab-probe-{os.getpid()}", 64 << 20, 8).close()
    except CgroupUnavailable as error:
        pytest.skip(f"no cgroup here: {error}")
    if isolation == "bwrap" and bwrap_problem():
        pytest.skip(f"the bubblewrap sandbox cannot run here: {bwrap_problem()}")


def _fallback_can_run_this_python() -> bool:
    try:
        sandbox.fallback_uid(sandbox.BASE_UID)
    except PermissionError:
        return False
    return True


@pytest.fixture
def python(request, monkeypatch) -> str:
    """The interpreter of the fixture scripts (stdlib only). The fallback refuses to run as
    root, so where the sandbox user cannot run the venv's Python (e.g. it lives under a 0700
    /root) the system's Python is used and the fallback is told the user can run it: the run
    is the sandbox user's, as on a machine with a shared installation."""
    callspec = getattr(request.node, "callspec", None)
    isolation = callspec.params.get("isolation", "rlimits") if callspec else "rlimits"
    if isolation == "bwrap" or _fallback_can_run_this_python():
        return sys.executable
    system = shutil.which("python3", path="/usr/bin:/bin")
    if system is None:
        pytest.skip("the sandbox user cannot run this Python and there is no /usr/bin/python3")
    monkeypatch.setattr(sandbox, "fallback_uid", lambda uid: uid)
    return system


def _user_files(uid: int) -> list[str]:
    """Files of ``uid`` in the places any user may write (and world-writable folders in them)."""
    found, stack = [], [p for p in WRITABLE_FOLDERS if os.path.isdir(p)]
    while stack:  # the other test worker creates and removes entries here all the time
        with contextlib.suppress(FileNotFoundError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if info.st_uid == uid:
                    found.append(entry.path)
                elif stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH:
                    stack.append(entry.path)
    return found


def _start(script: str, work: Path, command: list[str], files: dict[str, bytes] | None = None
           ) -> list[str]:  # fmt: skip
    if script:
        shutil.copyfile(FIXTURES / f"{script}.py", work / "team.py")
    for name, data in (files or {}).items():
        (work / name).write_bytes(data)
    return command


def _run(script: str, work: Path, isolation: str, python: str, tmpfs: bool = True,
         command: list[str] | None = None, files: dict[str, bytes] | None = None
         ) -> tuple[Outcome, str]:  # fmt: skip
    """Run a fixture (or ``command``) in a fresh work folder (a tmpfs, else a plain folder)
    holding ``files`` (name: bytes, written by us as the grader writes a team's files);
    (outcome, log). Checks that no process of the sandbox user is left when run returns, and
    no file when its lease ends."""
    log, mounts = work.parent / f"{work.name}.log", Mounts(work=work, read_only=python_paths())
    env = {"PATH": "/usr/bin:/bin"}
    with sandbox_user() as uid:
        if tmpfs:
            with work_folder(work, LIMITS) as folder:
                assert folder.mounted, folder.warning
                argv = _start(script, work, command or [python, "-c", RUN_TEAM], files)
                outcome = run(argv, mounts, LIMITS, log, isolation, uid, env, folder=folder)
                assert running_processes(uid) == []
                info = os.stat(work)  # the run's user's alone: no other team's run reads it
                owner = uid if isolation == "bwrap" else sandbox.fallback_uid(uid)
                assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o700, owner or 0)
            assert not work.exists()  # unmounted and removed, however deep its tree
        else:
            work.mkdir()
            argv = _start(script, work, command or [python, "-c", RUN_TEAM])
            outcome = run(argv, mounts, LIMITS, log, isolation, uid, env)
            assert running_processes(uid) == []
            remove_tree(work)  # iterative: however deep
            assert not work.exists()
    assert _user_files(uid) == []  # (its processes are checked while the lease holds it)
    return outcome, log.read_text(errors="replace")


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("script", KERNEL_STOPS)
def test_the_kernel_stops_each_hostile_script(script, isolation, python, tmp_path):
    _needs_kernel_limits(isolation)
    stops = KERNEL_STOPS if isolation == "bwrap" else {**KERNEL_STOPS, **FALLBACK_STOPS}
    status, phrase = stops[script]
    outcome, log = _run(script, tmp_path / "work", isolation, python)
    assert outcome.status == status, (outcome, log[-500:])
    assert phrase in outcome.reason + log, (outcome, log[-500:])
    assert outcome.seconds < LIMITS.wall_seconds
    assert outcome.enforcement.startswith("cgroup v") and "tmpfs" in outcome.enforcement
    assert outcome.warnings == (() if isolation == "bwrap" else (f"{NO_USERNS} (the fallback "
                                                                 "has no bwrap)",))  # fmt: skip
    if status == "memory":  # the kernel's own counter: past the memory limit, within the cap
        assert LIMITS.memory_mb < outcome.peak_mb <= 1.05 * (LIMITS.memory_mb + LIMITS.disk_mb)


# (MB held in anonymous memory, MB the run writes to its tmpfs work folder, MB of files the team
# handed in, there before the run) -> status: the memory limit is on memory alone, whatever the
# work folder holds (its files count against the disk limit), and handing in files buys none
MEMORY_AND_FILES = {(220, 0, 0): "memory", (170, 40, 0): "ok", (220, 0, 40): "memory"}


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize(("held_mb", "written_mb", "given_mb"), MEMORY_AND_FILES)
def test_the_memory_limit_counts_memory_not_the_work_folders_files(
    held_mb, written_mb, given_mb, isolation, python, tmp_path
):
    """The cgroup's cap is memory + disk (tmpfs pages are charged to it), so memory between the
    two is the watchdog's to stop; files the run writes in the tmpfs are not memory, and files
    put there before it (charged to the grader) do not make room for more."""
    _needs_kernel_limits(isolation)
    command = [python, "-c", f"import time; open('out.bin', 'wb').write(b'f' * ({written_mb} << "
               f"20)); held = b'm' * ({held_mb} << 20); time.sleep(2)"]  # fmt: skip
    given = {"handed_in.bin": b"g" * (given_mb << 20)} if given_mb else {}
    outcome, log = _run("", tmp_path / "work", isolation, python, command=command, files=given)
    assert outcome.status == MEMORY_AND_FILES[held_mb, written_mb, given_mb], (outcome, log[-500:])
    if outcome.status == "memory":
        assert "over the 200 MB limit" in outcome.reason  # the watchdog's, not the kernel's kill


@pytest.mark.usefixtures("python_others_cannot_run")
def test_the_fallback_never_runs_a_command_as_root(tmp_path):
    """As root, with a Python the sandbox user cannot reach (behind a 0700 folder), the fallback
    raises before it starts anything, saying why and what to do."""
    with pytest.raises(PermissionError, match="never runs submissions as root"):
        run([sys.executable, "-c", "open('ran', 'w')"], Mounts(work=tmp_path), LIMITS,
            tmp_path / "log", "rlimits", sandbox.BASE_UID)  # fmt: skip
    assert not (tmp_path / "ran").exists() and not (tmp_path / "log").exists()


def test_a_sandboxed_command_cannot_make_a_user_namespace(tmp_path):
    _needs_kernel_limits("bwrap")
    command = [sys.executable, "-c", "import ctypes, os; libc = ctypes.CDLL(None, use_errno="
               "True); assert libc.unshare(0x10000000) != 0, 'made'; print('refused', "
               "os.strerror(ctypes.get_errno())); print(len(open('/dev/urandom', 'rb').read(4)))"]  # fmt: skip
    outcome, log = _run("", tmp_path / "work", "bwrap", sys.executable, command=command)
    assert outcome.status == "ok" and "refused" in log, (outcome, log)
    assert log.splitlines()[-1] == "4"  # the devices still work (torch reads /dev/urandom)
    assert "no user namespaces" in outcome.enforcement


@pytest.mark.parametrize("script", ["k_deep", "k_inodes", "k_sparse"])
def test_the_watchdog_bounds_a_folder_that_is_not_a_tmpfs(script, python, tmp_path):
    """Without a tmpfs the watchdog walks the work folder: iteratively (no RecursionError on a
    deep tree), bounded by the depth, the number of files and the allocated or apparent size."""
    _needs_kernel_limits("rlimits")
    outcome, log = _run(script, tmp_path / "work", "rlimits", python, tmpfs=False)
    assert outcome.status == "disk", (outcome, log[-500:])
    assert any(phrase in outcome.reason for phrase in ("deeper than", "2000 files", "50 MB"))
    assert "not size-limited by the kernel" in " ".join(outcome.warnings)


def test_an_error_of_the_watchdog_still_stops_the_run(python, tmp_path, monkeypatch):
    """The watchdog raising (here on purpose, once the stray exists) ends run() with that
    error, after every process of the run (the double-forked stray included) is killed and its
    cgroup removed."""
    _needs_kernel_limits("rlimits")
    groups = []
    original = sandbox._broken_limit

    def failing(watch, limits):
        groups.append(watch.group)
        if (watch.work / "stray.pid").exists():
            raise RecursionError("the watchdog's own check failed")
        return original(watch, limits)

    monkeypatch.setattr(sandbox, "_broken_limit", failing)
    work = tmp_path / "work"
    sleeper = [python, "-c", "import time; exec(open('team.py').read()); time.sleep(60)"]
    with sandbox_user() as uid, work_folder(work, LIMITS) as folder:
        argv = _start("k_doublefork", work, sleeper)
        with pytest.raises(RecursionError, match="own check"):
            run(argv, Mounts(work=work, read_only=python_paths()), LIMITS, tmp_path / "log",
                "rlimits", uid, {"PATH": "/usr/bin:/bin"}, folder=folder)  # fmt: skip
        assert running_processes(uid) == []
        stray = int((work / "stray.pid").read_text())
        assert not psutil.pid_exists(stray) or psutil.Process(stray).status() == "zombie"
    assert groups[-1] is not None and not any(f.exists() for f in groups[-1].folders.values())


def test_a_lease_removes_the_users_files_without_following_links(tmp_path):
    """Files a uid left in /tmp (a deep tree, a link to a file of someone else) are removed
    when its lease starts; the link's target stays."""
    if os.geteuid() != 0:
        pytest.skip("removing another user's files needs root")
    victim = tmp_path / "victim.txt"
    victim.write_text("not the sandbox user's")
    with sandbox_user() as uid:
        top = Path("/tmp") / f"restorelab-test-{uid}"
        here = top
        for _ in range(300):  # deeper than the removal keeps folders open
            here = here / "d"
        here.mkdir(parents=True)
        (here / "file").write_text("x")
        (top / "link").symlink_to(victim)
        for path in [top, *top.rglob("*")]:
            os.chown(path, uid, uid, follow_symlinks=False)
        assert remove_user_files(uid) == 1  # the folder, once
        assert not top.exists() and victim.read_text() == "not the sandbox user's"


def test_the_removal_walks_world_writable_folders_and_closes_them_when_its_budget_ends(
    tmp_path,
):
    """A uid's files in world-writable folders below the given ones are found (not in closed
    ones); a removal that runs out of entries says so and leaves no folder descriptor open."""
    if os.geteuid() != 0:
        pytest.skip("removing another user's files needs root")
    uid = sandbox.BASE_UID + sandbox.USERS  # no lease's: nothing else of it exists
    shared, closed = tmp_path / "a" / "shared", tmp_path / "a" / "closed"
    for folder, mode in ((tmp_path, 0o1777), (tmp_path / "a", 0o1777), (shared, 0o1777),
                         (closed, 0o755)):  # fmt: skip
        folder.mkdir(exist_ok=True)
        folder.chmod(mode)
    for folder in (shared, closed):
        (folder / "left").write_text("x")
        os.chown(folder / "left", uid, uid)
    held = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="too many entries to remove"):
        remove_user_files(uid, [str(tmp_path)], limit=2)
    assert sorted(os.listdir("/proc/self/fd")) == held
    assert remove_user_files(uid, [str(tmp_path)]) == 1
    assert not (shared / "left").exists() and (closed / "left").exists()


def test_a_file_removed_while_its_folder_is_listed_hides_nothing_else(tmp_path):
    """The disk watchdog's walk: the folder's listing is read before each entry is examined, so a
    team can remove an entry in between. Only that entry drops out; the rest still counts."""
    for name in "abcdefgh":
        (tmp_path / name).write_bytes(b"x" * 100)
    order = os.listdir(tmp_path)  # the order scandir lists them in
    walk = walk_entries(tmp_path, 100)
    seen = [os.path.basename(next(walk)[0])]
    (tmp_path / order[1]).unlink()  # listed already, gone before it is examined
    seen += [os.path.basename(path) for path, _, _ in walk]
    assert seen == [order[0], *order[2:]]

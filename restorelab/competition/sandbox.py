"""Run untrusted code (a team's notebook) with limits, in a bubblewrap sandbox when possible.

Taught in the course appendix ("Running the competition"). :func:`run` starts a command and
watches it until it ends or breaks a limit; the :class:`Outcome` names what happened.

With bubblewrap (``bwrap``) and ``setpriv`` present and able to create namespaces
(``isolation="bwrap"``), the command sees:

* a new mount namespace holding only the system folders (``/usr``, ``/lib*``, ``/bin``, ``/etc``),
  the Python installation and the venv, the ``restorelab`` package, the public data (read-only)
  and its own work folder (the only writable place); nothing else of the host (no ``/home``,
  ``/root``, ``/tmp``, no private folder);
* a new network namespace with only its own loopback (no network at all);
* new PID, IPC and UTS namespaces: it sees only its own processes, and when the sandbox ends
  every process left in it is killed by the kernel;
* an unprivileged user (``uid``, leased by :func:`sandbox_user`: one per running job on the
  whole machine, so the process limit of one team never starves another and stopping one run,
  which kills every process of its user, never touches another grader's run) with no
  capabilities and ``no_new_privs``.

Without bubblewrap (``isolation="rlimits"``) the command runs in a plain process group with the
same resource limits, as the unprivileged ``uid`` when we are root and that user can run the
interpreter; a warning says what is lost: no network isolation and the whole filesystem is
visible (the private folder is protected only by its 0700 permissions).

Limits in both modes: wall time, memory (a watchdog on the resident memory of the whole process
tree, which names the limit in the report; ``RLIMIT_DATA`` per process, at twice the limit
plus 1 GB, is only the backstop for one process that grows faster than the watchdog polls),
processes (``RLIMIT_NPROC``, which binds because the user is not root), CPU time, the size of
any one file written (``RLIMIT_FSIZE``: stdout and stderr are files, so printing without end is
stopped by the kernel) and the total size of the work folder (a watchdog).
"""

import dataclasses
import fcntl
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import psutil

MB = 1 << 20
BASE_UID = 61000  # sandbox users: BASE_UID ... BASE_UID + USERS - 1 (no passwd entry needed)
USERS = 1000
POLL_SECONDS = 0.1
CPU_GRACE = 5  # RLIMIT_CPU is this much above the limit: the watchdog stops a run first, by name
NEAR_LIMIT = 0.9  # a run that dies after its memory reached this share of the limit died of it
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
ISOLATIONS = ("auto", "bwrap", "rlimits")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use. Memory and sizes in MB, times in seconds."""

    wall_seconds: float = 1800.0
    cpu_seconds: int = 3600
    memory_mb: int = 6000
    processes: int = 256  # processes and threads of the sandbox user
    file_mb: int = 512  # any one file, stdout and stderr included
    disk_mb: int = 2048  # everything in the work folder


@dataclasses.dataclass
class Outcome:
    """How a sandboxed run ended: ``status`` "ok", "failed" (non-zero exit) or a broken limit
    ("timeout", "memory", "processes", "output", "disk"); ``reason`` says it in words."""

    status: str
    reason: str
    returncode: int | None
    seconds: float
    isolation: str


@contextmanager
def sandbox_user(lock_folder: Path | None = None) -> Iterator[int]:
    """Lease a sandbox uid no other run on this machine holds, for the ``with`` block.

    Each uid of ``BASE_UID`` ... ``BASE_UID + USERS - 1`` has a lock file in ``lock_folder``
    (default: ``restorelab-sandbox-users`` in the temporary folder); the lease is an exclusive
    ``flock`` on it, which the kernel releases even when the grader is killed. A uid that still
    owns processes (a crashed grader's strays) is skipped. Two graders running at once (two
    instructors, two test workers) therefore never share a user.
    """
    folder = Path(lock_folder or Path(tempfile.gettempdir()) / "restorelab-sandbox-users")
    folder.mkdir(parents=True, exist_ok=True)
    busy = {p.info["uids"].real for p in psutil.process_iter(["uids"]) if p.info["uids"]}
    for uid in range(BASE_UID, BASE_UID + USERS):
        if uid in busy:
            continue
        handle = open(folder / f"{uid}.lock", "a")  # noqa: SIM115 (held for the lease)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        try:
            yield uid
        finally:
            handle.close()  # closing releases the lock
        return
    raise RuntimeError(f"all {USERS} sandbox users from uid {BASE_UID} are in use ({folder})")


@dataclasses.dataclass(frozen=True)
class Mounts:
    """Host paths the sandbox sees: read-only ones (shown at the same path) and the work folder."""

    work: Path
    read_only: tuple[Path, ...] = ()


def python_paths() -> tuple[Path, ...]:
    """The folders the venv's Python needs: its prefix, the base installation, restorelab."""
    import restorelab

    package = Path(restorelab.__file__).resolve().parent
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package}
    return tuple(sorted(paths))


@lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """None when bubblewrap can build the sandbox here, else why not (one line)."""
    bwrap, setpriv = shutil.which("bwrap"), shutil.which("setpriv")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    if setpriv is None and os.geteuid() == 0:
        return "setpriv (util-linux) is not installed"
    probe = [bwrap, *_namespaces(), *_system_binds(), "--proc", "/proc", "--dev", "/dev",
             *_drop(BASE_UID), "/bin/true"]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap could not start ({error})"
    if done.returncode != 0:
        return f"bwrap cannot create the namespaces here ({done.stderr.strip() or done.returncode})"
    return None


def choose_isolation(isolation: str = "auto") -> str:
    """``"bwrap"`` or ``"rlimits"``; ``"auto"`` picks bwrap when it works, warning otherwise."""
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    problem = bwrap_problem() if isolation != "rlimits" else None
    if isolation == "bwrap" and problem:
        raise OSError(f"the bwrap sandbox is not available: {problem}")
    if isolation == "rlimits" or problem:
        reason = problem or "isolation='rlimits' was asked for"
        print(
            f"WARNING: {reason}; running submissions in plain processes with resource limits "
            "only. Isolation is weaker: they can use the network and read every file their user "
            "can read (the private folder is protected only by its 0700 permissions).",
            file=sys.stderr,
        )
        return "rlimits"
    return "bwrap"


def _namespaces() -> list[str]:
    user = [] if os.geteuid() == 0 else ["--unshare-user"]  # root needs no user namespace
    return [*user, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--die-with-parent", "--new-session"]  # fmt: skip


def _system_binds() -> list[str]:
    return [arg for folder in SYSTEM_FOLDERS if os.path.exists(folder)
            for arg in ("--ro-bind", folder, folder)]  # fmt: skip


def _drop(uid: int) -> list[str]:
    """setpriv, run inside the sandbox, making root's command run as ``uid`` without any
    capability; nothing when we are not root (the caller's own user runs it)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv") or "setpriv"
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "--no-new-privs", "--"]  # fmt: skip


def _bind(path: Path, flag: str) -> list[str]:
    """bwrap arguments that show ``path`` at the same place, its parents created 0755."""
    args: list[str] = []
    for parent in reversed(path.parents[:-1]):  # "/a", "/a/b", ... (not "/")
        args += ["--perms", "0755", "--dir", str(parent)]
    return args + [flag, str(path), str(path)]


def bwrap_command(command: Sequence[str], mounts: Mounts, uid: int) -> list[str]:
    """The bwrap + setpriv command line that runs ``command`` in the sandbox as ``uid``."""
    args = [shutil.which("bwrap") or "bwrap", *_namespaces(), *_system_binds()]
    for path in mounts.read_only:
        args += _bind(Path(path), "--ro-bind")
    args += _bind(Path(mounts.work), "--bind")
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/tmp",
             "--chdir", str(mounts.work)]  # fmt: skip
    return [*args, *_drop(uid), *command]


def _preexec(limits: Limits, uid: int | None) -> Callable[[], None]:
    """Set the resource limits (and, in the fallback as root, drop to ``uid``) in the child."""

    def apply() -> None:
        os.setsid()
        for name, value in (
            (resource.RLIMIT_DATA, (2 * limits.memory_mb + 1024) * MB),
            (resource.RLIMIT_NPROC, limits.processes),
            (resource.RLIMIT_CPU, limits.cpu_seconds + CPU_GRACE),
            (resource.RLIMIT_FSIZE, limits.file_mb * MB),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(name, (value, value))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return apply


@lru_cache(maxsize=8)
def fallback_uid(uid: int) -> int | None:
    """The uid the fallback runs as: ``uid`` when we are root and it can run Python, else None."""
    if os.geteuid() != 0:
        return None
    try:
        done = subprocess.run([sys.executable, "-c", "import restorelab"], timeout=60,
                              preexec_fn=_preexec(Limits(), uid), capture_output=True)  # fmt: skip
        usable = done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        usable = False
    if not usable:
        print(
            f"WARNING: uid {uid} cannot run {sys.executable} (a parent folder closed to other "
            "users?); the fallback runs submissions as root: they can read the private folder, "
            "and the process limit does not bind (only the memory watchdog and the wall time "
            "stop a fork bomb)",
            file=sys.stderr,
        )
    return uid if usable else None


def _give(work: Path, uid: int | None) -> None:
    """Make ``uid`` (the sandbox user) own the work folder and all in it (we are root)."""
    if uid is None or os.geteuid() != 0:
        return
    os.chown(work, uid, uid)
    for root, folders, files in os.walk(work):
        for name in [*folders, *files]:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def _tree_usage(process: psutil.Process) -> tuple[int, int, float]:
    """Resident bytes and threads of ``process`` and all its descendants, and the most CPU
    seconds any one of them has used (``RLIMIT_CPU`` counts per process)."""
    rss = threads = 0
    cpu = 0.0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0.0
    for member in family:
        try:
            rss += member.memory_info().rss
            threads += member.num_threads()
            times = member.cpu_times()
            cpu = max(cpu, times.user + times.system)
        except psutil.Error:
            pass
    return rss, threads, cpu


def running_processes(uid: int) -> list[psutil.Process]:
    """The processes of ``uid`` that still run (zombies, which run no code and hold no memory,
    are left for their parents to reap)."""
    found = []
    for process in psutil.process_iter(["uids", "status"]):
        uids, status = process.info["uids"], process.info["status"]
        if uids and uids.real == uid and status != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _kill_user(uid: int, seconds: float = 10.0) -> None:
    """SIGKILL every process of ``uid`` (a fallback run's strays, e.g. a double-forked child;
    what a PID namespace's end is still tearing down) and wait until none runs, so that the
    lease of ``uid`` ends only when its last process has."""
    deadline = time.monotonic() + seconds
    while (family := running_processes(uid)) and time.monotonic() < deadline:
        for process in family:
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(family, timeout=0.5)


def _stop(popen: subprocess.Popen, uid: int | None) -> None:
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if uid is not None:
        _kill_user(uid)
    popen.wait()


def _broken_limit(
    watched: psutil.Process, limits: Limits, start: float, log, work: Path
) -> tuple[str, str, int]:
    """("ok", "", resident bytes) while the run keeps to ``limits``, else (the limit's name,
    what happened, resident bytes)."""
    rss, threads, cpu = _tree_usage(watched)
    if time.monotonic() - start > limits.wall_seconds:
        return "timeout", f"ran past the {limits.wall_seconds:g} s wall-time limit", rss
    if cpu > limits.cpu_seconds:
        return "timeout", f"used the {limits.cpu_seconds} s CPU-time limit of one process", rss
    if threads >= limits.processes - 1:
        return "processes", f"reached the limit of {limits.processes} processes and threads", rss
    if rss > limits.memory_mb * MB:
        used = f"used {rss / MB:.0f} MB of memory, over the {limits.memory_mb} MB limit"
        return "memory", used, rss
    if os.fstat(log.fileno()).st_size >= limits.file_mb * MB:
        return "output", f"printed over the {limits.file_mb} MB output limit", rss
    if _folder_bytes(work) > limits.disk_mb * MB:
        return "disk", f"wrote over the {limits.disk_mb} MB disk limit", rss
    return "ok", "", rss


def run(
    command: Sequence[str],
    mounts: Mounts,
    limits: Limits,
    log: Path,
    isolation: str = "bwrap",
    uid: int = BASE_UID,
    env: dict[str, str] | None = None,
) -> Outcome:
    """Run ``command`` in ``mounts.work`` under ``limits``; stdout and stderr go to ``log``.

    ``isolation``: "bwrap" or "rlimits" (see :func:`choose_isolation`). ``uid``: the
    unprivileged user of this run, leased with :func:`sandbox_user` (every process of it is
    killed when the run ends). Never raises for anything the
    command does: every end is an :class:`Outcome`.
    """
    work = Path(mounts.work)
    drop = None
    if isolation == "bwrap":
        argv = bwrap_command(command, mounts, uid)
    else:
        argv, drop = list(command), fallback_uid(uid)
    owner = uid if isolation == "bwrap" else drop  # the sandbox user, None: our own
    _give(work, owner)
    start = time.monotonic()
    status, reason, peak = "ok", "", 0
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            argv, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, preexec_fn=_preexec(limits, drop),
        )  # fmt: skip
        watched = psutil.Process(popen.pid)
        while popen.poll() is None:
            status, reason, rss = _broken_limit(watched, limits, start, out, work)
            peak = max(peak, rss)
            if status != "ok":
                _stop(popen, owner)
                break
            time.sleep(POLL_SECONDS)
        if owner is not None:  # strays (the PID namespace already took them under bwrap)
            _kill_user(owner)
        printed = os.fstat(out.fileno()).st_size
    seconds = time.monotonic() - start
    code = popen.returncode
    if status == "ok" and (code == -signal.SIGXFSZ or printed >= limits.file_mb * MB):
        status, reason = "output", f"wrote a file or output over the {limits.file_mb} MB limit"
    elif status == "ok" and code == -signal.SIGXCPU:
        status, reason = "timeout", f"used more than {limits.cpu_seconds} s of CPU time"
    elif status == "ok" and code != 0 and peak >= NEAR_LIMIT * limits.memory_mb * MB:
        status = "memory"
        reason = (f"exited with status {code} after using {peak / MB:.0f} MB of memory, at the "
                  f"{limits.memory_mb} MB limit")  # fmt: skip
    elif status == "ok" and code != 0:
        status, reason = "failed", f"exited with status {code}"
    return Outcome(status, reason, code, seconds, isolation)

"""Run untrusted code (a team's notebook) with limits, in a bubblewrap sandbox when possible.

Taught in the course appendix ("Running the competition"). :func:`run` starts a command and
watches it until it ends or breaks a limit; the :class:`Outcome` names what happened.

With bubblewrap (``bwrap``) and ``setpriv`` present and able to create namespaces
(``isolation="bwrap"``), the command sees:

* a new mount namespace holding only the system folders (``/usr``, ``/lib*``, ``/bin``, ``/etc``),
  the Python installation and the venv, the ``restorelab`` package, the public data (read-only),
  its own work folder (the only writable place besides a private ``/dev/shm``); nothing else of
  the host (no ``/home``, ``/root``, ``/tmp``, no private folder);
* a new network namespace with only its own loopback (no network at all);
* new PID, IPC and UTS namespaces: it sees only its own processes, and when the sandbox ends
  every process left in it is killed by the kernel;
* an unprivileged user (``uid``, leased by :func:`sandbox_user`: one per running job on the
  whole machine, so the process limit of one team never starves another and stopping one run,
  which kills every process of its user, never touches another grader's run) with no
  capabilities and ``no_new_privs``, in a user namespace that may create no other (no nested
  namespaces: no private mounts, no tmpfs of its own, no way around the limits).

Without bubblewrap (``isolation="rlimits"``) the command runs in a plain process group with the
same resource limits, as the unprivileged ``uid`` when we are root and that user can run the
interpreter; a warning says what is lost: no network isolation, the whole filesystem is visible
(the private folder is protected only by its 0700 permissions), and user namespaces are not
barred (the cgroup still counts whatever a nested one does).

Limits enforced by the kernel where we are root (:mod:`.cgroup`, :func:`work_folder`):

* memory (shared memory, tmpfs and memfd included, no swap), processes and a CPU quota: the
  run's own cgroup, which holds every process of the run (a double-forked one included); an
  out-of-memory kill there is "memory", a refused fork "processes"; at the end every process
  in it is killed and it is removed;
* disk: :func:`work_folder` mounts a tmpfs of ``disk_mb`` and ``disk_files`` inodes on the work
  folder, so deleted-but-open files, sparse files filled in and heaps of empty files all count
  and the run gets ``ENOSPC`` ("disk"). tmpfs pages are charged to the memory cgroup of the
  process that writes them, so the run's cgroup allows ``memory_mb + disk_mb`` when its folder
  is a tmpfs, and the watchdog stops a run whose memory, less the files it wrote in that
  folder, passes ``memory_mb`` (a cgroup pressed against its cap can thrash for many CPU
  seconds before the kernel kills anything).

Always: wall time and CPU time (the watchdog, ``RLIMIT_CPU``), ``RLIMIT_DATA`` (twice the memory
limit plus 1 GB per process), processes (``RLIMIT_NPROC``), the size of any one file
(``RLIMIT_FSIZE``: stdout and stderr are files, so printing without end is stopped by the
kernel). Where the kernel cannot (not root, no cgroup hierarchy, no mount rights) the watchdog
polls the resident memory and threads of the process tree and walks the work folder
(iteratively: allocated or apparent bytes, entries, depth), and :attr:`Outcome.warnings` says
so, one line each. Whatever ends a run, an error of the watchdog's own included, its processes
and cgroup are killed in a ``finally``; :func:`sandbox_user` removes every file its uid left in
the world-writable folders before the uid is leased again.
"""

import ctypes
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

from restorelab.competition.cgroup import CgroupUnavailable, RunCgroup
from restorelab.competition.trees import (
    MAX_DEPTH,
    remove_tree,
    remove_user_files,
    walk_entries,
)

MB = 1 << 20
BASE_UID = 61000  # sandbox users: BASE_UID ... BASE_UID + USERS - 1 (no passwd entry needed)
USERS = 1000
POLL_SECONDS = 0.1
CPU_GRACE = 5  # RLIMIT_CPU is this much above the limit: the watchdog stops a run first, by name
NEAR_LIMIT = 0.9  # a run that dies after its memory reached this share of the limit died of it
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
ISOLATIONS = ("auto", "bwrap", "rlimits")
FULL_BYTES = 64 << 10  # a tmpfs with less free is full
MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use. Memory and sizes in MB, times in seconds."""

    wall_seconds: float = 1800.0
    cpu_seconds: int = 3600
    memory_mb: int = 6000
    processes: int = 256  # processes and threads of the sandbox user
    file_mb: int = 512  # any one file, stdout and stderr included
    disk_mb: int = 2048  # everything in the work folder
    disk_files: int = 100_000  # files and folders in the work folder
    cpu_cores: float | None = None  # CPU time per second (a cgroup quota); None: no quota


@dataclasses.dataclass
class Outcome:
    """How a sandboxed run ended: ``status`` "ok", "failed" (non-zero exit) or a broken limit
    ("timeout", "memory", "processes", "output", "disk"); ``reason`` says it in words.
    ``peak_mb``: the most memory the kernel charged to the run (its cgroup; None without one);
    ``enforcement``: what enforced the limits; ``warnings``: one line per limit the kernel did
    not enforce in this run (no cgroup, no tmpfs work folder, nested user namespaces allowed)."""

    status: str
    reason: str
    returncode: int | None
    seconds: float
    isolation: str
    peak_mb: float | None = None
    enforcement: str = "watchdog"
    warnings: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class WorkFolder:
    """A run's work folder (see :func:`work_folder`): ``mounted`` when it is a tmpfs of
    ``disk_mb`` MB and ``files`` inodes; else ``warning`` says why not (one line)."""

    path: Path
    disk_mb: int
    files: int
    mounted: bool
    warning: str = ""

    def full(self) -> str | None:
        """Why the tmpfs is full (no room or no inode left), or None."""
        if not self.mounted:
            return None
        info = os.statvfs(self.path)
        if info.f_favail == 0:
            return f"made the {self.files} files and folders the disk limit allows"
        if info.f_bavail * info.f_frsize < FULL_BYTES:
            return f"filled the {self.disk_mb} MB disk limit"
        return None

    def used_bytes(self) -> int:
        """Bytes the files in the tmpfs hold now (0 when it is a plain folder): the pages a run
        writes there are charged to its memory cgroup, and the watchdog takes them off its
        memory use."""
        if not self.mounted:
            return 0
        info = os.statvfs(self.path)
        return (info.f_blocks - info.f_bfree) * info.f_frsize


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextmanager
def work_folder(path: Path, limits: Limits) -> Iterator[WorkFolder]:
    """Create ``path`` (absent or an empty folder) as a run's work folder for the ``with`` block.

    As root it is a tmpfs of ``limits.disk_mb`` MB and ``limits.disk_files`` inodes (nosuid,
    nodev): the kernel refuses any write past them. Prepare the run's files in it, :func:`run`
    with ``folder=`` it, read the results, all inside the block: at its end every process of the
    run is long gone, the tmpfs is unmounted and the folder removed, whatever it holds (any
    depth). Without mount rights it is a plain folder (the watchdog bounds it) with a warning.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if any(path.iterdir()):
        raise FileExistsError(f"{path}: a work folder must be new or empty")
    # 0700: the run's own user (run() gives it the folder) and root; no other team's run
    options = f"size={limits.disk_mb}m,nr_inodes={limits.disk_files},mode=0700".encode()
    mounted, warning = False, ""
    if os.geteuid() != 0:
        warning = "the work folder is not size-limited by the kernel (mounting a tmpfs needs root)"
    elif _libc().mount(b"tmpfs", bytes(path), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        error = os.strerror(ctypes.get_errno())
        warning = f"the work folder is not size-limited by the kernel (tmpfs mount: {error})"
    else:
        mounted = True
    try:
        yield WorkFolder(path, limits.disk_mb, limits.disk_files, mounted, warning)
    finally:
        if mounted and _libc().umount2(bytes(path), MNT_DETACH) != 0:
            raise OSError(ctypes.get_errno(), f"{path}: cannot unmount the work folder")
        remove_tree(path)


@contextmanager
def sandbox_user(lock_folder: Path | None = None) -> Iterator[int]:
    """Lease a sandbox uid no other run on this machine holds, for the ``with`` block.

    Each uid of ``BASE_UID`` ... ``BASE_UID + USERS - 1`` has a lock file in ``lock_folder``
    (default: ``restorelab-sandbox-users`` in the temporary folder); the lease is an exclusive
    ``flock`` on it, which the kernel releases even when the grader is killed. A uid that still
    runs processes (a crashed grader's strays; zombies do not count) is skipped. Two graders
    running at once (two instructors, two test workers) therefore never share a user. As root,
    every file the uid owns in the world-writable folders (:data:`WRITABLE_FOLDERS`) is removed
    when the lease starts (a crashed grader's leftovers) and when it ends (:func:`run` kills
    its processes).
    """
    folder = Path(lock_folder or Path(tempfile.gettempdir()) / "restorelab-sandbox-users")
    folder.mkdir(parents=True, exist_ok=True)
    busy = {process.info["uids"].real for process in _running()}  # as running_processes sees it
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
            _clean_user(uid)
            yield uid
        finally:
            try:
                _clean_user(uid)  # run() has killed its processes
            finally:
                handle.close()  # closing releases the lock
        return
    raise RuntimeError(f"all {USERS} sandbox users from uid {BASE_UID} are in use ({folder})")


def _clean_user(uid: int) -> None:
    if os.geteuid() == 0:
        remove_user_files(uid)


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


@lru_cache(maxsize=1)
def _userns_guard() -> tuple[list[str], list[str], str]:
    """How the sandboxed command is barred from creating user namespaces: (arguments of the
    outer bwrap, a command that wraps the sandboxed one, "") or ([], [], why it cannot be).
    Not root: ``--disable-userns`` on the sandbox's own user namespace. Root (whose bwrap makes
    no user namespace: one would map the sandbox's uid to root outside): a second bwrap, run as
    the sandbox user inside the first, whose own user namespace is ``--disable-userns``."""
    bwrap = shutil.which("bwrap") or "bwrap"
    try:
        usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [], [], f"nested user namespaces are allowed (bwrap --help: {error})"
    if "--disable-userns" not in usage.stdout + usage.stderr:
        return [], [], "nested user namespaces are allowed (this bwrap has no --disable-userns)"
    if os.geteuid() != 0:
        return ["--disable-userns"], [], ""
    # --dev-bind: the outer sandbox's /dev stays usable (--bind would make it nodev)
    inner = [bwrap, "--unshare-user", "--disable-userns", "--dev-bind", "/", "/",
             "--die-with-parent", "--"]  # fmt: skip
    probe = [bwrap, *_namespaces(), *_system_binds(), "--proc", "/proc", "--dev", "/dev",
             "--perms", "0755", "--dir", "/tmp", *_drop(BASE_UID), *inner, "/bin/true"]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return [], [], f"nested user namespaces are allowed (bwrap could not start: {error})"
    if done.returncode != 0:
        why = " ".join(done.stderr.split())[:200] or f"status {done.returncode}"
        return [], [], f"nested user namespaces are allowed (a nested bwrap failed: {why})"
    return [], inner, ""


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


def bwrap_command(
    command: Sequence[str], mounts: Mounts, uid: int, cwd: Path | None = None
) -> list[str]:
    """The bwrap + setpriv command line that runs ``command`` in the sandbox as ``uid``, in
    ``cwd`` (default: the work folder), barred from user namespaces where
    :func:`_userns_guard` can do it."""
    outer, inner, _ = _userns_guard()
    args = [shutil.which("bwrap") or "bwrap", *_namespaces(), *outer, *_system_binds()]
    for path in mounts.read_only:
        args += _bind(Path(path), "--ro-bind")
    args += _bind(Path(mounts.work), "--bind")
    # a private /dev/shm (DataLoader workers share memory there): its pages count as memory
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
             "--perms", "0755", "--dir", "/tmp", "--chdir", str(cwd or mounts.work)]  # fmt: skip
    return [*args, *_drop(uid), *inner, *command]


def _preexec(limits: Limits, uid: int | None, group: RunCgroup | None) -> Callable[[], None]:
    """Join the run's cgroup, set the resource limits and (in the fallback as root) drop to
    ``uid``, in the child before it starts the command."""

    def apply() -> None:
        os.setsid()
        if group is not None:
            group.join()
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


_RUNS_FOR_OTHERS: dict[str, bool] = {}  # interpreter -> whether a sandbox user can run it


def fallback_uid(uid: int) -> int | None:
    """The uid the fallback runs as: ``uid`` when we are root, None when we are not (the run is
    then our own). Raises :class:`PermissionError` when we are root and sandbox users cannot
    run this Python (probed once per interpreter, as ``uid``): the fallback never runs a
    submission as root."""
    if os.geteuid() != 0:
        return None
    if sys.executable not in _RUNS_FOR_OTHERS:
        try:
            done = subprocess.run([sys.executable, "-c", "import restorelab"], timeout=60,
                                  preexec_fn=_preexec(Limits(), uid, None), capture_output=True)  # fmt: skip
            _RUNS_FOR_OTHERS[sys.executable] = done.returncode == 0
        except (OSError, subprocess.SubprocessError):
            _RUNS_FOR_OTHERS[sys.executable] = False
    if not _RUNS_FOR_OTHERS[sys.executable]:
        raise PermissionError(
            f"uid {uid} cannot run {sys.executable} (a parent folder closed to other users?), "
            "and the rlimits fallback never runs submissions as root (they could read the "
            "private folder and change the machine): install bubblewrap, or grade with a Python "
            "every user can run (a virtual environment under /opt, say)"
        )
    return uid


def _give(work: Path, uid: int | None) -> None:
    """Make ``uid`` (the sandbox user) own the work folder and all in it (we are root)."""
    if uid is None or os.geteuid() != 0:
        return
    os.chown(work, uid, uid)
    for path, _, _ in walk_entries(work, Limits.disk_files):
        os.chown(path, uid, uid, follow_symlinks=False)


def _folder_usage(folder: Path, limits: Limits) -> str:
    """Why the work folder breaks the disk limit (the watchdog's walk), or ""."""
    total = count = 0
    for _, info, depth in walk_entries(folder, limits.disk_files + 1):
        count += 1
        total += max(info.st_size, info.st_blocks * 512)  # sparse and preallocated alike
        if depth > MAX_DEPTH:
            return f"nested folders deeper than {MAX_DEPTH} levels in its work folder"
    if count > limits.disk_files:
        return f"reached the limit of {limits.disk_files} files and folders in its work folder"
    if total > limits.disk_mb * MB:
        return f"wrote over the {limits.disk_mb} MB disk limit"
    return ""


def _tree_usage(process: psutil.Process, group: RunCgroup | None) -> tuple[int, int, float]:
    """Resident bytes and threads of ``process`` and all its descendants (of every process
    in ``group`` when there is one: a double-forked orphan is still in it), and the most CPU
    seconds any one of them has used (``RLIMIT_CPU`` counts per process)."""
    rss = threads = 0
    cpu = 0.0
    try:
        if group is not None:
            family = [psutil.Process(pid) for pid in group.pids() if psutil.pid_exists(pid)]
        else:
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


def _running() -> Iterator[psutil.Process]:
    """Every process that still runs, its ``info["uids"]`` filled in (zombies, which run no code
    and hold no memory, are left for their parents to reap)."""
    for process in psutil.process_iter(["uids", "status"]):
        if process.info["uids"] and process.info["status"] != psutil.STATUS_ZOMBIE:
            yield process


def running_processes(uid: int) -> list[psutil.Process]:
    """The processes of ``uid`` that still run (zombies do not count)."""
    return [process for process in _running() if process.info["uids"].real == uid]


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


def _stop(popen: subprocess.Popen | None, uid: int | None, group: RunCgroup | None) -> None:
    """Kill the run's process group, its cgroup (then removed) and its user's processes, each
    step done whatever the one before raised, and reap the run's first process."""
    try:
        if popen is not None:
            try:
                os.killpg(popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        try:
            if group is not None:
                group.close()
        finally:
            try:
                if uid is not None:
                    _kill_user(uid)
            finally:
                if popen is not None:
                    popen.wait()


@dataclasses.dataclass
class _Watch:
    """What the watchdog reads each poll: the run's first process, its cgroup (or None), its
    work folder (a tmpfs when ``folder`` is mounted), its log, and the most memory seen."""

    process: psutil.Process
    group: RunCgroup | None
    folder: WorkFolder | None
    work: Path
    log: object
    start: float
    given: int = 0  # bytes the work folder held before the run: written by us, charged to us
    peak: int = 0


def _killed(limits: Limits) -> str:
    return f"the kernel killed it at the {limits.memory_mb} MB memory limit (out of memory)"


def _disk(watch: _Watch, limits: Limits) -> str | None:
    """Why the work folder breaks the disk limit (the tmpfs is full, or the watchdog's walk)."""
    if watch.folder is not None and watch.folder.mounted:
        return watch.folder.full()
    return _folder_usage(watch.work, limits) or None


def _broken_limit(watch: _Watch, limits: Limits) -> tuple[str, str]:
    """("ok", "") while the run keeps to ``limits``, else (the limit's name, what happened);
    ``watch.peak`` keeps the most memory seen (with a cgroup: its anonymous and shared memory
    less what the tmpfs work folder has grown by since the start, the files the run wrote,
    which the disk limit bounds; the files the grader put there are charged to the grader)."""
    group = watch.group
    rss, threads, cpu = _tree_usage(watch.process, group)
    used = rss
    if group is not None:  # the cgroup also holds the files the run wrote in its tmpfs folder
        written = watch.folder.used_bytes() - watch.given if watch.folder is not None else 0
        used = max(0, group.unreclaimable_bytes() - max(0, written))
    watch.peak = max(watch.peak, used)
    if time.monotonic() - watch.start > limits.wall_seconds:
        return "timeout", f"ran past the {limits.wall_seconds:g} s wall-time limit"
    if group is not None and group.oom_kills():
        return "memory", _killed(limits)
    if used > limits.memory_mb * MB:  # before the CPU time: a cgroup near its cap thrashes
        return "memory", f"used {used / MB:.0f} MB of memory, over the {limits.memory_mb} MB limit"
    if cpu > limits.cpu_seconds:
        return "timeout", f"used the {limits.cpu_seconds} s CPU-time limit of one process"
    if group is not None and group.processes_refused():
        return "processes", f"reached the limit of {limits.processes} processes and threads"
    if group is None and threads >= limits.processes - 1:
        return "processes", f"reached the limit of {limits.processes} processes and threads"
    if os.fstat(watch.log.fileno()).st_size >= limits.file_mb * MB:
        return "output", f"printed over the {limits.file_mb} MB output limit"
    full = _disk(watch, limits)
    if full:
        return "disk", full
    return "ok", ""


def run(
    command: Sequence[str],
    mounts: Mounts,
    limits: Limits,
    log: Path,
    isolation: str = "bwrap",
    uid: int = BASE_UID,
    env: dict[str, str] | None = None,
    folder: WorkFolder | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """Run ``command`` in ``mounts.work`` under ``limits``; stdout and stderr go to ``log``.

    ``isolation``: "bwrap" or "rlimits" (see :func:`choose_isolation`). ``uid``: the
    unprivileged user of this run, leased with :func:`sandbox_user` (every process of it is
    killed when the run ends). ``folder``: the :func:`work_folder` of ``mounts.work`` (the
    kernel then enforces the disk limit; None: the watchdog walks the folder). ``cwd``: where
    the command starts (default: the work folder; give one the team does not control, e.g.
    ``/``, with ``python -I``). Never raises for anything the command does: every end is an
    :class:`Outcome`. Whatever raises here (the watchdog included), every process of the run
    and of ``uid`` is killed and its cgroup removed before it returns.
    """
    work = Path(mounts.work)
    drop, warnings, kernel = None, [], []
    if isolation == "bwrap":
        argv = bwrap_command(command, mounts, uid, cwd)
        guard = _userns_guard()[2]
        warnings += [guard] if guard else []
        kernel += [] if guard else ["no user namespaces"]
    else:
        argv, drop = list(command), fallback_uid(uid)
        warnings.append("nested user namespaces are allowed (the fallback has no bwrap)")
    owner = uid if isolation == "bwrap" else drop  # the sandbox user, None: our own
    tmpfs = folder is not None and folder.mounted
    if tmpfs:
        kernel.append("tmpfs work folder")
    else:
        warnings.append(folder.warning if folder is not None else "the work folder is not "
                        "size-limited by the kernel (no work_folder): the watchdog walks it")  # fmt: skip
    group = None
    try:  # tmpfs pages are charged to the process that writes them: the cgroup allows both
        memory = (limits.memory_mb + (limits.disk_mb if tmpfs else 0)) * MB
        group = RunCgroup(f"restorelab-{uid}", memory, limits.processes, limits.cpu_cores)
        kernel.insert(0, f"cgroup v{group.version}")
    except CgroupUnavailable as error:
        warnings.append(f"{error}: the watchdog polls memory and processes")
    status, reason, popen = "ok", "", None
    start = time.monotonic()
    try:
        _give(work, owner)
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                argv, cwd=cwd or work, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_preexec(limits, drop, group),
            )  # fmt: skip
            given = folder.used_bytes() if folder is not None else 0
            watch = _Watch(psutil.Process(popen.pid), group, folder, work, out, start, given)
            while popen.poll() is None:
                status, reason = _broken_limit(watch, limits)
                if status != "ok":
                    break
                time.sleep(POLL_SECONDS)
            if status == "ok":  # what the kernel stopped, seen after the end
                status, reason = _after_end(watch, limits, popen.returncode)
            peak = group.memory_peak() if group is not None else None
    finally:
        _stop(popen, owner, group)
    return Outcome(status, reason, popen.returncode, time.monotonic() - start, isolation,
                   None if peak is None else round(peak / MB, 1),
                   ", ".join(kernel) or "watchdog", tuple(warnings))  # fmt: skip


def _after_end(watch: _Watch, limits: Limits, code: int) -> tuple[str, str]:
    """The status of a run that ended by itself with ``code``."""
    if watch.group is not None and watch.group.oom_kills():
        return "memory", _killed(limits)
    if code == -signal.SIGXFSZ or os.fstat(watch.log.fileno()).st_size >= limits.file_mb * MB:
        return "output", f"wrote a file or output over the {limits.file_mb} MB limit"
    if code == -signal.SIGXCPU:
        return "timeout", f"used more than {limits.cpu_seconds} s of CPU time"
    if code != 0 and (full := _disk(watch, limits)):
        return "disk", full
    if code != 0 and watch.group is not None and watch.group.processes_refused():
        return "processes", f"reached the limit of {limits.processes} processes and threads"
    if code != 0 and watch.peak >= NEAR_LIMIT * limits.memory_mb * MB:
        return "memory", (f"exited with status {code} after using {watch.peak / MB:.0f} MB of "
                          f"memory, at the {limits.memory_mb} MB limit")  # fmt: skip
    if code != 0:
        return "failed", f"exited with status {code}"
    return "ok", ""

"""One sandboxed run's own cgroup: memory, process and CPU limits the kernel enforces.

Taught in the course appendix ("Running the competition"). :class:`RunCgroup` creates the
cgroup (root only), the run's first process joins it before it starts the command
(:meth:`RunCgroup.join`), and every process it starts is counted: memory (anonymous, shared
memory, tmpfs and memfd pages alike, no swap), processes and threads, CPU share. At the end
:meth:`RunCgroup.close` kills every process in it and removes it.

cgroup v2 (one ``cgroup2`` filesystem) is preferred: the cgroup is created directly under its
root with ``memory.max``, ``memory.swap.max`` 0, ``pids.max`` and ``cpu.max``; the report reads
``memory.peak`` and ``memory.events`` (``oom_kill``). Where the memory and pids controllers are
only mounted as v1 hierarchies (a "hybrid" machine), the same is done there: ``memory`` (under
our own memory cgroup, so a container's limit still holds) with ``memory.limit_in_bytes``,
``memory.memsw.limit_in_bytes`` when swap is accounted, ``memory.max_usage_in_bytes`` and
``memory.oom_control``; ``pids`` with ``pids.max``; ``cpu`` with ``cpu.cfs_quota_us`` when it
can be written.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

PERIOD_US = 100_000  # the CPU quota's period
_names = itertools.count()


class CgroupUnavailable(OSError):
    """No cgroup can be made here; the message says why in one line."""


def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _keyed(path: Path, key: str) -> int:
    """The number after ``key`` in a flat-keyed file such as ``memory.events``; 0 if absent."""
    try:
        for line in _read(path).splitlines():
            name, _, number = line.partition(" ")
            if name == key:
                return int(number)
    except (OSError, ValueError):
        pass
    return 0


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each mount, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            tail = fields[fields.index("-") + 1 :]
            found.append((fields[4].replace("\\040", " "), tail[0], tail[-1]))
    return found


def _own_v1_path(controller: str) -> str:
    """Our own cgroup in the v1 hierarchy of ``controller`` (from /proc/self/cgroup)."""
    with open("/proc/self/cgroup") as handle:
        for line in handle:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path.lstrip("/")
    return ""


def _v2_root() -> Path | None:
    """The cgroup2 mount whose root offers the memory and pids controllers, if any."""
    for point, kind, _ in _mounts():
        if kind == "cgroup2":
            controllers = _read(Path(point) / "cgroup.controllers").split()
            if {"memory", "pids"} <= set(controllers):
                return Path(point)
    return None


def _v1_roots() -> dict[str, Path]:
    """Mount points of the v1 hierarchies of the memory, pids and cpu controllers."""
    roots = {}
    for point, kind, options in _mounts():
        if kind == "cgroup":
            for controller in ("memory", "pids", "cpu"):
                if controller in options.split(","):
                    roots[controller] = Path(point)
    return roots


class RunCgroup:
    """The cgroup ``name``-PID-N of one run, made (as root) with these limits: ``memory_bytes``
    (no swap), ``processes`` (processes and threads), ``cpu_cores`` (CPU time per second; None:
    no quota). Raises :class:`CgroupUnavailable` saying why none can be made. ``version`` is 1
    or 2; ``folders`` its directories (one on v2, one per controller on v1)."""

    def __init__(
        self, name: str, memory_bytes: int, processes: int, cpu_cores: float | None = None
    ) -> None:
        if os.geteuid() != 0:
            raise CgroupUnavailable("no cgroup: making one needs root")
        unique = f"{name}-{os.getpid()}-{next(_names)}"
        self.version, self.folders = 0, {}  # filled in below; close() removes what was made
        try:
            root = _v2_root()
            if root is not None:
                self.version = 2
                self._create_v2(root / unique, memory_bytes, processes, cpu_cores)
                return
            roots = _v1_roots()
            if {"memory", "pids"} <= set(roots):
                self.version = 1
                self._create_v1(roots, unique, memory_bytes, processes, cpu_cores)
                return
        except OSError as error:
            self.close()
            raise CgroupUnavailable(f"no cgroup could be made ({error})") from error
        raise CgroupUnavailable("no cgroup hierarchy offers the memory and pids controllers")

    def _create_v2(self, folder: Path, memory_bytes: int, processes: int, cores: float | None):
        offered = _read(folder.parent / "cgroup.controllers").split()
        wanted = [c for c in ("memory", "pids", "cpu") if c in offered]
        _write(folder.parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        folder.mkdir()
        self.folders["all"] = folder
        _write(folder / "memory.max", str(memory_bytes))
        if (folder / "memory.swap.max").exists():
            _write(folder / "memory.swap.max", "0")
        _write(folder / "pids.max", str(processes))
        if cores and "cpu" in wanted:
            _write(folder / "cpu.max", f"{int(cores * PERIOD_US)} {PERIOD_US}")

    def _create_v1(self, roots, unique: str, memory_bytes: int, processes: int, cores):
        for controller in ("memory", "pids", "cpu"):
            if controller == "cpu" and not (cores and controller in roots):
                continue
            folder = roots[controller] / _own_v1_path(controller) / unique
            folder.mkdir()
            self.folders[controller] = folder
        memory = self.folders["memory"]
        _write(memory / "memory.limit_in_bytes", str(memory_bytes))
        if (memory / "memory.memsw.limit_in_bytes").exists():  # swap is accounted: none
            _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
        else:
            _write(memory / "memory.swappiness", "0")
        _write(self.folders["pids"] / "pids.max", str(processes))
        if "cpu" in self.folders:
            _write(self.folders["cpu"] / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.folders["cpu"] / "cpu.cfs_quota_us", str(int(cores * PERIOD_US)))

    def join(self) -> None:
        """Move the calling process into the cgroup (called in the child before it starts the
        command: everything it starts is then inside). Low-level calls only (after fork)."""
        for folder in self.folders.values():
            handle = os.open(folder / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(handle, b"0")
            finally:
                os.close(handle)

    def _file(self, controller: str, name: str) -> Path:
        return self.folders["all" if self.version == 2 else controller] / name

    def memory_bytes(self) -> int:
        """Memory the run uses now (page cache included)."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int(_read(self._file("memory", name)))

    def memory_peak(self) -> int:
        """The most memory the run used at once (polled ``memory.current`` where the kernel has
        no ``memory.peak``)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(self._file("memory", name)))
        except (OSError, ValueError):
            return self.memory_bytes()

    def unreclaimable_bytes(self) -> int:
        """Anonymous and shared memory (incl. tmpfs and memfd) of the run: what cannot be
        dropped like page cache, so what the limit is really about."""
        stat = self._file("memory", "memory.stat")
        if self.version == 2:
            return _keyed(stat, "anon") + _keyed(stat, "shmem")
        return _keyed(stat, "total_rss") + _keyed(stat, "total_shmem")

    def oom_kills(self) -> int:
        """How many processes the kernel killed for breaking the memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _keyed(self._file("memory", name), "oom_kill")

    def processes_refused(self) -> int:
        """How many times a fork or new thread was refused at the process limit."""
        return _keyed(self._file("pids", "pids.events"), "max")

    def pids(self) -> set[int]:
        """The processes in the cgroup now."""
        found: set[int] = set()
        for folder in self.folders.values():
            try:
                found.update(int(line) for line in _read(folder / "cgroup.procs").split())
            except (OSError, ValueError):
                pass
        return found

    def kill(self, seconds: float = 10.0) -> bool:
        """SIGKILL every process in the cgroup (``cgroup.kill`` on v2, else each pid of
        ``cgroup.procs`` again and again, as a fork may race the kill) until none is left;
        True when it is empty."""
        deadline = time.monotonic() + seconds
        one_shot = self.folders["all"] / "cgroup.kill" if "all" in self.folders else None
        while (pids := self.pids()) and time.monotonic() < deadline:
            if one_shot is not None and one_shot.exists():
                try:
                    _write(one_shot, "1")
                except OSError:
                    one_shot = None
            else:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.02)
        return not self.pids()

    def close(self) -> None:
        """Kill what is left and remove the cgroup's directories."""
        self.kill()
        for folder in self.folders.values():
            for _ in range(100):  # exiting processes leave the cgroup a moment after the kill
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)

"""Read what a team left behind without being blocked, fed or misled by it.

Taught in the course appendix ("Running the competition"). Everything the grader reads from a
team's work folder (the executed notebook, the log, ``outputs/*``, ``model.json``, the weights,
the verification result) goes through :func:`read_file`: the file is opened with
``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link is refused, a FIFO or device never blocks the
open), checked with ``fstat`` to be a regular file of at most ``limit`` bytes, and read by
that size (a file that grows while it is read gives no more). A team's folder is copied by
:func:`copy_tree`: folder by folder through descriptors, never following links, bounded in
depth, entries and bytes.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from restorelab.competition.trees import FOLDER_FLAGS, FolderWalk

MB = 1 << 20
MAX_DEPTH = 16
MAX_ENTRIES = 10_000


class UntrustedFileError(ValueError):
    """A file or folder of a team's cannot be read safely; the message names it."""


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    return "a special file"


@contextlib.contextmanager
def _open_regular(
    path: str | Path, limit: int, folder_fd: int | None, name: str, last: bool
) -> Iterator[tuple[int, int]]:
    """(descriptor, bytes to read) of the regular file ``path``: see :func:`read_file`."""
    label = name or Path(path).name
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags, dir_fd=folder_fd)
    except FileNotFoundError:
        raise UntrustedFileError(f"{label}: missing") from None
    except OSError as error:  # ELOOP: the last component is a symbolic link
        if error.errno == 40:
            raise UntrustedFileError(f"{label}: a symbolic link, not a file (refused)") from None
        raise UntrustedFileError(f"{label}: cannot be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFileError(
                f"{label}: {_describe(info.st_mode)}, not a regular file (refused)"
            )
        size = info.st_size
        if size > limit and last:
            os.lseek(fd, size - limit, os.SEEK_SET)
            size = limit
        elif size > limit:
            raise UntrustedFileError(
                f"{label}: {info.st_size} bytes, over the {limit / MB:g} MB limit"
            )
        yield fd, size
    finally:
        os.close(fd)


def _chunks(fd: int, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = os.read(fd, min(left, 8 * MB))
        if not chunk:
            return
        yield chunk
        left -= len(chunk)


def read_file(
    path: str | Path, limit: int, folder_fd: int | None = None, name: str = "", last: bool = False
) -> bytes:
    """The bytes of the regular file ``path`` (relative to the open folder ``folder_fd`` when
    given), at most ``limit`` of them; raises :class:`UntrustedFileError` naming ``name`` (default:
    the file's name) when it is missing, a link, a FIFO, a folder or larger than ``limit``.
    ``last``: read the last ``limit`` bytes of a larger file instead of refusing it (a log)."""
    with _open_regular(path, limit, folder_fd, name, last) as (fd, size):
        return b"".join(_chunks(fd, size))


def open_folder(path: str | Path, folder_fd: int | None = None, name: str = "") -> int:
    """A descriptor of the folder ``path`` (not followed when it is a link); close it."""
    label = name or Path(path).name
    try:
        return os.open(path, FOLDER_FLAGS, dir_fd=folder_fd)
    except FileNotFoundError:
        raise UntrustedFileError(f"{label}: missing") from None
    except OSError:  # ELOOP or ENOTDIR: a link, a file, a FIFO, ...
        raise UntrustedFileError(f"{label}: not a folder (a link or a file; refused)") from None


def copy_tree(
    source: str | Path, target: Path, file_limit: int, total_limit: int,
    max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES,
) -> None:  # fmt: skip
    """Copy the folders and regular files under ``source`` into the empty folder ``target``;
    links, FIFOs and devices are skipped. Every folder is opened by descriptor relative to the
    one above it, never following a link, and every file by :func:`read_file`'s checks relative
    to its folder's descriptor: a folder swapped for a link while the copy runs (into the
    private truth, say) is refused, not followed. Raises :class:`UntrustedFileError` past
    ``max_depth`` levels, ``max_entries`` entries, a file over ``file_limit`` bytes or
    ``total_limit`` bytes in all (before they land on the disk)."""
    root = Path(source)
    target.mkdir(parents=True, exist_ok=True)
    entries = total = 0
    with FolderWalk(open_folder(root), target) as walk:
        for folder_fd, depth, out in walk:
            names = _sorted_names(folder_fd, max_entries - entries)
            entries += len(names)
            if entries > max_entries:
                raise UntrustedFileError(f"{root.name}: over {max_entries} entries (refused)")
            for name in names:
                label = str((out / name).relative_to(target))
                try:
                    mode = os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(mode) and depth + 1 > max_depth:
                    raise UntrustedFileError(f"{root.name}/{label}: deeper than {max_depth} levels")
                if stat.S_ISDIR(mode):
                    (out / name).mkdir()
                    walk.push(open_folder(name, folder_fd, label), depth + 1, out / name)
                elif stat.S_ISREG(mode):
                    size = _copy_file(name, folder_fd, label, out / name, file_limit,
                                      total_limit - total)  # fmt: skip
                    if size is None:
                        raise UntrustedFileError(
                            f"{root.name}: over {total_limit / MB:g} MB in all (refused)"
                        )
                    total += size


def _sorted_names(folder_fd: int, at_most: int) -> list[str]:
    """The names in the open folder, sorted; at most ``at_most`` + 1 are listed (one more than
    allowed tells the caller the folder is over)."""
    with os.scandir(folder_fd) as listing:
        return sorted(entry.name for entry, _ in zip(listing, range(at_most + 1), strict=False))


def _copy_file(
    name: str, folder_fd: int, label: str, target: Path, limit: int, room: int
) -> int | None:
    """Copy the regular file ``name`` of the open folder to ``target`` 8 MB at a time, with
    :func:`read_file`'s checks; returns its size, or None (nothing written) when it is over
    ``room`` bytes."""
    with _open_regular(name, limit, folder_fd, label, False) as (fd, size):
        if size > room:
            return None
        with open(target, "xb") as copy:
            for chunk in _chunks(fd, size):
                copy.write(chunk)
    return size

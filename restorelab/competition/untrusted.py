"""Read what a team left behind without being blocked, fed or misled by it.

Taught in the course appendix ("Running the competition"). Everything the grader reads from a
team's work folder (the executed notebook, the log, ``outputs/*``, ``model.json``, the weights,
the verification result) goes through :func:`read_file`: the file is opened with
``O_NOFOLLOW | O_NONBLOCK`` (a symbolic link is refused, a FIFO or device never blocks the
open), checked with ``fstat`` to be a regular file of at most ``limit`` bytes, and read by
that size (a file that grows while it is read gives no more). Folders are listed by
:func:`walk`: iteratively, never following links, bounded in depth and entries.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from restorelab.competition.trees import walk_entries

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


def copy_file(path: str | Path, target: Path, limit: int, name: str = "") -> None:
    """Copy the regular file ``path`` to ``target`` 8 MB at a time (the grader never holds a
    team's weights whole), with the checks of :func:`read_file`."""
    with _open_regular(path, limit, None, name, False) as (fd, size), open(target, "xb") as out:
        for chunk in _chunks(fd, size):
            out.write(chunk)


def open_folder(path: str | Path, folder_fd: int | None = None, name: str = "") -> int:
    """A descriptor of the folder ``path`` (not followed when it is a link); close it."""
    label = name or Path(path).name
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(path, flags, dir_fd=folder_fd)
    except FileNotFoundError:
        raise UntrustedFileError(f"{label}: missing") from None
    except OSError:  # ELOOP or ENOTDIR: a link, a file, a FIFO, ...
        raise UntrustedFileError(f"{label}: not a folder (a link or a file; refused)") from None


def walk(
    folder: str | Path, max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES
) -> list[tuple[Path, str]]:
    """Every entry under ``folder`` as (path relative to it, "file" | "folder" | "other"),
    sorted, links never followed (they are "other"); raises :class:`UntrustedFileError` past
    ``max_depth`` levels or ``max_entries`` entries (the walk itself:
    :func:`restorelab.competition.trees.walk_entries`)."""
    root = Path(folder)
    found: list[tuple[Path, str]] = []
    for path, info, depth in walk_entries(root, max_entries + 1):
        relative = Path(path).relative_to(root)
        if len(found) >= max_entries:
            raise UntrustedFileError(f"{root.name}: over {max_entries} entries (refused)")
        kind = ("folder" if stat.S_ISDIR(info.st_mode)
                else "file" if stat.S_ISREG(info.st_mode) else "other")  # fmt: skip
        if kind == "folder" and depth > max_depth:
            raise UntrustedFileError(f"{root.name}/{relative}: deeper than {max_depth} levels")
        found.append((relative, kind))
    return sorted(found)

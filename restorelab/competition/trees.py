"""Folder trees a team controls: walked and removed iteratively, never following a link.

Taught in the course appendix ("Running the competition"). A team's run can leave a tree of
any depth or width (a recursive walk dies of RecursionError past ~1,000 levels) and, in the
fallback without bubblewrap, files in the machine's world-writable folders.
:func:`walk_entries` walks a work folder for the watchdog, bounded in depth and entries;
:func:`remove_tree` and :func:`remove_user_files` remove what a run left, through folder
descriptors (``openat`` with ``O_NOFOLLOW``), so a link swapped in by another user mid-way never
leads the grader (root) outside the tree. :class:`FolderWalk` is the descriptor walk that
:func:`remove_user_files` and :func:`restorelab.competition.untrusted.copy_tree` share.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

MAX_DEPTH = 64  # the watchdog's walk of a work folder: deeper is a broken disk limit
WRITABLE_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")  # where any user may write
OPEN_FOLDERS = 32  # the most folders a removal holds open (deeper ones are moved up first)
MAX_CLEANUP_ENTRIES = 2_000_000  # entries one removal may visit


def walk_entries(folder: Path, max_entries: int) -> Iterator[tuple[str, os.stat_result, int]]:
    """(path, lstat, depth) of the entries below ``folder`` (depth 1: in it), iteratively,
    links never followed, at most ``max_entries`` of them and none below depth
    :data:`MAX_DEPTH` + 1; entries that vanish or cannot be listed are skipped (an entry removed
    while its folder is listed costs only itself: a team deleting files as it writes others
    cannot hide the rest of the folder from the disk watchdog)."""
    pending, count = [(str(folder), 0)], 0
    while pending:
        path, depth = pending.pop()
        try:
            with os.scandir(path) as listing:
                for entry in listing:
                    count += 1
                    if count > max_entries:
                        return
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield entry.path, info, depth + 1
                    if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                        pending.append((entry.path, depth + 1))
        except OSError:
            continue


FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class FolderWalk:
    """Folders visited through descriptors, the last pushed first, in a ``with`` block:
    iterating gives (descriptor, depth, note) of each; :meth:`push` adds a folder the caller
    opened (relative to its parent's descriptor, with :data:`FOLDER_FLAGS`: a link swapped in
    is never followed). A folder's descriptor is closed when the next one is visited, and every
    one still open when the block ends, however it ends."""

    def __init__(self, top: int, note: object = None) -> None:
        self._pending: list[tuple[int, int, object]] = [(top, 0, note)]
        self._current: int | None = None

    def __enter__(self) -> FolderWalk:
        return self

    def __exit__(self, *_: object) -> None:
        self._release()
        while self._pending:
            os.close(self._pending.pop()[0])

    def push(self, folder: int, depth: int, note: object = None) -> None:
        self._pending.append((folder, depth, note))

    def __iter__(self) -> Iterator[tuple[int, int, object]]:
        while self._pending:
            self._release()
            visit = self._pending.pop()
            self._current = visit[0]
            yield visit
        self._release()

    def _release(self) -> None:
        if self._current is not None:
            os.close(self._current)
            self._current = None


def _spend(budget: list[int], what: str) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise OSError(errno.E2BIG, f"{what}: too many entries to remove, some are left")


def _remove_at(parent: int, name: str, budget: list[int]) -> None:
    """Remove the entry ``name`` of the open folder ``parent`` and everything below it, never
    following a link. Iterative, with at most :data:`OPEN_FOLDERS` folders open: a folder
    deeper than that is first moved up into the top one (any depth is removed). Each entry
    spends one of ``budget[0]``; OSError when it is spent."""
    try:
        os.unlink(name, dir_fd=parent)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    top = os.open(name, FOLDER_FLAGS, dir_fd=parent)
    stack: list[list] = [[top, name, parent, None]]  # [fd, name, parent fd, subfolders left]
    moved = 0
    try:
        while stack:
            level = stack[-1]
            if level[3] is None:
                level[3] = []
                with os.scandir(level[0]) as entries:
                    for entry in entries:
                        _spend(budget, name)
                        if entry.is_dir(follow_symlinks=False):
                            level[3].append(entry.name)
                        else:
                            try:
                                os.unlink(entry.name, dir_fd=level[0])
                            except FileNotFoundError:
                                pass
            if not level[3]:
                stack.pop()
                os.close(level[0])
                os.rmdir(level[1], dir_fd=level[2])
                continue
            child = level[3].pop()
            if len(stack) < OPEN_FOLDERS:
                try:
                    stack.append([os.open(child, FOLDER_FLAGS, dir_fd=level[0]), child, level[0],
                                  None])  # fmt: skip
                except FileNotFoundError:
                    pass
                continue
            while True:  # too deep: move it up into the top folder, under a free name
                moved += 1
                try:
                    os.rename(child, f".up{moved}", src_dir_fd=level[0], dst_dir_fd=top)
                    break
                except OSError as error:
                    if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                        raise
            stack[0][3].append(f".up{moved}")
    finally:
        for level in stack:
            os.close(level[0])


def remove_tree(path: str | Path, limit: int = MAX_CLEANUP_ENTRIES) -> None:
    """Remove ``path`` and everything below it (links removed, never followed), however deep
    or wide, in at most ``limit`` entries; OSError naming it when more are left."""
    path = Path(path)
    parent = os.open(path.parent, FOLDER_FLAGS)
    try:
        _remove_at(parent, path.name, [limit])
    finally:
        os.close(parent)


def remove_user_files(
    uid: int, folders: Sequence[str] = WRITABLE_FOLDERS, limit: int = MAX_CLEANUP_ENTRIES
) -> int:
    """Remove everything ``uid`` owns in ``folders`` and in the world-writable folders below
    them (the only places it could write), never following a link; iterative, at most
    :data:`MAX_DEPTH` levels and ``limit`` entries. Returns how many entries were removed
    (a folder counts once; its System V IPC objects are removed too); OSError when the limit
    left some."""
    budget, removed = [limit], 0
    for top in folders:
        try:
            walk = FolderWalk(os.open(top, FOLDER_FLAGS))
        except OSError:  # missing here
            continue
        with walk:
            for folder, depth, _ in walk:
                with os.scandir(folder) as entries:
                    listed = []
                    for entry in entries:
                        _spend(budget, top)
                        try:
                            listed.append((entry.name, entry.stat(follow_symlinks=False)))
                        except FileNotFoundError:
                            pass
                for name, info in listed:
                    if info.st_uid == uid:
                        _remove_at(folder, name, budget)
                        removed += 1
                    elif (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_IWOTH
                          and depth < MAX_DEPTH):  # fmt: skip
                        try:
                            walk.push(os.open(name, FOLDER_FLAGS, dir_fd=folder), depth + 1)
                        except OSError:
                            pass
    for kind, flag in (("shm", "-m"), ("msg", "-q"), ("sem", "-s")):
        try:
            header, *rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        column = header.split().index("uid")
        for row in rows:
            if int(row.split()[column]) == uid:
                subprocess.run(["ipcrm", flag, row.split()[1]], capture_output=True, timeout=30)
    return removed

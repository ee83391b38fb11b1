"""Rotating a journal by size: `journal.log` -> `journal.log.1` -> ... -> `journal.log.<N>`.

The journal is appended to by many processes, each opening it per change. A rotation must not
lose a line that a writer holding the old file is about to write, nor let it land in a file
that is dropped. The two sides agree on one lock, flock(2) on the journal file itself:

- a writer, just before its `write()`, takes a shared lock on the file it opened and checks
  that the journal's name still leads to that file (`is_current`); if not (a rotation happened
  since it opened it), it opens the name again. So a line only ever lands in the current file.
- the rotator takes the exclusive lock on the current file, checks it is still current and
  still over the limit, shifts `.1..N-1` up by one (the oldest falls off), links the file as
  `.1`, and renames a fresh empty file (same mode; as root, same owner) over the name. The name
  never goes missing, so no writer creates a file of its own beside the rotation.

A writer holds its shared lock for the `write()` alone, so a rotation waits microseconds; the
rotator only tries for a few milliseconds and otherwise leaves it to the next append past the
limit. Readers take no lock: they open the current file and every rotation first (newest
first, the order a rotation never skips), skip a file met twice, and read each to the size
it had when opened (`hps_api.store.journal.newest_first`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path

from hps_api.store.files import temp_name

#: how long a rotation tries for the exclusive lock before leaving it to a later append
LOCK_TRIES = 20
_LOCK_POLL_SECONDS = 0.0005


def rotated(path: Path, number: int) -> Path:
    """Return the name of rotation `number` of a journal (`journal.log.1` is the newest)."""
    return path.with_name(f"{path.name}.{number}")


def rotations(path: Path) -> list[Path]:
    """Return the journal's rotations that exist, newest first (`.1`, `.2`, ...)."""
    pattern = re.compile(re.escape(path.name) + r"\.([1-9][0-9]{0,5})")
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    found = sorted((int(m.group(1)), m.group(0)) for m in map(pattern.fullmatch, names) if m)
    return [path.with_name(name) for _, name in found]


def is_current(fd: int, path: Path) -> bool:
    """Return True when `path` still names the file open as `fd` (no rotation since)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def rotate(path: Path, max_bytes: int, keep: int) -> bool:
    """Rotate the journal when it is larger than `max_bytes`, keeping `keep` rotations (0: the
    old lines are dropped); return True when it did.

    False when another process rotated it meanwhile, it is not over the limit after all, or its
    lock stayed taken (writers hold it for microseconds; the next append past the limit tries
    again). Raises OSError when the files cannot be renamed (the caller's write stands).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if not _lock_exclusive(fd):
            return False
        st = os.fstat(fd)
        if st.st_size <= max_bytes or not is_current(fd, path):
            return False
        fresh = _empty_like(path, st)
        _shift(path, keep)
        if keep:
            os.link(path, rotated(path, 1))
        os.replace(fresh, path)
        return True
    finally:
        os.close(fd)  # releases the lock: waiting writers find a new current file


def _lock_exclusive(fd: int) -> bool:
    for _ in range(LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            time.sleep(_LOCK_POLL_SECONDS)
    return False


def _empty_like(path: Path, st: os.stat_result) -> Path:
    """Return a new empty file beside the journal with its mode and, as root, its owner."""
    fresh = temp_name(path)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.fchown(fd, st.st_uid, st.st_gid)
    except BaseException:
        os.close(fd)
        os.unlink(fresh)
        raise
    os.close(fd)
    return fresh


def _shift(path: Path, keep: int) -> None:
    """Make room for a new `.1`: drop rotations beyond `keep - 1`, move the others up by one,
    the oldest first (so a reader opening them newest first never misses one)."""
    for old in rotations(path):
        number = int(old.name.rsplit(".", 1)[1])
        if number >= keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(old)
    for number in range(keep - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(rotated(path, number), rotated(path, number + 1))

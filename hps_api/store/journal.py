"""The append-only change journal: one JSON object per line, one line per changed key.

Lines are appended with a single `write()` on an `O_APPEND` descriptor, so concurrent writers never
interleave inside a line. The journal is history for people (`host_config MAC history`, the web
UI); the record files are the truth, so a crash between a record's replace and its journal line
loses at most that line and the journal is not fsynced. A journal that cannot be written is
another matter: the store opens it before a change (`appender`) and takes the change back when
the line is refused (FileStore._commit), so a change is never made without its line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hps_api.store.files import unwritable

REDACTED = "<redacted>"
#: told of every append that landed, with its number of lines. The store imports nothing above
#: itself, so whoever counts journal writes (hps_api.observe.metrics) adds itself here; a
#: listener must not raise.
WRITE_LISTENERS: list[Callable[[int], None]] = []


@dataclass(frozen=True)
class Change:
    """One changed key: `old`/`new` are None when the key was not set before / after."""

    time: str
    record: str
    key: str
    old: str | None
    new: str | None
    actor: str


def utc_now() -> str:
    """Return the current UTC time as ISO-8601 with seconds and a `Z`."""
    global _last_stamp
    second = int(time.time())
    last = _last_stamp  # one tuple, read once: safe without a lock between threads
    if last[0] != second:
        last = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        _last_stamp = last
    return last[1]


# A write stamps UPDATED, LAST_SEEN and each journal line: formatting once per second is enough.
_last_stamp: tuple[int, str] = (-1, "")


def append(path: Path, changes: list[Change]) -> None:
    """Append changes to a journal file (created on first use); StoreUnavailable when it
    cannot be written."""
    if changes:
        with appender(path) as write:
            write(changes)


@contextlib.contextmanager
def appender(path: Path) -> Iterator[Callable[[list[Change]], None]]:
    """Open a journal for appending (created on first use) and yield the function that appends
    changes with one `write()`.

    Opened before the change it records is made, so a journal that cannot be opened (a
    directory in its place, an immutable file, a read-only filesystem) refuses the change
    before anything moves. Raises StoreUnavailable; a write cut short by a full disk is taken
    back (see `_write`), so it leaves no partial line for the next one to be glued to.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as err:
        raise unwritable(err, path) from None
    try:
        yield lambda changes: _write(fd, path, changes)
    finally:
        os.close(fd)


def _write(fd: int, path: Path, changes: list[Change]) -> None:
    """Append the changes' lines in one write; StoreUnavailable when not all of them land."""
    if not changes:
        return
    # vars(), not asdict(): the fields are plain strings, and asdict deep-copies each one.
    data = "".join(json.dumps(vars(c), ensure_ascii=False) + "\n" for c in changes).encode()
    try:
        if _torn_tail(fd):
            data = b"\n" + data
        written = os.write(fd, data)
        if written < len(data):
            _take_back(fd, written)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as err:
        raise unwritable(err, path) from None
    for listener in WRITE_LISTENERS:
        listener(len(changes))


def _torn_tail(fd: int) -> bool:
    """Return True when the journal's last byte is not a newline: a writer killed in the middle
    of its append (a fatal signal can cut a large write short) left part of a line, and the next
    line must start on a line of its own instead of being glued to it (readers skip the torn
    part; we hold the record's lock, and appends of other records of the cluster are whole
    `write()`s, so the check and the append see the same tail in practice)."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _take_back(fd: int, written: int) -> None:
    """Cut off the `written` bytes of a short append: complete lines among them would record a
    change that is being taken back, and a partial one would swallow the next line.

    Only while they are still the file's last bytes: another writer cannot have appended
    after them on a disk too full for this write to finish, short of space freed meanwhile.
    """
    with contextlib.suppress(OSError):
        end = os.lseek(fd, 0, os.SEEK_CUR)
        if os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - written)


def read(path: Path, record: str | None = None) -> Iterator[Change]:
    """Yield the journal's changes oldest first, only those of `record` when given.

    Lines that do not parse (a torn last line after a crash) are skipped.
    """
    # A cluster's journal holds every host's lines (three per boot of each host): lines that
    # cannot be the record's are skipped before they are parsed.
    needle = None if record is None else json.dumps(record, ensure_ascii=False)
    try:
        handle = path.open("r", encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            if needle is not None and needle not in line:
                continue
            change = _parse(line)
            if change is not None and (record is None or change.record == record):
                yield change


def _parse(line: str) -> Change | None:
    """Return the Change a journal line holds, or None for a line that is not one."""
    try:
        fields = json.loads(line)
        return Change(**fields) if isinstance(fields, dict) else None
    except (ValueError, TypeError):
        return None

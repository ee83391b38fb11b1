"""The append-only change journal: one JSON object per line, one line per changed key, and one
line per boot.

Lines are appended with a single `write()` on an `O_APPEND` descriptor, so concurrent writers never
interleave inside a line. The journal is history for people (`host_config MAC history`, the web
UI); the record files are the truth, so a crash between a record's replace and its journal line
loses at most that line and the journal is not fsynced. A journal that cannot be written is
another matter: the store opens it before a change (`appender`) and takes the change back when
the line is refused (FileStore._commit), so a change is never made without its line.

A boot is one line: the new BOOT_SESSION, with the other keys the boot writes as bookkeeping
(BOOT_FACTS: BOOT_TIME, and a new host's registration facts) as its `facts`. Journals written
before that have a BOOT_SESSION line and a BOOT_TIME line per boot; both read as before.

A journal larger than its limit is rotated (`hps_api.store.rotation`); `newest_first` reads the
current file and then its rotations, from the end, so a caller that needs the last lines of
one record stops reading once it has them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hps_api.errors import StoreUnreadable
from hps_api.store import rotation
from hps_api.store.files import unwritable

REDACTED = "<redacted>"
#: told of every append that landed, with its number of lines. The store imports nothing above
#: itself, so whoever counts journal writes (hps_api.observe.metrics) adds itself here; a
#: listener must not raise.
WRITE_LISTENERS: list[Callable[[int], None]] = []
#: the key whose new value marks a boot: its line is the boot's one line
BOOT_KEY = "BOOT_SESSION"
#: keys a boot writes as bookkeeping, journaled as the `facts` of its BOOT_SESSION line rather
#: than as lines of their own: BOOT_TIME, and what a new host reports when it registers
#: (boot.flow.boot_stamps; tests/test_journal_rotation.py keeps the two lists in step)
BOOT_FACTS = frozenset({"BOOT_TIME", "FIRST_SEEN", "ARCH", "PLATFORM", "SMBIOS_UUID", "SERIAL",
                        "MANUFACTURER", "PRODUCT"})
#: keys of a boot's own lines: the boot, and the BOOT_TIME line older journals wrote beside it
BOOT_LINE_KEYS = frozenset({BOOT_KEY, "BOOT_TIME"})
#: rotations kept when the caller names none
DEFAULT_ROTATIONS = 3
#: bytes read at a time when a journal is read from its end
READ_CHUNK = 1 << 20
#: times an append opens the journal again because a rotation renamed it meanwhile
_REOPENS = 8


@dataclass(frozen=True)
class Change:
    """One changed key: `old`/`new` are None when the key was not set before / after.

    A boot's line has key BOOT_SESSION and carries the boot's other bookkeeping keys, with
    their new values, as `facts` (empty for every other line).
    """

    time: str
    record: str
    key: str
    old: str | None
    new: str | None
    actor: str
    facts: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def boot(self) -> bool:
        """Return True for the line of a boot (a new boot session)."""
        return self.key == BOOT_KEY and self.new is not None

    @property
    def bookkeeping(self) -> bool:
        """Return True for a boot's lines: its own, and an older journal's BOOT_TIME line."""
        return self.key in BOOT_LINE_KEYS and self.new is not None


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
def appender(path: Path, max_bytes: int = 0,
             keep: int = DEFAULT_ROTATIONS) -> Iterator[Callable[[list[Change]], None]]:
    """Open a journal for appending (created on first use) and yield the function that appends
    changes with one `write()`; when an append leaves the journal larger than `max_bytes`
    (0: no limit), the journal is rotated, keeping `keep` rotations.

    Opened before the change it records is made, so a journal that cannot be opened (a
    directory in its place, an immutable file, a read-only filesystem) refuses the change
    before anything moves. Raises StoreUnavailable; a write cut short by a full disk is taken
    back (see `_Appender.write`), so it leaves no partial line for the next one to be glued to.
    """
    try:
        journal = _Appender(path, _open(path), max_bytes, keep)
    except OSError as err:
        raise unwritable(err, path) from None
    try:
        yield journal.write
    finally:
        os.close(journal.fd)


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)


class _Appender:
    """An open journal: appends under the rotation protocol (hps_api.store.rotation)."""

    def __init__(self, path: Path, fd: int, max_bytes: int, keep: int) -> None:
        self.path, self.fd, self.max_bytes, self.keep = path, fd, max_bytes, keep

    def write(self, changes: list[Change]) -> None:
        """Append the changes' lines in one write; StoreUnavailable when not all of them land."""
        if not changes:
            return
        data = "".join(map(line_of, changes)).encode()
        try:
            self._lock_current()
            try:
                if _torn_tail(self.fd):
                    data = b"\n" + data
                written = os.write(self.fd, data)
                if written < len(data):
                    _take_back(self.fd, written)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                end = os.lseek(self.fd, 0, os.SEEK_CUR)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        except OSError as err:
            raise unwritable(err, self.path) from None
        for listener in WRITE_LISTENERS:
            listener(len(changes))
        if self.max_bytes and end > self.max_bytes:
            # the lines are written: a rotation that fails is left to the next append
            with contextlib.suppress(OSError):
                rotation.rotate(self.path, self.max_bytes, self.keep)

    def _lock_current(self) -> None:
        """Hold the shared lock of the journal's current file, opening the name again when a
        rotation renamed the file open since (a line never lands in a rotated file)."""
        for _ in range(_REOPENS):
            fcntl.flock(self.fd, fcntl.LOCK_SH)  # a rotation holds it for a few renames
            if rotation.is_current(self.fd, self.path):
                return
            fresh = _open(self.path)
            os.close(self.fd)  # and its lock
            self.fd = fresh
        raise OSError(errno.EAGAIN, "the journal was rotated again and again meanwhile")


def line_of(change: Change) -> str:
    """Return a change's journal line (with its newline); `facts` only when it has some."""
    fields: dict[str, object] = {"time": change.time, "record": change.record,
                                 "key": change.key, "old": change.old, "new": change.new,
                                 "actor": change.actor}
    if change.facts:
        fields["facts"] = dict(change.facts)
    return json.dumps(fields, ensure_ascii=False) + "\n"


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
    """Yield the changes of a journal and its rotations oldest first, only those of `record`
    when given. Lines that do not parse (a torn line after a crash) are skipped."""
    found = list(newest_first(path, record))
    found.reverse()
    return iter(found)


def newest_first(path: Path, record: str | None = None) -> Iterator[Change]:
    """Yield the changes of a journal and its rotations newest first (only `record`'s when
    given), reading each file from its end: a caller that stops early reads only the tail.

    The files are opened before any is read, newest first, and each is read up to the size it
    had then: a rotation meanwhile neither hides lines nor shows them twice (hps_api.store.
    rotation). Raises StoreUnreadable when a file exists but cannot be read.
    """
    needle = None if record is None else json.dumps(record, ensure_ascii=False).encode()
    opened = _open_all([path, *rotation.rotations(path)])
    try:
        for fd, size in opened:
            for change in _backwards(fd, size, needle):
                if record is None or change.record == record:
                    yield change
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    finally:
        for fd, _ in opened:
            os.close(fd)


def recent(changes: Iterable[Change], limit: int) -> list[Change]:
    """Return, from changes given newest first, the first ones until `limit` boot lines and
    `limit` other changes are among them (or the changes end); newest first."""
    taken: list[Change] = []
    boots = others = 0
    for change in changes:
        if change.bookkeeping:
            boots += 1
        else:
            others += 1
        taken.append(change)
        if boots >= limit and others >= limit:
            break
    return taken


def _open_all(paths: list[Path]) -> list[tuple[int, int]]:
    """Return (descriptor, size) of each file that exists, a file met twice left out."""
    opened: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    try:
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in seen:
                os.close(fd)
                continue
            seen.add((st.st_dev, st.st_ino))
            opened.append((fd, st.st_size))
    except OSError as err:
        for fd, _ in opened:
            os.close(fd)
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    return opened


def _backwards(fd: int, size: int, needle: bytes | None) -> Iterator[Change]:
    """Yield the changes in the first `size` bytes of a journal, last line first; with a
    `needle`, only lines containing it are parsed (found with bytes searches, not line by line).

    The file is read backwards into one reused buffer; a line cut by a block's start is read
    again with the block before it, so nothing is copied but the lines that match.
    """
    buffer = bytearray(READ_CHUNK)
    end = size
    while end > 0:
        start = max(0, end - len(buffer))
        got = os.preadv(fd, [memoryview(buffer)[:end - start]], start)
        if got < end - start:  # cut shorter meanwhile (a short append taken back): read again
            end = start + got
            continue
        first = 0
        if start:
            first = buffer.find(b"\n", 0, got) + 1  # what precedes it ends a line begun earlier
            if not first:  # one line longer than the buffer: read it with a larger one
                buffer = bytearray(2 * len(buffer))
                continue
        yield from _lines_backwards(buffer, first, got, needle)
        end = start + first


def _lines_backwards(block: bytearray, first: int, end: int,
                     needle: bytes | None) -> Iterator[Change]:
    """Yield the changes of the whole lines in `block[first:end]`, last first (only lines with
    `needle`); each is parsed before it is yielded, so the caller may then reuse the block."""
    stop = end  # the lines before `stop` are still to be looked at
    while stop > first:
        hit = stop - 1 if needle is None else block.rfind(needle, first, stop)
        if hit < 0:
            return
        newline = block.rfind(b"\n", first, hit)
        start = newline + 1 if newline >= 0 else first
        last = block.find(b"\n", hit, end)
        change = _parse(block[start:last if last >= 0 else end])
        if change is not None:
            yield change
        stop = start


@dataclass(frozen=True)
class JournalLines:
    """Journal lines as the journal file holds them (JSON, no newline), oldest first, and the
    cursor to ask for the lines after them (`Store.journal_lines`)."""

    lines: list[bytes]
    cursor: int


def parse_line(line: bytes | bytearray) -> Change | None:
    """Return the Change a journal line holds, or None for a line that is not one."""
    return _parse(line)


def _parse(line: bytes | bytearray) -> Change | None:
    """Return the Change a journal line holds, or None for a line that is not one (a torn
    line, or one whose fields are not what a journal writes; fields it does not know are
    ignored)."""
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    when, record, key, actor = (fields.get(name) for name in ("time", "record", "key", "actor"))
    old, new, facts = fields.get("old"), fields.get("new"), fields.get("facts") or {}
    if not (isinstance(when, str) and isinstance(record, str) and isinstance(key, str)
            and isinstance(actor, str) and _text_or_none(old) and _text_or_none(new)
            and isinstance(facts, dict) and all(isinstance(v, str) for v in facts.values())):
        return None
    return Change(when, record, key, old, new, actor, facts)


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)

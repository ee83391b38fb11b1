"""File operations under the store: whole reads, the atomic and durable replace, the record lock,
and the Undo that lets a change be taken back until its journal line is written.

Nothing here knows about records; `filestore` and `stamps` build on it. Every write turns an
OSError into StoreUnavailable (see `unwritable`): a full disk is an operator's problem, not a bug.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from hps_api.errors import HpsError, StoreBusy, StoreUnavailable, StoreUnreadable

_T = TypeVar("_T")

NEW_FILE_MODE = 0o640
TEMP_SUFFIX = ".tmp"
LOCK_FILE_MODE = 0o644
#: errors that mean "no room, or no writing at all, on this filesystem"
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_POLL_SECONDS = 0.002
_READ_CHUNK = 1 << 16
#: told of every lock `acquire` takes or gives up on: (seconds waited, True when taken, False
#: at the timeout). The store imports nothing above itself, so whoever counts lock waits
#: (hps_api.observe.metrics) adds itself here; a listener must not raise.
LOCK_LISTENERS: list[Callable[[float, bool], None]] = []


def unwritable(err: OSError, path: Path | str) -> StoreUnavailable:
    """Return the StoreUnavailable for a write of `path` that failed with `err`: "store full or
    read-only" (ENOSPC, EDQUOT, EROFS), else "store not writable" (a directory or an immutable
    file in the way, permissions, I/O errors)."""
    what = "store full or read-only" if err.errno in FULL_ERRNOS else "store not writable"
    return StoreUnavailable(f"{what}: {path}: {err.strerror or err}")


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Turn an OSError raised in the block into StoreUnavailable naming `path`."""
    try:
        yield
    except OSError as err:
        raise unwritable(err, path) from None


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` at the descriptor's offset (a short write is retried, and on a
    full disk the retry fails with ENOSPC)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_durably(path: Path, data: bytes, check: Callable[[bytes, str], None] | None = None, *,
                  sync_dir: bool = True, mode: int | None = None,
                  undo: Undo | None = None, locked: bool = False) -> None:
    """Put `data` at `path`: temp file in the same directory, fsync, `check` the bytes read back
    (by default: they must be `data`), `os.replace`, directory fsync (left to the caller when
    not `sync_dir`). The file gets `mode`, else the old file's mode; as root, the old owner.
    With `undo`, the old file is kept there first, so the replace can be taken back.
    `locked`: the caller holds the file's lock, so the temp file gets its one fixed name
    (`temp_name`), which a later writer reuses: what a killed writer left is overwritten or
    swept (`heal`), never accumulated.

    Raises StoreUnavailable (nothing replaced, no temp file left) or what `check` raises.
    """
    import tempfile

    with writing(path):
        kept, owner = mode_and_owner(path)
        mode = kept if mode is None else mode
        check = check or expect_bytes(data)
        if locked:
            tmp_name = str(temp_name(path))
            fd = os.open(tmp_name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        else:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                            dir=path.parent)
        try:
            try:
                write_all(fd, data)
                os.fsync(fd)
                os.fchmod(fd, mode)
                if owner is not None:
                    os.fchown(fd, *owner)
                os.lseek(fd, 0, os.SEEK_SET)
                check(_read_all(fd), tmp_name)
            finally:
                os.close(fd)
            if undo is not None:
                undo.keep(path)
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        if sync_dir:
            fsync_dir(path.parent)


class Undo:
    """What a change replaced or removed, set aside until the change is journaled.

    `restore` puts everything back, `discard` drops it. Setting aside is a hard link (a file
    about to be replaced) or a rename (a file about to be removed) to a hidden `.tmp` name in
    the same directory, so putting back is a rename: it needs no free space, which is what a
    disk that just refused a journal line lacks. After a crash a file set aside is a stray
    temp file, listed and removed by `hps-api fsck`.
    """

    def __init__(self) -> None:
        self._steps: list[Callable[[], None]] = []
        self._aside: list[str] = []

    def keep(self, path: Path) -> None:
        """Keep the file at `path`, about to be replaced (a new one: remove it on restore).

        When the link is refused (fs.protected_hardlinks, for a file another user owns, or a
        filesystem without hard links), its bytes are kept and rewritten on restore; on a full
        or read-only disk the OSError is raised: nothing has changed yet."""
        aside = _aside_name(path)
        try:
            os.link(path, aside)
        except FileNotFoundError:
            self._steps.append(lambda: _remove(path))
            return
        except OSError as err:
            if err.errno in FULL_ERRNOS:
                raise
            data = read_bytes(path)
            self._steps.append(lambda: _remove(path) if data is None else write_durably(
                path, data, sync_dir=False))
            return
        self._aside.append(aside)
        self._steps.append(lambda: _put_back(aside, path))

    def move(self, path: Path | str) -> None:
        """Move the file at `path` aside (nothing when there is none); back on restore."""
        aside = _aside_name(Path(path))
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return
        self._aside.append(aside)
        self._steps.append(lambda: _put_back(aside, path))

    def call(self, step: Callable[[], None]) -> None:
        """Run `step` on restore, in turn with what is set aside."""
        self._steps.append(step)

    def restore(self, directory: Path) -> None:
        """Put back everything set aside, in the order it was set aside, and fsync `directory`.

        That order puts a host's record back before its stamp, so a reader never lays the old
        stamp over the new record: it sees the new host, the old record alone, or the old host.
        """
        if not self._steps:
            return
        for step in self._steps:
            step()
        self._steps.clear()
        self._aside.clear()
        fsync_dir(directory)

    def discard(self) -> None:
        """Drop what was set aside: the change stands. Not fsynced: after a crash a set-aside
        file that comes back is a stray temp file."""
        for aside in self._aside:
            with contextlib.suppress(OSError):
                os.unlink(aside)
        self._steps.clear()
        self._aside.clear()


def temp_name(path: Path) -> Path:
    """Return the fixed temp name of a file written under its lock (`.NAME.tmp`)."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


def _aside_name(path: Path) -> str:
    """Return the fixed name a file is set aside under (only ever under its lock)."""
    return str(path.with_name(f".{path.name}.aside{TEMP_SUFFIX}"))


def heal(paths: Iterable[Path]) -> list[Path]:
    """Remove what a killed writer left beside these files: their temp and set-aside names.

    Only for a caller holding the files' lock: no live writer can own those names then.
    Returns the paths removed.
    """
    removed = []
    for path in paths:
        for debris in (temp_name(path), Path(_aside_name(path))):
            try:
                os.unlink(debris)
            except FileNotFoundError:
                continue
            except OSError:
                continue  # left for fsck; the write itself reports a store it cannot use
            removed.append(debris)
    return removed


def _put_back(aside: str, path: Path | str) -> None:
    os.rename(aside, path)
    # rename() between two links of one file does nothing: the replace it undoes never happened
    with contextlib.suppress(FileNotFoundError):
        os.unlink(aside)


def _remove(path: Path | str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def expect_bytes(intended: bytes) -> Callable[[bytes, str], None]:
    """Return a read-back check that the written bytes are exactly `intended`."""
    def check(written: bytes, name: str) -> None:
        if written != intended:
            raise HpsError(f"{name}: written bytes do not read back as intended")

    return check


def acquire(lock_path: Path, timeout: float) -> int:
    """Return a descriptor of `lock_path` holding an exclusive flock(2); StoreBusy after
    `timeout` seconds.

    flock, as filelock's UnixFileLock takes it, so processes using either exclude each other; a
    lock belongs to one open file description, so two threads exclude each other too. Opened
    read-only: flock needs no write access, and a lock file created by root stays usable.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        with writing(lock_path):
            fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, LOCK_FILE_MODE)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        _tell_lock_listeners(started, taken=False)
                        raise StoreBusy(f"{lock_path.name}: still locked after {timeout:g} s; "
                                        "try again") from None
                    time.sleep(_POLL_SECONDS)
            if os.fstat(fd).st_nlink:
                _tell_lock_listeners(started, taken=True)
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was unlinked while we waited: lock the one now at that path


def _tell_lock_listeners(started: float, *, taken: bool) -> None:
    if LOCK_LISTENERS:
        waited = time.monotonic() - started
        for listener in LOCK_LISTENERS:
            listener(waited, taken)


def identity(st: os.stat_result) -> tuple[int, ...]:
    """Return what tells two versions of a file apart (see the module docstring)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_bytes(path: Path | str) -> bytes | None:
    """Return a file's bytes, None when it does not exist; StoreUnreadable on I/O errors.

    Plain descriptor calls: a third of the cost of `Path.read_bytes` (no buffered file
    object), and every request reads a host this way.
    """
    return _reading(path, _read_all)


def read_with_stat(path: str) -> tuple[os.stat_result, bytes] | None:
    """Return a file's `fstat` and bytes, None when it does not exist; StoreUnreadable on I/O
    errors. The stat is taken on the open file before reading, so it never describes a version
    newer than the bytes (what hps_api.store.settled relies on)."""
    return _reading(path, lambda fd: (os.fstat(fd), _read_all(fd)))


def _reading(path: Path | str, read: Callable[[int], _T]) -> _T | None:
    """Return `read(fd)` of the file opened read-only, None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    try:
        return read(fd)
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def _read_all(fd: int) -> bytes:
    """Return the bytes from the descriptor's offset to the end of a regular file."""
    chunks = []
    while chunk := os.read(fd, _READ_CHUNK):
        chunks.append(chunk)
        if len(chunk) < _READ_CHUNK:
            break
    return b"".join(chunks)


def mode_and_owner(path: Path) -> tuple[int, tuple[int, int] | None]:
    """Return the mode to keep and, when running as root, the owner to keep."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return NEW_FILE_MODE, None
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
    return st.st_mode & 0o7777, owner


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries durable; StoreUnavailable when that fails."""
    with writing(directory):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def names(directory: Path, keep: object = None) -> list[str]:
    """Return the sorted entry names of a directory (none when it does not exist)."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if keep is None or keep(e))  # type: ignore[operator]
    except FileNotFoundError:
        return []

"""File operations under the store: whole reads, the atomic and durable replace, the record lock.

Nothing here knows about records; `filestore` and `stamps` build on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from hps_api.errors import HpsError, StoreBusy, StoreUnreadable

NEW_FILE_MODE = 0o640
TEMP_SUFFIX = ".tmp"
LOCK_FILE_MODE = 0o644
_POLL_SECONDS = 0.002
_READ_CHUNK = 1 << 16


def write_durably(path: Path, data: bytes, check: Callable[[bytes, str], None] | None = None, *,
                   sync_dir: bool = True, mode: int | None = None) -> None:
    """Put `data` at `path`: temp file in the same directory, fsync, `check` the bytes read back
    (by default: they must be `data`), `os.replace`, directory fsync (left to the caller when
    not `sync_dir`). The file gets `mode`, else the old file's mode; as root, the old owner."""
    import tempfile

    kept, owner = mode_and_owner(path)
    mode = kept if mode is None else mode
    check = check or expect_bytes(data)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX,
                                    dir=path.parent)
    try:
        with os.fdopen(fd, "w+b") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
            os.fchmod(tmp.fileno(), mode)
            if owner is not None:
                os.fchown(tmp.fileno(), *owner)
            tmp.seek(0)
            check(tmp.read(), tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    if sync_dir:
        fsync_dir(path.parent)


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
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, LOCK_FILE_MODE)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusy(f"{lock_path.name}: still locked after {timeout:g} s; "
                                        "try again") from None
                    time.sleep(_POLL_SECONDS)
            if os.fstat(fd).st_nlink:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was unlinked while we waited: lock the one now at that path


def identity(st: os.stat_result) -> tuple[int, ...]:
    """Return what tells two versions of a file apart (see the module docstring)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_bytes(path: Path | str) -> bytes | None:
    """Return a file's bytes, None when it does not exist; StoreUnreadable on I/O errors.

    Plain descriptor calls: a third of the cost of `Path.read_bytes` (no buffered file
    object), and every request reads a host this way.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    try:
        chunks = []
        while chunk := os.read(fd, _READ_CHUNK):
            chunks.append(chunk)
            if len(chunk) < _READ_CHUNK:
                break
        return b"".join(chunks)
    except OSError as err:
        raise StoreUnreadable(f"{path}: {err.strerror or err}") from None
    finally:
        os.close(fd)


def mode_and_owner(path: Path) -> tuple[int, tuple[int, int] | None]:
    """Return the mode to keep and, when running as root, the owner to keep."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return NEW_FILE_MODE, None
    owner = (st.st_uid, st.st_gid) if os.geteuid() == 0 else None
    return st.st_mode & 0o7777, owner


def fsync_dir(directory: Path) -> None:
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

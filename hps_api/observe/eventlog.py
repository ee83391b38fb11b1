"""Event logging (docs/api.md §8): one line per event, `<UTC time> <level> <host> <session> <client>
<message>`, to `HPS_LOG_DIR/hps-api.log` and to the local syslog socket when there is one.

Messages are sanitised here, once: control characters (a newline would forge a second line) are
escaped and a message is cut at 2 KiB.

Cost, since a boot storm writes a line per request from 16 threads per worker: a line is one
`write(2)` on an `O_APPEND` descriptor (and one `send` to /dev/log), with no Python lock.
The kernel appends each write whole at the end of the file, so lines from threads and
processes never interleave. (Through `logging`, each handler's lock was contended enough that
releasing it took 8 % of the GIL under `determine_state`.) A rotated log (logrotate's rename)
is looked for at most once per ROTATION_CHECK_SECONDS instead of with a `stat` per line; lines
written in between end up in the rotated file, not lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import traceback
from pathlib import Path

from hps_api.store.journal import utc_now

MAX_MESSAGE = 2048
ROTATION_CHECK_SECONDS = 1.0
LEVEL = logging.INFO
_SYSLOG_SOCKET = "/dev/log"
_SYSLOG_USER = 1 << 3  # facility "user"
_written = threading.local()


class _Descriptor:
    """An open descriptor, closed when the last thread holding this object lets it go, so a
    thread that took it before a rotation never writes to a closed (or reused) descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _EventFile:
    """`hps-api.log`, appended to with one write per line, reopened after a rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current = self._open()
        self.next_check = time.monotonic() + ROTATION_CHECK_SECONDS

    def _open(self) -> _Descriptor:
        return _Descriptor(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                   | os.O_CLOEXEC, 0o640))

    def write(self, data: bytes) -> None:
        now = time.monotonic()
        if now >= self.next_check:
            self.next_check = now + ROTATION_CHECK_SECONDS
            self._follow_rotation()
        handle = self.current  # one reference, kept alive for the write below
        os.write(handle.fd, data)

    def _follow_rotation(self) -> None:
        try:
            on_disk = os.stat(self.path)
            mine = os.fstat(self.current.fd)
            if (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino):
                return
        except FileNotFoundError:
            pass
        with contextlib.suppress(OSError):
            self.current = self._open()


class _Syslog:
    """The local syslog socket; lines are dropped while it is away (the file has them)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.connect(address)
        self.tag = f"hps-api[{os.getpid()}]: "

    def send(self, level: int, line: str) -> None:
        priority = _SYSLOG_USER | _SYSLOG_SEVERITY.get(level, 6)
        data = f"<{priority}>{self.tag}{line}".encode()
        try:
            self.sock.send(data)
        except OSError:  # syslogd restarted: connect again once, else drop this line
            with contextlib.suppress(OSError):
                self.sock.close()
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self.sock.connect(self.address)
                self.sock.send(data)


_SYSLOG_SEVERITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                    logging.CRITICAL: 2}
_file: _EventFile | None = None
_syslog: _Syslog | None = None


def setup(log_dir: Path) -> None:
    """Write events to `log_dir/hps-api.log` (created) and to local syslog when present."""
    global _file, _syslog
    log_dir.mkdir(parents=True, exist_ok=True)
    _file = _EventFile(log_dir / "hps-api.log")
    if _syslog is not None:
        _syslog.sock.close()
    _syslog = None
    if os.path.exists(_SYSLOG_SOCKET):
        with contextlib.suppress(OSError):
            _syslog = _Syslog(_SYSLOG_SOCKET)


def event(level: int, message: str, *, host: str | None = None, session: str | None = None,
          client: str | None = None, error: BaseException | None = None) -> None:
    """Log one event line with its host, boot session and client type (and, with `error`,
    its traceback, on the same line)."""
    _written.count = written() + 1
    if level < LEVEL:
        return
    line = (f"{utc_now()} {logging.getLevelName(level)} {host or '-'} {session or '-'} "
            f"{client or '-'} {clean(message)}")
    if error is not None:
        line += " | " + clean("".join(traceback.format_exception(error)).rstrip())
    target, syslog = _file, _syslog
    if target is not None:
        with contextlib.suppress(OSError):
            target.write(line.encode("utf-8", "replace") + b"\n")
    if syslog is not None:
        syslog.send(level, line)


def written() -> int:
    """Return how many events this thread has logged so far (a request asks: did I log?)."""
    count: int = getattr(_written, "count", 0)
    return count


def clean(text: str) -> str:
    """Return text safe for one log line: control characters escaped, length bounded."""
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "...(cut)"
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)

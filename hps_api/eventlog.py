"""Event logging (api.md §8): one line per event, `<UTC time> <level> <host> <session> <client>
<message>`, to `HPS_LOG_DIR/hps-api.log` and to the local syslog socket when there is one.

Messages are sanitised here, once: control characters (a newline would forge a second line) are
escaped and a message is cut at 2 KiB.

Cost, since a boot storm writes a line per request: the record is built without logging's
caller lookup (a walk up the stack that the line never shows), and the file handler looks for a
rotated log (logrotate's rename) at most once per ROTATION_CHECK_SECONDS instead of with a
`stat` per line; lines written in between end up in the rotated file, not lost.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import threading
import time
from pathlib import Path

LOGGER = "hps_api.events"
MAX_MESSAGE = 2048
ROTATION_CHECK_SECONDS = 1.0
_SYSLOG_SOCKET = "/dev/log"
_written = threading.local()


class _EventFormatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, "%Y-%m-%dT%H:%M:%SZ")
        host = getattr(record, "host", "-") or "-"
        session = getattr(record, "session", "-") or "-"
        client = getattr(record, "client", "-") or "-"
        line = f"{when} {record.levelname} {host} {session} {client} {clean(record.getMessage())}"
        if record.exc_info:
            line += " | " + clean(self.formatException(record.exc_info))
        return line


class _EventFileHandler(logging.handlers.WatchedFileHandler):
    """WatchedFileHandler that checks for rotation at most once per ROTATION_CHECK_SECONDS."""

    def __init__(self, filename: Path) -> None:
        super().__init__(filename)
        self._next_check = 0.0

    def reopenIfNeeded(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + ROTATION_CHECK_SECONDS
            super().reopenIfNeeded()


def setup(log_dir: Path) -> logging.Logger:
    """Return the event logger, writing to `log_dir/hps-api.log` (created) and local syslog."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    log_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [_EventFileHandler(log_dir / "hps-api.log")]
    if os.path.exists(_SYSLOG_SOCKET):
        with contextlib.suppress(OSError):
            handlers.append(logging.handlers.SysLogHandler(address=_SYSLOG_SOCKET))
    for handler in handlers:
        handler.setFormatter(_EventFormatter())
        logger.addHandler(handler)
    return logger


def event(level: int, message: str, *, host: str | None = None, session: str | None = None,
          client: str | None = None) -> None:
    """Log one event line with its host, boot session and client type."""
    _written.count = written() + 1
    logger = logging.getLogger(LOGGER)
    if logger.isEnabledFor(level):
        logger.handle(logger.makeRecord(LOGGER, level, "(event)", 0, "%s", (message,), None,
                                        extra={"host": host, "session": session,
                                               "client": client}))


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

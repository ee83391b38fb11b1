"""Event logging (api.md §8): one line per event, `<UTC time> <level> <host> <session> <client>
<message>`, to `HPS_LOG_DIR/hps-api.log` and to the local syslog socket when there is one.

Messages are sanitised here, once: control characters (a newline would forge a second line) are
escaped and a message is cut at 2 KiB.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import time
from pathlib import Path

LOGGER = "hps_api.events"
MAX_MESSAGE = 2048
_SYSLOG_SOCKET = "/dev/log"


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


def setup(log_dir: Path) -> logging.Logger:
    """Return the event logger, writing to `log_dir/hps-api.log` (created) and local syslog."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    log_dir.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.handlers.WatchedFileHandler(log_dir / "hps-api.log")]
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
    logging.getLogger(LOGGER).log(level, "%s", message,
                                  extra={"host": host, "session": session, "client": client})


def clean(text: str) -> str:
    """Return text safe for one log line: control characters escaped, length bounded."""
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "...(cut)"
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)

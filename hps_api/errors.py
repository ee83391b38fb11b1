"""Domain errors, and the one table that maps them to HTTP status codes.

Domain code raises these where the problem happens; they know nothing about HTTP or exit codes.
The web layer looks the status up in `HTTP_STATUS`; the CLIs keep their own exit-code table.
"""

from __future__ import annotations


class HpsError(Exception):
    """Base of every error hps-api raises on purpose; `str(err)` is the user-facing message."""


class InvalidInput(HpsError):
    """A parameter, key, value, MAC or name is malformed or out of range."""


class NotFound(HpsError):
    """The record, key, host or command does not exist."""


class KeyNotSet(NotFound):
    """The record exists but the key is not set (old clients match `Key '<name>' not found`)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"Key '{key}' not found")
        self.key = key


class Forbidden(HpsError):
    """The caller may not do this (spoofed identity, admin-only action, sensitive key)."""


class Conflict(HpsError):
    """The request contradicts the current state (illegal transition, exhausted pool)."""


class StoreBusy(HpsError):
    """A lock could not be taken within the timeout; the caller may retry."""


class CorruptRecord(HpsError):
    """A record file does not follow the grammar; it is never rewritten until repaired."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"corrupt record {where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class StoreUnreadable(HpsError):
    """A record file exists but cannot be read (permissions, I/O error)."""


class StoreUnavailable(HpsError):
    """The store cannot be written: disk full, over quota, read-only, or a file in the way (a
    journal turned into a directory, an immutable file). Nothing was changed; an operator has
    to act, then the caller may retry."""


HTTP_STATUS: dict[type[HpsError], int] = {
    InvalidInput: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StoreBusy: 503,
    StoreUnavailable: 503,
    CorruptRecord: 500,
    StoreUnreadable: 500,
}


def http_status(error: HpsError) -> int:
    """Return the HTTP status for a domain error (the most specific class in the table wins)."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500

"""Files kept parsed in memory while `stat` shows the version that was parsed.

A file is served from memory again while `os.stat` gives the identity it had when it was read
(device, inode, size, mtime, ctime: `files.identity`) and it had settled by then: its ctime at
least SETTLE_SECONDS old. Any later change, a replace, an in-place write, an editor that keeps
size and mtime, gets a newer ctime than that, so it can never look like the kept version. A file
changed within the last SETTLE_SECONDS is read every time: that closes the window of the
filesystem's coarse timestamps (two versions written within one clock tick, the second reusing
the first one's freed inode). A read therefore costs one `stat` while nothing changed, and what
it cost before (open, read, close, parse) when something did.

Each cache holds at most `limit` files; the one kept longest makes room for a new one, so memory
stays bounded whatever the size of the cluster (a host that boots again is simply read again).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from hps_api.errors import StoreUnreadable
from hps_api.store import files

SETTLE_SECONDS = 1.0
T = TypeVar("T")


class Settled(Generic[T]):
    """Parsed files by path, served from memory while unchanged (see the module docstring).

    `parse(data, name)` turns a file's bytes into the value kept; it may answer None for bytes
    caught in the middle of an in-place rewrite (a stamp failing its CRC): the file is then read
    once more. Values are shared between callers: `parse` must return values nobody mutates.
    """

    def __init__(self, parse: Callable[[bytes, str], T | None], limit: int) -> None:
        self._parse = parse
        self._limit = limit
        self._kept: dict[str, tuple[tuple[int, ...], T | None]] = {}
        self._room = threading.Lock()  # one thread at a time makes room

    def read(self, name: str) -> T | None:
        """Return the parsed file; None when it does not exist (or `parse` said None twice).

        Raises StoreUnreadable on I/O errors and whatever `parse` raises (CorruptRecord).
        """
        try:
            seen = files.identity(os.stat(name))
        except FileNotFoundError:
            self._kept.pop(name, None)
            return None
        except OSError as err:
            raise StoreUnreadable(f"{name}: {err.strerror or err}") from None
        kept = self._kept.get(name)
        if kept is not None and kept[0] == seen:
            return kept[1]
        for attempt in range(2):
            found = files.read_with_stat(name)
            if found is None:
                self._kept.pop(name, None)
                return None
            st, data = found
            value = self._parse(data, name)
            if value is not None or attempt:
                break
        if time.time_ns() - st.st_ctime_ns >= SETTLE_SECONDS * 1e9:
            self._keep(name, files.identity(st), value)
        return value

    def forget(self) -> None:
        """Drop every kept file (the next read of each goes to disk)."""
        self._kept.clear()

    def _keep(self, name: str, seen: tuple[int, ...], value: T | None) -> None:
        with self._room:
            if name not in self._kept and len(self._kept) >= self._limit:
                # a reader dropping a deleted file meanwhile leaves room enough
                with contextlib.suppress(RuntimeError, StopIteration, KeyError):
                    self._kept.pop(next(iter(self._kept)))
            self._kept[name] = (seen, value)

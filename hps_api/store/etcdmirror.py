"""A per-process copy of the etcd store's records, kept current by a watch (docs/scale-out.md,
"Reads").

At first use the mirror reads every key under `P/records/` with the revision R of that read,
then a daemon thread follows etcd's watch from R+1 through the JSON gateway (`POST /v3/watch`,
a stream of JSON objects) and applies every PUT and DELETE to a dict: key -> (value,
mod_revision). `applied` is the highest revision the mirror holds everything up to.

The watch covers the whole key space, not only the records: etcd's revision counts every write
(journal lines, operation ids, locks), so only a watch that sees every revision can tell "I hold
revision Rc" for the cluster's current revision Rc. Keys outside the records are dropped as
they arrive.

A reader trusts the mirror once `fresh()` said so: a cheap read (`Gateway.revision`) returns the
current revision Rc and the mirror holds it (waiting up to CATCH_UP_SECONDS for the watch). One
confirmation holds for FRESH_SECONDS in the whole process, so a change made by another server
is seen within FRESH_SECONDS; a transaction made through this process's gateway is seen at
once (the mirror must hold its revision, `Gateway.revision_seen`). When the mirror is behind,
or no member answers the check, the caller reads etcd directly.

On a broken stream the thread moves to the next member and resumes from `applied + 1`; when
etcd compacted that revision away, it reads the records again (a re-seed). It also reconnects
after WATCH_IDLE_SECONDS without any message, so a connection that hangs silently does not
leave the mirror behind for long. The thread is started in the process that uses the mirror:
gunicorn forks its workers after the app may be built, and a forked child starts afresh.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from hps_api.errors import HpsError
from hps_api.store import etcdgateway as gw
from hps_api.store.etcdgateway import Gateway, KeyValue

#: how long one confirmation that the mirror is current holds for every reader of the process:
#: a change made on another server is seen by reads within this many seconds
FRESH_SECONDS = 0.1
#: how long a reader waits for the watch to catch up with the current revision
CATCH_UP_SECONDS = 0.05
#: a watch with no message for this long is opened again (a silently dead connection)
WATCH_IDLE_SECONDS = 5.0
#: pause after a failed watch or seed before the next member is tried
_RETRY_PAUSE = 0.05
_EVERY_KEY = b"\0"


class _Gap(Exception):
    """The watch cannot resume where the mirror stands (compacted): read everything again."""


class Mirror:
    """The records under one key prefix, as of revision `applied` (see the module docstring)."""

    def __init__(self, gateway: Gateway, start: bytes) -> None:
        self.gateway = gateway
        self.start = start
        self.end = gw.prefix_end(start)
        self._pid = 0
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._changed = threading.Condition()
        self._values: dict[bytes, tuple[bytes | None, int]] = {}
        self._seeded = False
        self._confirmed = float("-inf")
        self._thread: threading.Thread | None = None
        self._member = 0
        #: the revision the mirror holds everything up to
        self.applied = 0
        #: how often the records were read whole (the first time included)
        self.seeds = 0

    # -- readers -----------------------------------------------------------------------------

    def fresh(self, *, force: bool = False, serializable: bool = True) -> bool:
        """Return True when the mirror may answer reads: confirmed current less than
        FRESH_SECONDS ago (`force`: now). False when it is not seeded yet, is behind after
        CATCH_UP_SECONDS, or no member answered the check."""
        self._ensure_running()
        if not self._seeded:
            return False
        asked = time.monotonic()
        if not force and asked - self._confirmed < FRESH_SECONDS:
            return self._holds(self.gateway.revision_seen)
        try:
            current = self.gateway.revision(self.start, serializable=serializable)
        except HpsError:
            return False
        if not self._holds(current):
            return False
        self._confirmed = max(self._confirmed, asked)
        return True

    def _holds(self, revision: int) -> bool:
        """Return True once the mirror holds `revision`, waiting up to CATCH_UP_SECONDS."""
        if self._seeded and self.applied >= revision:
            return True
        with self._changed:
            return self._changed.wait_for(lambda: self._seeded and self.applied >= revision,
                                          CATCH_UP_SECONDS)

    def expire(self) -> None:
        """Make the next read confirm the mirror again (after a write it does not apply)."""
        self._confirmed = float("-inf")

    def get(self, key: bytes) -> KeyValue | None:
        """Return one key as the mirror holds it, None when it is missing (or not seeded)."""
        found = self._values.get(key)
        if found is None or found[0] is None:
            return None
        return KeyValue(key, found[0], 0, found[1])

    def known(self) -> bool:
        """Return True when the mirror holds a copy of the records (maybe not a current one)."""
        self._ensure_running()
        return self._seeded

    def range(self, start: bytes, end: bytes) -> list[KeyValue]:
        """Return the keys from `start` to `end` (excluded), sorted."""
        found = [(key, entry) for key, entry in list(self._values.items())
                 if start <= key < end and entry[0] is not None]
        return [KeyValue(key, entry[0] or b"", 0, entry[1]) for key, entry in sorted(found)]

    # -- writers -----------------------------------------------------------------------------

    def written(self, ops: list[dict[str, Any]], revision: int) -> None:
        """Apply what a transaction that landed at `revision` wrote (its puts and deletes of
        single keys), so this process reads its own writes at once."""
        with self._changed:
            for op in ops:
                request = op.get("request_put") or op.get("request_delete_range") or {}
                if "range_end" in request:
                    continue
                key = base64.b64decode(request.get("key", ""))
                if "request_put" in op:
                    self._keep(key, base64.b64decode(request.get("value", "")), revision)
                else:
                    self._keep(key, None, revision)

    def _keep(self, key: bytes, value: bytes | None, revision: int) -> None:
        if not self.start <= key < self.end:
            return
        held = self._values.get(key)
        if held is None or held[1] < revision:
            self._values[key] = (value, revision)

    # -- the watch thread --------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._pid != os.getpid():
            self._reset()
        if self._thread is None:
            self._thread = threading.Thread(target=_follow, args=(weakref.ref(self),),
                                            name="hps-etcd-mirror", daemon=True)
            self._thread.start()

    def seed(self) -> None:
        """Read every record again (serializable: a member without quorum still answers)."""
        found, revision = self.gateway.range_at(self.start, self.end)
        with self._changed:
            fresh: dict[bytes, tuple[bytes | None, int]] = {
                kv.key: (kv.value, kv.mod_revision) for kv in found}
            for key, held in self._values.items():  # this process's writes after the read
                if held[1] > revision:
                    fresh[key] = held
            self._values = fresh
            self.applied = revision
            self._confirmed = float("-inf")  # a lagging member may answer an older revision
            self._seeded = True
            self.seeds += 1
            self._changed.notify_all()

    def stream(self) -> Iterator[dict[str, Any]]:
        """Open the watch on the member in turn from `applied + 1`; yield its messages."""
        host, port = self.gateway.endpoints[self._member % len(self.gateway.endpoints)]
        body = {"create_request": {"key": gw.encode(_EVERY_KEY),
                                   "range_end": gw.encode(_EVERY_KEY),
                                   "start_revision": self.applied + 1,
                                   "progress_notify": True}}
        return _messages(host, port, body, self.gateway.timeout)

    def next_member(self) -> None:
        """Watch through the next member from now on."""
        self._member += 1

    def take(self, message: dict[str, Any]) -> None:
        """Apply one message of the watch; _Gap when the history it needs was compacted."""
        result = message.get("result")
        if not isinstance(result, dict):
            raise ValueError(f"watch answered {str(message)[:200]}")
        if int(result.get("compact_revision", 0) or 0) or result.get("canceled"):
            raise _Gap
        events = result.get("events", [])
        with self._changed:
            if events:
                for event in events:
                    kv = event["kv"]
                    revision = int(kv.get("mod_revision", 0))
                    self.applied = max(self.applied, revision)
                    key = base64.b64decode(kv["key"])
                    if self.start <= key < self.end:
                        value = None if event.get("type") == "DELETE" else \
                            base64.b64decode(kv.get("value", ""))
                        self._keep(key, value, revision)
            elif not result.get("created"):  # a progress notice: nothing up to its revision
                header = result.get("header", {})
                self.applied = max(self.applied, int(header.get("revision", 0)))
            self._changed.notify_all()

    def forget(self) -> None:
        """Mark the mirror as needing a seed again."""
        with self._changed:
            self._seeded = False


def _follow(ref: weakref.ref[Mirror]) -> None:
    """Keep a mirror current until it is gone (no strong reference while waiting)."""
    while True:
        mirror = ref()
        if mirror is None or mirror._pid != os.getpid():
            return
        try:
            if not mirror._seeded:
                mirror.seed()
            messages = mirror.stream()
            del mirror
            for message in messages:
                mirror = ref()
                if mirror is None:
                    return
                mirror.take(message)
                del mirror
        except _Gap:
            mirror = ref()
            if mirror is not None:
                mirror.forget()
        except (OSError, HpsError, ValueError, KeyError, TypeError):
            mirror = ref()
            if mirror is not None:
                mirror.next_member()
            time.sleep(_RETRY_PAUSE)
        mirror = None


def _messages(host: str, port: int, body: dict[str, Any],
              connect: float) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of one watch stream until it ends (ValueError) or is silent for
    WATCH_IDLE_SECONDS (TimeoutError). The gateway sends them as HTTP chunks; one object may
    span several."""
    payload = json.dumps(body).encode()
    with socket.create_connection((host, port), connect) as sock, sock.makefile("rb") as answer:
        sock.settimeout(WATCH_IDLE_SECONDS)
        sock.sendall(f"POST /v3/watch HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
                     + payload)
        status = answer.readline(_MAX_LINE)
        if status.split(b" ")[1:2] != [b"200"]:
            raise ValueError(f"watch answered {status[:80]!r}")
        chunked = False
        while (line := answer.readline(_MAX_LINE)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        text = codecs.getincrementaldecoder("utf-8")()
        decoder = json.JSONDecoder()
        buffer = ""
        while data := _next_piece(answer, chunked):
            buffer += text.decode(data)
            while buffer := buffer.lstrip():
                try:
                    message, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                yield message
    raise ValueError(f"{host}:{port}: the watch ended")


#: the longest status or header line read
_MAX_LINE = 65536


def _next_piece(answer: Any, chunked: bool) -> bytes:
    """Return the next piece of the answer's body (b"" at its end)."""
    if not chunked:
        return bytes(answer.read1(65536))
    size = int(answer.readline(_MAX_LINE).split(b";")[0] or b"0", 16)
    if size == 0:
        return b""
    data = bytes(answer.read(size))
    answer.readline(_MAX_LINE)
    return data

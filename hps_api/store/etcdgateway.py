"""Talking to an etcd v3 cluster through its HTTP/JSON gateway (`/v3/...`), every member known.

`Gateway` holds one `Member` per member and sends each request to the member that answered
last; on a connection error, a timeout or a 5xx it moves to the next one, so losing one member
is invisible. When no member answers within the deadline, StoreUnavailable (HTTP 503). A
`Member` posts JSON over keep-alive HTTP/1.1 connections of its own (one per thread: a request
in one write, the answer's length or chunks read back) and raises `etcd3gw`'s error classes, as
an `etcd3gw` client would: its `requests` session cost several times the CPU of the exchange
itself. Done here as etcd3gw does not: more than one endpoint, serializable reads
(`serializable: true` in the range request), key ranges sorted by creation revision, and
transactions whose failure branch we read (docs/scale-out.md).

Keys and values travel base64-encoded; int64 fields arrive as strings. `KeyValue` is one key as
the range answers it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from etcd3gw.exceptions import (  # type: ignore[import-untyped,unused-ignore]
    ConnectionFailedError,
    ConnectionTimeoutError,
    Etcd3Exception,
    InternalServerError,
)

from hps_api.errors import InvalidInput, StoreUnavailable

#: errors after which the same request goes to another member (it may have landed: callers
#: make every write idempotent, see EtcdStore's operation ids)
_TRANSPORT = (ConnectionFailedError, ConnectionTimeoutError, InternalServerError)
#: gRPC codes of answers another member (or a little later) may answer differently:
#: UNAVAILABLE (no leader, stopping), DEADLINE_EXCEEDED (request timed out), ABORTED
_RETRY_CODES = frozenset({4, 10, 14})
#: pause between two rounds over every member
_ROUND_PAUSE = 0.05


class Refused(InvalidInput):
    """etcd refused a request as such (its gRPC `code`: 5 for a lease that is gone)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class KeyValue:
    """One key: its name and value (bytes), when it was created and last modified."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int


def encode(data: bytes | str) -> str:
    """Return the base64 text the gateway takes for a key or value."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def prefix_end(prefix: bytes) -> bytes:
    """Return the end of the key range holding every key that starts with `prefix`."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def kvs_of(answer: Mapping[str, Any]) -> list[KeyValue]:
    """Return the keys of a range answer (a `response_range` or the range endpoint's)."""
    return [KeyValue(base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", "")),
                     int(kv.get("create_revision", 0)), int(kv.get("mod_revision", 0)))
            for kv in answer.get("kvs", [])]


#: HTTP statuses of the gateway and the error etcd3gw raises for each (any other non-200:
#: Etcd3Exception)
_ERRORS_BY_STATUS: dict[int, type[Etcd3Exception]] = {
    500: InternalServerError, 503: ConnectionFailedError, 408: ConnectionTimeoutError,
    504: ConnectionTimeoutError}


class Member:
    """One member's JSON gateway, over a keep-alive HTTP/1.1 connection per thread (all closed
    when the member is dropped)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.base_url = f"http://{host}:{port}"
        self._local = threading.local()
        self._opened: set[socket.socket] = set()
        self._opened_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._opened, self._opened_lock)

    def get_url(self, path: str) -> str:
        """Return the URL of a gateway path (`/kv/range`)."""
        return f"{self.base_url}/v3/{path.lstrip('/')}"

    def post(self, url: str, json: Mapping[str, Any]) -> Any:
        """Post `json` and return the decoded answer; etcd3gw's errors: ConnectionFailedError,
        ConnectionTimeoutError (the request may have landed), InternalServerError,
        Etcd3Exception (an answer other than 200, its text as `detail_text`)."""
        body = _dumps(json).encode()
        request = (f"POST {url[len(self.base_url):]} HTTP/1.1\r\nHost: {self.host}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode() + body
        try:
            status, reason, text = self._exchange(request)
        except TimeoutError as err:
            self._drop()
            raise ConnectionTimeoutError(str(err) or "timed out") from None
        except (OSError, ValueError) as err:
            self._drop()
            raise ConnectionFailedError(str(err) or type(err).__name__) from None
        if status != 200:
            error = _ERRORS_BY_STATUS.get(status, Etcd3Exception)
            raise error(text.decode("utf-8", errors="replace"), reason)
        return _loads(text)

    def _exchange(self, request: bytes) -> tuple[int, str, bytes]:
        """Send one request and return the status, reason and body of its answer (a body of
        known length or chunked); ValueError for an answer that is not HTTP."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            sock = socket.create_connection((self.host, self.port), self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = (sock, sock.makefile("rb"))
            self._local.connection = connection
            with self._opened_lock:
                self._opened.add(sock)
        sock, answer = connection
        sock.sendall(request)
        version, _, rest = answer.readline(_MAX_LINE).partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError("the connection was closed" if not version else
                             f"not an HTTP answer: {version[:40]!r}")
        code, _, reason = rest.partition(b" ")
        length, chunked, close = -1, False, False
        while (line := answer.readline(_MAX_LINE)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        body = _read_chunked(answer) if chunked else answer.read(length) if length >= 0 else \
            answer.read()
        if close or (length < 0 and not chunked):
            self._drop()
        return int(code), reason.strip().decode("latin-1"), body

    def _drop(self) -> None:
        """Close this thread's connection (after an error its state is unknown)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._opened_lock:
                self._opened.discard(connection[0])
            connection[1].close()
            connection[0].close()


#: the longest status or header line read
_MAX_LINE = 65536


def _read_chunked(answer: Any) -> bytes:
    parts = []
    while (size := int(answer.readline(_MAX_LINE).split(b";")[0], 16)) > 0:
        parts.append(answer.read(size))
        answer.readline(_MAX_LINE)
    while answer.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(parts)


def _close_all(opened: set[socket.socket], lock: threading.Lock) -> None:
    with lock:
        for sock in opened:
            sock.close()
        opened.clear()


_dumps = json.dumps
_loads = json.loads


class Gateway:
    """Every member of one etcd cluster, reached through its JSON gateway with fail-over."""

    def __init__(self, endpoints: Iterable[tuple[str, int]], timeout: float = 2.0,
                 deadline: float = 10.0) -> None:
        self.endpoints = list(endpoints)
        if not self.endpoints:
            raise InvalidInput("no etcd endpoint given")
        self.timeout = timeout
        self._connect()
        #: seconds a request keeps trying members before StoreUnavailable
        self.deadline = deadline
        self._current = 0
        #: the highest revision a transaction through this gateway answered (its writes, or
        #: later ones): a mirror that holds it has every write made through here
        self.revision_seen = 0

    def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request, moving from member to member until one answers; return its JSON.

        StoreUnavailable when none answers before the deadline (no quorum: every write times
        out); InvalidInput for an answer that is an error of the
        request itself (Refused).
        """
        if self._pid != os.getpid():  # forked (gunicorn's workers): connections of our own
            self._connect()
        give_up = time.monotonic() + self.deadline
        last = "no member tried"
        while True:
            for _ in range(len(self.clients)):
                client = self.clients[self._current]
                try:
                    return dict(client.post(client.get_url(path), json=dict(body)))
                except _TRANSPORT as err:
                    last = f"{client.host}:{client.port}: {_detail(err)}"
                except Etcd3Exception as err:
                    code = _code(err)
                    if code not in _RETRY_CODES:
                        raise Refused(f"etcd refused {path}: {_detail(err)}", code) from None
                    last = f"{client.host}:{client.port}: {_detail(err)}"
                self._current = (self._current + 1) % len(self.clients)
                if time.monotonic() > give_up:
                    raise StoreUnavailable(f"etcd unavailable (no member answered {path} "
                                           f"within {self.deadline:g} s; last: {last})")
            time.sleep(_ROUND_PAUSE)

    def _connect(self) -> None:
        """Make one client per member, with connections of this process's own."""
        self.clients = [Member(host, port, self.timeout) for host, port in self.endpoints]
        self._pid = os.getpid()

    def range(self, key: bytes, end: bytes | None = None, *, keys_only: bool = False,
              limit: int = 0, serializable: bool = True) -> list[KeyValue]:
        """Return the keys from `key` (to `end`, excluded); serializable by default: any member
        answers from what it has applied, so reads go on without a quorum."""
        return self.range_at(key, end, keys_only=keys_only, limit=limit,
                             serializable=serializable)[0]

    def range_at(self, key: bytes, end: bytes | None = None, *, keys_only: bool = False,
                 sort_create: str | None = None, limit: int = 0, min_create_revision: int = 0,
                 serializable: bool = True) -> tuple[list[KeyValue], int]:
        """Return the keys of a range (sorted by creation, ASCEND or DESCEND, when asked) and
        the revision of the store they were read at."""
        body: dict[str, Any] = {"key": encode(key), "serializable": serializable}
        if end is not None:
            body["range_end"] = encode(end)
        if keys_only:
            body["keys_only"] = True
        if sort_create:
            body["sort_target"] = "CREATE"
            body["sort_order"] = sort_create
        if limit:
            body["limit"] = limit
        if min_create_revision:
            body["min_create_revision"] = min_create_revision
        answer = self.call("/kv/range", body)
        return kvs_of(answer), int(answer.get("header", {}).get("revision", 0))

    def revision(self, key: bytes, *, serializable: bool = True) -> int:
        """Return the store's revision as the member asked has it (a count of one key, the
        cheapest read there is); linearizable, the cluster's latest committed revision."""
        answer = self.call("/kv/range", {"key": encode(key), "count_only": True,
                                         "serializable": serializable})
        return int(answer.get("header", {}).get("revision", 0))

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]]) -> tuple[bool, list[dict[str, Any]]]:
        """Run a transaction; return whether its comparisons held and the answers of the branch
        that ran."""
        succeeded, responses, _revision = self.txn_at(compare, success, failure)
        return succeeded, responses

    def txn_at(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
               failure: list[dict[str, Any]]) -> tuple[bool, list[dict[str, Any]], int]:
        """Run a transaction; return whether its comparisons held, the answers of the branch
        that ran and the store's revision after it (the revision of its writes)."""
        answer = self.call("/kv/txn", {"compare": compare, "success": success,
                                       "failure": failure})
        revision = int(answer.get("header", {}).get("revision", 0))
        self.revision_seen = max(self.revision_seen, revision)
        return bool(answer.get("succeeded")), list(answer.get("responses", [])), revision

    def grant(self, ttl: int) -> int:
        """Return a new lease of `ttl` seconds."""
        return int(self.call("/lease/grant", {"TTL": ttl})["ID"])

    def keep_alive(self, lease: int) -> None:
        """Renew a lease for its whole TTL again."""
        self.call("/lease/keepalive", {"ID": lease})

    def revoke(self, lease: int) -> None:
        """End a lease now (its keys go with it)."""
        self.call("/kv/lease/revoke", {"ID": lease})


def put(key: bytes, value: bytes | str, lease: int = 0) -> dict[str, Any]:
    """Return the transaction operation that writes one key."""
    request: dict[str, Any] = {"key": encode(key), "value": encode(value)}
    if lease:
        request["lease"] = lease
    return {"request_put": request}


def delete(key: bytes, end: bytes | None = None) -> dict[str, Any]:
    """Return the transaction operation that removes one key (a range, with `end`)."""
    request = {"key": encode(key)}
    if end is not None:
        request["range_end"] = encode(end)
    return {"request_delete_range": request}


def get(key: bytes) -> dict[str, Any]:
    """Return the transaction operation that reads one key."""
    return {"request_range": {"key": encode(key)}}


def unchanged(key: bytes, mod_revision: int) -> dict[str, Any]:
    """Return the comparison "the key was last modified at `mod_revision`" (0: missing)."""
    return {"key": encode(key), "target": "MOD", "result": "EQUAL",
            "mod_revision": mod_revision}


def missing(key: bytes) -> dict[str, Any]:
    """Return the comparison "the key does not exist"."""
    return {"key": encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}


def present(key: bytes) -> dict[str, Any]:
    """Return the comparison "the key exists"."""
    return {"key": encode(key), "target": "CREATE", "result": "GREATER", "create_revision": 0}


def _code(err: Etcd3Exception) -> int | None:
    try:
        return int(json.loads(err.detail_text or "{}").get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


def _detail(err: Etcd3Exception) -> str:
    text = err.detail_text or str(err) or type(err).__name__
    try:
        return str(json.loads(text).get("error") or text)
    except (ValueError, AttributeError):
        return text[:200]

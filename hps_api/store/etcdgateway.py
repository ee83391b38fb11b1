"""Talking to an etcd v3 cluster through its HTTP/JSON gateway (`/v3/...`), every member known.

`Gateway` holds one `etcd3gw` client per member and sends each request to the member that
answered last; on a connection error, a timeout or a 5xx it moves to the next one, so losing one
member is invisible. When no member answers within the deadline, StoreUnavailable (HTTP 503).
What etcd3gw does not offer is done here on its clients' transport (`client.post`): more than
one endpoint, serializable reads (`serializable: true` in the range request), key ranges sorted
by creation revision, and transactions whose failure branch we read (docs/scale-out.md).

Keys and values travel base64-encoded; int64 fields arrive as strings. `KeyValue` is one key as
the range answers it.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from etcd3gw.client import Etcd3Client  # type: ignore[import-untyped,unused-ignore]
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
        """Make one client per member (api_path given: no `/version` round trip first), with
        connections of this process's own."""
        self.clients = [Etcd3Client(host=host, port=port, timeout=self.timeout, api_path="/v3/")
                        for host, port in self.endpoints]
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

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]]) -> tuple[bool, list[dict[str, Any]]]:
        """Run a transaction; return whether its comparisons held and the answers of the branch
        that ran."""
        answer = self.call("/kv/txn", {"compare": compare, "success": success,
                                       "failure": failure})
        return bool(answer.get("succeeded")), list(answer.get("responses", []))

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
    import json

    try:
        return int(json.loads(err.detail_text or "{}").get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


def _detail(err: Etcd3Exception) -> str:
    import json

    text = err.detail_text or str(err) or type(err).__name__
    try:
        return str(json.loads(text).get("error") or text)
    except (ValueError, AttributeError):
        return text[:200]

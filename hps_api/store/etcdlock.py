"""A lock in etcd: a key created only if missing, under a lease that a thread keeps alive.

The etcd store's cluster allocation lock (docs/scale-out.md, "The allocation lock"). A holder
that dies stops renewing its lease, and etcd removes the key when the lease runs out
(LOCK_TTL_SECONDS); one that waits tries again with a growing, jittered pause until its timeout,
then StoreBusy. etcd's own lock service is not used: etcd3gw offers a single attempt, and the
gateway's `/v3/lock/lock` blocks without a timeout of its own.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections.abc import Iterator

from hps_api.errors import InvalidInput, StoreBusy, StoreUnavailable
from hps_api.store import etcdgateway as gw
from hps_api.store.etcdgateway import Gateway

#: a server that dies holding the lock frees it after this many seconds
LOCK_TTL_SECONDS = 10


@contextlib.contextmanager
def held(gateway: Gateway, key: bytes, timeout: float) -> Iterator[None]:
    """Hold the lock `key`; StoreBusy after `timeout` seconds of others holding it."""
    lease = [gateway.grant(LOCK_TTL_SECONDS)]
    stop = threading.Event()
    keeper = threading.Thread(target=_keep_alive, args=(gateway, lease, stop), daemon=True)
    keeper.start()  # while waiting too: a wait may be longer than the lease
    try:
        _acquire(gateway, key, uuid.uuid4().hex.encode(), lease, timeout)
        yield
    finally:
        stop.set()
        keeper.join()
        with contextlib.suppress(StoreUnavailable, InvalidInput):
            gateway.revoke(lease[0])  # its key goes with it


def _acquire(gateway: Gateway, key: bytes, token: bytes, lease: list[int],
             timeout: float) -> None:
    give_up = time.monotonic() + timeout
    pause = 0.002
    while True:
        try:
            won, answers = gateway.txn([gw.missing(key)], [gw.put(key, token, lease[0])],
                                       [gw.get(key)])
        except gw.Refused as err:
            if err.code != 5:  # NOT_FOUND: the lease ran out (this process stalled)
                raise
            lease[0] = gateway.grant(LOCK_TTL_SECONDS)
            continue
        held_now = gw.kvs_of(answers[0].get("response_range", {})) if not won else []
        if won or (held_now and held_now[0].value == token):  # a retried request that landed
            return
        if time.monotonic() >= give_up:
            raise StoreBusy(f"{key.decode()}: still locked after {timeout:g} s; try again")
        time.sleep(pause * random.uniform(0.5, 1.5))  # noqa: S311 (jitter, not secrecy)
        pause = min(pause * 2, 0.05)


def _keep_alive(gateway: Gateway, lease: list[int], stop: threading.Event) -> None:
    while not stop.wait(LOCK_TTL_SECONDS / 3):
        with contextlib.suppress(StoreUnavailable, InvalidInput):
            gateway.keep_alive(lease[0])

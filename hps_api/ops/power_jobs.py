"""Power work off the request path: the runner the JSON API hands actions to, and the poller that
keeps every host's last known power state fresh (docs/power.md).

- `Runner`: a small pool of threads per server process. `submit` checks what can be checked
  without a BMC (unknown host, no BMC, action the driver cannot do: the caller gets the error
  at once), records the action as queued and returns it; a thread carries it out and writes
  its progress to the action's file, which any process can read. At most MAX_QUEUED actions wait
  per process; more are refused with 503 rather than queued for ever. The threads start with
  the first action, so the gunicorn master, which builds the app before forking, never has any.
- `Poller`: every POLL_SECONDS, the status of every host with a BMC, CONCURRENCY at a time,
  into the state book. Each gunicorn worker runs a poller thread, but only the one holding the
  flock on `run/power/poller.lock` polls: one poll per interval whatever the worker count, and
  when that worker dies (the kernel drops its lock) another takes over at its next tick. The
  master is left alone: it forks workers, and a fork while a thread holds a lock is a hazard.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hps_api.errors import HpsError, StoreBusy
from hps_api.observe import eventlog
from hps_api.ops import power
from hps_api.power import drivers
from hps_api.power.base import STATUS
from hps_api.power.bmc import BmcStore
from hps_api.power.records import DONE, FAILED, RUNNING, ActionLog, run_dir
from hps_api.store import Kind, RecordId, Store
from hps_api.store.journal import utc_now

WORKERS = 8
MAX_QUEUED = 256
POLL_SECONDS = 60.0
POLLER_ACTOR = "poller"


class Runner:
    """Carries out power actions in background threads of this process."""

    def __init__(self, store: Store, policy: power.Policy = power.DEFAULT_POLICY,
                 connect: drivers.Connect = drivers.connect, workers: int = WORKERS) -> None:
        self.store = store
        self.policy = policy
        self.connect = connect
        self.workers = workers
        self.actions = ActionLog(store.layout.root)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._waiting = 0

    def submit(self, cluster: str, mac: str, steps: list[str], actor: str) -> dict[str, Any]:
        """Queue an action and return its record (status `queued`). Raises what
        `power.prepare` raises, and StoreBusy when MAX_QUEUED actions already wait."""
        power.prepare(self.store, cluster, mac, power.parse_steps(steps))
        with self._lock:
            if self._waiting >= MAX_QUEUED:
                raise StoreBusy(f"{MAX_QUEUED} power actions are already waiting; try again "
                                "when some have finished")
            self._waiting += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                                thread_name_prefix="hps-power")
            pool = self._pool
        try:
            record = self.actions.create(cluster, mac, steps, actor)
            pool.submit(self._run, record)
        except BaseException:
            self._finished()
            raise
        return record

    def _run(self, record: dict[str, Any]) -> None:
        try:
            record = self.actions.update(record, status=RUNNING, started=utc_now(),
                                         message="talking to the BMC")
            outcome = power.run_action(self.store, record["cluster"], record["mac"],
                                       record["steps"], record["actor"], self.policy,
                                       self.connect)
            self.actions.update(record, status=DONE if outcome.ok else FAILED,
                                message=outcome.message, state=outcome.state,
                                attempts=outcome.attempts, finished=utc_now())
        except HpsError as err:  # the host or its BMC went away since submit
            self.actions.update(record, status=FAILED, message=str(err), finished=utc_now())
        except Exception as err:
            eventlog.event(logging.ERROR, f"power action {record['id']} failed", error=err,
                           host=record["mac"])
            self.actions.update(record, status=FAILED, message=f"internal error: {err}",
                                finished=utc_now())
        finally:
            self._finished()

    def _finished(self) -> None:
        with self._lock:
            self._waiting -= 1


class Poller:
    """Reads every BMC's power state now and then, in the one process that holds the lock."""

    def __init__(self, store: Store, interval: float = POLL_SECONDS,
                 concurrency: int = power.CONCURRENCY, policy: power.Policy = power.POLL_POLICY,
                 connect: drivers.Connect = drivers.connect) -> None:
        self.store = store
        self.interval = interval
        self.concurrency = concurrency
        self.policy = policy
        self.connect = connect
        self._lock_fd: int | None = None
        self._stop = threading.Event()

    def poll_once(self) -> list[power.Outcome]:
        """Read the state of every registered host with a BMC, in every cluster; return the
        outcomes (each is in the state book too) and log one line."""
        started = time.monotonic()
        bmcs = BmcStore(self.store.layout.root)
        outcomes: list[power.Outcome] = []
        for cluster in [rid.cluster or "" for rid in self.store.list_records(Kind.CLUSTER)]:
            macs = [mac for mac in bmcs.macs(cluster)
                    if self.store.exists(RecordId.of_host(cluster, mac))]
            outcomes += power.run_many(self.store, cluster, macs, [STATUS], POLLER_ACTOR,
                                       self.policy, self.connect,
                                       concurrency=self.concurrency, quiet=True)
        failed = [o.mac for o in outcomes if not o.ok]
        if outcomes:
            eventlog.event(logging.WARNING if failed else logging.INFO,
                           f"power poll: {len(outcomes)} hosts in "
                           f"{time.monotonic() - started:.1f} s, {len(failed)} unreadable"
                           + (f" ({', '.join(failed[:10])})" if failed else ""), host="ips")
        return outcomes

    def leads(self) -> bool:
        """Return True when this process holds the poller lock (taking it when free)."""
        if self._lock_fd is not None:
            return True
        path = run_dir(self.store.layout.root) / "poller.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def start(self) -> threading.Thread:
        """Start the polling thread (a daemon: it ends with the process) and return it."""
        thread = threading.Thread(target=self._loop, name="hps-power-poller", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Make the thread end after its current poll and let the lock go."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.leads():
                    self.poll_once()
            except Exception as err:  # a poll must never end the thread
                eventlog.event(logging.ERROR, "power poll failed", host="ips", error=err)
            self._stop.wait(self.interval)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

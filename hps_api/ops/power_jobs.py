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

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hps_api.errors import HpsError, StoreBusy
from hps_api.observe import eventlog
from hps_api.ops import power
from hps_api.ops.leader import LeaderLoop
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


class Poller(LeaderLoop):
    """Reads every BMC's power state now and then, in the one process that holds the lock."""

    name = "hps-power-poller"

    def __init__(self, store: Store, interval: float = POLL_SECONDS,
                 concurrency: int = power.CONCURRENCY, policy: power.Policy = power.POLL_POLICY,
                 connect: drivers.Connect = drivers.connect) -> None:
        super().__init__(run_dir(store.layout.root) / "poller.lock", interval)
        self.store = store
        self.concurrency = concurrency
        self.policy = policy
        self.connect = connect

    def work(self) -> object:
        return self.poll_once()

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

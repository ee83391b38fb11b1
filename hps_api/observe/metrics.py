"""Prometheus metrics (docs/api.md §9): what is counted, and the text `/metrics` answers.

Counting costs the request path increments only: no store read, no label value taken from the
caller. The doors fold what a request says into a few known values (hps_api.web.metrics); hosts
are counted by state and type, never named.

One process (the Flask test client, `hps-api cgi`, a CLI) counts in its own memory. Under
gunicorn every worker is a process of its own: `use_multiprocess_dir` makes this process and the
workers it forks keep their values in files under one directory (prometheus-client's
multiprocess mode, one mmap'ed file per process and kind), and `/metrics` adds them up across
the workers, those that have exited included, so a counter never goes back. It must come before
the first value is made, as `hps-api serve` does before it builds the app.

The host counts are not counted on the way: `HostCounts` reads them from the store when
`/metrics` is asked for, keeps them HOSTS_SECONDS, and rereads only the records whose file
changed since, so a scrape of 10,000 hosts costs a directory listing and a stat per host. The
stuck hosts per rule come from the function the app hands it (hps_api.ops.stuck's scan: this
layer does not reach up to the operations), counted at the same time.

prometheus-client is imported when counting starts (`enable`): a process with metrics off, or
a CLI that never counts, does not load it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hps_api.errors import HpsError, NotFound
from hps_api.model.catalog import load_catalog
from hps_api.model.states import STATES
from hps_api.store import FileStore, Kind, RecordId, Store, files, journal

if TYPE_CHECKING:
    from prometheus_client.core import Metric

#: the Prometheus text format, version 0.0.4: what every Prometheus and promtool reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: prometheus-client finds the multiprocess directory in this variable, and only there
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HOSTS_SECONDS = 5.0
#: a request takes about a millisecond; an initrd streamed to a slow client, minutes
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)
#: a lock nobody holds is taken in microseconds; HPS_LOCK_TIMEOUT is 5 s by default
LOCK_BUCKETS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_LABELS = ("endpoint", "command", "client", "code")
#: what a host count keeps of a record: its path, its file's identity, its STATE and TYPE
_Seen = tuple[str, tuple[int, ...], str, str]
#: cluster -> its stuck hosts per rule, every rule listed (hps_api.ops.stuck.Scan.counts)
StuckCounts = Callable[[str], Mapping[str, int]]


class _Meters:
    """The counters, histograms and gauges a process adds to, and their children by labels."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "hps_http_requests", "HTTP requests answered, by endpoint (blueprint), legacy "
            "command, client type and status code", REQUEST_LABELS, registry=registry)
        self.latency = Histogram(
            "hps_http_request_duration_seconds", "Time from the request's arrival in the app "
            "to its answer, by endpoint, legacy command and client type", REQUEST_LABELS[:3],
            buckets=REQUEST_BUCKETS, registry=registry)
        self.decisions = Counter(
            "hps_boot_decisions", "Boot decisions `init` answered, by decision", ("decision",),
            registry=registry)
        self.lock_wait = Histogram(
            "hps_store_lock_wait_seconds", "Time spent waiting for a store lock that was then "
            "taken", buckets=LOCK_BUCKETS, registry=registry)
        self.lock_timeouts = Counter(
            "hps_store_lock_timeouts", "Store locks given up on after HPS_LOCK_TIMEOUT "
            "(answered 503, or exit 3)", registry=registry)
        self.journal_writes = Counter(
            "hps_journal_writes", "Appends to a journal (one per change of a record)",
            registry=registry)
        self.journal_lines = Counter(
            "hps_journal_lines", "Lines appended to a journal (one per changed key)",
            registry=registry)
        self.selftest = Gauge(
            "hps_selftest_check_passed", "1 when the IPS self-test check passed at its latest "
            "run, 0 when it failed", ("check",), multiprocess_mode="mostrecent",
            registry=registry)
        self.selftest_time = Gauge(
            "hps_selftest_last_run_timestamp_seconds", "When the IPS self-test last ran (Unix "
            "time)", multiprocess_mode="mostrecent", registry=registry)
        #: the labelled children made so far (`labels()` checks its arguments at every call)
        self.children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        self.decided: dict[str, Any] = {}


_meters: _Meters | None = None
_paused: _Meters | None = None
_directory: Path | None = None


def multiprocess_dir(config_dir: Path) -> Path:
    """Return the directory a server keeps its workers' metric files in: `run/metrics` of the
    config dir, the server's own state, which its systemd unit lets it write (never a /tmp
    that other services share)."""
    return config_dir / "run" / "metrics"


def use_multiprocess_dir(directory: Path) -> None:
    """Empty `directory` (made when missing) and count into files there from now on, in this
    process and the processes it forks. The metrics made before are dropped.

    Raises OSError when the directory cannot be made.
    """
    from prometheus_client import values

    global _directory, _meters, _paused
    shutil.rmtree(directory, ignore_errors=True)  # the files of a previous run's processes
    directory.mkdir(parents=True, mode=0o700)
    # prometheus-client names each process's file from this variable, read when a value is made
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _directory, _meters, _paused = directory, None, None


def enable() -> None:
    """Count in this process from now on (idempotent): requests and boot decisions through
    the functions below, store locks and journal writes through the store's listeners."""
    global _meters, _paused
    if _meters is None:
        from prometheus_client import disable_created_metrics

        # no `_created` series: multiprocess mode has none either
        disable_created_metrics()  # type: ignore[no-untyped-call]
        _meters, _paused = _paused or _Meters(), None
    if _lock_taken not in files.LOCK_LISTENERS:
        files.LOCK_LISTENERS.append(_lock_taken)
    if _journal_written not in journal.WRITE_LISTENERS:
        journal.WRITE_LISTENERS.append(_journal_written)


def disable() -> None:
    """Stop counting in this process, as if metrics were off; `enable` goes on from the
    counts so far (the metrics benchmark compares both in one process)."""
    global _meters, _paused
    _meters, _paused = None, _meters or _paused
    for listeners, listener in ((files.LOCK_LISTENERS, _lock_taken),
                                (journal.WRITE_LISTENERS, _journal_written)):
        if listener in listeners:
            listeners.remove(listener)  # type: ignore[arg-type]


def process_gone(pid: int) -> None:
    """Forget the live-only values of a worker that exited (gunicorn's child_exit); its
    counters stay in the totals. Nothing to do in a single process."""
    if _directory is not None:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, str(_directory))  # type: ignore[no-untyped-call]


# -- counting: each a few increments, nothing when metrics are off -----------------------------


def count_request(endpoint: str, command: str, client: str, code: str, seconds: float) -> None:
    """Count one answered request and its duration (label values already folded)."""
    meters = _meters
    if meters is None:
        return
    key = (endpoint, command, client, code)
    try:
        pair = meters.children.get(key)
        if pair is None:
            pair = meters.children[key] = (meters.requests.labels(*key),
                                           meters.latency.labels(endpoint, command, client))
        pair[0].inc()
        pair[1].observe(seconds)
    except OSError:
        return  # a metrics file that cannot grow (full disk) never fails the request


def count_boot_decision(decision: str) -> None:
    """Count one boot decision answered to `init` (menu, install, netboot, localboot, ...)."""
    meters = _meters
    if meters is None:
        return
    try:
        child = meters.decided.get(decision)
        if child is None:
            child = meters.decided[decision] = meters.decisions.labels(decision)
        child.inc()
    except OSError:
        return


def record_selftest(results: Iterable[tuple[str, bool]]) -> None:
    """Record the outcome of each IPS self-test check (name, passed) and the time of the run."""
    meters = _meters
    if meters is None:
        return
    with contextlib.suppress(OSError):
        for name, passed in results:
            meters.selftest.labels(name).set(1 if passed else 0)
        meters.selftest_time.set(time.time())


def _lock_taken(seconds: float, taken: bool) -> None:
    meters = _meters
    if meters is None:
        return
    with contextlib.suppress(Exception):  # a store listener must never fail a store write
        if taken:
            meters.lock_wait.observe(seconds)
        else:
            meters.lock_timeouts.inc()


def _journal_written(lines: int) -> None:
    meters = _meters
    if meters is None:
        return
    with contextlib.suppress(Exception):  # a store listener must never fail a store write
        meters.journal_writes.inc()
        meters.journal_lines.inc(lines)


# -- the answer to /metrics -----------------------------------------------------------------


def exposition(hosts: HostCounts) -> bytes:
    """Return every metric in the Prometheus text format: this process's counters (or, in
    multiprocess mode, every process's, added up) and the host counts of `hosts`."""
    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if _meters is None:
        raise RuntimeError("metrics are not enabled in this process")
    counted: Any = _meters.registry
    if _directory is not None:
        counted = MultiProcessCollector(None, str(_directory))  # type: ignore[no-untyped-call]
    return generate_latest(counted) + generate_latest(hosts)


class HostCounts:
    """The registered hosts of every cluster by STATE and by TYPE, read from the store at
    most once per `seconds` (a prometheus-client collector). A record is reread only when its
    file changed; a value outside the known states and the catalog's types counts as
    `other`, a host without TYPE as `none`. With `stuck`, the stuck hosts per cluster and
    rule too (a cluster whose scan fails has none that time)."""

    def __init__(self, store: Store, seconds: float = HOSTS_SECONDS,
                 stuck: StuckCounts | None = None) -> None:
        self.store = store
        self.seconds = seconds
        self.stuck = stuck
        self._lock = threading.Lock()
        self._until = 0.0
        self._families: list[Metric] = []
        self._seen: dict[RecordId, _Seen] = {}

    def collect(self) -> Iterator[Metric]:
        """Yield the host gauges, counted again when the last count is older than `seconds`."""
        with self._lock:
            now = time.monotonic()
            if now >= self._until:
                self._families = self._count()
                self._until = time.monotonic() + self.seconds
            yield from self._families

    def _count(self) -> list[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        by_state = GaugeMetricFamily("hps_hosts_by_state", "Registered hosts by cluster and "
                                     "STATE (other: a state hps-api does not know)",
                                     labels=["cluster", "state"])
        by_type = GaugeMetricFamily("hps_hosts_by_type", "Registered hosts by cluster and TYPE "
                                    "(none: no type yet; other: not in the catalog)",
                                    labels=["cluster", "type"])
        unreadable = GaugeMetricFamily("hps_hosts_unreadable", "Host records that cannot be "
                                       "read (hps-api fsck names them)", labels=["cluster"])
        stuck = GaugeMetricFamily("hps_hosts_stuck", "Stuck hosts by cluster and by the rule "
                                  "that tells most (docs/stuck.md)", labels=["cluster", "rule"])
        catalog = tuple(load_catalog())
        seen: dict[RecordId, _Seen] = {}
        for cluster_id in self.store.list_records(Kind.CLUSTER):
            cluster = cluster_id.cluster or ""
            states = dict.fromkeys((*STATES, "other"), 0)
            types = dict.fromkeys((*catalog, "none", "other"), 0)
            bad = 0
            for rid in self._hosts(cluster):
                try:
                    seen[rid] = found = self._state_and_type(rid)
                except NotFound:
                    continue  # deleted since the directory was listed
                except (HpsError, OSError):
                    bad += 1
                    continue
                states[found[2] if found[2] in STATES else "other"] += 1
                types[found[3] if found[3] in types else "other"] += 1
            for state, count in states.items():
                by_state.add_metric([cluster, state], count)
            for kind, count in types.items():
                by_type.add_metric([cluster, kind], count)
            unreadable.add_metric([cluster], bad)
            for rule, count in self._stuck(cluster).items():
                stuck.add_metric([cluster, rule], count)
        self._seen = seen
        return [by_state, by_type, unreadable, *([stuck] if self.stuck else [])]

    def _stuck(self, cluster: str) -> Mapping[str, int]:
        if self.stuck is None:
            return {}
        try:
            return self.stuck(cluster)
        except (HpsError, OSError):
            return {}  # removed or unreadable meanwhile: the other gauges still answer

    def _hosts(self, cluster: str) -> list[RecordId]:
        try:
            return self.store.list_records(Kind.HOST, cluster)
        except NotFound:  # removed since the clusters were listed
            return []

    def _state_and_type(self, rid: RecordId) -> _Seen:
        """Return the record's path, its file's identity, its STATE and TYPE (upper case; TYPE
        `none` when unset); from the last count when the file has not changed."""
        if not isinstance(self.store, FileStore):  # no file to stat: read the record
            items = self.store.items(rid)
            return ("", (), items.get("STATE", "").strip().upper(),
                    items.get("TYPE", "").strip().upper() or "none")
        known = self._seen.get(rid)
        path = known[0] if known is not None else str(self.store.layout.path(rid))
        try:
            identity = files.identity(os.stat(path))
        except FileNotFoundError:
            raise NotFound(str(rid)) from None
        if known is not None and known[1] == identity:
            return known
        items = self.store.items(rid)
        return (path, identity, items.get("STATE", "").strip().upper(),
                items.get("TYPE", "").strip().upper() or "none")

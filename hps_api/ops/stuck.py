"""Finding the stuck hosts of a cluster (docs/stuck.md): its host records, each host's recent
history from the cluster's journal, the cluster's thresholds, and the rules of
hps_api.model.stuck.

The history comes from the journal lines every boot and install already writes: BOOT_SESSION
(a boot), STATE (a change of state) and `.ks` (a kickstart served: its text holds the boot
session, so every boot's first fetch is a new line). A JournalHistory keeps, per host, the times
of its last boots, its last STATE change and its last kickstart, with the journal's identity and
how far it has read: the first read in a process takes the journal's last WINDOW bytes (the
history then knows from the first line of those), every later one only the lines appended
since. A journal replaced (rotated, compacted: another inode) or cut shorter is read again. The
histories are kept per journal path in this process (`history_for`), so every door of a worker
(dashboard, host list, API, metrics, the background watch) shares one reading; keyed by path,
two stores never mix. (Store.history reads the whole journal for one host: 10,000 of those
would read it 10,000 times.)

The records come from a HostIndex (hps_api.ops.host_index: a `stat` per host once warm) or
from the caller, who has usually read them for the same request. A backend that keeps the journal
in a file names it (`Store.journal_path`), and the history follows that file; any other (etcd)
feeds the same history from `Store.journal_lines`: the newest WINDOW_LINES lines first, then
those after the cursor of the last read (`StoreJournalHistory`, kept per store).
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hps_api.errors import HpsError
from hps_api.ids import validate_cluster
from hps_api.model.stuck import RULES, Finding, HostHistory, Limits, findings, iso_epoch
from hps_api.ops.host_index import HostIndex
from hps_api.store import RecordId, Store

#: boots kept per host: BOOT_LOOP_COUNT is at most 100, so a loop's boots always fit
MAX_BOOTS = 128
#: journals whose history this process keeps (the server has one per cluster)
MAX_JOURNALS = 16
CHUNK = 8 * 1024 * 1024
#: how much of a journal the first read takes, from its end: a week or more of a busy cluster
#: (10,000 hosts booting daily write about 4 MiB a day), read in about 0.3 s
WINDOW = 32 * 1024 * 1024
#: the lines the history needs, as hps_api.store.journal writes them (`json.dumps` of a Change:
#: time, record, key, old, new, actor); every other line is skipped inside the regex engine.
#: Their values never hold a quote (session ids, state names, sha256 digests).
_LINE = re.compile(
    rb'"time": "([^"]{20})", "record": "host/([0-9a-f]{12})", '
    rb'"key": "(BOOT_SESSION|STATE|\.ks)", "old": (?:null|"[^"\n]*"), "new": (null|"[^"\n]*")')
_FIRST_TIME = re.compile(rb'^\{"time": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"', re.MULTILINE)


@dataclass(frozen=True)
class StuckHost:
    """A stuck host: its record and every rule it meets, the most telling first."""

    mac: str
    record: Mapping[str, str]
    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        """Return the most telling finding: the host's rule where one is shown."""
        return self.findings[0]

    def as_dict(self) -> dict[str, object]:
        """Return the host as `hps-api stuck --json` prints it."""
        return {"mac": self.mac, "hostname": self.record.get("HOSTNAME", ""),
                "state": (self.record.get("STATE") or "UNCONFIGURED").upper(),
                "rule": self.first.rule, "since": iso(self.first.since),
                "detail": self.first.detail,
                "rules": [{"rule": f.rule, "since": iso(f.since), "detail": f.detail}
                          for f in self.findings]}


@dataclass(frozen=True)
class Scan:
    """The outcome of one scan of a cluster: its stuck hosts (MAC order), how many hosts were
    checked, and the records that could not be read (mac -> why)."""

    cluster: str
    now: float
    limits: Limits
    checked: int
    hosts: dict[str, StuckHost]
    problems: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Return the stuck hosts per rule, every rule listed; a host counts once, under its
        most telling rule (so the counts add up to the stuck hosts)."""
        counts = dict.fromkeys(RULES, 0)
        for host in self.hosts.values():
            counts[host.first.rule] += 1
        return counts


def find_stuck(store: Store, cluster: str, now: float | None = None, *,
               index: HostIndex | None = None,
               records: Mapping[str, Mapping[str, str]] | None = None) -> Scan:
    """Return the stuck hosts of `cluster` at `now` (default: the current time).

    `records` are the cluster's host records when the caller has read them already; else they
    are read through `index` (a fresh HostIndex: every record parsed). Raises NotFound for an
    unknown cluster, InvalidInput for a bad name, and the store's errors.
    """
    now = time.time() if now is None else now
    limits = Limits.of(store.items(RecordId.of_cluster(validate_cluster(cluster))))
    problems: dict[str, str] = {}
    if records is None:
        hosts = (index or HostIndex()).read(store, cluster)
        records, problems = hosts.records, hosts.problems
    journal_file = store.journal_path(cluster)
    histories = (history_for(journal_file) if journal_file is not None
                 else store_history_for(store, cluster)).read()
    unknown = histories.get("", HostHistory())
    stuck = {}
    for mac, record in records.items():
        found = findings(record, histories.get(mac, unknown), now, limits)
        if found:
            stuck[mac] = StuckHost(mac, record, found)
    return Scan(cluster, now, limits, len(records), stuck, dict(problems))


def stuck_test(store: Store, cluster: str, records: Mapping[str, Mapping[str, str]],
               now: float) -> Callable[[], Collection[str]]:
    """Return what hps_api.ops.host_query.select asks when a query says `stuck=1`: the MACs
    of the stuck hosts among `records`, found only if it asks."""
    return lambda: find_stuck(store, cluster, now, records=records).hosts.keys()


def iso(seconds: float | None) -> str | None:
    """Return epoch seconds in the store's time form (`2025-01-02T10:00:00Z`), None for None."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# -- the journal's history of each host -----------------------------------------------------------


class _Track:
    """What the journal said so far about one host; `shot` is its HostHistory, made again only
    after a change."""

    __slots__ = ("boots", "kickstart_at", "shot", "state", "state_at")

    def __init__(self) -> None:
        self.boots: deque[float] = deque(maxlen=MAX_BOOTS)
        self.state_at: float | None = None
        self.state: bytes = b"null"
        self.kickstart_at: float | None = None
        self.shot: HostHistory | None = None

    def history(self, known_from: float | None) -> HostHistory:
        """Return the host's history as the rules read it."""
        if self.shot is None:
            state = None if self.state == b"null" else (
                self.state[1:-1].decode("utf-8", "replace").strip().upper())
            self.shot = HostHistory(tuple(self.boots), self.state_at, state, self.kickstart_at,
                                    known_from)
        return self.shot


class JournalHistory:
    """The history of every host of one journal, brought up to date at each `read`.

    It follows the file it read last: appended lines are read from where it stopped; when the
    journal was rotated meanwhile (hps_api.store.rotation renames it `<name>.1` and puts a fresh
    file in its place), the rest of the rotated file is read, then the new one from its start,
    and nothing is forgotten. A journal it cannot follow so (the first read, a file replaced or
    cut shorter) is read again: the last WINDOW bytes of it and, when it is shorter, of `.1`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._first: float | None = None
        self._tracks: dict[bytes, _Track] = {}

    def read(self) -> dict[str, HostHistory]:
        """Return mac12 -> history, and under "" the history of a host the journal does not
        name (it knows from when the journal starts). An unreadable or missing journal is an
        empty history: the rules that need one stay silent."""
        with self._lock:
            try:
                self._catch_up()
            except OSError:
                self._restart()
            first = self._first
            found = {mac.decode(): track.history(first) for mac, track in self._tracks.items()}
            found[""] = HostHistory(known_from=first)
            return found

    def _catch_up(self) -> None:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            self._restart()
            return
        with handle:
            stat = os.fstat(handle.fileno())
            identity = (stat.st_dev, stat.st_ino)
            if identity == self._identity and stat.st_size >= self._offset:
                self._offset = self._read_lines(handle, self._offset)
                return
            if not self._finish_rotated():
                self._restart()
                self._read_older(WINDOW - stat.st_size)
                self._offset = self._read_lines(handle, max(0, stat.st_size - WINDOW))
                self._identity = identity
                return
            self._identity = identity
            self._offset = self._read_lines(handle, 0)

    def _finish_rotated(self) -> bool:
        """Read the rest of the file last read when a rotation renamed it (`.1`: a rotation
        between two reads; `.2`: two); False when it is not there."""
        if self._identity is None:
            return False
        for number in (1, 2):
            try:
                with self.path.with_name(f"{self.path.name}.{number}").open("rb") as handle:
                    stat = os.fstat(handle.fileno())
                    if (stat.st_dev, stat.st_ino) == self._identity:
                        if stat.st_size < self._offset:
                            return False
                        self._read_lines(handle, self._offset)
                        return True
            except FileNotFoundError:
                continue
        return False

    def _read_older(self, budget: int) -> None:
        """Read the last `budget` bytes of the newest rotation (none: nothing to read)."""
        if budget <= 0:
            return
        try:
            with self.path.with_name(f"{self.path.name}.1").open("rb") as handle:
                self._read_lines(handle, max(0, os.fstat(handle.fileno()).st_size - budget))
        except FileNotFoundError:
            return

    def _read_lines(self, handle: BinaryIO, start: int) -> int:
        """Fold the whole lines of an open journal file from `start` (a position within a
        line: from the next one) and return the position after the last whole line."""
        if start:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                start += len(handle.readline())
        offset = start
        while True:
            handle.seek(offset)
            data = handle.read(CHUNK)
            end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
            if not end:
                return offset
            self._take(data[:end])
            offset += end
            if len(data) < CHUNK:
                return offset

    def _restart(self) -> None:
        self._identity, self._offset, self._first, self._tracks = None, 0, None, {}

    def _take(self, data: bytes) -> None:
        """Fold complete journal lines into the tracks."""
        if self._first is None:
            match = _FIRST_TIME.search(data)
            self._first = iso_epoch(match.group(1).decode()) if match else None
        tracks: dict[bytes, _Track] = self._tracks
        times: dict[bytes, float | None] = {}  # the lines of one second share their time
        for when, mac, key, new in _LINE.findall(data):
            at = times.get(when)
            if at is None:
                at = times[when] = iso_epoch(when.decode("ascii", "replace"))
                if at is None:
                    continue
            track = tracks.get(mac)
            if track is None:
                track = tracks[mac] = _Track()
            track.shot = None
            if key == b"BOOT_SESSION":
                if new != b"null":
                    track.boots.append(at)
            elif key == b"STATE":
                track.state_at, track.state = at, new
            elif new != b"null":
                track.kickstart_at = at


class StoreJournalHistory(JournalHistory):
    """The same history, fed by `Store.journal_lines` (a backend with no journal file): the
    first read takes the newest WINDOW_LINES lines, each later one the lines after the cursor
    the last read ended at. A journal that cannot be read keeps the history as it was."""

    def __init__(self, store: Store, cluster: str) -> None:
        super().__init__(Path(cluster))
        self.store, self.cluster = store, cluster
        self._cursor = 0

    def _catch_up(self) -> None:
        try:
            found = self.store.journal_lines(self.cluster, after=self._cursor,
                                             limit=None if self._cursor else WINDOW_LINES)
        except HpsError:
            return
        if found.lines:
            self._take(b"\n".join(found.lines) + b"\n")
        self._cursor = found.cursor

    def _restart(self) -> None:
        super()._restart()
        self._cursor = 0


#: lines a StoreJournalHistory reads first (about WINDOW bytes' worth would be 170,000)
WINDOW_LINES = 20_000
_STORE_HISTORIES: weakref.WeakKeyDictionary[Store, dict[str, StoreJournalHistory]] = \
    weakref.WeakKeyDictionary()


def store_history_for(store: Store, cluster: str) -> StoreJournalHistory:
    """Return this process's history of a cluster's journal kept by `store` (made at first
    use, kept as long as the store)."""
    with _HISTORIES_LOCK:
        kept = _STORE_HISTORIES.setdefault(store, {})
        found = kept.get(cluster)
        if found is None:
            found = kept[cluster] = StoreJournalHistory(store, cluster)
        return found


_HISTORIES: OrderedDict[str, JournalHistory] = OrderedDict()
_HISTORIES_LOCK = threading.Lock()


def history_for(path: Path) -> JournalHistory:
    """Return this process's history of the journal at `path` (made at first use; the
    MAX_JOURNALS most recently used are kept)."""
    key = str(path)
    with _HISTORIES_LOCK:
        found = _HISTORIES.get(key)
        if found is None:
            found = _HISTORIES[key] = JournalHistory(path)
            while len(_HISTORIES) > MAX_JOURNALS:
                _HISTORIES.popitem(last=False)
        else:
            _HISTORIES.move_to_end(key)
        return found

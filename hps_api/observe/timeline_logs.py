"""Reading a host's timeline (docs/timeline.md): its record, journal and OS through the Store
protocol, and of each log only the part its story needs (hps_api.observe.logtail), filtered by
the host's MAC and addresses before anything is parsed; hps_api.observe.timeline assembles.

How far back: the story starts at the host's current boot session (BOOT_TIME) or, when the
journal shows an install started earlier (its last STATE change to INSTALLING), there; the event
log is read from LOOKBACK before that to its end, at most its last MAX_EVENT_BYTES. The other
logs are read only when the event log holds the story's boot session, and only where the story
needs them: the access logs around the session's start and for FETCH_WINDOW after its
decision, dnsmasq's log in the LOOKBACK before the start, nodes.log from the decision on, at
most MAX_LOG_BYTES each; where a time lies in a log is found by bisection. So a host that has
not booted within the event log's last MAX_EVENT_BYTES costs the lease file and that much of
the event log; one running its system whose last boot and install are older than the event
log's first line (rotated since), the lease file and that line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from hps_api.errors import InvalidInput, NotFound
from hps_api.ids import colon_mac
from hps_api.observe import logtail
from hps_api.observe.later_phases import SLACK, HostFacts
from hps_api.observe.sightings import (
    Event,
    Fetch,
    Lease,
    NodeLine,
    parse_access,
    parse_dnsmasq,
    parse_event,
    parse_lease,
    parse_nginx,
    parse_node_line,
    parse_time,
)
from hps_api.observe.timeline import (
    LOOKBACK,
    SETTLED_STATES,
    Timeline,
    anchor_of,
    assemble,
    host_ips,
)
from hps_api.store import RecordId, Store
from hps_api.store.journal import Change

MAX_EVENT_BYTES = 16 * 1024 * 1024
MAX_LOG_BYTES = 16 * 1024 * 1024
#: how long after the decision the boot files' requests are looked for (a line is written
#: when the answer is done: a kernel and initrd over a busy link take minutes)
FETCH_WINDOW = 20 * 60.0
#: margin around a moment looked for in the access logs
EDGE = 60.0
#: the whole lease file is read (one line per host; not in time order)
MAX_LEASE_BYTES = 8 * 1024 * 1024
#: the file names the writers use under HPS_LOG_DIR (hps_api.observe.eventlog,
#: hps_api/entry/server.py ACCESS_LOG, hps_api/services/nginx.py ACCESS_LOG,
#: hps_api/services/rsyslog.py NODES_LOG; tests/test_timeline.py holds them equal), and
#: dnsmasq's log when it is told to write one there (`log-facility`)
EVENTS, ACCESS, NGINX, NODES, DNSMASQ = ("hps-api.log", "access.log", "nginx-access.log",
                                         "nodes.log", "dnsmasq.log")
_T = TypeVar("_T")


@dataclass(frozen=True)
class LogFiles:
    """Where the timeline's sources are."""

    events: Path
    access: Path
    nginx: Path
    nodes: Path
    dnsmasq: Path
    leases: Path

    @classmethod
    def under(cls, log_dir: Path, leases: Path) -> LogFiles:
        """Return the files under HPS_LOG_DIR, and HPS_DHCP_LEASES."""
        return cls(log_dir / EVENTS, log_dir / ACCESS, log_dir / NGINX, log_dir / NODES,
                   log_dir / DNSMASQ, leases)


def host_timeline(store: Store, rid: RecordId, logs: LogFiles, now: float, *,
                  record: Mapping[str, str] | None = None,
                  changes: Sequence[Change] | None = None) -> Timeline:
    """Return the host's timeline; `record` and `changes` when the caller has read them.

    Raises NotFound for a host without a record, and the store's errors.
    """
    record = store.items(rid) if record is None else record
    changes = store.history(rid) if changes is None else changes
    mac = rid.name or ""
    leases = read_leases(logs.leases, mac)
    ips = host_ips(record, leases, mac)
    events = [] if settled_before(logs.events, record, changes) else read_events(
        logs.events, mac, story_since(record, changes, now))
    anchor = anchor_of(events, record)
    fetches: list[Fetch] = []
    nodes: list[NodeLine] = []
    if anchor.logged and anchor.start is not None:
        leases += read_acks(logs.dnsmasq, mac, anchor.start, now)
        fetches = read_fetches(logs, mac, ips, fetch_ranges(anchor.start, anchor.decided))
        senders = ips | {f.ip for f in fetches if f.mac == mac}
        nodes = read_nodes(logs.nodes, senders, anchor.decided or anchor.start)
    return assemble(HostFacts(mac, rid.cluster or "", record, *boot_files(store, record)),
                    events, fetches, nodes, leases, changes, now)


def story_since(record: Mapping[str, str], changes: Sequence[Change], now: float) -> float:
    """Return how far back the event log is read: LOOKBACK before the current boot session
    or the last install's start, whichever is earlier (LOOKBACK before now without either)."""
    starts = [float(record["BOOT_TIME"])] if record.get("BOOT_TIME", "").isdigit() else []
    return min([*starts, *_last_install(changes)], default=now) - LOOKBACK


def _last_install(changes: Sequence[Change]) -> list[float]:
    """Return when the journal's last STATE change to INSTALLING was made ([] without one)."""
    installs = [c.time for c in changes if c.key == "STATE" and c.new == "INSTALLING"]
    at = parse_time(installs[-1]) if installs else None
    return [] if at is None else [at]


def settled_before(path: Path, record: Mapping[str, str], changes: Sequence[Change]) -> bool:
    """Return True when the event log cannot hold the host's story: it runs its system, and
    its current boot session and last install both began before the log's first line (a log
    rotated since); reading the log for it would find nothing the story uses."""
    if record.get("STATE") not in SETTLED_STATES or not record.get("BOOT_TIME", "").isdigit():
        return False
    latest = max([float(record["BOOT_TIME"]), *_last_install(changes)])
    head = logtail.head_time(path, lambda line: _at(parse_event(line)))
    return head is not None and latest < head


def boot_files(store: Store, record: Mapping[str, str]) -> tuple[str, str]:
    """Return the paths of the kernel and initrd the host's OS record names ("" without one),
    as the installer's script asks for them (hps_api/boot/decide.py)."""
    try:
        found = store.items(RecordId.of_os(record.get("OS_ID", "")))
    except (NotFound, InvalidInput):
        return "", ""
    repo = f"/distros/{found.get('REPO_PATH', '').strip('/')}"
    return f"{repo}/{found.get('KERNEL', 'vmlinuz')}", f"{repo}/{found.get('INITRD', 'initrd.img')}"


def spellings(mac: str) -> list[str]:
    """Return the ways a request may write a MAC (lower case): as stored (the node library),
    iPXE's `hexhyp`, with colons, colons URL-encoded."""
    colons = colon_mac(mac)
    return [mac, colons.replace(":", "-"), colons, colons.replace(":", "%3a")]


def read_leases(path: Path, mac: str) -> list[Lease]:
    """Return the lease the lease file holds for the MAC (one per host, not in time order: the
    file is read whole, at most MAX_LEASE_BYTES)."""
    text = logtail.read_head(path, MAX_LEASE_BYTES)
    found = _parsed(logtail.lines_with(text, [colon_mac(mac)]), parse_lease)
    return [lease for lease in found if lease.mac == mac]


def read_acks(path: Path, mac: str, start: float, now: float) -> list[Lease]:
    """Return the DHCPACKs of the MAC in the LOOKBACK before a boot session's `start`, from
    dnsmasq's log when it writes one under HPS_LOG_DIR (it writes MACs in lower case)."""
    window = logtail.read_between(path, start - LOOKBACK, start + SLACK,
                                  lambda line: _at(parse_dnsmasq(line, now)),
                                  limit=MAX_LOG_BYTES)
    found = _parsed(logtail.lines_with(window, [colon_mac(mac)]),
                    lambda line: parse_dnsmasq(line, now))
    return [lease for lease in found if lease.mac == mac]


def read_events(path: Path, mac: str, since: float) -> list[Event]:
    """Return the event-log lines about the host since `since`, in file order: those whose host
    field is its MAC, which every line of a caller the IPS identified has (a line naming an
    address instead, from a caller it could not identify, is not looked for: it would cost a
    pass over the window per address)."""
    window = logtail.read_between(path, since, None, lambda line: _at(parse_event(line)),
                                  limit=MAX_EVENT_BYTES, newest=True)
    return [e for e in _parsed(logtail.lines_with(window, [mac]), parse_event) if e.host == mac]


def fetch_ranges(start: float, decided: float | None) -> list[tuple[float, float]]:
    """Return the times the access logs are read in: around the boot session's start (DHCP is
    over, iPXE fetches /boot.ipxe and asks `init`), and after its decision, when the boot
    files are fetched (FETCH_WINDOW); one range when they meet."""
    ranges = [(start - LOOKBACK, start + EDGE)]
    if decided is not None:
        if decided - EDGE <= start + EDGE:
            return [(start - LOOKBACK, decided + FETCH_WINDOW)]
        ranges.append((decided - EDGE, decided + FETCH_WINDOW))
    return ranges


def read_fetches(logs: LogFiles, mac: str, ips: set[str],
                 ranges: Sequence[tuple[float, float]]) -> list[Fetch]:
    """Return the requests of both access logs in those ranges of time that name the MAC or
    come from one of the host's addresses, or from an address a request naming the MAC came
    from (which of them are the host's is hps_api.observe.timeline.my_fetches's to say)."""
    found: list[Fetch] = []
    for path, parse in ((logs.access, parse_access), (logs.nginx, parse_nginx)):
        for since, until in ranges:
            window = logtail.read_between(path, since, until, _time_of(parse),
                                          limit=MAX_LOG_BYTES)
            spans = logtail.spans_with(window, [*spellings(mac), *_ip_needles(ips)],
                                       any_case=True)
            lines = logtail.lines_at(window, spans)
            named = {f.ip for f in _parsed(lines, parse) if f.mac == mac}
            spans |= logtail.spans_with(window, _ip_needles(named - ips))
            found += _parsed(logtail.lines_at(window, spans), parse)
    return sorted(found, key=lambda f: f.at)


def read_nodes(path: Path, ips: set[str], since: float) -> list[NodeLine]:
    """Return the syslog lines sent from the host's addresses since `since` (the installer's
    reports come after the decision, up to now)."""
    if not ips:
        return []
    window = logtail.read_between(path, since, None, lambda line: _at(parse_node_line(line)),
                                  limit=MAX_LOG_BYTES, newest=True)
    lines = logtail.lines_with(window, [f" {ip} " for ip in ips])
    return [n for n in _parsed(lines, parse_node_line) if n.ip in ips]


def _ip_needles(ips: Iterable[str]) -> list[str]:
    return [f"{ip} " for ip in ips]


def _parsed(lines: Iterable[str], parse: Callable[[str], _T | None]) -> list[_T]:
    return [item for item in map(parse, lines) if item is not None]


def _time_of(parse: Callable[[str], Fetch | None]) -> Callable[[str], float | None]:
    return lambda line: _at(parse(line))


def _at(item: Event | Fetch | NodeLine | Lease | None) -> float | None:
    return None if item is None else item.at


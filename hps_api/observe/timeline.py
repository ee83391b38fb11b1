"""A host's provisioning timeline (docs/timeline.md): its latest provisioning as the IPS saw it,
phase by phase, each with its start and how long it lasted, and the phase it is in now.

`assemble` is pure: the host's record and journal, and what the parsers of
hps_api.observe.sightings read from the logs, in; a Timeline out. It is tested as a table of
cases. `host_timeline` (hps_api.observe.timeline_logs) does the reading.

The story told is that of one boot session: the latest one whose decision started a
provisioning (install, netboot), else the host's current one. Its start (the session's first
event-log line, or BOOT_TIME) anchors the rest: DHCP and the bootstrap are the latest seen
before it; the menu and the decision are the session's own answers; every later phase is the
first seen after the one before it (hps_api.observe.later_phases).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from hps_api.model.states import BOOT_STATES
from hps_api.observe.later_phases import FINDERS, SLACK, HostFacts, Seen, Story
from hps_api.observe.sightings import Event, Fetch, Lease, NodeLine
from hps_api.store.journal import Change

PHASES: tuple[tuple[str, str], ...] = (
    ("dhcp", "dnsmasq gave the host its address"),
    ("bootstrap", "iPXE fetched /boot.ipxe (else: the boot session began)"),
    ("menu", "init answered the main menu: the host waits for an operator"),
    ("decision", "init answered what to boot: install, netboot, local boot, rescue"),
    ("kernel", "the kernel was fetched"),
    ("initrd", "the initrd was fetched; the kernel boots"),
    ("kickstart", "the installer fetched its kickstart"),
    ("installing", "the installer reports (log_message, syslog)"),
    ("installed", "the host reported INSTALLED (diskless: that it is up)"),
    ("first-selftest", "the first self-test report after that"),
)
PHASE_NAMES = tuple(name for name, _ in PHASES)
#: the phases a decision leads to, in order
AFTER_DECISION: dict[str, tuple[str, ...]] = {
    "install": ("kernel", "initrd", "kickstart", "installing", "installed", "first-selftest"),
    "netboot": ("kernel", "initrd", "installed", "first-selftest"),
    "rescue": ("kernel", "initrd"),
}
#: phases looked for only once another was seen: a self-test is the first *after* INSTALLED
REQUIRES = {"first-selftest": "installed"}
#: decisions whose story is over once this phase is reached (nothing more is awaited)
FINAL_PHASE = {"localboot": "decision", "rescue": "initrd"}
#: states of a host running its system: a lease without a boot is that system's own
SETTLED_STATES = BOOT_STATES | {"NETWORK_BOOT"}
#: decisions that start a provisioning: the latest session holding one is the story told
STORY_ACTIONS = frozenset({"install", "netboot"})
#: how long before a boot session's first `init` its DHCP and bootstrap may lie (PXE ROM,
#: TFTP, iPXE and its own DHCP take seconds; a minute on a loaded network)
LOOKBACK = 10 * 60.0
_DECISION = re.compile(r"(?:init|menu \S+): (\w+) \((.*)\)\Z", re.S)


@dataclass(frozen=True)
class Phase:
    """One phase: when it began (None: not seen), how long it lasted (None: not over, or not
    seen), which log showed it and what it said."""

    name: str
    at: float | None = None
    took: float | None = None
    source: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Timeline:
    """The phases of a host's latest provisioning, and the one it is in now (None: none, or
    its story is over)."""

    mac: str
    cluster: str
    state: str
    session: str | None
    now: float
    phases: tuple[Phase, ...]
    waiting: Phase | None

    def as_json(self) -> dict[str, Any]:
        """Return the JSON form (times as ISO 8601 UTC, durations in seconds)."""
        waiting = None if self.waiting is None or self.waiting.at is None else {
            "phase": self.waiting.name, "since": iso(self.waiting.at),
            "for": round(self.now - self.waiting.at, 3)}
        return {"mac": self.mac, "cluster": self.cluster, "state": self.state,
                "session": self.session, "now": iso(self.now), "waiting": waiting,
                "phases": [{"phase": p.name, "at": iso(p.at) if p.at is not None else None,
                            "took": None if p.took is None else round(p.took, 3),
                            "source": p.source or None, "detail": p.detail or None}
                           for p in self.phases]}


@dataclass(frozen=True)
class _Decision:
    index: int
    event: Event
    action: str
    reason: str


@dataclass(frozen=True)
class Anchor:
    """The boot session whose story is told, when it began, whether the event log holds
    lines of it, and its `init` answers."""

    session: str | None
    start: float | None
    logged: bool = False
    decisions: tuple[_Decision, ...] = ()

    @property
    def decided(self) -> float | None:
        """Return when the session's first answer other than the menu was given, if any."""
        return next((d.event.at for d in self.decisions if d.action != "menu"), None)


def assemble(host: HostFacts, events: Sequence[Event], fetches: Sequence[Fetch],
             node_lines: Sequence[NodeLine], leases: Sequence[Lease],
             changes: Sequence[Change], now: float) -> Timeline:
    """Return the host's timeline from what the logs, its record and its journal hold."""
    ips = host_ips(host.record, leases, host.mac)
    mine = [e for e in events if e.host == host.mac or e.host in ips]
    anchor = anchor_of(mine, host.record)
    fetched = sorted(my_fetches(fetches, host.mac, ips), key=lambda f: f.at)
    seen: dict[str, Seen] = {}
    if anchor.start is not None:
        seen["bootstrap"] = _bootstrap(fetched, anchor.session, anchor.start)
    boot = seen.get("bootstrap")
    dhcp = _dhcp([lease for lease in leases if lease.mac == host.mac],
                 boot.at if boot else None)
    if dhcp is not None:
        seen["dhcp"] = dhcp
    action = _decide(anchor, seen)
    story = Story(host, mine, fetched, _nodes_of(node_lines, ips, fetched, host.mac), changes)
    cursor = seen.get("decision")
    for name in AFTER_DECISION.get(action, ()):
        found = FINDERS[name](story, cursor) if cursor and REQUIRES.get(
            name, "decision") in seen else None
        if cursor and found:
            # it came after the phase before: a log of whole seconds may make it look earlier
            seen[name] = cursor = replace(found, at=max(found.at, cursor.at))
    final = FINAL_PHASE.get(action)
    if not action and host.record.get("STATE") in SETTLED_STATES:
        # no decision seen of a host running its system: its lease, or the start of a boot
        # the log no longer holds, awaits nothing
        final = next((name for name in reversed(PHASE_NAMES) if name in seen), None)
    return _timeline(host, anchor.session, seen, final, now)


def anchor_of(events: Sequence[Event], record: Mapping[str, str]) -> Anchor:
    """Return the boot session whose story is told: the latest one with a provisioning
    decision, else the host's current BOOT_SESSION, else the latest one that logged an
    answer; with its start (its first line, or BOOT_TIME when earlier)."""
    decisions = [_Decision(i, e, m[1], m[2]) for i, e in enumerate(events)
                 if e.client == "ipxe" and (m := _DECISION.match(e.message))]
    current = record.get("BOOT_SESSION")
    acting = [d for d in decisions if d.action in STORY_ACTIONS]
    if acting:
        session: str | None = acting[-1].event.session
    elif current and (any(d.event.session == current for d in decisions) or not decisions):
        session = current
    else:
        session = decisions[-1].event.session if decisions else None
    starts = [e.at for e in events if session is not None and e.session == session]
    logged = bool(starts)
    boot_time = record.get("BOOT_TIME", "")
    if session is not None and session == current and boot_time.isdigit():
        starts.append(float(boot_time))
    return Anchor(session, min(starts) if starts else None, logged,
                  tuple(d for d in decisions if d.event.session == session))


def host_ips(record: Mapping[str, str], leases: Sequence[Lease], mac: str) -> set[str]:
    """Return the addresses the host is known by: its IP and those dnsmasq gave its MAC."""
    given = (lease.ip for lease in leases if lease.mac == mac)
    return {ip for ip in (record.get("IP", ""), *given) if ip}


def my_fetches(fetches: Sequence[Fetch], mac: str, ips: set[str]) -> list[Fetch]:
    """Return the host's requests: those naming its MAC, and those naming none (a boot file,
    /boot.ipxe) from one of its addresses when the nearest request naming a MAC from that
    address names this host (another host may hold the address at another time)."""
    named: dict[str, list[tuple[float, bool]]] = {}
    for fetch in fetches:
        if fetch.mac and not _loopback(fetch.ip):
            named.setdefault(fetch.ip, []).append((fetch.at, fetch.mac == mac))
    addresses = ips | {ip for ip, marks in named.items() if any(ours for _, ours in marks)}
    found = []
    for fetch in fetches:
        if _loopback(fetch.ip):
            continue
        if fetch.mac or fetch.ip not in addresses:
            if fetch.mac == mac:
                found.append(fetch)
            continue
        marks = named.get(fetch.ip)
        if not marks or min(marks, key=lambda m: abs(m[0] - fetch.at))[1]:
            found.append(fetch)
    return found


def iso(at: float) -> str:
    """Return a Unix time as ISO 8601 UTC with whole seconds (`2026-12-07T08:42:54Z`)."""
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human(seconds: float) -> str:
    """Return a duration as people read it: `0 s`, `42 s`, `3 min 20 s`, `2 h 5 min`,
    `3 days 4 h`."""
    whole = int(max(0.0, seconds))
    for unit, name, below, below_name in ((86400, "days", 3600, "h"), (3600, "h", 60, "min"),
                                          (60, "min", 1, "s")):
        if whole >= unit:
            rest = whole % unit // below
            return f"{whole // unit} {name}" + (f" {rest} {below_name}" if rest else "")
    return f"{whole} s"


# -- the phases -----------------------------------------------------------------------------


def _bootstrap(fetched: Sequence[Fetch], session: str | None, start: float) -> Seen:
    """The latest /boot.ipxe fetch before the session's start, else the start itself."""
    boots = [f for f in fetched
             if f.path == "/boot.ipxe" and start - LOOKBACK <= f.at <= start + SLACK]
    if boots:
        return Seen(boots[-1].at, boots[-1].source, f"GET /boot.ipxe {boots[-1].status}")
    return Seen(start, "events", f"boot session {session} began (no /boot.ipxe fetch seen: "
                "iPXE chained init directly, or the access log no longer has it)")


def _dhcp(leases: Sequence[Lease], before: float | None) -> Seen | None:
    """The latest address given before the bootstrap (any, when no boot was seen at all)."""
    fitting = [lease for lease in leases if before is None
               or before - LOOKBACK <= lease.at <= before + SLACK]
    if not fitting:
        return None
    lease = max(fitting, key=lambda item: item.at)
    where = "dnsmasq's log" if lease.source == "dnsmasq" else "the lease file"
    return Seen(lease.at, lease.source, f"{lease.ip} ({where})")


def _decide(anchor: Anchor, seen: dict[str, Seen]) -> str:
    """Fill in the menu and decision phases of the session; return what it decided ("" when
    it has only answered the menu so far)."""
    acted = next((d for d in anchor.decisions if d.action != "menu"), None)
    menus = [d for d in anchor.decisions
             if d.action == "menu" and (acted is None or d.index < acted.index)]
    if menus:
        seen["menu"] = Seen(menus[0].event.at, "events", f"{len(menus)} menu answer"
                            f"{'s' if len(menus) > 1 else ''}; the last: {menus[-1].reason}",
                            menus[0].index)
    if acted is None:
        return ""
    seen["decision"] = Seen(acted.event.at, "events", f"{acted.action} ({acted.reason})",
                            acted.index)
    return acted.action


def _nodes_of(lines: Sequence[NodeLine], ips: set[str], fetched: Sequence[Fetch],
              mac: str) -> list[NodeLine]:
    """Return the syslog lines sent from the host's addresses (those it made requests from
    naming its MAC included: an installer's own DHCP address)."""
    addresses = ips | {f.ip for f in fetched if f.mac == mac and not _loopback(f.ip)}
    return sorted((line for line in lines if line.ip in addresses), key=lambda n: n.at)


def _loopback(ip: str) -> bool:
    """Return True for a loopback address: the IPS's own tools, or nginx passing a request on
    (the front end's own log has the caller)."""
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")


def _timeline(host: HostFacts, session: str | None, seen: Mapping[str, Seen],
              final: str | None, now: float) -> Timeline:
    """Put the phases in order, each lasting until the next one seen began; the last one
    seen is the one the host is in, unless the story is over there."""
    order = [name for name in PHASE_NAMES if name in seen]
    phases, waiting = [], None
    for name in PHASE_NAMES:
        found = seen.get(name)
        if found is None:
            phases.append(Phase(name))
            continue
        position = order.index(name)
        following = seen[order[position + 1]].at if position + 1 < len(order) else None
        took = None if following is None else max(0.0, following - found.at)
        phases.append(Phase(name, found.at, took, found.source, found.detail))
        if following is None and name != final and name != "first-selftest":
            waiting = phases[-1]
    return Timeline(host.mac, host.cluster, host.record.get("STATE") or "UNCONFIGURED",
                    session, now, tuple(phases), waiting)

"""The phases after a boot's decision (docs/timeline.md, "The phases"): kernel, initrd,
kickstart, installing, installed and the first self-test, each found as the first sign of it
after the phase before, in what the logs, the journal and the record show of the host.

Pure, like hps_api.observe.timeline, which calls FINDERS in the order a decision leads to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from hps_api.observe.sightings import Event, Fetch, NodeLine, parse_time
from hps_api.store.journal import Change

#: the event log and gunicorn write whole seconds: a line may seem up to this much early
SLACK = 1.0
KERNEL_NAMES = frozenset({"linux", "vmlinux", "bzimage", "kernel"})
_PHASE_LINE = re.compile(r"(?:init|menu \S+): |kickstart served|state \S+ -> "
                         r"|self-test (?:pass|fail)")
_INSTALLED = re.compile(r"state \S+ -> INSTALLED\b")
_UP = re.compile(r"state NETWORK_BOOT -> NETWORK_BOOT\b")
_SELFTEST = re.compile(r"self-test (?:pass|fail)")
#: event-log client fields of lines a node wrote (iPXE's are the boot's; `-`: the IPS's own)
_NOT_NODE = frozenset({"ipxe", "-"})


@dataclass(frozen=True)
class HostFacts:
    """What the store says of the host: its record and the boot files of its OS."""

    mac: str
    cluster: str
    record: Mapping[str, str]
    kernel: str = ""
    initrd: str = ""


@dataclass(frozen=True)
class Seen:
    """A phase's start as a log shows it; `index` orders event-log lines of the same second."""

    at: float
    source: str
    detail: str
    index: int | None = None


@dataclass(frozen=True)
class Story:
    """What the finders of the phases after the decision look through."""

    host: HostFacts
    events: Sequence[Event]
    fetches: Sequence[Fetch]
    node_lines: Sequence[NodeLine]
    changes: Sequence[Change]


def after(at: float, index: int | None, cursor: Seen) -> bool:
    """Return True when a sighting comes after the cursor: two event-log lines by their order
    in the file, anything else by time, within SLACK."""
    if index is not None and cursor.index is not None:
        return index > cursor.index
    return at >= cursor.at - SLACK


def _fetch_of(story: Story, cursor: Seen, wanted: str) -> Seen | None:
    for fetch in story.fetches:
        if _boot_file(fetch.path, story.host) == wanted and after(fetch.at, None, cursor):
            size = f", {fetch.size:,} bytes in {fetch.seconds:.3g} s" if fetch.status < 400 else ""
            return Seen(fetch.at, fetch.source,
                        f"{fetch.method} {fetch.path} {fetch.status}{size}")
    return None


def _kernel(story: Story, cursor: Seen) -> Seen | None:
    return _fetch_of(story, cursor, "kernel")


def _initrd(story: Story, cursor: Seen) -> Seen | None:
    return _fetch_of(story, cursor, "initrd")


def _kickstart(story: Story, cursor: Seen) -> Seen | None:
    """The event log's "kickstart served" (it names what was served), else the request."""
    served = next((Seen(e.at, "events", e.message, i) for i, e in enumerate(story.events)
                   if e.message.startswith("kickstart served") and after(e.at, i, cursor)),
                  None)
    return served or next((Seen(f.at, f.source, f"GET cmd=kickstart {f.status}")
                           for f in story.fetches if f.cmd == "kickstart" and f.status == 200
                           and after(f.at, None, cursor)), None)


def _installing(story: Story, cursor: Seen) -> Seen | None:
    reports: list[tuple[float, int | None, str, str]] = [
        (e.at, i, "events", e.message) for i, e in enumerate(story.events)
        if e.client not in _NOT_NODE and not _PHASE_LINE.match(e.message)
        and after(e.at, i, cursor)]
    reports += [(n.at, None, "nodes", f"syslog {n.text}") for n in story.node_lines
                if after(n.at, None, cursor)]
    if not reports:
        return None
    reports.sort(key=lambda report: report[0])
    # the latest that says something: a node's own message or syslog line, not `cmd=... ok`
    said = [report for report in reports if report[3].startswith(("[", "syslog "))]
    first, last = reports[0], (said or reports)[-1]
    count = f"{len(reports)} report{'s' if len(reports) > 1 else ''}"
    return Seen(first[0], first[2], f"{count}; the latest: {last[3][:200]}", first[1])


def _installed(story: Story, cursor: Seen) -> Seen | None:
    found = [Seen(e.at, "events", e.message, i) for i, e in enumerate(story.events)
             if (_INSTALLED.match(e.message) or _UP.match(e.message)) and after(e.at, i, cursor)]
    for change in story.changes:
        at = parse_time(change.time)
        if change.key == "STATE" and change.new == "INSTALLED" and at is not None and \
                after(at, None, cursor):
            found.append(Seen(at, "journal", f"STATE {change.old or '(none)'} -> INSTALLED by "
                              f"{change.actor}"))
    return min(found, key=lambda seen: seen.at, default=None)


def _first_selftest(story: Story, cursor: Seen) -> Seen | None:
    tests = [(i, e) for i, e in enumerate(story.events) if _SELFTEST.match(e.message)]
    later = [Seen(e.at, "events", e.message, i) for i, e in tests if after(e.at, i, cursor)]
    if later or tests:  # a report seen before INSTALLED is not the first after it
        return later[0] if later else None
    record = story.host.record
    at = parse_time(record.get("SELFTEST_AT", ""))
    if at is None or not after(at, None, cursor):
        return None
    return Seen(at, "record", f"SELFTEST_RESULT={record.get('SELFTEST_RESULT', '?')} (the "
                "latest report; the log no longer has the first)")


FINDERS = {"kernel": _kernel, "initrd": _initrd, "kickstart": _kickstart,
           "installing": _installing, "installed": _installed, "first-selftest": _first_selftest}


def _boot_file(path: str, host: HostFacts) -> str:
    """Return `kernel` or `initrd` for a path that fetches one (the host's OS's own files, or
    a file under /distros named like one), else ""."""
    if path == host.kernel:
        return "kernel"
    if path == host.initrd:
        return "initrd"
    if not path.startswith("/distros/"):
        return ""
    name = PurePosixPath(path).name.lower()
    if name.startswith("vmlinuz") or name in KERNEL_NAMES:
        return "kernel"
    return "initrd" if name.startswith(("initrd", "initramfs")) else ""

"""What the pages show (docs/api.md §6): plain functions from records to what templates render.

Hidden values, the host page's sections and which actions a host offers are decided here,
without Flask and without the store, so each rule is tested on its own (the host list's lines
are `rows`, the dashboard's summary `overview`). A sensitive value is replaced by a hidden
marker unless the viewer is an admin.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hps_api.ids import is_sensitive
from hps_api.model.catalog import HostType
from hps_api.model.states import MENU_STATES
from hps_api.store.journal import Change

HISTORY_LIMIT = 50
LOG_LINES = 50
LOG_WINDOW = 512 * 1024
#: keys shown in their own sections of the host page rather than in the record table
SECTION_PREFIXES = ("HW_", "SELFTEST_")
HW_BOOKKEEPING = frozenset({"HASH", "CHANGED_AT"})
HW_PREVIOUS = "HW_PREVIOUS_"
SELFTEST_SUMMARY = frozenset({"SELFTEST_RESULT", "SELFTEST_AT"})


@dataclass(frozen=True)
class Shown:
    """A value as a viewer may see it: `hidden` means a sensitive value withheld from them."""

    value: str | None
    hidden: bool = False


@dataclass(frozen=True)
class Entry:
    """One journal line as shown on a host's page."""

    time: str
    key: str
    old: Shown
    new: Shown
    actor: str


@dataclass(frozen=True)
class Fact:
    """One hardware fact: its current and (after a change) previous value."""

    name: str
    current: Shown
    previous: Shown
    changed: bool = False


@dataclass(frozen=True)
class SelfTest:
    """One self-test result: `passed` is True for exactly `pass`."""

    name: str
    result: Shown
    passed: bool


@dataclass(frozen=True)
class Hardware:
    """The hardware section: facts, and whether (and when) they changed at the last audit."""

    facts: list[Fact]
    changed: bool
    changed_at: str | None


@dataclass(frozen=True)
class SelfTests:
    """The self-test section: the summary (SELFTEST_RESULT, SELFTEST_AT) and each result."""

    result: str | None
    at: str | None
    tests: list[SelfTest]


@dataclass(frozen=True)
class BootView:
    """The boot decision `init` would take now, explained; `problem` when none can be made."""

    session: str
    action: str = ""
    template: str = ""
    reason: str = ""
    changes: Mapping[str, str | None] = field(default_factory=dict)
    script: str = ""
    problem: str | None = None


def cluster_summary(items: Mapping[str, str], patterns: Iterable[str], *,
                    admin: bool) -> list[tuple[str, Shown]]:
    """Return the cluster facts the dashboard heads with: network and IPS address."""
    patterns = tuple(patterns)
    return [(label, shown(key, items.get(key), patterns, admin=admin))
            for label, key in (("Network", "NETWORK_CIDR"), ("IPS address", "DHCP_IP"))]


def configurable(record: Mapping[str, str]) -> bool:
    """Return True when the host waits for a type (UNCONFIGURED, FAILED, INSTALL_FAILED)."""
    return record.get("STATE", "UNCONFIGURED") in MENU_STATES


def waiting(records: Mapping[str, Mapping[str, str]]) -> dict[str, Mapping[str, str]]:
    """Return the records of the hosts that wait for a type."""
    return {mac: record for mac, record in records.items() if configurable(record)}


def host_actions(record: Mapping[str, str]) -> list[str]:
    """Return the admin actions a host's page offers: configure (when the host waits for a
    type), reinstall (when it has a TYPE), unconfigure (when there is something to forget)."""
    actions = ["configure"] if configurable(record) else []
    if record.get("TYPE"):
        actions.append("reinstall")
    if record.get("TYPE") or record.get("STATE", "UNCONFIGURED") != "UNCONFIGURED":
        actions.append("unconfigure")
    return actions


def catalog_choices(catalog: Mapping[str, HostType]) -> list[tuple[str, str]]:
    """Return (value, label) of every TYPE/PROFILE pair of the host-type catalog."""
    return [(f"{kind.name}/{profile}", f"{kind.name}/{profile}: {kind.description}")
            for kind in catalog.values() for profile in kind.profiles]


def record_keys(record: Mapping[str, str]) -> dict[str, str]:
    """Return the record without the keys that have their own sections (HW_*, SELFTEST_*)."""
    return {k: v for k, v in record.items() if not k.startswith(SECTION_PREFIXES)}


def shown_record(record: Mapping[str, str], patterns: Iterable[str], *,
                 admin: bool) -> list[tuple[str, Shown]]:
    """Return the record's keys in name order with their values as this viewer may see them."""
    patterns = tuple(patterns)
    return [(key, shown(key, record[key], patterns, admin=admin)) for key in sorted(record)]


def hardware_section(record: Mapping[str, str], patterns: Iterable[str], *,
                     admin: bool) -> Hardware:
    """Return the host page's hardware section (see hardware_facts)."""
    return Hardware(hardware_facts(record, patterns, admin=admin), hardware_changed(record),
                    record.get("HW_CHANGED_AT"))


def hardware_facts(record: Mapping[str, str], patterns: Iterable[str], *,
                   admin: bool) -> list[Fact]:
    """Return the HW_* facts by name; after a change (HW_PREVIOUS_* keys) each fact carries its
    previous value too, and `changed` marks the facts that differ (or came or went)."""
    patterns = tuple(patterns)
    current = {k[3:]: v for k, v in record.items()
               if k.startswith("HW_") and not k.startswith(HW_PREVIOUS)
               and k[3:] not in HW_BOOKKEEPING}
    previous = {k[len(HW_PREVIOUS):]: v for k, v in record.items()
                if k.startswith(HW_PREVIOUS) and k[len(HW_PREVIOUS):] not in HW_BOOKKEEPING}
    names = sorted(set(current) | set(previous))
    return [Fact(name, shown(f"HW_{name}", current.get(name), patterns, admin=admin),
                 shown(f"HW_{name}", previous.get(name), patterns, admin=admin),
                 changed=bool(previous) and current.get(name) != previous.get(name))
            for name in names]


def hardware_changed(record: Mapping[str, str]) -> bool:
    """Return True when the record keeps previous hardware facts (HW_PREVIOUS_*) to compare."""
    return any(key.startswith(HW_PREVIOUS) and key[len(HW_PREVIOUS):] not in HW_BOOKKEEPING
               for key in record)


def self_test_section(record: Mapping[str, str], patterns: Iterable[str], *,
                      admin: bool) -> SelfTests:
    """Return the host page's self-test section (see self_tests)."""
    return SelfTests(record.get("SELFTEST_RESULT"), record.get("SELFTEST_AT"),
                     self_tests(record, patterns, admin=admin))


def self_tests(record: Mapping[str, str], patterns: Iterable[str], *,
               admin: bool) -> list[SelfTest]:
    """Return the SELFTEST_* results by name (the summary keys RESULT and AT left out)."""
    patterns = tuple(patterns)
    return [SelfTest(key.removeprefix("SELFTEST_").lower(),
                     shown(key, record[key], patterns, admin=admin), record[key] == "pass")
            for key in sorted(record)
            if key.startswith("SELFTEST_") and key not in SELFTEST_SUMMARY]


def boot_sessions(changes: list[Change]) -> list[tuple[str, str]]:
    """Return (time, session id) of the host's last HISTORY_LIMIT boots from its journal, newest
    first (a boot is one journal entry: `Change.boot`)."""
    found = [(c.time, c.new) for c in reversed(changes) if c.boot and c.new]
    return found[:HISTORY_LIMIT]


def recent_history(changes: list[Change], patterns: Iterable[str], *,
                   admin: bool) -> list[Entry]:
    """Return the last HISTORY_LIMIT journal entries other than boots (boot_sessions lists
    those), newest first, sensitive values hidden."""
    patterns = tuple(patterns)
    others = [c for c in changes if not c.bookkeeping][-HISTORY_LIMIT:]
    return [Entry(c.time, c.key, shown(c.key, c.old, patterns, admin=admin),
                  shown(c.key, c.new, patterns, admin=admin), c.actor)
            for c in reversed(others)]


def log_names(mac12: str, record: Mapping[str, str]) -> set[str]:
    """Return the names log lines may give the host in their host field: MAC and hostname.

    `-` is what a line without a host carries, so a host named `-` is matched by MAC only.
    """
    return ({mac12, record.get("HOSTNAME", "")} - {"", "-"})


def log_tail(path: Path, names: Collection[str], limit: int = LOG_LINES,
             window: int = LOG_WINDOW) -> list[str]:
    """Return the last `limit` lines among the last `window` bytes of the log whose host field
    (the 3rd) is one of `names`; [] when the log cannot be read.

    Only the tail is read, whatever the file's size; a line cut by the window's start is dropped.
    """
    try:
        with path.open("rb") as handle:
            start = max(0, handle.seek(0, os.SEEK_END) - window)
            handle.seek(max(0, start - 1))
            data = handle.read(window + (1 if start else 0))
    except OSError:
        return []
    if start:
        # the byte before the window tells whether its first line is whole
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [line for line in lines if host_field(line) in names][-limit:]


def host_field(line: str) -> str:
    """Return the host field of a log line (`<time> <level> <host> ...`), "" when it has none."""
    fields = line.split(maxsplit=3)
    return fields[2] if len(fields) >= 3 else ""


def shown(key: str, value: str | None, patterns: tuple[str, ...], *, admin: bool) -> Shown:
    """Return the value, or a hidden marker when the key is sensitive and the viewer no admin."""
    if value is None or admin or not is_sensitive(key, patterns):
        return Shown(value)
    return Shown(None, hidden=True)


def is_writable_dir(path: Path) -> bool:
    """Return True when `path` is a directory this process may create files in."""
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)

"""What the dashboard shows (docs/ui.md): counts, what needs attention, recent activity.

The dashboard summarises a cluster of any size in a page of constant weight: counts per state
and per type (each a link to the filtered host list), the groups of hosts that need an operator
(failed installs apart from failed hosts apart from hosts waiting for a type, failing
self-tests, stuck hosts, hosts in rescue), each with its first few hosts, and the last changes
of the cluster's journal. Plain functions: the records, the journal's path, the stuck hosts'
findings (hps_api.ops.stuck) and `now` are given.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from hps_api.ids import colon_mac
from hps_api.model.stuck import NO_HISTORY, TITLES, Finding, findings
from hps_api.ops.host_query import NONE, effective_state, selftest_outcome
from hps_api.store.journal import Change
from hps_api.web.rows import ListRow, list_row
from hps_api.web.views import Shown, shown
from hps_api.web.when import When, when

SHOWN_PER_GROUP = 5
RECENT_CHANGES = 12
JOURNAL_WINDOW = 512 * 1024
#: journal keys every boot writes: not "activity" an operator looks for
BOOKKEEPING = frozenset({"BOOT_SESSION", "BOOT_TIME", "LAST_SEEN", "UPDATED", "KEY_SPELLINGS"})
_BOOKKEEPING_MARKS = tuple(f'"key": "{key}"'.encode() for key in BOOKKEEPING)
Records = Mapping[str, Mapping[str, str]]
#: mac12 -> the rules a stuck host meets, the most telling first (hps_api.ops.stuck)
Stuck = Mapping[str, Sequence[Finding]]


@dataclass(frozen=True)
class Count:
    """One count of the dashboard and the host list it stands for."""

    label: str
    count: int
    href: str
    css: str = ""


@dataclass(frozen=True)
class Attention:
    """A group of hosts an operator should look at: its first hosts and the link to all."""

    key: str
    title: str
    hint: str
    count: int
    href: str
    hosts: list[ListRow]
    css: str
    #: mac12 -> why the host is in the group, for groups that say it (the stuck hosts' rule)
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Activity:
    """One recent change of the cluster's journal."""

    when: When | None
    mac: str
    name: str
    key: str
    old: Shown
    new: Shown
    actor: str


#: the groups of hosts that need attention: (key, title, hint, host-list filter, css)
GROUPS: tuple[tuple[str, str, str, dict[str, str], str], ...] = (
    ("install_failed", "Install failed", "the installer gave up: reinstall or reconfigure",
     {"state": "INSTALL_FAILED"}, "bad"),
    ("failed", "Failed", "the host reported a failure", {"state": "FAILED"}, "bad"),
    ("selftest", "Self-test failing", "the last self-test report was not a pass",
     {"selftest": "fail"}, "bad"),
    ("stuck", "Stuck", "waiting for a step that does not come",
     {"stuck": "1"}, "warn"),
    ("waiting", "Waiting for a type", "at the install menu until an admin configures them",
     {"state": "UNCONFIGURED"}, "warn"),
    ("rescue", "In rescue", "RESCUE=yes: every boot takes the rescue image",
     {"q": "RESCUE=yes"}, "info"),
)
_BY_STATE = {"INSTALL_FAILED": "install_failed", "FAILED": "failed",
             "UNCONFIGURED": "waiting"}


def groups_of(record: Mapping[str, str], stuck: bool) -> list[str]:
    """Return the keys of the GROUPS a host belongs to (the same tests as the host list's
    filters: state, selftest=fail, stuck=1 (`stuck`: the scan's verdict), RESCUE=yes)."""
    found = []
    state = effective_state(record)
    if state in _BY_STATE:
        found.append(_BY_STATE[state])
    if stuck:
        found.append("stuck")
    if "SELFTEST_RESULT" in record and selftest_outcome(record) == "fail":
        found.append("selftest")
    if "RESCUE" in record and is_rescue(record):
        found.append("rescue")
    return found


def hosts_link(**params: str) -> str:
    """Return the link to the host list filtered by `params`."""
    return "/hosts?" + urlencode(params) if params else "/hosts"


def state_counts(records: Iterable[Mapping[str, str]]) -> list[Count]:
    """Return a count per state present (STATES order, unknown ones last by name)."""
    from hps_api.model.states import STATES

    counts = Counter(effective_state(record) for record in records)
    rank = {state: n for n, state in enumerate(STATES)}
    return [Count(state, count, hosts_link(state=state) if state in rank
                  else hosts_link(q=f"STATE={state}"), f"state-{state.lower()}")
            for state, count in sorted(counts.items(),
                                       key=lambda item: (rank.get(item[0], len(rank)), item[0]))]


def type_counts(records: Iterable[Mapping[str, str]]) -> list[Count]:
    """Return a count per TYPE present, by name, hosts without one last as `(none)`."""
    counts = Counter((record.get("TYPE") or "").strip().upper() or NONE for record in records)
    return [Count(kind, count, hosts_link(type=kind))
            for kind, count in sorted(counts.items(), key=lambda item: (item[0] == NONE,
                                                                        item[0]))]


def attention(records: Records, patterns: Iterable[str], *, admin: bool, now: float,
              stuck: Stuck | None = None) -> list[Attention]:
    """Return the groups of GROUPS that hold hosts, each with its SHOWN_PER_GROUP most
    recently active hosts. Groups that test a key the viewer may not read are left out, and
    so are stuck hosts' failing self-tests then.

    `stuck` is the scan of the cluster (hps_api.ops.stuck); without one, the rules a record
    alone can answer decide (hps_api.model.stuck, no history).
    """
    patterns = tuple(patterns)
    if stuck is None:
        stuck = {mac: rules for mac, record in records.items()
                 if (rules := findings(record, NO_HISTORY, now))}
    if shown("SELFTEST_RESULT", "x", patterns, admin=admin).hidden:
        stuck = {mac: kept for mac, rules in stuck.items()
                 if (kept := [f for f in rules if f.rule != "selftest"])}
    members: dict[str, list[str]] = {group[0]: [] for group in GROUPS}
    for mac, record in records.items():
        for key in groups_of(record, mac in stuck):
            members[key].append(mac)
    if shown("SELFTEST_RESULT", "x", patterns, admin=admin).hidden:
        members["selftest"] = []
    found = []
    for key, title, hint, params, css in GROUPS:
        macs = members[key]
        if not macs:
            continue
        macs.sort(key=lambda mac: (records[mac].get("LAST_SEEN", ""),
                                   records[mac].get("UPDATED", "")), reverse=True)
        rows = [list_row(mac, records[mac], patterns, admin=admin, now=now)
                for mac in macs[:SHOWN_PER_GROUP]]
        notes = {row.mac: stuck_note(stuck[row.mac]) for row in rows} if key == "stuck" else {}
        found.append(Attention(key, title, hint, len(macs), hosts_link(**params), rows, css,
                               notes))
    return found


def stuck_note(found: Sequence[Finding]) -> str:
    """Return what the dashboard says of a stuck host: its most telling rule and why."""
    return f"{TITLES[found[0].rule]}: {found[0].detail}"


def is_rescue(record: Mapping[str, str]) -> bool:
    """Return True when the host boots the rescue image (RESCUE=yes, any case)."""
    return record.get("RESCUE", "").strip().lower() == "yes"


def recent_activity(journal: Path | Sequence[bytes], records: Records, patterns: Iterable[str],
                    *, admin: bool, now: float, limit: int = RECENT_CHANGES,
                    window: int = JOURNAL_WINDOW) -> list[Activity]:
    """Return the last `limit` changes among the last `window` bytes of a cluster's journal
    file (or among its last lines, given as `Store.journal_lines` returns them), newest first,
    leaving out the bookkeeping every boot writes (BOOKKEEPING); [] when the journal cannot be
    read. Only the tail is read, whatever the journal's size."""
    patterns = tuple(patterns)
    found: list[Activity] = []
    lines = _tail(journal, window) if isinstance(journal, Path) else journal
    for line in reversed(lines):
        if len(found) >= limit:
            break
        if any(mark in line for mark in _BOOKKEEPING_MARKS):
            continue
        change = _change(line)
        if change is None:
            continue
        label, key = change.record, change.key
        mac = label.removeprefix("host/") if label.startswith("host/") else ""
        name = (records.get(mac) or {}).get("HOSTNAME") or (colon_mac(mac) if mac else label)
        found.append(Activity(when(change.time, now), mac, name, key,
                              shown(key, change.old, patterns, admin=admin),
                              shown(key, change.new, patterns, admin=admin), change.actor))
    return found


def _tail(path: Path, window: int) -> list[bytes]:
    try:
        with path.open("rb") as handle:
            start = max(0, handle.seek(0, os.SEEK_END) - window)
            handle.seek(start)
            data = handle.read(window)
    except OSError:
        return []
    lines = data.split(b"\n")
    return lines[1:] if start else lines  # a line cut by the window's start is dropped


def _change(line: bytes) -> Change | None:
    """Return the change a journal line holds, None for a line that is not one."""
    try:
        fields = json.loads(line)
    except ValueError:
        return None
    if not isinstance(fields, dict) or not all(
            isinstance(fields.get(name), str) for name in ("time", "record", "key", "actor")):
        return None
    old, new = fields.get("old"), fields.get("new")
    return Change(fields["time"], fields["record"], fields["key"],
                  old if isinstance(old, str) else None, new if isinstance(new, str) else None,
                  fields["actor"])

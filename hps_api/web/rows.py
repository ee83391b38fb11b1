"""One host as a line of a table (the host list, the dashboard's groups, bulk results), and the
host list's column headings with their sort links. Plain functions, no Flask.

What a line shows: the state as the boot flow acts on it (RESCUE when RESCUE=yes, whatever
STATE says; a host without STATE is UNCONFIGURED), times as "3 min ago" with the exact time
kept, the self-test marked pass or fail, and every value a non-admin may not read hidden.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from hps_api.ids import colon_mac
from hps_api.ops.host_query import HostQuery, effective_state, selftest_outcome
from hps_api.web.views import Shown, shown
from hps_api.web.when import When, when

#: the host list's columns: sort name -> heading (the MAC column comes first)
COLUMNS = {"mac": "MAC", "hostname": "Hostname", "type": "Type", "profile": "Profile",
           "state": "State", "ip": "IP", "last_seen": "Last seen", "selftest": "Self-test"}


@dataclass(frozen=True)
class ListRow:
    """One host as the tables show it."""

    mac: str
    hostname: Shown
    type: Shown
    profile: Shown
    state: str
    state_title: str
    ip: Shown
    last_seen: When | None
    last_seen_hidden: bool
    selftest: Shown
    selftest_outcome: str

    @property
    def colon(self) -> str:
        """Return the MAC in the colon form people read."""
        return colon_mac(self.mac)

    @property
    def name(self) -> str:
        """Return the hostname when it may be shown, else the MAC."""
        return self.hostname.value if self.hostname.value else self.colon

    @property
    def state_css(self) -> str:
        """Return the CSS class of the state badge (`state-install_failed`)."""
        return f"state-{self.state.lower()}"


@dataclass(frozen=True)
class Heading:
    """A column heading: its label, its sort link and the current order (`asc`, `desc`, "")."""

    name: str
    label: str
    href: str
    order: str


def list_row(mac: str, record: Mapping[str, str], patterns: Iterable[str], *, admin: bool,
             now: float) -> ListRow:
    """Return a host's line as this viewer may see it."""
    patterns = tuple(patterns)

    def value(key: str) -> Shown:
        return shown(key, record.get(key), patterns, admin=admin)

    state, title = shown_state(record)
    if value("STATE").hidden or value("RESCUE").hidden:
        state, title = "HIDDEN", "hidden"
    seen = value("LAST_SEEN")
    selftest = value("SELFTEST_RESULT")
    return ListRow(mac, value("HOSTNAME"), value("TYPE"), value("PROFILE"), state, title,
                   value("IP"), when(seen.value, now), seen.hidden, selftest,
                   "" if selftest.hidden or selftest.value is None else selftest_outcome(record))


def list_rows(rows: Iterable[tuple[str, Mapping[str, str]]], patterns: Iterable[str], *,
              admin: bool, now: float) -> list[ListRow]:
    """Return the lines of several hosts, in the order given."""
    patterns = tuple(patterns)
    return [list_row(mac, record, patterns, admin=admin, now=now) for mac, record in rows]


def shown_state(record: Mapping[str, str]) -> tuple[str, str]:
    """Return the state a host is shown in and its hover title: RESCUE when RESCUE=yes."""
    state = effective_state(record)
    if record.get("RESCUE", "").strip().lower() == "yes":
        return "RESCUE", f"RESCUE=yes: boots the rescue image (STATE={state})"
    return state, "" if record.get("STATE") else "no STATE: counts as UNCONFIGURED"


def headings(query: HostQuery) -> list[Heading]:
    """Return the column headings; each links to the same view sorted by it (again: the
    other way round), from the first page."""
    current, descending = query.sort.lstrip("-"), query.sort.startswith("-")
    found = []
    for name, label in COLUMNS.items():
        order = ("desc" if descending else "asc") if name == current else ""
        wanted = f"-{name}" if order == "asc" or (not order and name == "last_seen") else name
        found.append(Heading(name, label, link(query, sort=wanted, page=1), order))
    return found


def link(query: HostQuery, **changes: object) -> str:
    """Return the host list's URL for `query` with `changes` (sort, page...)."""
    params = query.params(**changes)
    return "/hosts?" + urlencode(params) if params else "/hosts"

"""Pages for people (api.md §6): the dashboard, one page per host, and the health page.

A first, read-only version without JavaScript. Views read the store and hand plain values to a
template; what a page shows (order, counts, hidden values) is decided by the pure functions below.
Sensitive values are shown only to admins (loopback, or the admin bearer token).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__
from hps_api.boot.states import STATES
from hps_api.errors import CorruptRecord, NotFound, StoreUnreadable
from hps_api.ids import colon_mac, is_sensitive, normalize_mac
from hps_api.render import html
from hps_api.render.negotiate import Negotiated, client_from_agent
from hps_api.settings import Settings
from hps_api.store import FileStore, Kind, RecordId
from hps_api.store.journal import Change
from hps_api.web.caller import current_caller
from hps_api.web.respond import MIME
from hps_api.web.runtime import runtime

bp = Blueprint("ui", __name__)

SUMMARY_KEYS = ("HOSTNAME", "TYPE", "PROFILE", "STATE", "IP", "LAST_SEEN", "BOOT_SESSION",
                "SELFTEST_RESULT")
HISTORY_LIMIT = 50
NO_STATE = "(none)"


@dataclass(frozen=True)
class Shown:
    """A value as a viewer may see it: `hidden` means a sensitive value withheld from them."""

    value: str | None
    hidden: bool = False


@dataclass(frozen=True)
class HostRow:
    """One line of the dashboard: the host's MAC and its summary values."""

    mac: str
    values: Mapping[str, Shown]

    @property
    def colon(self) -> str:
        """Return the MAC in the colon form people read."""
        return colon_mac(self.mac)


@dataclass(frozen=True)
class Entry:
    """One journal line as shown on a host's page."""

    time: str
    key: str
    old: Shown
    new: Shown
    actor: str


@bp.before_request
def _html_only() -> None:
    """Pages always answer HTML, errors included."""
    g.negotiated = Negotiated(client_from_agent(request.headers.get("User-Agent", "")), "html")


@bp.get("/")
def dashboard() -> Response:
    """The active cluster: counts per state and every host, newest activity first."""
    rt = runtime()
    cluster = rt.active_cluster()
    records, problems = read_hosts(rt.store, cluster)
    rows = host_rows(records, rt.settings.sensitive_keys, admin=viewer_is_admin(rt.settings))
    return _page("dashboard.html", title=f"Cluster {cluster}", cluster=cluster, rows=rows,
                 counts=state_counts(records.values()), problems=problems,
                 columns=SUMMARY_KEYS)


@bp.get("/hosts/<mac>")
def host(mac: str) -> Response:
    """One host: its record and its latest journal entries (any MAC spelling; 400, 404)."""
    rt = runtime()
    mac12 = normalize_mac(mac)
    rid = RecordId.of_host(rt.active_cluster(), mac12)
    patterns, admin = rt.settings.sensitive_keys, viewer_is_admin(rt.settings)
    return _page("host.html", title=f"Host {colon_mac(mac12)}", mac=mac12,
                 fields=shown_record(rt.store.items(rid), patterns, admin=admin),
                 history=recent_history(rt.store.history(rid), patterns, admin=admin),
                 admin=admin, limit=HISTORY_LIMIT)


@bp.get("/health")
def health() -> Response:
    """Status, version, active cluster and config dir (the IPS self-test comes later)."""
    rt = runtime()
    try:
        active: str | None = rt.active_cluster()
    except NotFound:
        active = None
    writable = is_writable_dir(rt.settings.config_dir)
    return _page("health.html", title="Health", status="ok" if active and writable else "degraded",
                 version=__version__, active=active, config_dir=str(rt.settings.config_dir),
                 writable=writable)


def viewer_is_admin(settings: Settings) -> bool:
    """Return True when the viewer is an admin (see hps_api.web.caller)."""
    return current_caller().admin


def read_hosts(store: FileStore, cluster: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Return mac12 -> record for the cluster's hosts, and a message per unreadable record.

    One corrupt or unreadable file must not hide every other host; a host deleted between
    listing and reading is simply gone.
    """
    records: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for rid in store.list_records(Kind.HOST, cluster):
        try:
            records[rid.name or ""] = store.items(rid)
        except NotFound:
            continue
        except (CorruptRecord, StoreUnreadable) as err:
            problems.append(str(err))
    return records, problems


def host_rows(records: Mapping[str, Mapping[str, str]], patterns: Iterable[str], *,
              admin: bool) -> list[HostRow]:
    """Return the dashboard rows, newest activity first (LAST_SEEN, then UPDATED, descending).

    Ties keep MAC order: the sort is stable and `reverse=True` preserves it.
    """
    patterns = tuple(patterns)
    ordered = sorted(records.items(), reverse=True,
                     key=lambda item: (item[1].get("LAST_SEEN", ""), item[1].get("UPDATED", "")))
    return [HostRow(mac, {key: shown(key, record.get(key), patterns, admin=admin)
                          for key in SUMMARY_KEYS})
            for mac, record in ordered]


def state_counts(records: Iterable[Mapping[str, str]]) -> list[tuple[str, int]]:
    """Return (state, number of hosts) for every state present, known states in table order."""
    counts = Counter(record.get("STATE") or NO_STATE for record in records)
    rank = {state: position for position, state in enumerate(STATES)}
    return sorted(counts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def shown_record(record: Mapping[str, str], patterns: Iterable[str], *,
                 admin: bool) -> list[tuple[str, Shown]]:
    """Return the record's keys in name order with their values as this viewer may see them."""
    patterns = tuple(patterns)
    return [(key, shown(key, record[key], patterns, admin=admin)) for key in sorted(record)]


def recent_history(changes: list[Change], patterns: Iterable[str], *,
                   admin: bool) -> list[Entry]:
    """Return the last HISTORY_LIMIT journal entries, newest first, sensitive values hidden."""
    patterns = tuple(patterns)
    return [Entry(c.time, c.key, shown(c.key, c.old, patterns, admin=admin),
                  shown(c.key, c.new, patterns, admin=admin), c.actor)
            for c in reversed(changes[-HISTORY_LIMIT:])]


def shown(key: str, value: str | None, patterns: tuple[str, ...], *, admin: bool) -> Shown:
    """Return the value, or a hidden marker when the key is sensitive and the viewer no admin."""
    if value is None or admin or not is_sensitive(key, patterns):
        return Shown(value)
    return Shown(None, hidden=True)


def is_writable_dir(path: Path) -> bool:
    """Return True when `path` is a directory this process may create files in."""
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def _page(template: str, **context: Any) -> Response:
    return Response(html.render(template, context), 200, content_type=MIME["html"])

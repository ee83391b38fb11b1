"""Pages for people (api.md §6): dashboard, hosts waiting for a type, one page per host, health.

Server-rendered, autoescaped Jinja2 that works without JavaScript. Views read the store and hand
plain values to a template; what a page shows (order, counts, hidden values, which actions a
host offers) is decided by the plain functions below the handlers, tested without Flask.
Sensitive values are shown only to admins (`hps_api.web.caller` decides who is one).

Refresh: the dashboard reloads itself every 30 s (meta refresh) and therefore carries no form.
The forms an operator fills in live on pages that never refresh: `/unconfigured` (the hosts in
UNCONFIGURED, FAILED or INSTALL_FAILED, with a "configure as TYPE/PROFILE" form each) and the
host page. A refresh can never throw away a half-made choice; the dashboard links to
`/unconfigured` when hosts wait.

Actions are POSTs to `/hosts/<mac12>/configure|reinstall|unconfigure`. Every POST of this
blueprint passes `_guard` before its handler: not an admin -> Forbidden, then a missing, forged,
foreign or expired CSRF token, or a cross-site Origin/Referer -> Forbidden (`hps_api.web.csrf`),
so a refused POST reads and writes nothing. Success is a 303 to the host page with
`?done=<action>`, which shows a fixed message (nothing from the query string is echoed). Domain
errors are raised and rendered by the app's error handlers.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__, eventlog
from hps_api.boot.catalog import HostType, load_catalog
from hps_api.boot.configure import configure_host
from hps_api.boot.decide import MENU_STATES
from hps_api.boot.flow import decision_for, explain
from hps_api.boot.states import STATES
from hps_api.errors import (
    Conflict,
    CorruptRecord,
    Forbidden,
    HpsError,
    InvalidInput,
    NotFound,
    StoreUnreadable,
)
from hps_api.identity import Caller
from hps_api.ids import colon_mac, is_sensitive, normalize_mac
from hps_api.render import html
from hps_api.render.negotiate import Negotiated, client_from_agent
from hps_api.selftest import run_selftest
from hps_api.settings import Settings
from hps_api.store import FileStore, Kind, RecordId
from hps_api.store.journal import Change
from hps_api.web import csrf
from hps_api.web.caller import current_caller
from hps_api.web.respond import MIME, base_url
from hps_api.web.runtime import runtime

bp = Blueprint("ui", __name__, static_folder="../static", static_url_path="/ui")

SUMMARY_KEYS = ("HOSTNAME", "TYPE", "PROFILE", "STATE", "IP", "LAST_SEEN", "BOOT_SESSION",
                "SELFTEST_RESULT")
COLUMN_LABELS = {"HOSTNAME": "Hostname", "TYPE": "Type", "PROFILE": "Profile", "STATE": "State",
                 "IP": "IP", "LAST_SEEN": "Last seen", "BOOT_SESSION": "Boot session",
                 "SELFTEST_RESULT": "Self-test"}
HISTORY_LIMIT = 50
NO_STATE = "(none)"
LOG_FILE = "hps-api.log"
LOG_LINES = 50
LOG_WINDOW = 512 * 1024
#: keys shown in their own sections of the host page rather than in the record table
SECTION_PREFIXES = ("HW_", "SELFTEST_")
HW_BOOKKEEPING = frozenset({"HASH", "CHANGED_AT"})
HW_PREVIOUS = "HW_PREVIOUS_"
SELFTEST_SUMMARY = frozenset({"SELFTEST_RESULT", "SELFTEST_AT"})
UNCONFIGURE_CHANGES: dict[str, str | None] = {
    "STATE": "UNCONFIGURED", "TYPE": None, "PROFILE": None, "OS_ID": None,
    "INSTALL_ATTEMPTS": None, "FORCE_INSTALL": None}
DONE_MESSAGES = {
    "configure": "Configured: the host installs at its next network boot.",
    "reinstall": "Marked for reinstall: the host installs again at its next network boot.",
    "unconfigure": "Unconfigured: the host shows the install menu at its next network boot "
                   "(hostname and IP are kept).",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin keeps Origin/Referer on our own posts, so csrf.check_same_site can use them
    "Referrer-Policy": "same-origin",
}


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


@dataclass(frozen=True)
class Form:
    """An admin form: where it posts and the CSRF token bound to that path."""

    action: str
    token: str


# -- hooks ---------------------------------------------------------------------------------------


@bp.before_request
def _guard() -> None:
    """Pages always answer HTML, errors included; a POST needs an admin and a valid token."""
    g.negotiated = Negotiated(client_from_agent(request.headers.get("User-Agent", "")), "html")
    if request.method == "POST":
        g.caller = _require_admin()
        csrf.require_valid_post()


@bp.after_request
def _headers(response: Response) -> Response:
    """No framing (clickjacking of the admin buttons), no inline code, no caching of tokens."""
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


# -- pages ---------------------------------------------------------------------------------------


@bp.get("/")
def dashboard() -> Response:
    """The active cluster: summary, counts per state and every host, newest activity first."""
    rt = runtime()
    cluster = rt.active_cluster()
    records, problems = read_hosts(rt.store, cluster)
    admin, patterns = viewer_is_admin(), rt.settings.sensitive_keys
    return _page("dashboard.html", title=f"Cluster {cluster}", cluster=cluster,
                 summary=cluster_summary(rt.store.items(RecordId.of_cluster(cluster)), patterns,
                                         admin=admin),
                 rows=host_rows(records, patterns, admin=admin),
                 counts=state_counts(records.values()), problems=problems,
                 waiting=len(waiting(records)), columns=SUMMARY_KEYS, labels=COLUMN_LABELS)


@bp.get("/unconfigured")
def unconfigured() -> Response:
    """Hosts waiting for a type, each with a "configure as" form for admins (never refreshes)."""
    rt = runtime()
    cluster = rt.active_cluster()
    records, problems = read_hosts(rt.store, cluster)
    admin = viewer_is_admin()
    rows = host_rows(waiting(records), rt.settings.sensitive_keys, admin=admin)
    forms = {row.mac: _form(row.mac, "configure") for row in rows} if admin else {}
    return _page("unconfigured.html", title="Unconfigured hosts", cluster=cluster, rows=rows,
                 forms=forms, choices=catalog_choices(load_catalog()), problems=problems,
                 admin=admin, states=sorted(MENU_STATES, key=STATES.index))


@bp.get("/hosts/<mac>")
def host(mac: str) -> Response:
    """One host: record, hardware, boot decision, self-test, sessions, log and history."""
    rt = runtime()
    mac12, cluster = normalize_mac(mac), rt.active_cluster()
    rid = RecordId.of_host(cluster, mac12)
    record, changes = rt.store.items(rid), rt.store.history(rid)
    patterns, admin = rt.settings.sensitive_keys, viewer_is_admin()
    return _page(
        "host.html", title=f"Host {colon_mac(mac12)}", mac=mac12, admin=admin,
        done=DONE_MESSAGES.get(request.args.get("done", "")), limit=HISTORY_LIMIT,
        fields=shown_record(record_keys(record), patterns, admin=admin),
        summary=host_rows({mac12: record}, patterns, admin=admin)[0].values,
        hardware=hardware_section(record, patterns, admin=admin),
        selftest=self_test_section(record, patterns, admin=admin),
        boot=boot_view(rt.store, cluster, mac12, record, base_url()),
        sessions=boot_sessions(changes),
        log=log_tail(rt.settings.log_dir / LOG_FILE, log_names(mac12, record)),
        history=recent_history(changes, patterns, admin=admin),
        forms={a: _form(mac12, a) for a in host_actions(record)} if admin else {},
        choices=catalog_choices(load_catalog()))


@bp.get("/health")
def health() -> Response:
    """Status, version, active cluster, config dir and the IPS self-test, run live."""
    rt = runtime()
    try:
        active: str | None = rt.active_cluster()
    except NotFound:
        active = None
    writable = is_writable_dir(rt.settings.config_dir)
    checks = run_selftest(rt.store, rt.settings)
    healthy = bool(active) and writable and all(c.ok for c in checks)
    return _page("health.html", title="Health", status="ok" if healthy else "degraded",
                 version=__version__, active=active, config_dir=str(rt.settings.config_dir),
                 writable=writable, ips_selftest=checks)


# -- actions (admin-only POSTs; _guard has checked admin and CSRF) --------------------------------


@bp.post("/hosts/<mac>/configure")
def configure(mac: str) -> Response:
    """Configure the host as the chosen TYPE/PROFILE; 303 to its page."""
    rt = runtime()
    mac12 = normalize_mac(mac)
    configure_waiting_host(rt.store, rt.settings, rt.active_cluster(), mac12,
                           request.form.get("choice", ""), _actor())
    return _done(mac12, "configure")


@bp.post("/hosts/<mac>/reinstall")
def reinstall(mac: str) -> Response:
    """Set STATE=REINSTALL; 303 to the host page."""
    rt = runtime()
    rid = RecordId.of_host(rt.active_cluster(), mac)
    mark_for_reinstall(rt.store, rid, _actor())
    return _done(rid.name or "", "reinstall")


@bp.post("/hosts/<mac>/unconfigure")
def unconfigure(mac: str) -> Response:
    """Forget TYPE/PROFILE/OS_ID and set STATE=UNCONFIGURED (HOSTNAME and IP kept); 303."""
    rt = runtime()
    rid = RecordId.of_host(rt.active_cluster(), mac)
    forget_configuration(rt.store, rid, _actor())
    return _done(rid.name or "", "unconfigure")


# -- domain actions ------------------------------------------------------------------------------


def configure_waiting_host(store: FileStore, settings: Settings, cluster: str, mac12: str,
                           choice: str, actor: str) -> dict[str, str]:
    """Configure a host waiting for a type from a `TYPE/PROFILE` choice; return its record.

    Raises NotFound (no such host), Conflict (the host is not waiting: unconfigure it first;
    and what configure_host raises), InvalidInput (no or unknown choice).
    """
    record = store.items(RecordId.of_host(cluster, mac12))
    if not configurable(record):
        raise Conflict(f"host {mac12} is {record.get('STATE')}: only hosts in "
                       f"{', '.join(sorted(MENU_STATES))} are configured here; unconfigure first")
    type_name, profile = parse_choice(choice)
    return configure_host(store, settings, cluster, mac12, type_name, profile, actor, admin=True)


def mark_for_reinstall(store: FileStore, rid: RecordId, actor: str) -> dict[str, str]:
    """Set STATE=REINSTALL and return the record; Conflict when the host has no TYPE."""
    kind = store.items(rid).get("TYPE")
    if not kind:
        raise Conflict(f"host {rid.name} has no TYPE: configure it before a reinstall")
    record = store.update(rid, {"STATE": "REINSTALL"}, actor, expect={"TYPE": kind})
    eventlog.event(logging.INFO, f"marked for reinstall by {actor}", host=rid.name)
    return record


def forget_configuration(store: FileStore, rid: RecordId, actor: str) -> dict[str, str]:
    """Unset TYPE, PROFILE, OS_ID (and install counters), STATE=UNCONFIGURED; return the record.

    HOSTNAME and IP stay: the next configure keeps them. Raises NotFound.
    """
    record = store.update(rid, UNCONFIGURE_CHANGES, actor)
    eventlog.event(logging.INFO, f"unconfigured by {actor}", host=rid.name)
    return record


def parse_choice(text: str) -> tuple[str, str | None]:
    """Return (type, profile) of a `TYPE/PROFILE` choice; InvalidInput when it is empty."""
    type_name, _, profile = text.strip().partition("/")
    if not type_name:
        raise InvalidInput("choose a host type and profile")
    return type_name, profile or None


# -- display rules (plain functions) -------------------------------------------------------------


def viewer_is_admin() -> bool:
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


def cluster_summary(items: Mapping[str, str], patterns: Iterable[str], *,
                    admin: bool) -> list[tuple[str, Shown]]:
    """Return the cluster facts the dashboard heads with: network and IPS address."""
    patterns = tuple(patterns)
    return [(label, shown(key, items.get(key), patterns, admin=admin))
            for label, key in (("Network", "NETWORK_CIDR"), ("IPS address", "DHCP_IP"))]


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


def boot_view(store: FileStore, cluster: str, mac12: str, record: Mapping[str, str],
              url: str) -> BootView:
    """Return the decision `init` would take now (no writes), or why none can be made."""
    session = record.get("BOOT_SESSION", "------")
    try:
        data = explain(decision_for(store, cluster, mac12, record, base_url=url,
                                    session=session))
    except HpsError as err:
        return BootView(session, problem=str(err))
    changes = data["changes"]
    return BootView(session, str(data["action"]), str(data["template"]), str(data["reason"]),
                    changes if isinstance(changes, dict) else {}, str(data["script"]))


def boot_sessions(changes: list[Change]) -> list[tuple[str, str]]:
    """Return (time, session id) of the host's boot sessions from its journal, newest first."""
    found = [(c.time, c.new) for c in reversed(changes) if c.key == "BOOT_SESSION" and c.new]
    return found[:HISTORY_LIMIT]


def recent_history(changes: list[Change], patterns: Iterable[str], *,
                   admin: bool) -> list[Entry]:
    """Return the last HISTORY_LIMIT journal entries, newest first, sensitive values hidden."""
    patterns = tuple(patterns)
    return [Entry(c.time, c.key, shown(c.key, c.old, patterns, admin=admin),
                  shown(c.key, c.new, patterns, admin=admin), c.actor)
            for c in reversed(changes[-HISTORY_LIMIT:])]


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


# -- helpers -------------------------------------------------------------------------------------


def _require_admin() -> Caller:
    caller = current_caller()
    if not caller.admin:
        raise Forbidden("admin only: use the IPS itself (loopback) to change hosts")
    return caller


def _actor() -> str:
    caller: Caller = g.caller
    return f"admin:{caller.ip}"


def _form(mac12: str, action: str) -> Form:
    path = f"/hosts/{mac12}/{action}"
    return Form(path, csrf.token_for(path))


def _done(mac12: str, action: str) -> Response:
    return Response(status=303, headers={"Location": f"/hosts/{mac12}?done={action}"})


def _page(template: str, **context: Any) -> Response:
    return Response(html.render(template, context), 200, content_type=MIME["html"])

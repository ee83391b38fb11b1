"""Pages for people (docs/api.md §6, docs/ui.md): the routes of every page, and the dashboard,
the hosts waiting for a type, a page per host and health.

Server-rendered, autoescaped Jinja2 that works without JavaScript. Handlers read the store and
hand plain values to a template; what a page shows (order, counts, hidden values, which actions
a host offers) is decided by plain functions (`views`, `rows`, `overview`, `when`), tested
without Flask. Sensitive values are shown only to admins (`hps_api.web.caller` decides who is
one). This blueprint routes to the handlers of the other page modules too (`hosts_list`,
`cluster_pages`, `csv_pages`, `network_page`, `storage_page`), so `_guard` and `_headers`
cover them all.

Refresh: the dashboard reloads itself every REFRESH_SECONDS (meta refresh) and therefore carries
no form; it is a summary of constant size, and its records come from the worker's host index
(a `stat` per host), so a reload costs little even at 10,000 hosts. The forms an operator fills
in live on pages that never refresh.

Actions are POSTs. Every POST of this blueprint passes `_guard` before its handler: not an
admin -> Forbidden, then a missing, forged, foreign or expired CSRF token, or a cross-site
Origin/Referer -> Forbidden (`hps_api.web.csrf`), so a refused POST reads and writes nothing.
A single host's action answers a 303 to the host page with `?done=<action>`, which shows a
fixed message (nothing from the query string is echoed). Domain errors are raised and rendered
by the app's error handlers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__
from hps_api.boot.flow import decision_for, explain
from hps_api.errors import HpsError, InvalidInput, NotFound
from hps_api.ids import colon_mac, normalize_mac
from hps_api.model.catalog import load_catalog
from hps_api.model.states import MENU_STATES, in_order
from hps_api.ops import bulk
from hps_api.ops import hosts as host_ops
from hps_api.ops import power as power_ops
from hps_api.ops.selftest import run_selftest
from hps_api.ops.stuck import find_stuck
from hps_api.power.records import ActionLog
from hps_api.render.negotiate import Negotiated, client_from_agent
from hps_api.settings import Settings
from hps_api.store import RecordId, Store
from hps_api.store.bootstrap import active_cluster
from hps_api.web import (
    cluster_pages,
    csrf,
    csv_pages,
    hosts_list,
    network_page,
    storage_page,
)
from hps_api.web.host_timeline import timeline_section
from hps_api.web.overview import attention, recent_activity, state_counts, type_counts
from hps_api.web.pages import (
    actor,
    form,
    hosts_of,
    ips_health,
    page,
    redirect,
    require_admin,
    viewer_is_admin,
)
from hps_api.web.power import runner as power_runner
from hps_api.web.respond import SECURITY_HEADERS, base_url
from hps_api.web.rows import list_rows
from hps_api.web.runtime import runtime
from hps_api.web.views import (
    HISTORY_LIMIT,
    BootView,
    boot_sessions,
    catalog_choices,
    cluster_summary,
    hardware_section,
    host_actions,
    is_writable_dir,
    log_names,
    log_tail,
    recent_history,
    record_keys,
    self_test_section,
    shown_record,
    waiting,
)
from hps_api.web.when import TIME_KEYS, when

#: journal lines the dashboard's recent activity looks through on a backend without a journal
#: file (a file's last JOURNAL_WINDOW bytes hold about as many)
RECENT_LINES = 2000

bp = Blueprint("ui", __name__, static_folder="../static", static_url_path="/ui")

LOG_FILE = "hps-api.log"
REFRESH_SECONDS = 60
DONE_MESSAGES = {
    "configure": "Configured: the host installs at its next network boot.",
    "reinstall": "Marked for reinstall: the host installs again at its next network boot.",
    "unconfigure": "Unconfigured: the host shows the install menu at its next network boot "
                   "(hostname and IP are kept).",
    "rescue_on": "Rescue on: every boot of the host takes the rescue image until it is "
                 "switched off.",
    "rescue_off": "Rescue off: the host boots as its state says again.",
    "reinstall_power": "Marked for reinstall, and asked its BMC for a network boot once and a "
                       "power cycle: the install starts as soon as the host restarts.",
    "power": "Power action sent to the BMC: its outcome is shown below once the BMC answers.",
}
#: the power buttons of the host page: action -> label (a Wake-on-LAN BMC can only switch on)
POWER_BUTTONS = {"on": "Power on", "off": "Power off", "cycle": "Power cycle",
                 "pxe-once": "Network boot once", "status": "Read the state"}
WOL_BUTTONS = ("on",)


# -- hooks ---------------------------------------------------------------------------------------


@bp.before_request
def _guard() -> None:
    """Pages always answer HTML, errors included; a POST needs an admin and a valid token."""
    g.negotiated = Negotiated(client_from_agent(request.headers.get("User-Agent", "")), "html")
    if request.method == "POST":
        g.caller = require_admin()
        csrf.require_valid_post()


@bp.after_request
def _headers(response: Response) -> Response:
    """No framing (clickjacking of the admin buttons), no inline code, no caching of tokens."""
    response.headers.update(SECURITY_HEADERS)
    if response.mimetype in ("text/html", "text/csv", "image/svg+xml"):
        response.headers["Cache-Control"] = "no-store"
    return response


# -- pages ---------------------------------------------------------------------------------------


@bp.get("/")
def dashboard() -> Response:
    """The active cluster summarised: counts (links to the filtered list), what needs
    attention, recent changes. Its size does not grow with the cluster."""
    rt = runtime()
    cluster, admin, now = rt.active_cluster(), viewer_is_admin(), time.time()
    hosts = hosts_of(cluster)
    records, patterns = hosts.records, rt.settings.sensitive_keys
    return page("dashboard.html", title=f"Cluster {cluster}", cluster=cluster,
                refresh=REFRESH_SECONDS, total=len(records),
                summary=cluster_summary(rt.store.items(RecordId.of_cluster(cluster)), patterns,
                                        admin=admin),
                states=state_counts(records.values()), types=type_counts(records.values()),
                power=power_ops.power_counts(rt.store, cluster),
                attention=attention(records, patterns, admin=admin, now=now, stuck={
                    mac: host.findings for mac, host in find_stuck(
                        rt.store, cluster, now, records=records).hosts.items()}),
                recent=recent_activity(rt.store.journal_path(cluster) or rt.store.journal_lines(
                    cluster, limit=RECENT_LINES).lines, records, patterns, admin=admin, now=now),
                problems=list(hosts.problems.values()))


@bp.get("/unconfigured")
def unconfigured() -> Response:
    """Hosts waiting for a type, each with a "configure as" form for admins (never refreshes)."""
    rt = runtime()
    cluster, admin = rt.active_cluster(), viewer_is_admin()
    hosts = hosts_of(cluster)
    found = waiting(hosts.records)
    ordered = sorted(found.items(), reverse=True, key=lambda item: (
        item[1].get("LAST_SEEN", ""), item[1].get("UPDATED", "")))
    rows = list_rows(ordered, rt.settings.sensitive_keys, admin=admin, now=time.time())
    forms = {row.mac: _form(row.mac, "configure") for row in rows} if admin else {}
    return page("unconfigured.html", title="Unconfigured hosts", cluster=cluster, rows=rows,
                forms=forms, choices=catalog_choices(load_catalog()),
                problems=list(hosts.problems.values()), states=in_order(MENU_STATES))


@bp.get("/hosts/<mac>")
def host(mac: str) -> Response:
    """One host: record, hardware, boot decision, self-test, sessions, log and history."""
    rt = runtime()
    mac12, cluster, now = normalize_mac(mac), rt.active_cluster(), time.time()
    rid = RecordId.of_host(cluster, mac12)
    record, changes = rt.store.items(rid), rt.store.history(rid)
    patterns, admin = rt.settings.sensitive_keys, viewer_is_admin()
    fields = shown_record(record_keys(record), patterns, admin=admin)
    return page(
        "host.html", title=f"Host {colon_mac(mac12)}", mac=mac12,
        done=DONE_MESSAGES.get(request.args.get("done", "")), limit=HISTORY_LIMIT,
        fields=fields, times={key: when(value.value, now) for key, value in fields
                              if key in TIME_KEYS and value.value is not None},
        row=list_rows([(mac12, record)], patterns, admin=admin, now=now)[0],
        hardware=hardware_section(record, patterns, admin=admin),
        selftest=self_test_section(record, patterns, admin=admin),
        selftest_at=when(record.get("SELFTEST_AT"), now),
        boot=boot_view(rt.store, cluster, mac12, record, base_url()),
        sessions=[(when(at, now), session) for at, session in boot_sessions(changes)],
        log=log_tail(rt.settings.log_dir / LOG_FILE, log_names(mac12, record)),
        history=[(when(entry.time, now), entry)
                 for entry in recent_history(changes, patterns, admin=admin)],
        forms=host_forms(mac12, record) if admin else {},
        power=power_section(rt.store, cluster, mac12, admin=admin),
        timeline=timeline_section(rt.store, rt.settings, rid, record, changes, now),
        delete=form("/hosts/bulk") if admin else None,
        choices=catalog_choices(load_catalog()))


@bp.get("/health")
def health() -> Response:
    """Status, version, active cluster, config dir and the IPS self-test, run live."""
    rt = runtime()
    active = active_cluster(rt.store)
    writable = is_writable_dir(rt.settings.config_dir)
    checks = run_selftest(rt.store, rt.settings)
    ips_health().record(checks)
    healthy = bool(active) and writable and all(c.ok for c in checks)
    return page("health.html", title="Health", status="ok" if healthy else "degraded",
                version=__version__, active=active, config_dir=str(rt.settings.config_dir),
                writable=writable, ips_selftest=checks)


# -- actions on one host (admin-only POSTs; _guard has checked admin and CSRF) -------------------


@bp.post("/hosts/<mac>/configure")
def configure(mac: str) -> Response:
    """Configure the host as the chosen TYPE/PROFILE; 303 to its page."""
    rt = runtime()
    mac12 = normalize_mac(mac)
    configure_waiting_host(rt.store, rt.settings, rt.active_cluster(), mac12,
                           request.form.get("choice", ""), actor())
    return _done(mac12, "configure")


@bp.post("/hosts/<mac>/reinstall")
def reinstall(mac: str) -> Response:
    """Set STATE=REINSTALL; 303 to the host page."""
    rt = runtime()
    cluster = rt.active_cluster()
    rid = RecordId.of_host(cluster, mac)
    host_ops.reinstall(rt.store, rid, actor(), resources_dir=rt.settings.resources_dir)
    bmc = power_ops.power_view(rt.store, cluster, rid.name or "")["bmc"]
    if bmc is None or bmc["driver"] == "wol":
        return _done(rid.name or "", "reinstall")
    action = power_runner().submit(cluster, rid.name or "", ["pxe-once", "cycle"], actor())
    return redirect(f"/hosts/{rid.name}?done=reinstall_power&action={action['id']}")


@bp.post("/hosts/<mac>/power/<action>")
def power(mac: str, action: str) -> Response:
    """Start a power action through the host's BMC, off the request path; 303 to the host page,
    which shows the action's outcome."""
    if action not in POWER_BUTTONS:
        raise NotFound(f"no such power action: {action[:20]}")
    rt = runtime()
    mac12 = normalize_mac(mac)
    record = power_runner().submit(rt.active_cluster(), mac12, [action], actor())
    return redirect(f"/hosts/{mac12}?done=power&action={record['id']}")


@bp.post("/hosts/<mac>/unconfigure")
def unconfigure(mac: str) -> Response:
    """Forget TYPE/PROFILE/OS_ID and set STATE=UNCONFIGURED (HOSTNAME and IP kept); 303."""
    rt = runtime()
    rid = RecordId.of_host(rt.active_cluster(), mac)
    host_ops.unconfigure(rt.store, rid, actor())
    return _done(rid.name or "", "unconfigure")


@bp.post("/hosts/<mac>/rescue/<switch>")
def rescue(mac: str, switch: str) -> Response:
    """Set (`on`) or clear (`off`) RESCUE; 303 to the host page."""
    if switch not in ("on", "off"):
        raise InvalidInput("rescue is switched on or off")
    rt = runtime()
    rid = RecordId.of_host(rt.active_cluster(), mac)
    host_ops.rescue(rt.store, rid, switch == "on", actor())
    return _done(rid.name or "", f"rescue_{switch}")


# -- domain actions ------------------------------------------------------------------------------


def configure_waiting_host(store: Store, settings: Settings, cluster: str, mac12: str,
                           choice: str, actor: str) -> dict[str, str]:
    """Configure a host waiting for a type from a `TYPE/PROFILE` choice, then refresh the
    service files; return its record.

    Raises NotFound (no such host), Conflict (the host is not waiting: unconfigure it first;
    and what ops.hosts.configure raises), InvalidInput (no or unknown choice).
    """
    bulk.check_waiting(mac12, store.items(RecordId.of_host(cluster, mac12)))
    type_name, profile = parse_choice(choice)
    return host_ops.configure(store, settings, cluster, mac12, type_name, profile, actor,
                              admin=True)


def parse_choice(text: str) -> tuple[str, str | None]:
    """Return (type, profile) of a `TYPE/PROFILE` choice; InvalidInput when it is empty."""
    type_name, _, profile = text.strip().partition("/")
    if not type_name:
        raise InvalidInput("choose a host type and profile")
    return type_name, profile or None


# -- what the pages show that needs the request or the store --------------------------------------


def host_forms(mac12: str, record: Mapping[str, str]) -> dict[str, csrf.Form]:
    """Return the host page's action forms: those of `views.host_actions`, and rescue on or
    off (whichever the host is not in)."""
    forms = {action: _form(mac12, action) for action in host_actions(record)}
    switch = "off" if record.get(host_ops.RESCUE_KEY, "").lower() == "yes" else "on"
    forms[f"rescue_{switch}"] = _form(mac12, f"rescue/{switch}")
    return forms


def power_section(store: Store, cluster: str, mac12: str, *, admin: bool) -> dict[str, Any]:
    """Return what the host page shows of power: the BMC settings as shown (never the
    password), the last known state (read by the poller, never asked of the BMC here), the
    action named by `?action=` (its status and message), and the buttons an admin gets."""
    view = power_ops.power_view(store, cluster, mac12)
    bmc = view["bmc"]
    buttons = {} if not admin or bmc is None else {
        name: (label, _form(mac12, f"power/{name}")) for name, label in POWER_BUTTONS.items()
        if bmc["driver"] != "wol" or name in WOL_BUTTONS}
    action = None
    asked = request.args.get("action", "")
    if asked:
        try:
            found = ActionLog(store.layout.root).get(asked)
        except HpsError:
            found = None
        action = found if found and found.get("mac") == mac12 else None
    return {"view": view, "buttons": buttons, "action": action,
            "checked": when(view["checked"], time.time()) if view["checked"] else None}


def boot_view(store: Store, cluster: str, mac12: str, record: Mapping[str, str],
              url: str) -> BootView:
    """Return the decision `init` would take now (no writes), or why none can be made."""
    session = record.get("BOOT_SESSION", "------")
    try:
        data = explain(decision_for(store, cluster, mac12, record, base_url=url,
                                    session=session,
                                    resources_dir=runtime().settings.resources_dir))
    except HpsError as err:
        return BootView(session, problem=str(err))
    changes = data["changes"]
    return BootView(session, str(data["action"]), str(data["template"]), str(data["reason"]),
                    changes if isinstance(changes, dict) else {}, str(data["script"]))


def _form(mac12: str, action: str) -> csrf.Form:
    return csrf.form(f"/hosts/{mac12}/{action}")


def _done(mac12: str, action: str) -> Response:
    return redirect(f"/hosts/{mac12}?done={action}")


# -- the other page modules' routes ---------------------------------------------------------------

bp.add_url_rule("/hosts", view_func=hosts_list.hosts, methods=["GET"])
bp.add_url_rule("/hosts/bulk", view_func=hosts_list.bulk_review, methods=["POST"])
bp.add_url_rule("/hosts/bulk/run", view_func=hosts_list.bulk_run, methods=["POST"])
bp.add_url_rule("/hosts.csv", view_func=csv_pages.export, methods=["GET"])
bp.add_url_rule("/hosts/import", view_func=csv_pages.import_page, methods=["GET"])
bp.add_url_rule("/hosts/import", view_func=csv_pages.preview, methods=["POST"])
bp.add_url_rule("/hosts/import/apply", view_func=csv_pages.apply, methods=["POST"])
bp.add_url_rule("/cluster", view_func=cluster_pages.settings_page, methods=["GET"])
bp.add_url_rule("/cluster/set", view_func=cluster_pages.set_key, methods=["POST"])
bp.add_url_rule("/cluster/unset", view_func=cluster_pages.unset_key, methods=["POST"])
bp.add_url_rule("/os", view_func=cluster_pages.os_page, methods=["GET"])
bp.add_url_rule("/os/save", view_func=cluster_pages.os_save, methods=["POST"])
bp.add_url_rule("/os/remove", view_func=cluster_pages.os_remove, methods=["POST"])
bp.add_url_rule("/network", view_func=network_page.network, methods=["GET"])
bp.add_url_rule("/network.svg", view_func=network_page.network_svg, methods=["GET"])
bp.add_url_rule("/storage", view_func=storage_page.storage_page, methods=["GET"])
bp.add_url_rule("/storage/provision", view_func=storage_page.provision, methods=["POST"])

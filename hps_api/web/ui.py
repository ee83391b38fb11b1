"""Pages for people (docs/api.md §6): dashboard, hosts waiting for a type, a page per host, health.

Server-rendered, autoescaped Jinja2 that works without JavaScript. Handlers read the store and
hand plain values to a template; what a page shows (order, counts, hidden values, which actions
a host offers) is decided by the plain functions of `hps_api.web.views`, tested without Flask.
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

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__
from hps_api.boot.flow import decision_for, explain
from hps_api.errors import (
    Conflict,
    Forbidden,
    HpsError,
    InvalidInput,
)
from hps_api.ids import colon_mac, normalize_mac
from hps_api.model.catalog import load_catalog
from hps_api.model.states import MENU_STATES, in_order
from hps_api.net.identity import Caller
from hps_api.ops import hosts as host_ops
from hps_api.ops.selftest import run_selftest
from hps_api.render import html
from hps_api.render.negotiate import Negotiated, client_from_agent
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import active_cluster
from hps_api.web import csrf
from hps_api.web.caller import current_caller
from hps_api.web.login import header_context
from hps_api.web.respond import MIME, SECURITY_HEADERS, base_url, hide_paths
from hps_api.web.runtime import runtime
from hps_api.web.views import (
    COLUMN_LABELS,
    HISTORY_LIMIT,
    SUMMARY_KEYS,
    BootView,
    boot_sessions,
    catalog_choices,
    cluster_summary,
    configurable,
    hardware_section,
    host_actions,
    host_rows,
    is_writable_dir,
    log_names,
    log_tail,
    read_hosts,
    recent_history,
    record_keys,
    self_test_section,
    shown_record,
    state_counts,
    waiting,
)

bp = Blueprint("ui", __name__, static_folder="../static", static_url_path="/ui")

LOG_FILE = "hps-api.log"
DONE_MESSAGES = {
    "configure": "Configured: the host installs at its next network boot.",
    "reinstall": "Marked for reinstall: the host installs again at its next network boot.",
    "unconfigure": "Unconfigured: the host shows the install menu at its next network boot "
                   "(hostname and IP are kept).",
}


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
                 admin=admin, states=in_order(MENU_STATES))


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
    active = active_cluster(rt.store)
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
    host_ops.reinstall(rt.store, rid, _actor())
    return _done(rid.name or "", "reinstall")


@bp.post("/hosts/<mac>/unconfigure")
def unconfigure(mac: str) -> Response:
    """Forget TYPE/PROFILE/OS_ID and set STATE=UNCONFIGURED (HOSTNAME and IP kept); 303."""
    rt = runtime()
    rid = RecordId.of_host(rt.active_cluster(), mac)
    host_ops.unconfigure(rt.store, rid, _actor())
    return _done(rid.name or "", "unconfigure")


# -- domain actions ------------------------------------------------------------------------------


def configure_waiting_host(store: FileStore, settings: Settings, cluster: str, mac12: str,
                           choice: str, actor: str) -> dict[str, str]:
    """Configure a host waiting for a type from a `TYPE/PROFILE` choice; return its record.

    Raises NotFound (no such host), Conflict (the host is not waiting: unconfigure it first;
    and what ops.hosts.configure raises), InvalidInput (no or unknown choice).
    """
    record = store.items(RecordId.of_host(cluster, mac12))
    if not configurable(record):
        raise Conflict(f"host {mac12} is {record.get('STATE')}: only hosts in "
                       f"{', '.join(in_order(MENU_STATES))} are configured here; unconfigure first")
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


def viewer_is_admin() -> bool:
    """Return True when the viewer is an admin (see hps_api.web.caller)."""
    return current_caller().admin


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


# -- helpers -------------------------------------------------------------------------------------


def _require_admin() -> Caller:
    caller = current_caller()
    if not caller.admin:
        raise Forbidden("admin only: log in at /login to change hosts")
    return caller


def _actor() -> str:
    caller: Caller = g.caller
    return caller.actor


def _form(mac12: str, action: str) -> csrf.Form:
    return csrf.form(f"/hosts/{mac12}/{action}")


def _done(mac12: str, action: str) -> Response:
    return Response(status=303, headers={"Location": f"/hosts/{mac12}?done={action}"})


def _page(template: str, **context: Any) -> Response:
    """Render a page; for non-admins the store's absolute paths are named by their setting."""
    page = html.render(template, {**header_context(), **context})
    if not viewer_is_admin():
        page = hide_paths(page, runtime().settings)
    return Response(page, 200, content_type=MIME["html"])

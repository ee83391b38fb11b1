"""What every page handler shares: the viewer's rights, the page header (account, IPS health),
protected forms, the redirect after an action, and this worker's host index.

The handlers themselves live in `ui` (dashboard, host page, health), `hosts_list` (the list and
bulk actions), `cluster_pages` (settings, OS registry), `csv_pages` (import, export) and
`network_page`; `ui.bp` routes to them all, so its guard (admin and CSRF check before any
POST) and its headers cover every one.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g

from hps_api.errors import Forbidden
from hps_api.net.identity import Caller
from hps_api.ops.host_index import ClusterHosts, HostIndex
from hps_api.ops.selftest import run_selftest
from hps_api.render import html
from hps_api.web import csrf
from hps_api.web.caller import current_caller
from hps_api.web.ips_health import HealthCache
from hps_api.web.login import header_context
from hps_api.web.respond import MIME, hide_paths
from hps_api.web.runtime import runtime

_INDEX = "hps_host_index"
_HEALTH = "hps_ips_health"


def viewer_is_admin() -> bool:
    """Return True when the viewer is an admin (see hps_api.web.caller)."""
    return current_caller().admin


def require_admin() -> Caller:
    """Return the caller when an admin, else Forbidden saying how to become one."""
    caller = current_caller()
    if not caller.admin:
        raise Forbidden("admin only: log in at /login to change hosts")
    return caller


def actor() -> str:
    """Return who the journal names for this request's change (set by the POST guard)."""
    caller: Caller = g.caller
    return caller.actor


def form(action: str) -> csrf.Form:
    """Return a form posting to `action` with a fresh CSRF token."""
    return csrf.form(action)


def redirect(location: str) -> Response:
    """Return a 303 to `location` (a path of this site): the answer to a successful POST."""
    return Response(status=303, headers={"Location": location})


def host_index() -> HostIndex:
    """Return this worker's index of host records (hps_api.ops.host_index)."""
    index: HostIndex | None = current_app.extensions.get(_INDEX)
    if index is None:
        index = current_app.extensions.setdefault(_INDEX, HostIndex())
    return index


def hosts_of(cluster: str) -> ClusterHosts:
    """Return every host record of `cluster`, read once for this request (HostIndex)."""
    return host_index().read(runtime().store, cluster)


def ips_health() -> HealthCache:
    """Return this worker's cache of the IPS self-test (the header's health badge)."""
    found: HealthCache | None = current_app.extensions.get(_HEALTH)
    if found is None:
        rt = runtime()
        found = current_app.extensions.setdefault(
            _HEALTH, HealthCache(lambda: run_selftest(rt.store, rt.settings)))
    return found


def page(template: str, **context: Any) -> Response:
    """Render a page with the header's context; for non-admins the store's absolute paths are
    named by their setting."""
    admin = viewer_is_admin()
    text = html.render(template, {"ips": ips_health().current(), "admin": admin,
                                  **header_context(), **context})
    if not admin:
        text = hide_paths(text, runtime().settings)
    return Response(text, 200, content_type=MIME["html"])

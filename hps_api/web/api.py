"""The JSON API under `/api/v1` (docs/api.md §5): admin-only except health and the OpenAPI document.

Handlers parse the request, call one inventory or store function and render the result; the
admin check is `_admin_only`, the one place access is decided. Host endpoints work on the active
cluster unless `?cluster=` names another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__
from hps_api.boot.flow import decision_for, explain, host_or_none
from hps_api.errors import Forbidden, InvalidInput, NotFound
from hps_api.ids import normalize_key, normalize_mac
from hps_api.net.identity import Caller
from hps_api.observe import eventlog
from hps_api.observe.timeline_logs import LogFiles, host_timeline
from hps_api.ops import clusters as cluster_ops
from hps_api.ops import host_query, inventory
from hps_api.ops import hosts as host_ops
from hps_api.ops.selftest import run_selftest, summary
from hps_api.render.negotiate import Client, Negotiated, client_from_agent
from hps_api.store import RecordId, Store
from hps_api.store.bootstrap import active_cluster
from hps_api.web import openapi
from hps_api.web.caller import cross_site, current_caller
from hps_api.web.pages import host_index
from hps_api.web.params import TEXT, TEXT_MAP, Fields, json_object, require_json
from hps_api.web.respond import base_url, hide_paths, json_response
from hps_api.web.runtime import runtime

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.openapi"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the fields of each request body: name -> (required, what it must be); nothing else is taken
VALUE_BODY: Fields = {"value": (True, TEXT)}
NEW_CLUSTER_BODY: Fields = {"name": (True, TEXT), "config": (False, TEXT_MAP)}
CONFIGURE_BODY: Fields = {"type": (True, TEXT), "profile": (False, TEXT)}

bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi.serve)


@bp.before_app_request
def _json_only() -> None:
    """Everything under /api/v1 answers JSON, errors included (unknown paths and methods too,
    which never reach a blueprint hook, hence an app-wide hook that looks at the path)."""
    found = negotiated()
    if found is not None:
        g.negotiated = found


def negotiated() -> Negotiated | None:
    """Return the JSON rendering for a request under /api/v1, None for any other path."""
    if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
        return None
    agent = request.headers.get("User-Agent", "")
    return Negotiated(client_from_agent(agent) if agent else Client.SCRIPT, "json")


@bp.before_request
def _admin_only() -> None:
    """Refuse everyone but admins (see hps_api.web.caller), except on public endpoints."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    caller = current_caller()
    if not caller.admin:
        raise Forbidden("admin only: log in (/login), send 'Authorization: Bearer "
                        "<HPS_ADMIN_TOKEN>', or call from the IPS itself")
    if caller.account and request.method not in SAFE_METHODS and cross_site():
        raise Forbidden("a write with the login cookie must come from this site's own pages")
    g.caller = caller


@bp.after_request
def _log_change(response: Response) -> Response:
    """Log one line per successful write (paths name keys, never values)."""
    if request.method in ("POST", "PUT", "DELETE") and response.status_code < 400:
        eventlog.event(logging.INFO, f"{request.method} {request.path} -> {response.status_code}",
                       host=g.caller.label, client=g.negotiated.client.value)
    return response


@bp.get("/health")
def health() -> Response:
    """Anyone: status, version and the active cluster; with `?deep=1` the IPS self-test too
    (its details name directories by their setting unless an admin asks)."""
    rt = runtime()
    deep = request.args.get("deep")
    if deep not in (None, "1"):
        raise InvalidInput("deep must be 1 (or absent)")
    active = active_cluster(rt.store)
    data: dict[str, Any] = {"status": "ok" if active else "degraded", "version": __version__,
                            "active_cluster": active}
    if deep:
        checks = run_selftest(rt.store, rt.settings)
        if not current_caller().admin:
            checks = [replace(c, detail=hide_paths(c.detail, rt.settings)) for c in checks]
        data["selftest"] = summary(checks)
        if data["selftest"]["result"] != "pass":
            data["status"] = "degraded"
    return json_response(data)


# --- clusters -------------------------------------------------------------------------------

@bp.get("/clusters")
def clusters() -> Response:
    """Every cluster with its host count and whether it is the active one."""
    return json_response(inventory.list_clusters(_store()))


@bp.post("/clusters")
def create_cluster() -> Response:
    """Create a cluster from `{"name": ..., "config": {KEY: value}}`; 201 with its record."""
    body = _body(NEW_CLUSTER_BODY)
    name, config = body["name"], body.get("config", {})
    record = cluster_ops.create(_store(), name, config, _actor())
    return json_response({"name": name, "config": record}, 201)


@bp.post("/clusters/<name>/activate")
def activate_cluster(name: str) -> Response:
    """Make a cluster the active one."""
    return json_response(inventory.activate_cluster(_store(), name, _actor()))


@bp.get("/clusters/<name>/config")
def cluster_config(name: str) -> Response:
    """A cluster's record."""
    return json_response({"cluster": name, "config": _store().items(RecordId.of_cluster(name))})


@bp.put("/clusters/<name>/config/<key>")
def set_cluster_key(name: str, key: str) -> Response:
    """Set one cluster key from `{"value": "..."}`."""
    record = cluster_ops.set_key(_store(), runtime().settings, name, key, _value(), _actor())
    return _key_result({"cluster": name}, key, record)


@bp.delete("/clusters/<name>/config/<key>")
def unset_cluster_key(name: str, key: str) -> Response:
    """Remove one cluster key."""
    record = cluster_ops.unset_key(_store(), runtime().settings, name, key, _actor())
    return _key_result({"cluster": name}, key, record)


# --- hosts ----------------------------------------------------------------------------------

@bp.get("/hosts")
def hosts() -> Response:
    """The hosts' summary columns, newest activity first: searched (`q`), filtered (`state`,
    `type`, `profile`, `stuck`, `selftest`), sorted (`sort`) and paged (`page`, `per_page`;
    without per_page every matching host), as the host list page does (ops.host_query)."""
    cluster = _cluster()
    query = host_query.parse_query(request.args.to_dict(flat=False))
    return json_response(inventory.list_hosts(_store(), cluster, query, index=host_index()))


@bp.get("/hosts/<mac>")
def host(mac: str) -> Response:
    """One host: its record and summary (admins see sensitive keys too)."""
    return json_response(inventory.show_host(_store(), _cluster(), mac))


@bp.delete("/hosts/<mac>")
def delete_host(mac: str) -> Response:
    """Remove a host's record (the journal keeps its history)."""
    rid = RecordId.of_host(_cluster(), mac)
    host_ops.delete(_store(), runtime().settings, rid, _actor())
    return json_response({"mac": rid.name, "cluster": rid.cluster, "deleted": True})


@bp.get("/hosts/<mac>/config/<key>")
def host_key(mac: str, key: str) -> Response:
    """One key of a host."""
    rid = RecordId.of_host(_cluster(), mac)
    name = normalize_key(key)
    return json_response({"mac": rid.name, "cluster": rid.cluster, "key": name,
                          "value": _store().get(rid, name)})


@bp.put("/hosts/<mac>/config/<key>")
def set_host_key(mac: str, key: str) -> Response:
    """Set one key of a registered host from `{"value": "..."}` (never registers a host)."""
    rid = RecordId.of_host(_cluster(), mac)
    record = host_ops.set_key(_store(), runtime().settings, rid, key, _value(), _actor())
    return _key_result({"mac": rid.name, "cluster": rid.cluster}, key, record)


@bp.delete("/hosts/<mac>/config/<key>")
def unset_host_key(mac: str, key: str) -> Response:
    """Remove one key of a host."""
    rid = RecordId.of_host(_cluster(), mac)
    record = host_ops.unset_key(_store(), runtime().settings, rid, key, _actor())
    return _key_result({"mac": rid.name, "cluster": rid.cluster}, key, record)


@bp.post("/hosts/<mac>/configure")
def configure(mac: str) -> Response:
    """Configure a host from `{"type": "SCH", "profile": "DEFAULT"}` (same as the menu choice)."""
    body = _body(CONFIGURE_BODY)
    cluster = _cluster()
    record = host_ops.configure(_store(), runtime().settings, cluster, mac, body["type"],
                                body.get("profile"), _actor(), admin=True)
    return json_response({"mac": normalize_mac(mac), "cluster": cluster, "record": record})


@bp.post("/hosts/<mac>/reinstall")
def reinstall(mac: str) -> Response:
    """Mark a host for reinstall (409 saying why when its install could not start)."""
    rid = RecordId.of_host(_cluster(), mac)
    record = host_ops.reinstall(_store(), rid, _actor(),
                                resources_dir=runtime().settings.resources_dir)
    return json_response({"mac": rid.name, "cluster": rid.cluster, "record": record})


@bp.post("/hosts/<mac>/unconfigure")
def unconfigure(mac: str) -> Response:
    """Forget a host's type, profile and OS (HOSTNAME and IP kept): back to the install menu."""
    rid = RecordId.of_host(_cluster(), mac)
    record = host_ops.unconfigure(_store(), rid, _actor())
    return json_response({"mac": rid.name, "cluster": rid.cluster, "record": record})


@bp.post("/hosts/<mac>/rescue/<switch>")
def rescue(mac: str, switch: str) -> Response:
    """Set (`on`) or clear (`off`) the rescue boot of a host: while set, it boots the rescue
    image whatever its state."""
    if switch not in ("on", "off"):
        raise NotFound(f"no such action: rescue/{switch[:20]}")
    rid = RecordId.of_host(_cluster(), mac)
    record = host_ops.rescue(_store(), rid, switch == "on", _actor())
    return json_response({"mac": rid.name, "cluster": rid.cluster, "record": record})


@bp.get("/hosts/<mac>/boot")
def explain_boot(mac: str) -> Response:
    """The script `init` would serve now, and why; writes nothing."""
    cluster, mac12 = _cluster(), normalize_mac(mac)
    host = host_or_none(_store(), RecordId.of_host(cluster, mac12))
    if host is None:
        raise NotFound(f"Host {mac12} not found")
    decision = decision_for(_store(), cluster, mac12, host, base_url=base_url(),
                            session=host.get("BOOT_SESSION", "------"),
                            resources_dir=runtime().settings.resources_dir)
    return json_response({"mac": mac12, "cluster": cluster, "state": host.get("STATE"),
                          "type": host.get("TYPE"), "profile": host.get("PROFILE"),
                          "os_id": host.get("OS_ID"), **explain(decision)})


@bp.get("/hosts/<mac>/events")
def events(mac: str) -> Response:
    """The host's journal entries and boot sessions, newest first."""
    rid = RecordId.of_host(_cluster(), mac)
    changes = [asdict(c) for c in reversed(_store().history(rid))]
    if not changes and not _store().exists(rid):
        raise NotFound(f"Host {rid.name} not found")
    sessions = [{"session": c["new"], "time": c["time"]} for c in changes
                if c["key"] == "BOOT_SESSION" and c["new"]]
    return json_response({"mac": rid.name, "cluster": rid.cluster, "changes": changes,
                          "sessions": sessions})


@bp.get("/hosts/<mac>/timeline")
def timeline(mac: str) -> Response:
    """The host's provisioning timeline: each phase with its start and duration, and the phase
    it is in now (docs/timeline.md)."""
    rid, settings = RecordId.of_host(_cluster(), mac), runtime().settings
    found = host_timeline(_store(), rid, LogFiles.under(settings.log_dir, settings.dhcp_leases),
                          time.time())
    return json_response(found.as_json())


# --- parsing and rendering ------------------------------------------------------------------

def _store() -> Store:
    return runtime().store


def _actor() -> str:
    caller: Caller = g.caller
    return caller.actor


def _cluster() -> str:
    """Return `?cluster=` or the active cluster."""
    return request.args.get("cluster") or runtime().active_cluster()


def _body(fields: Fields) -> dict[str, Any]:
    """Return the request's JSON object, checked against `fields` (see params.json_object)."""
    require_json(request.mimetype, request.mimetype_params)
    return json_object(request.get_data(cache=False), fields)


def _value() -> str:
    """Return the `value` of a `{"value": "..."}` body."""
    value: str = _body(VALUE_BODY)["value"]
    return value


def _key_result(owner: Mapping[str, Any], key: str, record: Mapping[str, str]) -> Response:
    """Return the owner, the key, its stored value (None once removed) and the new record."""
    name = normalize_key(key)
    return json_response({**owner, "key": name, "value": record.get(name),
                          "record": dict(record)})

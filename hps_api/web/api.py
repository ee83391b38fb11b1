"""The JSON API under `/api/v1` (api.md §5): admin-only except health and the OpenAPI document.

Handlers parse the request, call one inventory or store function and render the result; the
admin check is `_admin_only`, the one place access is decided. Host endpoints work on the active
cluster unless `?cluster=` names another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, g, request

from hps_api import __version__, eventlog, inventory
from hps_api.boot.configure import configure_host
from hps_api.boot.flow import decision_for, explain, host_or_none
from hps_api.errors import Forbidden, InvalidInput, NotFound
from hps_api.identity import Caller
from hps_api.ids import normalize_key, normalize_mac
from hps_api.render.negotiate import Client, Negotiated, client_from_agent
from hps_api.selftest import run_selftest, summary
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import active_cluster
from hps_api.web import openapi
from hps_api.web.caller import current_caller
from hps_api.web.respond import base_url, json_response
from hps_api.web.runtime import runtime

PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=PREFIX)
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.openapi"})
_BODY_SHAPE = 'the request body must be a JSON object such as {"value": "text"}'

bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi.serve)


@bp.before_app_request
def _json_only() -> None:
    """Everything under /api/v1 answers JSON, errors included (unknown paths and methods too,
    which never reach a blueprint hook, hence an app-wide hook that looks at the path)."""
    if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
        return
    agent = request.headers.get("User-Agent", "")
    client = client_from_agent(agent) if agent else Client.SCRIPT
    g.negotiated = Negotiated(client, "json")


@bp.before_request
def _admin_only() -> None:
    """Refuse everyone but admins (see hps_api.web.caller), except on public endpoints."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    caller = current_caller()
    if not caller.admin:
        raise Forbidden("admin only: call from loopback or send "
                        "'Authorization: Bearer <HPS_ADMIN_TOKEN>'")
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
    """Anyone: status, version and the active cluster; with `?deep=1` the IPS self-test too."""
    rt = runtime()
    active = active_cluster(rt.store)
    data: dict[str, Any] = {"status": "ok" if active else "degraded", "version": __version__,
                            "active_cluster": active}
    if request.args.get("deep") == "1":
        selftest = summary(run_selftest(rt.store, rt.settings))
        data["selftest"] = selftest
        if selftest["result"] != "pass":
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
    body = _body()
    name, config = _text(body, "name"), _text_map(body, "config")
    record = inventory.create_cluster(_store(), name, config, _actor())
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
    record = _store().update(RecordId.of_cluster(name), {key: _value()}, _actor())
    return _key_result({"cluster": name}, key, record)


@bp.delete("/clusters/<name>/config/<key>")
def unset_cluster_key(name: str, key: str) -> Response:
    """Remove one cluster key."""
    record = _store().unset(RecordId.of_cluster(name), key, _actor())
    return _key_result({"cluster": name}, key, record)


# --- hosts ----------------------------------------------------------------------------------

@bp.get("/hosts")
def hosts() -> Response:
    """The hosts' summary columns, newest activity first, filtered by `?state=` / `?type=`."""
    cluster = _cluster()
    rows = inventory.list_hosts(_store(), cluster, request.args.get("state"),
                                request.args.get("type"))
    return json_response({"cluster": cluster, "hosts": rows})


@bp.get("/hosts/<mac>")
def host(mac: str) -> Response:
    """One host: its record and summary (admins see sensitive keys too)."""
    return json_response(inventory.show_host(_store(), _cluster(), mac))


@bp.delete("/hosts/<mac>")
def delete_host(mac: str) -> Response:
    """Remove a host's record (the journal keeps its history)."""
    rid = RecordId.of_host(_cluster(), mac)
    _store().delete(rid, _actor())
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
    cluster = _cluster()
    record = inventory.set_host_key(_store(), cluster, mac, key, _value(), _actor())
    return _key_result({"mac": normalize_mac(mac), "cluster": cluster}, key, record)


@bp.delete("/hosts/<mac>/config/<key>")
def unset_host_key(mac: str, key: str) -> Response:
    """Remove one key of a host."""
    rid = RecordId.of_host(_cluster(), mac)
    record = _store().unset(rid, key, _actor())
    return _key_result({"mac": rid.name, "cluster": rid.cluster}, key, record)


@bp.post("/hosts/<mac>/configure")
def configure(mac: str) -> Response:
    """Configure a host from `{"type": "SCH", "profile": "DEFAULT"}` (same as the menu choice)."""
    body = _body()
    cluster = _cluster()
    profile = body.get("profile")
    record = configure_host(_store(), runtime().settings, cluster, mac, _text(body, "type"),
                            profile if isinstance(profile, str) else None, _actor(), admin=True)
    return json_response({"mac": normalize_mac(mac), "cluster": cluster, "record": record})


@bp.get("/hosts/<mac>/boot")
def explain_boot(mac: str) -> Response:
    """The script `init` would serve now, and why; writes nothing."""
    cluster, mac12 = _cluster(), normalize_mac(mac)
    host = host_or_none(_store(), RecordId.of_host(cluster, mac12))
    if host is None:
        raise NotFound(f"Host {mac12} not found")
    decision = decision_for(_store(), cluster, mac12, host, base_url=base_url(),
                            session=host.get("BOOT_SESSION", "------"))
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


# --- parsing and rendering ------------------------------------------------------------------

def _store() -> FileStore:
    return runtime().store


def _actor() -> str:
    caller: Caller = g.caller
    return f"admin:{caller.ip}"


def _cluster() -> str:
    """Return `?cluster=` or the active cluster."""
    return request.args.get("cluster") or runtime().active_cluster()


def _body() -> dict[str, Any]:
    """Return the JSON object in the body; InvalidInput for anything else (413 above 1 MiB)."""
    try:
        body = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        raise InvalidInput(f"{_BODY_SHAPE}; it is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput(_BODY_SHAPE)
    return body


def _value() -> str:
    """Return the `value` of a `{"value": "..."}` body."""
    value = _body().get("value")
    if not isinstance(value, str):
        raise InvalidInput(f'{_BODY_SHAPE}: "value" is missing or not a string')
    return value


def _text(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise InvalidInput(f'"{field}" is required and must be a string')
    return value


def _text_map(body: Mapping[str, Any], field: str) -> dict[str, str]:
    value = body.get(field, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidInput(f'"{field}" must be an object of KEY: "text" pairs')
    return value


def _key_result(owner: Mapping[str, Any], key: str, record: Mapping[str, str]) -> Response:
    """Return the owner, the key, its stored value (None once removed) and the new record."""
    name = normalize_key(key)
    return json_response({**owner, "key": name, "value": record.get(name),
                          "record": dict(record)})

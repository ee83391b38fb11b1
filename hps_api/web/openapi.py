"""The OpenAPI 3.0 document of `/api/v1` and the legacy endpoint, served at
`/api/v1/openapi.json` (anyone may read it; tests check it against the app's routes)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from flask import Response

from hps_api import __version__
from hps_api.ids import MAX_VALUE_BYTES
from hps_api.model.states import STATES
from hps_api.observe.timeline import PHASE_NAMES
from hps_api.ops.host_query import (
    DEFAULT_SORT,
    MAX_PER_PAGE,
    MAX_QUERY,
    NONE,
    SELFTEST_FILTERS,
    SORTS,
)
from hps_api.ops.inventory import SUMMARY_COLUMNS
from hps_api.power.base import ACTIONS as POWER_ACTIONS
from hps_api.power.bmc import DRIVERS as BMC_DRIVERS
from hps_api.web.legacy import PATHS as LEGACY_PATHS

Schema = dict[str, Any]

ERROR_RESPONSES = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
                   413: "TooLarge", 415: "NotJson", 503: "Busy"}
_ERROR_TEXT = {400: "bad parameter, key, value, MAC or body", 403: "not an admin",
               404: "unknown cluster, host or key", 409: "conflicts with the current state",
               413: "request body larger than 1 MiB",
               415: "the body is not application/json (UTF-8)",
               503: "store busy (a lock timed out): retry"}
#: the errors of an operation that takes a JSON body
_BODY_ERRORS = (400, 403, 404, 413, 415, 503)
_TEXT: Schema = {"type": "string"}
_CLUSTER_PATTERN = "^[a-z][a-z0-9-]{0,62}$"
_HEX2, _HEX4 = "[0-9A-Fa-f]{2}", "[0-9A-Fa-f]{4}"
_MAC_PATTERN = (f"^(?:{_HEX2}(?::{_HEX2}){{5}}|{_HEX2}(?:-{_HEX2}){{5}}"
                f"|{_HEX4}\\.{_HEX4}\\.{_HEX4}|[0-9A-Fa-f]{{12}})$")
_NULLABLE_TEXT: Schema = {"type": "string", "nullable": True}


def serve() -> Response:
    """Return the document as JSON (the bare document, not the `{"ok": ...}` envelope)."""
    return Response(_document_json(), 200, content_type="application/json")


@functools.cache
def _document_json() -> str:
    return json.dumps(document(), ensure_ascii=False)


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.0.3 document as a dict."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hps-api",
            "version": __version__,
            "description": "Provisioning API. Admin-only unless noted: call from loopback or "
                           "send `Authorization: Bearer <HPS_ADMIN_TOKEN>`.",
        },
        "security": [{"bearerAuth": []}],
        "paths": {**_api_paths(), **_legacy_paths()},
        "components": _components(),
    }


# --- /api/v1 --------------------------------------------------------------------------------

def _api_paths() -> dict[str, Any]:
    name, key, mac, cluster = (_ref("parameters", p) for p in ("name", "key", "mac", "cluster"))
    value_body = _json_body(_ref("schemas", "ValueBody"))
    key_result, record = _ref("schemas", "KeyResult"), _ref("schemas", "Record")
    switch = _path("switch", "on or off", {"type": "string", "enum": ["on", "off"]})
    return {
        "/api/v1/health": {"get": _op(
            "health", "Status, version and active cluster (anyone); ?deep=1 adds the IPS "
            "self-test", _ref("schemas", "Health"), errors=(400,), public=True,
            params=[_query("deep", "1: run the IPS self-test too", {
                "type": "string", "enum": ["1"]})])},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "summary": "This document (anyone)", "security": [],
            "responses": {"200": {"description": "the OpenAPI document",
                                  "content": {"application/json": {"schema": {
                                      "type": "object"}}}},
                          "400": _ref("responses", ERROR_RESPONSES[400])}}},
        "/api/v1/clusters": {
            "get": _op("listClusters", "Every cluster, its host count, whether it is active",
                       {"type": "array", "items": _ref("schemas", "Cluster")},
                       errors=(400, 403, 503)),
            "post": _op("createCluster", "Create a cluster (never activates it)",
                        _object({"name": _TEXT, "config": record}),
                        errors=(400, 403, 409, 413, 415, 503), status=201,
                        body=_json_body(_ref("schemas", "NewCluster")))},
        "/api/v1/clusters/{name}/activate": {"post": _op(
            "activateCluster", "Make a cluster the active one",
            _object({"active": _TEXT, "previous": _NULLABLE_TEXT}), params=[name])},
        "/api/v1/clusters/{name}/config": {"get": _op(
            "getClusterConfig", "A cluster's record", _object({"cluster": _TEXT,
                                                               "config": record}),
            params=[name])},
        "/api/v1/clusters/{name}/config/{key}": {
            "put": _op("setClusterKey", "Set a cluster key", key_result, params=[name, key],
                       body=value_body, errors=_BODY_ERRORS),
            "delete": _op("unsetClusterKey", "Remove a cluster key", key_result,
                          params=[name, key])},
        "/api/v1/hosts": {"get": _op(
            "listHosts", "Host summaries: searched, filtered, sorted (newest activity first "
            "by default) and paged, as the host list page (docs/ui.md)",
            _object({"cluster": _TEXT,
                     "hosts": {"type": "array", "items": _ref("schemas", "HostSummary")},
                     "total": {"type": "integer", "description": "matching hosts, all pages"},
                     "page": {"type": "integer"},
                     "per_page": {"type": "integer", "nullable": True,
                                  "description": "null: every matching host, one page"},
                     "pages": {"type": "integer"},
                     "unreadable": {"type": "array", "items": _object({
                         "mac": _TEXT, "error": _TEXT})}}),
            params=[cluster, *_host_query_params()])},
        "/api/v1/hosts/{mac}": {
            "get": _op("getHost", "A host's record and summary", _ref("schemas", "Host"),
                       params=[mac, cluster]),
            "delete": _op("deleteHost", "Remove a host's record",
                          _object({"mac": _TEXT, "cluster": _TEXT,
                                   "deleted": {"type": "boolean"}}),
                          params=[mac, cluster])},
        "/api/v1/hosts/{mac}/config/{key}": {
            "get": _op("getHostKey", "One key of a host",
                       _object({"mac": _TEXT, "cluster": _TEXT, "key": _TEXT, "value": _TEXT}),
                       params=[mac, key, cluster]),
            "put": _op("setHostKey", "Set a key of a registered host (STATE: a known state)",
                       key_result, params=[mac, key, cluster], body=value_body,
                       errors=_BODY_ERRORS),
            "delete": _op("unsetHostKey", "Remove a key of a host", key_result,
                          params=[mac, key, cluster])},
        "/api/v1/hosts/{mac}/configure": {
            "post": _op("configureHost", "Set type and profile, allocate identity, CONFIGURED",
                        _object({"mac": _TEXT, "cluster": _TEXT, "record": record}),
                        params=[mac, cluster], body=_json_body(_ref("schemas", "Configure")),
                        errors=(400, 403, 404, 409, 413, 415, 503))},
        "/api/v1/hosts/{mac}/reinstall": {
            "post": _op("reinstallHost", "Mark for reinstall (409 saying why it could not start)",
                        _object({"mac": _TEXT, "cluster": _TEXT, "record": record}),
                        params=[mac, cluster], errors=(400, 403, 404, 409, 503))},
        "/api/v1/hosts/{mac}/unconfigure": {
            "post": _op("unconfigureHost", "Forget type, profile and OS: back to the install menu",
                        _object({"mac": _TEXT, "cluster": _TEXT, "record": record}),
                        params=[mac, cluster], errors=(400, 403, 404, 503))},
        "/api/v1/hosts/{mac}/rescue/{switch}": {
            "post": _op("rescueHost", "Boot the rescue image whatever the state (on), or not",
                        _object({"mac": _TEXT, "cluster": _TEXT, "record": record}),
                        params=[mac, switch, cluster], errors=(400, 403, 404, 503))},
        "/api/v1/hosts/{mac}/boot": {
            "get": _op("explainBoot", "The script init would serve now, and why (no writes)",
                       _ref("schemas", "BootExplained"), params=[mac, cluster])},
        "/api/v1/hosts/{mac}/events": {
            "get": _op("hostEvents", "The host's journal and boot sessions, newest first",
                       _object({"mac": _TEXT, "cluster": _TEXT,
                                "changes": {"type": "array", "items": _ref("schemas", "Change")},
                                "sessions": {"type": "array", "items": _object({
                                    "session": _TEXT, "time": _TEXT})}}),
                       params=[mac, cluster])},
        "/api/v1/hosts/{mac}/timeline": {
            "get": _op("hostTimeline", "The host's provisioning timeline: each phase with its "
                       "start and duration, and the phase it is in now (docs/timeline.md)",
                       _object({"mac": _TEXT, "cluster": _TEXT, "state": _TEXT,
                                "session": _NULLABLE_TEXT, "now": _TEXT,
                                "waiting": {**_object({"phase": _TEXT, "since": _TEXT,
                                                       "for": {"type": "number"}}),
                                            "nullable": True},
                                "phases": {"type": "array", "items": _object({
                                    "phase": {"type": "string", "enum": list(PHASE_NAMES)},
                                    "at": _NULLABLE_TEXT,
                                    "took": {"type": "number", "nullable": True},
                                    "source": _NULLABLE_TEXT, "detail": _NULLABLE_TEXT})}}),
                       params=[mac, cluster])},
        "/api/v1/hosts/{mac}/power": {
            "get": _op("getPower", "The host's BMC and its last known power state (never asks "
                       "the BMC: the poller's or the last action's reading)",
                       _ref("schemas", "PowerState"), params=[mac, cluster]),
            "post": _op("startPowerAction", "Start a power action off the request path: 202 "
                        "with the queued action (409: no BMC, or the driver cannot do it; 503: "
                        "too many actions waiting)", _ref("schemas", "PowerAction"),
                        params=[mac, cluster], body=_json_body(_ref("schemas", "PowerBody")),
                        errors=(400, 403, 404, 409, 413, 415, 503), status=202)},
        "/api/v1/power/actions/{action_id}": {
            "get": _op("getPowerAction", "A power action: queued, running, done or failed",
                       _ref("schemas", "PowerAction"),
                       params=[_path("action_id", "the id POST .../power answered",
                                     {"type": "string", "pattern": "^[0-9a-f]{16}$"})])},
        "/api/v1/hosts/{mac}/bmc": {
            "get": _op("getBmc", "The host's BMC settings (never the password)",
                       _ref("schemas", "BmcResult"), params=[mac, cluster]),
            "put": _op("setBmc", "Set the host's BMC (the password is write-only; left out, the "
                       "stored one is kept when the driver stays the same)",
                       _ref("schemas", "BmcResult"), params=[mac, cluster],
                       body=_json_body(_ref("schemas", "BmcBody")), errors=_BODY_ERRORS),
            "delete": _op("unsetBmc", "Forget the host's BMC settings",
                          _object({"mac": _TEXT, "cluster": _TEXT,
                                   "removed": {"type": "boolean"}}),
                          params=[mac, cluster])},
        **_storage_paths(cluster),
    }


def _storage_paths(cluster: Schema) -> dict[str, Any]:
    """Return the storage endpoints (hps_api.web.storage, docs/storage-hosts.md)."""
    iqn = _path("iqn", "the volume's IQN: iqn.<yyyy-mm>.<cluster>:<host>.<volume>",
                {"type": "string", "pattern": "^iqn\\.[0-9]{4}-[0-9]{2}\\.[a-z0-9.-]+:"
                 "[a-z0-9.-]+$", "maxLength": 223})
    job = _object({"job": _ref("schemas", "StorageJob")})
    queued = (400, 403, 404, 409, 503)
    return {
        "/api/v1/storage": {"get": _op(
            "listStorage", "The storage hosts (free space, pool), their volumes and queued jobs",
            _ref("schemas", "StorageListing"), params=[cluster])},
        "/api/v1/storage/provision": {"post": _op(
            "provisionStorage", "Queue a thin host's root disk (and its mirror when the "
            "cluster's ISCSI_MIRRORS is 2) on the storage host(s) with most room: 202 with the "
            "jobs and the choice in words (409 saying why when none has room)",
            _ref("schemas", "StoragePlan"), params=[cluster],
            body=_json_body(_ref("schemas", "ProvisionBody")),
            errors=(400, 403, 404, 409, 413, 415, 503), status=202)},
        "/api/v1/storage/volumes/{iqn}": {"get": _op(
            "getVolume", "One volume, who uses it, its queued jobs",
            _ref("schemas", "StorageVolume"), params=[iqn, cluster])},
        "/api/v1/storage/volumes/{iqn}/expand": {"post": _op(
            "expandVolume", "Queue the growth of a volume: 202 with the job", job,
            params=[iqn, cluster], body=_json_body(_ref("schemas", "SizeBody")),
            errors=(*queued, 413, 415), status=202)},
        "/api/v1/storage/volumes/{iqn}/delete": {"post": _op(
            "deleteVolume", "Queue the deletion of a volume: 202 with the job (409 while a "
            "host's ISCSI_ROOT_<i> names it)", job, params=[iqn, cluster], errors=queued,
            status=202)},
    }


def _host_query_params() -> list[Schema]:
    """Return the query parameters of the host list (hps_api.ops.host_query)."""
    listed = "one value, or several comma-separated"
    return [
        _query("q", "words that must all match: KEY=value (exact, any case; KEY= for hosts "
               "without the key), else a piece of the MAC in any spelling, the hostname, the "
               "IP or the serial number", {"type": "string", "maxLength": MAX_QUERY}),
        _query("state", f"only hosts in these states, any case ({listed}): "
               f"{', '.join(STATES)}; a host without STATE counts as UNCONFIGURED",
               {"type": "string", "pattern": "^[A-Za-z_, ]*$"}),
        _query("type", f"only hosts of these TYPEs, any case ({listed}; {NONE}: no TYPE)",
               _TEXT),
        _query("profile", f"only hosts of these PROFILEs, any case ({listed})", _TEXT),
        _query("stuck", "1: only stuck hosts (docs/stuck.md: install too long, boot loop, ...)",
               {"type": "string", "enum": ["", "0", "1"]}),
        _query("selftest", "only hosts whose last self-test result is this",
               {"type": "string", "enum": ["", *SELFTEST_FILTERS]}),
        _query("sort", f"a column ({', '.join(SORTS)}), -column for descending; default "
               f"{DEFAULT_SORT}", {"type": "string", "enum": [
                   "", *SORTS, *(f"-{name}" for name in SORTS)]}),
        _query("page", "page number, from 1 (past the last page: no hosts)",
               {"type": "string", "pattern": "^[0-9]{0,9}$"}),
        _query("per_page", f"hosts per page, 1-{MAX_PER_PAGE} (absent: every host)",
               {"type": "string", "pattern": "^[0-9]{0,4}$"}),
    ]


def _object(properties: dict[str, Schema], *, optional: Iterable[str] = ()) -> Schema:
    """Return an object schema whose properties are always present, but the `optional` ones."""
    left_out = set(optional)
    return {"type": "object", "required": [p for p in properties if p not in left_out],
            "properties": properties}


def _op(operation_id: str, summary: str, data: Schema, *, params: Iterable[Schema] = (),
        body: Schema | None = None, errors: Iterable[int] = (400, 403, 404, 503),
        status: int = 200, public: bool = False) -> dict[str, Any]:
    """Return an operation answering `{"ok": true, "data": <data>}` with `status`."""
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if public:
        operation["security"] = []
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = body
    responses: dict[str, Any] = {str(status): {"description": "done", "content": {
        "application/json": {"schema": _envelope(data)}}}}
    responses.update({str(code): _ref("responses", ERROR_RESPONSES[code]) for code in errors})
    operation["responses"] = responses
    return operation


def _envelope(data: Schema) -> Schema:
    return {"type": "object", "required": ["ok", "data"],
            "properties": {"ok": {"type": "boolean", "enum": [True]}, "data": data}}


def _json_body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _path(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


def _ref(section: str, name: str) -> Schema:
    return {"$ref": f"#/components/{section}/{name}"}


# --- the legacy endpoint (docs/api.md §1) ---------------------------------------------------

_LEGACY_PARAMS = {
    "cmd": "the command: init, determine_state, set_status, host_variable, cluster_variable, "
           "os_variable, host_get_config, config_host, process_menu_item, log_message, "
           "host_audit, kickstart, selftest_report, ... (docs/api.md §1)",
    "mac": "the host (accepted when no verified source knows the caller; admins: any host)",
    "name": "key name (host_variable, cluster_variable, os_variable)",
    "value": "value to set (present, even empty: set)",
    "action": "`unset` to remove the key (host_variable)",
    "status": "new STATE (set_status)",
    "os_id": "`<arch>:<name>:<version>` (os_variable)",
    "message": "log line (log_message)",
    "function": "the node function that logs (log_message)",
    "session": "boot session id",
    "job": "a storage job's id (storage_report)",
    "lun": "`<ip>:<port>:<iqn>` of the volume made (storage_report, status=ok)",
    "size": "the volume's bytes (storage_report, status=ok)",
    "detail": "why the job failed (storage_report, status=failed)",
    "format": "answer format: ipxe, json, text, html or sh; without it (and without via=cli "
              "or Accept: application/json) a success body is the old text, and script-like "
              "answers (iPXE scripts, node library, kickstart, apkovl) change only for json",
    "via": "client type override: ipxe, cli (JSON), browser or script",
    "client": "the same as `via=`",
}


_LEGACY_SCHEMAS = {"mac": {"type": "string", "pattern": f"^(?:{_MAC_PATTERN[1:-1]})?$"}}


def _legacy_paths() -> dict[str, Any]:
    return {path: _legacy_item(path, index) for index, path in enumerate(LEGACY_PATHS)}


def _legacy_item(path: str, index: int) -> dict[str, Any]:
    suffix = "" if index == 0 else f"Alias{index}"
    alias = "" if index == 0 else f" (alias of {LEGACY_PATHS[0]})"
    parameters = [_query(name, text, _LEGACY_SCHEMAS.get(name, _TEXT))
                  for name, text in _LEGACY_PARAMS.items()]
    parameters[0]["required"] = True
    responses = {"200": {"description": "the bare value and a newline (text, the default for "
                                        "curl and wget), an iPXE script (iPXE clients: errors "
                                        "too, as HTTP 200), JSON when asked for, or HTML",
                         "content": {"text/plain": {"schema": _TEXT},
                                     "application/json": {"schema": _envelope({})},
                                     "text/html": {"schema": _TEXT}}}}
    responses.update({str(code): {"description": _ERROR_TEXT[code], "content": {
        "text/plain": {"schema": _TEXT},
        "text/html": {"schema": _TEXT},
        "application/json": {"schema": _ref("schemas", "Error")}}}
        for code in (400, 403, 404, 409, 413, 503)})
    common = {"security": [{}, {"bearerAuth": []}], "parameters": parameters,
              "responses": responses}
    form = {"content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "additionalProperties": _TEXT}}}}
    return {
        "get": {"operationId": f"legacyCommand{suffix}", "summary": f"Run cmd={alias}",
                **common},
        "post": {"operationId": f"legacyCommandPost{suffix}",
                 "summary": f"Run cmd= with form parameters (the query string wins){alias}",
                 "requestBody": form, **common},
    }


# --- components -----------------------------------------------------------------------------

def _components() -> dict[str, Any]:
    return {
        "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer",
            "description": "HPS_ADMIN_TOKEN (requests from loopback need no token)"}},
        "parameters": {
            "name": _path("name", "cluster name", {"type": "string",
                                                   "pattern": _CLUSTER_PATTERN}),
            "key": _path("key", "key name, any case (stored upper-case)",
                         {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                          "maxLength": 128}),
            "mac": _path("mac", "MAC in any common spelling, exactly (nothing around it): "
                         "52:54:00:aa:bb:01, 52-54-00-aa-bb-01, 5254.00aa.bb01, 525400aabb01",
                         {"type": "string", "pattern": _MAC_PATTERN}),
            "cluster": _query("cluster", "cluster to use instead of the active one (empty: the "
                              "active one)", {"type": "string",
                                              "pattern": f"^(?:{_CLUSTER_PATTERN[1:-1]})?$"}),
        },
        "schemas": _schemas(),
        "responses": {
            ERROR_RESPONSES[code]: {"description": _ERROR_TEXT[code], "content": {
                "application/json": {"schema": _ref("schemas", "Error")}}}
            for code in ERROR_RESPONSES},
    }


def _schemas() -> dict[str, Any]:
    text_map: Schema = {"type": "object", "additionalProperties": _TEXT}
    return {
        "Error": {"type": "object", "required": ["ok", "error"], "properties": {
            "ok": {"type": "boolean", "enum": [False]},
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "integer"}, "message": _TEXT}}}},
        "Record": {**text_map, "description": "KEY: value pairs of one record"},
        "ValueBody": {"type": "object", "required": ["value"], "additionalProperties": False,
                      "properties": {"value": {
                          **_TEXT, "maxLength": MAX_VALUE_BYTES,
                          "description": "no control characters, at most 64 KiB of UTF-8"}}},
        "NewCluster": {"type": "object", "required": ["name"], "additionalProperties": False,
                       "properties": {
                           "name": {"type": "string", "pattern": _CLUSTER_PATTERN},
                           "config": {**text_map, "description": "initial keys (not NAME, "
                                                                 "CREATED, UPDATED)"}}},
        "Configure": {"type": "object", "required": ["type"], "additionalProperties": False,
                      "properties": {"type": {**_TEXT, "description": "a host type: SCH, TCH..."},
                                     "profile": {**_TEXT, "description": "default: DEFAULT"}}},
        "KeyResult": _object({
            "cluster": _TEXT, "mac": {**_TEXT, "description": "host keys only"}, "key": _TEXT,
            "value": {**_NULLABLE_TEXT, "description": "null once removed"},
            "record": _ref("schemas", "Record")}, optional=["mac"]),
        "Cluster": _object({"name": _TEXT, "active": {"type": "boolean"},
                            "hosts": {"type": "integer"}}),
        "HostSummary": _object({
            "mac": _TEXT, **dict.fromkeys(SUMMARY_COLUMNS, _NULLABLE_TEXT),
            "error": {**_TEXT, "description": "only when the record cannot be read"}},
            optional=["error"]),
        "Host": _object({"mac": _TEXT, "cluster": _TEXT, "record": _ref("schemas", "Record"),
                         "summary": _ref("schemas", "HostSummary")}),
        "BootExplained": _object({
            "mac": _TEXT, "cluster": _TEXT, "state": _NULLABLE_TEXT, "type": _NULLABLE_TEXT,
            "profile": _NULLABLE_TEXT, "os_id": _NULLABLE_TEXT, "action": _TEXT,
            "template": _TEXT, "reason": _TEXT, "script": _TEXT,
            "changes": {"type": "object", "additionalProperties": _NULLABLE_TEXT,
                        "description": "what init would write (null: remove the key)"}}),
        "Change": _object({"time": _TEXT, "record": _TEXT, "key": _TEXT, "old": _NULLABLE_TEXT,
                           "new": _NULLABLE_TEXT, "actor": _TEXT}),
        "Health": _object({
            "status": {"type": "string", "enum": ["ok", "degraded"]}, "version": _TEXT,
            "active_cluster": _NULLABLE_TEXT,
            "selftest": _object({
                "result": {"type": "string", "enum": ["pass", "fail"]},
                "checks": {"type": "array", "items": _object({
                    "name": _TEXT, "ok": {"type": "boolean"}, "detail": _TEXT})}})},
            optional=["selftest"]),
        **_power_schemas(),
        **_storage_schemas(),
    }


def _storage_schemas() -> dict[str, Any]:
    size = {"type": "string", "pattern": "^[1-9][0-9]{0,8}[KMGTkmgt]$",
            "description": "a whole number and K, M, G or T (powers of 1024): 40G, 512M"}
    volume = {"iqn": _TEXT, "volume": _TEXT, "size": _TEXT, "bytes": {"type": "integer"},
              "storage_host": _TEXT, "portal": _TEXT, "host": _TEXT,
              "slot": {"type": "integer"}, "used_by": {"type": "array", "items": _TEXT}}
    return {
        "StorageJob": _object({
            "id": _TEXT, "storage_host": _TEXT,
            "action": {"type": "string", "enum": ["provision", "expand", "delete"]},
            "volume": _TEXT, "size": _NULLABLE_TEXT, "iqn": _TEXT,
            "initiator": _NULLABLE_TEXT, "host": _TEXT, "slot": {"type": "integer"},
            "state": {"type": "string", "enum": ["queued", "handed", "failed"]},
            "handed": {"type": "integer"}, "detail": _NULLABLE_TEXT}),
        "StoragePlan": _object({
            "mac": _TEXT, "cluster": _TEXT,
            "jobs": {"type": "array", "items": _ref("schemas", "StorageJob")},
            "choice": {"type": "array", "items": _TEXT}}),
        "StorageVolume": _object({**volume, "jobs": {
            "type": "array", "items": _ref("schemas", "StorageJob")}}, optional=["jobs"]),
        "StorageListing": _object({
            "cluster": _TEXT,
            "storage_hosts": {"type": "array", "items": _object({
                "mac": _TEXT, "hostname": _NULLABLE_TEXT,
                "free": {"type": "integer", "nullable": True}, "pool": _NULLABLE_TEXT,
                "volumes": {"type": "integer"}, "jobs": {"type": "integer"}})},
            "volumes": {"type": "array", "items": _ref("schemas", "StorageVolume")},
            "jobs": {"type": "array", "items": _ref("schemas", "StorageJob")}}),
        "ProvisionBody": {"type": "object", "required": ["mac", "size"],
                          "additionalProperties": False, "properties": {
                              "mac": {**_TEXT, "description": "the thin host (TYPE TCH)"},
                              "size": size}},
        "SizeBody": {"type": "object", "required": ["size"], "additionalProperties": False,
                     "properties": {"size": size}},
    }


def _power_schemas() -> dict[str, Any]:
    bmc = _object({
        "driver": {"type": "string", "enum": list(BMC_DRIVERS)}, "address": _TEXT,
        "system_id": _NULLABLE_TEXT, "username": _NULLABLE_TEXT,
        "password_set": {"type": "boolean"}, "insecure": {"type": "boolean"}})
    return {
        "PowerBody": {"type": "object", "required": ["action"], "additionalProperties": False,
                      "properties": {"action": {"type": "string", "enum": list(POWER_ACTIONS)}}},
        "PowerAction": _object({
            "id": _TEXT, "cluster": _TEXT, "mac": _TEXT, "action": _TEXT,
            "steps": {"type": "array", "items": _TEXT}, "actor": _TEXT,
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "message": _TEXT, "state": {**_NULLABLE_TEXT, "description": "on, off or unknown"},
            "attempts": {"type": "integer"}, "created": _TEXT, "started": _NULLABLE_TEXT,
            "finished": _NULLABLE_TEXT}),
        "PowerState": _object({
            "mac": _TEXT, "cluster": _TEXT, "bmc": {**bmc, "nullable": True},
            "state": {**_NULLABLE_TEXT, "description": "on, off, unknown; null: never read"},
            "checked": _NULLABLE_TEXT, "error": _NULLABLE_TEXT, "source": _NULLABLE_TEXT}),
        "BmcBody": {"type": "object", "required": ["driver", "address"],
                    "additionalProperties": False, "properties": {
                        "driver": {"type": "string", "enum": list(BMC_DRIVERS)},
                        "address": {**_TEXT, "description": "redfish: https://HOST[:PORT]; "
                                    "ipmi: HOST[:PORT]; wol: BROADCAST[:PORT]"},
                        "system_id": {**_TEXT, "description": "Redfish system id"},
                        "username": _TEXT,
                        "password": {**_TEXT, "writeOnly": True},
                        "insecure": {"type": "boolean",
                                     "description": "Redfish: skip the TLS certificate check"}}},
        "BmcResult": _object({"mac": _TEXT, "cluster": _TEXT, "bmc": bmc}),
    }

"""Storage endpoints of `/api/v1` (docs/storage-hosts.md): thin hosts' iSCSI disks, admin-only
like the rest of the API. Each handler parses the request and calls one operation of
hps_api.ops.storage; the storage hosts themselves use the legacy commands `storage_work` and
`storage_report`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from hps_api.ops import storage as storage_ops
from hps_api.store import Store
from hps_api.web.api import PREFIX, _admin_only, _log_change
from hps_api.web.params import TEXT, json_object, require_json
from hps_api.web.respond import json_response
from hps_api.web.runtime import runtime

bp = Blueprint("storage", __name__, url_prefix=PREFIX)
bp.before_request(_admin_only)
bp.after_request(_log_change)
PROVISION_BODY = {"mac": (True, TEXT), "size": (True, TEXT)}
SIZE_BODY = {"size": (True, TEXT)}


@bp.get("/storage")
def listing() -> Response:
    """The storage hosts (free space, pool), their volumes and their queued jobs."""
    return json_response(storage_ops.listing(_store(), _cluster()))


@bp.get("/storage/volumes/<iqn>")
def volume(iqn: str) -> Response:
    """One volume: size, storage host, portal, who uses it, its queued jobs."""
    return json_response(storage_ops.show(_store(), _cluster(), iqn))


@bp.post("/storage/provision")
def provision() -> Response:
    """Queue a thin host's root disk from `{"mac": ..., "size": "40G"}`: 202 with the jobs and
    the choice of storage host in words (409 saying why when no storage host has room)."""
    body = _body(PROVISION_BODY)
    plan = storage_ops.provision(_store(), _cluster(), body["mac"], body["size"],
                                 g.caller.actor)
    return json_response(plan, 202)


@bp.post("/storage/volumes/<iqn>/expand")
def expand(iqn: str) -> Response:
    """Queue the growth of a volume to `{"size": "60G"}`: 202 with the job."""
    body = _body(SIZE_BODY)
    return json_response(storage_ops.expand(_store(), _cluster(), iqn, body["size"],
                                            g.caller.actor), 202)


@bp.post("/storage/volumes/<iqn>/delete")
def delete(iqn: str) -> Response:
    """Queue the deletion of a volume: 202 with the job (409 while a host's ISCSI_ROOT_<i>
    names it)."""
    return json_response(storage_ops.delete(_store(), _cluster(), iqn, g.caller.actor), 202)


def _body(fields: dict[str, tuple[bool, str]]) -> dict[str, str]:
    require_json(request.mimetype, request.mimetype_params)
    return json_object(request.get_data(cache=False), fields)


def _store() -> Store:
    return runtime().store


def _cluster() -> str:
    return request.args.get("cluster") or runtime().active_cluster()

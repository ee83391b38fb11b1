"""The JSON API under `/api/v1` (api.md §5)."""

from __future__ import annotations

from flask import Blueprint, Response, g, request

from hps_api import __version__
from hps_api.errors import NotFound
from hps_api.render.negotiate import Client, Negotiated, client_from_agent
from hps_api.web.respond import json_response
from hps_api.web.runtime import runtime

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _json_only() -> None:
    """The API always answers JSON, errors included."""
    agent = request.headers.get("User-Agent", "")
    client = client_from_agent(agent) if agent else Client.SCRIPT
    g.negotiated = Negotiated(client, "json")


@bp.get("/health")
def health() -> Response:
    """Anyone: status, version and the active cluster."""
    rt = runtime()
    try:
        active: str | None = rt.active_cluster()
    except NotFound:
        active = None
    return json_response({"status": "ok" if active else "degraded", "version": __version__,
                          "active_cluster": active})

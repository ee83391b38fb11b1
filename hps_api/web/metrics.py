"""`/metrics` (docs/api.md §9) and the counting of every request the app answers.

What a request says is folded here into the few label values hps_api.observe.metrics keeps:
the endpoint is the blueprint that answered (`none` when no route matched), the command a name
of `hps_api.commands.COMMANDS` (`other` for any other `cmd=`, `none` without one or off the
legacy endpoint), the client type the negotiation found (docs/api.md §3), with command-line
clients told apart by their User-Agent: ipxe, curl, wget, browser, other.

`/metrics` is readable by whoever may read the pages: it runs the pages' own request checks
(the before-request functions of hps_api.web.ui) before it answers, so a refusal there is the
same refusal here. It reads no parameter, so a query string of any kind changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, Flask, Request, Response, current_app, g, request
from flask.typing import ResponseReturnValue

from hps_api.commands import COMMANDS
from hps_api.observe import metrics
from hps_api.ops.stuck import find_stuck
from hps_api.render.negotiate import Client, Negotiated, client_from_agent
from hps_api.store import Store
from hps_api.web.pages import host_index

bp = Blueprint("metrics", __name__)
PATH = "/metrics"
HOSTS_EXTENSION = "hps_host_counts"
_CLIENT_LABELS = {Client.IPXE: "ipxe", Client.BROWSER: "browser"}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def install(app: Flask, store: Store) -> None:
    """Count every request `app` answers and serve `/metrics`.

    Called before any other blueprint is registered, so the clock starts before any other
    before-request function runs (one of them may refuse the request).
    """
    metrics.enable()
    app.extensions[HOSTS_EXTENSION] = metrics.HostCounts(store, stuck=lambda cluster: find_stuck(
        store, cluster, index=host_index()).counts())
    app.before_request(_start_clock)
    app.after_request(_count)
    app.register_blueprint(bp)
    app.wsgi_app = _without_query(app.wsgi_app)  # type: ignore[method-assign,assignment]


@bp.before_request
def _readers_only() -> ResponseReturnValue | None:
    """Refuse whom the pages refuse, as they refuse them."""
    for check in current_app.before_request_funcs.get("ui", ()):
        answer: ResponseReturnValue | None = current_app.ensure_sync(check)()
        if answer is not None:
            return answer
    return None


@bp.get(PATH)
def metrics_text() -> Response:
    """Every metric in the Prometheus text format."""
    body = metrics.exposition(current_app.extensions[HOSTS_EXTENSION])
    return Response(body, 200, content_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


def _without_query(wsgi_app: WSGIApp) -> WSGIApp:
    """Return `wsgi_app` with the query string of `/metrics` dropped: the legacy parameters'
    check refuses some query strings on every path (not UTF-8, longer than 8 KiB), and
    `/metrics` reads none, so it answers as it would without one."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == PATH:
            environ["QUERY_STRING"] = ""
        return wsgi_app(environ, start_response)

    return app


def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    # g and request looked up once each: every access through Flask's proxies costs a lookup
    state = g._get_current_object()
    this: Request = request._get_current_object()  # type: ignore[attr-defined]
    started = getattr(state, "metrics_started", None)
    if started is not None:
        count(this.blueprint or "none", getattr(state, "params", None),
              getattr(state, "negotiated", None), this.environ, response.status_code, started)
    return response


def count(endpoint: str, params: dict[str, str] | None, negotiated: Negotiated | None,
          environ: Mapping[str, Any], status: int, started: float) -> None:
    """Count one answered request of `endpoint` (a blueprint's name), begun at `started`
    (`time.perf_counter`); the label values folded as the module docstring says."""
    metrics.count_request(endpoint, command_label(endpoint, params),
                          client_label(negotiated, environ.get("HTTP_USER_AGENT", "")),
                          str(status), time.perf_counter() - started)


def command_label(endpoint: str, params: dict[str, str] | None) -> str:
    """Return the `command` label: a known `cmd=`, `other`, or `none`."""
    if endpoint != "legacy" or not params or not params.get("cmd"):
        return "none"
    name = params["cmd"]
    return name if name in COMMANDS else "other"


def client_label(negotiated: Negotiated | None, agent: str) -> str:
    """Return the `client` label: ipxe, curl, wget, browser or other."""
    client = negotiated.client if negotiated else client_from_agent(agent)
    if client is Client.CLI:
        if agent.startswith("curl/"):
            return "curl"
        if agent.startswith("Wget"):  # GNU wget (`Wget/1.21.3`) and busybox wget (`Wget`)
            return "wget"
    return _CLIENT_LABELS.get(client, "other")

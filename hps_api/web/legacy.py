"""The legacy command endpoint `/cgi-bin/boot_manager.sh?cmd=...` (and its aliases).

The handler decodes parameters, negotiates the format, identifies the caller, runs one command
and renders its reply; everything else lives in `hps_api.commands`. Old clients write with GET,
so a request that looks like a web browser's may only read (any page on any site can make the
operator's browser send a GET), and the login cookie counts for nothing here.

Two ways in, one handler. Every client of the boot path asks with GET (iPXE, curl, wget,
dracut, `eval "$(curl ...)"`), a boot storm asks thousands of times a second, and the answer
needs nothing of Flask's: no route beyond these paths, no session, no blueprint hook. So
`door` serves GET and HEAD on PATHS straight from the WSGI environ, in front of the Flask app:
the same decoding (`_decode`), caller (`caller_of`), command (`_run`), rendering, error answers
(hps_api.web.failures) and request metrics as the Flask route, without Flask's request context,
URL matching and hooks, which cost more than the command itself for a `determine_state`
(docs/performance.md, "Decisions: the GET door"). A POST (a form body, Flask's body
limit) and any other method go on to the Flask app, whose route below answers a POST the same
way and the other methods with 405 (OPTIONS with the methods allowed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Blueprint, Flask, Response, g, request

from hps_api.commands import COMMANDS, SCRIPT_COMMANDS, writes
from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import Forbidden, InvalidInput, NotFound
from hps_api.net.identity import Caller
from hps_api.observe import eventlog
from hps_api.render.negotiate import Negotiated, negotiate
from hps_api.web import metrics as request_metrics
from hps_api.web.caller import caller_of, environ_looks_like_browser
from hps_api.web.failures import Failed, error_answer
from hps_api.web.params import MAX_QUERY_BYTES, merge, parse_pairs
from hps_api.web.respond import base_url, reply_response
from hps_api.web.runtime import Runtime, runtime

bp = Blueprint("legacy", __name__)
PATHS = ("/cgi-bin/boot_manager.sh", "/boot_manager", "/api/cgi")
#: what the door serves itself; anything else on PATHS goes on to the Flask route
DOOR_METHODS = frozenset({"GET", "HEAD"})
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Handler = Callable[[CommandContext], Reply]


@bp.before_app_request
def _negotiate() -> None:
    """Decode parameters and pick the format before anything can fail (errors need it)."""
    g.params = {}
    raw_query = request.query_string
    g.params, g.negotiated = _decode(raw_query, request.environ)
    _check_length(raw_query)


def command() -> Response:
    """Run the `cmd=` command for the caller and answer in the negotiated format (the Flask
    route: a POST, whose form fields join the query's)."""
    form = parse_pairs(request.get_data(cache=False)) if request.method == "POST" else {}
    params = merge(g.params, form)
    g.params = params
    environ = request.environ
    name, handler, browser = _command_of(params, environ)
    rt = runtime()
    caller = caller_of(environ, rt, params.get("mac"), browser=browser)
    g.caller = caller
    return _run(rt, name, handler, params, g.negotiated, caller, base_url(environ))


for _path in PATHS:
    bp.add_url_rule(_path, view_func=command, methods=["GET", "POST"],
                    endpoint=f"command{PATHS.index(_path)}")


def door(app: Flask) -> WSGIApp:
    """Return `app.wsgi_app` with GET and HEAD on PATHS served in front of it (see the module
    docstring); install it last, over every other wrapper."""
    inner: WSGIApp = app.wsgi_app
    rt: Runtime = app.extensions["hps"]
    counting = rt.settings.metrics

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in DOOR_METHODS or _request_path(environ) not in PATHS:
            return inner(environ, start_response)
        started = time.perf_counter()
        response, params, negotiated = _serve(rt, environ)
        if counting:
            request_metrics.count("legacy", params, negotiated, environ, response.status_code,
                                  started)
        return response(environ, start_response)

    return wsgi


def _serve(rt: Runtime, environ: dict[str, Any]) -> tuple[Response, dict[str, str],
                                                          Negotiated | None]:
    """Answer one GET of the door: the Flask route's steps, errors answered as Flask's are."""
    params: dict[str, str] = {}
    negotiated: Negotiated | None = None
    caller: Caller | None = None
    url = base_url(environ)
    try:
        raw_query = environ.get("QUERY_STRING", "").encode("latin-1")
        params, negotiated = _decode(raw_query, environ)
        _check_length(raw_query)
        name, handler, browser = _command_of(params, environ)
        caller = caller_of(environ, rt, params.get("mac"), browser=browser)
        return _run(rt, name, handler, params, negotiated, caller, url), params, negotiated
    except Exception as error:  # every error is answered, as Flask's handler does
        failed = Failed(environ, _request_path(environ), rt.settings, negotiated, negotiated,
                        caller, params, url)
        return error_answer(error, failed), params, negotiated


def _request_path(environ: Mapping[str, Any]) -> str:
    """Return the request's path as Flask matches it (leading slashes folded into one)."""
    return "/" + (environ.get("PATH_INFO") or "").lstrip("/")


def _decode(raw_query: bytes, environ: Mapping[str, Any]) -> tuple[dict[str, str], Negotiated]:
    """Return the query's parameters (its first MAX_QUERY_BYTES) and the format they and the
    headers negotiate; InvalidInput for a query that is not UTF-8 or not well formed."""
    query = parse_pairs(raw_query[:MAX_QUERY_BYTES])
    return query, negotiate(query, environ.get("HTTP_ACCEPT", ""),
                            environ.get("HTTP_USER_AGENT", ""))


def _check_length(raw_query: bytes) -> None:
    if len(raw_query) > MAX_QUERY_BYTES:
        raise InvalidInput(f"query string longer than {MAX_QUERY_BYTES} bytes")


def _command_of(params: Mapping[str, str], environ: Mapping[str, Any]) -> tuple[str, Handler,
                                                                               bool]:
    """Return the command's name and handler, and whether a browser asks; InvalidInput without
    `cmd=`, NotFound for an unknown one, Forbidden for a browser's write."""
    name = params.get("cmd", "")
    if not name:
        raise InvalidInput("Param 'cmd' is required")
    handler = COMMANDS.get(name)
    if handler is None:
        raise NotFound(f"Unknown or unsupported command: {eventlog.clean(name)[:64]}")
    browser = environ_looks_like_browser(environ)
    if browser and writes(name, params):
        raise Forbidden(f"cmd={name} changes state and is not run for a web browser (any site "
                        "can make a browser send it): use the pages or a command-line client")
    return name, handler, browser


def _run(rt: Runtime, name: str, handler: Handler, params: dict[str, str],
         negotiated: Negotiated, caller: Caller, url: str) -> Response:
    """Run the command for `caller` and return its answer (one event line per request: the
    command's own, else this one)."""
    ctx = CommandContext(name, params, caller, rt.store, rt.settings, rt.active_cluster(),
                         negotiated, url)
    logged = eventlog.written()
    reply = handler(ctx)
    if eventlog.written() == logged:
        eventlog.event(logging.INFO, f"cmd={name} ok", host=caller.label,
                       session=ctx.session, client=negotiated.client.value)
    return reply_response(reply, negotiated, mac=caller.mac, script=name in SCRIPT_COMMANDS)

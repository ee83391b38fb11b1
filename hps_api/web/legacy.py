"""The legacy command endpoint `/cgi-bin/boot_manager.sh?cmd=...` (and its aliases).

The handler decodes parameters, negotiates the format, identifies the caller, runs one command
and renders its reply; everything else lives in `hps_api.commands`. Old clients write with GET,
so a request that looks like a web browser's may only read (any page on any site can make the
operator's browser send a GET), and the login cookie counts for nothing here.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from hps_api.commands import COMMANDS, SCRIPT_COMMANDS, writes
from hps_api.commands.base import CommandContext
from hps_api.errors import Forbidden, InvalidInput, NotFound
from hps_api.observe import eventlog
from hps_api.render.negotiate import negotiate
from hps_api.web.caller import current_caller, environ_looks_like_browser
from hps_api.web.params import MAX_QUERY_BYTES, merge, parse_pairs
from hps_api.web.respond import base_url, reply_response
from hps_api.web.runtime import runtime

bp = Blueprint("legacy", __name__)
PATHS = ("/cgi-bin/boot_manager.sh", "/boot_manager", "/api/cgi")


@bp.before_app_request
def _negotiate() -> None:
    """Decode parameters and pick the format before anything can fail (errors need it)."""
    g.params = {}
    raw_query = request.query_string
    query = parse_pairs(raw_query[:MAX_QUERY_BYTES])
    environ = request.environ
    g.negotiated = negotiate(query, environ.get("HTTP_ACCEPT", ""),
                             environ.get("HTTP_USER_AGENT", ""))
    g.params = query
    if len(raw_query) > MAX_QUERY_BYTES:
        raise InvalidInput(f"query string longer than {MAX_QUERY_BYTES} bytes")


def command() -> Response:
    """Run the `cmd=` command for the caller and answer in the negotiated format."""
    form = parse_pairs(request.get_data(cache=False)) if request.method == "POST" else {}
    params = merge(g.params, form)
    g.params = params
    negotiated = g.negotiated
    name = params.get("cmd", "")
    if not name:
        raise InvalidInput("Param 'cmd' is required")
    handler = COMMANDS.get(name)
    if handler is None:
        raise NotFound(f"Unknown or unsupported command: {eventlog.clean(name)[:64]}")
    browser = environ_looks_like_browser(request.environ)
    if browser and writes(name, params):
        raise Forbidden(f"cmd={name} changes state and is not run for a web browser (any site "
                        "can make a browser send it): use the pages or a command-line client")
    rt = runtime()
    caller = current_caller(params.get("mac"), sessions=False, browser=browser)
    g.caller = caller
    ctx = CommandContext(name, params, caller, rt.store, rt.settings, rt.active_cluster(),
                         negotiated, base_url())
    logged = eventlog.written()
    reply = handler(ctx)
    if eventlog.written() == logged:  # one line per request: the command's own, else this one
        eventlog.event(logging.INFO, f"cmd={name} ok", host=caller.label,
                       session=ctx.session, client=negotiated.client.value)
    return reply_response(reply, negotiated, mac=caller.mac, script=name in SCRIPT_COMMANDS)


for _path in PATHS:
    bp.add_url_rule(_path, view_func=command, methods=["GET", "POST"],
                    endpoint=f"command{PATHS.index(_path)}")

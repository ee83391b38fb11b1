"""The one place errors become HTTP: a domain error, an HTTP error or a bug, answered in the
format the request negotiated (docs/api.md §2-3) and logged once.

Two doors answer through `error_answer`: the Flask app's error handlers (`install`), and the
legacy endpoint's GET door (hps_api.web.legacy), which serves the boot path without Flask's
request machinery and so hands over what it knows of the request as a `Failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from hps_api.errors import HpsError, StoreUnavailable, http_status
from hps_api.net.identity import Caller
from hps_api.observe import eventlog
from hps_api.render.negotiate import Negotiated, negotiate
from hps_api.settings import Settings
from hps_api.web.respond import error_response, shown_to
from hps_api.web.runtime import runtime

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Failed:
    """What an error's answer needs to know of the request that failed.

    `negotiated` is the answer's format when the request got that far (else the headers decide),
    `logged` the negotiation the log line names the client by, `caller` who was identified
    (their MAC goes in an iPXE retry script; an admin reads the store's paths), `params` the
    decoded query (its `session=` is logged), `url` the request's base URL when known.
    """

    environ: Mapping[str, Any]
    path: str
    settings: Settings
    negotiated: Negotiated | None = None
    logged: Negotiated | None = None
    caller: Caller | None = None
    params: Mapping[str, str] | None = None
    url: str | None = None

    @property
    def mac(self) -> str | None:
        """Return the identified caller's MAC, if any."""
        return self.caller.mac if self.caller else None

    def answer_format(self) -> Negotiated:
        """Return the negotiated format, else the one the headers alone give."""
        return self.negotiated or negotiate({}, self.environ.get("HTTP_ACCEPT", ""),
                                            self.environ.get("HTTP_USER_AGENT", ""))


def error_answer(error: BaseException, failed: Failed) -> Response:
    """Return the answer to `error` and log it: a domain error with its status (the store's
    paths hidden from non-admins), an HTTP error with its own, anything else as a bug (500,
    with its traceback in the log)."""
    if isinstance(error, HpsError):
        return _domain_error(error, failed)
    if isinstance(error, HTTPException):
        return _http_error(error, failed)
    return _bug(error, failed)


def install(app: Flask) -> None:
    """Answer every error of `app` through `error_answer`."""
    app.register_error_handler(HpsError, _flask_answer)
    app.register_error_handler(HTTPException, _flask_answer)
    app.register_error_handler(Exception, _flask_answer)


def _flask_answer(error: Exception) -> Response:
    """Flask's error handler: what the request and `g` know, to `error_answer`. JSON under
    /api/v1 whatever failed first (a bad query string fails before the API's own hook runs)."""
    from hps_api.web import api  # here: the API's module reaches this one through legacy

    logged: Negotiated | None = g.get("negotiated")
    return error_answer(error, Failed(
        request.environ, request.path, runtime().settings, api.negotiated() or logged, logged,
        g.get("caller"), g.get("params")))


def _domain_error(error: HpsError, failed: Failed) -> Response:
    status = http_status(error)
    level = logging.WARNING if status in (403, 409) else logging.INFO
    if isinstance(error, StoreUnavailable):  # an operator must free space or fix the store
        level = logging.ERROR
    _log(failed, level, f"{failed.path} -> {status} {error}")
    return error_response(shown_to(str(error), failed.caller, failed.settings), status,
                          failed.answer_format(), mac=failed.mac, url=failed.url)


def _http_error(error: HTTPException, failed: Failed) -> Response:
    status = error.code or 500
    message = {413: f"request body larger than {MAX_BODY_BYTES} bytes",
               404: f"no such page: {eventlog.clean(failed.path)[:80]}"}.get(
        status, error.description or error.name)
    _log(failed, logging.INFO, f"{failed.path} -> {status} {message}")
    response = error_response(message, status, failed.answer_format(), mac=failed.mac,
                              url=failed.url)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))  # RFC 9110 15.5.6
    return response


def _bug(error: BaseException, failed: Failed) -> Response:
    eventlog.event(logging.ERROR, f"internal error on {failed.path}",
                   host=failed.mac or failed.environ.get("REMOTE_ADDR"), error=error)
    return error_response("internal error", 500, failed.answer_format(), mac=failed.mac,
                          url=failed.url)


def _log(failed: Failed, level: int, message: str) -> None:
    eventlog.event(level, message, host=failed.mac or failed.environ.get("REMOTE_ADDR"),
                   session=(failed.params or {}).get("session"),
                   client=failed.logged.client.value if failed.logged else None)

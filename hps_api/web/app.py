"""`build_app(settings, store)`: the Flask app, its blueprints, the one place errors become HTTP."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from hps_api.errors import HpsError, StoreUnavailable, http_status
from hps_api.net.identity import Neighbours
from hps_api.observe import eventlog
from hps_api.render import ipxe
from hps_api.render.negotiate import Negotiated, negotiate
from hps_api.settings import Settings, load_settings
from hps_api.store import Store, factory
from hps_api.web import api, bootstrap, legacy, login, power, static, storage, ui
from hps_api.web import metrics as request_metrics
from hps_api.web.respond import error_response, shown_to_caller
from hps_api.web.runtime import Runtime

MAX_BODY_BYTES = 1024 * 1024


def build_app(settings: Settings | None = None, store: Store | None = None) -> Flask:
    """Return the WSGI app; settings default to `HPS_*` from `.env` and the environment, the
    store to the one the settings point at (tests pass a fake one: tests/fakes.py)."""
    settings = settings or load_settings()
    app = Flask("hps_api")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    store = store if store is not None else factory.open_store(settings)
    app.extensions["hps"] = Runtime(settings, store,
                                    Neighbours(settings.arp_table, settings.dhcp_leases))
    eventlog.setup(settings.log_dir)
    ipxe.compile_all()  # in gunicorn's preloaded master: every worker inherits them compiled
    if settings.metrics:  # first: its clock starts before any other before-request function
        request_metrics.install(app, store)
    app.register_blueprint(legacy.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(power.bp)
    app.register_blueprint(storage.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(bootstrap.bp)
    app.register_blueprint(static.bp)
    app.register_error_handler(HpsError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _bug)
    return app


def _negotiated() -> Negotiated:
    """Return the answer format: JSON under /api/v1 whatever failed first (a bad query string
    fails before the API's own hook runs), else what the request negotiated."""
    found: Negotiated | None = api.negotiated() or g.get("negotiated")
    return found or negotiate({}, request.headers.get("Accept", ""),
                              request.headers.get("User-Agent", ""))


def _mac() -> str | None:
    caller = g.get("caller")
    return caller.mac if caller else None


def _domain_error(error: HpsError) -> Response:
    status = http_status(error)
    level = logging.WARNING if status in (403, 409) else logging.INFO
    if isinstance(error, StoreUnavailable):  # an operator must free space or fix the store
        level = logging.ERROR
    _log(level, f"{request.path} -> {status} {error}")
    return error_response(shown_to_caller(str(error)), status, _negotiated(), mac=_mac())


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    message = {413: f"request body larger than {MAX_BODY_BYTES} bytes",
               404: f"no such page: {eventlog.clean(request.path)[:80]}"}.get(
        status, error.description or error.name)
    _log(logging.INFO, f"{request.path} -> {status} {message}")
    response = error_response(message, status, _negotiated(), mac=_mac())
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods))  # RFC 9110 15.5.6
    return response


def _bug(error: Exception) -> Response:
    eventlog.event(logging.ERROR, f"internal error on {request.path}",
                   host=_mac() or request.remote_addr, error=error)
    return error_response("internal error", 500, _negotiated(), mac=_mac())


def _log(level: int, message: str) -> None:
    neg = g.get("negotiated")
    eventlog.event(level, message, host=_mac() or request.remote_addr,
                   session=(g.get("params") or {}).get("session"),
                   client=neg.client.value if neg else None)

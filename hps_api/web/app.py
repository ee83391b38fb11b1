"""`build_app(settings, store)`: the Flask app, its blueprints, its error handlers
(hps_api.web.failures) and the legacy endpoint's GET door in front (hps_api.web.legacy)."""

from __future__ import annotations

from flask import Flask

from hps_api.net.identity import Neighbours
from hps_api.observe import eventlog
from hps_api.render import ipxe
from hps_api.settings import Settings, load_settings
from hps_api.store import Store, factory
from hps_api.web import api, bootstrap, failures, legacy, login, power, static, storage, ui
from hps_api.web import metrics as request_metrics
from hps_api.web.failures import MAX_BODY_BYTES
from hps_api.web.runtime import Runtime


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
    failures.install(app)
    app.wsgi_app = legacy.door(app)  # type: ignore[method-assign,assignment]
    return app


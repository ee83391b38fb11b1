"""hps-api: provisioning API for bare-metal clusters.

Importing this package is cheap on purpose: the config CLIs import the store through it and
must start fast, so Flask is only imported when an app is actually built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None) -> Flask:
    """Return the WSGI application (imports Flask lazily; see hps_api.web.app)."""
    from hps_api.web.app import build_app

    return build_app(settings)

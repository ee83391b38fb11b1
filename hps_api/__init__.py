"""hps-api: provisioning API for bare-metal clusters.

Importing this package is cheap on purpose: the config CLIs import the store through it and must
start fast, so nothing here imports Flask.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Any = None) -> "Flask":
    """Return the WSGI app (Flask is imported here, not at package import; see web/app.py)."""
    from hps_api.web.app import build_app

    return build_app(settings)

"""The login session of a request: the `hps_session` cookie and the account it stands for.

The cookie holds a random token; the IPS keeps only its hash (hps_api.ops.accounts). Looked up at
most once per request. `hps_api.web.login` opens and ends sessions; `hps_api.web.caller` asks
here who is logged in.
"""

from __future__ import annotations

from flask import g, request

from hps_api.ops.accounts import Accounts
from hps_api.web.runtime import runtime

COOKIE = "hps_session"
_UNSET = object()


def accounts() -> Accounts:
    """Return the accounts of this IPS."""
    return Accounts(runtime().settings.config_dir)


def session_account() -> str | None:
    """Return the account of this request's session cookie, if it is live."""
    found = g.get("session_account", _UNSET)
    if found is _UNSET:
        token = request.cookies.get(COOKIE, "")
        found = accounts().session_account(token) if token else None
        g.session_account = found
    return found if isinstance(found, str) else None

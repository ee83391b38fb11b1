"""CSRF protection of the admin forms on the pages (docs/api.md §6), without sessions.

A token is `<unix time>.<hex HMAC-SHA256(secret, "<action path>\\n<unix time>")>`: bound to the
one form action it was issued for (`/hosts/525400aabb01/configure`) and valid for
TOKEN_LIFETIME seconds. Nothing is stored per token or per browser, so any gunicorn worker can
check a token another one issued, as long as they share the secret:

- with HPS_ADMIN_TOKEN set, the secret is derived from it (HMAC with a fixed label, so a CSRF
  token reveals nothing usable about the admin token);
- otherwise it is the file `ui-secret` in the config dir: 32 random bytes, created once, mode
  0600, published with `link(2)` so a worker never reads a half-written file;
- if that file can be neither read nor created (read-only config dir), a per-process random
  secret is used and a warning logged: forms then only work with a single worker.

A token proves the form came from a page we served; it is not the admin check (that is
`hps_api.web.caller`), which runs first. `Origin` and `Referer`, when present, must name this
site too: a second, independent line against a cross-site post.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, request

from hps_api.errors import Forbidden
from hps_api.observe import eventlog
from hps_api.settings import Settings
from hps_api.web.caller import same_site

FIELD = "csrf_token"
TOKEN_LIFETIME = 3600
#: tolerated clock difference for a token stamped "in the future" (workers share one clock)
CLOCK_SKEW = 60
SECRET_FILE = "ui-secret"
MISSING = "the form has no CSRF token: reload the page and submit it again"
_LABEL = b"hps-api ui csrf v1"
_EXTENSION = "hps_ui_csrf_secret"


@dataclass(frozen=True)
class Form:
    """A protected form: where it posts and the CSRF token bound to that path."""

    action: str
    token: str


def form(action: str) -> Form:
    """Return a form posting to `action` with a fresh token."""
    return Form(action, token_for(action))


def issue(secret: bytes, action: str, now: float | None = None) -> str:
    """Return a token for the form whose action is the path `action`."""
    stamp = str(int(time.time() if now is None else now))
    return f"{stamp}.{_signature(secret, action, stamp)}"


def check(secret: bytes, action: str, token: str | None, now: float | None = None,
          lifetime: int = TOKEN_LIFETIME) -> None:
    """Return when `token` is a live token for `action`; raise Forbidden saying why not."""
    if not token:
        raise Forbidden(MISSING)
    stamp, _, signature = token.partition(".")
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12 or not signature:
        raise Forbidden("malformed CSRF token: reload the page and submit it again")
    expected = _signature(secret, action, stamp)
    if not hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        raise Forbidden("invalid CSRF token for this action: reload the page and try again")
    age = int(time.time() if now is None else now) - int(stamp)
    if age > lifetime:
        raise Forbidden("the form has expired (its CSRF token is over an hour old): reload it")
    if age < -CLOCK_SKEW:
        raise Forbidden("invalid CSRF token (issued in the future): reload the page")


def check_same_site(origin: str | None, referer: str | None,
                    is_same_site: Callable[[str], bool]) -> None:
    """Raise Forbidden when `Origin` or `Referer` is present and names another site."""
    for name, value in (("Origin", origin), ("Referer", referer)):
        if value and (value == "null" or not is_same_site(value)):
            raise Forbidden(f"cross-site form post refused ({name} is another site)")


def derive_secret(settings: Settings) -> bytes:
    """Return the signing secret for these settings (see the module docstring for the order)."""
    if settings.admin_token:
        return hmac.new(settings.admin_token.encode("utf-8"), _LABEL, hashlib.sha256).digest()
    try:
        return secret_file(settings.config_dir / SECRET_FILE)
    except OSError as err:
        eventlog.event(logging.WARNING, f"no shared CSRF secret ({err}); set HPS_ADMIN_TOKEN "
                       "or make the config dir writable, else admin forms work with one "
                       "worker only")
        return secrets.token_bytes(32)


def secret_file(path: Path) -> bytes:
    """Return the secret kept in `path`, creating it (0600, 32 random bytes) the first time.

    The new file is written under a temporary name and published with `os.link`, which fails
    if another worker won the race: then its secret is read and used. Raises OSError.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # another worker published its secret first: use that one (read below)
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return _read_secret(path)


def app_secret() -> bytes:
    """Return the current app's secret (derived once per process, on first use)."""
    found: bytes | None = current_app.extensions.get(_EXTENSION)
    if found is None:
        from hps_api.web.runtime import runtime

        found = derive_secret(runtime().settings)
        current_app.extensions[_EXTENSION] = found
    return found


def token_for(action: str) -> str:
    """Return a fresh token for a form posting to `action`, signed with the app's secret."""
    return issue(app_secret(), action)


def require_valid_post() -> None:
    """Return when this POST is same-site and carries a live token for its own path.

    Raises Forbidden; the secret is only touched once a token is present.
    """
    check_same_site(request.headers.get("Origin"), request.headers.get("Referer"), same_site)
    token = request.form.get(FIELD)
    if not token:
        raise Forbidden(MISSING)
    check(app_secret(), request.path, token)


def _signature(secret: bytes, action: str, stamp: str) -> str:
    return hmac.new(secret, f"{action}\n{stamp}".encode(), hashlib.sha256).hexdigest()


def _read_secret(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise OSError(f"{path} holds no usable secret")
    return text.encode("ascii")

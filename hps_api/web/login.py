"""Login for operators at their own workstations: `/login`, `/logout`, the session cookie.

Accounts are made on the IPS (`hps-api admin add NAME`) and kept by `hps_api.ops.accounts`. A login
posts the name and password with a CSRF token of the login form (so no other site can log a
browser in under its own account); success sets `hps_session`, a random token that is
`HttpOnly`, `SameSite=Strict` (a cross-site request never carries it) and `Secure` when the page
came over TLS, and lives SESSION_SECONDS. Logout is a CSRF-protected POST that ends the session
on the IPS, not only in the browser. Every login, failure and logout is an event-log line; the
journal names the account of every change made in a session (`admin:<account>`).

The session is honoured by the pages and `/api/v1` (`hps_api.web.caller`), never by the legacy
endpoint, whose GET commands write.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, request

from hps_api.net.identity import client_address
from hps_api.observe import eventlog
from hps_api.ops.accounts import SESSION_SECONDS, LoginRefused
from hps_api.render import html
from hps_api.render.negotiate import Negotiated, client_from_agent
from hps_api.web import csrf
from hps_api.web.respond import MIME, SECURITY_HEADERS
from hps_api.web.runtime import runtime
from hps_api.web.session import COOKIE, accounts, session_account

bp = Blueprint("login", __name__)


@bp.before_request
def _guard() -> None:
    """Pages answer HTML, errors included; every POST carries a live CSRF token."""
    g.negotiated = Negotiated(client_from_agent(request.headers.get("User-Agent", "")), "html")
    if request.method == "POST":
        csrf.require_valid_post()


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/login")
def login_page() -> Response:
    """The login form (or who is logged in, with a logout button)."""
    message = "You are logged out." if request.args.get("out") == "1" else ""
    return _login_page(message, 200)


@bp.post("/login")
def login() -> Response:
    """Check the name and password; on success open a session and go to `next`."""
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    address = client_address(request.remote_addr or "", request.headers.get(
        "X-Forwarded-For", ""), runtime().settings.trusted_proxies)
    keys = [f"account:{name[:64]}", f"address:{address}"]
    store = accounts()
    try:
        store.check_allowed(keys)
    except LoginRefused as refused:
        eventlog.event(logging.WARNING, f"login refused for {name[:64]!r}: {refused}",
                       host=address)
        response = _login_page(str(refused), 429)
        response.headers["Retry-After"] = str(refused.retry_after)
        return response
    if not store.verify(name, password):
        store.record_failure(keys)
        eventlog.event(logging.WARNING, f"failed login for {name[:64]!r}", host=address)
        return _login_page("Wrong account name or password.", 401)
    store.clear_failures(keys)
    token = store.open_session(name)
    eventlog.event(logging.INFO, f"login: admin {name}", host=address)
    response = Response(status=303, headers={"Location": safe_next(
        request.form.get("next", ""))})
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="Strict", secure=request.is_secure)
    return response


@bp.post("/logout")
def logout() -> Response:
    """End the session on the IPS and in the browser."""
    name = session_account()
    accounts().end_session(request.cookies.get(COOKIE, ""))
    if name:
        eventlog.event(logging.INFO, f"logout: admin {name}", host=request.remote_addr)
    response = Response(status=303, headers={"Location": "/login?out=1"})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict",
                           secure=request.is_secure)
    return response


def header_context() -> dict[str, object]:
    """Return what every page's header needs: the account logged in and its logout form."""
    account = session_account()
    return {"account": account, "logout": csrf.form("/logout") if account else None}


def safe_next(target: str) -> str:
    """Return `target` when it is a path on this site (`/hosts/...`), else `/`."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and target.isprintable() \
            and len(target) <= 512:
        return target
    return "/"


def _login_page(message: str, status: int) -> Response:
    page = html.render("login.html", {
        "title": "Log in", "message": message, "login": csrf.form("/login"),
        "next": safe_next(request.values.get("next", "/")), **header_context()})
    return Response(page, status, content_type=MIME["html"])

"""Who sent this request: the one place the web layer identifies callers and admin rights.

An admin is one of:

- a caller with `Authorization: Bearer <HPS_ADMIN_TOKEN>` (scripts, from anywhere);
- a logged-in account (`hps_api.web.login`): the session cookie, on the pages and `/api/v1`,
  never on the legacy endpoint;
- the IPS's own command-line tools on loopback. That right is narrow on purpose (a browser on
  the IPS is also on loopback, and any web site it opens can make it send requests): it is not
  granted to a request that looks like a browser's (`Sec-Fetch-*`, `Origin`, `Referer`, a
  `Mozilla` agent), to one an untrusted proxy forwarded (a local nginx in front of gunicorn
  would otherwise make every LAN caller loopback), nor to one whose `Host` is not a loopback
  name or a name of this IPS (`HPS_ALLOWED_HOSTS`, the bind address, the cluster's DHCP_IP):
  a DNS-rebound name reaching 127.0.0.1 gets no rights.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import request
from werkzeug.datastructures import Headers
from werkzeug.wsgi import get_host

from hps_api.errors import HpsError
from hps_api.net.identity import Caller, client_address, identify, is_loopback
from hps_api.store import RecordId
from hps_api.web.runtime import Runtime, runtime
from hps_api.web.session import session_account

PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
BROWSER_HEADERS = ("Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User",
                   "Origin", "Referer")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: the WSGI environ keys of those headers (`Sec-Fetch-Site` -> HTTP_SEC_FETCH_SITE), which is
#: where werkzeug's request.headers reads them from; read directly, as every request asks
_PROXY_KEYS = tuple("HTTP_" + h.upper().replace("-", "_") for h in PROXY_HEADERS)
_BROWSER_KEYS = tuple("HTTP_" + h.upper().replace("-", "_") for h in BROWSER_HEADERS)


def current_caller(claimed_mac: str | None = None, *, sessions: bool = True,
                   browser: bool | None = None) -> Caller:
    """Return the Caller of this request; Forbidden when `mac=` contradicts a verified MAC.

    `sessions=False` ignores the login cookie (the legacy endpoint, which writes on GET).
    `browser` is `environ_looks_like_browser` of this request when the caller has it already.
    """
    account = session_account() if sessions else None
    return caller_of(request.environ, runtime(), claimed_mac, browser=browser, account=account)


def caller_of(environ: Mapping[str, Any], rt: Runtime, claimed_mac: str | None = None, *,
              browser: bool | None = None, account: str | None = None) -> Caller:
    """Return the Caller of the request with this WSGI environ (`current_caller` without
    Flask's request: the legacy endpoint's door serves its GETs from the environ alone);
    `account` is the logged-in account the caller's session names, if it counts."""
    settings = rt.settings
    remote = client_address(environ.get("REMOTE_ADDR") or "", "", ())
    ip = client_address(remote, environ.get("HTTP_X_FORWARDED_FOR", ""),
                        settings.trusted_proxies)
    proxied = remote not in settings.trusted_proxies and any(
        environ.get(key) for key in _PROXY_KEYS)
    if browser is None:
        browser = environ_looks_like_browser(environ)
    local_admin = (not proxied and not browser and is_loopback(ip)
                   and host_is_ours(get_host(environ), rt))  # type: ignore[arg-type]
    return identify(ip, claimed_mac, environ.get("HTTP_AUTHORIZATION", ""), rt.neighbours,
                    settings.admin_token, local_admin=local_admin, account=account)


def looks_like_browser(headers: Headers | Mapping[str, str]) -> bool:
    """Return True when the request carries what browsers send and command-line clients don't."""
    return (any(headers.get(name) for name in BROWSER_HEADERS)
            or "Mozilla" in headers.get("User-Agent", ""))


def environ_looks_like_browser(environ: Mapping[str, Any]) -> bool:
    """Return `looks_like_browser` of a request's headers, read from its WSGI environ."""
    return (any(environ.get(key) for key in _BROWSER_KEYS)
            or "Mozilla" in environ.get("HTTP_USER_AGENT", ""))


def host_is_ours(host_header: str, rt: Runtime) -> bool:
    """Return True when `Host` names loopback or this IPS (allowed hosts, bind, DHCP_IP)."""
    name = host_name(host_header)
    if not name:
        return False
    if name in LOOPBACK_NAMES or is_loopback(name):
        return True
    return name in allowed_hosts(rt)


def allowed_hosts(rt: Runtime) -> set[str]:
    """Return the names this IPS answers to as itself, lower-case (`rt`: this app's)."""
    names = {h.lower() for h in rt.settings.allowed_hosts}
    names.add(host_name(rt.settings.bind))
    try:
        cluster = rt.store.items(RecordId.of_cluster(rt.active_cluster()))
    except HpsError:  # no cluster yet, or unreadable: only the configured names
        cluster = {}
    if cluster.get("DHCP_IP"):
        names.add(cluster["DHCP_IP"].strip().lower())
    names.discard("")
    names.discard("0.0.0.0")  # noqa: S104 - a wildcard bind names no host
    names.discard("::")
    return names


def host_name(authority: str) -> str:
    """Return the host part of `host[:port]` / `[v6]:port`, lower-case; '' when malformed."""
    text = (authority or "").strip().lower()
    if text.startswith("["):
        inside, sep, _ = text[1:].partition("]")
        return _valid_ip(inside) if sep else ""
    if text.count(":") > 1:
        return _valid_ip(text)
    return text.partition(":")[0]


def cross_site() -> bool:
    """Return True when the browser says this request came from another site.

    `Sec-Fetch-Site` (cross-site, same-site: a sibling host) or an `Origin` naming another
    host and port. The login cookie is `SameSite=Strict` already; this is the second line.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and (origin == "null" or not same_site(origin))


def same_site(origin: str) -> bool:
    """Return True when `Origin` names the host and port this request was sent to."""
    parts = urlsplit(origin)
    return _authority(parts.netloc, parts.scheme) == _authority(request.host, request.scheme)


def _valid_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def _authority(netloc: str, scheme: str) -> str:
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    netloc = netloc.lower()
    return netloc.removesuffix(default) if default else netloc

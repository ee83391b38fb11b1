"""Who sent this request: the one place the web layer identifies callers and admin rights.

The token-less loopback right is for the operator's own tools on the IPS. It is not granted to
a request an untrusted proxy forwarded (a local nginx in front of gunicorn would otherwise make
every LAN caller loopback), nor to one carrying a foreign `Origin` (a web page open in the
operator's browser, posting to the IPS). The bearer token is admin from anywhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import request

from hps_api.identity import Caller, client_address, identify
from hps_api.web.runtime import runtime

PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def current_caller(claimed_mac: str | None = None) -> Caller:
    """Return the Caller of this request; Forbidden when `mac=` contradicts a verified MAC."""
    rt = runtime()
    settings = rt.settings
    remote = request.remote_addr or ""
    ip = client_address(remote, request.headers.get("X-Forwarded-For", ""),
                        settings.trusted_proxies)
    proxied = remote not in settings.trusted_proxies and any(
        request.headers.get(h) for h in PROXY_HEADERS)
    origin = request.headers.get("Origin")
    cross_site = origin is not None and not same_site(origin)
    return identify(ip, claimed_mac, request.headers.get("Authorization", ""), rt.neighbours,
                    settings.admin_token, local_admin=not (proxied or cross_site))


def same_site(origin: str) -> bool:
    """Return True when `Origin` names the host and port this request was sent to."""
    parts = urlsplit(origin)
    return _authority(parts.netloc, parts.scheme) == _authority(request.host, request.scheme)


def _authority(netloc: str, scheme: str) -> str:
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    netloc = netloc.lower()
    return netloc.removesuffix(default) if default else netloc

"""Turning replies and errors into responses in the negotiated format (docs/api.md §2-3)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Response, request
from werkzeug.wsgi import get_host

from hps_api.commands.base import Reply
from hps_api.net.identity import Caller
from hps_api.render import html, ipxe
from hps_api.render.negotiate import Negotiated
from hps_api.settings import Settings

MIME = {
    "ipxe": "text/plain; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "sh": "text/plain; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}
ERROR_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Not allowed",
                409: "Conflict", 413: "Too large", 414: "Too long", 415: "Not JSON",
                500: "Internal error",
                503: "Busy"}
RETRY_SECONDS = 10
#: on every HTML answer, whichever door: no framing (clickjacking of the admin buttons), no
#: inline code, no sniffing; same-origin keeps Origin/Referer on our own posts for the CSRF check
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin keeps Origin/Referer on our own posts, so csrf.check_same_site can use them
    "Referrer-Policy": "same-origin",
}
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def base_url(environ: Mapping[str, Any] | None = None) -> str:
    """Return `http://<host>` as the client reached us (only a well-formed Host is trusted);
    `environ`: of that request, else Flask's current request."""
    environ = request.environ if environ is None else environ
    host = get_host(environ)  # type: ignore[arg-type]
    if not _HOST.match(host or ""):
        host = environ.get("SERVER_NAME", "localhost")
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}"


def reply_response(reply: Reply, negotiated: Negotiated, *, mac: str | None,
                   script: bool = False) -> Response:
    """Return the response for a successful command.

    A `script` answer (iPXE script, shell library, kickstart, archive) is its native text for
    every client; only an explicit `format=json` turns it into JSON.
    """
    fmt = negotiated.format
    native = script and negotiated.requested != "json"
    if reply.binary is not None and native:
        return Response(reply.binary, 200, content_type=reply.content_type)
    if native:
        fmt = "ipxe" if fmt == "ipxe" else "text"
    if fmt == "json":
        return _json({"ok": True, "data": reply.text if reply.data is None else reply.data}, 200)
    if fmt == "html":
        page = html.render("reply.html", {"title": reply.title or "hps-api", "text": reply.text,
                                          "mac": mac})
        return html_response(page, 200)
    if fmt == "ipxe" and not reply.raw:
        answer = reply.ipxe
        rendered = (ipxe.render(answer.template, dict(answer.context)) if answer
                    else ipxe.render_reply(reply.text))
        return Response(rendered, 200, content_type=MIME["ipxe"])
    body = reply.text if reply.raw else reply.text + "\n"
    return Response(body, 200, content_type=MIME[fmt])


def error_response(message: str, status: int, negotiated: Negotiated | None,
                   *, mac: str | None = None, url: str | None = None) -> Response:
    """Return the response for an error: an iPXE retry script (HTTP 200) or the real status;
    `url`: the request's `base_url`, when the caller has it already."""
    fmt = negotiated.error_format if negotiated else "text"
    if fmt == "ipxe":
        script = ipxe.render("error.ipxe", {
            "message": message, "retry_seconds": RETRY_SECONDS,
            "base_url": url or base_url(), "mac": mac,
        })
        return Response(script, 200, content_type=MIME["ipxe"])
    if fmt == "json":
        return _json({"ok": False, "error": {"code": status, "message": message}}, status)
    if fmt == "html":
        page = html.render("error.html", {"title": ERROR_TITLES.get(status, "Error"),
                                          "status": status, "message": message})
        return html_response(page, status)
    return Response(message + "\n", status, content_type=MIME["text"])


def html_response(page: str, status: int) -> Response:
    """Return an HTML answer with the security headers the pages send.

    The same headers on every HTML answer, whichever door it comes from: no framing, no
    inline code, no sniffing, no caching of a page that may show a host's record.
    """
    response = Response(page, status, content_type=MIME["html"])
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    return response


def json_response(data: Any, status: int = 200) -> Response:
    """Return `{"ok": true, "data": ...}`."""
    return _json({"ok": True, "data": data}, status)


def shown_to(message: str, caller: Caller | None, settings: Settings) -> str:
    """Return a message as `caller` may read it: with the store's absolute paths only for an
    admin."""
    if caller is not None and caller.admin:
        return message
    return hide_paths(message, settings)


def hide_paths(text: str, settings: Settings) -> str:
    """Return `text` with the config, resources and log directories named by their setting.

    `/srv/hps-config/clusters/lab/hosts/525400aabb01.conf` becomes
    `$HPS_CONFIG_DIR/clusters/lab/hosts/525400aabb01.conf`: what is wrong stays readable, where
    the store lives on this machine is not told.
    """
    for label, root in _path_labels(settings):
        text = re.sub(re.escape(root) + r"(?![^/\s:'\",;)\]<&])", label, text)
    return text


def _path_labels(settings: Settings) -> list[tuple[str, str]]:
    """Return (label, absolute directory) pairs, longest directory first (nested ones win)."""
    named = {"$HPS_CONFIG_DIR": settings.config_dir, "$HPS_RESOURCES_DIR":
             settings.resources_dir, "$HPS_LOG_DIR": settings.log_dir}
    pairs = {(label, str(spelling)) for label, path in named.items()
             for spelling in (Path(path).absolute(), Path(path).resolve())
             if len(spelling.parts) > 1}
    return sorted(pairs, key=lambda pair: len(pair[1]), reverse=True)


def _json(payload: dict[str, Any], status: int) -> Response:
    try:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # a lone surrogate (`"\ud800"` in a JSON body) echoed in a message: escape everything
        body = json.dumps(payload).encode("ascii")
    return Response(body, status, content_type=MIME["json"])

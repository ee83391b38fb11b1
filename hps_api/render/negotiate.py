"""Who is asking and which rendering they get (docs/api.md §3): a pure function of the request.

On the legacy endpoint a success body is the old text unless the caller explicitly asks for
something else, because that is what every old client parses (`curl -fsSL`, GNU and busybox
wget, dracut's url-lib, `eval "$(curl ...)"`). Order for the success format: `format=` in the
query; `via=`/`client=` (the old override: `cli` asks for JSON); the `Accept` header; the
`User-Agent`'s client type (ipxe -> iPXE script, browser -> html, everything else -> text).

Errors follow the client type instead (the old `cgi_auto_fail`): an iPXE script for iPXE, html
for browsers, JSON for command-line clients (curl, wget, requests, the node library), text
otherwise; an explicit `format=`, `via=` or `Accept` choice wins there too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

FORMATS = ("ipxe", "json", "text", "html", "sh")


class Client(Enum):
    """The kind of client, as far as the request tells."""

    IPXE = "ipxe"
    CLI = "cli"
    BROWSER = "browser"
    SCRIPT = "script"
    UNKNOWN = "unknown"


#: the success format a client type gets when it asks for nothing (`via=` uses OVERRIDE_FORMAT)
CLIENT_FORMAT = {
    Client.IPXE: "ipxe",
    Client.CLI: "text",
    Client.BROWSER: "html",
    Client.SCRIPT: "text",
    Client.UNKNOWN: "text",
}
#: the format of an error body, by client type
CLIENT_ERROR_FORMAT = {**CLIENT_FORMAT, Client.CLI: "json"}
#: what `via=`/`client=` asks for: the old override, where `cli` meant JSON
OVERRIDE_FORMAT = CLIENT_ERROR_FORMAT
_ACCEPT_FORMAT = {"application/json": "json", "text/html": "html", "text/plain": "text"}
_CLI_AGENTS = ("curl/", "Wget", "python-requests/", "hps-node/")
_BROWSER_MARKS = ("Mozilla", "Chrome", "Safari")


@dataclass(frozen=True)
class Negotiated:
    """The client type (for logs and iPXE behaviour) and the formats of the answer.

    `format` is for a success body, `error_format` for an error body; `requested` is the
    `format=` the query named, if any (script-like answers change only for `format=json`).
    """

    client: Client
    format: str
    error_format: str = ""
    requested: str = ""

    def __post_init__(self) -> None:
        if not self.error_format:
            object.__setattr__(self, "error_format", self.format)


def negotiate(params: Mapping[str, str], accept: str, user_agent: str) -> Negotiated:
    """Return the client type and answer formats for a request's parameters and headers."""
    return _negotiated(params.get("format", ""), params.get("via", ""),
                       params.get("client", ""), accept, user_agent)


@lru_cache(maxsize=512)
def _negotiated(format_: str, via: str, client_: str, accept: str,
                user_agent: str) -> Negotiated:
    """`negotiate` of the only inputs it reads, kept per process: a boot wave sends the same
    few User-Agent and Accept headers again and again, and the answer is a frozen value."""
    params = {name: value for name, value in
              (("format", format_), ("via", via), ("client", client_)) if value}
    override = client_from_params(params)
    client = override or client_from_agent(user_agent)
    requested = params.get("format", "").lower()
    if requested in FORMATS:
        return Negotiated(client, requested, _error_format(requested), requested)
    if override:
        return Negotiated(client, OVERRIDE_FORMAT[client])
    from_accept = format_from_accept(accept)
    if from_accept:
        return Negotiated(client, from_accept)
    return Negotiated(client, CLIENT_FORMAT[client], CLIENT_ERROR_FORMAT[client])


def _error_format(requested: str) -> str:
    return "text" if requested == "sh" else requested


def client_from_params(params: Mapping[str, str]) -> Client | None:
    """Return the client named by `via=` or `client=` (the old override), if any."""
    for name in ("via", "client"):
        value = params.get(name, "").lower()
        if value in {"ipxe", "cli", "browser", "script"}:
            return Client(value)
    return None


def client_from_agent(user_agent: str) -> Client:
    """Return the client type a User-Agent header suggests."""
    if not user_agent:
        return Client.SCRIPT
    if "iPXE" in user_agent:
        return Client.IPXE
    if user_agent.startswith(_CLI_AGENTS):
        return Client.CLI
    if any(mark in user_agent for mark in _BROWSER_MARKS):
        return Client.BROWSER
    return Client.UNKNOWN


def format_from_accept(accept: str) -> str | None:
    """Return the format of the most preferred of json/html/text in an Accept header, if any.

    Wildcards (`*/*`, `text/*`) say nothing about what the client wants, so they are ignored.
    """
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *options = (piece.strip() for piece in part.split(";"))
        fmt = _ACCEPT_FORMAT.get(media.lower())
        if fmt is None:
            continue
        quality = _quality(options)
        if quality > 0 and (best is None or (quality, -position) > best[:2]):
            best = (quality, -position, fmt)
    return best[2] if best else None


def _quality(options: list[str]) -> float:
    for option in options:
        name, _, value = option.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0

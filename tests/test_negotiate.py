"""Output negotiation (api.md §3) as a table: query, Accept, User-Agent -> client, format."""

from __future__ import annotations

import pytest

from hps_api.render.negotiate import Client, format_from_accept, negotiate

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("query", "accept", "agent", "client", "fmt"), [
    ({}, "", "iPXE/1.21.1+ (g1234)", Client.IPXE, "ipxe"),
    ({}, "*/*", "curl/8.5.0", Client.CLI, "json"),
    ({}, "", "Wget/1.21", Client.CLI, "json"),
    ({}, "", "python-requests/2.31", Client.CLI, "json"),
    ({}, "text/plain", "hps-node/0.1", Client.CLI, "text"),
    ({}, BROWSER_ACCEPT, CHROME, Client.BROWSER, "html"),
    ({}, "", "", Client.SCRIPT, "text"),
    ({}, "", "anaconda/40.22", Client.UNKNOWN, "text"),
    ({"format": "json"}, "text/html", "iPXE/1.21", Client.IPXE, "json"),
    ({"format": "SH"}, "", "curl/8", Client.CLI, "sh"),
    ({"format": "bogus"}, "", "curl/8", Client.CLI, "json"),
    ({"via": "ipxe"}, "application/json", "curl/8", Client.IPXE, "ipxe"),
    ({"client": "browser"}, "", "", Client.BROWSER, "html"),
    ({"via": "cli"}, "text/html", CHROME, Client.CLI, "json"),
    ({"via": "script"}, "", "curl/8", Client.SCRIPT, "text"),
    ({"via": "nonsense"}, "", "curl/8", Client.CLI, "json"),
    ({}, "application/json", CHROME, Client.BROWSER, "json"),
    ({}, "text/plain", "iPXE/1.21", Client.IPXE, "text"),
])
def test_the_first_matching_rule_picks_the_format(query, accept, agent, client, fmt) -> None:
    result = negotiate(query, accept, agent)
    assert (result.client, result.format) == (client, fmt)


@pytest.mark.parametrize(("accept", "fmt"), [
    ("application/json;q=0.5, text/plain", "text"),
    ("text/plain;q=0.2, application/json;q=0.9", "json"),
    ("text/html;q=0, text/plain", "text"),
    ("*/*", None),
    ("text/*", None),
    ("application/json;q=abc", None),
    ("", None),
])
def test_accept_quality_values_are_honoured(accept: str, fmt: str | None) -> None:
    assert format_from_accept(accept) == fmt

"""Output negotiation (docs/api.md §3) as a table: query, Accept, User-Agent -> client, format."""

from __future__ import annotations

import pytest

from hps_api.render.negotiate import Client, format_from_accept, negotiate

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("query", "accept", "agent", "client", "fmt", "error_fmt"), [
    ({}, "", "iPXE/1.21.1+ (g1234)", Client.IPXE, "ipxe", "ipxe"),
    # what old shell clients send: curl's and wget's default headers get text, errors in JSON
    ({}, "*/*", "curl/8.5.0", Client.CLI, "text", "json"),
    ({}, "*/*", "curl/7.76.1", Client.CLI, "text", "json"),  # dracut's url-lib (Anaconda)
    ({}, "*/*", "Wget/1.21.3", Client.CLI, "text", "json"),
    ({}, "", "Wget", Client.CLI, "text", "json"),  # busybox wget
    ({}, "*/*", "python-requests/2.31", Client.CLI, "text", "json"),
    ({}, "text/plain", "hps-node/0.1", Client.CLI, "text", "text"),
    ({}, BROWSER_ACCEPT, CHROME, Client.BROWSER, "html", "html"),
    ({}, "", "", Client.SCRIPT, "text", "text"),
    ({}, "", "anaconda/40.22", Client.UNKNOWN, "text", "text"),
    # an explicit request wins, for errors too
    ({"format": "json"}, "text/html", "iPXE/1.21", Client.IPXE, "json", "json"),
    ({"format": "SH"}, "", "curl/8", Client.CLI, "sh", "text"),
    ({"format": "text"}, "", "curl/8", Client.CLI, "text", "text"),
    ({"format": "bogus"}, "", "curl/8", Client.CLI, "text", "json"),
    ({"via": "ipxe"}, "application/json", "curl/8", Client.IPXE, "ipxe", "ipxe"),
    ({"client": "browser"}, "", "", Client.BROWSER, "html", "html"),
    ({"via": "cli"}, "text/html", CHROME, Client.CLI, "json", "json"),
    ({"client": "cli"}, "*/*", "curl/8", Client.CLI, "json", "json"),
    ({"via": "script"}, "", "curl/8", Client.SCRIPT, "text", "text"),
    ({"via": "nonsense"}, "", "curl/8", Client.CLI, "text", "json"),
    ({}, "application/json", "curl/8", Client.CLI, "json", "json"),
    ({}, "application/json", CHROME, Client.BROWSER, "json", "json"),
    ({}, "text/plain", "iPXE/1.21", Client.IPXE, "text", "text"),
])
def test_the_first_matching_rule_picks_the_format(query, accept, agent, client, fmt,
                                                  error_fmt) -> None:
    result = negotiate(query, accept, agent)
    assert (result.client, result.format, result.error_format) == (client, fmt, error_fmt)


def test_only_format_in_the_query_is_remembered_as_requested() -> None:
    assert negotiate({"format": "JSON"}, "", "curl/8").requested == "json"
    assert negotiate({"via": "cli"}, "application/json", "curl/8").requested == ""


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


@pytest.mark.parametrize("params", [{}, {"format": "JSON"}, {"via": "cli"}, {"client": "ipxe"},
                                    {"format": "", "via": "browser"}, {"format": "sh"},
                                    {"via": "nonsense", "client": "script"}])
@pytest.mark.parametrize("accept", ["", "application/json", "text/html;q=0.5, text/plain"])
@pytest.mark.parametrize("agent", ["", "iPXE/1.21.1", "curl/8.5.0", "Mozilla/5.0", "x"])
def test_a_repeated_negotiation_answers_as_the_first(params: dict[str, str], accept: str,
                                                     agent: str) -> None:
    first = negotiate(params, accept, agent)
    assert negotiate(dict(params), accept, agent) == first
    assert negotiate({**params, "other": "1"}, accept, agent) == first

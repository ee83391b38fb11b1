"""The legacy endpoint's GET door answers exactly as the Flask route behind it would.

`hps_api.web.legacy.door` serves GET and HEAD on the legacy paths without Flask's request
machinery. Every request below goes once through the app as served (the door) and once straight
to Flask's own `wsgi_app` (the route), and the two answers must be the same: status, headers,
body and the event line logged. Only reads and refusals are compared, so the first request
changes nothing the second would see.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import webtest
from flask import Flask

from hps_api import create_app
from hps_api.commands import COMMANDS
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
LAN = {"REMOTE_ADDR": "10.99.0.21"}
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}
IPXE = {"User-Agent": "iPXE/1.21.1+ (g4bd064de)"}
CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
WGET = {"User-Agent": "Wget"}
JSON = {"User-Agent": "python-requests/2.31", "Accept": "application/json"}
BROWSER = {"User-Agent": "Mozilla/5.0 Chrome/120", "Accept": "text/html",
           "Sec-Fetch-Site": "cross-site"}
URL = "/cgi-bin/boot_manager.sh"

CASES = [
    ("determine_state, iPXE", f"{URL}?cmd=determine_state", IPXE, LAN),
    ("determine_state, curl", f"{URL}?cmd=determine_state", CURL, LAN),
    ("determine_state, busybox wget", f"{URL}?cmd=determine_state", WGET, LAN),
    ("determine_state, JSON", f"{URL}?cmd=determine_state", JSON, LAN),
    ("determine_state, browser", f"{URL}?cmd=determine_state", BROWSER, LAN),
    ("alias /boot_manager", "/boot_manager?cmd=determine_state", CURL, LAN),
    ("alias /api/cgi", "/api/cgi?cmd=host_variable&name=hostname", CURL, LAN),
    ("leading slashes", f"//{URL}?cmd=determine_state", CURL, LAN),
    ("format=json", f"{URL}?cmd=host_variable&name=hostname&format=json", CURL, LAN),
    ("cluster_variable", f"{URL}?cmd=cluster_variable&name=dns_domain", CURL, LAN),
    ("node library", f"{URL}?cmd=node_get_functions&distro=x86_64-linux-rocky-10", CURL, LAN),
    ("admin names a host", f"{URL}?cmd=determine_state&mac=52:54:00:AA:BB:01", CURL,
     LOOPBACK),
    ("no cmd", f"{URL}?mac={MAC}", CURL, LAN),
    ("no cmd, iPXE retry script", f"{URL}?mac={MAC}", IPXE, LAN),
    ("unknown cmd", f"{URL}?cmd=format_disks", CURL, LAN),
    ("unknown cmd, JSON", f"{URL}?cmd=format_disks", JSON, LAN),
    ("bad MAC", f"{URL}?cmd=determine_state&mac=zz:zz", CURL, LOOPBACK),
    ("spoofed MAC", f"{URL}?cmd=determine_state&mac=52:54:00:aa:bb:99", CURL, LAN),
    ("not UTF-8", f"{URL}?cmd=determine_state&x=%ff", CURL, LAN),
    ("query too long", f"{URL}?cmd=determine_state&x={'a' * 9000}", CURL, LAN),
    ("query too long, iPXE", f"{URL}?cmd=determine_state&x={'a' * 9000}", IPXE, LAN),
    ("browser write refused", f"{URL}?cmd=set_status&status=INSTALLED", BROWSER, LAN),
    ("missing key", f"{URL}?cmd=host_variable&name=NO_SUCH_KEY", CURL, LAN),
    ("store path hidden", f"{URL}?cmd=os_variable&os_id=x86_64:nope:1&name=KERNEL", CURL, LAN),
    ("store path shown to admin", f"{URL}?cmd=os_variable&os_id=x86_64:nope:1&name=KERNEL",
     CURL, LOOPBACK),
]


@pytest.fixture
def apps(tmp_path: Path, store: FileStore, host: RecordId,
         settings: Settings) -> tuple[webtest.TestApp, webtest.TestApp]:
    """(the app as served, door first; the same app's Flask `wsgi_app` alone)."""
    (tmp_path / "arp").write_text(ARP)
    store.update(host, {"STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001"}, "t")
    store.update(RecordId.of_cluster("default"), {"DNS_DOMAIN": "lab.local"}, "t")
    app = create_app(settings)
    return webtest.TestApp(app), webtest.TestApp(lambda e, s: Flask.wsgi_app(app, e, s))


def answer(client: webtest.TestApp, path: str, headers: dict[str, str],
           environ: dict[str, str], method: str = "GET") -> tuple[object, ...]:
    response = client.request(path, method=method, headers=headers, environ=dict(environ),
                              expect_errors=True)
    kept = sorted((k, v) for k, v in response.headerlist if k != "Date")
    return response.status, kept, response.body


def last_event(settings: Settings) -> str:
    lines = (settings.log_dir / "hps-api.log").read_text().splitlines()
    return re.sub(r"^\S+ ", "", lines[-1])  # without its time


@pytest.mark.parametrize(("name", "path", "headers", "environ"), CASES, ids=[c[0] for c in CASES])
def test_the_door_answers_and_logs_as_the_flask_route(apps, settings: Settings, name: str,
                                                       path: str, headers: dict[str, str],
                                                       environ: dict[str, str]) -> None:
    door, route = apps
    through_door = answer(door, path, headers, environ)
    door_event = last_event(settings)
    through_route = answer(route, path, headers, environ)
    assert through_door == through_route
    assert door_event == last_event(settings)


def test_head_answers_the_get_headers_without_a_body(apps) -> None:
    door, route = apps
    got = answer(door, f"{URL}?cmd=determine_state", CURL, LAN)
    head = answer(door, f"{URL}?cmd=determine_state", CURL, LAN, method="HEAD")
    assert head == answer(route, f"{URL}?cmd=determine_state", CURL, LAN, method="HEAD")
    assert head[:2] == got[:2] and head[2] == b"" and got[2] == b"INSTALLED\n"


def test_a_bug_in_a_command_is_a_500_through_the_door_as_through_the_route(
        apps, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setitem(COMMANDS, "determine_state", broken)
    door, route = apps
    through_door = answer(door, f"{URL}?cmd=determine_state", CURL, LAN)
    assert through_door[0] == "500 INTERNAL SERVER ERROR" and b"internal error" in through_door[2]
    assert "RuntimeError: boom" in last_event(settings)
    assert through_door == answer(route, f"{URL}?cmd=determine_state", CURL, LAN)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_go_on_to_flask_which_refuses_them(apps, method: str) -> None:
    door, _route = apps
    status, headers, _body = answer(door, f"{URL}?cmd=determine_state", CURL, LAN, method)
    assert status == "405 METHOD NOT ALLOWED"
    assert ("Allow", "GET, HEAD, OPTIONS, POST") in headers


def test_a_post_goes_on_to_the_flask_route_with_its_form(apps, store: FileStore,
                                                          host: RecordId) -> None:
    door, _route = apps
    response = door.post(URL, {"cmd": "host_variable", "name": "NOTE", "value": "by post"},
                         headers=CURL, extra_environ=LAN)
    assert response.text == f"{MAC} set NOTE to by post\n"
    assert store.items(host)["NOTE"] == "by post"


def test_a_get_on_a_legacy_path_does_not_reach_flask_and_a_post_does(
        apps, monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched: list[str] = []
    real = Flask.full_dispatch_request

    def counting(self: Flask):  # type: ignore[no-untyped-def]
        dispatched.append("flask")
        return real(self)

    monkeypatch.setattr(Flask, "full_dispatch_request", counting)
    door, _route = apps
    assert door.get(f"{URL}?cmd=determine_state", headers=IPXE, extra_environ=LAN).status_int \
        == 200
    assert dispatched == []
    door.post(URL, {"cmd": "determine_state"}, headers=CURL, extra_environ=LAN)
    assert dispatched == ["flask"]


def test_options_goes_on_to_flask_which_lists_the_methods(apps) -> None:
    door, _route = apps
    status, headers, body = answer(door, f"{URL}?cmd=determine_state", CURL, LAN, "OPTIONS")
    assert status == "200 OK" and body == b""
    allowed = dict(headers)["Allow"]
    assert sorted(allowed.split(", ")) == ["GET", "HEAD", "OPTIONS", "POST"]

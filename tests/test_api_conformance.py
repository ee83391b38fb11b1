"""Conformance of the HTTP surface: each refusal is clear and writes nothing.

/api/v1 answers JSON whatever went wrong; a 405 names the allowed methods; a MAC is taken
exactly as written; JSON bodies are typed; non-admins never see where the store lives; legacy
HTML answers carry the pages' security headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import webtest

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.web.respond import SECURITY_HEADERS

MAC = "525400dd0001"
LAN = "10.99.0.21"
URL = "/cgi-bin/boot_manager.sh"
CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
           "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON_TYPE = "application/json"

Snapshot = Callable[[Path], dict[str, bytes | None]]


@pytest.fixture(autouse=True)
def seeded(store: FileStore) -> None:
    """A configurable host and a cluster with a network and a registered OS."""
    store.update(RecordId.of_host("default", MAC), {"STATE": "UNCONFIGURED"}, "t", create=True)
    store.update(RecordId.of_cluster("default"), {"DHCP_IP": "10.99.0.1",
                                                  "NETWORK_CIDR": "10.99.0.0/24"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {"STATUS": "prod", "HPS_TYPES": "SCH"}, "t",
                 create=True)


def client(settings: Settings, remote: str) -> webtest.TestApp:
    return webtest.TestApp(create_app(settings), extra_environ={"REMOTE_ADDR": remote})


@pytest.fixture
def local(settings: Settings) -> webtest.TestApp:
    """The operator's own tools on the IPS: an admin by being on loopback."""
    return client(settings, "127.0.0.1")


@pytest.fixture
def lan(settings: Settings) -> webtest.TestApp:
    """A caller on the provisioning LAN, not an admin."""
    return client(settings, LAN)


def json_error(res: webtest.TestResponse) -> str:
    assert res.content_type == JSON_TYPE, res.text
    body = res.json
    assert body["ok"] is False
    assert body["error"]["code"] == res.status_int
    message: str = body["error"]["message"]
    return message


# --- 1. /api/v1 errors are JSON, whatever went wrong ----------------------------------------

API_ERRORS = [
    ("GET", "/api/v1/hosts?%FF", {}, 400, "UTF-8"),
    ("GET", "/api/v1/hosts?state=%FF", BROWSER, 400, "UTF-8"),
    ("GET", "/api/v1/health?deep=%C3", {}, 400, "UTF-8"),
    ("GET", "/api/v1/nothing-here?%FF", BROWSER, 400, "UTF-8"),
    ("GET", "/api/v1/hosts?format=html&pad=" + "x" * 9000, BROWSER, 400, "longer than"),
    ("GET", "/api/v1/nothing-here", BROWSER, 404, "no such page"),
    ("GET", "/api/v1/nothing-here?format=html", CURL, 404, "no such page"),
    ("GET", "/api/v1", BROWSER, 404, "no such page"),
    ("PATCH", f"/api/v1/hosts/{MAC}", BROWSER, 405, "not allowed"),
    ("POST", "/api/v1/hosts?via=browser", CURL, 405, "not allowed"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "message"), API_ERRORS)
def test_every_api_error_is_a_json_body_with_its_real_status(
    local, config_dir: Path, snapshot: Snapshot, method: str, path: str,
    headers: dict[str, str], status: int, message: str,
) -> None:
    before = snapshot(config_dir)
    res = local.request(path, method=method, headers=headers, status=status)
    assert message.lower() in json_error(res).lower()
    assert snapshot(config_dir) == before


def test_an_api_body_above_one_mib_is_a_json_413(local, config_dir: Path,
                                                 snapshot: Snapshot) -> None:
    before = snapshot(config_dir)
    body = json.dumps({"value": "x" * (1024 * 1024)}).encode()
    res = local.request(f"/api/v1/hosts/{MAC}/config/NOTE?format=html", method="PUT", body=body,
                        headers={**CURL, "Content-Type": JSON_TYPE}, status=413)
    assert "larger than" in json_error(res)
    assert snapshot(config_dir) == before


# --- 2. a 405 says which methods are allowed ------------------------------------------------

NOT_ALLOWED = [
    ("POST", "/api/v1/hosts", CURL, {"GET"}),
    ("PUT", "/api/v1/openapi.json", CURL, {"GET"}),
    ("PATCH", f"/api/v1/hosts/{MAC}/config/NOTE", CURL, {"GET", "PUT", "DELETE"}),
    ("PUT", URL, CURL, {"GET", "POST"}),
    ("DELETE", "/boot_manager", BROWSER, {"GET", "POST"}),
    ("DELETE", "/", BROWSER, {"GET"}),
    ("PUT", "/boot.ipxe", CURL, {"GET"}),
]


@pytest.mark.parametrize(("method", "path", "headers", "allowed"), NOT_ALLOWED)
def test_a_405_carries_an_allow_header_naming_the_methods(
    local, method: str, path: str, headers: dict[str, str], allowed: set[str],
) -> None:
    res = local.request(path, method=method, headers=headers, status=405)
    assert "Allow" in res.headers, dict(res.headers)
    offered = {m.strip() for m in res.headers["Allow"].split(",")}
    assert allowed <= offered
    assert method not in offered


# --- 3. a MAC is taken exactly as written ---------------------------------------------------

SURROUNDED = ["%0a", "%0d%0a", "%20", "%09", "%00"]


@pytest.mark.parametrize("junk", SURROUNDED)
@pytest.mark.parametrize(("method", "template", "body"), [
    ("DELETE", "/api/v1/hosts/{mac}", None),
    ("GET", "/api/v1/hosts/{mac}", None),
    ("PUT", "/api/v1/hosts/{mac}/config/NOTE", {"value": "x"}),
    ("DELETE", "/api/v1/hosts/{mac}/config/STATE", None),
    ("POST", "/api/v1/hosts/{mac}/configure", {"type": "SCH"}),
    ("GET", "/api/v1/hosts/{mac}/boot", None),
])
@pytest.mark.parametrize("where", ["after", "before"])
def test_a_mac_in_an_api_path_with_surrounding_whitespace_is_refused(
    local, config_dir: Path, snapshot: Snapshot, junk: str, method: str, template: str,
    body: Any, where: str,
) -> None:
    mac = MAC + junk if where == "after" else junk + MAC
    before = snapshot(config_dir)
    path = template.format(mac=mac)
    if body is None:
        res = local.request(path, method=method, headers=CURL, status=400)
    else:
        res = local.request(path, method=method, body=json.dumps(body).encode(),
                            headers={**CURL, "Content-Type": JSON_TYPE}, status=400)
    assert "invalid MAC" in json_error(res)
    assert snapshot(config_dir) == before


@pytest.mark.parametrize("mac", [f"{MAC}%0a", f"%20{MAC}", "5254.00dd.0001%0a",
                                 f"+{MAC}", f"{MAC}%09"])
def test_a_legacy_mac_parameter_with_surrounding_whitespace_is_refused(
    local, lan, config_dir: Path, snapshot: Snapshot, mac: str,
) -> None:
    before = snapshot(config_dir)
    for caller in (local, lan):
        res = caller.get(f"{URL}?cmd=host_variable&name=NOTE&value=x&mac={mac}", headers=CURL,
                         status=400)
        assert "invalid MAC" in json_error(res)
    assert snapshot(config_dir) == before


def test_a_page_for_a_mac_with_a_trailing_newline_is_refused(local) -> None:
    res = local.get(f"/hosts/{MAC}%0a", headers=BROWSER, status=400)
    assert "invalid MAC" in res.text


# --- 4. JSON bodies: the right type, UTF-8, an object of known, typed fields ----------------

HOST_KEY = f"/api/v1/hosts/{MAC}/config/NOTE"
CONFIGURE = f"/api/v1/hosts/{MAC}/configure"
VALUE = json.dumps({"value": "x"})
BAD_BODIES = [
    # the type of the body
    ("PUT", HOST_KEY, "text/plain", VALUE.encode(), 415, "application/json"),
    ("PUT", HOST_KEY, None, VALUE.encode(), 415, "application/json"),
    ("PUT", HOST_KEY, "application/x-www-form-urlencoded", b"value=x", 415, "application/json"),
    ("PUT", HOST_KEY, "application/json; charset=utf-16", VALUE.encode("utf-16"), 415,
     "UTF-8"),
    ("POST", "/api/v1/clusters", "text/plain", b'{"name": "lab2"}', 415, "application/json"),
    ("POST", CONFIGURE, "text/json", b'{"type": "SCH"}', 415, "application/json"),
    # its encoding
    ("PUT", HOST_KEY, JSON_TYPE, b"\xef\xbb\xbf" + VALUE.encode(), 400, "byte order mark"),
    ("PUT", HOST_KEY, JSON_TYPE, VALUE.encode("utf-16"), 400, "UTF-8"),
    ("PUT", HOST_KEY, JSON_TYPE, VALUE.encode("utf-16-le"), 400, "UTF-8"),
    ("PUT", HOST_KEY, JSON_TYPE, VALUE.encode("utf-32"), 400, "UTF-8"),
    # its fields
    ("PUT", HOST_KEY, JSON_TYPE, b'{"value": "x", "extra": "y"}', 400, 'unknown field "extra"'),
    ("PUT", HOST_KEY, JSON_TYPE, b'{"value": "x", "value": "y"}', 400, 'twice'),
    ("POST", "/api/v1/clusters", JSON_TYPE, b'{"name": "lab2", "Config": {}}', 400,
     'unknown field "Config"'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"type": "SCH", "profile": 1}', 400,
     '"profile" must be a string'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"type": "SCH", "profile": null}', 400,
     '"profile" must be a string'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"type": "SCH", "profile": ["DEFAULT"]}', 400,
     '"profile" must be a string'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"type": "SCH", "force": true}', 400,
     'unknown field "force"'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"type": 7}', 400, '"type" must be a string'),
    ("POST", CONFIGURE, JSON_TYPE, b'{"profile": "DEFAULT"}', 400, '"type" is required'),
]


@pytest.mark.parametrize(("method", "path", "content_type", "body", "status", "message"),
                         BAD_BODIES)
def test_a_body_that_is_not_a_typed_utf8_json_object_is_refused(
    local, config_dir: Path, snapshot: Snapshot, method: str, path: str,
    content_type: str | None, body: bytes, status: int, message: str,
) -> None:
    before = snapshot(config_dir)
    headers = {**CURL, **({"Content-Type": content_type} if content_type else {})}
    res = local.request(path, method=method, body=body, headers=headers, status=status)
    assert message in json_error(res)
    assert snapshot(config_dir) == before


@pytest.mark.parametrize("content_type", [JSON_TYPE, "application/json; charset=utf-8",
                                          "Application/JSON; charset=UTF-8"])
def test_a_utf8_json_object_is_accepted_with_or_without_a_charset(
    local, store: FileStore, content_type: str,
) -> None:
    local.request(HOST_KEY, method="PUT", body='{"value": "élan"}'.encode(),
                  headers={**CURL, "Content-Type": content_type}, status=200)
    assert store.get(RecordId.of_host("default", MAC), "NOTE") == "élan"


# --- 5. non-admins never see where the store lives ------------------------------------------

def corrupt(config_dir: Path) -> None:
    record = config_dir / "clusters" / "default" / "hosts" / f"{MAC}.conf"
    record.write_text("this is not a record\n")


@pytest.mark.parametrize("headers", [CURL, BROWSER, {}], ids=["curl", "browser", "script"])
def test_a_corrupt_record_is_reported_to_a_node_without_the_store_path(
    lan, config_dir: Path, headers: dict[str, str],
) -> None:
    corrupt(config_dir)
    res = lan.get(f"{URL}?cmd=determine_state&mac={MAC}", headers=headers, status=500)
    assert "corrupt record" in res.text
    assert f"clusters/default/hosts/{MAC}.conf" in res.text
    assert str(config_dir) not in res.text
    assert str(config_dir.parent) not in res.text


def test_an_admin_is_shown_the_full_path_of_a_corrupt_record(local, config_dir: Path) -> None:
    corrupt(config_dir)
    res = local.get(f"{URL}?cmd=determine_state&mac={MAC}", headers=CURL, status=500)
    assert str(config_dir) in json_error(res)


def test_the_deep_health_check_shows_no_path_to_anyone_but_an_admin(
    lan, local, settings: Settings, config_dir: Path,
) -> None:
    res = lan.get("/api/v1/health?deep=1", headers=CURL)
    details = " ".join(c["detail"] for c in res.json["data"]["selftest"]["checks"])
    for root in (config_dir, settings.log_dir, settings.resources_dir, config_dir.parent):
        assert str(root) not in res.text
    assert "HPS_CONFIG_DIR" in details
    admin = local.get("/api/v1/health?deep=1", headers=CURL)
    assert str(config_dir) in admin.text


@pytest.mark.parametrize("page", ["/", "/unconfigured", "/health"])
def test_the_pages_show_no_store_path_to_a_non_admin(lan, config_dir: Path, page: str) -> None:
    corrupt(config_dir)
    res = lan.get(page, headers=BROWSER)
    assert str(config_dir) not in res.text


# --- 6. legacy HTML answers carry the pages' security headers -------------------------------

@pytest.mark.parametrize(("query", "status"), [
    (f"cmd=host_variable&name=STATE&mac={MAC}", 200),
    ("cmd=frobnicate", 404),
    ("", 400),
    (f"cmd=host_variable&name=NOPE&mac={MAC}", 404),
])
def test_a_legacy_html_answer_carries_the_ui_security_headers(lan, query: str,
                                                              status: int) -> None:
    res = lan.get(f"{URL}?{query}", headers=BROWSER, status=status)
    assert res.content_type == "text/html"
    for name, value in {**SECURITY_HEADERS, "Cache-Control": "no-store"}.items():
        assert res.headers.get(name) == value, name


def test_an_html_error_page_outside_the_ui_carries_the_security_headers(lan) -> None:
    res = lan.get("/no-such-page", headers=BROWSER, status=404)
    assert res.content_type == "text/html"
    for name, value in {**SECURITY_HEADERS, "Cache-Control": "no-store"}.items():
        assert res.headers.get(name) == value, name

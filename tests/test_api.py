"""The JSON API (docs/api.md §5): every endpoint as an admin, refusals for others, bad input."""

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

TOKEN = "s3cret"
LAN = "10.99.0.50"
MAC = "525400aabb01"
OLD = "525400aabb02"
NEW = "525400aabb03"
UNKNOWN = "525400aabb99"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

Snapshot = Callable[[Path], dict[str, bytes | None]]


@pytest.fixture(autouse=True)
def seeded(store: FileStore, host: RecordId) -> None:
    """Three hosts of different type, state and recency; a cluster with a sensitive key."""
    store.update(host, {"TYPE": "SCH", "STATE": "INSTALLED", "HOSTNAME": "sch-001",
                        "IP": "10.99.0.11", "LAST_SEEN": "2025-03-02T10:00:00Z",
                        "BOOT_SESSION": "a1b2c3", "SELFTEST_RESULT": "pass",
                        "ROOT_PASSWORD": "hunter2"}, "t")
    store.update(RecordId.of_host("default", OLD), {"TYPE": "TCH", "STATE": "NETWORK_BOOT",
                                                    "LAST_SEEN": "2025-03-01T10:00:00Z"},
                 "t", create=True)
    store.update(RecordId.of_host("default", NEW), {"STATE": "UNCONFIGURED"}, "t", create=True)
    store.update(RecordId.of_cluster("default"), {"DNS_DOMAIN": "lab.local",
                                                  "ROOT_PASSWORD": "hunter2"}, "t")


def build(config_dir: Path, tmp_path: Path, remote: str, **overrides: Any) -> webtest.TestApp:
    """Return a WebTest client of the real app calling from `remote`."""
    settings = Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                        arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                        admin_token=TOKEN, lock_timeout=0.5).with_overrides(**overrides)
    return webtest.TestApp(create_app(settings), extra_environ={"REMOTE_ADDR": remote})


@pytest.fixture
def local(config_dir: Path, tmp_path: Path) -> webtest.TestApp:
    """An admin by being on loopback."""
    return build(config_dir, tmp_path, "127.0.0.1")


@pytest.fixture
def stranger(config_dir: Path, tmp_path: Path) -> webtest.TestApp:
    """A caller on the provisioning LAN; an admin only with the bearer token."""
    return build(config_dir, tmp_path, LAN)


@pytest.fixture(params=["loopback", "bearer token from the LAN"])
def admin(request: pytest.FixtureRequest, config_dir: Path, tmp_path: Path) -> webtest.TestApp:
    """An admin either way; `admin.ip` is the address the journal should name."""
    if request.param == "loopback":
        app = build(config_dir, tmp_path, "127.0.0.1")
        app.ip = "127.0.0.1"
    else:
        app = build(config_dir, tmp_path, LAN)
        app.extra_environ["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
        app.ip = LAN
    return app


def data(response: webtest.TestResponse) -> Any:
    body = response.json
    assert body["ok"] is True
    return body["data"]


def error(response: webtest.TestResponse) -> str:
    body = response.json
    assert body["ok"] is False
    assert body["error"]["code"] == response.status_int
    message: str = body["error"]["message"]
    return message


# --- every endpoint as an admin -------------------------------------------------------------

def test_health_and_the_openapi_document_are_open_to_anyone(stranger) -> None:
    assert data(stranger.get("/api/v1/health"))["active_cluster"] == "default"
    assert stranger.get("/api/v1/openapi.json").json["openapi"] == "3.0.3"


def test_an_admin_lists_clusters_with_host_counts_and_the_active_one(admin, store) -> None:
    store.update(RecordId.of_cluster("spare"), {"NAME": "spare"}, "t", create=True)
    assert data(admin.get("/api/v1/clusters")) == [
        {"name": "default", "active": True, "hosts": 3},
        {"name": "spare", "active": False, "hosts": 0},
    ]


def test_an_admin_creates_a_cluster_with_config_and_it_stays_inactive(admin, store) -> None:
    res = admin.post_json("/api/v1/clusters", {"name": "lab2", "config": {"dns_domain": "b.lan"}},
                          status=201)
    record = data(res)["config"]
    assert data(res)["name"] == "lab2"
    assert record["NAME"] == "lab2"
    assert record["DNS_DOMAIN"] == "b.lan"
    assert store.items(RecordId.of_cluster("lab2")) == record
    assert store.get(RecordId.global_(), "ACTIVE_CLUSTER") == "default"
    assert {c.actor for c in store.history(RecordId.of_cluster("lab2"))} == {f"admin:{admin.ip}"}


def test_an_admin_activates_a_cluster(admin, store) -> None:
    admin.post_json("/api/v1/clusters", {"name": "lab2"}, status=201)
    res = admin.post("/api/v1/clusters/lab2/activate")
    assert data(res) == {"active": "lab2", "previous": "default"}
    assert store.get(RecordId.global_(), "ACTIVE_CLUSTER") == "lab2"
    assert data(admin.get("/api/v1/hosts"))["cluster"] == "lab2"


def test_an_admin_reads_a_cluster_config_sensitive_keys_included(admin) -> None:
    config = data(admin.get("/api/v1/clusters/default/config"))["config"]
    assert config["DNS_DOMAIN"] == "lab.local"
    assert config["ROOT_PASSWORD"] == "hunter2"


def test_an_admin_sets_and_unsets_a_cluster_key(admin, store) -> None:
    rid = RecordId.of_cluster("default")
    res = admin.put_json("/api/v1/clusters/default/config/ntp_server", {"value": "10.99.0.1"})
    assert data(res)["key"] == "NTP_SERVER"
    assert data(res)["value"] == "10.99.0.1"
    assert data(res)["record"] == store.items(rid)
    assert store.history(rid)[-1].actor == f"admin:{admin.ip}"
    res = admin.delete("/api/v1/clusters/default/config/NTP_SERVER")
    assert data(res)["value"] is None
    assert "NTP_SERVER" not in store.items(rid)


def test_an_admin_lists_hosts_with_the_summary_columns_newest_activity_first(admin) -> None:
    listing = data(admin.get("/api/v1/hosts"))
    assert listing["cluster"] == "default"
    assert [h["mac"] for h in listing["hosts"]] == [MAC, OLD, NEW]
    assert listing["hosts"][0] == {
        "mac": MAC, "hostname": "sch-001", "type": "SCH", "profile": None,
        "state": "INSTALLED", "ip": "10.99.0.11", "last_seen": "2025-03-02T10:00:00Z",
        "boot_session": "a1b2c3", "selftest": "pass",
    }


FILTERS = [
    ("state=INSTALLED", [MAC]),
    ("state=network_boot", [OLD]),
    ("state=FAILED", []),
    ("type=SCH", [MAC]),
    ("type=tch", [OLD]),
    ("state=INSTALLED&type=TCH", []),
    ("cluster=default&type=SCH", [MAC]),
]


@pytest.mark.parametrize(("query", "macs"), FILTERS)
def test_the_host_list_filters_by_state_and_type(local, query: str, macs: list[str]) -> None:
    assert [h["mac"] for h in data(local.get(f"/api/v1/hosts?{query}"))["hosts"]] == macs


def test_the_host_list_of_another_cluster_is_asked_for_with_cluster(local, store) -> None:
    store.update(RecordId.of_cluster("spare"), {"NAME": "spare"}, "t", create=True)
    store.update(RecordId.of_host("spare", UNKNOWN), {"STATE": "FAILED"}, "t", create=True)
    listing = data(local.get("/api/v1/hosts?cluster=spare"))
    assert [h["mac"] for h in listing["hosts"]] == [UNKNOWN]


@pytest.mark.parametrize("spelling", [MAC, "52:54:00:AA:BB:01", "52-54-00-aa-bb-01",
                                      "5254.00aa.bb01"])
def test_an_admin_reads_a_host_in_any_mac_spelling(admin, spelling: str) -> None:
    shown = data(admin.get(f"/api/v1/hosts/{spelling}"))
    assert shown["mac"] == MAC
    assert shown["cluster"] == "default"
    assert shown["record"]["ROOT_PASSWORD"] == "hunter2"
    assert shown["summary"]["hostname"] == "sch-001"


def test_an_admin_reads_sets_and_unsets_a_host_key(admin, store, host) -> None:
    assert data(admin.get(f"/api/v1/hosts/{MAC}/config/hostname"))["value"] == "sch-001"
    res = admin.put_json("/api/v1/hosts/52:54:00:aa:bb:01/config/note", {"value": "élan ✓ a=b"})
    assert data(res)["mac"] == MAC
    assert data(res)["value"] == "élan ✓ a=b"
    assert data(res)["record"] == store.items(host)
    assert store.history(host)[-1].actor == f"admin:{admin.ip}"
    admin.delete(f"/api/v1/hosts/{MAC}/config/NOTE")
    assert "NOTE" not in store.items(host)


def test_the_empty_value_is_stored_as_set_and_empty(local, store, host) -> None:
    local.put_json(f"/api/v1/hosts/{MAC}/config/NOTE", {"value": ""})
    assert store.get(host, "NOTE") == ""


def test_an_admin_may_set_any_state_and_it_is_stored_upper_case(local, store, host) -> None:
    res = local.put_json(f"/api/v1/hosts/{MAC}/config/state", {"value": "reinstall"})
    assert data(res)["value"] == "REINSTALL"
    assert store.get(host, "STATE") == "REINSTALL"


def test_an_admin_deletes_a_host(admin, store, host) -> None:
    assert data(admin.delete(f"/api/v1/hosts/{MAC}")) == {"mac": MAC, "cluster": "default",
                                                           "deleted": True}
    assert not store.exists(host)
    assert store.history(host)[-1].actor == f"admin:{admin.ip}"


# --- who may ask ----------------------------------------------------------------------------

ADMIN_REQUESTS = [
    ("GET", "/api/v1/clusters", None),
    ("POST", "/api/v1/clusters", {"name": "lab2"}),
    ("POST", "/api/v1/clusters/default/activate", None),
    ("GET", "/api/v1/clusters/default/config", None),
    ("PUT", "/api/v1/clusters/default/config/NTP", {"value": "x"}),
    ("DELETE", "/api/v1/clusters/default/config/DNS_DOMAIN", None),
    ("GET", "/api/v1/hosts", None),
    ("GET", f"/api/v1/hosts/{MAC}", None),
    ("DELETE", f"/api/v1/hosts/{MAC}", None),
    ("GET", f"/api/v1/hosts/{MAC}/config/HOSTNAME", None),
    ("PUT", f"/api/v1/hosts/{MAC}/config/NOTE", {"value": "x"}),
    ("DELETE", f"/api/v1/hosts/{MAC}/config/HOSTNAME", None),
]
NOT_ADMIN = {
    "no token": {},
    "a wrong token": {"Authorization": "Bearer s3cres"},
    "the token with a prefix": {"Authorization": f"Bearer x{TOKEN}"},
    "the token in another scheme": {"Authorization": f"Basic {TOKEN}"},
    "an empty bearer": {"Authorization": "Bearer "},
    "a forged X-Forwarded-For": {"X-Forwarded-For": "127.0.0.1"},
}


def call(app: webtest.TestApp, method: str, path: str, body: Any, **kwargs: Any,
         ) -> webtest.TestResponse:
    if body is None:
        return app.request(path, method=method, **kwargs)
    return app.request(path, method=method, body=json.dumps(body).encode(),
                       content_type="application/json", **kwargs)


@pytest.mark.parametrize("credentials", NOT_ADMIN.values(), ids=NOT_ADMIN.keys())
@pytest.mark.parametrize(("method", "path", "body"), ADMIN_REQUESTS)
def test_a_caller_who_is_not_an_admin_gets_403_and_changes_nothing(
    stranger, config_dir: Path, snapshot: Snapshot, credentials: dict[str, str], method: str,
    path: str, body: Any,
) -> None:
    before = snapshot(config_dir)
    res = call(stranger, method, path, body, headers=credentials, status=403)
    assert "admin only" in error(res)
    assert "s3cret" not in res.text
    assert snapshot(config_dir) == before


def test_the_right_token_is_accepted_where_a_wrong_one_is_refused(stranger) -> None:
    stranger.get("/api/v1/clusters", headers={"Authorization": "Bearer wrong"}, status=403)
    stranger.get("/api/v1/clusters", headers=BEARER, status=200)
    stranger.get("/api/v1/clusters", headers={"Authorization": f"bearer {TOKEN}"}, status=200)


def test_without_a_configured_token_only_loopback_is_admin(config_dir, tmp_path) -> None:
    app = build(config_dir, tmp_path, LAN, admin_token="")
    app.get("/api/v1/clusters", headers={"Authorization": "Bearer "}, status=403)


def test_behind_a_trusted_proxy_the_forwarded_address_decides(config_dir, tmp_path,
                                                              store) -> None:
    proxied = build(config_dir, tmp_path, "127.0.0.1", trusted_proxies=("127.0.0.1",))
    forwarded = {"X-Forwarded-For": LAN}
    proxied.get("/api/v1/clusters", headers=forwarded, status=403)
    proxied.put_json("/api/v1/clusters/default/config/NTP", {"value": "x"},
                     headers={**forwarded, **BEARER})
    assert store.history(RecordId.of_cluster("default"))[-1].actor == f"admin:{LAN}"


@pytest.mark.parametrize("header", ["X-Forwarded-For", "Forwarded", "X-Real-IP"])
def test_loopback_forwarded_by_an_untrusted_proxy_is_not_admin(local, header: str) -> None:
    local.get("/api/v1/clusters", headers={header: LAN}, status=403)
    local.get("/api/v1/clusters", headers={header: LAN, **BEARER}, status=200)


@pytest.mark.parametrize(("origin", "status"), [
    ("http://evil.example", 403),
    ("null", 403),
    ("http://localhost", 403),  # a browser on loopback is no admin without a login (F2)
    ("http://localhost:80", 403),
])
def test_a_write_from_a_foreign_web_page_is_refused_even_on_loopback(
    local, config_dir: Path, snapshot: Snapshot, origin: str, status: int,
) -> None:
    local.post_json("/api/v1/clusters", {"name": "lab2"}, status=201)
    before = snapshot(config_dir)
    local.post("/api/v1/clusters/lab2/activate", headers={"Origin": origin}, status=status)
    assert (snapshot(config_dir) == before) is (status == 403)


# --- bad input: a clear 4xx, nothing changed ------------------------------------------------

HOST_KEY = f"/api/v1/hosts/{MAC}/config/NOTE"
RAW = object()
BAD_INPUT = [
    ("GET", "/api/v1/hosts/not-a-mac", None, 400, "invalid MAC"),
    ("GET", "/api/v1/hosts/..", None, 400, "invalid MAC"),
    ("GET", "/api/v1/hosts/%2e%2e", None, 400, "invalid MAC"),
    ("DELETE", "/api/v1/hosts/..", None, 400, "invalid MAC"),
    ("DELETE", "/api/v1/hosts/ff:ff:ff:ff:ff:ff", None, 400, "not a host MAC"),
    ("PUT", "/api/v1/hosts/52:54:00:aa:bb/config/NOTE", {"value": "x"}, 400, "invalid MAC"),
    ("PUT", "/api/v1/hosts/%00/config/NOTE", {"value": "x"}, 400, "invalid MAC"),
    # a slash can never reach the store: no route has one inside a parameter
    ("PUT", "/api/v1/hosts/..%2F..%2Fhps.conf/config/X", {"value": "x"}, 404, "no such page"),
    ("PUT", f"/api/v1/hosts/{MAC}/config/..%2F..%2Fhps", {"value": "x"}, 404, "no such page"),
    ("PUT", f"/api/v1/hosts/{MAC}/config/..", {"value": "x"}, 400, "invalid key"),
    ("PUT", f"/api/v1/hosts/{MAC}/config/bad-key", {"value": "x"}, 400, "invalid key"),
    ("PUT", f"/api/v1/hosts/{MAC}/config/{'K' * 129}", {"value": "x"}, 400, "key longer"),
    ("GET", f"/api/v1/hosts/{MAC}/config/bad.key", None, 400, "invalid key"),
    ("DELETE", f"/api/v1/hosts/{MAC}/config/bad-key", None, 400, "invalid key"),
    ("PUT", HOST_KEY, {"value": "two\nlines"}, 400, "control character"),
    ("PUT", HOST_KEY, {"value": "nul\x00"}, 400, "control character"),
    ("PUT", HOST_KEY, {"value": "tab\there"}, 400, "control character"),
    ("PUT", HOST_KEY, {"value": "\x1b[31mred"}, 400, "control character"),
    ("PUT", HOST_KEY, {"value": "x" * (64 * 1024 + 1)}, 400, "larger than 65536 bytes"),
    ("PUT", HOST_KEY, {"value": 5}, 400, '"value" must be a string'),
    ("PUT", HOST_KEY, {"value": None}, 400, '"value" must be a string'),
    ("PUT", HOST_KEY, {}, 400, '"value" is required'),
    ("PUT", HOST_KEY, {"velue": "x"}, 400, 'unknown field "velue"'),
    ("PUT", HOST_KEY, ["x"], 400, "must be a UTF-8 JSON object"),
    ("PUT", HOST_KEY, (RAW, b"value=x"), 400, "it is not JSON"),
    ("PUT", HOST_KEY, (RAW, b""), 400, "it is not JSON"),
    ("PUT", HOST_KEY, (RAW, b'{"value": "\xff"}'), 400, "it is not UTF-8"),
    ("PUT", HOST_KEY, (RAW, b'{"value": NaN}'), 400, "it is not JSON"),
    ("PUT", HOST_KEY, (RAW, b"[" * 100_000), 400, "it is not JSON"),
    ("PUT", HOST_KEY, (RAW, b'{"value": "' + b"x" * (1024 * 1024) + b'"}'), 413, "larger than"),
    ("PUT", f"/api/v1/hosts/{MAC}/config/STATE", {"value": "BOGUS"}, 400, "unknown state"),
    ("PUT", "/api/v1/clusters/default/config/NTP", {"value": "a\rb"}, 400, "control character"),
    ("PUT", "/api/v1/clusters/Bad_Name/config/NTP", {"value": "x"}, 400, "invalid cluster name"),
    ("GET", "/api/v1/clusters/..", None, 404, "no such page"),
    ("GET", "/api/v1/clusters/../config", None, 400, "invalid cluster name"),
    ("POST", "/api/v1/clusters/-x/activate", None, 400, "invalid cluster name"),
    ("POST", "/api/v1/clusters", {"name": "Bad Name"}, 400, "invalid cluster name"),
    ("POST", "/api/v1/clusters", {"name": ".."}, 400, "invalid cluster name"),
    ("POST", "/api/v1/clusters", {"name": "a" * 64}, 400, "invalid cluster name"),
    ("POST", "/api/v1/clusters", {}, 400, '"name" is required'),
    ("POST", "/api/v1/clusters", {"name": ["lab2"]}, 400, '"name" must be a string'),
    ("POST", "/api/v1/clusters", {"name": "lab2", "config": []}, 400, '"config" must be'),
    ("POST", "/api/v1/clusters", {"name": "lab2", "config": {"K": 1}}, 400, '"config" must be'),
    ("POST", "/api/v1/clusters", {"name": "lab2", "config": {"bad-key": "v"}}, 400,
     "invalid key"),
    ("POST", "/api/v1/clusters", {"name": "lab2", "config": {"A": "ok", "B": "x\ny"}}, 400,
     "control character"),
    ("POST", "/api/v1/clusters", {"name": "lab2", "config": {"name": "other"}}, 400,
     "set by the server"),
    ("POST", "/api/v1/clusters", (RAW, b"name=lab2"), 400, "it is not JSON"),
    ("GET", "/api/v1/hosts?state=BOGUS", None, 400, "unknown state"),
    ("GET", "/api/v1/hosts?cluster=../etc", None, 400, "invalid cluster name"),
    ("GET", f"/api/v1/hosts/{MAC}?cluster=Default", None, 400, "invalid cluster name"),
]


def send(app: webtest.TestApp, method: str, path: str, body: Any, status: int,
         ) -> webtest.TestResponse:
    if isinstance(body, tuple) and body[0] is RAW:
        return app.request(path, method=method, body=body[1], content_type="application/json",
                           status=status)
    return call(app, method, path, body, status=status)


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), BAD_INPUT)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    local, config_dir: Path, snapshot: Snapshot, method: str, path: str, body: Any, status: int,
    message: str,
) -> None:
    before = snapshot(config_dir)
    res = send(local, method, path, body, status)
    assert message in error(res)
    assert snapshot(config_dir) == before


NOT_FOUND = [
    ("GET", f"/api/v1/hosts/{UNKNOWN}", None, "not found"),
    ("DELETE", f"/api/v1/hosts/{UNKNOWN}", None, "not found"),
    ("GET", f"/api/v1/hosts/{UNKNOWN}/config/STATE", None, "not found"),
    ("PUT", f"/api/v1/hosts/{UNKNOWN}/config/NOTE", {"value": "x"}, "not found"),
    ("DELETE", f"/api/v1/hosts/{UNKNOWN}/config/STATE", None, "not found"),
    ("GET", f"/api/v1/hosts/{MAC}/config/NOPE", None, "Key 'NOPE' not found"),
    ("DELETE", f"/api/v1/hosts/{MAC}/config/NOPE", None, "Key 'NOPE' not found"),
    ("GET", f"/api/v1/hosts/{MAC}?cluster=nope", None, "not found"),
    ("GET", "/api/v1/hosts?cluster=nope", None, "not found"),
    ("GET", "/api/v1/clusters/nope/config", None, "not found"),
    ("PUT", "/api/v1/clusters/nope/config/NTP", {"value": "x"}, "not found"),
    ("DELETE", "/api/v1/clusters/default/config/NOPE", None, "Key 'NOPE' not found"),
    ("POST", "/api/v1/clusters/nope/activate", None, "not found"),
    ("GET", "/api/v1/nothing-here", None, "no such page"),
]


@pytest.mark.parametrize(("method", "path", "body", "message"), NOT_FOUND)
def test_an_unknown_host_cluster_or_key_is_404_and_nothing_is_created(
    local, config_dir: Path, snapshot: Snapshot, method: str, path: str, body: Any,
    message: str,
) -> None:
    before = snapshot(config_dir)
    assert message in error(call(local, method, path, body, status=404))
    assert snapshot(config_dir) == before


def test_creating_a_cluster_that_exists_is_409_and_changes_nothing(
    local, config_dir: Path, snapshot: Snapshot,
) -> None:
    before = snapshot(config_dir)
    res = local.post_json("/api/v1/clusters", {"name": "default", "config": {"X": "y"}},
                          status=409)
    assert "already exists" in error(res)
    assert snapshot(config_dir) == before


def test_a_method_the_api_does_not_offer_is_405_in_json(local) -> None:
    assert error(local.post("/api/v1/hosts", status=405))


# --- robustness -----------------------------------------------------------------------------

def test_hosts_never_seen_follow_the_seen_ones_newest_update_first(local, store,
                                                                   config_dir: Path) -> None:
    hosts = config_dir / "clusters" / "default" / "hosts"
    (hosts / "525400cc0001.conf").write_text("STATE=UNCONFIGURED\nUPDATED=2020-01-01T00:00:00Z\n")
    (hosts / "525400cc0002.conf").write_text("STATE=UNCONFIGURED\nUPDATED=2030-01-01T00:00:00Z\n")
    macs = [h["mac"] for h in data(local.get("/api/v1/hosts?state=UNCONFIGURED"))["hosts"]]
    assert macs == ["525400cc0002", NEW, "525400cc0001"]


def test_a_corrupt_host_record_is_listed_with_its_error_not_hidden(local, config_dir) -> None:
    (config_dir / "clusters" / "default" / "hosts" / f"{UNKNOWN}.conf").write_text("garbage\n")
    rows = {h["mac"]: h for h in data(local.get("/api/v1/hosts"))["hosts"]}
    assert "corrupt" in rows[UNKNOWN]["error"]
    assert rows[UNKNOWN]["state"] is None
    assert rows[MAC]["state"] == "INSTALLED"
    assert UNKNOWN not in [h["mac"] for h in data(local.get("/api/v1/hosts?type=SCH"))["hosts"]]


def test_a_record_locked_by_another_process_is_503_and_unchanged(
    local, config_dir: Path, snapshot: Snapshot,
) -> None:
    from filelock import FileLock

    record = config_dir / "clusters" / "default" / "hosts" / f"{MAC}.conf"
    with FileLock(f"{record}.lock"):
        before = snapshot(config_dir)
        res = local.put_json(f"/api/v1/hosts/{MAC}/config/NOTE", {"value": "x"}, status=503)
        assert "try again" in error(res)
        assert snapshot(config_dir) == before


def test_writes_are_logged_by_path_without_their_values(local, tmp_path: Path) -> None:
    local.put_json(f"/api/v1/hosts/{MAC}/config/ROOT_PASSWORD", {"value": "hunter3"},
                   headers=BEARER)
    log = (tmp_path / "log" / "hps-api.log").read_text()
    assert f"PUT /api/v1/hosts/{MAC}/config/ROOT_PASSWORD -> 200" in log
    assert "hunter3" not in log
    assert TOKEN not in log

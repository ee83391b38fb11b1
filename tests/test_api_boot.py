"""The boot resources of the JSON API: configure, explain (no side effects), events."""

from __future__ import annotations

import pytest
from conftest import provide_os_files

from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

ADMIN = {"REMOTE_ADDR": "127.0.0.1"}
MAC = "525400aabb01"


@pytest.fixture(autouse=True)
def cluster(store: FileStore, host: RecordId, settings: Settings) -> None:
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "STATUS": "prod", "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10",
        "KERNEL": "vmlinuz", "INITRD": "initrd.img"}, "t", create=True)
    provide_os_files(settings.resources_dir, store)


def test_configure_allocates_and_sets_configured(web, store: FileStore, host) -> None:
    res = web.post_json(f"/api/v1/hosts/{MAC}/configure", {"type": "sch"},
                        extra_environ=ADMIN)
    record = res.json["data"]["record"]
    assert (record["TYPE"], record["PROFILE"], record["STATE"]) == ("SCH", "DEFAULT",
                                                                  "CONFIGURED")
    assert (record["HOSTNAME"], record["IP"]) == ("sch-001", "10.99.0.2")
    assert store.items(host)["OS_ID"] == "x86_64:rocky:10"


def test_an_admin_may_configure_a_type_that_needs_storage_before_the_sch(web) -> None:
    store_res = web.post_json(f"/api/v1/hosts/{MAC}/configure", {"type": "CCH"},
                              extra_environ=ADMIN)
    assert store_res.json["data"]["record"]["HOSTNAME"] == "cch-001"


@pytest.mark.parametrize(("body", "status"), [
    ({}, 400), ({"type": 5}, 400), ({"type": "XYZ"}, 400),
    ({"type": "SCH", "profile": "KVM"}, 400), ({"type": "TCH"}, 409),
])
def test_bad_configure_requests_change_nothing(web, config_dir, snapshot, body, status) -> None:
    before = snapshot(config_dir)
    web.post_json(f"/api/v1/hosts/{MAC}/configure", body, extra_environ=ADMIN, status=status)
    assert snapshot(config_dir) == before


def test_configure_is_admin_only(web, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    web.post_json(f"/api/v1/hosts/{MAC}/configure", {"type": "SCH"},
                  extra_environ={"REMOTE_ADDR": "10.99.0.30"}, status=403)
    assert snapshot(config_dir) == before


def test_explain_shows_the_decision_and_writes_nothing(web, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    data = web.get(f"/api/v1/hosts/{MAC}/boot", extra_environ=ADMIN).json["data"]
    assert (data["state"], data["action"], data["template"]) == ("UNCONFIGURED", "menu",
                                                                 "menu-main.ipxe")
    assert data["script"].startswith("#!ipxe") and data["reason"]
    assert snapshot(config_dir) == before


def test_explain_of_a_configured_host_names_the_change_init_would_make(web, store) -> None:
    web.post_json(f"/api/v1/hosts/{MAC}/configure", {"type": "SCH"}, extra_environ=ADMIN)
    data = web.get(f"/api/v1/hosts/{MAC}/boot", extra_environ=ADMIN).json["data"]
    assert data["action"] == "install"
    assert data["changes"] == {"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}
    assert store.items(RecordId.of_host("default", MAC))["STATE"] == "CONFIGURED"


def test_explain_of_an_unknown_host_is_404(web) -> None:
    web.get("/api/v1/hosts/52:54:00:00:00:99/boot", extra_environ=ADMIN, status=404)


def test_events_list_changes_and_boot_sessions_newest_first(web) -> None:
    web.get(f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC}",
            extra_environ={"REMOTE_ADDR": "192.0.2.4"})
    web.post_json(f"/api/v1/hosts/{MAC}/configure", {"type": "SCH"}, extra_environ=ADMIN)
    data = web.get(f"/api/v1/hosts/{MAC}/events", extra_environ=ADMIN).json["data"]
    keys = [c["key"] for c in data["changes"]]
    assert keys.index("TYPE") < keys.index("BOOT_SESSION")
    assert len(data["sessions"]) == 1 and len(data["sessions"][0]["session"]) == 6


def test_events_of_an_unknown_host_is_404(web) -> None:
    web.get("/api/v1/hosts/52:54:00:00:00:99/events", extra_environ=ADMIN, status=404)

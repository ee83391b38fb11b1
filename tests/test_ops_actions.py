"""Reinstall and unconfigure, from every door: the iPXE menu at the host's console
(`process_menu_item`), the host page (a logged-in admin's form POST), `/api/v1` and `host_config`.

Each door calls the same operation (hps_api.ops.hosts), so the same host gets the same verdict:
a reinstall that could not start (no type, no HOSTNAME/IP for the kickstart) is refused by
every door with nothing written, and an unconfigure forgets the same keys whoever asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import webtest
from conftest import provide_os_files
from test_ui import admin, app, secret_of  # noqa: F401 (fixtures of the host page)

from hps_api.store import FileStore, RecordId
from hps_api.web import csrf

MAC = "525400aabb77"
COLON_MAC = "52:54:00:aa:bb:77"
URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+ (g8ef5)"}
LAN = {"REMOTE_ADDR": "192.0.2.50"}
TOKEN_HEADERS = {"Authorization": "Bearer t0k", "User-Agent": "curl/8.5.0"}


@pytest.fixture(autouse=True)
def cluster(store: FileStore, tmp_path: Path) -> None:
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_RANGE_START": "10.99.0.100",
        "DHCP_RANGE_END": "10.99.0.199"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "t", create=True)
    provide_os_files(tmp_path / "resources", store)  # where test_ui's app and the CLIs look


def by_menu(store: FileStore, doors: dict[str, Any], action: str) -> bool:
    web = doors["web"]
    script = web.get(f"{URL}?cmd=process_menu_item&mac={MAC}&menu_item={action}", headers=IPXE,
                     extra_environ=LAN).text
    assert script.startswith("#!ipxe\n")
    return f"{action.capitalize()}:" not in script  # a refusal is the menu saying why


def by_page(store: FileStore, doors: dict[str, Any], action: str) -> bool:
    path = f"/hosts/{MAC}/{action}"
    token = csrf.issue(doors["secret"], path)
    answer = doors["admin"].post(path, {"csrf_token": token}, status="*")
    assert answer.status_int in (303, 409), answer.text
    return answer.status_int == 303


def by_api(store: FileStore, doors: dict[str, Any], action: str) -> bool:
    answer = doors["admin"].post(f"/api/v1/hosts/{MAC}/{action}", headers=TOKEN_HEADERS,
                                 status="*")
    assert answer.status_int in (200, 409), answer.text
    return answer.status_int == 200


def by_cli(store: FileStore, doors: dict[str, Any], action: str) -> bool:
    result = doors["cli"]("host_config", COLON_MAC, action)
    assert result.returncode in (0, 2), result.stderr
    return result.returncode == 0


DOORS = {"menu": by_menu, "page": by_page, "api": by_api, "cli": by_cli}


@pytest.fixture
def doors(admin: webtest.TestApp, app: Any, cli: Any, tmp_path: Path,  # noqa: F811
          config_dir: Path) -> dict[str, Any]:
    web = webtest.TestApp(app)
    return {"admin": admin, "web": web, "cli": cli, "secret": secret_of(tmp_path, config_dir)}


def plant(store: FileStore, **values: str) -> RecordId:
    rid = RecordId.of_host("default", MAC)
    store.update(rid, values, "test:setup", create=True)
    return rid


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("record", "accepted"), [
    ({"STATE": "INSTALL_FAILED"}, False),                                       # no type
    ({"STATE": "INSTALL_FAILED", "TYPE": "SCH"}, False),                        # no name, address
    ({"STATE": "INSTALL_FAILED", "TYPE": "SCH", "HOSTNAME": "sch-077"}, False),  # no address
    ({"STATE": "INSTALL_FAILED", "TYPE": "NOSUCH", "HOSTNAME": "x-1", "IP": "10.99.0.77"}, False),
    ({"STATE": "INSTALL_FAILED", "TYPE": "SCH", "HOSTNAME": "sch-077", "IP": "10.99.0.77"}, True),
], ids=["no-type", "no-identity", "no-ip", "unknown-type", "ready"])
def test_reinstall_gets_the_same_verdict_from_every_door(door, record, accepted, store, doors,
                                                         config_dir, snapshot) -> None:
    rid = plant(store, **record)
    before = snapshot(config_dir / "clusters")
    assert DOORS[door](store, doors, "reinstall") is accepted
    if accepted:  # the menu goes on at once: the console's host boots into the installer
        assert store.items(rid)["STATE"] == ("INSTALLING" if door == "menu" else "REINSTALL")
    else:
        assert store.items(rid)["STATE"] == "INSTALL_FAILED"
        assert snapshot(config_dir / "clusters") == before


@pytest.mark.parametrize("door", DOORS)
def test_unconfigure_forgets_the_same_keys_from_every_door(door, store, doors) -> None:
    rid = plant(store, STATE="INSTALL_FAILED", TYPE="SCH", PROFILE="DEFAULT",
                OS_ID="x86_64:rocky:10", INSTALL_ATTEMPTS="3", FORCE_INSTALL="yes",
                HOSTNAME="sch-077", IP="10.99.0.77")
    assert DOORS[door](store, doors, "unconfigure")
    record = store.items(rid)
    assert record["STATE"] == "UNCONFIGURED"
    assert not {"TYPE", "PROFILE", "OS_ID", "INSTALL_ATTEMPTS", "FORCE_INSTALL"} & set(record)
    assert (record["HOSTNAME"], record["IP"]) == ("sch-077", "10.99.0.77")


def test_rescue_on_and_off_through_the_api_and_the_cli(store, doors) -> None:
    rid = plant(store, STATE="INSTALLED", TYPE="SCH", HOSTNAME="sch-077", IP="10.99.0.77")
    doors["admin"].post(f"/api/v1/hosts/{MAC}/rescue/on", headers=TOKEN_HEADERS, status=200)
    assert store.items(rid)["RESCUE"] == "yes"
    assert doors["cli"]("host_config", COLON_MAC, "rescue", "off").returncode == 0
    assert "RESCUE" not in store.items(rid)
    bad = doors["cli"]("host_config", COLON_MAC, "rescue", "maybe")
    assert bad.returncode == 2 and "on or off" in bad.stderr
    doors["admin"].post(f"/api/v1/hosts/{MAC}/rescue/maybe", headers=TOKEN_HEADERS, status=404)
    assert "RESCUE" not in store.items(rid)

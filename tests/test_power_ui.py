"""Power on the host page, as an admin's browser uses it: the BMC and the last known state
shown (never the password), buttons that start an action off the request path and show its
outcome, and a reinstall that also asks the BMC for a network boot and a power cycle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest
from bmc_emulators import Redfish, sushy_emulator, system_uuid, wol_listener
from conftest import provide_os_files
from test_power_actions import REDFISH_PASSWORD, REDFISH_USER, emulated
from test_ui import admin, app, secret_of  # noqa: F401 (fixtures of the host page)

from hps_api.ops import power as power_ops
from hps_api.power.bmc import Bmc
from hps_api.store import FileStore, RecordId
from hps_api.web import csrf

MAC = "525400aabb01"


@pytest.fixture(scope="module")
def redfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redfish]:
    with sushy_emulator(tmp_path_factory.mktemp("redfish"), systems=1) as running:
        yield running


@pytest.fixture
def host(store: FileStore) -> RecordId:
    rid = RecordId.of_host("default", MAC)
    store.update(rid, {"STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001",
                       "IP": "10.99.0.11"}, "test:setup", create=True)
    return rid


def post(admin: webtest.TestApp, secret: bytes, path: str) -> webtest.TestResponse:  # noqa: F811
    return admin.post(path, {"csrf_token": csrf.issue(secret, path)}, status=303)


def finished(admin: webtest.TestApp, location: str) -> str:  # noqa: F811
    """Return the host page once the action it names has finished (bounded wait)."""
    deadline = time.monotonic() + 30
    while True:
        page = admin.get(location).text
        if "<strong>done</strong>" in page or "<strong>failed</strong>" in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def test_a_host_without_bmc_says_how_to_set_one(admin, host) -> None:  # noqa: F811
    page = admin.get(f"/hosts/{MAC}").text
    assert "No BMC set" in page and "hps-api bmc set" in page
    assert 'id="power-on"' not in page


def test_wake_on_lan_gets_only_the_on_button_and_it_sends_the_packet(
        admin, host, store, tmp_path: Path, config_dir: Path) -> None:  # noqa: F811
    secret = secret_of(tmp_path, config_dir)
    with wol_listener() as listener:
        port = listener.getsockname()[1]
        power_ops.set_bmc(store, "default", MAC, Bmc("wol", f"127.255.255.255:{port}"), "t")
        page = admin.get(f"/hosts/{MAC}").text
        assert 'id="power-on"' in page
        assert not any(f'id="power-{name}"' in page for name in ("off", "cycle", "pxe-once"))
        answer = post(admin, secret, f"/hosts/{MAC}/power/on")
        packet, _ = listener.recvfrom(1024)
    assert packet[6:12] == bytes.fromhex(MAC)
    assert "done=power&action=" in answer.location
    assert "Action on: <strong>done</strong>" in finished(admin, answer.location)


def test_redfish_buttons_act_and_the_password_is_never_shown(
        admin, host, store, redfish, tmp_path: Path, config_dir: Path) -> None:  # noqa: F811
    secret = secret_of(tmp_path, config_dir)
    power_ops.set_bmc(store, "default", MAC, Bmc(
        "redfish", redfish.url, system_id=system_uuid(0), username=REDFISH_USER,
        password=REDFISH_PASSWORD), "t")
    page = admin.get(f"/hosts/{MAC}").text
    assert REDFISH_PASSWORD not in page and "password set" in page
    assert all(f'id="power-{name}"' in page for name in ("on", "off", "cycle", "pxe-once"))
    done = finished(admin, post(admin, secret, f"/hosts/{MAC}/power/on").location)
    assert "Action on: <strong>done</strong>" in done
    assert emulated(redfish, 0)["PowerState"] == "On"
    admin.post(f"/hosts/{MAC}/power/explode",
               {"csrf_token": csrf.issue(secret, f"/hosts/{MAC}/power/explode")}, status=404)


def test_reinstall_with_a_bmc_also_boots_the_network_once_and_cycles(
        admin, host, store, redfish, tmp_path: Path, config_dir: Path) -> None:  # noqa: F811
    secret = secret_of(tmp_path, config_dir)
    store.update(RecordId.of_os("x86_64:rocky:10"), {"STATUS": "prod", "HPS_TYPES": "SCH"}, "t",
                 create=True)
    store.update(RecordId.of_os("x86_64:rocky:10"), {"REPO_PATH": "rocky/10"}, "t")
    store.update(RecordId.of_cluster("default"), {"OS_SCH": "x86_64:rocky:10"}, "t")
    provide_os_files(tmp_path / "resources", store)
    power_ops.set_bmc(store, "default", MAC, Bmc(
        "redfish", redfish.url, system_id=system_uuid(0), username=REDFISH_USER,
        password=REDFISH_PASSWORD), "t")
    answer = post(admin, secret, f"/hosts/{MAC}/reinstall")
    assert "done=reinstall_power&action=" in answer.location
    page = finished(admin, answer.location)
    assert "Action pxe-once + cycle: <strong>done</strong>" in page
    assert store.items(host)["STATE"] == "REINSTALL"
    system: dict[str, Any] = emulated(redfish, 0)
    assert system["Boot"]["BootSourceOverrideTarget"] == "Pxe"


def test_a_bulk_power_action_is_queued_per_host_and_a_host_without_bmc_is_named(
        admin, host, store) -> None:  # noqa: F811
    from test_bulk import review

    other = RecordId.of_host("default", "525400aabb02")
    store.update(other, {"STATE": "INSTALLED"}, "test:setup", create=True)
    with wol_listener() as listener:
        port = listener.getsockname()[1]
        power_ops.set_bmc(store, "default", MAC, Bmc("wol", f"127.255.255.255:{port}"), "t")
        page = review(admin, "power_on", [MAC, "525400aabb02"]).forms["confirm"].submit()
        packet, _ = listener.recvfrom(1024)
    assert packet[6:12] == bytes.fromhex(MAC)
    assert "1 done, 1 refused" in page.text
    assert "has no BMC" in page.text and "on queued (action" in page.text


def test_the_dashboard_counts_hosts_by_their_last_read_power_state(
        admin, host, store) -> None:  # noqa: F811
    from hps_api.power.records import StateBook

    assert 'id="power-counts"' not in admin.get("/").text  # no BMC anywhere: no section
    for n, state in enumerate(("on", "on", "off", None)):
        mac = f"525400aabb1{n}"
        store.update(RecordId.of_host("default", mac), {"STATE": "INSTALLED"}, "t", create=True)
        power_ops.set_bmc(store, "default", mac, Bmc("wol", "10.0.0.255"), "t")
        if state:
            StateBook(store.layout.root).record("default", mac, state, None, "poller")
    counts = power_ops.power_counts(store, "default")
    assert counts == {"on": 2, "off": 1, "error": 0, "unknown": 1}
    page = admin.get("/").text
    assert 'id="power-counts"' in page and "<th scope=\"row\">on</th><td>2</td>" in page

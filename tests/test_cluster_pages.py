"""The cluster's settings page (`/cluster`) and the OS registry page (`/os`): every key with its
meaning, edits through the operations the CLI uses, a refused value shown with its reason and
nothing written; OS records added, edited and removed with a check of their boot files."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_ui
from test_ui import add_host

from hps_api.model.cluster_keys import key_table
from hps_api.model.stuck import LIMITS
from hps_api.store import FileStore, RecordId
from hps_api.web.cluster_pages import settings_rows

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web, admin, bootable = test_ui.app, test_ui.web, test_ui.admin, test_ui.bootable

CLUSTER = RecordId.of_cluster("default")
ROCKY = RecordId.of_os("x86_64:rocky:10")


def row_of(page: str, key: str) -> str:
    """Return the settings table's row of `key`."""
    return page.split(f'<tr id="key-{key}"')[1].split("</tr>")[0]


@pytest.mark.usefixtures("bootable")
def test_every_key_of_the_table_is_listed_with_its_meaning_and_default(web) -> None:
    page = web.get("/cluster").text
    for spec in key_table():
        row = row_of(page, spec.key)
        assert f"<td>{spec.meaning}</td>" in row.replace("&#39;", "'")
        if spec.default:
            assert f"<code>{spec.default}</code>" in row
    assert "10.99.0.1" in row_of(page, "DHCP_IP")


def test_storage_keys_follow_storage_networks_and_free_keys_come_last() -> None:
    rows = settings_rows({"STORAGE_NETWORKS": "2", "NTP_SERVER": "10.0.0.1", "NAME": "x"}, (),
                         admin=False)
    keys = [row.key for row in rows]
    assert keys[-4:] == ["STORAGE1_GATEWAY", "STORAGE1_MTU", "NAME", "NTP_SERVER"]
    assert "STORAGE0_CIDR" in keys and "STORAGE2_CIDR" not in keys
    named = {row.key: row for row in rows}
    assert not named["NAME"].editable and named["NTP_SERVER"].meaning == "a free key (no check)"


@pytest.mark.usefixtures("bootable")
def test_an_admin_changes_a_key_and_is_sent_back_to_it(admin, store: FileStore) -> None:
    form = admin.get("/cluster").forms["set-MENU_TIMEOUT"]
    form["value"] = "120"
    done = form.submit(status=303)
    assert done.headers["Location"].endswith("/cluster?saved=MENU_TIMEOUT#key-MENU_TIMEOUT")
    assert store.items(CLUSTER)["MENU_TIMEOUT"] == "120"
    assert "Saved MENU_TIMEOUT." in done.follow().text
    assert store.history(CLUSTER)[-1].actor == "admin:alice"


@pytest.mark.usefixtures("bootable")
@pytest.mark.parametrize(("key", "value", "reason"), [
    ("DHCP_IP", "10.50.0.1", "not a host address of NETWORK_CIDR"),
    ("MENU_TIMEOUT", "2", "whole number from 5 to 3600"),
    ("LOCAL_BOOT", "floppy", "must be"),
    ("OS_SCH", "x86_64:nothing:1", "x86_64:nothing:1"),
])
def test_a_refused_value_comes_back_with_its_reason_and_nothing_is_written(
        admin, config_dir: Path, snapshot, key: str, value: str, reason: str) -> None:
    form = admin.get("/cluster").forms[f"set-{key}"]
    before = snapshot(config_dir)
    form["value"] = value
    page = form.submit(status=400)
    assert snapshot(config_dir) == before
    assert reason in page.text.split('id="refused"')[1].split("</p>")[0]
    row = row_of(page.text, key)
    assert 'class="refused"' in page.text.split(f'<tr id="key-{key}"')[1][:30]
    assert f'value="{value}"' in row  # the value as typed, to fix
    assert reason in row


@pytest.mark.usefixtures("bootable")
def test_an_admin_adds_and_unsets_a_free_key(admin, store: FileStore) -> None:
    form = admin.get("/cluster").forms["add-key"]
    form["key"], form["value"] = "ntp_server", "10.99.0.1"
    form.submit(status=303)
    assert store.items(CLUSTER)["NTP_SERVER"] == "10.99.0.1"
    admin.get("/cluster").forms["unset-NTP_SERVER"].submit(status=303)
    assert "NTP_SERVER" not in store.items(CLUSTER)


@pytest.mark.usefixtures("bootable")
def test_the_stuck_thresholds_are_listed_with_their_defaults_before_anyone_sets_them(
        admin, store: FileStore) -> None:
    page = admin.get("/cluster")
    for key, limit in LIMITS.items():
        assert key not in store.items(CLUSTER)
        row = row_of(page.text, key)
        assert f"({limit.low}-{limit.high})" in row and str(limit.default) in row, row
    form = page.forms["set-KERNEL_FETCH_MINUTES"]
    form["value"] = "15"
    form.submit(status=303)
    assert store.items(CLUSTER)["KERNEL_FETCH_MINUTES"] == "15"


@pytest.mark.usefixtures("bootable")
def test_non_admins_read_the_settings_without_forms_or_secrets(web, store) -> None:
    store.update(CLUSTER, {"ROOT_PASSWORD": "hunter2"}, "t")
    page = web.get("/cluster").text
    assert "<form" not in page.split("</header>")[1]
    assert "hunter2" not in page
    assert '<span class="withheld">hidden</span>' in row_of(page, "ROOT_PASSWORD")
    web.post("/cluster/set", {"key": "MENU_TIMEOUT", "value": "9"}, status=403)
    assert "MENU_TIMEOUT" not in store.items(CLUSTER)


# -- the OS registry -------------------------------------------------------------------------


def add_os_form(admin, os_id: str, **fields: str):  # type: ignore[no-untyped-def]
    form = admin.get("/os").forms["add-os"]
    form["os_id"] = os_id
    for name, value in fields.items():
        form[name] = value
    return form


@pytest.mark.usefixtures("bootable")
def test_the_registry_lists_records_their_boot_files_and_users(web, store, tmp_path) -> None:
    add_host(store, "52:54:00:aa:bb:01", OS_ID="x86_64:rocky:10")
    store.update(CLUSTER, {"OS_SCH": "x86_64:rocky:10"}, "t")
    boot = tmp_path / "resources/distros/rocky/10/images/pxeboot"
    kept = {name: (boot / name).read_bytes() for name in ("vmlinuz", "initrd.img")
            if (boot / name).is_file()}  # what the bootable fixture provided
    for name in kept:
        (boot / name).unlink()
    row = web.get("/os").text.split('id="os-x86_64-rocky-10"')[1].split("</tr>")[0]
    assert "missing: kernel, initrd" in row
    assert "OS_SCH" in row and ">1 host</a>" in row
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "vmlinuz").write_text("k")
    (boot / "initrd.img").write_text("i")
    assert '<td class="ok">present</td>' in web.get("/os").text


@pytest.mark.usefixtures("bootable")
def test_an_admin_adds_edits_and_removes_an_os(admin, store: FileStore) -> None:
    rid = RecordId.of_os("x86_64:alma:9")
    add_os_form(admin, "x86_64:alma:9", status="test", hps_types="sch,drh", repo_path="alma/9",
                kernel="vmlinuz", initrd="initrd.img").submit(status=303)
    assert store.items(rid)["HPS_TYPES"] == "SCH,DRH"
    edit = admin.get("/os").forms["edit-x86_64-alma-9"]
    edit["status"] = "prod"
    edit.submit(status=303)
    assert store.items(rid)["STATUS"] == "prod"
    remove = admin.get("/os").forms["remove-x86_64-alma-9"]
    admin.post("/os/remove", {"os_id": "x86_64:alma:9",
                              "csrf_token": remove["csrf_token"].value}, status=400)
    assert store.exists(rid)
    remove["confirm"] = True
    remove.submit(status=303)
    assert not store.exists(rid)


@pytest.mark.usefixtures("bootable")
@pytest.mark.parametrize(("os_id", "fields", "reason"), [
    ("x86_64:alma:9", {"status": "prod", "repo_path": "../etc", "kernel": "k", "initrd": "i",
                       "hps_types": "SCH"}, "relative path"),
    ("x86_64:alma:9", {"status": "prod", "repo_path": "alma/9", "kernel": "k", "initrd": "i",
                       "hps_types": ""}, "HPS_TYPES is required"),
    ("not an id", {"hps_types": "SCH"}, "OS id"),
])
def test_a_refused_os_is_named_with_the_reason_and_nothing_is_written(
        admin, config_dir: Path, snapshot, os_id, fields, reason) -> None:
    form = add_os_form(admin, os_id, **fields)
    before = snapshot(config_dir)
    page = form.submit(status=400)
    assert reason in page.text.split('id="refused"')[1].split("</p>")[0]
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("bootable")
def test_adding_an_os_that_exists_is_a_conflict(admin, store) -> None:
    form = add_os_form(admin, "x86_64:rocky:10", status="prod", hps_types="SCH",
                       repo_path="r", kernel="k", initrd="i")
    assert "exists already" in form.submit(status=409).text
    assert store.items(ROCKY)["REPO_PATH"] == "rocky/10"

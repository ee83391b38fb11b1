"""The storage page (`/storage`): storage hosts with their room, volumes, queued jobs, and an
admin's form that queues a thin host's root disk through the operation the API and the CLI use;
a refused request shows its reason with nothing written; a browser that is not an admin's sees
no form and may not post."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_ui

from hps_api.store import FileStore, RecordId

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web, admin = test_ui.app, test_ui.web, test_ui.admin

SCH, TCH = "525400aabb01", "525400aabb03"
G = 1 << 30


@pytest.fixture(autouse=True)
def storage(store: FileStore) -> None:
    """A storage host with 100 GiB free and a thin host without a disk."""
    store.update(RecordId.of_cluster("default"), {"CREATED": "2026-11-21T10:00:00Z"}, "t")
    store.update(RecordId.of_host("default", SCH), {
        "STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001", "STORAGE_FREE": str(100 * G),
        "STORAGE_POOL": "file:/var/lib/hps/pool"}, "t", create=True)
    store.update(RecordId.of_host("default", TCH), {
        "STATE": "NETWORK_BOOT", "TYPE": "TCH", "HOSTNAME": "tch-001"}, "t", create=True)
    with store.lock("default"):  # its lock file exists from now on, as on any used IPS
        pass


def test_the_page_lists_storage_hosts_with_their_room(web) -> None:
    page = web.get("/storage").text
    row = page.split(f'<tr id="sch-{SCH}">')[1].split("</tr>")[0]
    assert "sch-001" in row and "100.0 GiB" in row and "file:/var/lib/hps/pool" in row
    assert "No job waiting." in page
    assert 'id="provision"' not in page  # a form only for admins
    assert 'href="/storage"' in page  # in the navigation


def test_an_admin_queues_a_root_disk_and_sees_the_job_and_the_choice(
        admin, store: FileStore) -> None:
    form = admin.get("/storage").forms["provision"]
    form["mac"], form["size"] = TCH, "40G"
    page = form.submit(status=200).text
    planned = page.split('id="planned"')[1].split("</div>")[0]
    assert f"provision tch-001-root0 (40G) on {SCH}" in planned
    assert "iqn.2026-11.default:tch-001.root0" in planned
    assert "sch-001" in planned  # the choice in words names the storage host
    jobs = [key for key in store.items(RecordId.of_host("default", SCH))
            if key.startswith("STORAGE_JOB_")]
    assert len(jobs) == 1
    assert "provision" in page.split('id="jobs"')[1]


@pytest.mark.parametrize(("mac", "size", "status", "reason"), [
    (TCH, "40X", 400, "a whole number and K, M, G or T"),
    (TCH, "100K", 400, "whole number of MiB"),
    (TCH, "500G", 409, "room"),
    (SCH, "40G", 400, "thin"),
    ("52:54:00:00:00:99", "40G", 404, "not found"),
])
def test_a_refused_request_shows_why_and_writes_nothing(
        admin, config_dir: Path, snapshot, mac: str, size: str, status: int,
        reason: str) -> None:
    form = admin.get("/storage").forms["provision"]
    before = snapshot(config_dir)
    form["mac"], form["size"] = mac, size
    page = form.submit(status=status).text
    refused = page.split('id="refused">')[1].split("</p>")[0]
    assert reason.lower() in refused.lower(), refused
    assert f'value="{size}"' in page  # as typed, to fix
    assert snapshot(config_dir) == before


def test_a_browser_that_is_not_an_admins_may_not_queue(web, store: FileStore) -> None:
    web.post("/storage/provision", {"mac": TCH, "size": "40G"}, status=403)
    assert not [key for key in store.items(RecordId.of_host("default", SCH))
                if key.startswith("STORAGE_JOB_")]


def test_an_admins_post_without_the_forms_csrf_token_is_refused(
        admin, config_dir: Path, snapshot) -> None:
    # what a page on another site can make the admin's browser send: no token of ours
    before = snapshot(config_dir)
    page = admin.post("/storage/provision", {"mac": TCH, "size": "40G"},
                      headers={"Origin": "http://evil.example"}, status=403)
    assert "CSRF" in page.text or "another site" in page.text.lower(), page.text[:300]
    assert snapshot(config_dir) == before

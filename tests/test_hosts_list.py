"""The host list: `/hosts` and `GET /api/v1/hosts` search, filter, sort and page the same way,
every choice a query parameter; the worker's host index reads each record once and parses only
what changed."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import test_ui
import webtest
from test_ui import OUTSIDER, TOKEN, add_host, make_app

from hps_api.ops import host_index
from hps_api.ops.host_index import HostIndex, read_all
from hps_api.store import FileStore, RecordId

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web, admin = test_ui.app, test_ui.web, test_ui.admin

API = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def forty(store: FileStore) -> None:
    """40 hosts: h-001..h-040, every fifth FAILED, the others INSTALLED, seen in MAC order."""
    for n in range(1, 41):
        add_host(store, f"52:54:00:00:01:{n:02x}", HOSTNAME=f"h-{n:03d}",
                 STATE="FAILED" if n % 5 == 0 else "INSTALLED", TYPE="SCH" if n % 2 else "TCH",
                 IP=f"10.99.0.{100 + n}", LAST_SEEN=f"2025-01-02T10:{n:02d}:00Z")


def listed(page: webtest.TestResponse) -> list[str]:
    """Return the hostnames of the host list's table, in order."""
    table = page.text.split('id="hosts"')[1].split("</table>")[0]
    return re.findall(r"<td>(h-\d{3})</td>", table)


@pytest.mark.usefixtures("forty")
def test_the_list_shows_a_page_of_hosts_newest_activity_first(web) -> None:
    page = web.get("/hosts")
    assert listed(page) == [f"h-{n:03d}" for n in range(40, 0, -1)]
    assert "40 hosts; showing 1\u201340" in page.text
    small = web.get("/hosts?per_page=15&page=2")
    assert listed(small) == [f"h-{n:03d}" for n in range(25, 10, -1)]
    assert "showing 16\u201330" in small.text


@pytest.mark.usefixtures("forty")
def test_search_filter_sort_and_page_are_query_parameters_kept_by_every_link(web) -> None:
    page = web.get("/hosts?q=h-0&state=INSTALLED&sort=hostname&per_page=10&page=2")
    assert listed(page) == ["h-013", "h-014", "h-016", "h-017", "h-018", "h-019", "h-021",
                            "h-022", "h-023", "h-024"]
    assert "32 hosts match; showing 11\u201320" in page.text
    nxt = re.search(r'<a href="([^"]+)">next →</a>', page.text)
    assert nxt is not None
    assert nxt.group(1) == "/hosts?q=h-0&amp;state=INSTALLED&amp;sort=hostname&amp;page=3&amp;" \
                          "per_page=10"
    follow = web.get(nxt.group(1).replace("&amp;", "&"))
    assert listed(follow)[0] == "h-026"
    heading = re.search(r'<a href="([^"]+)" id="sort-hostname">Hostname ▲</a>', page.text)
    assert heading is not None and "sort=-hostname" in heading.group(1)
    assert "&amp;page=" not in heading.group(1)  # a new order starts at the first page


@pytest.mark.usefixtures("forty")
def test_the_filter_form_shows_the_current_choices(web) -> None:
    page = web.get("/hosts?q=h-01&state=FAILED&type=sch")
    form = page.forms["filters"]
    assert (form["q"].value, form["state"].value, form["type"].value) == ("h-01", "FAILED", "SCH")
    assert listed(page) == ["h-015"]


@pytest.mark.usefixtures("forty")
def test_a_bad_parameter_is_a_400_page_naming_it(web) -> None:
    page = web.get("/hosts?sort=colour", status=400)
    assert "sort must be one of" in page.text
    assert page.content_type == "text/html"


@pytest.mark.usefixtures("forty")
def test_only_admins_get_checkboxes_and_the_bulk_form(web, admin) -> None:
    assert "<form method=\"post\"" not in web.get("/hosts").text
    page = admin.get("/hosts?state=FAILED")
    form = page.forms["bulk"]
    assert len(form.fields["mac"]) == 8
    assert form["scope"].value == "selected"
    hidden = {name: field[0].value for name, field in form.fields.items()
              if name in ("state", "q")}
    assert hidden == {"state": "FAILED"}


def test_a_rescue_host_is_shown_as_rescue_and_a_failed_self_test_as_fail(web, store) -> None:
    add_host(store, "52:54:00:00:01:01", STATE="INSTALLED", RESCUE="yes", HOSTNAME="r-1",
             SELFTEST_RESULT="fail:disk")
    row = web.get("/hosts").text.split('id="hosts"')[1]
    assert '<span class="state state-rescue" title="RESCUE=yes: boots the rescue image ' \
           '(STATE=INSTALLED)">RESCUE</span>' in row
    assert '<span class="result result-fail">FAIL</span>' in row


def test_times_read_as_how_long_ago_with_the_exact_time_on_hover(web, store) -> None:
    add_host(store, "52:54:00:00:01:01", LAST_SEEN="2000-01-02T03:04:05Z", BOOT_TIME="946782245")
    assert ('<time datetime="2000-01-02T03:04:05Z" title="2000-01-02T03:04:05Z">2000-01-02'
            "</time>") in web.get("/hosts").text
    record = web.get("/hosts/525400000101").text.split("<h2>Record</h2>")[1]
    assert re.search(r'BOOT_TIME</th><td>946782245 <span class="muted">\(<time datetime='
                     r'"2000-01-02T03:04:05Z"[^>]*>2000-01-02</time>, 2000-01-02T03:04:05Z\)',
                     record)


# -- the JSON API ----------------------------------------------------------------------------


@pytest.mark.usefixtures("forty")
def test_the_api_takes_the_same_parameters_and_says_where_the_page_stands(web) -> None:
    answer = web.get("/api/v1/hosts?q=h-0&state=installed&sort=-hostname&per_page=5&page=2",
                     headers=API).json["data"]
    assert [h["hostname"] for h in answer["hosts"]] == ["h-033", "h-032", "h-031", "h-029",
                                                        "h-028"]
    assert (answer["total"], answer["page"], answer["per_page"], answer["pages"]) == (32, 2, 5, 7)
    everything = web.get("/api/v1/hosts", headers=API).json["data"]
    assert (len(everything["hosts"]), everything["per_page"], everything["pages"]) == (40, None, 1)
    assert web.get("/api/v1/hosts?per_page=5&page=9", headers=API).json["data"]["hosts"] == []


@pytest.mark.parametrize("query", ["sort=nope", "per_page=0", "state=BOGUS", "page=-1",
                                   "q=1a%3Dx"])
def test_the_api_refuses_a_bad_parameter_with_400(web, query: str) -> None:
    answer = web.get(f"/api/v1/hosts?{query}", headers=API, status=400).json
    assert answer["ok"] is False


def test_an_unreadable_record_is_named_whatever_the_query(web, store, config_dir) -> None:
    add_host(store, "52:54:00:00:01:01", HOSTNAME="fine")
    (config_dir / "clusters/default/hosts/525400000109.conf").write_text("not a record\n")
    paged = web.get("/api/v1/hosts?per_page=10", headers=API).json["data"]
    assert [u["mac"] for u in paged["unreadable"]] == ["525400000109"]
    assert [h["mac"] for h in paged["hosts"]] == ["525400000101"]
    plain = web.get("/api/v1/hosts", headers=API).json["data"]["hosts"]
    assert plain[-1]["mac"] == "525400000109" and "corrupt record" in plain[-1]["error"]
    assert "corrupt record" in web.get("/hosts").text


# -- the host index --------------------------------------------------------------------------


class CountingStore(FileStore):
    """A FileStore that counts the records it parses."""

    parsed = 0

    def items(self, rid: RecordId) -> dict[str, str]:
        """Count, then read as FileStore does."""
        CountingStore.parsed += 1
        return super().items(rid)


@pytest.fixture
def counting(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    """A counting store over the test config dir, files settled as soon as written."""
    monkeypatch.setattr(host_index, "SETTLE_SECONDS", 0)
    CountingStore.parsed = 0
    return CountingStore(config_dir, lock_timeout=0.5)


def test_the_index_parses_a_record_again_only_when_its_files_changed(counting) -> None:
    rids = [add_host(counting, f"52:54:00:00:01:{n:02x}", HOSTNAME=f"h-{n}") for n in (1, 2, 3)]
    index = HostIndex()
    first = index.read(counting, "default")
    assert sorted(first.records) == ["525400000101", "525400000102", "525400000103"]
    CountingStore.parsed = 0
    index.read(counting, "default")
    assert CountingStore.parsed == 0
    counting.update(rids[0], {"HOSTNAME": "renamed-1"}, "t")
    counting.stamp(rids[1], {"LAST_SEEN": "2025-01-02T10:00:00Z"}, "t")
    counting.delete(rids[2], "t")
    CountingStore.parsed = 0
    again = index.read(counting, "default")
    assert CountingStore.parsed == 2
    assert again.records["525400000101"]["HOSTNAME"] == "renamed-1"
    assert again.records["525400000102"]["LAST_SEEN"] == "2025-01-02T10:00:00Z"
    assert "525400000103" not in again.records


def test_a_file_changed_within_the_settle_time_is_read_at_every_request(
        counting, monkeypatch: pytest.MonkeyPatch) -> None:
    add_host(counting, "52:54:00:00:01:01", HOSTNAME="h-1")
    monkeypatch.setattr(host_index, "SETTLE_SECONDS", 3600)
    index = HostIndex()
    index.read(counting, "default")
    CountingStore.parsed = 0
    index.read(counting, "default")
    assert CountingStore.parsed == 1


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(counting) -> None:
    rid = add_host(counting, "52:54:00:00:01:01", HOSTNAME="h-1")
    index = HostIndex()
    index.read(counting, "default")
    path = counting.layout.path(rid)
    before = os.stat(path)
    path.write_text(path.read_text().replace("h-1", "h-2"))  # same size, new ctime
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert index.read(counting, "default").records["525400000101"]["HOSTNAME"] == "h-2"


def test_any_other_store_is_read_record_by_record(store: FileStore) -> None:
    add_host(store, "52:54:00:00:01:01", HOSTNAME="h-1")
    assert read_all(store, "default").records == HostIndex().read(store, "default").records


def test_a_host_list_of_a_missing_cluster_is_a_404(tmp_path: Path, config_dir: Path) -> None:
    client = webtest.TestApp(make_app(tmp_path, config_dir), extra_environ={
        "REMOTE_ADDR": OUTSIDER})
    assert "not found" in client.get("/api/v1/hosts?cluster=nope", headers=API,
                                     status=404).json["error"]["message"]

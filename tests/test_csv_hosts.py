"""CSV import and export of hosts (hps_api.ops.csv_hosts, `/hosts/import`, `/hosts.csv`): the
whole file is checked before anything is written, each problem names its line, the preview says
what each line will do, and an exported file imports back as "no change"."""

from __future__ import annotations

from pathlib import Path

import pytest
import test_ui
from test_ui import add_host

from hps_api.ops import csv_hosts
from hps_api.ops.host_index import HostIndex
from hps_api.store import FileStore, RecordId

#: the page fixtures of test_ui: the real app, a LAN browser, a logged-in admin
app, web, admin, bootable = test_ui.app, test_ui.web, test_ui.admin, test_ui.bootable

GOOD = """MAC,HOSTNAME,TYPE,PROFILE,IP,RACK
52:54:00:aa:bb:10,sch-010,SCH,DEFAULT,10.99.0.10,r01
52-54-00-aa-bb-11,sch-011,sch,,10.99.0.11,r01
525400aabb12,,,,,r02
"""


def records(store: FileStore) -> dict:  # type: ignore[type-arg]
    return HostIndex().read(store, "default").records


def plan_of(store: FileStore, text: str) -> csv_hosts.Plan:
    return csv_hosts.check(store, "default", text, records(store))


@pytest.mark.usefixtures("bootable")
def test_a_good_file_plans_registration_keys_and_configuration(store: FileStore) -> None:
    plan = plan_of(store, GOOD)
    assert plan.ok, plan.problems
    first, second, third = plan.lines
    assert (first.number, first.mac, first.new) == (2, "525400aabb10", True)
    assert first.changes == [("HOSTNAME", None, "sch-010"), ("IP", None, "10.99.0.10"),
                             ("RACK", None, "r01")]
    assert first.configure == ("SCH", "DEFAULT") and second.configure == ("SCH", "DEFAULT")
    assert third.changes == [("RACK", None, "r02")] and third.configure is None


@pytest.mark.usefixtures("bootable")
@pytest.mark.parametrize(("line", "problem"), [
    ("nonsense,x,,,,", "line 3 (nonsense): invalid MAC address"),
    ("52:54:00:aa:bb:13,sch-013,SCH,,10.99.0.1,", "is the IPS's own address"),
    ("52:54:00:aa:bb:13,sch-013,SCH,,10.99.0.200,", "lies in the DHCP range"),
    ("52:54:00:aa:bb:13,SCH_13,SCH,,,", "HOSTNAME"),
    ("52:54:00:aa:bb:13,sch-013,XYZ,,,", "unknown host type"),
    ("52:54:00:aa:bb:13,sch-013,TCH,DEFAULT,,", "no OS for TCH"),
    ("52:54:00:aa:bb:13,sch-013,SCH,KVM,,", "no profile"),
    ("52:54:00:aa:bb:10,sch-099,,,,", "MAC 525400aabb10 is on line 2 too"),
    ("52:54:00:aa:bb:13,sch-010,,,,", "HOSTNAME sch-010 is on line 2 too"),
    ("52:54:00:aa:bb:13,,,,10.99.0.10,", "IP 10.99.0.10 is on line 2 too"),
    ("52:54:00:aa:bb:05,sch-005,TCH,,,", "is INSTALLED: only hosts in"),
])
def test_one_bad_line_refuses_the_file_and_is_named(store, config_dir: Path, snapshot,
                                                     line: str, problem: str, settings) -> None:
    add_host(store, "52:54:00:aa:bb:05", STATE="INSTALLED", TYPE="SCH", PROFILE="DEFAULT")
    text = "MAC,HOSTNAME,TYPE,PROFILE,IP,RACK\n52:54:00:aa:bb:10,sch-010,SCH,,10.99.0.10,\n" \
           + line + "\n"
    plan = plan_of(store, text)
    assert not plan.ok
    assert [p for p in plan.problems if problem in p and p.startswith("line 3")], plan.problems
    assert len(plan.problems) == 1, plan.problems
    before = snapshot(config_dir)
    assert csv_hosts.apply(store, settings, "default", text, records(store), "t")[1] == []
    assert snapshot(config_dir) == before


@pytest.mark.parametrize(("text", "problem"), [
    ("", "the file is empty"), ("HOSTNAME,IP\nx,y\n", "no MAC column"),
    ("MAC,STATE\n525400aabb10,INSTALLED\n", "column STATE: is written by the state table"),
    ("MAC,LAST_SEEN\n525400aabb10,x\n", "column LAST_SEEN"),
    ("MAC,HW_CPU\n525400aabb10,x\n", "column HW_CPU"), ("MAC,PATH\n525400aabb10,/x\n", "PATH"),
    ("MAC,MAC\n525400aabb10,525400aabb11\n", "column MAC appears twice"),
    ("MAC,bad key\n525400aabb10,x\n", "invalid key"),
])
def test_a_bad_header_refuses_the_file(store: FileStore, text: str, problem: str) -> None:
    plan = plan_of(store, text)
    assert not plan.ok and any(problem in p for p in plan.problems), plan.problems


@pytest.mark.usefixtures("bootable")
def test_applying_registers_sets_and_configures_through_the_operations(store, settings) -> None:
    plan, results = csv_hosts.apply(store, settings, "default", GOOD, records(store), "admin:a")
    assert plan.ok and [r.ok for r in results] == [True, True, True]
    first = store.items(RecordId.of_host("default", "525400aabb10"))
    assert (first["STATE"], first["TYPE"], first["HOSTNAME"], first["IP"], first["RACK"]) == (
        "CONFIGURED", "SCH", "sch-010", "10.99.0.10", "r01")
    assert store.items(RecordId.of_host("default", "525400aabb12"))["STATE"] == "UNCONFIGURED"
    assert store.history(RecordId.of_host("default", "525400aabb10"))[-1].actor == "admin:a"


@pytest.mark.usefixtures("bootable")
def test_an_export_imports_back_as_no_change(store, settings) -> None:
    csv_hosts.apply(store, settings, "default", GOOD, records(store), "t")
    add_host(store, "52:54:00:aa:bb:20", NOTE="=HYPERLINK(\"x\")", ROOT_PASSWORD="pw")
    exported = csv_hosts.export(records(store), ("*PASSWORD*",), admin=False)
    header, *lines = exported.splitlines()
    assert header == "MAC,HOSTNAME,TYPE,PROFILE,IP,NOTE,RACK"
    assert lines[0] == "52:54:00:aa:bb:10,sch-010,SCH,DEFAULT,10.99.0.10,,r01"
    assert "'=HYPERLINK" in exported  # a spreadsheet does not run it as a formula
    assert "pw" not in exported
    plan = plan_of(store, exported)
    assert plan.ok and all(line.unchanged for line in plan.lines), plan.problems
    admin_copy = csv_hosts.export(records(store), ("*PASSWORD*",), admin=True)
    assert "ROOT_PASSWORD" in admin_copy.splitlines()[0]


# -- the pages ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("bootable")
def test_the_preview_shows_what_each_line_does_and_the_import_applies_it(admin, store) -> None:
    form = admin.get("/hosts/import").forms["import"]
    form["file"] = ("hosts.csv", GOOD.encode())
    preview = form.submit()
    assert "3 lines: 3 new, 0 changed, 0 unchanged" in preview.text
    line = preview.text.split('id="line-2"')[1].split("</tr>")[0]
    assert "<strong>new host</strong>" in line and "configure as <strong>SCH/DEFAULT" in line
    assert not store.exists(RecordId.of_host("default", "525400aabb10"))
    done = preview.forms["import-apply"].submit()
    assert "3 lines imported" in done.text
    assert store.items(RecordId.of_host("default", "525400aabb11"))["IP"] == "10.99.0.11"


@pytest.mark.usefixtures("bootable")
def test_a_pasted_file_with_one_bad_line_is_refused_naming_it(
        admin, config_dir: Path, snapshot) -> None:
    form = admin.get("/hosts/import").forms["import"]
    form["csv"] = GOOD + "52:54:00:aa:bb:13,sch-013,SCH,,10.99.0.250,r09\n"
    before = snapshot(config_dir)
    page = form.submit(status=400)
    refused = page.text.split('id="import-refused"')[1].split("</div>")[0]
    assert "nothing was written" in refused
    assert "line 5 (52:54:00:aa:bb:13): IP 10.99.0.250 lies in the DHCP range" in refused
    assert "import-apply" not in page.text
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("bootable")
def test_the_export_follows_the_host_list_filters(web, store) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="FAILED", HOSTNAME="f-1")
    add_host(store, "52:54:00:aa:bb:02", STATE="INSTALLED", HOSTNAME="i-2")
    answer = web.get("/hosts.csv?state=FAILED")
    assert answer.content_type == "text/csv"
    assert 'filename="hosts-default.csv"' in answer.headers["Content-Disposition"]
    assert answer.text.splitlines()[1:] == ["52:54:00:aa:bb:01,f-1,,,"]
    assert "/hosts.csv?state=FAILED" in web.get("/hosts?state=FAILED").text


def test_non_admins_cannot_import(web, store) -> None:
    assert "Only admins import hosts" in web.get("/hosts/import").text
    web.post("/hosts/import", {"csv": GOOD}, status=403)
    assert not store.exists(RecordId.of_host("default", "525400aabb10"))

"""Thin hosts' iSCSI disks through every door (docs/storage-hosts.md): `/api/v1/storage`, the
storage host's `cmd=storage_work` / `cmd=storage_report`, and `hps-api storage`. Each door
gives the operation's verdict; a bad request is a clear error with nothing written.

The storage host is a real LAN neighbour (10.99.0.21 is 52:54:00:aa:bb:01 in the neighbour
table), the thin host another (10.99.0.22), as in tests/test_node_rights.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import webtest
from fakes import BrokenStore

from hps_api.cli import main
from hps_api.errors import StoreBusy
from hps_api.store import FileStore, RecordId, factory
from hps_api.web.app import build_app

URL = "/cgi-bin/boot_manager.sh"
SCH, TCH = "525400aabb01", "525400aabb03"
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n"
       "10.99.0.22       0x1         0x2         52:54:00:aa:bb:03     *        br0\n")
CURL = {"User-Agent": "curl/8.5.0"}
AS_TCH = {"REMOTE_ADDR": "10.99.0.22"}
ADMIN = {"REMOTE_ADDR": "10.99.0.50", "HTTP_AUTHORIZATION": "Bearer admin-token-1"}
G = 1 << 30
IQN = "iqn.2026-11.default:tch-001.root0"
INITIATOR = "iqn.2026-11.default:tch-001.initiator"
LUN = f"10.99.0.21:3260:{IQN}"


@pytest.fixture(autouse=True)
def lan(tmp_path: Path, store: FileStore, host: RecordId) -> None:
    (tmp_path / "arp").write_text(ARP)
    store.update(RecordId.of_cluster("default"), {"CREATED": "2026-11-21T10:00:00Z"}, "t")
    store.update(host, {"STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001",
                        "STORAGE_FREE": str(100 * G)}, "t")
    store.update(RecordId.of_host("default", TCH), {"STATE": "NETWORK_BOOT", "TYPE": "TCH",
                                                    "HOSTNAME": "tch-001"}, "t", create=True)
    with store.lock("default"):  # its lock file exists from now on, as on any used IPS
        pass


@pytest.fixture
def everything(store: FileStore, config_dir: Path, snapshot):  # type: ignore[no-untyped-def]
    """What is on disk: every record file and journal (nothing may change on a refusal)."""
    return lambda: snapshot(config_dir)


def provision(web, size: str = "40G", status: int = 202):  # type: ignore[no-untyped-def]
    return web.post_json("/api/v1/storage/provision", {"mac": TCH, "size": size},
                         extra_environ=ADMIN, status=status)


def work(web, environ: dict[str, str] | None = None, status: int = 200) -> str:
    return str(web.get(f"{URL}?cmd=storage_work", headers=CURL, extra_environ=environ,
                       status=status).text)


# --- the JSON API -------------------------------------------------------------------------

def test_provision_answers_202_with_the_job_and_the_choice_in_words(web) -> None:
    answer = provision(web).json["data"]
    assert [(j["storage_host"], j["iqn"], j["state"]) for j in answer["jobs"]] == [
        (SCH, IQN, "queued")]
    assert answer["choice"] == ["sch-001 (525400aabb01): 100.0 GiB free, 0 volume(s) - chosen"]
    listed = web.get("/api/v1/storage", extra_environ=ADMIN).json["data"]
    assert listed["jobs"][0]["id"] == answer["jobs"][0]["id"]


def test_no_room_answers_409_saying_why_and_writes_nothing(web, everything) -> None:
    before = everything()
    answer = provision(web, "200G", status=409).json
    assert "too little for 200.0 GiB" in answer["error"]["message"]
    assert everything() == before


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/v1/storage/provision", {"mac": TCH, "size": "lots"}, 400),
    ("/api/v1/storage/provision", {"mac": "not-a-mac", "size": "40G"}, 400),
    ("/api/v1/storage/provision", {"mac": "525400aabb99", "size": "40G"}, 404),
    ("/api/v1/storage/provision", {"mac": SCH, "size": "40G"}, 400),
    ("/api/v1/storage/provision", {"mac": TCH}, 400),
    ("/api/v1/storage/provision", {"mac": TCH, "size": "40G", "extra": "x"}, 400),
    (f"/api/v1/storage/volumes/{IQN}/expand", {"size": "50G"}, 404),
    ("/api/v1/storage/volumes/not-an-iqn/expand", {"size": "50G"}, 400),
    (f"/api/v1/storage/volumes/{IQN}/delete", None, 404),
])
def test_a_bad_api_request_is_a_clear_error_with_nothing_written(
        web, everything, path: str, body: dict | None, status: int) -> None:
    before = everything()
    if body is None:
        answer = web.post(path, extra_environ=ADMIN, status=status)
    else:
        answer = web.post_json(path, body, extra_environ=ADMIN, status=status)
    assert answer.json["ok"] is False and answer.json["error"]["message"]
    assert everything() == before


def test_the_api_is_admin_only(web, everything) -> None:
    before = everything()
    web.post_json("/api/v1/storage/provision", {"mac": TCH, "size": "40G"}, status=403)
    web.get("/api/v1/storage", status=403)
    assert everything() == before


def test_the_api_body_must_be_json(web) -> None:
    web.post("/api/v1/storage/provision", "mac=x", extra_environ=ADMIN, status=415)


# --- the storage host's commands ----------------------------------------------------------

def test_the_whole_queue_through_the_doors(web, store: FileStore) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    assert work(web) == f"{job} provision tch-001-root0 40G {IQN} {INITIATOR}\n"
    assert work(web) == f"{job} provision tch-001-root0 40G {IQN} {INITIATOR}\n"  # silent SCH
    reply = web.get(f"{URL}?cmd=storage_report&job={job}&status=ok&lun={LUN}"
                    f"&size={40 * G}", headers=CURL)
    assert reply.text == "ok\n"
    assert store.items(RecordId.of_host("default", TCH))["ISCSI_ROOT_0"] == LUN
    assert work(web) == ""
    shown = web.get(f"/api/v1/storage/volumes/{IQN}", extra_environ=ADMIN).json["data"]
    assert shown["used_by"] == ["tch-001 ISCSI_ROOT_0"]
    refused = web.post(f"/api/v1/storage/volumes/{IQN}/delete", extra_environ=ADMIN,
                       status=409).json["error"]["message"]
    assert "never deleted under a running host" in refused
    grow = web.post_json(f"/api/v1/storage/volumes/{IQN}/expand", {"size": "50G"},
                         extra_environ=ADMIN, status=202).json["data"]["job"]
    assert work(web) == f"{grow['id']} expand tch-001-root0 50G {IQN} -\n"


def test_the_storage_host_reports_its_capacity_with_host_variable(web, store) -> None:
    web.get(f"{URL}?cmd=host_variable&name=STORAGE_FREE&value={50 * G}", headers=CURL)
    web.get(f"{URL}?cmd=host_variable&name=STORAGE_POOL&value=zfs:tank", headers=CURL)
    listed = web.get("/api/v1/storage", extra_environ=ADMIN).json["data"]["storage_hosts"]
    assert (listed[0]["free"], listed[0]["pool"]) == (50 * G, "zfs:tank")


def test_a_failed_report_is_kept_with_its_reason(web) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    web.get(f"{URL}?cmd=storage_report&job={job}&status=failed&detail=zpool%20full",
            headers=CURL)
    assert work(web) == ""
    listed = web.get("/api/v1/storage", extra_environ=ADMIN).json["data"]
    assert (listed["jobs"][0]["state"], listed["jobs"][0]["detail"]) == ("failed", "zpool full")


@pytest.mark.parametrize(("query", "status"), [
    ("cmd=storage_report&status=ok", 400),
    ("cmd=storage_report&job={job}", 400),
    ("cmd=storage_report&job={job}&status=maybe", 400),
    ("cmd=storage_report&job=zz&status=ok", 400),
    ("cmd=storage_report&job=0123456789ab&status=ok&lun=" + LUN, 404),
    ("cmd=storage_report&job={job}&status=ok&lun=10.99.0.21:3260:iqn.2026-11.default:x.y", 400),
    ("cmd=storage_report&job={job}&status=ok&lun=10.99.0.21", 400),
    ("cmd=storage_report&job={job}&status=ok&lun=" + LUN + "&size=-5", 400),
])
def test_a_bad_report_is_a_clear_error_with_nothing_written(web, everything, query: str,
                                                           status: int) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    before = everything()
    answer = web.get(f"{URL}?{query.format(job=job)}", headers=CURL, status=status)
    assert answer.text.strip()
    assert everything() == before


@pytest.mark.parametrize("query", [
    "cmd=storage_work",
    "cmd=storage_report&job={job}&status=ok&lun=" + LUN,
])
def test_a_thin_host_can_neither_fetch_storage_work_nor_report_a_job(
        web, everything, query: str) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    before = everything()
    answer = web.get(f"{URL}?{query.format(job=job)}", headers=CURL, extra_environ=AS_TCH,
                     status=403)
    assert "no storage host" in answer.text
    assert everything() == before


def test_a_host_cannot_fetch_work_in_a_storage_hosts_name(web, everything) -> None:
    provision(web)
    before = everything()
    web.get(f"{URL}?cmd=storage_work&mac={SCH}", headers=CURL, extra_environ=AS_TCH,
            status=403)
    assert everything() == before


@pytest.mark.parametrize("key", ["STORAGE_JOB_0123456789AB", "STORAGE_VOLUME_X", "ISCSI_ROOT_0",
                                 "TCH_ROOT"])
def test_a_host_cannot_write_the_storage_keys_the_ips_owns(web, everything, key: str) -> None:
    before = everything()
    web.get(f"{URL}?cmd=host_variable&name={key}&value=x", headers=CURL, status=403)
    assert everything() == before


def test_an_admin_may_fetch_a_storage_hosts_work_for_it(web) -> None:
    provision(web)
    answer = web.get(f"{URL}?cmd=storage_work&mac={SCH}", headers=CURL,
                     extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    assert " provision tch-001-root0 " in answer.text


def test_storage_work_as_json(web) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    answer = web.get(f"{URL}?cmd=storage_work&format=json", headers=CURL).json
    assert answer["data"]["jobs"] == [f"{job} provision tch-001-root0 40G {IQN} {INITIATOR}"]


# --- the CLI ------------------------------------------------------------------------------

def test_the_cli_provisions_lists_and_shows(cli, store: FileStore) -> None:
    done = cli("hps-api", "storage", "provision", "52:54:00:aa:bb:03", "40G")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("job ") and "chosen" in done.stdout
    listed = cli("hps-api", "storage", "list", "--json")
    assert json.loads(listed.stdout)["jobs"][0]["iqn"] == IQN
    assert "job " in cli("hps-api", "storage", "list").stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (("storage", "provision", TCH, "40"), 2, "size"),
    (("storage", "provision", TCH, "200G"), 2, "no room"),
    (("storage", "provision", "525400aabb99", "40G"), 1, "not found"),
    (("storage", "provision", TCH), 2, "SIZE"),
    (("storage", "show", "not-an-iqn"), 2, "not an IQN"),
    (("storage", "show", IQN), 1, "no volume"),
    (("storage", "expand", IQN, "50G"), 1, "no volume"),
    (("storage", "delete", IQN), 1, "no volume"),
    (("storage", "frobnicate"), 2, "invalid choice"),
])
def test_a_bad_cli_call_is_a_clear_error_with_nothing_written(
        cli, everything, args: tuple[str, ...], code: int, message: str) -> None:
    before = everything()
    done = cli("hps-api", *args)
    assert (done.returncode, done.stdout) == (code, "")
    assert message in done.stderr
    assert everything() == before


def test_the_cli_refuses_to_delete_a_volume_in_use(cli, web, store: FileStore,
                                                   everything) -> None:
    job = provision(web).json["data"]["jobs"][0]["id"]
    web.get(f"{URL}?cmd=storage_report&job={job}&status=ok&lun={LUN}", headers=CURL)
    before = everything()
    done = cli("hps-api", "storage", "delete", IQN)
    assert done.returncode == 2 and "never deleted under a running host" in done.stderr
    assert everything() == before
    shown = json.loads(cli("hps-api", "storage", "show", IQN, "--json").stdout)
    assert shown["used_by"] == ["tch-001 ISCSI_ROOT_0"]


# --- a failing store, through every door (tests/test_store_errors_by_door.py) --------------

BUSY = "hosts/525400aabb01.conf.lock: still locked after 0.5 s; try again"


@pytest.fixture
def broken(config_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    store = BrokenStore(StoreBusy(BUSY), config_dir)
    monkeypatch.setattr(factory, "open_store", lambda _settings: store)
    return store


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/storage", None),
    ("GET", f"/api/v1/storage/volumes/{IQN}", None),
    ("POST", "/api/v1/storage/provision", {"mac": TCH, "size": "40G"}),
    ("POST", f"/api/v1/storage/volumes/{IQN}/expand", {"size": "50G"}),
    ("POST", f"/api/v1/storage/volumes/{IQN}/delete", None),
])
def test_a_busy_store_is_503_with_its_message_from_the_api(settings, broken, method: str,
                                                           path: str, body: dict | None) -> None:
    app = webtest.TestApp(build_app(settings, store=broken), extra_environ=ADMIN)
    if body is None:
        answer = app.request(path, method=method, status=503)
    else:
        answer = app.request(path, method=method, body=json.dumps(body).encode(),
                             content_type="application/json", status=503)
    assert answer.json["error"]["message"] == BUSY


@pytest.mark.parametrize("query", ["cmd=storage_work",
                                   "cmd=storage_report&job=0123456789ab&status=ok"])
def test_a_busy_store_is_503_with_its_message_from_the_storage_commands(
        settings, broken, query: str) -> None:
    app = webtest.TestApp(build_app(settings, store=broken),
                          extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    answer = app.get(f"{URL}?{query}", headers=CURL, status=503)
    assert BUSY in answer.text


@pytest.mark.parametrize("argv", [["storage", "list"], ["storage", "show", IQN],
                                  ["storage", "provision", TCH, "40G"],
                                  ["storage", "expand", IQN, "50G"], ["storage", "delete", IQN]])
def test_a_busy_store_is_exit_3_with_its_message_from_the_cli(
        broken, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main([*argv, "--cluster", "default"]) == 3
    assert capsys.readouterr().err == f"hps-api: {BUSY}\n"

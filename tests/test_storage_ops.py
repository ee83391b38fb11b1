"""Thin hosts' iSCSI disks as operations (hps_api.ops.storage, docs/storage-hosts.md): the
choice of storage host, the job queue's life, deleting a volume, and the model's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from hps_api.errors import Conflict, Forbidden, InvalidInput, NotFound
from hps_api.model import storage as m
from hps_api.ops import storage as ops
from hps_api.store import FileStore, Kind, RecordId

G = 1 << 30
SCH_A, SCH_B, SCH_C = "525400aabb10", "525400aabb11", "525400aabb12"
TCH, TCH2 = "525400aabb03", "525400aabb04"
CREATED = "2026-11-21T10:00:00Z"
IQN = "iqn.2026-11.default:tch-001.root0"
INITIATOR = "iqn.2026-11.default:tch-001.initiator"


def rid(mac: str) -> RecordId:
    return RecordId.of_host("default", mac)


def sch(store: FileStore, mac: str, name: str, free: int | None, **keys: str) -> None:
    values = {"TYPE": "SCH", "HOSTNAME": name, "STATE": "INSTALLED", **keys}
    if free is not None:
        values[m.FREE_KEY] = str(free)
    store.update(rid(mac), values, "t", create=True)


def tch(store: FileStore, mac: str = TCH, name: str = "tch-001") -> None:
    store.update(rid(mac), {"TYPE": "TCH", "HOSTNAME": name, "STATE": "NETWORK_BOOT"}, "t",
                 create=True)


@pytest.fixture(autouse=True)
def cluster(store: FileStore) -> None:
    store.update(RecordId.of_cluster("default"), {"CREATED": CREATED}, "t")


def everything(store: FileStore) -> dict[str, dict[str, str]]:
    return {r.name or "": store.items(r) for r in store.list_records(
        Kind.HOST, "default")}


def report_ok(store: FileStore, sch_mac: str, job: str, lun: str, size: int = 40 * G) -> dict:
    return ops.apply_report(store, rid(sch_mac), job, "ok",
                            {"lun": lun, "size": str(size)}, "api:" + sch_mac)


# --- names --------------------------------------------------------------------------------

@pytest.mark.parametrize(("created", "today", "expected"), [
    (CREATED, "2030-01-01T00:00:00Z", IQN),
    ("", "2027-03-05T00:00:00Z", "iqn.2027-03.default:tch-001.root0"),
    ("yesterday", "2027-03-05", "iqn.2027-03.default:tch-001.root0"),
])
def test_an_iqn_takes_the_month_the_cluster_was_created(created: str, today: str,
                                                        expected: str) -> None:
    assert m.iqn({"CREATED": created}, "default", "TCH-001", "root0", today) == expected


def test_a_hosts_initiator_is_its_iqn_with_the_volume_initiator() -> None:
    assert m.initiator_iqn({"CREATED": CREATED}, "default", "tch-001", "x") == INITIATOR


@pytest.mark.parametrize(("text", "size"), [("40G", 40 * G), ("512M", 512 << 20),
                                            ("1t", 1 << 40), ("8K", 8192)])
def test_sizes_read_as_powers_of_1024_and_print_back(text: str, size: int) -> None:
    assert m.parse_size(text) == size
    assert m.size_text(size) == text.upper()


@pytest.mark.parametrize("text", ["", "40", "0G", "-1G", "40GB", "1.5G", "40 G", "9999999999G"])
def test_a_bad_size_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        m.parse_size(text)


@pytest.mark.parametrize(("text", "whole"), [("8K", False), ("1025K", False), ("2048K", True),
                                             ("512M", True), ("1T", True)])
def test_a_volume_is_a_whole_number_of_mib(text: str, whole: bool) -> None:
    # the node library refuses anything else: the IPS must not queue a job it cannot do
    if whole:
        assert m.volume_size(text) == m.parse_size(text)
    else:
        with pytest.raises(InvalidInput, match="whole number of MiB"):
            m.volume_size(text)


@pytest.mark.parametrize(("value", "expected"), [
    (f"10.31.0.2:3260:{IQN}", m.IscsiRoot("10.31.0.2", 3260, IQN)),
    (f"10.31.0.2:{IQN}", m.IscsiRoot("10.31.0.2", 3260, IQN)),
    (f"10.31.0.2:3261:{IQN}", m.IscsiRoot("10.31.0.2", 3261, IQN)),
])
def test_an_iscsi_root_is_ip_port_iqn_with_the_port_optional(value: str,
                                                            expected: m.IscsiRoot) -> None:
    assert m.parse_root(value) == expected


@pytest.mark.parametrize("value", ["x:3260:" + IQN, "10.31.0.2:99999:" + IQN,
                                   "10.31.0.2:3260:not-an-iqn", "10.31.0.2:3260:" + IQN + " ;"])
def test_a_bad_iscsi_root_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        m.parse_root(value)


def test_a_job_survives_its_key_and_becomes_its_work_line() -> None:
    job = m.Job("0123456789ab", "provision", "tch-001-root0", 40 * G, IQN, INITIATOR, TCH, 0)
    assert m.parse_job(job.key, job.value) == job
    assert job.line == f"0123456789ab provision tch-001-root0 40G {IQN} {INITIATOR}"
    failed = job.failed("pool full\n; rm -rf")
    assert m.parse_job(job.key, failed.value) == failed and "\n" not in failed.value


# --- the choice of storage host ----------------------------------------------------------

def test_the_storage_host_with_most_room_is_chosen_and_the_choice_explained(store) -> None:
    sch(store, SCH_A, "sch-001", 50 * G)
    sch(store, SCH_B, "sch-002", 100 * G)
    sch(store, SCH_C, "sch-003", 10 * G)
    tch(store)
    plan = ops.provision(store, "default", TCH, "40G", "t")
    assert [j["storage_host"] for j in plan["jobs"]] == [SCH_B]
    assert plan["choice"][0].startswith("sch-002 (525400aabb11): 100.0 GiB free")
    assert "chosen" in plan["choice"][0]
    assert any("sch-003" in line and "too little" in line for line in plan["choice"])


def test_with_equal_room_the_one_with_fewest_volumes_is_chosen() -> None:
    a = ops.Candidate(SCH_A, "sch-001", 100 * G, 3)
    b = ops.Candidate(SCH_B, "sch-002", 100 * G, 1)
    chosen, why = ops.choose([a, b], 40 * G, 1)
    assert chosen == [b]
    assert why == ["sch-002 (525400aabb11): 100.0 GiB free, 1 volume(s) - chosen",
                   "sch-001 (525400aabb10): 100.0 GiB free, 3 volume(s) - not needed"]


def test_queued_work_counts_against_a_storage_hosts_room(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 80 * G)
    tch(store)
    tch(store, TCH2, "tch-002")
    first = ops.provision(store, "default", TCH, "40G", "t")
    second = ops.provision(store, "default", TCH2, "40G", "t")
    assert first["jobs"][0]["storage_host"] == SCH_A  # 100 G free
    assert second["jobs"][0]["storage_host"] == SCH_B  # A has 60 G left once its job is done


def test_a_mirror_goes_to_a_second_storage_host(store) -> None:
    store.update(RecordId.of_cluster("default"), {m.MIRRORS_KEY: "2"}, "t")
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 80 * G)
    tch(store)
    plan = ops.provision(store, "default", TCH, "40G", "t")
    assert [(j["storage_host"], j["slot"], j["volume"]) for j in plan["jobs"]] == [
        (SCH_A, 0, "tch-001-root0"), (SCH_B, 1, "tch-001-root1")]


@pytest.mark.parametrize("setup", ["none", "small", "silent", "one-for-a-mirror"])
def test_no_room_is_a_conflict_saying_why_and_nothing_is_written(store, setup: str) -> None:
    if setup == "small":
        sch(store, SCH_A, "sch-001", 10 * G)
    if setup == "silent":
        sch(store, SCH_A, "sch-001", None)
    if setup == "one-for-a-mirror":
        store.update(RecordId.of_cluster("default"), {m.MIRRORS_KEY: "2"}, "t")
        sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    before = everything(store)
    with pytest.raises(Conflict, match="no room for the root disk of tch-001") as err:
        ops.provision(store, "default", TCH, "40G", "t")
    expected = {"none": "no storage host (TYPE SCH)", "small": "too little for 40.0 GiB",
                "silent": "no STORAGE_FREE reported yet",
                "one-for-a-mirror": "on 2 different storage host(s)): sch-001 (525400aabb10): "
                                    "100.0 GiB free, 0 volume(s) - has room"}[setup]
    assert expected in str(err.value)
    assert everything(store) == before


@pytest.mark.parametrize(("mac", "size", "error", "match"), [
    (TCH, "40", InvalidInput, "size"),
    ("525400aabb99", "40G", NotFound, "not found"),
    (SCH_A, "40G", InvalidInput, "no thin host"),
])
def test_a_bad_provision_request_is_refused_with_nothing_written(store, mac: str, size: str,
                                                                 error: type, match: str) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    before = everything(store)
    with pytest.raises(error, match=match):
        ops.provision(store, "default", mac, size, "t")
    assert everything(store) == before


def test_a_thin_host_without_a_name_cannot_have_an_iqn(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    store.update(rid(TCH), {"TYPE": "TCH"}, "t", create=True)
    with pytest.raises(InvalidInput, match="no HOSTNAME"):
        ops.provision(store, "default", TCH, "40G", "t")


# --- the job queue's life -----------------------------------------------------------------

def test_a_job_is_queued_handed_out_reported_and_the_thin_host_gets_its_root(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    plan = ops.provision(store, "default", TCH, "40G", "t")
    job = plan["jobs"][0]
    assert (job["state"], job["iqn"], job["initiator"]) == ("queued", IQN, INITIATOR)
    lines = [j.line for j in ops.work(store, rid(SCH_A), "api:sch")]
    assert lines == [f"{job['id']} provision tch-001-root0 40G {IQN} {INITIATOR}"]
    assert ops.listing(store, "default")["jobs"][0]["state"] == "handed"
    report_ok(store, SCH_A, job["id"], f"10.31.0.2:3260:{IQN}")
    assert store.items(rid(TCH))["ISCSI_ROOT_0"] == f"10.31.0.2:3260:{IQN}"
    assert ops.work(store, rid(SCH_A), "api:sch") == []
    sch_record = store.items(rid(SCH_A))
    assert sch_record[m.FREE_KEY] == str(60 * G)
    shown = ops.show(store, "default", IQN)
    assert (shown["size"], shown["portal"], shown["used_by"]) == (
        "40G", "10.31.0.2:3260", ["tch-001 ISCSI_ROOT_0"])


def test_a_silent_storage_host_is_handed_the_same_job_again(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    ops.provision(store, "default", TCH, "40G", "t")
    first = ops.work(store, rid(SCH_A), "api:sch")
    again = ops.work(store, rid(SCH_A), "api:sch")
    assert [j.line for j in first] == [j.line for j in again]
    assert again[0].handed == 2
    assert "ISCSI_ROOT_0" not in store.items(rid(TCH))


def test_asking_twice_queues_one_job(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 100 * G)
    tch(store)
    first = ops.provision(store, "default", TCH, "40G", "t")
    second = ops.provision(store, "default", TCH, "40G", "t")
    assert [j["id"] for j in second["jobs"]] == [j["id"] for j in first["jobs"]]
    assert len(ops.listing(store, "default")["jobs"]) == 1


def test_the_same_report_twice_makes_one_volume(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")
    after_first = everything(store)
    assert report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")["applied"] == "already"
    assert everything(store) == after_first
    assert len(ops.listing(store, "default")["volumes"]) == 1


def test_a_report_lost_between_its_two_writes_is_completed_by_the_next(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")
    store.update(rid(TCH), {"ISCSI_ROOT_0": None}, "t")  # as if the IPS died between them
    report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")
    assert store.items(rid(TCH))["ISCSI_ROOT_0"] == f"10.31.0.2:3260:{IQN}"


def test_a_failed_job_is_kept_with_its_reason_and_not_handed_out_again(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    ops.apply_report(store, rid(SCH_A), job, "failed", {"detail": "zpool full"}, "api:sch")
    assert ops.work(store, rid(SCH_A), "api:sch") == []
    assert ops.listing(store, "default")["jobs"][0]["detail"] == "zpool full"
    again = ops.provision(store, "default", TCH, "40G", "t")  # the operator asks again
    assert again["jobs"][0]["state"] == "queued"
    assert len(ops.work(store, rid(SCH_A), "api:sch")) == 1


@pytest.mark.parametrize(("job", "status", "params", "error"), [
    ("nothex", "ok", {}, InvalidInput),
    ("0123456789ab", "ok", {}, NotFound),
    ("{job}", "maybe", {}, InvalidInput),
    ("{job}", "ok", {"lun": "10.31.0.2:3260:iqn.2026-11.default:other.root0"}, InvalidInput),
    ("{job}", "ok", {"lun": "nonsense"}, InvalidInput),
    ("{job}", "ok", {}, InvalidInput),
    ("{job}", "ok", {"lun": f"10.31.0.2:3260:{IQN}", "size": "lots"}, InvalidInput),
])
def test_a_bad_report_is_refused_with_nothing_written(store, job: str, status: str,
                                                      params: dict, error: type) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    queued = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    before = everything(store)
    with pytest.raises(error):
        ops.apply_report(store, rid(SCH_A), job.format(job=queued), status, params, "t")
    assert everything(store) == before


def test_only_a_storage_host_has_storage_work(store) -> None:
    tch(store)
    with pytest.raises(Forbidden, match="no storage host"):
        ops.work(store, rid(TCH), "t")


def test_a_job_is_found_only_on_its_own_storage_host(store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 10 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    with pytest.raises(NotFound):
        report_ok(store, SCH_B, job, f"10.31.0.3:3260:{IQN}")
    assert "ISCSI_ROOT_0" not in store.items(rid(TCH))


# --- expand and delete --------------------------------------------------------------------

@pytest.fixture
def made(store: FileStore) -> str:
    """A 40G root volume on sch-001, in use by tch-001."""
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")
    return job


def test_a_second_provision_of_a_host_with_a_root_is_a_conflict(store, made: str) -> None:
    with pytest.raises(Conflict, match="has a root disk already"):
        ops.provision(store, "default", TCH, "40G", "t")


def test_a_volume_grows_through_an_expand_job(store, made: str) -> None:
    job = ops.expand(store, "default", IQN, "50G", "t")["job"]
    assert ops.work(store, rid(SCH_A), "api:sch")[0].line == \
        f"{job['id']} expand tch-001-root0 50G {IQN} -"
    report_ok(store, SCH_A, job["id"], f"10.31.0.2:3260:{IQN}", 50 * G)
    assert ops.show(store, "default", IQN)["size"] == "50G"


@pytest.mark.parametrize(("iqn", "size", "error"), [
    (IQN, "40G", InvalidInput), (IQN, "30G", InvalidInput), (IQN, "1T", Conflict),
    ("iqn.2026-11.default:nobody.root0", "50G", NotFound), ("not-an-iqn", "50G", InvalidInput),
])
def test_a_bad_expand_is_refused_with_nothing_written(store, made: str, iqn: str, size: str,
                                                      error: type) -> None:
    before = everything(store)
    with pytest.raises(error):
        ops.expand(store, "default", iqn, size, "t")
    assert everything(store) == before


def test_a_volume_in_use_is_never_deleted(store, made: str) -> None:
    before = everything(store)
    with pytest.raises(Conflict, match="never deleted under a running host") as err:
        ops.delete(store, "default", IQN, "t")
    assert "tch-001 ISCSI_ROOT_0" in str(err.value)
    assert everything(store) == before


def test_a_released_volume_is_deleted_through_a_delete_job(store, made: str) -> None:
    store.update(rid(TCH), {"ISCSI_ROOT_0": None}, "t")
    job = ops.delete(store, "default", IQN, "t")["job"]
    assert ops.work(store, rid(SCH_A), "api:sch")[0].line == \
        f"{job['id']} delete tch-001-root0 - {IQN} -"
    ops.apply_report(store, rid(SCH_A), job["id"], "ok", {}, "api:sch")
    assert ops.listing(store, "default")["volumes"] == []
    with pytest.raises(NotFound):
        ops.show(store, "default", IQN)


def test_the_listing_shows_storage_hosts_volumes_and_jobs(store, made: str,
                                                          tmp_path: Path) -> None:
    store.update(rid(SCH_A), {m.POOL_KEY: "zfs:tank"}, "t")
    listed = ops.listing(store, "default")
    assert listed["storage_hosts"] == [{"mac": SCH_A, "hostname": "sch-001", "free": 60 * G,
                                        "pool": "zfs:tank", "volumes": 1, "jobs": 0}]
    assert [v["iqn"] for v in listed["volumes"]] == [IQN]


def test_a_mirror_half_queued_is_taken_back_when_the_second_write_fails(
        store, monkeypatch: pytest.MonkeyPatch) -> None:
    from hps_api.errors import StoreBusy

    store.update(RecordId.of_cluster("default"), {m.MIRRORS_KEY: "2"}, "t")
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 80 * G)
    tch(store)
    before = everything(store)
    real_update = store.update

    def second_fails(rid_: RecordId, changes, actor, **kwargs):  # type: ignore[no-untyped-def]
        if rid_.name == SCH_B:
            raise StoreBusy("still locked")
        return real_update(rid_, changes, actor, **kwargs)

    monkeypatch.setattr(store, "update", second_fails)
    with pytest.raises(StoreBusy):
        ops.provision(store, "default", TCH, "40G", "t")
    monkeypatch.undo()
    after = everything(store)
    assert {mac: {k: v for k, v in r.items() if k != "UPDATED"} for mac, r in after.items()} \
        == {mac: {k: v for k, v in r.items() if k != "UPDATED"} for mac, r in before.items()}


def test_a_report_racing_a_fetch_is_applied(store, monkeypatch: pytest.MonkeyPatch) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    real_items = store.items
    raced = []

    def fetch_in_between(rid_: RecordId):  # type: ignore[no-untyped-def]
        found = real_items(rid_)
        if rid_.name == SCH_A and not raced:
            raced.append(True)
            ops.work(store, rid(SCH_A), "api:sch")  # changes the job's key after this read
        return found

    monkeypatch.setattr(store, "items", fetch_in_between)
    report_ok(store, SCH_A, job, f"10.31.0.2:3260:{IQN}")
    monkeypatch.undo()
    assert raced and store.items(rid(TCH))["ISCSI_ROOT_0"] == f"10.31.0.2:3260:{IQN}"


def test_asked_again_after_a_failure_the_request_lives_on_the_storage_host_chosen_now(
        store) -> None:
    sch(store, SCH_A, "sch-001", 100 * G)
    sch(store, SCH_B, "sch-002", 50 * G)
    tch(store)
    job = ops.provision(store, "default", TCH, "40G", "t")["jobs"][0]["id"]
    ops.apply_report(store, rid(SCH_A), job, "failed", {"detail": "disk died"}, "api:sch")
    store.update(rid(SCH_A), {m.FREE_KEY: "0"}, "t")  # as sch-001 now reports
    again = ops.provision(store, "default", TCH, "40G", "t")
    assert [j["storage_host"] for j in again["jobs"]] == [SCH_B]
    assert [(j["storage_host"], j["state"]) for j in ops.listing(store, "default")["jobs"]] == [
        (SCH_B, "queued")]

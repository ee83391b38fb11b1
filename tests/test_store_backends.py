"""The Store protocol's behaviour, the same on every backend: the file store and etcd.

Every test runs twice, on a FileStore under tmp_path and on an EtcdStore under its own key prefix
of the session's three-member etcd cluster (tests/etcd_cluster.py). Each store holds hps.conf,
cluster `alpha`, one host of it and one OS record. What only the file backend does (files,
modes, fsyncs, stamps beside the record) stays in tests/test_filestore.py.
"""

from __future__ import annotations

import itertools
import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pytest
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.errors import (
    Conflict,
    InvalidInput,
    KeyNotSet,
    NotFound,
    StoreBusy,
)
from hps_api.store import FileStore, Kind, RecordId, Store
from hps_api.store.etcdstore import EtcdStore
from hps_api.store.journal import REDACTED, parse_line

CLUSTER = "alpha"
MAC = "52:54:00:AA:BB:01"
ACTOR = "cli:tester"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

HOST = RecordId.of_host(CLUSTER, MAC)
CLUSTER_RID = RecordId.of_cluster(CLUSTER)
GLOBAL = RecordId.global_()
OS_RID = RecordId.of_os("x86_64:rocky:10")
RIDS = {"global": GLOBAL, "cluster": CLUSTER_RID, "host": HOST, "os": OS_RID}

_fork = multiprocessing.get_context("fork")


def etcd_store(cluster: EtcdCluster, prefix: str, root: Path,
               lock_timeout: float = 2.0) -> EtcdStore:
    """An EtcdStore over every member of `cluster`, under `prefix`."""
    return cluster.store(prefix, root, deadline=10.0, lock_timeout=lock_timeout)


@pytest.fixture(params=["file", "etcd"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Return a function opening the test's store again (a second server, a new process)."""
    root = tmp_path / "hps-config"
    if request.param == "file":
        return lambda: FileStore(root, lock_timeout=2.0)
    cluster = request.getfixturevalue("etcd")
    prefix = random_prefix()
    return lambda: etcd_store(cluster, prefix, root)


@pytest.fixture
def store(backend: Callable[[], Store]) -> Store:
    store = backend()
    store.update(GLOBAL, {"ACTIVE_CLUSTER": CLUSTER}, "cli:setup", create=True)
    store.update(CLUSTER_RID, {"NETWORK": "10.0.0.0/24"}, "cli:setup", create=True)
    store.update(HOST, {"STATE": "UNCONFIGURED"}, "cli:setup", create=True)
    store.update(OS_RID, {"NAME": "rocky"}, "cli:setup", create=True)
    return store


def keys_of(store: Store, rid: RecordId) -> list[str]:
    return [c.key for c in store.history(rid)]


# -- reads and writes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(RIDS))
def test_a_value_that_was_set_reads_back_and_lists_with_the_others(store, kind):
    rid = RIDS[kind]
    returned = store.update(rid, {"COLOR": "blue", "NOTE": "a=b, \u00e9t\u00e9 $(x) \\"}, ACTOR)
    assert store.get(rid, "COLOR") == "blue"
    assert store.get(rid, "note") == "a=b, \u00e9t\u00e9 $(x) \\"
    assert store.items(rid) == returned
    assert list(returned)[-2:] == ["COLOR", "NOTE"]


def test_a_second_store_over_the_same_state_sees_every_change(store, backend):
    store.update(HOST, {"STATE": "INSTALLING"}, ACTOR)
    assert backend().get(HOST, "STATE") == "INSTALLING"


def test_an_empty_value_is_set_and_unset_removes_the_key(store):
    store.update(HOST, {"EMPTY": ""}, ACTOR)
    assert store.get(HOST, "EMPTY") == ""
    store.unset(HOST, "empty", ACTOR)
    with pytest.raises(KeyNotSet):
        store.get(HOST, "EMPTY")


def test_unsetting_a_key_that_is_not_set_is_key_not_set_and_journals_nothing(store):
    before = store.history(HOST)
    with pytest.raises(KeyNotSet, match="Key 'NOPE' not found"):
        store.unset(HOST, "NOPE", ACTOR)
    assert store.history(HOST) == before


def test_none_in_an_update_unsets_the_key(store):
    store.update(HOST, {"A": "1", "B": "2"}, ACTOR)
    store.update(HOST, {"A": None, "C": "3"}, ACTOR)
    assert "A" not in store.items(HOST)
    assert store.items(HOST)["C"] == "3"


@pytest.mark.parametrize("call", [
    lambda s, r: s.items(r), lambda s, r: s.get(r, "X"), lambda s, r: s.unset(r, "X", ACTOR),
    lambda s, r: s.delete(r, ACTOR), lambda s, r: s.update(r, {"X": "1"}, ACTOR),
    lambda s, r: s.stamp(r, {"LAST_SEEN": "1"}, ACTOR),
], ids=["items", "get", "unset", "delete", "update", "stamp"])
def test_an_unknown_record_is_not_found_rather_than_an_unset_key(store, call):
    unknown = RecordId.of_host(CLUSTER, "52:54:00:00:00:99")
    with pytest.raises(NotFound) as caught:
        call(store, unknown)
    assert not isinstance(caught.value, KeyNotSet)
    assert not store.exists(unknown)
    assert store.history(unknown) == []


def test_a_host_is_created_only_inside_an_existing_cluster(store):
    orphan = RecordId.of_host("beta", MAC)
    with pytest.raises(NotFound, match="cluster/beta not found"):
        store.update(orphan, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    assert not store.exists(orphan)
    assert store.list_records(Kind.CLUSTER) == [CLUSTER_RID]


def test_a_cluster_is_never_created_without_create(store):
    with pytest.raises(NotFound, match="cluster/beta not found"):
        store.update(RecordId.of_cluster("beta"), {"NETWORK": "x"}, ACTOR)
    assert not store.exists(RecordId.of_cluster("beta"))


def test_a_multi_key_update_journals_one_line_per_changed_key(store):
    store.update(HOST, {"A": "1", "B": "2", "STATE": "UNCONFIGURED"}, ACTOR)
    lines = store.history(HOST)[-2:]
    assert [(c.key, c.old, c.new, c.actor) for c in lines] == [
        ("A", None, "1", ACTOR), ("B", None, "2", ACTOR)]
    assert all(STAMP.match(c.time) for c in lines)


def test_an_update_that_changes_nothing_writes_nothing(store):
    before = store.items(HOST), store.history(HOST)
    assert store.update(HOST, {"STATE": "UNCONFIGURED"}, ACTOR) == before[0]
    assert (store.items(HOST), store.history(HOST)) == before


@pytest.mark.parametrize("kind, stamped", [("host", True), ("cluster", True), ("global", False),
                                           ("os", False)])
def test_hosts_and_clusters_carry_an_updated_stamp_never_journaled(store, kind, stamped):
    rid = RIDS[kind]
    store.update(rid, {"COLOR": "red"}, ACTOR)
    assert ("UPDATED" in store.items(rid)) is stamped
    assert "UPDATED" not in keys_of(store, rid)


def test_history_holds_only_the_records_own_changes_oldest_first(store):
    store.update(HOST, {"N": "1"}, ACTOR)
    store.update(CLUSTER_RID, {"N": "x"}, ACTOR)
    store.update(HOST, {"N": "2"}, ACTOR)
    assert [(c.record, c.new) for c in store.history(HOST) if c.key == "N"] == [
        ("host/525400aabb01", "1"), ("host/525400aabb01", "2")]


@pytest.mark.parametrize("key", ["ROOT_PASSWORD", "API_TOKEN", "SSH_KEY"])
def test_sensitive_values_are_redacted_in_the_journal_but_kept_in_the_record(store, key):
    store.update(HOST, {key: "hunter2"}, ACTOR)
    store.update(HOST, {key: "hunter3"}, ACTOR)
    assert store.get(HOST, key) == "hunter3"
    found = [(c.old, c.new) for c in store.history(HOST) if c.key == key]
    assert found == [(None, REDACTED), (REDACTED, REDACTED)]


# -- expect and conflicts -----------------------------------------------------------------------


def test_an_update_with_a_holding_expectation_is_applied(store):
    store.update(HOST, {"STATE": "INSTALLING"}, ACTOR, expect={"STATE": "UNCONFIGURED",
                                                               "IP": None})
    assert store.get(HOST, "STATE") == "INSTALLING"


@pytest.mark.parametrize("expect", [{"STATE": "INSTALLED"}, {"IP": "10.0.0.1"},
                                    {"STATE": None}])
def test_an_update_whose_expectation_fails_is_a_conflict_and_changes_nothing(store, expect):
    before = store.items(HOST), store.history(HOST)
    with pytest.raises(Conflict, match="changed meanwhile"):
        store.update(HOST, {"STATE": "INSTALLING"}, ACTOR, expect=expect)
    assert (store.items(HOST), store.history(HOST)) == before


@pytest.mark.parametrize("changes, error", [
    ({"BAD-KEY": "x"}, InvalidInput), ({"K": "a\nb"}, InvalidInput),
    ({"PATH": "/bin"}, InvalidInput), ({"K": "x" * (64 * 1024 + 1)}, InvalidInput),
])
def test_a_refused_update_changes_nothing(store, changes, error):
    before = store.items(HOST), store.history(HOST)
    with pytest.raises(error):
        store.update(HOST, changes, ACTOR)
    assert (store.items(HOST), store.history(HOST)) == before


def test_a_value_of_exactly_64_kib_is_stored(store):
    value = "v" * (64 * 1024)
    store.update(HOST, {"BIG": value}, ACTOR)
    assert store.get(HOST, "BIG") == value


# -- delete and list -----------------------------------------------------------------------------


def test_delete_removes_the_record_and_its_attachment_and_journals_every_key(store):
    store.write_attachment(HOST, "ks", "kickstart text\n", ACTOR)
    keys = list(store.items(HOST))
    store.delete(HOST, ACTOR)
    assert not store.exists(HOST)
    with pytest.raises(NotFound):
        store.read_attachment(HOST, "ks")
    removed = [c for c in store.history(HOST)[-len(keys):] if c.new is None]
    assert {c.key for c in removed} == {k for k in keys if k != "UPDATED"}
    store.update(HOST, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    assert set(store.items(HOST)) == {"STATE", "UPDATED"}


def test_listing_returns_every_record_of_a_kind_sorted(store):
    for mac in ("52:54:00:00:00:03", "52:54:00:00:00:02"):
        store.update(RecordId.of_host(CLUSTER, mac), {"STATE": "UNCONFIGURED"}, ACTOR,
                     create=True)
    store.update(RecordId.of_cluster("aardvark"), {"N": "1"}, ACTOR, create=True)
    store.update(RecordId.of_os("aarch64:debian:12"), {"N": "1"}, ACTOR, create=True)
    assert store.list_records(Kind.GLOBAL) == [GLOBAL]
    assert store.list_records(Kind.CLUSTER) == [RecordId.of_cluster("aardvark"), CLUSTER_RID]
    assert store.list_records(Kind.OS) == [RecordId.of_os("aarch64:debian:12"), OS_RID]
    assert [r.name for r in store.list_records(Kind.HOST, CLUSTER)] == [
        "525400000002", "525400000003", "525400aabb01"]
    assert store.list_records(Kind.HOST, "aardvark") == []
    with pytest.raises(NotFound):
        store.list_records(Kind.HOST, "nosuch")


# -- stamps, boots and history limits ------------------------------------------------------------


def test_a_stamp_is_seen_by_every_read_and_a_boot_is_one_journal_entry(store):
    store.stamp(HOST, {"BOOT_SESSION": "s1", "BOOT_TIME": "100", "LAST_SEEN": "100"}, ACTOR)
    assert store.items(HOST)["BOOT_SESSION"] == "s1"
    boot = store.history(HOST)[-1]
    assert (boot.key, boot.old, boot.new, boot.boot) == ("BOOT_SESSION", None, "s1", True)
    assert dict(boot.facts) == {"BOOT_TIME": "100"}
    assert "LAST_SEEN" not in keys_of(store, HOST)


def test_a_stamp_of_the_values_already_seen_writes_nothing(store):
    store.stamp(HOST, {"BOOT_SESSION": "s1"}, ACTOR)
    before = store.items(HOST), store.history(HOST)
    store.stamp(HOST, {"BOOT_SESSION": "s1"}, ACTOR)
    assert (store.items(HOST), store.history(HOST)) == before


@pytest.mark.parametrize("rid, values, error", [
    (CLUSTER_RID, {"BOOT_SESSION": "x"}, InvalidInput),
    (HOST, {"BAD KEY": "x"}, InvalidInput),
    (HOST, {"K": "x" * 5000}, InvalidInput),
])
def test_a_refused_stamp_changes_nothing(store, rid, values, error):
    before = store.items(rid)
    with pytest.raises(error):
        store.stamp(rid, values, ACTOR)
    assert store.items(rid) == before


def test_an_update_after_a_stamp_keeps_the_stamped_values_and_checks_expect_on_them(store):
    store.stamp(HOST, {"BOOT_SESSION": "s1"}, ACTOR)
    store.update(HOST, {"STATE": "INSTALLING"}, ACTOR, expect={"BOOT_SESSION": "s1"})
    assert store.items(HOST)["BOOT_SESSION"] == "s1"


def test_history_with_a_limit_keeps_the_newest_boots_and_changes(store):
    for n in range(5):
        store.stamp(HOST, {"BOOT_SESSION": f"s{n}", "BOOT_TIME": str(n)}, ACTOR)
        store.update(HOST, {"N": str(n)}, ACTOR)
    recent = store.history(HOST, limit=2)
    assert [c.new for c in recent if c.boot] == ["s3", "s4"]
    assert [c.new for c in recent if c.key == "N"][-2:] == ["3", "4"]
    assert recent == store.history(HOST)[-len(recent):]


# -- journal readers -------------------------------------------------------------------------------


def test_journal_lines_are_the_clusters_lines_in_order_and_follow_a_cursor(store):
    first = store.journal_lines(CLUSTER)
    store.update(HOST, {"N": "1"}, ACTOR)
    store.update(CLUSTER_RID, {"N": "2"}, ACTOR)
    later = store.journal_lines(CLUSTER, after=first.cursor)
    assert [(c.record, c.key) for c in map(parse_line, later.lines)] == [
        ("host/525400aabb01", "N"), ("cluster/alpha", "N")]
    assert store.journal_lines(CLUSTER, after=later.cursor).lines == []
    every = [parse_line(line) for line in store.journal_lines(CLUSTER).lines]
    assert [c.key for c in every if c][-2:] == ["N", "N"]
    assert [c.key for c in map(parse_line, store.journal_lines(CLUSTER, limit=1).lines)] == [
        "N"]
    assert all(parse_line(line).record in ("hps", "os/x86_64:rocky:10")
               for line in store.journal_lines(None).lines)


def test_appended_journal_lines_show_in_the_records_history(store):
    from hps_api.store.journal import Change

    line = Change("2020-01-01T00:00:00Z", HOST.label, "POWER_ACTION", None, "on: ok", ACTOR)
    store.append_journal(HOST, [line])
    assert store.history(HOST)[-1] == line


# -- attachments ---------------------------------------------------------------------------------


def test_an_attachment_reads_back_and_is_journaled_by_digest_once(store):
    store.write_attachment(HOST, "ks", "text \u00e9\n", ACTOR)
    store.write_attachment(HOST, "ks", "text \u00e9\n", ACTOR)
    assert store.read_attachment(HOST, "ks") == "text \u00e9\n"
    lines = [c for c in store.history(HOST) if c.key == ".ks"]
    assert len(lines) == 1 and lines[0].old is None and lines[0].new.startswith("sha256:")


@pytest.mark.parametrize("rid, suffix, error", [
    (RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), "ks", NotFound),
    (HOST, "sh", InvalidInput), (CLUSTER_RID, "ks", InvalidInput)])
def test_a_refused_attachment_changes_nothing(store, rid, suffix, error):
    with pytest.raises(error):
        store.write_attachment(rid, suffix, "x", ACTOR)
    with pytest.raises((NotFound, InvalidInput)):
        store.read_attachment(rid, suffix)


# -- the allocation lock -------------------------------------------------------------------------


def test_the_lock_of_an_unknown_cluster_is_not_found(store):
    with pytest.raises(NotFound), store.lock("nosuch"):
        pass


def test_a_held_lock_makes_another_holder_store_busy_and_is_free_again_after(store, backend):
    other = backend()
    with store.lock(CLUSTER):
        started = time.monotonic()
        with pytest.raises(StoreBusy), other.lock(CLUSTER):
            pass
        assert time.monotonic() - started >= 1.5
    with other.lock(CLUSTER):
        pass


def test_two_threads_holding_the_lock_never_overlap(backend, store):
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(n: int) -> None:
        mine = backend()
        for _ in range(5):
            with mine.lock(CLUSTER):
                if inside:
                    overlaps.append(n)
                inside.append(n)
                time.sleep(0.002)
                inside.remove(n)

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert overlaps == []


# -- real processes at once ------------------------------------------------------------------


WORKERS = 8
UPDATES = 15


def _update_distinct_keys(open_store: Callable[[], Store], worker: int) -> None:
    store = open_store()
    for n in range(UPDATES):
        store.update(HOST, {f"W{worker}_K{n}": f"{worker}/{n}"}, f"cli:worker{worker}")


def _run(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
    assert [p.exitcode for p in processes] == [0] * len(processes)


@pytest.mark.slow
def test_concurrent_updates_of_one_record_by_processes_lose_nothing(store, backend):
    _run([_fork.Process(target=_update_distinct_keys, args=(backend, w))
          for w in range(WORKERS)])
    expected = {f"W{w}_K{n}": f"{w}/{n}" for w in range(WORKERS) for n in range(UPDATES)}
    assert {k: v for k, v in store.items(HOST).items() if k.startswith("W")} == expected
    written = [c for c in store.history(HOST) if c.key.startswith("W")]
    assert Counter(c.key for c in written) == Counter(list(expected))


CLAIMERS = 4
CLAIMS = 8


def _claim(open_store: Callable[[], Store], worker: int, results: Connection) -> None:
    store = open_store()
    won = []
    for n in range(CLAIMS):
        rid = RecordId.of_host(CLUSTER, f"02:00:00:00:{worker:02x}:{n:02x}")
        with store.lock(CLUSTER):
            taken = {store.items(h).get("HOSTNAME") for h in store.list_records(Kind.HOST,
                                                                                 CLUSTER)}
            number = next(i for i in itertools.count(1) if f"node-{i}" not in taken)
            time.sleep(0.001)
            store.update(rid, {"HOSTNAME": f"node-{number}"}, "cli:claimer", create=True)
        won.append(number)
    results.send(won)
    results.close()


@pytest.mark.slow
def test_processes_allocating_under_the_lock_never_get_the_same_value(store, backend):
    pipes = [_fork.Pipe(duplex=False) for _ in range(CLAIMERS)]
    processes = [_fork.Process(target=_claim, args=(backend, w, pipes[w][1]))
                 for w in range(CLAIMERS)]
    for process in processes:
        process.start()
    for _, sender in pipes:
        sender.close()
    won = [number for receiver, _ in pipes for number in receiver.recv()]
    for process in processes:
        process.join(timeout=90)
    assert sorted(won) == list(range(1, CLAIMERS * CLAIMS + 1))


# -- readers of the journal and of every record ----------------------------------------------


def test_the_stuck_scan_reads_the_boots_from_the_journal_and_then_only_what_follows(store):
    from hps_api.ops.stuck import find_stuck

    store.update(HOST, {"STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001"}, ACTOR)
    for n in range(5):
        store.stamp(HOST, {"BOOT_SESSION": f"b{n}", "BOOT_TIME": str(int(time.time()))}, ACTOR)
    assert find_stuck(store, CLUSTER).hosts == {}
    store.stamp(HOST, {"BOOT_SESSION": "b5", "BOOT_TIME": str(int(time.time()))}, ACTOR)
    stuck = find_stuck(store, CLUSTER).hosts
    assert [f.rule for f in stuck[HOST.name or ""].findings][:1] == ["boot_loop"]


def test_the_dashboard_lists_the_recent_changes_of_the_cluster(store, tmp_path):
    import webtest

    from hps_api.settings import Settings
    from hps_api.web.app import build_app

    store.update(HOST, {"NOTE": "moved to rack 7"}, ACTOR)
    settings = Settings(config_dir=store.layout.root, log_dir=tmp_path / "log",
                        resources_dir=tmp_path / "resources", arp_table=tmp_path / "arp",
                        dhcp_leases=tmp_path / "leases", metrics=False)
    store.layout.root.mkdir(parents=True, exist_ok=True)
    page = webtest.TestApp(build_app(settings, store), extra_environ={
        "REMOTE_ADDR": "10.99.0.21", "HTTP_USER_AGENT": "Mozilla/5.0"}).get("/")
    recent = page.text.split('id="recent"', 1)[1].split("</table>", 1)[0]
    assert "NOTE" in recent and "moved to rack 7" in recent


def test_fsck_names_a_corrupt_record_and_nothing_else(store):
    from hps_api.store.fsck import check_store

    assert [p for p in check_store(store) if p.needs_person] == []
    if isinstance(store, EtcdStore):
        from hps_api.store import etcdgateway as gw

        store.gateway.txn([], [gw.put(store.record_key(HOST), b"not a record\n")], [])
        expected = "host/525400aabb01"
    else:
        path = store.layout.path(HOST)
        path.write_bytes(b"not a record\n")
        expected = str(path)
    found = [(str(p.path), p.kind) for p in check_store(store) if p.needs_person]
    assert found == [(expected, "corrupt")]

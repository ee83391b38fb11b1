"""What only the etcd backend has to prove: losing a member, losing the quorum, an answer lost
on the way back, and HPS_STORE (docs/scale-out.md).

The behaviour every backend shares is in tests/test_store_backends.py. These tests kill real
etcd members of the session's cluster (tests/etcd_cluster.py) by pid and start them again.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from etcd3gw.exceptions import ConnectionTimeoutError
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.errors import Conflict, InvalidInput, StoreUnavailable, http_status
from hps_api.settings import Settings, load_settings
from hps_api.store import Kind, RecordId
from hps_api.store.etcdgateway import Gateway
from hps_api.store.etcdstore import EtcdStore
from hps_api.store.factory import open_store
from hps_api.store.filestore import FileStore
from hps_api.store.journal import Change

CLUSTER = "alpha"
HOST = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:01")
ACTOR = "cli:tester"


def open_etcd(cluster: EtcdCluster, prefix: str, root: Path, *, timeout: float = 2.0,
              deadline: float = 15.0) -> EtcdStore:
    return cluster.store(prefix, root, timeout=timeout, deadline=deadline)


@pytest.fixture
def store(etcd: EtcdCluster, tmp_path: Path) -> EtcdStore:
    store = open_etcd(etcd, random_prefix(), tmp_path)
    store.update(RecordId.of_cluster(CLUSTER), {"NETWORK": "10.0.0.0/24"}, ACTOR, create=True)
    store.update(HOST, {"COUNTER": "0"}, ACTOR, create=True)
    return store


def increment(store: EtcdStore) -> None:
    """Add one to COUNTER, only if nobody changed it meanwhile (a write applied twice, or
    applied and then retried, would show as a Conflict or a count too high)."""
    now = store.get(HOST, "COUNTER")
    store.update(HOST, {"COUNTER": str(int(now) + 1)}, ACTOR, expect={"COUNTER": now})


def counted(store: EtcdStore) -> tuple[int, int]:
    """Return COUNTER and the number of journal lines of increments."""
    return int(store.get(HOST, "COUNTER")), sum(c.key == "COUNTER" and c.old is not None
                                                for c in store.history(HOST))


# -- fail-over ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["leader", "the member in use"])
def test_killing_one_member_during_writes_loses_none_and_doubles_none(etcd, store, victim):
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(150):
                increment(store)
                store.append_journal(HOST, [Change("t", HOST.label, "MARK", None, "x", ACTOR)])
        except BaseException as err:
            errors.append(err)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.3)
    in_use = store.gateway.clients[store.gateway._current].port
    member = etcd.leader() if victim == "leader" else next(
        m for m in etcd.members if m.client_port == in_use)
    etcd.kill(member)
    assert not done.is_set(), "the writes ended before the member was killed"
    time.sleep(1.0)
    etcd.restart(member)
    writer.join(90)
    assert errors == []
    assert counted(store) == (150, 150)
    assert sum(c.key == "MARK" for c in store.history(HOST)) == 150


def test_an_answer_lost_after_the_write_landed_does_not_write_twice(store, monkeypatch):
    """The first transaction lands, but its answer is lost (a timeout): the store asks again,
    finds its operation id, and reports the write done, once."""
    client = store.gateway.clients[store.gateway._current]
    real_post = client.post
    lost: list[str] = []

    def post(url, *args, **kwargs):  # type: ignore[no-untyped-def]
        answer = real_post(url, *args, **kwargs)
        if url.endswith("/kv/txn") and not lost:
            lost.append(url)
            raise ConnectionTimeoutError("read timed out")
        return answer

    monkeypatch.setattr(client, "post", post)
    increment(store)
    assert lost
    assert counted(store) == (1, 1)


def test_a_conflict_is_still_a_conflict_and_changes_nothing(store):
    with pytest.raises(Conflict):
        store.update(HOST, {"COUNTER": "5"}, ACTOR, expect={"COUNTER": "4"})
    assert counted(store) == (0, 0)


# -- quorum lost -------------------------------------------------------------------------------


@pytest.mark.slow
def test_without_a_quorum_writes_are_unavailable_503_and_reads_still_answer(etcd, store,
                                                                            tmp_path):
    impatient = open_etcd(etcd, store.prefix.decode(), tmp_path, timeout=0.5, deadline=2.0)
    survivor = etcd.members[0]
    for member in etcd.members[1:]:
        etcd.kill(member)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="etcd unavailable") as caught:
        impatient.update(HOST, {"STATE": "INSTALLING"}, ACTOR)
    assert time.monotonic() - started < 10
    assert http_status(caught.value) == 503
    alone = open_etcd(etcd, store.prefix.decode(), tmp_path, deadline=2.0)
    alone.gateway.clients = [c for c in alone.gateway.clients if c.port == survivor.client_port]
    assert alone.get(HOST, "COUNTER") == "0"
    assert impatient.items(HOST)["COUNTER"] == "0"
    for member in etcd.members[1:]:
        etcd.restart(member)
    increment(store)
    assert store.get(HOST, "COUNTER") == "1"


# -- HPS_STORE -------------------------------------------------------------------------------


def test_hps_store_names_every_member_and_a_prefix(etcd, tmp_path):
    prefix = random_prefix()
    settings = load_settings({"HPS_STORE": etcd.url(prefix), "HPS_CONFIG_DIR": str(tmp_path)})
    store = open_store(settings)
    assert isinstance(store, EtcdStore)
    assert len(store.gateway.clients) == 3
    assert store.layout.root == tmp_path
    store.update(RecordId.global_(), {"ACTIVE_CLUSTER": "x"}, ACTOR, create=True)
    assert open_etcd(etcd, prefix, tmp_path).get(RecordId.global_(), "ACTIVE_CLUSTER") == "x"


def test_without_hps_store_the_file_store_is_used(tmp_path):
    assert isinstance(open_store(load_settings({"HPS_CONFIG_DIR": str(tmp_path)})), FileStore)


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:2379/hps", "expected etcd://"),
    ("etcd://127.0.0.1:2379", "needs a key prefix"),
    ("etcd://127.0.0.1:2379/", "needs a key prefix"),
    ("etcd://127.0.0.1/hps", "expected HOST:PORT"),
    ("etcd://127.0.0.1:99999/hps", "expected HOST:PORT"),
    ("etcd://a:1,,b:2/hps", "expected HOST:PORT"),
    ("etcd://user@a:1/hps", "expected HOST:PORT"),
    ("etcd://a:1/hps/../x", "needs a key prefix"),
    ("etcd://a:1/h ps", "letters, digits"),
])
def test_a_bad_hps_store_fails_at_start_naming_the_variable(url, says):
    with pytest.raises(InvalidInput, match=f"HPS_STORE=.*{says}"):
        load_settings({"HPS_STORE": url})


def test_a_bad_store_url_given_directly_fails_naming_hps_store(tmp_path):
    with pytest.raises(InvalidInput, match="HPS_STORE='etcd://x/y'"):
        open_store(Settings(config_dir=tmp_path, store="etcd://x/y"))


# -- the mirror under the allocation lock --------------------------------------------------------


def test_under_the_lock_a_change_made_elsewhere_an_instant_before_is_read(store, tmp_path):
    other = open_etcd_like(store, tmp_path)
    assert store.list_records(Kind.HOST, CLUSTER) == [HOST]  # the mirror is in use
    for n in range(5):
        other.update(HOST, {"X": str(n)}, ACTOR)
        with store.lock(CLUSTER):
            assert store.items(HOST)["X"] == str(n)


def open_etcd_like(store: EtcdStore, root: Path) -> EtcdStore:
    """A second store (another server) over the same members and prefix."""
    return EtcdStore(Gateway(store.gateway.endpoints), store.prefix.decode(), root)


# -- the benchmark -------------------------------------------------------------------------------


def test_the_backends_benchmark_reports_both_stores_for_both_requests(etcd, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "bench"))
    import etcd_store as bench

    assert bench.main(["--hosts", "3", "--requests", "4", "--rounds", "1", "--markdown",
                       "--etcd", etcd.url(random_prefix())]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("| request (store) | req/s, one caller |")
    assert [row.split(" | ")[0] for row in rows[2:]] == [
        "| determine_state (files)", "| determine_state (etcd)", "| init (files)",
        "| init (etcd)"]


# -- through a door ------------------------------------------------------------------------------


def test_an_etcd_nobody_answers_is_503_at_the_legacy_endpoint(tmp_path):
    import webtest
    from etcd_cluster import free_port

    from hps_api.web.app import build_app

    nobody = EtcdStore(Gateway([("127.0.0.1", free_port())], timeout=0.2, deadline=0.5),
                       "nobody", tmp_path)
    settings = Settings(config_dir=tmp_path, log_dir=tmp_path / "log", metrics=False,
                        resources_dir=tmp_path / "resources", arp_table=tmp_path / "arp",
                        dhcp_leases=tmp_path / "leases")
    web = webtest.TestApp(build_app(settings, nobody),
                          extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    answer = web.get("/cgi-bin/boot_manager.sh?cmd=host_variable&mac=52:54:00:aa:bb:01"
                     "&name=NOTE&value=x", headers={"User-Agent": "curl/8.5.0"}, status=503)
    assert "etcd unavailable" in answer.text

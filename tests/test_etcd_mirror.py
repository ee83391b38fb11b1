"""The etcd store's mirror of the records (hps_api/store/etcdmirror.py, docs/scale-out.md
"Reads"): what another server changes is read within FRESH_SECONDS, a server reads its own
writes at once, and a broken or compacted watch never serves a stale value.

Each "server" is an EtcdStore of its own over the same members and prefix, with its own mirror.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.errors import NotFound
from hps_api.store import Kind, RecordId
from hps_api.store import etcdmirror as mirror_module
from hps_api.store.etcdmirror import CATCH_UP_SECONDS, FRESH_SECONDS
from hps_api.store.etcdstore import EtcdStore

CLUSTER = "alpha"
HOST = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:01")
OTHER = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:02")
ACTOR = "cli:tester"
#: a change is read within FRESH_SECONDS, plus the watch's catch-up and a margin for a busy CI
WITHIN = FRESH_SECONDS + CATCH_UP_SECONDS + 0.5


def server(cluster: EtcdCluster, prefix: str, root: Path) -> EtcdStore:
    return cluster.store(prefix, root, timeout=1.0, deadline=10.0)


@pytest.fixture
def pair(etcd: EtcdCluster, tmp_path: Path) -> tuple[EtcdStore, EtcdStore]:
    """Two servers sharing one prefix; the first reads through a mirror already seeded."""
    prefix = random_prefix()
    here, there = server(etcd, prefix, tmp_path / "a"), server(etcd, prefix, tmp_path / "b")
    there.update(RecordId.of_cluster(CLUSTER), {"NETWORK": "10.0.0.0/24"}, ACTOR, create=True)
    there.update(HOST, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    wait_for(lambda: here.mirror.fresh())
    return here, there


def wait_for(condition: Callable[[], object], seconds: float = 10.0) -> float:
    """Return how long `condition` took to hold; fail after `seconds`."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "condition never held"
        time.sleep(0.005)
    return time.monotonic() - started


def read_through_mirror(store: EtcdStore) -> bool:
    return store.mirror.fresh()


def test_a_change_made_on_another_server_is_read_within_the_freshness_window(pair):
    here, there = pair
    assert here.items(HOST)["STATE"] == "UNCONFIGURED"
    for n in range(5):
        there.update(HOST, {"NOTE": f"n{n}"}, ACTOR)
        assert wait_for(lambda n=n: here.items(HOST).get("NOTE") == f"n{n}") < WITHIN
    there.update(HOST, {"NOTE": "last"}, ACTOR)
    time.sleep(FRESH_SECONDS)
    assert here.items(HOST)["NOTE"] == "last"  # never an older value after the window
    assert read_through_mirror(here)


def test_a_record_deleted_elsewhere_disappears_and_one_created_elsewhere_is_listed(pair):
    here, there = pair
    assert here.list_records(Kind.HOST, CLUSTER) == [HOST]
    there.update(OTHER, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    time.sleep(FRESH_SECONDS)
    assert here.list_records(Kind.HOST, CLUSTER) == [HOST, OTHER]
    assert here.get(OTHER, "STATE") == "UNCONFIGURED"
    there.delete(HOST, ACTOR)
    time.sleep(FRESH_SECONDS)
    assert not here.exists(HOST)
    with pytest.raises(NotFound):
        here.items(HOST)
    assert here.list_records(Kind.HOST, CLUSTER) == [OTHER]


def test_a_server_reads_its_own_writes_at_once(pair):
    here, _there = pair
    for n in range(20):
        here.update(HOST, {"COUNTER": str(n)}, ACTOR)
        assert here.get(HOST, "COUNTER") == str(n)
    here.delete(HOST, ACTOR)
    assert not here.exists(HOST)


def test_a_write_decided_from_an_old_copy_is_decided_again_from_the_current_value(pair):
    """The mirror is the compare-and-swap's first guess: when another server changed the
    record an instant before, the write still checks `expect` against the current value."""
    from hps_api.errors import Conflict

    here, there = pair
    here.update(HOST, {"COUNTER": "1"}, ACTOR)
    there.update(HOST, {"COUNTER": "2"}, ACTOR)
    with pytest.raises(Conflict):
        here.update(HOST, {"COUNTER": "9"}, ACTOR, expect={"COUNTER": "1"})
    here.update(HOST, {"COUNTER": "1"}, ACTOR)  # the old copy's value: still written
    assert there.get(HOST, "COUNTER") == "1"
    assert [c.new for c in there.history(HOST) if c.key == "COUNTER"] == ["1", "2", "1"]


def watched_member(etcd: EtcdCluster, store: EtcdStore):  # type: ignore[no-untyped-def]
    endpoints = store.gateway.endpoints
    port = endpoints[store.mirror._member % len(endpoints)][1]
    return next(m for m in etcd.members if m.client_port == port)


def test_a_watch_whose_member_dies_moves_on_and_no_read_is_stale_meanwhile(etcd, pair):
    here, there = pair
    member = watched_member(etcd, here)
    etcd.kill(member)
    try:
        for n in range(3):
            there.update(HOST, {"NOTE": f"down{n}"}, ACTOR)
            time.sleep(FRESH_SECONDS)
            assert here.items(HOST)["NOTE"] == f"down{n}"
        wait_for(lambda: watched_member(etcd, here) is not member and here.mirror.fresh())
    finally:
        etcd.restart(member)
    there.update(HOST, {"NOTE": "after"}, ACTOR)
    wait_for(lambda: here.mirror.get(here.record_key(HOST)) is not None and
             b"NOTE=after" in here.mirror.get(here.record_key(HOST)).value)  # type: ignore[union-attr]
    time.sleep(FRESH_SECONDS)
    assert here.items(HOST)["NOTE"] == "after"
    assert read_through_mirror(here)


def test_a_watch_down_while_its_history_is_compacted_reads_the_records_again(etcd, pair,
                                                                           monkeypatch):
    here, there = pair
    assert here.mirror.seeds == 1
    down = [True]
    real_stream = mirror_module.Mirror.stream

    def stream(self):  # type: ignore[no-untyped-def]
        if down[0]:
            raise ConnectionError("watch held down by the test")
        return real_stream(self)

    monkeypatch.setattr(mirror_module.Mirror, "stream", stream)
    member = watched_member(etcd, here)
    etcd.kill(member)
    try:
        for n in range(3):
            there.update(HOST, {"NOTE": f"c{n}"}, ACTOR)
        there.update(OTHER, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
        revision = there.gateway.revision(b"/", serializable=False)
        there.gateway.call("/kv/compaction", {"revision": revision, "physical": True})
        time.sleep(FRESH_SECONDS)
        assert here.items(HOST)["NOTE"] == "c2"  # read from etcd: the mirror is behind
        assert not here.mirror.fresh()
        assert here.list_records(Kind.HOST, CLUSTER) == [HOST, OTHER]
        down[0] = False
        wait_for(lambda: here.mirror.seeds == 2 and here.mirror.fresh())
    finally:
        etcd.restart(member)
    assert here.mirror.get(here.record_key(OTHER)) is not None
    assert here.items(HOST)["NOTE"] == "c2"
    there.update(HOST, {"NOTE": "c3"}, ACTOR)
    time.sleep(FRESH_SECONDS)
    assert here.items(HOST)["NOTE"] == "c3"
    assert read_through_mirror(here)


def test_a_forked_child_starts_a_mirror_of_its_own(pair):
    import multiprocessing

    here, there = pair
    here.items(HOST)
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)

    def child() -> None:
        there_note = here.items(HOST).get("NOTE")
        ok = wait_for(lambda: here.mirror.fresh(), 10) < 10
        writer.send((there_note, ok, here.mirror._thread is not None))

    there.update(HOST, {"NOTE": "before the fork"}, ACTOR)
    process = context.Process(target=child)
    process.start()
    assert reader.poll(20)
    assert reader.recv() == ("before the fork", True, True)
    process.join(10)

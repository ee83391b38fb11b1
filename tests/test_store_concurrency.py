"""Real processes writing one store at once: no lost update, no double allocation.

Workers are forked with multiprocessing (the "fork" start method) so they share nothing with the
test but the directory tree, exactly like gunicorn workers and the config CLIs.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from hps_api.store import FileStore, Kind, RecordId
from hps_api.store.kvfile import parse

CLUSTER = "alpha"
HOST = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:01")
WORKERS = 8
UPDATES_PER_WORKER = 40

pytestmark = pytest.mark.slow

_fork = multiprocessing.get_context("fork")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "hps-config"
    store = FileStore(root)
    store.update(RecordId.of_cluster(CLUSTER), {"NETWORK": "10.0.0.0/24"}, "cli:setup",
                 create=True)
    store.update(HOST, {"STATE": "UNCONFIGURED"}, "cli:setup", create=True)
    return root


def _run(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.start()
    _join(processes)


def _join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * len(processes)


# -- no lost update --------------------------------------------------------------------------


def _update_distinct_keys(root: Path, worker: int) -> None:
    store = FileStore(root, lock_timeout=30.0)
    for n in range(UPDATES_PER_WORKER):
        store.update(HOST, {f"W{worker}_K{n}": f"value {worker}/{n}"}, f"cli:worker{worker}")


def test_concurrent_updates_of_distinct_keys_on_one_record_lose_nothing(root):
    _run([_fork.Process(target=_update_distinct_keys, args=(root, w)) for w in range(WORKERS)])

    expected = {
        f"W{w}_K{n}": f"value {w}/{n}"
        for w in range(WORKERS)
        for n in range(UPDATES_PER_WORKER)
    }
    path = root / "clusters" / CLUSTER / "hosts" / f"{HOST.name}.conf"
    on_disk = parse(path.read_bytes(), str(path)).as_dict()
    assert {k: v for k, v in on_disk.items() if k.startswith("W")} == expected
    assert set(on_disk) == {*expected, "STATE", "UPDATED"}

    journal = (root / "clusters" / CLUSTER / "journal.log").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in journal.splitlines()]  # no torn or merged lines
    written = [e for e in entries if e["key"].startswith("W")]
    assert len(written) == WORKERS * UPDATES_PER_WORKER
    assert Counter(e["key"] for e in written) == Counter(list(expected))
    assert all(e["old"] is None and e["new"] == expected[e["key"]] for e in written)
    assert {e["actor"] for e in written} == {f"cli:worker{w}" for w in range(WORKERS)}


# -- no double allocation --------------------------------------------------------------------

CLAIMERS = 4
CLAIMS_PER_WORKER = 20


def _claim_hostnames(root: Path, worker: int, results: Connection) -> None:
    """Register hosts, each under the cluster lock taking the lowest free `node-N` name."""
    store = FileStore(root, lock_timeout=30.0)
    won = []
    for n in range(CLAIMS_PER_WORKER):
        rid = RecordId.of_host(CLUSTER, f"02:00:00:00:{worker:02x}:{n:02x}")
        with store.lock(CLUSTER):
            taken = {
                store.items(host).get("HOSTNAME")
                for host in store.list_records(Kind.HOST, CLUSTER)
            }
            number = next(i for i in itertools.count(1) if f"node-{i}" not in taken)
            time.sleep(0.001)  # widen the read-check-write window a missing lock would lose
            store.update(rid, {"HOSTNAME": f"node-{number}"}, f"cli:claimer{worker}",
                         create=True)
        won.append(number)
    results.send(won)
    results.close()


def test_processes_racing_for_the_lowest_free_hostname_never_win_the_same_one(root):
    pipes = [_fork.Pipe(duplex=False) for _ in range(CLAIMERS)]
    processes = [
        _fork.Process(target=_claim_hostnames, args=(root, w, pipes[w][1]))
        for w in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    for _, sender in pipes:
        sender.close()
    won = [receiver.recv() for receiver, _ in pipes]
    _join(processes)

    every_claim = [number for numbers in won for number in numbers]
    assert len(every_claim) == CLAIMERS * CLAIMS_PER_WORKER
    duplicates = [n for n, count in Counter(every_claim).items() if count > 1]
    assert duplicates == []
    assert sorted(every_claim) == list(range(1, CLAIMERS * CLAIMS_PER_WORKER + 1))

    store = FileStore(root)
    hostnames = [
        store.items(host).get("HOSTNAME")
        for host in store.list_records(Kind.HOST, CLUSTER)
        if host != HOST
    ]
    assert sorted(hostnames) == sorted(f"node-{n}" for n in every_claim)


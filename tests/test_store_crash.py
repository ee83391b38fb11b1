"""Crash safety: a writer killed with SIGKILL at any instant leaves the old or the new record.

A forked writer loops over updates (or stamps) that flip a record between two complete states
of very different sizes; the test kills it at a random moment, hundreds of times, and after
every kill reads the record the way a fresh process would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from hps_api.store import FileStore, RecordId
from hps_api.store.kvfile import parse

CLUSTER = "alpha"
MAC12 = "525400aabb01"
HOST = RecordId.of_host(CLUSTER, MAC12)
KILLS = 300
MAX_DELAY_SECONDS = 0.015

# Two complete states; a torn or mixed write shows as a length, letter or MARK mismatch.
# (A stamp holds at most 4 KiB.)
PAYLOADS = {"update": {"A": "A" * 20_000, "B": "B" * 3_000},
            "stamp": {"A": "A" * 3_000, "B": "B" * 30}}

pytestmark = pytest.mark.slow

_fork = multiprocessing.get_context("fork")


def _writer(root: Path, ready_fd: int, how: str) -> None:
    """Flip the record between the two states forever (`how`: with `update` or `stamp`); say
    so after the first complete write."""
    store = FileStore(root, lock_timeout=5.0)
    write = store.update if how == "update" else store.stamp
    seq = int(store.get(HOST, "SEQ"))
    ready = True
    while True:
        seq += 1
        mark = "A" if seq % 2 else "B"
        write(HOST, {"PAYLOAD": PAYLOADS[how][mark], "MARK": mark, "SEQ": str(seq)},
              "cli:crash-writer")
        if ready:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
            ready = False


@pytest.mark.parametrize("how", ["update", "stamp"])
def test_a_writer_killed_at_any_instant_leaves_the_old_or_the_new_complete_record(tmp_path, how):
    root = tmp_path / "hps-config"
    store = FileStore(root, lock_timeout=5.0)
    store.update(RecordId.of_cluster(CLUSTER), {"NETWORK": "10.0.0.0/24"}, "cli:setup",
                 create=True)
    payloads = PAYLOADS[how]
    store.update(HOST, {"STATE": "INSTALLING", "PAYLOAD": payloads["B"], "MARK": "B",
                        "SEQ": "0"}, "cli:setup", create=True)
    path = root / "clusters" / CLUSTER / "hosts" / f"{MAC12}.conf"
    rng = random.Random(20240521)
    last_seq = 0
    marks_seen = set()

    for kill in range(KILLS):
        read_end, write_end = os.pipe()
        writer = _fork.Process(target=_writer, args=(root, write_end, how))
        writer.start()
        os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            assert ready.read(1) == b"1", f"writer died before its first update (kill {kill})"
        time.sleep(rng.uniform(0, MAX_DELAY_SECONDS))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=10)
        assert writer.exitcode == -signal.SIGKILL

        if how == "update":
            parse(path.read_bytes(), str(path))  # the file itself is whole
        record = FileStore(root).items(HOST)
        assert set(record) == {"STATE", "PAYLOAD", "MARK", "SEQ", "UPDATED"}, f"kill {kill}"
        assert record["PAYLOAD"] == payloads[record["MARK"]], f"kill {kill}: mixed record"
        assert record["MARK"] == ("A" if int(record["SEQ"]) % 2 else "B")
        assert record["STATE"] == "INSTALLING"
        assert int(record["SEQ"]) > last_seq, f"kill {kill}: a completed update was lost"
        last_seq = int(record["SEQ"])
        marks_seen.add(record["MARK"])

    assert marks_seen == {"A", "B"}

    # A killed holder's flock died with it: a fresh writer gets the lock well within 1 s.
    fresh = FileStore(root, lock_timeout=1.0)
    fresh.update(HOST, {"STATE": "INSTALLED"}, "cli:after-crash")
    assert fresh.get(HOST, "STATE") == "INSTALLED"
    assert fresh.items(HOST)["PAYLOAD"] == payloads[fresh.get(HOST, "MARK")]
    assert int(fresh.get(HOST, "SEQ")) == last_seq  # the update folded the last stamp in
    assert any(c.new == "INSTALLED" for c in fresh.history(HOST))

    leftovers = sorted(
        name for name in os.listdir(path.parent) if name not in {path.name, path.name + ".lock"}
    )
    # The crash heals itself: the fresh writer, holding the record's lock, swept what the
    # killed writers left (temp and set-aside files); nothing waits for fsck.
    assert leftovers == []
    assert not path.with_suffix(".stamp").exists()
    assert sorted(os.listdir(path.parent.parent)) == [
        "cluster.conf", "cluster.conf.lock", "hosts", "journal.log"
    ]

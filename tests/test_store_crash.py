"""Crash safety: a writer killed with SIGKILL at any instant leaves the old or the new record.

A forked writer loops over updates that flip a record between two complete states of very
different sizes; the test kills it at a random moment, hundreds of times, and after every kill
reads the record the way a fresh process would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
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
PAYLOADS = {"A": "A" * 20_000, "B": "B" * 3_000}
TEMP_FILE = re.compile(rf"^\.{MAC12}\.conf\..+\.tmp$")

pytestmark = pytest.mark.slow

_fork = multiprocessing.get_context("fork")


def _writer(root: Path, ready_fd: int, durable: bool = True) -> None:
    """Flip the record between the two states forever; say so after the first full update."""
    store = FileStore(root, lock_timeout=5.0)
    seq = int(store.get(HOST, "SEQ"))
    ready = True
    while True:
        seq += 1
        mark = "A" if seq % 2 else "B"
        store.update(HOST, {"PAYLOAD": PAYLOADS[mark], "MARK": mark, "SEQ": str(seq)},
                     "cli:crash-writer", durable=durable)
        if ready:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
            ready = False


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "not-durable"])
def test_a_writer_killed_at_any_instant_leaves_the_old_or_the_new_complete_record(tmp_path,
                                                                                  durable):
    root = tmp_path / "hps-config"
    store = FileStore(root, lock_timeout=5.0)
    store.update(RecordId.of_cluster(CLUSTER), {"NETWORK": "10.0.0.0/24"}, "cli:setup",
                 create=True)
    store.update(HOST, {"STATE": "INSTALLING", "PAYLOAD": PAYLOADS["B"], "MARK": "B",
                        "SEQ": "0"}, "cli:setup", create=True)
    path = root / "clusters" / CLUSTER / "hosts" / f"{MAC12}.conf"
    rng = random.Random(20240521)
    last_seq = 0
    marks_seen = set()

    for kill in range(KILLS):
        read_end, write_end = os.pipe()
        writer = _fork.Process(target=_writer, args=(root, write_end, durable))
        writer.start()
        os.close(write_end)
        with os.fdopen(read_end, "rb") as ready:
            assert ready.read(1) == b"1", f"writer died before its first update (kill {kill})"
        time.sleep(rng.uniform(0, MAX_DELAY_SECONDS))
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(timeout=10)
        assert writer.exitcode == -signal.SIGKILL

        record = parse(path.read_bytes(), str(path)).as_dict()
        assert set(record) == {"STATE", "PAYLOAD", "MARK", "SEQ", "UPDATED"}, f"kill {kill}"
        assert record["PAYLOAD"] == PAYLOADS[record["MARK"]], f"kill {kill}: mixed record"
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
    assert fresh.items(HOST)["PAYLOAD"] == PAYLOADS[fresh.get(HOST, "MARK")]
    assert any(c.new == "INSTALLED" for c in fresh.history(HOST))

    leftovers = sorted(
        name for name in os.listdir(path.parent) if name not in {path.name, path.name + ".lock"}
    )
    assert [name for name in leftovers if not TEMP_FILE.match(name)] == []
    assert sorted(os.listdir(path.parent.parent)) == [
        "cluster.conf", "cluster.conf.lock", "hosts", "journal.log"
    ]

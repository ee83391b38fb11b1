"""The file backend on a real directory tree (docs/storage.md, "Writes").

Every test builds its own tree under tmp_path: hps.conf, one cluster `alpha`, one host and one
OS record. Nothing is mocked except where a test counts `os.replace` calls.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hps_api.errors import Conflict, CorruptRecord, InvalidInput, KeyNotSet, NotFound, StoreBusy
from hps_api.store import FileStore, Kind, RecordId, files
from hps_api.store.journal import REDACTED

CLUSTER = "alpha"
MAC = "52:54:00:AA:BB:01"
MAC12 = "525400aabb01"
OS_ID = "x86_64:rocky:10"
ACTOR = "cli:tester"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

HOST = RecordId.of_host(CLUSTER, MAC)
CLUSTER_RID = RecordId.of_cluster(CLUSTER)
GLOBAL = RecordId.global_()
OS_RID = RecordId.of_os(OS_ID)
RIDS = {"global": GLOBAL, "cluster": CLUSTER_RID, "host": HOST, "os": OS_RID}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "hps-config"


@pytest.fixture
def store(root: Path) -> FileStore:
    """A store holding hps.conf, cluster `alpha`, one host of it and one OS record."""
    store = FileStore(root, lock_timeout=2.0)
    store.update(GLOBAL, {"ACTIVE_CLUSTER": CLUSTER}, "cli:setup", create=True)
    store.update(CLUSTER_RID, {"NETWORK": "10.0.0.0/24"}, "cli:setup", create=True)
    store.update(HOST, {"STATE": "UNCONFIGURED"}, "cli:setup", create=True)
    store.update(OS_RID, {"NAME": "rocky"}, "cli:setup", create=True)
    return store


def host_path(root: Path, mac12: str = MAC12, cluster: str = CLUSTER) -> Path:
    return root / "clusters" / cluster / "hosts" / f"{mac12}.conf"


def record_path(root: Path, rid: RecordId) -> Path:
    return {
        GLOBAL: root / "hps.conf",
        CLUSTER_RID: root / "clusters" / CLUSTER / "cluster.conf",
        HOST: host_path(root),
        OS_RID: root / "os" / "x86_64_rocky_10.conf",
    }[rid]


def journal_path(root: Path, rid: RecordId) -> Path:
    return root / "clusters" / CLUSTER / "journal.log" if rid.cluster else root / "journal.log"


def journal_entries(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root with its type, inode, mtime, mode and (for files) bytes."""
    if not root.exists():
        return {}
    snapshot: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        body = path.read_bytes() if path.is_file() else None
        snapshot[str(path.relative_to(root))] = (st.st_ino, st.st_mtime_ns, st.st_mode, body)
    return snapshot


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


@pytest.fixture
def replace_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record every os.replace the store makes (and still make it)."""
    calls: list[tuple[str, str]] = []
    real_replace = os.replace

    def counting_replace(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((str(src), str(dst)))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", counting_replace)
    return calls


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(RIDS))
def test_a_value_that_was_set_reads_back_and_lists_with_the_others(store, kind):
    rid = RIDS[kind]
    returned = store.update(rid, {"COLOR": "blue", "NOTE": "a=b, \u00e9t\u00e9"}, ACTOR)
    assert store.get(rid, "COLOR") == "blue"
    assert store.get(rid, "NOTE") == "a=b, \u00e9t\u00e9"
    assert returned == store.items(rid)
    assert {"COLOR": "blue", "NOTE": "a=b, \u00e9t\u00e9"}.items() <= store.items(rid).items()


def test_keys_are_case_insensitive_on_set_get_and_unset(store):
    store.update(HOST, {"os_id": OS_ID}, ACTOR)
    assert store.get(HOST, "OS_ID") == OS_ID
    assert store.get(HOST, "Os_Id") == OS_ID
    assert "OS_ID=x86_64:rocky:10\n" in host_path(store.layout.root).read_text()
    store.unset(HOST, "os_Id", ACTOR)
    with pytest.raises(KeyNotSet):
        store.get(HOST, "os_id")


def test_an_empty_value_is_set_and_unset_removes_the_key(store, root):
    store.update(HOST, {"NOTE": ""}, ACTOR)
    assert store.get(HOST, "NOTE") == ""
    assert "\nNOTE=\n" in host_path(root).read_text()

    store.unset(HOST, "NOTE", ACTOR)
    with pytest.raises(KeyNotSet, match="Key 'NOTE' not found"):
        store.get(HOST, "NOTE")
    assert "NOTE" not in store.items(HOST)
    assert "NOTE" not in host_path(root).read_text()


def test_unsetting_a_key_that_is_not_set_is_key_not_set_and_writes_nothing(store, root):
    before = tree(root)
    with pytest.raises(KeyNotSet):
        store.unset(HOST, "NEVER_SET", ACTOR)
    assert tree(root) == before


def test_none_in_an_update_unsets_the_key(store):
    store.update(HOST, {"IP": "10.0.0.5", "HOSTNAME": "n1"}, ACTOR)
    store.update(HOST, {"IP": None, "HOSTNAME": "n2"}, ACTOR)
    assert "IP" not in store.items(HOST)
    assert store.get(HOST, "HOSTNAME") == "n2"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.items(RecordId.of_host(CLUSTER, "52:54:00:00:00:99")),
        lambda s: s.get(RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), "STATE"),
        lambda s: s.unset(RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), "STATE", ACTOR),
        lambda s: s.delete(RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), ACTOR),
        lambda s: s.update(RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), {"A": "1"}, ACTOR),
        lambda s: s.record(RecordId.of_cluster("ghost")),
        lambda s: s.list_records(Kind.HOST, "ghost"),
    ],
)
def test_an_unknown_record_is_not_found_rather_than_an_unset_key(store, root, call):
    before = tree(root)
    with pytest.raises(NotFound) as caught:
        call(store)
    assert not isinstance(caught.value, KeyNotSet)
    assert tree(root) == before


def test_creating_a_record_makes_its_directory_and_a_file_with_mode_0640(store, root):
    new_host = RecordId.of_host(CLUSTER, "52-54-00-aa-bb-02")
    store.update(new_host, {"STATE": "UNCONFIGURED"}, "api:525400aabb02", create=True)
    path = host_path(root, "525400aabb02")
    assert path.is_file()
    assert path.stat().st_mode & 0o7777 == 0o640
    assert store.get(new_host, "STATE") == "UNCONFIGURED"


def test_creating_a_host_in_a_missing_cluster_is_not_found_and_creates_nothing(store, root):
    before = tree(root)
    with pytest.raises(NotFound, match="cluster/ghost"):
        store.update(RecordId.of_host("ghost", MAC), {"STATE": "NEW"}, ACTOR, create=True)
    assert tree(root) == before
    assert not (root / "clusters" / "ghost").exists()


# -- one replace per update, nothing for no change -------------------------------------------


def test_a_multi_key_update_is_one_replace_and_one_journal_line_per_changed_key(
    store, root, replace_calls
):
    path = host_path(root)
    inode_before = path.stat().st_ino
    journal_before = journal_entries(journal_path(root, HOST))
    changes = {"TYPE": "compute", "HOSTNAME": "n1", "IP": "10.0.0.5",
               "NETMASK": "255.255.255.0", "STATE": "CONFIGURED"}
    replace_calls.clear()

    store.update(HOST, changes, "api:525400aabb01")

    assert replace_calls == [(replace_calls[0][0], str(path))]
    assert path.stat().st_ino != inode_before
    added = journal_entries(journal_path(root, HOST))[len(journal_before):]
    assert sorted(entry["key"] for entry in added) == sorted(changes)
    assert {k: v for k, v in store.items(HOST).items() if k in changes} == changes


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"STATE": "UNCONFIGURED"},
        {"state": "UNCONFIGURED"},
        {"NEVER_SET": None},
        {"STATE": "UNCONFIGURED", "NEVER_SET": None},
    ],
)
def test_an_update_that_changes_nothing_writes_nothing(store, root, replace_calls, changes):
    before = tree(root)
    replace_calls.clear()
    returned = store.update(HOST, changes, ACTOR)
    assert returned == store.items(HOST)
    assert replace_calls == []
    assert tree(root) == before


def test_only_the_keys_whose_value_changes_are_journaled(store, root):
    store.update(HOST, {"IP": "10.0.0.5", "HOSTNAME": "n1"}, ACTOR)
    count = len(journal_entries(journal_path(root, HOST)))
    store.update(HOST, {"IP": "10.0.0.5", "HOSTNAME": "n2"}, ACTOR)
    added = journal_entries(journal_path(root, HOST))[count:]
    assert [(e["key"], e["old"], e["new"]) for e in added] == [("HOSTNAME", "n1", "n2")]


# -- UPDATED stamp ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "stamped"),
    [("host", True), ("cluster", True), ("global", False), ("os", False)],
)
def test_host_and_cluster_records_carry_an_updated_stamp_and_the_others_do_not(
    store, kind, stamped
):
    rid = RIDS[kind]
    store.update(rid, {"COLOR": "red"}, ACTOR)
    after_set = store.items(rid)
    store.unset(rid, "COLOR", ACTOR)
    after_unset = store.items(rid)
    for items in (after_set, after_unset):
        assert ("UPDATED" in items) is stamped
        if stamped:
            assert STAMP.match(items["UPDATED"])


def test_the_updated_stamp_is_never_journaled(store, root):
    store.update(HOST, {"COLOR": "red"}, ACTOR)
    store.unset(HOST, "COLOR", ACTOR)
    assert all(e["key"] != "UPDATED" for e in journal_entries(journal_path(root, HOST)))


# -- journal ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(RIDS))
def test_every_change_is_journaled_with_time_record_old_new_and_actor(store, root, kind):
    rid = RIDS[kind]
    path = journal_path(root, rid)
    count = len(journal_entries(path))

    store.update(rid, {"IP": "10.0.0.5"}, "api:525400aabb01")
    store.update(rid, {"IP": "10.0.0.6"}, "admin:192.0.2.7")
    store.unset(rid, "IP", "cli:root")

    added = journal_entries(path)[count:]
    assert [(e["record"], e["key"], e["old"], e["new"], e["actor"]) for e in added] == [
        (rid.label, "IP", None, "10.0.0.5", "api:525400aabb01"),
        (rid.label, "IP", "10.0.0.5", "10.0.0.6", "admin:192.0.2.7"),
        (rid.label, "IP", "10.0.0.6", None, "cli:root"),
    ]
    assert all(STAMP.match(str(e["time"])) for e in added)
    history = [(c.key, c.old, c.new, c.actor) for c in store.history(rid) if c.key == "IP"]
    assert history == [(e["key"], e["old"], e["new"], e["actor"]) for e in added]


def test_history_holds_only_the_changes_of_the_record_asked_about(store):
    other = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:02")
    store.update(other, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    store.update(HOST, {"IP": "10.0.0.5"}, ACTOR)
    assert {c.record for c in store.history(HOST)} == {f"host/{MAC12}"}
    assert {c.record for c in store.history(other)} == {"host/525400aabb02"}
    assert [c.key for c in store.history(HOST)] == ["STATE", "IP"]


@pytest.mark.parametrize(
    "key", ["ROOT_PASSWORD", "API_TOKEN", "SSH_PRIVATE_KEY", "client_secret", "SSH_KEY_TYPE"]
)
def test_sensitive_values_are_redacted_in_the_journal_but_kept_in_the_record(store, root, key):
    path = journal_path(root, HOST)
    count = len(journal_entries(path))

    store.update(HOST, {key: "first-Secr3t-value"}, ACTOR)
    store.update(HOST, {key: "second-Secr3t-value"}, ACTOR)
    store.unset(HOST, key, ACTOR)

    text = path.read_text(encoding="utf-8")
    assert "Secr3t" not in text
    added = journal_entries(path)[count:]
    assert [(e["old"], e["new"]) for e in added] == [
        (None, REDACTED), (REDACTED, REDACTED), (REDACTED, None)
    ]
    assert all(c.new in (None, REDACTED) for c in store.history(HOST) if c.key == key.upper())


def test_a_sensitive_value_is_readable_from_the_record_itself(store):
    store.update(HOST, {"ROOT_PASSWORD": "hunter2"}, ACTOR)
    assert store.get(HOST, "ROOT_PASSWORD") == "hunter2"


def test_a_non_sensitive_value_is_journaled_in_clear(store, root):
    store.update(HOST, {"HOSTNAME": "visible-name"}, ACTOR)
    assert "visible-name" in journal_path(root, HOST).read_text(encoding="utf-8")


def test_the_sensitive_patterns_of_the_store_decide_what_is_redacted(store, root):
    custom = FileStore(root, sensitive_patterns=("*_PASS",))
    custom.update(HOST, {"IPMI_PASS": "ipmi-Secr3t", "ROOT_PASSWORD": "root-visible"}, ACTOR)
    text = journal_path(root, HOST).read_text(encoding="utf-8")
    assert "ipmi-Secr3t" not in text
    assert "root-visible" in text


# -- file mode, temp files -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644, 0o660], ids=oct)
@pytest.mark.parametrize("kind", sorted(RIDS))
def test_an_update_keeps_the_file_mode(store, root, kind, mode):
    rid = RIDS[kind]
    path = record_path(root, rid)
    path.chmod(mode)
    inode = path.stat().st_ino
    store.update(rid, {"COLOR": "green"}, ACTOR)
    assert path.stat().st_ino != inode, "the file was replaced, not rewritten in place"
    assert path.stat().st_mode & 0o7777 == mode
    store.unset(rid, "COLOR", ACTOR)
    assert path.stat().st_mode & 0o7777 == mode


def test_no_temporary_files_are_left_behind_by_writes_that_succeed_or_fail(store, root):
    other = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:02")
    store.update(other, {"STATE": "NEW"}, ACTOR, create=True)
    store.update(HOST, {"A": "1", "B": "2"}, ACTOR)
    store.unset(HOST, "A", ACTOR)
    store.delete(other, ACTOR)
    big = {f"K{i}": "x" * (64 * 1024) for i in range(17)}
    with pytest.raises(InvalidInput):
        store.update(HOST, big, ACTOR)
    host_path(root, "525400aabb03").write_bytes(b"A=1\nA=2\n")
    with pytest.raises(CorruptRecord):
        store.update(RecordId.of_host(CLUSTER, "525400aabb03"), {"B": "1"}, ACTOR)
    assert temp_files(root) == []


# -- reads never write -----------------------------------------------------------------------

_UNKNOWN_HOST = RecordId.of_host(CLUSTER, "52:54:00:00:00:99")
_HOST_OF_UNKNOWN_CLUSTER = RecordId.of_host("ghost", MAC)
_UNKNOWN_CLUSTER = RecordId.of_cluster("ghost")
_UNKNOWN_OS = RecordId.of_os("aarch64:debian:13")

_READS: dict[str, Callable[[FileStore, RecordId], object]] = {
    "exists": lambda s, rid: s.exists(rid),
    "items": lambda s, rid: s.items(rid),
    "get": lambda s, rid: s.get(rid, "STATE"),
    "record": lambda s, rid: s.record(rid),
    "history": lambda s, rid: s.history(rid),
}


@pytest.mark.parametrize("read", sorted(_READS))
@pytest.mark.parametrize(
    "rid",
    [_UNKNOWN_HOST, _HOST_OF_UNKNOWN_CLUSTER, _UNKNOWN_CLUSTER, _UNKNOWN_OS],
    ids=["unknown-host", "host-of-unknown-cluster", "unknown-cluster", "unknown-os"],
)
def test_reading_an_unknown_record_creates_no_file_or_directory(store, root, read, rid):
    before = tree(root)
    try:
        result = _READS[read](store, rid)
    except NotFound:
        result = None
    assert result in (None, False, [])
    assert tree(root) == before


@pytest.mark.parametrize("kind", list(Kind))
def test_listing_creates_no_file_or_directory(store, root, kind):
    before = tree(root)
    try:
        store.list_records(kind, "ghost")
    except NotFound:
        assert kind is Kind.HOST
    assert tree(root) == before


def test_reading_a_store_that_does_not_exist_yet_creates_nothing(tmp_path):
    root = tmp_path / "not-yet"
    empty = FileStore(root)
    assert empty.list_records(Kind.GLOBAL) == []
    assert empty.list_records(Kind.CLUSTER) == []
    assert empty.list_records(Kind.OS) == []
    assert empty.exists(GLOBAL) is False
    assert empty.history(HOST) == []
    with pytest.raises(NotFound):
        empty.items(GLOBAL)
    with pytest.raises(NotFound):
        empty.list_records(Kind.HOST, CLUSTER)
    assert not root.exists()


def test_the_cluster_lock_of_an_unknown_cluster_is_not_found_and_creates_nothing(store, root):
    before = tree(root)
    with pytest.raises(NotFound), store.lock("ghost"):
        pass
    assert tree(root) == before


# -- refused writes leave the file as it was -------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"STATE=NEW\nIP=10.0.0.5\nSTATE=INSTALLED\n", 3),
        (b"# host\nthis is not a record line\n", 2),
        (b"STATE=NEW\nstate=NEW2\n", 2),
        (b'export STATE="NEW"\n', 1),
        (b"STATE=NEW\nIP=10.0.0.\xff\n", 2),
        (b"STATE=NEW\x1b[0m\n", 1),
    ],
    ids=["duplicate-key", "junk-line", "lower-case-key", "bash-export", "not-utf8", "escape"],
)
@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.update(HOST, {"IP": "10.0.0.9"}, ACTOR),
        lambda s: s.update(HOST, {"IP": None}, ACTOR),
        lambda s: s.unset(HOST, "STATE", ACTOR),
        lambda s: s.delete(HOST, ACTOR),
    ],
    ids=["update", "update-unset", "unset", "delete"],
)
def test_a_corrupt_record_is_never_rewritten(store, root, content, line, write):
    path = host_path(root)
    path.write_bytes(content)
    before = tree(root)
    with pytest.raises(CorruptRecord) as caught:
        write(store)
    assert caught.value.line == line
    assert f"{path}:{line}" in str(caught.value)
    assert tree(root) == before


@pytest.mark.parametrize("read", ["items", "get", "record"])
def test_reading_a_corrupt_record_reports_it(store, root, read):
    host_path(root).write_bytes(b"STATE=A\nSTATE=B\n")
    with pytest.raises(CorruptRecord, match="duplicate key STATE"):
        _READS[read](store, HOST)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BIG": "x" * (64 * 1024 + 1)}, "larger than"),
        ({"BIG": "\u00e9" * (32 * 1024) + "x"}, "larger than"),
        ({"OK": "fine", "BIG": "x" * (64 * 1024 + 1)}, "larger than"),
        ({f"K{i}": "x" * (64 * 1024) for i in range(17)}, "exceed"),
        ({"NOTE": "two\nlines"}, "control character"),
        ({"OK": "fine", "NOTE": "tab\there"}, "control character"),
        ({"BAD-KEY": "x"}, "invalid key"),
        ({"": "x"}, "key is empty"),
    ],
    ids=["value-over-64k", "utf8-over-64k", "with-a-good-key", "record-over-1m",
         "newline", "tab-with-a-good-key", "bad-key", "empty-key"],
)
def test_a_refused_update_leaves_the_file_byte_identical(store, root, changes, message):
    before = tree(root)
    with pytest.raises(InvalidInput, match=message):
        store.update(HOST, changes, ACTOR)
    assert tree(root) == before


def test_a_value_of_exactly_64_kib_is_stored(store):
    value = "\u00e9" * (32 * 1024)
    store.update(HOST, {"BIG": value}, ACTOR)
    assert store.get(HOST, "BIG") == value


# -- locks held by another process -----------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()
    """
)


@contextmanager
def held_by_another_process(lock_file: Path) -> Iterator[None]:
    """Hold `lock_file` with filelock in a separate Python process until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()


def _enter_cluster_lock(s: FileStore) -> None:
    with s.lock(CLUSTER):
        pass


_LOCKED_WRITES = [
    ("clusters/alpha/hosts/525400aabb01.conf.lock",
     lambda s: s.update(HOST, {"IP": "10.0.0.5"}, ACTOR)),
    ("clusters/alpha/hosts/525400aabb01.conf.lock", lambda s: s.unset(HOST, "STATE", ACTOR)),
    ("clusters/alpha/hosts/525400aabb01.conf.lock", lambda s: s.delete(HOST, ACTOR)),
    ("clusters/alpha/cluster.conf.lock",
     lambda s: s.update(CLUSTER_RID, {"DNS": "10.0.0.1"}, ACTOR)),
    ("hps.conf.lock", lambda s: s.update(GLOBAL, {"ACTIVE_CLUSTER": "beta"}, ACTOR)),
    ("clusters/alpha/.alloc.lock", _enter_cluster_lock),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lock_file", "write"),
    _LOCKED_WRITES,
    ids=["update", "unset", "delete", "cluster-update", "global-update", "cluster-lock"],
)
def test_a_lock_held_by_another_process_makes_the_write_store_busy_and_touches_nothing(
    store, root, lock_file, write
):
    impatient = FileStore(root, lock_timeout=0.3)
    with held_by_another_process(root / lock_file):
        before = tree(root)
        with pytest.raises(StoreBusy, match=re.escape(Path(lock_file).name)):
            write(impatient)
        assert tree(root) == before
    write(impatient)


def test_readers_take_no_lock(store, root):
    impatient = FileStore(root, lock_timeout=0.3)
    with held_by_another_process(host_path(root).with_name(f"{MAC12}.conf.lock")):
        assert impatient.get(HOST, "STATE") == "UNCONFIGURED"
        assert impatient.list_records(Kind.HOST, CLUSTER) == [HOST]


# -- delete ----------------------------------------------------------------------------------


def test_delete_removes_the_record_keeps_its_lock_file_and_journals_every_key(store, root):
    store.update(HOST, {"IP": "10.0.0.5", "ROOT_PASSWORD": "hunter2"}, ACTOR)
    path = journal_path(root, HOST)
    count = len(journal_entries(path))

    store.delete(HOST, "admin:192.0.2.7")

    assert not host_path(root).exists()
    assert host_path(root).with_name(f"{MAC12}.conf.lock").exists()
    assert store.exists(HOST) is False
    assert store.list_records(Kind.HOST, CLUSTER) == []
    with pytest.raises(NotFound):
        store.get(HOST, "IP")
    added = journal_entries(path)[count:]
    assert [(e["key"], e["old"], e["new"], e["actor"]) for e in added] == [
        ("STATE", "UNCONFIGURED", None, "admin:192.0.2.7"),
        ("IP", "10.0.0.5", None, "admin:192.0.2.7"),
        ("ROOT_PASSWORD", REDACTED, None, "admin:192.0.2.7"),
    ]
    with pytest.raises(NotFound):
        store.delete(HOST, ACTOR)


def test_a_deleted_host_can_be_created_again_from_scratch(store):
    store.update(HOST, {"IP": "10.0.0.5"}, ACTOR)
    store.delete(HOST, ACTOR)
    store.update(HOST, {"STATE": "UNCONFIGURED"}, ACTOR, create=True)
    assert set(store.items(HOST)) == {"STATE", "UPDATED"}


# -- listing ---------------------------------------------------------------------------------


def test_listing_returns_every_record_of_a_kind_sorted(store):
    for mac in ("52:54:00:ff:00:01", "02:00:00:00:00:01", "52:54:00:aa:bb:00"):
        store.update(RecordId.of_host(CLUSTER, mac), {"STATE": "NEW"}, ACTOR, create=True)
    store.update(RecordId.of_cluster("beta"), {"NETWORK": "10.1.0.0/24"}, ACTOR, create=True)
    store.update(RecordId.of_os("aarch64:rocky:9.4"), {"NAME": "rocky"}, ACTOR, create=True)

    assert [r.name for r in store.list_records(Kind.HOST, CLUSTER)] == [
        "020000000001", "525400aabb00", MAC12, "525400ff0001"
    ]
    assert store.list_records(Kind.CLUSTER) == [CLUSTER_RID, RecordId.of_cluster("beta")]
    assert store.list_records(Kind.OS) == [RecordId.of_os("aarch64:rocky:9.4"), OS_RID]
    assert store.list_records(Kind.GLOBAL) == [GLOBAL]


def test_listing_ignores_stray_files(store, root):
    hosts = root / "clusters" / CLUSTER / "hosts"
    for name in ("foo.conf", ".x.tmp", f".{MAC12}.conf.a1b2c3.tmp", f"{MAC12}.conf.lock",
                 "525400aabb02.conf.lock", "525400AABB03.conf", "525400aabb04.conf.bak",
                 "525400aabb0.conf", "notes.txt"):
        (hosts / name).write_text("A=1\n")
    (root / "clusters" / "beta").mkdir()  # no cluster.conf: not a cluster
    (root / "clusters" / "Bad_Name").mkdir()
    (root / "clusters" / "Bad_Name" / "cluster.conf").write_text("A=1\n")
    (root / "clusters" / "stray.conf").write_text("A=1\n")
    for name in ("notanos.conf", "x86_64_rocky_10.conf.lock", ".x86_64_rocky_10.conf.x.tmp",
                 "readme.txt"):
        (root / "os" / name).write_text("A=1\n")

    assert store.list_records(Kind.HOST, CLUSTER) == [HOST]
    assert store.list_records(Kind.CLUSTER) == [CLUSTER_RID]
    assert store.list_records(Kind.OS) == [OS_RID]


# -- stamps: a host's bookkeeping beside its record, no rewrite, no fsync ------------------------



def stamp_path(root: Path) -> Path:
    return host_path(root).with_suffix(".stamp")


SEEN = {"LAST_SEEN": "2026-01-01T00:00:00Z", "BOOT_SESSION": "a1b2c3"}


def test_an_update_fsyncs_the_record_and_then_its_directory(store, fsyncs):
    store.update(HOST, {"IP": "10.0.0.5"}, ACTOR)
    assert fsyncs == ["file", "dir"]


def test_a_stamp_rewrites_no_record_fsyncs_nothing_and_every_read_sees_it(
    store, root, fsyncs, replace_calls
):
    before = host_path(root).read_bytes()
    store.stamp(HOST, SEEN, ACTOR)
    assert fsyncs == [] and replace_calls == []
    assert host_path(root).read_bytes() == before
    assert stamp_path(root).stat().st_mode & 0o777 == host_path(root).stat().st_mode & 0o777
    view = store.items(HOST)
    assert {k: view[k] for k in SEEN} == SEEN and view["STATE"] == "UNCONFIGURED"
    assert STAMP.match(view["UPDATED"])
    assert store.get(HOST, "boot_session") == "a1b2c3"
    assert store.record(HOST).as_dict() == view
    assert FileStore(root).items(HOST) == view  # another process sees it too
    changed = [(e["key"], e["new"]) for e in journal_entries(journal_path(root, HOST))[-2:]]
    assert changed[-1] == ("BOOT_SESSION", "a1b2c3")  # LAST_SEEN, a heartbeat, is not journaled
    assert "LAST_SEEN" not in {key for key, _ in changed}
    assert temp_files(root) == []


def test_a_stamp_journals_the_old_value_from_the_record_then_from_the_stamp(store, root):
    store.update(HOST, {"BOOT_SESSION": "000000"}, ACTOR)
    store.stamp(HOST, {"BOOT_SESSION": "111111"}, ACTOR)
    store.stamp(HOST, {"BOOT_SESSION": "222222"}, ACTOR)
    changes = [(e["old"], e["new"]) for e in journal_entries(journal_path(root, HOST))
               if e["key"] == "BOOT_SESSION"]
    assert changes == [(None, "000000"), ("000000", "111111"), ("111111", "222222")]


def test_a_stamp_for_a_host_deleted_meanwhile_is_not_found(store, root, monkeypatch):
    store.stamp(HOST, SEEN, ACTOR)
    real_acquire = files.acquire

    def delete_first(lock_path: Path, timeout: float) -> int:
        host_path(root).unlink()  # another process deleted the host just before we locked
        return real_acquire(lock_path, timeout)

    monkeypatch.setattr(files, "acquire", delete_first)
    with pytest.raises(NotFound):
        store.stamp(HOST, {"BOOT_SESSION": "ffffff"}, ACTOR)


def test_a_stamp_of_the_values_already_seen_writes_nothing(store, root):
    store.stamp(HOST, SEEN, ACTOR)
    lines = journal_entries(journal_path(root, HOST))
    stamp_bytes = stamp_path(root).read_bytes()
    store.stamp(HOST, SEEN, ACTOR)
    assert journal_entries(journal_path(root, HOST)) == lines
    assert stamp_path(root).read_bytes() == stamp_bytes


def test_an_update_folds_the_stamp_into_the_record_durably_and_removes_it(store, root, fsyncs):
    store.stamp(HOST, SEEN, ACTOR)
    store.stamp(HOST, {"BOOT_SESSION": "d4e5f6"}, ACTOR)  # a second stamp keeps the first's keys
    store.update(HOST, {"STATE": "INSTALLING"}, ACTOR)
    assert not stamp_path(root).exists()
    assert fsyncs == ["file", "dir"]
    on_disk = FileStore(root).items(HOST)
    assert (on_disk["LAST_SEEN"], on_disk["BOOT_SESSION"], on_disk["STATE"]) == (
        SEEN["LAST_SEEN"], "d4e5f6", "INSTALLING")
    assert b"BOOT_SESSION=d4e5f6\n" in host_path(root).read_bytes()


def test_unset_folds_the_stamp_too_and_sees_stamped_keys(store, root):
    store.stamp(HOST, SEEN, ACTOR)
    store.unset(HOST, "BOOT_SESSION", ACTOR)
    assert not stamp_path(root).exists()
    view = store.items(HOST)
    assert "BOOT_SESSION" not in view and view["LAST_SEEN"] == SEEN["LAST_SEEN"]


def test_an_expectation_is_checked_against_the_stamped_value(store):
    store.stamp(HOST, SEEN, ACTOR)
    with pytest.raises(Conflict):
        store.update(HOST, {"STATE": "X"}, ACTOR, expect={"BOOT_SESSION": None})
    store.update(HOST, {"STATE": "X"}, ACTOR, expect={"BOOT_SESSION": "a1b2c3"})


@pytest.mark.parametrize("damage", [
    b"",
    b"BOOT_SESSION=ffffff\n",  # no header
    b"# hps-stamp 00000000 20\nBOOT_SESSION=ffffff\n",  # wrong CRC
    b"# hps-stamp %08x 40\nBOOT_SESSION=ffffff\n" % zlib.crc32(b"BOOT_SESSION=ffffff\n"),
    b"# hps-stamp %08x 20\nBOOT_SESSION=ffff" % zlib.crc32(b"BOOT_SESSION=ffffff\n"),  # cut
    b"# hps-stamp %08x 9\nboot=x1\n\n" % zlib.crc32(b"boot=x1\n\n"),  # verifies, not a record
], ids=["empty", "no-header", "bad-crc", "too-short", "cut", "junk"])
def test_a_torn_or_foreign_stamp_leaves_the_records_own_values_until_the_next(store, root,
                                                                              damage):
    store.update(HOST, {"BOOT_SESSION": "000000"}, ACTOR)
    record = store.items(HOST)
    stamp_path(root).write_bytes(damage)
    assert store.items(HOST) == record
    store.stamp(HOST, {"BOOT_SESSION": "abcdef"}, ACTOR)
    assert store.get(HOST, "BOOT_SESSION") == "abcdef"


def test_a_shorter_stamp_over_a_longer_one_reads_back_exactly(store, root):
    store.stamp(HOST, {"NOTE": "x" * 3000}, ACTOR)
    store.stamp(HOST, {"NOTE": "short"}, ACTOR)
    assert store.get(HOST, "NOTE") == "short"
    assert stamp_path(root).stat().st_size < 200


@pytest.mark.parametrize("rid, values, error", [
    (CLUSTER_RID, {"LAST_SEEN": "x"}, InvalidInput),
    (RecordId.of_host(CLUSTER, "52:54:00:00:00:99"), {"LAST_SEEN": "x"}, NotFound),
    (HOST, {"LAST_SEEN": "a\nSTATE=INSTALLED"}, InvalidInput),
    (HOST, {"bad key": "x"}, InvalidInput),
    (HOST, {"NOTE": "x" * 5000}, InvalidInput),
], ids=["not-a-host", "unknown-host", "control-char", "bad-key", "too-large"])
def test_a_refused_stamp_changes_nothing(store, root, rid, values, error):
    before = tree(root)
    with pytest.raises(error):
        store.stamp(rid, values, ACTOR)
    assert tree(root) == before


def test_deleting_a_host_removes_its_stamp(store, root):
    store.stamp(HOST, SEEN, ACTOR)
    store.delete(HOST, ACTOR)
    assert not stamp_path(root).exists() and not host_path(root).exists()


def test_stamps_are_seen_whole_by_readers_old_or_new_never_torn(root):
    """A writer process flips a host's stamp between two states of very different sizes while
    this process reads the host as fast as it can."""
    store = FileStore(root, lock_timeout=2.0)
    store.update(CLUSTER_RID, {"NETWORK": "10.0.0.0/24"}, "cli:setup", create=True)
    payloads = {"A": "A" * 3_000, "B": "B" * 30}
    store.update(HOST, {"PAYLOAD": payloads["B"], "MARK": "B"}, "cli:setup", create=True)
    writer = multiprocessing.get_context("fork").Process(
        target=_flip_forever, args=(root, payloads), daemon=True)
    writer.start()
    try:
        marks = set()
        reads = 0
        deadline = time.monotonic() + 10
        while len(marks) < 2 or reads < 2000:
            record = store.items(HOST)
            assert record["PAYLOAD"] == payloads[record["MARK"]]
            marks.add(record["MARK"])
            reads += 1
            assert time.monotonic() < deadline, f"saw only {marks} in 10 s"
    finally:
        writer.kill()
        writer.join(timeout=10)


def _flip_forever(root: Path, payloads: dict[str, str]) -> None:
    store = FileStore(root, lock_timeout=2.0)
    n = 0
    while True:
        n += 1
        mark = "A" if n % 2 else "B"
        store.stamp(HOST, {"PAYLOAD": payloads[mark], "MARK": mark}, "cli:flip")


# -- records kept in memory: hps.conf, clusters and OS records ---------------------------------


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the files the store opens to read a kept kind (and still read them)."""
    calls: list[str] = []
    real = files.read_with_stat

    def counting_read(name: str):  # type: ignore[no-untyped-def]
        calls.append(str(name))
        return real(name)

    monkeypatch.setattr(files, "read_with_stat", counting_read)
    return calls


@pytest.fixture
def settle_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled 50 ms after their last change instead of a second."""
    from hps_api.store import settled

    monkeypatch.setattr(settled, "SETTLE_SECONDS", 0.05)
    time.sleep(0.1)


@pytest.mark.parametrize("kind", ["global", "cluster", "os"])
def test_a_settled_record_is_parsed_once_and_then_served_from_memory(store, opens, settle_now,
                                                                     kind):
    rid = RIDS[kind]
    first = store.items(rid)
    assert store.items(rid) == first and store.record(rid).as_dict() == first
    assert opens == [str(store.layout.path(rid))]


def test_a_record_changed_by_another_process_is_read_again(store, root, settle_now):
    assert store.get(CLUSTER_RID, "NETWORK") == "10.0.0.0/24"
    other = FileStore(root)
    other.update(CLUSTER_RID, {"NETWORK": "10.9.0.0/24"}, ACTOR)
    assert store.get(CLUSTER_RID, "NETWORK") == "10.9.0.0/24"


def test_an_in_place_edit_that_keeps_size_and_mtime_is_still_seen(store, root, settle_now):
    path = record_path(root, CLUSTER_RID)
    assert store.get(CLUSTER_RID, "NETWORK") == "10.0.0.0/24"
    before = path.stat()
    with path.open("r+b") as handle:  # an editor writing in place: same inode, same size
        edited = handle.read().replace(b"10.0.0.0/24", b"10.7.0.0/24")
        handle.seek(0)
        handle.write(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_ino == before.st_ino
    assert store.get(CLUSTER_RID, "NETWORK") == "10.7.0.0/24"  # the ctime moved


def test_a_file_changed_less_than_a_settling_time_ago_is_not_kept(store, root, opens):
    store.update(CLUSTER_RID, {"DNS": "10.0.0.1"}, ACTOR)  # just now
    store.items(CLUSTER_RID)
    store.items(CLUSTER_RID)
    assert len(opens) == 2


def test_a_cached_record_that_is_deleted_is_not_found(store, root, settle_now):
    store.items(OS_RID)
    store.delete(OS_RID, ACTOR)
    with pytest.raises(NotFound):
        store.items(OS_RID)


def test_a_settled_host_and_its_stamp_are_served_from_memory(store, root, opens, settle_now):
    store.stamp(HOST, {"LAST_SEEN": "2026-12-07T10:00:00Z"}, ACTOR)
    time.sleep(0.1)
    first = store.items(HOST)
    assert first["LAST_SEEN"] == "2026-12-07T10:00:00Z"
    assert store.items(HOST) == first
    assert opens == [str(host_path(root)), str(stamp_path(root))]  # the record, then its stamp


def test_a_host_stamped_again_is_seen_at_once(store, root, settle_now):
    store.stamp(HOST, {"LAST_SEEN": "2026-12-07T10:00:00Z"}, ACTOR)
    time.sleep(0.1)
    assert store.get(HOST, "LAST_SEEN") == "2026-12-07T10:00:00Z"  # kept: settled
    other = FileStore(root)
    other.stamp(HOST, {"LAST_SEEN": "2026-12-07T10:00:01Z"}, ACTOR)  # in place, same size
    assert store.get(HOST, "LAST_SEEN") == "2026-12-07T10:00:01Z"
    other.update(HOST, {"IP": "10.0.0.77"}, ACTOR)  # folds the stamp in, removes it
    assert store.items(HOST)["IP"] == "10.0.0.77"
    assert store.items(HOST)["LAST_SEEN"] == "2026-12-07T10:00:01Z"


def test_a_kept_host_that_is_deleted_is_not_found(store, root, settle_now):
    store.items(HOST)
    store.items(HOST)
    FileStore(root).delete(HOST, ACTOR)
    with pytest.raises(NotFound):
        store.items(HOST)


def test_a_settled_corrupt_host_keeps_failing_until_it_is_mended(store, root, settle_now):
    path = host_path(root)
    good = path.read_bytes()
    path.write_bytes(good + b"not a key line\n")
    time.sleep(0.1)
    for _ in range(2):  # never kept as if it had parsed
        with pytest.raises(CorruptRecord):
            store.items(HOST)
    path.write_bytes(good)
    assert store.items(HOST)["STATE"]


def test_a_stamp_caught_mid_rewrite_is_read_once_more(store, root, monkeypatch, settle_now):
    store.stamp(HOST, {"LAST_SEEN": "2026-12-07T10:00:00Z"}, ACTOR)
    time.sleep(0.1)
    real = files.read_with_stat
    reads: list[str] = []

    def torn_first(name: str):  # type: ignore[no-untyped-def]
        found = real(name)
        reads.append(name)
        if name.endswith(".stamp") and reads.count(name) == 1 and found is not None:
            return found[0], found[1][:-5]  # the end of the body not written yet
        return found

    monkeypatch.setattr(files, "read_with_stat", torn_first)
    assert store.items(HOST)["LAST_SEEN"] == "2026-12-07T10:00:00Z"
    assert reads.count(str(stamp_path(root))) == 2


def test_hosts_kept_are_bounded_the_oldest_making_room(store, root, monkeypatch, settle_now):
    from hps_api.store import filestore

    monkeypatch.setattr(filestore, "HOSTS_KEPT", 3)
    small = FileStore(root)
    macs = [f"52:54:00:aa:bc:{n:02x}" for n in range(5)]
    for mac in macs:
        small.update(RecordId.of_host(CLUSTER, mac), {"STATE": "INSTALLED"}, ACTOR, create=True)
    time.sleep(0.1)
    for mac in macs:
        small.items(RecordId.of_host(CLUSTER, mac))
    assert len(small._hosts._kept) == 3
    assert list(small._hosts._kept) == [str(small.layout.path(RecordId.of_host(CLUSTER, m)))
                                        for m in macs[2:]]


# -- the record lock: flock(2), per open file description --------------------------------------


def test_two_threads_of_one_process_exclude_each_other(store):
    impatient = FileStore(store.layout.root, lock_timeout=0.2)
    failures: list[BaseException] = []

    def other_thread() -> None:
        try:
            impatient.update(HOST, {"IP": "10.0.0.9"}, ACTOR)
        except StoreBusy as err:
            failures.append(err)

    with store.lock(CLUSTER), store._locked(host_path(store.layout.root)):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(timeout=10)
    assert len(failures) == 1
    assert "IP" not in store.items(HOST)


def test_a_lock_file_replaced_while_a_writer_waits_is_locked_again_by_path(store, root):
    """The writer got the flock of an unlinked lock file: it must take the one now at the path
    (held here), not write while someone holding that one believes it is alone."""
    lock_path = host_path(root).with_name(f"{MAC12}.conf.lock")
    old = os.open(lock_path, os.O_RDONLY)
    fcntl.flock(old, fcntl.LOCK_EX)
    result: list[object] = []
    waiting = FileStore(root, lock_timeout=1.0)
    writer = threading.Thread(
        target=lambda: result.append(_try(lambda: waiting.update(HOST, {"IP": "x"}, ACTOR))))
    writer.start()
    time.sleep(0.2)
    os.unlink(lock_path)
    new = os.open(lock_path, os.O_RDONLY | os.O_CREAT)
    fcntl.flock(new, fcntl.LOCK_EX)
    os.close(old)  # the writer now gets the old, unlinked file's lock
    writer.join(timeout=10)
    os.close(new)
    assert len(result) == 1 and isinstance(result[0], StoreBusy)
    assert "IP" not in store.items(HOST)


def _try(call: Callable[[], object]) -> object:
    try:
        return call()
    except StoreBusy as err:
        return err


def test_history_is_the_records_own_lines_even_when_another_names_it(store, root):
    other = RecordId.of_host(CLUSTER, "52:54:00:aa:bb:02")
    store.update(other, {"NOTE": f'see "{HOST.label}"'}, ACTOR, create=True)
    store.update(HOST, {"IP": "10.0.0.5"}, ACTOR)
    assert [(c.record, c.key) for c in store.history(HOST)][-1] == (HOST.label, "IP")
    assert all(c.record == HOST.label for c in store.history(HOST))
    assert [c.key for c in store.history(other)] == ["NOTE"]

"""The journal stays useful and bounded (docs/storage.md, "Journal"): a boot is one line, operator
changes and boots are shown apart, a journal past its size is rotated under a lock that no
concurrent appender loses a line to, and history reads across rotations, old lines included."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from hps_api.boot import flow
from hps_api.boot.flow import boot_stamps
from hps_api.settings import Settings, load_settings
from hps_api.store import FileStore, RecordId, journal, rotation
from hps_api.store.factory import open_store
from hps_api.store.journal import BOOT_FACTS, Change
from hps_api.web import views

URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+ (g8ef5)"}
MAC, MAC12 = "52:54:00:aa:bb:31", "525400aabb31"
HOST = RecordId.of_host("default", MAC)


def init(web, **extra: str):  # type: ignore[no-untyped-def]
    """`cmd=init` as iPXE's bootstrap asks it (no session: a new boot)."""
    query = "&".join(f"{k}={v}" for k, v in {"cmd": "init", "mac": MAC, **extra}.items())
    return web.get(f"{URL}?{query}", headers=IPXE, extra_environ={"REMOTE_ADDR": "192.0.2.50"})


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def rotating_store(root: Path, max_bytes: int, keep: int) -> FileStore:
    return FileStore(root, lock_timeout=30, journal_max_bytes=max_bytes, journal_rotations=keep)


# -- a boot is one line ------------------------------------------------------------------------


def test_a_registration_is_one_boot_line_carrying_the_facts_and_the_state_line(
        web, store: FileStore) -> None:
    init(web, arch="arm64", platform="efi", serial="SN%201", uuid="1234-abcd")
    written = [line for line in lines(store.layout.journal("default"))
               if line["record"] == f"host/{MAC12}"]
    assert [line["key"] for line in written] == ["BOOT_SESSION", "STATE"]
    boot = written[0]
    record = store.items(HOST)
    assert (boot["old"], boot["new"]) == (None, record["BOOT_SESSION"])
    assert boot["facts"] == {"BOOT_TIME": record["BOOT_TIME"], "FIRST_SEEN": record["FIRST_SEEN"],
                             "ARCH": "arm64", "PLATFORM": "efi", "SERIAL": "SN 1",
                             "SMBIOS_UUID": "1234-abcd"}
    assert "facts" not in written[1]


class Clock:
    """Stands in for the time module of hps_api.boot.flow: each boot 10 s after the last."""

    def __init__(self) -> None:
        self.now = 1_700_000_000

    def time(self) -> float:
        self.now += 10
        return self.now


def test_every_later_boot_is_one_line_naming_the_session_it_follows(
        web, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "time", Clock())
    for _ in range(4):
        init(web)
    current = store.items(HOST)
    init(web, session=current["BOOT_SESSION"])  # a menu's poll: the same boot, no line
    boots = [c for c in store.history(HOST) if c.key.startswith("BOOT")]
    assert [c.key for c in boots] == ["BOOT_SESSION"] * 4
    assert [c.old for c in boots[1:]] == [c.new for c in boots[:-1]]
    assert [c.facts for c in boots[1:]] == [{"BOOT_TIME": str(1_700_000_010 + 10 * n)}
                                            for n in (1, 2, 3)]
    assert (boots[-1].new, boots[-1].facts["BOOT_TIME"]) == (current["BOOT_SESSION"],
                                                             current["BOOT_TIME"])
    assert all(c.boot for c in boots)


def test_the_keys_a_registration_writes_are_all_boot_facts() -> None:
    params = {"arch": "x86_64", "platform": "efi", "uuid": "u", "serial": "s",
              "manufacturer": "m", "product": "p"}
    _, stamps = boot_stamps(None, "525400aabb31", params)
    assert set(stamps) - {"BOOT_SESSION", "LAST_SEEN", "STATE"} <= BOOT_FACTS
    assert len(set(stamps) & BOOT_FACTS) == 8


def test_a_fact_that_was_already_set_keeps_a_line_of_its_own(store: FileStore) -> None:
    store.update(HOST, {"ARCH": "x86_64"}, "cli:root", create=True)
    store.update(HOST, {"BOOT_SESSION": "aaaaaa", "BOOT_TIME": "1", "ARCH": "aarch64"}, "t")
    last = store.history(HOST)[-2:]
    assert [(c.key, c.old, c.new) for c in last] == [("BOOT_SESSION", None, "aaaaaa"),
                                                    ("ARCH", "x86_64", "aarch64")]
    assert last[0].facts == {"BOOT_TIME": "1"}


# -- old lines, and the two views --------------------------------------------------------------


OLD_JOURNAL = [
    {"time": "2025-01-01T00:00:00Z", "record": f"host/{MAC12}", "key": "BOOT_SESSION",
     "old": None, "new": "aaaaaa", "actor": "ipxe:192.0.2.50"},
    {"time": "2025-01-01T00:00:00Z", "record": f"host/{MAC12}", "key": "BOOT_TIME",
     "old": None, "new": "1735689600", "actor": "ipxe:192.0.2.50"},
    {"time": "2025-01-01T00:00:00Z", "record": f"host/{MAC12}", "key": "ARCH",
     "old": None, "new": "x86_64", "actor": "ipxe:192.0.2.50"},
    {"time": "2025-01-02T00:00:00Z", "record": f"host/{MAC12}", "key": "TYPE",
     "old": None, "new": "SCH", "actor": "cli:root", "a_field_of_a_later_version": 1},
    {"time": "2025-01-03T00:00:00Z", "record": f"host/{MAC12}", "key": "BOOT_SESSION",
     "old": "aaaaaa", "new": "bbbbbb", "actor": "ipxe:192.0.2.50"},
    {"time": "2025-01-03T00:00:00Z", "record": f"host/{MAC12}", "key": "BOOT_TIME",
     "old": "1735689600", "new": "1735862400", "actor": "ipxe:192.0.2.50"},
]


def write_old_journal(store: FileStore) -> None:
    store.update(HOST, {"STATE": "UNCONFIGURED", "BOOT_SESSION": "bbbbbb",
                        "BOOT_TIME": "1735862400"}, "test:setup", create=True)
    path = store.layout.journal("default")
    path.write_text("".join(json.dumps(line) + "\n" for line in OLD_JOURNAL)
                    + '{"time": "2025-01-04T00:0', encoding="utf-8")  # torn by a crash


def test_old_format_lines_are_read_as_before(store: FileStore) -> None:
    write_old_journal(store)
    history = store.history(HOST)
    assert [(c.key, c.new) for c in history] == [(line["key"], line["new"]) for line in OLD_JOURNAL]
    assert all(c.facts == {} for c in history)
    assert [c.key for c in history if not c.bookkeeping] == ["ARCH", "TYPE"]
    assert [c.new for c in history if c.boot] == ["aaaaaa", "bbbbbb"]


def test_the_host_page_keeps_operator_changes_after_many_boots(
        web, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    init(web)
    store.update(HOST, {"NOTE": "rack 7, slot 3"}, "admin:alice")
    monkeypatch.setattr(flow, "time", Clock())
    for _ in range(60):
        init(web)
    changes = store.history(HOST)
    assert [e.key for e in views.recent_history(changes, (), admin=True)] == ["NOTE", "STATE"]
    assert len(views.boot_sessions(changes)) == views.HISTORY_LIMIT
    page = web.get(f"/hosts/{MAC12}").text
    assert "rack 7, slot 3" in page.split("<h2>History</h2>")[1]
    sessions = page.split("<h2>Boot sessions</h2>")[1].split("<h2>")[0]
    assert sessions.count('<td class="mono">') == views.HISTORY_LIMIT


def test_the_events_endpoint_still_lists_every_boot_session(
        web, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flow, "time", Clock())
    init(web)
    init(web, session="ffffff")  # not the current session: a new boot
    data = web.get(f"/api/v1/hosts/{MAC12}/events", extra_environ={"REMOTE_ADDR": "127.0.0.1"},
                   headers={"User-Agent": "curl/8.5.0"}).json["data"]
    assert [s["session"] for s in data["sessions"]] == \
        [c.new for c in reversed(store.history(HOST)) if c.boot]
    assert len(data["sessions"]) == 2


def test_host_config_history_shows_changes_and_counts_boots(cli, store: FileStore) -> None:
    write_old_journal(store)
    store.update(HOST, {"BOOT_SESSION": "cccccc", "BOOT_TIME": "1735948800"}, "ipxe:192.0.2.50")
    shown = cli("host_config", MAC, "history").stdout.splitlines()
    assert [line.split("  ")[2] for line in shown[:-1]] == [
        "ARCH: (unset) -> x86_64", "TYPE: (unset) -> SCH"]
    assert shown[-1].startswith("(3 boots not shown, the last ")
    assert shown[-1].endswith(" session cccccc: --boots lists them, --all shows everything)")


def test_host_config_history_boots_lists_each_boot_with_its_facts(cli, store: FileStore) -> None:
    write_old_journal(store)
    store.update(HOST, {"BOOT_SESSION": "cccccc", "BOOT_TIME": "1735948800"}, "ipxe:192.0.2.50")
    shown = cli("host_config", MAC, "history", "--boots").stdout.splitlines()
    assert [line.split("  ", 2)[2] for line in shown] == [
        "boot aaaaaa (first)", "boot bbbbbb after aaaaaa",
        "boot cccccc after bbbbbb  BOOT_TIME=1735948800"]
    data = json.loads(cli("host_config", MAC, "history", "--boots", "--json").stdout)
    assert [(c["new"], c["facts"]) for c in data] == [
        ("aaaaaa", {}), ("bbbbbb", {}), ("cccccc", {"BOOT_TIME": "1735948800"})]


def test_host_config_history_all_shows_every_entry_in_order(cli, store: FileStore) -> None:
    write_old_journal(store)
    everything = cli("host_config", MAC, "history", "--all").stdout.splitlines()
    assert len(everything) == len(store.history(HOST)) == 6
    assert everything[4].endswith("BOOT_SESSION: aaaaaa -> bbbbbb")
    refused = cli("host_config", MAC, "get", "STATE", "--boots")
    assert (refused.returncode, refused.stderr.strip()) == (
        2, "host_config: --boots goes with history")


# -- rotation ----------------------------------------------------------------------------------


def test_a_journal_past_its_size_is_rotated_and_history_reads_every_rotation(
        config_dir: Path) -> None:
    store = rotating_store(config_dir, 4096, 50)
    store.update(HOST, {"N": "0"}, "t", create=True)
    for n in range(1, 200):
        store.update(HOST, {"N": str(n)}, "t")
    path = store.layout.journal("default")
    kept = rotation.rotations(path)
    assert len(kept) >= 5
    assert all(p.stat().st_size <= 4096 + 400 for p in [path, *kept])
    assert [c.new for c in store.history(HOST) if c.key == "N"] == [str(n) for n in range(200)]


def test_only_the_configured_rotations_are_kept_and_what_is_kept_is_whole(
        config_dir: Path) -> None:
    store = rotating_store(config_dir, 2048, 2)
    store.update(HOST, {"N": "0"}, "t", create=True)
    for n in range(1, 300):
        store.update(HOST, {"N": str(n)}, "t")
    path = store.layout.journal("default")
    assert [p.name for p in rotation.rotations(path)] == ["journal.log.1", "journal.log.2"]
    kept = [int(c.new or "") for c in store.history(HOST) if c.key == "N"]
    assert kept == list(range(kept[0], 300))  # the newest lines, without a gap
    assert kept[0] > 100


def test_a_limit_of_zero_never_rotates_and_zero_rotations_keep_nothing(config_dir: Path) -> None:
    never = rotating_store(config_dir, 0, 3)
    never.update(HOST, {"N": "0"}, "t", create=True)
    for n in range(1, 100):
        never.update(HOST, {"N": str(n)}, "t")
    path = never.layout.journal("default")
    assert rotation.rotations(path) == [] and path.stat().st_size > 10_000
    dropping = rotating_store(config_dir, 2048, 0)
    dropping.update(HOST, {"N": "100"}, "t")
    assert rotation.rotations(path) == [] and path.stat().st_size == 0
    dropping.update(HOST, {"N": "101"}, "t")
    assert [c.new for c in dropping.history(HOST)] == ["101"]


def test_history_with_a_limit_reads_the_files_from_their_end_and_stops(
        config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = rotating_store(config_dir, 64 * 1024, 1000)
    store.update(HOST, {"NOTE": "early"}, "admin:alice", create=True)
    for n in range(2000):
        store.stamp(HOST, {"BOOT_SESSION": f"{n:06x}", "BOOT_TIME": str(n)}, "ipxe:x")
    store.update(HOST, {"NOTE": "late"}, "admin:alice")
    read: list[int] = []
    real_preadv = os.preadv

    def counting_preadv(fd: int, buffers: list[memoryview], at: int) -> int:
        read.append(real_preadv(fd, buffers, at))
        return read[-1]

    monkeypatch.setattr(journal, "READ_CHUNK", 4096)
    monkeypatch.setattr(journal.os, "preadv", counting_preadv)
    newest = store.history(HOST, limit=1)
    assert [(c.key, c.new) for c in newest] == [("BOOT_SESSION", f"{1999:06x}"), ("NOTE", "late")]
    assert sum(read) <= 4096
    read.clear()
    deeper = store.history(HOST, limit=2)  # a second change: the first line of them all
    assert [c.new for c in deeper if not c.boot] == ["early", "late"]
    assert len([c for c in deeper if c.boot]) == 2000
    path = store.layout.journal("default")
    assert len(rotation.rotations(path)) >= 3
    assert sum(read) > sum(p.stat().st_size for p in [path, *rotation.rotations(path)]) - 4096


def test_a_writer_holding_the_old_journal_writes_into_the_new_one(config_dir: Path) -> None:
    path = config_dir / "clusters" / "default" / "journal.log"
    journal.append(path, [Change("t0", "host/x", "K", None, "before", "t")])
    with journal.appender(path) as write:
        assert rotation.rotate(path, 0, 3)  # another process rotates while this one holds it
        write([Change("t1", "host/x", "K", "before", "after", "t")])
    assert [line["new"] for line in lines(path)] == ["after"]
    assert lines(rotation.rotated(path, 1))[-1]["new"] == "before"


def test_a_rotation_waits_for_no_one_and_leaves_it_to_the_next_append(config_dir: Path) -> None:
    path = config_dir / "clusters" / "default" / "journal.log"
    journal.append(path, [Change("t0", "host/x", "K", None, "v", "t")])
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a writer in the middle of its write()
        assert not rotation.rotate(path, 0, 3)
        assert not rotation.rotated(path, 1).exists()
    finally:
        os.close(fd)
    assert rotation.rotate(path, 0, 3)
    assert rotation.rotate(path, 10, 3) is False  # the new journal is empty: nothing to do


def test_a_rotation_keeps_the_journals_mode_and_owner(config_dir: Path) -> None:
    path = config_dir / "clusters" / "default" / "journal.log"
    journal.append(path, [Change("t0", "host/x", "K", None, "v", "t")])
    os.chmod(path, 0o604)
    owner = (1234, 1234) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    if os.geteuid() == 0:
        os.chown(path, *owner)
    assert rotation.rotate(path, 0, 3)
    st = path.stat()
    assert (st.st_size, st.st_mode & 0o777, (st.st_uid, st.st_gid)) == (0, 0o604, owner)
    assert not (path.parent / ".journal.log.tmp").exists()


def test_a_file_met_twice_mid_rotation_is_read_once(store: FileStore) -> None:
    store.update(HOST, {"N": "1"}, "t", create=True)
    path = store.layout.journal("default")
    os.link(path, rotation.rotated(path, 1))  # the instant between a rotation's link and rename
    assert [c.new for c in store.history(HOST) if c.key == "N"] == ["1"]


def test_the_settings_reach_the_store(config_dir: Path) -> None:
    settings = load_settings({"HPS_CONFIG_DIR": str(config_dir), "HPS_JOURNAL_MAX_MIB": "2",
                              "HPS_JOURNAL_ROTATIONS": "5"}, dotenv=False)
    store = open_store(settings)
    assert isinstance(store, FileStore)
    assert (store.journal_max_bytes, store.journal_rotations) == (2 * 1024 * 1024, 5)
    default = open_store(Settings(config_dir=config_dir))
    assert isinstance(default, FileStore)
    assert (default.journal_max_bytes, default.journal_rotations) == (64 * 1024 * 1024, 3)


# -- concurrent appenders in several processes -------------------------------------------------


PROCESSES, BOOTS = 4, 400


def _boot_many(root: str, mac: str, max_bytes: int, keep: int) -> None:
    store = rotating_store(Path(root), max_bytes, keep)
    rid = RecordId.of_host("default", mac)
    for n in range(BOOTS):
        store.stamp(rid, {"BOOT_SESSION": f"{n:06x}", "BOOT_TIME": str(n)}, "ipxe:test")
        if n % 50 == 0:
            store.update(rid, {"N": str(n)}, "ipxe:test")  # a durable write among the stamps
    os._exit(0)


def run_appenders(config_dir: Path, max_bytes: int, keep: int) -> list[str]:
    macs = [f"52:54:00:cc:00:{p:02x}" for p in range(PROCESSES)]
    store = rotating_store(config_dir, max_bytes, keep)
    for mac in macs:
        store.update(RecordId.of_host("default", mac), {"STATE": "INSTALLED"}, "t", create=True)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_boot_many, args=(str(config_dir), mac, max_bytes, keep))
               for mac in macs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
        assert worker.exitcode == 0
    return macs


def test_concurrent_appenders_in_several_processes_lose_and_duplicate_no_line(
        config_dir: Path) -> None:
    macs = run_appenders(config_dir, 16 * 1024, 1000)  # every rotation kept: nothing may go
    store = rotating_store(config_dir, 16 * 1024, 1000)
    path = store.layout.journal("default")
    files = [path, *rotation.rotations(path)]
    assert len(files) > 10
    raw = [line for f in files for line in f.read_bytes().split(b"\n") if line]
    assert all(journal._parse(line) is not None for line in raw)  # not one torn or glued line
    for mac in macs:
        history = store.history(RecordId.of_host("default", mac))
        assert [c.new for c in history if c.boot] == [f"{n:06x}" for n in range(BOOTS)]
        assert [c.new for c in history if c.key == "N"] == [str(n) for n in range(0, BOOTS, 50)]


def test_concurrent_appenders_keep_a_whole_tail_when_rotations_are_dropped(
        config_dir: Path) -> None:
    macs = run_appenders(config_dir, 16 * 1024, 2)
    store = rotating_store(config_dir, 16 * 1024, 2)
    assert [p.name for p in rotation.rotations(store.layout.journal("default"))] == \
        ["journal.log.1", "journal.log.2"]
    kept = {mac: [int(c.new or "", 16) for c in store.history(RecordId.of_host("default", mac))
                  if c.boot] for mac in macs}
    assert sum(map(len, kept.values())) < PROCESSES * BOOTS  # the oldest were dropped
    assert any(kept.values())
    for boots in kept.values():  # a process that ended early may have had all its lines dropped
        assert boots == list(range(BOOTS - len(boots), BOOTS))  # the newest, no gap, none twice

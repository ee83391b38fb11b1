"""A crash heals itself: what a killed writer leaves beside a record is swept by the next writer
of that record, which holds the record's lock and so knows no live writer owns those files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hps_api.store import FileStore, RecordId, files

MAC12 = "525400aabb01"


@pytest.fixture
def debris(store: FileStore, host: RecordId) -> list[Path]:
    """The names a writer killed mid-write leaves: temp files and files set aside."""
    path = store.layout.path(host)
    store.write_attachment(host, "ks", "# kickstart\n", "t")
    left = [path.with_name(f".{MAC12}.conf.tmp"), path.with_name(f".{MAC12}.conf.aside.tmp"),
            path.with_name(f".{MAC12}.stamp.aside.tmp"), path.with_name(f".{MAC12}.ks.tmp"),
            path.with_name(f".{MAC12}.ks.aside.tmp")]
    for name in left:
        name.write_bytes(b"half a write")
    return left


@pytest.mark.parametrize("write", ["update", "unset", "attachment", "delete"])
def test_the_next_writer_of_a_record_sweeps_what_a_killed_writer_left(
        store: FileStore, host: RecordId, debris: list[Path], write: str) -> None:
    store.update(host, {"NOTE": "x"}, "t") if write == "unset" else None
    actions = {
        "update": lambda: store.update(host, {"NOTE": "y"}, "t"),
        "unset": lambda: store.unset(host, "NOTE", "t"),
        "attachment": lambda: store.write_attachment(host, "ks", "# again\n", "t"),
        "delete": lambda: store.delete(host, "t"),
    }
    actions[write]()
    assert [p for p in debris if p.exists()] == []


def test_a_stamp_makes_no_debris_and_leaves_the_sweep_to_the_next_update(
        store: FileStore, host: RecordId, debris: list[Path]) -> None:
    """The boot path stays cheap: a stamp is rewritten in place (no temp file of its own)."""
    hosts = store.layout.path(host).parent
    before = sorted(os.listdir(hosts))
    store.stamp(host, {"BOOT_SESSION": "abc123"}, "t")
    assert sorted(os.listdir(hosts)) == sorted({*before, f"{MAC12}.stamp"})
    store.update(host, {"NOTE": "y"}, "t")
    assert [p for p in debris if p.exists()] == []


def test_another_records_debris_is_left_to_its_own_writer(store: FileStore, host: RecordId,
                                                          debris: list[Path]) -> None:
    other = RecordId.of_host("default", "52:54:00:aa:bb:02")
    store.update(other, {"STATE": "UNCONFIGURED"}, "t", create=True)
    assert all(p.exists() for p in debris)


def test_a_locked_write_reuses_its_one_temp_name(tmp_path: Path) -> None:
    path = tmp_path / "r.conf"
    stale = files.temp_name(path)
    stale.write_bytes(b"x" * 100_000)  # longer than what comes: truncated, never mixed in
    files.write_durably(path, b"A=1\n", locked=True)
    assert path.read_bytes() == b"A=1\n" and not stale.exists()
    assert sorted(os.listdir(tmp_path)) == ["r.conf"]


def test_the_server_sweeps_old_debris_at_start_and_leaves_young_files(
        settings, store: FileStore, host: RecordId) -> None:
    from hps_api.entry.server import sweep_debris
    from hps_api.observe import eventlog

    eventlog.setup(settings.log_dir)  # as create_app does before serve sweeps
    hosts = store.layout.path(host).parent
    old, young = hosts / ".525400aabb09.conf.tmp", hosts / ".525400aabb01.conf.x1y2.tmp"
    for name in (old, young):
        name.write_bytes(b"half")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    sweep_debris(settings)
    assert not old.exists() and young.exists()  # a young one may belong to a live writer
    assert "removed 1 temp file(s)" in (settings.log_dir / "hps-api.log").read_text()


def test_a_line_a_killed_writer_left_half_written_never_swallows_the_next(
        store: FileStore, host: RecordId) -> None:
    """A fatal signal can cut a large journal append short; the next change starts a new line."""
    journal = store.layout.journal_for(host)
    with journal.open("ab") as handle:
        handle.write(b'{"time": "2026-12-07T00:00:00Z", "record": "host/default/5254')
    store.update(host, {"STATE": "INSTALLED"}, "t")
    assert [c.new for c in store.history(host) if c.key == "STATE"][-1] == "INSTALLED"

"""The event log (docs/api.md §8): line format, whole lines from many threads, logrotate, syslog."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from hps_api.observe import eventlog


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    eventlog.setup(tmp_path)
    return tmp_path


def test_an_event_is_one_line_with_time_level_host_session_client_and_message(log_dir):
    eventlog.event(logging.WARNING, "disk\nforged", host="525400aabb01", session="ab12cd",
                   client="ipxe")
    (line,) = (log_dir / "hps-api.log").read_text().splitlines()
    assert line.split()[1:5] == ["WARNING", "525400aabb01", "ab12cd", "ipxe"]
    assert line.endswith("disk\\nforged")


def test_a_rotated_log_is_followed_within_the_check_interval_and_no_line_is_lost(
    log_dir, monkeypatch
):
    monkeypatch.setattr(eventlog, "ROTATION_CHECK_SECONDS", 0.2)
    eventlog.setup(log_dir)  # a handler that uses the short interval from its first line
    eventlog.event(logging.INFO, "before")
    (log_dir / "hps-api.log").rename(log_dir / "hps-api.log.1")  # what logrotate does
    eventlog.event(logging.INFO, "meanwhile")
    time.sleep(0.3)
    eventlog.event(logging.INFO, "after")
    rotated = (log_dir / "hps-api.log.1").read_text()
    current = (log_dir / "hps-api.log").read_text()
    assert "before" in rotated and "after" in current
    assert ("meanwhile" in rotated) != ("meanwhile" in current)


def test_written_counts_this_threads_events(log_dir):
    before = eventlog.written()
    eventlog.event(logging.INFO, "one")
    eventlog.event(logging.DEBUG, "below the level, still an event asked for")
    assert eventlog.written() == before + 2


def test_an_error_event_carries_its_traceback_on_the_same_line(log_dir):
    try:
        raise ValueError("boom")
    except ValueError as err:
        eventlog.event(logging.ERROR, "internal error on /x", host="10.0.0.9", error=err)
    (line,) = (log_dir / "hps-api.log").read_text().splitlines()
    assert line.split()[1:5] == ["ERROR", "10.0.0.9", "-", "-"]
    assert "internal error on /x | Traceback" in line and "ValueError: boom" in line


def test_lines_from_many_threads_are_never_interleaved(log_dir):
    def writer(n: int) -> None:
        for i in range(300):
            eventlog.event(logging.INFO, f"t{n} i{i} {'x' * (i * 7 % 1900)}|end")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = (log_dir / "hps-api.log").read_text().splitlines()
    assert len(lines) == 8 * 300
    seen = set()
    for line in lines:
        whole = re.fullmatch(r"\S+ INFO - - - t(\d) i(\d+) (x*)\|end", line)
        assert whole, line[:120]
        assert len(whole[3]) == int(whole[2]) * 7 % 1900
        seen.add((whole[1], whole[2]))
    assert len(seen) == 8 * 300


def test_events_go_to_the_local_syslog_socket_when_there_is_one(tmp_path, monkeypatch):
    address = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(address)
    server.settimeout(5)
    monkeypatch.setattr(eventlog, "_SYSLOG_SOCKET", address)
    try:
        eventlog.setup(tmp_path / "logs")
        eventlog.event(logging.WARNING, "disk full", host="525400aabb01", client="ipxe")
        got = server.recv(4096).decode()
    finally:
        server.close()
        monkeypatch.undo()
        eventlog.setup(tmp_path / "logs")  # no socket any more: later tests write to the file only
    assert got.startswith(f"<12>hps-api[{os.getpid()}]: ")  # user.warning
    assert got.endswith(" WARNING 525400aabb01 - ipxe disk full")

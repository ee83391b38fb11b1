"""The event log (api.md §8): line format, one file handler that follows logrotate."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from hps_api import eventlog


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

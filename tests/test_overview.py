"""What the dashboard shows, as plain functions (hps_api.web.overview, hps_api.web.when,
hps_api.web.rows): counts that link to the host list, the groups that need attention, the
cluster's recent changes, and times as people read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hps_api.web import overview, rows, when

NOW = 1_736_000_000.0  # 2025-01-04T14:13:20Z


def journal_line(record: str, key: str, old: str | None, new: str | None,
                 time: str = "2025-01-04T14:00:00Z", actor: str = "admin:alice") -> str:
    return json.dumps({"time": time, "record": record, "key": key, "old": old, "new": new,
                       "actor": actor}) + "\n"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "just now"), (9, "just now"), (45, "45 s ago"), (180, "3 min ago"), (3 * 3600, "3 h ago"),
    (47 * 3600, "47 h ago"), (3 * 86400, "3 days ago"), (-120, "in 2 min"),
    (90 * 86400, "2024-10-06"),
])
def test_times_read_as_how_long_ago(seconds: float, text: str) -> None:
    moment = when.when(str(int(NOW - seconds)), NOW)
    assert moment is not None and moment.ago == text
    assert moment.iso.endswith("Z")


def test_a_value_that_is_no_time_is_not_one() -> None:
    assert when.when("yesterday", NOW) is None and when.when(None, NOW) is None


def test_state_counts_link_known_states_to_the_filter_and_others_to_a_search() -> None:
    counts = overview.state_counts([{"STATE": "INSTALLED"}, {}, {"STATE": "WEIRD"},
                                    {"STATE": "INSTALLED"}])
    assert [(c.label, c.count, c.href) for c in counts] == [
        ("UNCONFIGURED", 1, "/hosts?state=UNCONFIGURED"),
        ("INSTALLED", 2, "/hosts?state=INSTALLED"), ("WEIRD", 1, "/hosts?q=STATE%3DWEIRD")]


def test_type_counts_put_hosts_without_a_type_last() -> None:
    counts = overview.type_counts([{"TYPE": "tch"}, {}, {"TYPE": "SCH"}, {"TYPE": "TCH"}])
    assert [(c.label, c.count) for c in counts] == [("SCH", 1), ("TCH", 2), ("(none)", 1)]


def test_attention_groups_keep_failures_apart_and_show_the_newest_first() -> None:
    records = {f"5254000000{n:02x}": {"STATE": "INSTALL_FAILED", "HOSTNAME": f"f-{n}",
                                      "LAST_SEEN": f"2025-01-0{n}T00:00:00Z"}
               for n in range(1, 8)}
    records["525400000010"] = {"STATE": "FAILED", "SELFTEST_RESULT": "fail:disk"}
    records["525400000011"] = {"STATE": "INSTALLING", "LAST_SEEN": "2025-01-04T12:00:00Z"}
    records["525400000012"] = {"STATE": "INSTALLED", "RESCUE": "yes"}
    records["525400000013"] = {}
    groups = {g.key: g for g in overview.attention(records, (), admin=False, now=NOW)}
    assert list(groups) == ["install_failed", "failed", "selftest", "stuck", "waiting", "rescue"]
    failed = groups["install_failed"]
    assert failed.count == 7 and [r.name for r in failed.hosts] == ["f-7", "f-6", "f-5", "f-4",
                                                                     "f-3"]
    assert failed.href == "/hosts?state=INSTALL_FAILED"
    # the install failures are stuck too (install_failed: nothing moves until someone acts)
    assert [g.count for g in groups.values()] == [7, 1, 1, 8, 1, 1]
    assert groups["stuck"].notes["525400000007"].startswith("install gave up")
    assert groups["stuck"].href == "/hosts?stuck=1"
    assert groups["rescue"].hosts[0].state == "RESCUE"


def test_a_group_on_a_key_the_viewer_may_not_read_is_left_out() -> None:
    records = {"525400000001": {"SELFTEST_RESULT": "fail"}}
    keys = [g.key for g in overview.attention(records, ("SELFTEST_*",), admin=False, now=NOW)]
    assert "selftest" not in keys
    assert "selftest" in [g.key for g in overview.attention(records, ("SELFTEST_*",),
                                                            admin=True, now=NOW)]


def test_recent_activity_is_the_journal_tail_without_boot_bookkeeping(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    lines = [journal_line("host/525400000001", "STATE", "INSTALLING", "INSTALL_FAILED",
                          actor="node"),
             journal_line("host/525400000001", "LAST_SEEN", None, "2025-01-04T14:01:00Z"),
             journal_line("host/525400000002", "ROOT_PASSWORD", None, "<redacted>"),
             '{"torn": \n',
             journal_line("cluster/default", "MENU_TIMEOUT", "60", "90")]
    path.write_text("".join(lines))
    found = overview.recent_activity(path, {"525400000001": {"HOSTNAME": "sch-001"}},
                                     ("*PASSWORD*",), admin=False, now=NOW)
    assert [(a.name, a.key, a.new.value, a.new.hidden) for a in found] == [
        ("cluster/default", "MENU_TIMEOUT", "90", False),
        ("52:54:00:00:00:02", "ROOT_PASSWORD", None, True),
        ("sch-001", "STATE", "INSTALL_FAILED", False)]
    assert found[-1].when is not None and found[-1].when.ago == "13 min ago"


def test_recent_activity_reads_only_the_tail_and_drops_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    line = journal_line("host/525400000001", "RACK", None, "r1")
    path.write_text(line * 100)
    assert len(overview.recent_activity(path, {}, (), admin=False, now=NOW, limit=500,
                                        window=len(line) * 3 + 5)) == 3
    assert overview.recent_activity(tmp_path / "missing.log", {}, (), admin=False,
                                    now=NOW) == []


def test_a_row_shows_rescue_and_hides_what_the_viewer_may_not_read() -> None:
    row = rows.list_row("525400000001", {"STATE": "INSTALLED", "RESCUE": "yes",
                                         "IP": "10.0.0.1", "SELFTEST_RESULT": "fail:x"},
                        ("IP",), admin=False, now=NOW)
    assert (row.state, row.ip.hidden, row.selftest_outcome) == ("RESCUE", True, "fail")
    assert rows.shown_state({}) == ("UNCONFIGURED", "no STATE: counts as UNCONFIGURED")

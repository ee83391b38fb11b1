"""Finding hosts (hps_api.ops.host_query): search words, filters, sort, pages, and the query as
URL parameters, as plain functions over records."""

from __future__ import annotations

from typing import Any

import pytest

from hps_api.errors import InvalidInput
from hps_api.ops import host_query
from hps_api.ops.host_query import HostQuery, parse_query, select

NOW = 1_736_000_000.0  # 2025-01-04T14:13:20Z
HOUR_AGO = "2025-01-04T13:13:20Z"
RECORDS: dict[str, dict[str, str]] = {
    "525400aabb01": {"STATE": "INSTALLED", "HOSTNAME": "sch-001", "TYPE": "SCH",
                     "PROFILE": "DEFAULT", "IP": "10.99.0.11", "SERIAL": "CZ1234",
                     "LAST_SEEN": "2025-01-02T10:00:00Z", "SELFTEST_RESULT": "pass",
                     "RACK": "r07"},
    "525400aabb02": {"STATE": "INSTALL_FAILED", "HOSTNAME": "tch-002", "TYPE": "TCH",
                     "PROFILE": "KVM", "IP": "10.99.0.9", "LAST_SEEN": "2025-01-03T10:00:00Z",
                     "SELFTEST_RESULT": "fail"},
    "525400aabb03": {"HOSTNAME": "new-003", "UPDATED": "2025-01-04T10:00:00Z"},
    "525400aabb04": {"STATE": "INSTALLING", "HOSTNAME": "sch-004", "TYPE": "SCH",
                     "IP": "10.99.0.100", "LAST_SEEN": HOUR_AGO, "RESCUE": "yes"},
}


def macs(query: HostQuery, records: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Return the MACs (last two digits) `query` selects, in its order."""
    page = select(records if records is not None else RECORDS, query, now=NOW)
    return [mac[-2:] for mac, _ in page.rows]


def args(**values: str) -> dict[str, list[str]]:
    return {name: [value] for name, value in values.items()}


@pytest.mark.parametrize(("q", "expected"), [
    ("52:54:00:AA:BB:02", ["02"]), ("52-54-00-aa-bb-02", ["02"]), ("5254.00aa.bb02", ["02"]),
    ("525400aabb02", ["02"]), ("bb:0", ["04", "02", "01", "03"]), ("aabb04", ["04"]),
    ("SCH-00", ["04", "01"]), ("10.99.0.1", ["04", "01"]), ("cz12", ["01"]),
    ("rack=R07", ["01"]), ("RESCUE=yes", ["04"]), ("type=", ["03"]), ("sch 10.99.0.11", ["01"]),
    ("nothing-like-this", []), ("", ["04", "02", "01", "03"]),
], ids=["colons", "dashes", "dots", "bare", "piece", "piece-bare", "hostname-any-case", "ip",
        "serial", "key-value-any-case", "rescue", "key-unset", "two-words-and", "no-match", "all"])
def test_search_words_match_mac_spellings_hostname_ip_serial_and_key_value(q, expected) -> None:
    assert macs(parse_query(args(q=q))) == expected


@pytest.mark.parametrize(("params", "expected"), [
    ({"state": "installed"}, ["01"]),
    ({"state": "UNCONFIGURED"}, ["03"]),  # no STATE counts as UNCONFIGURED, as the boot flow
    ({"state": "INSTALL_FAILED,installed"}, ["02", "01"]),
    ({"type": "sch"}, ["04", "01"]), ({"type": "(none)"}, ["03"]),
    ({"type": "SCH", "profile": "default"}, ["01"]),
    ({"selftest": "fail"}, ["02"]), ({"selftest": "none"}, ["04", "03"]),
    ({"stuck": "1"}, ["04", "02"]),  # 02: INSTALL_FAILED, stuck until someone acts
    ({"q": "sch", "state": "INSTALLING"}, ["04"]),
])
def test_filters_narrow_the_list(params: dict[str, str], expected: list[str]) -> None:
    assert macs(parse_query(args(**params))) == expected


def test_an_install_is_stuck_only_after_an_hour_of_silence() -> None:
    record = {"STATE": "INSTALLING", "LAST_SEEN": HOUR_AGO}
    assert host_query.is_stuck(record, NOW)
    assert not host_query.is_stuck(record, NOW - 1)
    assert not host_query.is_stuck({**record, "STATE": "INSTALLED"}, NOW)
    assert host_query.is_stuck({"STATE": "CONFIGURED", "UPDATED": HOUR_AGO}, NOW)


@pytest.mark.parametrize(("sort", "expected"), [
    ("-last_seen", ["04", "02", "01", "03"]),  # newest first; never seen counts as oldest
    ("last_seen", ["03", "01", "02", "04"]),
    ("mac", ["01", "02", "03", "04"]), ("-mac", ["04", "03", "02", "01"]),
    ("hostname", ["03", "01", "04", "02"]), ("-hostname", ["02", "04", "01", "03"]),
    ("ip", ["02", "01", "04", "03"]), ("-ip", ["04", "01", "02", "03"]),  # no IP: last both ways
    ("state", ["03", "04", "01", "02"]),  # the state table's order
    ("type", ["01", "04", "02", "03"]), ("-type", ["02", "01", "04", "03"]),  # ties: MAC order
    ("selftest", ["02", "01", "03", "04"]), ("profile", ["01", "02", "03", "04"]),
])
def test_every_column_sorts_both_ways_with_ties_in_mac_order_and_missing_values_last(
        sort: str, expected: list[str]) -> None:
    assert macs(parse_query(args(sort=sort))) == expected


def test_pages_cut_the_ordered_list_and_count_every_match() -> None:
    records = {f"5254000000{n:02x}": {"HOSTNAME": f"h-{n:03d}"} for n in range(1, 24)}
    page = select(records, parse_query(args(sort="hostname", page="3", per_page="10")), now=NOW)
    assert [r["HOSTNAME"] for _, r in page.rows] == ["h-021", "h-022", "h-023"]
    assert (page.total, page.page, page.per_page, page.pages) == (23, 3, 10, 3)
    beyond = select(records, parse_query(args(page="4", per_page="10")), now=NOW)
    assert (beyond.rows, beyond.total) == ([], 23)
    unpaged = select(records, parse_query({}), now=NOW)
    assert (len(unpaged.rows), unpaged.per_page, unpaged.pages) == (23, None, 1)


@pytest.mark.parametrize(("params", "message"), [
    ({"state": "BOGUS"}, "unknown state"), ({"sort": "colour"}, "sort must be one of"),
    ({"sort": "--mac"}, "sort must be one of"), ({"page": "0"}, "page must be"),
    ({"page": "x"}, "page must be"), ({"per_page": "1001"}, "per_page must be"),
    ({"stuck": "yes"}, "stuck must be 1"), ({"selftest": "maybe"}, "selftest must be"),
    ({"q": "b-d=1"}, "invalid key"), ({"q": "x" * 401}, "longer than"),
    ({"type": "S/CH"}, "invalid type"), ({"page": "\u0663"}, "page must be"),
])
def test_a_parameter_that_cannot_be_understood_is_refused_naming_it(params, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_query(args(**params))


@pytest.mark.parametrize("params", [
    {}, {"q": "sch rack=r07", "state": "FAILED,INSTALLED", "type": "SCH,(none)",
         "profile": "KVM", "stuck": "1", "selftest": "fail", "sort": "-ip", "page": "2",
         "per_page": "25"},
])
def test_a_query_survives_its_own_url_parameters(params: dict[str, Any]) -> None:
    query = parse_query(args(**params), per_page=50)
    again = parse_query({name: [value] for name, value in query.params()}, per_page=50)
    assert again == query


def test_links_leave_out_the_defaults() -> None:
    query = parse_query({}, per_page=50)
    assert query.params() == []
    assert query.params(page=2, sort="ip") == [("sort", "ip"), ("page", "2")]
    assert parse_query(args(per_page="100"), per_page=50).params() == [("per_page", "100")]
    assert query.filter_params() == [] and not query.filtered


def test_keys_the_viewer_may_not_read_cannot_be_searched_or_sorted_on() -> None:
    hidden = host_query.sensitive_test(("*PASSWORD*", "IP"), admin=False)
    with pytest.raises(InvalidInput, match="sensitive"):
        select(RECORDS, parse_query(args(q="ROOT_PASSWORD=x")), now=NOW, hidden=hidden)
    with pytest.raises(InvalidInput, match="sensitive"):
        select(RECORDS, parse_query(args(sort="-ip")), now=NOW, hidden=hidden)
    admin = host_query.sensitive_test(("*PASSWORD*", "IP"), admin=True)
    assert select(RECORDS, parse_query(args(sort="-ip")), now=NOW, hidden=admin).total == 4
    by_address = parse_query(args(q="10.99.0.11"))
    assert select(RECORDS, by_address, now=NOW, hidden=admin).total == 1
    assert select(RECORDS, by_address, now=NOW, hidden=hidden).total == 0  # not looked into
    with pytest.raises(InvalidInput, match="STATE is a sensitive key"):
        select(RECORDS, parse_query(args(state="FAILED")), now=NOW,
               hidden=host_query.sensitive_test(("STATE",), admin=False))


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-01-04T14:13:20Z", NOW), ("1736000000", NOW), ("", None), ("soon", None),
    (None, None),
])
def test_stored_times_are_read_as_iso_or_epoch(value, expected) -> None:
    assert host_query.epoch_of(value) == expected

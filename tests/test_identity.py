"""Caller identity (api.md §4): neighbour table, lease file, mac= claims, admin rights."""

from __future__ import annotations

from pathlib import Path

import pytest

from hps_api.errors import Forbidden, InvalidInput
from hps_api.identity import Neighbours, bearer_matches, client_address, identify, is_loopback

ARP = """IP address       HW type     Flags       HW address            Mask     Device
10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0
10.99.0.22       0x1         0x0         00:00:00:00:00:00     *        br0
10.99.0.23       0x1         0x2         52:54:00:aa:bb:03     *        br0
"""
LEASES = "1900000000 52:54:00:aa:bb:09 10.99.0.109 node9 01:52:54:00:aa:bb:09\n"


@pytest.fixture
def neighbours(tmp_path: Path) -> Neighbours:
    (tmp_path / "arp").write_text(ARP)
    (tmp_path / "leases").write_text(LEASES)
    return Neighbours(tmp_path / "arp", tmp_path / "leases")


def test_the_neighbour_table_names_the_caller(neighbours: Neighbours) -> None:
    caller = identify("10.99.0.21", None, "", neighbours, "tok")
    assert (caller.mac, caller.verified, caller.admin) == ("525400aabb01", True, False)


def test_an_incomplete_neighbour_entry_is_not_an_identity(neighbours: Neighbours) -> None:
    caller = identify("10.99.0.22", None, "", neighbours, "tok")
    assert caller.mac is None


def test_the_lease_file_names_a_caller_the_table_does_not_know(neighbours: Neighbours) -> None:
    assert identify("10.99.0.109", None, "", neighbours, "").mac == "525400aabb09"


def test_a_claimed_mac_is_accepted_when_nothing_verifies_the_caller(neighbours) -> None:
    caller = identify("192.0.2.7", "52-54-00-AA-BB-77", "", neighbours, "")
    assert (caller.mac, caller.verified) == ("525400aabb77", False)


def test_a_claim_matching_the_verified_mac_is_fine(neighbours: Neighbours) -> None:
    assert identify("10.99.0.21", "525400aabb01", "", neighbours, "").verified


def test_a_claim_contradicting_the_verified_mac_is_spoofing(neighbours: Neighbours) -> None:
    with pytest.raises(Forbidden):
        identify("10.99.0.21", "52:54:00:aa:bb:03", "", neighbours, "")


def test_an_admin_may_name_any_host(neighbours: Neighbours) -> None:
    caller = identify("10.99.0.21", "52:54:00:aa:bb:03", "Bearer tok", neighbours, "tok")
    assert (caller.mac, caller.admin) == ("525400aabb03", True)


def test_a_malformed_claim_is_invalid_input(neighbours: Neighbours) -> None:
    with pytest.raises(InvalidInput):
        identify("10.99.0.21", "../../etc", "", neighbours, "")


@pytest.mark.parametrize(("ip", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("10.99.0.1", False), ("::ffff:10.0.0.1", False), ("", False), ("garbage", False),
])
def test_loopback_detection(ip: str, loopback: bool) -> None:
    assert is_loopback(ip) is loopback


@pytest.mark.parametrize(("header", "token", "ok"), [
    ("Bearer s3cret", "s3cret", True),
    ("bearer s3cret", "s3cret", True),
    ("Bearer s3cret2", "s3cret", False),
    ("Bearer ", "s3cret", False),
    ("Basic s3cret", "s3cret", False),
    ("Bearer anything", "", False),
    ("", "", False),
])
def test_the_admin_token_must_match_exactly(header: str, token: str, ok: bool) -> None:
    assert bearer_matches(header, token) is ok


def test_forwarded_for_is_only_trusted_from_listed_proxies() -> None:
    assert client_address("10.0.0.2", "10.99.0.5", ("10.0.0.2",)) == "10.99.0.5"
    assert client_address("10.0.0.3", "10.99.0.5", ("10.0.0.2",)) == "10.0.0.3"
    assert client_address("10.0.0.2", "1.2.3.4, 10.99.0.5", ("10.0.0.2",)) == "10.99.0.5"


def test_lease_file_changes_are_picked_up(neighbours: Neighbours, tmp_path: Path) -> None:
    assert neighbours.mac_of("10.99.0.110") is None
    (tmp_path / "leases").write_text(LEASES + "1900000000 52:54:00:aa:bb:10 10.99.0.110 n10 *\n")
    assert neighbours.mac_of("10.99.0.110") == "525400aabb10"


def test_an_address_is_found_in_a_large_table_and_never_by_its_prefix(tmp_path: Path) -> None:
    rows = [f"10.99.{i >> 8}.{i & 255}       0x1         0x2         "
            f"52:54:00:00:{i >> 8:02x}:{i & 255:02x}     *        br0" for i in range(1, 2000)]
    rows.insert(5, "10.99.0.100      0x1         0x0         00:00:00:00:00:00     *        br0")
    table = tmp_path / "big-arp"
    table.write_text(ARP.splitlines()[0] + "\n" + "\n".join(rows))  # no final newline
    found = Neighbours(table, tmp_path / "leases")
    assert found.mac_of("10.99.0.1") == "525400000001"  # not 10.99.0.10, .100, ...
    assert found.mac_of("10.99.0.100") == "525400000064"  # the complete entry after the stub
    assert found.mac_of("10.99.7.207") == "5254000007cf"  # the last line
    assert found.mac_of("10.99.0.0") is None
    assert found.mac_of("10.99.0") is None

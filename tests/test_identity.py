"""Caller identity (docs/api.md §4): neighbour table, lease file, mac= claims, admin rights."""

from __future__ import annotations

from pathlib import Path

import pytest

from hps_api.errors import Forbidden, InvalidInput
from hps_api.net.identity import Neighbours, bearer_matches, client_address, identify, is_loopback

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


# --- IPv6, dual-stack sockets, on-link callers (F1) ------------------------------------------

ROUTE = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
         "br0\t00000000\t0100630A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
         "br0\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
IPV6_ROUTE = (
    "fd990000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     br0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd990000000000000000000000000001 00000400 00000003 00000000 00000003     br0\n"
    "fd990000000000000000000000000001 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000003 00000000 80200001     br0\n")
IPV6_NEIGH = ("fd99::21 dev br0 lladdr 52:54:00:aa:bb:21 REACHABLE\n"
              "fd99::22 dev br0 lladdr 52:54:00:aa:bb:22 FAILED\n"
              "fe80::5054:ff:feaa:bb23 dev br0 lladdr 52:54:00:aa:bb:23 STALE\n")


@pytest.fixture
def network(neighbours: Neighbours, tmp_path: Path) -> Neighbours:
    """10.99.0.0/24 and fd99::/64 are on-link; a default route via 10.99.0.1 / fd99::1."""
    (tmp_path / "route").write_text(ROUTE)
    (tmp_path / "ipv6_route").write_text(IPV6_ROUTE)
    (tmp_path / "ipv6_neigh").write_text(IPV6_NEIGH)
    return Neighbours(tmp_path / "arp", tmp_path / "leases")


@pytest.mark.parametrize(("remote", "expected"), [
    ("::ffff:10.99.0.21", "10.99.0.21"), ("::FFFF:10.99.0.21", "10.99.0.21"),
    ("10.99.0.21", "10.99.0.21"), ("fd99::21", "fd99::21"), ("::ffff:zz", "::ffff:zz"),
])
def test_ipv4_mapped_addresses_are_looked_up_as_ipv4(remote: str, expected: str) -> None:
    assert client_address(remote, "", ()) == expected


def test_a_mapped_caller_is_known_by_its_arp_entry_and_cannot_spoof(network) -> None:
    ip = client_address("::ffff:10.99.0.21", "", ())
    assert identify(ip, None, "", network, "").mac == "525400aabb01"
    with pytest.raises(Forbidden):
        identify(ip, "52:54:00:aa:bb:03", "", network, "")


@pytest.mark.parametrize(("ip", "mac"), [
    ("fd99::21", "525400aabb21"), ("FD99:0:0::21", "525400aabb21"),
    ("fe80::5054:ff:feaa:bb23%br0", "525400aabb23"), ("fd99::22", None), ("fd99::99", None),
])
def test_ipv6_callers_are_looked_up_in_the_ipv6_neighbour_table(network, ip, mac) -> None:
    assert network.mac_of(ip) == mac


def test_an_ipv6_neighbour_cannot_claim_another_mac(network) -> None:
    with pytest.raises(Forbidden, match="verified MAC"):
        identify("fd99::21", "52:54:00:aa:bb:01", "", network, "")


@pytest.mark.parametrize("ip", ["10.99.0.77", "fd99::77"])
def test_an_on_link_caller_nobody_knows_cannot_name_itself(network, ip: str) -> None:
    with pytest.raises(Forbidden, match="no neighbour table or lease"):
        identify(ip, "52:54:00:aa:bb:01", "", network, "")


@pytest.mark.parametrize("ip", ["192.0.2.7", "2001:db8::7"])
def test_a_routed_caller_may_still_name_itself(network, ip: str) -> None:
    assert identify(ip, "52:54:00:aa:bb:01", "", network, "").mac == "525400aabb01"


def test_an_admin_on_link_may_still_name_any_host(network) -> None:
    assert identify("10.99.0.77", "52:54:00:aa:bb:01", "Bearer tok", network, "tok").admin


def test_on_link_networks_come_from_routes_without_a_gateway(network) -> None:
    assert [network.is_on_link(a) for a in ("10.99.0.200", "10.98.0.1", "fd99::1234",
                                            "fd98::1", "127.0.0.1", "not-an-ip")] == \
        [True, False, True, False, False, False]


def test_the_netlink_dump_parser_keeps_resolved_entries_only() -> None:
    import socket
    import struct

    from hps_api.net import netlink

    def message(address: str, mac: bytes, state: int, seq: int = 7) -> bytes:
        import ipaddress

        attrs = b""
        for kind, value in ((netlink.NDA_DST, ipaddress.IPv6Address(address).packed),
                            (netlink.NDA_LLADDR, mac)):
            attr = struct.pack("=HH", 4 + len(value), kind) + value
            attrs += attr + b"\0" * (-len(attr) % 4)
        body = struct.pack("=BxxxiHBB", socket.AF_INET6, 2, state, 0, 1) + attrs
        return struct.pack("=LHHLL", 16 + len(body), netlink.RTM_NEWNEIGH, 2, seq, 0) + body

    found: dict[str, str] = {}
    data = (message("fd99::21", bytes.fromhex("525400aabb21"), 0x02)
            + message("fd99::22", bytes.fromhex("525400aabb22"), 0x20)  # failed
            + message("ff02::1", bytes.fromhex("333300000001"), 0x40)  # noarp
            + message("fd99::23", bytes(6), 0x80)  # no address
            + message("fd99::24", bytes.fromhex("525400aabb24"), 0x04, seq=8))  # not ours
    assert netlink._parse(data, 7, found) is False
    assert found == {"fd99::21": "52:54:00:aa:bb:21"}
    assert netlink._parse(struct.pack("=LHHLL", 16, netlink.NLMSG_DONE, 2, 7, 0), 7, found)


def test_the_kernel_answers_the_netlink_dump() -> None:
    from hps_api.net.netlink import ipv6_neighbours

    assert isinstance(ipv6_neighbours(), dict)

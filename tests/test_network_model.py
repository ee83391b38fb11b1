"""The cluster's provisioning network (hps_api.model.network): one parser, one set of messages,
and the one rule that hands out addresses from a pool."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from hps_api.errors import InvalidInput
from hps_api.model.network import ClusterNetwork, first_free
from hps_api.services.dnsmasq import Reservation, Skipped, reservations

KEYS = {"NAME": "lab", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1",
        "DHCP_IFACE": "hpsbr0"}


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_the_network_holds_every_key_the_boot_network_is_made_of() -> None:
    net = ClusterNetwork.of({**KEYS, "DNS_DOMAIN": " Lab.Example ", "HPS_PORT": "8080"})
    assert (net.network, net.ips, net.dhcp_ip) == (IPv4Network("10.99.0.0/24"), ip("10.99.0.1"),
                                                  ip("10.99.0.1"))
    assert (net.range_start, net.range_end) == (ip("10.99.0.128"), ip("10.99.0.254"))
    assert (net.iface, net.domain, net.port, net.cluster) == ("hpsbr0", "lab.example", 8080,
                                                              "lab")
    assert net.netmask == "255.255.255.0"
    assert net.boot_url == "http://10.99.0.1:8080/boot.ipxe"


def test_the_optional_keys_have_their_defaults() -> None:
    net = ClusterNetwork.of({"NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1"})
    assert (net.iface, net.domain, net.port) == (None, "cluster.local", 80)


@pytest.mark.parametrize(("changes", "message"), [
    ({"NETWORK_CIDR": None}, "cluster lab: NETWORK_CIDR is required"),
    ({"NETWORK_CIDR": " "}, "cluster lab: NETWORK_CIDR is required"),
    ({"NETWORK_CIDR": None, "DHCP_IP": None}, "cluster lab: NETWORK_CIDR is required"),
    ({"DHCP_IP": None}, "cluster lab: DHCP_IP is required"),
    ({"NETWORK_CIDR": "10.99.0.1/24"}, "cluster lab: NETWORK_CIDR='10.99.0.1/24' is not a network"),
    ({"NETWORK_CIDR": "10.99.0.0/30"}, "NETWORK_CIDR='10.99.0.0/30' is too small (at most /29)"),
    ({"NETWORK_CIDR": "fd00::/64"}, "only IPv4 networks are supported"),
    ({"DHCP_IP": "10.99.0.256"}, "cluster lab: DHCP_IP='10.99.0.256' is not an IPv4 address"),
    ({"DHCP_IP": "10.98.0.1"}, "cluster lab: DHCP_IP=10.98.0.1 is not a usable address of "
                               "10.99.0.0/24"),
    ({"DHCP_IP": "10.99.0.0"}, "DHCP_IP=10.99.0.0 is not a usable address"),
    ({"DHCP_IP": "10.99.0.200"}, "cluster lab: DHCP_IP 10.99.0.200 lies inside the dynamic "
                                 "range 10.99.0.128-10.99.0.254"),
    ({"DHCP_RANGE_START": "x"}, "cluster lab: DHCP_RANGE_START='x' is not an IPv4 address"),
    ({"DHCP_RANGE_END": "10.99.0.255"}, "DHCP_RANGE_END=10.99.0.255 is not a usable address"),
    ({"DHCP_RANGE_END": "10.99.0.100"}, "cluster lab: DHCP_RANGE_START 10.99.0.128 is after "
                                        "DHCP_RANGE_END 10.99.0.100"),
    ({"DHCP_IFACE": "br0,lo"}, "cluster lab: DHCP_IFACE='br0,lo' is not an interface name"),
    ({"DNS_DOMAIN": "a..b"}, "cluster lab: DNS_DOMAIN='a..b' is not a domain name"),
    ({"HPS_PORT": "65536"}, "cluster lab: HPS_PORT='65536' is not a port number"),
])
def test_a_missing_or_bad_key_is_invalid_input_naming_the_cluster_and_the_key(
        changes: dict[str, str | None], message: str) -> None:
    keys = {k: v for k, v in {**KEYS, **changes}.items() if v is not None}
    with pytest.raises(InvalidInput, match=re.escape(message)):
        ClusterNetwork.of(keys)


def test_the_cluster_is_named_by_the_caller_else_by_its_record_else_not_at_all() -> None:
    keys = {**KEYS, "DHCP_IP": "x"}
    with pytest.raises(InvalidInput, match=r"^cluster other: DHCP_IP="):
        ClusterNetwork.of(keys, "other")
    with pytest.raises(InvalidInput, match=r"^cluster lab: DHCP_IP="):
        ClusterNetwork.of(keys)
    with pytest.raises(InvalidInput, match=r"^DHCP_IP="):
        ClusterNetwork.of({k: v for k, v in keys.items() if k != "NAME"})


@pytest.mark.parametrize("iface", ["eth0", "enp1s0.100", "eth0:1", "br_lan-xxxxxxxx"])
def test_every_interface_name_the_cluster_keys_accept_is_accepted(iface: str) -> None:
    assert ClusterNetwork.of({**KEYS, "DHCP_IFACE": iface}).iface == iface


def test_host_addresses_and_the_range_answer_for_a_host_ip() -> None:
    net = ClusterNetwork.of({**KEYS, "DHCP_RANGE_START": "10.99.0.100",
                             "DHCP_RANGE_END": "10.99.0.199"})
    assert net.is_host_address(ip("10.99.0.5")) and not net.in_range(ip("10.99.0.5"))
    assert net.in_range(ip("10.99.0.100")) and net.in_range(ip("10.99.0.199"))
    assert not net.in_range(ip("10.99.0.200"))
    for outside in ("10.99.0.0", "10.99.0.255", "10.98.0.5"):
        assert not net.is_host_address(ip(outside))


def test_the_static_pool_starts_after_the_ips_and_skips_the_range() -> None:
    net = ClusterNetwork.of({"NETWORK_CIDR": "10.99.0.0/29", "DHCP_IP": "10.99.0.2",
                             "DHCP_RANGE_START": "10.99.0.4", "DHCP_RANGE_END": "10.99.0.5"})
    assert [str(a) for a in net.static_pool()] == ["10.99.0.3", "10.99.0.6", "10.99.0.1"]


@pytest.mark.parametrize(("taken", "expected"), [
    ([], "10.0.0.1"),
    (["10.0.0.1"], "10.0.0.2"),
    (["10.0.0.1 ", "", "junk", "10.0.0.3"], "10.0.0.2"),
    (["10.0.0.1", "10.0.0.2", "10.0.0.3"], None),
])
def test_first_free_is_the_first_address_of_the_pool_no_record_holds(
        taken: list[str], expected: str | None) -> None:
    pool = [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.3")]
    found = first_free(pool, taken)
    assert (None if found is None else str(found)) == expected


# -- reservations: a bad host record is left out, never the whole cluster ----------------------

NET = ClusterNetwork.of(KEYS)


def test_good_hosts_are_reserved_and_bad_ones_left_out_with_the_reason() -> None:
    hosts = [("525400aabb03", {"IP": "10.98.0.3"}),
             ("525400aabb01", {"IP": "10.99.0.11", "HOSTNAME": "sch-001"}),
             ("525400aabb04", {"IP": "10.99.0.14", "HOSTNAME": "bad_name"}),
             ("525400aabb02", {"IP": "10.99.0.10"}),
             ("525400aabb05", {"STATE": "UNCONFIGURED"})]
    entries, skipped = reservations(hosts, NET)
    assert entries == [Reservation("525400aabb02", ip("10.99.0.10"), None),
                       Reservation("525400aabb01", ip("10.99.0.11"), "sch-001")]
    assert [s.mac for s in skipped] == ["525400aabb03", "525400aabb04"]
    assert str(skipped[0]) == "host 525400aabb03: IP 10.98.0.3 is not a free address of " \
                              "10.99.0.0/24"
    assert skipped[1].reason.startswith("HOSTNAME='bad_name' is not a host name")


@pytest.mark.parametrize("clash", [{"IP": "10.99.0.10"}, {"HOSTNAME": "sch-001"}])
def test_of_hosts_sharing_an_ip_or_hostname_the_lowest_mac_keeps_it_in_any_order(
        clash: dict[str, str]) -> None:
    low = ("525400aabb01", {"IP": "10.99.0.10", "HOSTNAME": "sch-001"})
    high = ("52:54:00:AA:BB:09", {"IP": "10.99.0.19", "HOSTNAME": "sch-009", **clash})
    for hosts in ([low, high], [high, low]):
        entries, skipped = reservations(hosts, NET)
        assert [e.mac for e in entries] == ["525400aabb01"]
        key = next(iter(clash))
        assert skipped == [Skipped("525400aabb09", f"{key} {clash[key]} is also host "
                                                   "525400aabb01's (the lowest MAC keeps it)")]


def test_a_host_left_out_holds_nothing() -> None:
    hosts = [("525400aabb01", {"IP": "10.99.0.10", "HOSTNAME": "a,b"}),
             ("525400aabb02", {"IP": "10.99.0.10", "HOSTNAME": "sch-002"})]
    entries, skipped = reservations(hosts, NET)
    assert [e.mac for e in entries] == ["525400aabb02"]
    assert [s.mac for s in skipped] == ["525400aabb01"]

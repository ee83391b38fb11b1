"""The cluster's provisioning network: the IPS address, the dynamic range, the static pool."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hps_api.errors import Conflict, InvalidInput

IPv4 = ipaddress.IPv4Address


@dataclass(frozen=True)
class ClusterNetwork:
    """NETWORK_CIDR, DHCP_IP and DHCP_RANGE_START..END of a cluster, validated."""

    network: ipaddress.IPv4Network
    ips: IPv4
    range_start: IPv4
    range_end: IPv4

    @classmethod
    def of(cls, cluster: Mapping[str, str]) -> ClusterNetwork:
        """Return the cluster's network; Conflict when a required key is missing, InvalidInput
        when a value is malformed or inconsistent (IPS or range outside the network...)."""
        for key in ("NETWORK_CIDR", "DHCP_IP"):
            if not cluster.get(key):
                raise Conflict(f"cluster key {key} is not set: cluster_config set {key} ...")
        network = _network(cluster["NETWORK_CIDR"], "NETWORK_CIDR")
        ips = _address(cluster["DHCP_IP"], "DHCP_IP")
        start, end = default_range(network)
        if cluster.get("DHCP_RANGE_START"):
            start = _address(cluster["DHCP_RANGE_START"], "DHCP_RANGE_START")
        if cluster.get("DHCP_RANGE_END"):
            end = _address(cluster["DHCP_RANGE_END"], "DHCP_RANGE_END")
        net = cls(network, ips, start, end)
        net.check()
        return net

    def check(self) -> None:
        """Raise InvalidInput unless addresses, range and IPS are consistent."""
        usable = self.network.num_addresses > 2
        for name, address in (("DHCP_IP", self.ips), ("DHCP_RANGE_START", self.range_start),
                              ("DHCP_RANGE_END", self.range_end)):
            if not usable or not self.is_host_address(address):
                raise InvalidInput(f"{name}={address} is not a host address of {self.network}")
        if self.range_start > self.range_end:
            raise InvalidInput("DHCP_RANGE_START is after DHCP_RANGE_END")
        if self.in_range(self.ips):
            raise InvalidInput(f"DHCP_IP={self.ips} lies inside the DHCP range")

    @property
    def netmask(self) -> str:
        return str(self.network.netmask)

    def is_host_address(self, address: IPv4) -> bool:
        """Return True for addresses of the network other than network and broadcast."""
        return (address in self.network and address != self.network.network_address
                and address != self.network.broadcast_address)

    def in_range(self, address: IPv4) -> bool:
        """Return True when the address belongs to dnsmasq's dynamic range."""
        return self.range_start <= address <= self.range_end

    def static_pool(self) -> Iterator[IPv4]:
        """Yield the static addresses in allocation order: after the IPS address, then before."""
        hosts = [a for a in self.network.hosts() if a != self.ips and not self.in_range(a)]
        yield from (a for a in hosts if a > self.ips)
        yield from (a for a in hosts if a < self.ips)


def default_range(network: ipaddress.IPv4Network) -> tuple[IPv4, IPv4]:
    """Return the default dynamic range: the upper half of the network's host addresses."""
    first = int(network.network_address) + 1
    last = int(network.broadcast_address) - 1
    middle = first + (last - first + 1) // 2
    return IPv4(middle), IPv4(last)


def _address(text: str, key: str) -> IPv4:
    try:
        return IPv4(text.strip())
    except ValueError as err:
        raise InvalidInput(f"{key}={text!r}: {err}") from None


def _network(text: str, key: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text.strip())
    except ValueError as err:
        raise InvalidInput(f"{key}={text!r}: {err}") from None

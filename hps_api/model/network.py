"""The cluster's provisioning network: the IPS address, the dynamic range, the static pool, and
the keys dnsmasq is rendered from (interface, DNS domain, hps-api's port).

One parser for every reader (allocation, the cluster-key checks, the self-test, dnsmasq's files):
a missing or bad key is an InvalidInput naming the cluster and the first such key, in the order
NETWORK_CIDR, DHCP_IP, DHCP_RANGE_START, DHCP_RANGE_END, DHCP_IFACE, DNS_DOMAIN, HPS_PORT.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from hps_api.errors import InvalidInput
from hps_api.ids import DOMAIN_PATTERN, MAX_DOMAIN

IPv4 = ipaddress.IPv4Address

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_PORT = 80
#: the smallest network with a static pool and a dynamic range: /29 (six host addresses)
MAX_PREFIX = 29
#: a Linux interface name or alias label (`eth0:1`: dnsmasq matches labels with bind-interfaces)
IFACE_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class ClusterNetwork:
    """NETWORK_CIDR, DHCP_IP, DHCP_RANGE_START..END, DHCP_IFACE, DNS_DOMAIN and HPS_PORT of a
    cluster, validated together."""

    network: ipaddress.IPv4Network
    ips: IPv4
    range_start: IPv4
    range_end: IPv4
    iface: str | None = None
    domain: str = DEFAULT_DOMAIN
    port: int = DEFAULT_PORT
    #: the cluster's name, for messages only
    cluster: str = ""

    @classmethod
    def of(cls, cluster: Mapping[str, str], name: str | None = None) -> ClusterNetwork:
        """Return the cluster's network; InvalidInput naming the cluster (`name`, else the
        record's NAME) and the first missing or bad key.

        NETWORK_CIDR (IPv4, at most /29) and DHCP_IP are required; the dynamic range defaults
        to `default_range`, DNS_DOMAIN to cluster.local, HPS_PORT to 80. DHCP_IFACE is checked
        when present (only dnsmasq.conf needs it).
        """
        label = cluster.get("NAME", "") if name is None else name
        where = f"cluster {label}: " if label else ""
        network = _network(_required(cluster, "NETWORK_CIDR", where), where)
        ips = _address(cluster, "DHCP_IP", network, where, required=True)
        assert ips is not None
        start, end = default_range(network)
        start = _address(cluster, "DHCP_RANGE_START", network, where) or start
        end = _address(cluster, "DHCP_RANGE_END", network, where) or end
        net = cls(network, ips, start, end, _iface(cluster, where), _domain(cluster, where),
                  _port(cluster, where), label)
        net.check()
        return net

    def check(self) -> None:
        """Raise InvalidInput unless the addresses, the range and the IPS are consistent."""
        where = f"cluster {self.cluster}: " if self.cluster else ""
        for key, address in (("DHCP_IP", self.ips), ("DHCP_RANGE_START", self.range_start),
                             ("DHCP_RANGE_END", self.range_end)):
            if not self.is_host_address(address):
                raise InvalidInput(f"{where}{key}={address} is not a usable address of "
                                   f"{self.network}")
        if self.range_start > self.range_end:
            raise InvalidInput(f"{where}DHCP_RANGE_START {self.range_start} is after "
                               f"DHCP_RANGE_END {self.range_end}")
        if self.in_range(self.ips):
            raise InvalidInput(f"{where}DHCP_IP {self.ips} lies inside the dynamic range "
                               f"{self.range_start}-{self.range_end} (set DHCP_RANGE_START/"
                               "DHCP_RANGE_END)")

    @property
    def dhcp_ip(self) -> IPv4:
        """Return the IPS's address on this network (DHCP_IP)."""
        return self.ips

    @property
    def netmask(self) -> str:
        """Return the network's netmask in dotted form (`255.255.255.0`)."""
        return str(self.network.netmask)

    @property
    def boot_url(self) -> str:
        """Return the URL DHCP hands to iPXE clients: `http://<DHCP_IP>[:port]/boot.ipxe`."""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"http://{self.ips}{port}/boot.ipxe"

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


def first_free(pool: Iterable[IPv4], taken: Iterable[str]) -> IPv4 | None:
    """Return the first address of `pool` that no text in `taken` names, else None.

    `taken` holds record values as stored, read as the dnsmasq files read them (blanks around
    an address do not count); a text that is no IPv4 address holds nothing.
    """
    used = set()
    for text in taken:
        try:
            used.add(IPv4(text.strip()))
        except ValueError:
            continue
    return next((address for address in pool if address not in used), None)


def _required(cluster: Mapping[str, str], key: str, where: str) -> str:
    value = (cluster.get(key) or "").strip()
    if not value:
        raise InvalidInput(f"{where}{key} is required")
    return value


def _network(text: str, where: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r} is not a network: {err}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r}: only IPv4 networks are supported")
    if network.prefixlen > MAX_PREFIX:
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r} is too small (at most /{MAX_PREFIX})")
    return network


def _address(cluster: Mapping[str, str], key: str, network: ipaddress.IPv4Network, where: str,
             *, required: bool = False) -> IPv4 | None:
    text = _required(cluster, key, where) if required else (cluster.get(key) or "").strip()
    if not text:
        return None
    try:
        address = IPv4(text)
    except ValueError:
        raise InvalidInput(f"{where}{key}={text!r} is not an IPv4 address") from None
    if address not in network or address in (network.network_address,
                                             network.broadcast_address):
        raise InvalidInput(f"{where}{key}={address} is not a usable address of {network}")
    return address


def _iface(cluster: Mapping[str, str], where: str) -> str | None:
    text = (cluster.get("DHCP_IFACE") or "").strip()
    if text and not IFACE_PATTERN.fullmatch(text):
        raise InvalidInput(f"{where}DHCP_IFACE={text[:40]!r} is not an interface name")
    return text or None


def _domain(cluster: Mapping[str, str], where: str) -> str:
    text = (cluster.get("DNS_DOMAIN") or "").strip().lower() or DEFAULT_DOMAIN
    if len(text) > MAX_DOMAIN or not DOMAIN_PATTERN.fullmatch(text):
        raise InvalidInput(f"{where}DNS_DOMAIN={text[:60]!r} is not a domain name")
    return text


def _port(cluster: Mapping[str, str], where: str) -> int:
    text = (cluster.get("HPS_PORT") or "").strip() or str(DEFAULT_PORT)
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise InvalidInput(f"{where}HPS_PORT={text[:20]!r} is not a port number (1-65535)")
    return int(text)

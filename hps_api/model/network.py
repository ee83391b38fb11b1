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

from hps_api.errors import InvalidInput, NotFound
from hps_api.ids import DOMAIN_PATTERN, MAX_DOMAIN

IPv4 = ipaddress.IPv4Address

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_PORT = 80
#: the query iPXE is sent to `init` with, straight from DHCP: `${...}` are iPXE settings it
#: expands in its DHCP filename (`netX`: the NIC it boots from); ipxe/bootstrap.ipxe chains the
#: same parameters (tests/test_services.py holds them to it)
INIT_QUERY = ("cmd=init&mac=${netX/mac:hexhyp}&arch=${buildarch}&platform=${platform}"
              "&uuid=${uuid}&serial=${serial:uristring}&manufacturer=${manufacturer:uristring}"
              "&product=${product:uristring}")
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

    @property
    def init_url(self) -> str:
        """Return the URL DHCP hands to iPXE clients: `cmd=init` with the MAC and identity iPXE
        fills in itself (it expands `${...}` settings in a DHCP filename), the same query
        /boot.ipxe chains to; at most 255 bytes, a DHCP option's limit."""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"http://{self.ips}{port}/cgi-bin/boot_manager.sh?{INIT_QUERY}"

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


# -- storage networks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StorageNetwork:
    """Storage network `index` of a cluster (cluster keys STORAGE<i>_VLAN/_CIDR/_GATEWAY/_MTU)."""

    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    vlan: str
    mtu: str


def storage_network(cluster: Mapping[str, str], index: int) -> StorageNetwork:
    """Return the storage network `index`; NotFound when it is not configured.

    A cluster configured by the bash-era IPS (NETWORK_STORAGE_COUNT and no STORAGE_NETWORKS)
    is read in its own keys, so its old nodes, the allocator and the checks agree.
    """
    if not cluster.get("STORAGE_NETWORKS") and cluster.get("NETWORK_STORAGE_COUNT"):
        return _old_storage_network(cluster, index)
    count = _count(cluster, "STORAGE_NETWORKS")
    prefix = f"STORAGE{index}_"
    if index >= count or not cluster.get(prefix + "CIDR"):
        raise NotFound(f"storage network {index} is not configured (STORAGE_NETWORKS={count})")
    return _storage_network_of(index, cluster[prefix + "CIDR"], cluster.get(prefix + "GATEWAY"),
                               cluster.get(prefix + "VLAN", "0"),
                               cluster.get(prefix + "MTU", "1500"))


def _old_storage_network(cluster: Mapping[str, str], index: int) -> StorageNetwork:
    """Storage network `index` in the bash-era keys: VLAN NETWORK_STORAGE_BASE_VLAN + index,
    then NETWORK_STORAGE_VLAN<vlan>_SUBNET (`10.31.0.0/24`, or an address with _NETMASK),
    _GATEWAY, and one NETWORK_STORAGE_MTU for all."""
    count = _count(cluster, "NETWORK_STORAGE_COUNT")
    base = cluster.get("NETWORK_STORAGE_BASE_VLAN", "")
    if not base.strip().isdigit():
        raise NotFound("storage network not initialised: NETWORK_STORAGE_BASE_VLAN is not set")
    vlan = int(base) + index
    prefix = f"NETWORK_STORAGE_VLAN{vlan}_"
    subnet = cluster.get(prefix + "SUBNET", "").strip()
    if index >= count or not subnet:
        raise NotFound(f"storage network {index} (VLAN {vlan}) is not configured "
                       f"(NETWORK_STORAGE_COUNT={count})")
    if "/" not in subnet and cluster.get(prefix + "NETMASK"):
        subnet = f"{subnet}/{cluster[prefix + 'NETMASK'].strip()}"
    return _storage_network_of(index, subnet, cluster.get(prefix + "GATEWAY"), str(vlan),
                               cluster.get("NETWORK_STORAGE_MTU") or "1500")


def _count(cluster: Mapping[str, str], key: str) -> int:
    text = (cluster.get(key) or "0").strip()
    if not text.isdigit():
        raise InvalidInput(f"cluster key {key}={text[:20]!r} is not a number")
    return int(text)


def _storage_network_of(index: int, cidr: str, gateway: str | None, vlan: str,
                        mtu: str) -> StorageNetwork:
    try:
        network = ipaddress.IPv4Network(cidr, strict=False)
        address = ipaddress.IPv4Address(gateway or str(next(network.hosts())))
    except ValueError as err:
        raise InvalidInput(f"storage network {index}: {err}") from None
    return StorageNetwork(network, address, vlan, mtu)

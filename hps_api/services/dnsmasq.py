"""dnsmasq's files for one cluster (docs/boot.md): `dnsmasq.conf`, `dhcp-hosts`, `dns-hosts`.

Pure: cluster keys and host records in, text out. Every value is parsed (`ipaddress`) or matched
against a strict pattern before it is written, because dnsmasq reads these files as its own
configuration: a stray comma or newline in a value would be a new option. A missing or bad key is
an InvalidInput naming it, raised before anything is written.

The boot rules (docs/boot.md "The chain"): a client that already runs iPXE sends DHCP option 175 and
gets the HTTP URL of `/boot.ipxe`; any other PXE client gets an iPXE binary over TFTP, chosen by
the client architecture it sends in option 93 (7 and 9: x86-64 UEFI, everything else: BIOS).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.ids import DOMAIN_PATTERN, HOSTNAME_PATTERN, colon_mac, normalize_mac
from hps_api.model.network import default_range

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_PORT = 80
LEASE_TIME = "12h"
BIOS_BOOT_FILE = "undionly.kpxe"
UEFI_BOOT_FILE = "ipxe.efi"
# RFC 4578 client architectures that take ipxe.efi: 7 = EFI BC (x86-64), 9 = EFI x86-64.
UEFI_X64_ARCHES = (7, 9)
IPS_NAME = "ips"

_IFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_PORT = re.compile(r"[0-9]{1,5}")
# Characters a path may have in dnsmasq.conf: no comma (a field separator), no space, no `#`.
_CONF_PATH = re.compile(r"/[A-Za-z0-9._/+@%~=:-]*")


@dataclass(frozen=True)
class ProvisioningNetwork:
    """The validated cluster keys the boot network is made of."""

    dhcp_ip: IPv4Address
    network: IPv4Network
    range_start: IPv4Address
    range_end: IPv4Address
    iface: str | None = None
    domain: str = DEFAULT_DOMAIN
    port: int = DEFAULT_PORT

    @property
    def boot_url(self) -> str:
        """Return the URL DHCP hands to iPXE clients: `http://<DHCP_IP>[:port]/boot.ipxe`."""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"http://{self.dhcp_ip}{port}/boot.ipxe"

    def in_dynamic_range(self, ip: IPv4Address) -> bool:
        """Return True when `ip` lies in DHCP_RANGE_START..DHCP_RANGE_END (not the static pool)."""
        return self.range_start <= ip <= self.range_end


@dataclass(frozen=True)
class Reservation:
    """One host's fixed address: its MAC (12 hex digits), IP and, when set, its HOSTNAME."""

    mac: str
    ip: IPv4Address
    hostname: str | None


@dataclass(frozen=True)
class ConfPaths:
    """The absolute paths dnsmasq.conf refers to."""

    dhcp_hosts: Path
    dns_hosts: Path
    tftp_root: Path
    leasefile: Path
    pidfile: Path


def provisioning_network(cluster: Mapping[str, str], name: str = "") -> ProvisioningNetwork:
    """Return the cluster's boot network; InvalidInput naming the first missing or bad key.

    DHCP_IP and NETWORK_CIDR are required; the dynamic range defaults to `default_range`,
    DNS_DOMAIN to cluster.local, HPS_PORT to 80. DHCP_IFACE is checked when present (only
    dnsmasq.conf needs it, see `render_conf`).
    """
    where = f"cluster {name}: " if name else ""
    network = _network(_required(cluster, "NETWORK_CIDR", where), where)
    dhcp_ip = _address(cluster, "DHCP_IP", network, where, required=True)
    assert dhcp_ip is not None
    start = _address(cluster, "DHCP_RANGE_START", network, where)
    end = _address(cluster, "DHCP_RANGE_END", network, where)
    if start is None or end is None:
        default_start, default_end = default_range(network)
        start, end = start or default_start, end or default_end
    if start > end:
        raise InvalidInput(f"{where}DHCP_RANGE_START {start} is after DHCP_RANGE_END {end}")
    if start <= dhcp_ip <= end:
        raise InvalidInput(f"{where}DHCP_IP {dhcp_ip} lies inside the dynamic range {start}-{end}"
                           " (set DHCP_RANGE_START/DHCP_RANGE_END)")
    return ProvisioningNetwork(dhcp_ip, network, start, end, _iface(cluster, where),
                               _domain(cluster, where), _port(cluster, where))


def reservations(hosts: Iterable[tuple[str, Mapping[str, str]]],
                 net: ProvisioningNetwork) -> list[Reservation]:
    """Return the fixed addresses of the hosts that have an IP, sorted by address.

    `hosts` are (mac, record) pairs. Raises InvalidInput naming the host and key for an IP
    outside the network (or the network, broadcast or IPS address), a malformed HOSTNAME, or an
    IP or HOSTNAME that two hosts share: dnsmasq would silently serve only one of them.
    """
    found: list[Reservation] = []
    ips: dict[IPv4Address, str] = {}
    names: dict[str, str] = {}
    for mac, record in hosts:
        mac12 = normalize_mac(mac)
        if not record.get("IP"):
            continue
        ip = _host_ip(record["IP"], net, mac12)
        hostname = _hostname(record.get("HOSTNAME") or None, mac12, net.domain)
        if ip in ips:
            raise InvalidInput(f"host {mac12}: IP {ip} is also host {ips[ip]}'s")
        if hostname is not None and hostname in names:
            raise InvalidInput(f"host {mac12}: HOSTNAME {hostname} is also host "
                               f"{names[hostname]}'s")
        ips[ip] = mac12
        if hostname is not None:
            names[hostname] = mac12
        found.append(Reservation(mac12, ip, hostname))
    return sorted(found, key=lambda r: r.ip)


def render_dhcp_hosts(entries: Iterable[Reservation]) -> str:
    """Return `dhcp-hosts`: one `mac,ip[,hostname]` line per reservation (dhcp-hostsfile)."""
    lines = [",".join([colon_mac(r.mac), str(r.ip), *([r.hostname] if r.hostname else [])])
             for r in entries]
    return "".join(f"{line}\n" for line in lines)


def render_dns_hosts(entries: Iterable[Reservation], net: ProvisioningNetwork) -> str:
    """Return `dns-hosts` (addn-hosts): `ip hostname hostname.domain`, the IPS as `ips` first."""
    lines = [f"{net.dhcp_ip} {IPS_NAME} {IPS_NAME}.{net.domain}"]
    lines += [f"{r.ip} {r.hostname} {r.hostname}.{net.domain}" for r in entries if r.hostname]
    return "".join(f"{line}\n" for line in lines)


def render_conf(net: ProvisioningNetwork, paths: ConfPaths, cluster: str) -> str:
    """Return `dnsmasq.conf`; InvalidInput when DHCP_IFACE is missing or a path is unusable."""
    if net.iface is None:
        raise InvalidInput(f"cluster {cluster}: DHCP_IFACE is required (the interface dnsmasq "
                           "listens on)")
    p = {f.name: _conf_path(getattr(paths, f.name), f.name) for f in fields(paths)}
    uefi = "\n".join(f"dhcp-match=set:efi64,option:client-arch,{arch}"
                     for arch in UEFI_X64_ARCHES)
    return f"""\
# dnsmasq for cluster {cluster}: written by `hps-api render-services`; do not edit.
# Change the cluster keys (DHCP_IP, DHCP_IFACE, NETWORK_CIDR, DHCP_RANGE_START, DHCP_RANGE_END,
# DNS_DOMAIN, HPS_PORT) and render again. dhcp-hosts and dns-hosts are re-read on SIGHUP; this
# file only when dnsmasq restarts.

interface={net.iface}
bind-interfaces
pid-file={p["pidfile"]}

# DNS: the hosts' names under {net.domain}, never forwarded upstream.
domain={net.domain}
local=/{net.domain}/
no-hosts
addn-hosts={p["dns_hosts"]}
domain-needed
bogus-priv

# DHCP: fixed addresses for known hosts, the dynamic range for the rest.
dhcp-range={net.range_start},{net.range_end},{net.network.netmask},{LEASE_TIME}
dhcp-authoritative
dhcp-hostsfile={p["dhcp_hosts"]}
dhcp-leasefile={p["leasefile"]}

# TFTP: the iPXE binaries for clients that are not iPXE yet.
enable-tftp
tftp-root={p["tftp_root"]}

# Boot: iPXE (option 175) gets the bootstrap script; others get iPXE for their firmware.
dhcp-match=set:ipxe,175
{uefi}
dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_BOOT_FILE}
dhcp-boot=tag:!ipxe,tag:efi64,{UEFI_BOOT_FILE}
dhcp-boot=tag:ipxe,{net.boot_url}
"""


def _required(cluster: Mapping[str, str], key: str, where: str) -> str:
    value = cluster.get(key, "").strip()
    if not value:
        raise InvalidInput(f"{where}{key} is required")
    return value


def _network(text: str, where: str) -> IPv4Network:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r} is not a network: {err}") from None
    if not isinstance(network, IPv4Network):
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r}: only IPv4 networks are supported")
    if network.prefixlen > 29:
        raise InvalidInput(f"{where}NETWORK_CIDR={text!r} is too small (at most /29)")
    return network


def _address(cluster: Mapping[str, str], key: str, network: IPv4Network, where: str,
             *, required: bool = False) -> IPv4Address | None:
    text = _required(cluster, key, where) if required else cluster.get(key, "").strip()
    if not text:
        return None
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        raise InvalidInput(f"{where}{key}={text!r} is not an IPv4 address") from None
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise InvalidInput(f"{where}{key}={ip} is not a usable address of {network}")
    return ip


def _iface(cluster: Mapping[str, str], where: str) -> str | None:
    text = cluster.get("DHCP_IFACE", "").strip()
    if text and not _IFACE.fullmatch(text):
        raise InvalidInput(f"{where}DHCP_IFACE={text[:40]!r} is not an interface name")
    return text or None


def _domain(cluster: Mapping[str, str], where: str) -> str:
    text = cluster.get("DNS_DOMAIN", "").strip().lower() or DEFAULT_DOMAIN
    if len(text) > 200 or not DOMAIN_PATTERN.fullmatch(text):
        raise InvalidInput(f"{where}DNS_DOMAIN={text[:60]!r} is not a domain name")
    return text


def _port(cluster: Mapping[str, str], where: str) -> int:
    text = cluster.get("HPS_PORT", "").strip() or str(DEFAULT_PORT)
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise InvalidInput(f"{where}HPS_PORT={text[:20]!r} is not a port number (1-65535)")
    return int(text)


def _host_ip(text: str, net: ProvisioningNetwork, mac12: str) -> IPv4Address:
    try:
        ip = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InvalidInput(f"host {mac12}: IP={text[:40]!r} is not an IPv4 address") from None
    unusable = (net.network.network_address, net.network.broadcast_address, net.dhcp_ip)
    if ip not in net.network or ip in unusable:
        raise InvalidInput(f"host {mac12}: IP {ip} is not a free address of {net.network}")
    return ip


def _hostname(text: str | None, mac12: str, domain: str) -> str | None:
    if text is None:
        return None
    name = text.strip().lower()
    if not HOSTNAME_PATTERN.fullmatch(name) or name == IPS_NAME:
        raise InvalidInput(f"host {mac12}: HOSTNAME={text[:70]!r} is not a host name "
                           f"(one DNS label under {domain}, not {IPS_NAME!r})")
    return name


def _conf_path(path: Path, field: str) -> str:
    text = os.path.abspath(path)
    if not _CONF_PATH.fullmatch(text):
        raise InvalidInput(f"{field} path {text[:80]!r} has characters dnsmasq.conf cannot hold "
                           "(use letters, digits and ._/+@%~=:-)")
    return text

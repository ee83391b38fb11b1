"""dnsmasq's files for one cluster (docs/boot.md): `dnsmasq.conf`, `dhcp-hosts`, `dhcp-opts`,
`dns-hosts`.

Pure: cluster keys and host records in, text out. Every value is parsed (`ipaddress`) or matched
against a strict pattern before it is written, because dnsmasq reads these files as its own
configuration: a stray comma or newline in a value would be a new option. A missing or bad key is
an InvalidInput naming it, raised before anything is written.

The boot rules (docs/boot.md "The chain"): a client that already runs iPXE sends DHCP option 175 and
gets the HTTP URL of `/boot.ipxe`; any other PXE client gets an iPXE binary over TFTP, chosen by
the client architecture it sends in option 93 (7 and 9: x86-64 UEFI, everything else: BIOS).

The short path (docs/deploy.md): a configured host (a reservation with HOSTNAME and IP) is tagged on
its `dhcp-hosts` line, and `dhcp-opts` hands its iPXE the host's own `cmd=init` URL as option 67,
skipping the `/boot.ipxe` round trip. dnsmasq prefers a matching `dhcp-boot` over option 67, so
the `/boot.ipxe` rule excludes the tag. Both files are re-read on SIGHUP; dnsmasq.conf is not.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from hps_api.boot.network import default_range
from hps_api.errors import InvalidInput
from hps_api.ids import DOMAIN_PATTERN, HOSTNAME_PATTERN, colon_mac, normalize_mac

DEFAULT_DOMAIN = "cluster.local"
DEFAULT_PORT = 80
LEASE_TIME = "12h"
BIOS_BOOT_FILE = "undionly.kpxe"
UEFI_BOOT_FILE = "ipxe.efi"
# RFC 4578 client architectures that take ipxe.efi: 7 = EFI BC (x86-64), 9 = EFI x86-64.
UEFI_X64_ARCHES = (7, 9)
IPS_NAME = "ips"
# Set on every configured host's dhcp-hosts line; the /boot.ipxe rule skips hosts that have it.
CONFIGURED_TAG = "configured"
INIT_PATH = "/cgi-bin/boot_manager.sh?cmd=init&mac="

_IFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_PORT = re.compile(r"[0-9]{1,5}")
# Characters a path may have in dnsmasq.conf: no comma (a field separator), no space, no `#`.
_CONF_PATH = re.compile(r"/[A-Za-z0-9._/+@%~=:-]*")
# One field of a dhcp-hosts, dhcp-opts or dns-hosts line: no separator, quote, `#` or control.
_FIELD = re.compile(r"[A-Za-z0-9._:/?&=-]+")


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
    def base_url(self) -> str:
        """Return `http://<DHCP_IP>[:port]`, the port left out when it is 80."""
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return f"http://{self.dhcp_ip}{port}"

    @property
    def boot_url(self) -> str:
        """Return the URL DHCP hands to iPXE clients: `http://<DHCP_IP>[:port]/boot.ipxe`."""
        return f"{self.base_url}/boot.ipxe"

    def init_url(self, mac: str) -> str:
        """Return the URL DHCP hands a configured host's iPXE: its own `cmd=init`."""
        return f"{self.base_url}{INIT_PATH}{colon_mac(normalize_mac(mac))}"

    def in_dynamic_range(self, ip: IPv4Address) -> bool:
        """Return True when `ip` lies in DHCP_RANGE_START..DHCP_RANGE_END (not the static pool)."""
        return self.range_start <= ip <= self.range_end


@dataclass(frozen=True)
class Reservation:
    """One host's fixed address: its MAC (12 hex digits), IP and, when set, its HOSTNAME."""

    mac: str
    ip: IPv4Address
    hostname: str | None

    @property
    def configured(self) -> bool:
        """Return True when the host has HOSTNAME and IP: DHCP sends its iPXE straight to init."""
        return self.hostname is not None

    @property
    def tag(self) -> str:
        """Return the host's own dnsmasq tag, `mac<12 hex digits>`."""
        return f"mac{normalize_mac(self.mac)}"


@dataclass(frozen=True)
class ConfPaths:
    """The absolute paths dnsmasq.conf refers to."""

    dhcp_hosts: Path
    dhcp_opts: Path
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
    """Return `dhcp-hosts` (dhcp-hostsfile): one `mac[,set:configured,set:mac<mac12>],ip
    [,hostname]` line per reservation, the tags on configured hosts' lines only."""
    lines = [_line(",", [colon_mac(r.mac), *_tags(r), str(r.ip),
                         *([r.hostname] if r.hostname else [])]) for r in entries]
    return "".join(lines)


def render_dhcp_opts(entries: Iterable[Reservation], net: ProvisioningNetwork) -> str:
    """Return `dhcp-opts` (dhcp-optsfile): for each configured host, option 67 (bootfile-name)
    naming its own `cmd=init` URL, sent to its iPXE (tag ipxe) only."""
    lines = [_line(",", ["tag:ipxe", f"tag:{r.tag}", "option:bootfile-name", net.init_url(r.mac)])
             for r in entries if r.configured]
    return _OPTS_HEADER + "".join(lines)


def render_dns_hosts(entries: Iterable[Reservation], net: ProvisioningNetwork) -> str:
    """Return `dns-hosts` (addn-hosts): `ip hostname hostname.domain`, the IPS as `ips` first."""
    lines = [_line(" ", [str(net.dhcp_ip), IPS_NAME, f"{IPS_NAME}.{net.domain}"])]
    lines += [_line(" ", [str(r.ip), r.hostname, f"{r.hostname}.{net.domain}"])
              for r in entries if r.hostname]
    return "".join(lines)


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
# DNS_DOMAIN, HPS_PORT) and render again. dhcp-hosts, dhcp-opts and dns-hosts are re-read on
# SIGHUP; this file only when dnsmasq restarts.

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
dhcp-optsfile={p["dhcp_opts"]}
dhcp-leasefile={p["leasefile"]}

# TFTP: the iPXE binaries for clients that are not iPXE yet.
enable-tftp
tftp-root={p["tftp_root"]}

# Boot: iPXE (option 175) gets the bootstrap script; others get iPXE for their firmware.
# A configured host's iPXE gets its own cmd=init URL from dhcp-opts instead (a dhcp-boot that
# matches would win over that option 67, hence tag:!{CONFIGURED_TAG}).
dhcp-match=set:ipxe,175
{uefi}
dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_BOOT_FILE}
dhcp-boot=tag:!ipxe,tag:efi64,{UEFI_BOOT_FILE}
dhcp-boot=tag:ipxe,tag:!{CONFIGURED_TAG},{net.boot_url}
"""


_OPTS_HEADER = """\
# Option 67 for configured hosts' iPXE: written by `hps-api render-services`; do not edit.
# Re-read by dnsmasq on SIGHUP, with dhcp-hosts, whose lines set the tags named here.
"""


def _tags(entry: Reservation) -> list[str]:
    """Return the `set:` fields of a reservation's dhcp-hosts line (none unless configured)."""
    return [f"set:{CONFIGURED_TAG}", f"set:{entry.tag}"] if entry.configured else []


def _line(separator: str, items: list[str]) -> str:
    """Return one line of a file dnsmasq reads; InvalidInput for a field that is not one field.

    Every value was parsed or matched before it got here; this check keeps a future caller's
    unchecked value from turning into a second field or a second line.
    """
    for item in items:
        if not _FIELD.fullmatch(item):
            raise InvalidInput(f"{item[:60]!r} cannot be written into dnsmasq's files")
    return separator.join(items) + "\n"



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

"""dnsmasq's files for one cluster (docs/boot.md): `dnsmasq.conf`, `dhcp-hosts`, `dns-hosts`.

Pure: the cluster's network (`hps_api.model.network.ClusterNetwork`, which parses and checks the
cluster keys) and host records in, text out. Every value is parsed (`ipaddress`) or matched
against a strict pattern before it is written, because dnsmasq reads these files as its own
configuration: a stray comma or newline in a value would be a new option. A bad cluster key is
the network model's InvalidInput, raised before anything is written; a bad host record only
leaves that host out (`reservations`).

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
from ipaddress import IPv4Address
from pathlib import Path

from hps_api.errors import InvalidInput
from hps_api.ids import HOSTNAME_PATTERN, colon_mac, normalize_mac
from hps_api.model.network import ClusterNetwork

LEASE_TIME = "12h"
BIOS_BOOT_FILE = "undionly.kpxe"
UEFI_BOOT_FILE = "ipxe.efi"
# RFC 4578 client architectures that take ipxe.efi: 7 = EFI BC (x86-64), 9 = EFI x86-64.
UEFI_X64_ARCHES = (7, 9)
IPS_NAME = "ips"

# Characters a path may have in dnsmasq.conf: no comma (a field separator), no space, no `#`.
_CONF_PATH = re.compile(r"/[A-Za-z0-9._/+@%~=:-]*")


@dataclass(frozen=True)
class Reservation:
    """One host's fixed address: its MAC (12 hex digits), IP and, when set, its HOSTNAME."""

    mac: str
    ip: IPv4Address
    hostname: str | None


@dataclass(frozen=True)
class Skipped:
    """A host left out of `dhcp-hosts` and `dns-hosts`: its MAC and why (naming the key)."""

    mac: str
    reason: str

    def __str__(self) -> str:
        return f"host {self.mac}: {self.reason}"


@dataclass(frozen=True)
class ConfPaths:
    """The absolute paths dnsmasq.conf refers to."""

    dhcp_hosts: Path
    dns_hosts: Path
    tftp_root: Path
    leasefile: Path
    pidfile: Path
    #: dnsmasq's own log (HPS_LOG_DIR/dnsmasq.log): every DHCPACK, read by the timeline
    logfile: Path


def reservations(hosts: Iterable[tuple[str, Mapping[str, str]]],
                 net: ClusterNetwork) -> tuple[list[Reservation], list[Skipped]]:
    """Return the fixed addresses of the hosts that have a usable IP, sorted by address, and the
    hosts left out, each with the reason.

    `hosts` are (mac, record) pairs; a host without IP has no reservation and is not left out.
    A host is left out for an IP that is not a free address of the network (malformed, outside
    it, its network, broadcast or IPS address), a malformed HOSTNAME, or an IP or HOSTNAME
    another host holds: dnsmasq would silently serve only one of them. Of hosts sharing an IP
    or a HOSTNAME, the one with the lowest MAC keeps it and the others are left out. The
    records alone decide (the journal is history, not the truth), so every render keeps the
    same host whatever order the records are listed in. A host left out holds nothing: the next
    host with its IP or HOSTNAME may keep it.
    """
    found: list[Reservation] = []
    skipped: list[Skipped] = []
    ips: dict[IPv4Address, str] = {}
    names: dict[str, str] = {}
    for mac, record in sorted(hosts, key=_by_mac):
        if not record.get("IP"):
            continue
        try:
            entry = _reservation(mac, record, net)
            _check_unclaimed(entry, ips, names)
        except InvalidInput as err:
            skipped.append(Skipped(_by_mac((mac, record)), str(err)))
            continue
        ips[entry.ip] = entry.mac
        if entry.hostname is not None:
            names[entry.hostname] = entry.mac
        found.append(entry)
    return sorted(found, key=lambda r: r.ip), skipped


def render_dhcp_hosts(entries: Iterable[Reservation]) -> str:
    """Return `dhcp-hosts`: one `mac,ip[,hostname]` line per reservation (dhcp-hostsfile)."""
    lines = [",".join([colon_mac(r.mac), str(r.ip), *([r.hostname] if r.hostname else [])])
             for r in entries]
    return "".join(f"{line}\n" for line in lines)


def render_dns_hosts(entries: Iterable[Reservation], net: ClusterNetwork) -> str:
    """Return `dns-hosts` (addn-hosts): `ip hostname hostname.domain`, the IPS as `ips` first."""
    lines = [f"{net.dhcp_ip} {IPS_NAME} {IPS_NAME}.{net.domain}"]
    lines += [f"{r.ip} {r.hostname} {r.hostname}.{net.domain}" for r in entries if r.hostname]
    return "".join(f"{line}\n" for line in lines)


def render_conf(net: ClusterNetwork, paths: ConfPaths, cluster: str) -> str:
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

# Log to a file hps-api reads: each DHCPACK is a host's "dhcp" phase (docs/timeline.md).
# dnsmasq opens it before dropping to its user and makes it that user's; `kill -USR2` reopens
# it after a rotation.
log-facility={p["logfile"]}

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

# Boot: firmware that is not iPXE yet gets iPXE for its kind; iPXE (option 175) is sent
# straight to init: it fills in its MAC and identity itself (the ${{...}} settings), one HTTP
# request and one DHCP exchange per boot. As option 67, not the BOOTP file field: that holds
# 128 bytes, the URL is longer. /boot.ipxe, which chains the same URL, still answers.
dhcp-match=set:ipxe,175
{uefi}
dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_BOOT_FILE}
dhcp-boot=tag:!ipxe,tag:efi64,{UEFI_BOOT_FILE}
dhcp-option-force=tag:ipxe,option:bootfile-name,{net.init_url}
"""


def _by_mac(host: tuple[str, Mapping[str, str]]) -> str:
    """Return the host's MAC as 12 hex digits (as given when it is no MAC)."""
    try:
        return normalize_mac(host[0])
    except InvalidInput:
        return host[0]


def _reservation(mac: str, record: Mapping[str, str], net: ClusterNetwork) -> Reservation:
    """Return the host's reservation; InvalidInput saying why its record gives none."""
    return Reservation(normalize_mac(mac), _host_ip(record["IP"], net),
                       _hostname(record.get("HOSTNAME") or None, net.domain))


def _check_unclaimed(entry: Reservation, ips: Mapping[IPv4Address, str],
                     names: Mapping[str, str]) -> None:
    """Raise InvalidInput naming the host that already holds the entry's IP or HOSTNAME."""
    if entry.ip in ips:
        raise InvalidInput(f"IP {entry.ip} is also host {ips[entry.ip]}'s (the lowest MAC "
                           "keeps it)")
    if entry.hostname is not None and entry.hostname in names:
        raise InvalidInput(f"HOSTNAME {entry.hostname} is also host {names[entry.hostname]}'s "
                           "(the lowest MAC keeps it)")


def _host_ip(text: str, net: ClusterNetwork) -> IPv4Address:
    try:
        ip = ipaddress.IPv4Address(text.strip())
    except ValueError:
        raise InvalidInput(f"IP={text[:40]!r} is not an IPv4 address") from None
    if not net.is_host_address(ip) or ip == net.ips:
        raise InvalidInput(f"IP {ip} is not a free address of {net.network}")
    return ip


def _hostname(text: str | None, domain: str) -> str | None:
    if text is None:
        return None
    name = text.strip().lower()
    if not HOSTNAME_PATTERN.fullmatch(name) or name == IPS_NAME:
        raise InvalidInput(f"HOSTNAME={text[:70]!r} is not a host name "
                           f"(one DNS label under {domain}, not {IPS_NAME!r})")
    return name


def _conf_path(path: Path, field: str) -> str:
    text = os.path.abspath(path)
    if not _CONF_PATH.fullmatch(text):
        raise InvalidInput(f"{field} path {text[:80]!r} has characters dnsmasq.conf cannot hold "
                           "(use letters, digits and ._/+@%~=:-)")
    return text

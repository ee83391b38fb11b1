"""Who is calling (docs/api.md §4): MAC from the neighbour table or DHCP leases, admin rights.

The kernel neighbour table (`/proc/net/arp`) is read directly on every lookup: it is an
in-memory file, and a subprocess (`ip neigh`, `ping`) per request would cost more than the whole
answer. It cannot be cached by mtime (procfs has none that moves), so the lookup searches the
text for the address rather than parsing every line. IPv6 neighbours have no procfs file: they
come from one rtnetlink dump (`hps_api.net.netlink`). IPv4 callers reaching a dual-stack socket
(`--bind [::]:80`) arrive as `::ffff:10.0.0.5` and are looked up as `10.0.0.5`. The dnsmasq
lease file is re-read only when its mtime changes.

`mac=` names the caller only when nothing verifies it, and never for an on-link caller: a host
on one of the IPS's own networks must be in the neighbour table (the kernel could not answer it
otherwise), so an on-link caller no source knows is refused rather than believed. On-link is
read from the routing tables beside the neighbour table (`route`, `ipv6_route` in /proc/net),
re-read at most every ROUTES_TTL seconds. Tests point HPS_ARP_TABLE into a directory of their
own, which then also holds `route`, `ipv6_route` and `ipv6_neigh` (`ip -6 neigh` lines).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hps_api.errors import Forbidden, InvalidInput
from hps_api.ids import normalize_mac
from hps_api.net.netlink import ipv6_neighbours

PROC_NET = Path("/proc/net")
ROUTES_TTL = 5.0
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

log = logging.getLogger("hps_api.net.identity")


@dataclass(frozen=True)
class Caller:
    """The caller of one request: address, MAC (verified or claimed), admin right."""

    ip: str
    mac: str | None
    verified: bool
    admin: bool
    account: str | None = None

    @property
    def label(self) -> str:
        """Return what log lines call this caller: its MAC, else its address."""
        return self.mac or self.ip

    @property
    def actor(self) -> str:
        """Return the journal actor: `admin:<account>` for a logged-in admin, `admin:<ip>` for
        the IPS's own tools and the bearer token, `api:<mac or ip>` for a host."""
        if self.admin:
            return f"admin:{self.account or self.ip}"
        return f"api:{self.label}"


class Neighbours:
    """MAC lookups by IP address from the neighbour table, then the DHCP lease file."""

    def __init__(self, arp_table: Path, leases: Path) -> None:
        self.arp_table = arp_table
        self.leases = leases
        self.net_dir = arp_table.parent
        self._lease_stamp: tuple[float, int] | None = None
        self._lease_map: dict[str, str] = {}
        self._ipv6: Callable[[], dict[str, str]] = (
            ipv6_neighbours if self.net_dir == PROC_NET else self._ipv6_from_file)
        self._routes_read = -ROUTES_TTL
        self._on_link: tuple[Network, ...] = ()

    def mac_of(self, ip: str) -> str | None:
        """Return the verified MAC of an address, or None when no source knows it."""
        if ":" in ip:
            return self._from_ipv6(ip) or self._from_leases().get(ip)
        return self._from_arp(ip) or self._from_leases().get(ip)

    def is_on_link(self, ip: str) -> bool:
        """Return True when the address lies on a network the IPS is directly attached to."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        now = time.monotonic()
        if now - self._routes_read > ROUTES_TTL:
            self._on_link = (*_ipv4_on_link(self.net_dir / "route"),
                             *_ipv6_on_link(self.net_dir / "ipv6_route"))
            self._routes_read = now
        return any(address in network for network in self._on_link
                   if network.version == address.version)

    def _from_ipv6(self, ip: str) -> str | None:
        try:
            wanted = str(ipaddress.IPv6Address(ip.split("%", 1)[0]))
            table = self._ipv6()
        except (ValueError, OSError):
            return None
        found = table.get(wanted)
        return _mac_or_none(found) if found else None

    def _ipv6_from_file(self) -> dict[str, str]:
        """`ip -6 neigh` lines (`ADDR dev IF lladdr MAC STATE`) from a fixture file."""
        found: dict[str, str] = {}
        try:
            lines = (self.net_dir / "ipv6_neigh").read_text(encoding="ascii").splitlines()
        except OSError:
            return found
        for line in lines:
            fields = line.split()
            if "lladdr" in fields and fields[-1] not in ("FAILED", "INCOMPLETE"):
                found[str(ipaddress.IPv6Address(fields[0]))] = fields[fields.index("lladdr") + 1]
        return found

    def _from_arp(self, ip: str) -> str | None:
        try:
            table = self.arp_table.read_bytes()
        except OSError:
            return None
        # Find the address's lines instead of decoding and splitting the whole table: with a
        # rack booting it holds every host, and this runs for every request from the LAN.
        needle = f"\n{ip} ".encode("ascii", "replace")
        start = table.find(needle)
        while start != -1:
            end = table.find(b"\n", start + 1)
            line = table[start + 1:end if end != -1 else len(table)]
            fields = line.decode("ascii", "replace").split()
            # IP address, HW type, Flags, HW address, Mask, Device; flags 0x0 = incomplete
            if len(fields) >= 4 and fields[0] == ip and fields[2] != "0x0":
                return _mac_or_none(fields[3])
            start = table.find(needle, start + 1)
        return None

    def _from_leases(self) -> dict[str, str]:
        try:
            st = self.leases.stat()
        except OSError:
            return {}
        stamp = (st.st_mtime, st.st_size)
        if stamp != self._lease_stamp:
            self._lease_map = _parse_leases(self.leases)
            self._lease_stamp = stamp
        return self._lease_map


def identify(
    remote_ip: str,
    claimed_mac: str | None,
    authorization: str,
    neighbours: Neighbours,
    admin_token: str,
    *,
    local_admin: bool = True,
    account: str | None = None,
) -> Caller:
    """Return the Caller; raise Forbidden when `mac=` contradicts a verified MAC.

    `mac=` is trusted only when no verified source knows the caller and the caller is not on a
    local network (routed networks, loopback). Admins (loopback unless `local_admin` is False,
    `Authorization: Bearer <HPS_ADMIN_TOKEN>`, or a logged-in `account`) may name any host.
    """
    claimed = normalize_mac(claimed_mac) if claimed_mac else None
    by_token = bearer_matches(authorization, admin_token)
    admin = (local_admin and is_loopback(remote_ip)) or by_token or account is not None
    verified = None if is_loopback(remote_ip) else neighbours.mac_of(remote_ip)
    if verified and claimed and claimed != verified and not admin:
        log.warning("spoofing attempt: %s (verified %s) claimed mac=%s", remote_ip, verified,
                    claimed)
        raise Forbidden(f"mac={claimed} does not match the caller's verified MAC")
    if claimed and not verified and not admin and neighbours.is_on_link(remote_ip):
        log.warning("unverifiable on-link caller %s claimed mac=%s", remote_ip, claimed)
        raise Forbidden(f"mac={claimed} refused: {remote_ip} is on a local network but in no "
                        "neighbour table or lease")
    if admin and claimed:
        return Caller(remote_ip, claimed, verified == claimed, True, account)
    return Caller(remote_ip, verified or claimed, verified is not None, admin, account)


def client_address(remote_addr: str, forwarded_for: str, trusted_proxies: tuple[str, ...]) -> str:
    """Return the caller's address, taking `X-Forwarded-For` only from a trusted proxy;
    IPv4-mapped IPv6 (`::ffff:10.0.0.5`, a dual-stack socket) is returned as IPv4."""
    remote = unmapped(remote_addr)
    if remote in trusted_proxies and forwarded_for:
        return unmapped(forwarded_for.split(",")[-1].strip())
    return remote


@lru_cache(maxsize=4096)
def unmapped(ip: str) -> str:
    """Return an IPv4-mapped IPv6 address as its IPv4 address; anything else unchanged."""
    if not ip.lower().startswith("::ffff:"):
        return ip
    try:
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
    except ValueError:
        return ip
    return str(mapped) if mapped else ip


@lru_cache(maxsize=4096)
def is_loopback(ip: str) -> bool:
    """Return True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def bearer_matches(authorization: str, token: str) -> bool:
    """Return True when the header carries exactly the admin token (constant-time compare)."""
    scheme, _, given = authorization.partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _parse_leases(path: Path) -> dict[str, str]:
    """Return ip -> mac from a dnsmasq lease file (`expiry mac ip hostname client-id`)."""
    found: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            mac = _mac_or_none(fields[1])
            if mac:
                found[fields[2]] = mac
    return found


def _ipv4_on_link(path: Path) -> list[Network]:
    """Networks of /proc/net/route entries that have no gateway (directly attached)."""
    found: list[Network] = []
    try:
        lines = path.read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] == "lo" or int(fields[2], 16) != 0:
            continue
        with_mask = f"{_le_ipv4(fields[1])}/{_le_ipv4(fields[7])}"
        try:
            found.append(ipaddress.IPv4Network(with_mask, strict=False))
        except ValueError:
            continue
    return found


def _ipv6_on_link(path: Path) -> list[Network]:
    """Networks of /proc/net/ipv6_route entries that are up, have no next hop and are neither
    local, rejecting, multicast nor on `lo`."""
    found: list[Network] = []
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[9] == "lo" or int(fields[4], 16) != 0:
            continue
        flags = int(fields[8], 16)
        if not flags & 0x1 or flags & (0x2 | 0x200 | 0x80000000):
            continue
        try:
            network = ipaddress.IPv6Network((int(fields[0], 16), int(fields[1], 16)))
        except ValueError:
            continue
        if not network.is_multicast:
            found.append(network)
    return found


def _le_ipv4(text: str) -> str:
    return str(ipaddress.IPv4Address(int(text, 16).to_bytes(4, "little")))


def _mac_or_none(text: str) -> str | None:
    try:
        return normalize_mac(text)
    except InvalidInput:
        return None

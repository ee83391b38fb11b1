"""Who is calling (api.md §4): MAC from the neighbour table or DHCP leases, admin rights.

The kernel neighbour table (`/proc/net/arp`) is read directly on every lookup: it is an
in-memory file, and a subprocess (`ip neigh`, `ping`) per request would cost more than the whole
answer. It cannot be cached by mtime (procfs has none that moves), so the lookup searches the
text for the address rather than parsing every line. The dnsmasq lease file is re-read only when
its mtime changes.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hps_api.errors import Forbidden, InvalidInput
from hps_api.ids import normalize_mac

log = logging.getLogger("hps_api.identity")


@dataclass(frozen=True)
class Caller:
    """The caller of one request: address, MAC (verified or claimed), admin right."""

    ip: str
    mac: str | None
    verified: bool
    admin: bool

    @property
    def label(self) -> str:
        """Return what log lines call this caller: its MAC, else its address."""
        return self.mac or self.ip


class Neighbours:
    """MAC lookups by IP address from the neighbour table, then the DHCP lease file."""

    def __init__(self, arp_table: Path, leases: Path) -> None:
        self.arp_table = arp_table
        self.leases = leases
        self._lease_stamp: tuple[float, int] | None = None
        self._lease_map: dict[str, str] = {}

    def mac_of(self, ip: str) -> str | None:
        """Return the verified MAC of an address, or None when no source knows it."""
        return self._from_arp(ip) or self._from_leases().get(ip)

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
) -> Caller:
    """Return the Caller; raise Forbidden when `mac=` contradicts a verified MAC.

    `mac=` is trusted only when no verified source knows the caller (routed networks, loopback).
    Admins (loopback unless `local_admin` is False, or `Authorization: Bearer
    <HPS_ADMIN_TOKEN>`) may name any host.
    """
    claimed = normalize_mac(claimed_mac) if claimed_mac else None
    admin = (local_admin and is_loopback(remote_ip)) or bearer_matches(authorization, admin_token)
    verified = None if is_loopback(remote_ip) else neighbours.mac_of(remote_ip)
    if verified and claimed and claimed != verified and not admin:
        log.warning("spoofing attempt: %s (verified %s) claimed mac=%s", remote_ip, verified,
                    claimed)
        raise Forbidden(f"mac={claimed} does not match the caller's verified MAC")
    if admin and claimed:
        return Caller(remote_ip, claimed, verified == claimed, True)
    return Caller(remote_ip, verified or claimed, verified is not None, admin)


def client_address(remote_addr: str, forwarded_for: str, trusted_proxies: tuple[str, ...]) -> str:
    """Return the caller's address, taking `X-Forwarded-For` only from a trusted proxy."""
    if remote_addr in trusted_proxies and forwarded_for:
        return forwarded_for.split(",")[-1].strip()
    return remote_addr


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


def _mac_or_none(text: str) -> str | None:
    try:
        return normalize_mac(text)
    except InvalidInput:
        return None

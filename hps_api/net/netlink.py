"""The kernel's IPv6 neighbour table, read over rtnetlink (what `ip -6 neigh` shows).

IPv4 neighbours are in `/proc/net/arp`; IPv6 ones have no procfs file, so they are asked for
with one RTM_GETNEIGH dump on a NETLINK_ROUTE socket: a system call, no subprocess. Only
entries resolved on the wire or set by an operator count (reachable, stale, delay, probe,
permanent): an incomplete or failed entry names no MAC, and a noarp one (multicast, loopback)
names a made-up one.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

RTM_NEWNEIGH = 28
RTM_GETNEIGH = 30
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NDA_DST = 1
NDA_LLADDR = 2
#: reachable, stale, delay, probe, permanent (not incomplete 0x01, failed 0x20, noarp 0x40)
NUD_RESOLVED = 0x02 | 0x04 | 0x08 | 0x10 | 0x80
_HEADER = struct.Struct("=LHHLL")  # nlmsghdr: length, type, flags, sequence, port id
_NDMSG = struct.Struct("=BxxxiHBB")  # ndmsg: family, ifindex, state, flags, type
_ATTR = struct.Struct("=HH")  # rtattr: length, type
RECEIVE_BYTES = 65536
TIMEOUT = 1.0


def ipv6_neighbours() -> dict[str, str]:
    """Return {compressed IPv6 address: MAC as `aa:bb:...`} for every valid neighbour entry.

    Raises OSError when the kernel cannot be asked (no netlink in this sandbox).
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(TIMEOUT)
        sock.bind((0, 0))
        sequence = int.from_bytes(os.urandom(4), "little")
        request = _NDMSG.pack(socket.AF_INET6, 0, 0, 0, 0)
        sock.send(_HEADER.pack(_HEADER.size + len(request), RTM_GETNEIGH,
                               NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + request)
        found: dict[str, str] = {}
        while True:
            data = sock.recv(RECEIVE_BYTES)
            if _parse(data, sequence, found):
                return found


def _parse(data: bytes, sequence: int, found: dict[str, str]) -> bool:
    """Add the entries of one netlink datagram to `found`; True once the dump is complete."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, seq, _port = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            return True
        if seq == sequence:
            if kind == NLMSG_DONE:
                return True
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                if code:
                    raise OSError(-code, os.strerror(-code))
                return True
            if kind == RTM_NEWNEIGH:
                entry = _entry(data[offset + _HEADER.size:offset + length])
                if entry:
                    found[entry[0]] = entry[1]
        offset += _align(length)
    return False


def _entry(payload: bytes) -> tuple[str, str] | None:
    """Return (address, MAC) of one RTM_NEWNEIGH payload, or None when it names no MAC."""
    if len(payload) < _NDMSG.size:
        return None
    family, _ifindex, state, _flags, _type = _NDMSG.unpack_from(payload)
    if family != socket.AF_INET6 or not state & NUD_RESOLVED:
        return None
    attrs = _attributes(payload[_NDMSG.size:])
    dst, lladdr = attrs.get(NDA_DST), attrs.get(NDA_LLADDR)
    if dst is None or len(dst) != 16 or lladdr is None or len(lladdr) != 6 or not any(lladdr):
        return None
    return str(ipaddress.IPv6Address(dst)), ":".join(f"{b:02x}" for b in lladdr)


def _attributes(data: bytes) -> dict[int, bytes]:
    attrs: dict[int, bytes] = {}
    offset = 0
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        attrs[kind] = data[offset + _ATTR.size:offset + length]
        offset += _align(length)
    return attrs


def _align(length: int) -> int:
    return (length + 3) & ~3

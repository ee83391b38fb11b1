"""Wake-on-LAN: a magic packet (6 x 0xFF, then the MAC 16 times) in one UDP datagram to the
broadcast address of the host's network, port 9 by default. It can only power a host on, and
nothing comes back: the power state stays unknown."""

from __future__ import annotations

import socket

from hps_api.power.base import UNKNOWN, BootOverride, PowerError
from hps_api.power.bmc import Bmc, split_host_port


def magic_packet(mac12: str) -> bytes:
    """Return the 102-byte magic packet that wakes the NIC with this MAC."""
    return b"\xff" * 6 + bytes.fromhex(mac12) * 16


def send(mac12: str, address: str) -> None:
    """Send the magic packet for `mac12` to a checked `BROADCAST:PORT`; PowerError on a socket
    error (no route, network down)."""
    host, port = split_host_port(address)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.sendto(magic_packet(mac12), (host, port))
    except OSError as err:
        raise PowerError(f"cannot send the Wake-on-LAN packet to {address}: "
                         f"{err.strerror or err}", retry=True) from None


class WakeOnLan:
    """A host woken by its NIC: power on only, no read-back."""

    def __init__(self, bmc: Bmc, mac12: str) -> None:
        self.bmc = bmc
        self.mac12 = mac12

    def power_state(self) -> str:
        """Return UNKNOWN: Wake-on-LAN has no way to ask."""
        return UNKNOWN

    def power_on(self) -> None:
        """Send the magic packet."""
        send(self.mac12, self.bmc.address)

    def power_off(self) -> None:
        """Refuse: Wake-on-LAN only wakes."""
        raise _only_on()

    def power_cycle(self) -> None:
        """Refuse: Wake-on-LAN only wakes."""
        raise _only_on()

    def pxe_once(self) -> None:
        """Refuse: the boot order is the firmware's."""
        raise _only_on()

    def boot_override(self) -> BootOverride:
        """Return 'not reported'."""
        return BootOverride("none", once=False, reported=False)

    def close(self) -> None:
        """Nothing to close."""


def _only_on() -> PowerError:
    return PowerError("Wake-on-LAN can only power a host on", retry=False)

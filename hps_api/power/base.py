"""What every power driver is: the actions, the power states, one interface and its errors.

A driver is opened for one host and one action (`hps_api.power.drivers.connect`), used, closed.
Drivers raise PowerError only; `retry` tells the operation whether trying again can help (a
refused connection can, a wrong password cannot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hps_api.errors import HpsError

STATUS, ON, OFF, CYCLE, PXE_ONCE = "status", "on", "off", "cycle", "pxe-once"
#: every action, in the order people read them
ACTIONS = (STATUS, ON, OFF, CYCLE, PXE_ONCE)
#: the actions that change something (journaled); status only reads
CHANGING = frozenset({ON, OFF, CYCLE, PXE_ONCE})
#: what a driver reports; UNKNOWN when it cannot read the state back (Wake-on-LAN)
POWER_ON, POWER_OFF, UNKNOWN = "on", "off", "unknown"


class PowerError(HpsError):
    """The BMC did not do what was asked; `retry`: trying again may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True)
class BootOverride:
    """The one-time boot device a BMC reports: `device` (pxe, hdd, ...) and whether it holds
    for the next boot only (`once`); `reported` False when the BMC reports no valid override."""

    device: str
    once: bool
    reported: bool = True


class Driver(Protocol):
    """One BMC session: read the power state, change it, set a one-time network boot."""

    def power_state(self) -> str:
        """Return POWER_ON, POWER_OFF or UNKNOWN."""

    def power_on(self) -> None:
        """Ask the BMC to power the host on (returns once the BMC accepted it)."""

    def power_off(self) -> None:
        """Ask the BMC to cut the power (not a graceful shutdown)."""

    def power_cycle(self) -> None:
        """Ask the BMC to power-cycle a host that is on."""

    def pxe_once(self) -> None:
        """Make the next boot, and only the next, a network boot."""

    def boot_override(self) -> BootOverride:
        """Return the boot override the BMC reports now."""

    def close(self) -> None:
        """End the session (never raises)."""

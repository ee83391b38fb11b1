"""IPMI over LAN (IPMI 2.0, RMCP+) through pyghmi (the library behind OpenStack's virtualbmc).

One session per BMC while actions use it: pyghmi shares a session between the `Command`s of
one process that name the same BMC and credentials, so the session is logged out when the last
action using it in this process ends (`_Sessions`), never under another action's feet. The
credentials go to pyghmi as bytes: with `str` ones pyghmi 1.6 never forgets a session it is
logging in, and the next `Command` for that BMC waits for ever. Power off is "chassis power
down" (not soft), cycle is "chassis power cycle", and pxe-once sets the boot flags to PXE for
the next boot only. pyghmi bounds every exchange itself (about 6 s when nothing answers), so a
BMC that is away never holds a thread for long.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from hps_api.power.base import POWER_OFF, POWER_ON, UNKNOWN, BootOverride, PowerError
from hps_api.power.bmc import Bmc, split_host_port

_CHASSIS_NETFN, _CHASSIS_CONTROL, _POWER_CYCLE = 0x00, 0x02, 0x02
_BAD_LOGIN = ("password", "unauthorized", "insufficient privilege", "username")


class _Sessions:
    """How many actions of this process use each BMC session, so the last one logs it out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users: dict[tuple[str, str], int] = {}
        self.locks: dict[tuple[str, str], threading.Lock] = {}

    def of(self, key: tuple[str, str]) -> threading.Lock:
        with self.lock:
            return self.locks.setdefault(key, threading.Lock())

    def count(self, key: tuple[str, str], change: int) -> int:
        with self.lock:
            self.users[key] = self.users.get(key, 0) + change
            if self.users[key] <= 0:
                del self.users[key]
                return 0
            return self.users[key]


_SESSIONS = _Sessions()


class Ipmi:
    """The chassis behind one IPMI BMC."""

    def __init__(self, bmc: Bmc, timeout: float) -> None:
        from pyghmi.ipmi import command  # type: ignore[import-untyped]

        self.bmc = bmc
        host, port = split_host_port(bmc.address)
        self._key = (bmc.address, bmc.username)
        with _SESSIONS.of(self._key):
            _SESSIONS.count(self._key, +1)
            try:
                self._cmd: Any = self._call(lambda: command.Command(
                    bmc=host, userid=bmc.username.encode(), password=bmc.password.encode(),
                    port=port))
            except BaseException:
                _SESSIONS.count(self._key, -1)
                raise

    def power_state(self) -> str:
        """Return the chassis power state."""
        answer = self._call(self._cmd.get_power)
        return {"on": POWER_ON, "off": POWER_OFF}.get(answer.get("powerstate"), UNKNOWN)

    def power_on(self) -> None:
        """Chassis control: power up."""
        self._call(lambda: self._cmd.set_power("on", wait=False))

    def power_off(self) -> None:
        """Chassis control: power down (immediate)."""
        self._call(lambda: self._cmd.set_power("off", wait=False))

    def power_cycle(self) -> None:
        """Chassis control: power cycle."""
        answer = self._call(lambda: self._cmd.raw_command(
            netfn=_CHASSIS_NETFN, command=_CHASSIS_CONTROL, data=(_POWER_CYCLE,)))
        if answer.get("error"):
            raise PowerError(f"the IPMI BMC at {self.bmc.address} refused power cycle: "
                             f"{answer['error']}", retry=False)

    def pxe_once(self) -> None:
        """Set system boot options: boot flags valid, this boot only, device PXE."""
        self._call(lambda: self._cmd.set_bootdev("network", persist=False))

    def boot_override(self) -> BootOverride:
        """Return the boot flags; `reported` False when the BMC marks them not valid."""
        answer = self._call(self._cmd.get_bootdev)
        device = str(answer.get("bootdev", "default"))
        if device == "default":
            return BootOverride("none", once=False, reported=False)
        return BootOverride("pxe" if device == "network" else device,
                            once=not answer.get("persistent", True))

    def close(self) -> None:
        """Log the session out when no other action of this process uses it (errors ignored:
        the BMC ends idle sessions itself)."""
        with _SESSIONS.of(self._key):
            if _SESSIONS.count(self._key, -1) == 0:
                with contextlib.suppress(Exception):  # a failed logout must not fail the action
                    self._cmd.ipmi_session.logout()

    def _call(self, call: Any) -> Any:
        try:
            return call()
        except PowerError:
            raise
        except Exception as err:
            raise explain(self.bmc, err) from None


def explain(bmc: Bmc, err: Exception) -> PowerError:
    """Return the PowerError for an exception pyghmi raised."""
    where = f"the IPMI BMC at {bmc.address}"
    text = " ".join(str(err).split())[:200]
    if any(word in text.lower() for word in _BAD_LOGIN):
        return PowerError(f"{where} refused the username or password ({text})", retry=False)
    if not text or text == "None" or "timeout" in text.lower() or isinstance(err, OSError):
        detail = f": {text}" if text and text != "None" else ""
        return PowerError(f"no answer from {where} (timed out{detail})", retry=True)
    return PowerError(f"{where} failed: {text}", retry=True)

"""Redfish through sushy (the library OpenStack Ironic uses).

One `Sushy` root per action with HTTP basic authentication: no Redfish session is opened, so
none is left behind on a BMC with few session slots when an action is cut short. sushy's own
retries are turned off (one try per request; `hps_api.ops.power` retries with backoff), and it
never fetches message registries from the Internet: errors are explained from the status code.
Power off is `ForceOff` and cycle `ForceRestart` (an operator reinstalling a host wants it now;
a graceful shutdown waits on the OS, which may be the thing that is broken).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from hps_api.power.base import POWER_OFF, POWER_ON, UNKNOWN, BootOverride, PowerError
from hps_api.power.bmc import Bmc


class _Offline:
    """sushy's `public_connector`, for message registries on the Internet: never used here."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("hps-api does not fetch Redfish message registries")


class Redfish:
    """A Redfish ComputerSystem behind one BMC."""

    def __init__(self, bmc: Bmc, timeout: float) -> None:
        import sushy  # type: ignore[import-untyped]

        self.bmc = bmc
        self._sushy = sushy
        with translated(bmc):
            root = sushy.Sushy(
                bmc.address, auth=sushy.auth.BasicAuth(bmc.username, bmc.password),
                verify=not bmc.insecure, public_connector=_Offline(), read_timeout=timeout,
                connect_timeout=timeout, server_side_retries=1, server_side_retries_delay=0.1)
            # the Systems link of the service root: no request beyond the root's own
            systems = str(getattr(root, "_systems_path", None) or "/redfish/v1/Systems")
            path = f"{systems.rstrip('/')}/{bmc.system_id}" if bmc.system_id else None
            self._system = root.get_system(path)
        self._fresh = True  # just read: the first question needs no second GET

    def power_state(self) -> str:
        """Return the ComputerSystem's PowerState (PoweringOn counts as off, PoweringOff as on:
        neither is done yet)."""
        with translated(self.bmc):
            self._refresh()
            state = getattr(self._system.power_state, "value", None)
        return {"on": POWER_ON, "poweringoff": POWER_ON, "off": POWER_OFF,
                "poweringon": POWER_OFF}.get(str(state).lower(), UNKNOWN)

    def power_on(self) -> None:
        """POST ComputerSystem.Reset `On`."""
        self._reset(self._sushy.RESET_ON)

    def power_off(self) -> None:
        """POST ComputerSystem.Reset `ForceOff`."""
        self._reset(self._sushy.RESET_FORCE_OFF)

    def power_cycle(self) -> None:
        """POST ComputerSystem.Reset `ForceRestart`."""
        self._reset(self._sushy.RESET_FORCE_RESTART)

    def pxe_once(self) -> None:
        """PATCH Boot: BootSourceOverrideTarget `Pxe`, BootSourceOverrideEnabled `Once`."""
        with translated(self.bmc):
            self._system.set_system_boot_options(self._sushy.BOOT_SOURCE_TARGET_PXE,
                                                 enabled=self._sushy.BOOT_SOURCE_ENABLED_ONCE)
        self._fresh = False

    def boot_override(self) -> BootOverride:
        """Return BootSourceOverrideTarget and whether BootSourceOverrideEnabled is `Once`."""
        with translated(self.bmc):
            self._refresh()
            boot = self._system.boot
            target = str(getattr(boot.target, "value", boot.target) or "none").lower()
            enabled = str(getattr(boot.enabled, "value", boot.enabled) or "").lower()
        return BootOverride(target, enabled == "once", enabled != "disabled")

    def close(self) -> None:
        """Nothing to end: basic authentication opens no session."""

    def _reset(self, kind: str) -> None:
        with translated(self.bmc):
            self._system.reset_system(kind)
        self._fresh = False

    def _refresh(self) -> None:
        if not self._fresh:
            self._system.refresh(force=True)
        self._fresh = False


@contextlib.contextmanager
def translated(bmc: Bmc) -> Iterator[None]:
    """Turn sushy's exceptions into PowerError with a message for people."""
    try:
        yield
    except PowerError:
        raise
    except Exception as err:
        raise explain(bmc, err) from None


def explain(bmc: Bmc, err: Exception) -> PowerError:
    """Return the PowerError for an exception sushy (or requests under it) raised."""
    from sushy import exceptions as sx

    where = f"the Redfish BMC at {bmc.address}"
    if isinstance(err, sx.AccessError):
        return PowerError(f"{where} refused the username or password (HTTP "
                          f"{err.status_code})", retry=False)
    if isinstance(err, sx.ConnectionError):
        reason = _reason(str(err))
        return PowerError(f"cannot reach {where}: {reason}", retry=True)
    if isinstance(err, sx.ResourceNotFoundError):
        return PowerError(f"{where} has no system {bmc.system_id or '(default)'} (HTTP 404)",
                          retry=False)
    if isinstance(err, sx.UnknownDefaultError):
        return PowerError(f"{where} has several systems (or none): set its system id "
                          "(hps-api bmc set ... --system-id ID)", retry=False)
    if isinstance(err, sx.ServerSideError):
        return PowerError(f"{where} failed (HTTP {err.status_code}): {_reason(str(err))}",
                          retry=True)
    if isinstance(err, sx.HTTPError):
        return PowerError(f"{where} refused the request (HTTP {err.status_code}): "
                          f"{_reason(str(err))}", retry=False)
    return PowerError(f"{where} answered something unexpected: {_reason(str(err))}", retry=True)


def _reason(text: str) -> str:
    """Return the useful end of a sushy/requests message, on one line, bounded."""
    for marker in ("Error: ", "returned code "):
        if marker in text:
            text = text.split(marker, 1)[1]
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return " ".join(text.split())[:200]

"""Open the driver of a host's BMC (sushy and pyghmi are imported only when used)."""

from __future__ import annotations

from collections.abc import Callable

from hps_api.power.base import CYCLE, OFF, PXE_ONCE, Driver
from hps_api.power.bmc import IPMI, REDFISH, WOL, Bmc

#: the actions each driver cannot do, and why (refused before anything is sent)
UNSUPPORTED = {WOL: frozenset({OFF, CYCLE, PXE_ONCE})}
#: connect(bmc, mac12, timeout) -> an open Driver; tests may pass another
Connect = Callable[[Bmc, str, float], Driver]


def connect(bmc: Bmc, mac12: str, timeout: float) -> Driver:
    """Return an open driver for the BMC; PowerError when it cannot be reached or refuses."""
    if bmc.driver == REDFISH:
        from hps_api.power.redfish import Redfish

        return Redfish(bmc, timeout)
    if bmc.driver == IPMI:
        from hps_api.power.ipmi import Ipmi

        return Ipmi(bmc, timeout)
    assert bmc.driver == WOL
    from hps_api.power.wol import WakeOnLan

    return WakeOnLan(bmc, mac12)


def supports(bmc: Bmc, action: str) -> bool:
    """Return True when the BMC's driver can carry out the action."""
    return action not in UNSUPPORTED.get(bmc.driver, frozenset())

"""Host states, their named groups, and which changes a node may report (docs/boot.md, "Host
states").

"Which states install?" is answered here and nowhere else: code that tests a host's STATE
against several states names one of the groups below.
"""

from __future__ import annotations

from collections.abc import Iterable

from hps_api.errors import Conflict, InvalidInput

STATES = (
    "UNCONFIGURED", "CONFIGURED", "INSTALLING", "INSTALLED", "INSTALL_FAILED",
    "NETWORK_BOOT", "REINSTALL", "UNMANAGED", "FAILED",
)
#: the bash-era name of a host that boots from its disk: read (imported records), never written
LEGACY_DISK_BOOT = "DISK_BOOT"

#: the host waits at its main menu for an operator, and polls `init` again
MENU_STATES = frozenset({"UNCONFIGURED", "FAILED", "INSTALL_FAILED"})
#: the next boot provisions the host: the installer (disk types) or the diskless image
PROVISION_STATES = frozenset({"CONFIGURED", "REINSTALL"})
#: the host is sent to the installer or is in it: the states its kickstart is served in
INSTALL_STATES = PROVISION_STATES | {"INSTALLING"}
#: the host boots its installed system from the local disk
BOOT_STATES = frozenset({"INSTALLED", "UNMANAGED", LEGACY_DISK_BOOT})
#: every STATE value the boot decision acts on (anything else: the menu, saying why)
KNOWN_STATES = frozenset(STATES) | BOOT_STATES

#: (from, to) pairs a node may report through set_status
NODE_TRANSITIONS = frozenset({
    ("INSTALLING", "INSTALLED"),
    ("INSTALLING", "INSTALL_FAILED"),
    ("NETWORK_BOOT", "NETWORK_BOOT"),
})
#: states an operator may move any host to in the ordinary course
OPERATOR_TARGETS = frozenset({"UNCONFIGURED", "UNMANAGED"})
#: (from, to) moves an operator makes in the ordinary course, besides OPERATOR_TARGETS; any
#: other move an admin makes is forced (hps_api.ops.hosts.set_state records it as such)
OPERATOR_TRANSITIONS = frozenset(
    {(old, "REINSTALL") for old in ("INSTALLED", "INSTALL_FAILED", "FAILED", "CONFIGURED",
                                    "NETWORK_BOOT", "REINSTALL", "INSTALLING")}
    | {("UNMANAGED", "INSTALLED"), ("INSTALLING", "INSTALL_FAILED"),
       ("INSTALL_FAILED", "CONFIGURED"), ("FAILED", "CONFIGURED")})


def is_ordinary(current: str | None, new: str, *, admin: bool) -> bool:
    """Return True when the state table has the move (for an admin: the operator's moves too);
    False for a move only an admin may force."""
    if current == new or (current, new) in NODE_TRANSITIONS:
        return True
    return admin and (new in OPERATOR_TARGETS or (current, new) in OPERATOR_TRANSITIONS)


def in_order(states: Iterable[str]) -> tuple[str, ...]:
    """Return the states in the order of STATES (others last, by name): for messages."""
    rank = {state: position for position, state in enumerate(STATES)}
    return tuple(sorted(states, key=lambda state: (rank.get(state, len(STATES)), state)))


def parse_state(text: str) -> str:
    """Return the state upper-cased; InvalidInput when it is not one of STATES."""
    state = text.strip().upper()
    if state not in STATES:
        raise InvalidInput(f"unknown state {text!r} (one of: {', '.join(STATES)})")
    return state


def check_transition(current: str | None, new: str, *, admin: bool) -> None:
    """Raise Conflict unless a node (or an admin) may move a host from `current` to `new`."""
    if admin or (current, new) in NODE_TRANSITIONS:
        return
    raise Conflict(f"illegal state transition {current or '(none)'} -> {new}")

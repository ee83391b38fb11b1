"""Host states and which changes a node may report (docs/boot.md, "Host states")."""

from __future__ import annotations

from hps_api.errors import Conflict, InvalidInput

STATES = (
    "UNCONFIGURED", "CONFIGURED", "INSTALLING", "INSTALLED", "INSTALL_FAILED",
    "NETWORK_BOOT", "REINSTALL", "UNMANAGED", "FAILED",
)

#: (from, to) pairs a node may report through set_status; admins may set anything.
NODE_TRANSITIONS = frozenset({
    ("INSTALLING", "INSTALLED"),
    ("INSTALLING", "INSTALL_FAILED"),
    ("NETWORK_BOOT", "NETWORK_BOOT"),
})


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

"""Who owns each key of a host record, and so what a node may write about itself.

Every key of a host record has one owner. The IPS's operations own the keys that decide a host's
identity, boot and addresses; they change only through those operations (an admin may still set
them directly, and is journalled as doing so). Everything else is the host's own: its free keys,
which a node writes with `host_variable` (`virtualization_status`, `storage0_interface`, notes).

The rule for a node is an allow-rule on the owner, not a list of forbidden names: a node writes
a key only when `owner_of(key)` is NODE. A key becomes managed by being given an owner here,
which is the one place that says so. Sensitive names (`HPS_SENSITIVE_KEYS`) and names shells
give a meaning to (`ids.SHELL_SPECIAL`) are never a node's to write either.
"""

from __future__ import annotations

import re
from enum import Enum

from hps_api.ids import is_sensitive, is_shell_special


class Owner(Enum):
    """The operation that writes a key."""

    NODE = "the host itself (host_variable)"
    STATE = "the state table (set_status)"
    BOOT = "the boot flow (init, config_host, the menus, an admin)"
    ALLOCATION = "address allocation (config_host, host_allocate_networks)"
    AUDIT = "the hardware audit (host_audit)"
    SELFTEST = "the self-test report (selftest_report)"
    STORAGE = "the storage operations (storage_report, hps-api storage)"
    STORE = "the store's own bookkeeping"


OWNED = {
    "STATE": Owner.STATE,
    **dict.fromkeys(("TYPE", "PROFILE", "HOSTNAME", "OS_ID", "ARCH", "RESCUE", "FORCE_INSTALL",
                     "INSTALL_ATTEMPTS", "PLATFORM", "SMBIOS_UUID", "SERIAL", "MANUFACTURER",
                     "PRODUCT", "KERNEL_ARGS", "LOCAL_BOOT", "TCH_ROOT"), Owner.BOOT),
    **dict.fromkeys(("IP", "NETMASK", "GATEWAY"), Owner.ALLOCATION),
    **dict.fromkeys(("UPDATED", "CREATED", "FIRST_SEEN", "LAST_SEEN", "BOOT_SESSION",
                     "BOOT_TIME", "KEY_SPELLINGS"), Owner.STORE),
}
OWNED_PATTERNS = (
    (re.compile(r"STORAGE\d+_IP"), Owner.ALLOCATION),
    (re.compile(r"ISCSI_ROOT_\d+"), Owner.ALLOCATION),
    (re.compile(r"STORAGE_(?:JOB|VOLUME)_\w+"), Owner.STORAGE),
    (re.compile(r"HW_\w*"), Owner.AUDIT),
    (re.compile(r"SELFTEST_\w*"), Owner.SELFTEST),
)


def owner_of(key: str) -> Owner:
    """Return the owner of an upper-case key (NODE for a free key)."""
    found = OWNED.get(key)
    if found:
        return found
    for pattern, owner in OWNED_PATTERNS:
        if pattern.fullmatch(key):
            return owner
    return Owner.NODE


RELEASABLE = re.compile(r"STORAGE\d+_IP")


def node_write_refusal(key: str, sensitive: tuple[str, ...],
                       value: str | None = "") -> str | None:
    """Return why a node may not write `key` (to `value`; None: unset) itself, or None.

    One exception to ownership: a node may release its own storage address (unset it, or set
    it empty as old nodes did when they took a storage interface down); a release can never
    hand one address to two hosts.
    """
    owner = owner_of(key)
    if RELEASABLE.fullmatch(key) and not value:
        return None
    if owner is not Owner.NODE:
        return f"Key '{key}' is managed by {owner.value}: a host cannot set it"
    if is_sensitive(key, sensitive):
        return f"Key '{key}' is sensitive: admin only"
    if is_shell_special(key):
        return f"Key '{key}' is a name shells give a meaning to: refused"
    return None

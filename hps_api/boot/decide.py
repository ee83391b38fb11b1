"""The boot decision: a pure function from a host's record (and its cluster) to an iPXE answer.

`decide(inputs)` does no I/O. It returns a Decision: the template under `ipxe/` and its
context, a sentence saying why, and the changes `init` must write to the host record. The
explain endpoint shows exactly this, without writing anything.

A state that cannot be acted on (no usable TYPE, PROFILE or OS, an unknown STATE) never
answers an error to retry forever: the host falls back to its main menu, which says why, in a
menu state (docs/boot.md, "When a state cannot be acted on").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from hps_api.model import storage
from hps_api.model.catalog import HostType
from hps_api.model.states import (
    BOOT_STATES,
    INSTALL_STATES,
    KNOWN_STATES,
    MENU_STATES,
    PROVISION_STATES,
)

#: host keys a disk install cannot go without: the kickstart names the host and fixes its address
INSTALLER_KEYS = ("HOSTNAME", "IP")
DEFAULT_MENU_TIMEOUT = 60
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class BootInputs:
    """Everything `decide` looks at; built by the caller from the store and the request.

    `os_problem` says why `os` is None when the caller knows (a missing record, a cluster key
    naming a retired OS...). `missing_files` are the OS's files (its kernel, its initrd) the
    caller looked for and did not find, as the `/distros/...` paths the host would fetch.
    """

    mac: str
    host: Mapping[str, str]
    cluster: Mapping[str, str]
    types: Mapping[str, HostType]
    os_id: str | None
    os: Mapping[str, str] | None
    base_url: str
    session: str
    now: str
    arch: str = "x86_64"
    registered: bool = True
    os_problem: str = ""
    missing_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What to answer (template + context), why, and what to write to the host record."""

    action: str
    template: str
    context: Mapping[str, Any]
    reason: str
    changes: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Blocker:
    """Why a host cannot be installed or network-booted now, and the menu state it waits in."""

    message: str
    state: str


def decide(inputs: BootInputs) -> Decision:
    """Return the boot decision for a host at `init` (docs/boot.md, "Host states")."""
    host = inputs.host
    state = host_state(inputs)
    if host.get("RESCUE", "").lower() == "yes":
        return rescue(inputs, "RESCUE=yes: the rescue image, whatever the state")
    if state not in KNOWN_STATES:
        blocked = install_blocker(inputs)
        return cannot_go_on(inputs, Blocker(f"state {state!r} is not one hps-api knows",
                                            blocked.state if blocked else "FAILED"))
    if host.get("FORCE_INSTALL", "").lower() == "yes" and host.get("TYPE") and \
            state not in INSTALL_STATES | {"NETWORK_BOOT"}:
        return install(inputs, f"FORCE_INSTALL=yes: install again from {state}",
                       {"FORCE_INSTALL": None})
    if state in PROVISION_STATES:
        return install(inputs, f"{state}: unattended install of {host.get('TYPE', '?')}")
    if state == "INSTALLING":
        return installing(inputs)
    if state == "NETWORK_BOOT":
        return network_boot(inputs)
    if state in BOOT_STATES:
        return local_boot(inputs, f"{state}: boot from the local disk")
    reason = "new host: registered as UNCONFIGURED" if not inputs.registered else \
        f"{state}: waiting for an operator (menu, then poll)"
    return main_menu(inputs, reason)


def os_files_matter(host: Mapping[str, str]) -> bool:
    """Return False when `decide` answers this host alike whether its OS's kernel and initrd
    are there or not (`BootInputs.missing_files`): a rescue, or the local boot of a host in a
    boot state that is not forced to install again. `init` then spares looking for them, one
    `stat` each, at every boot of an installed host."""
    if host.get("RESCUE", "").lower() == "yes":
        return False
    state = (host.get("STATE") or "UNCONFIGURED").strip().upper()
    forced = host.get("FORCE_INSTALL", "").lower() == "yes" and bool(host.get("TYPE"))
    return state not in BOOT_STATES or forced


def host_state(inputs: BootInputs) -> str:
    """Return the host's STATE upper-cased (UNCONFIGURED when unset or empty)."""
    return (inputs.host.get("STATE") or "UNCONFIGURED").strip().upper()


def install_blocker(inputs: BootInputs) -> Blocker | None:
    """Return why the host's TYPE, PROFILE and OS cannot be installed now, or None if they can."""
    found = _usable_type(inputs)
    return found if isinstance(found, Blocker) else None


def cannot_go_on(inputs: BootInputs, blocked: Blocker) -> Decision:
    """Return the main menu saying why the host's state cannot be acted on; the host waits
    there in `blocked.state` (a menu state) instead of retrying what cannot work."""
    state = host_state(inputs)
    changes: dict[str, str | None] = {}
    if state != blocked.state:
        changes["STATE"] = blocked.state
    if inputs.host.get("INSTALL_ATTEMPTS") is not None:
        changes["INSTALL_ATTEMPTS"] = None
    menu = main_menu(inputs, f"{state} cannot go on ({blocked.message}): main menu in "
                     f"{blocked.state}", notice=f"{state}: {blocked.message}", state=blocked.state)
    return replace(menu, changes=changes)


def main_menu(inputs: BootInputs, reason: str, *, notice: str | None = None,
              state: str | None = None) -> Decision:
    """Return the main menu, which polls `init` again after MENU_TIMEOUT.

    It offers only what can succeed: the operator actions only in a menu state (elsewhere
    process_menu_item refuses them), reinstall and a forced install only when the host's type
    can be installed. `notice` (default: why the host's type cannot be installed, if it has
    one) is shown above the items.
    """
    shown = state or host_state(inputs)
    blocked = install_blocker(inputs)
    if notice is None:
        notice = blocked.message if blocked and inputs.host.get("TYPE") else ""
    return Decision("menu", "menu-main.ipxe", {
        **_common(inputs), "state": shown, "notice": notice, "actions": shown in MENU_STATES,
        "can_install": blocked is None,
        "force_install": inputs.host.get("FORCE_INSTALL", "").lower() == "yes",
        "timeout_ms": _menu_timeout(inputs) * 1000}, reason)


def install_menu(inputs: BootInputs, offered: list[tuple[str, str]], reason: str, *,
                 notes: list[str] | None = None, notice: str = "") -> Decision:
    """Return the install menu: `offered` is a list of (item id, label); `notes` say why other
    types are not offered; `notice` is shown first."""
    return Decision("menu", "menu-install.ipxe", {
        **_common(inputs), "items": offered, "notes": notes or [], "notice": notice,
        "timeout_ms": _menu_timeout(inputs) * 1000}, reason)


def install(inputs: BootInputs, reason: str,
            extra: Mapping[str, str | None] | None = None) -> Decision:
    """Return the installer (disk types) or the diskless boot (network types) for the host,
    or the main menu saying why it cannot be done; a thin host with an iSCSI root boots it
    (`sanboot_target`)."""
    target = sanboot_target(inputs)
    if target is not None:
        return sanboot(inputs, target, f"{reason}: boot the iSCSI root {target.iqn}", extra)
    kind = _usable_type(inputs)
    if isinstance(kind, Blocker):
        return cannot_go_on(inputs, kind)
    changes: dict[str, str | None] = dict(extra or {})
    if kind.diskless:
        if host_state(inputs) != "NETWORK_BOOT":
            changes["STATE"] = "NETWORK_BOOT"
        return Decision("netboot", "netboot.ipxe", _boot_context(inputs), reason, changes)
    if host_state(inputs) != "INSTALLING":
        changes.update({"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"})
    return Decision("install", "installer.ipxe", _boot_context(inputs), reason, changes)


def installing(inputs: BootInputs) -> Decision:
    """Return the installer again, or INSTALL_FAILED after INSTALL_MAX_ATTEMPTS boots."""
    blocked = install_blocker(inputs)
    if blocked is not None:
        return cannot_go_on(inputs, blocked)
    attempts = _int(inputs.host.get("INSTALL_ATTEMPTS"), 1)
    limit = _int(inputs.cluster.get("INSTALL_MAX_ATTEMPTS"), DEFAULT_MAX_ATTEMPTS)
    if attempts >= limit:
        failed = error(inputs, f"install failed: {attempts} boots without a report "
                       "(INSTALL_MAX_ATTEMPTS); choose an action in the menu",
                       f"INSTALLING for {attempts} boots: giving up")
        return replace(failed, changes={"STATE": "INSTALL_FAILED"})
    decision = install(inputs, f"INSTALLING: attempt {attempts + 1} of {limit}")
    if decision.action != "install":
        return decision
    return replace(decision, changes={"INSTALL_ATTEMPTS": str(attempts + 1)})


def network_boot(inputs: BootInputs) -> Decision:
    """Return the diskless boot; a disk type in NETWORK_BOOT waits at the menu instead of
    having its disk installed behind the operator's back."""
    kind = _usable_type(inputs)
    if isinstance(kind, HostType) and not kind.diskless:
        return cannot_go_on(inputs, Blocker(
            f"NETWORK_BOOT is for diskless types and {kind.name} installs to disk: "
            "choose 'Reinstall' to install it", "FAILED"))
    return install(inputs, "NETWORK_BOOT: diskless boot")


def sanboot_target(inputs: BootInputs) -> storage.IscsiRoot | None:
    """Return the iSCSI root a diskless host boots from, or None for the ordinary diskless
    boot: the host's type is diskless, TCH_ROOT (the host's, else the cluster's) is `iscsi`
    and its ISCSI_ROOT_0 names a target (docs/storage-hosts.md, "When a thin host sanboots")."""
    kind = inputs.types.get(inputs.host.get("TYPE", "").strip().upper())
    if kind is None or not kind.diskless:
        return None
    if not storage.boots_from_iscsi(inputs.host, inputs.cluster):
        return None
    return storage.root_of(inputs.host, 0)


def sanboot(inputs: BootInputs, target: storage.IscsiRoot, reason: str,
            extra: Mapping[str, str | None] | None = None) -> Decision:
    """Return the boot from an iSCSI target: iPXE logs in as the host's own initiator (the
    target admits only that name) and boots LUN 1; the host is in NETWORK_BOOT, as a diskless
    host is."""
    changes: dict[str, str | None] = dict(extra or {})
    if host_state(inputs) != "NETWORK_BOOT":
        changes["STATE"] = "NETWORK_BOOT"
    cluster_name = inputs.cluster.get("NAME", "")
    hostname = inputs.host.get("HOSTNAME", "")
    month = storage.month_of(target.iqn) or inputs.now
    initiator = storage.initiator_iqn(inputs.cluster, cluster_name, hostname, month) \
        if cluster_name and hostname.strip() else ""
    return Decision("sanboot", "sanboot.ipxe", {
        **_common(inputs), "target_ip": target.ip, "target_port": target.port,
        "lun": storage.BOOT_LUN, "iqn": target.iqn, "initiator_iqn": initiator}, reason,
        changes)


def local_boot(inputs: BootInputs, reason: str) -> Decision:
    """Return the local boot (`exit` to the firmware, or `sanboot` of the first disk)."""
    how = inputs.cluster.get("LOCAL_BOOT", "exit").lower()
    return Decision("localboot", "localboot.ipxe", {**_common(inputs),
                    "method": "sanboot" if how == "sanboot" else "exit"}, reason)


def rescue(inputs: BootInputs, reason: str) -> Decision:
    """Return the rescue image boot."""
    return Decision("rescue", "rescue.ipxe", _common(inputs), reason)


def error(inputs: BootInputs, message: str, reason: str) -> Decision:
    """Return an error script: show the message, wait, poll `init` again."""
    return Decision("error", "error.ipxe", {"message": message, "retry_seconds": 30,
                    "base_url": inputs.base_url, "mac": inputs.mac}, reason)


def _usable_type(inputs: BootInputs) -> HostType | Blocker:
    """Return the host's type when it can be installed now (type, profile and OS all
    usable), else why not: a TYPE/PROFILE problem waits as UNCONFIGURED, an OS problem as
    INSTALL_FAILED."""
    name = inputs.host.get("TYPE", "").strip()
    if not name:
        return Blocker("this host has no type yet: choose one in the install menu",
                       "UNCONFIGURED")
    kind = inputs.types.get(name.upper())
    if kind is None:
        return Blocker(f"host type {name!r} is not known: choose a type in the install menu",
                       "UNCONFIGURED")
    profile = (inputs.host.get("PROFILE") or "DEFAULT").strip()
    if profile.upper() not in kind.profiles:
        return Blocker(f"{kind.name} has no profile {profile!r}: choose again in the install "
                       "menu", "UNCONFIGURED")
    if inputs.os is None or inputs.os_id is None:
        return Blocker(inputs.os_problem or no_os_message(kind.name, inputs.arch),
                       "INSTALL_FAILED")
    missing = [key for key in INSTALLER_KEYS if not inputs.host.get(key, "").strip()]
    if missing and not kind.diskless:
        return Blocker(f"{' and '.join(missing)} not set, and the installer needs "
                       f"{'them' if len(missing) > 1 else 'it'}: configure the host as "
                       f"{kind.name} (it is given a name and address) or set "
                       f"{' and '.join(missing)}", "UNCONFIGURED")
    if inputs.missing_files:
        return Blocker(missing_files_message(inputs.os_id, inputs.missing_files),
                       "INSTALL_FAILED")
    return kind


def missing_files_message(os_id: str, missing: tuple[str, ...]) -> str:
    """Return the message for an OS whose kernel or initrd is not there to be served."""
    return (f"OS {os_id}: {' and '.join(missing)} not found under HPS_RESOURCES_DIR: copy "
            f"{'them' if len(missing) > 1 else 'it'} there, or correct the OS record's "
            "REPO_PATH, KERNEL and INITRD")


def no_os_message(type_name: str, arch: str) -> str:
    """Return the message for a type with no OS on an architecture."""
    return (f"no OS for {type_name} on {arch}: register one with 'hps-api os add' "
            f"or set OS_{type_name}")


def _common(inputs: BootInputs) -> dict[str, Any]:
    host = inputs.host
    return {
        "base_url": inputs.base_url, "mac": inputs.mac, "session": inputs.session,
        "hostname": host.get("HOSTNAME", ""), "state": host_state(inputs),
        "host_type": host.get("TYPE", ""), "profile": host.get("PROFILE", ""),
    }


def _boot_context(inputs: BootInputs) -> dict[str, Any]:
    """Return the context of installer/netboot templates: kernel, initrd and arguments."""
    os = inputs.os or {}
    repo = f"{inputs.base_url}/distros/{os.get('REPO_PATH', '').strip('/')}"
    cluster, host = inputs.cluster, inputs.host
    return {
        **_common(inputs),
        "os_id": inputs.os_id, "repo_url": repo,
        "kernel_url": f"{repo}/{os.get('KERNEL', 'vmlinuz')}",
        "initrd_url": f"{repo}/{os.get('INITRD', 'initrd.img')}",
        "ip": host.get("IP", ""), "netmask": host.get("NETMASK", ""),
        "gateway": cluster.get("GATEWAY", cluster.get("DHCP_IP", "")),
        "ips_ip": cluster.get("DHCP_IP", ""),
        "syslog": f"{cluster.get('DHCP_IP', '')}:{cluster.get('SYSLOG_PORT', '514')}",
        "os_args": os.get("KERNEL_ARGS", ""),
    }


def _menu_timeout(inputs: BootInputs) -> int:
    return max(5, min(3600, _int(inputs.cluster.get("MENU_TIMEOUT"), DEFAULT_MENU_TIMEOUT)))


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default

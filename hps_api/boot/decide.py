"""The boot decision: a pure function from a host's record (and its cluster) to an iPXE answer.

`decide(inputs)` does no I/O. It returns a Decision: the template under `ipxe/` and its
context, a sentence saying why, and the changes `init` must write to the host record. The
explain endpoint shows exactly this, without writing anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hps_api.boot.catalog import HostType

MENU_STATES = frozenset({"UNCONFIGURED", "FAILED", "INSTALL_FAILED"})
INSTALL_STATES = frozenset({"CONFIGURED", "REINSTALL"})
LOCAL_STATES = frozenset({"INSTALLED", "UNMANAGED"})
DEFAULT_MENU_TIMEOUT = 60
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class BootInputs:
    """Everything `decide` looks at; built by the caller from the store and the request."""

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


@dataclass(frozen=True)
class Decision:
    """What to answer (template + context), why, and what to write to the host record."""

    action: str
    template: str
    context: Mapping[str, Any]
    reason: str
    changes: Mapping[str, str | None] = field(default_factory=dict)


def decide(inputs: BootInputs) -> Decision:
    """Return the boot decision for a host at `init` (boot.md, "Host states")."""
    host = inputs.host
    state = host.get("STATE", "UNCONFIGURED")
    if host.get("RESCUE", "").lower() == "yes":
        return rescue(inputs, "RESCUE=yes: the rescue image, whatever the state")
    if host.get("FORCE_INSTALL", "").lower() == "yes" and host.get("TYPE") and \
            state not in INSTALL_STATES | {"INSTALLING", "NETWORK_BOOT"}:
        return install(inputs, f"FORCE_INSTALL=yes: install again from {state}",
                       {"FORCE_INSTALL": None})
    if state in INSTALL_STATES:
        return install(inputs, f"{state}: unattended install of {host.get('TYPE', '?')}")
    if state == "INSTALLING":
        return installing(inputs)
    if state == "NETWORK_BOOT":
        return install(inputs, "NETWORK_BOOT: diskless boot")
    if state in LOCAL_STATES:
        return local_boot(inputs, f"{state}: boot from the local disk")
    reason = "new host: registered as UNCONFIGURED" if not inputs.registered else \
        f"{state}: waiting for an operator (menu, then poll)"
    return main_menu(inputs, reason)


def main_menu(inputs: BootInputs, reason: str) -> Decision:
    """Return the main menu, which polls `init` again after MENU_TIMEOUT."""
    return Decision("menu", "menu-main.ipxe", {**_common(inputs),
                    "timeout_ms": _menu_timeout(inputs) * 1000}, reason)


def install_menu(inputs: BootInputs, offered: list[tuple[str, str]], reason: str) -> Decision:
    """Return the install menu: `offered` is a list of (item id, label)."""
    return Decision("menu", "menu-install.ipxe", {**_common(inputs), "items": offered,
                    "timeout_ms": _menu_timeout(inputs) * 1000}, reason)


def install(inputs: BootInputs, reason: str,
            extra: Mapping[str, str | None] | None = None) -> Decision:
    """Return the installer (disk types) or the diskless boot (network types) for the host."""
    kind = inputs.types.get(inputs.host.get("TYPE", "").upper())
    if kind is None:
        return error(inputs, f"host type {inputs.host.get('TYPE', '(none)')!r} is not known",
                     "no usable TYPE")
    if inputs.os is None or inputs.os_id is None:
        return error(inputs, f"no OS for {kind.name} on {inputs.arch}: hps-api os add ...",
                     "no OS resolves for this type and arch")
    changes: dict[str, str | None] = dict(extra or {})
    if kind.diskless:
        if inputs.host.get("STATE") != "NETWORK_BOOT":
            changes["STATE"] = "NETWORK_BOOT"
        return Decision("netboot", "netboot.ipxe", _boot_context(inputs), reason, changes)
    if inputs.host.get("STATE") != "INSTALLING":
        changes.update({"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"})
    return Decision("install", "installer.ipxe", _boot_context(inputs), reason, changes)


def installing(inputs: BootInputs) -> Decision:
    """Return the installer again, or INSTALL_FAILED after INSTALL_MAX_ATTEMPTS boots."""
    attempts = _int(inputs.host.get("INSTALL_ATTEMPTS"), 1)
    limit = _int(inputs.cluster.get("INSTALL_MAX_ATTEMPTS"), DEFAULT_MAX_ATTEMPTS)
    if attempts >= limit:
        failed = error(inputs, f"install failed: {attempts} boots without a report "
                       "(INSTALL_MAX_ATTEMPTS); choose an action in the menu",
                       f"INSTALLING for {attempts} boots: giving up")
        return Decision(failed.action, failed.template, failed.context, failed.reason,
                        {"STATE": "INSTALL_FAILED"})
    decision = install(inputs, f"INSTALLING: attempt {attempts + 1} of {limit}")
    if decision.action != "install":
        return decision
    return Decision(decision.action, decision.template, decision.context, decision.reason,
                    {"INSTALL_ATTEMPTS": str(attempts + 1)})


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


def _common(inputs: BootInputs) -> dict[str, Any]:
    host = inputs.host
    return {
        "base_url": inputs.base_url, "mac": inputs.mac, "session": inputs.session,
        "hostname": host.get("HOSTNAME", ""), "state": host.get("STATE", "UNCONFIGURED"),
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

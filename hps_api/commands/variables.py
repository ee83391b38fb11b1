"""`host_variable`, `cluster_variable`, `os_variable`, `host_get_config`: reading and writing keys.

A host reads and writes only its own record. Through `host_variable` a node may not rewrite the
keys that decide its identity and boot (HOSTNAME, IP, TYPE...): those change through the boot
flow or an admin. STATE goes through the same transition table as `set_status`, so an old
kickstart that reported INSTALLED with `host_variable` keeps working.
"""

from __future__ import annotations

from hps_api.boot.states import parse_state
from hps_api.commands.base import CommandContext, Reply
from hps_api.commands.host_state import change_state
from hps_api.errors import Forbidden
from hps_api.ids import normalize_key
from hps_api.store import RecordId

#: host keys only the boot flow or an admin may write
PROTECTED_HOST_KEYS = frozenset({
    "TYPE", "PROFILE", "HOSTNAME", "IP", "NETMASK", "OS_ID", "ARCH", "RESCUE", "FORCE_INSTALL",
    "UPDATED", "FIRST_SEEN", "LAST_SEEN", "BOOT_SESSION", "BOOT_TIME", "HW_HASH",
})


def host_variable(ctx: CommandContext) -> Reply:
    """Get, set (`value=` present, even empty) or unset (`action=unset`) a key of the caller."""
    name = normalize_key(ctx.param("name"))
    ctx.host_items()
    if ctx.params.get("action", "").lower() == "unset":
        _check_writable(ctx, name)
        ctx.store.unset(ctx.host, name, ctx.actor)
        return Reply(f"{ctx.mac} unset {name}", {"mac": ctx.mac, "key": name, "value": None})
    if "value" in ctx.params:
        return _set_host_key(ctx, name, ctx.params["value"])
    ctx.readable(name)
    value = ctx.store.get(ctx.host, name)
    return Reply(value, {"key": name, "value": value})


def cluster_variable(ctx: CommandContext) -> Reply:
    """Get a non-sensitive key of the active cluster; set one (admins only)."""
    name = normalize_key(ctx.param("name"))
    rid = RecordId.of_cluster(ctx.cluster)
    if "value" in ctx.params:
        ctx.require_admin("setting a cluster key")
        ctx.store.update(rid, {name: ctx.params["value"]}, ctx.actor)
        return Reply(f"cluster set {name} to {ctx.params['value']}",
                     {"cluster": ctx.cluster, "key": name, "value": ctx.params["value"]})
    ctx.readable(name)
    value = ctx.store.get(rid, name)
    return Reply(value, {"key": name, "value": value})


def os_variable(ctx: CommandContext) -> Reply:
    """Get a key of an OS record (`os_id=x86_64:rocky:10`)."""
    rid = RecordId.of_os(ctx.param("os_id"))
    name = normalize_key(ctx.param("name"))
    ctx.readable(name)
    value = ctx.store.get(rid, name)
    return Reply(value, {"os_id": rid.name, "key": name, "value": value})


def host_get_config(ctx: CommandContext) -> Reply:
    """Return the caller's record as `KEY="value"` lines that `eval` reads back exactly."""
    items = ctx.visible(ctx.host_items())
    text = "".join(f'{key}="{shell_escape(value)}"\n' for key, value in items.items())
    return Reply(text, items, raw=True)


def shell_escape(value: str) -> str:
    """Return a value for inside double quotes: `\\`, `"`, `$` and backquote escaped."""
    for ch in ("\\", '"', "$", "`"):
        value = value.replace(ch, "\\" + ch)
    return value


def _set_host_key(ctx: CommandContext, name: str, value: str) -> Reply:
    _check_writable(ctx, name)
    if name == "STATE":
        value = parse_state(value)
        change_state(ctx, value)
    else:
        ctx.store.update(ctx.host, {name: value}, ctx.actor)
    return Reply(f"{ctx.mac} set {name} to {value}", {"mac": ctx.mac, "key": name, "value": value})


def _check_writable(ctx: CommandContext, name: str) -> None:
    if ctx.caller.admin:
        return
    if name in PROTECTED_HOST_KEYS:
        raise Forbidden(f"Key '{name}' is managed by the boot flow: admin only")
    ctx.readable(name)


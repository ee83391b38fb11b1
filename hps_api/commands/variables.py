"""`host_variable`, `cluster_variable`, `os_variable`, `host_get_config`: reading and writing keys.

A host reads and writes only its own record. Keys are case-insensitive and stored upper-case;
when a node writes one in another spelling (old nodes wrote `virtualization_status`), the record
remembers it in KEY_SPELLINGS and `host_get_config` gives the key back under both names, so the
old node's `eval` finds `$virtualization_status` again.

Through `host_variable` a node may not rewrite the keys that decide its identity and boot
(HOSTNAME, IP, TYPE...): those change through the boot flow or an admin. STATE goes through
the same transition table as `set_status`, so an old kickstart that reported INSTALLED with
`host_variable` keeps working.
"""

from __future__ import annotations

from hps_api.commands.base import CommandContext, Reply
from hps_api.commands.host_state import change_state
from hps_api.errors import Conflict, Forbidden, InvalidInput
from hps_api.ids import KEY_SPELLINGS, is_shell_special, normalize_key, respelled, spellings
from hps_api.model.host_keys import node_write_refusal
from hps_api.model.states import parse_state
from hps_api.ops import clusters as cluster_ops
from hps_api.ops import hosts as host_ops
from hps_api.ops.managed import is_managed
from hps_api.ops.services import SERVICE_KEYS
from hps_api.store import RecordId

SPELLING_RETRIES = 5


def host_variable(ctx: CommandContext) -> Reply:
    """Get, set (`value=` present, even empty) or unset (`action=unset`) a key of the caller."""
    written = ctx.param("name")
    name = normalize_key(written)
    items = ctx.host_items()
    if ctx.params.get("action", "").lower() == "unset":
        _check_writable(ctx, name, unset=True)
        if name in items and name in spellings(items.get(KEY_SPELLINGS)):
            _write_spelled(ctx, written, None)
        else:
            host_ops.unset_key(ctx.store, ctx.settings, ctx.host, name, ctx.actor)
        return Reply(f"{ctx.mac} unset {name}", {"mac": ctx.mac, "key": name, "value": None})
    if "value" in ctx.params:
        return _set_host_key(ctx, written, ctx.params["value"])
    ctx.readable(name)
    value = ctx.store.get(ctx.host, name)
    return Reply(value, {"key": name, "value": value})


def cluster_variable(ctx: CommandContext) -> Reply:
    """Get a non-sensitive key of the active cluster; set one (admins only)."""
    name = normalize_key(ctx.param("name"))
    rid = RecordId.of_cluster(ctx.cluster)
    if "value" in ctx.params:
        ctx.require_admin("setting a cluster key")
        cluster_ops.set_key(ctx.store, ctx.settings, ctx.cluster, name, ctx.params["value"],
                            ctx.actor)
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
    """Return the caller's record as `KEY="value"` lines that `eval` reads back exactly.

    A key a node wrote in another spelling follows its upper-case line under that spelling too.
    Names a shell gives a meaning to (PATH, IFS, PS4, ...) are never emitted.
    """
    items = ctx.visible(ctx.host_items())
    spelled = spellings(items.get(KEY_SPELLINGS))
    lines = []
    for key, value in items.items():
        if is_shell_special(key):
            continue  # never handed to an old node's eval, whoever stored it
        lines.append(f'{key}="{shell_escape(value)}"\n')
        if key in spelled:
            lines.append(f'{spelled[key]}="{shell_escape(value)}"\n')
    return Reply("".join(lines), items, raw=True)


def shell_escape(value: str) -> str:
    """Return a value for inside double quotes: `\\`, `"`, `$` and backquote escaped."""
    for ch in ("\\", '"', "$", "`"):
        value = value.replace(ch, "\\" + ch)
    return value


def _set_host_key(ctx: CommandContext, written: str, value: str) -> Reply:
    name = normalize_key(written)
    _check_writable(ctx, name, value=value)
    if name == "STATE":
        value = parse_state(value)
        change_state(ctx, value)
    elif is_managed(name) or name in SERVICE_KEYS:  # an admin's: checked as from every door
        host_ops.set_key(ctx.store, ctx.settings, ctx.host, name, value, ctx.actor)
    else:
        _write_spelled(ctx, written, value)
    return Reply(f"{ctx.mac} set {name} to {value}", {"mac": ctx.mac, "key": name, "value": value})


def _write_spelled(ctx: CommandContext, written: str, value: str | None) -> None:
    """Set a key (None: unset it) and its spelling in KEY_SPELLINGS, in one write.

    KEY_SPELLINGS is read, then written on the condition that it did not change in between
    (another write of the same host may race this one); a lost race is retried.
    """
    name = normalize_key(written)
    for _ in range(SPELLING_RETRIES):
        current = ctx.store.items(ctx.host).get(KEY_SPELLINGS)
        changes = {name: value, KEY_SPELLINGS: respelled(current, written,
                                                          removed=value is None)}
        try:
            ctx.store.update(ctx.host, changes, ctx.actor, expect={KEY_SPELLINGS: current})
            return
        except Conflict:
            continue
    raise Conflict(f"Key '{name}' kept changing: try again")


def _check_writable(ctx: CommandContext, name: str, *, unset: bool = False,
                    value: str | None = None) -> None:
    """A node writes only its own free keys (hps_api.model.host_keys); STATE changes only
    through the state table, so a node can set it (set_status rules) but never unset it."""
    if is_shell_special(name):
        raise InvalidInput(f"Key '{name}' is a name shells give a meaning to: refused")
    if ctx.caller.admin:
        return
    if name == "STATE" and not unset:
        return
    refusal = node_write_refusal(name, ctx.settings.sensitive_keys, None if unset else value)
    if refusal:
        raise Forbidden(refusal)


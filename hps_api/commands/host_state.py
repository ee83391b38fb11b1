"""`determine_state`, `set_status` and `log_message`: a host telling and asking about itself."""

from __future__ import annotations

import logging

from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import NotFound
from hps_api.model.states import parse_state
from hps_api.observe import eventlog
from hps_api.ops import hosts as host_ops


def determine_state(ctx: CommandContext) -> Reply:
    """Return the caller's STATE (`Key 'STATE' not found` when it has none)."""
    state = ctx.host_items().get("STATE")
    if state is None:
        raise NotFound("Key 'STATE' not found")
    return Reply(state, {"mac": ctx.mac, "state": state})


def set_status(ctx: CommandContext) -> Reply:
    """Set STATE if the transition is legal for this caller; answer `<mac> set to <STATE>`."""
    new = parse_state(ctx.param("status"))
    previous = change_state(ctx, new)
    return Reply(f"{ctx.mac} set to {new}", {"mac": ctx.mac, "state": new, "previous": previous})


def change_state(ctx: CommandContext, new: str) -> str | None:
    """Move the caller's host to `new` through the state table (hps_api.ops.hosts.set_state:
    a node only along the table, an admin also by force); return the previous state."""
    current = ctx.host_items().get("STATE")
    host_ops.set_state(ctx.store, ctx.host, new, ctx.actor, admin=ctx.caller.admin,
                       session=ctx.session, client=ctx.negotiated.client.value)
    return current


def log_message(ctx: CommandContext) -> Reply:
    """Append the node's message to the IPS log, tagged with its function; empty answer."""
    message = ctx.param("message")
    function = ctx.params.get("function", "")
    tagged = f"[{function}] {message}" if function else message
    eventlog.event(logging.INFO, tagged, host=ctx.caller.label, session=ctx.session,
                   client=ctx.negotiated.client.value)
    return Reply("", {"logged": True}, raw=True)


"""`init` and `config_host`: a host asking what to do, and being given a type."""

from __future__ import annotations

import logging

from hps_api.boot.decide import os_files_matter
from hps_api.boot.flow import answer, boot_stamps, explain, host_or_none, inputs_for
from hps_api.commands.base import CommandContext, Reply
from hps_api.errors import Conflict
from hps_api.model.states import MENU_STATES
from hps_api.observe import eventlog, metrics
from hps_api.ops import hosts as host_ops
from hps_api.ops import nodes as node_ops


def init(ctx: CommandContext) -> Reply:
    """Register an unknown host, start a boot session, answer the boot decision's script.

    The boot-session stamp alone (a registered host whose decision changes nothing else, e.g.
    an INSTALLED host booting from disk) goes to the host's stamp file (`Store.stamp`): no
    record rewrite, no fsync. A crash can only bring back the previous stamp, and no decision
    reads it (docs/storage.md); a registration or a state change is one durable update.
    """
    host = host_or_none(ctx.store, ctx.host)
    session, stamps = boot_stamps(host, ctx.mac, ctx.params)
    # an installed host's boot does not look for its OS's files (os_files_matter): no stat
    resources_dir = ctx.settings.resources_dir if os_files_matter(host or {}) else None
    decision, script = answer(inputs_for(ctx.store, ctx.cluster, ctx.mac, host,
                                         base_url=ctx.base_url, session=session,
                                         arch=stamps.get("ARCH"),
                                         resources_dir=resources_dir))
    node_ops.record_boot(ctx.store, ctx.host, host is not None, stamps, decision.changes,
                         ctx.actor)
    eventlog.event(logging.INFO, f"init: {decision.action} ({decision.reason})", host=ctx.mac,
                   session=session, client=ctx.negotiated.client.value)
    metrics.count_boot_decision(decision.action)
    return boot_reply(decision_reply_data(ctx, decision, script), script)


def config_host(ctx: CommandContext) -> Reply:
    """Configure the caller as `hosttype` (and `profile`); answer `<mac> configured as <TYPE>`."""
    type_name = ctx.param("hosttype")
    require_console(ctx, "config_host")
    record = host_ops.configure(ctx.store, ctx.settings, ctx.cluster, ctx.mac, type_name,
                                ctx.params.get("profile"), ctx.actor, admin=ctx.caller.admin)
    return Reply(f"{ctx.mac} configured as {record['TYPE']}",
                 {"mac": ctx.mac, "record": ctx.visible(record)})


def require_console(ctx: CommandContext, action: str) -> None:
    """Raise Conflict unless the caller is an admin or the host is at its menu (a booted node
    cannot reconfigure itself)."""
    if ctx.caller.admin:
        return
    state = ((host_or_none(ctx.store, ctx.host) or {}).get("STATE") or "UNCONFIGURED").upper()
    if state not in MENU_STATES:
        raise Conflict(f"{action} is not offered in state {state}")


def decision_reply_data(ctx: CommandContext, decision: object,
                        script: str | None = None) -> dict[str, object]:
    """Return the JSON form of a boot answer (`script`: its script, if already rendered)."""
    from hps_api.boot.decide import Decision

    assert isinstance(decision, Decision)
    return {"mac": ctx.mac, **explain(decision, script)}


def boot_reply(data: dict[str, object], script: str) -> Reply:
    """Return a Reply whose body is an iPXE script for every non-JSON client."""
    return Reply(script, data, raw=True, title="iPXE script")

"""`process_menu_item`: acting on a choice made in an iPXE menu (boot.md, "Menus")."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hps_api import eventlog
from hps_api.boot import decide as d
from hps_api.boot.catalog import load_catalog
from hps_api.boot.configure import configure_host, offered_types
from hps_api.boot.flow import explain, host_or_none, inputs_for, script_of
from hps_api.commands.base import CommandContext, Reply
from hps_api.commands.boot import require_console
from hps_api.errors import NotFound

Action = Callable[[CommandContext, "d.BootInputs"], "d.Decision"]

#: items that change nothing, offered to anyone who sees the menu
VIEW_ITEMS = {"init_menu", "poll", "show_ipxe", "show_host", "show_cluster", "host_install_menu",
              "host_configure_menu", "local_boot", "disk_boot", "reboot", "rescue"}
ALIASES = {"host_configure_menu": "host_install_menu", "disk_boot": "local_boot",
           "poll": "init_menu"}


def process_menu_item(ctx: CommandContext) -> Reply:
    """Act on `menu_item` and answer the next iPXE script."""
    item = ctx.param("menu_item").strip()
    action = _action_for(item)
    if item not in VIEW_ITEMS:
        require_console(ctx, f"menu item {item}")
    inputs = _inputs(ctx)
    decision = action(ctx, inputs)
    eventlog.event(logging.INFO, f"menu {item}: {decision.action} ({decision.reason})",
                   host=ctx.mac, session=ctx.session, client=ctx.negotiated.client.value)
    script = script_of(decision)
    return Reply(script, {"mac": ctx.mac, "item": item, **explain(decision, script)},
                 raw=True, title="iPXE script")


def _action_for(item: str) -> Action:
    name = ALIASES.get(item, item)
    if name in ACTIONS:
        return ACTIONS[name]
    for prefix in ("install_", "boot_"):
        if name.startswith(prefix) and _install_choice(name[len(prefix):]):
            return _install
    raise NotFound(f"Unknown menu item: {item[:64]}")


def _inputs(ctx: CommandContext) -> d.BootInputs:
    host = host_or_none(ctx.store, ctx.host)
    if host is None:
        raise NotFound(f"Host {ctx.mac} not found")
    return inputs_for(ctx.store, ctx.cluster, ctx.mac, host, base_url=ctx.base_url,
                      session=ctx.session or host.get("BOOT_SESSION", ""))


def _decide_and_apply(ctx: CommandContext) -> d.Decision:
    """Return the decision for the host as it is now, with its changes written (as at init)."""
    decision = d.decide(_inputs(ctx))
    if decision.changes:
        ctx.store.update(ctx.host, dict(decision.changes), ctx.actor)
    return decision


def _main(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    return d.main_menu(inputs, "back to the main menu")


def _install_menu(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    items: list[tuple[str, str]] = []
    for kind in offered_types(ctx.store, ctx.cluster):
        items.append((f"install_{kind.name}", f"{kind.name}: {kind.description}"))
        items.extend((f"install_{kind.name}_{p}", f"  {kind.name} with profile {p}")
                     for p in kind.profiles if p != "DEFAULT")
    return d.install_menu(inputs, items, "install menu")


def _show(title: str, source: str) -> Action:
    def show(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        items = ctx.visible(inputs.host if source == "host" else inputs.cluster)
        lines = [f"{key}={value}" for key, value in items.items()]
        return d.Decision("info", "show-info.ipxe", {
            "base_url": inputs.base_url, "mac": inputs.mac, "session": inputs.session,
            "title": title, "lines": lines, "show_ipxe": source == "ipxe"}, title)
    return show


def _set_state(state: str, extra: dict[str, str | None] | None = None) -> Action:
    def act(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        ctx.store.update(ctx.host, {"STATE": state, **(extra or {})}, ctx.actor)
        return _decide_and_apply(ctx)
    return act


def _force(value: str) -> Action:
    def act(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        ctx.store.update(ctx.host, {"FORCE_INSTALL": value}, ctx.actor)
        return d.main_menu(_inputs(ctx), f"FORCE_INSTALL={value}")
    return act


def _install(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    item = ctx.param("menu_item").strip()
    name = item.split("_", 1)[1]
    type_name, _, profile = name.partition("_")
    configure_host(ctx.store, ctx.settings, ctx.cluster, ctx.mac, type_name, profile or None,
                   ctx.actor, admin=ctx.caller.admin)
    return _decide_and_apply(ctx)


def _install_choice(name: str) -> bool:
    type_name, _, profile = name.partition("_")
    kind = load_catalog().get(type_name.upper())
    return kind is not None and (not profile or profile.upper() in kind.profiles)


ACTIONS: dict[str, Action] = {
    "init_menu": _main,
    "host_install_menu": _install_menu,
    "show_host": _show("This host", "host"),
    "show_cluster": _show("The cluster", "cluster"),
    "show_ipxe": _show("iPXE and hardware", "ipxe"),
    "rescue": lambda ctx, inputs: d.rescue(inputs, "rescue chosen in the menu"),
    "local_boot": lambda ctx, inputs: d.local_boot(inputs, "local boot chosen in the menu"),
    "reboot": lambda ctx, inputs: d.Decision("reboot", "reboot.ipxe", {
        "hostname": inputs.host.get("HOSTNAME", ""), "mac": inputs.mac}, "reboot chosen"),
    "unmanage": _set_state("UNMANAGED"),
    "unconfigure": _set_state("UNCONFIGURED", {"TYPE": None, "PROFILE": None, "OS_ID": None,
                                               "INSTALL_ATTEMPTS": None}),
    "force_install_on": _force("yes"),
    "force_install_off": _force("no"),
    "reinstall": _set_state("REINSTALL"),
}

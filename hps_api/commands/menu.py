"""`process_menu_item`: acting on a choice made in an iPXE menu (docs/boot.md, "Menus").

Every id a menu sends, ours or the old system's (docs/boot.md, "Old menu ids"), answers a
script that either acts or says why not and goes back to a menu: never a dead end, never an
error retried forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hps_api.boot import decide as d
from hps_api.boot.configure import storage_ready
from hps_api.boot.flow import explain, host_or_none, inputs_for, resolve_for, script_of
from hps_api.commands.base import CommandContext, Reply
from hps_api.commands.boot import require_console
from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.model.catalog import STORAGE_TYPE, load_catalog
from hps_api.model.states import MENU_STATES
from hps_api.observe import eventlog
from hps_api.ops import hosts as host_ops
from hps_api.ops import nodes as node_ops
from hps_api.store import RecordId, Store

Action = Callable[[CommandContext, "d.BootInputs"], "d.Decision"]

#: items that change nothing, offered to anyone who sees the menu
VIEW_ITEMS = {"init_menu", "show_ipxe", "show_host", "show_cluster", "show_paths",
              "host_install_menu", "local_boot", "reboot", "rescue", "recover_DRH",
              "install_SCH_STORAGESINGLE", "install_SCH_STORAGERAID"}
#: other names of the same item: ours (`poll`) and the old system's
ALIASES = {"host_configure_menu": "host_install_menu", "disk_boot": "local_boot",
           "poll": "init_menu", "boot_NRB_DEFAULT": "rescue"}
ZFS_LAYOUTS = ("ZFS layouts are no longer chosen here: SCH installs the OS on one disk and "
               "leaves the other disks to ZFS. Choose SCH below.")
NO_RECOVERY = ("Recovery from a disaster-recovery host is not available: boot the rescue "
               "image, or install a DRH from the install menu.")


def process_menu_item(ctx: CommandContext) -> Reply:
    """Act on `menu_item` and answer the next iPXE script."""
    item = ctx.param("menu_item").strip()
    name = ALIASES.get(item, item)
    action = _action_for(name)
    if name not in VIEW_ITEMS:
        require_console(ctx, f"menu item {item}")
    decision = action(ctx, _inputs(ctx))
    eventlog.event(logging.INFO, f"menu {item}: {decision.action} ({decision.reason})",
                   host=ctx.mac, session=ctx.session, client=ctx.negotiated.client.value)
    script = script_of(decision)
    return Reply(script, {"mac": ctx.mac, "item": item, **explain(decision, script)},
                 raw=True, title="iPXE script")


def _action_for(name: str) -> Action:
    if name in ACTIONS:
        return ACTIONS[name]
    for prefix in ("install_", "boot_"):
        if name.startswith(prefix) and _install_choice(name[len(prefix):]):
            return _install
    raise NotFound(f"Unknown menu item: {name[:64]}")


def _inputs(ctx: CommandContext) -> d.BootInputs:
    host = host_or_none(ctx.store, ctx.host)
    if host is None:
        raise NotFound(f"Host {ctx.mac} not found")
    return inputs_for(ctx.store, ctx.cluster, ctx.mac, host, base_url=ctx.base_url,
                      session=ctx.session or host.get("BOOT_SESSION", ""),
                      resources_dir=ctx.settings.resources_dir)


def _decide_and_apply(ctx: CommandContext) -> d.Decision:
    """Return the decision for the host as it is now, with its changes written (as at init).

    The script is rendered once, by the caller: a record iPXE would expand is answered with
    an error script here, and the `init` it chains falls back to the main menu (flow.answer).
    """
    decision = d.decide(_inputs(ctx))
    node_ops.apply_decision(ctx.store, ctx.host, decision.changes, ctx.actor)
    return decision


def _main(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    return d.main_menu(inputs, "back to the main menu")


def _install_menu(ctx: CommandContext, inputs: d.BootInputs, notice: str = "") -> d.Decision:
    state = d.host_state(inputs)
    if state not in MENU_STATES and not ctx.caller.admin:
        return d.main_menu(inputs, f"no install menu in {state}", notice=(
            f"Installing is offered while the host waits at its menu, not in {state}."))
    items, notes = _choices(ctx, inputs.arch)
    return d.install_menu(inputs, items, "install menu", notes=notes, notice=notice)


def _choices(ctx: CommandContext, arch: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Return the install menu's items (id, label), and notes on the types it cannot offer
    now: those with no OS for the host's arch, those waiting for an INSTALLED storage host."""
    cluster = ctx.store.items(RecordId.of_cluster(ctx.cluster))
    ready = storage_ready(ctx.store, ctx.cluster)
    items: list[tuple[str, str]] = []
    notes: list[str] = []
    waiting: list[str] = []
    for kind in load_catalog().values():
        if kind.needs_storage and not ready:
            waiting.append(kind.name)
            continue
        problem = resolve_for(ctx.store, cluster, kind.name, arch)[2]
        if problem:
            notes.append(problem)
            continue
        items.append((f"install_{kind.name}", f"{kind.name}: {kind.description}"))
        items.extend((f"install_{kind.name}_{p}", f"  {kind.name} with profile {p}")
                     for p in kind.profiles if p != "DEFAULT")
    if waiting:
        notes.append(f"{', '.join(waiting)}: offered once a {STORAGE_TYPE} is INSTALLED")
    return items, notes


def _show(title: str, source: str) -> Action:
    def show(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        items = ctx.visible(inputs.host if source == "host" else inputs.cluster)
        lines = [f"{key}={value}" for key, value in items.items()]
        return _info(inputs, title, lines, show_ipxe=source == "ipxe")
    return show


def _show_paths(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    """The old `show_paths` listed the server's directories; hosts need the URLs they use."""
    base = inputs.base_url
    lines = [f"boot script: {base}/boot.ipxe", f"boot manager: {base}/cgi-bin/boot_manager.sh",
             f"distributions: {base}/distros/"]
    if inputs.os is not None:
        lines.append(f"OS {inputs.os_id}: {base}/distros/"
                     f"{inputs.os.get('REPO_PATH', '').strip('/')}/")
    return _info(inputs, "Paths", lines)


def _info(inputs: d.BootInputs, title: str, lines: list[str],
          show_ipxe: bool = False) -> d.Decision:
    return d.Decision("info", "show-info.ipxe", {
        "base_url": inputs.base_url, "mac": inputs.mac, "session": inputs.session,
        "title": title, "lines": lines, "show_ipxe": show_ipxe}, title)


def _notice(message: str, menu: str) -> Action:
    """An old item with no counterpart: `menu` ("main" or "install") showing `message`."""
    def act(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        if menu == "install":
            return _install_menu(ctx, inputs, notice=message)
        return d.main_menu(inputs, message, notice=message)
    return act


def _operation(operation: Callable[[Store, RecordId, str], object]) -> Action:
    """A menu item that is an operator's act on the host (hps_api.ops.hosts), the same as the
    host page's and the API's; the host then boots as the new record says."""
    def act(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        operation(ctx.store, ctx.host, ctx.actor)
        return _decide_and_apply(ctx)
    return act


def _reinstall(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    """REINSTALL only when it can be acted on; else the install menu, saying why."""
    try:
        host_ops.reinstall(ctx.store, ctx.host, ctx.actor,
                           resources_dir=ctx.settings.resources_dir)
    except Conflict as err:
        return _install_menu(ctx, inputs, notice=f"Reinstall: {err}")
    return _decide_and_apply(ctx)


def _force(value: str) -> Action:
    def act(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
        node_ops.force_install(ctx.store, ctx.host, value == "yes", ctx.actor)
        fresh = _inputs(ctx)
        blocked = d.install_blocker(fresh)
        notice = f"FORCE_INSTALL={value}"
        if value == "yes":
            notice += (f": no effect until this is fixed: {blocked.message}" if blocked
                       else ": the install starts at the next poll or boot")
        return d.main_menu(fresh, f"FORCE_INSTALL={value}", notice=notice)
    return act


def _install(ctx: CommandContext, inputs: d.BootInputs) -> d.Decision:
    """Configure the host as the chosen type and profile and answer as CONFIGURED does; a
    choice that cannot be made now answers the install menu saying why."""
    item = ctx.param("menu_item").strip()
    type_name, _, profile = item.split("_", 1)[1].partition("_")
    try:
        host_ops.configure(ctx.store, ctx.settings, ctx.cluster, ctx.mac, type_name,
                           profile or None, ctx.actor, admin=ctx.caller.admin)
    except (Conflict, NotFound, InvalidInput) as err:
        return _install_menu(ctx, inputs, notice=f"{item}: {err}")
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
    "show_paths": _show_paths,
    "rescue": lambda ctx, inputs: d.rescue(inputs, "rescue chosen in the menu"),
    "local_boot": lambda ctx, inputs: d.local_boot(inputs, "local boot chosen in the menu"),
    "reboot": lambda ctx, inputs: d.Decision("reboot", "reboot.ipxe", {
        "hostname": inputs.host.get("HOSTNAME", ""), "mac": inputs.mac}, "reboot chosen"),
    "unmanage": _operation(host_ops.unmanage),
    "unconfigure": _operation(host_ops.unconfigure),
    "force_install_on": _force("yes"),
    "force_install_off": _force("no"),
    "reinstall": _reinstall,
    "recover_DRH": _notice(NO_RECOVERY, "main"),
    "install_SCH_STORAGESINGLE": _notice(ZFS_LAYOUTS, "install"),
    "install_SCH_STORAGERAID": _notice(ZFS_LAYOUTS, "install"),
}

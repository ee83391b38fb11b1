"""`hps-api cluster create|list|show|activate|configure`: clusters as an operator manages them.

`create` takes a flag per cluster key of docs/boot.md (`hps_api.model.cluster_keys.key_table`) and
`--set KEY=VALUE` for any other key, validates everything (one by one, then together) before
writing anything, and never changes the active cluster unless `--activate` says so.
`configure` is the interactive wizard (`hps_api.cli.wizard`); it needs a terminal.

Exit codes: 0 done (also: the operator answered no); 1 not found, or the wizard's input ended
(Ctrl-D); 2 bad usage or value, an existing cluster, or a cluster changed by someone else while the
wizard ran (Conflict); 3 store busy, corrupt or unreadable; 130 wizard interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from hps_api.cli.common import (
    EXIT_NOT_SET,
    EXIT_OK,
    UsageError,
    active_cluster,
    cli_actor,
    fail,
    open_store,
    out,
    settings_for,
)
from hps_api.cli.wizard import (
    MASK,
    Console,
    Terminal,
    Wizard,
    confirm,
    load_steps,
    summary_lines,
)
from hps_api.errors import Conflict, HpsError, InvalidInput, StoreUnreadable
from hps_api.ids import is_sensitive, normalize_key
from hps_api.model.catalog import load_catalog
from hps_api.model.cluster_keys import InvalidKey, key_table, spec_for
from hps_api.model.osreg import list_os
from hps_api.ops import clusters as cluster_ops
from hps_api.ops import inventory
from hps_api.ops.services import Refreshed
from hps_api.settings import Settings
from hps_api.store import Kind, RecordId, Store
from hps_api.store.bootstrap import active_cluster as stored_active_cluster

PROG = "hps-api"
EXIT_INTERRUPTED = 130
NOT_A_TERMINAL = ("cluster configure is interactive and stdin is not a terminal; to script it, "
                  "use 'hps-api cluster create NAME --KEY VALUE...' or "
                  "'cluster_config [--cluster NAME] set KEY VALUE'")
_METAVARS = {"address": "IP", "cidr": "CIDR", "port": "PORT", "menu_timeout": "SECONDS",
             "local_boot": "exit|sanboot", "attempts": "N", "iface": "IFACE",
             "domain": "DOMAIN", "text": "TEXT", "os_id": "OS_ID"}


def register(subparsers: Any) -> None:
    """Add the `cluster` command group to `hps-api`'s sub-commands; `dispatch` runs it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="state directory (default: HPS_CONFIG_DIR)")
    group = subparsers.add_parser("cluster", parents=[common],
                                  help="create, list, show, activate or configure clusters")
    verbs = group.add_subparsers(dest="cluster_command", required=True, parser_class=type(group))
    _add_create(verbs.add_parser("create", parents=[common], allow_abbrev=False,
                                 help="create a cluster; every value is checked first"))
    verbs.add_parser("list", parents=[common], help="list clusters: * marks the active one",
                     ).add_argument("--json", action="store_true", help="print JSON")
    show = verbs.add_parser("show", parents=[common], help="print a cluster's keys")
    show.add_argument("name", metavar="NAME", nargs="?", help="default: the active cluster")
    show.add_argument("--json", action="store_true", help="print JSON")
    verbs.add_parser("activate", parents=[common], help="make a cluster the active one",
                     ).add_argument("name", metavar="NAME")
    verbs.add_parser("configure", parents=[common], help="set a cluster's keys interactively",
                     ).add_argument("name", metavar="NAME", nargs="?",
                                    help="default: the active cluster")


def dispatch(args: argparse.Namespace) -> int:
    """Run the `cluster` verb of a parsed command line and return its exit code."""
    return VERBS[args.cluster_command](args)


def _add_create(create: argparse.ArgumentParser) -> None:
    create.add_argument("name", metavar="NAME", help="^[a-z][a-z0-9-]{0,62}$")
    for spec in key_table():
        default = f" (default: {spec.default})" if spec.default is not None else ""
        create.add_argument(spec.flag, dest=_dest(spec.key), metavar=_METAVARS[spec.validator],
                            help=f"{spec.key}: {spec.meaning}{default}")
    create.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other key (repeatable), e.g. OS_SCH_X86_64, STORAGE_NETWORKS, "
                        "STORAGE0_CIDR")
    create.add_argument("--activate", action="store_true", help="make it the active cluster")


# -- create, list, show, activate ------------------------------------------------------------

def _create(args: argparse.Namespace) -> int:
    RecordId.of_cluster(args.name)
    store = _store(args)[1]
    values, origins = _create_values(args)
    try:
        cluster_ops.create(store, args.name, values, cli_actor())
    except InvalidKey as err:
        label = origins.get(err.key) or _label(err.key)
        raise UsageError(f"{label}: {err.reason}") from None
    out(f"cluster {args.name} created with {len(values)} key(s)")
    if args.activate:
        inventory.activate_cluster(store, args.name, cli_actor())
    out(f"active cluster: {stored_active_cluster(store) or '(none)'}")
    return EXIT_OK


def _create_values(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """Return the values given to `create` by key, and the option each came from."""
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for spec in key_table():
        text = getattr(args, _dest(spec.key))
        if text is not None:
            values[spec.key], origins[spec.key] = text, spec.flag
    for pair in args.set:
        key, text = _set_pair(pair)
        if key in values:
            raise UsageError(f"--set {key}: given twice")
        values[key], origins[key] = text, f"--set {key}"
    return values, origins


def _set_pair(pair: str) -> tuple[str, str]:
    """Return (KEY, value) of one `--set KEY=VALUE`; UsageError for reserved or flagged keys."""
    key, eq, text = pair.partition("=")
    if not eq:
        raise UsageError(f"--set {pair[:40]!r}: expected KEY=VALUE")
    try:
        name = normalize_key(key)
    except InvalidInput as err:
        raise UsageError(f"--set {pair[:40]!r}: {err}") from None
    if name in inventory.RESERVED_CLUSTER_KEYS:
        raise UsageError(f"--set {name}: hps-api sets {name} itself")
    spec = spec_for(name)
    if spec is not None and spec in key_table():
        raise UsageError(f"--set {name}: use {spec.flag}")
    return name, text


def _list(args: argparse.Namespace) -> int:
    clusters = inventory.list_clusters(_store(args)[1])
    if args.json:
        out(json.dumps(clusters, ensure_ascii=False, indent=2))
        return EXIT_OK
    width = max((len(c["name"]) for c in clusters), default=0)
    for c in clusters:
        out(f"{'*' if c['active'] else ' '} {c['name']:<{width}}  {c['hosts']} host(s)")
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    settings, store = _store(args)
    name = active_cluster(store, args.name)
    record = {key: MASK if is_sensitive(key, settings.sensitive_keys) else value
              for key, value in store.items(RecordId.of_cluster(name)).items()}
    defaults = {spec.key: spec.default for spec in key_table()
                if spec.default is not None and spec.key not in record}
    active = stored_active_cluster(store) == name
    hosts = len(store.list_records(Kind.HOST, name))
    if args.json:
        out(json.dumps({"name": name, "active": active, "hosts": hosts, "record": record,
                        "defaults": defaults}, ensure_ascii=False, indent=2))
        return EXIT_OK
    out(f"# cluster {name}{' (active)' if active else ''}: {hosts} host(s)")
    out("\n".join([*(f"{k}={v}" for k, v in record.items()),
                   *(f"# {k}={v} (not set: the default)" for k, v in defaults.items())]))
    return EXIT_OK


def _activate(args: argparse.Namespace) -> int:
    result = inventory.activate_cluster(_store(args)[1], args.name, cli_actor())
    previous = result["previous"]
    was = f" (was {previous})" if previous and previous != result["active"] else ""
    out(f"active cluster: {result['active']}{was}")
    return EXIT_OK


# -- configure -------------------------------------------------------------------------------

def _configure(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        raise UsageError(NOT_A_TERMINAL)
    settings, store = _store(args)
    cluster = active_cluster(store, args.name)
    try:
        return _run_wizard(settings, store, cluster, Console())
    except KeyboardInterrupt:
        out("")
        fail(PROG, "interrupted; nothing written")
        return EXIT_INTERRUPTED
    except EOFError:
        out("")
        fail(PROG, "end of input; nothing written")
        return EXIT_NOT_SET


def _run_wizard(settings: Settings, store: Store, cluster: str, terminal: Terminal) -> int:
    """Ask, show the changes, confirm, commit atomically, render the services."""
    rid = RecordId.of_cluster(cluster)
    current = store.items(rid)
    terminal.say(f"Configuring cluster {cluster}: Enter keeps the value in [brackets], ? shows "
                 "help, - clears a key, Ctrl-C aborts. Nothing is written before you confirm.")
    host_types = {name: kind.description for name, kind in load_catalog().items()}
    plan = Wizard(terminal, current, dict(list_os(store)), host_types).run(load_steps())
    if not plan.changes:
        terminal.say("No changes; nothing written.")
        return EXIT_OK
    terminal.say(f"\nChanges to cluster {cluster}:")
    for line in summary_lines(plan, settings.sensitive_keys):
        terminal.say(f"  {line}")
    if not confirm(terminal, len(plan.changes)):
        terminal.say("Nothing written.")
        return EXIT_OK
    try:
        refreshed = cluster_ops.configure(store, settings, cluster, plan.changes, plan.expect,
                                          cli_actor())
    except Conflict as err:
        raise Conflict(f"{err}: run 'hps-api cluster configure' again") from None
    terminal.say(f"{len(plan.changes)} change(s) written to cluster {cluster}.")
    _report(refreshed, cluster, terminal)
    return EXIT_OK


def _report(refreshed: Refreshed | HpsError | OSError, cluster: str,
            terminal: Terminal) -> None:
    """Say what the render after the change did; a failure is a warning (the change is made)."""
    if not isinstance(refreshed, Refreshed):
        fail(PROG, f"warning: changes written, but services not rendered: {refreshed}; fix it "
             f"and run 'hps-api render-services --cluster {cluster}'")
        return
    for host in refreshed.rendered.skipped:
        fail(PROG, f"warning: skipped {host}")
    state = ("reloaded" if refreshed.not_reloaded is None
             else f"not reloaded ({refreshed.not_reloaded})")
    terminal.say(f"Services rendered ({len(refreshed.rendered)} file(s)); dnsmasq {state}.")


# -- helpers ---------------------------------------------------------------------------------

def _store(args: argparse.Namespace) -> tuple[Settings, Store]:
    """Return the settings and the store; StoreUnreadable when the tree does not exist."""
    settings = settings_for(args.config_dir)
    store = open_store(settings)
    if not store.layout.root.is_dir():
        raise StoreUnreadable(f"config dir {store.layout.root} does not exist: run "
                              "'hps-api init' or set HPS_CONFIG_DIR / --config-dir")
    return settings, store


def _dest(key: str) -> str:
    return f"key_{key.lower()}"


def _label(key: str) -> str:
    """Return the option an operator would use to set a key (`--dhcp-ip`, `--set KEY`)."""
    spec = spec_for(key)
    return spec.flag if spec is not None and spec in key_table() else f"--set {key}"


VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "create": _create, "list": _list, "show": _show, "activate": _activate,
    "configure": _configure}

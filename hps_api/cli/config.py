"""`hps_config`, `cluster_config` and `host_config`: the IPS shell habit, over the real store.

    hps_config     [opts]     get KEY | set KEY VALUE | unset KEY | list
    cluster_config [opts]     get KEY | set KEY VALUE [CLUSTER] | unset KEY | list | exists [KEY]
    host_config    [opts] MAC get KEY | set KEY VALUE | unset KEY | list | exists [KEY]
                              | equals KEY VALUE | show | delete | history [--boots | --all]
                              | reinstall | unconfigure | rescue on|off
    opts: --config-dir DIR, --cluster NAME (not for hps_config), --json

Required arguments after the verb are taken literally (a VALUE may start with `-`); an optional
one (`[KEY]`, `[CLUSTER]`) never starts with `-`, so such a token there is an option. Options may
come before the verb or after its arguments. `host_config MAC set` creates the host's record when
it is missing, so an operator can prepare a host before it first boots; `cluster_config set` needs
the cluster to exist (`hps-api init`). `exists` and `equals` are tests for shell `if`: exit 0 for
true, 1 for false, silently. `history` lists the host's changes and counts its boots (a boot is
one journal entry); `--boots` lists the boots, `--all` both, in order. Exit codes: 0 done, 1 not
set (or false), 2 bad usage or input, 3 store busy, corrupt or unreadable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from hps_api import __version__
from hps_api.cli.common import (
    EXIT_NOT_SET,
    EXIT_OK,
    UsageError,
    active_cluster,
    cli_actor,
    open_store,
    out,
    run,
    settings_for,
)
from hps_api.errors import InvalidInput, NotFound, StoreUnreadable
from hps_api.ids import colon_mac, normalize_key, validate_value
from hps_api.ops import clusters as cluster_ops
from hps_api.ops import hosts as host_ops
from hps_api.settings import Settings
from hps_api.store import Kind, RecordId, Store
from hps_api.store.journal import Change

#: each verb's arguments; `[X]` is optional
VERBS_SYNTAX = {"get": "KEY", "set": "KEY VALUE", "unset": "KEY", "list": ""}
# The old `cluster_config set KEY VALUE CLUSTER` named the cluster last; empty meant the active one.
CLUSTER_VERBS_SYNTAX = {**VERBS_SYNTAX, "set": "KEY VALUE [CLUSTER]", "exists": "[KEY]"}
HOST_VERBS_SYNTAX = {**VERBS_SYNTAX, "exists": "[KEY]", "equals": "KEY VALUE", "show": "",
                     "delete": "", "history": "", "reinstall": "", "unconfigure": "",
                     "rescue": "ON_OFF"}
#: options a verb takes besides the common ones, for the usage line
VERB_OPTIONS = {"history": "[--boots | --all]"}


@dataclass
class Invocation:
    """A parsed command line."""

    verb: str = ""
    args: list[str] = field(default_factory=list)
    mac: str | None = None
    config_dir: str | None = None
    cluster: str | None = None
    json: bool = False
    help: bool = False
    #: what `history` lists: "changes" (and a count of boots), "boots" or "all"
    history: str = "changes"
    settings: Settings | None = None


def hps_config(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hps_config` (IPS-wide settings in hps.conf)."""
    return _main("hps_config", argv, VERBS_SYNTAX, takes_mac=False, takes_cluster=False)


def cluster_config(argv: Sequence[str] | None = None) -> int:
    """Entry point of `cluster_config` (the active or `--cluster` cluster's cluster.conf)."""
    return _main("cluster_config", argv, CLUSTER_VERBS_SYNTAX, takes_mac=False,
                 takes_cluster=True)


def host_config(argv: Sequence[str] | None = None) -> int:
    """Entry point of `host_config MAC` (one host's record)."""
    return _main("host_config", argv, HOST_VERBS_SYNTAX, takes_mac=True, takes_cluster=True)


def _main(
    prog: str, argv: Sequence[str] | None, syntax: dict[str, str], *, takes_mac: bool,
    takes_cluster: bool,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        inv = parse_args(args, syntax, takes_mac=takes_mac, takes_cluster=takes_cluster)
        if inv.help:
            out(_usage(prog, syntax, takes_mac))
            return EXIT_OK
        return _execute(prog, inv)

    return run(prog, body)


def parse_args(
    args: list[str], syntax: dict[str, str], *, takes_mac: bool, takes_cluster: bool
) -> Invocation:
    """Return the Invocation for a command line; raise UsageError on anything unexpected."""
    inv = Invocation()
    positional: list[str] = []
    rest = list(args)
    while rest:
        token = rest.pop(0)
        required, optional = _arity(syntax[inv.verb]) if inv.verb else (0, 0)
        is_option = token.startswith("-") and token != "-"
        if len(positional) < required or (
                len(positional) < required + optional and not is_option):
            positional.append(token)
        elif is_option:
            _option(inv, token, rest, takes_cluster)
        elif takes_mac and inv.mac is None:
            inv.mac = token
        elif not inv.verb:
            if token not in syntax:
                raise UsageError(f"unknown command {token!r} (one of: {', '.join(syntax)})")
            inv.verb = token
        else:
            raise UsageError(f"unexpected argument {token!r}")
    if inv.help:
        return inv
    if inv.history != "changes" and inv.verb != "history":
        raise UsageError(f"--{inv.history} goes with history")
    if takes_mac and inv.mac is None:
        raise UsageError("a MAC address is required")
    if not inv.verb:
        raise UsageError(f"a command is required (one of: {', '.join(syntax)})")
    required, _ = _arity(syntax[inv.verb])
    if len(positional) < required:
        wanted = " ".join(syntax[inv.verb].split()[:required])
        raise UsageError(f"{inv.verb} needs {wanted}")
    inv.args = positional
    return inv


def _arity(syntax: str) -> tuple[int, int]:
    """Return how many arguments a verb's syntax (`KEY VALUE [CLUSTER]`) requires and allows
    beyond those."""
    words = syntax.split()
    optional = sum(word.startswith("[") for word in words)
    return len(words) - optional, optional


def _option(inv: Invocation, token: str, rest: list[str], takes_cluster: bool) -> None:
    name, eq, inline = token.partition("=")
    if name in ("-h", "--help"):
        inv.help = True
    elif name == "--version":
        out(__version__)
        raise SystemExit(EXIT_OK)
    elif name == "--json" and not eq:
        inv.json = True
    elif name in ("--boots", "--all") and not eq:
        inv.history = name[2:]
    elif name == "--config-dir" or (name == "--cluster" and takes_cluster):
        value = inline if eq else (rest.pop(0) if rest else "")
        if not value:
            raise UsageError(f"{name} needs a value")
        setattr(inv, name[2:].replace("-", "_"), value)
    else:
        raise UsageError(f"unknown option {token!r}")


def _execute(prog: str, inv: Invocation) -> int:
    settings = inv.settings = settings_for(inv.config_dir)
    store = open_store(settings)
    if not store.layout.root.is_dir():
        raise StoreUnreadable(
            f"config dir {store.layout.root} does not exist: run 'hps-api init' or set "
            "HPS_CONFIG_DIR / --config-dir"
        )
    if prog == "hps_config":
        rid = RecordId.global_()
    elif prog == "cluster_config":
        rid = _cluster_record(store, inv)
    else:
        rid = RecordId.of_host(active_cluster(store, inv.cluster), inv.mac or "")
    return VERBS[inv.verb](store, rid, inv)


def _cluster_record(store: Store, inv: Invocation) -> RecordId:
    """Return the cluster record a `cluster_config` command line is about.

    `set KEY VALUE CLUSTER` (the old positional form) must name an existing cluster, and the
    same one as `--cluster` when both are given; an empty CLUSTER means the active one, as it
    did. Raises InvalidInput (exit 2) otherwise: nothing is written.
    """
    named = inv.args[2] if inv.verb == "set" and len(inv.args) == 3 else ""
    if not named:
        return RecordId.of_cluster(active_cluster(store, inv.cluster))
    rid = RecordId.of_cluster(named)
    if inv.cluster and RecordId.of_cluster(inv.cluster) != rid:
        raise UsageError(f"set names cluster {rid.cluster!r} but --cluster is {inv.cluster!r}")
    if not store.exists(rid):
        raise InvalidInput(f"cluster {rid.cluster!r} does not exist (see 'hps-api cluster list')")
    return rid


def _settings(inv: Invocation) -> Settings:
    assert inv.settings is not None  # set by _execute before any verb runs
    return inv.settings


def _get(store: Store, rid: RecordId, inv: Invocation) -> int:
    value = store.get(rid, inv.args[0])
    out(json.dumps(value, ensure_ascii=False) if inv.json else value)
    return EXIT_OK


def _set(store: Store, rid: RecordId, inv: Invocation) -> int:
    key, value = inv.args[:2]
    if rid.kind is Kind.HOST:  # checks and service files: the same operation as every door
        host_ops.set_key(store, _settings(inv), rid, key, value, cli_actor(),
                         create=True)
    elif rid.kind is Kind.CLUSTER:
        cluster_ops.set_key(store, _settings(inv), rid.cluster or "", key, value, cli_actor())
    else:
        store.update(rid, {key: value}, cli_actor(), create=True)
    return EXIT_OK


def _unset(store: Store, rid: RecordId, inv: Invocation) -> int:
    if rid.kind is Kind.HOST:
        host_ops.unset_key(store, _settings(inv), rid, inv.args[0], cli_actor())
    elif rid.kind is Kind.CLUSTER:
        cluster_ops.unset_key(store, _settings(inv), rid.cluster or "", inv.args[0], cli_actor())
    else:
        store.unset(rid, inv.args[0], cli_actor())
    return EXIT_OK


def _exists(store: Store, rid: RecordId, inv: Invocation) -> int:
    """Exit 0 when the record exists (with KEY: when KEY is set, even empty), else 1, silently."""
    key = normalize_key(inv.args[0]) if inv.args else None
    items = _items_or_none(store, rid)
    found = items is not None and (key is None or key in items)
    return EXIT_OK if found else EXIT_NOT_SET


def _equals(store: Store, rid: RecordId, inv: Invocation) -> int:
    """Exit 0 when KEY is set to exactly VALUE (case counts), else 1, silently.

    An unset key equals nothing, not even the empty value.
    """
    key, value = normalize_key(inv.args[0]), validate_value(inv.args[1])
    items = _items_or_none(store, rid)
    return EXIT_OK if items is not None and items.get(key) == value else EXIT_NOT_SET


def _items_or_none(store: Store, rid: RecordId) -> dict[str, str] | None:
    """Return the record's keys, None when it does not exist (corrupt or unreadable: raise)."""
    try:
        return store.items(rid)
    except NotFound:
        return None


def _list(store: Store, rid: RecordId, inv: Invocation) -> int:
    items = store.items(rid)
    if inv.json:
        out(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        for key, value in items.items():
            out(f"{key}={value}")
    return EXIT_OK


def _show(store: Store, rid: RecordId, inv: Invocation) -> int:
    items = store.items(rid)
    history = store.history(rid)
    changes = [c for c in history if not c.bookkeeping]
    last = asdict(changes[-1]) if changes else None
    mac = rid.name or ""
    if inv.json:
        out(json.dumps({"mac": mac, "cluster": rid.cluster, "record": items,
                        "last_change": last}, ensure_ascii=False, indent=2))
        return EXIT_OK
    out(f"host {colon_mac(mac)} ({mac}) in cluster {rid.cluster}")
    width = max((len(k) for k in items), default=0)
    for key, value in items.items():
        out(f"  {key.ljust(width)}  {value}")
    if last:
        boots = sum(c.boot for c in history)
        out(f"last change {last['time']} by {last['actor']} ({len(changes)} changes and "
            f"{boots} boots in history)")
    return EXIT_OK


def _delete(store: Store, rid: RecordId, inv: Invocation) -> int:
    host_ops.delete(store, _settings(inv), rid, cli_actor())
    out(f"{rid.name} deleted")
    return EXIT_OK


def _history(store: Store, rid: RecordId, inv: Invocation) -> int:
    """List what the journal keeps of the host: by default its changes, then how many boots
    were left out; `--boots` its boots; `--all` both, in order (docs/storage.md, "Journal")."""
    history = store.history(rid)
    if not history and not store.exists(rid):
        raise NotFound(f"{rid.label} not found")
    boots = [c for c in history if c.boot]
    shown = {"changes": [c for c in history if not c.bookkeeping], "boots": boots,
             "all": history}[inv.history]
    if inv.json:
        out(json.dumps([asdict(c) for c in shown], ensure_ascii=False, indent=2))
        return EXIT_OK
    for c in shown:
        out(_boot_line(c) if c.boot and inv.history == "boots" else _change_line(c))
    if boots and inv.history == "changes":
        last = boots[-1]
        out(f"({len(boots)} boots not shown, the last {last.time} session {last.new}: "
            "--boots lists them, --all shows everything)")
    return EXIT_OK


def _change_line(c: Change) -> str:
    old = "(unset)" if c.old is None else c.old
    new = "(unset)" if c.new is None else c.new
    facts = "".join(f" {key}={value}" for key, value in c.facts.items())
    return f"{c.time}  {c.actor}  {c.key}: {old} -> {new}" + (f"  [{facts[1:]}]" if facts else "")


def _boot_line(c: Change) -> str:
    after = f" after {c.old}" if c.old else " (first)"
    facts = "".join(f"  {key}={value}" for key, value in c.facts.items())
    return f"{c.time}  {c.actor}  boot {c.new}{after}{facts}"


def _reinstall(store: Store, rid: RecordId, inv: Invocation) -> int:
    host_ops.reinstall(store, rid, cli_actor(), resources_dir=_settings(inv).resources_dir)
    out(f"{rid.name} marked for reinstall: it installs again at its next network boot")
    return EXIT_OK


def _unconfigure(store: Store, rid: RecordId, inv: Invocation) -> int:
    host_ops.unconfigure(store, rid, cli_actor())
    out(f"{rid.name} unconfigured: it shows the install menu at its next network boot")
    return EXIT_OK


def _rescue(store: Store, rid: RecordId, inv: Invocation) -> int:
    switch = inv.args[0].lower()
    if switch not in ("on", "off"):
        raise UsageError(f"rescue takes on or off, not {inv.args[0][:20]!r}")
    host_ops.rescue(store, rid, switch == "on", cli_actor())
    out(f"{rid.name} rescue {switch}")
    return EXIT_OK


VERBS: dict[str, Callable[[Store, RecordId, Invocation], int]] = {
    "get": _get, "set": _set, "unset": _unset, "list": _list, "exists": _exists,
    "equals": _equals, "show": _show, "delete": _delete, "history": _history,
    "reinstall": _reinstall, "unconfigure": _unconfigure, "rescue": _rescue,
}


def _usage(prog: str, syntax: dict[str, str], takes_mac: bool) -> str:
    mac = " MAC" if takes_mac else ""
    cluster = "" if prog == "hps_config" else " [--cluster NAME]"
    verbs = " | ".join(" ".join(part for part in (verb, words, VERB_OPTIONS.get(verb, "")) if part)
                       for verb, words in syntax.items())
    return (f"usage: {prog} [--config-dir DIR]{cluster} [--json]{mac} {verbs}\n"
            "exit codes: 0 done (true), 1 not set (false), 2 bad usage or input, "
            "3 store busy/corrupt/unreadable")

"""`hps-api`: the server's own command (init, fsck, import-legacy, serve, cgi, os, admin,
install).

Exit codes follow the config CLIs: 0 done, 1 problems found (fsck) or lines skipped
(import-legacy), 2 bad usage or input, 3 store busy, corrupt or unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from hps_api import __version__
from hps_api.cli import admin as admin_cli
from hps_api.cli import cluster as cluster_cli
from hps_api.cli import install as install_cli
from hps_api.cli import power as power_cli
from hps_api.cli import storage as storage_cli
from hps_api.cli import store as store_cli
from hps_api.cli import stuck as stuck_cli
from hps_api.cli import timeline as timeline_cli
from hps_api.cli.common import (
    EXIT_NOT_SET,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    active_cluster,
    cli_actor,
    fail,
    open_store,
    out,
    run,
    settings_for,
)
from hps_api.errors import StoreUnreadable
from hps_api.ids import normalize_key, normalize_os_id
from hps_api.model import osreg
from hps_api.model.osreg import STATUSES
from hps_api.store import Store

PROG = "hps-api"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (`hps-api: ...`) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        fail(PROG, message)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `hps-api` and its sub-commands."""
    # Sub-commands accept --config-dir too; SUPPRESS keeps their unset copy from overwriting
    # a value given before the sub-command.
    common = _Parser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="state directory (default: HPS_CONFIG_DIR)")
    parser = _Parser(prog=PROG, description="hps-api: provisioning API for bare-metal clusters")
    parser.add_argument("--config-dir", help="state directory (default: HPS_CONFIG_DIR)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    init = sub.add_parser("init", parents=[common], help="create the store and a first cluster")
    init.add_argument("--cluster", default="default", help="cluster to create (default: default)")
    fsck = sub.add_parser("fsck", parents=[common],
                          help="list corrupt records and stray files, clean what crashes left")
    fsck.add_argument("--remove-temp", action="store_true",
                      help="kept for scripts: temp files older than 60 s are always removed")
    legacy = sub.add_parser("import-legacy", parents=[common],
                            help="convert a bash-era /srv/hps-config tree")
    legacy.add_argument("source", type=Path, help="the old tree")
    legacy.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    serve = sub.add_parser("serve", parents=[common], help="run the server under gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default: HPS_BIND, 127.0.0.1:8080)")
    serve.add_argument("--workers", type=int,
                       help="worker processes (default: HPS_WORKERS; 0: cores + 1, max 8)")
    sub.add_parser("cgi", parents=[common],
                   help="answer one CGI request (what scripts/cgi/boot_manager.sh runs)")
    sub.add_parser("selftest", parents=[common],
                   help="the IPS self-test: one line per check; exit 0 when all pass")
    render = sub.add_parser("render-services", parents=[common],
                            help="write the dnsmasq and rsyslog files of a cluster, reload dnsmasq "
                                 "(exit 1 when it could not be reloaded)")
    render.add_argument("--cluster", help="cluster to render (default: the active one)")
    render.add_argument("--no-reload", action="store_true",
                        help="write the files only (dnsmasq not started yet, or started later)")
    _add_os_parser(sub, common)
    cluster_cli.register(sub)
    admin_cli.register(sub)
    install_cli.register(sub, common)
    power_cli.register(sub)
    storage_cli.register(sub)
    store_cli.register(sub)
    stuck_cli.register(sub)
    timeline_cli.register(sub)
    return parser


def _add_os_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `hps-api os add|list|show|remove`: the OS registry (docs/boot.md)."""
    group = sub.add_parser("os", parents=[common], help="the OS registry: add, list, show, remove")
    verbs = group.add_subparsers(dest="os_command", metavar="add|list|show|remove", required=True,
                                 parser_class=_Parser)
    add = verbs.add_parser("add", parents=[common], help="register an OS")
    add.add_argument("os_id", metavar="ID", help="<arch>:<name>:<version>, e.g. x86_64:rocky:10")
    for option in ("--name", "--version", "--arch"):
        add.add_argument(option, help="must match ID (default: taken from ID)")
    add.add_argument("--repo-path", required=True, help="the repository, under /distros/")
    add.add_argument("--kernel", required=True, help="kernel path inside the repository")
    add.add_argument("--initrd", required=True, help="initrd path inside the repository")
    add.add_argument("--status", required=True, type=str.lower, choices=STATUSES)
    add.add_argument("--types", required=True, help="host types it installs: SCH,DRH")
    add.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="another key of the record (repeatable)")
    verbs.add_parser("list", parents=[common], help="list OS records").add_argument(
        "--json", action="store_true", help="print a JSON object")
    show = verbs.add_parser("show", parents=[common], help="print one OS record")
    show.add_argument("os_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    remove = verbs.add_parser("remove", parents=[common], help="delete an OS record")
    remove.add_argument("os_id", metavar="ID")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hps-api`."""
    # inside run(): the parser lists the host types, so a bad HPS_SITE_DIR fails while it is built
    return run(PROG, lambda: _command(build_parser().parse_args(argv)))


def _command(args: argparse.Namespace) -> int:
    return COMMANDS[args.command](args)


def _init(args: argparse.Namespace) -> int:
    from hps_api.store.bootstrap import initialise

    store = open_store(settings_for(args.config_dir))
    result = initialise(store, args.cluster, cli_actor())
    for path in result.created:
        out(f"created {path}")
    if not result.created:
        out(f"{store.layout.root} already initialised")
    out(f"cluster {result.cluster} ready; active cluster: {result.active}")
    return EXIT_OK


def _fsck(args: argparse.Namespace) -> int:
    from hps_api.store.fsck import check_store, remove_stale_temps

    store = open_store(settings_for(args.config_dir))
    if not store.layout.root.is_dir():
        raise StoreUnreadable(f"config dir {store.layout.root} does not exist")
    problems = check_store(store)
    removed = set(remove_stale_temps(problems))
    for problem in problems:
        out(f"removed {problem.path}" if problem.path in removed else str(problem))
    if removed:
        out(f"cleaned {len(removed)} temp file(s) left by interrupted writes")
    serious = [p for p in problems if p.needs_person]
    out(f"{len(serious)} problem(s) in {store.layout.root}")
    return EXIT_NOT_SET if serious else EXIT_OK


def _import_legacy(args: argparse.Namespace) -> int:
    from hps_api.importer.legacy import format_report, import_legacy

    store = open_store(settings_for(args.config_dir))
    report = import_legacy(args.source, store, cli_actor(), dry_run=args.dry_run)
    for line in format_report(report):
        out(line)
    return EXIT_NOT_SET if report.skipped else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from hps_api.entry.server import serve

    return serve(settings_for(args.config_dir), bind=args.bind, workers=args.workers)


def _cgi(args: argparse.Namespace) -> int:
    from hps_api.entry.cgi import run_cgi

    return run_cgi(args.config_dir)


def _render_services(args: argparse.Namespace) -> int:
    """Write the files, then reload dnsmasq. Exit 1 after writing them when a host was left out
    of dnsmasq's files (each named on stderr, then a summary line), or when a reload was
    expected (no --no-reload) and no dnsmasq runs behind HPS_DNSMASQ_PIDFILE."""
    from hps_api.ops.services import render_and_reload
    from hps_api.services import IPXE_BINARIES, tftp_root

    settings = settings_for(args.config_dir)
    store = open_store(settings)
    cluster = active_cluster(store, args.cluster)
    refreshed = render_and_reload(store, settings, cluster, reload=not args.no_reload)
    rendered = refreshed.rendered
    for path in rendered:
        out(f"wrote {path}")
    for name in IPXE_BINARIES:
        if not (tftp_root(settings) / name).is_file():
            out(f"warning: {tftp_root(settings) / name} missing (install Debian's ipxe package)")
    problem = refreshed.not_reloaded
    if args.no_reload:
        out("dnsmasq not reloaded (--no-reload)")
    else:
        if problem:
            fail(PROG, f"files written, but dnsmasq not reloaded: {problem}; start dnsmasq (or "
                       "set HPS_DNSMASQ_PIDFILE to its pidfile), or pass --no-reload")
        else:
            out(f"dnsmasq reloaded (pid from {settings.dnsmasq_pidfile})")
    for host in rendered.skipped:
        fail(PROG, f"skipped {host}")
    if rendered.skipped:
        fail(PROG, f"{len(rendered.skipped)} host(s) left out of dhcp-hosts and dns-hosts, "
                   "every other host written; fix the records above (host_config MAC set ...) "
                   "and render again")
    return EXIT_NOT_SET if problem or rendered.skipped else EXIT_OK  # 1, as fsck


def _os(args: argparse.Namespace) -> int:
    store = open_store(settings_for(args.config_dir))
    return _OS_VERBS[args.os_command](store, args)


def _os_add(store: Store, args: argparse.Namespace) -> int:
    osreg.add_os(store, args.os_id, _os_values(args), cli_actor())
    out(f"OS {normalize_os_id(args.os_id)} added")
    return EXIT_OK


def _os_list(store: Store, args: argparse.Namespace) -> int:
    records = osreg.list_os(store)
    if args.json:
        out(json.dumps(dict(records), ensure_ascii=False, indent=2))
        return EXIT_OK
    for os_id, record in records:
        out("\t".join([os_id, *(record.get(key, "") for key in _OS_COLUMNS)]))
    return EXIT_OK


def _os_show(store: Store, args: argparse.Namespace) -> int:
    record = osreg.get_os(store, args.os_id)
    out(json.dumps(record, ensure_ascii=False, indent=2) if args.json
        else "\n".join(f"{key}={value}" for key, value in record.items()))
    return EXIT_OK


def _os_remove(store: Store, args: argparse.Namespace) -> int:
    osreg.remove_os(store, args.os_id, cli_actor())
    out(f"OS {normalize_os_id(args.os_id)} removed")
    return EXIT_OK


_OS_COLUMNS = ("STATUS", "HPS_TYPES", "REPO_PATH")
_OS_OPTIONS = {"NAME": "name", "VERSION": "version", "ARCH": "arch", "REPO_PATH": "repo_path",
               "KERNEL": "kernel", "INITRD": "initrd", "STATUS": "status", "HPS_TYPES": "types"}


def _os_values(args: argparse.Namespace) -> dict[str, str]:
    """Return the record values of `os add`: the options, then each `--set KEY=VALUE`."""
    values = {key: getattr(args, attr) for key, attr in _OS_OPTIONS.items()
              if getattr(args, attr) is not None}
    for pair in args.set:
        key, eq, value = pair.partition("=")
        name = normalize_key(key)
        if not eq:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE")
        if name in _OS_OPTIONS:
            raise UsageError(f"--set {name}: use --{_OS_OPTIONS[name].replace('_', '-')}")
        values[name] = value
    return values


_OS_VERBS: dict[str, Callable[[Store, argparse.Namespace], int]] = {
    "add": _os_add, "list": _os_list, "show": _os_show, "remove": _os_remove}


def _selftest(args: argparse.Namespace) -> int:
    from hps_api.ops.selftest import run_selftest

    settings = settings_for(args.config_dir)
    checks = run_selftest(open_store(settings), settings)
    for check in checks:
        out(check.line())
    failed = sum(not c.ok for c in checks)
    out(f"{len(checks) - failed} passed, {failed} failed")
    return EXIT_NOT_SET if failed else EXIT_OK

COMMANDS = {"init": _init, "fsck": _fsck, "import-legacy": _import_legacy, "serve": _serve,
            "cgi": _cgi, "render-services": _render_services, "os": _os,
            "cluster": cluster_cli.dispatch, "selftest": _selftest, "admin": admin_cli.dispatch,
            "install": install_cli.dispatch, "bmc": power_cli.dispatch_bmc,
            "power": power_cli.dispatch_power, "timeline": timeline_cli.dispatch,
            "stuck": stuck_cli.dispatch, "storage": storage_cli.dispatch}
COMMANDS["store"] = store_cli.dispatch


if __name__ == "__main__":
    sys.exit(main())

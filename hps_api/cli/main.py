"""`hps-api`: the server's own command (init, fsck, import-legacy, serve).

Exit codes follow the config CLIs: 0 done, 1 problems found (fsck) or lines skipped
(import-legacy), 2 bad usage or input, 3 store busy, corrupt or unreadable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from hps_api import __version__
from hps_api.cli.common import (
    EXIT_NOT_SET,
    EXIT_OK,
    EXIT_USAGE,
    cli_actor,
    fail,
    open_store,
    out,
    run,
    settings_for,
)
from hps_api.errors import StoreUnreadable

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
    fsck = sub.add_parser("fsck", parents=[common], help="list corrupt records and stray files")
    fsck.add_argument("--remove-temp", action="store_true",
                      help="delete temp files left by interrupted writes (older than 60 s)")
    legacy = sub.add_parser("import-legacy", parents=[common],
                            help="convert a bash-era /srv/hps-config tree")
    legacy.add_argument("source", type=Path, help="the old tree")
    legacy.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    serve = sub.add_parser("serve", parents=[common], help="run the server under gunicorn")
    serve.add_argument("--bind", help="HOST:PORT (default: HPS_BIND)")
    serve.add_argument("--workers", type=int, help="worker processes (default: HPS_WORKERS)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `hps-api`."""
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    return run(PROG, lambda: command(args))


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
    from hps_api.store.fsck import check_tree, remove_stale_temps

    store = open_store(settings_for(args.config_dir))
    if not store.layout.root.is_dir():
        raise StoreUnreadable(f"config dir {store.layout.root} does not exist")
    problems = check_tree(store.layout)
    removed = set(remove_stale_temps(problems)) if args.remove_temp else set()
    for problem in problems:
        out(f"removed {problem.path}" if problem.path in removed else str(problem))
    remaining = [p for p in problems if p.path not in removed]
    out(f"{len(remaining)} problem(s) in {store.layout.root}")
    return EXIT_NOT_SET if remaining else EXIT_OK


def _import_legacy(args: argparse.Namespace) -> int:
    from hps_api.store.legacy import format_report, import_legacy

    store = open_store(settings_for(args.config_dir))
    report = import_legacy(args.source, store, cli_actor(), dry_run=args.dry_run)
    for line in format_report(report):
        out(line)
    return EXIT_NOT_SET if report.skipped else EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    fail(PROG, "serve: the HTTP server is not part of this build yet; the store is ready "
         "(hps-api init, hps_config, cluster_config, host_config)")
    return EXIT_USAGE


COMMANDS = {"init": _init, "fsck": _fsck, "import-legacy": _import_legacy, "serve": _serve}


if __name__ == "__main__":
    sys.exit(main())

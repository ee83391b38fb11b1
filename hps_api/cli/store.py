"""`hps-api store migrate --from URL --to URL [--force]`: copy the whole store to another backend.

URLs: `file:///srv/hps-config` (the file store in that directory) or
`etcd://HOST:PORT[,HOST:PORT...]/PREFIX` (docs/scale-out.md). Every record is read back from the
target and compared as it is copied; a progress bar on a terminal (plain `copied LABEL` lines
otherwise), then one summary line. Exit 0 copied, 2 bad input (nothing written: an unknown URL,
an empty source, a target not empty without --force), 3 the store could not be read or written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hps_api.cli.common import EXIT_OK, UsageError, out, settings_for


def register(subparsers: Any) -> None:
    """Add `hps-api store migrate` to `hps-api`'s sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="the local tree (default: HPS_CONFIG_DIR)")
    group = subparsers.add_parser("store", parents=[common],
                                  help="the store itself: migrate between backends")
    verbs = group.add_subparsers(dest="store_command", metavar="migrate", required=True,
                                 parser_class=type(group))
    migrate = verbs.add_parser("migrate", parents=[common],
                               help="copy every record and journal to another store")
    migrate.add_argument("--from", dest="source", required=True, metavar="URL",
                         help="file:///DIR or etcd://HOST:PORT[,...]/PREFIX (only read)")
    migrate.add_argument("--to", dest="target", required=True, metavar="URL",
                         help="file:///DIR or etcd://HOST:PORT[,...]/PREFIX")
    migrate.add_argument("--force", action="store_true",
                         help="replace what the target holds (default: refuse a non-empty one)")


def dispatch(args: argparse.Namespace) -> int:
    """Run `hps-api store migrate`."""
    from hps_api.store.migrate import check, migrate, open_url

    if args.source.rstrip("/") == args.target.rstrip("/"):
        raise UsageError("--from and --to name the same store")
    settings = settings_for(args.config_dir)
    source, target = open_url(args.source, settings), open_url(args.target, settings)
    records = check(source, target, force=args.force)
    if sys.stderr.isatty():
        import click

        with click.progressbar(length=len(records), label="migrating", file=sys.stderr,
                               show_pos=True) as bar:
            copied = migrate(source, target, records, lambda _label: bar.update(1))
    else:
        copied = migrate(source, target, records, lambda label: out(f"copied {label}"))
    out(f"migrated {copied.records} record(s), {copied.attachments} attachment(s) and "
        f"{copied.lines} journal line(s) from {args.source} to {args.target}; every record "
        "verified")
    return EXIT_OK

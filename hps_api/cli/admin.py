"""`hps-api admin add|passwd|remove|list`: the accounts operators log in with
(hps_api.ops.accounts).

A password is asked for twice on the terminal (never an argument: it would be in the shell
history and in `ps`). Scripts give it on standard input with `--password-stdin` (the first line)
or in a file with `--password-file FILE`. Exit codes as everywhere: 0 done, 1 no such account,
2 bad usage or input (nothing written), 3 store busy or unreadable.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from hps_api.cli.common import EXIT_OK, UsageError, out, settings_for
from hps_api.ops.accounts import Accounts, check_name, check_password


def register(subparsers: Any) -> None:
    """Add the `admin` command group to `hps-api`'s sub-commands; `dispatch` runs it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="state directory (default: HPS_CONFIG_DIR)")
    group = subparsers.add_parser("admin", parents=[common],
                                  help="admin accounts for the web UI and the JSON API")
    verbs = group.add_subparsers(dest="admin_command", required=True, parser_class=type(group))
    for verb, text in (("add", "create an account (asks for its password)"),
                       ("passwd", "change an account's password; ends its sessions")):
        parser = verbs.add_parser(verb, parents=[common], help=text)
        parser.add_argument("name", metavar="NAME")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-stdin", action="store_true",
                            help="read the password from the first line of standard input")
        source.add_argument("--password-file", type=Path, metavar="FILE",
                            help="read the password from the first line of FILE")
    verbs.add_parser("remove", parents=[common], help="delete an account; ends its sessions",
                     ).add_argument("name", metavar="NAME")
    verbs.add_parser("list", parents=[common], help="list the account names")


def dispatch(args: argparse.Namespace) -> int:
    """Run the `admin` verb of a parsed command line and return its exit code."""
    accounts = Accounts(settings_for(getattr(args, "config_dir", None)).config_dir)
    verb = args.admin_command
    if verb == "list":
        for name in accounts.names():
            out(name)
        return EXIT_OK
    name = check_name(args.name)
    if verb == "remove":
        accounts.remove(name)
        out(f"account {name} removed; its sessions ended")
        return EXIT_OK
    password = _password(args)
    if verb == "add":
        accounts.add(name, password)
        out(f"account {name} added: it can log in at /login")
    else:
        accounts.set_password(name, password)
        out(f"password of {name} changed; its sessions ended")
    return EXIT_OK


def _password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        try:
            text = args.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"--password-file: {err}") from None
        return check_password(text.split("\n", 1)[0])
    if args.password_stdin:
        return check_password(sys.stdin.readline().rstrip("\n"))
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin or "
                         "--password-file FILE")
    first = check_password(getpass.getpass("Password: "))
    if getpass.getpass("Password again: ") != first:
        raise UsageError("the two passwords differ; nothing changed")
    return first

"""`hps-api bmc set|show|unset` and `hps-api power`: a host's BMC settings and power actions
(hps_api.ops.power, docs/power.md).

The CLI talks to the BMCs itself, in this process, with the operations the server uses. `power
MAC ACTION` sends the action and reports what the BMC accepted; with `--wait` it also reads the
state back until it is the one asked for (verify-after-set; the API always does). `power --type
T | --state S | --all ACTION` does it for many hosts, CONCURRENCY at a time, with a progress bar
on a terminal (a line per host otherwise) and a summary line; one host's failure never stops
the others. Exit codes: 0 done, 1 some action failed (or no such BMC/host), 2 bad usage, 3
store problems.

A BMC password is never an argument (it would be in the shell history and `ps`): it comes from
`--password-file FILE` (first line), `--password-stdin`, or the terminal.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from hps_api.cli.common import (
    EXIT_NOT_SET,
    EXIT_OK,
    UsageError,
    active_cluster,
    cli_actor,
    open_store,
    out,
    settings_for,
)
from hps_api.ops import power as power_ops
from hps_api.power.base import ACTIONS
from hps_api.power.bmc import DRIVERS, Bmc
from hps_api.store import Store


def register(subparsers: Any) -> None:
    """Add the `bmc` and `power` commands to `hps-api`'s sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="state directory (default: HPS_CONFIG_DIR)")
    common.add_argument("--cluster", help="cluster of the host(s) (default: the active one)")
    group = subparsers.add_parser("bmc", parents=[common],
                                  help="a host's BMC settings: set, show, unset")
    verbs = group.add_subparsers(dest="bmc_command", required=True, parser_class=type(group))
    put = verbs.add_parser("set", parents=[common], help="set a host's BMC")
    put.add_argument("mac", metavar="MAC")
    put.add_argument("--driver", required=True, choices=DRIVERS)
    put.add_argument("--address", required=True,
                     help="redfish: https://HOST[:PORT]; ipmi: HOST[:PORT] (623); wol: the "
                          "broadcast address of the host's network[:PORT] (9)")
    put.add_argument("--system-id", default="", help="Redfish system id (default: the only one)")
    put.add_argument("--username", default="")
    source = put.add_mutually_exclusive_group()
    source.add_argument("--password-file", type=Path, metavar="FILE",
                        help="read the password from the first line of FILE")
    source.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")
    put.add_argument("--insecure", action="store_true",
                     help="Redfish: do not check the BMC's TLS certificate")
    show = verbs.add_parser("show", parents=[common], help="print a host's BMC (no password)")
    show.add_argument("mac", metavar="MAC")
    show.add_argument("--json", action="store_true", help="print a JSON object")
    verbs.add_parser("unset", parents=[common], help="forget a host's BMC").add_argument(
        "mac", metavar="MAC")
    action = subparsers.add_parser(
        "power", parents=[common], help="power status|on|off|cycle|pxe-once of one host "
        "(MAC ACTION) or many (--type T, --state S or --all, then ACTION)",
        usage="hps-api power [options] MAC ACTION\n       hps-api power [options] --type T | "
              "--state S | --all ACTION")
    action.add_argument("words", nargs="+", metavar="[MAC] ACTION",
                        help=f"ACTION: {', '.join(ACTIONS)}")
    chosen = action.add_mutually_exclusive_group()
    chosen.add_argument("--type", help="every host of this type")
    chosen.add_argument("--state", help="every host in this state")
    chosen.add_argument("--all", action="store_true", help="every host of the cluster")
    action.add_argument("--wait", action="store_true",
                        help="read the state back until it is the one asked for")
    action.add_argument("--concurrency", type=int, default=power_ops.CONCURRENCY,
                        help=f"hosts at once (default {power_ops.CONCURRENCY})")


def dispatch_bmc(args: argparse.Namespace) -> int:
    """Run `hps-api bmc ...`."""
    store = open_store(settings_for(getattr(args, "config_dir", None)))
    cluster = active_cluster(store, args.cluster)
    verb = args.bmc_command
    if verb == "set":
        bmc = Bmc(driver=args.driver, address=args.address, system_id=args.system_id,
                  username=args.username, insecure=args.insecure)
        shown = power_ops.set_bmc(store, cluster, args.mac.strip(),
                                  replace(bmc, password=_password(args)), cli_actor())
        out(f"BMC of {shown['mac']} set: {_line(shown['bmc'])}")
    elif verb == "show":
        shown = power_ops.show_bmc(store, cluster, args.mac.strip())
        out(json.dumps(shown, indent=2) if args.json
            else "\n".join(f"{k}={'' if v is None else v}" for k, v in shown["bmc"].items()))
    else:
        shown = power_ops.unset_bmc(store, cluster, args.mac.strip(), cli_actor())
        out(f"BMC of {shown['mac']} removed")
    return EXIT_OK


def dispatch_power(args: argparse.Namespace) -> int:
    """Run `hps-api power ...`."""
    store = open_store(settings_for(getattr(args, "config_dir", None)))
    cluster = active_cluster(store, args.cluster)
    policy = power_ops.DEFAULT_POLICY if args.wait else replace(
        power_ops.DEFAULT_POLICY, verify=False)
    many = args.type is not None or args.state is not None or args.all
    if len(args.words) != (1 if many else 2):
        raise UsageError("usage: hps-api power MAC ACTION, or hps-api power --type T|--state "
                         "S|--all ACTION")
    steps = power_ops.parse_steps(args.words[-1])
    if not many:
        outcome = power_ops.run_action(store, cluster, args.words[0].strip(), steps,
                                       cli_actor(), policy)
        _report(outcome, sys.stdout if outcome.ok else sys.stderr)
        return EXIT_OK if outcome.ok else EXIT_NOT_SET
    if not 1 <= args.concurrency <= 256:
        raise UsageError("--concurrency is 1 to 256")
    macs = power_ops.select_hosts(store, cluster, type_=args.type, state=args.state)
    outcomes = _run_many(store, cluster, macs, steps, policy, args.concurrency)
    out(power_ops.summary(outcomes))
    return EXIT_NOT_SET if any(not o.ok and not o.skipped for o in outcomes) else EXIT_OK


_REPORT_LOCK = threading.Lock()


def _run_many(store: Store, cluster: str, macs: list[str], steps: list[str],
              policy: power_ops.Policy, concurrency: int) -> list[power_ops.Outcome]:
    """Run the bulk action: a progress bar on a terminal (failures listed after it), else one
    line per host as it finishes."""
    if not sys.stderr.isatty():
        return power_ops.run_many(store, cluster, macs, steps, cli_actor(), policy,
                                  concurrency=concurrency,
                                  done=lambda outcome: _report(outcome, sys.stdout))
    import click

    lock = threading.Lock()  # click's bar counts wrong when threads update it at once

    with click.progressbar(length=len(macs), label=f"power {' + '.join(steps)}",
                           file=sys.stderr, show_pos=True) as bar:

        def advance(_outcome: power_ops.Outcome) -> None:
            with lock:
                bar.update(1)

        outcomes = power_ops.run_many(store, cluster, macs, steps, cli_actor(), policy,
                                      concurrency=concurrency, done=advance)
    for outcome in outcomes:
        if not outcome.ok:
            _report(outcome, sys.stdout)
    return outcomes


def _report(outcome: power_ops.Outcome, stream: Any) -> None:
    """Write one host's line; called from the bulk action's threads, so the line and its
    newline go out in one write under a lock (print writes them apart: lines would mix)."""
    verdict = "ok" if outcome.ok else "skipped" if outcome.skipped else "FAILED"
    with _REPORT_LOCK:
        stream.write(f"{outcome.mac} {outcome.action}: {verdict}: {outcome.message}\n")
        stream.flush()


def _line(shown: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in shown.items() if v not in (None, False, ""))


def _password(args: argparse.Namespace) -> str:
    """Return the password from --password-file, --password-stdin or the terminal; "" (keep
    the stored one) when none is given and there is no terminal, or for Wake-on-LAN."""
    if args.password_file is not None:
        try:
            text: str = args.password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"--password-file: {err}") from None
        return text.split("\n", 1)[0]
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if args.driver == "wol" or not sys.stdin.isatty():
        return ""
    return getpass.getpass("BMC password (empty: keep the stored one): ")

"""`hps-api storage list|show|provision|expand|delete`: thin hosts' iSCSI disks
(hps_api.ops.storage, docs/storage-hosts.md).

`provision MAC SIZE` queues a thin host's root disk on the storage host(s) with most room and
prints the choice in words; the storage host makes the volume at its next fetch of work, and
the thin host has ISCSI_ROOT_0 once it reported. `expand IQN SIZE` and `delete IQN` queue that
work on the volume's storage host (delete is refused while a host's ISCSI_ROOT_<i> names it).
`--json` prints the operation's answer as the API gives it. Exit codes: 0 done, 1 no such host
or volume, 2 bad usage or input (no room included: the message says why), 3 store problems.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hps_api.cli.common import EXIT_OK, active_cluster, cli_actor, open_store, out, settings_for
from hps_api.ops import storage as storage_ops


def register(subparsers: Any) -> None:
    """Add the `storage` command to `hps-api`'s sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", default=argparse.SUPPRESS,
                        help="state directory (default: HPS_CONFIG_DIR)")
    common.add_argument("--cluster", help="default: the active cluster")
    common.add_argument("--json", action="store_true", help="print a JSON object")
    group = subparsers.add_parser(
        "storage", parents=[common],
        help="thin hosts' iSCSI disks: list, show, provision, expand, delete")
    verbs = group.add_subparsers(dest="storage_command", metavar="list|show|provision|expand|"
                                 "delete", required=True, parser_class=type(group))
    verbs.add_parser("list", parents=[common], help="storage hosts, volumes and queued jobs")
    verbs.add_parser("show", parents=[common], help="one volume").add_argument(
        "iqn", metavar="IQN")
    provision = verbs.add_parser("provision", parents=[common],
                                 help="queue a thin host's root disk")
    provision.add_argument("mac", metavar="MAC")
    provision.add_argument("size", metavar="SIZE", help="40G, 512M (powers of 1024)")
    expand = verbs.add_parser("expand", parents=[common], help="queue a volume's growth")
    expand.add_argument("iqn", metavar="IQN")
    expand.add_argument("size", metavar="SIZE", help="the new size: 60G")
    verbs.add_parser("delete", parents=[common],
                     help="queue a volume's deletion (refused while a host uses it)"
                     ).add_argument("iqn", metavar="IQN")


def dispatch(args: argparse.Namespace) -> int:
    """Run `hps-api storage ...`."""
    store = open_store(settings_for(getattr(args, "config_dir", None)))
    cluster = active_cluster(store, args.cluster)
    verb = args.storage_command
    if verb == "list":
        found = storage_ops.listing(store, cluster)
        _print(args, found, _listing_lines(found))
    elif verb == "show":
        found = storage_ops.show(store, cluster, args.iqn.strip())
        _print(args, found, [f"{k}={_text(v)}" for k, v in found.items()])
    elif verb == "provision":
        plan = storage_ops.provision(store, cluster, args.mac.strip(), args.size, cli_actor())
        _print(args, plan, [*(_job_line(j) for j in plan["jobs"]),
                            *(f"  {line}" for line in plan["choice"])])
    elif verb == "expand":
        done = storage_ops.expand(store, cluster, args.iqn.strip(), args.size, cli_actor())
        _print(args, done, [_job_line(done["job"])])
    else:
        done = storage_ops.delete(store, cluster, args.iqn.strip(), cli_actor())
        _print(args, done, [_job_line(done["job"])])
    return EXIT_OK


def _print(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    out(json.dumps(data, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))


def _listing_lines(found: dict[str, Any]) -> list[str]:
    lines = [f"storage host {h['hostname'] or '-'} ({h['mac']}): "
             f"free {_text(h['free'])} bytes, pool {_text(h['pool'])}, {h['volumes']} "
             f"volume(s), {h['jobs']} job(s)" for h in found["storage_hosts"]]
    lines += [f"volume {v['iqn']} {v['size']} on {v['storage_host']} at {v['portal']}: "
              f"{', '.join(v['used_by']) or 'unused'}" for v in found["volumes"]]
    lines += [_job_line(job) for job in found["jobs"]]
    return lines or [f"no storage host in cluster {found['cluster']}"]


def _job_line(job: dict[str, Any]) -> str:
    detail = f": {job['detail']}" if job.get("detail") else ""
    return (f"job {job['id']} {job['action']} {job['volume']} {job['size'] or '-'} on "
            f"{job['storage_host']}: {job['state']}{detail}")


def _text(value: object) -> str:
    return "-" if value is None else str(value)

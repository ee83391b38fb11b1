"""`hps-api stuck`: the stuck hosts of a cluster in a terminal (docs/stuck.md).

One line per stuck host: MAC, hostname, state, the rule that tells most, since when, and why
(`--all-rules`: a line per rule met). `--json` prints `{cluster, checked, limits, stuck: [...]}`
with every rule of each host. Exit codes as `fsck`: 0 none stuck, 1 some stuck, 2 bad usage, 3
store problems. It only looks: announcing is the server's (hps_api.ops.announce).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hps_api.cli.common import EXIT_NOT_SET, EXIT_OK, active_cluster, open_store, out, settings_for
from hps_api.ids import colon_mac
from hps_api.model.stuck import TITLES, span
from hps_api.ops.stuck import Scan, find_stuck, iso


def register(subparsers: Any) -> None:
    """Add the `stuck` command to `hps-api`'s sub-commands."""
    stuck = subparsers.add_parser(
        "stuck", help="list the stuck hosts of a cluster (exit 1 when there is one)")
    stuck.add_argument("--config-dir", default=argparse.SUPPRESS,
                       help="state directory (default: HPS_CONFIG_DIR)")
    stuck.add_argument("--cluster", help="default: the active cluster")
    stuck.add_argument("--json", action="store_true", help="print a JSON object")
    stuck.add_argument("--all-rules", action="store_true",
                       help="a line for every rule a host meets, not only the one telling most")


def dispatch(args: argparse.Namespace) -> int:
    """Run `hps-api stuck`: list the stuck hosts, exit 1 when there is one."""
    store = open_store(settings_for(args.config_dir))
    scan = find_stuck(store, active_cluster(store, args.cluster))
    out(json.dumps(as_json(scan), ensure_ascii=False, indent=2) if args.json
        else "\n".join(lines(scan, all_rules=args.all_rules)))
    return EXIT_NOT_SET if scan.hosts else EXIT_OK


def as_json(scan: Scan) -> dict[str, Any]:
    """Return the scan as `--json` prints it."""
    return {"cluster": scan.cluster, "checked": scan.checked, "at": iso(scan.now),
            "limits": scan.limits.keys(),
            "stuck": [host.as_dict() for host in scan.hosts.values()],
            "unreadable": [{"mac": mac, "error": error}
                           for mac, error in sorted(scan.problems.items())]}


def lines(scan: Scan, *, all_rules: bool = False) -> list[str]:
    """Return the table of stuck hosts and a summary line."""
    found = []
    for host in scan.hosts.values():
        for finding in host.findings if all_rules else host.findings[:1]:
            since = "?" if finding.since is None else f"{span(scan.now - finding.since)} ago"
            found.append("\t".join([colon_mac(host.mac), host.record.get("HOSTNAME", "-") or "-",
                                    (host.record.get("STATE") or "UNCONFIGURED").upper(),
                                    TITLES[finding.rule], since, finding.detail]))
    unreadable = f", {len(scan.problems)} unreadable (hps-api fsck)" if scan.problems else ""
    found.append(f"{len(scan.hosts)} stuck of {scan.checked} host(s) in cluster "
                 f"{scan.cluster}{unreadable}")
    return found

"""`hps-api timeline MAC`: a host's provisioning timeline in a terminal (docs/timeline.md).

One line per phase: its name, when it began (UTC), how long it lasted, and what the log said;
`-` for a phase not seen. The phase the host is in now shows how long so far, and a last line
names it. `--json` prints what `GET /api/v1/hosts/<mac>/timeline` answers. Exit codes as the
other commands: 0 shown, 1 no such host (or no active cluster), 2 a malformed MAC or bad usage,
3 store problems.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from hps_api.cli.common import EXIT_OK, active_cluster, open_store, out, settings_for
from hps_api.observe.timeline import Timeline, human, iso
from hps_api.observe.timeline_logs import LogFiles, host_timeline
from hps_api.store import RecordId

#: a detail longer than this is cut in the table (`--json` has it whole)
DETAIL_WIDTH = 100


def register(subparsers: Any) -> None:
    """Add `timeline` to `hps-api`'s sub-commands."""
    command = subparsers.add_parser(
        "timeline", help="a host's provisioning timeline: phase, at, took; where it waits now")
    command.add_argument("--config-dir", default=argparse.SUPPRESS,
                         help="state directory (default: HPS_CONFIG_DIR)")
    command.add_argument("--cluster", help="cluster of the host (default: the active one)")
    command.add_argument("--json", action="store_true", help="print a JSON object")
    command.add_argument("mac", metavar="MAC", help="the host's MAC, any common spelling")


def dispatch(args: argparse.Namespace) -> int:
    """Run `hps-api timeline MAC`: print the table (or JSON); NotFound for an unknown host,
    InvalidInput for a malformed MAC."""
    settings = settings_for(getattr(args, "config_dir", None))
    store = open_store(settings)
    rid = RecordId.of_host(active_cluster(store, args.cluster), args.mac.strip())
    found = host_timeline(store, rid, LogFiles.under(settings.log_dir, settings.dhcp_leases),
                          time.time())
    out(json.dumps(found.as_json(), indent=2) if args.json else "\n".join(table(found)))
    return EXIT_OK


def table(timeline: Timeline) -> list[str]:
    """Return the human table: a header, a line per phase, then where the host is now."""
    rows = [("PHASE", "AT", "TOOK", "DETAIL")]
    for phase in timeline.phases:
        if phase.at is None:
            rows.append((phase.name, "-", "-", ""))
            continue
        took = human(phase.took) if phase.took is not None else (
            f"{human(timeline.now - phase.at)} so far" if phase == timeline.waiting else "")
        detail = phase.detail if len(phase.detail) <= DETAIL_WIDTH else (
            phase.detail[:DETAIL_WIDTH - 3] + "...")
        rows.append((phase.name, iso(phase.at), took, detail))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)),
                        row[3]]).rstrip() for row in rows]
    return [*lines, summary(timeline)]


def summary(timeline: Timeline) -> str:
    """Return one line saying where the host is: the phase it waits in and since when, its
    story over, or nothing seen."""
    head = f"host {timeline.mac} ({timeline.state})"
    if timeline.waiting is not None and timeline.waiting.at is not None:
        return (f"{head}: in {timeline.waiting.name} for "
                f"{human(timeline.now - timeline.waiting.at)}, since {iso(timeline.waiting.at)}")
    if any(phase.at is not None for phase in timeline.phases):
        return f"{head}: nothing more is awaited"
    return f"{head}: nothing of it in the logs"

#!/usr/bin/env python3
"""Stuck-host benchmark: what a scan for stuck hosts costs at 10,000 hosts (docs/stuck.md, "Cost").

    .venv/bin/python scripts/bench/stuck.py [--hosts 10000] [--days 7] [--runs 15]

A store in a temporary directory (removed afterwards) gets the UI benchmark's cluster of N hosts
(scripts/bench/ui.py: every state, types, self-tests) and a journal as a week of that cluster
writes it: each host's registration and state changes, a boot a day (the BOOT_SESSION line, and
the BOOT_TIME line older journals have), and a kickstart per install (`--days`, one line of
`json.dumps` per change, as hps_api.store.journal writes them). Then, in this process:

- cold: a scan as a worker's first one (`find_stuck` with a fresh HostIndex and the journal's
  history not read yet: every record parsed, the journal's last 32 MiB read);
- warm: R more scans with nothing changed (a `stat` per host, the journal read from where the
  last scan stopped: nothing), and R with the records given, as the pages call it (they have
  read the records for their own answer);
- after boots: R scans each after 1,000 more boots were appended to the journal;
- the dashboard and `/hosts?stuck=1` from the app (warm), which scan as part of their answer.

Nothing here asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ui

PAGES = ("/", "/hosts?stuck=1")


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(at: float, mac: str, key: str, old: str | None, new: str | None) -> str:
    return json.dumps({"time": iso(at), "record": f"host/{mac}", "key": key, "old": old,
                       "new": new, "actor": f"api:{mac}"}) + "\n"


def write_journal(path: Path, hosts: int, days: int, now: float) -> int:
    """Write a journal of `days` days of `hosts` hosts, oldest first; return its line count."""
    rng = random.Random(7)
    events: list[tuple[float, str]] = []
    start = now - days * 86400
    for n in range(hosts):
        mac = f"5254{n + 1:08x}"
        state = ui.host_values(n, now)["STATE"]
        events.append((start + rng.random() * 3600, line(start, mac, "STATE", None,
                                                         "UNCONFIGURED")))
        for day in range(days):
            at = start + day * 86400 + rng.random() * 86400
            events += [(at, line(at, mac, "BOOT_SESSION", None, f"{rng.getrandbits(24):06x}")),
                       (at, line(at, mac, "BOOT_TIME", None, str(int(at))))]
        at = start + rng.random() * days * 86400
        if state in ("CONFIGURED", "REINSTALL"):
            events.append((at, line(at, mac, "STATE", "UNCONFIGURED", state)))
        elif state != "UNCONFIGURED":
            events += [(at, line(at, mac, "STATE", "CONFIGURED", "INSTALLING")),
                       (at + 40, line(at + 40, mac, ".ks", None, f"{rng.getrandbits(256):064x}"))]
            if state != "INSTALLING":
                events.append((at + 1800, line(at + 1800, mac, "STATE", "INSTALLING", state)))
    events.sort()
    path.write_text("".join(text for _, text in events))
    return len(events)


def append_boots(path: Path, hosts: int, count: int) -> None:
    now = time.time()
    with path.open("a") as journal:
        for n in random.sample(range(hosts), min(count, hosts)):
            journal.write(line(now, f"5254{n + 1:08x}", "BOOT_SESSION", None,
                               f"{random.getrandbits(24):06x}"))


def measure(args: argparse.Namespace, say: Callable[[str], None]) -> list[str]:
    """Seed, scan, and return the report's lines."""
    from hps_api.ops.host_index import HostIndex
    from hps_api.ops.stuck import find_stuck
    from hps_api.store import FileStore

    rows = []
    with tempfile.TemporaryDirectory(prefix="hps-bench-stuck-") as tmp:
        work = Path(tmp)
        root = work / "hps-config"
        say(f"seeding {args.hosts:,} hosts and {args.days} days of journal in {work}")
        ui.seed(root, args.hosts)
        store = FileStore(root)
        journal = store.layout.journal("default")
        lines = write_journal(journal, args.hosts, args.days, time.time())
        size = journal.stat().st_size
        time.sleep(ui.SETTLE)
        index = HostIndex()
        started = time.perf_counter()
        scan = find_stuck(store, "default", index=index)
        cold = (time.perf_counter() - started) * 1000
        warm = []
        for _ in range(args.runs):
            started = time.perf_counter()
            find_stuck(store, "default", index=index)
            warm.append((time.perf_counter() - started) * 1000)
        records = index.read(store, "default").records
        given = []
        for _ in range(args.runs):
            started = time.perf_counter()
            find_stuck(store, "default", records=records)
            given.append((time.perf_counter() - started) * 1000)
        booted = []
        for _ in range(args.runs):
            append_boots(journal, args.hosts, 1000)
            started = time.perf_counter()
            find_stuck(store, "default", index=index)
            booted.append((time.perf_counter() - started) * 1000)
        rows += [f"{args.hosts:,} hosts, journal {lines:,} lines ({size / 2**20:.0f} MiB); "
                 f"{len(scan.hosts):,} stuck: {scan.counts()}", "",
                 "| scan | ms (median) | ms (slowest) |", "|---|---:|---:|",
                 f"| cold: a worker's first (records parsed, journal tail read) | {cold:,.0f} | "
                 f"{cold:,.0f} |",
                 f"| warm, nothing changed | {statistics.median(warm):,.1f} | "
                 f"{max(warm):,.1f} |",
                 f"| warm, records given (as the dashboard and the host list call it) | "
                 f"{statistics.median(given):,.1f} | {max(given):,.1f} |",
                 f"| warm, 1,000 boots appended since the last | "
                 f"{statistics.median(booted):,.1f} | {max(booted):,.1f} |"]
        say("the app: the dashboard and the stuck filter")
        times = ui.app_times(root, work, args.runs)
        rows += ["", "| page | first ms | median ms | slowest ms |", "|---|---:|---:|---:|"]
        rows += [f"| `{page}` | {first:,.0f} | {statistics.median(later):,.0f} | "
                 f"{max(later):,.0f} |" for page, (first, later, _) in times.items()
                 if page in PAGES]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    import os
    import platform

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    if min(args.hosts, args.days, args.runs) <= 0:
        parser.error("hosts, days and runs must be positive")
    ui.PAGES = PAGES  # the UI benchmark's app runner, on these pages
    rows = measure(args, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    load = os.getloadavg()
    print(f"date {datetime.now(UTC).date().isoformat()}; {platform.system()} "
          f"{platform.release()}, {len(os.sched_getaffinity(0))} cores, load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; Python {platform.python_version()}")
    print("\n".join(["", *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""UI benchmark: server time and weight of the operator's pages at 1,000 and 10,000 hosts.

    .venv/bin/python scripts/bench/ui.py [--hosts 1000,10000] [--runs R] [--http]
                                         [--workers N]

For each size, a store in a temporary directory (removed afterwards) gets a cluster with a
/16 provisioning network and a storage network, and N hosts as an operator's cluster has them:
types SCH, TCH and CCH and hosts without a type, every state, hostnames, addresses, last-seen
times spread over a day, self-test results, storage addresses and iSCSI roots. The records are
written as the store writes them (its own record format), file by file rather than through N
durable updates, which would take minutes and measure nothing the pages do.

Then, in this process, the app as `hps-api serve` builds it answers each page as an admin on
loopback (the heaviest view: a checkbox per host, every form): the first request of a fresh app,
whose host index is empty (every record parsed: a worker's first page), then R more (the index
stats each record and parses none: every later page); the table gives the first, and the median
and the slowest of the R. "Server time" is the app's wall time for the whole response (WSGI
call and body), without HTTP. Page weight: the body's bytes, and gzip -6 of them.

With --http the same pages are fetched R times from a real `hps-api serve` on a free loopback
port (N workers), so HTTP, gunicorn and the cold start of each worker's index are in (median
and slowest wall time). Nothing here asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import ipaddress
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import BIN, free_port, running, server_env

PAGES = ("/hosts", "/hosts?q=tch-1&state=NETWORK_BOOT,INSTALLED&sort=ip&page=3",
         "/", "/network", "/api/v1/hosts?per_page=50&sort=-hostname", "/hosts.csv")
STATES = ("INSTALLED", "INSTALLED", "INSTALLED", "NETWORK_BOOT", "NETWORK_BOOT", "CONFIGURED",
          "INSTALLING", "INSTALL_FAILED", "FAILED", "UNCONFIGURED", "REINSTALL", "UNMANAGED")
TYPES = ("SCH", "TCH", "TCH", "TCH", "CCH", "CCH", "")
SETTLE = 1.2  # the host index keeps only records whose files are older than a second


def host_values(n: int, now: float) -> dict[str, str]:
    """Return the keys of the n-th benchmark host."""
    kind = TYPES[n % len(TYPES)]
    state = STATES[n % len(STATES)] if kind else "UNCONFIGURED"
    seen = datetime.fromtimestamp(now - (n * 37) % 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    values = {"STATE": state, "LAST_SEEN": seen, "UPDATED": seen, "ARCH": "x86_64",
              "SERIAL": f"CZ{n:08d}", "BOOT_SESSION": f"{n:06x}"}
    if kind:
        values.update({"TYPE": kind, "PROFILE": "DEFAULT", "HOSTNAME": f"{kind.lower()}-{n:05d}",
                       "IP": str(ipaddress.IPv4Address("10.99.0.10") + n),
                       "NETMASK": "255.255.0.0", "OS_ID": "x86_64:rocky:10",
                       "SELFTEST_RESULT": "fail:disk" if n % 97 == 0 else "pass"})
    if kind == "SCH":
        values["STORAGE0_IP"] = str(ipaddress.IPv4Address("10.31.0.10") + n)
    if kind == "TCH":
        storage = (n // len(TYPES)) * len(TYPES) % 1000
        values["ISCSI_ROOT_0"] = f"{ipaddress.IPv4Address('10.31.0.10') + storage}:iqn.x:{n}"
    if n % 500 == 0:
        values["RESCUE"] = "yes"
    return values


def seed(root: Path, hosts: int) -> None:
    """Create the store: cluster `default`, an OS record and `hosts` host records."""
    from hps_api.store import FileStore, RecordId
    from hps_api.store.bootstrap import initialise
    from hps_api.store.kvfile import format_record, from_mapping

    store = FileStore(root)
    initialise(store, "default", "bench")
    store.update(RecordId.of_cluster("default"), {
        "NETWORK_CIDR": "10.99.0.0/16", "DHCP_IP": "10.99.0.1", "DNS_DOMAIN": "bench.lan",
        "STORAGE_NETWORKS": "1", "STORAGE0_CIDR": "10.31.0.0/16", "STORAGE0_VLAN": "31"},
        "bench")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,TCH,CCH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "bench", create=True)
    now = time.time()
    directory = store.layout.hosts_dir("default")
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(hosts):
        data = format_record(from_mapping(host_values(n, now)))
        (directory / f"5254{n + 1:08x}.conf").write_bytes(data)


def app_times(root: Path, work: Path, runs: int) -> dict[str, tuple[float, list[float], bytes]]:
    """Return page -> (first request ms, later requests ms, body) from the app in-process."""
    from werkzeug.test import EnvironBuilder

    from hps_api import create_app
    from hps_api.settings import load_settings

    settings = load_settings({"HPS_CONFIG_DIR": str(root), "HPS_LOG_DIR": str(work / "log"),
                              "HPS_RESOURCES_DIR": str(work / "resources"),
                              "HPS_METRICS": "off"}, dotenv=False)
    settings.log_dir.mkdir(exist_ok=True)
    app = create_app(settings)

    def call(page: str) -> tuple[float, bytes]:
        path, _, query = page.partition("?")
        environ = EnvironBuilder(path=path, query_string=query,
                                 environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
        status: list[str] = []
        started = time.perf_counter()
        body = b"".join(app(environ, lambda s, h, *_: status.append(s)))  # type: ignore[arg-type]
        elapsed = (time.perf_counter() - started) * 1000
        if not status or not status[0].startswith("200"):
            raise RuntimeError(f"{page}: {status} {body[:300]!r}")
        return elapsed, body

    call("/health")  # the header's IPS self-test runs once per worker; not a page's cost
    found = {}
    for page in PAGES:
        first, body = call(page)
        found[page] = (first, [call(page)[0] for _ in range(runs)], body)
    return found


def http_times(root: Path, work: Path, runs: int, workers: int) -> dict[str, list[float]]:
    """Return page -> wall ms of each GET from a real `hps-api serve` (loopback)."""
    bind = f"127.0.0.1:{free_port()}"
    env = server_env(work, root, HPS_RESOURCES_DIR=str(work / "resources"), HPS_METRICS="off")
    command = [str(BIN / "hps-api"), "serve", "--bind", bind, "--workers", str(workers)]
    found: dict[str, list[float]] = {}
    with running(command, env, work, f"http://{bind}/api/v1/health"):
        for page in PAGES:
            found[page] = []
            for _ in range(runs):
                started = time.perf_counter()
                with urllib.request.urlopen(f"http://{bind}{page}", timeout=60) as answer:
                    answer.read()
                found[page].append((time.perf_counter() - started) * 1000)
    return found


def table(hosts: int, times: dict[str, tuple[float, list[float], bytes]],
          http: dict[str, list[float]] | None) -> list[str]:
    """Return the markdown rows of one cluster size."""
    lines = []
    for page, (first, later, body) in times.items():
        row = (f"| {hosts:,} | `{page}` | {first:,.0f} | {statistics.median(later):,.0f} | "
               f"{max(later):,.0f} | {len(body) / 1024:,.1f} | "
               f"{len(gzip.compress(body, 6)) / 1024:,.1f} |")
        if http is not None:
            row += f" {statistics.median(http[page]):,.0f} | {max(http[page]):,.0f} |"
        lines.append(row)
    return lines


def run(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Seed each size, measure the pages, return the report."""
    import os
    import platform

    head = ["| hosts | page | first ms | median ms | slowest ms | KiB | KiB gzip |",
            "|---:|---|---:|---:|---:|---:|---:|"]
    if args.http:
        head = [head[0] + " HTTP median ms | HTTP slowest ms |", head[1] + "---:|---:|"]
    rows = []
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory(prefix="hps-bench-ui-") as tmp:
            work = Path(tmp)
            say(f"seeding {hosts:,} hosts in {work}")
            seed(work / "hps-config", hosts)
            time.sleep(SETTLE)
            say(f"{hosts:,} hosts: the app, {args.runs} requests per page after the first")
            times = app_times(work / "hps-config", work, args.runs)
            http = None
            if args.http:
                say(f"{hosts:,} hosts: hps-api serve, {args.workers} workers")
                http = http_times(work / "hps-config", work, args.runs, args.workers)
            rows += table(hosts, times, http)
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    return "\n".join([
        f"date {datetime.now(UTC).date().isoformat()}; {platform.system()} {platform.release()}, "
        f"{cores} cores, load average at the end {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f}; Python {platform.python_version()}", "", *head, *rows])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1000,10000",
                        help="comma-separated cluster sizes (default 1000,10000)")
    parser.add_argument("--runs", type=int, default=15,
                        help="requests per page after the first (default 15)")
    parser.add_argument("--http", action="store_true",
                        help="also fetch the pages from a real hps-api serve")
    parser.add_argument("--workers", type=int, default=2, help="with --http (default 2)")
    args = parser.parse_args(argv)
    try:
        args.hosts = [int(part) for part in args.hosts.split(",")]
    except ValueError:
        parser.error("--hosts takes numbers separated by commas")
    if min(args.hosts) <= 0 or args.runs <= 0 or args.workers <= 0:
        parser.error("sizes, runs and workers must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; 130 on Ctrl-C."""
    args = parse_args(argv)
    try:
        report = run(args, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    print(report)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())

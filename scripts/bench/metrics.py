#!/usr/bin/env python3
"""Metrics benchmark: what counting costs `init`, with HPS_METRICS on against off, same run.

    .venv/bin/python scripts/bench/metrics.py [--seconds S] [--rounds R] [--connections C]
                                              [--workers N] [--hosts H] [--app-rounds A]
                                              [--app-requests K] [--scrape-hosts N]
                                              [--client auto|wrk|python]

Everything lives in a temporary directory (removed afterwards). One store is seeded as
server.py seeds it (H hosts, STATE=INSTALLED, TYPE=SCH: `init` answers a local boot), and the
mix is `init` of those hosts with iPXE's User-Agent (`mac=` cycles through them). Two
measurements, each alternating metrics off and on so that drift on a shared machine hits both
alike, each a "CPU vs off" figure (on's CPU time per request divided by off's):

- the servers: two `hps-api serve` side by side on free loopback ports, the same settings but
  HPS_METRICS=on / off (stopped at the end, on Ctrl-C and on SIGTERM). After a 1 s warm-up
  each, R rounds measure both for S/R seconds, back to back (off then on, then on then off);
  wrk checks every answer. CPU is the master's and the workers' from /proc, so this is what an
  operator's box pays, HTTP and gunicorn included; a neighbour's burst moves it, and the median
  of the rounds' ratios is the figure it moves least.
- the app alone, in this process: the app built twice as `hps-api serve` builds it, once with
  metrics on (multiprocess mode) and once off, called directly in A rounds of two blocks of K
  `init` requests (off then on, then on then off), the counting disabled during an off block,
  with this thread's CPU clock around each block. No HTTP, no load generator, no other thread,
  blocks a fraction of a second apart: the cost of the counting itself against the app's own,
  the figure a busy neighbour moves least.

Then the scrape: `GET /metrics` of the `on` server (H hosts, after the load), and, in this
process, the host counts behind it over a store of N byte-copied host records (as store.py
makes them): the first count (every record read) and the next (no file changed: a stat each).
Nothing asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import Result, free_port, measured, pick_client, running, server_env
from server import BIN, COMMAND, IPXE_AGENT, Mix, load, machine_info, seed_store

STATES = ("off", "on")
SCRAPE_HOSTS = 10_000
WARM_UP_REQUESTS = 200


# ---------------------------------------------------------------------------- the servers


def init_paths(macs: Sequence[str]) -> tuple[str, ...]:
    """Return the `init` request paths, one per seeded host."""
    return tuple(f"{COMMAND}init&mac={m}&arch=x86_64&platform=pcbios" for m in macs)


def server_rounds(macs: Sequence[str], servers: dict[str, tuple[str, Any]], client: str,
                  args: argparse.Namespace, work: Path, say: Callable[[str], None],
                  ) -> tuple[list[Result], list[float]]:
    """Return each server's result over the rounds (off first) and each round's CPU ratio."""
    mixes = [Mix(state, state, init_paths(macs), IPXE_AGENT, "booting from the local disk")
             for state in STATES]

    def run(mix: Mix, seconds: float) -> Result:
        base, process = servers[mix.server]
        return measured(process, lambda: load(client, mix, base, args.connections, seconds,
                                              work))

    for mix in mixes:
        run(mix, 1.0)
    part = args.seconds / args.rounds
    say(f"servers: {args.rounds} rounds of {part:g} s each")
    slices: list[list[Result]] = [[], []]
    ratios = []
    for round_no in range(args.rounds):
        for n in (0, 1) if round_no % 2 == 0 else (1, 0):
            slices[n].append(run(mixes[n], part))
        off, on = slices[0][-1].cpu_us, slices[1][-1].cpu_us
        ratios.append(on / off if off else 0.0)
        say(f"  round {round_no + 1}: CPU on / off {ratios[-1]:.3f}")
    return [Result.combine(parts) for parts in slices], ratios


def server_table(results: list[Result]) -> str:
    """Return the servers' markdown table; the first row (metrics off) is the baseline."""
    base = results[0].cpu_us
    lines = ["| `init`, INSTALLED host, iPXE | req/s | p50 ms | p99 ms | errors | CPU µs/req "
             "| CPU vs off |", "|---|---:|---:|---:|---:|---:|---:|"]
    for state, r in zip(STATES, results, strict=True):
        ratio = f"{r.cpu_us / base:.3f}" if base else "-"
        lines.append(f"| HPS_METRICS={state} | {r.rate:,.0f} | {r.p50_ms:.1f} | "
                     f"{r.p99_ms:.1f} | {r.errors} | {r.cpu_us:,.0f} | {ratio} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- the app alone


def app_rounds(work: Path, macs: Sequence[str], args: argparse.Namespace,
               say: Callable[[str], None]) -> tuple[list[float], list[float], list[float]]:
    """Return the app's CPU µs per `init` of every off and on block, and each round's ratio.

    Both apps live in this process: one built with HPS_METRICS=on (multiprocess mode, as
    `hps-api serve` builds it), one with off; an off block runs with the counting disabled
    (`metrics.disable`), so it pays exactly what a server with metrics off pays.
    """
    from werkzeug.test import EnvironBuilder

    from hps_api import create_app
    from hps_api.observe import metrics
    from hps_api.settings import load_settings

    metrics.use_multiprocess_dir(work / "metrics-app")
    apps = {}
    for state in STATES:
        settings = load_settings({"HPS_CONFIG_DIR": str(work / "hps-config"),
                                  "HPS_LOG_DIR": str(work / "log-app"), "HPS_METRICS": state},
                                 dotenv=False)
        settings.log_dir.mkdir(exist_ok=True)
        apps[state] = create_app(settings)
    paths = init_paths(macs)

    def block(state: str, count: int) -> float:
        environs = []
        for n in range(count):
            path, _, query = paths[n % len(paths)].partition("?")
            environs.append(EnvironBuilder(
                path=path, query_string=query, headers={"User-Agent": IPXE_AGENT},
                environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ())
        (metrics.enable if state == "on" else metrics.disable)()
        app = apps[state].wsgi_app
        started = time.thread_time()
        for env in environs:
            body = b"".join(app(env, lambda *_: None))
            if b"booting from the local disk" not in body:
                raise RuntimeError(f"unexpected answer: {body[:200]!r}")
        used = time.thread_time() - started
        metrics.enable()
        return used / count * 1e6

    for state in STATES:
        block(state, WARM_UP_REQUESTS)
    say(f"the app alone: {args.app_rounds} rounds of {args.app_requests} requests each")
    found: dict[str, list[float]] = {state: [] for state in STATES}
    ratios = []
    for round_no in range(args.app_rounds):
        for state in STATES if round_no % 2 == 0 else STATES[::-1]:
            found[state].append(block(state, args.app_requests))
        ratios.append(found["on"][-1] / found["off"][-1])
    say(f"  on / off per round: {' '.join(f'{r:.3f}' for r in ratios)}")
    return found["off"], found["on"], ratios


# ---------------------------------------------------------------------------- the scrape


def scrape_ms(base: str, runs: int = 5) -> tuple[float, int]:
    """Return the median wall time of `GET /metrics` in ms, and the size of the text."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(base + "/metrics", timeout=30) as answer:
            size = len(answer.read())
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.1)
    return statistics.median(times), size


def host_count_ms(work: Path, hosts: int) -> tuple[float, float]:
    """Return the ms of the first host count over `hosts` records and of the next one."""
    from store import build_store

    from hps_api.observe.metrics import HostCounts

    counts = HostCounts(build_store(work / "scrape-store", hosts), seconds=0)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        list(counts.collect())
        timings.append((time.perf_counter() - started) * 1000)
    return timings[0], timings[1]


# ---------------------------------------------------------------------------- report


def spread(ratios: Sequence[float]) -> str:
    """Return `median M (quartiles Q1 - Q3, range LO - HI)` of per-round ratios."""
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return (f"median {statistics.median(ratios):.3f} (quartiles {quartiles[0]:.3f} - "
            f"{quartiles[2]:.3f}, range {min(ratios):.3f} - {max(ratios):.3f})")


def run(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Measure both servers, the app alone, the scrape and the host counts; return the report."""
    from hps_api.entry.server import THREADS, auto_workers

    client = pick_client(args.client)
    workers = args.workers or auto_workers()
    with (tempfile.TemporaryDirectory(prefix="hps-bench-metrics-") as tmp,
          contextlib.ExitStack() as stack):
        work = Path(tmp)
        say(f"seeding {args.hosts} hosts in {work}")
        macs = seed_store(work / "hps-config", args.hosts)
        servers = {}
        for state in STATES:
            bind = f"127.0.0.1:{free_port()}"
            env = server_env(work, HPS_METRICS=state, HPS_RESOURCES_DIR=str(work / "resources"))
            process = stack.enter_context(running(
                [str(BIN / "hps-api"), "serve", "--bind", bind, "--workers", str(workers)],
                env, work, f"http://{bind}/api/v1/health"))
            servers[state] = (f"http://{bind}", process)
            say(f"HPS_METRICS={state}: hps-api serve on {bind}, {workers} workers")
        results, ratios = server_rounds(macs, servers, client, args, work, say)
        say("scraping /metrics")
        scrape, size = scrape_ms(servers["on"][0])
        stack.close()
        off, on, app_ratios = app_rounds(work, macs, args, say)
        say(f"host counts over {args.scrape_hosts} records")
        first, again = host_count_ms(work, args.scrape_hosts)
    return "\n".join([
        machine_info(client, workers, args)[0],
        f"servers: {workers} gthread workers x {THREADS} threads each (the `hps-api serve` "
        f"options); load: {client}, {args.connections} connections, {args.seconds:g} s per "
        f"server in {args.rounds} rounds, 127.0.0.1", "", server_table(results), "",
        f"Servers, CPU on / off per round: {spread(ratios)}.",
        f"The app alone, CPU µs per `init` (median of {args.app_rounds} blocks of "
        f"{args.app_requests} requests each): off {statistics.median(off):,.0f}, on "
        f"{statistics.median(on):,.0f}; on / off per round: {spread(app_ratios)}.", "",
        f"`GET /metrics` of the `on` server ({args.hosts} hosts, after the load): median "
        f"{scrape:.1f} ms wall, {size:,} bytes.",
        f"Host counts in one process over {args.scrape_hosts:,} host records: first count "
        f"{first:,.0f} ms (every record read), next {again:,.0f} ms (no file changed).",
    ])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per server (default 30)")
    parser.add_argument("--rounds", type=int, default=10, help="server rounds (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="default 32")
    parser.add_argument("--workers", type=int, default=0,
                        help="gunicorn workers of each server (default: hps-api's auto)")
    parser.add_argument("--hosts", type=int, default=200, help="seeded hosts (default 200)")
    parser.add_argument("--app-rounds", type=int, default=30,
                        help="rounds of the app alone (default 30)")
    parser.add_argument("--app-requests", type=int, default=200,
                        help="requests per block of the app alone (default 200)")
    parser.add_argument("--scrape-hosts", type=int, default=SCRAPE_HOSTS,
                        help=f"host records for the host counts (default {SCRAPE_HOSTS})")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk if installed)")
    args = parser.parse_args(argv)
    if min(args.seconds, args.connections, args.hosts, args.rounds, args.scrape_hosts,
           args.app_rounds, args.app_requests) <= 0 or args.workers < 0:
        parser.error("every count and duration must be positive, --workers >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; 130 on Ctrl-C (servers are stopped either way)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        report = run(args, lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())

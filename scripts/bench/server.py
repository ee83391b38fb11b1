#!/usr/bin/env python3
"""Server benchmark: `hps-api serve` under load against a trivial app on the same gunicorn config.

    .venv/bin/python scripts/bench/server.py [--seconds S] [--rounds R] [--connections C]
                                             [--workers N] [--hosts H] [--client auto|wrk|python]

Everything lives in a temporary directory (removed afterwards): a store initialised and seeded
with H hosts (STATE=INSTALLED), HPS_LOG_DIR, and the wrk script. Traffic goes to 127.0.0.1 only.
Two gunicorn masters run side by side on free loopback ports, and both are stopped at the end,
on Ctrl-C and on SIGTERM:

- the ceiling: the trivial Flask app of http_bench.py (`GET /ok` answers `ok`), run with
  exactly the options `hps-api serve` uses (hps_api.server's
  gunicorn_options: the same worker count, class, threads, timeouts and access log);
- `hps-api serve` itself, on the same settings.

The mixes, with C keep-alive connections, are measured for S seconds each, in R interleaved
slices (ceiling, health, determine_state, host_variable, ceiling, ...) after a 1 s warm-up,
so drift on a shared machine hits them alike; only one server is under load at a time:

- ceiling: `GET /ok` on the trivial app;
- health: `GET /api/v1/health` on the real app (reads hps.conf);
- determine_state: `GET /cgi-bin/boot_manager.sh?cmd=determine_state&mac=<cycling seeded MAC>`
  with User-Agent curl/8 (JSON); loopback callers may name a host with mac=;
- host_variable set: the same endpoint writing a key of the cycling host (lock + fsync).

The load generator is wrk when installed (`apt-get install wrk`), else a Python client
(processes x threads, one keep-alive http.client connection each); the output says which. Both
share the machine's cores with gunicorn. p50/p99 are request-weighted means over the slices.
The ratio column is the ceiling's req/s divided by the mix's (2.0x = each request costs twice
the trivial one). `hps-api cgi` is timed afterwards, one process per request, sequentially.
Nothing asserts a time (quality.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from http_bench import (
    Result,
    ceiling_command,
    free_port,
    interleaved,
    pick_client,
    python_load,
    running,
    server_env,
    wrk_load,
)

BIN = Path(sys.executable).parent
CLUSTER = "default"
AGENT = "curl/8.5.0"
CGI_RUNS = 20


@dataclass(frozen=True)
class Mix:
    """One measured request mix: its name, server and the request paths it cycles through."""

    name: str
    base: str
    paths: tuple[str, ...]


# ---------------------------------------------------------------------------- store


def host_mac(index: int) -> str:
    """Return the seeded MAC number `index`."""
    return f"52:54:00:be:{index // 256:02x}:{index % 256:02x}"


def seed_store(root: Path, hosts: int) -> list[str]:
    """Initialise a store at `root` with `hosts` INSTALLED hosts; return their MACs."""
    from hps_api.store import FileStore, RecordId
    from hps_api.store.bootstrap import initialise

    store = FileStore(root)
    initialise(store, CLUSTER, "bench")
    macs = [host_mac(i) for i in range(hosts)]
    for mac in macs:
        store.update(RecordId.of_host(CLUSTER, mac),
                     {"STATE": "INSTALLED", "TYPE": "SCH", "OS_ID": "x86_64:rocky:10"},
                     "bench", create=True)
    return macs


# ---------------------------------------------------------------------------- runs and report


def load(client: str, mix: Mix, connections: int, seconds: float, work: Path) -> Result:
    """Return one load run of `mix` for `seconds` with the chosen load generator."""
    if client == "wrk":
        return wrk_load(mix.base, mix.paths, connections, seconds, work, AGENT)
    return python_load(mix.base, mix.paths, connections, seconds, AGENT)


def measure(client: str, mixes: Sequence[Mix], args: argparse.Namespace, work: Path,
            say: Callable[[str], None]) -> list[Result]:
    """Return one result per mix: a warm-up each, then `rounds` interleaved slices each."""
    runs = [lambda s, mix=mix: load(client, mix, args.connections, s, work) for mix in mixes]
    return interleaved(runs, args.seconds, args.rounds, say, [m.name for m in mixes])


def cgi_times(env: dict[str, str], mac: str, work: Path, runs: int) -> list[float]:
    """Return the wall time of `runs` sequential `hps-api cgi` determine_state requests."""
    cgi_env = dict(env, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
                   SCRIPT_NAME="/cgi-bin/boot_manager.sh", PATH_INFO="",
                   QUERY_STRING=f"cmd=determine_state&mac={mac}", REMOTE_ADDR="127.0.0.1",
                   SERVER_NAME="localhost", SERVER_PORT="80", SERVER_PROTOCOL="HTTP/1.1",
                   HTTP_USER_AGENT=AGENT)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([str(BIN / "hps-api"), "cgi"], env=cgi_env, cwd=work,
                              capture_output=True, timeout=60, check=False)
        times.append(time.perf_counter() - started)
        if not done.stdout.startswith(b"Status: 200"):
            raise RuntimeError(f"hps-api cgi failed: {done.stdout[:200]!r} {done.stderr!r}")
    return times


def table(rows: list[tuple[str, Result]]) -> str:
    """Return the markdown table; the first row is the ceiling."""
    ceiling = rows[0][1].rate
    lines = ["| mix | req/s | p50 ms | p99 ms | errors | ratio to ceiling |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        ratio = f"{ceiling / r.rate:.2f}x" if r.rate else "-"
        lines.append(f"| {name} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     f"{r.errors} | {ratio} |")
    return "\n".join(lines)


def machine_info(client: str, workers: int, args: argparse.Namespace) -> list[str]:
    """Return lines describing the run: machine, versions, server and load settings."""
    import gunicorn  # type: ignore[import-untyped]

    from hps_api.server import THREADS

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "wrk" if client == "wrk" else "Python http.client (processes x threads, keep-alive)"
    return [
        f"date {dt.date.today().isoformat()}; {platform.system()} {platform.release()}, "
        f"{cores} cores; Python {platform.python_version()}; gunicorn {gunicorn.__version__}",
        f"server: {workers} gthread workers x {THREADS} threads (the `hps-api serve` options); "
        f"load: {load}, {args.connections} connections, {args.seconds:g} s per mix in "
        f"{args.rounds} interleaved slices, 127.0.0.1",
    ]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Run every mix and return the report (machine lines, table, CGI line)."""
    from hps_api.server import auto_workers

    client = pick_client(args.client)
    workers = args.workers or auto_workers()
    with (tempfile.TemporaryDirectory(prefix="hps-bench-server-") as tmp,
          contextlib.ExitStack() as servers):
        work = Path(tmp)
        say(f"seeding {args.hosts} hosts in {work}")
        macs = seed_store(work / "hps-config", args.hosts)
        env = server_env(work)
        ceiling_bind, hps_bind = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        say(f"ceiling app on {ceiling_bind}, hps-api serve on {hps_bind}, {workers} workers each")
        servers.enter_context(running(ceiling_command(ceiling_bind, workers), env, work,
                                      f"http://{ceiling_bind}/ok"))
        servers.enter_context(running(
            [str(BIN / "hps-api"), "serve", "--bind", hps_bind, "--workers", str(workers)],
            env, work, f"http://{hps_bind}/api/v1/health"))
        mixes = build_mixes(f"http://{ceiling_bind}", f"http://{hps_bind}", macs)
        results = measure(client, mixes, args, work, say)
        servers.close()
        say(f"hps-api cgi x {args.cgi_runs}, sequential")
        cgi = sorted(cgi_times(env, macs[0], work, args.cgi_runs)) if args.cgi_runs else []
    rows = [(mix.name, result) for mix, result in zip(mixes, results, strict=True)]
    lines = [*machine_info(client, workers, args), "", table(rows)]
    if cgi:
        lines += ["", f"`hps-api cgi` determine_state, one process per request, {len(cgi)} "
                      f"sequential runs: median {statistics.median(cgi) * 1000:.0f} ms, "
                      f"max {cgi[-1] * 1000:.0f} ms ({1 / statistics.mean(cgi):.1f} req/s)"]
    return "\n".join(lines)


def build_mixes(ceiling: str, hps: str, macs: Sequence[str]) -> list[Mix]:
    """Return the mixes, the ceiling first."""
    command = "/cgi-bin/boot_manager.sh?cmd="
    return [
        Mix("ceiling: trivial Flask `GET /ok`", ceiling, ("/ok",)),
        Mix("`GET /api/v1/health`", hps, ("/api/v1/health",)),
        Mix("`determine_state` (JSON)", hps,
            tuple(f"{command}determine_state&mac={m}" for m in macs)),
        Mix("`host_variable` set (lock + fsync)", hps,
            tuple(f"{command}host_variable&name=BENCH&value=v{n}&mac={m}"
                  for n, m in enumerate(macs))),
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per mix (default 10)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved slices per mix (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="default 64")
    parser.add_argument("--workers", type=int, default=0,
                        help="gunicorn workers for both servers (default: hps-api's auto)")
    parser.add_argument("--hosts", type=int, default=200, help="seeded hosts (default 200)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk if installed)")
    parser.add_argument("--cgi-runs", type=int, default=CGI_RUNS,
                        help=f"sequential hps-api cgi runs (default {CGI_RUNS}; 0 skips)")
    args = parser.parse_args(argv)
    if min(args.seconds, args.connections, args.hosts, args.rounds) <= 0 or args.workers < 0:
        parser.error("--seconds, --rounds, --connections and --hosts must be positive, "
                     "--workers >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; 130 on Ctrl-C (servers are stopped either way)."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the `running` blocks stop their gunicorn.
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

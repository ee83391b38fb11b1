#!/usr/bin/env python3
"""Server benchmark: `hps-api serve` under load against a trivial app on the same gunicorn config.

    .venv/bin/python scripts/bench/server.py [--seconds S] [--rounds R] [--connections C]
                                             [--workers N] [--hosts H] [--client auto|wrk|python]

Everything lives in a temporary directory (removed afterwards): a store initialised and seeded
with H hosts (STATE=INSTALLED), HPS_LOG_DIR, and the wrk script. Traffic goes to 127.0.0.1 only.
Two gunicorn masters run side by side on free loopback ports, and both are stopped at the end,
on Ctrl-C and on SIGTERM:

- the ceiling: a trivial Flask app defined in this file (`GET /ok` answers `ok`), run by
  `--serve-ceiling` with exactly the options `hps-api serve` uses (hps_api.server's
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
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
CLUSTER = "default"
AGENT = "curl/8.5.0"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CGI_RUNS = 20


@dataclass(frozen=True)
class Mix:
    """One measured request mix: its name, server and the request paths it cycles through."""

    name: str
    base: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    """What a load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        """Return requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def combine(cls, slices: Sequence[Result]) -> Result:
        """Return the slices as one result; percentiles are request-weighted means."""
        count = sum(r.requests for r in slices)

        def weighted(pick: Callable[[Result], float]) -> float:
            return sum(pick(r) * r.requests for r in slices) / count if count else 0.0

        return cls(count, sum(r.seconds for r in slices), weighted(lambda r: r.p50_ms),
                   weighted(lambda r: r.p99_ms), sum(r.errors for r in slices))


# ---------------------------------------------------------------------------- the ceiling app


def ceiling_app() -> object:
    """Return the trivial Flask app: `GET /ok` answers `ok`, nothing else happens."""
    from flask import Flask, Response

    app = Flask("bench_ceiling")

    @app.get("/ok")
    def ok() -> Response:
        return Response("ok\n", content_type="text/plain; charset=utf-8")

    return app


def serve_ceiling(bind: str, workers: int) -> None:
    """Run the ceiling app under gunicorn with `hps-api serve`'s options (does not return)."""
    from hps_api.server import gunicorn_options, run_app
    from hps_api.settings import load_settings

    run_app(ceiling_app(), gunicorn_options(load_settings(), bind, workers))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- store and servers


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


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(work: Path) -> dict[str, str]:
    """Return the servers' environment: no inherited HPS_*, state and logs under `work`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update(HPS_CONFIG_DIR=str(work / "hps-config"), HPS_LOG_DIR=str(work / "log"))
    return env


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], work: Path,
            probe: str) -> Iterator[None]:
    """Run a gunicorn master until the block ends; wait for `probe` to answer 200 first."""
    log = (work / "gunicorn.stderr").open("ab")
    process = subprocess.Popen(command, env=env, cwd=work, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        wait_until_up(process, probe, work)
        yield
    finally:
        stop(process)
        log.close()


def wait_until_up(process: subprocess.Popen[bytes], url: str, work: Path) -> None:
    """Return once `url` answers 200; raise RuntimeError if the server dies or never answers."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited at start:\n"
                               + (work / "gunicorn.stderr").read_text()[-2000:])
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {START_TIMEOUT:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a gunicorn master gracefully (SIGTERM), then kill its whole group if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers of a master that died first
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


# ---------------------------------------------------------------------------- load: wrk

WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
wrk.headers["User-Agent"] = "%(agent)s"
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%.1f %%.1f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def wrk_load(base: str, paths: Sequence[str], connections: int, seconds: float,
             work: Path) -> Result:
    """Return what wrk measured cycling through `paths` for `seconds`."""
    script = work / "mix.lua"
    lua_paths = ", ".join(json.dumps(p) for p in paths)
    script.write_text(WRK_SCRIPT % {"paths": lua_paths, "agent": AGENT})
    threads = max(1, min(os.cpu_count() or 1, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), base + "/"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    _, count, micros, p50, p99, errors = line.split()
    return Result(int(count), int(micros) / 1e6, float(p50) / 1000, float(p99) / 1000,
                  int(errors))


# ---------------------------------------------------------------------------- load: Python


def _client_thread(port: int, paths: Sequence[str], offset: int, until: float,
                   latencies: list[float], errors: list[int]) -> None:
    import http.client

    conn: http.client.HTTPConnection | None = None
    i = offset
    while time.monotonic() < until:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers={"User-Agent": AGENT})
            answer = conn.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - started)
            if answer.status >= 400:
                errors[0] += 1
            if answer.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            errors[0] += 1
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def _client_process(port: int, paths: Sequence[str], threads: int, first: int, start: float,
                    seconds: float) -> tuple[list[float], int]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [[0] for _ in range(threads)]
    time.sleep(max(0.0, start - time.time()))
    until = time.monotonic() + seconds
    workers = [threading.Thread(target=_client_thread,
                                args=(port, paths, (first + n) * 7919, until, latencies[n],
                                      errors[n]))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [x for part in latencies for x in part], sum(e[0] for e in errors)


def python_load(base: str, paths: Sequence[str], connections: int, seconds: float) -> Result:
    """Return what the Python client measured: processes x threads, one connection each."""
    port = int(base.rsplit(":", 1)[1])
    procs = max(1, min(os.cpu_count() or 1, 4))
    per_proc = [connections // procs + (1 if n < connections % procs else 0)
                for n in range(procs)]
    start = time.time() + 0.5
    with mp.get_context("spawn").Pool(procs) as pool:
        jobs = [pool.apply_async(_client_process,
                                 (port, list(paths), count, sum(per_proc[:n]), start, seconds))
                for n, count in enumerate(per_proc) if count]
        parts = [job.get(timeout=seconds + 60) for job in jobs]
    latencies = sorted(x for lat, _ in parts for x in lat)
    errors = sum(err for _, err in parts)
    if not latencies:
        return Result(0, seconds, 0.0, 0.0, errors)
    return Result(len(latencies), seconds, percentile(latencies, 50) * 1000,
                  percentile(latencies, 99) * 1000, errors)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Return the nearest-rank percentile of sorted values."""
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# ---------------------------------------------------------------------------- runs and report


def load(client: str, mix: Mix, connections: int, seconds: float, work: Path) -> Result:
    """Return one load run of `mix` for `seconds` with the chosen load generator."""
    if client == "wrk":
        return wrk_load(mix.base, mix.paths, connections, seconds, work)
    return python_load(mix.base, mix.paths, connections, seconds)


def measure(client: str, mixes: Sequence[Mix], args: argparse.Namespace, work: Path,
            say: Callable[[str], None]) -> list[Result]:
    """Return one result per mix: a warm-up each, then `rounds` interleaved slices each.

    Interleaving (ceiling, mix 1, mix 2, ..., ceiling, mix 1, ...) spreads drift on a shared
    machine over every mix alike, as the store benchmark does.
    """
    part = args.seconds / args.rounds
    say(f"warm-up: 1 s per mix; then {args.rounds} rounds of {part:g} s per mix")
    for mix in mixes:
        load(client, mix, args.connections, 1.0, work)
    slices: list[list[Result]] = [[] for _ in mixes]
    for round_no in range(args.rounds):
        for n, mix in enumerate(mixes):
            say(f"  round {round_no + 1}: {mix.name}")
            slices[n].append(load(client, mix, args.connections, part, work))
    return [Result.combine(parts) for parts in slices]


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


def pick_client(wanted: str) -> str:
    """Return `wrk` or `python`: wrk when asked or, for auto, when it is installed."""
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if wanted == "wrk" and not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install wrk), try --client python")
    return wanted


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
        servers.enter_context(running(
            [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", ceiling_bind,
             "--workers", str(workers)], env, work, f"http://{ceiling_bind}/ok"))
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
    parser.add_argument("--serve-ceiling", metavar="BIND", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.seconds, args.connections, args.hosts, args.rounds) <= 0 or args.workers < 0:
        parser.error("--seconds, --rounds, --connections and --hosts must be positive, "
                     "--workers >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report; 130 on Ctrl-C (servers are stopped either way)."""
    args = parse_args(argv)
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling, args.workers)
        return 0
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

#!/usr/bin/env python3
"""Server benchmark: `hps-api serve` under load against trivial apps on the same gunicorn config.

    .venv/bin/python scripts/bench/server.py [--seconds S] [--rounds R] [--connections C]
                                             [--workers N] [--hosts H] [--client auto|wrk|python]
                                             [--no-front-end] [--cgi-runs N]

Everything lives in a temporary directory (removed afterwards): a store initialised and seeded
with H hosts (STATE=INSTALLED, TYPE=SCH, an OS record: `init` answers a local boot),
HPS_LOG_DIR, nginx's files and the wrk script. Traffic goes to 127.0.0.1 only. These run side
by side on free loopback ports, and all are stopped at the end, on Ctrl-C and on SIGTERM:

- two ceilings: the trivial Flask app of http_bench.py (`GET /ok` answers `ok`), run with
  exactly the options `hps-api serve` uses (hps_api.entry.server's gunicorn_options: the same worker
  count, timeouts and access log), once with its gthread workers and once with gunicorn's
  `sync` workers, the other configuration this box could run; the faster is the ceiling the
  ratios are taken against;
- `hps-api serve` itself, on the same settings (HPS_TRUSTED_PROXIES=127.0.0.1, as
  front-end.env says);
- unless --no-front-end (or without nginx): nginx with the configuration `hps-api
  render-services` writes (docs/deploy.md), once in front of `hps-api serve` and once in front of
  the gthread ceiling, whose p99 is the floor any app behind nginx has on this box.

The mixes, with C keep-alive connections, are measured for S seconds each, in R interleaved
slices (ceiling, ceiling sync, determine_state, init, ..., ceiling, ...) after a 1 s warm-up,
so drift on a shared machine hits them alike; only one server is under load at a time:

- `determine_state` and `init` of a known host with User-Agent iPXE, straight to gunicorn and
  through nginx: `mac=` cycles through the seeded hosts (loopback callers may name a host), and
  wrk checks every answer (HTTP 200, `set hps_reply INSTALLED` / `booting from the local disk`,
  not iPXE's retry script);
- health: `GET /api/v1/health` on the real app (reads hps.conf);
- host_variable set (User-Agent curl/8): writes a key of the cycling host (lock + fsync).

The load generator is wrk when installed (`apt-get install wrk`), else a Python client
(processes x threads, one keep-alive http.client connection each, which does not check the
answers); the output says which. Both share the machine's cores with the servers. p50/p99 are
request-weighted means over the slices. The server's CPU time per request comes from /proc (for
the front-end mixes, gunicorn's alone). "x ceiling" is the mix's req/s divided by the faster
ceiling's (1.00 = as fast as the trivial answer). `hps-api cgi` is timed afterwards, one
process per request, sequentially. Nothing asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import (
    Result,
    ceiling_command,
    free_port,
    interleaved,
    measured,
    pick_client,
    python_load,
    running,
    server_env,
    wrk_load,
)

BIN = Path(sys.executable).parent
CLUSTER = "default"
OS_ID = "x86_64:rocky:10"
AGENT = "curl/8.5.0"
IPXE_AGENT = "iPXE/1.21.1+ (g4bd064de)"
RETRY_MARK = "Retrying in"  # ipxe/error.ipxe: what iPXE gets instead of an HTTP error status
COMMAND = "/cgi-bin/boot_manager.sh?cmd="
CGI_RUNS = 20


@dataclass(frozen=True)
class Mix:
    """One measured request mix: its name, server, request paths, User-Agent and the text every
    answer must hold ("" checks nothing)."""

    name: str
    server: str
    paths: tuple[str, ...]
    agent: str = AGENT
    expect: str = ""


# ---------------------------------------------------------------------------- store


def host_mac(index: int) -> str:
    """Return the seeded MAC number `index`."""
    return f"52:54:00:be:{index // 256:02x}:{index % 256:02x}"


def seed_store(root: Path, hosts: int) -> list[str]:
    """Initialise a store at `root` with an OS record and `hosts` INSTALLED hosts of type SCH;
    return their MACs."""
    from hps_api.model.osreg import add_os
    from hps_api.store import FileStore, RecordId
    from hps_api.store.bootstrap import initialise

    store = FileStore(root)
    initialise(store, CLUSTER, "bench")
    store.update(RecordId.of_cluster(CLUSTER), {"OS_SCH": OS_ID}, "bench")
    add_os(store, OS_ID, {"REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
                          "INITRD": "images/pxeboot/initrd.img", "STATUS": "prod",
                          "HPS_TYPES": "SCH"}, "bench")
    macs = [host_mac(i) for i in range(hosts)]
    for n, mac in enumerate(macs):
        store.update(RecordId.of_host(CLUSTER, mac),
                     {"STATE": "INSTALLED", "TYPE": "SCH", "PROFILE": "DEFAULT",
                      "OS_ID": OS_ID, "ARCH": "x86_64", "HOSTNAME": f"sch-{n + 1:05d}"},
                     "bench", create=True)
    return macs


# ---------------------------------------------------------------------------- servers


@contextlib.contextmanager
def front_end(work: Path, env: dict[str, str], back: str):  # type: ignore[no-untyped-def]
    """Run nginx with the rendered configuration in front of `back` (host:port); yield its base
    URL. The start and stop are front_end.py's (docs/deploy.md)."""
    from front_end import nginx_front

    home = work / f"nginx-{back.rsplit(':', 1)[1]}"
    (home / "run").mkdir(parents=True)
    (home / "log").mkdir()
    port = free_port()
    nginx_env = dict(env, HPS_LOG_DIR=str(home / "log"),
                     HPS_DNSMASQ_PIDFILE=str(home / "run" / "dnsmasq.pid"))
    with nginx_front(home, nginx_env, port, int(back.rsplit(":", 1)[1])):
        yield f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------- runs and report


def load(client: str, mix: Mix, base: str, connections: int, seconds: float,
         work: Path) -> Result:
    """Return one load run of `mix` for `seconds` with the chosen load generator."""
    if client == "wrk":
        return wrk_load(base, mix.paths, connections, seconds, work, mix.agent, mix.expect,
                        RETRY_MARK if mix.expect else "")
    return python_load(base, mix.paths, connections, seconds, mix.agent)


def measure(client: str, mixes: Sequence[Mix], servers: dict[str, tuple[str, Any]],
            args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> list[Result]:
    """Return one result per mix: a warm-up each, then `rounds` interleaved slices each, with
    the CPU time of the mix's gunicorn master and workers."""
    def runner(mix: Mix) -> Callable[[float], Result]:
        base, process = servers[mix.server]
        return lambda s: measured(process, lambda: load(client, mix, base, args.connections,
                                                        s, work))

    return interleaved([runner(mix) for mix in mixes], args.seconds, args.rounds, say,
                       [m.name for m in mixes])


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
    """Return the markdown table; the first two rows are the ceilings, the faster is 1.00."""
    ceiling = max(rows[0][1].rate, rows[1][1].rate)
    lines = ["| mix | req/s | p50 ms | p99 ms | errors | CPU µs/req | x ceiling |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        ratio = f"{r.rate / ceiling:.2f}" if ceiling else "-"
        lines.append(f"| {name} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                     f"{r.errors} | {r.cpu_us:,.0f} | {ratio} |")
    return "\n".join(lines)


def machine_info(client: str, workers: int, args: argparse.Namespace) -> list[str]:
    """Return lines describing the run: machine, versions, server and load settings."""
    import gunicorn  # type: ignore[import-untyped]

    from hps_api.entry.server import THREADS

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "wrk" if client == "wrk" else "Python http.client (processes x threads, keep-alive)"
    avg = os.getloadavg()
    return [
        f"date {dt.date.today().isoformat()}; {platform.system()} {platform.release()}, "
        f"{cores} cores, load average at the end {avg[0]:.1f} / {avg[1]:.1f} / {avg[2]:.1f} "
        f"(1 / 5 / 15 min); Python {platform.python_version()}; gunicorn "
        f"{gunicorn.__version__}",
        f"servers: {workers} gthread workers x {THREADS} threads (the `hps-api serve` options), "
        f"the sync ceiling {workers} sync workers; load: {load}, {args.connections} "
        f"connections, {args.seconds:g} s per mix in {args.rounds} interleaved slices, "
        "127.0.0.1",
    ]


def run(args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Run every mix and return the report (machine lines, table, CGI line)."""
    from hps_api.entry.server import auto_workers

    client = pick_client(args.client)
    workers = args.workers or auto_workers()
    fronted = not args.no_front_end and nginx_found()
    with (tempfile.TemporaryDirectory(prefix="hps-bench-server-") as tmp,
          contextlib.ExitStack() as stack):
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers (www-data when root starts it) read its files
        say(f"seeding {args.hosts} hosts in {work}")
        macs = seed_store(work / "hps-config", args.hosts)
        env = server_env(work, HPS_TRUSTED_PROXIES="127.0.0.1",
                         HPS_RESOURCES_DIR=str(work / "resources"))
        (work / "resources").mkdir()
        binds = {name: f"127.0.0.1:{free_port()}" for name in ("ceiling", "sync", "hps")}
        say(f"ceilings on {binds['ceiling']} (gthread) and {binds['sync']} (sync), hps-api "
            f"serve on {binds['hps']}, {workers} workers each")
        servers = {
            "ceiling": stack.enter_context(running(
                ceiling_command(binds["ceiling"], workers), env, work,
                f"http://{binds['ceiling']}/ok")),
            "sync": stack.enter_context(running(
                ceiling_command(binds["sync"], workers, "sync"), env, work,
                f"http://{binds['sync']}/ok")),
            "hps": stack.enter_context(running(
                [str(BIN / "hps-api"), "serve", "--bind", binds["hps"], "--workers",
                 str(workers)], env, work, f"http://{binds['hps']}/api/v1/health")),
        }
        bases = {name: (f"http://{binds[name]}", process) for name, process in servers.items()}
        if fronted:
            bases["nginx ceiling"] = (stack.enter_context(front_end(work, env, binds["ceiling"])),
                                      servers["ceiling"])
            bases["nginx hps"] = (stack.enter_context(front_end(work, env, binds["hps"])),
                                  servers["hps"])
        mixes = build_mixes(macs, fronted)
        results = measure(client, mixes, bases, args, work, say)
        stack.close()
        say(f"hps-api cgi x {args.cgi_runs}, sequential")
        cgi = sorted(cgi_times(env, macs[0], work, args.cgi_runs)) if args.cgi_runs else []
    rows = [(mix.name, result) for mix, result in zip(mixes, results, strict=True)]
    lines = [*machine_info(client, workers, args), "", table(rows)]
    if cgi:
        lines += ["", f"`hps-api cgi` determine_state, one process per request, {len(cgi)} "
                      f"sequential runs: median {statistics.median(cgi) * 1000:.0f} ms, "
                      f"max {cgi[-1] * 1000:.0f} ms ({1 / statistics.mean(cgi):.1f} req/s)"]
    return "\n".join(lines)


def build_mixes(macs: Sequence[str], fronted: bool) -> list[Mix]:
    """Return the mixes, the two ceilings first."""
    state = tuple(f"{COMMAND}determine_state&mac={m}" for m in macs)
    init = tuple(f"{COMMAND}init&mac={m}&arch=x86_64&platform=pcbios" for m in macs)
    ipxe = {"agent": IPXE_AGENT}
    mixes = [
        Mix("ceiling: trivial Flask `GET /ok`, gthread", "ceiling", ("/ok",), expect="ok"),
        Mix("ceiling: trivial Flask `GET /ok`, sync", "sync", ("/ok",), expect="ok"),
        Mix("`determine_state`, iPXE", "hps", state, expect="set hps_reply INSTALLED", **ipxe),
        Mix("`init`, INSTALLED host, iPXE", "hps", init, expect="booting from the local disk",
            **ipxe),
    ]
    if fronted:
        mixes += [
            Mix("nginx -> ceiling gthread `GET /ok`", "nginx ceiling", ("/ok",), expect="ok"),
            Mix("nginx -> `determine_state`, iPXE", "nginx hps", state,
                expect="set hps_reply INSTALLED", **ipxe),
            Mix("nginx -> `init`, INSTALLED host, iPXE", "nginx hps", init,
                expect="booting from the local disk", **ipxe),
        ]
    return [
        *mixes,
        Mix("`GET /api/v1/health`", "hps", ("/api/v1/health",)),
        Mix("`host_variable` set (lock + fsync)", "hps",
            tuple(f"{COMMAND}host_variable&name=BENCH&value=v{n}&mac={m}"
                  for n, m in enumerate(macs))),
    ]


def nginx_found() -> bool:
    """Return True when Debian's nginx is installed (the front-end mixes need it)."""
    return bool(shutil.which("nginx")) or Path("/usr/sbin/nginx").exists()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per mix (default 10)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved slices per mix (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="default 64")
    parser.add_argument("--workers", type=int, default=0,
                        help="gunicorn workers for every server (default: hps-api's auto)")
    parser.add_argument("--hosts", type=int, default=200, help="seeded hosts (default 200)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator (default: wrk if installed)")
    parser.add_argument("--no-front-end", action="store_true",
                        help="skip the mixes through nginx")
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
    # SIGTERM unwinds like Ctrl-C, so the `running` blocks stop their servers.
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

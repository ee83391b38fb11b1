#!/usr/bin/env python3
"""Boot files through the front end against a bare nginx serving the same directory.

    .venv/bin/python scripts/bench/static_files.py [--size MiB] [--small KiB] [--connections C]
                                                   [--rounds R] [--seconds S] [--workers W]

Everything lives in a temporary directory (removed afterwards); traffic goes to 127.0.0.1 only.
Two servers of the same resources directory run on free loopback ports:

- front end: `hps-api serve` (gunicorn, W workers; default: its auto count) with nginx from the
  configuration `hps-api render-services` writes (front_end.py starts both the same way);
- bare nginx: a minimal configuration of its own (BARE_CONF: sendfile and tcp_nopush on, the
  same `worker_processes auto`, an access log), no hps-api at all.

wrk downloads two boot files at C connections (default 8): a large one, `/distros/bench/
initrd.img` of `--size` MiB (default 64), and a small one, `/ipxe.efi` of `--small` KiB
(default 1024), both random bytes. After a 1 s warm-up per file and server (which also puts
the files in the page cache), R rounds (default 5) each measure S seconds (default 4) of: large
file front end, large file bare, small file front end, small file bare. The report gives the
median over rounds of requests/s and MB/s per file and server, the median of the per-round
ratio front end / bare (MB/s), the CPU the gunicorn master and workers used during the
front-end downloads (utime + stime from /proc, per GB served; the same during the bare
downloads, when gunicorn is idle, for comparison), nginx's CPU per GB on both sides, and the
number of lines for the boot files in gunicorn's access log (nginx should send them all
itself). Defaults take about 1.5 minutes. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from front_end import nginx_front, nginx_running
from http_bench import cpu_seconds, free_port, running, server_env, workers_of

BIN = Path(sys.executable).parent
LARGE = "/distros/bench/initrd.img"
SMALL = "/ipxe.efi"
AGENT = "iPXE/1.21.1+ (g8ef5)"
GUNICORN_ACCESS_LOG = "access.log"  # hps_api.entry.server.ACCESS_LOG
WARMUP = 1.0
BLOCK = 1024 * 1024

# `summary.bytes` counts every byte read, so a download cut at the end of a slice still counts.
WRK_SCRIPT = """
wrk.headers["User-Agent"] = %(agent)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.bytes, e.connect + e.read + e.write + e.timeout + e.status))
end
"""

BARE_CONF = """\
{user}worker_processes auto;
pid {run}/bare-nginx.pid;
error_log {log}/bare-nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
{temp}
    default_type application/octet-stream;
    access_log {log}/bare-nginx-access.log;
    sendfile on;
    tcp_nopush on;

    server {{
        listen 127.0.0.1:{port};
        root {resources};
        location = {small} {{
            root {resources}/tftp;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class Slice:
    """One wrk run against one server: what it got and the CPU used meanwhile."""

    requests: int
    seconds: float
    bytes: int
    errors: int
    gunicorn_cpu_s: float
    nginx_cpu_s: float

    @property
    def rate(self) -> float:
        """Return requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mb_s(self) -> float:
        """Return megabytes (10^6 bytes) per second."""
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------------------- setup


def prepare(work: Path, args: argparse.Namespace) -> dict[str, str]:
    """Create the store and the two boot files under `work`; return the server's environment."""
    resources = work / "resources"
    env = server_env(work, HPS_RESOURCES_DIR=str(resources),
                     HPS_DNSMASQ_PIDFILE=str(work / "run" / "dnsmasq.pid"),
                     HPS_TRUSTED_PROXIES="127.0.0.1")
    for path in (work / "run", work / "log"):
        path.mkdir(exist_ok=True)
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=work, check=True,
                   capture_output=True, timeout=60)
    _random_file(resources / LARGE.removeprefix("/"), args.size * BLOCK)
    _random_file(resources / "tftp" / SMALL.removeprefix("/"), args.small * 1024)
    return env


def _random_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for start in range(0, size, BLOCK):
            out.write(os.urandom(min(BLOCK, size - start)))


@contextlib.contextmanager
def bare_nginx(work: Path, port: int) -> Iterator[int]:
    """Run nginx with BARE_CONF on 127.0.0.1:`port` serving `work`/resources; yield its pid."""
    from hps_api.services import nginx

    run, log = work / "run", work / "log"
    user = nginx.worker_user()
    temp = "".join(f"    {kind}_temp_path {run}/bare-nginx-{kind.replace('_', '-')};\n"
                   for kind in nginx.TEMP_KINDS)
    conf = work / "bare-nginx.conf"
    conf.write_text(BARE_CONF.format(user=f"user {user};\n" if user else "", run=run, log=log,
                                     temp=temp, port=port, resources=work / "resources",
                                     small=SMALL))
    with nginx_running(conf, log / "bare-nginx-error.log", run / "bare-nginx.pid") as pid:
        yield pid


# ---------------------------------------------------------------------------- load


def download(url: str, connections: int, seconds: float, work: Path, gunicorn: int,
             nginx_pid: int) -> Slice:
    """Return what wrk got downloading `url` for `seconds`, with both servers' CPU meanwhile."""
    script = work / "static.lua"
    script.write_text(WRK_SCRIPT % {"agent": f'"{AGENT}"'})
    threads = max(1, min(os.cpu_count() or 1, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(script), url]
    before = cpu_seconds(gunicorn), cpu_seconds(nginx_pid)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=True)
    after = cpu_seconds(gunicorn), cpu_seconds(nginx_pid)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    count, micros, size, errors = (int(x) for x in line.split()[1:])
    return Slice(count, micros / 1e6, size, errors, after[0] - before[0], after[1] - before[1])


def gunicorn_hits(work: Path) -> tuple[int, int]:
    """Return (lines for the boot files, all lines) of gunicorn's access log."""
    path = work / "log" / GUNICORN_ACCESS_LOG
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    files = [ln for ln in lines if f" {LARGE}" in ln or f" {SMALL}" in ln]
    return len(files), len(lines)


# ---------------------------------------------------------------------------- the run


def measure(args: argparse.Namespace, work: Path, front: str, bare: str, gunicorn: int,
            pids: dict[str, int]) -> dict[tuple[str, str], list[Slice]]:
    """Return the slices per (file, server): a warm-up each, then interleaved rounds."""
    bases = {"front end": front, "bare nginx": bare}
    files = (LARGE, SMALL)

    def one(path: str, server: str, seconds: float) -> Slice:
        return download(bases[server] + path, args.connections, seconds, work, gunicorn,
                        pids[server])

    for path in files:
        for server in bases:
            one(path, server, WARMUP)
    slices: dict[tuple[str, str], list[Slice]] = {(p, s): [] for p in files for s in bases}
    for round_no in range(args.rounds):
        for path in files:
            for server in bases:
                print(f"  round {round_no + 1}: {path} via {server}", file=sys.stderr)
                slices[path, server].append(one(path, server, args.seconds))
    return slices


def report(args: argparse.Namespace, slices: dict[tuple[str, str], list[Slice]],
           hits: tuple[int, int], workers: dict[str, int]) -> None:
    """Print the table and the CPU and gunicorn access-log lines."""
    print(f"\n{dt.date.today()}, {platform.node()}, {os.cpu_count()} cores, Linux "
          f"{platform.release()}, Python {platform.python_version()}: wrk, {args.connections} "
          f"connections, {args.rounds} rounds x {args.seconds:g} s per file and server; nginx "
          f"workers: front end {workers['front end']}, bare {workers['bare nginx']}; gunicorn "
          f"workers: {workers['gunicorn']}\n")
    print("| file | bare nginx req/s | bare nginx MB/s | front end req/s | front end MB/s | "
          "front end / bare | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    sizes = {LARGE: f"{args.size} MiB", SMALL: f"{args.small} KiB"}
    for path in (LARGE, SMALL):
        front, bare = slices[path, "front end"], slices[path, "bare nginx"]
        ratio = statistics.median(f.mb_s / b.mb_s if b.mb_s else 0.0
                                  for f, b in zip(front, bare, strict=True))
        errors = sum(s.errors for s in front + bare)
        print(f"| {sizes[path]} `{path}` | {_median(bare, 'rate'):,.1f} | "
              f"{_median(bare, 'mb_s'):,.1f} | {_median(front, 'rate'):,.1f} | "
              f"{_median(front, 'mb_s'):,.1f} | {ratio:.2f} | {errors} |")
    print()
    for server in ("front end", "bare nginx"):
        taken = [s for (_, srv), parts in slices.items() if srv == server for s in parts]
        gigabytes = sum(s.bytes for s in taken) / 1e9
        gunicorn = sum(s.gunicorn_cpu_s for s in taken) * 1000
        nginx_ms = sum(s.nginx_cpu_s for s in taken) * 1000
        print(f"during the {server} downloads ({gigabytes:,.1f} GB): gunicorn CPU "
              f"{gunicorn:,.0f} ms = {_per(gunicorn, gigabytes):,.2f} ms/GB; nginx CPU "
              f"{nginx_ms:,.0f} ms = {_per(nginx_ms, gigabytes):,.0f} ms/GB")
    print(f"gunicorn access-log lines for the boot files: {hits[0]} (of {hits[1]} in all)")


def _median(parts: list[Slice], what: str) -> float:
    return statistics.median(float(getattr(s, what)) for s in parts)


def _per(ms: float, gigabytes: float) -> float:
    return ms / gigabytes if gigabytes else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="large file, MiB")
    parser.add_argument("--small", type=int, default=1024, help="small file, KiB")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="per slice (whole seconds)")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (0: auto)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("static_files.py: needs wrk (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="hps-static-"))
    work.chmod(0o755)  # nginx's workers (www-data when root starts it) read the files
    try:
        env = prepare(work, args)
        back, front, bare = free_port(), free_port(), free_port()
        command = [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{back}",
                   "--workers", str(args.workers)]
        with (running(command, env, work, f"http://127.0.0.1:{back}/api/v1/health") as master,
              nginx_front(work, env, front, back) as front_pid,
              bare_nginx(work, bare) as bare_pid):
            pids = {"front end": front_pid, "bare nginx": bare_pid}
            slices = measure(args, work, f"http://127.0.0.1:{front}",
                             f"http://127.0.0.1:{bare}", master.pid, pids)
            hits = gunicorn_hits(work)
            # Counted at the end: at start a worker may still be forking.
            workers = {name: len(workers_of(pid)) for name, pid in pids.items()}
            workers["gunicorn"] = len(workers_of(master.pid))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, slices, hits, workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

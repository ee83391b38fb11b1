#!/usr/bin/env python3
"""Boot storm through the front end: `cmd=init` while many slow clients download an initrd.

    .venv/bin/python scripts/bench/front_end.py [--clients N] [--size MiB] [--rate MB/s]
                                                [--seconds S] [--workers W] [--probe-interval S]

Everything lives in a temporary directory (removed afterwards); traffic goes to 127.0.0.1 only.
One `hps-api serve` (gunicorn, `hps-api serve`'s options, W workers; default: its auto count)
and one nginx with the configuration `hps-api render-services` writes (hps_api.services.nginx)
run on free loopback ports, with HPS_TRUSTED_PROXIES=127.0.0.1 as front-end.env says. The
store holds one INSTALLED host.

Two runs of S seconds each, the same load, one after the other:

- baseline: straight to gunicorn, the layout without a front end;
- front end: through nginx, which sends `/distros` itself and proxies `cmd=init`.

In each run N clients (default 200) download a file of `--size` MiB (default 64) from
`/distros`, each reading at most `--rate` MB/s (default 2, like a rack sharing 1 GbE), with a
small receive buffer so a client's pace reaches the server; a client that finishes starts
again. Meanwhile one iPXE client asks `cmd=init&mac=<the host>` every `--probe-interval`
seconds (one request at a time, a new connection each, as iPXE does) and times the answer. At
the end of the run the downloads are cut, so a request queued behind them is answered and
counted. The report gives the init latencies (p50/p99/max), init errors (no answer, not 200,
or iPXE's retry script) and download errors and throughput. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import free_port, running, server_env

BIN = Path(sys.executable).parent
MAC = "52:54:00:be:0c:01"
FILE = "/distros/bench/initrd.img"
AGENT = "iPXE/1.21.1+ (g8ef5)"
RETRY_MARK = "Retrying in"
CHUNK = 64 * 1024
RCVBUF = 64 * 1024
NGINX_START_TIMEOUT = 15.0


@dataclass(frozen=True)
class Run:
    """What one run measured."""

    name: str
    latencies_ms: list[float]
    init_errors: int
    downloads: int
    completed: int
    download_errors: int
    megabytes: float
    seconds: float

    def row(self) -> str:
        """Return the run as a markdown table row."""
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        top = lat[-1] if lat else float("nan")
        return (f"| {self.name} | {len(lat)} | {p50:,.1f} | {p99:,.1f} | {top:,.1f} | "
                f"{self.init_errors} | {self.downloads} / {self.completed} | "
                f"{self.download_errors} | {self.megabytes / self.seconds:,.1f} |")


# ---------------------------------------------------------------------------- slow downloads


async def _download(port: int, size: int, rate: float, deadline: float,
                    counts: dict[str, float]) -> None:
    """Download FILE again and again at `rate` bytes/s until `deadline` (monotonic)."""
    loop = asyncio.get_running_loop()
    request = (f"GET {FILE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {AGENT}\r\n"
               "Connection: close\r\n\r\n").encode()
    buf = bytearray(CHUNK)
    while time.monotonic() < deadline:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setblocking(False)
        counts["downloads"] += 1
        got, start, ok = 0, time.monotonic(), False
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.sock_sendall(sock, request)
            head = b""
            while time.monotonic() < deadline:
                n = await asyncio.wait_for(loop.sock_recv_into(sock, buf), deadline -
                                           time.monotonic())
                if n == 0:
                    break
                if not head:
                    head = bytes(buf[:12])
                    if not head.startswith(b"HTTP/1.1 200"):
                        break
                got += n
                counts["bytes"] += n
                ahead = got / rate - (time.monotonic() - start)
                if ahead > 0:
                    await asyncio.sleep(min(ahead, max(deadline - time.monotonic(), 0)))
            ok = head.startswith(b"HTTP/1.1 200") and got >= size
        except (OSError, TimeoutError):
            ok = False
        finally:
            sock.close()
        if ok:
            counts["completed"] += 1
        elif time.monotonic() < deadline:
            counts["errors"] += 1
            await asyncio.sleep(0.2)


def _download_process(port: int, clients: int, size: int, rate: float, deadline_in: float,
                      out: mp.Queue[dict[str, float]]) -> None:
    """Run `clients` downloads in one event loop; put their counts on `out`."""
    counts = {"downloads": 0.0, "completed": 0.0, "errors": 0.0, "bytes": 0.0}
    deadline = time.monotonic() + deadline_in

    async def main() -> None:
        await asyncio.gather(*(_download(port, size, rate, deadline, counts)
                               for _ in range(clients)))

    asyncio.run(main())
    out.put(counts)


# ---------------------------------------------------------------------------- the init probe


def _probe(port: int, interval: float, stop: threading.Event, timeout: float,
           latencies: list[float], errors: list[str]) -> None:
    """Time `cmd=init` of the known host, one request at a time, until `stop` is set."""
    path = f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC}&arch=x86_64&platform=pcbios"
    while not stop.is_set():
        began = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"User-Agent": AGENT})
            answer = conn.getresponse()
            body = answer.read().decode(errors="replace")
            if answer.status != 200 or RETRY_MARK in body:
                errors.append(f"{answer.status}: {body[:80]!r}")
            else:
                latencies.append((time.monotonic() - began) * 1000)
        except OSError as err:
            errors.append(str(err))
        finally:
            conn.close()
        stop.wait(max(interval - (time.monotonic() - began), 0))


def measure(name: str, port: int, args: argparse.Namespace) -> Run:
    """Run the slow downloads against `port` for args.seconds while probing init."""
    size = args.size * 1024 * 1024
    procs = max(1, min(os.cpu_count() or 1, 4, args.clients))
    queue: mp.Queue[dict[str, float]] = mp.Queue()
    shares = [args.clients // procs + (i < args.clients % procs) for i in range(procs)]
    workers = [mp.Process(target=_download_process,
                          args=(port, n, size, args.rate * 1e6, args.seconds, queue))
               for n in shares if n]
    for w in workers:
        w.start()
    time.sleep(min(1.0, args.seconds / 4))  # let the downloads take their slots first
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    probe = threading.Thread(target=_probe, args=(port, args.probe_interval, stop,
                                                  args.seconds + 60, latencies, errors))
    began = time.monotonic()
    probe.start()
    totals = {"downloads": 0.0, "completed": 0.0, "errors": 0.0, "bytes": 0.0}
    for _ in workers:
        for key, value in queue.get(timeout=args.seconds + 120).items():
            totals[key] += value
    stop.set()
    probe.join(timeout=args.seconds + 120)
    for w in workers:
        w.join(timeout=30)
    elapsed = max(time.monotonic() - began, 1e-9)
    for err in errors[:3]:
        print(f"  {name}: init error: {err}", file=sys.stderr)
    return Run(name, latencies, len(errors), int(totals["downloads"]),
               int(totals["completed"]), int(totals["errors"]), totals["bytes"] / 1e6, elapsed)


# ---------------------------------------------------------------------------- setup


def prepare(work: Path, args: argparse.Namespace) -> dict[str, str]:
    """Create the store, the host and the file under `work`; return the server's environment."""
    env = server_env(work, HPS_RESOURCES_DIR=str(work / "resources"),
                     HPS_DNSMASQ_PIDFILE=str(work / "run" / "dnsmasq.pid"),
                     HPS_TRUSTED_PROXIES="127.0.0.1", HPS_LOCK_TIMEOUT="5")
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=work, check=True,
                   capture_output=True, timeout=60)
    from hps_api.store import FileStore, RecordId

    FileStore(work / "hps-config").update(RecordId.of_host("default", MAC),
                                          {"STATE": "INSTALLED"}, "bench:setup", create=True)
    target = work / "resources" / FILE.removeprefix("/")
    target.parent.mkdir(parents=True)
    block = b"\0" * (1024 * 1024)
    with target.open("wb") as out:
        for _ in range(args.size):
            out.write(block)
    for path in (work / "run", work / "log"):
        path.mkdir(exist_ok=True)
    return env


@contextlib.contextmanager
def nginx_front(work: Path, env: dict[str, str], front: int, back: int) -> Iterator[int]:
    """Run nginx with the rendered configuration in front of 127.0.0.1:`back` until the end;
    yield its master's pid."""
    from hps_api.services import nginx
    from hps_api.settings import load_settings

    settings = load_settings({**env, "HPS_BIND": f"127.0.0.1:{back}",
                              "HPS_FRONT_BIND": f"127.0.0.1:{front}"})
    conf = work / nginx.NGINX_CONF
    conf.write_text(nginx.render_nginx(settings, "default", user=nginx.worker_user()))
    with nginx_running(conf, settings.log_dir / nginx.ERROR_LOG,
                       nginx.runtime_dir(settings) / nginx.PID_FILE) as pid:
        yield pid


@contextlib.contextmanager
def nginx_running(conf: Path, error_log: Path, pidfile: Path) -> Iterator[int]:
    """Run `nginx -c conf` until the block ends; yield its master's pid (read from `pidfile`).

    Raises RuntimeError when nginx writes no pid file within NGINX_START_TIMEOUT.
    """
    subprocess.run([nginx_binary(), "-e", str(error_log), "-c", str(conf)], check=True,
                   timeout=30)
    deadline = time.monotonic() + NGINX_START_TIMEOUT
    while not pidfile.is_file() or not pidfile.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx wrote no pid file: {error_log.read_text()[-2000:]}")
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        yield pid
    finally:
        stop_nginx(pid)


def stop_nginx(pid: int) -> None:
    """Stop the nginx master `pid` (SIGTERM, SIGKILL after 15 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def nginx_binary() -> str:
    """Return the path of nginx; SystemExit when it is not installed."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        raise SystemExit("bench: needs nginx (apt-get install nginx)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--size", type=int, default=64, help="file size, MiB")
    parser.add_argument("--rate", type=float, default=2.0, help="per client, MB/s")
    parser.add_argument("--seconds", type=float, default=60.0, help="per run")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (0: auto)")
    parser.add_argument("--probe-interval", type=float, default=0.25)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hps-front-"))
    work.chmod(0o755)  # nginx's workers (www-data when root starts it) read the file
    try:
        env = prepare(work, args)
        back, front = free_port(), free_port()
        command = [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{back}",
                   "--workers", str(args.workers)]
        with running(command, env, work, f"http://127.0.0.1:{back}/api/v1/health"):
            baseline = measure("baseline: straight to gunicorn", back, args)
            with nginx_front(work, env, front, back):
                fronted = measure("front end: nginx, then gunicorn", front, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{dt.date.today()}, {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}: {args.clients} clients x {args.size} MiB at "
          f"{args.rate:g} MB/s each, {args.seconds:g} s per run, init every "
          f"{args.probe_interval:g} s\n")
    print("| path | init answers | p50 ms | p99 ms | max ms | init errors | "
          "downloads started / completed | download errors | download MB/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(baseline.row())
    print(fronted.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())

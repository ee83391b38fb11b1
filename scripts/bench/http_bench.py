#!/usr/bin/env python3
"""Pieces shared by the HTTP benchmarks (server.py, boot_storm): gunicorn masters on loopback,
the ceiling app, wrk and a Python load client, interleaved slices, worker CPU accounting.

Run as a script it only serves the ceiling app (`--serve-ceiling BIND --workers N
[--worker-class sync|gthread]`): the benchmarks start it that way, beside `hps-api serve`, with
exactly the options `hps-api serve` uses (hps_api.entry.server.gunicorn_options), so the two differ
only in the app (and, for `--worker-class sync`, in gunicorn's worker class: the other ceiling
this box could be served with).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    """What a load run measured (cpu_s: CPU seconds the server's processes used meanwhile)."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        """Return requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """Return the server's CPU time per request, in microseconds."""
        return self.cpu_s / self.requests * 1e6 if self.requests else 0.0

    @classmethod
    def combine(cls, slices: Sequence[Result]) -> Result:
        """Return the slices as one result; percentiles are request-weighted means."""
        count = sum(r.requests for r in slices)

        def weighted(pick: Callable[[Result], float]) -> float:
            return sum(pick(r) * r.requests for r in slices) / count if count else 0.0

        return cls(count, sum(r.seconds for r in slices), weighted(lambda r: r.p50_ms),
                   weighted(lambda r: r.p99_ms), sum(r.errors for r in slices),
                   sum(r.cpu_s for r in slices))


# ---------------------------------------------------------------------------- the ceiling app


def ceiling_app() -> object:
    """Return the trivial Flask app: `GET /ok` answers `ok`, nothing else happens."""
    from flask import Flask, Response

    app = Flask("bench_ceiling")

    @app.get("/ok")
    def ok() -> Response:
        return Response("ok\n", content_type="text/plain; charset=utf-8")

    return app


def ceiling_command(bind: str, workers: int, worker_class: str = "") -> list[str]:
    """Return the command that serves the ceiling app on `bind` (see the module docstring);
    `worker_class` replaces gunicorn's worker class of `hps-api serve` (sync, gthread)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", bind,
               "--workers", str(workers)]
    return command + (["--worker-class", worker_class] if worker_class else [])


def serve_ceiling(bind: str, workers: int, worker_class: str = "") -> None:
    """Run the ceiling app under gunicorn with `hps-api serve`'s options (does not return)."""
    from hps_api.entry.server import gunicorn_options, run_app
    from hps_api.settings import load_settings

    options = gunicorn_options(load_settings(), bind, workers)
    if worker_class:
        options["worker_class"] = worker_class
    run_app(ceiling_app(), options)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(work: Path, config_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """Return a server's environment: no inherited HPS_*, state and logs under `work`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update(HPS_CONFIG_DIR=str(config_dir or work / "hps-config"),
               HPS_LOG_DIR=str(work / "log"), **extra)
    return env


@contextlib.contextmanager
def running(command: Sequence[str], env: dict[str, str], work: Path,
            probe: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run a gunicorn master until the block ends; wait for `probe` to answer 200 first."""
    log = (work / "gunicorn.stderr").open("ab")
    process = subprocess.Popen(command, env=env, cwd=work, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        wait_until_up(process, probe, work)
        yield process
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


def workers_of(master: int) -> list[int]:
    """Return the pids of a gunicorn master's workers (its children)."""
    try:
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
    except OSError:
        return []
    return [int(pid) for pid in text.split()]


def cpu_seconds(master: int) -> float:
    """Return the CPU time (user + system) a master and its live workers have used so far."""
    total = 0
    for pid in (master, *workers_of(master)):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak RSS) of a process, in KiB (empty when it is gone)."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


# ---------------------------------------------------------------------------- load: wrk

#: cycles through the paths; with `expect`, an answer that is not 200, lacks `expect` or holds
#: `reject` (iPXE's retry script: errors reach iPXE as HTTP 200) counts as an error
WRK_SCRIPT = """
local paths = {%(paths)s}
local expect, reject = %(expect)s, %(reject)s
local threads = {}
wrk.headers["User-Agent"] = %(agent)s
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  i = 0
  bad = 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
if expect ~= "" then
  response = function(status, headers, body)
    if status ~= 200 or not body:find(expect, 1, true)
       or (reject ~= "" and body:find(reject, 1, true)) then
      bad = bad + 1
    end
  end
end
function done(summary, latency, requests)
  local e, b = summary.errors, 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("BENCH %%d %%d %%.1f %%.1f %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status + b))
end
"""


def wrk_load(base: str, paths: Sequence[str], connections: int, seconds: float,
             work: Path, agent: str, expect: str = "", reject: str = "") -> Result:
    """Return what wrk measured cycling through `paths` for `seconds` (with `expect`, every
    answer is checked: see WRK_SCRIPT)."""
    lua_paths = ", ".join(json.dumps(p) for p in paths)
    return run_wrk(base, WRK_SCRIPT % {"paths": lua_paths, "agent": json.dumps(agent),
                                       "expect": json.dumps(expect),
                                       "reject": json.dumps(reject)},
                   connections, seconds, work)


def run_wrk(base: str, script: str, connections: int, seconds: float, work: Path,
            threads: int = 0) -> Result:
    """Return what wrk measured with a Lua `script` whose done() writes the BENCH line:
    `BENCH <requests> <microseconds> <p50 us> <p99 us> <errors>`."""
    path = work / "mix.lua"
    path.write_text(script)
    threads = threads or max(1, min(os.cpu_count() or 1, connections))
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(path), base + "/"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    _, count, micros, p50, p99, errors = line.split()
    return Result(int(count), int(micros) / 1e6, float(p50) / 1000, float(p99) / 1000,
                  int(errors))


# ---------------------------------------------------------------------------- load: Python


def _client_thread(port: int, paths: Sequence[str], offset: int, until: float, agent: str,
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
            conn.request("GET", path, headers={"User-Agent": agent})
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
                    seconds: float, agent: str) -> tuple[list[float], int]:
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [[0] for _ in range(threads)]
    time.sleep(max(0.0, start - time.time()))
    until = time.monotonic() + seconds
    workers = [threading.Thread(target=_client_thread,
                                args=(port, paths, (first + n) * 7919, until, agent,
                                      latencies[n], errors[n]))
               for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [x for part in latencies for x in part], sum(e[0] for e in errors)


def python_load(base: str, paths: Sequence[str], connections: int, seconds: float,
                agent: str) -> Result:
    """Return what the Python client measured: processes x threads, one connection each."""
    port = int(base.rsplit(":", 1)[1])
    procs = max(1, min(os.cpu_count() or 1, 4))
    per_proc = [connections // procs + (1 if n < connections % procs else 0)
                for n in range(procs)]
    start = time.time() + 0.5
    with mp.get_context("spawn").Pool(procs) as pool:
        jobs = [pool.apply_async(_client_process,
                                 (port, list(paths), count, sum(per_proc[:n]), start, seconds,
                                  agent))
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


def pick_client(wanted: str) -> str:
    """Return `wrk` or `python`: wrk when asked or, for auto, when it is installed."""
    if wanted == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if wanted == "wrk" and not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install wrk), try --client python")
    return wanted


# ---------------------------------------------------------------------------- interleaving


def interleaved(runs: Sequence[Callable[[float], Result]], seconds: float, rounds: int,
                say: Callable[[str], None], names: Sequence[str],
                warmup: float = 1.0) -> list[Result]:
    """Return one result per run: a warm-up each, then `rounds` interleaved slices each.

    Interleaving (ceiling, mix 1, mix 2, ..., ceiling, mix 1, ...) spreads drift on a shared
    machine over every mix alike, as the store benchmark does. `runs[n](seconds)` measures one
    slice of mix n.
    """
    part = seconds / rounds
    say(f"warm-up: {warmup:g} s per mix; then {rounds} rounds of {part:g} s per mix")
    for run in runs:
        run(warmup)
    slices: list[list[Result]] = [[] for _ in runs]
    for round_no in range(rounds):
        for n, run in enumerate(runs):
            say(f"  round {round_no + 1}: {names[n]}")
            slices[n].append(run(part))
    return [Result.combine(parts) for parts in slices]


def measured(master: subprocess.Popen[bytes], load: Callable[[], Result]) -> Result:
    """Return `load()`'s result with the CPU time `master`'s processes used meanwhile."""
    before = cpu_seconds(master.pid)
    result = load()
    used = cpu_seconds(master.pid) - before
    return Result(result.requests, result.seconds, result.p50_ms, result.p99_ms,
                  result.errors, used)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the ceiling app: `--serve-ceiling BIND --workers N`."""
    import argparse

    parser = argparse.ArgumentParser(description="serve the benchmarks' ceiling app")
    parser.add_argument("--serve-ceiling", metavar="BIND", required=True)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--worker-class", choices=("gthread", "sync"), default="")
    args = parser.parse_args(argv)
    serve_ceiling(args.serve_ceiling, args.workers, args.worker_class)
    return 0


if __name__ == "__main__":
    sys.exit(main())

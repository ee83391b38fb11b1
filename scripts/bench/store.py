#!/usr/bin/env python3
"""Store benchmark: FileStore operations against raw file I/O measured in the same run.

    .venv/bin/python scripts/bench/store.py [--seconds S] [--hosts N] [--procs P] [--markdown]

Everything happens in a temporary directory under the system temp dir (removed afterwards):

- store operations per second (`get`, `items`, `set`, a 5-key `update`, and `set` from P
  processes on P records and on one shared record), each run for S seconds;
- baselines on the same bytes: a raw read (open + read + close) and a raw durable write (temp
  file + flush + fsync + os.replace + directory fsync), alone and from P processes;
- CLI start-up: `host_config MAC get KEY` against `python -c pass`, the import time of
  `hps_api.cli.config` and whether importing it pulls in Flask.

The ratio column is the store's time per operation divided by the baseline's (2.0x = twice the
baseline's cost). Nothing here asserts a time: machines are shared and noisy (docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

CLUSTER = "default"
ACTOR = "bench"
CLI_RUNS = 30
SLICES = 4  # each measurement is split into this many slices, alternated with its baseline
IMPORTTIME_RUNS = 5
BENCH_KEY = "BENCH"
GET_KEY = "OS_ID"  # read by `get` and the CLI; never changed by the write benchmarks
UPDATE_KEYS = ("TYPE", "HOSTNAME", "IP", "NETMASK", "STATE")
HOST_RECORD = {
    "MAC": "52:54:00:aa:00:00", "STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001",
    "IP": "10.99.1.10", "NETMASK": "255.255.255.0", "GATEWAY": "10.99.1.1",
    "DNS": "10.99.1.1", "DOMAIN": "lab.example.org", "OS_ID": "x86_64:rocky:10",
    "ARCH": "x86_64", "BOOT_MODE": "uefi", "DISK": "/dev/sda", "STORAGE_IP": "10.99.2.10",
    "STORAGE_NETMASK": "255.255.255.0", "RACK": "r01", "SLOT": "u12",
    "SERIAL": "CZ12345678", "SELFTEST": "pass", BENCH_KEY: "init",
}

Op = Callable[[], object]


@dataclass(frozen=True)
class Row:
    """One line of a result table."""

    operation: str
    result: str
    baseline: str
    ratio: str


# -- set-up ------------------------------------------------------------------------------------


def host_mac(index: int) -> str:
    """Return the 12-digit MAC of the index-th benchmark host."""
    return f"525400{index:06x}"


def host_rid(index: int) -> RecordId:
    """Return the record id of the index-th benchmark host."""
    return RecordId.of_host(CLUSTER, host_mac(index))


def build_store(root: Path, hosts: int) -> FileStore:
    """Create a store with one cluster and `hosts` host records of ~20 keys each.

    Host 0 is written through the store; the others are byte copies of it (same size, no journal
    lines), which is enough for a realistic directory and much faster than N durable writes.
    """
    store = FileStore(root)
    initialise(store, CLUSTER, ACTOR)
    store.update(host_rid(0), HOST_RECORD, ACTOR, create=True)
    data = store.layout.path(host_rid(0)).read_bytes()
    for index in range(1, max(hosts, 1)):
        store.layout.path(host_rid(index)).write_bytes(data)
    return store


# -- operations --------------------------------------------------------------------------------


def raw_read(path: Path) -> Op:
    """Return an op reading a file: open + read + close, nothing else."""
    def op() -> bytes:
        with open(path, "rb") as handle:
            return handle.read()
    return op


def raw_durable_write(target: Path, data: bytes, tag: str = "") -> Op:
    """Return an op writing `data` durably over `target` the way the store does, minus the
    lock, the parse checks and the journal: temp file, fsync, os.replace, directory fsync."""
    tmp = target.with_name(f".{target.name}.{tag or os.getpid()}.tmp")

    def op() -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return op


def store_get(store: FileStore, rid: RecordId) -> Op:
    """Return an op reading one key of a record."""
    return lambda: store.get(rid, GET_KEY)


def store_items(store: FileStore, rid: RecordId) -> Op:
    """Return an op reading a whole record."""
    return lambda: store.items(rid)


def store_set(store: FileStore, rid: RecordId, tag: str = "") -> Op:
    """Return an op setting one key, alternating its value so that every call writes."""
    values = itertools.cycle((f"{tag}a", f"{tag}b"))
    return lambda: store.update(rid, {BENCH_KEY: next(values)}, ACTOR)


def store_update(store: FileStore, rid: RecordId) -> Op:
    """Return an op changing 5 keys in one update, alternating values so every call writes."""
    sets = itertools.cycle([{k: f"{HOST_RECORD[k]}-{n}" for k in UPDATE_KEYS} for n in (1, 2)])
    return lambda: store.update(rid, next(sets), ACTOR)


# -- measuring ---------------------------------------------------------------------------------


def run_for(op: Op, seconds: float) -> tuple[int, float]:
    """Call `op` until `seconds` have passed; return (calls, elapsed seconds)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        op()
        calls += 1
        now = time.perf_counter()
    return calls, now - start


def interleaved(ops: Sequence[Op], seconds: float, sync: Callable[[], object] = lambda: None
                ) -> list[float]:
    """Return the calls per second of each op, measured for `seconds` each in SLICES
    alternating slices (A B C A B C ...) so that drift on a noisy machine hits them alike.

    Each op is warmed up first; `sync` runs before every slice (workers pass a barrier).
    """
    for op in ops:
        run_for(op, min(0.2, seconds / 10))
    totals = [[0, 0.0] for _ in ops]
    for _ in range(SLICES):
        for op, total in zip(ops, totals, strict=True):
            sync()
            calls, elapsed = run_for(op, seconds / SLICES)
            total[0] += calls
            total[1] += elapsed
    return [calls / elapsed for calls, elapsed in totals]


def make_worker_op(kind: str, root: Path, index: int) -> Op:
    """Build the op one concurrent worker repeats (see `concurrent_rates` for the kinds)."""
    store = FileStore(root)
    mine = store.layout.path(host_rid(index))
    shared = store.layout.path(host_rid(0))
    if kind == "set-own":
        return store_set(store, host_rid(index))
    if kind == "set-shared":
        return store_set(store, host_rid(0), tag=f"w{index}")
    data = shared.read_bytes()
    target = mine if kind == "raw-own" else shared
    return raw_durable_write(target, data, tag=f"w{index}")


def _worker(kinds: Sequence[str], root: str, index: int, seconds: float, barrier: object,
            results: object) -> None:
    """Process body: build the ops, run them interleaved in step with the other workers."""
    ops = [make_worker_op(kind, Path(root), index) for kind in kinds]
    results.put(interleaved(ops, seconds, sync=barrier.wait))  # type: ignore[attr-defined]


def concurrent_rates(kinds: Sequence[str], root: Path, procs: int, seconds: float
                     ) -> list[float]:
    """Return the total ops/s of each kind, run by `procs` processes at once, interleaved.

    Kinds: `set-own` (store set, one record each), `set-shared` (store set, all on host 0),
    `raw-own` / `raw-shared` (raw durable write over one file each / one shared file, no lock).
    """
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(kinds, str(root), i, seconds, barrier, results))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    rates = [results.get(timeout=seconds * len(kinds) * 4 + 60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        if worker.exitcode != 0:
            raise RuntimeError(f"{kinds} worker exited with {worker.exitcode}")
    return [sum(column) for column in zip(*rates, strict=True)]


# -- store table -------------------------------------------------------------------------------


def fmt_rate(ops: float, per_op: bool = True) -> str:
    """Return `12,345 ops/s (81 µs/op)`, or `12,345 ops/s total` for concurrent runs."""
    if not per_op:
        return f"{ops:,.0f} ops/s total"
    per = 1e6 / ops
    return f"{ops:,.0f} ops/s ({per:,.{1 if per < 100 else 0}f} µs/op)"


def ratio_row(name: str, ops: float, base_name: str, base_ops: float, per_op: bool = True
              ) -> Row:
    """Return a row comparing an op's rate with its baseline's (ratio = time vs baseline)."""
    return Row(name, fmt_rate(ops, per_op), f"{base_name}: {fmt_rate(base_ops, per_op)}",
               f"{base_ops / ops:.2f}x")


def store_rows(store: FileStore, seconds: float, procs: int, say: Callable[[str], None]
               ) -> list[Row]:
    """Measure the store table: single-process reads and writes, then the concurrent writes."""
    rid, path = host_rid(0), store.layout.path(host_rid(0))
    say("raw read / get / items, interleaved")
    read, get, items = interleaved(
        [raw_read(path), store_get(store, rid), store_items(store, rid)], seconds)
    say("raw durable write / set / update, interleaved")
    raw = raw_durable_write(path.with_name("raw-baseline.conf"), path.read_bytes())
    write, set_, update = interleaved(
        [raw, store_set(store, rid), store_update(store, rid)], seconds)
    return [
        ratio_row("`get` one key (20-key host record)", get, "raw read", read),
        ratio_row("`items` whole record", items, "raw read", read),
        ratio_row("`set` one key", set_, "raw durable write", write),
        ratio_row("`update` 5 keys", update, "raw durable write", write),
        *concurrent_rows(store.layout.root, seconds, procs, say),
    ]


def concurrent_rows(root: Path, seconds: float, procs: int, say: Callable[[str], None]
                    ) -> list[Row]:
    """Measure `set` from `procs` processes on their own records and on one shared record."""
    say(f"{procs} processes: raw durable write / set on {procs} records, interleaved")
    raw_own, own = concurrent_rates(("raw-own", "set-own"), root, procs, seconds)
    say(f"{procs} processes: raw durable write / set on 1 shared record, interleaved")
    raw_shared, shared = concurrent_rates(("raw-shared", "set-shared"), root, procs, seconds)
    return [
        ratio_row(f"`set`, {procs} processes, {procs} records", own,
                  f"raw durable write, {procs} processes, {procs} files", raw_own, per_op=False),
        ratio_row(f"`set`, {procs} processes, 1 shared record", shared,
                  f"raw durable write, {procs} processes, 1 file, no lock", raw_shared,
                  per_op=False),
    ]


# -- CLI start-up ------------------------------------------------------------------------------


def wall_times(cmds: Sequence[Sequence[str]], runs: int, cwd: Path) -> list[list[float]]:
    """Run each command `runs` times, interleaved so that noise hits them alike, after one
    warm-up round; return each command's wall times in ms."""
    times: list[list[float]] = [[] for _ in cmds]
    for n in range(runs + 1):
        for cmd, series in zip(cmds, times, strict=True):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
            if n:
                series.append((time.perf_counter() - start) * 1000)
    return times


def p90(values: list[float]) -> float:
    """Return the 90th percentile."""
    return statistics.quantiles(values, n=10)[8]


def import_ms(cwd: Path) -> tuple[float, float]:
    """Return medians of (import hps_api.cli.config, interpreter start-up imports) in ms.

    Sums the cumulative column of the top-level lines of `-X importtime`; lines up to and
    including `site` are the interpreter's own start-up, the rest are the import statement's.
    """
    ours, startup = [], []
    for _ in range(IMPORTTIME_RUNS):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c",
                               "import hps_api.cli.config"],
                              cwd=cwd, check=True, capture_output=True, text=True)
        before, after = split_importtime(proc.stderr)
        startup.append(before / 1000)
        ours.append(after / 1000)
    return statistics.median(ours), statistics.median(startup)


def split_importtime(stderr: str) -> tuple[int, int]:
    """Return the summed top-level cumulative µs (before and including `site`, after it)."""
    before = after = 0
    seen_site = False
    for line in stderr.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit() or parts[2][1:].startswith(" "):
            continue
        if seen_site:
            after += int(parts[1])
        else:
            before += int(parts[1])
            seen_site = parts[2].strip() == "site"
    return before, after


def flask_imported(cwd: Path) -> bool:
    """Return True when importing hps_api.cli.config imports Flask (it must not)."""
    code = "import sys, hps_api.cli.config; print('flask' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return proc.stdout.strip() == "True"


def host_config_cmd(root: Path) -> list[str]:
    """Return the `host_config --config-dir ROOT MAC get OS_ID` command line."""
    script = Path(sys.executable).parent / "host_config"
    exe = str(script) if script.exists() else shutil.which("host_config")
    if exe is None:
        raise SystemExit("host_config not found: install the package into this interpreter")
    return [exe, "--config-dir", str(root), host_mac(0), "get", GET_KEY]


def cli_rows(root: Path, cwd: Path, say: Callable[[str], None]) -> list[Row]:
    """Measure CLI start-up against bare `python -c pass`, import time and the Flask check."""
    say(f"CLI start-up: {CLI_RUNS} runs each")
    cmd = host_config_cmd(root)
    answer = subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout
    if answer.strip() != HOST_RECORD[GET_KEY]:
        raise SystemExit(f"host_config answered {answer!r}, not {HOST_RECORD[GET_KEY]!r}")
    cli, bare = wall_times([cmd, [sys.executable, "-c", "pass"]], CLI_RUNS, cwd)
    ours, startup = import_ms(cwd)
    flask = "**yes**" if flask_imported(cwd) else "no"
    med, bare_med = statistics.median(cli), statistics.median(bare)
    return [
        Row("`host_config MAC get KEY` (wall, subprocess)",
            f"median {med:.1f} ms, p90 {p90(cli):.1f} ms",
            f"`python -c pass`: median {bare_med:.1f} ms, p90 {p90(bare):.1f} ms",
            f"{med / bare_med:.2f}x (+{med - bare_med:.1f} ms)"),
        Row("`import hps_api.cli.config` (`-X importtime`, top-level cumulative)",
            f"{ours:.1f} ms", f"interpreter start-up imports: {startup:.1f} ms", "-"),
        Row("Flask imported by `hps_api.cli.config`", flask, "-", "-"),
    ]


# -- output ------------------------------------------------------------------------------------


def table(title: str, first: str, rows: list[Row]) -> str:
    """Return a markdown table with a heading line."""
    lines = [f"### {title}", "", f"| {first} | result | baseline (same run) | ratio |",
             "|---|---|---|---|"]
    lines += [f"| {r.operation} | {r.result} | {r.baseline} | {r.ratio} |" for r in rows]
    return "\n".join(lines) + "\n"


def machine_info(where: Path) -> list[str]:
    """Return lines describing the machine, the interpreter and the temp dir's filesystem."""
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(where)], capture_output=True,
                        text=True).stdout.strip() or "unknown"
    return [f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- nproc: {len(os.sched_getaffinity(0))} ({cpu_model()})",
            f"- python: {platform.python_version()} ({sys.executable})",
            f"- kernel: {platform.system()} {platform.release()}",
            f"- temp dir: {where.parent} on {fs} (`stat -f -c %T`)"]


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="duration of each throughput measurement (default 2)")
    parser.add_argument("--hosts", type=int, default=500,
                        help="host records in the benchmark cluster (default 500)")
    parser.add_argument("--procs", type=int, default=8,
                        help="processes in the concurrent runs (default 8, at most --hosts)")
    parser.add_argument("--markdown", action="store_true", help="print only the tables")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole benchmark in a fresh temp dir and print the tables."""
    opts = parse_args(argv)
    procs = max(1, min(opts.procs, opts.hosts))

    def say(text: str) -> None:
        if not opts.markdown:
            print(f"... {text}", file=sys.stderr, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="hps-bench-", dir=tempfile.gettempdir()))
    try:
        root = tmp / "hps-config"
        say(f"building a store with {opts.hosts} hosts in {root}")
        store = build_store(root, opts.hosts)
        rows = store_rows(store, opts.seconds, procs, say)
        cli = cli_rows(root, tmp, say)
        if not opts.markdown:
            print("\n".join(machine_info(tmp)) + "\n")
        print(table(f"Store ({opts.seconds:g} s per measurement, {opts.hosts} hosts)",
                    "operation", rows))
        print(table("CLI start-up", "measurement", cli))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

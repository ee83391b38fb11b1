#!/usr/bin/env python3
"""Store backends benchmark: `init` and `determine_state` on the etcd store against the files.

    .venv/bin/python scripts/bench/etcd_store.py [--hosts N] [--requests R] [--rounds K]
                                                 [--etcd URL] [--markdown]

Everything lives in a temporary directory (removed afterwards): a file store and, unless --etcd
names a running cluster (`etcd://HOST:PORT,.../PREFIX`; a fresh prefix is used under it), a
three-member etcd cluster on free loopback ports (tests/etcd_cluster.py: Debian's etcd-server,
data on /dev/shm when it exists), stopped at the end. Both stores get the same N hosts
(STATE=INSTALLED, TYPE=SCH, an OS record: `init` answers a local boot, with its boot stamp):
through `update` in the file store, and in etcd as their text written MAX_TXN_OPS records per
transaction (10,000 hosts seed in seconds instead of minutes; the records are the same).

Requests are WSGI calls into the real app (hps_api.web.app.build_app, one per backend) in this
process, as iPXE makes them from a loopback address, cycling through the hosts, in K interleaved
slices of R requests per backend and request, after a warm-up. For each: requests per second of
one caller, p50 and p99 wall time, the app's CPU time per request (this process), and for etcd
the CPU time the three members spent (from /proc), per request. Every answer is checked (HTTP
200, not iPXE's retry script). Nothing asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "default"
OS_ID = "x86_64:rocky:10"
IPXE_AGENT = "iPXE/1.21.1+ (g4bd064de)"
RETRY_MARK = b"Retrying in"


@dataclass
class Sample:
    """What one backend's requests of one kind cost, summed over the slices."""

    walls: list[float] = field(default_factory=list)
    app_cpu: float = 0.0
    etcd_cpu: float = 0.0

    def row(self, name: str) -> str:
        count = len(self.walls)
        walls = sorted(self.walls)
        p99 = walls[min(count - 1, int(count * 0.99))]
        return (f"| {name} | {count / sum(walls):,.0f} | {statistics.median(walls) * 1e3:.2f} | "
                f"{p99 * 1e3:.2f} | {self.app_cpu / count * 1e6:,.0f} | "
                f"{self.etcd_cpu / count * 1e6:,.0f} |")


def host_mac(index: int) -> str:
    """Return the seeded MAC number `index`."""
    return f"52:54:00:be:{index // 256:02x}:{index % 256:02x}"


def seed(store: Any, hosts: int) -> list[str]:
    """Give a store the active cluster, an OS record and `hosts` INSTALLED hosts of type SCH."""
    from hps_api.model.osreg import add_os
    from hps_api.store import RecordId
    from hps_api.store.bootstrap import initialise

    initialise(store, CLUSTER, "bench")
    store.update(RecordId.of_cluster(CLUSTER), {"OS_SCH": OS_ID}, "bench")
    add_os(store, OS_ID, {"REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
                          "INITRD": "images/pxeboot/initrd.img", "STATUS": "prod",
                          "HPS_TYPES": "SCH"}, "bench")
    macs = [host_mac(i) for i in range(hosts)]
    values = [{"STATE": "INSTALLED", "TYPE": "SCH", "PROFILE": "DEFAULT", "OS_ID": OS_ID,
               "ARCH": "x86_64", "HOSTNAME": f"sch-{n + 1:05d}"} for n in range(hosts)]
    if hasattr(store, "gateway"):
        seed_etcd_hosts(store, macs, values)
        return macs
    for mac, host in zip(macs, values, strict=True):
        store.update(RecordId.of_host(CLUSTER, mac), host, "bench", create=True)
    return macs


def seed_etcd_hosts(store: Any, macs: Sequence[str], values: Sequence[dict[str, str]]) -> None:
    """Write the hosts' records into an etcd store, MAX_TXN_OPS per transaction."""
    from hps_api.store import RecordId
    from hps_api.store import etcdgateway as gw
    from hps_api.store.etcdstore import MAX_TXN_OPS
    from hps_api.store.journal import utc_now
    from hps_api.store.kvfile import format_record, from_mapping

    ops = [gw.put(store.record_key(RecordId.of_host(CLUSTER, mac)),
                  format_record(from_mapping({**host, "UPDATED": utc_now()})))
           for mac, host in zip(macs, values, strict=True)]
    for start in range(0, len(ops), MAX_TXN_OPS):
        store.gateway.txn([], ops[start:start + MAX_TXN_OPS], [])


def call(app: Any, query: str) -> tuple[str, bytes]:
    """Return the status and body of one GET of the legacy endpoint, as iPXE sends it."""
    environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/cgi-bin/boot_manager.sh",
               "QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": "localhost",
               "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost",
               "HTTP_USER_AGENT": IPXE_AGENT, "wsgi.input": io.BytesIO(),
               "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
               "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False}
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _h, _e=None: status.append(s)))
    return status[0], body


def queries(kind: str, macs: Sequence[str]) -> Iterator[str]:
    """Yield the query strings of one kind of request, cycling through the hosts."""
    extra = "&arch=x86_64&platform=pcbios" if kind == "init" else ""
    while True:
        for mac in macs:
            yield f"cmd={kind}&mac={mac}{extra}"


def etcd_cpu(pids: Sequence[int]) -> float:
    """Return the CPU seconds the etcd members have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def run_slice(app: Any, source: Iterator[str], count: int, sample: Sample,
              pids: Sequence[int]) -> None:
    """Make `count` requests, adding their times to `sample`; raise on a wrong answer."""
    cpu, members = time.process_time(), etcd_cpu(pids)
    for _ in range(count):
        started = time.perf_counter()
        status, body = call(app, next(source))
        sample.walls.append(time.perf_counter() - started)
        if not status.startswith("200") or RETRY_MARK in body:
            raise RuntimeError(f"unexpected answer {status}: {body[:300]!r}")
    sample.app_cpu += time.process_time() - cpu
    sample.etcd_cpu += etcd_cpu(pids) - members


@contextmanager
def etcd_url(given: str | None, work: Path) -> Iterator[tuple[str, list[int]]]:
    """Yield an HPS_STORE URL with a fresh prefix, and the pids of the members started here."""
    import uuid

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    if given:
        yield given.rstrip("/").rsplit("/", 1)[0] + "/" + prefix, []
        return
    sys.path.insert(0, str(REPO / "tests"))
    from etcd_cluster import EtcdCluster

    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else str(work)
    root = Path(tempfile.mkdtemp(prefix="hps-bench-etcd-", dir=base))
    cluster = EtcdCluster.start(root)
    try:
        yield cluster.url(prefix), [m.process.pid for m in cluster.members if m.process]
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def measure(apps: dict[str, Any], macs: Sequence[str], args: argparse.Namespace,
            pids: Sequence[int], say: Callable[[str], None]) -> dict[str, Sample]:
    """Return a sample per backend and request, in interleaved slices after a warm-up."""
    samples = {f"{kind} ({name})": Sample() for kind in ("determine_state", "init")
               for name in apps}
    sources = {key: queries(key.split()[0], macs) for key in samples}
    for key in samples:
        run_slice(apps[key.split("(")[1][:-1]], sources[key], min(50, args.requests), Sample(),
                  pids)
    for slice_no in range(args.rounds):
        for key, sample in samples.items():
            run_slice(apps[key.split("(")[1][:-1]], sources[key], args.requests, sample, pids)
        say(f"slice {slice_no + 1}/{args.rounds} done")
    return samples


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000, help="hosts in each store")
    parser.add_argument("--requests", type=int, default=300, help="requests per slice")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved slices")
    parser.add_argument("--etcd", help="an etcd://HOST:PORT,.../PREFIX to use instead")
    parser.add_argument("--markdown", action="store_true", help="print only the table")
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.requests < 1 or args.rounds < 1:
        parser.error("--hosts, --requests and --rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from hps_api.settings import Settings
    from hps_api.store import FileStore
    from hps_api.store.factory import open_store
    from hps_api.web.app import build_app

    def say(text: str) -> None:
        if not args.markdown:
            print(text, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="hps-bench-") as tmp:
        work = Path(tmp)
        with etcd_url(args.etcd, work) as (url, pids):
            apps = {}
            for name, store_url in (("files", ""), ("etcd", url)):
                settings = Settings(config_dir=work / name / "config", log_dir=work / name,
                                    resources_dir=work / name / "resources", metrics=False,
                                    store=store_url, arp_table=work / "arp",
                                    dhcp_leases=work / "leases")
                store = open_store(settings)
                say(f"seeding {args.hosts} hosts into {name} "
                    f"({'files' if isinstance(store, FileStore) else url})")
                macs = seed(store, args.hosts)
                apps[name] = build_app(settings, store)
            samples = measure(apps, macs, args, pids, say)
    lines = ["| request (store) | req/s, one caller | p50 ms | p99 ms | app CPU µs/req | "
             "etcd CPU µs/req |", "|---|---:|---:|---:|---:|---:|"]
    lines += [sample.row(name) for name, sample in samples.items()]
    if not args.markdown:
        print(f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"{args.hosts} hosts, {args.rounds} x {args.requests} requests each")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

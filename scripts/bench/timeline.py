#!/usr/bin/env python3
"""Timeline benchmark: what a host's timeline costs at 10,000 hosts with 100 MB logs.

    .venv/bin/python scripts/bench/timeline.py [--hosts 10000] [--log-mb 100] [--runs 15]

A store in a temporary directory (removed afterwards) gets `--hosts` hosts as
scripts/bench/ui.py seeds them, a cluster journal of 20 lines per host, and HPS_LOG_DIR gets a
day of a busy IPS: boots and node reports of hosts picked at random until `hps-api.log` holds
`--log-mb` MB, with the lines the same boots write to gunicorn's `access.log`, nginx's
`nginx-access.log`, `nodes.log` and dnsmasq's log, every file in time order, and a lease per
host. Four hosts have a story of their own:

- `installing`: its install began 10 minutes ago and is in its `installing` phase;
- `installed 3 h ago`: installed 3 hours ago (its journal says when), booted from disk since;
- `idle`: installed 20 days ago, no line in any log (the log begins after its last boot: only
  the lease file and the log's first line are read);
- `configured, silent`: configured 20 days ago and not booted since (its story may be anywhere:
  the event log is read to its cap).

For each it measures, in this process (warm page cache), the median and slowest of `--runs`:
the timeline alone (`host_timeline` given the record and journal, as the host page calls it),
`GET /api/v1/hosts/<mac>/timeline` (which reads the journal itself), and the host page with
its Timeline section and without (the section's function replaced by an empty one), and how
many bytes of the logs the timeline read. Nothing here asserts a time (docs/timeline.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ui

DAY = 86400.0


def stamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mac_of(n: int) -> str:
    return f"5254{n + 1:08x}"


def hyphens(mac: str) -> str:
    return "-".join(mac[i:i + 2] for i in range(0, 12, 2))


def ip_of(n: int) -> str:
    return f"10.99.{(n + 10) // 256}.{(n + 10) % 256}"


class Logs:
    """Lines of each file as (time, text), written in time order at the end."""

    def __init__(self) -> None:
        self.lines: dict[str, list[tuple[float, str]]] = {
            name: [] for name in ("hps-api.log", "access.log", "nginx-access.log", "nodes.log",
                                  "dnsmasq.log")}

    def event(self, at: float, mac: str, session: str, client: str, message: str) -> None:
        self.lines["hps-api.log"].append((at, f"{stamp(at)} INFO {mac} {session} {client} "
                                              f"{message}"))

    def access(self, at: float, ip: str, target: str, size: int = 512, ms: int = 4) -> None:
        done = datetime.fromtimestamp(at + ms / 1000, UTC)
        self.lines["access.log"].append((at, f'{ip} [{done:%d/%b/%Y:%H:%M:%S +0000}] "GET '
                                             f'{target} HTTP/1.1" 200 {size} {ms}ms "iPXE/1.21.1"'))

    def nginx(self, at: float, ip: str, path: str, cmd: str = "", mac: str = "") -> None:
        done = datetime.fromtimestamp(at + 0.002, UTC)
        self.lines["nginx-access.log"].append((at, f'{done:%Y-%m-%dT%H:%M:%S+00:00} {ip} GET '
                                                   f'"{path}" 200 512 0.002 0.002 "{cmd}" '
                                                   f'"{mac}"'))

    def syslog(self, at: float, ip: str, text: str) -> None:
        self.lines["nodes.log"].append((at, f"{stamp(at)[:-1]}.000000+00:00 {ip} node {text}"))

    def ack(self, at: float, ip: str, mac: str) -> None:
        local = time.localtime(at)
        self.lines["dnsmasq.log"].append((at, f"{time.strftime('%b %e %H:%M:%S', local)} "
                                              f"dnsmasq-dhcp[812]: 1 DHCPACK(br0) {ip} "
                                              f"{hyphens(mac).replace('-', ':')} node"))

    def write(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, lines in self.lines.items():
            lines.sort(key=lambda line: line[0])
            (directory / name).write_text("".join(f"{text}\n" for _, text in lines))


def background(logs: Logs, hosts: int, now: float, log_mb: int, rng: random.Random,
               skip: set[int]) -> None:
    """A day of boots and node reports of random hosts (not those of `skip`), until the event
    log holds log_mb MB."""
    budget, size = log_mb * 1_000_000, 0
    while size < budget:
        n = rng.randrange(hosts)
        if n in skip:
            continue
        at = now - DAY + rng.random() * (DAY - 900)
        mac, ip, session = mac_of(n), ip_of(n), f"{rng.getrandbits(24):06x}"
        logs.event(at, mac, session, "ipxe", "init: localboot (INSTALLED: booting from the "
                                             "local disk)")
        logs.event(at + 30, mac, session, "cli", "[hps-node] node library loaded, health ok")
        logs.event(at + 31, mac, session, "cli", "cmd=host_variable ok")
        logs.access(at - 1, ip, "/boot.ipxe")
        logs.access(at, ip, f"/cgi-bin/boot_manager.sh?cmd=init&mac={hyphens(mac)}&arch=*")
        logs.access(at + 30, ip, f"/cgi-bin/boot_manager.sh?cmd=log_message&mac={mac}")
        logs.access(at + 31, ip, f"/cgi-bin/boot_manager.sh?cmd=host_variable&mac={mac}&name=X")
        logs.nginx(at - 1, ip, "/boot.ipxe")
        logs.nginx(at, ip, "/cgi-bin/boot_manager.sh", "init", hyphens(mac))
        logs.syslog(at + 40, ip, "hps-node: started")
        logs.ack(at - 3, ip, mac)
        size += sum(len(text) + 1 for _, text in logs.lines["hps-api.log"][-3:])


def story(logs: Logs, n: int, start: float) -> None:
    """A host's install from `start`: DHCP, bootstrap, a minute of menu, the install."""
    mac, ip, session = mac_of(n), ip_of(n), "5703ed"
    logs.ack(start - 10, ip, mac)
    logs.access(start - 8, ip, "/boot.ipxe")
    for poll in range(0, 61, 5):
        logs.event(start + poll, mac, session, "ipxe", "init: menu (UNCONFIGURED: waiting)")
        logs.access(start + poll, ip, f"/cgi-bin/boot_manager.sh?cmd=init&mac={hyphens(mac)}")
    logs.event(start + 66, mac, session, "ipxe", "init: install (CONFIGURED: install of SCH)")
    logs.access(start + 67, ip, "/distros/rocky/10/vmlinuz", 14_000_000, 2000)
    logs.access(start + 69, ip, "/distros/rocky/10/initrd.img", 90_000_000, 5000)
    logs.event(start + 95, mac, session, "script", "kickstart served: SCH x86_64:rocky:10")
    logs.event(start + 100, mac, session, "script", "[anaconda] installing packages")
    logs.syslog(start + 110, ip, "anaconda[1]: disk partitioned")


def seed(work: Path, hosts: int, log_mb: int) -> dict[str, str]:
    """Seed the store, journal and logs; return story -> MAC."""
    from hps_api.store import FileStore, RecordId

    root = work / "hps-config"
    ui.seed(root, hosts)
    store = FileStore(root)
    now, rng = time.time(), random.Random(18)
    logs = Logs()
    picked = {"installing": 7, "installed 3 h ago": 14, "idle": 21,  # SCH hosts (n % 7 == 0)
              "configured, silent": 28}
    background(logs, hosts, now, log_mb, rng, set(picked.values()))
    story(logs, picked["installing"], now - 600)
    story(logs, picked["installed 3 h ago"], now - 3 * 3600)
    logs.event(now - 3 * 3600 + 900, mac_of(14), "5703ed", "script",
               "state INSTALLING -> INSTALLED")
    logs.event(now - 3 * 3600 + 1200, mac_of(14), "0ff1ce", "ipxe",
               "init: localboot (INSTALLED: booting from the local disk)")
    logs.write(work / "log")
    journal_lines(store.layout.journal_for(RecordId.of_host("default", mac_of(0))), hosts, now,
                  rng)
    records = {"installing": {"STATE": "INSTALLING", "BOOT_SESSION": "5703ed",
                              "BOOT_TIME": str(int(now - 600))},
               "installed 3 h ago": {"STATE": "INSTALLED", "BOOT_SESSION": "0ff1ce",
                                     "BOOT_TIME": str(int(now - 3 * 3600 + 1200))},
               "idle": {"STATE": "INSTALLED", "BOOT_SESSION": "1d1e00",
                        "BOOT_TIME": str(int(now - 20 * DAY))},
               "configured, silent": {"STATE": "CONFIGURED", "BOOT_SESSION": "5113e7",
                                      "BOOT_TIME": str(int(now - 20 * DAY))}}
    with (store.layout.journal_for(RecordId.of_host("default", mac_of(0)))).open("a") as out:
        out.write(json.dumps({"time": stamp(now - 3 * 3600 + 66), "record":
                              f"host/{mac_of(14)}", "key": "STATE", "old": "CONFIGURED",
                              "new": "INSTALLING", "actor": "api:x"}) + "\n")
    for name, n in picked.items():
        store.update(RecordId.of_host("default", mac_of(n)), records[name], "bench")
    (work / "leases").write_text("".join(
        f"{int(now + 3600)} {hyphens(mac_of(n)).replace('-', ':')} {ip_of(n)} * *\n"
        for n in range(hosts)))
    return {name: mac_of(n) for name, n in picked.items()}


def journal_lines(path: Path, hosts: int, now: float, rng: random.Random) -> None:
    """Twenty lines per host, older than a day (a boot's lines and a few changes)."""
    with path.open("a") as out:
        for _ in range(20 * hosts):
            n = rng.randrange(hosts)
            out.write(json.dumps({"time": stamp(now - DAY - rng.random() * 30 * DAY),
                                  "record": f"host/{mac_of(n)}", "key": "BOOT_SESSION",
                                  "old": "a1b2c3", "new": f"{rng.getrandbits(24):06x}",
                                  "actor": f"api:{mac_of(n)}"}) + "\n")


@contextlib.contextmanager
def counting_reads() -> Iterator[list[int]]:
    """Count the bytes the timeline reads from the logs."""
    from hps_api.observe import logtail

    counted: list[int] = []
    real = logtail.read_between, logtail.read_head

    def counting(read: Callable[..., bytes]) -> Callable[..., bytes]:
        def call(*args: Any, **kwargs: Any) -> bytes:
            data = read(*args, **kwargs)
            counted.append(len(data))
            return data
        return call

    logtail.read_between, logtail.read_head = (counting(read) for read in real)
    try:
        yield counted
    finally:
        logtail.read_between, logtail.read_head = real


def timed(call: Callable[[], object], runs: int) -> list[float]:
    call()
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        found.append((time.perf_counter() - started) * 1000)
    return found


def measure(work: Path, macs: dict[str, str], runs: int) -> list[str]:
    """Return the report's rows: one per story and what is measured."""
    from werkzeug.test import Client

    from hps_api import create_app
    from hps_api.observe.timeline_logs import LogFiles, host_timeline
    from hps_api.settings import load_settings
    from hps_api.store import FileStore, RecordId
    from hps_api.web import host_timeline as section
    from hps_api.web import ui as pages

    settings = load_settings({"HPS_CONFIG_DIR": str(work / "hps-config"),
                              "HPS_LOG_DIR": str(work / "log"),
                              "HPS_DHCP_LEASES": str(work / "leases"),
                              "HPS_METRICS": "off"}, dotenv=False)
    client = Client(create_app(settings))
    store = FileStore(work / "hps-config")
    logs = LogFiles.under(settings.log_dir, settings.dhcp_leases)
    client.get("/health", environ_base={"REMOTE_ADDR": "127.0.0.1"})

    def get(path: str) -> None:
        answer = client.get(path, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status}")

    rows = []
    for name, mac in macs.items():
        rid = RecordId.of_host("default", mac)
        record, changes = store.items(rid), store.history(rid)
        with counting_reads() as counted:
            found = host_timeline(store, rid, logs, time.time(), record=record, changes=changes)
        seen = [p.name for p in found.phases if p.at is not None]
        waiting = found.waiting.name if found.waiting else "-"
        cases = {"timeline alone": lambda rid=rid, r=record, c=changes: host_timeline(
                     store, rid, logs, time.time(), record=r, changes=c),
                 "GET /api/v1/hosts/<mac>/timeline": lambda mac=mac: get(
                     f"/api/v1/hosts/{mac}/timeline"),
                 "GET /hosts/<mac>, with the section": lambda mac=mac: get(f"/hosts/{mac}")}
        for what, call in cases.items():
            times = timed(call, runs)
            rows.append(f"| {name} | {what} | {statistics.median(times):,.1f} | "
                        f"{max(times):,.1f} | {sum(counted) / 2**20:,.1f} | "
                        f"{len(seen)}, in {waiting} |")
        real = section.timeline_section
        pages.timeline_section = lambda *args, found=found, **kwargs: (  # type: ignore
            section.timeline_view(found))
        try:
            times = timed(lambda mac=mac: get(f"/hosts/{mac}"), runs)
        finally:
            pages.timeline_section = real  # type: ignore[assignment]
        rows.append(f"| {name} | GET /hosts/<mac>, without | {statistics.median(times):,.1f} | "
                    f"{max(times):,.1f} | - | - |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--log-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hps-bench-timeline-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        macs = seed(work, args.hosts, args.log_mb)
        sizes = {p.name: p.stat().st_size / 1e6 for p in sorted((work / "log").iterdir())}
        journal = sum(p.stat().st_size for p in (work / "hps-config").rglob("journal.log")) / 1e6
        print(f"seeded {args.hosts:,} hosts in {time.perf_counter() - started:.0f} s; logs MB: "
              + ", ".join(f"{name} {size:,.0f}" for name, size in sizes.items())
              + f"; journal {journal:,.0f} MB", file=sys.stderr)
        time.sleep(ui.SETTLE)
        rows = measure(work, macs, args.runs)
    print("| host | measured | median ms | slowest ms | log MiB read | phases seen |")
    print("|---|---|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

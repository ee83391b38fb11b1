#!/usr/bin/env python3
"""A/B of two checkouts: the app's CPU per `init` and `determine_state` request, same run.

    .venv/bin/python scripts/bench/checkout_ab.py --before DIR [--after DIR] [--rounds R]
                                                  [--requests K] [--hosts H] [--metrics on|off]

DIR is a checkout of hps-api (e.g. `git worktree add /tmp/before <commit>`); --after defaults
to this one. Each side runs in its own process with PYTHONPATH at its checkout, so each imports
its own code: it seeds its own store (H hosts, STATE=INSTALLED, TYPE=SCH, an OS record: `init`
answers a local boot), builds the app as `hps-api serve` does (`create_app` over
`load_settings`), and waits. The parent then asks each side in turn for a block of K requests of
one kind (`init` or `determine_state` of the seeded hosts, User-Agent iPXE, from loopback),
alternating the order every round (A B, B A, ...) so drift on a shared machine hits both alike;
a side times its block with its thread's CPU clock. No HTTP and no load generator: this is the
cost of the code itself, the figure a refactoring moves. Printed: per kind, each side's median
CPU per request and the median of the rounds' after/before ratios with its range. Nothing
asserts a time (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KINDS = ("init", "determine_state")

#: the code each side runs, in a process whose PYTHONPATH is its checkout
SIDE = r'''
import json, os, sys, time
from pathlib import Path
from werkzeug.test import EnvironBuilder

work, hosts = Path(sys.argv[1]), int(sys.argv[2])
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
try:
    from hps_api.model.osreg import add_os
except ImportError:
    from hps_api.boot.osreg import add_os
store = FileStore(work / "config")
initialise(store, "bench", "bench")
os_id = "x86_64:rocky:10"
store.update(RecordId.of_cluster("bench"), {"OS_SCH": os_id}, "bench")
add_os(store, os_id, {"REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
                      "INITRD": "images/pxeboot/initrd.img", "STATUS": "prod",
                      "HPS_TYPES": "SCH"}, "bench")
macs = [f"52540a{n:06x}" for n in range(hosts)]
for n, mac in enumerate(macs):
    store.update(RecordId.of_host("bench", mac), {
        "STATE": "INSTALLED", "TYPE": "SCH", "PROFILE": "DEFAULT", "OS_ID": os_id,
        "ARCH": "x86_64", "HOSTNAME": f"sch-{n + 1:05d}", "IP": f"10.99.{n // 250}.{n % 250 + 2}"},
        "bench", create=True)
from hps_api import create_app
from hps_api.settings import load_settings
app = create_app(load_settings(dotenv=False))
environs = {kind: [EnvironBuilder(path="/cgi-bin/boot_manager.sh",
                                  query_string=f"cmd={kind}&mac={mac}",
                                  headers={"User-Agent": "iPXE/1.21.1+ (g8ef5)"},
                                  environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
                   for mac in macs] for kind in ("init", "determine_state")}

def call(environ):
    status = []
    body = b"".join(app(dict(environ), lambda s, h, e=None: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{status[0]}: {body[:200]!r}")

for kind in environs:  # warm-up
    for environ in environs[kind][:50]:
        call(environ)
print("ready", flush=True)
for line in sys.stdin:
    kind, count = line.split()
    todo = environs[kind]
    start = time.thread_time()
    for i in range(int(count)):
        call(todo[i % len(todo)])
    print(json.dumps((time.thread_time() - start) / int(count) * 1e6), flush=True)
'''


def start_side(checkout: Path, work: Path, hosts: int, metrics: str) -> subprocess.Popen[str]:
    """Start one side in its own process and wait until its app is built."""
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update({"PYTHONPATH": str(checkout), "HPS_CONFIG_DIR": str(work / "config"),
                "HPS_LOG_DIR": str(work / "log"), "HPS_RESOURCES_DIR": str(work / "resources"),
                "HPS_ARP_TABLE": str(work / "arp"), "HPS_DHCP_LEASES": str(work / "leases"),
                "HPS_METRICS": metrics})
    side = subprocess.Popen([sys.executable, "-c", SIDE, str(work), str(hosts)], env=env,
                            cwd=work, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert side.stdout is not None
    ready = side.stdout.readline().strip()
    if ready != "ready":
        stop(side)
        raise SystemExit(f"{checkout}: the side did not start ({ready!r})")
    return side


def block(side: subprocess.Popen[str], kind: str, count: int) -> float:
    """Ask a side for one block; return its CPU microseconds per request."""
    assert side.stdin is not None and side.stdout is not None
    side.stdin.write(f"{kind} {count}\n")
    side.stdin.flush()
    return float(json.loads(side.stdout.readline()))


def stop(side: subprocess.Popen[str]) -> None:
    """End a side: its input closed (it leaves its loop), killed if it does not exit."""
    assert side.stdin is not None and side.stdout is not None
    side.stdin.close()
    try:
        side.wait(timeout=10)
    except subprocess.TimeoutExpired:
        side.kill()
        side.wait(timeout=10)
    side.stdout.close()


def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="hps-ab-") as tmp:
        sides = {"before": start_side(args.before, Path(tmp) / "before", args.hosts, args.metrics),
                 "after": start_side(args.after, Path(tmp) / "after", args.hosts, args.metrics)}
        try:
            lines = [f"before: {args.before}", f"after:  {args.after}",
                     f"{args.rounds} rounds x {args.requests} requests per side and kind, "
                     f"{args.hosts} hosts, HPS_METRICS={args.metrics}", "",
                     "| request | before (µs CPU) | after (µs CPU) | after / before (range) |",
                     "|---|---|---|---|"]
            for kind in KINDS:
                cpu: dict[str, list[float]] = {"before": [], "after": []}
                for number in range(args.rounds):
                    order = ("before", "after") if number % 2 == 0 else ("after", "before")
                    for name in order:
                        cpu[name].append(block(sides[name], kind, args.requests))
                ratios = [a / b for a, b in zip(cpu["after"], cpu["before"], strict=True)]
                lines.append(f"| {kind} | {statistics.median(cpu['before']):.0f} | "
                             f"{statistics.median(cpu['after']):.0f} | "
                             f"{statistics.median(ratios):.3f} ({min(ratios):.2f}-"
                             f"{max(ratios):.2f}) |")
            return "\n".join(lines)
        finally:
            for side in sides.values():
                stop(side)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare to")
    parser.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--rounds", type=int, default=10, help="default 10")
    parser.add_argument("--requests", type=int, default=2000, help="per block (default 2000)")
    parser.add_argument("--hosts", type=int, default=200, help="seeded hosts (default 200)")
    parser.add_argument("--metrics", choices=("on", "off"), default="off",
                        help="HPS_METRICS for both sides (default off: a checkout without "
                             "metrics ignores it)")
    args = parser.parse_args(argv)
    for name in ("before", "after"):
        path = getattr(args, name).resolve()
        if not (path / "hps_api" / "__init__.py").is_file():
            parser.error(f"--{name} {path}: not a checkout of hps-api")
        setattr(args, name, path)
    if args.rounds < 1 or args.requests < 1 or args.hosts < 1:
        parser.error("--rounds, --requests and --hosts must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    print(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

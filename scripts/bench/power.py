#!/usr/bin/env python3
"""Power benchmark: 100 hosts' power status read through real BMC emulators, and what that does
to the latency of `init`.

    .venv/bin/python scripts/bench/power.py [--hosts 100] [--concurrency 16] [--systems 10]
                                            [--sims 10] [--seconds 10] [--workers 2]

Everything lives in a temporary directory (removed afterwards) and talks to 127.0.0.1 only:
a store seeded with H INSTALLED hosts (`init` answers a local boot, as in server.py), a
sushy-tools Redfish emulator with S fake systems and N ipmi_sim BMCs (tests/bmc_emulators.py;
many hosts share one emulated system or BMC, as the fake driver's systems are all alike).

1. The poll: the server's poller (hps_api.ops.power_jobs.Poller.poll_once), in this process,
   over every host, C at a time, once with every host on Redfish and once on IPMI: wall time,
   time per host (wall / H) and each host's own read time (p50, p99).
2. `init` under `hps-api serve` (W workers): iPXE's `cmd=init` of the seeded hosts from 4
   keep-alive connections for T seconds, first with no power work, then while the server itself
   reads every host's status again and again (POST /api/v1/hosts/<mac>/power {"action":
   "status"} for each host, then the next round when all have finished: the BMC traffic runs
   in the workers' power threads, as the poller's does). p50/p99 and requests per second.

Nothing asserts a time (docs/performance.md, "Power").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests"))
from bmc_emulators import (  # noqa: E402
    IPMI_PASSWORD,
    IPMI_USER,
    REDFISH_PASSWORD,
    REDFISH_USER,
    ipmi_sim,
    sushy_emulator,
    system_uuid,
)
from http_bench import (  # noqa: E402
    BIN,
    free_port,
    measured,
    percentile,
    python_load,
    running,
    server_env,
)
from server import CLUSTER, COMMAND, IPXE_AGENT, seed_store  # noqa: E402

TOKEN = "bench-power-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--systems", type=int, default=10)
    parser.add_argument("--sims", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hps-bench-power-") as tmp:
        run(Path(tmp), args)
    return 0


def run(work: Path, args: argparse.Namespace) -> None:
    from hps_api.store import FileStore

    config = work / "hps-config"
    macs = [m.replace(":", "") for m in seed_store(config, args.hosts)]
    store = FileStore(config)
    sims = [ipmi_sim(work / f"ipmi-{n}") for n in range(args.sims)]
    with sushy_emulator(work / "redfish", args.systems) as redfish:
        bmcs = [sim.__enter__() for sim in sims]
        try:
            print(f"{args.hosts} hosts, concurrency {args.concurrency}; Redfish: sushy-emulator "
                  f"with {args.systems} systems; IPMI: {args.sims} ipmi_sim")
            set_redfish(store, macs, redfish.url, args.systems)
            poll("redfish", store, args.concurrency, len(macs))
            set_ipmi(store, macs, [b.address for b in bmcs])
            poll("ipmi", store, args.concurrency, len(macs))
            measure_init(work, config, macs, args)
        finally:
            for sim in sims:
                sim.__exit__(None, None, None)


def set_redfish(store: object, macs: list[str], url: str, systems: int) -> None:
    from hps_api.ops import power
    from hps_api.power.bmc import Bmc

    for n, mac in enumerate(macs):
        power.set_bmc(store, CLUSTER, mac, Bmc(  # type: ignore[arg-type]
            "redfish", url, system_id=system_uuid(n % systems), username=REDFISH_USER,
            password=REDFISH_PASSWORD), "bench")


def set_ipmi(store: object, macs: list[str], addresses: list[str]) -> None:
    from hps_api.ops import power
    from hps_api.power.bmc import Bmc

    for n, mac in enumerate(macs):
        power.set_bmc(store, CLUSTER, mac, Bmc(  # type: ignore[arg-type]
            "ipmi", addresses[n % len(addresses)], username=IPMI_USER,
            password=IPMI_PASSWORD), "bench")


def poll(driver: str, store: object, concurrency: int, hosts: int) -> None:
    from hps_api.ops.power_jobs import Poller

    poller = Poller(store, concurrency=concurrency)  # type: ignore[arg-type]
    poller.poll_once()  # warm-up: imports, first sessions
    started = time.monotonic()
    outcomes = poller.poll_once()
    wall = time.monotonic() - started
    each = sorted(o.seconds for o in outcomes)
    ok = sum(o.ok for o in outcomes)
    print(f"poll {driver:7s}: {wall:6.2f} s for {hosts} hosts = {wall / hosts * 1000:6.1f} ms "
          f"per host; each host's read p50 {percentile(each, 50) * 1000:6.1f} ms, p99 "
          f"{percentile(each, 99) * 1000:6.1f} ms; {ok}/{hosts} read")


def measure_init(work: Path, config: Path, macs: list[str], args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(work, config, HPS_ADMIN_TOKEN=TOKEN, HPS_TRUSTED_PROXIES="127.0.0.1")
    command = [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{port}", "--workers",
               str(args.workers)]
    paths = [f"{COMMAND}init&mac={mac}&arch=x86_64" for mac in macs]
    with running(command, env, work, f"{base}/api/v1/health") as master:
        time.sleep(3)  # the poller's first poll at start is over
        quiet = measured(master, lambda: python_load(base, paths, 4, args.seconds, IPXE_AGENT))
        stop = threading.Event()
        rounds: list[float] = []
        load = threading.Thread(target=status_rounds, args=(base, config, macs, stop, rounds))
        load.start()
        try:
            busy = measured(master, lambda: python_load(base, paths, 4, args.seconds,
                                                        IPXE_AGENT))
        finally:
            stop.set()
            load.join()
    for name, result in (("init, no power work", quiet),
                         ("init, status rounds", busy)):
        print(f"{name:22s}: p50 {result.p50_ms:6.2f} ms, p99 {result.p99_ms:6.2f} ms, "
              f"{result.rate:7.0f} req/s, {result.errors} errors; server CPU "
              f"{result.cpu_s:.1f} s in {result.seconds:g} s")
    if rounds:
        print(f"status rounds in the server meanwhile: {len(rounds)}, each "
              f"{sum(rounds) / len(rounds):.2f} s for {len(macs)} hosts")


def status_rounds(base: str, config: Path, macs: list[str], stop: threading.Event,
                  rounds: list[float]) -> None:
    """Ask the server for every host's status, wait until every action finished (read from the
    action files, not over HTTP), again until told to stop."""
    actions = config / "run" / "power" / "actions"
    while not stop.is_set():
        started = time.monotonic()
        ids = [post_status(base, mac) for mac in macs]
        while not stop.is_set() and not all(finished(actions / f"{i}.json") for i in ids):
            time.sleep(0.05)
        rounds.append(time.monotonic() - started)


def post_status(base: str, mac: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/v1/hosts/{mac}/power", data=b'{"action": "status"}', method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                 "User-Agent": "curl/8.5.0"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.load(answer)["data"]["id"])


def finished(path: Path) -> bool:
    try:
        return json.loads(path.read_text())["status"] in ("done", "failed")
    except (OSError, ValueError, KeyError):
        return False


if __name__ == "__main__":
    sys.exit(main())

"""Two `hps-api serve` (gunicorn) on their own loopback ports, one state in a three-member etcd
(docs/scale-out.md): writers and registrations split across both servers, the etcd leader
SIGKILLed in the middle. Requests are made as curl makes them, from loopback (an admin caller,
who may name any host).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import provide_os_files
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    free_port,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.settings import load_settings
from hps_api.store import Kind, RecordId
from hps_api.store.factory import open_store

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CURL = "curl/8.5.0"
START_SECONDS = 30.0
HOST = RecordId.of_host("default", "52:54:00:aa:bb:01")
WRITERS = 8
WRITES = 15
REGISTRATIONS = 200
REGISTRARS = 8


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def environment(root: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update({"HPS_STORE": url, "HPS_CONFIG_DIR": str(root / "hps-config"),
                "HPS_LOG_DIR": str(root / "log"), "HPS_RESOURCES_DIR": str(root / "resources"),
                "HPS_LOCK_TIMEOUT": "20", "HPS_METRICS": "off"})
    return env


def get(server: Server, query: str) -> tuple[int, str]:
    """Return the status and text of a legacy command, as curl asks it."""
    request = urllib.request.Request(f"{server.url}/cgi-bin/boot_manager.sh?{query}",
                                     headers={"User-Agent": CURL})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read().decode()


def start(root: Path, url: str) -> Server:
    env = environment(root, url)
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=root, check=True,
                   capture_output=True, timeout=60)
    port = free_port()
    log = root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{port}",
                                    "--workers", "2"], env=env, cwd=root, stdout=out,
                                   stderr=out, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"hps-api serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    stop(server)
    pytest.fail(f"no answer from {server.url}: {log.read_text()}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


@pytest.fixture
def servers(etcd: EtcdCluster, tmp_path: Path) -> Iterator[tuple[list[Server], object]]:
    """Two servers sharing one prefix of the etcd cluster, a cluster with a /22 network and
    OS records (their files on both servers), one host; and the store they share."""
    url = etcd.url(random_prefix())
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        root.mkdir()
    first = environment(roots[0], url)
    subprocess.run([str(BIN / "hps-api"), "init"], env=first, cwd=roots[0], check=True,
                   capture_output=True, timeout=60)
    store = open_store(load_settings(first))
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/22", "DHCP_RANGE_START": "10.99.3.0",
        "DHCP_RANGE_END": "10.99.3.250"}, "test:setup")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "test:setup", create=True)
    store.update(HOST, {"STATE": "UNCONFIGURED"}, "test:setup", create=True)
    for root in roots:
        provide_os_files(root / "resources", store)  # type: ignore[arg-type]
    running: list[Server] = []
    try:
        for root in roots:
            running.append(start(root, url))
        yield running, store
    finally:
        for server in running:
            stop(server)


def in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run `work(n)` in `count` threads; return what they raised."""
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            work(n)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    return errors


def test_two_servers_lose_no_update_and_allocate_distinct_identities(etcd, servers):
    running, store = servers
    done: list[int] = []
    quarter = threading.Event()
    killed_after: list[int] = []

    def write(n: int) -> None:
        for k in range(WRITES):
            server = running[(n + k) % 2]
            status, text = get(server, f"cmd=host_variable&mac={HOST.name}&name=W{n}_K{k}"
                                       f"&value=v{n}.{k}")
            assert status == 200, text
            done.append(1)
            if len(done) >= WRITERS * WRITES // 4:
                quarter.set()

    def kill_the_leader() -> None:
        quarter.wait(60)
        etcd.kill(etcd.leader())
        killed_after.append(len(done))

    killer = threading.Thread(target=kill_the_leader)
    killer.start()
    assert in_threads(WRITERS, write) == []
    killer.join()
    assert killed_after[0] < WRITERS * WRITES  # the leader died in the middle of the writes
    written = {k: v for k, v in store.items(HOST).items() if k.startswith("W")}
    assert written == {f"W{n}_K{k}": f"v{n}.{k}" for n in range(WRITERS) for k in range(WRITES)}
    lines = Counter(c.key for c in store.history(HOST) if c.key.startswith("W"))
    assert set(lines.values()) == {1} and len(lines) == WRITERS * WRITES

    macs = [f"02:00:00:00:{n // 256:02x}:{n % 256:02x}" for n in range(REGISTRATIONS)]

    def register(n: int) -> None:
        for index in range(n, REGISTRATIONS, REGISTRARS):
            server = running[index % 2]
            mac = macs[index]
            assert get(server, f"cmd=init&mac={mac}&arch=x86_64")[0] == 200
            status, text = get(server, f"cmd=config_host&mac={mac}&hosttype=SCH")
            assert status == 200, text

    for member in etcd.members:
        if member.process is None:
            etcd.restart(member)
    assert in_threads(REGISTRARS, register) == []
    hosts = [store.items(rid) for rid in store.list_records(Kind.HOST, "default")
             if rid != HOST]
    assert len(hosts) == REGISTRATIONS
    assert len({h["HOSTNAME"] for h in hosts}) == REGISTRATIONS
    assert len({h["IP"] for h in hosts}) == REGISTRATIONS
    assert all(h["STATE"] == "CONFIGURED" for h in hosts)
    assert list(itertools.islice(sorted(h["HOSTNAME"] for h in hosts), 2)) == [
        "sch-001", "sch-002"]

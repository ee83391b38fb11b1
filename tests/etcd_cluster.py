"""A real three-member etcd cluster on loopback ports, for the etcd store's tests.

`EtcdCluster.start(root)` runs three `etcd` processes (Debian's etcd-server) with their data
under `root` (on /dev/shm when it exists: fsyncs there cost nothing), waits a bounded time for
every member to answer `/health`, and `stop()` ends them by pid. Members can be killed
(SIGKILL) and started again one by one to test fail-over and quorum loss. Short heartbeat and
election timeouts make a new leader appear within about a second.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from hps_api.store.etcdgateway import Gateway
from hps_api.store.etcdstore import EtcdStore

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
START_SECONDS = 30.0


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Member:
    """One etcd process: its name, ports, data dir and (while running) its process."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


@dataclass
class EtcdCluster:
    """Three members; `url(prefix)` is the HPS_STORE value naming all of them."""

    members: list[Member] = field(default_factory=list)
    token: str = ""
    root: Path = Path()

    @classmethod
    def start(cls, root: Path) -> EtcdCluster:
        """Start three members under `root`; RuntimeError naming what failed."""
        if not os.access(ETCD, os.X_OK):
            raise RuntimeError(f"etcd not found at {ETCD}: install Debian's etcd-server")
        cluster = cls(token=f"hps-test-{uuid.uuid4().hex[:8]}", root=root)
        root.mkdir(parents=True, exist_ok=True)
        for n in range(3):
            data = root / f"m{n}"
            cluster.members.append(Member(f"m{n}", free_port(), free_port(), data,
                                          root / f"m{n}.log"))
        for member in cluster.members:
            cluster.run(member, new=True)
        cluster.wait_healthy()
        return cluster

    def run(self, member: Member, *, new: bool = False) -> None:
        """Start a member's process (again: with the data dir it already has)."""
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        command = [
            ETCD, "--name", member.name, "--data-dir", str(member.data_dir),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-token", self.token,
            "--initial-cluster-state", "new" if new else "existing",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--log-level", "warn", "--logger", "zap",
        ]
        with member.log.open("ab") as log:
            member.process = subprocess.Popen(command, stdout=log, stderr=log,
                                              stdin=subprocess.DEVNULL)

    def wait_healthy(self, members: list[Member] | None = None,
                     seconds: float = START_SECONDS) -> None:
        """Wait until every running member (or those given) reports healthy."""
        deadline = time.monotonic() + seconds
        for member in members or [m for m in self.members if m.process]:
            while not _healthy(member):
                if member.process and member.process.poll() is not None:
                    raise RuntimeError(f"etcd {member.name} exited: {member.log.read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"etcd {member.name} not healthy after {seconds} s: "
                                       f"{member.log.read_text()[-2000:]}")
                time.sleep(0.05)

    def url(self, prefix: str) -> str:
        """Return the HPS_STORE value naming every member and `prefix`."""
        return "etcd://" + ",".join(m.endpoint for m in self.members) + "/" + prefix

    def store(self, prefix: str, root: Path, *, timeout: float = 2.0, deadline: float = 15.0,
              lock_timeout: float = 5.0) -> EtcdStore:
        """Return an EtcdStore over every member, under `prefix`, its local files under `root`."""
        members = [("127.0.0.1", m.client_port) for m in self.members]
        return EtcdStore(Gateway(members, timeout=timeout, deadline=deadline), prefix, root,
                         lock_timeout)

    def leader(self) -> Member:
        """Return the member that leads now."""
        for member in self.members:
            if member.process is None:
                continue
            try:
                status = requests.post(f"{member.client_url}/v3/maintenance/status", json={},
                                       timeout=1).json()
            except requests.RequestException:
                continue
            if status.get("leader") == status.get("header", {}).get("member_id"):
                return member
        raise RuntimeError("no etcd member leads")

    def kill(self, member: Member) -> None:
        """SIGKILL one member (by its pid) and reap it."""
        if member.process is not None:
            os.kill(member.process.pid, signal.SIGKILL)
            member.process.wait(timeout=10)
            member.process = None

    def restart(self, member: Member) -> None:
        """Start a killed member again and wait for it to be healthy."""
        self.run(member)
        self.wait_healthy([member])

    def stop(self) -> None:
        """End every member by pid (SIGTERM, then SIGKILL after a second: the data is thrown
        away, and the last members wait for a quorum that is leaving)."""
        for member in self.members:
            if member.process is not None:
                os.kill(member.process.pid, signal.SIGTERM)
        for member in self.members:
            if member.process is not None:
                try:
                    member.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    os.kill(member.process.pid, signal.SIGKILL)
                    member.process.wait(timeout=5)
                member.process = None


def _healthy(member: Member) -> bool:
    try:
        answer = requests.get(f"{member.client_url}/health", timeout=0.5)
        return answer.ok and answer.json().get("health") == "true"
    except (requests.RequestException, ValueError):
        return False


_SHARED: list[EtcdCluster] = []


@pytest.fixture(scope="session", name="etcd_cluster")
def shared_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """The one three-member cluster of the test session (each test keeps to its own key
    prefix, so they share it). Modules import this fixture and `running_cluster_fixture`
    (`from etcd_cluster import running_cluster_fixture, shared_cluster_fixture`); the cluster
    starts once, at its
    first use, and stops at the end of the session. No etcd: the tests fail, saying so."""
    if not _SHARED:
        base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
        root = Path(tempfile.mkdtemp(prefix="hps-etcd-", dir=base)) if base else \
            tmp_path_factory.mktemp("etcd")
        try:
            _SHARED.append(EtcdCluster.start(root))
        except BaseException:
            if base:
                shutil.rmtree(root, ignore_errors=True)
            raise
    cluster = _SHARED[0]
    yield cluster
    if any(m.process for m in cluster.members):
        cluster.stop()
        if str(cluster.root).startswith("/dev/shm/"):
            shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(name="etcd")
def running_cluster_fixture(etcd_cluster: EtcdCluster) -> Iterator[EtcdCluster]:
    """The shared cluster with every member running (a test that killed one gets it back)."""
    for member in etcd_cluster.members:
        if member.process is None:
            etcd_cluster.restart(member)
    yield etcd_cluster
    for member in etcd_cluster.members:
        if member.process is None:
            etcd_cluster.restart(member)


def random_prefix() -> str:
    """Return a key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"

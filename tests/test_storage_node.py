"""The storage host's library (node_lib/sh/hps-storage.sh) with a real tgtd and a real initiator.

A network namespace stands in for the storage host (SCH): a veth pair joins it to this namespace,
a real `tgtd` runs inside it on its own control port (so it never meets another tgtd), and the
library runs inside it, sourced after hps-functions.sh, under dash (GNU wget), busybox sh (busybox
wget) and bash (curl). The initiator is libiscsi's userspace one (`iscsi-ls`,
`iscsi-readcapacity16`) in this namespace, so no kernel initiator is needed.

The IPS listens on this namespace's end of the veth, where the storage host reaches it (the
conformance tier's app listens on loopback, which a namespace has its own of). Most tests use a
recording server speaking the job contract (cmd=storage_work answers scripted job lines;
cmd=storage_report and host keys are recorded), so each can script any work, bad lines too; one
runs the real app, whose storage operations queue the work and apply the reports. ZFS, LVM and
LIO are not exercised here (no kernel modules, no ZFS, no spare disks): the pool is the
sparse-file one and the target is tgt.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from netns import delete_namespace, ip
from node_cases import CLIENTS, NODE_SH, NodeClient, QuietHandler, require
from werkzeug.serving import make_server

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

pytestmark = pytest.mark.slow

STORAGE_SH = NODE_SH.parent / "hps-storage.sh"
SH_CLIENTS = [client for client in CLIENTS if client.shell]
SH_IDS = [client.name for client in SH_CLIENTS]
MAC = "52:54:00:5c:00:01"
THIN_MAC = "52:54:00:5c:00:02"
INITIATOR = "iqn.2025-09.default:thin-01"
STRANGER = "iqn.2025-09.default:thin-02"
MIB = 1024 * 1024
QUICK = {"HPS_CONNECT_TIMEOUT": "2", "HPS_TIMEOUT": "5", "HPS_RETRIES": "1",
         "HPS_RETRY_DELAY": "0"}


def iqn(client: NodeClient, volume: str) -> str:
    """Return the IQN of `volume` as n_iqn makes it, one per client (tgtd is shared)."""
    return f"iqn.2025-09.default:sch-01.{client.name.split('+')[0]}-{volume}"


# -- the storage host: a namespace with tgtd -----------------------------------------------------


@dataclass(frozen=True)
class StorageHost:
    """The namespace, its address and tgtd's control port, and this namespace's address."""

    ns: str
    address: str
    ips_address: str
    control_port: int

    def tgt_targets(self) -> str:
        """Return `tgtadm --op show --mode target` of this host's tgtd."""
        return subprocess.run(["tgtadm", "-C", str(self.control_port), "--lld", "iscsi",
                               "--op", "show", "--mode", "target"], capture_output=True,
                              text=True, check=True, timeout=10).stdout


def free_subnet() -> int:
    """Return x of a 10.98.x.0/24 no route of this namespace uses."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                            text=True, check=True, timeout=10).stdout
    candidates = [x for x in range(20, 250) if f"10.98.{x}." not in routes]
    return random.choice(candidates)


def free_control_port() -> int:
    """Return a tgtd control port whose socket no tgtd has."""
    while True:
        port = random.randint(20000, 29999)
        if not Path(f"/var/run/tgtd/socket.{port}").exists():
            return port


def wait_for(check, what: str, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    """Return once `check()` is true; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {seconds} s")
        time.sleep(0.1)


def tgtd_ready(host: StorageHost) -> bool:
    try:
        host.tgt_targets()
        with socket.create_connection((host.address, 3260), timeout=1):
            return True
    except (subprocess.CalledProcessError, OSError):
        return False


@pytest.fixture(scope="module")
def sch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorageHost]:
    """The storage host: namespace, veth, tgtd (stopped by its pid, then the namespace goes)."""
    require("ip", "tgtd", "tgtadm", "iscsi-ls", "iscsi-readcapacity16")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (scripts/test runs the tiers as root)")
    x, tag = free_subnet(), f"{os.getpid() % 100000}"
    host = StorageHost(f"hps-sch-{tag}", f"10.98.{x}.2", f"10.98.{x}.1", free_control_port())
    outer, inner = f"sch{tag}a", f"sch{tag}b"
    log = tmp_path_factory.mktemp("tgtd") / "tgtd.log"
    tgtd: subprocess.Popen[bytes] | None = None
    try:
        ip("netns", "add", host.ns)
        ip("-n", host.ns, "link", "set", "lo", "up")
        ip("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", host.ns,
           "address", MAC)
        ip("addr", "add", f"{host.ips_address}/24", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", inner)
        ip("-n", host.ns, "link", "set", inner, "up")
        with log.open("wb") as out:
            tgtd = subprocess.Popen(["ip", "netns", "exec", host.ns, "tgtd", "-f", "-C",
                                     str(host.control_port)], stdout=out, stderr=out)
        wait_for(lambda: tgtd_ready(host), "tgtd")
        yield host
    finally:
        if tgtd is not None:
            # tgtd ignores SIGTERM while it has targets
            with contextlib.suppress(ProcessLookupError):
                os.kill(tgtd.pid, signal.SIGKILL)
            tgtd.wait(10)
        delete_namespace(host.ns)
        subprocess.run(["ip", "link", "delete", outer], capture_output=True, check=False)
        for name in (f"socket.{host.control_port}", f"socket.{host.control_port}.lock"):
            Path("/var/run/tgtd", name).unlink(missing_ok=True)


# -- the IPS: a recording server speaking the storage contract -----------------------------------


@dataclass
class StorageIps:
    """Answers storage_work with the next scripted body, records every call, keeps host keys."""

    address: str
    work: list[str] = field(default_factory=list)
    host: dict[str, str] = field(default_factory=dict)
    storage_network: str | None = None
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.address}:{self.server.server_address[1]}"

    def reports(self) -> list[dict[str, str]]:
        """Return the forms of the storage_report calls (without mac=), in order."""
        return [{k: v for k, v in form.items() if k != "mac"}
                for cmd, form in self.calls if cmd == "storage_report"]

    def answer(self, cmd: str, form: dict[str, str]) -> tuple[int, str]:
        if form.get("mac") != MAC:
            return 403, "not this host's MAC\n"
        if cmd == "storage_work":
            return 200, self.work.pop(0) if self.work else ""
        if cmd == "storage_report":
            return 200, "ok\n"
        if cmd == "host_variable" and "value" in form:
            self.host[form["name"]] = form["value"]
            return 200, "ok\n"
        if cmd == "host_variable" and form.get("name") in self.host:
            return 200, self.host[form["name"]] + "\n"
        if cmd == "host_allocate_networks" and self.storage_network:
            return 200, self.storage_network + "\n"
        return 404, "not found\n"

    def start(self) -> StorageIps:
        ips = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                cmd = query.get("cmd", [""])[0]
                form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                ips.calls.append((cmd, form))
                status, text = ips.answer(cmd, form)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer((self.address, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def ips(sch: StorageHost) -> Iterator[StorageIps]:
    """The IPS as the storage host sees it: across the veth; storage network 0 is its address."""
    server = StorageIps(sch.ips_address, storage_network=f"20:{sch.address}:255.255.255.0:"
                                                         f"{sch.ips_address}:1500").start()
    yield server
    server.stop()


# -- calling the library inside the namespace ----------------------------------------------------


@dataclass
class Node:
    """One client's run of the library on the storage host, with its own HPS_NODE_ROOT."""

    client: NodeClient
    sch: StorageHost
    ips: StorageIps
    root: Path
    #: the API's URL when it is not `ips` (the real app)
    api: str = ""

    @property
    def pool(self) -> Path:
        return self.root / "var" / "lib" / "hps" / "pool"

    def __call__(self, function: str, *args: str,
                 **env: str) -> subprocess.CompletedProcess[str]:
        return self.shell('f=$1; shift; "$f" "$@"', function, *args, **env)

    def shell(self, script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run `script` (with `args`) after sourcing both libraries under `set -u`."""
        script = ('set -u; . "$HPS_TEST_LIB" || exit 9; . "$HPS_TEST_STORAGE_LIB" || exit 9; '
                  + script)
        environment = {"PATH": os.environ["PATH"], "TMPDIR": str(self.root / "tmp"),
                       "HPS_NODE_ROOT": str(self.root), "HPS_API": self.api or self.ips.url,
                       "HPS_MAC": MAC, "HPS_TGT_CONTROL_PORT": str(self.sch.control_port),
                       "HPS_ISCSI_TARGET": "tgt", "HPS_POOL_SIZE": "1G",
                       "HPS_TEST_LIB": str(NODE_SH), "HPS_TEST_STORAGE_LIB": str(STORAGE_SH),
                       **QUICK, **self.client.env(), **env}
        return subprocess.run(["ip", "netns", "exec", self.sch.ns, *self.client.shell, "-c",
                               script, "hps-storage-test", *args],
                              capture_output=True, text=True, env=environment, timeout=120,
                              check=False)

    def ok(self, function: str, *args: str, **env: str) -> str:
        """Run a function that must succeed; return its stdout."""
        result = self(function, *args, **env)
        assert result.returncode == 0, f"{function} {args}: {result.returncode}\n{result.stderr}"
        return result.stdout


@pytest.fixture(params=SH_CLIENTS, ids=SH_IDS)
def node(request: pytest.FixtureRequest, sch: StorageHost, ips: StorageIps,
         tmp_path: Path) -> Iterator[Node]:
    client: NodeClient = request.param
    require(*client.tools)
    root = tmp_path / "sch"
    (root / "tmp").mkdir(parents=True)
    yield Node(client, sch, ips, root)
    # the targets this client's tests left: tgtd is shared by the module
    for line in sch.tgt_targets().splitlines():
        if line.startswith("Target ") and f".{client.name.split('+')[0]}-" in line:
            tid = line.split()[1].rstrip(":")
            subprocess.run(["tgtadm", "-C", str(sch.control_port), "--lld", "iscsi", "--op",
                            "delete", "--mode", "target", "--tid", tid, "--force"],
                           capture_output=True, check=False, timeout=10)


def initiator(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a libiscsi tool (the initiator side) in this namespace."""
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)


def capacity(node: Node, target: str, name: str = INITIATOR) -> int:
    """Return LUN 1's size in bytes as the initiator `name` reads it (READ CAPACITY 16)."""
    result = initiator("iscsi-readcapacity16", "-s", "-i", name,
                       f"iscsi://{node.sch.address}/{target}/1")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def targets_named(node: Node, target: str) -> int:
    return sum(line.split()[2:3] == [target] for line in node.sch.tgt_targets().splitlines()
               if line.startswith("Target "))


# -- the library as a file and as served -----------------------------------------------------------


def test_the_storage_library_is_clean_under_shellcheck_as_posix_sh() -> None:
    require("shellcheck")
    result = subprocess.run(["shellcheck", "-s", "sh", str(NODE_SH), str(STORAGE_SH)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("shell", [c.shell for c in SH_CLIENTS], ids=" ".join)
def test_the_ips_serves_the_storage_library_filled_in_and_it_parses(
        web, shell: tuple[str, ...], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    require(shell[0])
    text = web.get("/cgi-bin/boot_manager.sh?cmd=node_get_functions&distro=storage",
                   headers={"Accept": "text/plain"}).text
    assert text.startswith("# shellcheck shell=sh\n# hps-storage.sh")
    assert "@HPS_" not in text and "\nn_storage_sync() {" in text
    library = tmp_path / "hps-storage.sh"
    library.write_text(text)
    result = subprocess.run([*shell, "-n", str(library)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


# -- the pool and its volumes --------------------------------------------------------------------


def test_without_disks_the_pool_is_a_sparse_file_pool_reused_and_reported(node: Node) -> None:
    assert node("n_storage_volume_list").returncode == 1, "a volume list without a pool"
    assert node.ok("n_storage_pool_create") == f"file:{node.pool}\n"
    assert node.ok("n_storage_pool_create") == f"file:{node.pool}\n"
    assert node.ok("n_storage_report") == ""
    assert node.ips.host == {"STORAGE_FREE": str(1024 * MIB), "STORAGE_POOL": f"file:{node.pool}"}


def test_volumes_are_created_listed_grown_and_deleted(node: Node) -> None:
    node.ok("n_storage_pool_create")
    node.ok("n_storage_volume_create", "root0", "64M")
    node.ok("n_storage_volume_create", "data-1", "128m")
    node.ok("n_storage_volume_create", "root0", "64M")  # again: the same volume
    assert node.ok("n_storage_volume_list") == f"data-1 {128 * MIB}\nroot0 {64 * MIB}\n"
    assert (node.pool / "root0.img").stat().st_blocks == 0, "a volume is a sparse file"
    node.ok("n_storage_volume_resize", "root0", "96M")
    node.ok("n_storage_volume_resize", "root0", "96M")
    shrink = node("n_storage_volume_resize", "root0", "32M")
    assert shrink.returncode == 3 and "only grow" in shrink.stderr
    too_big = node("n_storage_volume_create", "huge", "1G")
    assert too_big.returncode == 3 and "free" in too_big.stderr
    node.ok("n_storage_report")
    assert node.ips.host["STORAGE_FREE"] == str((1024 - 96 - 128) * MIB)
    node.ok("n_storage_volume_delete", "data-1")
    assert node("n_storage_volume_delete", "data-1").returncode == 1
    assert node("n_storage_volume_resize", "data-1", "1G").returncode == 1
    assert node.ok("n_storage_volume_list") == f"root0 {96 * MIB}\n"


# -- export ---------------------------------------------------------------------------------------


def test_an_export_is_lun_1_for_its_initiator_only_and_exporting_twice_is_the_same(
        node: Node) -> None:
    target = iqn(node.client, "root0")
    node.ok("n_storage_pool_create")
    node.ok("n_storage_volume_create", "root0", "64M")
    node.ok("n_storage_export", "root0", target, INITIATOR)
    node.ok("n_storage_export", "root0", target, INITIATOR)
    assert targets_named(node, target) == 1
    seen = initiator("iscsi-ls", "-s", "-i", INITIATOR, f"iscsi://{node.sch.address}/")
    assert seen.returncode == 0, seen.stderr
    assert f"Target:{target} Portal:{node.sch.address}:3260" in seen.stdout
    # iscsi-ls shows the last LBA's offset (63M here): the exact size is READ CAPACITY's
    assert re.search(r"^Lun:1 +Type:DIRECT_ACCESS \(Size:6[34]M\)$", seen.stdout, re.M)
    assert capacity(node, target) == 64 * MIB
    stranger = initiator("iscsi-ls", "-s", "-i", STRANGER, f"iscsi://{node.sch.address}/")
    assert target not in stranger.stdout
    refused = initiator("iscsi-readcapacity16", "-s", "-i", STRANGER,
                        f"iscsi://{node.sch.address}/{target}/1")
    assert refused.returncode != 0 and "Login Failed" in refused.stderr


def test_a_grown_volume_is_seen_grown_and_an_exported_volume_is_not_deleted(node: Node) -> None:
    target = iqn(node.client, "data")
    node.ok("n_storage_pool_create")
    node.ok("n_storage_volume_create", "data", "64M")
    node.ok("n_storage_export", "data", target, INITIATOR)
    node.ok("n_storage_volume_resize", "data", "160M")
    assert capacity(node, target) == 160 * MIB
    node.ok("n_storage_volume_create", "other", "16M")
    conflict = node("n_storage_export", "other", target, INITIATOR)
    assert conflict.returncode == 3 and "already exports" in conflict.stderr
    busy = node("n_storage_volume_delete", "data")
    assert busy.returncode == 3 and "exported" in busy.stderr
    node.ok("n_storage_export", "data", target, STRANGER)  # re-bound to another initiator
    assert capacity(node, target, STRANGER) == 160 * MIB
    assert initiator("iscsi-readcapacity16", "-s", "-i", INITIATOR,
                     f"iscsi://{node.sch.address}/{target}/1").returncode != 0
    node.ok("n_storage_unexport", target)
    node.ok("n_storage_unexport", target)
    assert targets_named(node, target) == 0
    node.ok("n_storage_volume_delete", "data")


# -- n_storage_sync: the IPS's work ---------------------------------------------------------------


def test_sync_provisions_expands_and_deletes_reporting_each_job(node: Node) -> None:
    target = iqn(node.client, "root0")
    lun = f"{node.sch.address}:3260:{target}"
    provision = f"j1 provision root0 64M {target} {INITIATOR}\n"
    node.ok("n_storage_pool_create")

    def sync(work: str) -> dict[str, str]:
        node.ips.work[:] = [work]
        node.ok("n_storage_sync")
        return node.ips.reports()[-1]

    provisioned = {"job": "j1", "status": "ok", "lun": lun, "size": str(64 * MIB)}
    assert sync(provision) == provisioned
    assert capacity(node, target) == 64 * MIB
    assert sync(provision) == provisioned, "a job done twice gives the same result"
    assert (targets_named(node, target), node.ok("n_storage_volume_list")) == (
        1, f"root0 {64 * MIB}\n")
    assert sync(f"j2 expand root0 128M {target} -\n") == {
        "job": "j2", "status": "ok", "lun": lun, "size": str(128 * MIB)}
    assert capacity(node, target) == 128 * MIB
    assert sync(f"j2 expand root0 128M {target} -\n")["size"] == str(128 * MIB)
    assert sync(f"j4 expand root0 96M {target} -\n") == {
        "job": "j4", "status": "ok", "lun": lun, "size": str(128 * MIB)}, "grown already"
    assert sync(f"j3 delete root0 - {target} -\n") == {
        "job": "j3", "status": "ok", "lun": lun, "size": "0"}
    assert (targets_named(node, target), node.ok("n_storage_volume_list")) == (0, "")
    assert len(node.ips.reports()) == 6
    after_each_job = [cmd for cmd, form in node.ips.calls
                      if cmd == "storage_report" or form.get("name") == "STORAGE_FREE"]
    assert after_each_job == ["storage_report", "host_variable"] * 6
    assert node.ips.host["STORAGE_FREE"] == str(1024 * MIB)


def test_failed_jobs_are_reported_with_one_line_why_and_the_rest_still_done(node: Node) -> None:
    target = iqn(node.client, "ok1")
    node.ok("n_storage_pool_create")
    node.ips.work[:] = ["b1 provision bad_name 64M - -\n"
                        "b2 frobnicate root0 - - -\n"
                        "b3 provision root0\n"
                        f"b4 provision ok1 16M {target} {INITIATOR}\n"
                        "b5 expand gone 8M - -\n"
                        "b6 provision big 4G - -\n"]
    result = node("n_storage_sync")
    assert result.returncode == 1, result.stderr
    reports = {r["job"]: r for r in node.ips.reports()}
    assert reports["b1"] == {"job": "b1", "status": "failed",
                             "detail": "bad job: n_storage_volume_create VOLUME SIZE "
                                       "(e.g. root0 40G)"}
    assert reports["b2"]["detail"] == "unknown action frobnicate"
    assert reports["b3"]["detail"] == "malformed job: not 6 fields"
    assert reports["b4"]["status"] == "ok"
    assert reports["b5"]["detail"] == "no volume gone"
    assert reports["b6"]["status"] == "failed" and "free" in reports["b6"]["detail"]
    assert node.ok("n_storage_volume_list") == f"ok1 {16 * MIB}\n"
    assert not list((node.root / "tmp").iterdir()), "temporary files left behind"
    assert not (node.root / "run" / "hps" / "storage-sync.lock").exists()


@pytest.mark.parametrize(("noglob", "after"), [("set -f", "noglob"), ("set +f", "glob")])
def test_a_job_line_is_never_globbed_and_the_callers_noglob_is_left_as_it_was(
        node: Node, noglob: str, after: str) -> None:
    node.ok("n_storage_pool_create")
    node.ips.work[:] = ["g1 provision * 16M - -\n"]
    result = node.shell(f'{noglob}; n_storage_sync; rc=$?; '
                        'case $- in *f*) echo noglob ;; *) echo glob ;; esac; exit "$rc"')
    assert (result.returncode, result.stdout) == (1, f"{after}\n"), result.stderr
    [report] = node.ips.reports()
    assert report["detail"].startswith("bad job: n_storage_volume_create"), report


def test_syncs_never_overlap_and_a_dead_syncs_lock_is_taken_over(node: Node) -> None:
    lock = node.root / "run" / "hps" / "storage-sync.lock"
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{os.getpid()}\n")  # alive: this test
    busy = node("n_storage_sync")
    assert busy.returncode == 3 and "already runs" in busy.stderr
    assert node.ips.calls == []
    finished = subprocess.Popen(["true"])
    finished.wait(10)
    (lock / "pid").write_text(f"{finished.pid}\n")  # a sync that died
    node.ok("n_storage_sync")
    assert [cmd for cmd, _ in node.ips.calls] == ["storage_work"]
    assert not lock.exists()


def test_the_portal_is_the_hosts_ip_without_a_storage_network_or_the_setting(node: Node) -> None:
    target = iqn(node.client, "p1")
    node.ok("n_storage_pool_create")
    node.ips.storage_network = None
    node.ips.host["IP"] = node.sch.address
    node.ips.work[:] = [f"p1 provision p1 16M {target} {INITIATOR}\n"] * 2
    node.ok("n_storage_sync")
    node.ok("n_storage_sync", HPS_ISCSI_PORTAL="10.98.0.9:3261")
    assert [r["lun"] for r in node.ips.reports()] == [f"{node.sch.address}:3260:{target}",
                                                      f"10.98.0.9:3261:{target}"]


def test_sync_without_work_does_nothing_and_an_ips_down_is_2(node: Node) -> None:
    assert node.ok("n_storage_sync") == ""
    assert [cmd for cmd, _ in node.ips.calls] == ["storage_work"]
    down = node("n_storage_sync", HPS_API=f"http://{node.sch.ips_address}:9")
    assert down.returncode == 2


# -- the real IPS: its storage operations queue the work, the storage host does it -----------------


@pytest.fixture
def real_ips(sch: StorageHost, tmp_path: Path) -> Iterator[tuple[str, FileStore]]:
    """The app on this namespace's end of the veth (the storage host reaches it there), its
    store holding a storage host (this namespace, by the neighbour table) and a thin host."""
    root = tmp_path / "ips"
    settings = Settings(config_dir=root / "config", log_dir=root / "log", arp_table=root / "arp",
                        dhcp_leases=root / "leases", lock_timeout=2.0)
    root.mkdir()
    (root / "arp").write_text("IP address  HW type  Flags  HW address  Mask  Device\n"
                              f"{sch.address} 0x1 0x2 {MAC} * eth0\n")
    store = FileStore(settings.config_dir, lock_timeout=2.0)
    initialise(store, "default", "test:setup")
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED", "TYPE": "SCH",
                 "HOSTNAME": "sch-01", "IP": sch.address}, "test:setup", create=True)
    store.update(RecordId.of_host("default", THIN_MAC), {"STATE": "INSTALLED", "TYPE": "TCH",
                 "HOSTNAME": "tch-01"}, "test:setup", create=True)
    server = make_server(sch.ips_address, 0, create_app(settings), threaded=True,
                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{sch.ips_address}:{server.port}", store
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_with_the_real_ips_a_thin_hosts_disk_is_provisioned_grown_and_deleted(
        node: Node, real_ips: tuple[str, FileStore]) -> None:
    from hps_api.model import storage as storage_model
    from hps_api.ops import storage as storage_ops

    url, store = real_ips
    sch, thin = RecordId.of_host("default", MAC), RecordId.of_host("default", THIN_MAC)
    node.api = url
    assert node.ok("n_storage_pool_create") == f"file:{node.pool}\n"
    node.ok("n_storage_report")
    assert store.items(sch)["STORAGE_FREE"] == str(1024 * MIB)
    plan = storage_ops.provision(store, "default", THIN_MAC, "64M", "test")
    [job] = plan["jobs"]
    node.ok("n_storage_sync")
    root_disk = storage_model.parse_root(store.items(thin)["ISCSI_ROOT_0"])
    assert (root_disk.ip, root_disk.port, root_disk.iqn) == (node.sch.address, 3260, job["iqn"])
    assert capacity(node, job["iqn"], job["initiator"]) == 64 * MIB
    assert store.items(sch)["STORAGE_FREE"] == str(960 * MIB)
    node.ok("n_storage_sync")  # no work left: nothing changes
    assert node.ok("n_storage_volume_list") == f"{job['volume']} {64 * MIB}\n"
    storage_ops.expand(store, "default", job["iqn"], "128M", "test")
    node.ok("n_storage_sync")
    assert capacity(node, job["iqn"], job["initiator"]) == 128 * MIB
    assert storage_ops.show(store, "default", job["iqn"])["bytes"] == 128 * MIB
    store.unset(thin, "ISCSI_ROOT_0", "test")
    storage_ops.delete(store, "default", job["iqn"], "test")
    node.ok("n_storage_sync")
    assert node.ok("n_storage_volume_list") == ""
    assert targets_named(node, job["iqn"]) == 0
    assert storage_ops.listing(store, "default")["volumes"] == []
    assert not storage_model.jobs_of(store.items(sch))


# -- bad usage: 4, and nothing changed ------------------------------------------------------------

BAD_USAGE = [
    ("n_storage_pool_create", ("/not/a/disk",), {}),
    ("n_storage_pool_create", ("/dev/null",), {}),
    ("n_storage_volume_create", (), {}),
    ("n_storage_volume_create", ("vol",), {}),
    ("n_storage_volume_create", ("bad_name", "64M"), {}),
    ("n_storage_volume_create", ("-vol", "64M"), {}),
    ("n_storage_volume_create", ("vol", "0"), {}),
    ("n_storage_volume_create", ("vol", "40X"), {}),
    ("n_storage_volume_create", ("vol", "1K"), {}),
    ("n_storage_volume_create", ("vol", "99999999T"), {}),
    ("n_storage_volume_create", ("vol", "64M", "extra"), {}),
    ("n_storage_volume_list", ("extra",), {}),
    ("n_storage_volume_resize", ("keep",), {}),
    ("n_storage_volume_resize", ("keep", "-5M"), {}),
    ("n_storage_volume_delete", (), {}),
    ("n_storage_volume_delete", ("keep", "other"), {}),
    ("n_storage_volume_delete", ("a/../keep",), {}),
    ("n_storage_export", ("keep", "iqn.2025-09.default:sch-01.keep"), {}),
    ("n_storage_export", ("keep", "not-an-iqn", INITIATOR), {}),
    ("n_storage_export", ("keep", "iqn.2025-09.default:sch-01.keep", "IQN.2025-09.UPPER:x"), {}),
    ("n_storage_export", ("keep", "iqn.2025-09.default:sch 01", INITIATOR), {}),
    ("n_storage_unexport", (), {}),
    ("n_storage_unexport", ("iqn.bad",), {}),
    ("n_storage_report", ("extra",), {}),
    ("n_storage_sync", ("extra",), {}),
]


@pytest.mark.parametrize(("function", "args", "env"), BAD_USAGE,
                         ids=[f"{f} {' '.join(a) or '(none)'}" for f, a, _ in BAD_USAGE])
def test_bad_usage_exits_4_and_changes_nothing(node: Node, function: str, args: tuple[str, ...],
                                               env: dict[str, str], snapshot) -> None:  # type: ignore[no-untyped-def]
    target = iqn(node.client, "keep")
    node.ok("n_storage_pool_create")
    node.ok("n_storage_volume_create", "keep", "32M")
    node.ok("n_storage_export", "keep", target, INITIATOR)
    files, targets, calls = snapshot(node.root), node.sch.tgt_targets(), len(node.ips.calls)
    result = node(function, *args, **env)
    assert (result.returncode, result.stdout) == (4, ""), result.stderr
    assert result.stderr.startswith("usage: ")
    assert snapshot(node.root) == files
    assert node.sch.tgt_targets() == targets
    assert len(node.ips.calls) == calls, "bad usage reached the IPS"


def test_a_bad_pool_size_is_bad_usage_and_makes_no_pool(node: Node) -> None:
    result = node("n_storage_pool_create", HPS_POOL_SIZE="lots")
    assert (result.returncode, result.stdout) == (4, "")
    assert not (node.root / "var").exists()


@pytest.mark.parametrize(("tools", "expected"), [
    (("truncate", "tgtadm"), ""),  # the sparse-file pool and tgt: all a storage host needs
    (("truncate",), "iSCSI target tools missing (targetcli or tgtadm)\n"),
    (("tgtadm",), "no pool tool (zpool, lvcreate or truncate)\n"),
])
def test_the_storage_self_test_accepts_every_pool_the_library_can_make(
        tmp_path: Path, tools: tuple[str, ...], expected: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    script = f'. "{NODE_SH}"; PATH="{bin_dir}"; _n_check_storage SCH; _n_check_storage TCH'
    done = subprocess.run(["dash", "-c", script], capture_output=True, text=True, timeout=10,
                          check=False)
    assert (done.returncode, done.stdout) == (0, expected), done.stderr

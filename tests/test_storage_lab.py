"""A thin host boots from an iSCSI disk its storage host made (docs/storage-hosts.md), in the
lab (docs/lab.md): real hps-api under gunicorn, real dnsmasq, real iPXE firmware in QEMU, and
a real iSCSI target (tgt's `tgtd`) in a namespace of its own on the lab bridge, as a storage
host would be.

The whole flow: a thin host without a disk -> an operator asks `/api/v1/storage/provision` ->
the storage host runs the node library the IPS serves it (hps-functions.sh and hps-storage.sh,
under dash, with a sparse-file pool and tgt): `n_storage_sync` fetches its work with
`cmd=storage_work`, makes and exports the volume, reports it with `cmd=storage_report` -> the
thin host has ISCSI_ROOT_0 -> its iPXE is answered `sanboot`, logs in as its own initiator, and
the boot sector the test wrote on the volume prints a marker on the serial console.

tgtd runs with a control port of its own (no clash with any other tgtd) and is stopped by its
pid. Needs root, tgt (Debian package `tgt`) and dash besides what the lab needs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lab import (
    API,
    PXE_LAB,
    Lab,
    admin_call,
    delete_namespace,
    host_record,
    in_ns,
    lab_unavailable,
    read,
    running_lab,
    wait_for,
)

pytestmark = pytest.mark.slow

SCH_MAC, TCH_MAC = "52:54:00:5c:00:01", "52:54:00:5c:00:02"
SCH_IP, PORTAL_PORT = "10.99.0.60", 3260
VOLUME_BYTES = 8 << 20
MARKER = "HPS-SANBOOT-OK"
BOOT_TIMEOUT = 90
STORAGE_TOOLS = ("tgtd", "tgtadm", "dash", "curl")
TGTD_RUN = Path("/var/run/tgtd")


def boot_sector(marker: str) -> bytes:
    """Return a 512-byte boot sector that prints `marker` on COM1 and halts.

    16-bit real mode, loaded at 0x7c00:
        xor ax,ax / mov ds,ax / cld / mov si,msg / mov dx,0x3f8
        next: lodsb / test al,al / jz done / out dx,al / jmp next
        done: hlt / jmp done
    """
    code = bytes([0x31, 0xC0, 0x8E, 0xD8, 0xFC])
    message_at = 0x7C00 + 22
    code += bytes([0xBE, message_at & 0xFF, message_at >> 8])  # mov si, msg
    code += bytes([0xBA, 0xF8, 0x03])  # mov dx, 0x3f8
    code += bytes([0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8])  # the print loop
    code += bytes([0xF4, 0xEB, 0xFD])  # hlt forever
    assert len(code) == 22
    sector = code + f"\r\n{marker}\r\n".encode() + b"\0"
    return sector.ljust(510, b"\0") + b"\x55\xaa"


def test_the_boot_sector_is_one_sector_with_the_signature() -> None:
    sector = boot_sector(MARKER)
    assert len(sector) == 512 and sector[-2:] == b"\x55\xaa" and MARKER.encode() in sector


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of its own; the sanboot needs no rescue image, so an empty one is served."""
    reason = lab_unavailable() or (None if all(shutil.which(t) for t in STORAGE_TOOLS)
                                   else "STORAGE LAB NOT RUN: apt-get install tgt dash curl")
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("storage-lab")
    (root / "no-rescue-image").mkdir()
    with running_lab(root / "lab", root / "no-rescue-image") as running:
        yield running


@pytest.fixture
def storage_ns(lab: Lab) -> Iterator[str]:
    """A namespace on the lab bridge with the storage host's MAC and address."""
    name, peer = f"{lab.ns}s", f"vs{secrets.token_hex(3)}"
    steps = [["ip", "netns", "add", name],
             ["ip", "-n", lab.ns, "link", "add", peer, "type", "veth", "peer", "name", "vc0",
              "netns", name],
             ["ip", "-n", lab.ns, "link", "set", peer, "master", "hpsbr0", "up"],
             ["ip", "-n", name, "link", "set", "lo", "up"],
             ["ip", "-n", name, "link", "set", "vc0", "address", SCH_MAC],
             ["ip", "-n", name, "link", "set", "vc0", "up"],
             ["ip", "-n", name, "addr", "add", f"{SCH_IP}/24", "dev", "vc0"]]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        yield name
    finally:
        delete_namespace(name)


@contextlib.contextmanager
def tgtd(ns: str, workdir: Path) -> Iterator[str]:
    """Start tgtd in `ns` on SCH_IP:PORTAL_PORT with a control port of its own; yield the
    control port; stop it by its pid."""
    # tgtd refuses a control port above 32767
    control = str(20000 + secrets.randbelow(12000))
    while (TGTD_RUN / f"socket.{control}").exists():  # another tgtd's (or one left behind)
        control = str(20000 + secrets.randbelow(12000))
    log = (workdir / "tgtd.log").open("wb")
    daemon = subprocess.Popen(["ip", "netns", "exec", ns, "tgtd", "-f", "--control-port",
                               control, "--iscsi", f"portal={SCH_IP}:{PORTAL_PORT}"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    admin = ["ip", "netns", "exec", ns, "tgtadm", "--control-port", control, "--lld", "iscsi"]
    try:
        wait_for(lambda: subprocess.run([*admin, "--mode", "target", "--op", "show"],
                                        capture_output=True, check=False).returncode == 0
                 or daemon.poll() is not None, 15, "tgtd to answer tgtadm")
        assert daemon.poll() is None, read(workdir / "tgtd.log")
        yield control
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)
        log.close()
        for left in (TGTD_RUN / f"socket.{control}", TGTD_RUN / f"socket.{control}.lock"):
            left.unlink(missing_ok=True)  # tgtd leaves its control socket behind


def node_call(ns: str, query: str) -> str:
    """GET the legacy endpoint from inside `ns` as a node does (curl's own headers)."""
    done = in_ns(ns, "curl", "-fsS", "--max-time", "20", f"{API}/cgi-bin/boot_manager.sh?{query}",
                 timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def storage_host(ns: str, workdir: Path, control: str) -> Callable[[str], str]:
    """Fetch the node library from the IPS as the storage host does; return a function running
    a line of sh under dash in `ns` with it sourced (stdout; stderr on failure)."""
    libraries = []
    for flavour, query in (("hps-functions.sh", "cmd=node_get_functions"),
                           ("hps-storage.sh", "cmd=node_get_functions&distro=storage")):
        (workdir / flavour).write_text(node_call(ns, query))
        libraries.append(str(workdir / flavour))
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "HPS_API": API, "HPS_MAC": SCH_MAC, "HPS_NODE_ROOT": str(workdir / "root"),
           "HPS_POOL_DIR": str(workdir / "pool"), "HPS_POOL_SIZE": "64M",
           "HPS_ISCSI_TARGET": "tgt", "HPS_TGT_CONTROL_PORT": control,
           "HPS_ISCSI_PORTAL": f"{SCH_IP}:{PORTAL_PORT}"}

    def run(line: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", ns, "dash", "-c",
                               f'. "$1" && . "$2" && {line}', "sh", *libraries],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{line}: rc {done.returncode}\n{done.stderr}"
        return done.stdout

    return run


def test_a_thin_host_without_a_disk_gets_one_and_sanboots_it(lab: Lab, storage_ns: str,
                                                            tmp_path: Path) -> None:
    started = time.monotonic()
    for prog, *args in (("cluster_config", "set", "TCH_ROOT", "iscsi"),
                        ("host_config", SCH_MAC, "set", "TYPE", "SCH"),
                        ("host_config", SCH_MAC, "set", "HOSTNAME", "sch-001"),
                        ("host_config", TCH_MAC, "set", "TYPE", "TCH"),
                        ("host_config", TCH_MAC, "set", "HOSTNAME", "tch-001"),
                        ("host_config", TCH_MAC, "set", "STATE", "CONFIGURED")):
        done = lab.cli(prog, *args)
        assert done.returncode == 0, f"{prog} {args}: {done.stderr}"
    with tgtd(storage_ns, tmp_path) as control:
        sch = storage_host(storage_ns, tmp_path, control)
        assert sch("n_storage_pool_create && n_storage_report") == \
            f"file:{tmp_path / 'pool'}\n"
        assert host_record(lab, SCH_MAC)["STORAGE_FREE"] == str(64 << 20)

        plan = admin_call(lab, "/api/v1/storage/provision", {"mac": TCH_MAC, "size": "8M"})
        jobs = plan["jobs"]
        assert isinstance(jobs, list) and jobs[0]["storage_host"] == SCH_MAC.replace(":", "")

        sch("n_storage_sync")
        volume = tmp_path / "pool" / "tch-001-root0.img"
        assert volume.stat().st_size == VOLUME_BYTES
        with volume.open("r+b") as disk:  # what an OS install would put there
            disk.write(boot_sector(MARKER))
        lun = f"{SCH_IP}:{PORTAL_PORT}:{jobs[0]['iqn']}"
        assert host_record(lab, TCH_MAC)["ISCSI_ROOT_0"] == lun
        assert host_record(lab, SCH_MAC)["STORAGE_FREE"] == str(56 << 20)
        assert node_call(storage_ns, "cmd=storage_work") == ""

        serial = tmp_path / "serial.log"
        vm = subprocess.Popen([str(PXE_LAB), "vm", TCH_MAC, "--timeout", str(BOOT_TIMEOUT),
                               "--log", str(serial), "--no-reboot"], env=lab.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for(lambda: MARKER in read(serial) or vm.poll() is not None, BOOT_TIMEOUT,
                     f"the thin host to sanboot its volume and print {MARKER}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(vm.pid, signal.SIGTERM)
            vm.wait(timeout=30)
    console = read(serial)
    assert MARKER in console, console[-3000:]
    assert "boots its iSCSI root" in console
    record = host_record(lab, TCH_MAC)
    assert record["STATE"] == "NETWORK_BOOT"
    assert time.monotonic() - started < 120, "the storage lab test should stay under 2 minutes"

"""Real BMC emulators for the power tests, on loopback ports of their own.

- Redfish: sushy-tools' `sushy-emulator` with its fake driver (no libvirt): a config file
  listing the systems, HTTP basic authentication from an htpasswd file (bcrypt), its state in a
  directory of its own. Its fake systems take 1-11 s to apply a power change, as real BMCs do.
- IPMI: OpenIPMI's `ipmi_sim` serving IPMI 2.0 over LAN on a UDP port, one BMC (MC 0x20),
  whose chassis control (power, boot device) runs `tests/bmc/chassis-control`: the script
  records the state in files, or ignores every change when `ignore` exists in its directory.
  The lab tier (tests/test_power_lab.py) runs it inside the lab's namespace with
  `tests/bmc/chassis-qemu`, which starts and stops a QEMU VM.
- Wake-on-LAN: a UDP socket bound to the loopback broadcast address 127.255.255.255.

Every process is stopped on the way out, even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
CHASSIS_CONTROL = Path(__file__).resolve().parent / "bmc" / "chassis-control"
REDFISH_USER, REDFISH_PASSWORD = "admin", "redfish-pass-1"
IPMI_USER, IPMI_PASSWORD = "admin", "ipmi-pass-1"
LOOPBACK_BROADCAST = "127.255.255.255"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port free on 127.0.0.1 for TCP (or UDP) right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def system_uuid(index: int) -> str:
    """Return the uuid of fake Redfish system number `index`."""
    return f"5e1f0000-0000-4000-8000-{index:012x}"


@dataclass(frozen=True)
class Redfish:
    """A running sushy-emulator: its URL and how many systems it has."""

    url: str
    systems: int


@contextlib.contextmanager
def sushy_emulator(work: Path, systems: int) -> Iterator[Redfish]:
    """Run sushy-emulator with `systems` fake systems (all off) on a free loopback port."""
    import bcrypt

    program = BIN / "sushy-emulator"
    if not program.exists():
        pytest.skip("sushy-emulator is not installed (pip install sushy-tools: the test extras)")
    work.mkdir(parents=True, exist_ok=True)
    htpasswd = work / "htpasswd"
    digest = bcrypt.hashpw(REDFISH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{REDFISH_USER}:{digest}\n")
    fake = [{"uuid": system_uuid(i), "name": f"node-{i}", "power_state": "Off",
             "nics": [{"mac": f"52:54:00:ee:00:{i:02x}", "ip": "127.0.0.1"}]}
            for i in range(systems)]
    config = work / "emulator.conf"
    config.write_text(f"SUSHY_EMULATOR_FAKE_DRIVER = True\n"
                      f"SUSHY_EMULATOR_STATE_DIR = {str(work / 'state')!r}\n"
                      f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
                      f"SUSHY_EMULATOR_FAKE_SYSTEMS = {fake!r}\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _process([str(program), "--config", str(config), "-i", "127.0.0.1", "-p", str(port)],
                  work / "emulator.log"):
        _wait_http(f"{url}/redfish/v1/", work / "emulator.log")
        yield Redfish(url, systems)


@dataclass(frozen=True)
class IpmiBmc:
    """A running ipmi_sim: `address` (127.0.0.1:PORT) and the directory its hook writes."""

    address: str
    state: Path

    def power(self) -> str:
        """Return the power the chassis hook holds: `1` on, `0` off."""
        path = self.state / "power"
        return path.read_text().strip() if path.exists() else "0"

    def boot(self) -> str:
        """Return the boot device the hook was last given (`default` before any)."""
        path = self.state / "boot"
        return path.read_text().strip() if path.exists() else "default"

    def ignore_changes(self) -> None:
        """Make the BMC accept every change and do nothing."""
        (self.state / "ignore").touch()


@contextlib.contextmanager
def ipmi_sim(work: Path, hook: Path = CHASSIS_CONTROL, *, netns: str | None = None,
             env: Mapping[str, str] | None = None) -> Iterator[IpmiBmc]:
    """Run ipmi_sim on a free loopback UDP port; its chassis control runs `hook STATE_DIR`.
    With `netns`, inside that network namespace (on its loopback); `env` is ipmi_sim's
    environment, which its hook inherits (default: this process's)."""
    program = shutil.which("ipmi_sim")
    if program is None:
        pytest.skip("ipmi_sim is not installed (apt-get install openipmi: scripts/test does)")
    state = work / "chassis"
    for path in (work / "sim-state", state):
        path.mkdir(parents=True, exist_ok=True)
    port = free_port(socket.SOCK_DGRAM) if netns is None else _free_udp_port_in(netns)
    (work / "lan.conf").write_text(
        'name "hps-test"\n'
        "set_working_mc 0x20\n"
        "  startlan 1\n"
        f"    addr 127.0.0.1 {port}\n"
        "    priv_limit admin\n"
        "    allowed_auths_callback md5\n"
        "    allowed_auths_user md5\n"
        "    allowed_auths_operator md5\n"
        "    allowed_auths_admin md5\n"
        "    guid a123456789abcdefa123456789abcdef\n"
        "  endlan\n"
        f'  chassis_control "{hook} {state}"\n'
        f'  user 2 true "{IPMI_USER}" "{IPMI_PASSWORD}" admin 10 md5\n')
    (work / "sim.emu").write_text("mc_setbmc 0x20\n"
                                  "mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\n"
                                  "mc_enable 0x20\n")
    command = [program, "-n", "-c", str(work / "lan.conf"), "-f", str(work / "sim.emu"),
               "-s", str(work / "sim-state")]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]  # ip execs ipmi_sim: the same pid
    with _process(command, work / "ipmi_sim.log", env) as proc:
        _wait_udp(port, work / "ipmi_sim.log", proc.pid)
        yield IpmiBmc(f"127.0.0.1:{port}", state)


@contextlib.contextmanager
def wol_listener() -> Iterator[socket.socket]:
    """Yield a UDP socket on the loopback broadcast address (a port of its own) that receives
    what is sent to `127.255.255.255:<its port>`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((LOOPBACK_BROADCAST, 0))
        sock.settimeout(5)
        yield sock
    finally:
        sock.close()


@contextlib.contextmanager
def _process(command: list[str], log: Path,
             env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env=None if env is None else dict(env))
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _wait_http(url: str, log: Path, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {seconds} s: {log.read_text()[-2000:]}")


def _wait_udp(port: int, log: Path, pid: int, seconds: float = 10.0) -> None:
    """Wait until something listens on UDP 127.0.0.1:port in the network namespace of process
    `pid` (its /proc/PID/net/udp lists it)."""
    needle = f"0100007F:{port:04X}"
    table = Path(f"/proc/{pid}/net/udp")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # the process may be gone: the error below says so
            if needle in table.read_text():
                return
        time.sleep(0.05)
    raise RuntimeError(f"ipmi_sim did not listen on {port}: {log.read_text()[-2000:]}")


def _free_udp_port_in(netns: str) -> int:
    """Return a UDP port free on 127.0.0.1 inside network namespace `netns` right now."""
    code = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('127.0.0.1', 0))\n"
            "print(s.getsockname()[1])\n")
    found = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code],
                           capture_output=True, text=True, timeout=30, check=True)
    return int(found.stdout)

"""The power loop in the lab tier (docs/power.md, "The loop in the lab"): `hps-api power MAC on`
through a real OpenIPMI ipmi_sim serving IPMI over LAN, whose chassis hook
(tests/bmc/chassis-qemu) starts a real QEMU VM with that MAC; the VM PXE-boots through the
lab's real dnsmasq and real iPXE into hps-api, whose `init` starts its boot session; `off`
stops the VM (the hook kills the QEMU it started, by pid).

The lab (`scripts/pxe-lab up`, tests/lab.py) runs in a namespace of its own; ipmi_sim runs in
the same namespace, on its loopback, where the lab's hps-api server reaches it too, so the
CLI's `power` runs there as well. Needs root, the lab's Debian packages and openipmi.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from bmc_emulators import IPMI_PASSWORD, IPMI_USER, IpmiBmc, ipmi_sim
from lab import (
    API,
    VM_TIMEOUT,
    Lab,
    admin_call,
    build_rescue_image,
    events,
    host_record,
    in_ns,
    read,
    running_lab,
    wait_for,
    wait_for_init,
)

pytestmark = pytest.mark.slow

MAC, MAC12 = "52:54:00:7a:00:0c", "5254007a000c"
TAP = "hpstap" + MAC12[6:]  # pxe-lab's tap for this MAC
CHASSIS_QEMU = Path(__file__).resolve().parent / "bmc" / "chassis-qemu"


@pytest.fixture(scope="module")
def rescue_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rescue image (the lab's KVM probe boots its kernel), built once per session."""
    return build_rescue_image(tmp_path_factory)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, rescue_image: Path) -> Iterator[Lab]:
    """`scripts/pxe-lab up` in a namespace of our own; always `down` and deleted afterwards."""
    with running_lab(tmp_path_factory.mktemp("lab"), rescue_image) as running:
        yield running


@pytest.fixture
def vm_bmc(lab: Lab, tmp_path: Path) -> Iterator[IpmiBmc]:
    """ipmi_sim inside the lab's namespace, whose chassis is a lab VM with MAC (its serial
    console in tmp_path/serial.log); afterwards the VM it started, if it still runs, is
    stopped by the pids the hook kept, and ipmi_sim with it."""
    env = {key: value for key, value in lab.env.items() if key != "HPS_ADMIN_TOKEN"}
    env.update({"CHASSIS_QEMU_MAC": MAC, "CHASSIS_QEMU_LOG": str(tmp_path / "serial.log"),
                # a bound for a VM this test would fail to stop
                "CHASSIS_QEMU_TIMEOUT": str(VM_TIMEOUT * 2)})
    with ipmi_sim(tmp_path / "ipmi", CHASSIS_QEMU, netns=lab.ns, env=env) as sim:
        try:
            yield sim
        finally:
            stop_started_vm(sim.state)


def pid_in(path: Path) -> int | None:
    """Return the pid a file holds (None without the file)."""
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return None


def running(pid: int | None, marker: str) -> bool:
    """Return True while `pid` is a live (not zombie) process whose command line has
    `marker` as one of its arguments, or ends with it (a program's path)."""
    if pid is None:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "State:\tZ" not in status and any(a == marker or a.endswith("/" + marker)
                                             for a in argv)


def stop_started_vm(state: Path) -> None:
    """Stop what the chassis hook started, by the pids it kept: QEMU (SIGTERM), then wait for
    its launcher, `pxe-lab vm`, to exit (it removes the VM's tap device as it does)."""
    qemu, launcher = pid_in(state / "qemu.pid"), pid_in(state / "launcher.pid")
    if qemu is not None and running(qemu, f"hps-lab-{MAC12}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(qemu, signal.SIGTERM)
    wait_for(lambda: not running(launcher, "pxe-lab"), 30, "the VM's pxe-lab to exit")


def power(lab: Lab, *args: str) -> tuple[int, str]:
    """Run `hps-api power MAC ARGS` as an operator on the IPS would (inside the namespace, on
    the lab's store); return its exit code and everything it printed."""
    ran = lab.cli("hps-api", "power", MAC, *args, netns=True, timeout=150)
    return ran.returncode, ran.stdout + ran.stderr


def tap_exists(lab: Lab) -> bool:
    """Return True while the VM's tap device is on the lab's bridge."""
    return TAP in in_ns(lab.ns, "ip", "-o", "link", "show").stdout


def api_status(lab: Lab) -> dict[str, object]:
    """Have the lab's hps-api server read the host's power (`POST .../power` status) and
    return its finished action."""
    queued = admin_call(lab, f"/api/v1/hosts/{MAC}/power", {"action": "status"})
    location = f"/api/v1/power/actions/{queued['id']}"
    seen: list[dict[str, object]] = []

    def finished() -> bool:
        seen.append(admin_call(lab, location))
        return seen[-1]["status"] in ("done", "failed")

    wait_for(finished, 60, "the server's power status action to finish")
    return seen[-1]


def test_power_on_through_ipmi_pxe_boots_the_vm_into_init_and_power_off_stops_it(
        lab: Lab, vm_bmc: IpmiBmc, tmp_path: Path) -> None:
    serial = tmp_path / "serial.log"
    # A BMC belongs to a known host: the operator enrols it before its first boot, as the CSV
    # import does (STATE UNCONFIGURED, nothing else).
    enrolled = lab.cli("host_config", MAC, "set", "STATE", "UNCONFIGURED")
    assert enrolled.returncode == 0, enrolled.stderr
    password = tmp_path / "bmc-password"
    password.write_text(f"{IPMI_PASSWORD}\n")
    password.chmod(0o600)
    bmc = lab.cli("hps-api", "bmc", "set", MAC, "--driver", "ipmi", "--address",
                  vm_bmc.address, "--username", IPMI_USER, "--password-file", str(password))
    assert bmc.returncode == 0, bmc.stderr
    assert power(lab, "status") == (0, f"{MAC12} status: ok: power is off\n")
    assert "BOOT_SESSION" not in host_record(lab, MAC)
    assert not tap_exists(lab) and not serial.exists()

    assert power(lab, "on", "--wait") == (0, f"{MAC12} on: ok: on: power is on (read back)\n")
    qemu = pid_in(vm_bmc.state / "qemu.pid")
    assert running(qemu, f"hps-lab-{MAC12}"), read(vm_bmc.state / "vm.out")
    assert tap_exists(lab)
    wait_for_init(lab, MAC)
    record = host_record(lab, MAC)
    session = record.get("BOOT_SESSION", "")
    assert record["STATE"] == "UNCONFIGURED" and session, record
    console = read(serial)
    # dnsmasq's answer to iPXE, its settings filled in
    assert f"Filename: {API}/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00" in console, \
        console[-3000:]
    said = [(e[3], e[4], e[5]) for e in events(lab, MAC12)]
    assert [e for e in said if e[0] == session and e[1] == "ipxe" and
            e[2].startswith("init: menu ")], said

    assert power(lab, "status") == (0, f"{MAC12} status: ok: power is on\n")
    # the server in the namespace reads the same BMC (its poller and the API's actions do)
    read_by_server = api_status(lab)
    assert (read_by_server["status"], read_by_server["state"]) == ("done", "on"), read_by_server

    assert power(lab, "off", "--wait") == (0, f"{MAC12} off: ok: off: power is off (read back)\n")
    assert not running(qemu, f"hps-lab-{MAC12}")
    assert not (vm_bmc.state / "qemu.pid").exists()
    wait_for(lambda: not tap_exists(lab), 30, "pxe-lab to remove the VM's tap device")
    assert power(lab, "status") == (0, f"{MAC12} status: ok: power is off\n")
    # what the hook was told, in order (a command pyghmi sent again while the hook ran is
    # told twice: the hook does nothing the second time)
    told = (vm_bmc.state / "log").read_text().splitlines()
    assert [line for i, line in enumerate(told) if told[i - 1:i] != [line]] == [
        "power 1", "power 0"], told
    history = lab.cli("host_config", "--json", MAC, "history")
    assert history.returncode == 0, history.stderr
    actions = [(c["new"], c["actor"][:4]) for c in json.loads(history.stdout)
               if c["key"] == "POWER_ACTION"]
    assert actions == [("on: ok: on: power is on (read back)", "cli:"),
                       ("off: ok: off: power is off (read back)", "cli:")], actions

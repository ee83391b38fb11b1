"""The provisioning timeline in the lab tier (docs/timeline.md): a real iPXE VM PXE-boots through
the lab's real dnsmasq into hps-api under gunicorn, waits at its menu, is configured through the
JSON API and installs with the installer stand-in (the rescue image given inst.ks=, as in
tests/test_lab.py's whole life of a disk host); then `GET /api/v1/hosts/<mac>/timeline` and
`hps-api timeline MAC` must show dhcp, decision, kernel, initrd, kickstart, installing and
installed in that order, with durations that fit the run.

dnsmasq logs every DHCPACK to HPS_LOG_DIR/dnsmasq.log, as the generated dnsmasq.conf tells it
(`log-facility`): the timeline gets the DHCP of the iPXE boot itself. (The lease file alone
holds only the latest lease, which by then is the installer's own.)

A second VM is sent to an installer whose kernel it cannot fetch: it must be reported stuck in
that phase (the `kernel_fetch` rule, announced by the server's scan) while it keeps asking
again. Needs root and the lab's Debian packages (tests/lab.py).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lab import (
    VM_TIMEOUT,
    Lab,
    admin_call,
    build_rescue_image,
    events,
    host_record,
    read,
    running_lab,
    wait_for,
    wait_for_init,
)
from test_lab import LAB_OS, start_vm, stop_vm

pytestmark = pytest.mark.slow

MAC, MAC12 = "52:54:00:7a:00:0d", "5254007a000d"
BLOCKED_MAC, BLOCKED_MAC12 = "52:54:00:7a:00:0e", "5254007a000e"
BLOCKED_OS = "x86_64:blocked:1"
#: seconds between the server's scans for stuck hosts in this lab (default 60)
SCAN_SECONDS = 5
#: the phases an install must show, in this order (others, such as the menu, may lie between)
INSTALL_PHASES = ("dhcp", "decision", "kernel", "initrd", "kickstart", "installing",
                  "installed")


@pytest.fixture(scope="module")
def rescue_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rescue image (the installer stand-in), built once per session."""
    return build_rescue_image(tmp_path_factory)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, rescue_image: Path) -> Iterator[Lab]:
    """`scripts/pxe-lab up` in a namespace of our own; always `down` and deleted afterwards."""
    with running_lab(tmp_path_factory.mktemp("lab"), rescue_image,
                     {"HPS_STUCK_SCAN_SECONDS": str(SCAN_SECONDS)}) as running:
        yield running


def test_an_install_shows_each_phase_in_order_with_durations_that_fit(
        lab: Lab, tmp_path: Path) -> None:
    added = lab.cli("hps-api", "os", "add", LAB_OS, "--repo-path", "rescue", "--kernel",
                    "vmlinuz", "--initrd", "initrd.img", "--status", "prod", "--types", "SCH")
    assert added.returncode == 0, added.stderr
    assert lab.cli("cluster_config", "set", "MENU_TIMEOUT", "5").returncode == 0
    serial = tmp_path / "serial.log"
    began = time.time()
    vm = start_vm(lab, MAC, serial, timeout=VM_TIMEOUT * 2)  # --no-reboot: ends when done
    try:
        wait_for_init(lab, MAC)
        at_menu = admin_call(lab, f"/api/v1/hosts/{MAC}/timeline")
        assert at_menu["waiting"]["phase"] == "menu", at_menu
        time.sleep(6)  # at least one poll of the menu
        configured = admin_call(lab, f"/api/v1/hosts/{MAC}/configure", {"type": "SCH"})
        assert isinstance(configured["record"], dict)
        wait_for(lambda: "HPS-INSTALL-DONE" in read(serial), VM_TIMEOUT,
                 "the installer stand-in to report INSTALLED")
    finally:
        stop_vm(lab, vm, MAC)
    ended = time.time()
    assert host_record(lab, MAC)["STATE"] == "INSTALLED"

    data = admin_call(lab, f"/api/v1/hosts/{MAC}/timeline")
    phases = {p["phase"]: p for p in data["phases"]}
    seen = [p["phase"] for p in data["phases"] if p["at"]]
    assert [name for name in seen if name in INSTALL_PHASES] == list(INSTALL_PHASES), data
    starts = [_epoch(phases[name]["at"]) for name in INSTALL_PHASES]
    assert starts == sorted(starts), data
    assert began - 5 <= starts[0] and starts[-1] <= ended + 1, (began, ended, data)

    assert phases["dhcp"]["source"] == "dnsmasq"  # the iPXE boot's own DHCPACK
    assert phases["menu"]["at"] and phases["menu"]["took"] >= 5, phases["menu"]
    assert phases["decision"]["detail"].startswith("install ("), phases["decision"]
    assert phases["kernel"]["detail"].startswith("GET /distros/rescue/vmlinuz 200"), data
    assert phases["initrd"]["detail"].startswith("GET /distros/rescue/initrd.img 200"), data
    assert phases["kickstart"]["detail"].startswith(f"kickstart served: SCH {LAB_OS}"), data
    assert re.match(r"\d+ reports?; the latest: ", phases["installing"]["detail"]), data
    assert phases["installed"]["detail"] == "state INSTALLING -> INSTALLED", data
    # durations: each phase lasted until the next began; none negative, none longer than the run
    took = [p["took"] for p in data["phases"] if p["at"] and p["took"] is not None]
    assert all(0 <= t <= ended - began for t in took), data
    assert phases["initrd"]["took"] >= 1, data  # the kernel booted, took a lease, fetched the ks
    # the stand-in reports its self-test before INSTALLED: no self-test came after it yet
    assert data["waiting"]["phase"] == "installed", data

    shown = lab.cli("hps-api", "timeline", "--json", MAC)
    assert shown.returncode == 0, shown.stderr
    assert {**json.loads(shown.stdout), "now": None, "waiting": None} == \
        {**data, "now": None, "waiting": None}
    table = lab.cli("hps-api", "timeline", MAC)
    assert table.returncode == 0, table.stderr
    listed = [line.split()[0] for line in table.stdout.splitlines()[1:-1]]
    assert listed == [p["phase"] for p in data["phases"]], table.stdout
    assert table.stdout.splitlines()[-1].startswith(f"host {MAC12} (INSTALLED): in installed")


def test_a_host_whose_kernel_fetch_fails_is_reported_stuck_in_that_phase(
        lab: Lab, tmp_path: Path) -> None:
    # The OS's kernel is a link out of the resources tree (an operator's shortcut to a mounted
    # ISO): the file exists, so init sends the installer, but /distros/ never follows a link
    # out of its tree and answers 404. iPXE asks again every 30 s (ipxe/installer.ipxe), and
    # each time is an attempt: with INSTALL_MAX_ATTEMPTS=20 the host is still INSTALLING when
    # KERNEL_FETCH_MINUTES=1 is up; once the attempts are lowered, init gives up.
    rescue = lab.dir / "resources" / "distros" / "rescue"
    outside = lab.dir / "iso"
    outside.mkdir()
    (outside / "vmlinuz").write_bytes((rescue / "vmlinuz").read_bytes())
    blocked = lab.dir / "resources" / "distros" / "blocked"
    blocked.mkdir()
    (blocked / "vmlinuz").symlink_to(outside / "vmlinuz")
    (blocked / "initrd.img").write_bytes((rescue / "initrd.img").read_bytes())
    added = lab.cli("hps-api", "os", "add", BLOCKED_OS, "--repo-path", "blocked", "--kernel",
                    "vmlinuz", "--initrd", "initrd.img", "--status", "prod", "--types", "SCH")
    assert added.returncode == 0, added.stderr
    changed = {"OS_SCH": BLOCKED_OS, "KERNEL_FETCH_MINUTES": "1", "INSTALL_MAX_ATTEMPTS": "20",
               "MENU_TIMEOUT": "5"}
    for key, value in changed.items():
        assert lab.cli("cluster_config", "set", key, value).returncode == 0, key
    vm = start_vm(lab, BLOCKED_MAC, tmp_path / "serial.log", timeout=VM_TIMEOUT * 4)
    try:
        wait_for_init(lab, BLOCKED_MAC)
        configured = admin_call(lab, f"/api/v1/hosts/{BLOCKED_MAC}/configure", {"type": "SCH"})
        assert configured["record"]["OS_ID"] == BLOCKED_OS, configured  # type: ignore[index]
        # announced by the server's own scan (every SCAN_SECONDS): a WARNING in the event log
        wait_for(lambda: _announced(lab, "kernel_fetch"), 60 + VM_TIMEOUT,
                 "the server to announce the host stuck (kernel_fetch)")
        listed = lab.cli("hps-api", "stuck", "--json")
        timeline = admin_call(lab, f"/api/v1/hosts/{BLOCKED_MAC}/timeline")
        state = host_record(lab, BLOCKED_MAC)["STATE"]
        assert lab.cli("cluster_config", "set", "INSTALL_MAX_ATTEMPTS", "2").returncode == 0
        wait_for(lambda: _announced(lab, "install_failed"), VM_TIMEOUT,
                 "the server to announce that the install gave up (install_failed)")
        gave_up = host_record(lab, BLOCKED_MAC)
        fetches = re.findall(r'"GET /distros/blocked/(\S+) HTTP/1\.1" (\d+)',
                             read(lab.access_log))
    finally:
        stop_vm(lab, vm, BLOCKED_MAC)
        for key in changed:
            lab.cli("cluster_config", "unset", key)

    assert state == "INSTALLING"
    assert listed.returncode == 1, listed.stderr  # 1: a host is stuck
    stuck = {host["mac"]: host for host in json.loads(listed.stdout)["stuck"]}
    assert stuck[BLOCKED_MAC12]["rule"] == "kernel_fetch", stuck
    assert stuck[BLOCKED_MAC12]["state"] == "INSTALLING", stuck
    assert stuck[BLOCKED_MAC12]["detail"].startswith("installer sent "), stuck
    # the timeline names the phase: the kernel was asked for and refused, nothing came after
    waiting = timeline["waiting"]
    assert isinstance(waiting, dict) and waiting["phase"] == "kernel", timeline
    phases = timeline["phases"]
    assert isinstance(phases, list)
    kernel = next(p for p in phases if p["phase"] == "kernel")
    assert kernel["detail"] == "GET /distros/blocked/vmlinuz 404", kernel
    # each attempt asked for the kernel, got 404, and never reached the initrd or a kickstart
    assert len(fetches) >= 2 and set(fetches) == {("vmlinuz", "404")}, fetches
    assert not [line for line in events(lab, BLOCKED_MAC12)
                if line[5].startswith("kickstart served")]
    assert gave_up["STATE"] == "INSTALL_FAILED", gave_up


def _announced(lab: Lab, rule: str) -> bool:
    """Return True once the event log holds the server's announcement of the blocked host
    under `rule`."""
    return any(line[1] == "WARNING" and line[5].startswith("stuck: ") and f"({rule})" in line[5]
               for line in events(lab, BLOCKED_MAC12))


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()

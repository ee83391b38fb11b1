"""The provisioning timeline in the lab tier (docs/timeline.md): a real iPXE VM PXE-boots through
the lab's real dnsmasq into hps-api under gunicorn, waits at its menu, is configured through the
JSON API and installs with the installer stand-in (the rescue image given inst.ks=, as in
tests/test_lab.py's whole life of a disk host); then `GET /api/v1/hosts/<mac>/timeline` and
`hps-api timeline MAC` must show dhcp, decision, kernel, initrd, kickstart, installing and
installed in that order, with durations that fit the run.

dnsmasq logs every DHCPACK to the lab's dnsmasq.log (pxe-lab's `--log-facility`); linked into
HPS_LOG_DIR as `dnsmasq.log`, it gives the timeline the DHCP of the iPXE boot itself. (The lease
file alone holds only the latest lease, which by then is the installer's own.) Needs root and
the lab's Debian packages (tests/lab.py).
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
    host_record,
    read,
    running_lab,
    wait_for,
    wait_for_init,
)
from test_lab import LAB_OS, start_vm, stop_vm

pytestmark = pytest.mark.slow

MAC, MAC12 = "52:54:00:7a:00:0d", "5254007a000d"
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
    with running_lab(tmp_path_factory.mktemp("lab"), rescue_image) as running:
        yield running


def test_an_install_shows_each_phase_in_order_with_durations_that_fit(
        lab: Lab, tmp_path: Path) -> None:
    (lab.dir / "log" / "dnsmasq.log").symlink_to(lab.dir / "dnsmasq.log")
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


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()

"""`decide()` as a table: every state x type x flag, without Flask, plus golden iPXE scripts."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from hps_api.boot import decide as d
from hps_api.boot.catalog import load_catalog
from hps_api.boot.flow import script_of
from hps_api.boot.states import STATES

GOLDEN = Path(__file__).parent / "golden"
CLUSTER = {"DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "SYSLOG_PORT": "514"}
OS_ROCKY = {"NAME": "rocky", "REPO_PATH": "rocky/10/x86_64", "KERNEL": "images/pxeboot/vmlinuz",
            "INITRD": "images/pxeboot/initrd.img"}
OS_ALPINE = {"NAME": "alpine", "REPO_PATH": "alpine/3.20/x86_64", "KERNEL": "boot/vmlinuz-lts",
             "INITRD": "boot/initramfs-lts"}


def inputs(state: str | None = "UNCONFIGURED", host_type: str | None = "SCH",
           cluster: dict[str, str] | None = None, **host: str) -> d.BootInputs:
    record = dict(host)
    if state is not None:
        record["STATE"] = state
    if host_type:
        record.update({"TYPE": host_type, "PROFILE": "DEFAULT", "HOSTNAME": "sch-001",
                       "IP": "10.99.0.2", "NETMASK": "255.255.255.0"})
    diskless = host_type == "TCH"
    return d.BootInputs(
        mac="525400aabb01", host=record, cluster={**CLUSTER, **(cluster or {})},
        types=load_catalog(), os_id="x86_64:alpine:3.20" if diskless else "x86_64:rocky:10",
        os=OS_ALPINE if diskless else OS_ROCKY, base_url="http://10.99.0.1:8080",
        session="a1b2c3", now="2026-11-21T00:00:00Z", registered=state is not None)


TABLE: list[tuple[str, str | None, dict[str, str], str, dict[str, Any]]] = [
    # state, type, extra host keys, action, changes
    ("UNCONFIGURED", None, {}, "menu", {}),
    ("UNCONFIGURED", "SCH", {}, "menu", {}),
    ("FAILED", "SCH", {}, "menu", {}),
    ("INSTALL_FAILED", "SCH", {}, "menu", {}),
    ("CONFIGURED", "SCH", {}, "install", {"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}),
    ("CONFIGURED", "CCH", {}, "install", {"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}),
    ("CONFIGURED", "DRH", {}, "install", {"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}),
    ("CONFIGURED", "TCH", {}, "netboot", {"STATE": "NETWORK_BOOT"}),
    ("REINSTALL", "SCH", {}, "install", {"STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}),
    ("REINSTALL", "TCH", {}, "netboot", {"STATE": "NETWORK_BOOT"}),
    ("INSTALLING", "SCH", {"INSTALL_ATTEMPTS": "1"}, "install", {"INSTALL_ATTEMPTS": "2"}),
    ("INSTALLING", "SCH", {"INSTALL_ATTEMPTS": "2"}, "install", {"INSTALL_ATTEMPTS": "3"}),
    ("INSTALLING", "SCH", {"INSTALL_ATTEMPTS": "3"}, "error", {"STATE": "INSTALL_FAILED"}),
    ("NETWORK_BOOT", "TCH", {}, "netboot", {}),
    ("INSTALLED", "SCH", {}, "localboot", {}),
    ("UNMANAGED", None, {}, "localboot", {}),
    ("INSTALLED", "SCH", {"RESCUE": "yes"}, "rescue", {}),
    ("UNCONFIGURED", None, {"RESCUE": "YES"}, "rescue", {}),
    ("INSTALLING", "SCH", {"RESCUE": "yes"}, "rescue", {}),
    ("INSTALLED", "SCH", {"FORCE_INSTALL": "yes"}, "install",
     {"FORCE_INSTALL": None, "STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1"}),
    ("UNMANAGED", "TCH", {"FORCE_INSTALL": "yes"}, "netboot",
     {"FORCE_INSTALL": None, "STATE": "NETWORK_BOOT"}),
    ("INSTALLED", "SCH", {"FORCE_INSTALL": "no"}, "localboot", {}),
    ("UNCONFIGURED", None, {"FORCE_INSTALL": "yes"}, "menu", {}),
    (None, None, {}, "menu", {}),
]


@pytest.mark.parametrize(("state", "host_type", "extra", "action", "changes"), TABLE)
def test_the_state_table(state, host_type, extra, action, changes) -> None:
    decision = d.decide(inputs(state, host_type, **extra))
    assert decision.action == action
    assert dict(decision.changes) == changes
    assert decision.reason


def test_every_state_and_type_has_an_answer_that_renders() -> None:
    for state in STATES:
        for host_type in [None, *load_catalog()]:
            decision = d.decide(inputs(state, host_type))
            script = script_of(decision)
            assert script.startswith("#!ipxe\n"), (state, host_type)
            assert "{{" not in script and "{%" not in script


def test_install_max_attempts_comes_from_the_cluster() -> None:
    decision = d.decide(inputs("INSTALLING", "SCH", cluster={"INSTALL_MAX_ATTEMPTS": "5"},
                               INSTALL_ATTEMPTS="4"))
    assert (decision.action, decision.changes) == ("install", {"INSTALL_ATTEMPTS": "5"})


def test_local_boot_can_be_sanboot() -> None:
    decision = d.decide(inputs("INSTALLED", "SCH", cluster={"LOCAL_BOOT": "sanboot"}))
    assert "sanboot --no-describe --drive 0x80" in script_of(decision)


@pytest.mark.parametrize(("timeout", "ms"), [("60", 60000), ("5", 5000), ("1", 5000),
                                             ("junk", 60000), ("99999", 3600000)])
def test_menu_timeout_is_bounded(timeout: str, ms: int) -> None:
    decision = d.decide(inputs("UNCONFIGURED", None, cluster={"MENU_TIMEOUT": timeout}))
    assert f"choose --timeout {ms} --default poll" in script_of(decision)


def test_a_host_without_an_os_gets_an_error_script_and_no_state_change() -> None:
    plain = inputs("CONFIGURED", "SCH")
    no_os = d.BootInputs(**{**plain.__dict__, "os": None, "os_id": None})
    decision = d.decide(no_os)
    assert (decision.action, dict(decision.changes)) == ("error", {})
    assert "no OS for SCH" in script_of(decision)


def test_an_unknown_type_gets_an_error_script() -> None:
    decision = d.decide(inputs("CONFIGURED", "XYZ"))
    assert decision.action == "error"


def test_values_that_ipxe_would_expand_never_reach_a_script() -> None:
    from hps_api.errors import InvalidInput

    plain = inputs("CONFIGURED", "SCH")
    hostile = d.BootInputs(**{**plain.__dict__, "os": {**OS_ROCKY, "REPO_PATH": "x${net0/ip}"}})
    with pytest.raises(InvalidInput):
        script_of(d.decide(hostile))
    menu = script_of(d.decide(inputs("UNCONFIGURED", None, HOSTNAME="evil${net0/ip}\nreboot")))
    assert "${net0/ip}" not in menu
    assert "\nreboot\n" not in menu


def test_every_chain_replaces_the_running_script() -> None:
    """Without --replace every menu poll nests one script deeper (memory grows for as long as a
    host waits), and `exit` in the local-boot script would return into /boot.ipxe's NIC loop
    instead of handing the machine back to its firmware."""
    for template in (Path(__file__).parents[1] / "ipxe").glob("*.ipxe"):
        for line in template.read_text().splitlines():
            if line.lstrip().startswith("chain "):
                assert line.lstrip().startswith("chain --replace --autofree "), line


def test_every_fetch_in_every_template_has_a_failure_branch() -> None:
    for template in (Path(__file__).parents[1] / "ipxe").glob("*.ipxe"):
        for line in template.read_text().splitlines():
            if re.match(r"^\s*(chain|kernel|initrd|imgfetch|sanboot|dhcp)\b", line):
                assert "||" in line, f"{template.name}: {line}"


GOLDEN_CASES = {
    "menu-main": inputs("UNCONFIGURED", None),
    "installer": inputs("CONFIGURED", "SCH"),
    "netboot": inputs("CONFIGURED", "TCH"),
    "localboot": inputs("INSTALLED", "SCH"),
    "rescue": inputs("INSTALLED", "SCH", RESCUE="yes"),
    "install-failed": inputs("INSTALLING", "SCH", INSTALL_ATTEMPTS="3"),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden_scripts(name: str) -> None:
    """Update deliberately: HPS_UPDATE_GOLDEN=1 rewrites the files; review the diff."""
    script = script_of(d.decide(GOLDEN_CASES[name]))
    path = GOLDEN / f"{name}.ipxe"
    if os.environ.get("HPS_UPDATE_GOLDEN") == "1":
        path.write_text(script)
    assert script == path.read_text()

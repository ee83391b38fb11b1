"""`decide()` as a table: every state x type x flag, without Flask, plus golden iPXE scripts."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hps_api.boot import decide as d
from hps_api.boot.flow import script_of
from hps_api.model.catalog import load_catalog
from hps_api.model.states import STATES

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
    ("DISK_BOOT", "SCH", {}, "localboot", {}),
    ("ACTIVE", "SCH", {}, "menu", {"STATE": "FAILED"}),
    ("REINSTALL", None, {}, "menu", {"STATE": "UNCONFIGURED"}),
    ("NETWORK_BOOT", "SCH", {}, "menu", {"STATE": "FAILED"}),
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


def without_os(plain: d.BootInputs, problem: str = "") -> d.BootInputs:
    return replace(plain, os=None, os_id=None, os_problem=problem)


def with_host(plain: d.BootInputs, **keys: str) -> d.BootInputs:
    return replace(plain, host={**plain.host, **keys})


# -- a state that cannot be acted on falls back to the main menu, saying why ------------------

FALLBACKS: list[tuple[str, d.BootInputs, dict[str, Any], str]] = [
    # case, inputs, changes, what the menu says
    ("REINSTALL without TYPE", inputs("REINSTALL", None), {"STATE": "UNCONFIGURED"},
     "REINSTALL: this host has no type yet"),
    ("CONFIGURED without TYPE", inputs("CONFIGURED", None), {"STATE": "UNCONFIGURED"},
     "has no type yet"),
    ("INSTALLING without TYPE", inputs("INSTALLING", None, INSTALL_ATTEMPTS="1"),
     {"STATE": "UNCONFIGURED", "INSTALL_ATTEMPTS": None}, "has no type yet"),
    ("INSTALLING without TYPE, attempts used up", inputs("INSTALLING", None,
                                                          INSTALL_ATTEMPTS="3"),
     {"STATE": "UNCONFIGURED", "INSTALL_ATTEMPTS": None}, "has no type yet"),
    ("NETWORK_BOOT without TYPE", inputs("NETWORK_BOOT", None), {"STATE": "UNCONFIGURED"},
     "has no type yet"),
    ("REINSTALL of an unknown TYPE", inputs("REINSTALL", "XYZ"), {"STATE": "UNCONFIGURED"},
     "host type 'XYZ' is not known"),
    ("CONFIGURED with a profile the type lacks",
     with_host(inputs("CONFIGURED", "SCH"), PROFILE="NOPE"), {"STATE": "UNCONFIGURED"},
     "SCH has no profile 'NOPE'"),
    ("a PROFILE iPXE would expand", with_host(inputs("CONFIGURED", "TCH"), PROFILE="${x}"),
     {"STATE": "UNCONFIGURED"}, "TCH has no profile"),
    ("CONFIGURED without an OS", without_os(inputs("CONFIGURED", "SCH")),
     {"STATE": "INSTALL_FAILED"}, "CONFIGURED: no OS for SCH on x86_64"),
    ("REINSTALL of a diskless type without an OS", without_os(inputs("REINSTALL", "TCH")),
     {"STATE": "INSTALL_FAILED"}, "no OS for TCH"),
    ("NETWORK_BOOT whose OS record is gone",
     without_os(inputs("NETWORK_BOOT", "TCH"), "OS x86_64:alpine:3.20 has no record"),
     {"STATE": "INSTALL_FAILED"}, "OS x86_64:alpine:3.20 has no record"),
    ("INSTALLING without an OS", without_os(inputs("INSTALLING", "SCH", INSTALL_ATTEMPTS="2")),
     {"STATE": "INSTALL_FAILED", "INSTALL_ATTEMPTS": None}, "no OS for SCH"),
    ("NETWORK_BOOT of a disk type", inputs("NETWORK_BOOT", "SCH"), {"STATE": "FAILED"},
     "NETWORK_BOOT is for diskless types and SCH installs to disk"),
    ("FORCE_INSTALL of an unknown TYPE", inputs("INSTALLED", "XYZ", FORCE_INSTALL="yes"),
     {"STATE": "UNCONFIGURED"}, "is not known"),
    ("FORCE_INSTALL without an OS", without_os(inputs("INSTALLED", "SCH", FORCE_INSTALL="yes")),
     {"STATE": "INSTALL_FAILED"}, "no OS for SCH"),
    ("FORCE_INSTALL without an OS, already waiting",
     without_os(inputs("INSTALL_FAILED", "SCH", FORCE_INSTALL="yes")), {}, "no OS for SCH"),
    ("an unknown STATE", inputs("ACTIVE", "SCH"), {"STATE": "FAILED"},
     "state 'ACTIVE' is not one hps-api knows"),
]


@pytest.mark.parametrize(("case", "given", "changes", "notice"), FALLBACKS,
                         ids=[case for case, *_ in FALLBACKS])
def test_a_state_that_cannot_be_acted_on_falls_back_to_the_main_menu_saying_why(
    case: str, given: d.BootInputs, changes: dict[str, Any], notice: str
) -> None:
    decision = d.decide(given)
    assert (decision.action, decision.template) == ("menu", "menu-main.ipxe"), case
    assert dict(decision.changes) == changes
    script = script_of(decision)
    gaps = [line for line in script.splitlines() if line.startswith("item --gap ")]
    assert any(notice in line for line in gaps), gaps
    installable = d.install_blocker(given) is None  # only the STATE was wrong
    assert ("item reinstall " in script) is installable
    assert "item host_install_menu" in script
    assert "${x}" not in script


@pytest.mark.parametrize(("state", "host_type"), [
    ("DISK_BOOT", "SCH"), ("installed", "SCH"), ("unmanaged", None)])
def test_disk_boot_states_in_any_case_boot_locally(state: str, host_type: str | None) -> None:
    assert d.decide(inputs(state, host_type)).action == "localboot"


def test_an_empty_state_is_unconfigured() -> None:
    decision = d.decide(inputs("", None))
    assert (decision.action, dict(decision.changes)) == ("menu", {})


EVERY_STATE = [*STATES, "DISK_BOOT", "ACTIVE", "installing", ""]
EVERY_TYPE = [None, *load_catalog(), "XYZ"]


@pytest.mark.parametrize("state", EVERY_STATE)
@pytest.mark.parametrize("host_type", EVERY_TYPE)
@pytest.mark.parametrize("has_os", [True, False])
@pytest.mark.parametrize("force", ["", "yes"])
def test_no_combination_answers_an_error_or_a_menu_it_cannot_leave(
    state: str, host_type: str | None, has_os: bool, force: str
) -> None:
    """The next init after a menu answer answers the same menu and changes nothing more (or,
    with FORCE_INSTALL=yes and a usable type, installs); a menu is only ever answered in a
    menu state, so every action on it is accepted."""
    given = inputs(state, host_type, FORCE_INSTALL=force)
    given = given if has_os else without_os(given)
    decision = d.decide(given)
    assert decision.action != "error"
    script_of(decision)
    if decision.action != "menu":
        return
    after = with_host(given, **{k: v for k, v in decision.changes.items() if v is not None})
    assert d.host_state(after) in d.MENU_STATES
    again = d.decide(after)
    if force and again.action in {"install", "netboot"}:
        return
    assert (again.action, again.template, dict(again.changes)) == ("menu", "menu-main.ipxe", {})


@pytest.mark.parametrize(("given", "offered"), [
    (inputs("UNCONFIGURED", None), False),
    (inputs("UNCONFIGURED", "XYZ"), False),
    (without_os(inputs("INSTALL_FAILED", "SCH")), False),
    (inputs("INSTALL_FAILED", "SCH"), True),
    (inputs("FAILED", "TCH"), True),
])
def test_the_main_menu_offers_reinstall_only_for_a_type_that_can_install(
    given: d.BootInputs, offered: bool
) -> None:
    script = script_of(d.decide(given))
    assert ("item reinstall " in script) is offered
    assert ("item force_install_on " in script) is offered


def test_a_host_with_a_type_that_cannot_install_is_told_why_at_every_poll() -> None:
    script = script_of(d.decide(without_os(inputs("INSTALL_FAILED", "SCH"))))
    assert "item --gap no OS for SCH on x86_64: register one with 'hps-api os add'" in script


def test_the_main_menu_of_a_host_outside_a_menu_state_offers_no_action() -> None:
    """init_menu and the info screens' way back reach the main menu in any state; the
    actions (refused outside a menu state) are not offered there."""
    script = script_of(d.main_menu(inputs("INSTALLED", "SCH"), "back"))
    for item in ("host_install_menu", "reinstall", "unconfigure", "unmanage", "force_install"):
        assert f"item {item}" not in script
    assert "item poll " in script and "item local_boot " in script


def test_a_script_that_cannot_be_built_falls_back_to_the_main_menu() -> None:
    from hps_api.boot.flow import answer

    plain = inputs("CONFIGURED", "SCH")
    hostile = replace(plain, os={**OS_ROCKY, "REPO_PATH": "x${net0/ip}"})
    decision, script = answer(hostile)
    assert decision.action == "menu"
    assert dict(decision.changes) == {"STATE": "INSTALL_FAILED"}
    assert "the install script cannot be built" in script
    assert "${net0/ip}" not in script


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



MISSING = ("/distros/rocky/10/x86_64/images/pxeboot/vmlinuz",)


def test_os_files_are_looked_for_wherever_missing_ones_change_the_decision() -> None:
    """`init` looks for the OS's kernel and initrd only where `os_files_matter` says: on every
    row of the state table where the files being missing changes the decision, it must say so,
    and it must spare the look on the local boots."""
    spared, changed = [], []
    for state, host_type, extra, _action, _changes in TABLE:
        there = inputs(state, host_type, **extra)
        differs = d.decide(replace(there, missing_files=MISSING)) != d.decide(there)
        if differs:
            changed.append((state, host_type, extra))
            assert d.os_files_matter(there.host), (state, host_type, extra)
        if not d.os_files_matter(there.host):
            spared.append(d.decide(there).action)
    assert changed, "no row depends on the files: the table no longer tests this"
    assert set(spared) == {"localboot", "rescue"}

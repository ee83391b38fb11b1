"""`hps-api cluster configure`: the wizard driven through a real pseudo-terminal (pexpect)."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from hps_api.cli.wizard import load_steps
from hps_api.errors import InvalidInput
from hps_api.model import osreg
from hps_api.model.catalog import load_catalog
from hps_api.model.cluster_keys import key_table
from hps_api.store import FileStore, RecordId

BIN = Path(sys.executable).parent
TIMEOUT = 10
PROMPT = re.compile(r"\(([A-Z0-9_]+)\) \[[^\]\r\n]*\]: ")
CONFIRM = re.compile(r"Apply th(?:is|ese) \d+ changes?\? \[y/N\] ")
DEFAULT = RecordId.of_cluster("default")
MAX_PROMPTS = 80


@pytest.fixture
def wizard(config_dir: Path, tmp_path: Path) -> Iterator[object]:
    """Start `hps-api cluster configure` on a pseudo-terminal; every expect times out in 10 s."""
    children: list[pexpect.spawn] = []

    def spawn(*args: str, env: dict[str, str] | None = None) -> pexpect.spawn:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
        environment.update(HPS_RESOURCES_DIR=str(tmp_path / "resources"), HPS_LOCK_TIMEOUT="0.5",
                           HPS_DNSMASQ_PIDFILE=str(tmp_path / "dnsmasq.pid"),
                           HPS_DHCP_LEASES=str(tmp_path / "leases"), **(env or {}))
        child = pexpect.spawn(str(BIN / "hps-api"),
                              ["--config-dir", str(config_dir), "cluster", "configure", *args],
                              env=environment, cwd=str(tmp_path), encoding="utf-8", timeout=TIMEOUT,
                              dimensions=(40, 200))
        child.logfile_read = io.StringIO()
        children.append(child)
        return child

    yield spawn
    for child in children:
        child.close(force=True)


def walk(child: pexpect.spawn, replies: dict[str, list[str]] | None = None,
         stop: str | None = None) -> None:
    """Answer each prompt with the next reply planned for its key, else Enter, until the
    confirmation question (or the prompt of `stop`, left unanswered)."""
    planned = {key: list(texts) for key, texts in (replies or {}).items()}
    for _ in range(MAX_PROMPTS):
        if child.expect([CONFIRM, PROMPT]) == 0:
            break
        key = child.match.group(1)
        if key == stop:
            return
        pending = planned.get(key)
        child.sendline(pending.pop(0) if pending else "")
    else:
        pytest.fail(f"no confirmation after {MAX_PROMPTS} prompts:\n{transcript(child)}")
    assert {k: v for k, v in planned.items() if v} == {}, "replies left unused"


def finish(child: pexpect.spawn) -> int:
    """Wait for the wizard to exit and return its exit status."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def transcript(child: pexpect.spawn) -> str:
    """Return everything the wizard printed (and the terminal echoed)."""
    return child.logfile_read.getvalue()


def test_accepting_every_default_commits_them_in_one_update(wizard, store: FileStore) -> None:
    child = wizard()
    walk(child)
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    items = store.items(DEFAULT)
    assert {k: items.get(k) for k in (
        "DNS_DOMAIN", "NETWORK_CIDR", "DHCP_IP", "DHCP_RANGE_START", "DHCP_RANGE_END",
        "STORAGE_NETWORKS", "SYSLOG_PORT", "HPS_PORT", "MENU_TIMEOUT", "LOCAL_BOOT",
        "INSTALL_MAX_ATTEMPTS")} == {
        "DNS_DOMAIN": "cluster.local", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1",
        "DHCP_RANGE_START": "10.99.0.128", "DHCP_RANGE_END": "10.99.0.254",
        "STORAGE_NETWORKS": "0", "SYSLOG_PORT": "514", "HPS_PORT": "80", "MENU_TIMEOUT": "60",
        "LOCAL_BOOT": "exit", "INSTALL_MAX_ATTEMPTS": "3"}
    assert items["DHCP_IFACE"]
    assert "DESCRIPTION" not in items and "OS_SCH" not in items
    assert "Apply these 12 changes? [y/N]" in transcript(child)
    assert "DHCP_IP: (not set) -> 10.99.0.1" in transcript(child)
    assert len({change.time for change in store.history(DEFAULT)
                if change.actor.startswith("cli:")}) == 1


@pytest.mark.skipif(importlib.util.find_spec("hps_api.services") is None,
                    reason="hps_api.services is not part of this build")
def test_a_commit_renders_the_dnsmasq_files(wizard, config_dir: Path) -> None:
    child = wizard()
    walk(child)
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert (config_dir / "clusters/default/services/dnsmasq.conf").is_file()
    assert "Services rendered" in transcript(child)


def test_a_bad_address_is_asked_again_with_the_reason(wizard, store: FileStore) -> None:
    child = wizard()
    walk(child, {"DHCP_IP": ["10.99.0.300", "10.98.0.5", "10.99.0.2"]})
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert store.get(DEFAULT, "DHCP_IP") == "10.99.0.2"
    text = transcript(child)
    assert "'10.99.0.300' is not an IPv4 address" in text
    assert "10.98.0.5 is not a host address of NETWORK_CIDR 10.99.0.0/24" in text
    assert text.count("(DHCP_IP) [") == 3


def test_a_dhcp_range_containing_the_ips_address_is_asked_again(wizard,
                                                                store: FileStore) -> None:
    child = wizard()
    walk(child, {"DHCP_RANGE_START": ["10.99.0.1", "10.99.0.100"],
                 "DHCP_RANGE_END": ["10.99.0.150", ""]})
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert "the DHCP range 10.99.0.1-10.99.0.150 contains the IPS address" in transcript(child)
    assert "(DHCP_RANGE_END) [10.99.0.150]" in transcript(child)
    items = store.items(DEFAULT)
    assert (items["DHCP_RANGE_START"], items["DHCP_RANGE_END"]) == ("10.99.0.100", "10.99.0.150")


def test_a_required_key_is_never_cleared_or_left_empty(wizard, store: FileStore) -> None:
    child = wizard()
    walk(child, {"DHCP_IFACE": ["-", "eth9"]})
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert "DHCP_IFACE is required; type a value" in transcript(child)
    assert store.get(DEFAULT, "DHCP_IFACE") == "eth9"


def test_answering_no_at_the_confirmation_writes_nothing(wizard, config_dir: Path,
                                                         snapshot) -> None:
    before = snapshot(config_dir)
    child = wizard()
    walk(child)
    child.sendline("n")
    assert finish(child) == 0
    assert "Nothing written." in transcript(child)
    assert snapshot(config_dir) == before


def test_ctrl_c_midway_writes_nothing_and_exits_130(wizard, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    child = wizard()
    walk(child, stop="DHCP_IP")
    child.sendintr()
    assert finish(child) == 130
    assert "hps-api: interrupted; nothing written" in transcript(child)
    assert snapshot(config_dir) == before


def test_ctrl_d_writes_nothing_and_exits_1(wizard, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    child = wizard()
    walk(child, stop="NETWORK_CIDR")
    child.sendeof()
    assert finish(child) == 1
    assert "hps-api: end of input; nothing written" in transcript(child)
    assert snapshot(config_dir) == before


def test_a_change_made_meanwhile_makes_the_commit_refuse_and_write_nothing(
        wizard, cli, config_dir: Path, store: FileStore, snapshot) -> None:
    child = wizard()
    walk(child)
    assert cli("cluster_config", "set", "MENU_TIMEOUT", "90").returncode == 0
    after_change = snapshot(config_dir)
    child.sendline("y")
    assert finish(child) == 2
    assert ("cluster/default changed while the wizard ran (MENU_TIMEOUT changed by someone "
            "else); nothing written") in transcript(child)
    assert snapshot(config_dir) == after_change
    assert store.get(DEFAULT, "MENU_TIMEOUT") == "90"


def test_a_question_mark_prints_the_help_of_the_step_and_field(wizard) -> None:
    child = wizard()
    child.expect(r"\(DESCRIPTION\) \[not set\]: ")
    child.sendline("?")
    child.expect("A line saying what the cluster is for")
    child.expect("DESCRIPTION: Any single line of text")
    child.expect(r"\(DESCRIPTION\) \[not set\]: ")
    child.sendline("rack 4")
    walk(child)
    child.sendline("n")
    assert finish(child) == 0


def test_the_summary_masks_the_values_of_sensitive_keys(wizard) -> None:
    child = wizard(env={"HPS_SENSITIVE_KEYS": "*DESCRIPTION*"})
    walk(child, {"DESCRIPTION": ["the vault code is 1234"]})
    summary = transcript(child).split("Changes to cluster default:")[1]
    assert "DESCRIPTION: (not set) -> ********" in summary
    assert "1234" not in summary
    child.sendline("n")
    assert finish(child) == 0


def test_storage_networks_are_asked_per_network_and_surplus_ones_removed(
        wizard, store: FileStore) -> None:
    old = {"STORAGE_NETWORKS": "2", "STORAGE0_VLAN": "7", "STORAGE0_CIDR": "10.200.0.0/24",
           "STORAGE0_GATEWAY": "10.200.0.254", "STORAGE0_MTU": "1500",
           "STORAGE1_VLAN": "8", "STORAGE1_CIDR": "10.201.0.0/24"}
    store.update(DEFAULT, old, "test:setup")
    child = wizard()
    walk(child, {"STORAGE_NETWORKS": ["1"], "STORAGE0_CIDR": ["10.100.0.0/24"],
                 "STORAGE0_GATEWAY": ["", "10.100.0.1"], "STORAGE0_MTU": ["9000"]})
    assert "STORAGE1_CIDR: 10.201.0.0/24 -> (not set)" in transcript(child)
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert "10.200.0.254 is not a host address of 10.100.0.0/24" in transcript(child)
    items = store.items(DEFAULT)
    assert {k: v for k, v in items.items() if k.startswith("STORAGE")} == {
        "STORAGE_NETWORKS": "1", "STORAGE0_VLAN": "7", "STORAGE0_CIDR": "10.100.0.0/24",
        "STORAGE0_GATEWAY": "10.100.0.1", "STORAGE0_MTU": "9000"}


def test_an_os_must_be_a_registered_one(wizard, store: FileStore) -> None:
    osreg.add_os(store, "x86_64:rocky:10", {"REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
                                            "INITRD": "initrd.img", "STATUS": "prod",
                                            "HPS_TYPES": "SCH"}, "test:setup")
    child = wizard()
    walk(child, {"OS_SCH": ["x86_64:alma:9", "x86_64:rocky:10"]})
    child.sendline("y")
    assert finish(child) == 0, transcript(child)
    assert "registered: x86_64:rocky:10 (SCH)" in transcript(child)
    assert "x86_64:alma:9 is not a registered OS" in transcript(child)
    assert store.get(DEFAULT, "OS_SCH") == "x86_64:rocky:10"


def test_configure_without_a_terminal_points_at_the_scriptable_commands(cli) -> None:
    result = cli("hps-api", "cluster", "configure", stdin="")
    assert result.returncode == 2
    assert "stdin is not a terminal" in result.stderr
    assert "hps-api cluster create" in result.stderr and "cluster_config" in result.stderr


def test_the_steps_ask_every_cluster_key_of_the_boot_spec() -> None:
    asked = set()
    for step in load_steps():
        asked.update(field.key for field in step.fields)
        for kind in load_catalog() if step.repeat is not None else ():
            names = {"i": "0", "type": kind, "description": ""}
            asked.update(field.named(names).key for field in step.repeat.fields)
    assert {spec.key for spec in key_table()} - asked == set()


@pytest.mark.parametrize(("text", "complaint"), [
    ('title = "x"\n[[field]]\nkey = "DHCP_IP"\nprompt = "p"\nvalidator = "port"\n',
     "DHCP_IP is validated by 'address'"),
    ('title = "x"\n[[field]]\nkey = "A"\nprompt = "p"\nvalidator = "nosuch"\n',
     "unknown validator 'nosuch'"),
    ('title = "x"\ncheck = "nosuch"\n', "unknown check 'nosuch'"),
    ('title = "x"\ncolour = "red"\n', "unknown setting(s) colour"),
    ('title = "x"\n[[field]]\nkey = "A"\nprompt = "p"\nvalidator = "text"\nhlep = ""\n',
     "hlep"),
])
def test_a_step_file_with_a_mistake_is_refused_naming_it(tmp_path: Path, text: str,
                                                         complaint: str) -> None:
    (tmp_path / "10-bad.toml").write_text(text)
    with pytest.raises(InvalidInput, match=r"10-bad\.toml") as err:
        load_steps(tmp_path)
    assert complaint in str(err.value)

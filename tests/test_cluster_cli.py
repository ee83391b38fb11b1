"""`hps-api cluster create|list|show|activate` as an operator runs them (real processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hps_api.model import osreg
from hps_api.store import FileStore, RecordId

NET = ["--network-cidr", "10.99.0.0/24"]
IPS = [*NET, "--dhcp-ip", "10.99.0.1"]
LAB = RecordId.of_cluster("lab")
FLAGS = ["--description", "--dns-domain", "--dhcp-iface", "--dhcp-ip", "--network-cidr",
         "--dhcp-range-start", "--dhcp-range-end", "--hps-port", "--menu-timeout", "--local-boot",
         "--install-max-attempts", "--syslog-port", "--os-sch", "--os-tch", "--os-cch",
         "--os-drh", "--set", "--activate"]


@pytest.fixture
def os_records(store: FileStore) -> None:
    """Three OS records: rocky 10 (prod, x86_64 and aarch64) and a retired rocky 9."""
    for os_id, status in (("x86_64:rocky:10", "prod"), ("aarch64:rocky:10", "prod"),
                          ("x86_64:rocky:9", "retired")):
        osreg.add_os(store, os_id, {"REPO_PATH": "rocky/x", "KERNEL": "vmlinuz",
                                    "INITRD": "initrd.img", "STATUS": status,
                                    "HPS_TYPES": "SCH,DRH"}, "test:setup")


GOOD = [
    (["--description", "rack 4 storage pilot"], {"DESCRIPTION": "rack 4 storage pilot"}),
    (["--dns-domain", "Lab.Example.org"], {"DNS_DOMAIN": "lab.example.org"}),
    (["--dns-domain", "cluster"], {"DNS_DOMAIN": "cluster"}),
    (["--dhcp-iface", "eth0"], {"DHCP_IFACE": "eth0"}),
    (["--dhcp-iface", "enp1s0.100"], {"DHCP_IFACE": "enp1s0.100"}),
    (["--dhcp-iface", "eth0:1"], {"DHCP_IFACE": "eth0:1"}),
    (["--dhcp-iface", "br_lan-" + "x" * 8], {"DHCP_IFACE": "br_lan-xxxxxxxx"}),
    (IPS, {"NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1"}),
    ([*NET, "--dhcp-ip", "10.99.0.127"], {"DHCP_IP": "10.99.0.127"}),
    (["--network-cidr", "10.0.0.0/30"], {"NETWORK_CIDR": "10.0.0.0/30"}),
    ([*IPS, "--dhcp-range-start", "10.99.0.100", "--dhcp-range-end", "10.99.0.200"],
     {"DHCP_RANGE_START": "10.99.0.100", "DHCP_RANGE_END": "10.99.0.200"}),
    ([*IPS, "--dhcp-range-start", "10.99.0.50", "--dhcp-range-end", "10.99.0.50"],
     {"DHCP_RANGE_START": "10.99.0.50", "DHCP_RANGE_END": "10.99.0.50"}),
    ([*NET, "--dhcp-ip", "10.99.0.200", "--dhcp-range-start", "10.99.0.2",
      "--dhcp-range-end", "10.99.0.100"], {"DHCP_IP": "10.99.0.200"}),
    (["--hps-port", "1"], {"HPS_PORT": "1"}),
    (["--hps-port", "65535"], {"HPS_PORT": "65535"}),
    (["--hps-port", "08080"], {"HPS_PORT": "8080"}),
    (["--syslog-port", "514"], {"SYSLOG_PORT": "514"}),
    (["--menu-timeout", "5"], {"MENU_TIMEOUT": "5"}),
    (["--menu-timeout", "3600"], {"MENU_TIMEOUT": "3600"}),
    (["--local-boot", "exit"], {"LOCAL_BOOT": "exit"}),
    (["--local-boot", "SANBOOT"], {"LOCAL_BOOT": "sanboot"}),
    (["--install-max-attempts", "1"], {"INSTALL_MAX_ATTEMPTS": "1"}),
    (["--install-max-attempts", "20"], {"INSTALL_MAX_ATTEMPTS": "20"}),
    (["--os-sch", "X86_64:Rocky:10"], {"OS_SCH": "x86_64:rocky:10"}),
    (["--os-tch", "aarch64:rocky:10"], {"OS_TCH": "aarch64:rocky:10"}),
    (["--set", "os_sch_x86_64=x86_64:rocky:10"], {"OS_SCH_X86_64": "x86_64:rocky:10"}),
    ([*IPS, "--set", "STORAGE_NETWORKS=1", "--set", "STORAGE0_CIDR=10.100.0.0/24",
      "--set", "STORAGE0_GATEWAY=10.100.0.254", "--set", "STORAGE0_MTU=9000",
      "--set", "STORAGE0_VLAN=100"],
     {"STORAGE_NETWORKS": "1", "STORAGE0_CIDR": "10.100.0.0/24", "STORAGE0_MTU": "9000"}),
    (["--set", "RACK=4", "--set", "NOTE=a=b"], {"RACK": "4", "NOTE": "a=b"}),
]


@pytest.mark.parametrize(("args", "stored"), GOOD, ids=[" ".join(a) for a, _ in GOOD])
def test_create_accepts_and_stores_good_values(cli, store: FileStore, os_records: None,
                                               args: list[str], stored: dict[str, str]) -> None:
    result = cli("hps-api", "cluster", "create", "lab", *args)
    assert (result.returncode, result.stderr) == (0, "")
    items = store.items(LAB)
    assert {key: items.get(key) for key in stored} == stored


BAD = [
    (["--description", "two\nlines"], "--description"),
    (["--dns-domain", "bad_domain"], "--dns-domain"),
    (["--dns-domain=-lab.local"], "--dns-domain"),
    (["--dns-domain", "lab..local"], "--dns-domain"),
    (["--dns-domain", "x" * 64 + ".local"], "--dns-domain"),
    (["--dhcp-iface", "eth 0"], "--dhcp-iface"),
    (["--dhcp-iface", "x" * 16], "--dhcp-iface"),
    (["--dhcp-iface", "eth0/1"], "--dhcp-iface"),
    (["--dhcp-iface", ""], "--dhcp-iface"),
    ([*NET, "--dhcp-ip", "10.99.0.300"], "--dhcp-ip"),
    ([*NET, "--dhcp-ip", "ips.lab"], "--dhcp-ip"),
    ([*NET, "--dhcp-ip", "10.98.0.1"], "--dhcp-ip"),
    ([*NET, "--dhcp-ip", "10.99.0.0"], "--dhcp-ip"),
    ([*NET, "--dhcp-ip", "10.99.0.255"], "--dhcp-ip"),
    ([*NET, "--dhcp-ip", "10.99.0.200"], "--dhcp-ip"),
    (["--dhcp-ip", "10.99.0.1"], "--dhcp-ip"),
    (["--network-cidr", "10.99.0.1/24"], "--network-cidr"),
    (["--network-cidr", "10.99.0.0/33"], "--network-cidr"),
    (["--network-cidr", "10.99.0.0/31"], "--network-cidr"),
    (["--network-cidr", "banana"], "--network-cidr"),
    ([*IPS, "--dhcp-range-start", "10.98.0.1", "--dhcp-range-end", "10.99.0.200"],
     "--dhcp-range-start"),
    ([*IPS, "--dhcp-range-start", "10.99.0.10", "--dhcp-range-end", "10.99.1.5"],
     "--dhcp-range-end"),
    ([*IPS, "--dhcp-range-start", "10.99.0.200", "--dhcp-range-end", "10.99.0.100"],
     "--dhcp-range-start"),
    ([*IPS, "--dhcp-range-start", "10.99.0.1", "--dhcp-range-end", "10.99.0.100"],
     "--dhcp-range-start"),
    ([*IPS, "--dhcp-range-start", "first", "--dhcp-range-end", "10.99.0.100"],
     "--dhcp-range-start"),
    (["--hps-port", "0"], "--hps-port"),
    (["--hps-port", "65536"], "--hps-port"),
    (["--hps-port", "80a"], "--hps-port"),
    (["--hps-port", "-1"], "--hps-port"),
    (["--syslog-port", "70000"], "--syslog-port"),
    (["--menu-timeout", "4"], "--menu-timeout"),
    (["--menu-timeout", "3601"], "--menu-timeout"),
    (["--menu-timeout", "1m"], "--menu-timeout"),
    (["--local-boot", "pxe"], "--local-boot"),
    (["--local-boot", ""], "--local-boot"),
    (["--install-max-attempts", "0"], "--install-max-attempts"),
    (["--install-max-attempts", "21"], "--install-max-attempts"),
    (["--os-sch", "x86_64:alma:9"], "--os-sch"),
    (["--os-sch", "rocky"], "--os-sch"),
    (["--os-drh", "x86_64:rocky:9"], "--os-drh"),
    (["--set", "OS_SCH_X86_64=aarch64:rocky:10"], "--set OS_SCH_X86_64"),
    (["--set", "STORAGE_NETWORKS=17"], "--set STORAGE_NETWORKS"),
    (["--set", "STORAGE_NETWORKS=1"], "--set STORAGE0_CIDR"),
    ([*IPS, "--set", "STORAGE_NETWORKS=1", "--set", "STORAGE0_CIDR=10.99.0.0/25"],
     "--set STORAGE0_CIDR"),
    (["--set", "STORAGE_NETWORKS=1", "--set", "STORAGE0_CIDR=10.100.0.0/24",
      "--set", "STORAGE0_GATEWAY=10.101.0.1"], "--set STORAGE0_GATEWAY"),
    (["--set", "STORAGE0_MTU=99999"], "--set STORAGE0_MTU"),
    (["--set", "STORAGE0_VLAN=4095"], "--set STORAGE0_VLAN"),
    (["--set", "NAME=other"], "--set NAME"),
    (["--set", "UPDATED=now"], "--set UPDATED"),
    (["--set", "DHCP_IP=10.99.0.1"], "--set DHCP_IP"),
    (["--set", "RACK"], "--set"),
    (["--set", "bad key=1"], "--set"),
    (["--set", "RACK=1", "--set", "rack=2"], "--set RACK"),
]


@pytest.mark.parametrize(("args", "flag"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_create_refuses_a_bad_value_naming_the_flag_and_writes_nothing(
        cli, config_dir: Path, os_records: None, snapshot, args: list[str], flag: str) -> None:
    before = snapshot(config_dir)
    result = cli("hps-api", "cluster", "create", "lab", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"hps-api: {flag}")
    assert result.stderr.count("\n") == 1
    assert snapshot(config_dir) == before


def test_create_has_a_flag_for_every_cluster_key_of_the_boot_spec(cli) -> None:
    result = cli("hps-api", "cluster", "create", "--help")
    assert result.returncode == 0
    assert [flag for flag in FLAGS if flag not in result.stdout] == []


def test_create_writes_only_the_keys_given_and_never_changes_the_active_cluster(
        cli, store: FileStore) -> None:
    result = cli("hps-api", "cluster", "create", "lab", *IPS)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "cluster lab created with 2 key(s)\nactive cluster: default\n"
    assert list(store.items(LAB)) == ["NAME", "CREATED", "DHCP_IP", "NETWORK_CIDR", "UPDATED"]
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "default\n"


def test_create_with_activate_makes_the_new_cluster_active(cli) -> None:
    result = cli("hps-api", "cluster", "create", "lab", "--activate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("active cluster: lab\n")
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "lab\n"


def test_create_of_an_existing_cluster_is_a_conflict_with_exit_2(cli, config_dir: Path,
                                                                 snapshot) -> None:
    before = snapshot(config_dir)
    result = cli("hps-api", "cluster", "create", "default", "--dns-domain", "other.lab",
                 "--activate")
    assert (result.returncode, result.stderr) == (2, "hps-api: cluster 'default' already exists\n")
    assert snapshot(config_dir) == before


@pytest.mark.parametrize("name", ["Lab", "1lab", "lab_1", "../evil", "x" * 64])
def test_create_refuses_a_bad_cluster_name(cli, config_dir: Path, snapshot, name: str) -> None:
    before = snapshot(config_dir)
    result = cli("hps-api", "cluster", "create", name)
    assert result.returncode == 2
    assert result.stderr.startswith("hps-api: invalid cluster name")
    assert snapshot(config_dir) == before


def test_create_without_an_initialised_store_exits_3(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = cli("hps-api", "cluster", "create", "lab", env={"HPS_CONFIG_DIR": str(missing)})
    assert result.returncode == 3
    assert "run 'hps-api init'" in result.stderr
    assert not missing.exists()


def test_list_marks_the_active_cluster_and_counts_its_hosts(cli) -> None:
    cli("hps-api", "cluster", "create", "lab")
    cli("host_config", "--cluster", "lab", "52:54:00:aa:bb:01", "set", "STATE", "UNCONFIGURED")
    result = cli("hps-api", "cluster", "list")
    assert result.stdout == "* default  0 host(s)\n  lab      1 host(s)\n"
    listed = json.loads(cli("hps-api", "cluster", "list", "--json").stdout)
    assert listed == [{"name": "default", "active": True, "hosts": 0},
                      {"name": "lab", "active": False, "hosts": 1}]


def test_show_prints_the_active_cluster_with_the_defaults_it_relies_on(cli) -> None:
    cli("cluster_config", "set", "MENU_TIMEOUT", "90")
    result = cli("hps-api", "cluster", "show")
    lines = result.stdout.splitlines()
    assert lines[0] == "# cluster default (active): 0 host(s)"
    assert "MENU_TIMEOUT=90" in lines
    assert "# DNS_DOMAIN=cluster.local (not set: the default)" in lines
    assert not any(line.startswith("# MENU_TIMEOUT") for line in lines)


def test_show_masks_sensitive_keys_and_prints_json(cli) -> None:
    cli("cluster_config", "set", "IPMI_PASSWORD", "hunter2")
    shown = json.loads(cli("hps-api", "cluster", "show", "default", "--json").stdout)
    assert shown["record"]["IPMI_PASSWORD"] == "********"
    assert (shown["name"], shown["active"], shown["hosts"]) == ("default", True, 0)
    assert shown["defaults"]["LOCAL_BOOT"] == "exit"
    assert "hunter2" not in cli("hps-api", "cluster", "show").stdout


def test_show_of_an_unknown_cluster_exits_1(cli) -> None:
    result = cli("hps-api", "cluster", "show", "nosuch")
    assert result.returncode == 1
    assert result.stderr.startswith("hps-api: ")


def test_activate_switches_the_active_cluster(cli) -> None:
    cli("hps-api", "cluster", "create", "lab")
    result = cli("hps-api", "cluster", "activate", "lab")
    assert (result.returncode, result.stdout) == (0, "active cluster: lab (was default)\n")
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "lab\n"


def test_activate_of_an_unknown_cluster_exits_1_and_keeps_the_active_one(cli) -> None:
    result = cli("hps-api", "cluster", "activate", "nosuch")
    assert (result.returncode, result.stderr) == (1, "hps-api: cluster 'nosuch' not found\n")
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "default\n"

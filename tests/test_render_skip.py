"""`hps-api render-services` never lets one bad host record take DHCP away from the others: the
files are written with every good host, each host left out is named, and the exit code says so."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_raw

from hps_api.observe import eventlog
from hps_api.services import render_services
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

Cli = Callable[..., subprocess.CompletedProcess[str]]
Snapshot = Callable[[Path], dict[str, bytes | None]]

CLUSTER_KEYS = {"DHCP_IP": "10.99.0.1", "DHCP_IFACE": "hpsbr0", "NETWORK_CIDR": "10.99.0.0/24"}
GOOD = {"525400aabb01": {"IP": "10.99.0.10", "HOSTNAME": "sch-001"},
        "525400aabb02": {"IP": "10.99.0.11", "HOSTNAME": "sch-002"}}
GOOD_LINES = ["52:54:00:aa:bb:01,10.99.0.10,sch-001", "52:54:00:aa:bb:02,10.99.0.11,sch-002"]
BAD_MAC = "525400aabb09"

# (values planted by hand in host 525400aabb09, the reason render-services names)
BAD_RECORDS = [
    ({"IP": "10.98.0.9"}, "IP 10.98.0.9 is not a free address of 10.99.0.0/24"),
    ({"IP": "10.99.0.255"}, "IP 10.99.0.255 is not a free address"),
    ({"IP": "999.1.1.1"}, "IP='999.1.1.1' is not an IPv4 address"),
    ({"IP": "10.99.0.19", "HOSTNAME": "sch 001!"}, "HOSTNAME='sch 001!' is not a host name"),
    ({"IP": "10.99.0.10"}, "IP 10.99.0.10 is also host 525400aabb01's (the lowest MAC keeps it)"),
    ({"IP": "10.99.0.19", "HOSTNAME": "sch-002"}, "HOSTNAME sch-002 is also host 525400aabb02's"),
]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str | None]:
    """Environment for `hps-api render-services` with every path under tmp_path."""
    return {"HPS_RESOURCES_DIR": str(tmp_path / "resources"),
            "HPS_DHCP_LEASES": str(tmp_path / "run" / "leases"),
            "HPS_DNSMASQ_PIDFILE": str(tmp_path / "run" / "dnsmasq.pid")}


@pytest.fixture
def cluster(store: FileStore) -> FileStore:
    """The default cluster with its network and two good hosts."""
    store.update(RecordId.of_cluster("default"), CLUSTER_KEYS, "test:setup")
    for mac, keys in GOOD.items():
        store.update(RecordId.of_host("default", mac), keys, "test:setup", create=True)
    return store


def plant(store: FileStore, values: dict[str, str]) -> None:
    """Give host BAD_MAC these values as a hand edit (or an older version) would: unchecked."""
    rid = RecordId.of_host("default", BAD_MAC)
    store.update(rid, {"STATE": "INSTALLED"}, "test:setup", create=True)
    write_raw(store, rid, values)


def dhcp_hosts(store: FileStore) -> list[str]:
    return (store.layout.services_dir("default") / "dhcp-hosts").read_text().splitlines()


def without_locks(files: dict[str, bytes | None]) -> dict[str, bytes | None]:
    """Return the snapshot without lock files (taking a lock is not writing)."""
    return {path: data for path, data in files.items() if not path.endswith(".lock")}


def changed_outside_services(store: FileStore, before: dict[str, bytes | None],
                             after: dict[str, bytes | None]) -> list[str]:
    """Return the paths under the config dir that differ, other than the services directory."""
    services = str(store.layout.services_dir("default").relative_to(store.layout.root))
    before, after = without_locks(before), without_locks(after)
    return sorted(path for path in before.keys() | after.keys()
                  if before.get(path) != after.get(path) and not path.startswith(services))


@pytest.mark.parametrize(("values", "reason"), BAD_RECORDS,
                         ids=[reason.split(" is ")[0] for _, reason in BAD_RECORDS])
def test_a_bad_host_is_left_out_named_on_stderr_and_the_good_ones_written_with_exit_1(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None], snapshot: Snapshot,
        values: dict[str, str], reason: str) -> None:
    plant(cluster, values)
    before = snapshot(cluster.layout.root)
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert result.returncode == 1
    assert dhcp_hosts(cluster) == GOOD_LINES
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"hps-api: skipped host {BAD_MAC}: {reason}")
    assert errors[1].startswith("hps-api: 1 host(s) left out of dhcp-hosts and dns-hosts")
    assert len(errors) == 2
    assert f"wrote {cluster.layout.services_dir('default') / 'dhcp-hosts'}" in result.stdout
    assert changed_outside_services(cluster, before, snapshot(cluster.layout.root)) == []


def test_every_bad_host_is_named_and_the_summary_counts_them(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None]) -> None:
    plant(cluster, {"IP": "10.98.0.9"})
    other = RecordId.of_host("default", "525400aabb0a")
    cluster.update(other, {"STATE": "INSTALLED"}, "test:setup", create=True)
    write_raw(cluster, other, {"IP": "10.99.0.11"})
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert [line.split(":")[1] for line in errors[:2]] == [
        f" skipped host {BAD_MAC}", " skipped host 525400aabb0a"]
    assert errors[2].startswith("hps-api: 2 host(s) left out")
    assert dhcp_hosts(cluster) == GOOD_LINES


def test_a_corrupt_host_record_is_left_out_too(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None]) -> None:
    path = cluster.layout.path(RecordId.of_host("default", BAD_MAC))
    path.write_text("IP=10.99.0.19\nIP=10.99.0.20\n")
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert result.returncode == 1
    assert f"skipped host {BAD_MAC}: corrupt record {path}:2" in result.stderr
    assert dhcp_hosts(cluster) == GOOD_LINES


def test_without_no_reload_both_problems_are_reported_and_the_exit_is_1(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None]) -> None:
    plant(cluster, {"IP": "10.98.0.9"})
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert "dnsmasq not reloaded" in errors[0]
    assert errors[1].startswith(f"hps-api: skipped host {BAD_MAC}: ")
    assert dhcp_hosts(cluster) == GOOD_LINES


def test_a_clean_cluster_still_exits_0_with_nothing_on_stderr(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None]) -> None:
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert (result.returncode, result.stderr) == (0, "")
    assert dhcp_hosts(cluster) == GOOD_LINES


def test_a_bad_cluster_network_is_still_an_error_and_nothing_is_written(
        cli: Cli, cluster: FileStore, cli_env: dict[str, str | None], snapshot: Snapshot) -> None:
    plant(cluster, {"IP": "10.98.0.9"})
    write_raw(cluster, RecordId.of_cluster("default"), {"DHCP_IP": "10.99.0.300"})
    before = without_locks(snapshot(cluster.layout.root))
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert result.returncode == 2
    assert result.stderr == ("hps-api: cluster default: DHCP_IP='10.99.0.300' is not an IPv4 "
                             "address\n")
    assert without_locks(snapshot(cluster.layout.root)) == before


def test_each_host_left_out_is_returned_and_logged_as_a_warning(
        cluster: FileStore, settings: Settings, tmp_path: Path) -> None:
    plant(cluster, {"IP": "10.98.0.9"})
    eventlog.setup(settings.log_dir)
    lab = settings.with_overrides(resources_dir=tmp_path / "resources")
    rendered = render_services(cluster, lab, "default", ipxe_dir=tmp_path / "no-ipxe")
    assert [(host.mac, host.reason) for host in rendered.skipped] == [
        (BAD_MAC, "IP 10.98.0.9 is not a free address of 10.99.0.0/24")]
    assert rendered[0].name == "dhcp-hosts" and len(rendered) == 6
    lines = (settings.log_dir / "hps-api.log").read_text().splitlines()
    assert any(f" WARNING {BAD_MAC} " in line and "10.98.0.9 is not a free address" in line
               for line in lines)

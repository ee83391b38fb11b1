"""dnsmasq's files rendered from the store, checked by real dnsmasq, and reloading dnsmasq."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from conftest import write_raw

from hps_api.errors import InvalidInput, NotFound
from hps_api.ids import HOSTNAME_PATTERN
from hps_api.model.network import INIT_QUERY, ClusterNetwork, default_range
from hps_api.services import reload_dnsmasq, render_services
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

CLUSTER_KEYS = {"DHCP_IP": "10.99.0.1", "DHCP_IFACE": "hpsbr0", "NETWORK_CIDR": "10.99.0.0/24",
                "HPS_PORT": "8080"}
HOSTS = {"52:54:00:aa:bb:02": {"IP": "10.99.0.11", "HOSTNAME": "sch-002"},
         "52:54:00:aa:bb:01": {"IP": "10.99.0.10", "HOSTNAME": "sch-001"},
         "52:54:00:aa:bb:03": {"STATE": "UNCONFIGURED"},
         "52:54:00:aa:bb:04": {"IP": "10.99.0.12"}}
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
REPO = Path(__file__).resolve().parents[1]
Snapshot = Callable[[Path], dict[str, bytes | None]]
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def lab_settings(settings: Settings, tmp_path: Path) -> Settings:
    """Settings whose resources, lease file and pidfile live under tmp_path."""
    return settings.with_overrides(resources_dir=tmp_path / "resources",
                                   dhcp_leases=tmp_path / "run" / "dnsmasq.leases",
                                   dnsmasq_pidfile=tmp_path / "run" / "dnsmasq.pid")


@pytest.fixture
def ipxe_dir(tmp_path: Path) -> Path:
    """A stand-in for /usr/lib/ipxe with three small 'binaries'."""
    source = tmp_path / "ipxe"
    source.mkdir()
    for name in ("undionly.kpxe", "ipxe.efi", "snponly.efi"):
        (source / name).write_bytes(name.encode() * 100)
    return source


@pytest.fixture
def seeded(store: FileStore) -> FileStore:
    """The default cluster with the boot keys and four hosts (one without IP, one unnamed)."""
    store.update(RecordId.of_cluster("default"), CLUSTER_KEYS, "test:setup")
    for mac, keys in HOSTS.items():
        store.update(RecordId.of_host("default", mac), keys, "test:setup", create=True)
    return store


def files(snapshot: Snapshot, root: Path) -> dict[str, bytes | None]:
    """Return the snapshot of `root` without lock files (taking a lock is not writing)."""
    return {k: v for k, v in snapshot(root).items() if not k.endswith(".lock")}


def services_dir(store: FileStore) -> Path:
    """Return the default cluster's services directory."""
    return store.layout.services_dir("default")


def test_rendered_files_hold_the_reservations_range_and_boot_rules(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path) -> None:
    written = render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    out = services_dir(seeded)
    tftp = lab_settings.resources_dir / "tftp"
    assert written == [out / "dhcp-hosts", out / "dns-hosts", out / "rsyslog.conf",
                       out / "dnsmasq.conf", out / "nginx.conf", out / "front-end.env",
                       tftp / "undionly.kpxe", tftp / "ipxe.efi", tftp / "snponly.efi"]
    assert (out / "dhcp-hosts").read_text() == (
        "52:54:00:aa:bb:01,10.99.0.10,sch-001\n"
        "52:54:00:aa:bb:02,10.99.0.11,sch-002\n"
        "52:54:00:aa:bb:04,10.99.0.12\n")
    assert (out / "dns-hosts").read_text() == (
        "10.99.0.1 ips ips.cluster.local\n"
        "10.99.0.10 sch-001 sch-001.cluster.local\n"
        "10.99.0.11 sch-002 sch-002.cluster.local\n")
    conf = (out / "dnsmasq.conf").read_text().splitlines()
    for line in ("interface=hpsbr0", "bind-interfaces", "domain=cluster.local",
                 "dhcp-range=10.99.0.128,10.99.0.254,255.255.255.0,12h",
                 f"dhcp-hostsfile={out / 'dhcp-hosts'}", f"addn-hosts={out / 'dns-hosts'}",
                 "enable-tftp", f"tftp-root={tftp}",
                 f"dhcp-leasefile={lab_settings.dhcp_leases}",
                 f"pid-file={lab_settings.dnsmasq_pidfile}",
                 # the timeline's dhcp phase reads it (hps_api.observe.timeline_logs)
                 f"log-facility={lab_settings.log_dir / 'dnsmasq.log'}",
                 "dhcp-match=set:ipxe,175",
                 "dhcp-match=set:efi64,option:client-arch,7",
                 "dhcp-match=set:efi64,option:client-arch,9",
                 "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe",
                 "dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi",
                 "dhcp-option-force=tag:ipxe,option:bootfile-name,http://10.99.0.1:8080"
                 f"/cgi-bin/boot_manager.sh?{INIT_QUERY}"):
        assert line in conf
    assert (tftp / "ipxe.efi").read_bytes() == (ipxe_dir / "ipxe.efi").read_bytes()


@pytest.mark.parametrize(("cidr", "start", "end"), [
    ("10.99.0.0/24", "10.99.0.128", "10.99.0.254"),
    ("172.16.0.0/16", "172.16.128.0", "172.16.255.254"),
    ("192.168.7.0/29", "192.168.7.4", "192.168.7.6"),
])
def test_the_default_dynamic_range_is_the_upper_half_of_the_network_without_broadcast(
        cidr: str, start: str, end: str) -> None:
    assert default_range(IPv4Network(cidr)) == (IPv4Address(start), IPv4Address(end))


@pytest.mark.parametrize(("port", "url"), [
    ("", "http://10.99.0.1/boot.ipxe"), ("80", "http://10.99.0.1/boot.ipxe"),
    ("8080", "http://10.99.0.1:8080/boot.ipxe"),
])
def test_the_ipxe_boot_url_names_the_port_unless_it_is_80(port: str, url: str) -> None:
    keys = {**CLUSTER_KEYS, "HPS_PORT": port}
    assert ClusterNetwork.of(keys).boot_url == url


def test_explicit_range_and_domain_are_used(seeded: FileStore, lab_settings: Settings,
                                            ipxe_dir: Path) -> None:
    seeded.update(RecordId.of_cluster("default"),
                  {"DHCP_RANGE_START": "10.99.0.100", "DHCP_RANGE_END": "10.99.0.199",
                   "DNS_DOMAIN": "Lab.Example", "HPS_PORT": "80"}, "test")
    render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    conf = (services_dir(seeded) / "dnsmasq.conf").read_text().splitlines()
    assert "dhcp-range=10.99.0.100,10.99.0.199,255.255.255.0,12h" in conf
    assert "domain=lab.example" in conf
    assert ("dhcp-option-force=tag:ipxe,option:bootfile-name,http://10.99.0.1/cgi-bin/"
            f"boot_manager.sh?{INIT_QUERY}") in conf
    assert "10.99.0.10 sch-001 sch-001.lab.example\n" in (
        services_dir(seeded) / "dns-hosts").read_text()


def test_dhcp_sends_ipxe_to_init_with_the_parameters_the_bootstrap_chains() -> None:
    # /boot.ipxe (for clients handed it by hand) and DHCP's own URL ask init the same things
    bootstrap = (REPO / "ipxe" / "bootstrap.ipxe").read_text()
    chained = bootstrap.split("boot_manager.sh?", 1)[1].split(" ", 1)[0]
    assert chained.replace("${net${idx}/", "${netX/") == INIT_QUERY
    assert len(ClusterNetwork.of({"DHCP_IP": "10.99.100.100", "NETWORK_CIDR": "10.99.0.0/16",
                                  "HPS_PORT": "65535"}, "c").init_url) <= 255  # a DHCP option


@pytest.mark.skipif(not os.path.exists(DNSMASQ), reason="apt-get install dnsmasq-base")
def test_real_dnsmasq_accepts_the_generated_config_and_every_reservation(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path, tmp_path: Path) -> None:
    render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    conf = services_dir(seeded) / "dnsmasq.conf"
    checked = subprocess.run([DNSMASQ, "--test", f"--conf-file={conf}"], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    # --test does not open dhcp-hostsfile; the same lines as dhcp-host= options it does check.
    as_options = tmp_path / "hosts-as-options.conf"
    as_options.write_text("".join(f"dhcp-host={line}\n" for line in
                                  (services_dir(seeded) / "dhcp-hosts").read_text().splitlines()))
    checked = subprocess.run([DNSMASQ, "--test", f"--conf-file={as_options}"],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(("key", "value", "message"), [
    ("DHCP_IP", None, "cluster default: DHCP_IP is required"),
    ("NETWORK_CIDR", None, "cluster default: NETWORK_CIDR is required"),
    ("DHCP_IFACE", None, "cluster default: DHCP_IFACE is required"),
    ("DHCP_IP", "10.99.0.256", "DHCP_IP='10.99.0.256' is not an IPv4 address"),
    ("DHCP_IP", "10.98.0.1", "DHCP_IP=10.98.0.1 is not a usable address of 10.99.0.0/24"),
    ("DHCP_IP", "10.99.0.255", "DHCP_IP=10.99.0.255 is not a usable address"),
    ("DHCP_IP", "10.99.0.200", "DHCP_IP 10.99.0.200 lies inside the dynamic range"),
    ("NETWORK_CIDR", "10.99.0.1/24", "NETWORK_CIDR='10.99.0.1/24' is not a network"),
    ("NETWORK_CIDR", "fd00::/64", "only IPv4 networks are supported"),
    ("NETWORK_CIDR", "10.99.0.0/30", "is too small"),
    ("DHCP_IFACE", "br0,lo", "DHCP_IFACE='br0,lo' is not an interface name"),
    ("DHCP_IFACE", "averyveryverylongname", "is not an interface name"),
    ("DHCP_RANGE_START", "10.99.0.300", "DHCP_RANGE_START='10.99.0.300' is not an IPv4"),
    ("DHCP_RANGE_END", "10.99.1.20", "DHCP_RANGE_END=10.99.1.20 is not a usable address"),
    ("DHCP_RANGE_END", "10.99.0.100", "DHCP_RANGE_START 10.99.0.128 is after DHCP_RANGE_END"),
    ("DNS_DOMAIN", "bad domain", "DNS_DOMAIN='bad domain' is not a domain name"),
    ("DNS_DOMAIN", "x/y", "is not a domain name"),
    ("HPS_PORT", "0", "HPS_PORT='0' is not a port number"),
    ("HPS_PORT", "80,tftp", "is not a port number"),
])
def test_a_missing_or_bad_cluster_key_is_invalid_input_naming_it_and_nothing_is_written(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path, snapshot: Snapshot,
        key: str, value: str | None, message: str) -> None:
    cluster = RecordId.of_cluster("default")
    if value is None:
        seeded.unset(cluster, key, "test")
    else:
        seeded.update(cluster, {key: value}, "test")
    before = files(snapshot, seeded.layout.root)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    assert files(snapshot, seeded.layout.root) == before
    assert not lab_settings.resources_dir.exists()


@pytest.mark.parametrize(("mac", "keys", "message"), [
    ("52:54:00:aa:bb:09", {"IP": "10.98.0.9"}, "host 525400aabb09: IP 10.98.0.9 is not a free"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.1"}, "host 525400aabb09: IP 10.99.0.1 is not a free"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.0"}, "IP 10.99.0.0 is not a free"),
    ("52:54:00:aa:bb:09", {"IP": "ten"}, "host 525400aabb09: IP='ten' is not an IPv4"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.10"}, "IP 10.99.0.10 is also host 525400aabb01's"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.19", "HOSTNAME": "sch-001"},
     "HOSTNAME sch-001 is also host 525400aabb01's"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.19", "HOSTNAME": "bad_name"},
     "host 525400aabb09: HOSTNAME='bad_name' is not a host name"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.19", "HOSTNAME": "a,b"}, "is not a host name"),
    ("52:54:00:aa:bb:09", {"IP": "10.99.0.19", "HOSTNAME": "ips"}, "is not a host name"),
])
def test_a_bad_host_record_is_left_out_naming_the_host_and_the_others_are_written(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path, snapshot: Snapshot,
        mac: str, keys: dict[str, str], message: str) -> None:
    rid = RecordId.of_host("default", mac)
    hostname = keys.get("HOSTNAME", "")
    planted = hostname and not HOSTNAME_PATTERN.fullmatch(hostname.lower())
    seeded.update(rid, {k: v for k, v in keys.items() if not (planted and k == "HOSTNAME")},
                  "test", create=True)
    if planted:  # the store refuses such a name for every writer: a record edited by hand
        write_raw(seeded, rid, {"HOSTNAME": hostname})
    before = files(snapshot, seeded.layout.root)
    rendered = render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    assert len(rendered.skipped) == 1 and message in str(rendered.skipped[0])
    assert (services_dir(seeded) / "dhcp-hosts").read_text() == (
        "52:54:00:aa:bb:01,10.99.0.10,sch-001\n"
        "52:54:00:aa:bb:02,10.99.0.11,sch-002\n"
        "52:54:00:aa:bb:04,10.99.0.12\n")
    after = files(snapshot, seeded.layout.root)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    services = str(services_dir(seeded).relative_to(seeded.layout.root))
    assert changed and all(path.startswith(services) for path in changed)


def test_a_path_dnsmasq_conf_cannot_hold_is_refused(seeded: FileStore, lab_settings: Settings,
                                                    ipxe_dir: Path, tmp_path: Path) -> None:
    odd = lab_settings.with_overrides(resources_dir=tmp_path / "a,b")
    with pytest.raises(InvalidInput, match=r"tftp_root path .* has characters"):
        render_services(seeded, odd, "default", ipxe_dir=ipxe_dir)
    assert not (services_dir(seeded) / "dnsmasq.conf").exists()


def test_an_unknown_cluster_is_not_found(seeded: FileStore, lab_settings: Settings) -> None:
    with pytest.raises(NotFound):
        render_services(seeded, lab_settings, "nosuch")


def test_ipxe_binaries_are_copied_only_when_missing_or_different(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path) -> None:
    tftp = lab_settings.resources_dir / "tftp"
    render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    again = render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    assert [p.name for p in again] == ["dhcp-hosts", "dns-hosts", "rsyslog.conf", "dnsmasq.conf",
                                       "nginx.conf", "front-end.env"]
    (tftp / "snponly.efi").write_bytes(b"stale")
    (tftp / "ipxe.efi").unlink()
    third = render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    assert [p.name for p in third][6:] == ["ipxe.efi", "snponly.efi"]
    assert (tftp / "snponly.efi").read_bytes() == (ipxe_dir / "snponly.efi").read_bytes()


def test_a_binary_missing_from_the_ipxe_package_is_skipped(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path) -> None:
    (ipxe_dir / "snponly.efi").unlink()
    written = render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir)
    assert "snponly.efi" not in [p.name for p in written]
    assert (lab_settings.resources_dir / "tftp" / "undionly.kpxe").is_file()


def test_rendered_files_are_world_readable_and_no_temporary_file_is_left(
        seeded: FileStore, lab_settings: Settings, ipxe_dir: Path) -> None:
    for path in render_services(seeded, lab_settings, "default", ipxe_dir=ipxe_dir):
        assert path.stat().st_mode & 0o777 == 0o644
    leftovers = [p.name for d in (services_dir(seeded), lab_settings.resources_dir / "tftp")
                 for p in d.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str | None]:
    """Environment for `hps-api render-services` with every path under tmp_path."""
    return {"HPS_RESOURCES_DIR": str(tmp_path / "resources"),
            "HPS_DHCP_LEASES": str(tmp_path / "run" / "leases"),
            "HPS_DNSMASQ_PIDFILE": str(tmp_path / "run" / "dnsmasq.pid")}


def test_render_services_cli_with_no_reload_writes_the_files_and_exits_0(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None]) -> None:
    result = cli("hps-api", "render-services", "--no-reload", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"wrote {services_dir(seeded) / 'dnsmasq.conf'}" in result.stdout.splitlines()
    assert f"wrote {services_dir(seeded) / 'rsyslog.conf'}" in result.stdout.splitlines()
    assert "dnsmasq not reloaded (--no-reload)" in result.stdout.splitlines()
    assert result.stderr == ""


def test_render_services_cli_exits_1_after_writing_the_files_when_no_dnsmasq_runs(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None]) -> None:
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 1
    assert f"wrote {services_dir(seeded) / 'dnsmasq.conf'}" in result.stdout.splitlines()
    assert result.stderr.startswith(
        f"hps-api: files written, but dnsmasq not reloaded: no running dnsmasq in "
        f"{cli_env['HPS_DNSMASQ_PIDFILE']} (No such file or directory)")
    assert "--no-reload" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("content", ["garbage\n", "99999999\n"])
def test_render_services_cli_exits_1_for_a_pidfile_naming_no_dnsmasq(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None], content: str) -> None:
    pidfile = Path(str(cli_env["HPS_DNSMASQ_PIDFILE"]))
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(content)
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 1
    assert "dnsmasq not reloaded" in result.stderr and str(pidfile) in result.stderr


def test_render_services_cli_exits_1_for_a_process_that_is_not_dnsmasq(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None]) -> None:
    pidfile = Path(str(cli_env["HPS_DNSMASQ_PIDFILE"]))
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(f"{os.getpid()}\n")  # pytest itself: alive, not dnsmasq
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 1
    assert f"pid {os.getpid()} is not dnsmasq; not signalled" in result.stderr


def test_render_services_cli_reloads_a_running_dnsmasq_and_exits_0(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None],
        fake_dnsmasq: tuple[subprocess.Popen[str], Path]) -> None:
    child, marker = fake_dnsmasq
    pidfile = Path(str(cli_env["HPS_DNSMASQ_PIDFILE"]))
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(f"{child.pid}\n")
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert f"dnsmasq reloaded (pid from {pidfile})" in result.stdout.splitlines()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "hup"


def test_render_services_cli_writes_nothing_when_an_rsyslog_key_is_bad(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None], snapshot: Snapshot) -> None:
    seeded.update(RecordId.of_cluster("default"), {"SYSLOG_PORT": "70000"}, "test")
    before = files(snapshot, seeded.layout.root)
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 2
    assert "SYSLOG_PORT" in result.stderr
    assert files(snapshot, seeded.layout.root) == before


def test_render_services_cli_takes_a_cluster_name(
        cli: Cli, seeded: FileStore, cli_env: dict[str, str | None]) -> None:
    assert cli("hps-api", "render-services", "--cluster", "default", "--no-reload",
               env=cli_env).returncode == 0
    missing = cli("hps-api", "render-services", "--cluster", "nosuch", env=cli_env)
    assert missing.returncode == 1
    assert "cluster/nosuch not found" in missing.stderr
    bad = cli("hps-api", "render-services", "--cluster", "../etc", env=cli_env)
    assert bad.returncode == 2


def test_render_services_cli_exits_2_naming_a_missing_key(
        cli: Cli, store: FileStore, cli_env: dict[str, str | None]) -> None:
    result = cli("hps-api", "render-services", env=cli_env)
    assert result.returncode == 2
    assert result.stderr == "hps-api: cluster default: NETWORK_CIDR is required\n"
    assert result.stdout == ""


# -- reload -------------------------------------------------------------------------------------

SIGHUP_CATCHER = """
import pathlib, signal, sys, time
marker = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGHUP, lambda *_: marker.write_text("hup"))
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.05)
"""


@pytest.fixture
def fake_dnsmasq(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A real child process named `dnsmasq` (comm) that records a SIGHUP in a marker file."""
    named = tmp_path / "bin" / "dnsmasq"
    named.parent.mkdir()
    named.symlink_to(os.path.realpath(sys.executable))
    marker = tmp_path / "hup-marker"
    child = subprocess.Popen([str(named), "-c", SIGHUP_CATCHER, str(marker)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield child, marker
    finally:
        child.kill()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def test_reload_sends_sighup_to_the_dnsmasq_in_the_pidfile(
        lab_settings: Settings, fake_dnsmasq: tuple[subprocess.Popen[str], Path]) -> None:
    child, marker = fake_dnsmasq
    lab_settings.dnsmasq_pidfile.parent.mkdir(parents=True)
    lab_settings.dnsmasq_pidfile.write_text(f"{child.pid}\n")
    assert reload_dnsmasq(lab_settings) is True
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "hup"
    assert child.poll() is None


def test_reload_returns_false_without_a_pidfile(lab_settings: Settings) -> None:
    assert reload_dnsmasq(lab_settings) is False


@pytest.mark.parametrize("content", ["", "garbage\n", "0\n", "1\n", "-5\n", "99999999\n"])
def test_reload_returns_false_for_a_pidfile_naming_no_usable_process(
        lab_settings: Settings, content: str) -> None:
    lab_settings.dnsmasq_pidfile.parent.mkdir(parents=True)
    lab_settings.dnsmasq_pidfile.write_text(content)
    assert reload_dnsmasq(lab_settings) is False


def test_reload_returns_false_for_a_process_that_has_exited(lab_settings: Settings) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    lab_settings.dnsmasq_pidfile.parent.mkdir(parents=True)
    lab_settings.dnsmasq_pidfile.write_text(f"{gone.pid}\n")
    assert reload_dnsmasq(lab_settings) is False


def test_reload_never_signals_a_process_that_is_not_dnsmasq(lab_settings: Settings) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        lab_settings.dnsmasq_pidfile.parent.mkdir(parents=True)
        lab_settings.dnsmasq_pidfile.write_text(f"{sleeper.pid}\n")
        assert reload_dnsmasq(lab_settings) is False
        time.sleep(0.2)
        assert sleeper.poll() is None  # SIGHUP would have killed it
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait(timeout=10)

"""The IPS self-test: each check passes on a good IPS and fails for its own reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hps_api.ops.selftest import run_selftest
from hps_api.services import render_services
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

needs_tools = pytest.mark.skipif(
    not (shutil.which("dnsmasq") and shutil.which("rsyslogd") and Path("/usr/lib/ipxe").is_dir()),
    reason="dnsmasq, rsyslogd and Debian's ipxe are needed (scripts/test installs them as root)")


@pytest.fixture
def ips(store: FileStore, settings: Settings, tmp_path: Path) -> Settings:
    """A healthy IPS: a configured cluster, rendered service files, a writable log dir."""
    good = settings.with_overrides(resources_dir=tmp_path / "resources",
                                   dnsmasq_pidfile=tmp_path / "dnsmasq.pid",
                                   dhcp_leases=tmp_path / "leases")
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_IFACE": "lo",
        "SYSLOG_PORT": "10514"}, "t")
    render_services(store, good, "default")
    good.log_dir.mkdir(parents=True, exist_ok=True)
    return good


def results(store: FileStore, settings: Settings) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in run_selftest(store, settings)}


@needs_tools
def test_every_check_passes_on_a_good_ips(store: FileStore, ips: Settings) -> None:
    found = results(store, ips)
    assert {name: ok for name, (ok, _) in found.items()} == dict.fromkeys(found, True), found


@needs_tools
def test_an_unwritable_log_dir_fails_its_check(store, ips: Settings, tmp_path: Path) -> None:
    broken = ips.with_overrides(log_dir=tmp_path / "no-such-dir")
    ok, detail = results(store, broken)["log_dir"]
    assert not ok and "not writable" in detail


@needs_tools
def test_a_corrupt_record_fails_the_records_check(store: FileStore, ips: Settings) -> None:
    path = store.layout.hosts_dir("default") / "525400aabb09.conf"
    path.write_text("STATE=INSTALLED\nSTATE=INSTALLED\n")
    ok, detail = results(store, ips)["records"]
    assert not ok and "duplicate key STATE" in detail


@needs_tools
def test_a_dnsmasq_config_dnsmasq_rejects_fails_its_check(store: FileStore, ips) -> None:
    conf = store.layout.services_dir("default") / "dnsmasq.conf"
    conf.write_text(conf.read_text() + "no-such-dnsmasq-option=1\n")
    ok, detail = results(store, ips)["dnsmasq_config"]
    assert not ok and "dnsmasq rejects dnsmasq.conf" in detail


@needs_tools
def test_missing_ipxe_binaries_fail_their_check(store: FileStore, ips: Settings) -> None:
    os.unlink(ips.resources_dir / "tftp" / "undionly.kpxe")
    ok, detail = results(store, ips)["ipxe_binaries"]
    assert not ok and "undionly.kpxe" in detail


def test_a_cluster_without_a_network_fails_the_cluster_check(store, settings) -> None:
    ok, detail = results(store, settings)["active_cluster"]
    assert not ok and "NETWORK_CIDR" in detail


def test_an_unwritable_config_dir_fails_its_check(store: FileStore, settings, tmp_path) -> None:
    missing = FileStore(tmp_path / "gone")
    ok, _ = results(missing, settings)["config_dir"]
    assert not ok


@needs_tools
def test_the_cli_prints_one_line_per_check_and_exits_by_the_result(cli, store, ips) -> None:
    env = {"HPS_LOG_DIR": str(ips.log_dir), "HPS_RESOURCES_DIR": str(ips.resources_dir)}
    good = cli("hps-api", "selftest", env=env)
    assert good.returncode == 0, good.stdout
    assert "templates: pass" in good.stdout
    bad = cli("hps-api", "selftest", env={**env, "HPS_LOG_DIR": "/nonexistent/hps"})
    assert bad.returncode == 1 and "log_dir: fail" in bad.stdout


@needs_tools
def test_deep_health_includes_the_selftest(store, ips: Settings) -> None:
    import webtest

    from hps_api import create_app

    web = webtest.TestApp(create_app(ips), extra_environ={"REMOTE_ADDR": "10.99.0.5"})
    assert "selftest" not in web.get("/api/v1/health").json["data"]
    data = web.get("/api/v1/health?deep=1").json["data"]
    assert data["selftest"]["result"] == "pass" and data["status"] == "ok"
    page = web.get("/health", headers={"Accept": "text/html"}).text
    assert "IPS self-test" in page and "dnsmasq_config" in page

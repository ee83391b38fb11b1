"""Every door on the etcd store: the console scripts an operator runs (`hps-api init`,
`cluster create`, `cluster_config`, `host_config`, `hps-api os`, `render-services`, `selftest`,
`fsck`, `stuck`, `storage`), each a process of its own with only `HPS_STORE` pointing at etcd,
and the legacy endpoint and pages of an app built on the same setting. What one door writes,
the others read, and no record file appears under HPS_CONFIG_DIR: the records live in etcd,
the directory holds only the rendered service files and run state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import webtest
from etcd_cluster import (  # noqa: F401 (fixtures)
    EtcdCluster,
    random_prefix,
    running_cluster_fixture,
    shared_cluster_fixture,
)

from hps_api.settings import load_settings
from hps_api.store import RecordId
from hps_api.store.etcdstore import EtcdStore
from hps_api.store.factory import open_store
from hps_api.web.app import build_app

BIN = Path(sys.executable).parent
MAC = "52:54:00:e7:00:01"


@pytest.fixture
def env(etcd: EtcdCluster, tmp_path: Path) -> dict[str, str]:
    """The environment of every door: HPS_STORE on a prefix of its own, a config dir, logs."""
    (tmp_path / "config").mkdir()
    (tmp_path / "log").mkdir()
    (tmp_path / "resources").mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    return {**base, "HPS_STORE": etcd.url(random_prefix()),
            "HPS_CONFIG_DIR": str(tmp_path / "config"), "HPS_LOG_DIR": str(tmp_path / "log"),
            "HPS_RESOURCES_DIR": str(tmp_path / "resources"),
            "HPS_DNSMASQ_PIDFILE": str(tmp_path / "dnsmasq.pid"),
            "HPS_DHCP_LEASES": str(tmp_path / "dnsmasq.leases")}


def run(env: dict[str, str], prog: str, *args: str,
        expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(BIN / prog), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False, cwd=env["HPS_CONFIG_DIR"])
    if expect is not None:
        assert done.returncode == expect, (prog, args, done.stdout, done.stderr)
    return done


def test_every_console_door_works_on_etcd_and_writes_no_record_file(env: dict[str, str]) -> None:
    run(env, "hps-api", "init")
    run(env, "hps-api", "cluster", "create", "lab", "--dhcp-ip", "10.99.0.1", "--dhcp-iface",
        "hpsbr0", "--network-cidr", "10.99.0.0/24", "--activate")
    run(env, "cluster_config", "set", "MENU_TIMEOUT", "30")
    assert run(env, "cluster_config", "get", "MENU_TIMEOUT").stdout == "30\n"
    run(env, "hps-api", "os", "add", "x86_64:rocky:10", "--repo-path", "rocky/10", "--kernel",
        "vmlinuz", "--initrd", "initrd.img", "--status", "prod", "--types", "SCH")
    run(env, "host_config", MAC, "set", "STATE", "UNCONFIGURED")
    run(env, "host_config", MAC, "set", "HOSTNAME", "sch-001")
    run(env, "host_config", MAC, "set", "IP", "10.99.0.10")
    assert run(env, "host_config", MAC, "get", "HOSTNAME").stdout == "sch-001\n"
    # a managed key is checked on etcd as on files: refused, nothing written
    refused = run(env, "host_config", MAC, "set", "IP", "10.50.0.1", expect=2)
    assert "10.50.0.1" in refused.stderr
    assert run(env, "host_config", MAC, "get", "IP").stdout == "10.99.0.10\n"
    history = run(env, "host_config", MAC, "history").stdout
    assert "HOSTNAME" in history and "sch-001" in history
    run(env, "hps-api", "render-services", "--no-reload")
    services = Path(env["HPS_CONFIG_DIR"]) / "clusters" / "lab" / "services"
    assert "52:54:00:e7:00:01,10.99.0.10,sch-001" in (services / "dhcp-hosts").read_text()
    assert run(env, "hps-api", "fsck").returncode == 0
    stuck = run(env, "hps-api", "stuck", "--json", expect=None)
    assert stuck.returncode in (0, 1), stuck.stderr
    assert run(env, "hps-api", "storage", "list", "--json").returncode == 0
    boot = Path(env["HPS_RESOURCES_DIR"]) / "distros" / "rocky" / "10"
    boot.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img"):
        (boot / name).write_bytes(b"boot file")
    selftest = run(env, "hps-api", "selftest")  # every check passes, the records' on etcd
    assert "records: pass (every record parses)" in selftest.stdout, selftest.stdout
    # the records are etcd's: none of them is a file of the config directory
    files = {p.relative_to(env["HPS_CONFIG_DIR"]).as_posix()
             for p in Path(env["HPS_CONFIG_DIR"]).rglob("*") if p.is_file()}
    assert not [f for f in files if f.endswith(".conf") and "services/" not in f], files
    assert not [f for f in files if f.endswith("journal.log")], files
    # and another process reading etcd sees them
    store = open_store(load_settings(env))
    assert isinstance(store, EtcdStore)
    assert store.items(RecordId.of_host("lab", MAC))["HOSTNAME"] == "sch-001"
    assert store.get(RecordId.of_cluster("lab"), "MENU_TIMEOUT") == "30"


def test_the_app_on_etcd_registers_a_host_and_shows_it_on_its_pages(env: dict[str, str]) -> None:
    run(env, "hps-api", "init")
    settings = load_settings(env)
    app = webtest.TestApp(build_app(settings), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    menu = app.get(f"/cgi-bin/boot_manager.sh?cmd=init&mac={MAC}",
                   headers={"User-Agent": "iPXE/1.21.1"})
    assert menu.text.startswith("#!ipxe"), menu.text
    assert run(env, "host_config", MAC, "get", "STATE").stdout == "UNCONFIGURED\n"
    assert "52:54:00:e7:00:01" in app.get("/hosts", headers={"User-Agent": "Mozilla/5.0"}).text

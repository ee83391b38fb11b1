"""One operation, every door: the same verdict for the same input, and the same side effects.

`host_config MAC set KEY VALUE` (the IPS shell), `PUT /api/v1/hosts/<mac>/config/<KEY>` (an
admin script) and `cmd=host_variable` (the legacy endpoint, as an admin) all go through
`hps_api.ops.hosts`: a bad managed value is refused by each with nothing written, and a change of
HOSTNAME or IP regenerates dnsmasq's reservations whichever door made it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
TOKEN = "ops-token"
BEARER = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "curl/8.5.0"}


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    return {"HPS_RESOURCES_DIR": str(tmp_path / "resources"), "HPS_LOG_DIR": str(tmp_path / "log"),
            "HPS_DNSMASQ_PIDFILE": str(tmp_path / "dnsmasq.pid")}


@pytest.fixture
def api(config_dir: Path, tmp_path: Path, paths: dict[str, str]) -> webtest.TestApp:
    settings = Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                        resources_dir=tmp_path / "resources", arp_table=tmp_path / "arp",
                        dhcp_leases=tmp_path / "leases", dnsmasq_pidfile=tmp_path / "dnsmasq.pid",
                        admin_token=TOKEN, lock_timeout=0.5)
    return webtest.TestApp(create_app(settings), extra_environ={"REMOTE_ADDR": "10.99.0.50"})


@pytest.fixture
def network(store: FileStore, host: RecordId) -> RecordId:
    """The cluster's network (DHCP range .100-.199), one storage network, an OS, and a second
    host holding sch-002 / 10.99.0.12 / storage address 10.31.0.5."""
    store.update(RecordId.of_cluster("default"), {
        "NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1", "DHCP_IFACE": "br0",
        "DHCP_RANGE_START": "10.99.0.100", "DHCP_RANGE_END": "10.99.0.199",
        "STORAGE_NETWORKS": "1", "STORAGE0_CIDR": "10.31.0.0/24", "STORAGE0_VLAN": "31"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {"STATUS": "prod", "HPS_TYPES": "SCH"}, "t",
                 create=True)
    store.update(RecordId.of_host("default", "525400aabb02"), {
        "STATE": "INSTALLED", "HOSTNAME": "sch-002", "IP": "10.99.0.12",
        "STORAGE0_IP": "10.31.0.5"}, "t", create=True)
    store.update(host, {"STATE": "INSTALLED", "HOSTNAME": "sch-001", "IP": "10.99.0.11"}, "t")
    with store.lock("default"):  # its lock file exists once any host was configured
        pass
    return host


def by_cli(cli, paths, key: str, value: str) -> bool:
    result = cli("host_config", MAC, "set", key, value, env=paths)
    assert result.returncode in (0, 2), result.stderr
    return result.returncode == 0


def by_api(api, paths, key: str, value: str) -> bool:
    answer = api.put_json(f"/api/v1/hosts/{MAC}/config/{key}", {"value": value},
                          headers=BEARER, status="*")
    assert answer.status_int in (200, 400), answer.text
    return answer.status_int == 200


def by_legacy(api, paths, key: str, value: str) -> bool:
    answer = api.get("/cgi-bin/boot_manager.sh", {"cmd": "host_variable", "name": key,
                                                   "value": value, "mac": MAC},
                     headers=BEARER, status="*")
    assert answer.status_int in (200, 400), answer.text
    return answer.status_int == 200


DOORS = {"cli": by_cli, "api": by_api, "legacy": by_legacy}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("HOSTNAME", "sch 001!", False),
    ("HOSTNAME", "n1 ; chain http://10.66.6.6/", False),
    ("PATH", "/tmp/x", False),
    ("ld_preload", "/tmp/x.so", False),
    ("NOTE", "line\nbreak", False),
    ("HOSTNAME", "sch-009", True),
    ("NOTE", "rack 4", True),
    # managed keys: each rule, refused the same by every door, nothing written
    ("STATE", "BOGUS", False),
    ("HOSTNAME", "sch-002", False),              # another host's name
    ("HOSTNAME", "SCH-002", False),              # names compare without case, as DNS does
    ("IP", "999.1.1.1", False),
    ("IP", "10.50.0.5", False),                  # outside the cluster network
    ("IP", "10.99.0.255", False),                # the broadcast address
    ("IP", "10.99.0.1", False),                  # the IPS's own
    ("IP", "10.99.0.150", False),                # inside the DHCP range
    ("IP", "10.99.0.12", False),                 # another host's
    ("TYPE", "NOSUCH", False),
    ("PROFILE", "DEFAULT", False),               # no TYPE yet
    ("OS_ID", "x86_64:nosuch:1", False),
    ("STORAGE0_IP", "10.31.1.5", False),         # outside storage network 0
    ("STORAGE0_IP", "10.31.0.5", False),         # another host's
    ("STORAGE3_IP", "10.31.0.9", False),         # no storage network 3
    ("IP", "10.99.0.42", True),
    ("TYPE", "sch", True),
    ("OS_ID", "x86_64:rocky:10", True),
    ("STORAGE0_IP", "10.31.0.9", True),
])
def test_every_door_gives_the_same_verdict(door, key, value, accepted, cli, api, paths, store,
                                           network, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    assert DOORS[door](cli if door == "cli" else api, paths, key, value) is accepted
    if not accepted:
        assert snapshot(config_dir) == before
    else:
        assert store.items(network)[key.upper()].upper() == value.upper()


@pytest.mark.parametrize("door", ["cli", "api"])
@pytest.mark.parametrize("value", ["BOGUS", "", "installed; reboot"])
def test_a_state_outside_the_state_table_is_refused_by_every_admin_door(
        door, value, cli, api, paths, network, config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    assert DOORS[door](cli if door == "cli" else api, paths, "STATE", value) is False
    assert snapshot(config_dir) == before


@pytest.mark.parametrize("door", DOORS)
def test_the_reservations_follow_a_change_of_ip_from_any_door(door, cli, api, paths, store,
                                                             network) -> None:
    hosts_file = store.layout.root / "clusters/default/services/dhcp-hosts"
    assert DOORS[door](cli if door == "cli" else api, paths, "IP", "10.99.0.42")
    assert "10.99.0.42" in hosts_file.read_text()


@pytest.mark.parametrize("door", ["cli", "api"])
def test_a_deleted_host_leaves_dnsmasqs_files(door, cli, api, paths, store, network) -> None:
    hosts_file = store.layout.root / "clusters/default/services/dhcp-hosts"
    by_cli(cli, paths, "IP", "10.99.0.43")
    assert "10.99.0.43" in hosts_file.read_text()
    if door == "cli":
        assert cli("host_config", MAC, "delete", env=paths).returncode == 0
    else:
        api.delete(f"/api/v1/hosts/{MAC}", headers=BEARER)
    assert "10.99.0.43" not in hosts_file.read_text()
    assert not store.exists(network)

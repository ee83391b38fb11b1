"""Setting a cluster key, from every door: `cluster_config set` (the IPS shell), `PUT
/api/v1/clusters/<name>/config/<KEY>` and the legacy `cmd=cluster_variable` as an admin all go
through `hps_api.ops.clusters.set_key`, so the same value gets the same verdict from each.

A key is checked alone (its validator) and, once the cluster has a network, with the rest of the
record; a cluster is still built key by key in any order, as the old scripts build it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import webtest

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

TOKEN = "ops-token"
BEARER = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "curl/8.5.0"}
CLUSTER = RecordId.of_cluster("default")


@pytest.fixture
def api(config_dir: Path, tmp_path: Path) -> webtest.TestApp:
    settings = Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                        resources_dir=tmp_path / "resources", arp_table=tmp_path / "arp",
                        dhcp_leases=tmp_path / "leases", dnsmasq_pidfile=tmp_path / "dnsmasq.pid",
                        admin_token=TOKEN, lock_timeout=0.5)
    return webtest.TestApp(create_app(settings), extra_environ={"REMOTE_ADDR": "10.99.0.50"})


def by_cli(cli, api, key: str, value: str) -> bool:
    result = cli("cluster_config", "set", key, value)
    assert result.returncode in (0, 2), result.stderr
    return result.returncode == 0


def by_api(cli, api, key: str, value: str) -> bool:
    answer = api.put_json(f"/api/v1/clusters/default/config/{key}", {"value": value},
                          headers=BEARER, status="*")
    assert answer.status_int in (200, 400), answer.text
    return answer.status_int == 200


def by_legacy(cli, api, key: str, value: str) -> bool:
    answer = api.get("/cgi-bin/boot_manager.sh", {"cmd": "cluster_variable", "name": key,
                                                   "value": value}, headers=BEARER, status="*")
    assert answer.status_int in (200, 400), answer.text
    return answer.status_int == 200


DOORS = {"cli": by_cli, "api": by_api, "legacy": by_legacy}


@pytest.fixture
def network(store: FileStore) -> None:
    store.update(CLUSTER, {"NETWORK_CIDR": "10.99.0.0/24", "DHCP_IP": "10.99.0.1",
                           "DHCP_RANGE_START": "10.99.0.100", "DHCP_RANGE_END": "10.99.0.199"},
                 "t")


@pytest.mark.usefixtures("network")
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("DHCP_IP", "10.50.0.1", False),          # outside NETWORK_CIDR
    ("DHCP_IP", "10.99.0.150", False),        # inside the DHCP range
    ("DHCP_RANGE_END", "10.99.0.50", False),  # before the start
    ("NETWORK_CIDR", "10.99.0.0/33", False),
    ("DNS_DOMAIN", "bad domain!", False),
    ("MENU_TIMEOUT", "soon", False),
    ("DHCP_IP", "10.99.0.2", True),
    ("DNS_DOMAIN", "lab.example", True),
    ("NOTE", "rack 4", True),                 # a free key: any value the store can hold
])
def test_every_door_gives_the_same_verdict(door, key, value, accepted, cli, api, store,
                                           config_dir, snapshot) -> None:
    before = snapshot(config_dir)
    assert DOORS[door](cli, api, key, value) is accepted
    if accepted:
        assert store.get(CLUSTER, key) == value
    else:
        assert snapshot(config_dir) == before


@pytest.mark.parametrize("door", DOORS)
def test_a_cluster_is_built_key_by_key_in_any_order(door, cli, api, store) -> None:
    """The old scripts set DHCP_IP before NETWORK_CIDR: nothing to compare it with yet."""
    for key, value in (("DHCP_IP", "10.99.0.1"), ("NETWORK_CIDR", "10.99.0.0/24"),
                       ("DHCP_RANGE_START", "10.99.0.100")):
        assert DOORS[door](cli, api, key, value), key
    assert not DOORS[door](cli, api, "DHCP_RANGE_END", "10.98.0.199")  # now it is compared
    assert "DHCP_RANGE_END" not in store.items(CLUSTER)

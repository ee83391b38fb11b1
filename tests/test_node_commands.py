"""Server side of the node commands: syslog proof, self-test reports, storage addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from hps_api.store import FileStore, RecordId

URL = "/cgi-bin/boot_manager.sh"
MAC = "525400aabb01"
LAN = {"REMOTE_ADDR": "10.99.0.21"}


@pytest.fixture
def nodes_log(settings) -> Path:
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    return settings.log_dir / "nodes.log"


def get(web, query: str, status: int = 200, environ: dict[str, str] | None = None):
    return web.get(f"{URL}?{query}&mac={MAC}", extra_environ=environ or LAN, status=status)


def test_syslog_check_finds_a_key_sent_from_the_callers_address(web, host, nodes_log) -> None:
    nodes_log.write_text("2026-11-21T10:00:00Z 10.99.0.21 sch-001 hps: probe-1234abcd\n"
                         "2026-11-21T10:00:01Z 10.99.0.22 sch-002 hps: probe-9999\n")
    assert get(web, "cmd=syslog_check&key=probe-1234abcd").text == "yes\n"
    assert get(web, "cmd=syslog_check&key=probe-9999").text == "no\n"
    assert get(web, "cmd=syslog_check&key=never-sent").text == "no\n"


def test_syslog_check_reads_only_the_end_of_a_large_log(web, host, nodes_log) -> None:
    old = "2026-11-21T09:00:00Z 10.99.0.21 sch-001 hps: ancient-key\n"
    filler = "2026-11-21T09:30:00Z 10.99.0.9 x hps: " + "f" * 200 + "\n"
    nodes_log.write_text(old + filler * 6000 + "2026-11-21T10:00:00Z 10.99.0.21 s hps: new-key\n")
    assert get(web, "cmd=syslog_check&key=new-key").text == "yes\n"
    assert get(web, "cmd=syslog_check&key=ancient-key").text == "no\n"


def test_syslog_check_without_a_log_says_no(web, host) -> None:
    assert get(web, "cmd=syslog_check&key=abcd1234").text == "no\n"


@pytest.mark.parametrize("key", ["", "ab", "a b c d", "x" * 200, "key%0Aline"])
def test_syslog_check_refuses_bad_keys(web, host, key: str) -> None:
    get(web, f"cmd=syslog_check&key={key}", status=400)


def test_selftest_report_stores_results_and_a_summary(web, store: FileStore, host) -> None:
    res = get(web, "cmd=selftest_report&results=api=pass|dns=fail:no+resolver|time=pass")
    assert res.text == "ok\n"
    items = store.items(host)
    assert items["SELFTEST_API"] == "pass"
    assert items["SELFTEST_DNS"] == "fail:no resolver"
    assert items["SELFTEST_RESULT"] == "fail"
    assert items["SELFTEST_AT"].endswith("Z")
    get(web, "cmd=selftest_report&results=api=pass")
    items = store.items(host)
    assert items["SELFTEST_RESULT"] == "pass" and "SELFTEST_DNS" not in items


@pytest.mark.parametrize("results", ["", "api", "api=maybe", "bad-name!=pass",
                                     "|".join(f"t{i}=pass" for i in range(40))])
def test_bad_selftest_reports_change_nothing(web, host, config_dir, snapshot, results) -> None:
    before = snapshot(config_dir)
    get(web, f"cmd=selftest_report&results={results}", status=400)
    assert snapshot(config_dir) == before


@pytest.fixture
def storage(store: FileStore) -> None:
    store.update(RecordId.of_cluster("default"), {
        "STORAGE_NETWORKS": "1", "STORAGE0_VLAN": "20", "STORAGE0_CIDR": "10.20.0.0/29",
        "STORAGE0_GATEWAY": "10.20.0.1", "STORAGE0_MTU": "9000"}, "t")


def test_a_storage_address_is_allocated_once_and_kept(web, store, host, storage) -> None:
    first = get(web, "cmd=host_allocate_networks&index=0").text
    assert first == "20:10.20.0.2:255.255.255.248:10.20.0.1:9000\n"
    assert get(web, "cmd=host_allocate_networks&index=0").text == first
    assert store.items(host)["STORAGE0_IP"] == "10.20.0.2"


def test_storage_addresses_are_distinct_and_run_out_clearly(web, store, storage) -> None:
    answers = []
    for n in range(6):
        mac = f"52:54:00:00:01:{n:02x}"
        store.update(RecordId.of_host("default", mac), {"STATE": "INSTALLED"}, "t", create=True)
        res = web.get(f"{URL}?cmd=host_allocate_networks&index=0&mac={mac}",
                      extra_environ={"REMOTE_ADDR": "192.0.2.1"}, status="*")
        answers.append((res.status_int, res.text.split(":")[1] if res.status_int == 200
                        else res.text))
    ips = [a[1] for a in answers if a[0] == 200]
    assert ips == ["10.20.0.2", "10.20.0.3", "10.20.0.4", "10.20.0.5", "10.20.0.6"]
    assert answers[-1][0] == 409 and "no free address" in answers[-1][1]


@pytest.mark.parametrize(("index", "status"), [("1", 404), ("x", 400), ("-1", 400), ("99", 400)])
def test_storage_network_bad_index(web, host, storage, index: str, status: int) -> None:
    get(web, f"cmd=host_allocate_networks&index={index}", status=status)


# the keys the bash-era IPS wrote (its cluster wizard, then `cluster_config set` on the IPS)
OLD_STORAGE_KEYS = {"network_storage_count": "2", "network_storage_base_vlan": "31",
                    "network_storage_mtu": "9000", "network_storage_subnet_base": "10.31",
                    "network_storage_subnet_cidr": "24",
                    "network_storage_vlan31_subnet": "10.31.0.0/24",
                    "network_storage_vlan31_gateway": "10.31.0.1",
                    "network_storage_vlan31_netmask": "255.255.255.0",
                    "network_storage_vlan31_allocated": "false",
                    "network_storage_vlan32_subnet": "10.31.1.0",
                    "network_storage_vlan32_gateway": "10.31.1.1",
                    "network_storage_vlan32_netmask": "255.255.255.0"}


@pytest.fixture
def old_storage(store: FileStore) -> None:
    store.update(RecordId.of_cluster("default"), OLD_STORAGE_KEYS, "t")


def test_a_cluster_configured_with_the_old_storage_keys_allocates(web, store, host,
                                                                   old_storage) -> None:
    assert get(web, "cmd=host_allocate_networks&index=0").text == \
        "31:10.31.0.2:255.255.255.0:10.31.0.1:9000\n"
    assert get(web, "cmd=host_allocate_networks&index=1").text == \
        "32:10.31.1.2:255.255.255.0:10.31.1.1:9000\n"
    assert store.items(host)["STORAGE1_IP"] == "10.31.1.2"
    get(web, "cmd=host_allocate_networks&index=2", status=404)


def test_old_storage_keys_skip_addresses_old_hosts_hold(web, store, host, old_storage) -> None:
    old = RecordId.of_host("default", "525400aabb09")
    store.update(old, {"STATE": "INSTALLED", "storage0_ip": "10.31.0.2"}, "t", create=True)
    assert get(web, "cmd=host_allocate_networks&index=0").text.split(":")[1] == "10.31.0.3"


@pytest.mark.parametrize(("change", "status"), [
    ({"network_storage_base_vlan": None}, 404),
    ({"network_storage_vlan31_subnet": None}, 404),
    ({"network_storage_count": "two"}, 400),
    ({"network_storage_vlan31_subnet": "10.31.0.0/99"}, 400),
])
def test_a_broken_old_storage_configuration_is_refused_and_nothing_written(
        web, store, host, old_storage, change, status) -> None:
    store.update(RecordId.of_cluster("default"), change, "t")
    before = store.items(host)
    get(web, "cmd=host_allocate_networks&index=0", status=status)
    assert store.items(host) == before

"""The boot commands over WebTest: init, process_menu_item (every item and alias), config_host."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from conftest import provide_os_files

from hps_api.settings import Settings
from hps_api.store import FileStore, Kind, RecordId

URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
JSON = {"Accept": "application/json"}
NEW = "52:54:00:aa:bb:77"
NEW12 = "525400aabb77"


@pytest.fixture(autouse=True)
def cluster(store: FileStore, settings: Settings) -> None:
    """A cluster with a network, and OS records for every type, their files in place."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_RANGE_START": "10.99.0.100",
        "DHCP_RANGE_END": "10.99.0.199", "MENU_TIMEOUT": "30", "ROOT_PASSWORD": "hunter2"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "t", create=True)
    store.update(RecordId.of_os("x86_64:alpine:3.20"), {
        "NAME": "alpine", "VERSION": "3.20", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "TCH", "REPO_PATH": "alpine/3.20", "KERNEL": "vmlinuz-lts",
        "INITRD": "initramfs-lts"}, "t", create=True)
    provide_os_files(settings.resources_dir, store)


def host_of(store: FileStore, mac: str = NEW) -> dict[str, str]:
    return store.items(RecordId.of_host("default", mac))


def init(web, mac: str = NEW, headers: dict[str, str] | None = None, **extra: str):
    query = "&".join(f"{k}={v}" for k, v in {"cmd": "init", "mac": mac, **extra}.items())
    return web.get(f"{URL}?{query}", headers=headers or IPXE,
                   extra_environ={"REMOTE_ADDR": "192.0.2.50"})


def menu(web, item: str, mac: str = NEW, status: int | str = 200, admin: bool = False):
    environ = {"REMOTE_ADDR": "127.0.0.1" if admin else "192.0.2.50"}
    return web.get(f"{URL}?cmd=process_menu_item&mac={mac}&menu_item={item}", headers=IPXE,
                   extra_environ=environ, status=status)


def test_a_new_mac_is_registered_and_gets_the_main_menu(web, store: FileStore) -> None:
    res = init(web, arch="arm64", platform="efi", serial="SN%201", uuid="1234-abcd")
    assert res.text.startswith("#!ipxe\n")
    assert "menu hps-api:" in res.text and "choose --timeout 30000 --default poll" in res.text
    host = host_of(store)
    assert host["STATE"] == "UNCONFIGURED"
    assert host["ARCH"] == "arm64"
    assert (host["PLATFORM"], host["SERIAL"], host["SMBIOS_UUID"]) == ("efi", "SN 1", "1234-abcd")
    assert host["FIRST_SEEN"] == host["LAST_SEEN"]
    assert len(host["BOOT_SESSION"]) == 6
    assert f"session={host['BOOT_SESSION']}" in res.text


def test_the_menu_polls_init_and_a_host_configured_meanwhile_gets_its_installer(
    web, store: FileStore, cli
) -> None:
    first = init(web)
    assert f"cmd=init&mac={NEW12}" in first.text
    assert cli("host_config", NEW, "set", "TYPE", "SCH").returncode == 0
    assert cli("host_config", NEW, "set", "STATE", "CONFIGURED").returncode == 0
    half = init(web)  # no HOSTNAME or IP yet: the kickstart could not be made, so no installer
    assert "HOSTNAME and IP not set" in half.text and "kernel " not in half.text
    assert "INSTALL_ATTEMPTS" not in host_of(store)
    assert cli("host_config", NEW, "set", "HOSTNAME", "sch-042").returncode == 0
    assert cli("host_config", NEW, "set", "IP", "10.99.0.42").returncode == 0
    assert cli("host_config", NEW, "set", "STATE", "CONFIGURED").returncode == 0
    second = init(web)
    assert "kernel http://localhost/distros/rocky/10/vmlinuz" in second.text
    assert "inst.ks=http://localhost/cgi-bin/boot_manager.sh?cmd=kickstart" in second.text
    assert host_of(store)["STATE"] == "INSTALLING"


def test_json_clients_get_the_decision_explained(web) -> None:
    res = init(web, headers=JSON, format="json")
    data = res.json["data"]
    assert (data["action"], data["template"]) == ("menu", "menu-main.ipxe")
    assert data["reason"].startswith("new host")
    assert data["script"].startswith("#!ipxe")


def test_an_accept_header_alone_does_not_turn_the_boot_script_into_json(web) -> None:
    res = init(web, headers={"User-Agent": "curl/8.5.0", **JSON})
    assert res.content_type == "text/plain"
    assert res.text.startswith("#!ipxe\n")


def test_an_installed_host_boots_locally(web, store: FileStore) -> None:
    init(web)
    store.update(RecordId.of_host("default", NEW), {"STATE": "INSTALLED"}, "t")
    assert "\nexit\n" in init(web).text


def test_three_boots_in_installing_without_a_report_fail_the_install(web, store) -> None:
    init(web)
    menu(web, "install_SCH")
    states = []
    for _ in range(3):
        init(web)
        states.append(host_of(store)["STATE"])
    assert states == ["INSTALLING", "INSTALLING", "INSTALL_FAILED"]
    assert "menu hps-api:" in init(web).text


def test_configuring_from_the_menu_allocates_and_serves_the_installer(web, store) -> None:
    init(web)
    res = menu(web, "install_SCH")
    assert "kernel http://localhost/distros/rocky/10/vmlinuz" in res.text
    host = host_of(store)
    assert (host["TYPE"], host["PROFILE"], host["OS_ID"]) == ("SCH", "DEFAULT", "x86_64:rocky:10")
    assert (host["HOSTNAME"], host["IP"], host["NETMASK"]) == ("sch-001", "10.99.0.2",
                                                               "255.255.255.0")
    assert host["STATE"] == "INSTALLING"


@pytest.mark.parametrize(("item", "expected"), [
    ("host_install_menu", "item install_SCH "),
    ("host_configure_menu", "item install_SCH "),
    ("show_host", "echo STATE=UNCONFIGURED"),
    ("show_cluster", "echo DHCP_IP=10.99.0.1"),
    ("show_ipxe", "${version}"),
    ("rescue", "/distros/rescue/vmlinuz"),
    ("local_boot", "\nexit\n"),
    ("disk_boot", "\nexit\n"),
    ("reboot", "\nreboot\n"),
    ("init_menu", "menu hps-api:"),
    ("poll", "menu hps-api:"),
    ("force_install_on", "menu hps-api:"),
    ("force_install_off", "menu hps-api:"),
    ("unmanage", "\nexit\n"),
    ("unconfigure", "menu hps-api:"),
    ("install_SCH", "inst.ks="),
    ("boot_SCH", "inst.ks="),
    ("install_sch", "inst.ks="),
])
def test_every_menu_item_answers_a_script(web, item: str, expected: str) -> None:
    init(web)
    res = menu(web, item)
    assert res.text.startswith("#!ipxe\n")
    assert expected in res.text


def test_menu_items_change_the_record_as_documented(web, store: FileStore) -> None:
    init(web)
    menu(web, "force_install_on")
    assert host_of(store)["FORCE_INSTALL"] == "yes"
    menu(web, "force_install_off")
    assert host_of(store)["FORCE_INSTALL"] == "no"
    menu(web, "install_SCH")
    store.update(RecordId.of_host("default", NEW), {"STATE": "INSTALL_FAILED"}, "t")
    menu(web, "unconfigure")
    host = host_of(store)
    assert host["STATE"] == "UNCONFIGURED" and "TYPE" not in host and "PROFILE" not in host
    assert (host["HOSTNAME"], host["IP"]) == ("sch-001", "10.99.0.2")
    menu(web, "unmanage")
    assert host_of(store)["STATE"] == "UNMANAGED"


def test_reinstall_from_the_menu_goes_straight_to_the_installer(web, store: FileStore) -> None:
    init(web)
    menu(web, "install_SCH")
    store.update(RecordId.of_host("default", NEW), {"STATE": "FAILED"}, "t")
    res = menu(web, "reinstall")
    assert "inst.ks=" in res.text
    assert host_of(store)["STATE"] == "INSTALLING"


def test_show_cluster_hides_sensitive_keys(web) -> None:
    init(web)
    assert "hunter2" not in menu(web, "show_cluster").text


def test_storage_dependent_types_are_offered_only_once_an_sch_is_installed(web, store) -> None:
    init(web)
    offered = menu(web, "host_install_menu").text
    assert "install_SCH " in offered and "install_TCH" not in offered
    menu(web, "install_TCH", status=200)  # iPXE: the refusal is an error script
    assert "TCH needs an INSTALLED SCH" in menu(web, "install_TCH").text
    store.update(RecordId.of_host("default", "52:54:00:aa:bb:01"),
                 {"TYPE": "SCH", "STATE": "INSTALLED"}, "t", create=True)
    offered = menu(web, "host_install_menu").text
    assert "item install_TCH " in offered and "item install_TCH_KVM " in offered
    res = menu(web, "install_TCH_KVM")
    assert "apkovl=" in res.text and "ip=10.99.0.2::10.99.0.1:255.255.255.0::eth0:none" in res.text
    host = host_of(store)
    assert (host["TYPE"], host["PROFILE"], host["STATE"]) == ("TCH", "KVM", "NETWORK_BOOT")
    assert host["HOSTNAME"] == "tch-001"


@pytest.mark.parametrize("item", ["install_XYZ", "frob", "install_SCH_NOPE", "../x", "boot_"])
def test_an_unknown_menu_item_is_404_for_scripts_and_an_error_script_for_ipxe(web, item) -> None:
    init(web)
    res = web.get(f"{URL}?cmd=process_menu_item&mac={NEW}&menu_item={item}",
                  extra_environ={"REMOTE_ADDR": "192.0.2.50"}, status=404)
    assert res.text.startswith("Unknown menu item: ")
    assert "sleep" in menu(web, item).text


def test_a_booted_node_cannot_reconfigure_itself_through_the_menu(web, store) -> None:
    init(web)
    store.update(RecordId.of_host("default", NEW), {"STATE": "INSTALLED"}, "t")
    web.get(f"{URL}?cmd=process_menu_item&mac={NEW}&menu_item=unmanage",
            extra_environ={"REMOTE_ADDR": "192.0.2.50"}, status=409)
    web.get(f"{URL}?cmd=config_host&mac={NEW}&hosttype=SCH",
            extra_environ={"REMOTE_ADDR": "192.0.2.50"}, status=409)
    assert host_of(store)["STATE"] == "INSTALLED"
    menu(web, "unmanage", admin=True)
    assert host_of(store)["STATE"] == "UNMANAGED"


def test_config_host_answers_the_legacy_line(web, store: FileStore) -> None:
    init(web)
    res = web.get(f"{URL}?cmd=config_host&mac={NEW}&hosttype=sch",
                  extra_environ={"REMOTE_ADDR": "192.0.2.50"})
    assert res.text == f"{NEW12} configured as SCH\n"
    assert host_of(store)["STATE"] == "CONFIGURED"


@pytest.mark.parametrize(("query", "status", "message"), [
    ("cmd=config_host", 400, "Param 'hosttype' is required"),
    ("cmd=config_host&hosttype=XYZ", 400, "unknown host type"),
    ("cmd=config_host&hosttype=SCH&profile=KVM", 400, "has no profile"),
    ("cmd=process_menu_item", 400, "Param 'menu_item' is required"),
])
def test_bad_boot_parameters_are_refused_and_change_nothing(web, config_dir, snapshot, query,
                                                            status, message) -> None:
    init(web)
    before = snapshot(config_dir)
    res = web.get(f"{URL}?{query}&mac={NEW}", extra_environ={"REMOTE_ADDR": "192.0.2.50"},
                  status=status)
    assert message in res.text
    assert snapshot(config_dir) == before


def test_a_new_host_with_a_bad_arch_is_refused_and_not_registered(web, config_dir,
                                                                  snapshot) -> None:
    before = snapshot(config_dir)
    res = web.get(f"{URL}?cmd=init&mac={NEW}&arch=x86%0A64",
                  extra_environ={"REMOTE_ADDR": "192.0.2.50"}, status=400)
    assert "invalid arch" in res.text
    assert snapshot(config_dir) == before


def test_an_exhausted_pool_is_a_clear_console_error(web, store: FileStore) -> None:
    store.update(RecordId.of_cluster("default"), {
        "NETWORK_CIDR": "10.99.0.0/29", "DHCP_RANGE_START": "10.99.0.4",
        "DHCP_RANGE_END": "10.99.0.6"}, "t")
    for n, mac in enumerate(["52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"]):
        init(web, mac=mac)
        res = menu(web, "install_SCH", mac=mac)
        if n < 2:
            assert "inst.ks=" in res.text
    assert "no free address left" in res.text
    ips = {store.items(r).get("IP") for r in store.list_records(Kind.HOST, "default")}
    assert ips == {"10.99.0.2", "10.99.0.3", None}


def test_a_known_mac_keeps_its_identity_when_configured_again(web, store: FileStore) -> None:
    init(web)
    menu(web, "install_SCH")
    store.update(RecordId.of_host("default", NEW), {"STATE": "FAILED"}, "t")
    menu(web, "unconfigure")
    menu(web, "install_SCH")
    host = host_of(store)
    assert (host["HOSTNAME"], host["IP"]) == ("sch-001", "10.99.0.2")


def _configure_in_a_process(config_dir: str, log_dir: str, macs: list[str]) -> None:
    import webtest

    from hps_api import create_app
    from hps_api.settings import Settings

    app = create_app(Settings(config_dir=Path(config_dir), log_dir=Path(log_dir),
                              arp_table=Path(log_dir) / "arp", dhcp_leases=Path(log_dir) / "l",
                              lock_timeout=30))
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "192.0.2.60"})
    for mac in macs:
        client.get(f"{URL}?cmd=init&mac={mac}")
        client.get(f"{URL}?cmd=config_host&mac={mac}&hosttype=SCH")


def test_concurrent_config_host_of_many_hosts_gives_distinct_names_and_ips(
    store: FileStore, config_dir: Path, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("fork")
    batches = [[f"52:54:00:10:{p:02x}:{i:02x}" for i in range(6)] for p in range(6)]
    workers = [ctx.Process(target=_configure_in_a_process,
                           args=(str(config_dir), str(tmp_path / "log"), batch))
               for batch in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    hosts = [store.items(r) for r in store.list_records(Kind.HOST, "default")]
    assert len(hosts) == 36
    assert all(h["STATE"] == "CONFIGURED" for h in hosts)
    assert len({h["HOSTNAME"] for h in hosts}) == 36
    assert len({h["IP"] for h in hosts}) == 36
    assert all(not 100 <= int(h["IP"].rsplit(".", 1)[1]) <= 199 for h in hosts)


# -- which writes of init are durable (docs/storage.md, "Writes") --------------------



def test_registering_a_new_host_is_a_durable_write(web, store, fsyncs) -> None:
    init(web)
    assert host_of(store)["STATE"] == "UNCONFIGURED"
    assert fsyncs == ["file", "dir"]


def test_the_boot_stamp_of_an_installed_host_goes_to_its_stamp_file_without_fsync(
    web, store, fsyncs, config_dir
) -> None:
    store.update(RecordId.of_host("default", NEW), {"STATE": "INSTALLED"}, "t", create=True)
    record = store.layout.path(RecordId.of_host("default", NEW))
    before = record.read_bytes()
    fsyncs.clear()
    assert "\nexit\n" in init(web).text
    host = host_of(store)
    assert fsyncs == [] and record.read_bytes() == before
    assert record.with_suffix(".stamp").is_file()
    assert host["STATE"] == "INSTALLED" and len(host["BOOT_SESSION"]) == 6
    journal = (config_dir / "clusters" / "default" / "journal.log").read_text()
    assert f'"new": "{host["BOOT_SESSION"]}"' in journal  # the session still shows in events


def test_a_boot_that_changes_the_state_is_a_durable_write(web, store, fsyncs) -> None:
    store.update(RecordId.of_host("default", NEW), {"STATE": "CONFIGURED", "TYPE": "SCH",
                 "HOSTNAME": "sch-001", "IP": "10.99.0.11"}, "t", create=True)
    fsyncs.clear()
    init(web)
    assert host_of(store)["STATE"] == "INSTALLING"
    assert fsyncs == ["file", "dir"]


def test_registering_a_new_host_lists_no_directory(web, store, monkeypatch) -> None:
    """With 10,000 hosts a registration must cost what it costs with ten: no directory scan."""

    def no_scan(*args: object, **kwargs: object) -> None:
        raise AssertionError("init scanned a directory")

    monkeypatch.setattr(os, "scandir", no_scan)
    monkeypatch.setattr(os, "listdir", no_scan)
    monkeypatch.setattr(FileStore, "list_records", no_scan)
    assert "menu hps-api:" in init(web).text
    assert host_of(store)["STATE"] == "UNCONFIGURED"


def test_a_menu_poll_is_part_of_the_same_boot(web, store: FileStore, monkeypatch) -> None:
    """The menu polls `init` naming its session: the same boot goes on (one session, no journal
    line per poll); a request naming no session, or another one, is a new boot."""
    import hps_api.boot.flow as flow

    clock = [1_800_000_000.0]
    monkeypatch.setattr(flow.time, "time", lambda: clock[0])
    first = init(web)
    session = host_of(store)["BOOT_SESSION"]
    assert f"cmd=init&mac={NEW12}&session={session}" in first.text  # the poll names it
    lines = len(store.history(RecordId.of_host("default", NEW)))
    for _ in range(3):
        clock[0] += 60
        assert f"session {session}" in init(web, session=session).text
    record = host_of(store)
    assert (record["BOOT_SESSION"], record["BOOT_TIME"]) == (session, "1800000000")
    assert len(store.history(RecordId.of_host("default", NEW))) == lines
    clock[0] += 60
    for other in ({}, {"session": "zzzzzz"}):
        init(web, **other)
        assert host_of(store)["BOOT_SESSION"] != session
        session = host_of(store)["BOOT_SESSION"]
        clock[0] += 60

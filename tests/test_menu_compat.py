"""Menus never loop: every menu id, ours and the old system's, answers a script that acts or
says why not and goes back to a menu (docs/boot.md, "Old menu ids").

Requests are made as iPXE makes them: the old menus chained
`boot_manager.sh?cmd=process_menu_item&mac=${mac:hexraw}&menu_item=${selection}` with iPXE's own
User-Agent.
"""

from __future__ import annotations

import re

import pytest
from conftest import provide_os_files

from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+ (g8ef5)"}
LAN = {"REMOTE_ADDR": "192.0.2.50"}
MAC = "525400aabb77"
SCH_MAC = "52:54:00:aa:bb:01"
#: what an error answered to iPXE says (error.ipxe): the request failed and is retried
RETRY = "Retrying in "
FETCH = re.compile(r"^\s*(chain|kernel|initrd|imgfetch|sanboot)\b")


@pytest.fixture(autouse=True)
def cluster(store: FileStore, settings: Settings) -> None:
    """A cluster with a network and an OS for every type."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_RANGE_START": "10.99.0.100",
        "DHCP_RANGE_END": "10.99.0.199", "MENU_TIMEOUT": "30"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "t", create=True)
    store.update(RecordId.of_os("x86_64:alpine:3.20"), {
        "NAME": "alpine", "VERSION": "3.20", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "TCH", "REPO_PATH": "alpine/3.20", "KERNEL": "vmlinuz-lts",
        "INITRD": "initramfs-lts"}, "t", create=True)
    provide_os_files(settings.resources_dir, store)


@pytest.fixture
def storage(store: FileStore) -> None:
    """An INSTALLED storage host, so that TCH, CCH and DRH are offered."""
    store.update(RecordId.of_host("default", SCH_MAC), {"TYPE": "SCH", "STATE": "INSTALLED"},
                 "t", create=True)


def init(web) -> str:
    res = web.get(f"{URL}?cmd=init&mac={MAC}&arch=x86_64", headers=IPXE, extra_environ=LAN)
    assert res.status_int == 200
    return check_script(res.text)


def choose(web, item: str) -> str:
    """Send a menu choice the way the old menus did; return the script (always HTTP 200)."""
    res = web.get(f"{URL}?cmd=process_menu_item&mac={MAC}&menu_item={item}", headers=IPXE,
                  extra_environ=LAN)
    assert res.status_int == 200
    return check_script(res.text)


def host(store: FileStore) -> dict[str, str]:
    return store.items(RecordId.of_host("default", MAC))


def check_script(script: str) -> str:
    """Return the script after checking it is whole: an iPXE script, no template left, every
    `goto` has its label, every fetch has a failure branch."""
    assert script.startswith("#!ipxe\n")
    assert "{{" not in script and "{%" not in script
    lines = script.splitlines()
    labels = {line[1:].strip() for line in lines if line.startswith(":")}
    for target in re.findall(r"\bgoto (\S+)", script):
        assert target in labels, f"goto {target} has no label"
    for line in lines:
        if FETCH.match(line):
            assert "||" in line, line
    return script


def returns_to_a_menu(script: str) -> bool:
    """True when the script chains init or the main menu (directly or from a menu)."""
    return bool(re.search(r"^chain --replace --autofree \S+cmd=(init&|process_menu_item&\S*"
                          r"menu_item=(init_menu|\$\{selected\}))", script, re.M))


def gaps(script: str) -> list[str]:
    return [line[len("item --gap "):] for line in script.splitlines()
            if line.startswith("item --gap ")]


def items(script: str) -> list[str]:
    return [line.split()[1] for line in script.splitlines()
            if line.startswith("item ") and not line.startswith("item --gap")]


#: what each kind of answer looks like
KINDS = {
    "main menu": "menu hps-api: ",
    "install menu": "menu hps-api: install ",
    "info": "menu_item=init_menu",
    "installer": "inst.ks=",
    "netboot": "apkovl=",
    "rescue": "/distros/rescue/vmlinuz",
    "localboot": "\nexit\n",
    "reboot": "\nreboot\n",
}
ACTS = {"installer", "netboot", "rescue", "localboot", "reboot"}
ZFS = "ZFS layouts are no longer chosen here"

# (revision, id, our answer, text the answer must show); the ids every iPXE menu of the old
# system sent, from its main, install and information menus at each revision
OLD_IDS: list[tuple[str, str, str, str]] = [
    ("cc44767", "init_menu", "main menu", "item host_install_menu "),
    ("cc44767", "host_install_menu", "install menu", "item install_SCH "),
    ("cc44767", "show_ipxe", "info", "${version}"),
    ("cc44767", "show_cluster", "info", "echo DHCP_IP=10.99.0.1"),
    ("cc44767", "show_host", "info", "echo STATE=UNCONFIGURED"),
    ("cc44767", "show_paths", "info", "echo boot script: http://localhost/boot.ipxe"),
    ("cc44767", "recover_DRH", "main menu", "Recovery from a disaster-recovery host is not"),
    ("cc44767", "rescue", "rescue", ""),
    ("cc44767", "local_boot", "localboot", ""),
    ("cc44767", "reboot", "reboot", ""),
    ("cc44767", "unmanage", "localboot", ""),
    ("cc44767", "unconfigure", "main menu", ""),
    ("cc44767", "reinstall", "install menu", "Reinstall: this host has no type yet"),
    ("cc44767", "force_install_on", "main menu", "FORCE_INSTALL=yes: no effect until"),
    ("cc44767", "force_install_off", "main menu", "FORCE_INSTALL=no"),
    ("cc44767", "install_SCH_STORAGESINGLE", "install menu", ZFS),
    ("cc44767", "install_SCH_STORAGERAID", "install menu", ZFS),
    ("cc44767", "install_SCH", "installer", ""),
    ("cc44767", "install_DRH", "installer", ""),
    ("cc44767", "install_TCH", "netboot", ""),
    ("cc44767", "install_TCH_KVM", "netboot", ""),
    ("cc44767", "install_TCH_DOCKER", "netboot", ""),
    ("cc44767", "install_TCH_BUILD", "netboot", ""),
    ("HEAD", "init_menu", "main menu", "item host_install_menu "),
    ("HEAD", "host_configure_menu", "install menu", "item install_SCH "),
    ("HEAD", "show_ipxe", "info", "${version}"),
    ("HEAD", "show_cluster", "info", "echo DHCP_IP=10.99.0.1"),
    ("HEAD", "show_host", "info", "echo STATE=UNCONFIGURED"),
    ("HEAD", "show_paths", "info", "echo distributions: http://localhost/distros/"),
    ("HEAD", "boot_NRB_DEFAULT", "rescue", ""),
    ("HEAD", "rescue", "rescue", ""),
    ("HEAD", "disk_boot", "localboot", ""),
    ("HEAD", "reboot", "reboot", ""),
    ("HEAD", "unmanage", "localboot", ""),
    ("HEAD", "unconfigure", "main menu", ""),
    ("HEAD", "reinstall", "install menu", "Reinstall: this host has no type yet"),
    ("HEAD", "force_install_on", "main menu", "FORCE_INSTALL=yes: no effect until"),
    ("HEAD", "force_install_off", "main menu", "FORCE_INSTALL=no"),
    ("HEAD", "boot_SCH_DEFAULT", "installer", ""),
    ("HEAD", "boot_DRH_DEFAULT", "installer", ""),
    ("HEAD", "boot_TCH_DEFAULT", "netboot", ""),
    ("HEAD", "boot_TCH_KVM", "netboot", ""),
    ("HEAD", "boot_TCH_DOCKER", "netboot", ""),
    ("HEAD", "boot_TCH_BUILD", "netboot", ""),
]


@pytest.mark.parametrize(("revision", "item", "kind", "shows"), OLD_IDS,
                         ids=[f"{rev}-{item}" for rev, item, *_ in OLD_IDS])
def test_every_old_menu_id_acts_or_returns_to_a_menu(web, storage, revision: str, item: str,
                                                      kind: str, shows: str) -> None:
    init(web)
    script = choose(web, item)
    assert RETRY not in script
    assert KINDS[kind] in script
    assert shows in script
    if kind not in ACTS:
        assert returns_to_a_menu(script), script


@pytest.mark.parametrize("item", ["install_SCH_STORAGESINGLE", "install_SCH_STORAGERAID",
                                  "recover_DRH", "show_paths", "boot_NRB_DEFAULT"])
def test_old_ids_with_no_counterpart_change_nothing(web, store: FileStore, item: str) -> None:
    init(web)
    before = host(store)
    choose(web, item)
    assert host(store) == before


@pytest.mark.parametrize("item", ["install_SCH_STORAGESINGLE", "install_SCH_STORAGERAID"])
def test_the_old_zfs_layout_choices_say_why_and_offer_sch(web, item: str) -> None:
    init(web)
    script = choose(web, item)
    assert any(ZFS in line for line in gaps(script))
    assert "install_SCH" in items(script) and "init_menu" in items(script)


@pytest.mark.parametrize("item", ["install_TCH", "install_TCH_KVM", "install_DRH",
                                  "boot_TCH_DEFAULT", "boot_DRH_DEFAULT", "install_CCH"])
def test_types_that_need_storage_answer_the_install_menu_saying_why_before_an_sch(
    web, store: FileStore, item: str
) -> None:
    init(web)
    script = choose(web, item)
    assert KINDS["install menu"] in script and RETRY not in script
    assert any("needs an INSTALLED SCH first" in line for line in gaps(script))
    assert any("offered once a SCH is INSTALLED" in line for line in gaps(script))
    assert items(script) == ["install_SCH", "init_menu"]
    assert host(store)["STATE"] == "UNCONFIGURED" and "TYPE" not in host(store)


# -- reinstall without a type (issue: "host type '(none)' is not known" every 30 s) ---------


def test_reinstall_without_a_type_answers_the_install_menu_and_init_the_main_menu(
    web, store: FileStore
) -> None:
    init(web)
    script = choose(web, "reinstall")
    assert "Reinstall: this host has no type yet: choose one in the install menu" in gaps(script)
    assert host(store)["STATE"] == "UNCONFIGURED"
    for _ in range(3):
        again = init(web)
        assert "menu hps-api: " in again and RETRY not in again
        assert "is not known" not in again
        assert "item reinstall" not in again


def test_a_host_set_to_reinstall_without_a_type_gets_the_main_menu_saying_why(
    web, store: FileStore
) -> None:
    init(web)
    store.update(RecordId.of_host("default", MAC), {"STATE": "REINSTALL"}, "admin:cli")
    script = init(web)
    assert RETRY not in script
    assert "REINSTALL: this host has no type yet: choose one in the install menu" in gaps(script)
    assert host(store)["STATE"] == "UNCONFIGURED"
    assert "item reinstall" not in script
    assert "menu hps-api: " in init(web)
    assert "install_SCH" in items(choose(web, "host_install_menu"))


def test_the_menu_of_a_host_without_a_type_offers_no_reinstall(web, store: FileStore) -> None:
    menu = init(web)
    assert "reinstall" not in items(menu)
    assert "force_install_on" not in items(menu) and "unconfigure" not in items(menu)
    choose(web, "install_SCH")
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALL_FAILED"}, "t")
    menu = init(web)
    assert "reinstall" in items(menu) and "Reinstall as SCH/DEFAULT" in menu
    assert "inst.ks=" in choose(web, "reinstall")
    assert host(store)["STATE"] == "INSTALLING"


def test_a_host_whose_os_record_is_gone_waits_at_the_main_menu_saying_why(
    web, store: FileStore
) -> None:
    init(web)
    assert "inst.ks=" in choose(web, "install_SCH")
    store.delete(RecordId.of_os("x86_64:rocky:10"), "admin:cli")
    script = init(web)
    assert RETRY not in script and "menu hps-api: " in script
    assert any("x86_64:rocky:10 (this host's OS_ID) has no record" in g for g in gaps(script))
    assert host(store)["STATE"] == "INSTALL_FAILED"
    assert "reinstall" not in items(script)
    refused = choose(web, "reinstall")
    assert any(g.startswith("Reinstall: OS x86_64:rocky:10") for g in gaps(refused))
    offered = choose(web, "host_install_menu")
    assert "install_SCH" not in items(offered)
    assert any("no OS for SCH on x86_64" in line for line in gaps(offered))
    again = init(web)
    assert "menu hps-api: " in again and host(store)["STATE"] == "INSTALL_FAILED"


def test_a_type_chosen_without_an_os_answers_the_install_menu_saying_why(
    web, store: FileStore
) -> None:
    init(web)
    store.delete(RecordId.of_os("x86_64:rocky:10"), "admin:cli")
    script = choose(web, "boot_SCH_DEFAULT")
    assert RETRY not in script and KINDS["install menu"] in script
    assert any("no OS for SCH on x86_64" in line for line in gaps(script))
    assert host(store)["STATE"] == "UNCONFIGURED"


def test_a_forced_install_waiting_for_an_os_starts_once_the_os_is_back(
    web, store: FileStore
) -> None:
    init(web)
    choose(web, "install_SCH")
    rid = RecordId.of_host("default", MAC)
    store.update(rid, {"STATE": "INSTALLED", "FORCE_INSTALL": "yes"}, "admin:cli")
    rocky = store.items(RecordId.of_os("x86_64:rocky:10"))
    store.delete(RecordId.of_os("x86_64:rocky:10"), "admin:cli")
    waiting = init(web)
    assert "menu hps-api: " in waiting and "force_install_off" in items(waiting)
    assert host(store)["STATE"] == "INSTALL_FAILED"
    store.update(RecordId.of_os("x86_64:rocky:10"), rocky, "admin:cli", create=True)
    assert "inst.ks=" in init(web)
    assert host(store)["STATE"] == "INSTALLING" and "FORCE_INSTALL" not in host(store)


def test_the_install_menu_is_not_offered_to_a_host_outside_a_menu_state(
    web, store: FileStore
) -> None:
    init(web)
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED"}, "t")
    script = choose(web, "host_configure_menu")
    assert "Installing is offered while the host waits at its menu, not in INSTALLED." in \
        gaps(script)
    assert not {"host_install_menu", "reinstall", "unconfigure", "unmanage"} & set(items(script))
    assert returns_to_a_menu(script)


# -- what our own menus offer ------------------------------------------------------------------


def _reset(store: FileStore, record: dict[str, str]) -> None:
    rid = RecordId.of_host("default", MAC)
    now = store.items(rid)
    store.update(rid, {**{k: None for k in now if k not in record}, **record}, "t")


@pytest.mark.parametrize("setup", ["new host", "failed SCH", "SCH without OS", "TCH offered"])
def test_every_item_our_menus_offer_succeeds(web, store: FileStore, setup: str) -> None:
    """A menu never offers an item that cannot succeed: each one, chosen from the state the
    menu was served in, answers neither an error nor a refusal."""
    init(web)
    if setup != "new host":
        choose(web, "install_SCH")
        store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALL_FAILED"}, "t")
    if setup == "SCH without OS":
        store.delete(RecordId.of_os("x86_64:rocky:10"), "t")
    if setup == "TCH offered":
        store.update(RecordId.of_host("default", SCH_MAC), {"TYPE": "SCH",
                     "STATE": "INSTALLED"}, "t", create=True)
    main = init(web)
    record = host(store)
    offered = items(main) + items(choose(web, "host_install_menu"))
    assert offered
    for item in offered:
        _reset(store, record)
        script = choose(web, item)
        assert RETRY not in script, item
        assert "is not offered in state" not in script, item

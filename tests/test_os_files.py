"""An OS record's files must exist (docs/boot.md, "The OS's files"): `init` sends no host to an
installer or a diskless boot whose kernel or initrd `/distros/` would answer 404; the host waits
at its menu saying which file, explain and the host page say it, a reinstall is refused with it,
and the IPS self-test names every missing file."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import provide_os_files

from hps_api.boot.decide import BootInputs, decide
from hps_api.boot.flow import missing_os_files
from hps_api.model.catalog import load_catalog
from hps_api.ops.selftest import run_selftest
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+ (g8ef5)"}
LAN = {"REMOTE_ADDR": "192.0.2.50"}
ADMIN = {"REMOTE_ADDR": "127.0.0.1"}
CURL = {"User-Agent": "curl/8.5.0"}
MAC, MAC12 = "52:54:00:aa:bb:41", "525400aabb41"
HOST = RecordId.of_host("default", MAC)
ROCKY = RecordId.of_os("x86_64:rocky:10")
KERNEL = "/distros/rocky/10/images/pxeboot/vmlinuz"
INITRD = "/distros/rocky/10/images/pxeboot/initrd.img"


@pytest.fixture(autouse=True)
def cluster(store: FileStore, settings: Settings) -> None:
    """A cluster with a network, Rocky for the disk types and Alpine for TCH, both with their
    files in place, and a host configured as SCH."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "MENU_TIMEOUT": "30"}, "t")
    store.update(ROCKY, {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,CCH,DRH", "REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
        "INITRD": "images/pxeboot/initrd.img"}, "t", create=True)
    store.update(RecordId.of_os("x86_64:alpine:3.20"), {
        "NAME": "alpine", "VERSION": "3.20", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "TCH", "REPO_PATH": "alpine/3.20", "KERNEL": "boot/vmlinuz-lts",
        "INITRD": "boot/initramfs-lts"}, "t", create=True)
    provide_os_files(settings.resources_dir, store)
    store.update(HOST, {"STATE": "CONFIGURED", "TYPE": "SCH", "PROFILE": "DEFAULT",
                        "OS_ID": "x86_64:rocky:10", "HOSTNAME": "sch-041", "IP": "10.99.0.41",
                        "NETMASK": "255.255.255.0", "ARCH": "x86_64"}, "t", create=True)


def distros(settings: Settings, url_path: str) -> Path:
    return settings.resources_dir / url_path.removeprefix("/")


def init(web, **extra: str) -> str:  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, v in {"cmd": "init", "mac": MAC, **extra}.items())
    return str(web.get(f"{URL}?{query}", headers=IPXE, extra_environ=LAN).text)


def items(script: str) -> list[str]:
    return [line.split()[1] for line in script.splitlines()
            if line.startswith("item ") and not line.startswith("item --gap")]


def test_a_missing_kernel_keeps_the_host_at_its_menu_saying_which_file(
        web, store: FileStore, settings: Settings) -> None:
    distros(settings, KERNEL).unlink()
    web.get(KERNEL, headers=CURL, extra_environ=LAN, status=404)  # the file the check names
    script = init(web)
    assert "\nkernel " not in script and "menu hps-api: sch-041 is INSTALL_FAILED" in script
    assert f"{KERNEL} not found under HPS_RESOURCES_DIR" in script
    record = store.items(HOST)
    assert record["STATE"] == "INSTALL_FAILED" and "INSTALL_ATTEMPTS" not in record
    assert {"reinstall", "force_install_on"}.isdisjoint(items(script))


def test_once_the_file_is_there_a_reinstall_serves_the_installer(
        web, cli, store: FileStore, settings: Settings) -> None:
    kernel = distros(settings, KERNEL)
    kept = kernel.read_bytes()
    kernel.unlink()
    init(web)
    refused = cli("host_config", MAC, "reinstall")
    assert refused.returncode == 2 and KERNEL in refused.stderr
    assert store.items(HOST)["STATE"] == "INSTALL_FAILED"
    kernel.write_bytes(kept)
    assert web.get(KERNEL, headers=IPXE, extra_environ=LAN).body == kept
    assert cli("host_config", MAC, "reinstall").returncode == 0
    script = init(web)
    assert f"kernel http://localhost{KERNEL} " in script
    assert "inst.ks=" in script and store.items(HOST)["STATE"] == "INSTALLING"


def test_a_missing_initrd_blocks_a_diskless_boot_too(web, store: FileStore,
                                                     settings: Settings) -> None:
    store.update(HOST, {"TYPE": "TCH", "OS_ID": "x86_64:alpine:3.20", "STATE": "NETWORK_BOOT"}, "t")
    distros(settings, "/distros/alpine/3.20/boot/initramfs-lts").unlink()
    script = init(web)
    assert "apkovl=" not in script
    assert "/distros/alpine/3.20/boot/initramfs-lts not found" in script
    assert store.items(HOST)["STATE"] == "INSTALL_FAILED"


def test_a_host_that_boots_from_disk_does_not_care(web, store: FileStore,
                                                   settings: Settings) -> None:
    store.update(HOST, {"STATE": "INSTALLED"}, "t")
    distros(settings, KERNEL).unlink()
    assert "\nexit" in init(web)
    assert store.items(HOST)["STATE"] == "INSTALLED"


def test_explain_names_both_files_and_writes_nothing(web, settings: Settings, config_dir: Path,
                                                     snapshot) -> None:  # type: ignore[no-untyped-def]
    distros(settings, KERNEL).unlink()
    distros(settings, INITRD).unlink()
    before = snapshot(config_dir)
    data = web.get(f"/api/v1/hosts/{MAC12}/boot", headers=CURL, extra_environ=ADMIN).json["data"]
    assert (data["action"], data["changes"]) == ("menu", {"STATE": "INSTALL_FAILED"})
    assert f"{KERNEL} and {INITRD} not found under HPS_RESOURCES_DIR: copy them there" in \
        data["reason"]
    assert snapshot(config_dir) == before


def test_the_host_page_and_the_api_refuse_a_reinstall_saying_why(
        web, store: FileStore, settings: Settings) -> None:
    store.update(HOST, {"STATE": "INSTALLED"}, "t")
    distros(settings, INITRD).unlink()
    page = web.get(f"/hosts/{MAC12}", extra_environ=ADMIN).text
    assert f"{INITRD} not found" not in page  # INSTALLED boots from disk: nothing to say
    answer = web.post(f"/api/v1/hosts/{MAC12}/reinstall", headers=CURL, extra_environ=ADMIN,
                      status=409)
    assert f"{INITRD} not found" in answer.json["error"]["message"]
    store.update(HOST, {"STATE": "CONFIGURED"}, "t")
    page = web.get(f"/hosts/{MAC12}", extra_environ=ADMIN).text
    assert f"{INITRD} not found under HPS_RESOURCES_DIR" in page.split("<h2>Boot sessions")[0]


def test_the_self_test_names_every_missing_file_of_an_os_in_use(
        store: FileStore, settings: Settings) -> None:
    def check() -> tuple[bool, str]:
        found = {c.name: (c.ok, c.detail) for c in run_selftest(store, settings)}
        return found["os_files"]

    assert check() == (True, f"kernel and initrd of 2 OS record(s) in "
                             f"{settings.resources_dir / 'distros'}")
    distros(settings, KERNEL).unlink()
    ok, detail = check()
    assert not ok and f"x86_64:rocky:10: {KERNEL}" in detail
    store.update(ROCKY, {"STATUS": "retired"}, "t")  # a retired OS may lose its files
    assert check() == (True, f"kernel and initrd of 1 OS record(s) in "
                             f"{settings.resources_dir / 'distros'}")


@pytest.mark.parametrize(("record", "present", "missing"), [
    ({"REPO_PATH": "r", "KERNEL": "k", "INITRD": "i"}, ["r/k", "r/i"], ()),
    ({"REPO_PATH": "/r/", "KERNEL": "k", "INITRD": "i"}, ["r/k", "r/i"], ()),
    ({"REPO_PATH": "r"}, ["r/vmlinuz", "r/initrd.img"], ()),
    ({"REPO_PATH": "r", "KERNEL": "k", "INITRD": "i"}, ["r/k"], ("/distros/r/i",)),
    ({"REPO_PATH": "r", "KERNEL": "k", "INITRD": "i"}, ["r/k", "r/i/"], ("/distros/r/i",)),
    ({"REPO_PATH": "r", "KERNEL": "../outside", "INITRD": "i"}, ["r/i"],
     ("/distros/r/../outside",)),
    ({"REPO_PATH": "", "KERNEL": "k", "INITRD": "i"}, ["k", "i"], ("/distros//k", "/distros//i")),
], ids=["both", "slashes", "defaults", "no-initrd", "a-directory", "dot-dot", "no-repo"])
def test_which_files_count_as_missing(tmp_path: Path, record: dict[str, str], present: list[str],
                                      missing: tuple[str, ...]) -> None:
    (tmp_path / "outside").write_text("not under distros")
    for name in present:
        path = tmp_path / "distros" / name
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
    assert missing_os_files(record, tmp_path) == missing


def decision(host: dict[str, str], missing: tuple[str, ...]):  # type: ignore[no-untyped-def]
    return decide(BootInputs(
        mac=MAC12, host=host, cluster={"DHCP_IP": "10.99.0.1"}, types=load_catalog(),
        os_id="x86_64:rocky:10", os={"REPO_PATH": "rocky/10"}, base_url="http://10.99.0.1",
        session="abcdef", now="", missing_files=missing))


@pytest.mark.parametrize(("host", "missing", "action", "state"), [
    ({"STATE": "CONFIGURED", "TYPE": "SCH", "HOSTNAME": "s", "IP": "10.99.0.5"}, (), "install",
     "INSTALLING"),
    ({"STATE": "CONFIGURED", "TYPE": "SCH", "HOSTNAME": "s", "IP": "10.99.0.5"}, ("/k",), "menu",
     "INSTALL_FAILED"),
    ({"STATE": "INSTALLING", "TYPE": "SCH", "HOSTNAME": "s", "IP": "10.99.0.5",
      "INSTALL_ATTEMPTS": "1"}, ("/k",), "menu", "INSTALL_FAILED"),
    ({"STATE": "CONFIGURED", "TYPE": "SCH"}, ("/k",), "menu", "UNCONFIGURED"),  # configure first
    ({"STATE": "INSTALLED", "TYPE": "SCH"}, ("/k",), "localboot", None),
    ({"STATE": "REINSTALL", "TYPE": "SCH", "HOSTNAME": "s", "IP": "10.99.0.5",
      "RESCUE": "yes"}, ("/k",), "rescue", None),
], ids=["files-there", "files-missing", "installing", "identity-first", "installed", "rescue"])
def test_decide_blocks_an_install_on_the_files_the_caller_found_missing(
        host: dict[str, str], missing: tuple[str, ...], action: str, state: str | None) -> None:
    found = decision(host, missing)
    assert (found.action, found.changes.get("STATE")) == (action, state)


def test_init_of_an_installed_host_does_not_look_for_its_os_files(
        web, store: FileStore, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from hps_api.boot import flow

    looked: list[str] = []
    real = flow._is_served
    monkeypatch.setattr(flow, "_is_served", lambda root, rel: looked.append(rel) or real(root, rel))
    store.update(HOST, {"STATE": "INSTALLED"}, "t")
    assert "booting from the local disk" in init(web)
    assert looked == []  # a local boot is the same answer with or without them
    store.update(HOST, {"STATE": "CONFIGURED"}, "t")
    init(web)
    assert looked == ["rocky/10/images/pxeboot/vmlinuz", "rocky/10/images/pxeboot/initrd.img"]

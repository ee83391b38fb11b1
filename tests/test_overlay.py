"""The Alpine boot overlay of a diskless host: its contents, and the `apkovl` command."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from hps_api.boot.overlay import build_apkovl, overlay_files
from hps_api.store import FileStore, RecordId

HOST = {"HOSTNAME": "tch-001", "IP": "10.99.0.7", "NETMASK": "255.255.255.0", "TYPE": "TCH",
        "PROFILE": "KVM"}
CLUSTER = {"DHCP_IP": "10.99.0.1", "DNS_DOMAIN": "lab.local"}


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read(data: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read().decode()


@pytest.fixture
def overlay() -> bytes:
    return build_apkovl(overlay_files("525400aabb07", HOST, CLUSTER, "http://10.99.0.1:8080",
                                      "abc123", "http://10.99.0.1:8080/distros/alpine/3.20"))


def test_the_overlay_configures_hostname_address_and_packages(overlay: bytes) -> None:
    assert read(overlay, "etc/hostname") == "tch-001\n"
    interfaces = read(overlay, "etc/network/interfaces")
    assert "address 10.99.0.7" in interfaces and "gateway 10.99.0.1" in interfaces
    assert "qemu-system-x86_64" in read(overlay, "etc/apk/world")
    assert read(overlay, "etc/apk/repositories") == \
        "http://10.99.0.1:8080/distros/alpine/3.20/apks\n"
    assert read(overlay, "etc/hps/api") == "http://10.99.0.1:8080\n"
    assert "tch-001.lab.local" in read(overlay, "etc/hosts")


def test_the_start_script_is_executable_valid_sh_and_reports_in(overlay: bytes, tmp_path) -> None:
    entries = members(overlay)
    assert entries["etc/local.d/hps.start"].mode == 0o755
    script = read(overlay, "etc/local.d/hps.start")
    assert "status=NETWORK_BOOT&mac=$mac" in script
    (tmp_path / "hps.start").write_text(script)
    subprocess.run(["sh", "-n", str(tmp_path / "hps.start")], check=True)


def test_the_local_service_is_enabled_by_a_runlevel_link(overlay: bytes) -> None:
    link = members(overlay)["etc/runlevels/default/local"]
    assert link.issym() and link.linkname == "/etc/init.d/local"


def test_every_member_is_owned_by_root_and_stays_inside_etc(overlay: bytes) -> None:
    for name, info in members(overlay).items():
        assert name == "etc" or name.startswith("etc/")
        assert (info.uid, info.gid, info.mtime) == (0, 0, 0)


def test_the_overlay_is_deterministic(overlay: bytes) -> None:
    again = build_apkovl(overlay_files("525400aabb07", HOST, CLUSTER, "http://10.99.0.1:8080",
                                       "abc123", "http://10.99.0.1:8080/distros/alpine/3.20"))
    assert again == overlay


def test_the_apkovl_command_serves_a_diskless_hosts_overlay(web, store: FileStore) -> None:
    store.update(RecordId.of_os("x86_64:alpine:3.20"), {"REPO_PATH": "alpine/3.20"}, "t",
                 create=True)
    rid = RecordId.of_host("default", "52:54:00:aa:bb:07")
    store.update(rid, {**HOST, "STATE": "NETWORK_BOOT", "OS_ID": "x86_64:alpine:3.20"}, "t",
                 create=True)
    res = web.get("/cgi-bin/boot_manager.sh?cmd=apkovl&mac=525400aabb07",
                  extra_environ={"REMOTE_ADDR": "192.0.2.7"}, headers={"User-Agent": "Wget"})
    assert res.content_type == "application/gzip"
    assert read(res.body, "etc/hostname") == "tch-001\n"


def test_apkovl_for_a_disk_host_is_a_conflict(web, store: FileStore, host) -> None:
    store.update(host, {"TYPE": "SCH"}, "t")
    web.get("/cgi-bin/boot_manager.sh?cmd=apkovl&mac=525400aabb01",
            extra_environ={"REMOTE_ADDR": "192.0.2.7"}, status=409)

"""scripts/build-rescue-image: a Debian kernel and a busybox initramfs, checked byte by byte.

The image is built once per session from the real Debian packages (`apt-get download`, cached in
var/cache/debs) into the session's temporary directory; test_lab.py boots the same build.
"""

from __future__ import annotations

import gzip
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts" / "build-rescue-image"
BUILD_TOOLS = ("apt-get", "apt-cache", "dpkg-deb", "cpio", "gzip")
NIC_MODULES = ("virtio.ko", "virtio_ring.ko", "virtio_pci.ko", "failover.ko", "net_failover.ko",
               "virtio_net.ko")


@dataclass(frozen=True)
class Entry:
    """One member of a newc cpio archive."""

    mode: int
    data: bytes


def missing_build_tools() -> list[str]:
    """Return the build's tools that are not installed."""
    missing = [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]
    if shutil.which("modinfo") is None and not Path("/sbin/modinfo").exists():
        missing.append("modinfo (kmod)")
    return missing


def build_rescue(outdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the build script into `outdir`; skip loudly when its tools are missing."""
    missing = missing_build_tools()
    if missing:
        pytest.skip(f"RESCUE IMAGE NOT TESTED: install {', '.join(missing)} "
                    "(scripts/test does, as root)")
    return subprocess.run([str(BUILD), *args, str(outdir)], capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture(scope="session")
def rescue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rescue image, built once for the session (test_lab.py reuses the same directory)."""
    outdir = tmp_path_factory.getbasetemp() / "rescue-image"
    result = build_rescue(outdir)
    assert result.returncode == 0, result.stderr
    return outdir


@pytest.fixture(scope="session")
def initrd(rescue_dir: Path) -> dict[str, Entry]:
    """The members of initrd.img by path (no leading `./`)."""
    return read_newc(gzip.decompress((rescue_dir / "initrd.img").read_bytes()))


def read_newc(data: bytes) -> dict[str, Entry]:
    """Return the members of a `newc` cpio archive (asserting the format as it goes)."""
    entries: dict[str, Entry] = {}
    pos = 0
    while True:
        header = data[pos:pos + 110]
        assert header[:6] == b"070701", f"not a newc header at offset {pos}"
        fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos:pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries[name.removeprefix("./")] = Entry(mode, body)


def test_the_kernel_is_a_bzimage(rescue_dir: Path) -> None:
    kernel = (rescue_dir / "vmlinuz").read_bytes()
    assert kernel[0x202:0x206] == b"HdrS"
    assert kernel[0x1FE:0x200] == b"\x55\xaa"


def test_the_initrd_is_a_gzip_newc_cpio_owned_by_root(rescue_dir: Path,
                                                       initrd: dict[str, Entry]) -> None:
    assert (rescue_dir / "initrd.img").read_bytes()[:2] == b"\x1f\x8b"
    assert "init" in initrd and "bin/busybox" in initrd


def test_init_is_an_executable_posix_script_that_parses(initrd: dict[str, Entry],
                                                       tmp_path: Path) -> None:
    init = initrd["init"]
    assert stat.S_ISREG(init.mode) and init.mode & 0o111
    assert init.data.startswith(b"#!/bin/sh\n")
    assert init.data == (REPO / "scripts/lab/rescue/init").read_bytes()
    script = tmp_path / "init"
    script.write_bytes(init.data)
    for shell in ("sh", "dash", "busybox"):
        if shutil.which(shell):
            argv = [shell, "sh", "-n"] if shell == "busybox" else [shell, "-n"]
            checked = subprocess.run([*argv, str(script)], capture_output=True, text=True,
                                     timeout=30)
            assert checked.returncode == 0, f"{shell}: {checked.stderr}"


def test_init_reads_the_hps_keys_from_the_kernel_command_line(initrd: dict[str, Entry]) -> None:
    text = initrd["init"].data.decode()
    for key in ("hps_api=", "hps_session=", "hps_mac=", "hps_poweroff="):
        assert key in text
    assert "/proc/cmdline" in text
    assert "cmd=node_get_bootstrap_functions" in text
    assert "cmd=log_message&message=rescue+image+up&function=rescue_init" in text
    assert "HPS-RESCUE-READY" in text


def test_busybox_is_static_with_an_applet_link_for_each_tool_init_uses(
        initrd: dict[str, Entry]) -> None:
    busybox = initrd["bin/busybox"]
    assert busybox.data[:4] == b"\x7fELF" and busybox.mode & 0o111
    assert not has_interpreter(busybox.data), "busybox must be static: no ELF interpreter"
    for applet in ("bin/sh", "sbin/udhcpc", "sbin/insmod", "usr/bin/wget", "sbin/ip",
                   "bin/mount", "sbin/poweroff", "bin/cttyhack", "usr/bin/timeout"):
        entry = initrd[applet]
        assert stat.S_ISLNK(entry.mode), applet
        assert entry.data == b"/bin/busybox", applet


def has_interpreter(elf: bytes) -> bool:
    """Return True when a 64-bit little-endian ELF file has a PT_INTERP program header."""
    phoff = int.from_bytes(elf[0x20:0x28], "little")
    size, count = (int.from_bytes(elf[o:o + 2], "little") for o in (0x36, 0x38))
    types = [int.from_bytes(elf[phoff + i * size:phoff + i * size + 4], "little")
             for i in range(count)]
    return 3 in types


def test_the_udhcpc_script_is_there_executable_and_parses(initrd: dict[str, Entry],
                                                         tmp_path: Path) -> None:
    entry = initrd["etc/udhcpc.script"]
    assert stat.S_ISREG(entry.mode) and entry.mode & 0o111
    script = tmp_path / "udhcpc.script"
    script.write_bytes(entry.data)
    assert subprocess.run(["sh", "-n", str(script)], timeout=30).returncode == 0


def test_the_nic_modules_and_their_dependencies_load_in_dependency_order(
        initrd: dict[str, Entry], rescue_dir: Path) -> None:
    order = initrd["lib/modules/load.order"].data.decode().split()
    for name in NIC_MODULES:
        module = initrd[f"lib/modules/{name}"]
        assert module.data[:4] == b"\x7fELF", f"{name} is not an uncompressed ELF module"
        assert name in order
    before = order.index
    assert before("failover.ko") < before("net_failover.ko") < before("virtio_net.ko")
    assert before("virtio.ko") < before("virtio_net.ko")
    assert before("virtio_ring.ko") < before("virtio_net.ko")
    kernel_version = manifest(rescue_dir)["KERNEL_VERSION"]
    assert f"vermagic={kernel_version} ".encode() in initrd["lib/modules/virtio_net.ko"].data


def manifest(rescue_dir: Path) -> dict[str, str]:
    """Return rescue.conf's keys."""
    lines = (rescue_dir / "rescue.conf").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_manifest_names_kernel_packages_modules_and_build_date(rescue_dir: Path) -> None:
    keys = manifest(rescue_dir)
    assert keys["KERNEL"] == "vmlinuz" and keys["INITRD"] == "initrd.img"
    assert keys["KERNEL_VERSION"].endswith("-cloud-amd64")
    assert keys["KERNEL_PACKAGE"].startswith(f"linux-image-{keys['KERNEL_VERSION']} ")
    assert keys["BUSYBOX_PACKAGE"].startswith("busybox-static ")
    assert "virtio_net.ko" in keys["MODULES"].split()
    assert keys["CMDLINE_KEYS"] == "hps_api hps_session hps_mac hps_poweroff"
    assert len(keys["BUILD_DATE"]) == 20 and keys["BUILD_DATE"].endswith("Z")


def test_the_initramfs_stays_small(rescue_dir: Path) -> None:
    assert (rescue_dir / "initrd.img").stat().st_size < 4 * 1024 * 1024


def test_a_second_build_from_the_same_inputs_changes_nothing(rescue_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in rescue_dir.iterdir()}
    again = build_rescue(rescue_dir)
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in rescue_dir.iterdir()} == before


def test_a_forced_rebuild_is_byte_identical(rescue_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "rebuilt"
    rebuilt = build_rescue(copy, "--force")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "apt-get download" not in rebuilt.stderr  # the .debs came from the cache
    for name in ("vmlinuz", "initrd.img"):
        assert (copy / name).read_bytes() == (rescue_dir / name).read_bytes(), name


@pytest.mark.parametrize("args", [["--bogus"], ["one", "two"]])
def test_bad_usage_exits_2(args: list[str]) -> None:
    result = subprocess.run([str(BUILD), *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("build-rescue-image: ")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="apt-get install shellcheck")
def test_the_rescue_and_lab_scripts_pass_shellcheck() -> None:
    rescue = REPO / "scripts" / "lab" / "rescue"
    for argv in (["-s", "sh", str(rescue / "init"), str(rescue / "udhcpc.script")],
                 [str(BUILD)], ["-x", str(REPO / "scripts" / "pxe-lab")]):
        checked = subprocess.run(["shellcheck", *argv], capture_output=True, text=True,
                                 timeout=60)
        assert checked.returncode == 0, checked.stdout

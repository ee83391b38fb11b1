"""The store when the disk says no: a journal that cannot be written, a full or read-only
filesystem (docs/storage.md, "When the disk says no").

A change and its journal line happen together or not at all; a store that cannot be written
answers 503 (an iPXE client: the retry script) or exit 3 with one line saying so, never
"internal error", and nothing on disk changes but lock files.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import provide_os_files

from hps_api.errors import StoreUnavailable
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

MAC = "52:54:00:aa:bb:01"
MAC12 = "525400aabb01"
FRESH = "52:54:00:aa:bb:02"  # registered, never stamped
NEW = "52:54:00:aa:bb:03"  # not registered
ACTOR = "cli:tester"
HOST = RecordId.of_host("default", MAC)
FULL = "store full or read-only: "
NOT_WRITABLE = "store not writable: "
URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")


def _chattr_works() -> bool:
    """Return True when this process may set the immutable flag on files of the temp dir."""
    if os.geteuid() != 0 or not shutil.which("chattr"):
        return False
    with tempfile.NamedTemporaryFile() as probe:
        if subprocess.run(["chattr", "+i", probe.name], capture_output=True).returncode:
            return False
        subprocess.run(["chattr", "-i", probe.name], check=True)
    return True


def _tmpfs_works() -> bool:
    """Return True when this process may mount a tmpfs (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    with tempfile.TemporaryDirectory() as probe:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                          capture_output=True).returncode:
            return False
        subprocess.run(["umount", probe], check=True)
    return True


#: ways to break the journal: (how, the message's prefix)
BREAKAGES = [("directory", NOT_WRITABLE), ("/dev/full", FULL)]
if _chattr_works():
    BREAKAGES.append(("immutable", NOT_WRITABLE))
#: real filesystems for a CLI to meet (a tmpfs needs root)
FILESYSTEMS = ["journal on /dev/full", *(["full tmpfs", "read-only tmpfs"] if _tmpfs_works()
                                         else [])]

OPERATIONS: dict[str, Callable[[FileStore], object]] = {
    "update": lambda s: s.update(HOST, {"NOTE": "changed", "STATE": "CONFIGURED"}, ACTOR),
    "create": lambda s: s.update(RecordId.of_host("default", NEW), {"STATE": "UNCONFIGURED"},
                                 ACTOR, create=True),
    "unset": lambda s: s.unset(HOST, "NOTE", ACTOR),
    "stamp": lambda s: s.stamp(HOST, {"BOOT_SESSION": "bbbbbb", "LAST_SEEN": "later"}, ACTOR),
    "first stamp": lambda s: s.stamp(RecordId.of_host("default", FRESH),
                                     {"BOOT_SESSION": "cccccc"}, ACTOR),
    "delete": lambda s: s.delete(HOST, ACTOR),
    "attachment": lambda s: s.write_attachment(HOST, "ks", "# a new kickstart\n", ACTOR),
}


@pytest.fixture
def journal(config_dir: Path) -> Path:
    return config_dir / "clusters" / "default" / "journal.log"


@pytest.fixture
def prepared(store: FileStore, host: RecordId) -> FileStore:
    """The host has a key to unset, a boot-session stamp and a kickstart; a second host has
    no stamp yet."""
    store.update(host, {"NOTE": "kept"}, "test:setup")
    store.stamp(host, {"BOOT_SESSION": "aaaaaa", "LAST_SEEN": "earlier"}, "test:setup")
    store.write_attachment(host, "ks", "# the kickstart served\n", "test:setup")
    store.update(RecordId.of_host("default", FRESH), {"STATE": "UNCONFIGURED"}, "test:setup",
                 create=True)
    return store


def disk(root: Path) -> dict[str, object]:
    """Every path under root with its bytes (None for a directory, the target for a link),
    lock files left out: a write attempt creates its lock file, and lock files are never
    deleted."""
    return {str(p.relative_to(root)): _content(p) for p in sorted(root.rglob("*"))
            if not p.name.endswith(".lock")}


def _content(path: Path) -> object:
    if path.is_symlink():
        return os.readlink(path)
    return None if path.is_dir() else path.read_bytes()


def lines_of(journal: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]


@contextlib.contextmanager
def broken(journal: Path, how: str) -> Iterator[None]:
    """Make the journal unwritable (`how`: a directory in its place, a link to /dev/full, the
    immutable flag) and put it back afterwards."""
    kept = journal.read_bytes()
    if how == "immutable":
        subprocess.run(["chattr", "+i", str(journal)], check=True)
    else:
        journal.unlink()
        if how == "directory":
            journal.mkdir()
        else:
            journal.symlink_to("/dev/full")
    try:
        yield
    finally:
        if how == "immutable":
            subprocess.run(["chattr", "-i", str(journal)], check=True)
        else:
            journal.rmdir() if how == "directory" else journal.unlink()
            journal.write_bytes(kept)


@pytest.fixture
def fault(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make one os primitive fail with an errno for files whose path matches a pattern (the
    first argument: a path, or a descriptor looked up in /proc/self/fd). `short`: a write
    first stores half its bytes and returns their count, as a kernel does on a disk that
    fills up mid-write; the next write then fails."""

    def inject(primitive: str, code: int, pattern: str, *, short: bool = False) -> None:
        real = getattr(os, primitive)
        fired: list[int] = []

        def failing(target, *args, **kwargs):  # type: ignore[no-untyped-def]
            if re.search(pattern, _path_of(target)):
                if short and not fired:
                    fired.append(1)
                    return real(target, args[0][:len(args[0]) // 2])
                raise OSError(code, os.strerror(code))
            return real(target, *args, **kwargs)

        monkeypatch.setattr(os, primitive, failing)

    return inject


def _path_of(target: object) -> str:
    if isinstance(target, int):
        try:
            return os.readlink(f"/proc/self/fd/{target}")
        except OSError:
            return ""
    return os.fspath(target)  # type: ignore[call-overload,no-any-return]


# -- a journal that cannot be written: the change does not happen either ---------------------


@pytest.mark.parametrize(("how", "prefix"), BREAKAGES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_change_whose_journal_cannot_be_written_is_refused_and_changes_nothing(
    prepared: FileStore, config_dir: Path, journal: Path, operation: str, how: str, prefix: str
) -> None:
    with broken(journal, how):
        before = disk(config_dir)
        with pytest.raises(StoreUnavailable) as refused:
            OPERATIONS[operation](prepared)
        assert str(refused.value).startswith(prefix)
        assert "journal.log" in str(refused.value)
        assert disk(config_dir) == before
    assert not list(config_dir.rglob("*.tmp"))


@pytest.mark.parametrize(("how", "prefix"), BREAKAGES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_once_the_journal_is_repaired_the_same_change_is_made_and_journaled(
    prepared: FileStore, config_dir: Path, journal: Path, operation: str, how: str, prefix: str
) -> None:
    with broken(journal, how), pytest.raises(StoreUnavailable):
        OPERATIONS[operation](prepared)
    journaled = len(lines_of(journal))
    before = disk(config_dir)
    OPERATIONS[operation](prepared)
    assert disk(config_dir) != before
    added = lines_of(journal)[journaled:]
    assert added and all(line["actor"] == ACTOR for line in added)


# -- a full, over-quota or read-only disk, at the lowest write primitive ---------------------

INJECTED = [
    # (operation, primitive, errno, files it fails for)
    ("update", "write", errno.ENOSPC, r"\.tmp$"),
    ("update", "fsync", errno.EDQUOT, r"\.tmp$"),
    ("create", "open", errno.ENOSPC, r"\.tmp$"),
    ("create", "open", errno.EROFS, r"\.lock$"),
    ("attachment", "write", errno.ENOSPC, r"\.tmp$"),
    ("stamp", "pwrite", errno.ENOSPC, r"\.stamp$"),
    ("first stamp", "pwrite", errno.EDQUOT, r"\.stamp$"),
    ("update", "write", errno.ENOSPC, r"journal\.log$"),
    ("update", "write", errno.EROFS, r"journal\.log$"),
    ("create", "write", errno.ENOSPC, r"journal\.log$"),
    ("unset", "write", errno.EDQUOT, r"journal\.log$"),
    ("delete", "write", errno.ENOSPC, r"journal\.log$"),
    ("attachment", "write", errno.ENOSPC, r"journal\.log$"),
    ("stamp", "write", errno.ENOSPC, r"journal\.log$"),
    ("first stamp", "write", errno.ENOSPC, r"journal\.log$"),
]


@pytest.mark.parametrize(("operation", "primitive", "code", "pattern"), INJECTED)
def test_a_full_or_read_only_disk_is_store_unavailable_and_changes_nothing(
    prepared: FileStore, config_dir: Path, fault, operation: str, primitive: str, code: int,
    pattern: str
) -> None:
    before = disk(config_dir)
    fault(primitive, code, pattern)
    with pytest.raises(StoreUnavailable) as refused:
        OPERATIONS[operation](prepared)
    assert str(refused.value).startswith(FULL)
    assert str(refused.value).endswith(os.strerror(code))
    assert disk(config_dir) == before
    assert not list(config_dir.rglob("*.tmp"))


@pytest.mark.parametrize("operation", ["update", "stamp", "delete"])
def test_a_journal_line_cut_short_by_a_full_disk_is_taken_back_with_its_change(
    prepared: FileStore, config_dir: Path, journal: Path, fault, operation: str
) -> None:
    before = disk(config_dir)
    fault("write", errno.ENOSPC, r"journal\.log$", short=True)
    with pytest.raises(StoreUnavailable, match=f"^{FULL}"):
        OPERATIONS[operation](prepared)
    assert disk(config_dir) == before


def test_a_record_whose_old_version_cannot_be_linked_aside_is_put_back_from_its_bytes(
    prepared: FileStore, config_dir: Path, fault
) -> None:
    before = disk(config_dir)
    fault("link", errno.EPERM, r"\.conf$")  # fs.protected_hardlinks, for a record root owns
    fault("write", errno.ENOSPC, r"journal\.log$")
    with pytest.raises(StoreUnavailable, match=f"^{FULL}"):
        OPERATIONS["update"](prepared)
    assert disk(config_dir) == before
    assert not list(config_dir.rglob("*.tmp"))


# -- through the web app ---------------------------------------------------------------------


@pytest.fixture
def installing(tmp_path: Path, store: FileStore, host: RecordId) -> RecordId:
    """The host is on the LAN, INSTALLING as an SCH after one attempt: its next `init` raises
    INSTALL_ATTEMPTS to 2."""
    (tmp_path / "arp").write_text(ARP)
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DHCP_RANGE_START": "10.99.0.100",
        "DHCP_RANGE_END": "10.99.0.199"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH", "REPO_PATH": "rocky/10", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "t", create=True)
    provide_os_files(tmp_path / "resources", store)
    store.update(host, {"TYPE": "SCH", "STATE": "INSTALLING", "INSTALL_ATTEMPTS": "1",
                        "HOSTNAME": "sch-001", "IP": "10.99.0.11"}, "t")
    return host


@pytest.mark.parametrize(("how", "prefix"), BREAKAGES)
def test_init_with_an_unwritable_journal_retries_and_does_not_count_the_attempt(
    web, store: FileStore, config_dir: Path, journal: Path, tmp_path: Path, installing,
    how: str, prefix: str
) -> None:
    with broken(journal, how):
        before = disk(config_dir)
        res = web.get(f"{URL}?cmd=init&mac={MAC12}", headers=IPXE, status=200)
        assert res.text.startswith("#!ipxe\n")
        assert f"hps-api: {prefix}" in res.text
        assert "sleep 10" in res.text and "cmd=init" in res.text
        assert disk(config_dir) == before
    assert store.items(installing)["INSTALL_ATTEMPTS"] == "1"
    log = (tmp_path / "log" / "hps-api.log").read_text()
    assert re.search(rf" ERROR .*-> 503 {re.escape(prefix)}.*journal\.log", log)
    assert "internal error" not in log and "Traceback" not in log
    again = web.get(f"{URL}?cmd=init&mac={MAC12}", headers=IPXE)  # the retry, journal repaired
    assert "kernel http://" in again.text
    assert store.items(installing)["INSTALL_ATTEMPTS"] == "2"


@pytest.mark.parametrize("pattern", [r"\.tmp$", r"journal\.log$"])
def test_a_curl_client_on_a_full_disk_gets_503_json_saying_so(
    web, store: FileStore, config_dir: Path, installing, fault, pattern: str
) -> None:
    before = disk(config_dir)
    fault("write", errno.ENOSPC, pattern)
    res = web.get(f"{URL}?cmd=host_variable&name=NOTE&value=x", headers=CURL, status=503,
                  extra_environ={"REMOTE_ADDR": "10.99.0.21"})
    assert res.content_type == "application/json"
    assert res.json["ok"] is False and res.json["error"]["code"] == 503
    assert res.json["error"]["message"].startswith(FULL)
    assert res.json["error"]["message"].endswith("No space left on device")
    assert disk(config_dir) == before


def test_an_ipxe_client_on_a_full_disk_gets_the_retry_script_saying_so(
    web, store: FileStore, config_dir: Path, installing, fault
) -> None:
    fault("fsync", errno.ENOSPC, r"\.tmp$")
    res = web.get(f"{URL}?cmd=init&mac={MAC12}", headers=IPXE, status=200)
    assert res.text.startswith("#!ipxe\n")
    assert f"hps-api: {FULL}" in res.text and "No space left on device" in res.text
    assert "sleep 10" in res.text
    assert store.items(installing)["INSTALL_ATTEMPTS"] == "1"


# -- through a CLI ---------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(directory: Path) -> Iterator[Path]:
    """Mount a 64 KiB tmpfs at `directory` (unmounted afterwards, whatever happens)."""
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                   check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)


def fill(directory: Path) -> None:
    """Write a file until the filesystem is full."""
    with open(directory / "filler", "wb", buffering=0) as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"x" * 4096)


@pytest.mark.parametrize("filesystem", FILESYSTEMS)
def test_host_config_set_on_a_full_or_read_only_store_exits_3_with_one_line(
    cli, tmp_path: Path, filesystem: str
) -> None:
    with contextlib.ExitStack() as stack:
        root = tmp_path / "fs"
        if filesystem != "journal on /dev/full":
            stack.enter_context(small_filesystem(root))
        store = FileStore(root / "hps-config")
        initialise(store, "default", "test:setup")
        store.update(RecordId.of_host("default", MAC), {"STATE": "UNCONFIGURED"}, "test:setup",
                     create=True)
        journal = root / "hps-config" / "clusters" / "default" / "journal.log"
        if filesystem == "journal on /dev/full":
            stack.enter_context(broken(journal, "/dev/full"))
        elif filesystem == "full tmpfs":
            fill(root)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        before = disk(root / "hps-config")
        result = cli("host_config", MAC, "set", "NOTE", "x",
                     env={"HPS_CONFIG_DIR": str(root / "hps-config")})
        assert (result.returncode, result.stdout) == (3, "")
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith(f"host_config: {FULL}")
        assert disk(root / "hps-config") == before

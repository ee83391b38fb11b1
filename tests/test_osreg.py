"""The OS registry: which OS a host type installs, OS records, and `hps-api os`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from filelock import FileLock

from hps_api.errors import Conflict, InvalidInput, NotFound
from hps_api.model.osreg import (
    add_os,
    cluster_keys,
    list_os,
    normalize_arch,
    os_record,
    parse_types,
    remove_os,
    resolve_os,
)
from hps_api.store import FileStore, RecordId

RECORDS = {
    "x86_64:rocky:10": ("prod", "SCH,DRH"),
    "x86_64:alma:9": ("prod", "SCH, cch"),
    "x86_64:rocky:9": ("retired", "SCH,LEGACY"),
    "x86_64:rocky:11": ("test", "SCH,LAB"),
    "aarch64:rocky:10": ("prod", "SCH"),
    "x86_64:alpine:3.20": ("prod", "TCH"),
}


@pytest.fixture
def registry(store: FileStore) -> FileStore:
    """OS records of several statuses, types and architectures."""
    for os_id, (status, types) in RECORDS.items():
        arch, name, version = os_id.split(":")
        add_os(store, os_id, {"REPO_PATH": f"{name}/{version}/{arch}", "KERNEL": "vmlinuz",
                              "INITRD": "initrd.img", "STATUS": status, "HPS_TYPES": types}, "t")
    return store


# --- resolve_os: every rule and its precedence ---------------------------------------------

RESOLVE = [
    # (cluster keys, type, arch, expected OS id, why)
    ({}, "SCH", "x86_64", "x86_64:alma:9", "first prod record by id that lists the type"),
    ({}, "sch", "x86_64", "x86_64:alma:9", "types are case-insensitive"),
    ({}, "DRH", "x86_64", "x86_64:rocky:10", "only records listing the type"),
    ({}, "CCH", "x86_64", "x86_64:alma:9", "HPS_TYPES is read case-insensitively"),
    ({}, "SCH", "aarch64", "aarch64:rocky:10", "only records of the host's architecture"),
    ({}, "SCH", "arm64", "aarch64:rocky:10", "iPXE's arm64 is aarch64"),
    ({}, "SCH", "i386", "x86_64:alma:9", "iPXE's BIOS build says i386 on 64-bit machines"),
    ({}, "SCH", "", "aarch64:rocky:10", "unknown arch: no arch filter, first by id"),
    ({}, "LAB", "x86_64", None, "a test OS is never picked by the last rule"),
    ({}, "LEGACY", "x86_64", None, "a retired OS is never picked by the last rule"),
    ({}, "XYZ", "x86_64", None, "no record lists the type"),
    ({}, "TCH", "aarch64", None, "the only TCH record is of another arch"),
    ({"OS_SCH": "x86_64:rocky:10"}, "SCH", "x86_64", "x86_64:rocky:10",
     "OS_<TYPE> beats the records"),
    ({"OS_SCH": "X86_64:Rocky:10"}, "SCH", "x86_64", "x86_64:rocky:10", "ids are normalised"),
    ({"OS_SCH_X86_64": "x86_64:rocky:11", "OS_SCH": "x86_64:rocky:10"}, "SCH", "x86_64",
     "x86_64:rocky:11", "OS_<TYPE>_<ARCH> beats OS_<TYPE>; a key may name a test OS"),
    ({"OS_SCH_X86_64": "x86_64:rocky:11"}, "SCH", "i386", "x86_64:rocky:11",
     "the arch key uses the normalised arch"),
    ({"OS_SCH_AARCH64": "aarch64:rocky:10"}, "SCH", "x86_64", "x86_64:alma:9",
     "another arch's key is ignored"),
    ({"OS_SCH": ""}, "SCH", "x86_64", "x86_64:alma:9", "an empty key counts as not set"),
    ({"OS_LAB": "x86_64:rocky:11"}, "LAB", "x86_64", "x86_64:rocky:11",
     "a key names an OS for a type no record lists"),
    ({"OS_DRH": "x86_64:alma:9"}, "DRH", "x86_64", "x86_64:alma:9",
     "a key may name an OS whose HPS_TYPES omits the type"),
]


@pytest.mark.parametrize(("keys", "kind", "arch", "expected", "why"), RESOLVE,
                         ids=[case[-1] for case in RESOLVE])
def test_resolve_os_follows_the_rules_in_order(registry: FileStore, keys: dict[str, str],
                                               kind: str, arch: str, expected: str | None,
                                               why: str) -> None:
    found = resolve_os(registry, keys, kind, arch)
    assert (found[0] if found else None) == expected, why
    if found:
        assert found[1] == registry.items(RecordId.of_os(found[0]))


RESOLVE_ERRORS = [
    ({"OS_SCH": "x86_64:none:1"}, "x86_64", NotFound,
     "cluster key OS_SCH names x86_64:none:1, which has no OS record"),
    ({"OS_SCH_X86_64": "x86_64:none:1", "OS_SCH": "x86_64:rocky:10"}, "x86_64", NotFound,
     "cluster key OS_SCH_X86_64 names x86_64:none:1"),
    ({"OS_SCH": "../../etc/passwd"}, "x86_64", InvalidInput, "cluster key OS_SCH: invalid OS id"),
    ({"OS_SCH": "x86_64:rocky:9"}, "x86_64", Conflict,
     "cluster key OS_SCH names x86_64:rocky:9, which is retired"),
    ({"OS_SCH": "aarch64:rocky:10"}, "x86_64", Conflict,
     "cluster key OS_SCH names aarch64:rocky:10, but the host is x86_64"),
    ({}, "x86 64;", InvalidInput, "invalid architecture"),
]


@pytest.mark.parametrize(("keys", "arch", "error", "message"), RESOLVE_ERRORS)
def test_a_cluster_key_naming_a_missing_or_unusable_os_is_a_clear_error(
    registry: FileStore, keys: dict[str, str], arch: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        resolve_os(registry, keys, "SCH", arch)


def test_resolve_os_reads_nothing_but_the_named_record_when_a_key_names_one(
    registry: FileStore, config_dir: Path
) -> None:
    (config_dir / "os" / "x86_64_broken_1.conf").write_text("not a record\n")
    assert resolve_os(registry, {"OS_SCH": "x86_64:rocky:10"}, "SCH", "x86_64")
    with pytest.raises(Exception, match="corrupt record"):
        resolve_os(registry, {}, "SCH", "x86_64")


@pytest.mark.parametrize(("kind", "arch", "keys"), [
    ("SCH", "x86_64", ["OS_SCH_X86_64", "OS_SCH"]),
    ("tch", "aarch64", ["OS_TCH_AARCH64", "OS_TCH"]),
    ("CCH", "", ["OS_CCH"]),
])
def test_cluster_keys_are_most_specific_first(kind: str, arch: str, keys: list[str]) -> None:
    assert cluster_keys(kind, arch) == keys


@pytest.mark.parametrize(("text", "arch"), [
    ("x86_64", "x86_64"), ("X86_64", "x86_64"), ("amd64", "x86_64"), ("i386", "x86_64"),
    ("arm64", "aarch64"), ("aarch64", "aarch64"), ("riscv64", "riscv64"), ("", ""), (" ", ""),
])
def test_architectures_are_normalised(text: str, arch: str) -> None:
    assert normalize_arch(text) == arch


@pytest.mark.parametrize(("text", "types"), [
    ("SCH,DRH", ("SCH", "DRH")), ("sch, drh ,", ("SCH", "DRH")), ("", ()), ("TCH2", ("TCH2",)),
])
def test_type_lists_parse(text: str, types: tuple[str, ...]) -> None:
    assert parse_types(text) == types


@pytest.mark.parametrize("text", ["SCH;DRH", "S CH", "1SCH", "../x", "SCH,$(id)"])
def test_bad_type_lists_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid host type"):
        parse_types(text)


# --- OS records --------------------------------------------------------------------------------

GOOD = {"REPO_PATH": "rocky/10/x86_64", "KERNEL": "images/pxeboot/vmlinuz",
        "INITRD": "images/pxeboot/initrd.img", "STATUS": "Prod", "HPS_TYPES": "sch,drh"}


def test_an_os_record_is_complete_in_a_fixed_order_with_extra_keys_after() -> None:
    record = os_record("x86_64:Rocky:10", {**GOOD, "stage2": "rocky/10/x86_64"})
    assert record == {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "REPO_PATH": "rocky/10/x86_64",
        "KERNEL": "images/pxeboot/vmlinuz", "INITRD": "images/pxeboot/initrd.img",
        "STATUS": "prod", "HPS_TYPES": "SCH,DRH", "STAGE2": "rocky/10/x86_64"}
    assert list(record)[:3] == ["NAME", "VERSION", "ARCH"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"ARCH": "aarch64"}, "ARCH='aarch64' does not match the OS id x86_64:rocky:10"),
    ({"NAME": "alma"}, "NAME='alma' does not match"),
    ({"REPO_PATH": "../etc"}, "REPO_PATH must be a relative path"),
    ({"REPO_PATH": "/srv/rocky"}, "REPO_PATH must be a relative path"),
    ({"REPO_PATH": "rocky/./10"}, "REPO_PATH must be a relative path"),
    ({"KERNEL": "vm linuz"}, "KERNEL must be a relative path"),
    ({"INITRD": ""}, "INITRD must be a relative path"),
    ({"STATUS": "beta"}, "STATUS must be one of prod, test, retired"),
    ({"HPS_TYPES": ""}, "HPS_TYPES is required"),
    ({"HPS_TYPES": "SCH DRH"}, "invalid host type"),
    ({"NOTE": "a\nb"}, "control character"),
    ({"bad-key": "x"}, "invalid key"),
])
def test_bad_os_values_are_refused_by_name(changes: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        os_record("x86_64:rocky:10", {**GOOD, **changes})


def test_adding_an_existing_os_is_a_conflict_and_changes_nothing(
    registry: FileStore, config_dir: Path, snapshot
) -> None:
    before = snapshot(config_dir)
    with pytest.raises(Conflict, match="exists already"):
        add_os(registry, "x86_64:rocky:10", GOOD, "t")
    assert snapshot(config_dir) == before


def test_list_and_remove(registry: FileStore) -> None:
    assert [os_id for os_id, _ in list_os(registry)] == sorted(RECORDS)
    remove_os(registry, "x86_64:rocky:9", "t")
    assert "x86_64:rocky:9" not in dict(list_os(registry))
    with pytest.raises(NotFound):
        remove_os(registry, "x86_64:rocky:9", "t")


# --- hps-api os, as an operator runs it --------------------------------------------------------

ADD = ["os", "add", "x86_64:rocky:10", "--repo-path", "rocky/10/x86_64",
       "--kernel", "images/pxeboot/vmlinuz", "--initrd", "images/pxeboot/initrd.img",
       "--status", "prod", "--types", "SCH,DRH"]


def test_os_add_list_show_remove_round_trip(cli, config_dir: Path) -> None:
    added = cli("hps-api", *ADD, "--set", "STAGE2=rocky/10/x86_64", "--name", "rocky")
    assert (added.returncode, added.stdout, added.stderr) == (0, "OS x86_64:rocky:10 added\n", "")
    assert (config_dir / "os" / "x86_64_rocky_10.conf").read_text().splitlines() == [
        "NAME=rocky", "VERSION=10", "ARCH=x86_64", "REPO_PATH=rocky/10/x86_64",
        "KERNEL=images/pxeboot/vmlinuz", "INITRD=images/pxeboot/initrd.img", "STATUS=prod",
        "HPS_TYPES=SCH,DRH", "STAGE2=rocky/10/x86_64"]
    listed = cli("hps-api", "os", "list")
    assert listed.stdout == "x86_64:rocky:10\tprod\tSCH,DRH\trocky/10/x86_64\n"
    as_json = json.loads(cli("hps-api", "os", "list", "--json").stdout)
    assert as_json["x86_64:rocky:10"]["KERNEL"] == "images/pxeboot/vmlinuz"
    shown = cli("hps-api", "os", "show", "X86_64:ROCKY:10")
    assert shown.stdout.startswith("NAME=rocky\nVERSION=10\nARCH=x86_64\n")
    assert json.loads(cli("hps-api", "os", "show", "x86_64:rocky:10", "--json").stdout)[
        "HPS_TYPES"] == "SCH,DRH"
    removed = cli("hps-api", "os", "remove", "x86_64:rocky:10")
    assert (removed.returncode, removed.stdout) == (0, "OS x86_64:rocky:10 removed\n")
    assert cli("hps-api", "os", "list").stdout == ""


def test_os_commands_accept_config_dir_after_the_verb(cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert cli("hps-api", "init", "--config-dir", str(other)).returncode == 0
    assert cli("hps-api", *ADD, "--config-dir", str(other)).returncode == 0
    assert (other / "os" / "x86_64_rocky_10.conf").is_file()
    assert cli("hps-api", "os", "list").stdout == ""


CLI_ERRORS = [
    (["os", "show", "x86_64:rocky:10"], 1, "hps-api: os/x86_64:rocky:10 not found\n"),
    (["os", "remove", "x86_64:rocky:10"], 1, "hps-api: os/x86_64:rocky:10 not found\n"),
    (["os", "show", "../../etc/passwd"], 2, "hps-api: invalid OS id '../../etc/passwd'"),
    (ADD[:-2], 2, "the following arguments are required: --types"),
    ([*ADD, "--status", "beta"], 2, "invalid choice: 'beta'"),
    ([*ADD, "--arch", "aarch64"], 2, "ARCH='aarch64' does not match the OS id"),
    ([*ADD, "--set", "NOTE"], 2, "--set 'NOTE': expected KEY=VALUE"),
    ([*ADD, "--set", "STATUS=test"], 2, "--set STATUS: use --status"),
    ([*ADD, "--set", "bad-key=1"], 2, "invalid key"),
    ([*ADD, "--set", "NOTE=a\x1bb"], 2, "control character"),
    ([*ADD[:2], "x86_64:rocky", *ADD[3:]], 2, "invalid OS id"),
    (["os"], 2, "the following arguments are required: add|list|show|remove"),
]


@pytest.mark.parametrize(("args", "code", "message"), CLI_ERRORS)
def test_os_cli_errors_have_exit_codes_and_change_nothing(cli, config_dir: Path, snapshot,
                                                          args: list[str], code: int,
                                                          message: str) -> None:
    before = snapshot(config_dir)
    result = cli("hps-api", *args)
    assert result.returncode == code
    assert message in result.stderr and result.stderr.startswith("hps-api: ")
    assert snapshot(config_dir) == before


def test_adding_an_existing_os_exits_2(cli, config_dir: Path, snapshot) -> None:
    assert cli("hps-api", *ADD).returncode == 0
    before = snapshot(config_dir)
    again = cli("hps-api", *ADD)
    assert (again.returncode, again.stderr) == (
        2, "hps-api: OS x86_64:rocky:10 exists already (remove it first to replace it)\n")
    assert snapshot(config_dir) == before


def test_a_locked_os_record_is_exit_3_store_busy(cli, config_dir: Path) -> None:
    assert cli("hps-api", *ADD).returncode == 0
    with FileLock(str(config_dir / "os" / "x86_64_rocky_10.conf.lock")):
        result = cli("hps-api", "os", "remove", "x86_64:rocky:10")
    assert result.returncode == 3
    assert "still locked" in result.stderr
    assert (config_dir / "os" / "x86_64_rocky_10.conf").is_file()

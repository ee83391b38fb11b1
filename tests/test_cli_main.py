"""`hps-api init` and `hps-api fsck` as an operator runs them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hps_api.store import FileStore, RecordId


def test_init_creates_the_tree_and_an_active_first_cluster(cli, tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    result = cli("hps-api", "init", "--config-dir", str(root))
    assert result.returncode == 0, result.stderr
    assert (root / "hps.conf").read_text().splitlines() == ["ACTIVE_CLUSTER=default"]
    conf = (root / "clusters/default/cluster.conf").read_text()
    assert conf.startswith("NAME=default\nCREATED=")
    assert (root / "clusters/default/hosts").is_dir()
    assert (root / "os").is_dir()
    assert "active cluster: default" in result.stdout


def test_init_is_idempotent(cli, tmp_path: Path, snapshot) -> None:
    root = tmp_path / "fresh"
    cli("hps-api", "--config-dir", str(root), "init")
    before = snapshot(root)
    again = cli("hps-api", "--config-dir", str(root), "init")
    assert again.returncode == 0
    assert "already initialised" in again.stdout
    assert snapshot(root) == before


def test_init_of_a_second_cluster_never_flips_the_active_one(cli, config_dir: Path) -> None:
    result = cli("hps-api", "init", "--cluster", "lab-2")
    assert result.returncode == 0
    assert (config_dir / "clusters/lab-2/cluster.conf").is_file()
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "default\n"


def test_init_refuses_a_bad_cluster_name_and_creates_nothing(cli, tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    result = cli("hps-api", "init", "--config-dir", str(root), "--cluster", "../evil")
    assert result.returncode == 2
    assert result.stderr == "hps-api: invalid cluster name: '../evil'\n"
    assert not root.exists()


def test_fsck_passes_a_healthy_tree(cli, config_dir: Path) -> None:
    cli("host_config", "52:54:00:aa:bb:01", "set", "STATE", "INSTALLED")
    result = cli("hps-api", "fsck")
    assert (result.returncode, result.stdout) == (0, f"0 problem(s) in {config_dir}\n")


def test_fsck_lists_corrupt_records_stray_files_and_temp_files(cli, config_dir: Path) -> None:
    hosts = config_dir / "clusters/default/hosts"
    (hosts / "525400aabb01.conf").write_text("STATE=INSTALLED\nrm -rf /\n")
    (hosts / "525400aabb02.conf").write_bytes(b"NAME=\xff\n")
    (hosts / "notamac.conf").write_text("A=1\n")
    (hosts / ".525400aabb03.conf.x1y2.tmp").write_text("A=")
    result = cli("hps-api", "fsck")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"corrupt: {hosts}/525400aabb01.conf: line 2: not a KEY=value line" in lines
    assert f"corrupt: {hosts}/525400aabb02.conf: line 1: not UTF-8 text" in lines
    assert any(line.startswith("stray: ") and "notamac.conf" in line for line in lines)
    assert any(line.startswith("temp: ") and ".tmp" in line for line in lines)
    assert lines[-1] == f"3 problem(s) in {config_dir}"  # a young temp file needs nobody


def test_fsck_checks_host_stamps(cli, config_dir: Path) -> None:
    hosts = config_dir / "clusters/default/hosts"
    cli("host_config", "52:54:00:aa:bb:01", "set", "STATE", "INSTALLED")
    cli("host_config", "52:54:00:aa:bb:02", "set", "STATE", "INSTALLED")
    FileStore(config_dir).stamp(RecordId.of_host("default", "525400aabb01"),
                                {"LAST_SEEN": "2026-01-01T00:00:00Z"}, "t")
    assert cli("hps-api", "fsck").returncode == 0  # a good stamp is no problem
    (hosts / "525400aabb02.stamp").write_bytes(b"# hps-stamp 00000000 5\nA=1\n")
    (hosts / "525400aabb09.stamp").write_bytes(b"")
    result = cli("hps-api", "fsck")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"torn: {hosts}/525400aabb02.stamp: ") for line in lines), lines
    assert any(line.startswith(f"stray: {hosts}/525400aabb09.stamp: ") for line in lines), lines
    assert lines[-1] == f"1 problem(s) in {config_dir}"  # the torn stamp heals at next boot
    (hosts / "525400aabb09.stamp").unlink()
    assert cli("hps-api", "fsck").returncode == 0


@pytest.mark.parametrize("flag", [[], ["--remove-temp"]], ids=["plain", "remove-temp"])
def test_fsck_cleans_stale_temp_files_and_exits_0_for_what_heals(cli, config_dir: Path,
                                                                  flag: list[str]) -> None:
    hosts = config_dir / "clusters/default/hosts"
    stale = hosts / ".525400aabb03.conf.tmp"
    fresh = hosts / ".525400aabb04.conf.tmp"
    stale.write_text("A=")
    fresh.write_text("A=")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    result = cli("hps-api", "fsck", *flag)
    assert not stale.exists()
    assert fresh.exists()  # may be a write in progress
    assert result.returncode == 0
    assert f"removed {stale}" in result.stdout
    assert "cleaned 1 temp file(s) left by interrupted writes" in result.stdout


def test_fsck_of_a_missing_config_dir_exits_3(cli, tmp_path: Path) -> None:
    result = cli("hps-api", "fsck", "--config-dir", str(tmp_path / "nope"))
    assert result.returncode == 3
    assert "does not exist" in result.stderr


def test_unknown_subcommand_exits_2_with_one_line(cli) -> None:
    result = cli("hps-api", "frobnicate")
    assert result.returncode == 2
    assert result.stderr.startswith("hps-api: ")
    assert result.stderr.count("\n") == 1


def test_import_legacy_converts_a_tree_and_reports_what_it_skipped(cli, tmp_path: Path,
                                                                   config_dir: Path) -> None:
    old = tmp_path / "old"
    (old / "clusters/lab/hosts").mkdir(parents=True)
    (old / "clusters/lab/cluster.conf").write_text('DNS_DOMAIN="lab.local"\n')
    (old / "clusters/lab/hosts/52:54:00:aa:bb:05.conf").write_text(
        'state="INSTALLED"\nnote="$(touch pwned)"\nif [ -f x ]; then\n')
    result = cli("hps-api", "import-legacy", str(old))
    assert result.returncode == 1, result.stderr
    assert "skipped" in result.stdout
    host = config_dir / "clusters/lab/hosts/525400aabb05.conf"
    lines = host.read_text().splitlines()
    assert "STATE=INSTALLED" in lines and "NOTE=$(touch pwned)" in lines
    assert not (tmp_path / "pwned").exists()


def test_import_legacy_dry_run_writes_nothing(cli, tmp_path: Path, config_dir: Path,
                                              snapshot) -> None:
    old = tmp_path / "old"
    (old / "clusters/lab").mkdir(parents=True)
    (old / "clusters/lab/cluster.conf").write_text("A=1\n")
    before = snapshot(config_dir)
    result = cli("hps-api", "import-legacy", "--dry-run", str(old))
    assert result.returncode == 0, result.stderr
    assert snapshot(config_dir) == before


def test_import_legacy_of_a_missing_dir_exits_2(cli, tmp_path: Path) -> None:
    result = cli("hps-api", "import-legacy", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.startswith("hps-api: ")


def test_a_site_dir_that_does_not_exist_stops_a_command_at_start(cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-site"
    result = cli("hps-api", "init", env={"HPS_SITE_DIR": str(missing)})
    assert result.returncode == 2
    assert result.stderr == f"hps-api: HPS_SITE_DIR='{missing}': no such directory\n"

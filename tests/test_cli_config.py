"""The config CLIs as an operator runs them: real processes, real files, exit codes 0/1/2/3."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from hps_api.store import FileStore, RecordId

MAC = "52:54:00:aa:bb:01"
HOST_FILE = "clusters/default/hosts/525400aabb01.conf"


@pytest.fixture
def bash(config_dir: Path):  # type: ignore[no-untyped-def]
    """Run a bash script with the console scripts on PATH, as the old IPS functions were."""

    def run(script: str) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
        environment.update({"HPS_CONFIG_DIR": str(config_dir), "HPS_LOCK_TIMEOUT": "0.5",
                            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=environment, timeout=60, cwd=config_dir.parent)

    return run


def test_host_config_set_then_get_prints_the_value_and_a_newline(cli) -> None:
    assert cli("host_config", MAC, "set", "state", "INSTALLED").returncode == 0
    result = cli("host_config", "52-54-00-AA-BB-01", "get", "STATE")
    assert (result.returncode, result.stdout, result.stderr) == (0, "INSTALLED\n", "")


@pytest.mark.parametrize("value", ["", "a=b=c", "YQ==", "-5", "--json", "  spaced  ", "$(reboot)",
                                   "`id`", "it's \"quoted\"", "back\\slash", "ünïcødé ✓"])
def test_any_value_the_store_accepts_round_trips_through_the_cli(cli, value: str) -> None:
    assert cli("host_config", MAC, "set", "NOTE", value).returncode == 0
    assert cli("host_config", MAC, "get", "note").stdout == value + "\n"


def test_empty_value_is_distinct_from_unset(cli) -> None:
    cli("host_config", MAC, "set", "EMPTY", "")
    assert cli("host_config", MAC, "get", "EMPTY").returncode == 0
    assert cli("host_config", MAC, "unset", "EMPTY").returncode == 0
    missing = cli("host_config", MAC, "get", "EMPTY")
    assert missing.returncode == 1
    assert missing.stderr == "host_config: Key 'EMPTY' not found\n"


def test_unset_of_a_key_that_is_not_set_exits_1(cli) -> None:
    cli("host_config", MAC, "set", "A", "1")
    assert cli("host_config", MAC, "unset", "NEVER").returncode == 1


def test_unknown_host_exits_1_and_is_not_registered(cli, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    for verb in (["get", "STATE"], ["list"], ["show"], ["history"], ["delete"], ["unset", "X"]):
        result = cli("host_config", "52:54:00:00:00:99", *verb)
        assert result.returncode == 1, verb
        assert result.stderr.startswith("host_config: ")
    assert snapshot(config_dir) == before


def test_list_prints_key_value_lines_and_json(cli) -> None:
    cli("host_config", MAC, "set", "TYPE", "SCH")
    lines = cli("host_config", MAC, "list").stdout.splitlines()
    assert lines[0] == "TYPE=SCH"
    assert lines[1].startswith("UPDATED=")
    data = json.loads(cli("host_config", MAC, "list", "--json").stdout)
    assert data["TYPE"] == "SCH"
    assert json.loads(cli("host_config", "--json", MAC, "get", "TYPE").stdout) == "SCH"


def test_show_and_history_tell_who_changed_what(cli) -> None:
    cli("host_config", MAC, "set", "STATE", "CONFIGURED")
    cli("host_config", MAC, "set", "STATE", "INSTALLED")
    show = cli("host_config", MAC, "show")
    assert show.returncode == 0
    assert "host 52:54:00:aa:bb:01 (525400aabb01) in cluster default" in show.stdout
    assert "STATE" in show.stdout and "INSTALLED" in show.stdout
    history = cli("host_config", MAC, "history").stdout.splitlines()
    assert history[-1].endswith("STATE: CONFIGURED -> INSTALLED")
    assert "cli:" in history[-1]
    changes = json.loads(cli("host_config", MAC, "history", "--json").stdout)
    assert [c["new"] for c in changes] == ["CONFIGURED", "INSTALLED"]


def test_delete_removes_the_record_and_is_journaled(cli, config_dir: Path) -> None:
    cli("host_config", MAC, "set", "STATE", "INSTALLED")
    result = cli("host_config", MAC, "delete")
    assert (result.returncode, result.stdout) == (0, "525400aabb01 deleted\n")
    assert not (config_dir / HOST_FILE).exists()
    assert cli("host_config", MAC, "get", "STATE").returncode == 1
    assert "INSTALLED -> (unset)" in cli("host_config", MAC, "history").stdout


def test_cluster_config_uses_the_active_cluster_or_the_named_one(cli, config_dir: Path) -> None:
    assert cli("cluster_config", "set", "DNS_DOMAIN", "lab.local").returncode == 0
    assert cli("cluster_config", "get", "NAME").stdout == "default\n"
    assert cli("cluster_config", "--cluster", "default", "get", "dns_domain").stdout == \
        "lab.local\n"
    missing = cli("cluster_config", "--cluster", "nosuch", "get", "NAME")
    assert missing.returncode == 1
    assert "cluster/nosuch not found" in missing.stderr
    assert not (config_dir / "clusters/nosuch").exists()


def test_cluster_config_set_on_a_missing_cluster_creates_nothing(cli, config_dir) -> None:
    assert cli("cluster_config", "--cluster", "other", "set", "A", "1").returncode == 1
    assert not (config_dir / "clusters/other").exists()


def test_hps_config_reads_and_writes_hps_conf(cli, config_dir: Path) -> None:
    assert cli("hps_config", "get", "ACTIVE_CLUSTER").stdout == "default\n"
    assert cli("hps_config", "set", "IPS_NAME", "ips-1").returncode == 0
    assert "IPS_NAME=ips-1\n" in (config_dir / "hps.conf").read_text()


def test_config_dir_option_wins_over_the_environment(cli, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    result = cli("hps_config", "--config-dir", str(elsewhere), "get", "ACTIVE_CLUSTER")
    assert result.returncode == 3
    assert "does not exist" in result.stderr
    assert not elsewhere.exists()


def test_dotenv_in_the_working_directory_sets_the_config_dir(cli, config_dir: Path) -> None:
    (config_dir.parent / ".env").write_text(f"HPS_CONFIG_DIR={config_dir}\n")
    result = cli("hps_config", "get", "ACTIVE_CLUSTER", env={"HPS_CONFIG_DIR": None})
    assert result.stdout == "default\n"


BAD_INPUT = [
    ("host_config", [MAC, "set", "BAD KEY", "v"], "invalid key"),
    ("host_config", [MAC, "set", "1KEY", "v"], "invalid key"),
    ("host_config", [MAC, "set", "KEY", "line\nbreak"], "control character"),
    ("host_config", [MAC, "set", "KEY", "tab\there"], "control character"),
    ("host_config", [MAC, "set", "KEY", "nul\x01"], "control character"),
    ("host_config", [MAC, "set", "KEY", "x" * (64 * 1024 + 1)], "larger than"),
    ("host_config", ["../../etc/passwd", "set", "KEY", "v"], "invalid MAC"),
    ("host_config", ["52:54:00:aa:bb", "get", "KEY"], "invalid MAC"),
    ("host_config", ["ff:ff:ff:ff:ff:ff", "get", "KEY"], "not a host MAC"),
    ("host_config", [MAC, "frobnicate"], "unknown command"),
    ("host_config", [MAC, "set", "KEY"], "set needs KEY VALUE"),
    ("host_config", [MAC, "get", "KEY", "extra"], "unexpected argument"),
    ("host_config", [MAC, "get", "KEY", "--bogus"], "unknown option"),
    ("host_config", [], "MAC address is required"),
    ("host_config", [MAC, "exists", "BAD KEY"], "invalid key"),
    ("host_config", [MAC, "exists", "KEY", "extra"], "unexpected argument"),
    ("host_config", ["525400aabb0", "exists"], "invalid MAC"),
    ("host_config", [MAC, "equals", "KEY"], "equals needs KEY VALUE"),
    ("host_config", [MAC, "equals", "KEY", "original", "extra"], "unexpected argument"),
    ("host_config", [MAC, "equals", "1KEY", "v"], "invalid key"),
    ("host_config", [MAC, "equals", "KEY", "line\nbreak"], "control character"),
    ("host_config", [MAC, "set", "KEY", "v", "default"], "unexpected argument"),
    ("cluster_config", ["exists", "KEY", "extra"], "unexpected argument"),
    ("cluster_config", ["exists", "BAD-KEY"], "invalid key"),
    ("cluster_config", ["equals", "NAME", "default"], "unknown command"),
    ("cluster_config", ["set", "A", "1", "nosuch"], "cluster 'nosuch' does not exist"),
    ("cluster_config", ["set", "A", "1", "Bad_Name"], "invalid cluster name"),
    ("cluster_config", ["set", "A", "1", "../default"], "invalid cluster name"),
    ("cluster_config", ["set", "A", "1", "default", "extra"], "unexpected argument"),
    ("cluster_config", ["--cluster", "default", "set", "A", "1", "lab"],
     "set names cluster 'lab' but --cluster is 'default'"),
    ("cluster_config", ["--cluster", "Bad_Name", "set", "A", "1", "default"],
     "invalid cluster name"),
    ("hps_config", ["exists", "ACTIVE_CLUSTER"], "unknown command"),
    ("cluster_config", ["--cluster", "../x", "get", "NAME"], "invalid cluster name"),
    ("cluster_config", ["--cluster", "Bad_Name", "set", "A", "1"], "invalid cluster name"),
    ("hps_config", ["set", "A-B", "1"], "invalid key"),
    ("hps_config", ["--cluster", "x", "get", "A"], "unknown option"),
    ("hps_config", [], "a command is required"),
]


@pytest.mark.parametrize(("prog", "args", "message"), BAD_INPUT)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    cli, config_dir: Path, snapshot, prog: str, args: list[str], message: str
) -> None:
    cli("host_config", MAC, "set", "KEY", "original")
    before = snapshot(config_dir)
    result = cli(prog, *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{prog}: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(config_dir) == before


def test_a_corrupt_record_exits_3_and_is_never_rewritten(cli, config_dir: Path) -> None:
    path = config_dir / HOST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"STATE=INSTALLED\nSTATE=INSTALLED\n")
    for args in (["get", "STATE"], ["set", "STATE", "FAILED"], ["list"], ["unset", "STATE"],
                 ["exists"], ["exists", "STATE"], ["equals", "STATE", "INSTALLED"]):
        result = cli("host_config", MAC, *args)
        assert result.returncode == 3, args
        assert "duplicate key STATE" in result.stderr
    assert path.read_bytes() == b"STATE=INSTALLED\nSTATE=INSTALLED\n"


def _hold_lock(path: str, ready: multiprocessing.synchronize.Event, seconds: float) -> None:
    with FileLock(path):
        ready.set()
        time.sleep(seconds)


def test_a_lock_held_by_another_process_exits_3_and_leaves_the_file(
    cli, config_dir: Path, store: FileStore
) -> None:
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED"}, "t", create=True)
    path = config_dir / HOST_FILE
    before = path.read_bytes()
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(path) + ".lock", ready, 5.0))
    holder.start()
    try:
        assert ready.wait(10)
        result = cli("host_config", MAC, "set", "STATE", "REINSTALL")
        assert result.returncode == 3
        assert "still locked" in result.stderr
        assert cli("host_config", MAC, "get", "STATE").stdout == "INSTALLED\n"
    finally:
        holder.terminate()
        holder.join()
    assert path.read_bytes() == before


def test_help_prints_usage_and_exit_codes(cli) -> None:
    result = cli("host_config", "--help")
    assert result.returncode == 0
    assert "usage: host_config" in result.stdout
    assert "exit codes" in result.stdout


def test_the_config_clis_do_not_import_flask(config_dir: Path) -> None:
    import subprocess
    import sys

    code = "import sys, hps_api.cli.config, hps_api.cli.main; print('flask' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout == "False\n"


# -- the tests the old IPS functions made: `if host_config "$mac" exists; then ...` -------------


def test_host_config_exists_answers_a_shell_if_about_the_host_and_its_keys(bash) -> None:
    script = """
    mac=52:54:00:aa:bb:01
    if host_config "$mac" exists; then echo known; else echo unknown; fi
    if host_config "$mac" exists IP; then echo has-ip; else echo no-ip; fi
    host_config "$mac" set STATE UNCONFIGURED
    if host_config "$mac" exists; then echo known; else echo unknown; fi
    if host_config "$mac" exists IP; then echo has-ip; else echo no-ip; fi
    host_config "$mac" set IP ''
    if host_config "$mac" exists ip; then echo has-ip; else echo no-ip; fi
    """
    result = bash(script)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.split() == ["unknown", "no-ip", "known", "no-ip", "has-ip"]


def test_host_config_exists_registers_nothing(bash, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    result = bash('host_config 52:54:00:00:00:99 exists STATE; echo "$?"')
    assert (result.stdout, result.stderr) == ("1\n", "")
    assert snapshot(config_dir) == before


def test_host_config_equals_compares_the_value_exactly_and_the_key_in_any_case(bash) -> None:
    script = """
    mac=525400aabb01
    check() { if host_config "$mac" equals "$1" "$2"; then echo yes; else echo no; fi; }
    check STATE INSTALLED
    host_config "$mac" set STATE INSTALLED
    check STATE INSTALLED
    check state INSTALLED
    check STATE installed
    check STATE 'INSTALLED '
    check NOTE ''
    host_config "$mac" set NOTE ''
    check NOTE ''
    host_config "$mac" set NOTE '$(reboot) "x"'
    check NOTE '$(reboot) "x"'
    """
    result = bash(script)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.split() == ["no", "yes", "yes", "no", "no", "no", "yes", "yes"]


def test_cluster_config_exists_answers_about_the_cluster_and_its_keys(bash) -> None:
    script = """
    if cluster_config exists; then echo cluster; fi
    if cluster_config --cluster nosuch exists; then echo nosuch; else echo no-nosuch; fi
    if cluster_config exists DNS_DOMAIN; then echo domain; else echo no-domain; fi
    cluster_config set DNS_DOMAIN lab.local
    if cluster_config exists dns_domain; then echo domain; else echo no-domain; fi
    """
    result = bash(script)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.split() == ["cluster", "no-nosuch", "no-domain", "domain"]


def test_cluster_config_set_with_a_fourth_argument_writes_that_cluster(
    bash, store: FileStore
) -> None:
    store.update(RecordId.of_cluster("lab"), {"NAME": "lab"}, "test:setup", create=True)
    script = """
    cluster=lab
    pending=("DNS_DOMAIN:lab.example" "network_storage_count:2" "DESCRIPTION:rack 4: top")
    for item in "${pending[@]}"; do
      key="${item%%:*}"
      value="${item#*:}"
      cluster_config "set" "$key" "$value" "$cluster" || exit 1
    done
    """
    result = bash(script)
    assert (result.returncode, result.stderr) == (0, "")
    lab = store.items(RecordId.of_cluster("lab"))
    assert (lab["DNS_DOMAIN"], lab["NETWORK_STORAGE_COUNT"], lab["DESCRIPTION"]) == (
        "lab.example", "2", "rack 4: top")
    assert "DNS_DOMAIN" not in store.items(RecordId.of_cluster("default"))


def test_cluster_config_set_with_an_empty_fourth_argument_writes_the_active_cluster(
    cli, store: FileStore
) -> None:
    assert cli("cluster_config", "set", "DNS_DOMAIN", "lab.local", "").returncode == 0
    assert cli("cluster_config", "--cluster", "default", "set", "A", "1", "default").returncode \
        == 0
    values = store.items(RecordId.of_cluster("default"))
    assert (values["DNS_DOMAIN"], values["A"]) == ("lab.local", "1")


def test_an_option_after_an_optional_argument_stays_an_option(cli) -> None:
    assert cli("host_config", MAC, "set", "STATE", "INSTALLED").returncode == 0
    assert cli("host_config", MAC, "exists", "--json").returncode == 0
    result = cli("cluster_config", "set", "A", "-1", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    assert cli("cluster_config", "get", "A").stdout == "-1\n"


def test_help_lists_the_optional_arguments(cli) -> None:
    assert "exists [KEY] | equals KEY VALUE" in cli("host_config", "--help").stdout
    assert "set KEY VALUE [CLUSTER]" in cli("cluster_config", "--help").stdout

"""`hps-api bmc` and `hps-api power` as an operator runs them (real subprocesses), against
ipmi_sim and a Wake-on-LAN listener (tests/bmc_emulators.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bmc_emulators import IPMI_PASSWORD, IPMI_USER, IpmiBmc, ipmi_sim, wol_listener

from hps_api.store import FileStore, RecordId

MACS = ["525400aabb01", "525400aabb02", "525400aabb03", "525400aabb04"]


@pytest.fixture
def ipmi(tmp_path: Path) -> Iterator[IpmiBmc]:
    with ipmi_sim(tmp_path / "ipmi") as running:
        yield running


@pytest.fixture
def hosts(store: FileStore) -> list[str]:
    for n, mac in enumerate(MACS):
        kind = "SCH" if n < 3 else "TCH"
        store.update(RecordId.of_host("default", mac), {"STATE": "INSTALLED", "TYPE": kind},
                     "t", create=True)
    return MACS


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "bmc-password"
    path.write_text(IPMI_PASSWORD + "\n")
    return path


def set_ipmi(cli, mac: str, sim: IpmiBmc, password_file: Path):  # type: ignore[no-untyped-def]
    return cli("hps-api", "bmc", "set", mac, "--driver", "ipmi", "--address", sim.address,
               "--username", IPMI_USER, "--password-file", str(password_file))


def test_bmc_set_show_unset(cli, hosts: list[str], ipmi: IpmiBmc,
                            password_file: Path) -> None:
    done = set_ipmi(cli, "52:54:00:aa:bb:01", ipmi, password_file)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"BMC of 525400aabb01 set: driver=ipmi address={ipmi.address} "
                           f"username={IPMI_USER} password_set=True\n")
    shown = cli("hps-api", "bmc", "show", "52:54:00:aa:bb:01")
    assert shown.stdout.splitlines() == ["driver=ipmi", f"address={ipmi.address}",
                                         "system_id=", f"username={IPMI_USER}",
                                         "password_set=True", "insecure=False"]
    assert IPMI_PASSWORD not in shown.stdout + done.stdout
    assert cli("hps-api", "bmc", "unset", "525400aabb01").stdout == \
        "BMC of 525400aabb01 removed\n"
    gone = cli("hps-api", "bmc", "show", "525400aabb01")
    assert (gone.returncode, gone.stderr) == (1, "hps-api: host 525400aabb01 has no BMC "
                                                 "settings\n")


def test_a_malformed_address_is_exit_2_and_sets_nothing(cli, hosts: list[str]) -> None:
    done = cli("hps-api", "bmc", "set", MACS[0], "--driver", "redfish", "--address",
               "10.0.0.5", "--username", "u", "--password-stdin", stdin="p\n")
    assert done.returncode == 2
    assert "a Redfish address is https://HOST[:PORT]" in done.stderr
    assert cli("hps-api", "bmc", "show", MACS[0]).returncode == 1


def test_power_on_with_wait_reads_the_state_back(cli, hosts: list[str], ipmi: IpmiBmc,
                                                 password_file: Path) -> None:
    set_ipmi(cli, MACS[0], ipmi, password_file)
    done = cli("hps-api", "power", MACS[0], "on", "--wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "525400aabb01 on: ok: on: power is on (read back)\n"
    assert ipmi.power() == "1"
    status = cli("hps-api", "power", MACS[0], "status")
    assert status.stdout == "525400aabb01 status: ok: power is on\n"


def test_power_without_wait_reports_what_the_bmc_accepted(cli, hosts: list[str],
                                                          ipmi: IpmiBmc,
                                                          password_file: Path) -> None:
    set_ipmi(cli, MACS[0], ipmi, password_file)
    done = cli("hps-api", "power", MACS[0], "on")
    assert done.stdout == "525400aabb01 on: ok: on accepted by the BMC (not read back)\n"


def test_a_host_without_bmc_is_a_clear_error(cli, hosts: list[str]) -> None:
    done = cli("hps-api", "power", MACS[0], "on")
    assert done.returncode == 2
    assert "hps-api: host 525400aabb01 has no BMC: set one first (hps-api bmc set" in done.stderr


def test_bulk_goes_on_past_failures_and_sums_up(cli, hosts: list[str], ipmi: IpmiBmc,
                                                password_file: Path, tmp_path: Path) -> None:
    set_ipmi(cli, MACS[0], ipmi, password_file)
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    cli("hps-api", "bmc", "set", MACS[1], "--driver", "ipmi", "--address", ipmi.address,
        "--username", IPMI_USER, "--password-file", str(wrong))
    with wol_listener() as listener:
        port = listener.getsockname()[1]
        cli("hps-api", "bmc", "set", MACS[3], "--driver", "wol", "--address",
            f"127.255.255.255:{port}")
        done = cli("hps-api", "power", "--all", "on")
        packet, _ = listener.recvfrom(1024)
    assert packet[6:12] == bytes.fromhex(MACS[3])
    assert done.returncode == 1
    lines = sorted(done.stdout.splitlines()[:-1])
    assert lines[0] == "525400aabb01 on: ok: on accepted by the BMC (not read back)"
    assert lines[1].startswith("525400aabb02 on: FAILED: on: the IPMI BMC at")
    assert "refused the username or password" in lines[1]
    assert lines[2].startswith("525400aabb03 on: skipped: host 525400aabb03 has no BMC")
    assert lines[3] == "525400aabb04 on: ok: on accepted by the BMC (not read back)"
    assert done.stdout.splitlines()[-1].startswith(
        "4 hosts: 2 ok, 1 failed, 1 without a BMC (slowest ")


def test_bulk_by_type_touches_only_that_type(cli, hosts: list[str], ipmi: IpmiBmc,
                                             password_file: Path) -> None:
    set_ipmi(cli, MACS[0], ipmi, password_file)
    done = cli("hps-api", "power", "--type", "tch", "status")
    assert done.stdout.splitlines()[-1].startswith("1 hosts: 0 ok, 0 failed, 1 without a BMC")
    assert done.returncode == 0
    assert not (ipmi.state / "log").exists()


def test_bulk_needs_an_action_and_a_known_state(cli, hosts: list[str]) -> None:
    assert cli("hps-api", "power", "--all", MACS[0], "on").returncode == 2
    bad = cli("hps-api", "power", "--state", "SLEEPING", "status")
    assert (bad.returncode, "unknown state 'SLEEPING'" in bad.stderr) == (2, True)


def test_on_a_terminal_bulk_shows_a_progress_bar_then_failures_and_the_summary(
        cli, hosts: list[str], config_dir: Path) -> None:
    import os
    import sys

    import pexpect

    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update(HPS_CONFIG_DIR=str(config_dir), COLUMNS="100")
    child = pexpect.spawn(str(Path(sys.executable).parent / "hps-api"),
                          ["power", "--all", "status"], env=env, encoding="utf-8",
                          timeout=30, dimensions=(24, 100))
    child.expect(pexpect.EOF)
    child.close()
    shown = child.before
    assert "power status  [####################################]  4/4" in shown
    assert "5/4" not in shown  # the bar is updated from many threads: one at a time
    assert "525400aabb01 status: skipped: host 525400aabb01 has no BMC" in shown
    assert "4 hosts: 0 ok, 0 failed, 4 without a BMC" in shown
    assert child.exitstatus == 0

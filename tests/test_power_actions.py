"""Power actions against real BMC emulators (tests/bmc_emulators.py): sushy-tools' Redfish
emulator, OpenIPMI's ipmi_sim over IPMI-over-LAN, and a Wake-on-LAN listener on loopback.

Each action goes through `hps_api.ops.power.run_action`, as every door's does: verified by
reading the state back, retried when that can help, journaled with its actor and logged."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from bmc_emulators import (
    IPMI_PASSWORD,
    IPMI_USER,
    REDFISH_PASSWORD,
    REDFISH_USER,
    IpmiBmc,
    Redfish,
    free_port,
    ipmi_sim,
    sushy_emulator,
    system_uuid,
    wol_listener,
)

from hps_api.errors import Conflict
from hps_api.observe import eventlog
from hps_api.ops import power
from hps_api.power.bmc import Bmc
from hps_api.store import FileStore, RecordId

#: quick to give up, patient enough for the emulator's 1-11 s power changes
FAST = power.Policy(attempts=2, backoff=0.1, timeout=3.0, verify_timeout=20.0,
                    verify_interval=0.25)
MAC = "525400aabb01"


@pytest.fixture(scope="module")
def redfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redfish]:
    with sushy_emulator(tmp_path_factory.mktemp("redfish"), systems=4) as running:
        yield running


@pytest.fixture
def ipmi(tmp_path: Path) -> Iterator[IpmiBmc]:
    with ipmi_sim(tmp_path / "ipmi") as running:
        yield running


@pytest.fixture(autouse=True)
def event_log(tmp_path: Path) -> Path:
    eventlog.setup(tmp_path / "log")
    return tmp_path / "log" / "hps-api.log"


def redfish_bmc(emulator: Redfish, system: int, password: str = REDFISH_PASSWORD) -> Bmc:
    return Bmc("redfish", emulator.url, system_id=system_uuid(system), username=REDFISH_USER,
               password=password)


def ipmi_bmc(sim: IpmiBmc, password: str = IPMI_PASSWORD) -> Bmc:
    return Bmc("ipmi", sim.address, username=IPMI_USER, password=password)


def act(store: FileStore, bmc: Bmc, *steps: str, policy: power.Policy = FAST,
        actor: str = "admin:alice") -> power.Outcome:
    power.set_bmc(store, "default", MAC, bmc, "test:setup")
    return power.run_action(store, "default", MAC, list(steps), actor, policy)


def emulated(emulator: Redfish, system: int) -> dict:
    """The system as the emulator serves it (read past hps-api)."""
    request = urllib.request.Request(f"{emulator.url}/redfish/v1/Systems/{system_uuid(system)}")
    request.add_unredirected_header("Authorization", "Basic " + __import__("base64").b64encode(
        f"{REDFISH_USER}:{REDFISH_PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


# --- Redfish -------------------------------------------------------------------------------

def test_redfish_status_reads_the_system_power(store: FileStore, host: RecordId,
                                               redfish: Redfish) -> None:
    outcome = act(store, redfish_bmc(redfish, 0), "status")
    assert (outcome.ok, outcome.state, outcome.message) == (True, "off", "power is off")


def test_redfish_on_off_and_cycle_are_verified_by_reading_the_state_back(
        store: FileStore, host: RecordId, redfish: Redfish) -> None:
    bmc = redfish_bmc(redfish, 1)
    on = act(store, bmc, "on")
    assert (on.ok, on.state) == (True, "on"), on.message
    assert "read back" in on.message
    assert emulated(redfish, 1)["PowerState"] == "On"
    cycle = act(store, bmc, "cycle")
    assert (cycle.ok, cycle.state) == (True, "on"), cycle.message
    off = act(store, bmc, "off")
    assert (off.ok, off.state) == (True, "off"), off.message
    assert emulated(redfish, 1)["PowerState"] == "Off"
    assert act(store, bmc, "off").message == "already off"


def test_redfish_pxe_once_sets_the_boot_override_to_pxe(store: FileStore, host: RecordId,
                                                        redfish: Redfish) -> None:
    outcome = act(store, redfish_bmc(redfish, 2), "pxe-once")
    assert outcome.ok, outcome.message
    assert emulated(redfish, 2)["Boot"]["BootSourceOverrideTarget"] == "Pxe"
    # sushy-tools' fake driver serves "Continuous" whatever was asked: said, not hidden
    assert "every boot, not only the next" in outcome.message


def test_redfish_wrong_password_is_refused_at_once_and_changes_nothing(
        store: FileStore, host: RecordId, redfish: Redfish) -> None:
    outcome = act(store, redfish_bmc(redfish, 3, password="wrong-password"), "on")
    assert not outcome.ok
    assert outcome.attempts == 1  # a refused password is not retried
    assert "refused the username or password (HTTP 401)" in outcome.message
    assert emulated(redfish, 3)["PowerState"] == "Off"


def test_redfish_unknown_system_says_so(store: FileStore, host: RecordId,
                                        redfish: Redfish) -> None:
    bmc = Bmc("redfish", redfish.url, system_id="no-such-system", username=REDFISH_USER,
              password=REDFISH_PASSWORD)
    outcome = act(store, bmc, "status")
    assert "has no system no-such-system (HTTP 404)" in outcome.message


def test_an_unreachable_bmc_fails_within_a_bounded_time_after_retries(
        store: FileStore, host: RecordId) -> None:
    closed = free_port()
    bmc = Bmc("redfish", f"http://127.0.0.1:{closed}", username="u", password="p")
    started = time.monotonic()
    outcome = act(store, bmc, "on")
    assert time.monotonic() - started < 5
    assert not outcome.ok
    assert outcome.attempts == FAST.attempts
    assert f"cannot reach the Redfish BMC at http://127.0.0.1:{closed}: connection refused " \
           f"(after 2 attempts)" in outcome.message


# --- IPMI ----------------------------------------------------------------------------------

def test_ipmi_on_cycle_off_drive_the_chassis_and_are_read_back(
        store: FileStore, host: RecordId, ipmi: IpmiBmc) -> None:
    bmc = ipmi_bmc(ipmi)
    assert act(store, bmc, "status").state == "off"
    on = act(store, bmc, "on")
    assert (on.ok, on.state, ipmi.power()) == (True, "on", "1"), on.message
    cycle = act(store, bmc, "cycle")
    assert (cycle.ok, cycle.state, ipmi.power()) == (True, "on", "1"), cycle.message
    off = act(store, bmc, "off")
    assert (off.ok, off.state, ipmi.power()) == (True, "off", "0"), off.message
    # the chassis saw each change: on, the cycle's off and on, off
    assert (ipmi.state / "log").read_text().split("\n")[:4] == [
        "power 1", "power 0", "power 1", "power 0"]


def test_ipmi_pxe_once_sets_the_boot_device(store: FileStore, host: RecordId,
                                            ipmi: IpmiBmc) -> None:
    outcome = act(store, ipmi_bmc(ipmi), "pxe-once")
    assert outcome.ok, outcome.message
    assert ipmi.boot() == "pxe"
    # ipmi_sim answers the boot flags as not valid: the message says it was not verified
    assert "not verified" in outcome.message


def test_ipmi_wrong_password_is_refused_and_changes_nothing(store: FileStore, host: RecordId,
                                                            ipmi: IpmiBmc) -> None:
    outcome = act(store, ipmi_bmc(ipmi, password="wrong-password"), "on")
    assert not outcome.ok
    assert "refused the username or password" in outcome.message
    assert outcome.attempts == 1
    assert ipmi.power() == "0"


def test_a_bmc_that_accepts_but_does_not_act_is_a_failure_saying_so(
        store: FileStore, host: RecordId, ipmi: IpmiBmc) -> None:
    ipmi.ignore_changes()
    policy = power.Policy(attempts=2, backoff=0.1, timeout=3.0, verify_timeout=1.5,
                          verify_interval=0.25)
    outcome = act(store, ipmi_bmc(ipmi), "on", policy=policy)
    assert not outcome.ok
    assert outcome.attempts == 1  # the command was taken: sending it again is not the cure
    assert "the BMC accepted on but the host still reports power off after 1.5 s" \
        in outcome.message
    assert (ipmi.state / "log").read_text() == "power 1\n"


def test_an_ipmi_bmc_that_does_not_answer_times_out(store: FileStore, host: RecordId) -> None:
    silent = free_port(__import__("socket").SOCK_DGRAM)
    policy = power.Policy(attempts=1, timeout=3.0)
    started = time.monotonic()
    outcome = act(store, Bmc("ipmi", f"127.0.0.1:{silent}", username="u", password="p"),
                  "status", policy=policy)
    assert time.monotonic() - started < 15
    assert f"no answer from the IPMI BMC at 127.0.0.1:{silent} (timed out)" in outcome.message


# --- Wake-on-LAN ---------------------------------------------------------------------------

def test_wake_on_lan_sends_the_magic_packet_for_the_host(store: FileStore,
                                                         host: RecordId) -> None:
    with wol_listener() as listener:
        port = listener.getsockname()[1]
        outcome = act(store, Bmc("wol", f"127.255.255.255:{port}"), "on")
        packet, _ = listener.recvfrom(1024)
    assert packet == b"\xff" * 6 + bytes.fromhex(MAC) * 16
    assert (outcome.ok, outcome.state) == (True, "unknown")
    assert "cannot read the power state back" in outcome.message


def test_wake_on_lan_refuses_off_before_sending_anything(store: FileStore,
                                                         host: RecordId) -> None:
    with wol_listener() as listener:
        port = listener.getsockname()[1]
        with pytest.raises(Conflict, match="wol cannot off"):
            act(store, Bmc("wol", f"127.255.255.255:{port}"), "off")
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.recvfrom(1024)


# --- records -------------------------------------------------------------------------------

def test_a_changing_action_is_journaled_with_its_actor_and_logged(
        store: FileStore, host: RecordId, ipmi: IpmiBmc, event_log: Path) -> None:
    act(store, ipmi_bmc(ipmi), "on", actor="admin:alice")
    act(store, ipmi_bmc(ipmi, password="wrong-password"), "off", actor="cli:bob")
    act(store, ipmi_bmc(ipmi), "status", actor="admin:carol")
    lines = [(c.new, c.actor) for c in store.history(host) if c.key == "POWER_ACTION"]
    assert lines[0] == ("on: ok: on: power is on (read back)", "admin:alice")
    assert lines[1][0].startswith("off: failed: off: the IPMI BMC at")
    assert lines[1][1] == "cli:bob"
    assert len(lines) == 2  # a status read changes nothing: logged, not journaled
    log = event_log.read_text()
    assert "power on by admin:alice: ok" in log
    assert "power off by cli:bob: failed" in log
    assert "power status by admin:carol: ok" in log
    assert IPMI_PASSWORD not in log
    assert IPMI_PASSWORD not in store.layout.journal("default").read_text()


def test_the_last_state_read_is_remembered_for_the_api(store: FileStore, host: RecordId,
                                                       ipmi: IpmiBmc) -> None:
    act(store, ipmi_bmc(ipmi), "on")
    view = power.power_view(store, "default", MAC)
    assert (view["state"], view["source"], view["error"]) == ("on", "admin:alice", None)
    assert view["bmc"]["password_set"] is True

"""BMC settings (hps_api.power.bmc, hps_api.ops.power): checked addresses, kept apart from the
host record with mode 0600, the password never shown, logged or journaled."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hps_api.errors import CorruptRecord, InvalidInput, NotFound
from hps_api.ops import power
from hps_api.power.bmc import Bmc, BmcStore, checked
from hps_api.power.wol import magic_packet
from hps_api.store import FileStore, RecordId

SECRET = "bmc-secret-Xy7#"
MAC = "525400aabb01"


def redfish(address: str = "https://10.0.0.5", **extra: str | bool) -> Bmc:
    values: dict = {"username": "admin", "password": SECRET, **extra}
    return Bmc("redfish", address, **values)


@pytest.mark.parametrize(("bmc", "address"), [
    (redfish("https://10.0.0.5"), "https://10.0.0.5"),
    (redfish("https://BMC-7.Lab.example:8443/"), "https://bmc-7.lab.example:8443"),
    (redfish("http://127.0.0.1:8000"), "http://127.0.0.1:8000"),
    (redfish("https://[fd00::5]:443"), "https://[fd00::5]:443"),
    (Bmc("ipmi", "10.0.0.6", username="a", password="b"), "10.0.0.6:623"),
    (Bmc("ipmi", "bmc7.lab:6230", username="a", password="b"), "bmc7.lab:6230"),
    (Bmc("ipmi", "[fd00::6]:624", username="a", password="b"), "[fd00::6]:624"),
    (Bmc("wol", "10.99.0.255"), "10.99.0.255:9"),
    (Bmc("wol", "127.255.255.255:4009"), "127.255.255.255:4009"),
])
def test_addresses_are_taken_in_their_canonical_form(bmc: Bmc, address: str) -> None:
    assert checked(bmc).address == address


@pytest.mark.parametrize(("bmc", "says"), [
    (redfish("10.0.0.5"), "https://HOST[:PORT]"),
    (redfish("ftp://10.0.0.5"), "https://HOST[:PORT]"),
    (redfish("https://admin:pw@10.0.0.5"), "https://HOST[:PORT]"),
    (redfish("https://10.0.0.5/redfish/v1"), "https://HOST[:PORT]"),
    (redfish("https://10.0.0.5:99999"), "https://HOST[:PORT]"),
    (redfish("https://bad_host!"), "not a host name"),
    (redfish("https://10.0.0.5\n"), "https://HOST[:PORT]"),
    (Bmc("ipmi", "10.0.0.6:0", username="a", password="b"), "1-65535"),
    (Bmc("ipmi", "10.0.0.6:x", username="a", password="b"), "1-65535"),
    (Bmc("ipmi", "", username="a", password="b"), "HOST[:PORT]"),
    (Bmc("wol", "bmc.lab"), "IPv4 broadcast"),
    (Bmc("wol", "[fd00::1]"), "IPv4 broadcast"),
    (Bmc("wol", "10.0.0.255", username="x"), "no username"),
    (Bmc("ipmi", "10.0.0.6"), "username is required"),
    (Bmc("ipmi", "10.0.0.6", username="a"), "password is required"),
    (Bmc("ipmi", "10.0.0.6", username="a", password="b\x07"), "control characters"),
    (Bmc("ipmi", "10.0.0.6", username="a", password="b", insecure=True), "Redfish only"),
    (Bmc("ipmi", "10.0.0.6", username="a", password="b", system_id="1"), "Redfish only"),
    (Bmc("smoke-signals", "10.0.0.6"), "unknown BMC driver"),
])
def test_a_malformed_setting_is_refused_saying_what_is_wrong(bmc: Bmc, says: str) -> None:
    with pytest.raises(InvalidInput, match=said(says)):
        checked(bmc)


def said(text: str) -> str:
    import re

    return re.escape(text)


def test_the_password_is_never_in_what_is_shown_or_in_repr() -> None:
    bmc = checked(redfish())
    assert SECRET not in repr(bmc)
    assert SECRET not in str(bmc.shown())
    assert bmc.shown()["password_set"] is True


def test_settings_live_apart_from_the_host_record_mode_0600(store: FileStore, host: RecordId,
                                                            config_dir: Path) -> None:
    power.set_bmc(store, "default", MAC, redfish(), "cli:test")
    path = config_dir / "bmc" / "default" / f"{MAC}.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((config_dir / "bmc").stat().st_mode) == 0o700
    assert SECRET not in store.layout.path(host).read_text()
    assert BmcStore(config_dir).get("default", MAC) == checked(redfish())


def test_a_change_of_bmc_is_journaled_with_its_actor_and_without_the_password(
        store: FileStore, host: RecordId, config_dir: Path) -> None:
    power.set_bmc(store, "default", MAC, redfish(), "admin:alice")
    power.set_bmc(store, "default", MAC, Bmc("wol", "10.99.0.255"), "admin:bob")
    power.unset_bmc(store, "default", MAC, "admin:carol")
    lines = [(c.key, c.old, c.new, c.actor) for c in store.history(host) if c.key == "BMC"]
    assert lines == [("BMC", None, "redfish https://10.0.0.5", "admin:alice"),
                     ("BMC", "redfish https://10.0.0.5", "wol 10.99.0.255:9", "admin:bob"),
                     ("BMC", "wol 10.99.0.255:9", None, "admin:carol")]
    assert SECRET not in store.layout.journal("default").read_text()


def test_a_password_left_out_is_kept_for_the_same_driver(store: FileStore,
                                                         host: RecordId) -> None:
    power.set_bmc(store, "default", MAC, redfish(), "t")
    power.set_bmc(store, "default", MAC, redfish("https://10.0.0.9", password=""), "t")
    kept = BmcStore(store.layout.root).get("default", MAC)
    assert kept is not None
    assert (kept.address, kept.password) == ("https://10.0.0.9", SECRET)


def test_a_host_that_is_not_registered_gets_no_bmc(store: FileStore) -> None:
    with pytest.raises(NotFound, match="525400aabb09 not found"):
        power.set_bmc(store, "default", "52:54:00:aa:bb:09", redfish(), "t")
    assert not (store.layout.root / "bmc" / "default" / "525400aabb09.conf").exists()


def test_a_malformed_address_changes_nothing(store: FileStore, host: RecordId) -> None:
    power.set_bmc(store, "default", MAC, redfish(), "t")
    with pytest.raises(InvalidInput):
        power.set_bmc(store, "default", MAC, redfish("https://"), "t")
    assert power.show_bmc(store, "default", MAC)["bmc"]["address"] == "https://10.0.0.5"


def test_a_hand_broken_file_is_reported_as_corrupt(store: FileStore, host: RecordId) -> None:
    power.set_bmc(store, "default", MAC, redfish(), "t")
    path = store.layout.root / "bmc" / "default" / f"{MAC}.conf"
    path.write_text("DRIVER=telepathy\n")
    with pytest.raises(CorruptRecord, match="no known DRIVER"):
        power.show_bmc(store, "default", MAC)


def test_show_and_unset_of_a_host_without_bmc_say_so(store: FileStore, host: RecordId) -> None:
    for call in (power.show_bmc, lambda s, c, m: power.unset_bmc(s, c, m, "t")):
        with pytest.raises(NotFound, match="has no BMC settings"):
            call(store, "default", MAC)


def test_the_magic_packet_is_six_ff_then_the_mac_sixteen_times() -> None:
    packet = magic_packet(MAC)
    assert len(packet) == 102
    assert packet[:6] == b"\xff" * 6
    assert packet[6:] == bytes.fromhex(MAC) * 16

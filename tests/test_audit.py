"""`cmd=host_audit`: decoding, fact names, HW_HASH, hardware changes, bad data, client types."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import quote

import pytest

from hps_api.commands.audit import decode_data, fact_name, parse_facts, plan_audit
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+"}
JSON = {"Accept": "application/json"}
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
FACTS = "manufacturer=QEMU|product=Standard PC (Q35 + ICH9, 2009)|serial=SN 1|memory=16G"


@pytest.fixture(autouse=True)
def lan(tmp_path: Path) -> None:
    """10.99.0.21 is 52:54:00:aa:bb:01 (the `host` fixture) in the neighbour table."""
    (tmp_path / "arp").write_text(ARP)


def audit(web, data: str, prefix: str | None = None, status: int = 200,
          headers: dict[str, str] | None = None):
    """Send `data` URL-encoded once, as a client puts it in a query string."""
    query = f"cmd=host_audit&data={quote(data, safe='')}"
    if prefix is not None:
        query += f"&prefix={quote(prefix, safe='')}"
    return web.get(f"{URL}?{query}", headers=headers or {}, status=status)


def hw(store: FileStore, host: RecordId) -> dict[str, str]:
    return {k: v for k, v in store.items(host).items() if k.startswith("HW_")}


def sha(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


# --- storing facts -----------------------------------------------------------------------------

def test_facts_are_stored_as_hw_keys_with_their_hash(web, store: FileStore, host) -> None:
    assert audit(web, FACTS).text == "ok\n"
    assert hw(store, host) == {
        "HW_MANUFACTURER": "QEMU", "HW_PRODUCT": "Standard PC (Q35 + ICH9, 2009)",
        "HW_SERIAL": "SN 1", "HW_MEMORY": "16G",
        "HW_HASH": sha(["MANUFACTURER=QEMU", "PRODUCT=Standard PC (Q35 + ICH9, 2009)",
                        "SERIAL=SN 1", "MEMORY=16G"])}


def test_data_encoded_twice_is_decoded_twice(web, store, host) -> None:
    # what iPXE builds from ${manufacturer:uristring}, then encoded once more as a parameter
    ipxe_built = f"manufacturer={quote('Dell Inc.', safe='')}|uuid={quote('4c4c-44', safe='')}"
    audit(web, quote(ipxe_built, safe=""))
    assert (store.items(host)["HW_MANUFACTURER"], store.items(host)["HW_UUID"]) == \
        ("Dell Inc.", "4c4c-44")


def test_data_in_a_post_body_works_like_the_node_library_sends_it(web, store, host) -> None:
    web.post(f"{URL}?cmd=host_audit", {"data": "cpu=Xeon|cores=8", "prefix": "cpu0"},
             headers={"User-Agent": "hps-node/0.1", "Accept": "text/plain"})
    assert store.items(host)["HW_CPU0_CORES"] == "8"


@pytest.mark.parametrize(("data", "decoded"), [
    ("a=b", "a=b"),
    ("a%3Db%7Cc%3Dd", "a=b|c=d"),
    ("a%253Db", "a=b"),
    ("a%25253Db", "a%3Db"),
    ("100%", "100%"),
    ("50%zz", "50%zz"),
    ("%41", "A"),
])
def test_data_is_decoded_again_at_most_twice_while_a_percent_sequence_remains(
    data: str, decoded: str
) -> None:
    assert decode_data(data) == decoded


@pytest.mark.parametrize(("raw", "name"), [
    ("manufacturer", "MANUFACTURER"), ("nic0.mac", "NIC0_MAC"), ("CPU(s)", "CPU_S"),
    ("  disk--size ", "DISK_SIZE"), ("0bus", "0BUS"), ("größe", "GR_E"),
])
def test_fact_names_are_normalised_to_key_syntax(raw: str, name: str) -> None:
    assert fact_name(raw) == name


def test_a_prefix_names_a_group(web, store, host) -> None:
    audit(web, "mac=52:54:00:aa:bb:01|speed=1000", prefix="nic0")
    assert (store.items(host)["HW_NIC0_MAC"], store.items(host)["HW_NIC0_SPEED"]) == \
        ("52:54:00:aa:bb:01", "1000")


def test_values_are_trimmed_and_may_be_empty(web, store, host) -> None:
    audit(web, "product=  QEMU   |asset=")
    assert (store.items(host)["HW_PRODUCT"], store.items(host)["HW_ASSET"]) == ("QEMU", "")


def test_hw_hash_does_not_depend_on_fact_order(web, store, host) -> None:
    audit(web, FACTS)
    first = store.items(host)["HW_HASH"]
    audit(web, "|".join(reversed(FACTS.split("|"))))
    assert store.items(host)["HW_HASH"] == first
    assert "HW_CHANGED_AT" not in store.items(host)


def test_an_identical_audit_writes_nothing(web, host, config_dir: Path, snapshot) -> None:
    audit(web, FACTS)
    before = snapshot(config_dir)
    audit(web, FACTS)
    assert snapshot(config_dir) == before


def test_the_whole_audit_is_one_store_update(web, store, host, monkeypatch) -> None:
    audit(web, FACTS)
    calls = []
    real = FileStore.update

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FileStore, "update", counting)
    audit(web, FACTS.replace("16G", "32G"))
    assert len(calls) == 1
    assert {"HW_MEMORY", "HW_HASH", "HW_PREVIOUS_MEMORY", "HW_CHANGED_AT"} <= set(calls[0])


# --- hardware changes --------------------------------------------------------------------------

def test_a_hardware_change_keeps_the_previous_facts_and_logs_a_warning(web, store, host,
                                                                       settings) -> None:
    audit(web, FACTS)
    old_hash = store.items(host)["HW_HASH"]
    audit(web, FACTS.replace("16G", "32G"))
    facts = hw(store, host)
    assert (facts["HW_MEMORY"], facts["HW_PREVIOUS_MEMORY"]) == ("32G", "16G")
    assert facts["HW_PREVIOUS_MANUFACTURER"] == facts["HW_MANUFACTURER"] == "QEMU"
    assert facts["HW_PREVIOUS_HASH"] == old_hash != facts["HW_HASH"]
    assert facts["HW_CHANGED_AT"].endswith("Z")
    line = next(ln for ln in (settings.log_dir / "hps-api.log").read_text().splitlines()
                if "hardware changed" in ln)
    assert line.split()[1:3] == ["WARNING", MAC]
    assert line.endswith("hardware changed: HW_MEMORY '16G' -> '32G'")


def test_a_second_change_replaces_the_previous_snapshot(web, store, host) -> None:
    audit(web, "memory=16G|extra=1")
    audit(web, "memory=32G")
    audit(web, "memory=64G|gpu=A100")
    facts = hw(store, host)
    assert facts["HW_PREVIOUS_MEMORY"] == "32G"
    assert facts["HW_PREVIOUS_EXTRA"] == "1"


@pytest.mark.parametrize(("data", "prefix"), [
    ("tpm_key=first-s3cret|memory=1G", None), ("root_password=s3cret", None),
    ("password=s3cret", "root"), ("memory=1G|db.secret=s3cret", None)])
def test_a_fact_with_a_sensitive_name_is_refused_and_never_logged(web, store, host, settings,
                                                                 data, prefix) -> None:
    """F6: a host must not create keys that non-admins cannot see (HW_ROOT_PASSWORD)."""
    before = store.items(host)
    answer = audit(web, data, prefix=prefix, status=400)
    assert "sensitive name" in answer.text
    assert store.items(host) == before
    log = settings.log_dir / "hps-api.log"
    assert "s3cret" not in (log.read_text() if log.exists() else "")


def test_a_prefixed_audit_replaces_its_group_and_a_missing_fact_is_a_change(web, store,
                                                                            host) -> None:
    audit(web, "manufacturer=QEMU")
    audit(web, "nic0=52:54:00:aa:bb:01|nic1=52:54:00:aa:bb:09", prefix="nic")
    assert "HW_CHANGED_AT" not in store.items(host)
    audit(web, "nic0=52:54:00:aa:bb:01", prefix="nic")
    facts = hw(store, host)
    assert "HW_NIC_NIC1" not in facts
    assert facts["HW_PREVIOUS_NIC_NIC1"] == "52:54:00:aa:bb:09"
    assert facts["HW_MANUFACTURER"] == "QEMU"
    assert "HW_CHANGED_AT" in facts


def test_a_new_fact_in_a_known_group_is_a_change(web, store, host) -> None:
    audit(web, "sda=480G", prefix="disk")
    audit(web, "sda=480G|sdb=4T", prefix="disk")
    assert store.items(host)["HW_PREVIOUS_HASH"]


def test_facts_seen_for_the_first_time_are_not_a_change(web, store, host) -> None:
    audit(web, "manufacturer=QEMU")
    audit(web, "memory=16G")
    audit(web, "sda=480G", prefix="disk")
    items = store.items(host)
    assert "HW_CHANGED_AT" not in items and "HW_PREVIOUS_HASH" not in items
    assert items["HW_HASH"] == sha(["MANUFACTURER=QEMU", "MEMORY=16G", "DISK_SDA=480G"])


PLAN = [
    # (stored facts, data, prefix, changed facts)
    ({}, "a=1", "", []),
    ({"HW_A": "1"}, "a=1", "", []),
    ({"HW_A": "1"}, "a=2", "", ["A"]),
    ({"HW_A": "1"}, "b=2", "", []),
    ({"HW_N_X": "1"}, "y=2", "n", ["N_X", "N_Y"]),
    ({"HW_N_X": "1"}, "x=1", "n", []),
    ({"HW_A": "1"}, "x=1", "n", []),
    ({"HW_A": "1", "HW_N_X": "1"}, "a=1", "", []),
]


@pytest.mark.parametrize(("stored", "data", "prefix", "changed"), PLAN)
def test_what_counts_as_a_hardware_change(stored: dict[str, str], data: str, prefix: str,
                                          changed: list[str]) -> None:
    plan = plan_audit(stored, parse_facts(data, prefix.upper()), prefix.upper(), "now")
    assert plan.changed == changed
    assert ("HW_CHANGED_AT" in plan.changes) == bool(changed)


# --- bad data ----------------------------------------------------------------------------------

BAD = [
    ("cmd=host_audit", "Param 'data' is required"),
    ("cmd=host_audit&data=", "Param 'data' is required"),
    ("cmd=host_audit&data=%7C%7C", "data holds no facts"),
    ("cmd=host_audit&data=manufacturer", "expected name=value"),
    ("cmd=host_audit&data=a%3D1%7Cb", "expected name=value"),
    ("cmd=host_audit&data=a%3Dx%0Ay", "control character"),
    ("cmd=host_audit&data=a%3Dx%0A", "control character"),
    ("cmd=host_audit&data=a%3D%09x", "control character"),
    ("cmd=host_audit&data=a%3Dx%250Ay", "control character"),
    ("cmd=host_audit&data=a%3Dx%251By", "control character"),
    ("cmd=host_audit&data=a%3D%25FF", "does not decode to UTF-8"),
    ("cmd=host_audit&data=---%3Dx", "cannot be made a key"),
    ("cmd=host_audit&data=%C3%BC%3Dx", "cannot be made a key"),
    ("cmd=host_audit&data=" + "n" * 65 + "%3Dx", "cannot be made a key"),
    ("cmd=host_audit&data=hash%3Dx", "fact name HASH is reserved"),
    ("cmd=host_audit&data=changed_at%3Dx", "reserved"),
    ("cmd=host_audit&data=previous_memory%3Dx", "reserved"),
    ("cmd=host_audit&data=x%3D1&prefix=previous", "reserved"),
    ("cmd=host_audit&data=x%3D1&prefix=%2F%2F", "cannot be made a key"),
    ("cmd=host_audit&data=mem%3D1%7CMEM%3D2", "fact MEM given twice"),
    ("cmd=host_audit&data=" + "%7C".join(f"f{i}%3D1" for i in range(65)),
     "more than 64 facts"),
]


@pytest.mark.parametrize(("query", "message"), BAD)
def test_bad_data_is_400_and_changes_nothing(web, store, host, config_dir: Path, snapshot,
                                             query: str, message: str) -> None:
    store.update(host, {"HW_MEMORY": "16G"}, "t")
    before = snapshot(config_dir)
    res = web.get(f"{URL}?{query}", status=400)
    assert message in res.text
    assert snapshot(config_dir) == before


def test_more_than_64_kib_of_data_is_400_and_changes_nothing(web, config_dir: Path,
                                                             snapshot) -> None:
    before = snapshot(config_dir)
    data = "|".join(f"f{i}={'x' * 2000}" for i in range(40))
    res = web.post(f"{URL}?cmd=host_audit", {"data": data}, status=400)
    assert "data larger than 65536 bytes" in res.text
    assert snapshot(config_dir) == before


def test_a_host_cannot_collect_facts_without_bound(web, store, host) -> None:
    store.update(host, {f"HW_G{i}_X": "1" for i in range(256)}, "t")
    res = audit(web, "new=1", status=400)
    assert "at most 256 hardware facts" in res.text


def test_an_unknown_host_is_404_and_not_registered(web, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    res = web.get(f"{URL}?cmd=host_audit&mac=52:54:00:00:00:99&data=a%3D1",
                  extra_environ={"REMOTE_ADDR": "192.0.2.9"}, status=404)
    assert res.text == "Host 525400000099 not found\n"
    assert snapshot(config_dir) == before


# --- client types ------------------------------------------------------------------------------

def test_an_ipxe_client_gets_a_script_that_does_nothing(web, host) -> None:
    res = audit(web, FACTS, headers=IPXE)
    assert res.status_int == 200 and res.content_type == "text/plain"
    assert res.text.startswith("#!ipxe\n")
    assert "echo hps-api: hardware audit stored (4 facts)" in res.text
    for command in ("chain", "boot", "reboot", "exit", "goto"):
        assert f"\n{command} " not in res.text and f"\n{command}\n" not in res.text


def test_an_ipxe_client_is_told_when_the_hardware_changed(web, host) -> None:
    audit(web, "memory=16G", headers=IPXE)
    assert "(1 facts, hardware changed)" in audit(web, "memory=8G", headers=IPXE).text


def test_an_ipxe_client_with_bad_data_gets_an_error_script_with_status_200(web) -> None:
    res = web.get(f"{URL}?cmd=host_audit&data=nonsense", headers=IPXE, status=200)
    assert res.text.startswith("#!ipxe\n") and "expected name=value" in res.text


def test_json_clients_get_the_hash_and_the_changed_facts(web, store, host) -> None:
    audit(web, "memory=16G")
    data = audit(web, "memory=8G", headers=JSON).json["data"]
    assert data == {"mac": MAC, "facts": 1, "hash": store.items(host)["HW_HASH"],
                    "changed": ["MEMORY"]}


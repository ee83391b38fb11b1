"""What a host may write about itself (findings F5, F6, F8 of the attack on the legacy endpoint).

A node is a real LAN neighbour here: 10.99.0.21 in the neighbour table is 52:54:00:aa:bb:01.
Each test is one attack the endpoint once accepted; it must be refused with nothing written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hps_api.ids import SHELL_SPECIAL, is_shell_special
from hps_api.model.host_keys import Owner, node_write_refusal, owner_of
from hps_api.store import FileStore, RecordId

URL = "/cgi-bin/boot_manager.sh"
MAC = "525400aabb01"
OTHER = "525400aabb02"
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
CURL = {"User-Agent": "curl/8.5.0"}
ADMIN = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture(autouse=True)
def lan(tmp_path: Path, store: FileStore, host: RecordId) -> None:
    (tmp_path / "arp").write_text(ARP)
    store.update(host, {"STATE": "INSTALLED", "TYPE": "SCH", "HOSTNAME": "sch-001",
                        "STORAGE0_IP": "10.31.0.2"}, "t")
    store.update(RecordId.of_host("default", OTHER), {"STATE": "INSTALLED",
                                                      "STORAGE0_IP": "10.31.0.3"}, "t",
                 create=True)


def refused(web, store: FileStore, host: RecordId, query: str, status: int = 403,
            environ: dict[str, str] | None = None) -> str:
    before = store.items(host)
    answer = web.get(f"{URL}?{query}", headers=CURL, status=status, extra_environ=environ)
    assert store.items(host) == before
    return str(answer.text)


# --- F5: the state machine cannot be bypassed -------------------------------------------------

def test_a_node_cannot_unset_its_state(web, store, host) -> None:
    text = refused(web, store, host, "cmd=host_variable&name=STATE&action=unset")
    assert "state table" in text


def test_an_installed_host_cannot_get_the_installer_back_by_itself(web, store, host) -> None:
    refused(web, store, host, "cmd=host_variable&name=state&action=unset")
    script = web.get(f"{URL}?cmd=process_menu_item&menu_item=reinstall",
                     headers={"User-Agent": "iPXE/1.21.1+"}).text
    assert "kernel" not in script and store.items(host)["STATE"] == "INSTALLED"


def test_a_node_still_reports_its_state_through_the_table(web, store, host) -> None:
    store.update(host, {"STATE": "INSTALLING"}, "t")
    web.get(f"{URL}?cmd=host_variable&name=STATE&value=INSTALLED", headers=CURL)
    assert store.items(host)["STATE"] == "INSTALLED"


def test_an_admin_may_still_force_a_state(web, store, host) -> None:
    web.get(f"{URL}?cmd=host_variable&name=STATE&action=unset&mac={MAC}", headers=CURL,
            extra_environ=ADMIN)
    assert "STATE" not in store.items(host)


# --- F6: keys that operations own ------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "cmd=host_variable&name=STORAGE0_IP&value=10.31.0.3",
    "cmd=host_variable&name=storage1_ip&value=10.31.1.9",
    "cmd=host_variable&name=INSTALL_ATTEMPTS&value=-99",
    "cmd=host_variable&name=INSTALL_ATTEMPTS&action=unset",
    "cmd=host_variable&name=ISCSI_ROOT_0&value=10.0.0.5:iqn.x",
    "cmd=host_variable&name=HW_HASH&value=0",
    "cmd=host_variable&name=SELFTEST_RESULT&value=pass",
    "cmd=host_variable&name=KEY_SPELLINGS&value=path",
    "cmd=host_variable&name=LAST_SEEN&value=2099-01-01",
    "cmd=host_variable&name=OS_ID&value=x86_64:evil:1",
    "cmd=host_variable&name=GATEWAY&value=10.66.6.6",
    "cmd=host_variable&name=DB_PASSWORD&value=x",
])
def test_a_node_cannot_write_keys_it_does_not_own(web, store, host, query: str) -> None:
    refused(web, store, host, query)


def test_a_node_may_release_its_own_storage_address(web, store, host) -> None:
    web.get(f"{URL}?cmd=host_variable&name=storage0_ip&value=", headers=CURL)
    assert store.items(host)["STORAGE0_IP"] == ""


@pytest.mark.parametrize("key", ["virtualization_status", "storage0_interface", "NOTE",
                                 "reboot_logging", "status"])
def test_free_keys_stay_the_nodes_own(web, store, host, key: str) -> None:
    web.get(f"{URL}?cmd=host_variable&name={key}&value=x", headers=CURL)
    assert store.items(host)[key.upper()] == "x"


def test_ownership_is_one_rule() -> None:
    assert owner_of("STORAGE12_IP") is Owner.ALLOCATION
    assert owner_of("HW_ANYTHING") is Owner.AUDIT
    assert owner_of("STORAGE0_INTERFACE") is Owner.NODE
    assert node_write_refusal("NOTE", ()) is None
    assert node_write_refusal("STORAGE0_IP", (), None) is None  # a release
    assert "managed" in (node_write_refusal("STORAGE0_IP", (), "10.0.0.1") or "")


# --- F8: names shells give a meaning to ------------------------------------------------------

SHELL_NAMES = ["PATH", "PS4", "IFS", "LD_PRELOAD", "BASH_ENV", "ENV", "PROMPT_COMMAND",
               "SHELLOPTS", "path", "Ld_Library_Path", "BASH_FUNC_x%%"]


@pytest.mark.parametrize("name", SHELL_NAMES[:-1])
@pytest.mark.parametrize("environ", [None, ADMIN], ids=["node", "admin"])
def test_no_caller_may_set_a_shell_special_name(web, store, host, name: str,
                                                 environ: dict[str, str] | None) -> None:
    mac = f"&mac={MAC}" if environ else ""
    refused(web, store, host, f"cmd=host_variable&name={name}&value=/tmp/x{mac}", 400, environ)


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_a_planted_shell_special_key_never_reaches_an_old_nodes_eval(
        web, store, host, tmp_path: Path, shell: str) -> None:
    """Even a record edited by hand or imported: host_get_config leaves such names out."""
    path = store.layout.path(host)
    planted = ('PATH=/tmp/planted\nPS4=$(id>PWNED)\nBASH_ENV=/tmp/planted/env\n'
               'SHELLOPTS=xtrace\nIFS=/\n')
    path.write_text(path.read_text() + planted)
    config = web.get(f"{URL}?cmd=host_get_config", headers=CURL).text
    assert not any(line.split("=")[0] in SHELL_SPECIAL for line in config.splitlines())
    (tmp_path / "config").write_text(config)
    result = subprocess.run([shell, "-c", 'eval "$(cat config)"; set -x; echo "$HOSTNAME"'],
                            cwd=tmp_path, capture_output=True, text=True, timeout=10,
                            check=True)
    assert result.stdout == "sch-001\n"
    assert not (tmp_path / "PWNED").exists()


def test_shell_special_names_are_recognised() -> None:
    assert all(is_shell_special(name) for name in SHELL_NAMES)
    assert not any(is_shell_special(name) for name in ("HOSTNAME", "STATE", "PATHS_OK",
                                                       "NOTE", "IFSX"))


@pytest.mark.parametrize(("prog", "args"), [
    ("host_config", (MAC, "set", "PATH", "/tmp/x")),
    ("host_config", (MAC, "set", "ps4", "$(id)")),
    ("cluster_config", ("set", "LD_PRELOAD", "/tmp/x.so")),
    ("cluster_config", ("set", "BASH_ENV", "/tmp/x")),
])
def test_the_clis_refuse_shell_special_names_too(cli, config_dir, snapshot, prog: str,
                                                 args: tuple[str, ...]) -> None:
    before = snapshot(config_dir)
    result = cli(prog, *args)
    assert result.returncode == 2 and "shells give a meaning" in result.stderr
    assert snapshot(config_dir) == before


def test_the_store_refuses_them_for_every_writer_but_lets_them_be_removed(store, host) -> None:
    from hps_api.errors import InvalidInput

    with pytest.raises(InvalidInput, match="shells give a meaning"):
        store.update(host, {"IFS": "/"}, "t")
    store.update(host, {"IFS": None}, "t")  # removing one (an old import's) is always fine

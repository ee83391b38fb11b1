"""The lab tier (docs/lab.md): real dnsmasq with our config, real iPXE, real kernels.

Everything runs inside network namespaces these tests create, on 10.99.0.0/24, which exists only
there; the namespaces are deleted afterwards even when a test fails. Needs root and the Debian
packages scripts/test installs (qemu-system-x86, ipxe, dnsmasq-base, iproute2, busybox). The
lab itself and the helpers that read it are in tests/lab.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from lab import (
    API,
    IPS,
    IPXE,
    PXE_LAB,
    VM_TIMEOUT,
    Lab,
    admin_call,
    build_rescue_image,
    delete_namespace,
    events,
    host_record,
    in_ns,
    lab_env,
    read,
    running_lab,
    wait_for,
    wait_for_init,
)

from hps_api.model.network import INIT_QUERY

pytestmark = pytest.mark.slow

OVMF = "/usr/share/OVMF/OVMF_CODE_4M.fd"

UDHCPC_SCRIPT = """#!/bin/sh
# Prints what the DHCP server offered and configures the address (for the TFTP fetch).
if [ "$1" = bound ]; then
    printf 'HPS-DHCP ip=%s mask=%s siaddr=%s serverid=%s boot_file=%s bootfile=%s\\n' \\
        "$ip" "$mask" "$siaddr" "$serverid" "$boot_file" "$bootfile"
    ip addr add "$ip/$mask" dev "$interface"
fi
exit 0
"""


def namespaces() -> list[str]:
    """Return the names of the network namespaces that exist."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def rescue_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rescue image, built once per session (the directory test_rescue_image.py uses)."""
    return build_rescue_image(tmp_path_factory)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, rescue_image: Path) -> Iterator[Lab]:
    """`scripts/pxe-lab up` in a namespace of our own; always `down` and deleted afterwards."""
    with running_lab(tmp_path_factory.mktemp("lab"), rescue_image) as running:
        yield running


@pytest.fixture
def client(lab: Lab) -> Iterator[Callable[..., str]]:
    """Make client namespaces on the lab bridge (a veth pair each); return a factory.

    `client(mac=None)` returns the new namespace's name; its interface is `vc0`.
    """
    made: list[str] = []

    def make(mac: str | None = None) -> str:
        name = f"{lab.ns}c{len(made)}"
        peer = f"vp{secrets.token_hex(3)}"
        made.append(name)
        steps = [["ip", "netns", "add", name],
                 ["ip", "-n", lab.ns, "link", "add", peer, "type", "veth", "peer", "name",
                  "vc0", "netns", name],
                 ["ip", "-n", lab.ns, "link", "set", peer, "master", "hpsbr0", "up"],
                 ["ip", "-n", name, "link", "set", "lo", "up"],
                 *([["ip", "-n", name, "link", "set", "vc0", "address", mac]] if mac else []),
                 ["ip", "-n", name, "link", "set", "vc0", "up"]]
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        return name

    try:
        yield make
    finally:
        for name in made:
            delete_namespace(name)


def dhcp(ns: str, script: Path, *options: str) -> dict[str, str]:
    """Run busybox udhcpc once in `ns`; return what the server offered (HPS-DHCP line)."""
    result = in_ns(ns, "busybox", "udhcpc", "-i", "vc0", "-s", str(script), "-f", "-q", "-n",
                   "-t", "6", "-T", "2", *options, timeout=60)
    lines = [line for line in result.stdout.splitlines() if line.startswith("HPS-DHCP ")]
    assert lines, f"no DHCP lease:\n{result.stdout}\n{result.stderr}"
    return dict(field.split("=", 1) for field in lines[0].split()[1:])


@pytest.fixture
def udhcpc_script(tmp_path: Path) -> Path:
    """The udhcpc event script that reports the offer."""
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    return script


def tftp_get(ns: str, name: str, into: Path) -> bytes:
    """Fetch `name` from the lab's TFTP server with busybox tftp; return the bytes."""
    got = in_ns(ns, "busybox", "tftp", "-g", "-r", name, "-l", str(into), IPS)
    assert got.returncode == 0, got.stderr
    return into.read_bytes()



# -- DHCP and TFTP with the generated config ---------------------------------------------------


def test_a_bios_pxe_client_gets_undionly_kpxe_and_tftp_serves_it_byte_identical(
        lab: Lab, client: Callable[..., str], udhcpc_script: Path, tmp_path: Path) -> None:
    ns = client()
    offer = dhcp(ns, udhcpc_script)
    assert offer["boot_file"] == "undionly.kpxe"
    assert offer["siaddr"] == IPS and offer["serverid"] == IPS
    assert 100 <= int(offer["ip"].rsplit(".", 1)[1]) <= 199  # the lab's dynamic range
    got = tftp_get(ns, "undionly.kpxe", tmp_path / "undionly.kpxe")
    assert got == (IPXE / "undionly.kpxe").read_bytes()


@pytest.mark.parametrize("arch", ["0007", "0009"])
def test_a_uefi_x64_client_gets_ipxe_efi(lab: Lab, client: Callable[..., str],
                                         udhcpc_script: Path, tmp_path: Path,
                                         arch: str) -> None:
    ns = client()
    offer = dhcp(ns, udhcpc_script, "-x", f"0x5d:{arch}")
    assert offer["boot_file"] == "ipxe.efi"
    assert tftp_get(ns, "ipxe.efi", tmp_path / "ipxe.efi") == (IPXE / "ipxe.efi").read_bytes()


def test_an_ipxe_client_is_sent_straight_to_init_and_it_answers(
        lab: Lab, client: Callable[..., str], udhcpc_script: Path, tmp_path: Path) -> None:
    ns = client()
    offer = dhcp(ns, udhcpc_script, "-x", "0xaf:01", "-x", "0x5d:0007")
    # option 67, the BOOTP file field left empty (iPXE would take that first)
    assert (offer["boot_file"], offer["bootfile"]) == (
        "", f"{API}/cgi-bin/boot_manager.sh?{INIT_QUERY}")
    # what iPXE makes of it: its settings filled in (here the MAC; nothing else is known)
    mac = in_ns(ns, "cat", "/sys/class/net/vc0/address").stdout.strip()
    url = re.sub(r"\$\{[^}]*\}", "", offer["bootfile"].replace("${netX/mac:hexhyp}",
                                                               mac.replace(":", "-")))
    fetched = in_ns(ns, "busybox", "wget", "-q", "-U", "iPXE/1.21.1", "-O", "-", url)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith("#!ipxe") and "menu" in fetched.stdout, fetched.stdout
    assert lab.cli("host_config", mac, "get", "STATE").stdout == "UNCONFIGURED\n"  # registered


def test_tftp_has_nothing_but_the_ipxe_binaries(lab: Lab, client: Callable[..., str],
                                                udhcpc_script: Path, tmp_path: Path) -> None:
    ns = client()
    dhcp(ns, udhcpc_script)
    for name in ("../hps-config/hps.conf", "/etc/passwd", "nope.kpxe"):
        got = in_ns(ns, "busybox", "tftp", "-g", "-r", name, "-l", str(tmp_path / "x"), IPS)
        assert got.returncode != 0, name


def test_a_host_given_an_address_gets_it_after_render_services_reloads_dnsmasq(
        lab: Lab, client: Callable[..., str], udhcpc_script: Path) -> None:
    mac = "52:54:00:7a:00:01"
    for key, value in (("IP", "10.99.0.20"), ("HOSTNAME", "tch-001")):
        assert lab.cli("host_config", mac, "set", key, value).returncode == 0
    rendered = lab.cli("hps-api", "render-services")
    assert rendered.returncode == 0, rendered.stderr
    assert "dnsmasq reloaded" in rendered.stdout
    # ips, ips.cluster.local, tch-001, tch-001.cluster.local: the SIGHUP made dnsmasq re-read.
    wait_for(lambda: "dns-hosts - 4 names" in read(lab.dir / "dnsmasq.log"), 10,
             "dnsmasq to re-read dns-hosts")
    ns = client(mac=mac)
    offer = dhcp(ns, udhcpc_script)
    assert offer["ip"] == "10.99.0.20"
    looked_up = in_ns(ns, "busybox", "nslookup", "tch-001.cluster.local", IPS)
    assert "10.99.0.20" in looked_up.stdout, looked_up.stdout + looked_up.stderr


def test_gunicorn_serves_the_rescue_image_whole_and_resumed_with_a_range(
        lab: Lab, client: Callable[..., str], udhcpc_script: Path, rescue_image: Path,
        tmp_path: Path) -> None:
    ns = client()
    dhcp(ns, udhcpc_script)
    kernel = (rescue_image / "vmlinuz").read_bytes()
    whole = tmp_path / "vmlinuz"
    got = in_ns(ns, "busybox", "wget", "-q", "-O", str(whole), f"{API}/distros/rescue/vmlinuz")
    assert got.returncode == 0, got.stderr
    assert whole.read_bytes() == kernel
    partial = tmp_path / "resumed"
    partial.write_bytes(kernel[:1_000_000])
    # wget -c asks for the rest with `Range: bytes=1000000-` and appends the 206 body.
    got = in_ns(ns, "busybox", "wget", "-q", "-c", "-O", str(partial),
                f"{API}/distros/rescue/vmlinuz")
    assert got.returncode == 0, got.stderr
    assert partial.read_bytes() == kernel
    # gunicorn writes the access line after the last byte went out, so the client can be done
    # first. The whole file (sendfile) and the rest (206) are both logged with their true size.
    for status, size in ((200, len(kernel)), (206, len(kernel) - 1_000_000)):
        line = rf'"GET /distros/rescue/vmlinuz HTTP/1\.1" {status} {size} '
        wait_for(lambda: re.search(line, read(lab.access_log)) is not None, 10,
                 f"access log line {status} {size}")


# -- real firmware, real kernels ----------------------------------------------------------------


def boot_kernel(lab: Lab, mac: str, image: Path, append: str, serial: Path) -> str:
    """Boot the image's kernel and initrd directly (no PXE) with `append`; return the serial
    console once the guest has powered off, failing the test if it did not."""
    booted = lab.pxe_lab("vm", mac, "--kernel", str(image / "vmlinuz"), "--initrd",
                         str(image / "initrd.img"), "--append", append, "--no-reboot",
                         "--timeout", str(VM_TIMEOUT), "--log", str(serial),
                         timeout=VM_TIMEOUT + 30)
    console = read(serial)
    assert booted.returncode == 0, f"VM did not power off (rc {booted.returncode}):\n{console}"
    return console


def start_vm(lab: Lab, mac: str, serial: Path, *options: str, reboot: bool = False,
             timeout: int = VM_TIMEOUT) -> subprocess.Popen[bytes]:
    """Start `pxe-lab vm` in its own process group (stop it with `stop_vm`); with `reboot`, a
    reboot of the guest restarts it (a real machine's reset) instead of ending QEMU."""
    return subprocess.Popen([str(PXE_LAB), "vm", mac, *options, "--timeout", str(timeout),
                             "--log", str(serial), *([] if reboot else ["--no-reboot"])],
                            env=lab.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop_vm(lab: Lab, vm: subprocess.Popen[bytes], mac: str) -> None:
    """Stop a VM started by `start_vm` and wait until pxe-lab removed its tap device."""
    os.killpg(vm.pid, signal.SIGTERM)
    vm.wait(timeout=30)
    tap = "hpstap" + mac.replace(":", "")[6:]
    wait_for(lambda: tap not in in_ns(lab.ns, "ip", "link").stdout, 10,
             "pxe-lab to remove the VM's tap device")


def test_a_pxe_booted_vm_registers_then_boots_the_rescue_image_when_told(
        lab: Lab, tmp_path: Path) -> None:
    """The whole chain: iPXE ROM -> dnsmasq -> init (unknown MAC: registered,
    menu) -> RESCUE=yes -> the menu's next poll -> rescue.ipxe -> kernel and initrd from
    /distros/rescue -> /init -> node library -> "rescue up" in the same boot session."""
    mac, mac12 = "52:54:00:7a:00:02", "5254007a0002"
    serial = tmp_path / "serial.log"
    assert lab.cli("cluster_config", "set", "MENU_TIMEOUT", "5").returncode == 0
    vm = start_vm(lab, mac, serial)
    try:
        wait_for_init(lab, mac)
        log = read(lab.access_log)
        assert "/boot.ipxe" not in log  # DHCP sent iPXE to init itself
        # the console shows 80 columns of it; the access log has the whole request
        assert f"Filename: {API}/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-7a" in read(serial)
        state = lab.cli("host_config", mac, "get", "STATE")
        assert state.stdout == "UNCONFIGURED\n", state.stderr
        assert lab.cli("host_config", mac, "set", "RESCUE", "yes").returncode == 0
        wait_for(lambda: "HPS-RESCUE-READY" in read(serial), VM_TIMEOUT,
                 "the rescue image booted over PXE to report ready")
    finally:
        stop_vm(lab, vm, mac)
    assert re.search(rf"^HPS-RESCUE-READY mac={mac12} .* reported=(library|log_message)",
                     read(serial), re.M), read(serial)[-3000:]
    log = read(lab.access_log)
    assert re.search(r'"GET /distros/rescue/vmlinuz HTTP/1\.1" 200 .*"iPXE/', log)
    assert re.search(r'"GET /distros/rescue/initrd\.img HTTP/1\.1" 200 .*"iPXE/', log)
    rescue_boots = {e[3] for e in events(lab, mac12) if e[4] == "ipxe" and "rescue" in e[5]}
    reports = {e[3] for e in events(lab, mac12) if e[4] != "ipxe" and "rescue" in e[5]}
    assert rescue_boots & reports, events(lab, mac12)  # hps_session= reached the node


def test_uefi_firmware_pxe_fetches_ipxe_efi_over_tftp_then_is_sent_to_init(
        lab: Lab, tmp_path: Path) -> None:
    if not Path(OVMF).exists():
        pytest.skip(f"UEFI LAB TEST NOT RUN: {OVMF} missing (apt-get install ovmf)")
    mac = "52:54:00:7a:00:04"
    serial = tmp_path / "serial.log"
    # No iPXE ROM on the NIC: OVMF's own PXE client asks DHCP with client-arch 7.
    vm = start_vm(lab, mac, serial, "--uefi", "--no-rom")
    try:
        wait_for_init(lab, mac)
    finally:
        stop_vm(lab, vm, mac)
    console = read(serial)
    assert "NBP filename is ipxe.efi" in console
    assert f"Filename: {API}/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-7a" in console
    dnsmasq_log = read(lab.dir / "dnsmasq.log")
    assert re.search(r"sent .*/tftp/ipxe\.efi to 10\.99\.0\.\d+", dnsmasq_log), dnsmasq_log[-2000:]


def test_the_rescue_image_boots_on_the_lab_network_and_reports_in(
        lab: Lab, rescue_image: Path, tmp_path: Path) -> None:
    mac, session = "52:54:00:7a:00:03", "5e5510"
    serial = tmp_path / "serial.log"
    append = (f"console=ttyS0 hps_api={API} hps_mac={mac} hps_session={session} "
              "hps_poweroff=1")
    console = boot_kernel(lab, mac, rescue_image, append, serial)
    ready = re.search(r"^HPS-RESCUE-READY mac=5254007a0003 ip=10\.99\.0\.\d+ "
                      r"reported=(library|log_message)\r?$", console, re.M)
    assert ready, console[-3000:]
    reports = [line for line in read(lab.event_log).splitlines()
               if f" 5254007a0003 {session} " in line and "rescue" in line]
    assert reports, read(lab.event_log)[-3000:]


# -- the node library on a real node, and the whole life of a host ------------------------------

LAB_OS = "x86_64:labos:1"
SELFTESTS = ("API", "DNS", "SYSLOG", "TIME", "DISK", "STORAGE")


@pytest.fixture(scope="module")
def lab_syslog(lab: Lab) -> Iterator[Path | None]:
    """rsyslogd in the lab namespace with the config hps-api generated (services/rsyslog.conf:
    UDP and TCP on SYSLOG_PORT, every line to HPS_LOG_DIR/nodes.log), as on an IPS; yields
    nodes.log, or None without Debian's rsyslog (the nodes' syslog self-test then fails)."""
    rsyslogd = shutil.which("rsyslogd")
    if rsyslogd is None:
        yield None
        return
    configs = sorted(lab.config_dir.glob("clusters/*/services/rsyslog.conf"))
    assert len(configs) == 1, configs
    nodes_log = lab.dir / "log" / "nodes.log"
    assert f'file="{nodes_log}"' in configs[0].read_text()  # never a file outside the lab
    output = lab.dir / "rsyslogd.out"
    with output.open("wb") as out:
        daemon = subprocess.Popen(["ip", "netns", "exec", lab.ns, rsyslogd, "-n", "-f",
                                   str(configs[0]), "-i", str(lab.dir / "rsyslogd.pid")],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: daemon.poll() is not None or re.search(
            r":514\s", in_ns(lab.ns, "ss", "-lnu").stdout) is not None, 15,
            "rsyslogd to listen on port 514")
        assert daemon.poll() is None, read(output)
        yield nodes_log
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)


def state_changes(lab: Lab, mac: str) -> list[tuple[str, str]]:
    """Return a host's STATE changes, oldest first, as (new state, actor)."""
    history = lab.cli("host_config", "--json", mac, "history")
    assert history.returncode == 0, history.stderr
    return [(c["new"], c["actor"]) for c in json.loads(history.stdout) if c["key"] == "STATE"]



def assert_selftest_reported(record: dict[str, str]) -> None:
    """Assert a node's selftest_report is in its record, each check pass or fail:<reason>."""
    outcomes = {name: record.get(f"SELFTEST_{name}", "<missing>") for name in SELFTESTS}
    for name, outcome in outcomes.items():
        assert re.fullmatch(r"pass|fail:\S.*", outcome), (name, outcome)
    verdict = "pass" if set(outcomes.values()) == {"pass"} else "fail"
    assert record.get("SELFTEST_RESULT") == verdict, outcomes
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.get("SELFTEST_AT", ""))
    # busybox wget prints the answer's headers (-S) on stderr: the IPS's Date is read from there
    assert outcomes["API"] == "pass" or outcomes["API"].startswith("fail:clock off"), outcomes


def test_the_rescue_image_runs_the_node_library_under_busybox_and_the_ips_has_its_report(
        lab: Lab, lab_syslog: Path | None, tmp_path: Path) -> None:
    """A host set RESCUE=yes with host_config PXE-boots the rescue image from /distros; its
    /init runs the node library the API serves under busybox sh and busybox wget. Everything is
    checked on the server side: the IPS's event log, the host's record, rsyslog's nodes.log."""
    mac, mac12 = "52:54:00:7a:00:06", "5254007a0006"
    serial = tmp_path / "serial.log"
    assert lab.cli("host_config", mac, "set", "RESCUE", "yes").returncode == 0
    vm = start_vm(lab, mac, serial)
    try:
        wait_for(lambda: "HPS-RESCUE-READY" in read(serial), VM_TIMEOUT,
                 "the rescue image to report in")
    finally:
        stop_vm(lab, vm, mac)
    console = read(serial)
    ready = re.search(rf"^HPS-RESCUE-READY mac={mac12} ip=(10\.99\.0\.\d+) reported=library\r?$",
                      console, re.M)
    assert ready, console[-3000:]
    record = host_record(lab, mac)
    session = record["BOOT_SESSION"]
    assert f", session {session}" in console  # hps_session= of rescue.ipxe reached /init
    said = [(e[3], e[4], e[5]) for e in events(lab, mac12)]
    assert [e for e in said if e[0] == session and e[1] == "ipxe" and
            e[2].startswith("init: rescue ")], said
    # n_remote_log, tagged with HPS_LOG_TAG=rescue (not the script name, "init"), this session
    assert [e for e in said if e[0] == session and e[1] != "ipxe" and
            e[2] == "[rescue] rescue up"], said
    assert not [e for e in said if e[2].startswith("[init]")], said
    assert record["RESCUE_SESSION"] == session  # n_remote_host_variable
    assert_selftest_reported(record)
    if lab_syslog is not None:  # n_syslog_configure: busybox syslogd -R to the IPS's rsyslogd
        assert record["SELFTEST_SYSLOG"] == "pass", record
        assert re.search(rf"^\S+ {re.escape(ready[1])} .*syslog-check hps-{mac12}-",
                         read(lab_syslog), re.M), read(lab_syslog)[-2000:]


def test_a_disk_host_lives_its_whole_life_menu_configure_install_then_local_boot(
        lab: Lab, lab_syslog: Path | None, tmp_path: Path) -> None:
    """PXE -> UNCONFIGURED (menu, polling) -> configured through the JSON API -> installer.ipxe
    -> cmd=kickstart (INSTALLING, hosts/<mac12>.ks) -> set_status INSTALLED -> reboot -> local
    boot. The lab cannot run Anaconda: the OS record points at the rescue image, whose /init,
    given inst.ks=, plays the installer's part (fetch the kickstart, report INSTALLED). Nothing
    on the server side is faked."""
    mac, mac12 = "52:54:00:7a:00:07", "5254007a0007"
    serial = tmp_path / "serial.log"
    added = lab.cli("hps-api", "os", "add", LAB_OS, "--repo-path", "rescue", "--kernel",
                    "vmlinuz", "--initrd", "initrd.img", "--status", "prod", "--types", "SCH")
    assert added.returncode == 0, added.stderr
    assert lab.cli("cluster_config", "set", "MENU_TIMEOUT", "5").returncode == 0
    vm = start_vm(lab, mac, serial, reboot=True, timeout=VM_TIMEOUT * 2)
    try:
        wait_for_init(lab, mac)
        assert host_record(lab, mac)["STATE"] == "UNCONFIGURED"
        configured = admin_call(lab, f"/api/v1/hosts/{mac}/configure", {"type": "SCH"})
        record = configured["record"]
        assert isinstance(record, dict)
        assert (record["STATE"], record["OS_ID"]) == ("CONFIGURED", LAB_OS), record
        wait_for(lambda: "HPS-INSTALL-DONE" in read(serial), VM_TIMEOUT,
                 "the installer stand-in to report INSTALLED")
        wait_for(lambda: any(e[4] == "ipxe" and e[5].startswith("init: localboot ")
                             for e in events(lab, mac12)), VM_TIMEOUT,
                 "the rebooted VM to be answered the local boot")
    finally:
        stop_vm(lab, vm, mac)
    console = read(serial)
    record = host_record(lab, mac)
    assert (record["STATE"], record["TYPE"], record["OS_ID"]) == ("INSTALLED", "SCH", LAB_OS)
    said = [(e[3], e[4], e[5]) for e in events(lab, mac12)]
    install = [e[0] for e in said if e[1] == "ipxe" and e[2].startswith("init: install ")]
    assert install, said
    session = install[-1]
    # the server's side of the install boot, in order, all in the install's boot session
    story = [e[2] for e in said if e[0] == session]
    kickstart = [m for m in story if m.startswith("kickstart served: SCH " + LAB_OS)]
    fetched = [m for m in story if re.fullmatch(
        r"\[rescue\] installer stand-in: kickstart fetched, \d+ bytes", m)]
    assert kickstart and fetched, story
    assert story.index(kickstart[0]) < story.index(fetched[0]) < story.index(
        "state INSTALLING -> INSTALLED"), story
    size = int(fetched[0].split(", ")[1].split()[0])
    stored = sorted(lab.config_dir.rglob(f"{mac12}.ks"))
    assert len(stored) == 1, stored
    text = stored[0].read_bytes()
    assert text.startswith(f"# Kickstart for {record['HOSTNAME']}.".encode()), text[:200]
    assert size == len(text) == int(record["LAB_KICKSTART_BYTES"])
    assert re.search(r'"GET /cgi-bin/boot_manager\.sh\?cmd=kickstart&\S* HTTP/1\.1" 200 '
                     rf'{size} .*"hps-rescue/installer-stand-in"', read(lab.access_log))
    states = state_changes(lab, mac)
    assert [new for new, _ in states] == ["UNCONFIGURED", "CONFIGURED", "INSTALLING",
                                          "INSTALLED"], states
    assert states[1][1].startswith("admin:") and not states[3][1].startswith("admin:"), states
    assert_selftest_reported(record)
    assert record["SELFTEST_DISK"] == "fail:no disk for TYPE SCH"  # checked for its TYPE
    # after the reboot: a new boot session, answered the local boot (iPXE `exit`)
    local = [e[0] for e in said if e[1] == "ipxe" and e[2].startswith("init: localboot ")]
    assert local and local[0] != session, said
    assert re.search(rf"^HPS-INSTALL-DONE mac={mac12} session={session} "
                     rf"kickstart_bytes={size}\r?$", console, re.M), console[-3000:]
    assert f"{record['HOSTNAME']} is INSTALLED: booting from the local disk" in console


def test_the_installer_stand_in_reports_install_failed_with_its_reason(
        lab: Lab, rescue_image: Path, tmp_path: Path) -> None:
    """A kickstart the IPS refuses (the host has no TYPE: 409) is an install that failed: the
    stand-in logs why and reports INSTALL_FAILED, which stops the install loop."""
    mac, mac12, session = "52:54:00:7a:00:08", "5254007a0008", "fa11ed"
    serial = tmp_path / "serial.log"
    assert lab.cli("host_config", mac, "set", "STATE", "INSTALLING").returncode == 0
    kickstart = f"{API}/cgi-bin/boot_manager.sh?cmd=kickstart&mac={mac12}&session={session}"
    append = (f"console=ttyS0 inst.ks={kickstart} hps_api={API} hps_mac={mac} "
              f"hps_session={session} hps_poweroff=1")
    console = boot_kernel(lab, mac, rescue_image, append, serial)
    reason = "kickstart URL answered HTTP 409 (wget exit 1)"
    assert re.search(rf"^HPS-INSTALL-FAILED mac={mac12} session={session} "
                     rf"reason={re.escape(reason)}\r?$", console, re.M), console[-3000:]
    assert "HPS-INSTALL-DONE" not in console
    assert host_record(lab, mac)["STATE"] == "INSTALL_FAILED"
    said = [(e[3], e[5]) for e in events(lab, mac12)]
    assert (session, f"[rescue] installer stand-in failed: {reason}") in said, said
    assert (session, "state INSTALLING -> INSTALL_FAILED") in said, said


# -- through the production front end --------------------------------------------------------------

FRONT = f"http://{IPS}"
# nginx's access log (docs/deploy.md, "Access log"): time client method "path" status bytes
# request-s upstream-s "cmd" "mac"
NGINX_LINE = re.compile(r'(\S+) (\S+) (\S+) "([^"]*)" (\d{3}) (\d+) ([\d.]+) (\S+) "([^"]*)" '
                        r'"([^"]*)"')


@pytest.fixture(scope="module")
def front_lab(rescue_image: Path) -> Iterator[Lab]:
    """`scripts/pxe-lab up --front-end`: nginx on 10.99.0.1:80 with the generated nginx.conf,
    gunicorn on 127.0.0.1:8080 with the generated front-end.env, DHCP handing iPXE
    http://10.99.0.1/boot.ipxe. Always `down`, deleted and removed afterwards."""
    if shutil.which("nginx") is None:
        pytest.skip("FRONT-END LAB TEST NOT RUN: nginx missing (apt-get install nginx)")
    # nginx's workers (www-data) must enter the lab directory and the resources: pytest's
    # temporary directories are 0700.
    directory = Path(tempfile.mkdtemp(prefix="hps-front-lab-"))
    directory.chmod(0o755)
    resources = directory / "resources"
    (resources / "distros").mkdir(parents=True)
    shutil.copytree(rescue_image, resources / "distros" / "rescue")  # the KVM probe's kernel
    ns = f"hpst{secrets.token_hex(3)}"
    running = Lab(ns, directory / "lab", lab_env(ns, directory / "lab", resources))
    try:
        up = running.pxe_lab("up", "--front-end", timeout=180)
        assert up.returncode == 0, f"pxe-lab up --front-end failed:\n{up.stdout}\n{up.stderr}"
        yield running
    finally:
        running.pxe_lab("down", timeout=60)
        delete_namespace(running.ns)
        shutil.rmtree(directory, ignore_errors=True)


def nginx_lines(lab: Lab, offset: int = 0) -> list[re.Match[str]]:
    """Return the front end's access log lines from byte `offset` on, parsed."""
    text = read(lab.dir / "log" / "nginx-access.log")[offset:]
    return [m for m in map(NGINX_LINE.fullmatch, text.splitlines()) if m is not None]


def is_init_of(line: re.Match[str], mac: str) -> bool:
    """Return True for a `cmd=init` line naming `mac` (iPXE sends it as 52-54-... or %3A)."""
    return line[9] == "init" and unquote(line[10]).replace("-", ":").lower() == mac


def boot_requests(lab: Lab, mac: str, serial: Path) -> tuple[list[re.Match[str]], int]:
    """Power a VM on, wait for its `cmd=init` through nginx, power it off; return the HTTP
    requests its boot made, from power-on to that init (the boot decision) included, and the
    number of DHCP exchanges (DHCPACKs) it took."""
    dnsmasq_log = lab.dir / "dnsmasq.log"
    offset, dhcp_offset = len(read(lab.dir / "log" / "nginx-access.log")), len(read(dnsmasq_log))
    vm = start_vm(lab, mac, serial)
    try:
        wait_for(lambda: any(is_init_of(m, mac) for m in nginx_lines(lab, offset)), VM_TIMEOUT,
                 f"VM {mac} to reach cmd=init through nginx")
    finally:
        stop_vm(lab, vm, mac)
    lines = nginx_lines(lab, offset)
    init = next(i for i, m in enumerate(lines) if is_init_of(m, mac))
    acks = re.findall(rf"DHCPACK\(\S+\) \S+ {mac}\b", read(dnsmasq_log)[dhcp_offset:])
    return [m for m in lines[:init + 1] if m[2] == lines[init][2]], len(acks)


def test_through_the_front_end_a_host_boots_and_every_request_is_counted(
        front_lab: Lab, tmp_path: Path) -> None:
    """Through nginx on port 80: DHCP hands the host's iPXE `cmd=init` itself, its MAC and
    identity filled in by iPXE (one request, one DHCP exchange: no /boot.ipxe, no second
    `dhcp`), before and after it has a reservation; init records the boot session each time
    and the access log names every request."""
    mac, mac12 = "52:54:00:7a:00:0b", "5254007a000b"
    first, first_dhcp = boot_requests(front_lab, mac, tmp_path / "first.log")
    assert [(m[4], m[5], m[9]) for m in first] == [
        ("/cgi-bin/boot_manager.sh", "200", "init")], first
    assert first_dhcp == 1  # the ROM's (QEMU's NIC ROM is iPXE): nothing asks again
    # the console shows 80 columns of it; nginx's log has the whole request
    assert (f"Filename: {FRONT}/cgi-bin/boot_manager.sh?cmd=init&mac=52-54-00-7a"
            in read(tmp_path / "first.log")), read(tmp_path / "first.log")[-3000:]
    before = host_record(front_lab, mac)
    assert before["STATE"] == "UNCONFIGURED"

    for key, value in (("IP", "10.99.0.31"), ("HOSTNAME", "tch-031"), ("STATE", "INSTALLED")):
        assert front_lab.cli("host_config", mac, "set", key, value).returncode == 0
    rendered = front_lab.cli("hps-api", "render-services")
    assert rendered.returncode == 0 and "dnsmasq reloaded" in rendered.stdout, rendered.stderr

    second, second_dhcp = boot_requests(front_lab, mac, tmp_path / "second.log")
    assert [(m[2], m[4], m[5], m[9]) for m in second] == [
        ("10.99.0.31", "/cgi-bin/boot_manager.sh", "200", "init")], second
    assert second_dhcp == 1
    after = host_record(front_lab, mac)
    assert after["BOOT_SESSION"] != before["BOOT_SESSION"]
    assert after["LAST_SEEN"] >= before["LAST_SEEN"]
    said = [(e[3], e[4], e[5]) for e in events(front_lab, mac12)]
    assert [e for e in said if e[0] == after["BOOT_SESSION"] and e[1] == "ipxe"
            and e[2].startswith("init: localboot ")], said


# -- the script itself --------------------------------------------------------------------------


def test_vm_refuses_a_malformed_or_multicast_mac(lab: Lab) -> None:
    for mac in ("52:54:00:zz:00:01", "01:00:5e:00:00:01", "525400aabb01"):
        result = lab.pxe_lab("vm", mac, "--timeout", "1")
        assert result.returncode == 2, (mac, result.stderr)


def test_up_twice_fails_and_down_stops_everything_and_deletes_the_namespace(
        tmp_path: Path, rescue_image: Path) -> None:
    ns = f"hpst{secrets.token_hex(3)}"
    small = Lab(ns, tmp_path / "lab", lab_env(ns, tmp_path / "lab", tmp_path / "res", "tcg"))
    try:
        assert small.pxe_lab("up").returncode == 0
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                              check=True).stdout.split()
        assert len(pids) >= 3  # dnsmasq, the gunicorn master and its workers
        again = small.pxe_lab("up")
        assert again.returncode == 1 and "exists already" in again.stderr
        assert "up (QEMU accelerator: tcg)" in small.pxe_lab("status").stdout
        down = small.pxe_lab("down", timeout=60)
        assert down.returncode == 0, down.stderr
        assert ns not in namespaces()
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or Path(
                f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
        assert small.pxe_lab("down").returncode == 0  # idempotent
        assert small.pxe_lab("status").stdout == f"lab {ns}: down\n"
        small.env["HPS_LAB_PORT"] = "99999"
        failed = small.pxe_lab("up")
        assert failed.returncode == 1
        assert "HPS_PORT" in failed.stderr and "not '99999'" in failed.stderr  # refused as set
        assert "taking the lab down again" in failed.stderr
        assert ns not in namespaces()
    finally:
        delete_namespace(ns)

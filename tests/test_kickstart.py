"""`cmd=kickstart` over WebTest, the rendered kickstarts under pykickstart's real `ksvalidator`,
their shell sections under a real shell, and the `.ks` file kept beside the host record."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import write_raw

from hps_api.commands.kickstart import INSTALLERS_DIR, kickstart_values, render_kickstart
from hps_api.errors import InvalidInput, NotFound
from hps_api.store import FileStore, RecordId

MAC = "525400aabb01"
URL = "/cgi-bin/boot_manager.sh"
ANACONDA = {"User-Agent": "anaconda/40.22.3"}
IPXE = {"User-Agent": "iPXE/1.21.1+"}
JSON = {"Accept": "application/json"}
ARP = ("IP address       HW type     Flags       HW address            Mask     Device\n"
       "10.99.0.21       0x1         0x2         52:54:00:aa:bb:01     *        br0\n")
BIN = Path(sys.executable).parent
HOSTILE_PROFILE = """it's "x"; $(touch PWNED) `touch PWNED` \\ #%end ${HOME} ünï"""
HASH = "$6$rounds=5000$saltsalt$0123456789abcdefghijABCDEFGHIJ./xyz"


@pytest.fixture(autouse=True)
def lan(tmp_path: Path, store: FileStore, host: RecordId) -> None:
    """10.99.0.21 is the host, configured as SCH on Rocky 10 and waiting for its installer."""
    (tmp_path / "arp").write_text(ARP)
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": "10.99.0.1", "NETWORK_CIDR": "10.99.0.0/24", "DNS_DOMAIN": "lab.local"}, "t")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,DRH,CCH", "REPO_PATH": "rocky/10/x86_64", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "t", create=True)
    store.update(host, {
        "STATE": "CONFIGURED", "TYPE": "SCH", "PROFILE": "DEFAULT", "OS_ID": "x86_64:rocky:10",
        "HOSTNAME": "sch-001", "IP": "10.99.0.2", "NETMASK": "255.255.255.0", "ARCH": "x86_64",
        "BOOT_SESSION": "ab12cd"}, "t")


def get_kickstart(web, status: int = 200, headers: dict[str, str] | None = None,
                  query: str = "", **environ: str):
    return web.get(f"{URL}?cmd=kickstart{query}", headers=headers or ANACONDA, status=status,
                   extra_environ=environ or None)


# --- the command -------------------------------------------------------------------------------

def test_the_installer_gets_its_kickstart_and_the_host_is_installing(
    web, store: FileStore, host: RecordId
) -> None:
    text = get_kickstart(web).text
    assert text.startswith("# Kickstart for sch-001.lab.local: SCH on x86_64:rocky:10")
    for line in ("url --url=http://10.99.0.1:80/distros/rocky/10/x86_64",
                 "network --bootproto=static --device=52:54:00:aa:bb:01 --ip=10.99.0.2 "
                 "--netmask=255.255.255.0 --gateway=10.99.0.1 --nameserver=10.99.0.1 "
                 "--hostname=sch-001.lab.local --activate --onboot=yes",
                 "logging --host=10.99.0.1 --port=514", "rootpw --lock", "timezone UTC --utc",
                 "%include /tmp/hps-disk.ks"):
        assert f"\n{line}\n" in text
    assert "\nsession=ab12cd\n" in text and "\napi=http://localhost\n" in text
    assert store.read_attachment(host, "ks") == text
    assert store.items(host)["STATE"] == "INSTALLING"


@pytest.mark.parametrize("state", ["CONFIGURED", "REINSTALL", "INSTALLING"])
def test_the_kickstart_is_served_in_every_install_state(web, store, host, state: str) -> None:
    store.update(host, {"STATE": state}, "t")
    assert get_kickstart(web).text.startswith("# Kickstart")
    assert store.items(host)["STATE"] == "INSTALLING"


def test_fetching_it_again_serves_and_keeps_the_very_same_config(web, store, host,
                                                                 config_dir: Path) -> None:
    first = get_kickstart(web).text
    journal = (config_dir / "clusters/default/journal.log").read_text()
    assert get_kickstart(web).text == first
    assert (config_dir / "clusters/default/journal.log").read_text() == journal
    assert (config_dir / f"clusters/default/hosts/{MAC}.ks").read_text() == first


@pytest.mark.parametrize("headers", [ANACONDA, IPXE, {"User-Agent": "curl/8.5.0",
                                                      "Accept": "text/plain"}, {}])
def test_every_client_but_json_gets_the_raw_text(web, headers: dict[str, str]) -> None:
    res = get_kickstart(web, headers=headers)
    assert res.content_type == "text/plain"
    assert res.text.startswith("# Kickstart for sch-001") and res.text.endswith("%end\n")


def test_json_clients_get_the_kickstart_in_data(web, store, host) -> None:
    assert get_kickstart(web, headers=JSON).text.startswith("#")  # Accept alone: the script
    data = get_kickstart(web, headers=JSON, query="&format=json").json["data"]
    assert (data["mac"], data["type"], data["os_id"]) == (MAC, "SCH", "x86_64:rocky:10")
    assert data["kickstart"] == store.read_attachment(host, "ks")


def test_the_root_password_hash_is_used_when_the_cluster_has_one(web, store) -> None:
    store.update(RecordId.of_cluster("default"), {"ROOT_PASSWORD_HASH": HASH}, "t")
    text = get_kickstart(web).text
    assert f"\nrootpw --iscrypted {HASH}\n" in text and "rootpw --lock" not in text


def test_without_os_id_the_cluster_rules_pick_the_os(web, store, host) -> None:
    store.update(RecordId.of_os("x86_64:alma:9"), {
        "STATUS": "test", "HPS_TYPES": "SCH", "REPO_PATH": "alma/9"}, "t", create=True)
    store.update(RecordId.of_cluster("default"), {"OS_SCH_X86_64": "x86_64:alma:9"}, "t")
    store.unset(host, "OS_ID", "t")
    assert "\nurl --url=http://10.99.0.1:80/distros/alma/9\n" in get_kickstart(web).text


def test_the_log_says_which_kickstart_was_served(web, settings) -> None:
    get_kickstart(web)
    log = (settings.log_dir / "hps-api.log").read_text()
    assert "kickstart served: SCH x86_64:rocky:10, state CONFIGURED -> INSTALLING" in log


REFUSED = [
    ({"STATE": "INSTALLED"}, 409, "host 525400aabb01 is INSTALLED: a kickstart is served only in"),
    ({"STATE": "UNCONFIGURED"}, 409, "is UNCONFIGURED"),
    ({"STATE": "NETWORK_BOOT"}, 409, "is NETWORK_BOOT"),
    ({"STATE": "INSTALL_FAILED"}, 409, "is INSTALL_FAILED"),
    ({"STATE": None}, 409, "is without STATE"),
    ({"TYPE": None}, 409, "the host has no TYPE"),
    ({"TYPE": "TCH"}, 409, "no installer template for TCH"),
    ({"TYPE": "../../x"}, 409, "TYPE '../../X' cannot be used"),
    ({"OS_ID": "x86_64:none:1"}, 404, "the host's OS_ID x86_64:none:1 has no OS record"),
    ({"OS_ID": None, "TYPE": "DRH", "ARCH": "aarch64"}, 404, "no OS for DRH"),
    ({"HOSTNAME": None}, 409, "host key HOSTNAME is not set"),
    ({"IP": None}, 409, "host key IP is not set"),
    ({"HOSTNAME": "sch_001 --bogus"}, 409, "HOSTNAME 'sch_001 --bogus' cannot be used"),
    ({"IP": "10.99.0.2 --x"}, 409, "host key IP is not an IPv4 address"),
    ({"NETMASK": "255.0.255.0"}, 409, "no usable netmask"),
    ({"BOOT_SESSION": "ab'; reboot"}, 409, "BOOT_SESSION"),
    ({"OS_DISK": "sda; reboot"}, 409, "OS_DISK"),
]


@pytest.mark.parametrize(("changes", "status", "message"), REFUSED)
def test_a_host_that_cannot_install_is_refused_and_nothing_changes(
    web, store, host, config_dir: Path, snapshot, changes, status: int, message: str
) -> None:
    bad_name = changes.get("HOSTNAME") and "--" in changes["HOSTNAME"]
    store.update(host, {k: v for k, v in changes.items() if not (bad_name and k == "HOSTNAME")},
                 "t")
    if bad_name:  # the store refuses such a name for every writer: a record edited by hand
        write_raw(store, host, {"HOSTNAME": changes["HOSTNAME"]})
    before = snapshot(config_dir)
    assert message in get_kickstart(web, status=status).text
    assert snapshot(config_dir) == before


@pytest.mark.parametrize(("changes", "message"), [
    ({"DHCP_IP": None}, "cluster key DHCP_IP is not set"),
    ({"DNS_DOMAIN": "lab local"}, "DNS_DOMAIN 'lab local' cannot be used"),
    ({"HPS_PORT": "80 --x"}, "cluster key HPS_PORT is not a port number"),
    ({"ROOT_PASSWORD_HASH": "plain text"}, "ROOT_PASSWORD_HASH cannot be used in a kickstart"),
])
def test_unusable_cluster_values_are_refused_and_nothing_changes(
    web, store, config_dir: Path, snapshot, changes, message: str
) -> None:
    rid = RecordId.of_cluster("default")
    store.update(rid, changes, "t")
    before = snapshot(config_dir)
    body = get_kickstart(web, status=409).text
    assert message in body
    assert "plain text" not in body
    assert snapshot(config_dir) == before


def test_an_unknown_host_is_404_and_nothing_is_created(web, config_dir: Path, snapshot) -> None:
    before = snapshot(config_dir)
    res = web.get(f"{URL}?cmd=kickstart&mac=52:54:00:00:00:99", headers=ANACONDA,
                  extra_environ={"REMOTE_ADDR": "192.0.2.9"}, status=404)
    assert res.text == "Host 525400000099 not found\n"
    assert snapshot(config_dir) == before


def test_a_host_may_not_fetch_another_hosts_kickstart(web, store) -> None:
    store.update(RecordId.of_host("default", "525400aabb02"), {"STATE": "CONFIGURED"}, "t",
                 create=True)
    web.get(f"{URL}?cmd=kickstart&mac=525400aabb02", headers=ANACONDA, status=403)


# --- ksvalidator: every template, hostile-but-valid values -------------------------------------

def hostile_values(kind: str, **extra: str) -> dict[str, str]:
    host = {"TYPE": kind, "HOSTNAME": "a-1", "IP": "10.99.0.254", "NETMASK": "255.255.0.0",
            "PROFILE": HOSTILE_PROFILE, "BOOT_SESSION": "", "STATE": "CONFIGURED", **extra}
    cluster = {"DHCP_IP": "10.99.0.1", "DNS_DOMAIN": "x-1.example", "HPS_PORT": "8080",
               "SYSLOG_PORT": "5514", "ROOT_PASSWORD_HASH": HASH}
    return kickstart_values(MAC, host, cluster, "x86_64:alma:9.4",
                            {"REPO_PATH": "alma/9.4/BaseOS/x86_64/os"}, "http://[fd00::1]:8080")


def ksvalidator(path: Path, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ksvalidator"), "-v", version, *extra, str(path)],
                          capture_output=True, text=True, timeout=120)


TEMPLATES = sorted(p.name.split(".")[0].upper() for p in INSTALLERS_DIR.glob("*.ks.j2"))


def test_there_is_a_template_for_every_installing_type() -> None:
    assert TEMPLATES == ["CCH", "DRH", "SCH"]


@pytest.mark.parametrize("version", ["RHEL9", "RHEL10"])
@pytest.mark.parametrize("kind", TEMPLATES)
def test_every_rendered_kickstart_passes_ksvalidator(tmp_path: Path, kind: str,
                                                     version: str) -> None:
    path = tmp_path / f"{kind}.ks"
    path.write_text(render_kickstart(kind, hostile_values(kind)))
    result = ksvalidator(path, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kickstart_served_over_http_passes_ksvalidator(web, tmp_path: Path, store,
                                                          host) -> None:
    store.update(host, {"PROFILE": HOSTILE_PROFILE}, "t")
    path = tmp_path / "served.ks"
    path.write_text(get_kickstart(web).text)
    assert ksvalidator(path, "RHEL10").returncode == 0


def test_the_sch_disk_layout_written_by_pre_passes_ksvalidator_too(tmp_path: Path) -> None:
    text = render_kickstart("SCH", hostile_values("SCH"))
    include = tmp_path / "hps-disk.ks"
    stub(tmp_path, "lsblk", "printf '%s\\n' 'zram0 8589934592 disk 0' 'sdb 4000787030016 disk 0' "
         "'sda 480103981056 disk 0' 'sdc 16008609792 disk 1' 'sr0 1073741312 rom 1'")
    run_section(text, "%pre", tmp_path, replace={"/tmp/hps-disk.ks": str(include)})
    layout = include.read_text()
    assert "ignoredisk --only-use=sda\n" in layout and "--ondisk=sda" in layout
    whole = tmp_path / "whole.ks"
    whole.write_text(text.replace("%include /tmp/hps-disk.ks\n", layout))
    result = ksvalidator(whole, "RHEL10")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_host_os_disk_wins_over_the_smallest_disk(tmp_path: Path) -> None:
    text = render_kickstart("SCH", hostile_values("SCH", OS_DISK="disk/by-id/nvme-X_1"))
    include = tmp_path / "hps-disk.ks"
    stub(tmp_path, "lsblk", "printf '%s\\n' 'sda 1 disk 0'")
    run_section(text, "%pre", tmp_path, replace={"/tmp/hps-disk.ks": str(include)})
    assert "ignoredisk --only-use=disk/by-id/nvme-X_1\n" in include.read_text()


# --- the shell sections report back through the real endpoint ---------------------------------

def stub(directory: Path, name: str, body: str) -> None:
    path = directory / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def section(text: str, header: str) -> str:
    """Return the body of the first section whose header line starts with `header`."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = next(i for i in range(start, len(lines)) if lines[i] == "%end\n")
    return "".join(lines[start + 1:end])


def run_section(text: str, header: str, tmp_path: Path, replace: dict[str, str] | None = None,
                path: str | None = None) -> subprocess.CompletedProcess[str]:
    script = section(text, header)
    for old, new in (replace or {}).items():
        script = script.replace(old, new)
    env = {"PATH": path or f"{tmp_path / 'bin'}:{os.environ['PATH']}", "CALLS": str(tmp_path)}
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)


# The stubs record each call (one argument per line) and answer like the server would.
CURL = """n=0
for f in "$CALLS"/call.*; do [ -e "$f" ] && n=$((n + 1)); done
printf '%s\\n' "$@" > "$CALLS/call.$n"
exit 0"""


def replay(web, call: Path) -> str:
    """Send what curl or wget was asked to send to the real app; return the answer body."""
    args = call.read_text().splitlines()
    data = next(a.split("=", 1)[1] for a in args if a.startswith("--post-data=")) \
        if any(a.startswith("--post-data=") for a in args) else args[args.index("-d") + 1]
    url = urlsplit(args[-1])
    return web.post(f"{url.path}?{url.query}", data, headers={"Accept": "text/plain"}).text


@pytest.mark.parametrize("tool", ["curl", "wget"])
def test_post_reports_installed_through_set_status(web, store, host, tmp_path: Path,
                                                   tool: str) -> None:
    text = get_kickstart(web).text
    stub(tmp_path, tool, CURL)
    stub(tmp_path, "sleep", "exit 0")
    result = run_section(text, "%post --nochroot", tmp_path, path=str(tmp_path / "bin"))
    assert result.returncode == 0, result.stderr
    calls = sorted(tmp_path.glob("call.*"))
    assert len(calls) == 1
    assert replay(web, calls[0]) == f"{MAC} set to INSTALLED\n"
    assert store.items(host)["STATE"] == "INSTALLED"


def test_when_the_report_never_gets_through_the_failure_is_logged(web, settings,
                                                                  tmp_path: Path) -> None:
    text = get_kickstart(web).text
    stub(tmp_path, "curl", CURL.replace("exit 0", "exit 22"))
    stub(tmp_path, "sleep", "exit 0")
    run_section(text, "%post --nochroot", tmp_path, path=str(tmp_path / "bin"))
    calls = sorted(tmp_path.glob("call.*"), key=lambda p: int(p.suffix[1:]))
    assert [c.read_text().count("cmd=set_status") for c in calls] == [1, 1, 1, 1, 1, 0]
    assert replay(web, calls[-1]) == ""
    log = (settings.log_dir / "hps-api.log").read_text()
    assert "[kickstart] could not report INSTALLED" in log


def test_onerror_reports_install_failed(web, store, host, tmp_path: Path) -> None:
    text = get_kickstart(web).text
    stub(tmp_path, "curl", CURL)
    run_section(text, "%onerror", tmp_path, path=str(tmp_path / "bin"))
    assert replay(web, tmp_path / "call.0") == f"{MAC} set to INSTALL_FAILED\n"
    assert store.items(host)["STATE"] == "INSTALL_FAILED"


def test_post_writes_the_api_file_and_hostile_values_stay_data(web, store, host,
                                                               tmp_path: Path) -> None:
    store.update(host, {"PROFILE": HOSTILE_PROFILE}, "t")
    text = get_kickstart(web).text
    root = tmp_path / "root"
    result = run_section(text, "%post --log", tmp_path, replace={
        " /etc/": f" {root}/etc/", "install -d -m 0755": f"mkdir -p {root}/etc/rsyslog.d &&"
        " install -d -m 0755"})
    assert result.returncode == 0, result.stderr
    assert (root / "etc/hps/api").read_text() == "http://localhost\n"
    assert f"PROFILE={HOSTILE_PROFILE}\n" in (root / "etc/hps/host").read_text()
    assert (root / "etc/rsyslog.d/50-hps.conf").read_text() == "*.* @10.99.0.1:514\n"
    assert not (tmp_path / "PWNED").exists()


# --- the filters and the stored file ----------------------------------------------------------

@pytest.mark.parametrize("value", ["a b", "a\nb", "'x'", '"x"', "a#b", "", "a;b", "$(x)"])
def test_the_ks_filter_refuses_anything_but_one_plain_token(value: str) -> None:
    from hps_api.commands.kickstart import ks_token

    with pytest.raises(InvalidInput, match="not safe for a kickstart line"):
        ks_token(value)


@pytest.mark.parametrize("value", [HOSTILE_PROFILE, "", "-n", "a b", "'", "%end"])
def test_the_sh_filter_quotes_any_printable_value_as_one_word(value: str) -> None:
    from hps_api.commands.kickstart import sh_word

    assert shlex.split(sh_word(value)) == [value]


def test_the_sh_filter_refuses_control_characters() -> None:
    from hps_api.commands.kickstart import sh_word

    with pytest.raises(InvalidInput):
        sh_word("a\nb")


def test_attachments_are_only_for_hosts_and_known_suffixes(store: FileStore, host) -> None:
    with pytest.raises(InvalidInput, match="not allowed"):
        store.write_attachment(host, "conf", "x", "t")
    with pytest.raises(InvalidInput, match="not allowed"):
        store.write_attachment(host, "../ks", "x", "t")
    with pytest.raises(InvalidInput, match="only host records"):
        store.write_attachment(RecordId.of_cluster("default"), "ks", "x", "t")
    with pytest.raises(NotFound, match="host/525400aabb09 not found"):
        store.write_attachment(RecordId.of_host("default", "525400aabb09"), "ks", "x", "t")
    with pytest.raises(NotFound, match=r"has no \.ks file"):
        store.read_attachment(host, "ks")


def test_an_attachment_is_replaced_atomically_and_journaled(store: FileStore, host,
                                                            config_dir: Path) -> None:
    path = store.write_attachment(host, "ks", "one\n", "t")
    assert path == config_dir / f"clusters/default/hosts/{MAC}.ks"
    store.write_attachment(host, "ks", "two\n", "admin:127.0.0.1")
    assert store.read_attachment(host, "ks") == "two\n"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    changes = [c for c in store.history(host) if c.key == ".ks"]
    assert [c.actor for c in changes] == ["t", "admin:127.0.0.1"]
    assert changes[0].old is None and changes[1].old == changes[0].new
    assert changes[1].new.startswith("sha256:")


def test_deleting_a_host_removes_its_stored_kickstart(store, host) -> None:
    path = store.write_attachment(host, "ks", "text\n", "t")
    store.delete(host, "t")
    assert not path.exists()

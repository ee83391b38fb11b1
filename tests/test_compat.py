"""The old system's clients, called exactly as they call it, from a real LAN neighbour.

Every call form here is one the bash-era clients use (kickstart `%pre`/`%post`, the node
libraries, the IPS shell helpers): `curl -fsSL URL`, `curl -X POST URL`,
`curl -sS -w '\\n%{http_code}' -X POST URL`, GNU `wget -qO- URL`, `busybox wget -qO- URL`,
dracut's url-lib fetching a kickstart, `eval "$(curl ...)"`, `source` of a fetched library,
`IFS=: read vlan ip netmask gw mtu`. They run in a network namespace of their own (the node,
10.97.0.2, fd97::2) and reach `hps-api serve --bind [::]:80` in a second namespace (the IPS,
10.97.0.1, fd97::1)
as `http://ips/cgi-bin/boot_manager.sh`, with no port, the way old clients name it: `ip netns
exec` lays `/etc/netns/<node>/hosts` over `/etc/hosts`, so `ips` resolves as the cluster's DNS
would. The server learns who is calling from its own namespace's neighbour table, so these callers
are real non-admin hosts, never loopback admins. Needs root and the Debian packages scripts/test
installs (iproute2, curl, wget, busybox, dash).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netns import Link, clean_env, neighbourhood

from hps_api.store import FileStore, RecordId

BIN = Path(sys.executable).parent
IPS_ADDRESS = "10.97.0.1"
NODE_ADDRESS = "10.97.0.2"
IPS_ADDRESS6 = "fd97::1"
NODE_ADDRESS6 = "fd97::2"
NODE_MAC = "52:54:00:97:00:02"
NODE_MAC12 = NODE_MAC.replace(":", "")
OTHER_MAC = "52:54:00:97:00:09"
URL = "http://ips/cgi-bin/boot_manager.sh"
TOOLS = ("ip", "curl", "wget", "busybox", "dash", "bash")
SHELLS = {"bash": ["bash", "-c"], "dash": ["dash", "-c"], "busybox": ["busybox", "sh", "-c"]}
START_TIMEOUT = 30.0
CALL_TIMEOUT = 60


def unavailable() -> str | None:
    """Return why this tier cannot run here, or None."""
    if os.geteuid() != 0:
        return "COMPAT TIER NOT RUN: needs root (network namespaces, port 80)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"COMPAT TIER NOT RUN: missing {', '.join(missing)} (scripts/test installs them)"
    return None


@dataclass(frozen=True)
class Neighbourhood:
    """An IPS namespace serving hps-api on port 80 and a node namespace next to it."""

    ips_ns: str
    node_ns: str
    root: Path
    store: FileStore

    @property
    def config_dir(self) -> Path:
        return self.root / "hps-config"

    @property
    def event_log(self) -> Path:
        return self.root / "log" / "hps-api.log"

    def node(self, script: str, shell: str = "bash", *, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell script on the node, as the node."""
        return subprocess.run(["ip", "netns", "exec", self.node_ns, *SHELLS[shell], script],
                              capture_output=True, text=True, timeout=CALL_TIMEOUT,
                              cwd=cwd or self.root, env={**clean_env(), **(env or {})},
                              check=False)

    def on_ips(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the IPS namespace (loopback there is the IPS itself)."""
        return subprocess.run(["ip", "netns", "exec", self.ips_ns, *argv], capture_output=True,
                              text=True, timeout=CALL_TIMEOUT, env=clean_env(), check=False)

    def host(self, mac: str = NODE_MAC) -> RecordId:
        return RecordId.of_host("default", mac)


LINK = Link("hpsc-ips", "hpsc-node", NODE_MAC, (f"{IPS_ADDRESS}/24", f"{IPS_ADDRESS6}/64"),
            (f"{NODE_ADDRESS}/24", f"{NODE_ADDRESS6}/64"), gateway=IPS_ADDRESS)


def _seed(store: FileStore) -> None:
    """A provisioning network, an OS, the node configured as SCH, and one other host."""
    store.update(RecordId.of_cluster("default"), {
        "DHCP_IP": IPS_ADDRESS, "NETWORK_CIDR": "10.97.0.0/24", "DNS_DOMAIN": "lab.local",
        "DB_PASSWORD": "s3cret"}, "test:setup")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod",
        "HPS_TYPES": "SCH,DRH,CCH", "REPO_PATH": "rocky/10/x86_64", "KERNEL": "vmlinuz",
        "INITRD": "initrd.img"}, "test:setup", create=True)
    store.update(RecordId.of_host("default", NODE_MAC), {
        "STATE": "CONFIGURED", "TYPE": "SCH", "PROFILE": "DEFAULT", "OS_ID": "x86_64:rocky:10",
        "HOSTNAME": "sch-001", "IP": NODE_ADDRESS, "NETMASK": "255.255.255.0",
        "ARCH": "x86_64"}, "test:setup", create=True)
    store.update(RecordId.of_host("default", OTHER_MAC), {"STATE": "INSTALLED", "NOTE": "other"},
                 "test:setup", create=True)


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neighbourhood]:
    """`hps-api serve --bind [::]:80` in the IPS namespace, a node beside it.

    The dual-stack bind is the harder case: IPv4 callers arrive as `::ffff:10.97.0.2`.
    """
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("compat")
    tag = f"{os.getpid() % 100000}"
    ips_ns, node_ns = f"hpsc-ips-{tag}", f"hpsc-node-{tag}"
    env = {**clean_env(), "HPS_CONFIG_DIR": str(root / "hps-config"),
           "HPS_LOG_DIR": str(root / "log"), "HPS_RESOURCES_DIR": str(root / "resources"),
           "HPS_DHCP_LEASES": str(root / "dnsmasq.leases"), "HPS_LOCK_TIMEOUT": "5"}
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=root, check=True,
                   capture_output=True, timeout=60)
    store = FileStore(root / "hps-config")
    _seed(store)
    with neighbourhood(ips_ns, node_ns, LINK, IPS_ADDRESS):
        stderr = (root / "serve.stderr").open("wb")
        server = subprocess.Popen(
            ["ip", "netns", "exec", ips_ns, str(BIN / "hps-api"), "serve", "--bind", "[::]:80",
             "--workers", "1"], env=env, cwd=root, stdout=stderr, stderr=stderr,
            start_new_session=True)
        hood = Neighbourhood(ips_ns, node_ns, root, store)
        try:
            _wait_until_serving(hood, server)
            yield hood
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)
            stderr.close()


def _wait_until_serving(hood: Neighbourhood, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"hps-api serve exited with {server.returncode}: "
                        f"{(hood.root / 'serve.stderr').read_text()}")
        if hood.on_ips("curl", "-fsS", "-m", "2", "http://127.0.0.1/api/v1/health").returncode \
                == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"no answer on port 80 within {START_TIMEOUT} s")


@pytest.fixture
def node_record(lan: Neighbourhood) -> Iterator[RecordId]:
    """The node's record as _seed made it, restored after each test."""
    rid = lan.host()
    before = lan.store.items(rid)
    yield rid
    current = lan.store.items(rid)
    lan.store.update(rid, {**{k: None for k in current if k not in before}, **before},
                     "test:restore")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Return stdout of a call that must have succeeded."""
    assert result.returncode == 0, f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- 1. curl and wget, with their default headers, get the old text ---------------------------

CLIENTS = {
    "curl": 'curl -fsSL "{url}"',
    "wget": 'wget -qO- "{url}"',
    "busybox-wget": 'busybox wget -qO- "{url}"',
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("query", "body"), [
    ("cmd=determine_state", "CONFIGURED\n"),
    ("cmd=host_variable&name=HOSTNAME", "sch-001\n"),
    ("cmd=host_variable&name=hostname", "sch-001\n"),
    ("cmd=cluster_variable&name=DNS_DOMAIN", "lab.local\n"),
    ("cmd=os_variable&os_id=x86_64:rocky:10&name=KERNEL", "vmlinuz\n"),
    ("cmd=syslog_check&key=never-sent-1234", "no\n"),
])
def test_getters_answer_old_clients_the_bare_text(lan, node_record, client: str, query: str,
                                                  body: str) -> None:
    assert ok(lan.node(CLIENTS[client].format(url=f"{URL}?{query}"))) == body


@pytest.mark.parametrize("client", CLIENTS)
def test_setters_answer_the_old_sentences(lan, node_record, client: str) -> None:
    out = ok(lan.node(CLIENTS[client].format(url=f"{URL}?cmd=host_variable&name=reboot_logging"
                                                 "&value=enabled")))
    assert out == f"{NODE_MAC12} set REBOOT_LOGGING to enabled\n"
    assert lan.store.items(node_record)["REBOOT_LOGGING"] == "enabled"


def test_curl_post_with_an_empty_first_pair_reports_installed(lan, node_record) -> None:
    lan.store.update(node_record, {"STATE": "INSTALLING"}, "test:setup")
    ok(lan.node(f'curl -X POST "{URL}?&cmd=set_status&status=INSTALLED"'))
    assert lan.store.items(node_record)["STATE"] == "INSTALLED"


def test_curl_with_the_status_code_appended_sees_the_real_code(lan, node_record) -> None:
    out = ok(lan.node(f"curl -sS -w '\\n%{{http_code}}' -X POST "
                      f"\"{URL}?cmd=host_variable&name=NO_SUCH_NAME\""))
    body, code = out.rsplit("\n", 1)
    assert code == "404"
    assert '"ok": false' in body and "Key 'NO_SUCH_NAME' not found" in body
    done = lan.node(f"curl -sS -w '\\n%{{http_code}}' -X POST \"{URL}?cmd=determine_state\"")
    assert ok(done) == "CONFIGURED\n\n200"


def test_curl_fail_stops_on_an_error_and_prints_no_body(lan, node_record) -> None:
    result = lan.node(f'curl -fsSL "{URL}?cmd=host_variable&name=NO_SUCH_NAME"')
    assert result.returncode == 22 and result.stdout == ""


# --- eval of host_get_config, with the spelling the node wrote -------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_eval_of_host_get_config_gives_back_lower_case_keys(lan, node_record,
                                                            shell: str) -> None:
    script = (f'wget -qO- "{URL}?cmd=host_variable&name=virtualization_status&value=active" '
              '>/dev/null\n'
              f'eval "$(curl -fsSL "{URL}?cmd=host_get_config")"\n'
              'echo "$HOSTNAME|$virtualization_status|$VIRTUALIZATION_STATUS|$STATE"')
    assert ok(lan.node(script, shell)) == "sch-001|active|active|CONFIGURED\n"


def test_host_get_config_never_shows_another_host_or_a_cluster_secret(lan, node_record) -> None:
    out = ok(lan.node(f'curl -fsSL "{URL}?cmd=host_get_config"'))
    assert 'HOSTNAME="sch-001"' in out and "other" not in out
    denied = lan.node(f'curl -fsS "{URL}?cmd=cluster_variable&name=DB_PASSWORD"')
    assert denied.returncode == 22 and "s3cret" not in denied.stdout


# --- storage allocation read with IFS=: ------------------------------------------------------

OLD_STORAGE = {"network_storage_count": "1", "network_storage_base_vlan": "31",
               "network_storage_mtu": "9000", "network_storage_vlan31_subnet": "10.31.0.0/24",
               "network_storage_vlan31_gateway": "10.31.0.1",
               "network_storage_vlan31_netmask": "255.255.255.0"}


@pytest.mark.parametrize("shell", SHELLS)
def test_an_old_key_cluster_allocates_and_ifs_read_parses_it(lan, node_record,
                                                             shell: str) -> None:
    cluster = RecordId.of_cluster("default")
    lan.store.update(cluster, OLD_STORAGE, "test:setup")
    try:
        script = (f'curl -fsSL "{URL}?cmd=host_allocate_networks&index=0" > /tmp/alloc.$$\n'
                  'IFS=: read vlan ip netmask gw mtu < /tmp/alloc.$$; rm -f /tmp/alloc.$$\n'
                  'echo "vlan=$vlan ip=$ip netmask=$netmask gw=$gw mtu=$mtu"')
        out = ok(lan.node(script, shell))
        allocated = lan.store.items(node_record)["STORAGE0_IP"]
        assert out == (f"vlan=31 ip={allocated} netmask=255.255.255.0 gw=10.31.0.1 "
                       "mtu=9000\n")
    finally:
        lan.store.update(cluster, {k: None for k in OLD_STORAGE}, "test:restore")


# --- the installer's kickstart, fetched by dracut's url-lib ----------------------------------

def test_dracut_url_lib_fetches_the_kickstart_as_text(lan, node_record, tmp_path) -> None:
    out = tmp_path / "ks.cfg"
    result = lan.node(
        "curl --globoff --location --retry 3 --fail --show-error --output "
        f"{out} -H 'X-Anaconda-Architecture: x86_64' "
        "-H 'X-Anaconda-System-Release: Rocky Linux' "
        f"\"{URL}?cmd=kickstart\"")
    ok(result)
    text = out.read_text()
    assert text.startswith("# Kickstart for sch-001.lab.local: SCH on x86_64:rocky:10")
    assert "\nurl --url=http://" in text and '"ok"' not in text
    assert lan.store.items(node_record)["STATE"] == "INSTALLING"


# --- a LAN neighbour is a host, never an admin, and cannot speak for another host ------------

def test_a_neighbour_cannot_write_the_cluster(lan, node_record) -> None:
    result = lan.node(f'curl -sS -w "\\n%{{http_code}}" '
                      f'"{URL}?cmd=cluster_variable&name=DNS_DOMAIN&value=evil.example"')
    assert ok(result).endswith("\n403")
    assert lan.store.items(RecordId.of_cluster("default"))["DNS_DOMAIN"] == "lab.local"


def test_a_neighbour_naming_another_mac_is_refused(lan, node_record) -> None:
    result = lan.node(f'curl -sS -w "\\n%{{http_code}}" '
                      f'"{URL}?cmd=host_variable&name=NOTE&value=x&mac={OTHER_MAC}"')
    assert ok(result).endswith("\n403")
    assert lan.store.items(lan.host(OTHER_MAC))["NOTE"] == "other"


def test_the_server_knows_the_node_by_its_neighbour_entry(lan, node_record) -> None:
    ok(lan.node(f'curl -fsS "{URL}?cmd=log_message&message=neighbour-check-7"'))
    line = next(ln for ln in lan.event_log.read_text().splitlines()
                if "neighbour-check-7" in ln)
    assert NODE_MAC12 in line.split() or "sch-001" in line.split()


# --- bad input from an old client: a clear error, nothing written ----------------------------

@pytest.mark.parametrize(("query", "code"), [
    ("cmd=host_variable&name=bad-key&value=x", "400"),
    ("cmd=host_variable&name=NOTE&value=a%0Ab", "400"),
    ("cmd=host_allocate_networks&index=x", "400"),
    ("cmd=set_status&status=BOGUS", "400"),
    ("cmd=no_such_command", "404"),
])
def test_bad_input_from_curl_is_a_json_error_and_writes_nothing(lan, node_record, query: str,
                                                                code: str) -> None:
    before = lan.store.items(node_record)
    out = ok(lan.node(f"curl -sS -w '\\n%{{http_code}}' \"{URL}?{query}\""))
    body, status = out.rsplit("\n", 1)
    assert status == code and body.startswith('{"ok": false')
    assert lan.store.items(node_record) == before


# --- the kickstart's %pre/%post and the diskless overlay's start script ----------------------

def test_the_kickstart_bootstrap_lines_run_the_queue_and_report_installed(
        lan, node_record, tmp_path) -> None:
    lan.store.update(node_record, {"STATE": "INSTALLING"}, "test:setup")
    root = tmp_path / "node"
    root.mkdir()
    script = f"""
export HPS_NODE_ROOT={root}
curl -fsSL "{URL}?cmd=node_get_bootstrap_functions" >{root}/remote_functions.sh
source {root}/remote_functions.sh
hps_load_node_functions
n_remote_log "Entering PRE stage compat-marker-41"
n_queue_add "echo queued-ran > {root}/ran"
n_queue_add false
n_queue_run; echo "failed=$?"
curl -X POST "{URL}?&cmd=set_status&status=INSTALLED"
"""
    out = ok(lan.node(script))
    assert "failed=1\n" in out and out.endswith(f"{NODE_MAC12} set to INSTALLED\n")
    assert (root / "ran").read_text() == "queued-ran\n"
    assert lan.store.items(node_record)["STATE"] == "INSTALLED"
    assert any("compat-marker-41" in line for line in lan.event_log.read_text().splitlines())


@pytest.mark.parametrize("shell", SHELLS)
def test_the_overlay_start_script_runs_hps_node_init(lan, node_record, tmp_path,
                                                     shell: str) -> None:
    root = tmp_path / "node"
    root.mkdir()
    ok(lan.node(f'wget -qO {root}/hps-bootstrap-lib.sh '
                f'"{URL}?cmd=node_get_bootstrap_functions"', shell))
    script = (f"export HPS_NODE_ROOT={root}; . {root}/hps-bootstrap-lib.sh && "
              f"n_queue_add 'n_remote_host_variable overlay_boot done' && hps_node_init; "
              'echo "rc=$?"')
    assert ok(lan.node(script, shell)).endswith("rc=0\n")
    config = ok(lan.node(f'eval "$(curl -fsSL "{URL}?cmd=host_get_config")"; '
                         'echo "$overlay_boot"', shell))
    assert config == "done\n"


# --- identity over IPv6 and through a dual-stack socket --------------------------------------

URL6 = f"http://[{IPS_ADDRESS6}]/cgi-bin/boot_manager.sh"


def test_an_ipv6_neighbour_is_known_by_its_neighbour_entry(lan, node_record) -> None:
    out = ok(lan.node(f'curl -g -fsS "{URL6}?cmd=host_variable&name=NOTE6&value=over-v6"'))
    assert out == f"{NODE_MAC12} set NOTE6 to over-v6\n"
    assert lan.store.items(node_record)["NOTE6"] == "over-v6"


@pytest.mark.parametrize("url", [URL, URL6], ids=["ipv4-mapped", "ipv6"])
def test_a_neighbour_cannot_write_another_hosts_key_over_either_family(lan, node_record,
                                                                        url: str) -> None:
    result = lan.node(f'curl -g -sS -w "\\n%{{http_code}}" '
                      f'"{url}?cmd=set_status&status=UNMANAGED&mac={OTHER_MAC}"')
    assert ok(result).endswith("\n403")
    result = lan.node(f'curl -g -sS -w "\\n%{{http_code}}" '
                      f'"{url}?cmd=host_variable&name=NOTE&value=owned&mac={OTHER_MAC}"')
    assert ok(result).endswith("\n403")
    assert lan.store.items(lan.host(OTHER_MAC)) == {**lan.store.items(lan.host(OTHER_MAC)),
                                                    "STATE": "INSTALLED", "NOTE": "other"}

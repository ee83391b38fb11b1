"""The old system's node scripts against hps-api: the bootstrap and the node library fetched,
loaded and called exactly as the old clients do.

The old clients: the kickstart's %pre and %post (`curl -fsSL ...cmd=node_get_bootstrap_functions
>/tmp/remote_functions.sh; source /tmp/remote_functions.sh; hps_load_node_functions`, then
`n_remote_log` and `n_queue_run`), install-hps-libs.sh (the same three lines), and the TCH
overlay's local.d start script (`/bin/bash -c 'source /usr/local/lib/hps-bootstrap-lib.sh &&
hps_node_init'`). Each runs here under bash, dash and busybox sh, against the real app on a
loopback port (test_node_conformance's `ips`), fetching with the tools' own default headers:
`curl -fsSL URL`, `wget -qO- URL`, `busybox wget -qO- URL`. The node's MAC and default gateway
come from a fake /proc/net/route and /sys/class/net under HPS_NODE_ROOT, as on a real node.
"""

from __future__ import annotations

import os
import platform
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from node_cases import CLIENTS, HOST_MAC, HOSTNAME, NODE_SH, NodeClient, require
from test_node_conformance import Ips, in_order
from test_node_conformance import ips as ips  # the module's IPS: the real app on loopback
from test_node_lib import FakeIps
from test_node_lib import fake as fake  # a recording fake IPS

from hps_api.commands import node as node_commands

pytestmark = pytest.mark.slow

BOOTSTRAP_SH = NODE_SH.parent / "hps-bootstrap.sh"
SH_CLIENTS = [client for client in CLIENTS if client.shell]
SH_IDS = [client.name for client in SH_CLIENTS]

#: the fetch commands of the old clients, with each tool's own default headers
FETCHES = {
    "curl": ("curl", "-fsSL"),
    "wget": ("wget", "-qO-"),
    "busybox wget": ("busybox", "wget", "-qO-"),
}
#: the fetch tool each shell's node has (bash: Rocky's kickstart; busybox: Alpine, rescue)
NATIVE_FETCH = {"dash+wget": "wget", "busybox+busybox-wget": "busybox wget",
                "bash+curl": "curl"}

BOOTSTRAP_FUNCTIONS = ("hps_get_provisioning_node", "hps_fetch_node_functions",
                       "hps_load_node_functions", "hps_node_init", "hps_reload", "hps_status")
LIBRARY_FUNCTIONS = ("n_ips_command", "n_remote_log", "n_remote_host_variable",
                     "n_remote_cluster_variable", "n_load_remote_host_config", "n_url_encode",
                     "n_get_provisioning_node", "n_node_information", "n_queue_add",
                     "n_queue_run", "n_queue_list", "n_queue_clear")
#: distro strings the old clients send (hps_get_distro_string: <cpu>-linux-<ID>-<VERSION_ID>)
OLD_DISTROS = ("x86_64-linux-rockylinux-10.0", "x86_64-linux-rocky-10.0",
               "x86_64-linux-alpine-3.20.3", "unknown-linux-unknown-unknown")
#: /proc/net/route of a node whose default route is eth0 via 10.99.0.1
ROUTE = ("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
         "eth0\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
         "eth0\t00000000\t0100630A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")


def bootstrap_url(ips: Ips) -> str:
    return f"{ips.url}/cgi-bin/boot_manager.sh?cmd=node_get_bootstrap_functions"


def library_url(ips: Ips, distro: str) -> str:
    return (f"{ips.url}/cgi-bin/boot_manager.sh?cmd=node_get_functions&distro="
            f"{urllib.parse.quote(distro, safe='')}")


def node_root(tmp_path: Path) -> Path:
    """Return a fresh HPS_NODE_ROOT: default route eth0 via 10.99.0.1, eth0 has the host's MAC."""
    root = tmp_path / "node"
    (root / "tmp").mkdir(parents=True)
    (root / "proc" / "net").mkdir(parents=True)
    (root / "proc" / "net" / "route").write_text(ROUTE)
    (root / "sys" / "class" / "net" / "eth0").mkdir(parents=True)
    (root / "sys" / "class" / "net" / "eth0" / "address").write_text(HOST_MAC + "\n")
    return root


def fetch(tool: str, url: str) -> subprocess.CompletedProcess[str]:
    """Fetch `url` as the old clients do, with nothing in the environment but PATH."""
    argv = FETCHES[tool]
    require(argv[0])
    return subprocess.run([*argv, url], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"]}, check=False)


def sh(client: NodeClient, script: str, root: Path, *args: str,
       **env: str) -> subprocess.CompletedProcess[str]:
    """Run `script` under the client's shell ($0 is `node-script`, then `args`), with only PATH,
    TMPDIR, HPS_NODE_ROOT, the client's HTTP tool and `env` in the environment."""
    require(*client.tools)
    environment = {"PATH": os.environ["PATH"], "TMPDIR": str(root / "tmp"),
                   "HPS_NODE_ROOT": str(root), **client.env(), **env}
    return subprocess.run([*client.shell, "-c", script, "node-script", *args],
                          capture_output=True, text=True, env=environment, timeout=120,
                          check=False)


def dot(client: NodeClient) -> str:
    """Return how the client's shell sources a file (`source` in the bash kickstarts)."""
    return "source" if client.shell == ("bash",) else "."


def log_after(ips: Ips, start: int) -> str:
    return ips.log.read_bytes()[start:].decode() if ips.log.exists() else ""


def log_size(ips: Ips) -> int:
    return ips.log.stat().st_size if ips.log.exists() else 0


def unserved_bootstrap(tmp_path: Path) -> Path:
    """Return the bootstrap as the IPS serves it (bootstrap, then the library), but with the
    placeholders left: no served URL, so the IPS is found on the node alone."""
    path = tmp_path / "hps-bootstrap-lib.sh"
    path.write_text(BOOTSTRAP_SH.read_text() + "\n" + NODE_SH.read_text())
    return path


# -- serving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("served", [False, True], ids=["the file", "as served, with the library"])
def test_the_bootstrap_is_clean_under_shellcheck_as_posix_sh(served: bool,
                                                             tmp_path: Path) -> None:
    require("shellcheck")
    path = unserved_bootstrap(tmp_path) if served else BOOTSTRAP_SH
    result = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("tool", FETCHES)
def test_the_bootstrap_is_served_as_a_script_to_the_old_fetch_commands(ips: Ips,
                                                                       tool: str) -> None:
    result = fetch(tool, bootstrap_url(ips))
    assert result.returncode == 0, result.stderr
    _, bootstrap_version = node_commands.node_library("bootstrap")
    _, library_version = node_commands.node_library("sh")
    text = result.stdout
    assert text.startswith("# shellcheck shell=sh\n# hps-bootstrap.sh")
    assert f"HPS_BOOTSTRAP_VERSION='{bootstrap_version}'\n" in text
    assert f"HPS_API_URL_DEFAULT='{ips.url}'\n" in text
    assert f"HPS_NODE_LIB_VERSION='{library_version}'\n" in text
    assert "@HPS_" not in text
    assert text.index("hps_node_init()") < text.index("n_queue_run()")


@pytest.mark.parametrize("tool", FETCHES)
@pytest.mark.parametrize("distro", OLD_DISTROS)
def test_the_library_is_served_for_every_old_distro_string(ips: Ips, tool: str,
                                                           distro: str) -> None:
    result = fetch(tool, library_url(ips, distro))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# shellcheck shell=sh\n# hps-functions.sh")
    assert f"HPS_API_URL_DEFAULT='{ips.url}'\n" in result.stdout
    assert "hps_node_init()" not in result.stdout and "@HPS_" not in result.stdout


@pytest.mark.parametrize("distro", ["x86 64", "../../etc/passwd", "a" * 65, "rocky;id"])
def test_a_distro_that_is_no_distro_string_is_refused_with_400(ips: Ips, distro: str) -> None:
    require("curl")
    result = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             library_url(ips, distro)], capture_output=True, text=True,
                            timeout=60, env={"PATH": os.environ["PATH"]}, check=False)
    assert result.stdout == "400"


# -- loading, as the old clients load ---------------------------------------------------------


@pytest.mark.parametrize("tool", FETCHES)
@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_every_old_function_is_defined_after_eval_or_source(ips: Ips, client: NodeClient,
                                                            tool: str, tmp_path: Path) -> None:
    require(FETCHES[tool][0])
    fetcher = " ".join(FETCHES[tool])
    script = ('missing() { when=$1; shift; for f in "$@"; do\n'
              '    command -v "$f" >/dev/null 2>&1 || printf "%s: %s\\n" "$when" "$f"; done; }\n'
              f'eval "$({fetcher} "$BOOTSTRAP")" || exit 9\n'
              'missing "after eval of the bootstrap" "$@"\n'
              f'{fetcher} "$LIBRARY" >"$TMPDIR/hps-functions.sh" || exit 9\n'
              f'{dot(client)} "$TMPDIR/hps-functions.sh" || exit 9\n'
              'missing "after sourcing the bootstrap and the library" "$@"\n')
    result = sh(client, script, node_root(tmp_path), *BOOTSTRAP_FUNCTIONS, *LIBRARY_FUNCTIONS,
                BOOTSTRAP=bootstrap_url(ips),
                LIBRARY=library_url(ips, "x86_64-linux-alpine-3.20.3"))
    assert (result.stdout, result.returncode) == ("", 0), result.stderr
    # the library alone: every n_ function, no bootstrap function
    script = (f'{fetcher} "$LIBRARY" >"$TMPDIR/lib.sh" || exit 9\n'
              f'{dot(client)} "$TMPDIR/lib.sh" || exit 9\n'
              'for f in "$@"; do command -v "$f" >/dev/null 2>&1 && echo "$f"; done; true')
    result = sh(client, script, node_root(tmp_path / "2"), *BOOTSTRAP_FUNCTIONS,
                *LIBRARY_FUNCTIONS, LIBRARY=library_url(ips, "x86_64-linux-rockylinux-10.0"))
    assert result.stdout == "".join(f + "\n" for f in LIBRARY_FUNCTIONS), result.stderr


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_the_kickstart_and_install_hps_libs_lines_load_the_library_and_log(
        ips: Ips, client: NodeClient, tmp_path: Path) -> None:
    fetcher = " ".join(FETCHES[NATIVE_FETCH[client.name]])
    marker = f"PRE stage {client.name}"
    script = (
        f'{fetcher} "$BOOTSTRAP" >"$TMPDIR/remote_functions.sh"\n'
        f'{dot(client)} "$TMPDIR/remote_functions.sh"\n'
        'hps_load_node_functions || exit 9\n'
        f'n_remote_log "*** Entering {marker} ***"\n'
        f'n_ips_command "log_message" "message=ips-command {marker}" "function=init"\n'
        f'n_remote_host_variable "virtualization_status" "active {client.name}"\n'
        'printf "get=%s\\n" "$(n_remote_host_variable virtualization_status)"\n'
        'printf "cluster=%s\\n" "$(n_remote_cluster_variable NAME)"\n'
        'n_remote_cluster_variable DNS_DOMAIN example.org; printf "cluster-set=%s\\n" "$?"\n'
        'n_load_remote_host_config && printf "hostname=%s\\n" "$HPS_HOSTNAME"\n'
        'n_node_information | grep -E "^(hostname|mac|ips|state):"\n'
        'n_queue_run; printf "queue=%s\\n" "$?"\n'
    )
    start = log_size(ips)
    result = sh(client, script, node_root(tmp_path), BOOTSTRAP=bootstrap_url(ips))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"get=active {client.name}\ncluster=default\ncluster-set=3\n"
                             f"hostname={HOSTNAME}\nhostname: {HOSTNAME}\nstate:    INSTALLED\n"
                             f"mac:      {HOST_MAC}\nips:      {ips.url.removeprefix('http://')}\n"
                             "queue=0\n")
    assert in_order(log_after(ips, start), [
        "cmd=node_get_bootstrap_functions", "cmd=node_get_functions",
        f"*** Entering {marker} ***", f"[init] ips-command {marker}"])
    assert ips.store.items(ips.host)["VIRTUALIZATION_STATUS"] == f"active {client.name}"


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_the_tch_start_script_runs_the_queue_with_hps_node_init(ips: Ips, client: NodeClient,
                                                               tmp_path: Path) -> None:
    root = node_root(tmp_path)
    lib = root / "usr" / "local" / "lib" / "hps-bootstrap-lib.sh"
    lib.parent.mkdir(parents=True)
    lib.write_text(fetch(NATIVE_FETCH[client.name], bootstrap_url(ips)).stdout)
    # an earlier script of the boot queues the work: words, then a command line
    queue = (f'{dot(client)} "$1" || exit 9\n'
             'n_queue_add touch "$TMPDIR/first ran"\n'
             "n_queue_add 'echo second >\"$TMPDIR/second\"; exit 3'\n"
             f'n_queue_add n_remote_host_variable QUEUE_MARK "{client.name} ok"\n'
             'n_queue_list\n')
    result = sh(client, queue, root, str(lib))
    first = f"touch '{root}/tmp/first ran'"
    assert result.stdout == (f"{first}\n"
                             'echo second >"$TMPDIR/second"; exit 3\n'
                             f"n_remote_host_variable QUEUE_MARK '{client.name} ok'\n"), \
        result.stderr
    start = log_size(ips)
    ips.store.update(ips.host, {"QUEUE_MARK": None}, "test:setup")
    # the overlay's local.d start script
    result = sh(client, f'{dot(client)} "$1" && hps_node_init', root, str(lib))
    assert result.returncode == 1, result.stderr
    assert (root / "tmp" / "first ran").exists()
    assert (root / "tmp" / "second").read_text() == "second\n"
    assert ips.store.items(ips.host)["QUEUE_MARK"] == f"{client.name} ok"
    assert in_order(log_after(ips, start), [
        "cmd=node_get_functions",
        f"queue [1/3] start: {first}", "queue [1/3] ok after ",
        'queue [2/3] start: echo second >"$TMPDIR/second"; exit 3',
        "queue [2/3] failed (exit 3) after ",
        f"queue [3/3] start: n_remote_host_variable QUEUE_MARK '{client.name} ok'",
        "queue [3/3] ok after ",
        "queue done: 2 ok, 1 failed"])
    assert "queue [2/3] failed (exit 3)" in result.stderr
    assert not (root / "run" / "hps" / "queue").exists()
    assert not list((root / "tmp").glob("hps-node.*")), "temporary files left behind"
    listed = sh(client, f'{dot(client)} "$1" && n_queue_list', root, str(lib))
    assert (listed.stdout, listed.returncode) == ("", 0)


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_n_queue_run_returns_the_number_of_failures_and_empties_the_queue(
        ips: Ips, client: NodeClient, tmp_path: Path) -> None:
    root = node_root(tmp_path)
    script = (f'{dot(client)} "$1" || exit 9\n'
              'n_queue_run; printf "empty=%s\\n" "$?"\n'
              'n_queue_add false; n_queue_add "exit 7"; n_queue_add true\n'
              'n_queue_add n_no_such_function; n_queue_add printf "%s\\n" "a b"\n'
              'n_queue_run; printf "failed=%s\\n" "$?"\n'
              'n_queue_list; n_queue_run; printf "again=%s\\n" "$?"\n')
    start = log_size(ips)
    result = sh(client, script, root, str(ips.library))
    assert result.stdout == "empty=0\na b\nfailed=3\nagain=0\n", result.stderr
    log = log_after(ips, start)
    assert in_order(log, ["queue [1/5] failed (exit 1)", "queue [2/5] failed (exit 7)",
                          "queue [3/5] ok", "queue [4/5] failed (exit 127)", "queue [5/5] ok",
                          "queue done: 2 ok, 3 failed"])


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_queue_clear_empties_and_the_queue_outlives_the_shell_that_filled_it(
        client: NodeClient, tmp_path: Path) -> None:
    root = node_root(tmp_path)
    result = sh(client, '. "$1"; n_queue_add "echo one"; n_queue_add echo two', root,
                str(NODE_SH))
    assert result.returncode == 0, result.stderr
    assert (root / "run" / "hps" / "queue").read_text() == "echo one\necho two\n"
    assert (root / "run" / "hps" / "queue").stat().st_mode & 0o077 == 0
    result = sh(client, '. "$1"; n_queue_list; n_queue_clear; n_queue_list; n_queue_clear',
                root, str(NODE_SH))
    assert (result.stdout, result.returncode) == ("echo one\necho two\n", 0)
    assert not (root / "run" / "hps" / "queue").exists()
    # the old setting N_QUEUE_FILE still names the queue
    old = tmp_path / "hps_function_queue"
    result = sh(client, '. "$1"; n_queue_add true', root, str(NODE_SH), N_QUEUE_FILE=str(old))
    assert old.read_text() == "true\n"


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_hps_node_init_leaves_the_queue_when_the_ips_is_down(ips: Ips, client: NodeClient,
                                                            tmp_path: Path) -> None:
    root = node_root(tmp_path)
    lib = tmp_path / "hps-bootstrap-lib.sh"
    lib.write_text(fetch(NATIVE_FETCH[client.name], bootstrap_url(ips)).stdout)
    script = (f'{dot(client)} "$1" || exit 9\n'
              'n_queue_add \'touch "$TMPDIR/ran"\'\n'
              'HPS_API=$DOWN hps_node_init; printf "init=%s\\n" "$?"\n'
              'n_queue_list\n')
    result = sh(client, script, root, str(lib), DOWN=f"http://127.0.0.1:{ips.down_port}",
                HPS_RETRIES="0")
    assert result.stdout == 'init=2\ntouch "$TMPDIR/ran"\n', result.stderr
    assert not (root / "tmp" / "ran").exists()


# -- the helpers the old scripts call ---------------------------------------------------------

TRICKY = ["", "plain", "two  words ", "a&b=c%20d+e/f?g#h", "it's \"quoted\"", "$(id) `id` ${x}",
          "back\\slash\\", "tab\there", "new\nline\n", "grüße ✓ 日本語 \U0001f600", "-n",
          "--", "*", "~_.-", "\x01\x7f", "100%"]


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_n_url_encode_encodes_every_byte_outside_the_unreserved_set(client: NodeClient,
                                                                    tmp_path: Path) -> None:
    script = ('. "$BOOTSTRAP" || exit 9\n'
              'for s in "$@"; do n_url_encode "$s"; hps_url_encode "$s"; done')
    result = sh(client, script, node_root(tmp_path), *TRICKY,
                BOOTSTRAP=str(unserved_bootstrap(tmp_path)))
    expected = "".join(2 * (urllib.parse.quote(s, safe="") + "\n") for s in TRICKY)
    assert (result.stdout, result.returncode) == (expected, 0), result.stderr


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_the_provisioning_node_is_the_default_gateway_when_nothing_else_is_configured(
        client: NodeClient, tmp_path: Path) -> None:
    root = node_root(tmp_path)
    script = ('. "$BOOTSTRAP" || exit 9\n'
              'n_get_provisioning_node; hps_get_provisioning_node; hps_status | grep "^ips:"')
    result = sh(client, script, root, BOOTSTRAP=str(unserved_bootstrap(tmp_path)))
    assert (result.stdout, result.returncode) == ("10.99.0.1\n10.99.0.1\nips: 10.99.0.1\n", 0)
    (root / "run" / "hps" / "api").unlink()  # the cache of the found URL
    (root / "proc" / "cmdline").write_text("quiet hps_api=http://ips.example:8080/\n")
    result = sh(client, script, root, BOOTSTRAP=str(unserved_bootstrap(tmp_path)))
    assert result.stdout == "ips.example:8080\nips.example:8080\nips: ips.example:8080\n"


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_the_served_bootstrap_names_the_ips_that_served_it(ips: Ips, client: NodeClient,
                                                          tmp_path: Path) -> None:
    root = node_root(tmp_path)
    script = (f'eval "$({" ".join(FETCHES[NATIVE_FETCH[client.name]])} "$1")"; '
              'hps_get_provisioning_node')
    result = sh(client, script, root, bootstrap_url(ips))
    assert result.stdout == ips.url.removeprefix("http://") + "\n", result.stderr


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_no_ips_anywhere_exits_2(client: NodeClient, tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "tmp").mkdir(parents=True)
    result = sh(client, '. "$1"; hps_get_provisioning_node; printf "%s\\n" "$?"', root,
                str(unserved_bootstrap(tmp_path)))
    assert result.stdout == "2\n"
    assert "cannot find the IPS" in result.stderr


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
@pytest.mark.parametrize(("os_release", "distro"), [
    ('NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="10.0"\n', "rocky-10.0"),
    ("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n", "alpine-3.20.3"),
    ("ID='Weird OS!'\n", "weirdos-unknown"),
    (None, "unknown-unknown"),
], ids=["rocky", "alpine", "odd", "none"])
def test_the_library_is_fetched_for_this_nodes_distro_string(
        client: NodeClient, fake: FakeIps, tmp_path: Path, os_release: str | None,
        distro: str) -> None:
    root = node_root(tmp_path)
    if os_release is not None:
        (root / "etc").mkdir()
        (root / "etc" / "os-release").write_text(os_release)
    fake.answers[:] = [(200, NODE_SH.read_text())]
    script = ('. "$1" || exit 9\nhps_get_distro_string\n'
              'hps_load_node_functions && command -v n_queue_run >/dev/null')
    result = sh(client, script, root, str(unserved_bootstrap(tmp_path)), HPS_API=fake.url)
    expected = f"{platform.machine()}-linux-{distro}"
    assert (result.stdout, result.returncode) == (expected + "\n", 0), result.stderr
    [seen] = fake.seen
    assert seen.path == "/cgi-bin/boot_manager.sh?cmd=node_get_functions"
    assert seen.body.endswith("&distro=" + urllib.parse.quote(expected, safe=""))


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
def test_an_answer_that_is_not_the_library_is_not_evaluated(client: NodeClient, fake: FakeIps,
                                                           tmp_path: Path) -> None:
    root = node_root(tmp_path)
    fake.answers[:] = [(200, f'touch "{root}/pwned"\n')]
    result = sh(client, '. "$1"; hps_load_node_functions; printf "%s\\n" "$?"', root,
                str(unserved_bootstrap(tmp_path)), HPS_API=fake.url)
    assert result.stdout == "2\n"
    assert "not the node library" in result.stderr
    assert not (root / "pwned").exists()


# -- bad input: a usage error (4), a message on stderr, nothing changed -----------------------

BAD_CALLS = {
    "queue add without a command": ("n_queue_add",),
    "queue add of an empty command": ("n_queue_add", ""),
    "queue add of a blank command": ("n_queue_add", " \t "),
    "queue add of two lines": ("n_queue_add", "true\ntouch pwned"),
    "queue add of an argument with a newline": ("n_queue_add", "printf", "a\nb"),
    "queue add of an empty command name": ("n_queue_add", "", "arg"),
    "queue run with an argument": ("n_queue_run", "now"),
    "queue list with an argument": ("n_queue_list", "all"),
    "queue clear with an argument": ("n_queue_clear", "all"),
    "url encode of nothing": ("n_url_encode",),
    "url encode of two strings": ("n_url_encode", "a", "b"),
    "provisioning node with an argument": ("n_get_provisioning_node", "x"),
    "node information with an argument": ("n_node_information", "x"),
    "cluster variable with three arguments": ("n_remote_cluster_variable", "A", "b", "c"),
    "bootstrap provisioning node with an argument": ("hps_get_provisioning_node", "x"),
    "bootstrap url encode of nothing": ("hps_url_encode",),
    "distro string with an argument": ("hps_get_distro_string", "x"),
    "fetch of a distro with a space": ("hps_fetch_node_functions", "x86 64"),
    "fetch of the python library": ("hps_fetch_node_functions", "python"),
    "fetch of a path": ("hps_fetch_node_functions", "../../etc/passwd"),
    "fetch of an empty distro": ("hps_fetch_node_functions", ""),
    "fetch of a too long distro": ("hps_fetch_node_functions", "a" * 65),
    "fetch of two distros": ("hps_fetch_node_functions", "a", "b"),
    "load of an unknown distro": ("hps_load_node_functions", "rocky linux"),
    "load of two distros": ("hps_load_node_functions", "a", "b"),
    "reload of an unknown distro": ("hps_reload", "Python"),
    "init with an argument": ("hps_node_init", "now"),
    "status with an argument": ("hps_status", "-v"),
}


@pytest.mark.parametrize("client", SH_CLIENTS, ids=SH_IDS)
@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=list(BAD_CALLS))
def test_bad_input_is_a_usage_error_that_changes_nothing(client: NodeClient, fake: FakeIps,
                                                         tmp_path: Path,
                                                         call: tuple[str, ...]) -> None:
    root = node_root(tmp_path)
    queue = root / "run" / "hps" / "queue"
    queue.parent.mkdir(parents=True)
    queue.write_text("true\n")
    script = ('. "$BOOTSTRAP" || exit 9\n'
              'marker() { :; }\n'
              '"$@"; rc=$?\n'
              'command -v n_queue_run >/dev/null && command -v marker >/dev/null || exit 8\n'
              'exit "$rc"')
    result = sh(client, script, root, *call, BOOTSTRAP=str(unserved_bootstrap(tmp_path)),
                HPS_API=fake.url)
    assert result.returncode == 4, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(("usage: ", "hps-node: ", "hps-bootstrap: "))
    assert queue.read_text() == "true\n"
    assert fake.seen == [], "a bad call reached the IPS"
    assert not (root / "pwned").exists()


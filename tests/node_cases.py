"""The node library's conformance table (docs/node.md): one list of calls, four clients.

Every case is run by each client in CLIENTS: the sh library under dash (GNU wget), busybox sh
(busybox wget) and bash (curl), and the Python client, against the real app on a loopback port.
A case seeds the server, runs its steps (a verb of `hps-node` and its arguments; the sh clients
call the matching `n_` function), and states the stdout and exit code of each step, then the host
keys and IPS log lines the steps must have left behind.

Placeholders, replaced per client run: `{client}` (the client's name), `{root}` (a fresh
directory that is the run's HPS_NODE_ROOT: kernel command line, spool, caches), `{down}` (the URL
of a loopback port where nothing listens), `{down_port}` (that port's number) and `{script}` (the
name of the script that calls the library: `$0` of the sh clients, which is the library file
they source, and `hps_node.py` for the Python client).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

REPO = Path(__file__).resolve().parents[1]
NODE_PY = REPO / "node_lib" / "python" / "hps_node.py"
NODE_SH = REPO / "node_lib" / "sh" / "hps-functions.sh"

HOST_MAC = "52:54:00:aa:bb:01"
SPOOFED_MAC = "52:54:00:aa:bb:99"
LAN_ADDRESS = "10.99.0.21"
HOSTNAME = "node-01"
HOSTILE = "$(touch {root}/pwned)"

#: verb of `hps-node` -> function of the sh library
SH_FUNCTIONS = {
    "ips-command": "n_ips_command",
    "remote-log": "n_remote_log",
    "host-variable": "n_remote_host_variable",
    "cluster-variable": "n_remote_cluster_variable",
    "load-host-config": "n_load_remote_host_config",
    "set-state": "n_set_state",
    "boot-session": "n_boot_session",
    "syslog-check": "n_syslog_check",
    "selftest": "n_selftest",
    "iqn": "n_iqn",
    "storage-network": "n_storage_network",
    "storage-provision-request": "n_storage_provision_request",
}

#: environment of every run (timeouts short, retries fast: the table must stay quick)
BASE_ENV = {"HPS_MAC": HOST_MAC, "HPS_CONNECT_TIMEOUT": "2", "HPS_TIMEOUT": "5",
            "HPS_RETRIES": "2", "HPS_RETRY_DELAY": "0", "HPS_LOG_TAG": "conformance",
            "HPS_SYSLOG_WAIT": "0", "HPS_IPS_NAME": "localhost"}


@dataclass(frozen=True)
class Step:
    """One call: `hps-node` verb and arguments, what it prints and how it exits."""

    call: tuple[str, ...]
    stdout: str | re.Pattern[str] = ""
    code: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: str | None = None
    #: HPS_<KEY> variables the step shows (load-host-config), in this order
    show: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    """Server state before, the steps, and what the host record and IPS log hold after."""

    name: str
    steps: tuple[Step, ...]
    host: Mapping[str, str | None] = field(default_factory=dict)
    cluster: Mapping[str, str | None] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    expect_host: Mapping[str, str | None] = field(default_factory=dict)
    expect_log: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()


def one(name: str, *call: str, stdout: str | re.Pattern[str] = "", code: int = 0,
        **extra: object) -> Case:
    """Return a one-step case (keyword arguments go to Step when they are Step fields)."""
    step_fields = {k: extra.pop(k) for k in ("env", "stdin", "show") if k in extra}
    return Case(name, (Step(tuple(call), stdout, code, **step_fields),), **extra)  # type: ignore[arg-type]


ODD_VALUES = {
    "spaces": "two  words and a trailing space ",
    "equals": "a=b==c=",
    "quotes": "it's \"quoted\"",
    "dollar": "$HOME ${PATH} $(id) `id`",
    "backslashes": "a\\b\\\\c\\",
    "unicode": "grüße ✓ 日本語",
    "leading-dash": "-n --unset-not",
    "url-chars": "a&b=c%20d+e/f?g#h",
}

STORAGE_NETWORK = {"STORAGE_NETWORKS": "1", "STORAGE0_VLAN": "20",
                   "STORAGE0_CIDR": "10.20.0.0/29", "STORAGE0_GATEWAY": "10.20.0.1",
                   "STORAGE0_MTU": "9000"}

SELFTEST_ENV = {"HPS_SYSLOG_HOST": "127.0.0.1", "HPS_SYSLOG_PORT": "{down_port}"}
SELFTEST_OUT = ("api: pass\ndns: pass\nsyslog: fail (syslog line did not arrive)\ntime: pass\n"
                "disk: {disk}\nstorage: pass\n")

CASES: list[Case] = [
    # host keys: get, set, unset, empty, missing, refused
    one("get a host key", "host-variable", "STATE", stdout="INSTALLED\n",
        host={"STATE": "INSTALLED"}),
    one("an empty value prints an empty line", "host-variable", "EMPTY", stdout="\n",
        host={"EMPTY": ""}),
    one("a missing key exits 1", "host-variable", "NEVER_SET", code=1,
        host={"NEVER_SET": None}),
    one("a key name is case-insensitive", "host-variable", "state", stdout="INSTALLED\n",
        host={"STATE": "INSTALLED"}),
    one("set an empty value", "host-variable", "EMPTY_SET", "", host={"EMPTY_SET": "x"},
        expect_host={"EMPTY_SET": ""}),
    Case("unset a key, then it is missing", (
        Step(("host-variable", "DOOMED", "--unset")),
        Step(("host-variable", "DOOMED"), code=1)),
        host={"DOOMED": "x"}, expect_host={"DOOMED": None}),
    one("writing a boot-flow key is refused", "host-variable", "IP", "10.99.0.99", code=3,
        host={"IP": "10.99.0.5"}, expect_host={"IP": "10.99.0.5"}),
    one("reading a sensitive key is refused", "host-variable", "ROOT_PASSWORD", code=3,
        host={"ROOT_PASSWORD": "s3cret"}),
    one("a spoofed MAC is refused", "host-variable", "STATE", code=3,
        env={"HPS_MAC": SPOOFED_MAC}),
    *[Case(f"round trip of a value with {label}", (
        Step(("host-variable", "ODD", value)),
        Step(("host-variable", "ODD"), stdout=value + "\n")),
        host={"ODD": None}, expect_host={"ODD": value})
      for label, value in ODD_VALUES.items()],
    # cluster keys
    one("get a cluster key", "cluster-variable", "NAME", stdout="default\n"),
    one("a missing cluster key exits 1", "cluster-variable", "NO_SUCH_SETTING", code=1),
    one("a sensitive cluster key is refused", "cluster-variable", "ADMIN_TOKEN", code=3,
        cluster={"ADMIN_TOKEN": "t0k3n"}),
    Case("setting a cluster key (the old call form) is refused to a node", (
        Step(("cluster-variable", "DNS_DOMAIN", "evil.example"), code=3),
        Step(("cluster-variable", "DNS_DOMAIN"), stdout="cluster.local\n")),
        cluster={"DNS_DOMAIN": "cluster.local"}),
    one("a cluster key with two values is bad usage", "cluster-variable", "A", "b", "c",
        code=4),
    # the whole record, hostile values assigned exactly and never run
    one("load-host-config assigns hostile values exactly", "load-host-config",
        host={"EVIL_SUBST": HOSTILE, "EVIL_BACKQUOTE": "`touch {root}/pwned`",
              "EVIL_QUOTES": '"; touch {root}/pwned; "', "EVIL_ESCAPES": '\\" \\$HOME \\\\',
              "EVIL_TRAILING": "ends with \\", "EVIL_EQUALS": "a=b=c", "EVIL_EMPTY": ""},
        show=("EVIL_SUBST", "EVIL_BACKQUOTE", "EVIL_QUOTES", "EVIL_ESCAPES", "EVIL_TRAILING",
              "EVIL_EQUALS", "EVIL_EMPTY"),
        stdout=("HPS_EVIL_SUBST=$(touch {root}/pwned)\n"
                "HPS_EVIL_BACKQUOTE=`touch {root}/pwned`\n"
                'HPS_EVIL_QUOTES="; touch {root}/pwned; "\n'
                'HPS_EVIL_ESCAPES=\\" \\$HOME \\\\\n'
                "HPS_EVIL_TRAILING=ends with \\\n"
                "HPS_EVIL_EQUALS=a=b=c\n"
                "HPS_EVIL_EMPTY=\n"),
        absent=("pwned",)),
    # states
    one("a legal state report", "set-state", "INSTALLED", host={"STATE": "INSTALLING"},
        expect_host={"STATE": "INSTALLED"}),
    one("an illegal transition is refused with 3", "set-state", "INSTALLING",
        host={"STATE": "INSTALLED"}, code=3, expect_host={"STATE": "INSTALLED"}),
    one("an unknown state is refused with 3", "set-state", "BOGUS", code=3),
    # the IPS down, bad usage
    one("the IPS down exits 2", "host-variable", "STATE", code=2, env={"HPS_API": "{down}"}),
    one("no key name is bad usage", "host-variable", code=4),
    one("a malformed key name is bad usage", "host-variable", "NOT A KEY", code=4),
    one("three arguments are bad usage", "host-variable", "A", "b", "c", code=4),
    one("selftest with an unknown option is bad usage", "selftest", "--bogus", code=4),
    one("ips-command without NAME=VALUE is bad usage", "ips-command", "host_variable", "oops",
        code=4),
    # the raw command
    one("ips-command prints the body", "ips-command", "determine_state",
        stdout="INSTALLED\n", host={"STATE": "INSTALLED"}),
    one("ips-command sends NAME=VALUE pairs", "ips-command", "host_variable", "name=RAW",
        "value=x=y z", stdout="525400aabb01 set RAW to x=y z\n", expect_host={"RAW": "x=y z"}),
    one("ips-command of an unknown command exits 1", "ips-command", "no_such_command", code=1),
    # boot session
    one("the boot session comes from the kernel command line", "boot-session",
        files={"/proc/cmdline": "quiet hps_session=a1b2c3 console=ttyS0\n"},
        stdout="a1b2c3\n"),
    one("else from the host's BOOT_SESSION", "boot-session", stdout="zz9zz9\n",
        host={"BOOT_SESSION": "zz9zz9"}),
    one("no boot session exits 1", "boot-session", code=1, host={"BOOT_SESSION": None}),
    # storage
    one("iqn", "iqn", "vda", stdout=f"iqn.2025-09.default:{HOSTNAME}.vda\n",
        cluster={"CREATED": "2025-09-14T08:00:00Z"}),
    one("iqn lower-cases the volume", "iqn", "Data-1",
        stdout=f"iqn.2025-09.default:{HOSTNAME}.data-1\n",
        cluster={"CREATED": "2025-09-14T08:00:00Z"}),
    one("iqn of a bad volume name is bad usage", "iqn", "bad_volume", code=4),
    one("storage-network allocates the first free address", "storage-network", "0",
        stdout="20 10.20.0.2 255.255.255.248 10.20.0.1 9000\n", cluster=STORAGE_NETWORK,
        host={"STORAGE0_IP": None}, expect_host={"STORAGE0_IP": "10.20.0.2"}),
    one("an unconfigured storage network exits 1", "storage-network", "5", code=1,
        cluster=STORAGE_NETWORK),
    one("storage-provision-request records the request and prints the IQN",
        "storage-provision-request", "root-0", "40g",
        stdout=f"iqn.2025-09.default:{HOSTNAME}.root-0\n",
        cluster={"CREATED": "2025-09-14T08:00:00Z"}, host={"ISCSI_REQ_ROOT_0": None},
        expect_host={"ISCSI_REQ_ROOT_0": "40G"}),
    one("a bad size is bad usage", "storage-provision-request", "vdb", "40X", code=4),
    # self-tests
    one("selftest --report stores the results", "selftest", "--report", code=1,
        env=SELFTEST_ENV, host={"TYPE": None, "SELFTEST_DNS": "fail:stale"},
        stdout=SELFTEST_OUT.replace("{disk}", "pass"),
        expect_host={"SELFTEST_RESULT": "fail", "SELFTEST_API": "pass",
                     "SELFTEST_SYSLOG": "fail:syslog line did not arrive",
                     "SELFTEST_DNS": "pass", "SELFTEST_TIME": "pass",
                     "SELFTEST_DISK": "pass", "SELFTEST_STORAGE": "pass"}),
    one("selftest fails disk for a disk type without block devices", "selftest", code=1,
        env=SELFTEST_ENV, host={"TYPE": "CCH"},
        stdout=SELFTEST_OUT.replace("{disk}", "fail (no disk for TYPE CCH)")),
    one("selftest passes disk when a disk is present", "selftest", code=1,
        env=SELFTEST_ENV, host={"TYPE": "CCH"}, files={"/sys/block/vda/size": "2097152\n"},
        stdout=SELFTEST_OUT.replace("{disk}", "pass")),
    # logging and the offline spool
    one("remote-log reaches the IPS log", "remote-log", "hello from {client}",
        expect_log=("[conformance] hello from {client}",)),
    one("remote-log sends stdin lines", "remote-log", stdin="line one {client}\n\nline two\n",
        expect_log=("[conformance] line one {client}", "[conformance] line two")),
    one("without HPS_LOG_TAG a line is tagged with the calling script's name", "remote-log",
        "untagged {client}", env={"HPS_LOG_TAG": ""},
        expect_log=("[{script}] untagged {client}",)),
    Case("log lines spooled while the IPS is down arrive in order after it is back", (
        Step(("remote-log", "spooled one {client}"), code=2, env={"HPS_API": "{down}"}),
        Step(("remote-log", "spooled two {client}"), code=2, env={"HPS_API": "{down}"}),
        Step(("cluster-variable", "NAME"), stdout="default\n")),
        expect_log=("[conformance] spooled one {client} [spooled ",
                    "[conformance] spooled two {client} [spooled ")),
]


@dataclass(frozen=True)
class NodeClient:
    """One way of calling the library: a shell with an HTTP tool, or the Python client."""

    name: str
    shell: tuple[str, ...] = ()
    http_client: str = ""
    tools: tuple[str, ...] = ()

    def command(self, library: Path, step: Step) -> list[str]:
        """Return the argv that runs `step` (the sh library sourced from `library`)."""
        verb, *args = step.call
        if not self.shell:
            return [sys.executable, "-S", str(NODE_PY), verb, *args]
        shows = "".join(f"printf 'HPS_{key}=%s\\n' \"${{HPS_{key}-}}\"; " for key in step.show)
        # -u: the library must not trip a caller that treats unset variables as errors
        script = f'set -u; . "$0" || exit 9; {SH_FUNCTIONS[verb]} "$@"; rc=$?; {shows}exit "$rc"'
        return [*self.shell, "-c", script, str(library), *args]

    def script(self, library: Path) -> str:
        """Return the name of the script that calls the library (`$0` of the sh clients)."""
        return library.name if self.shell else NODE_PY.name

    def env(self) -> dict[str, str]:
        """Return the client's own settings."""
        return {"HPS_HTTP_CLIENT": self.http_client} if self.http_client else {}


CLIENTS = (
    NodeClient("dash+wget", ("dash",), "wget", ("dash", "wget", "logger")),
    NodeClient("busybox+busybox-wget", ("busybox", "sh"), "busybox", ("busybox", "logger")),
    NodeClient("bash+curl", ("bash",), "curl", ("bash", "curl", "logger")),
    NodeClient("python", ()),
)


def require(*tools: str) -> None:
    """Skip the test (a failure under CI=true, see conftest) when a tool is not installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {' '.join(missing)} (scripts/test installs them as root)")


def run_step(client: NodeClient, library: Path, step: Step, env: Mapping[str, str],
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one step of a case with `env` as the whole environment (plus PATH)."""
    return subprocess.run(client.command(library, step), input=step.stdin or "",
                          capture_output=True, text=True, env=dict(env), timeout=timeout,
                          check=False)


def fill(text: str, values: Mapping[str, str]) -> str:
    """Return `text` with the `{name}` placeholders of `values` replaced."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


def fill_all(items: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Return every item filled in."""
    return [fill(item, values) for item in items]


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without the access line on stderr for every request."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Log nothing: the app's own event log is what the tests read."""


def serve_app(app: Any, remote_addr: str | None = None) -> tuple[BaseWSGIServer,
                                                                  threading.Thread]:
    """Start `app` in werkzeug's threaded HTTP server on a free loopback port (a real server
    on a real socket); with `remote_addr`, every request appears to come from that address."""

    def as_caller(environ: dict[str, Any], start_response: Any) -> Any:
        if remote_addr:
            environ["REMOTE_ADDR"] = remote_addr
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, as_caller, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread

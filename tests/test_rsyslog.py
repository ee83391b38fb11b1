"""Syslog on the IPS (docs/node.md): the generated rsyslog config, run by a real rsyslogd.

The daemon listens on a free high loopback port with the config hps-api generates (plus a work
directory in tmp_path); it loads no imuxsock, so the system's /dev/log and /var/log are never
touched. Lines sent with `logger` over UDP and TCP must land in HPS_LOG_DIR/nodes.log with the
sender's address in field 2, where the app's `syslog_check` finds them; `n_syslog_check` of
every client sends a key through it and asks the real app on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from node_cases import (
    CLIENTS,
    HOST_MAC,
    NODE_SH,
    NodeClient,
    Step,
    require,
    run_step,
    serve_app,
)

from hps_api import create_app
from hps_api.errors import InvalidInput
from hps_api.services.rsyslog import render_rsyslog, write_rsyslog
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
from node_lib.python import hps_node

pytestmark = pytest.mark.slow

START_TIMEOUT = 15.0


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    """Return rsyslogd's verdict on a config file (`rsyslogd -N1`)."""
    require("rsyslogd")
    return subprocess.run(["rsyslogd", "-N1", "-f", str(path)], capture_output=True, text=True,
                          timeout=30)


def test_the_generated_config_passes_rsyslogd_check(tmp_path: Path) -> None:
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(render_rsyslog(Settings(log_dir=tmp_path / "log"), {"SYSLOG_PORT": "10514"},
                                   work_dir=tmp_path))
    result = check_config(conf)
    assert result.returncode == 0, result.stderr


def test_the_default_port_is_514_and_nothing_but_the_node_inputs_is_loaded() -> None:
    text = render_rsyslog(Settings(log_dir=Path("/var/log/hps")), {})
    assert 'input(type="imudp" port="514" ruleset="hps_nodes")' in text
    assert 'input(type="imtcp" port="514" ruleset="hps_nodes")' in text
    assert 'file="/var/log/hps/nodes.log"' in text
    loaded = [line for line in text.splitlines() if line.startswith("module(")]
    assert loaded == ['module(load="imudp")', 'module(load="imtcp")']


@pytest.mark.parametrize("port", ["0", "65536", "51x", "-1"])
def test_a_bad_syslog_port_is_refused(port: str) -> None:
    with pytest.raises(InvalidInput, match="SYSLOG_PORT"):
        render_rsyslog(Settings(), {"SYSLOG_PORT": port})


@pytest.mark.parametrize("log_dir", ['/var/log/h"ps', "/var/log/hps\nmodule(load=x)", "relative"])
def test_a_log_dir_rsyslog_cannot_quote_is_refused(log_dir: str) -> None:
    with pytest.raises(InvalidInput, match="HPS_LOG_DIR"):
        render_rsyslog(Settings(log_dir=Path(log_dir)), {})


def test_write_rsyslog_writes_the_clusters_services_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "config")
    initialise(store, "default", "test:setup")
    store.update(RecordId.of_cluster("default"), {"SYSLOG_PORT": "1514"}, "test:setup")
    settings = Settings(config_dir=tmp_path / "config", log_dir=tmp_path / "log")
    path = write_rsyslog(store, settings, "default")
    assert path == store.layout.services_dir("default") / "rsyslog.conf"
    assert path.read_text() == render_rsyslog(settings, {"SYSLOG_PORT": "1514"})
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_the_nodes_rsyslog_drop_in_passes_rsyslogd_check(tmp_path: Path) -> None:
    require("dash")
    dropin = tmp_path / "90-hps.conf"
    result = subprocess.run(["dash", "-c", '. "$0"; _n_rsyslog_dropin 10.99.0.1 514',
                             str(NODE_SH)], capture_output=True, text=True, timeout=30)
    dropin.write_text(result.stdout)
    assert result.stdout == hps_node.rsyslog_dropin("10.99.0.1", 514)
    checked = check_config(dropin)
    assert checked.returncode == 0, checked.stderr


# -- a real rsyslogd ---------------------------------------------------------------------------


@dataclass
class Rsyslog:
    """A running rsyslogd, its port and the nodes.log it writes; the app answering beside it."""

    port: int
    nodes_log: Path
    api: str


def free_udp_and_tcp_port() -> int:
    """Return a loopback port free for both TCP and UDP right now."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_for_tcp(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"rsyslogd exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"rsyslogd did not listen on {port} within {START_TIMEOUT} s")


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """rsyslogd with the generated config, and the app (loopback callers) on the same logs."""
    require("rsyslogd", "logger")
    root = tmp_path_factory.mktemp("rsyslog")
    settings = Settings(config_dir=root / "config", log_dir=root / "log", arp_table=root / "arp",
                        dhcp_leases=root / "leases", lock_timeout=2.0)
    initialise(FileStore(settings.config_dir), "default", "test:setup")
    port = free_udp_and_tcp_port()
    (root / "work").mkdir()
    conf = root / "rsyslog.conf"
    conf.write_text(render_rsyslog(settings, {"SYSLOG_PORT": str(port)}, work_dir=root / "work"))
    daemon_log = root / "rsyslogd.out"
    with daemon_log.open("wb") as out:
        process = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i",
                                    str(root / "rsyslogd.pid")], stdout=out, stderr=out,
                                   start_new_session=True)
    server, thread = serve_app(create_app(settings))
    try:
        wait_for_tcp(port, process, daemon_log)
        yield Rsyslog(port, settings.log_dir / "nodes.log", f"http://127.0.0.1:{server.port}")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def line_with(path: Path, key: str, timeout: float = 10.0) -> str:
    """Return the nodes.log line containing `key` once rsyslogd has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if key in line:
                    return line
        time.sleep(0.05)
    return ""


def syslog_check(api: str, key: str) -> str:
    """Return the app's answer to syslog_check for `key`, asked from 127.0.0.1."""
    request = urllib.request.Request(f"{api}/cgi-bin/boot_manager.sh?cmd=syslog_check",
                                     data=f"key={key}&mac={HOST_MAC}".encode(),
                                     headers={"Accept": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


@pytest.mark.parametrize("transport", ["-d", "-T"], ids=["udp", "tcp"])
def test_a_line_sent_to_rsyslog_lands_in_nodes_log_with_the_sender_address(
        rsyslog: Rsyslog, transport: str) -> None:
    key = f"probe-{uuid.uuid4().hex}"
    subprocess.run(["logger", transport, "-n", "127.0.0.1", "-P", str(rsyslog.port),
                    "-t", "hps-node", f"hello {key}"], check=True, timeout=10)
    line = line_with(rsyslog.nodes_log, key)
    when, source, _hostname, tag, message = line.split(" ", 4)
    assert source == "127.0.0.1"
    assert when[:4].isdigit() and "T" in when
    assert tag.startswith("hps-node")
    assert message.endswith(f"hello {key}")
    assert syslog_check(rsyslog.api, key) == "yes\n"


def test_syslog_check_says_no_for_a_key_never_sent(rsyslog: Rsyslog) -> None:
    assert syslog_check(rsyslog.api, f"never-{uuid.uuid4().hex}") == "no\n"


@pytest.mark.parametrize("client", CLIENTS, ids=[c.name for c in CLIENTS])
@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_n_syslog_check_proves_the_path_through_rsyslog(rsyslog: Rsyslog, client: NodeClient,
                                                       proto: str, tmp_path: Path) -> None:
    require(*client.tools)
    (tmp_path / "tmp").mkdir()
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path / "tmp"),
           "HPS_NODE_ROOT": str(tmp_path), "HPS_API": rsyslog.api, "HPS_MAC": HOST_MAC,
           "HPS_SYSLOG_HOST": "127.0.0.1", "HPS_SYSLOG_PORT": str(rsyslog.port),
           "HPS_SYSLOG_PROTO": proto, "HPS_SYSLOG_WAIT": "5", **client.env()}
    result = run_step(client, NODE_SH, Step(("syslog-check",)), env)
    assert (result.stdout, result.returncode) == ("", 0), result.stderr
    sent = rsyslog.nodes_log.read_text().splitlines()[-1]
    assert sent.split(" ")[1] == "127.0.0.1" and "syslog-check hps-525400aabb01-" in sent

"""The node library's conformance table (tests/node_cases.py), run by every client over real HTTP.

Four clients (the sh library under dash with GNU wget, busybox sh with busybox wget and bash with
curl, and the Python client with `python -S`, which proves it needs nothing beyond the standard
library) call the real app, served by werkzeug's threaded HTTP server on a loopback port.

A booted node is not a loopback caller, and loopback callers are admins here: a small WSGI
middleware in front of the app sets REMOTE_ADDR to a LAN address (10.99.0.21) whose MAC a fixture
neighbour table knows. Every request is then exactly what a node's request is (non-admin, MAC
verified), so the refusals a node must see (protected and sensitive keys, a spoofed `mac=`) are
real. Only the address is rewritten; method, headers and body are the clients' own.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from node_cases import (
    BASE_ENV,
    CASES,
    CLIENTS,
    HOST_MAC,
    HOSTNAME,
    LAN_ADDRESS,
    Case,
    NodeClient,
    Step,
    fill,
    fill_all,
    require,
    run_step,
    serve_app,
)

from hps_api import create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise

pytestmark = pytest.mark.slow


@dataclass
class Ips:
    """The app on a loopback port, its store and log, and a port where nothing listens."""

    url: str
    store: FileStore
    log: Path
    down_port: int
    library: Path

    @property
    def host(self) -> RecordId:
        """Return the node's host record."""
        return RecordId.of_host("default", HOST_MAC)


def fetch_library(url: str, path: Path) -> Path:
    """Save the node library the IPS serves (cmd=get_remote_functions) to `path`."""
    request = urllib.request.Request(f"{url}/cgi-bin/boot_manager.sh?cmd=get_remote_functions",
                                     headers={"Accept": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        path.write_bytes(response.read())
    return path


@pytest.fixture(scope="module")
def ips(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ips]:
    """The IPS for the whole module: a store with the node registered, the app on loopback."""
    root = tmp_path_factory.mktemp("ips")
    settings = Settings(config_dir=root / "config", log_dir=root / "log", arp_table=root / "arp",
                        dhcp_leases=root / "leases", lock_timeout=2.0)
    (root / "arp").write_text("IP address  HW type  Flags  HW address  Mask  Device\n"
                              f"{LAN_ADDRESS} 0x1 0x2 {HOST_MAC} * eth0\n")
    store = FileStore(settings.config_dir, lock_timeout=2.0)
    initialise(store, "default", "test:setup")
    store.update(RecordId.of_host("default", HOST_MAC),
                 {"STATE": "INSTALLED", "HOSTNAME": HOSTNAME}, "test:setup", create=True)
    server, thread = serve_app(create_app(settings), LAN_ADDRESS)
    # bound but never listening: connections to it are refused for as long as the module runs
    down = socket.socket()
    down.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.port}"
    try:
        yield Ips(url, store, settings.log_dir / "hps-api.log", down.getsockname()[1],
                  fetch_library(url, root / "hps-functions.sh"))
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        down.close()


def seed(ips: Ips, case: Case, values: Mapping[str, str]) -> None:
    """Put the host and cluster keys the case starts from (None: not set)."""
    if case.host:
        ips.store.update(ips.host, {k: None if v is None else fill(v, values)
                                    for k, v in case.host.items()}, "test:setup")
    if case.cluster:
        ips.store.update(RecordId.of_cluster("default"), dict(case.cluster), "test:setup")


def environment(ips: Ips, client: NodeClient, root: Path, step: Step,
                values: Mapping[str, str]) -> dict[str, str]:
    """Return the whole environment of one client run (nothing inherited but PATH)."""
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(root / "tmp"), "HPS_API": ips.url,
           "HPS_NODE_ROOT": str(root), **BASE_ENV, **client.env()}
    env.update({name: fill(value, values) for name, value in step.env.items()})
    return env


def shown(client: NodeClient, step: Step, stdout: str) -> str:
    """Return what a step printed; for the Python client's load-host-config only the lines of
    the keys the step shows (the sh clients print exactly those variables)."""
    if client.shell or not step.show:
        return stdout
    lines = {line.split("=", 1)[0]: line for line in stdout.splitlines()}
    return "".join(lines.get(f"HPS_{key}", f"HPS_{key}=<missing>") + "\n" for key in step.show)


def in_order(text: str, expected: list[str]) -> bool:
    """Return True when every expected string occurs in `text`, each after the previous."""
    position = 0
    for item in expected:
        position = text.find(item, position)
        if position < 0:
            return False
        position += len(item)
    return True


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.name)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "-"))
def test_the_table(ips: Ips, case: Case, client: NodeClient, tmp_path: Path) -> None:
    require(*client.tools)
    root = tmp_path / "node"
    (root / "tmp").mkdir(parents=True)
    values = {"client": client.name, "root": str(root), "down_port": str(ips.down_port),
              "down": f"http://127.0.0.1:{ips.down_port}", "script": client.script(ips.library)}
    seed(ips, case, values)
    for name, text in case.files.items():
        (root / name.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / name.lstrip("/")).write_text(text)
    log_start = ips.log.stat().st_size if ips.log.exists() else 0
    for number, step in enumerate(case.steps, 1):
        filled = Step(tuple(fill_all(step.call, values)), stdin=fill(step.stdin or "", values),
                      show=step.show)
        result = run_step(client, ips.library, filled, environment(ips, client, root, step,
                                                                   values))
        expected = (fill(step.stdout, values) if isinstance(step.stdout, str)
                    else step.stdout)
        got = shown(client, step, result.stdout)
        where = f"step {number} {filled.call}; stderr:\n{result.stderr}"
        if isinstance(expected, re.Pattern):
            assert expected.fullmatch(got), where
        else:
            assert got == expected, where
        assert result.returncode == step.code, where
        assert not list((root / "tmp").iterdir()), f"temporary files left behind ({where})"
    record = ips.store.items(ips.host)
    for key, value in case.expect_host.items():
        assert record.get(key) == value, key
    new_log = ips.log.read_bytes()[log_start:].decode() if ips.log.exists() else ""
    assert in_order(new_log, fill_all(case.expect_log, values)), new_log[-2000:]
    for name in case.absent:
        assert not (root / name).exists(), f"{name} exists: a value was executed"
    spool = root / "var" / "spool" / "hps" / "log"
    if case.expect_log and spool.exists():
        assert spool.read_text() == "", "spooled lines were not all flushed"


@pytest.mark.parametrize("client, tag", [(CLIENTS[2], "disk_check"), (CLIENTS[0], None)],
                         ids=["bash: the calling function", "dash: the script name"])
def test_a_line_logged_from_a_function_is_tagged_with_it_where_the_shell_tells(
        ips: Ips, client: NodeClient, tag: str | None, tmp_path: Path) -> None:
    require(*client.tools)
    root = tmp_path / "node"
    (root / "tmp").mkdir(parents=True)
    script = ('. "$0" || exit 9; disk_check() { n_remote_log "checked from $1"; }; '
              'disk_check "$1"')
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(root / "tmp"), "HPS_API": ips.url,
           "HPS_NODE_ROOT": str(root), **BASE_ENV, **client.env(), "HPS_LOG_TAG": ""}
    result = subprocess.run([*client.shell, "-c", script, str(ips.library), client.name],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = f"[{tag or client.script(ips.library)}] checked from {client.name}"
    assert expected in ips.log.read_text(), ips.log.read_text()[-2000:]

"""`hps-api serve`: real gunicorn on a loopback port, spoken to over real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hps_api.entry.server import auto_workers, redact_query
from hps_api.store import FileStore, RecordId

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
MAC = "52:54:00:aa:bb:01"
START_TIMEOUT = 20.0
GRACEFUL_TIMEOUT = 10.0
CURL = "curl/8.5.0"
IPXE = "iPXE/1.21.1+ (g8ef5)"


@dataclass
class Server:
    """A running `hps-api serve` and where it keeps its state."""

    process: subprocess.Popen[bytes]
    url: str
    config_dir: Path
    log_dir: Path
    stderr: Path


@dataclass
class Answer:
    """One HTTP response: status, content type and body text."""

    status: int
    content_type: str
    body: str


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(root: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a server whose state lives under `root`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPS_")}
    env.update({"HPS_CONFIG_DIR": str(root / "hps-config"), "HPS_LOG_DIR": str(root / "log"),
                "HPS_RESOURCES_DIR": str(root / "resources"), "HPS_LOCK_TIMEOUT": "2", **extra})
    return env


def start_server(root: Path, workers: int = 2) -> Server:
    """Initialise a store under `root`, start gunicorn on a free port, wait for /health."""
    env = server_env(root)
    subprocess.run([str(BIN / "hps-api"), "init"], env=env, cwd=root, check=True,
                   capture_output=True, timeout=30)
    port = free_port()
    stderr = root / "gunicorn.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers)],
            env=env, cwd=root, stdout=err, stderr=err, start_new_session=True)
    server = Server(process, f"http://127.0.0.1:{port}", Path(env["HPS_CONFIG_DIR"]),
                    Path(env["HPS_LOG_DIR"]), stderr)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stop_server(server)
            pytest.fail(f"hps-api serve exited with {process.returncode}:\n"
                        f"{stderr.read_text()}")
        try:
            if fetch(server, "/api/v1/health").status == 200:
                return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    pytest.fail(f"no answer on {server.url} within {START_TIMEOUT} s:\n{stderr.read_text()}")


def stop_server(server: Server) -> None:
    """Kill the server's whole process group (master and workers) and reap the master."""
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def fetch(server: Server, path: str, *, agent: str = CURL, accept: str | None = None,
          form: dict[str, str] | None = None) -> Answer:
    """Return the answer to a GET (or a form POST) of `path`; HTTP errors are answers too."""
    headers = {"User-Agent": agent}
    if accept:
        headers["Accept"] = accept
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(server.url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, response.headers.get("Content-Type", ""),
                          response.read().decode())
    except urllib.error.HTTPError as err:
        with err:
            return Answer(err.code, err.headers.get("Content-Type", ""), err.read().decode())


def command(query: str) -> str:
    """Return the legacy endpoint's path for a query string."""
    return "/cgi-bin/boot_manager.sh?" + query


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One gunicorn with two workers for the whole module, and a host in state INSTALLED."""
    root = tmp_path_factory.mktemp("gunicorn")
    running = start_server(root)
    try:
        FileStore(running.config_dir).update(RecordId.of_host("default", MAC),
                                             {"STATE": "INSTALLED"}, "test:setup", create=True)
        yield running
    finally:
        stop_server(running)


def test_health_answers_json_with_the_active_cluster(server: Server) -> None:
    answer = fetch(server, "/api/v1/health")
    assert answer.status == 200
    assert answer.content_type == "application/json"
    data = json.loads(answer.body)["data"]
    assert (data["status"], data["active_cluster"]) == ("ok", "default")


def test_determine_state_as_text_is_the_bare_state(server: Server) -> None:
    answer = fetch(server, command(f"cmd=determine_state&mac={MAC}"), accept="text/plain")
    assert (answer.status, answer.body) == (200, "INSTALLED\n")


def test_determine_state_for_curl_is_the_old_text(server: Server) -> None:
    answer = fetch(server, command(f"cmd=determine_state&mac={MAC}"))
    assert (answer.status, answer.body) == (200, "INSTALLED\n")


def test_determine_state_is_json_when_asked_for(server: Server) -> None:
    answer = fetch(server, command(f"cmd=determine_state&mac={MAC}&format=json"))
    assert (answer.status, answer.content_type) == (200, "application/json")
    payload = json.loads(answer.body)
    assert (payload["ok"], payload["data"]["state"]) == (True, "INSTALLED")


def test_unknown_command_is_404_for_curl(server: Server) -> None:
    answer = fetch(server, command("cmd=no_such_thing"))
    assert answer.status == 404
    assert json.loads(answer.body)["error"] == {
        "code": 404, "message": "Unknown or unsupported command: no_such_thing"}


def test_unknown_command_is_200_and_an_ipxe_script_for_ipxe(server: Server) -> None:
    answer = fetch(server, command("cmd=no_such_thing"), agent=IPXE)
    assert answer.status == 200
    assert answer.body.startswith("#!ipxe")
    assert "Unknown or unsupported command: no_such_thing" in answer.body


def test_a_post_form_body_carries_the_parameters(server: Server) -> None:
    answer = fetch(server, "/cgi-bin/boot_manager.sh", accept="text/plain",
                   form={"cmd": "determine_state", "mac": MAC})
    assert (answer.status, answer.body) == (200, "INSTALLED\n")


def read_when(path: Path, expected: str, timeout: float = 5.0) -> str:
    """Return the file's text once it contains `expected` (gunicorn logs after answering)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if expected in text:
            break
        time.sleep(0.05)
    return text


def test_requests_reach_the_access_log_and_the_event_log(server: Server) -> None:
    fetch(server, command(f"cmd=determine_state&mac={MAC}"))
    fetch(server, command(f"cmd=host_variable&name=ROOT_PASSWORD&value=s3cret&mac={MAC}"))
    access = read_when(server.log_dir / "access.log", "cmd=host_variable")
    assert "GET /api/v1/health HTTP/1.1" in access
    assert f"cmd=host_variable&name=ROOT_PASSWORD&value=*&mac={MAC}" in access
    assert "s3cret" not in access
    assert "cmd=determine_state ok" in (server.log_dir / "hps-api.log").read_text()


def test_a_file_sent_with_sendfile_is_logged_with_its_true_size(server: Server) -> None:
    distros = server.config_dir.parent / "resources" / "distros"
    distros.mkdir(parents=True, exist_ok=True)
    body = os.urandom(300_001)
    (distros / "kernel").write_bytes(body)
    with urllib.request.urlopen(server.url + "/distros/kernel", timeout=10) as response:
        assert response.read() == body
    ranged = urllib.request.Request(server.url + "/distros/kernel",
                                    headers={"Range": "bytes=1-", "User-Agent": "range-test"})
    with urllib.request.urlopen(ranged, timeout=10) as response:
        assert (response.status, response.read()) == (206, body[1:])
    access = read_when(server.log_dir / "access.log", '" 206 300000 ')
    assert '"GET /distros/kernel HTTP/1.1" 200 300001 ' in access, access
    assert '"GET /distros/kernel HTTP/1.1" 206 300000 ' in access, access


def test_a_download_cut_short_by_the_client_is_logged_with_what_was_sent(server: Server) -> None:
    distros = server.config_dir.parent / "resources" / "distros"
    distros.mkdir(parents=True, exist_ok=True)
    size = 256 * 1024 * 1024
    with (distros / "huge").open("wb") as sparse:
        sparse.truncate(size)  # far more than the socket buffers hold
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /distros/huge HTTP/1.1\r\nHost: t\r\nUser-Agent: quitter\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    access = read_when(server.log_dir / "access.log", '"quitter"', timeout=10)
    logged = re.search(r'"GET /distros/huge HTTP/1\.1" 200 (\d+) ', access)
    assert logged, access
    assert 0 < int(logged[1]) < size


def test_a_bad_setting_stops_serve_at_once_with_one_line(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(BIN / "hps-api"), "serve", "--bind", f"127.0.0.1:{free_port()}"],
        env=server_env(tmp_path, HPS_LOCK_TIMEOUT="abc"), cwd=tmp_path,
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert time.monotonic() - started < 10
    assert result.stderr.startswith("hps-api: HPS_LOCK_TIMEOUT='abc'")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_sigterm_stops_the_server_within_the_graceful_timeout(tmp_path: Path) -> None:
    running = start_server(tmp_path, workers=1)
    try:
        started = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=GRACEFUL_TIMEOUT + 5) == 0
        assert time.monotonic() - started < GRACEFUL_TIMEOUT
        with pytest.raises(OSError):
            fetch(running, "/api/v1/health")
    finally:
        stop_server(running)


@pytest.mark.parametrize(("cores", "workers"), [(1, 2), (2, 3), (4, 5), (7, 8), (64, 8)])
def test_auto_workers_is_one_per_core_plus_one_capped_at_8(cores: int, workers: int) -> None:
    assert auto_workers(cores) == workers


@pytest.mark.parametrize(("query", "logged"), [
    ("", ""),
    ("cmd=determine_state&mac=52:54:00:aa:bb:01", "cmd=determine_state&mac=52:54:00:aa:bb:01"),
    ("cmd=host_variable&name=ROOT_PASSWORD&value=s3cret",
     "cmd=host_variable&name=ROOT_PASSWORD&value=*"),
    ("cmd=host_audit&data=cpu%3D4%7Cram%3D8&&flag", "cmd=host_audit&data=*&&flag"),
    ("c%6Dd=x&value=", "c%6Dd=*&value="),
])
def test_the_access_log_keeps_selector_values_and_hides_the_rest(query: str, logged: str) -> None:
    assert redact_query(query) == logged


def test_the_ips_selftest_runs_at_start_and_is_logged(server: Server) -> None:
    log = read_when(server.log_dir / "hps-api.log", "selftest log_dir:")
    assert "INFO ips - - selftest templates: pass" in log
    assert "WARNING ips - - selftest active_cluster: fail" in log

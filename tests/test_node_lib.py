"""The node library beyond the conformance table: lint, serving, the wire, discovery, the spool.

The wire-level tests talk to a recording fake IPS (http.server on a loopback port) that answers
what each test scripts: they check what every client sends (method, URL, headers, the exact form
body), how it retries, and where it looks for the API.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from node_cases import CLIENTS, NODE_PY, NODE_SH, NodeClient, Step, require, run_step

from hps_api.commands import node as node_commands

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SHELLS = (("dash",), ("busybox", "sh"), ("bash",))
MAC = "52:54:00:aa:bb:01"
ENCODED_MAC = "mac=52%3A54%3A00%3Aaa%3Abb%3A01"
QUICK = {"HPS_CONNECT_TIMEOUT": "2", "HPS_TIMEOUT": "3", "HPS_RETRIES": "2",
         "HPS_RETRY_DELAY": "0"}


# -- the library as a file and as served --------------------------------------------------------


def test_the_library_is_clean_under_shellcheck_as_posix_sh() -> None:
    require("shellcheck")
    result = subprocess.run(["shellcheck", "-s", "sh", str(NODE_SH)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def served(web, host: str = "ips.example:8080") -> str:  # type: ignore[no-untyped-def]
    return web.get("/cgi-bin/boot_manager.sh?cmd=get_remote_functions",
                   headers={"Accept": "text/plain"}, extra_environ={"HTTP_HOST": host}).text


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_the_served_library_parses_under_every_shell(web, shell: tuple[str, ...],  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    require(shell[0])
    library = tmp_path / "hps-functions.sh"
    library.write_text(served(web))
    result = subprocess.run([*shell, "-n", str(library)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_served_library_has_the_url_and_version_filled_in(web) -> None:  # type: ignore[no-untyped-def]
    text = served(web)
    _, version = node_commands.node_library()
    assert "HPS_API_URL_DEFAULT='http://ips.example:8080'\n" in text
    assert f"HPS_NODE_LIB_VERSION='{version}'\n" in text
    assert "@HPS_" not in text


def test_the_version_changes_when_the_library_changes(web, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "hps-functions.sh"
    copy.write_text(NODE_SH.read_text())
    monkeypatch.setitem(node_commands.NODE_LIBS, "sh", copy)
    node_commands.node_library.cache_clear()
    try:
        before = node_commands.node_library()[1]
        copy.write_text(NODE_SH.read_text() + "# changed\n")
        node_commands.node_library.cache_clear()
        after = node_commands.node_library()[1]
        assert before != after
        assert f"HPS_NODE_LIB_VERSION='{after}'" in served(web)
    finally:
        node_commands.node_library.cache_clear()


def test_the_python_client_is_served_with_the_url_filled_in(web) -> None:  # type: ignore[no-untyped-def]
    res = web.get("/cgi-bin/boot_manager.sh?cmd=node_get_functions&distro=python",
                  extra_environ={"REMOTE_ADDR": "127.0.0.1"}, headers={"Accept": "text/plain"})
    assert "import urllib" in res.text and "@HPS_" not in res.text
    compile(res.text, "hps_node.py", "exec")


def test_the_console_script_answers_help_and_refuses_bad_usage_with_4() -> None:
    helped = subprocess.run([str(BIN / "hps-node"), "--help"], capture_output=True, text=True,
                            timeout=30)
    assert helped.returncode == 0 and "storage-provision-request" in helped.stdout
    wrong = subprocess.run([str(BIN / "hps-node"), "no-such-verb"], capture_output=True,
                           text=True, timeout=30)
    assert wrong.returncode == 4


# -- a recording fake IPS ----------------------------------------------------------------------


@dataclass
class Seen:
    """One request the fake IPS received."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class FakeIps:
    """A loopback HTTP server answering scripted (status, body) pairs, then 200 `ok`."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    silent: bool = False
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeIps:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                fake.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                if fake.silent:
                    fake.release.wait(30)
                    return
                status, text = fake.answers.pop(0) if fake.answers else (200, "ok\n")
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeIps]:
    server = FakeIps().start()
    yield server
    server.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def call(client: NodeClient, root: Path, *argv: str, library: Path | None = None,
         stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    """Run one verb with HPS_NODE_ROOT=root and only the given settings; `library` replaces
    the client's library file (the sh library, or the Python module run as a script)."""
    require(*client.tools)
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    environment = {"PATH": os.environ["PATH"], "TMPDIR": str(root / "tmp"),
                   "HPS_NODE_ROOT": str(root), **client.env(), **env}
    if not client.shell and library is not None:
        return subprocess.run([sys.executable, "-S", str(library), *argv], input=stdin,
                              capture_output=True, text=True, env=environment, timeout=60,
                              check=False)
    return run_step(client, library or NODE_SH, Step(tuple(argv), stdin=stdin), environment)


CLIENT_IDS = [c.name for c in CLIENTS]


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_a_call_is_a_post_of_a_form_with_the_mac_and_text_headers(
        client: NodeClient, fake: FakeIps, tmp_path: Path) -> None:
    value = "".join(map(chr, range(0x20, 0x7F))) + " é ✓ 日本 \U0001f600"
    result = call(client, tmp_path, "host-variable", "odd", value, HPS_API=fake.url,
                  HPS_MAC=MAC, HPS_SESSION="s3ss10n", **QUICK)
    assert result.returncode == 0, result.stderr
    [seen] = fake.seen
    assert (seen.method, seen.path) == ("POST", "/cgi-bin/boot_manager.sh?cmd=host_variable")
    assert seen.headers["User-Agent"].startswith("hps-node/")
    assert seen.headers["Accept"] == "text/plain"
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    encoded = urllib.parse.quote(value, safe="")
    assert "%7E" not in encoded and "%2D" not in encoded and "%C3%A9" in encoded
    assert seen.body == f"{ENCODED_MAC}&session=s3ss10n&name=odd&value={encoded}"


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_503_is_retried_with_backoff_until_an_answer(client: NodeClient, fake: FakeIps,
                                                     tmp_path: Path) -> None:
    fake.answers[:] = [(503, "busy\n"), (503, "busy\n"), (200, "value\n")]
    result = call(client, tmp_path, "host-variable", "KEY", HPS_API=fake.url, HPS_MAC=MAC,
                  **QUICK)
    assert (result.stdout, result.returncode, len(fake.seen)) == ("value\n", 0, 3)


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
@pytest.mark.parametrize(("status", "code"), [(400, 3), (403, 3), (409, 3), (404, 1)])
def test_4xx_answers_are_not_retried(client: NodeClient, fake: FakeIps, tmp_path: Path,
                                     status: int, code: int) -> None:
    fake.answers[:] = [(status, "Key 'KEY' said no\n")]
    result = call(client, tmp_path, "host-variable", "KEY", HPS_API=fake.url, HPS_MAC=MAC,
                  **QUICK)
    assert (result.stdout, result.returncode, len(fake.seen)) == ("", code, 1)
    if code == 3:
        assert "refused" in result.stderr


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_a_silent_ips_times_out_and_is_retried(client: NodeClient, tmp_path: Path) -> None:
    silent = FakeIps(silent=True).start()
    try:
        started = time.monotonic()
        result = call(client, tmp_path, "host-variable", "KEY", HPS_API=silent.url,
                      HPS_MAC=MAC, HPS_CONNECT_TIMEOUT="1", HPS_TIMEOUT="1", HPS_RETRIES="1",
                      HPS_RETRY_DELAY="0")
        elapsed = time.monotonic() - started
    finally:
        silent.stop()
    assert (result.stdout, result.returncode, len(silent.seen)) == ("", 2, 2)
    assert elapsed < 20, "the total timeout did not stop the request"


# -- finding the API and the MAC ---------------------------------------------------------------


def with_served_url(tmp_path: Path, client: NodeClient, url: str) -> Path:
    """Return a copy of the client's library with the served URL filled in, as the IPS does."""
    source = NODE_PY if not client.shell else NODE_SH
    copy = tmp_path / source.name
    copy.write_text(source.read_text().replace("@HPS_API_URL@", url))
    return copy


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_the_api_is_found_in_the_documented_order_and_cached(client: NodeClient,
                                                            tmp_path: Path) -> None:
    servers = {name: FakeIps().start() for name in ("cmdline", "served", "file", "later")}
    root = tmp_path / "root"
    cmdline, api_file, cache = root / "proc/cmdline", root / "etc/hps/api", root / "run/hps/api"
    served_copy = with_served_url(tmp_path, client, servers["served"].url)

    def asked(library: Path | None) -> str:
        result = call(client, root, "host-variable", "KEY", library=library, HPS_MAC=MAC,
                      **QUICK)
        assert result.returncode == 0, result.stderr
        [name] = [name for name, server in servers.items() if server.seen]
        servers[name].seen.clear()
        return name

    try:
        cmdline.parent.mkdir(parents=True)
        api_file.parent.mkdir(parents=True)
        cmdline.write_text(f"quiet hps_api={servers['cmdline'].url} x=1\n")
        api_file.write_text(servers["file"].url + "\n")
        assert asked(served_copy) == "cmdline"
        assert cache.read_text() == servers["cmdline"].url + "\n"
        cmdline.write_text(f"hps_api={servers['later'].url}\n")
        assert asked(served_copy) == "cmdline", "the cached URL was not used"
        cache.unlink()
        cmdline.unlink()
        assert asked(served_copy) == "served"
        cache.unlink()
        assert asked(None) == "file"
        assert cache.read_text() == servers["file"].url + "\n"
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_no_api_anywhere_exits_2(client: NodeClient, tmp_path: Path) -> None:
    result = call(client, tmp_path, "host-variable", "KEY", HPS_MAC=MAC, **QUICK)
    assert (result.stdout, result.returncode) == ("", 2)
    assert "cannot find the IPS" in result.stderr


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_the_gateway_is_the_last_resort_and_the_env_beats_the_cache(
        client: NodeClient, fake: FakeIps, tmp_path: Path) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "ens9\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "ens9\t00000000\t0100007F\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    result = call(client, tmp_path, "host-variable", "KEY", HPS_MAC=MAC, HPS_RETRIES="0",
                  HPS_CONNECT_TIMEOUT="1", HPS_TIMEOUT="1")
    assert (tmp_path / "run" / "hps" / "api").read_text() == "http://127.0.0.1\n"
    assert result.returncode in (1, 2, 3)  # whatever port 80 of loopback says, if anything
    result = call(client, tmp_path, "host-variable", "KEY", HPS_API=fake.url, HPS_MAC=MAC,
                  **QUICK)
    assert (result.returncode, len(fake.seen)) == (0, 1)


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_the_mac_is_the_default_route_interfaces(client: NodeClient, fake: FakeIps,
                                                 tmp_path: Path) -> None:
    (tmp_path / "proc" / "net").mkdir(parents=True)
    (tmp_path / "proc" / "net" / "route").write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "ens9\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    (tmp_path / "sys" / "class" / "net" / "ens9").mkdir(parents=True)
    (tmp_path / "sys" / "class" / "net" / "ens9" / "address").write_text("52:54:00:12:34:56\n")
    result = call(client, tmp_path, "host-variable", "KEY", HPS_API=fake.url, **QUICK)
    assert result.returncode == 0, result.stderr
    assert fake.seen[0].body == "mac=52%3A54%3A00%3A12%3A34%3A56&name=KEY"


# -- the spool and the config loader -----------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_the_spool_is_bounded_and_drops_the_oldest_lines(client: NodeClient, tmp_path: Path,
                                                        closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    lines = "".join(f"message number {n:02d}\n" for n in range(12))
    result = call(client, tmp_path, "remote-log", stdin=lines, HPS_API=url, HPS_MAC=MAC,
                  HPS_SPOOL_MAX="400", **QUICK)
    assert result.returncode == 2
    spool = (tmp_path / "var" / "spool" / "hps" / "log").read_text()
    assert len(spool.encode()) <= 400
    assert "number%2011" in spool and "number%2000" not in spool
    assert all(line.startswith("function=") for line in spool.splitlines())


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_loading_the_host_config_never_overwrites_the_librarys_settings(
        shell: tuple[str, ...], fake: FakeIps, tmp_path: Path) -> None:
    require(shell[0])
    fake.answers[:] = [(200, 'API="http://evil.example"\nFOO="b\\"ar"\nlower="x"\n')]
    script = ('. "$0"; n_load_remote_host_config; rc=$?; '
              'printf "%s|%s|%s|%s\\n" "$rc" "$HPS_API" "$HPS_FOO" "${HPS_lower-unset}"')
    result = subprocess.run([*shell, "-c", script, str(NODE_SH)], capture_output=True,
                            text=True, timeout=30, env={
                                "PATH": "/usr/bin:/bin", "HPS_API": fake.url, "HPS_MAC": MAC,
                                "HPS_NODE_ROOT": str(tmp_path), **QUICK})
    assert result.stdout == f'0|{fake.url}|b"ar|unset\n'
    assert "HPS_API is a library setting" in result.stderr


@pytest.mark.parametrize("shell", SHELLS, ids=" ".join)
def test_the_library_works_in_a_caller_with_noglob_and_nounset(
        shell: tuple[str, ...], fake: FakeIps, tmp_path: Path) -> None:
    require(shell[0])
    fake.answers[:] = [(200, "value *\n")]
    script = 'set -uf; . "$0"; n_remote_host_variable KEY'
    result = subprocess.run([*shell, "-c", script, str(NODE_SH)], capture_output=True,
                            text=True, timeout=30, env={
                                "PATH": os.environ["PATH"], "HPS_API": fake.url, "HPS_MAC": MAC,
                                "HPS_NODE_ROOT": str(tmp_path), **QUICK})
    assert (result.stdout, result.returncode) == ("value *\n", 0), result.stderr

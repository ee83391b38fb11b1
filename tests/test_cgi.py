"""`hps-api cgi` and the cgi-bin shim, run the way fcgiwrap runs a CGI program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from hps_api.store import FileStore, RecordId

BIN = Path(sys.executable).parent
SHIM = Path(__file__).resolve().parent.parent / "scripts" / "cgi" / "boot_manager.sh"
MAC = "52:54:00:aa:bb:01"
CURL = "curl/8.5.0"
IPXE = "iPXE/1.21.1+ (g8ef5)"


@dataclass
class CgiAnswer:
    """A CGI program's output split into its status line, headers and body."""

    status: str
    headers: dict[str, str]
    body: str


def parse_cgi(output: bytes) -> CgiAnswer:
    """Return the status, headers and body of CGI output (header lines end in CRLF or LF)."""
    head, sep, body = output.replace(b"\r\n", b"\n").partition(b"\n\n")
    assert sep, f"no blank line after the headers in {output!r}"
    headers = {}
    for line in head.decode("latin-1").split("\n"):
        name, colon, value = line.partition(":")
        assert colon, f"not a header line: {line!r}"
        headers[name.strip().lower()] = value.strip()
    return CgiAnswer(headers.pop("status", "200 OK"), headers, body.decode())


class RunCgi(Protocol):
    """The `run_cgi` fixture: one request through a CGI program."""

    def __call__(self, query: str = "", *, method: str = "GET", body: str = "",
                 agent: str = CURL, accept: str | None = None,
                 program: tuple[str, ...] = ..., extra: dict[str, str] | None = None,
                 ) -> CgiAnswer: ...


@pytest.fixture
def run_cgi(config_dir: Path, tmp_path: Path) -> RunCgi:
    """Run a CGI program for one request, with the environment fcgiwrap would give it."""

    def run(query: str = "", *, method: str = "GET", body: str = "", agent: str = CURL,
            accept: str | None = None, program: tuple[str, ...] = (str(BIN / "hps-api"), "cgi"),
            extra: dict[str, str] | None = None) -> CgiAnswer:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": method,
            "SCRIPT_NAME": "/cgi-bin/boot_manager.sh", "SCRIPT_FILENAME": str(SHIM),
            "PATH_INFO": "", "QUERY_STRING": query, "REQUEST_URI":
            "/cgi-bin/boot_manager.sh" + (f"?{query}" if query else ""),
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "51234", "SERVER_NAME": "ips.lab",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": "nginx/1.22",
            "HTTP_HOST": "ips.lab", "HTTP_USER_AGENT": agent,
            "HPS_CONFIG_DIR": str(config_dir), "HPS_LOG_DIR": str(tmp_path / "log"),
            "HPS_LOCK_TIMEOUT": "2",
        }
        if accept:
            env["HTTP_ACCEPT"] = accept
        if method == "POST":
            env.update(CONTENT_TYPE="application/x-www-form-urlencoded",
                       CONTENT_LENGTH=str(len(body.encode())))
        env.update(extra or {})
        result = subprocess.run(program, env=env, input=body.encode(), capture_output=True,
                                timeout=30, cwd=tmp_path)
        assert b"Traceback" not in result.stdout + result.stderr, result.stderr.decode()
        return parse_cgi(result.stdout)

    return run


@pytest.fixture
def installed(store: FileStore) -> None:
    """The host MAC is registered and INSTALLED."""
    store.update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED"}, "test:setup",
                 create=True)


@pytest.mark.usefixtures("installed")
def test_determine_state_as_text_is_the_bare_state(run_cgi: RunCgi) -> None:
    answer = run_cgi(f"cmd=determine_state&mac={MAC}", accept="text/plain")
    assert answer.status == "200 OK"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.body == "INSTALLED\n"


def test_an_unknown_command_is_status_404_for_curl(run_cgi: RunCgi) -> None:
    answer = run_cgi("cmd=no_such_thing")
    assert answer.status.startswith("404")
    assert json.loads(answer.body)["error"]["message"] == (
        "Unknown or unsupported command: no_such_thing")


def test_an_unknown_command_is_200_and_an_ipxe_script_for_ipxe(run_cgi: RunCgi) -> None:
    answer = run_cgi("cmd=no_such_thing", agent=IPXE)
    assert answer.status == "200 OK"
    assert answer.body.startswith("#!ipxe")


@pytest.mark.usefixtures("installed")
def test_a_post_form_body_carries_the_parameters(run_cgi: RunCgi) -> None:
    answer = run_cgi(method="POST", body=f"cmd=determine_state&mac={MAC}", accept="text/plain")
    assert (answer.status, answer.body) == ("200 OK", "INSTALLED\n")


def test_a_bad_setting_answers_status_500_with_one_line(run_cgi: RunCgi) -> None:
    answer = run_cgi("cmd=determine_state", extra={"HPS_LOCK_TIMEOUT": "abc"})
    assert answer.status.startswith("500")
    assert answer.body.startswith("hps-api: cannot start: HPS_LOCK_TIMEOUT='abc'")
    assert answer.body.count("\n") == 1


@pytest.mark.usefixtures("installed")
def test_the_cgi_bin_shim_runs_hps_api_from_its_venv(run_cgi: RunCgi) -> None:
    answer = run_cgi(f"cmd=determine_state&mac={MAC}", accept="text/plain",
                     program=("/bin/sh", str(SHIM), "ignored-argv"),
                     extra={"HPS_VENV": str(BIN.parent)})
    assert (answer.status, answer.body) == ("200 OK", "INSTALLED\n")


def test_the_shim_answers_500_when_its_venv_is_missing(run_cgi: RunCgi, tmp_path: Path) -> None:
    answer = run_cgi("cmd=determine_state", program=("/bin/sh", str(SHIM)),
                     extra={"HPS_VENV": str(tmp_path / "no-venv")})
    assert answer.status.startswith("500")
    assert answer.body == "hps-api: cannot start: not installed where HPS_VENV says\n"

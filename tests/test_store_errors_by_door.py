"""Every door answers a failing store the same way (issue 14; errors.py maps HTTP, cli/common.py
exit codes).

A store that is busy (a lock held past HPS_LOCK_TIMEOUT), full or read-only, holds a corrupt
record or cannot be read is handed to every door as `tests/fakes.BrokenStore`, whose every call
raises that error: the legacy `cmd=` endpoint as curl, iPXE and a browser call it, `/api/v1` as
an admin's script reads and writes, the pages as a logged-in admin, the config CLIs and
`hps-api render-services` in-process. Each door must give the error's status (iPXE: the retry
script, HTTP 200, so the host asks again instead of stopping at a firmware error) or exit code,
and the error's own message, unchanged, to the caller.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import webtest
from fakes import BrokenStore

from hps_api.cli import config as config_cli
from hps_api.cli import main as hps_api_cli
from hps_api.errors import (
    CorruptRecord,
    HpsError,
    StoreBusy,
    StoreUnavailable,
    StoreUnreadable,
)
from hps_api.ops.accounts import Accounts
from hps_api.settings import Settings
from hps_api.store import Kind, RecordId, factory
from hps_api.store.base import Store
from hps_api.web.app import build_app

MAC = "52:54:00:aa:bb:01"
MAC12 = "525400aabb01"
HOST = RecordId.of_host("default", MAC)
LAN = "10.99.0.21"
LOOPBACK = "127.0.0.1"
TOKEN = "admin-token-1"
ADMIN, PASSWORD = "alice", "correct horse battery"
LEGACY = "/cgi-bin/boot_manager.sh"
# the callers' own requests (see test_legacy.py, test_api_conformance.py, test_ui.py)
CURL = {"User-Agent": "curl/8.5.0", "Accept": "*/*"}
IPXE = {"User-Agent": "iPXE/1.21.1+"}
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
           "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
BEARER = {"User-Agent": "curl/8.5.0", "Accept": "*/*", "Authorization": f"Bearer {TOKEN}"}


@dataclass(frozen=True)
class Failure:
    """A store error, and what every door must make of it."""

    error: HpsError
    status: int  # HTTP, every door but iPXE's
    exit_code: int  # every CLI


FAILURES = {
    "busy": Failure(StoreBusy("525400aabb01.conf.lock: still locked after 0.5 s; try again"),
                    503, 3),
    "full": Failure(StoreUnavailable("store full or read-only: journal.log: No space left on "
                                     "device"), 503, 3),
    "corrupt": Failure(CorruptRecord("hosts/525400aabb01.conf", 3, "not a KEY=value line"),
                       500, 3),
    "unreadable": Failure(StoreUnreadable("hosts/525400aabb01.conf: Permission denied"), 500, 3),
}


@dataclass(frozen=True)
class Answer:
    """What a caller got: the status or exit code, the error message as the caller reads it,
    and whether the answer makes the caller ask again (iPXE's retry script)."""

    code: int
    message: str
    retries: bool = False


@dataclass
class World:
    """A broken store and what a door needs to be called with it."""

    store: BrokenStore
    settings: Settings
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def client(self, remote: str) -> webtest.TestApp:
        """Return a WebTest client of the real app over the broken store, calling from
        `remote`."""
        app = build_app(self.settings, store=self.store)
        return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": remote})

    def cli(self, entry: Callable[[list[str]], int], prog: str, *argv: str) -> Answer:
        """Run a console script's `main(argv)` in this process with the broken store from the
        factory; return its exit code and its one stderr line without the `prog: ` prefix."""
        self.monkeypatch.setattr(factory, "open_store", lambda settings: self.store)
        code = entry(list(argv))
        captured = self.capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith(f"{prog}: ") and captured.err.count("\n") == 1
        return Answer(code, captured.err.removeprefix(f"{prog}: ").removesuffix("\n"))


# -- the doors -------------------------------------------------------------------------------


def json_error(res: webtest.TestResponse) -> Answer:
    assert res.content_type == "application/json"
    assert res.json["ok"] is False
    assert res.json["error"]["code"] == res.status_int
    return Answer(res.status_int, res.json["error"]["message"])


def page_error(res: webtest.TestResponse) -> Answer:
    assert res.content_type == "text/html"
    shown = re.search(r'<div class="error">\s*<h1>(\d+) [^<]*</h1>\s*<p>(.*?)</p>', res.text,
                      re.S)
    assert shown is not None, res.text
    assert int(shown.group(1)) == res.status_int
    return Answer(res.status_int, html.unescape(shown.group(2)))


def retry_script(res: webtest.TestResponse) -> Answer:
    """The iPXE error script: says why, waits, asks `init` again; reboots if it cannot."""
    assert res.content_type == "text/plain"
    lines = res.text.splitlines()
    said = [line.removeprefix("echo hps-api: ") for line in lines
            if line.startswith("echo hps-api: ") and "cannot reach" not in line]
    assert len(said) == 1, res.text
    retries = (lines[0] == "#!ipxe" and "sleep 10" in lines
               and any(line.startswith("chain --replace --autofree http://")
                       and f"{LEGACY}?cmd=init&mac=" in line and line.endswith("|| goto failed")
                       for line in lines)
               and lines[-1] == "reboot")
    return Answer(res.status_int, said[0], retries)


def legacy_curl(world: World) -> Answer:
    res = world.client(LAN).get(f"{LEGACY}?cmd=host_variable&name=NOTE", headers=CURL,
                                 expect_errors=True)
    return json_error(res)


def legacy_ipxe(world: World) -> Answer:
    res = world.client(LAN).get(f"{LEGACY}?cmd=init&mac={MAC12}&arch=x86_64", headers=IPXE,
                                 expect_errors=True)
    return retry_script(res)


def legacy_browser(world: World) -> Answer:
    res = world.client(LAN).get(f"{LEGACY}?cmd=host_variable&name=NOTE&mac={MAC12}",
                                 headers=BROWSER, expect_errors=True)
    return page_error(res)


def api_get(world: World) -> Answer:
    res = world.client(LAN).get(f"/api/v1/hosts/{MAC12}", headers=BEARER, expect_errors=True)
    return json_error(res)


def api_put(world: World) -> Answer:
    res = world.client(LAN).put_json(f"/api/v1/hosts/{MAC12}/config/NOTE", {"value": "x"},
                                      headers=BEARER, expect_errors=True)
    return json_error(res)


def admin_browser(world: World) -> webtest.TestApp:
    """The operator's browser on the IPS, logged in with the form as a person does."""
    Accounts(world.settings.config_dir).add(ADMIN, PASSWORD)
    client = world.client(LOOPBACK)
    client.extra_environ["HTTP_USER_AGENT"] = BROWSER["User-Agent"]
    form = client.get("/login").forms[0]
    form["name"], form["password"] = ADMIN, PASSWORD
    form.submit(status=303)
    return client


def dashboard(world: World) -> Answer:
    return page_error(admin_browser(world).get("/", headers=BROWSER, expect_errors=True))


def host_page(world: World) -> Answer:
    return page_error(admin_browser(world).get(f"/hosts/{MAC12}", headers=BROWSER,
                                               expect_errors=True))


def host_config_get(world: World) -> Answer:
    return world.cli(config_cli.host_config, "host_config", MAC, "get", "NOTE")


def host_config_set(world: World) -> Answer:
    return world.cli(config_cli.host_config, "host_config", MAC, "set", "NOTE", "x")


def cluster_config_get(world: World) -> Answer:
    return world.cli(config_cli.cluster_config, "cluster_config", "get", "DNS_DOMAIN")


def render_services(world: World) -> Answer:
    return world.cli(hps_api_cli.main, "hps-api", "render-services", "--no-reload")


WEB_DOORS = {"legacy as curl": legacy_curl, "legacy as a browser": legacy_browser,
             "api GET": api_get, "api PUT": api_put, "dashboard page": dashboard,
             "host page": host_page}
CLI_DOORS = {"host_config get": host_config_get, "host_config set": host_config_set,
             "cluster_config get": cluster_config_get, "hps-api render-services": render_services}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Callable[[HpsError], World]:
    """Return a maker of a World over a store failing with the given error; the CLIs read no
    `.env` and no HPS_* but the config dir."""
    config_dir = tmp_path / "hps-config"
    config_dir.mkdir()
    settings = Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                        arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                        resources_dir=tmp_path / "resources",
                        dnsmasq_pidfile=tmp_path / "dnsmasq.pid", admin_token=TOKEN,
                        lock_timeout=0.5)
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("HPS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HPS_CONFIG_DIR", str(config_dir))
    return lambda error: World(BrokenStore(error, config_dir), settings, monkeypatch, capsys)


def cases(doors: dict[str, Callable[[World], Answer]]) -> list[object]:
    return [pytest.param(failure, door, id=f"{name}-{label}")
            for name, failure in FAILURES.items() for label, door in doors.items()]


@pytest.mark.parametrize(("failure", "door"), cases(WEB_DOORS))
def test_every_web_door_answers_the_errors_status_and_message(
        world: Callable[[HpsError], World], failure: Failure,
        door: Callable[[World], Answer]) -> None:
    broken = world(failure.error)
    assert door(broken) == Answer(failure.status, str(failure.error))
    assert broken.store.calls  # the answer comes from the store's error, not a check before it


@pytest.mark.parametrize(("failure", "door"), cases({"legacy as iPXE": legacy_ipxe}))
def test_ipxe_gets_a_retry_script_with_http_200_saying_why(
        world: Callable[[HpsError], World], failure: Failure,
        door: Callable[[World], Answer]) -> None:
    broken = world(failure.error)
    assert door(broken) == Answer(200, str(failure.error), retries=True)
    assert broken.store.calls


@pytest.mark.parametrize(("failure", "door"), cases(CLI_DOORS))
def test_every_cli_exits_with_the_errors_code_and_says_its_message(
        world: Callable[[HpsError], World], failure: Failure,
        door: Callable[[World], Answer]) -> None:
    broken = world(failure.error)
    assert door(broken) == Answer(failure.exit_code, str(failure.error))
    assert broken.store.calls


# -- the fake itself ---------------------------------------------------------------------------


PROTOCOL_CALLS: dict[str, Callable[[Store], object]] = {
    "exists": lambda s: s.exists(HOST),
    "items": lambda s: s.items(HOST),
    "get": lambda s: s.get(HOST, "NOTE"),
    "update": lambda s: s.update(HOST, {"NOTE": "x"}, "test", create=True),
    "stamp": lambda s: s.stamp(HOST, {"BOOT_SESSION": "aaaaaa"}, "test"),
    "unset": lambda s: s.unset(HOST, "NOTE", "test"),
    "delete": lambda s: s.delete(HOST, "test"),
    "list_records": lambda s: s.list_records(Kind.HOST, "default"),
    "history": lambda s: s.history(HOST),
    "write_attachment": lambda s: s.write_attachment(HOST, "ks", "# ks\n", "test"),
    "read_attachment": lambda s: s.read_attachment(HOST, "ks"),
    "lock": lambda s: s.lock("default").__enter__(),
    "journal_path": lambda s: s.journal_path("default"),
    "journal_lines": lambda s: s.journal_lines("default"),
    "append_journal": lambda s: s.append_journal(HOST, []),
}


def test_the_table_names_every_method_of_the_store_protocol() -> None:
    methods = {name for name, value in vars(Store).items()
               if callable(value) and not name.startswith("_")}
    assert methods == set(PROTOCOL_CALLS)


@pytest.mark.parametrize("name", PROTOCOL_CALLS)
def test_the_broken_store_raises_its_error_on_every_call(tmp_path: Path, name: str) -> None:
    error = CorruptRecord("x.conf", 1, "broken on purpose")
    store = BrokenStore(error, tmp_path)
    with pytest.raises(CorruptRecord) as raised:
        PROTOCOL_CALLS[name](store)
    assert raised.value is error
    assert store.calls == [name]

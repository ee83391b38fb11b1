"""The webhook (hps_api.observe.webhook, docs/stuck.md "The webhook"): a real HTTP receiver on
loopback gets the JSON and checks its signature as docs/stuck.md tells a receiver to; a receiver
that fails is tried again with growing pauses, a receiver that is down is given up on and named
in the event log, and neither holds up `send` nor the requests the server answers meanwhile."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import webtest

from hps_api import create_app
from hps_api.errors import InvalidInput
from hps_api.observe import eventlog
from hps_api.observe.webhook import Webhook, check_url
from hps_api.ops.announce import Watch
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

SECRET = "s3cret-shared-with-the-receiver"
EVENT = {"event": "host_stuck", "cluster": "default", "mac": "525400aabb01",
         "hostname": "sch-001", "rule": "kernel_fetch", "since": "2025-01-04T14:00:00Z",
         "detail": "installer sent 12 min ago and no kickstart fetched since"}
FAST = (0.2, 0.4, 0.8)


@dataclass
class Received:
    """One request the receiver got."""

    at: float
    path: str
    headers: Message  # case-insensitive, as every HTTP server's
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP server that answers each POST with the next of `statuses` (then 200)."""

    statuses: list[int] = field(default_factory=list)
    hold: float = 0.0
    got: list[Received] = field(default_factory=list)
    url: str = ""


def verified(secret: str, body: bytes, header: str) -> bool:
    """What docs/stuck.md tells a receiver to do: HMAC-SHA256 of the raw body, compared in
    constant time with the hex after `sha256=`."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    scheme, _, given = header.partition("=")
    return scheme == "sha256" and hmac.compare_digest(expected, given)


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    """Serve a Receiver on a free loopback port until the block ends."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.got.append(Received(time.monotonic(), self.path, self.headers, body))
            time.sleep(state.hold)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hooks/hps"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state


@pytest.fixture
def log(tmp_path: Path) -> Callable[[], str]:
    eventlog.setup(tmp_path / "log")
    return lambda: (tmp_path / "log/hps-api.log").read_text() if (
        tmp_path / "log/hps-api.log").exists() else ""


def closed_port() -> str:
    """Return a loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_the_receiver_gets_the_json_signed_with_the_secret(receiver: Receiver, log) -> None:
    hook = Webhook(receiver.url, SECRET)
    assert hook.send(EVENT)
    assert hook.wait(10)
    (got,) = receiver.got
    assert got.path == "/hooks/hps" and got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body) == EVENT
    assert verified(SECRET, got.body, got.headers["X-HPS-Signature"])
    assert not verified("another secret", got.body, got.headers["X-HPS-Signature"])
    assert not verified(SECRET, got.body.replace(b"sch-001", b"sch-002"),
                        got.headers["X-HPS-Signature"])
    assert "webhook to 127.0.0.1: host_stuck 525400aabb01 delivered (attempt 1)" in log()


def test_without_a_secret_the_body_goes_unsigned(receiver: Receiver) -> None:
    hook = Webhook(receiver.url)
    hook.send(EVENT)
    assert hook.wait(10)
    assert "X-HPS-Signature" not in receiver.got[0].headers


def test_a_failing_receiver_is_tried_again_after_growing_pauses(receiver: Receiver, log) -> None:
    receiver.statuses = [503, 500, 429]
    hook = Webhook(receiver.url, SECRET, delays=FAST)
    hook.send(EVENT)
    assert hook.wait(10)
    assert len(receiver.got) == 4 and len({r.body for r in receiver.got}) == 1
    pauses = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
    for pause, delay in zip(pauses, FAST, strict=True):
        assert delay <= pause < delay + 0.5
    assert "delivered (attempt 4)" in log()


@pytest.mark.parametrize("status", [400, 404, 302])
def test_an_answer_that_another_try_would_not_change_is_final(receiver: Receiver, log,
                                                                status: int) -> None:
    receiver.statuses = [status]
    hook = Webhook(receiver.url, SECRET, delays=FAST)
    hook.send(EVENT)
    assert hook.wait(10)
    assert [r.path for r in receiver.got] == ["/hooks/hps"]  # a redirect is not followed
    assert f"not delivered after 1 attempt(s): HTTP {status}" in log()


def test_a_receiver_that_is_down_is_given_up_on_after_every_attempt(log) -> None:
    hook = Webhook(closed_port(), SECRET, delays=FAST)
    started = time.monotonic()
    hook.send(EVENT)
    assert hook.wait(10)
    assert sum(FAST) <= time.monotonic() - started < sum(FAST) + 2
    assert ("webhook to 127.0.0.1: host_stuck 525400aabb01 not delivered after 4 attempt(s): "
            "no answer (Connection refused)") in log()


def test_send_never_waits_for_the_receiver_and_a_full_queue_drops_with_a_line(
        receiver: Receiver, log) -> None:
    receiver.hold = 0.5
    hook = Webhook(receiver.url, SECRET, queue_size=2, timeout=5)
    started = time.monotonic()
    sent = [hook.send({**EVENT, "mac": f"5254000000{n:02x}"}) for n in range(5)]
    assert time.monotonic() - started < 0.1
    assert sent[:2] == [True, True] and sent.count(True) in (2, 3)  # (one in flight,) two wait
    assert "announcements already waiting; dropped host_stuck" in log()
    assert hook.wait(10)
    assert len(receiver.got) == sent.count(True)


@pytest.mark.parametrize("url", ["ftp://example.org/x", "http://", "file:///etc/passwd",
                                 "hooks.example.org/x", "http://host:99999/x"])
def test_a_url_that_is_no_http_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="HPS_WEBHOOK_URL"):
        check_url(url)


def test_serve_refuses_a_bad_webhook_url_before_it_starts(cli, tmp_path: Path) -> None:
    refused = cli("hps-api", "serve", "--bind", "127.0.0.1:0",
                  env={"HPS_WEBHOOK_URL": "ftp://example.org/hook",
                       "HPS_LOG_DIR": str(tmp_path / "log")})
    assert refused.returncode == 2
    assert "HPS_WEBHOOK_URL: must be an http:// or https:// URL" in refused.stderr


# -- the request path while the receiver is down --------------------------------------------------


def init_times(web: webtest.TestApp, count: int) -> list[float]:
    """Return the seconds each of `count` boots of a registered host took."""
    found = []
    for n in range(count):
        started = time.perf_counter()
        web.get(f"/cgi-bin/boot_manager.sh?cmd=init&mac=52:54:00:dd:00:{n % 50:02x}",
                headers={"User-Agent": "iPXE/1.21.1+"}, extra_environ={"REMOTE_ADDR": "192.0.2.9"})
        found.append(time.perf_counter() - started)
    return found


def test_init_is_not_slowed_while_announcements_fail(tmp_path: Path, store: FileStore,
                                                     log) -> None:
    for n in range(10):  # stuck: a self-test failing on a running host
        store.update(RecordId.of_host("default", f"525400ee00{n:02x}"), {
            "STATE": "INSTALLED", "SELFTEST_RESULT": "fail"}, "test:setup", create=True)
    settings = Settings(config_dir=store.layout.root, log_dir=tmp_path / "log",
                        arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                        resources_dir=tmp_path / "resources", metrics=False,
                        webhook_url=closed_port(), webhook_secret=SECRET)
    web = webtest.TestApp(create_app(settings))
    init_times(web, 50)  # every host registered, the caches warm
    quiet = init_times(web, 100)
    watch = Watch.of(store, settings)
    hook = watch.announcer.webhook
    assert hook is not None
    hook.delays = (0.1,) * 4  # each announcement tried 5 times over 0.4 s, one after another
    assert len(watch.scan_once()[0].hosts) == 10
    failing = init_times(web, 100)
    assert not hook.wait(0), "the announcements were all given up on before the measurement"
    print(f"init median: {statistics.median(quiet) * 1000:.2f} ms quiet, "
          f"{statistics.median(failing) * 1000:.2f} ms while the webhook fails")
    assert statistics.median(failing) < statistics.median(quiet) * 1.5 + 0.002
    assert hook.wait(30)
    assert log().count("not delivered after 5 attempt(s): no answer (Connection refused)") == 10

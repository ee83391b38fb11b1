"""`/metrics` (docs/api.md §9): what is counted, who may read it, and real readers of it.

In one process (WebTest) the counters are this test process's, shared by every app it builds,
so the in-process tests compare a value before and after what they do. The gunicorn tests run
`hps-api serve` with two workers, check its text with `promtool check metrics`, and let a real
Prometheus server scrape it on loopback and answer queries about what the test did.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import webtest
from conftest import write_raw
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from test_gunicorn import Server, command, fetch, free_port, start_server, stop_server

from hps_api import create_app
from hps_api.errors import Forbidden, InvalidInput, StoreBusy
from hps_api.observe.metrics import HostCounts
from hps_api.ops.accounts import Accounts
from hps_api.settings import Settings, load_settings
from hps_api.store import FileStore, RecordId, files
from hps_api.web.session import session_account

URL = "/cgi-bin/boot_manager.sh"
IPXE = "iPXE/1.21.1+ (g8ef5)"
CURL = "curl/8.5.0"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
ROUTED = {"REMOTE_ADDR": "192.0.2.50"}  # a caller beyond a router: `mac=` names it
MAC = "52:54:00:aa:bb:01"
PROMTOOL = "/usr/bin/promtool"
PROMETHEUS = "/usr/bin/prometheus"
TIMEOUT = 30.0


def value(text: str, name: str, **labels: str) -> float:
    """Return the sum of the samples `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def scrape(web: webtest.TestApp) -> str:
    answer = web.get("/metrics")
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return answer.text


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)


# -- the text, in one process --------------------------------------------------------------------


def test_the_text_is_what_promtool_accepts(web: webtest.TestApp) -> None:
    web.get(f"{URL}?cmd=init&mac={MAC}", headers={"User-Agent": IPXE}, extra_environ=ROUTED)
    web.get("/health")
    text = scrape(web)
    for name in ("hps_http_requests_total", "hps_http_request_duration_seconds_bucket",
                 "hps_boot_decisions_total", "hps_store_lock_wait_seconds_count",
                 "hps_journal_writes_total", "hps_selftest_check_passed",
                 "hps_hosts_by_state", "hps_hosts_by_type"):
        assert f"\n{name}" in text, name
    checked = promtool(text)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_promtool_would_see_a_broken_text() -> None:
    checked = promtool("# TYPE hps_x counter\nhps_x{a=\"1\"} 1\n")
    assert checked.returncode != 0
    assert 'hps_x counter metrics should have "_total" suffix' in checked.stdout + checked.stderr


@pytest.mark.parametrize(("agent", "client"), [
    (IPXE, "ipxe"), (CURL, "curl"), ("Wget/1.21.3", "wget"), ("Wget", "wget"),
    (BROWSER, "browser"), ("python-requests/2.31.0", "other"), ("", "other"),
])
def test_requests_are_counted_by_command_and_client_type(web: webtest.TestApp, agent: str,
                                                         client: str) -> None:
    labels = {"endpoint": "legacy", "command": "determine_state", "client": client}
    before = scrape(web)
    web.get(f"{URL}?cmd=determine_state&mac={MAC}", headers={"User-Agent": agent},
            extra_environ=ROUTED, status="*")
    after = scrape(web)
    assert value(after, "hps_http_requests_total", **labels) == value(
        before, "hps_http_requests_total", **labels) + 1
    count = "hps_http_request_duration_seconds_count"
    assert value(after, count, **labels) == value(before, count, **labels) + 1


def test_an_unknown_command_is_counted_as_other_never_by_its_name(web: webtest.TestApp) -> None:
    labels = {"endpoint": "legacy", "command": "other", "client": "curl", "code": "404"}
    before = scrape(web)
    web.get(f"{URL}?cmd=no_such_command_x7", headers={"User-Agent": CURL}, status=404)
    after = scrape(web)
    assert value(after, "hps_http_requests_total", **labels) == value(
        before, "hps_http_requests_total", **labels) + 1
    assert "no_such_command_x7" not in after


def test_no_mac_hostname_or_address_is_a_label_value(web: webtest.TestApp,
                                                     store: FileStore) -> None:
    store.update(RecordId.of_host("default", MAC), {"HOSTNAME": "node-secret-name"}, "t",
                 create=True)
    web.get(f"{URL}?cmd=init&mac={MAC}", headers={"User-Agent": IPXE}, extra_environ=ROUTED)
    web.get(f"/hosts/{MAC}")
    text = scrape(web)
    assert "hps_hosts_by_state" in text
    for secret in ("525400aabb01", "52:54:00", "node-secret-name", "192.0.2.50", "10.99.0.21"):
        assert secret not in text


def test_boot_decisions_are_counted_by_decision(web: webtest.TestApp, store: FileStore) -> None:
    installed = RecordId.of_host("default", "52:54:00:aa:bb:02")
    store.update(installed, {"STATE": "INSTALLED"}, "t", create=True)
    before = scrape(web)
    for mac in ("52:54:00:aa:bb:03", "52:54:00:aa:bb:04", installed.name):
        web.get(f"{URL}?cmd=init&mac={mac}", headers={"User-Agent": IPXE}, extra_environ=ROUTED)
    after = scrape(web)
    for decision, more in (("menu", 2), ("localboot", 1), ("install", 0)):
        assert value(after, "hps_boot_decisions_total", decision=decision) == value(
            before, "hps_boot_decisions_total", decision=decision) + more, decision


def test_hosts_are_counted_by_state_and_type_without_naming_them(web: webtest.TestApp,
                                                                 store: FileStore) -> None:
    for n, (state, kind) in enumerate([("INSTALLED", "SCH"), ("INSTALLED", "SCH"),
                                       ("INSTALLING", "TCH"), ("UNCONFIGURED", None)]):
        values = {"STATE": state, **({"TYPE": kind} if kind else {})}
        store.update(RecordId.of_host("default", f"52:54:00:00:00:{n:02x}"), values, "t",
                     create=True)
    odd = RecordId.of_host("default", "52:54:00:00:00:10")
    store.update(odd, {"STATE": "INSTALLED"}, "t", create=True)
    write_raw(store, odd, {"STATE": "HALF_BAKED", "TYPE": "XYZ"})  # a hand edit
    text = scrape(web)
    expected_states = {"INSTALLED": 2, "INSTALLING": 1, "UNCONFIGURED": 1, "other": 1,
                       "FAILED": 0}
    for state, count in expected_states.items():
        assert value(text, "hps_hosts_by_state", cluster="default", state=state) == count
    for kind, count in {"SCH": 2, "TCH": 1, "none": 1, "other": 1, "DRH": 0}.items():
        assert value(text, "hps_hosts_by_type", cluster="default", type=kind) == count
    assert "HALF_BAKED" not in text and "XYZ" not in text


def test_host_counts_are_kept_a_few_seconds_and_only_changed_records_are_reread(
        store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rids = [RecordId.of_host("default", f"52:54:00:00:01:{n:02x}") for n in range(5)]
    for rid in rids:
        store.update(rid, {"STATE": "INSTALLED"}, "t", create=True)
    reads: list[RecordId] = []
    items = store.items
    monkeypatch.setattr(store, "items", lambda rid: reads.append(rid) or items(rid))

    def installed(counts: HostCounts) -> float:
        for family in counts.collect():
            for sample in family.samples:
                if sample.labels == {"cluster": "default", "state": "INSTALLED"}:
                    return sample.value
        raise AssertionError("no INSTALLED sample")

    kept = HostCounts(store, seconds=60)
    assert installed(kept) == 5 and len(reads) == 5
    store.update(rids[0], {"STATE": "INSTALLING"}, "t")
    assert installed(kept) == 5 and len(reads) == 5  # within 60 s: the same count, no read
    fresh = HostCounts(store, seconds=0)
    assert installed(fresh) == 4
    reads.clear()
    store.update(rids[1], {"STATE": "FAILED"}, "t")
    assert installed(fresh) == 3
    assert reads == [rids[1]]  # the one record whose file changed


def test_lock_waits_and_lock_timeouts_are_counted(web: webtest.TestApp, store: FileStore,
                                                  host: RecordId) -> None:
    before = scrape(web)
    store.update(host, {"NOTE": "one"}, "t")
    lock = store.layout.path(host).with_name(store.layout.path(host).name + ".lock")
    held = files.acquire(lock, 1)
    try:
        with pytest.raises(StoreBusy):
            store.update(host, {"NOTE": "two"}, "t")
    finally:
        os.close(held)
    after = scrape(web)
    # taken: the update's lock and the test's own; given up: the second update's
    assert value(after, "hps_store_lock_wait_seconds_count") == value(
        before, "hps_store_lock_wait_seconds_count") + 2
    assert value(after, "hps_store_lock_timeouts_total") == value(
        before, "hps_store_lock_timeouts_total") + 1


def test_journal_writes_are_counted_with_their_lines(web: webtest.TestApp, store: FileStore,
                                                     host: RecordId) -> None:
    journal = store.layout.journal_for(host)
    before, lines_before = scrape(web), len(journal.read_text().splitlines())
    store.update(host, {"NOTE": "a", "OTHER": "b"}, "t")
    store.update(host, {"NOTE": "c"}, "t")
    after, lines_after = scrape(web), len(journal.read_text().splitlines())
    assert value(after, "hps_journal_writes_total") == value(
        before, "hps_journal_writes_total") + 2
    assert value(after, "hps_journal_lines_total") == value(
        before, "hps_journal_lines_total") + (lines_after - lines_before)
    assert lines_after - lines_before >= 3


def test_self_test_results_are_kept_per_check(web: webtest.TestApp) -> None:
    started = time.time()
    web.get("/health")
    text = scrape(web)
    assert value(text, "hps_selftest_check_passed", check="templates") == 1
    assert value(text, "hps_selftest_check_passed", check="dnsmasq_config") == 0  # not rendered
    assert value(text, "hps_selftest_last_run_timestamp_seconds") >= int(started)


# -- bad input and who may read ------------------------------------------------------------------


def test_a_post_is_405_naming_get(web: webtest.TestApp) -> None:
    answer = web.post("/metrics", status=405)
    assert "GET" in answer.headers["Allow"] and "POST" not in answer.headers["Allow"]


@pytest.mark.parametrize("query", ["x=1&&=2&cmd=init&mac=zz", "x=%ff%fe", "a=" + "b" * 9000,
                                   "format=json", "%"])
def test_a_query_string_of_any_kind_still_gets_the_metrics(web: webtest.TestApp,
                                                           query: str) -> None:
    answer = web.get(f"/metrics?{query}")
    assert answer.status_int == 200
    assert answer.text.startswith("# HELP hps_")


def test_anyone_who_may_read_the_dashboard_may_read_the_metrics(web: webtest.TestApp) -> None:
    headers = {"User-Agent": BROWSER}
    assert web.get("/", headers=headers).status_int == 200
    assert web.get("/metrics", headers=headers).status_int == 200


def require_login() -> None:
    """A pages policy stricter than today's: only a logged-in account reads them."""
    if session_account() is None:
        raise Forbidden("log in at /login to read the pages")


@pytest.fixture
def strict_app(settings: Settings, config_dir: Path) -> Flask:
    """The app with `require_login` among the pages' own request checks."""
    Accounts(config_dir).add("alice", "correct horse battery")
    app = create_app(settings)
    app.before_request_funcs.setdefault("ui", []).append(require_login)
    return app


def test_when_the_pages_need_a_login_the_metrics_give_the_same_refusal(
        strict_app: Flask) -> None:
    client = webtest.TestApp(strict_app, extra_environ={"REMOTE_ADDR": "10.99.0.50",
                                                        "HTTP_USER_AGENT": BROWSER})
    page, metrics = client.get("/", status=403), client.get("/metrics", status=403)
    assert (metrics.content_type, metrics.text) == (page.content_type, page.text)
    assert "log in at /login to read the pages" in metrics.text
    form = client.get("/login").forms[0]
    form["name"], form["password"] = "alice", "correct horse battery"
    form.submit(status=303)
    assert client.get("/").status_int == 200
    assert value(client.get("/metrics").text, "hps_hosts_unreadable", cluster="default") == 0


def test_with_metrics_off_there_is_no_endpoint_and_no_counting(settings: Settings) -> None:
    on = webtest.TestApp(create_app(settings))
    off = webtest.TestApp(create_app(settings.with_overrides(metrics=False)))
    labels = {"endpoint": "legacy", "command": "determine_state", "client": "curl"}
    before = scrape(on)
    off.get("/metrics", status=404)
    off.get(f"{URL}?cmd=determine_state&mac={MAC}", headers={"User-Agent": CURL},
            extra_environ=ROUTED, status="*")
    assert value(scrape(on), "hps_http_requests_total", **labels) == value(
        before, "hps_http_requests_total", **labels)


@pytest.mark.parametrize(("raw", "on"), [("off", False), ("0", False), ("no", False),
                                         ("on", True), ("Yes", True), ("", True)])
def test_hps_metrics_is_on_unless_turned_off(raw: str, on: bool) -> None:
    assert load_settings({"HPS_METRICS": raw}).metrics is on


def test_a_misspelt_hps_metrics_stops_the_start() -> None:
    with pytest.raises(InvalidInput, match=r"^HPS_METRICS='of': must be on or off$"):
        load_settings({"HPS_METRICS": "of"})


# -- a real gunicorn with two workers ------------------------------------------------------------


def workers_of(server: Server) -> set[int]:
    """Return the pids of the server's worker processes (its master's children)."""
    pid = server.process.pid
    return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def replace_workers(server: Server, count: int) -> set[int]:
    """SIGKILL the server's workers (started by its master, which the test started); return
    the new workers' pids once the master has replaced them and they answer."""
    deadline = time.monotonic() + TIMEOUT
    old = workers_of(server)
    while len(old) != count and time.monotonic() < deadline:  # a loaded box boots them late
        time.sleep(0.1)
        old = workers_of(server)
    assert len(old) == count
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        new = workers_of(server)
        if len(new) == count and not new & old:
            try:
                if fetch(server, "/api/v1/health").status == 200:
                    return new
            except OSError:
                pass
        time.sleep(0.1)
    pytest.fail(f"the workers were not replaced within {TIMEOUT:g} s")


def boot_requests(server: Server, first: int, count: int) -> None:
    """Send `count` iPXE `init` requests of new MACs (each a new connection)."""
    for n in range(first, first + count):
        answer = fetch(server, command(f"cmd=init&mac=52:54:00:cc:00:{n:02x}"), agent=IPXE)
        assert answer.status == 200 and answer.body.startswith("#!ipxe")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    running = start_server(tmp_path, workers=2)
    try:
        yield running
    finally:
        stop_server(running)


@pytest.mark.slow
def test_gunicorn_adds_up_every_worker_old_and_new_and_promtool_accepts_it(
        served: Server) -> None:
    directory = served.config_dir / "run" / "metrics"
    FileStore(served.config_dir).update(RecordId.of_host("default", MAC), {"STATE": "INSTALLED"},
                                        "test:setup", create=True)
    boot_requests(served, 0, 6)
    for agent in (CURL, "Wget"):
        answer = fetch(served, command(f"cmd=determine_state&mac={MAC}"), agent=agent)
        assert (answer.status, answer.body) == (200, "INSTALLED\n")
    first_workers = workers_of(served)
    new_workers = replace_workers(served, 2)
    boot_requests(served, 6, 4)
    answer = fetch(served, "/metrics")
    assert answer.status == 200 and answer.content_type.startswith("text/plain; version=0.0.4")
    text = answer.body
    init = {"endpoint": "legacy", "command": "init", "client": "ipxe", "code": "200"}
    assert value(text, "hps_http_requests_total", **init) == 10
    assert value(text, "hps_boot_decisions_total", decision="menu") == 10
    assert value(text, "hps_hosts_by_state", cluster="default", state="UNCONFIGURED") == 10
    for client in ("curl", "wget"):
        assert value(text, "hps_http_requests_total", command="determine_state",
                     client=client) == 1
    assert value(text, "hps_selftest_check_passed", check="templates") == 1  # the master's run
    # 6 of the 10 by workers killed since, 4 by their successors: both are added up
    pids = {int(m[1]) for m in map(re.compile(r"counter_(\d+)\.db").fullmatch,
                                   os.listdir(directory)) if m}
    assert pids & first_workers and pids & new_workers
    checked = promtool(text)
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@pytest.mark.slow
def test_each_start_begins_with_an_empty_metrics_directory(tmp_path: Path) -> None:
    stale = tmp_path / "hps-config" / "run" / "metrics" / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by an earlier run")
    running = start_server(tmp_path, workers=1)
    try:
        assert not stale.exists()
        assert fetch(running, "/metrics").status == 200
    finally:
        stop_server(running)


# -- a real Prometheus server scraping it --------------------------------------------------------


def prometheus_query(base: str, query: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as answer:
        payload = json.load(answer)
    assert payload["status"] == "success", payload
    result: list[dict[str, object]] = payload["data"]["result"]
    return result


def scalar(base: str, query: str) -> float | None:
    """Return the single value of an instant query, None while Prometheus has none."""
    result = prometheus_query(base, query)
    if not result:
        return None
    assert len(result) == 1, result
    sample = result[0]["value"]
    assert isinstance(sample, list)
    return float(sample[1])


def wait_for(base: str, query: str, expected: float) -> float | None:
    """Poll `query` until it answers `expected` or TIMEOUT passes; return the last value."""
    seen = None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        seen = scalar(base, query)
        if seen == expected:
            break
        time.sleep(0.5)
    return seen


@pytest.fixture
def prometheus(tmp_path: Path, served: Server) -> Iterator[str]:
    """A Prometheus server scraping `served` every second; yield its base URL."""
    home = tmp_path / "prometheus"
    home.mkdir()
    target = served.url.removeprefix("http://")
    config = home / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: hps\n    metrics_path: /metrics\n"
        f"    static_configs:\n      - targets: ['{target}']\n")
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={home / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, (home / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus not ready within the timeout"
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_a_real_prometheus_scrapes_what_the_requests_did(served: Server,
                                                         prometheus: str) -> None:
    boot_requests(served, 0, 5)
    init = 'sum(hps_http_requests_total{endpoint="legacy",command="init",client="ipxe"})'
    assert wait_for(prometheus, init, 5) == 5
    assert scalar(prometheus, 'up{job="hps"}') == 1
    boot_requests(served, 5, 3)  # and the next scrapes see the new total
    assert wait_for(prometheus, init, 8) == 8
    assert scalar(prometheus, 'sum(hps_boot_decisions_total{decision="menu"})') == 8
    assert wait_for(prometheus, 'hps_hosts_by_state{state="UNCONFIGURED"}', 8) == 8
    assert scalar(prometheus, 'hps_hosts_by_state{state="INSTALLED"}') == 0
    assert scalar(prometheus, 'sum(hps_http_requests_total{endpoint="metrics",code="200"})') \
        >= 2  # Prometheus's own scrapes, each counted once answered

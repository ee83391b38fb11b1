"""The pages for people (api.md §6): dashboard, host page and health, as a browser sees them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import webtest
from flask import Flask

from hps_api import __version__, create_app
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
from hps_api.web import ui

OUTSIDER = "10.99.0.7"
LOOPBACK = "127.0.0.1"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
HOSTILE = "<script>alert(1)</script>"


def make_app(tmp_path: Path, config_dir: Path) -> Flask:
    """Return the real app on tmp_path, with the ui blueprint until app.py registers it."""
    app = create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              admin_token="t0k"))
    if "ui" not in app.blueprints:
        app.register_blueprint(ui.bp)
    return app


@pytest.fixture
def web(tmp_path: Path, config_dir: Path) -> webtest.TestApp:
    """A browser on the provisioning network (not loopback, no token)."""
    return webtest.TestApp(make_app(tmp_path, config_dir),
                           extra_environ={"REMOTE_ADDR": OUTSIDER, "HTTP_USER_AGENT": BROWSER})


def add_host(store: FileStore, mac: str, **values: str) -> RecordId:
    """Register a host in the default cluster with the given keys."""
    rid = RecordId.of_host("default", mac)
    store.update(rid, values, "test:setup", create=True)
    return rid


@pytest.fixture
def three_hosts(store: FileStore) -> None:
    """Two INSTALLED hosts and one UNCONFIGURED, seen at different times (one never seen)."""
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", HOSTNAME="sch-001", TYPE="SCH",
             PROFILE="DEFAULT", IP="10.99.0.11", LAST_SEEN="2025-01-02T10:00:00Z",
             BOOT_SESSION="a1b2c3", SELFTEST_RESULT="pass")
    add_host(store, "52:54:00:aa:bb:02", STATE="UNCONFIGURED", HOSTNAME="new-002",
             LAST_SEEN="2025-01-03T10:00:00Z")
    add_host(store, "52:54:00:aa:bb:03", STATE="INSTALLED", HOSTNAME="old-003")


def state_count(body: str, state: str) -> int | None:
    """Return the count the dashboard shows for a state, None when the state is not listed."""
    found = re.search(rf'<th scope="row">{state}</th><td>(\d+)</td>', body)
    return int(found.group(1)) if found else None


# -- dashboard -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("three_hosts")
def test_dashboard_names_the_active_cluster_and_counts_hosts_per_state(web) -> None:
    body = web.get("/").text
    assert "Cluster default" in body
    assert state_count(body, "INSTALLED") == 2
    assert state_count(body, "UNCONFIGURED") == 1
    assert state_count(body, "Total") == 3
    assert state_count(body, "CONFIGURED") is None


@pytest.mark.usefixtures("three_hosts")
def test_dashboard_lists_hosts_with_their_summary_and_a_link_to_each(web) -> None:
    body = web.get("/").text
    assert '<a href="/hosts/525400aabb01">52:54:00:aa:bb:01</a>' in body
    for value in ("sch-001", "SCH", "DEFAULT", "10.99.0.11", "2025-01-02T10:00:00Z", "a1b2c3",
                  "pass"):
        assert f"<td>{value}</td>" in body


@pytest.mark.usefixtures("three_hosts")
def test_dashboard_lists_newest_activity_first_and_never_seen_hosts_last(web) -> None:
    body = web.get("/").text
    positions = [body.index(name) for name in ("new-002", "sch-001", "old-003")]
    assert positions == sorted(positions)


def test_dashboard_says_so_when_the_cluster_has_no_hosts(web) -> None:
    page = web.get("/")
    assert "No hosts in cluster default yet" in page.text
    assert "<table" not in page.text


def test_dashboard_refreshes_itself_every_30_seconds_and_other_pages_do_not(web, host) -> None:
    refresh = '<meta http-equiv="refresh" content="30">'
    assert refresh in web.get("/").text
    assert refresh not in web.get("/hosts/525400aabb01").text
    assert refresh not in web.get("/health").text


def test_a_corrupt_host_file_is_reported_without_hiding_the_other_hosts(
        web, store: FileStore, config_dir: Path) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", HOSTNAME="sch-001")
    (config_dir / "clusters/default/hosts/525400aabb09.conf").write_text("not a record\n")
    body = web.get("/").text
    assert "sch-001" in body
    assert "corrupt record" in body
    assert "525400aabb09.conf" in body


def test_dashboard_without_an_active_cluster_is_a_404_page(web, store: FileStore) -> None:
    store.unset(RecordId.global_(), "ACTIVE_CLUSTER", "test:setup")
    page = web.get("/", status=404)
    assert page.content_type == "text/html"
    assert "hps-api init" in page.text


@pytest.mark.parametrize(("records", "expected"), [
    pytest.param({"a": {"LAST_SEEN": "2025-01-01T00:00:00Z"},
                  "b": {"LAST_SEEN": "2025-02-01T00:00:00Z"}}, ["b", "a"], id="last-seen"),
    pytest.param({"a": {"UPDATED": "2025-01-01T00:00:00Z"},
                  "b": {"UPDATED": "2025-02-01T00:00:00Z"}}, ["b", "a"], id="updated-breaks-ties"),
    pytest.param({"a": {"LAST_SEEN": "2025-01-01T00:00:00Z", "UPDATED": "2025-01-01T00:00:00Z"},
                  "b": {"UPDATED": "2025-09-01T00:00:00Z"}}, ["a", "b"], id="seen-beats-unseen"),
    pytest.param({"a": {}, "b": {}, "c": {}}, ["a", "b", "c"], id="ties-keep-mac-order"),
])
def test_host_rows_are_ordered_by_last_seen_then_updated_descending(records, expected) -> None:
    rows = ui.host_rows(records, (), admin=False)
    assert [row.mac for row in rows] == expected


def test_state_counts_list_known_states_in_table_order_and_unknown_ones_last() -> None:
    records = [{"STATE": "INSTALLED"}, {"STATE": "WEIRD"}, {}, {"STATE": "UNCONFIGURED"},
               {"STATE": "INSTALLED"}]
    assert ui.state_counts(records) == [("UNCONFIGURED", 1), ("INSTALLED", 2), ("(none)", 1),
                                        ("WEIRD", 1)]


# -- host page -----------------------------------------------------------------------------------


def test_host_page_shows_the_record_as_keys_and_values(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", HOSTNAME="sch-001", TYPE="SCH")
    body = web.get("/hosts/525400aabb01").text
    assert "Host 52:54:00:aa:bb:01" in body
    for key, value in (("STATE", "INSTALLED"), ("HOSTNAME", "sch-001"), ("TYPE", "SCH")):
        assert f'<th scope="row">{key}</th><td>{value}</td>' in body


def test_host_page_shows_the_history_newest_first(web, store: FileStore) -> None:
    rid = add_host(store, "52:54:00:aa:bb:01", HOSTNAME="first-name")
    store.update(rid, {"HOSTNAME": "second-name"}, "admin:alice")
    history = web.get("/hosts/525400aabb01").text.split("<h2>History</h2>")[1]
    assert history.index("admin:alice") < history.index("test:setup")
    assert "<td>first-name</td>\n<td>second-name</td>" in history
    assert '<span class="muted">(unset)</span></td>\n<td>first-name</td>' in history


def test_host_page_shows_only_the_last_50_changes(web, store: FileStore) -> None:
    rid = add_host(store, "52:54:00:aa:bb:01", HOSTNAME="h-0")
    for number in range(1, 60):
        store.update(rid, {"HOSTNAME": f"h-{number}"}, "test:setup")
    history = web.get("/hosts/525400aabb01").text.split("<h2>History</h2>")[1]
    assert history.count("<td>test:setup</td>") == 50
    assert history.index("<td>h-59</td>") < history.index("<td>h-10</td>")
    assert "<td>h-8</td>" not in history


@pytest.mark.parametrize("spelling", [
    "525400aabb01", "525400AABB01", "52:54:00:aa:bb:01", "52:54:00:AA:BB:01",
    "52-54-00-aa-bb-01", "5254.00aa.bb01",
])
def test_host_page_accepts_any_mac_spelling(web, host, spelling: str) -> None:
    assert "Host 52:54:00:aa:bb:01" in web.get(f"/hosts/{spelling}").text


@pytest.mark.parametrize("mac", [
    "not-a-mac", "52:54:00:aa:bb", "52:54:00-aa:bb:01", "ff:ff:ff:ff:ff:ff", "000000000000",
    "..", "525400aabb01.conf",
])
def test_a_bad_mac_is_a_400_html_page(web, mac: str) -> None:
    page = web.get(f"/hosts/{mac}", status=400)
    assert page.content_type == "text/html"
    assert "<h1>400 Bad request</h1>" in page.text


def test_an_unknown_host_is_a_404_html_page(web, host) -> None:
    page = web.get("/hosts/52:54:00:aa:bb:99", status=404)
    assert page.content_type == "text/html"
    assert "<h1>404 Not found</h1>" in page.text
    assert "host/525400aabb99 not found" in page.text


@pytest.mark.parametrize("headers", [
    {"User-Agent": "curl/8.5.0"}, {"Accept": "application/json"}, {"User-Agent": "iPXE/1.21"},
], ids=["curl", "accept-json", "ipxe"])
def test_page_errors_are_html_whatever_the_client(web, headers: dict[str, str]) -> None:
    page = web.get("/hosts/nonsense", headers=headers, status=400)
    assert page.content_type == "text/html"


# -- sensitive values ----------------------------------------------------------------------------


@pytest.fixture
def secret_host(store: FileStore) -> RecordId:
    """A host with a sensitive key (matches `*PASSWORD*`)."""
    return add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", ROOT_PASSWORD="s3cret-pw")


@pytest.mark.parametrize(("remote", "headers", "shown"), [
    (OUTSIDER, {}, False),
    (OUTSIDER, {"Authorization": "Bearer wrong"}, False),
    (OUTSIDER, {"Authorization": "Bearer t0k"}, True),
    (LOOPBACK, {}, True),
    ("::1", {}, True),
], ids=["outsider", "wrong-token", "bearer-admin", "loopback", "loopback-v6"])
def test_sensitive_values_are_hidden_from_everyone_but_admins(
        web, secret_host, remote: str, headers: dict[str, str], shown: bool) -> None:
    body = web.get("/hosts/525400aabb01", headers=headers,
                   extra_environ={"REMOTE_ADDR": remote}).text
    record = body.split("<h2>History</h2>")[0]
    assert ("s3cret-pw" in body) is shown
    assert ('<th scope="row">ROOT_PASSWORD</th><td><span class="withheld">hidden</span>'
            in record) is not shown


def test_sensitive_values_in_the_history_are_hidden_from_outsiders(web, secret_host) -> None:
    history = web.get("/hosts/525400aabb01").text.split("<h2>History</h2>")[1]
    row = re.search(r"<td>ROOT_PASSWORD</td>.*?</tr>", history, re.S)
    assert row is not None
    assert '<span class="withheld">hidden</span>' in row.group(0)


def test_a_forwarded_loopback_address_from_an_untrusted_peer_is_no_admin(web, secret_host) -> None:
    body = web.get("/hosts/525400aabb01", headers={"X-Forwarded-For": "127.0.0.1"}).text
    assert "s3cret-pw" not in body


def test_the_dashboard_hides_a_summary_column_that_settings_call_sensitive(
        tmp_path: Path, config_dir: Path, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", BOOT_SESSION="abc123")
    app = create_app(Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                              arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                              sensitive_keys=("BOOT_SESSION",)))
    if "ui" not in app.blueprints:
        app.register_blueprint(ui.bp)
    body = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": OUTSIDER}).get("/").text
    assert "abc123" not in body
    assert '<span class="withheld">hidden</span>' in body


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/hosts/525400aabb01"])
def test_hostile_values_are_escaped(web, store: FileStore, url: str) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", HOSTNAME=HOSTILE)
    body = web.get(url).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script" not in body


def test_a_hostile_mac_in_the_url_is_escaped_on_the_error_page(web) -> None:
    page = web.get("/hosts/%3Cscript%3E", status=400)
    assert "&lt;script&gt;" in page.text
    assert "<script" not in page.text


# -- health --------------------------------------------------------------------------------------


def test_health_shows_status_version_cluster_and_config_dir(web, config_dir: Path) -> None:
    body = web.get("/health").text
    assert "<h1>Health: ok</h1>" in body
    assert f"<td>{__version__}</td>" in body
    assert '<a href="/">default</a>' in body
    assert f"<code>{config_dir}</code>" in body
    assert '<th scope="row">Config dir writable</th><td>yes</td>' in body
    assert "placeholder" in body


def test_health_is_degraded_without_an_active_cluster_or_config_dir(tmp_path: Path) -> None:
    web = webtest.TestApp(make_app(tmp_path, tmp_path / "missing"),
                          extra_environ={"REMOTE_ADDR": OUTSIDER})
    body = web.get("/health").text
    assert "<h1>Health: degraded</h1>" in body
    assert "hps-api init" in body
    assert '<th scope="row">Config dir writable</th><td>no</td>' in body


def test_a_fresh_store_seeded_by_initialise_is_healthy(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    initialise(FileStore(root), "lab-1", "test:setup")
    web = webtest.TestApp(make_app(tmp_path, root), extra_environ={"REMOTE_ADDR": OUTSIDER})
    assert "<h1>Health: ok</h1>" in web.get("/health").text
    assert "Cluster lab-1" in web.get("/").text

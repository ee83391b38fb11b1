"""The pages for people (docs/api.md §6): dashboard, unconfigured hosts, host page, health and the
admin actions (configure, reinstall, unconfigure) with their CSRF protection, as a browser sees
them."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import webtest
from conftest import provide_os_files, write_raw
from flask import Flask

from hps_api import __version__, create_app
from hps_api.errors import Forbidden, NotFound
from hps_api.ops import host_query
from hps_api.ops.accounts import Accounts
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId
from hps_api.store.bootstrap import initialise
from hps_api.store.journal import Change
from hps_api.web import csrf, overview, ui, views

OUTSIDER = "10.99.0.7"
LOOPBACK = "127.0.0.1"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
HOSTILE = "<script>alert(1)</script>"
TOKEN = "t0k"
WAITING = "525400aabb02"
CONFIGURE = f"/hosts/{WAITING}/configure"


def app_settings(tmp_path: Path, config_dir: Path, **changes: object) -> Settings:
    """Return settings keeping every path under tmp_path (no /srv, no real dnsmasq)."""
    return Settings(config_dir=config_dir, log_dir=tmp_path / "log", arp_table=tmp_path / "arp",
                    dhcp_leases=tmp_path / "leases", resources_dir=tmp_path / "resources",
                    dnsmasq_pidfile=tmp_path / "dnsmasq.pid", admin_token=TOKEN,
                    lock_timeout=0.5).with_overrides(**changes)


def make_app(tmp_path: Path, config_dir: Path, **changes: object) -> Flask:
    """Return the real app on tmp_path, with the ui blueprint until app.py registers it."""
    app = create_app(app_settings(tmp_path, config_dir, **changes))
    if "ui" not in app.blueprints:
        app.register_blueprint(ui.bp)
    return app


@pytest.fixture
def app(tmp_path: Path, config_dir: Path) -> Flask:
    """The real app over the test store."""
    return make_app(tmp_path, config_dir)


@pytest.fixture
def web(app: Flask) -> webtest.TestApp:
    """A browser on the provisioning network (not loopback, no token)."""
    return webtest.TestApp(app, extra_environ={"REMOTE_ADDR": OUTSIDER,
                                               "HTTP_USER_AGENT": BROWSER})


ADMIN = "alice"
PASSWORD = "correct horse battery"


def log_in(client: webtest.TestApp, name: str = ADMIN, password: str = PASSWORD,
           status: int = 303) -> webtest.TestResponse:
    """Fill in and submit the login form as a person would."""
    form = client.get("/login").forms[0]
    form["name"], form["password"] = name, password
    return form.submit(status=status)


@pytest.fixture
def admin(app: Flask, config_dir: Path) -> webtest.TestApp:
    """The operator's browser, logged in as an admin account."""
    Accounts(config_dir).add(ADMIN, PASSWORD)
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": LOOPBACK,
                                                 "HTTP_USER_AGENT": BROWSER})
    log_in(client)
    return client


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
    table = body.split('id="state-counts"')[1].split("</table>")[0]
    found = re.search(rf'>{state}</span></a></th><td><a href="[^"]*">(\d+)</a></td>', table)
    if state == "Total":
        found = re.search(r'<th scope="row">Total</th><td><a href="/hosts">(\d+)</a>', table)
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
def test_every_dashboard_count_links_to_the_host_list_filtered_the_same_way(web) -> None:
    body = web.get("/").text
    for state, count in (("INSTALLED", 2), ("UNCONFIGURED", 1)):
        assert f'<a href="/hosts?state={state}">{count}</a>' in body
        listed = web.get(f"/hosts?state={state}").text
        assert listed.count('<td class="pick">') + listed.count("<tr><td><a class=\"mono\"") \
            == count
    assert '<a href="/hosts?type=SCH">1</a>' in body
    assert '<a href="/hosts?type=%28none%29">2</a>' in body


def test_the_dashboard_weighs_the_same_for_40_hosts_as_for_160(web, store: FileStore) -> None:
    sizes = []
    for batch in (range(40), range(40, 160)):
        for n in batch:
            add_host(store, f"52:54:00:aa:cc:{n:02x}", STATE="INSTALLED", HOSTNAME=f"many-{n:03d}")
        body = web.get("/").text
        attention = body.split("<h2>Needs attention</h2>")[1].split("<h2>Recent activity</h2>")[0]
        assert "many-" not in attention  # INSTALLED hosts need nothing: counted, not listed
        assert body.count("<tr><td><time") == overview.RECENT_CHANGES  # the last changes only
        sizes.append(len(body))
    assert state_count(body, "INSTALLED") == 160
    assert abs(sizes[1] - sizes[0]) < 200


def test_dashboard_says_so_when_the_cluster_has_no_hosts(web) -> None:
    page = web.get("/")
    assert "No hosts in cluster default yet" in page.text
    assert "<table" not in page.text


def test_dashboard_refreshes_itself_every_minute_and_other_pages_do_not(web, host) -> None:
    refresh = f'<meta http-equiv="refresh" content="{ui.REFRESH_SECONDS}">'
    assert ui.REFRESH_SECONDS == 60
    assert refresh in web.get("/").text
    for url in ("/hosts/525400aabb01", "/unconfigured", "/health", "/hosts", "/cluster", "/os",
                "/network"):
        assert 'http-equiv="refresh"' not in web.get(url).text, url


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
def test_hosts_are_listed_by_last_seen_then_updated_descending(records, expected) -> None:
    rows = host_query.sort_rows(list(records.items()), host_query.DEFAULT_SORT)
    assert [mac for mac, _ in rows] == expected


def test_state_counts_list_known_states_in_table_order_and_unknown_ones_last() -> None:
    records = [{"STATE": "INSTALLED"}, {"STATE": "WEIRD"}, {}, {"STATE": "UNCONFIGURED"},
               {"STATE": "INSTALLED"}]
    assert [(c.label, c.count) for c in overview.state_counts(records)] == [
        ("UNCONFIGURED", 2), ("INSTALLED", 2), ("WEIRD", 1)]  # no STATE counts as UNCONFIGURED


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
    (LOOPBACK, {}, False),
    (LOOPBACK, {"User-Agent": "curl/8.5.0"}, True),
    ("::1", {"User-Agent": "curl/8.5.0"}, True),
    ("::ffff:127.0.0.1", {"User-Agent": "curl/8.5.0"}, True),
], ids=["outsider", "wrong-token", "bearer-admin", "browser-on-loopback", "tool-on-loopback",
        "tool-on-loopback-v6", "tool-on-mapped-loopback"])
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


def test_the_host_list_hides_a_column_that_settings_call_sensitive(
        tmp_path: Path, config_dir: Path, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALL_FAILED", IP="10.99.0.77")
    app = make_app(tmp_path, config_dir, sensitive_keys=("IP",))
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": OUTSIDER})
    for url in ("/", "/hosts"):
        body = client.get(url).text
        assert "10.99.0.77" not in body, url
        assert '<span class="withheld">hidden</span>' in body, url
    assert "sensitive key" in client.get("/hosts?q=IP%3D10.99.0.77", status=400).text
    assert "sensitive key" in client.get("/hosts?sort=ip", status=400).text


# -- escaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/hosts/525400aabb01"])
def test_hostile_values_are_escaped(web, store: FileStore, url: str) -> None:
    rid = add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED")
    write_raw(store, rid, {"HOSTNAME": HOSTILE})  # the store refuses it: a hand-edited record
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
    assert "<h1>Health: degraded</h1>" in body  # the fixture cluster has no network yet
    assert f"<td>{__version__}</td>" in body
    assert '<a href="/">default</a>' in body
    assert "<code>$HPS_CONFIG_DIR</code>" in body  # where it is, only for admins
    assert str(config_dir) not in body
    with_token = web.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert f"<code>{config_dir}</code>" in with_token
    assert '<th scope="row">Config dir writable</th><td>yes</td>' in body
    assert "IPS self-test" in body and "NETWORK_CIDR" in body


def test_health_is_degraded_without_an_active_cluster_or_config_dir(tmp_path: Path) -> None:
    web = webtest.TestApp(make_app(tmp_path, tmp_path / "missing"),
                          extra_environ={"REMOTE_ADDR": OUTSIDER})
    body = web.get("/health").text
    assert "<h1>Health: degraded</h1>" in body
    assert "hps-api init" in body
    assert '<th scope="row">Config dir writable</th><td>no</td>' in body


def test_a_fresh_store_seeded_by_initialise_is_degraded_until_configured(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    initialise(FileStore(root), "lab-1", "test:setup")
    web = webtest.TestApp(make_app(tmp_path, root), extra_environ={"REMOTE_ADDR": OUTSIDER})
    page = web.get("/health").text
    assert "<h1>Health: degraded</h1>" in page
    assert "active_cluster</th><td class=\"bad\">FAIL" in page
    assert "Cluster lab-1" in web.get("/").text


# -- shared set-up for the actions ---------------------------------------------------------------


@pytest.fixture
def bootable(store: FileStore, tmp_path: Path) -> None:
    """A cluster that can configure and install an SCH: network keys and a prod OS record whose
    kernel and initrd are in the app's resources tree."""
    store.update(RecordId.of_cluster("default"), {"DHCP_IP": "10.99.0.1",
                                                  "NETWORK_CIDR": "10.99.0.0/24"}, "test:setup")
    store.update(RecordId.of_os("x86_64:rocky:10"), {
        "NAME": "rocky", "VERSION": "10", "ARCH": "x86_64", "STATUS": "prod", "HPS_TYPES": "SCH",
        "REPO_PATH": "rocky/10", "KERNEL": "images/pxeboot/vmlinuz",
        "INITRD": "images/pxeboot/initrd.img"}, "test:setup", create=True)
    provide_os_files(tmp_path / "resources", store)


@pytest.fixture
def hosts_in_states(store: FileStore, bootable: None) -> None:
    """One host waiting in each of UNCONFIGURED, FAILED and INSTALL_FAILED, and one INSTALLED."""
    add_host(store, "52:54:00:aa:bb:02", STATE="UNCONFIGURED", LAST_SEEN="2025-01-03T10:00:00Z")
    add_host(store, "52:54:00:aa:bb:03", STATE="FAILED", HOSTNAME="failed-003")
    add_host(store, "52:54:00:aa:bb:04", STATE="INSTALL_FAILED", HOSTNAME="sch-004", TYPE="SCH")
    add_host(store, "52:54:00:aa:bb:05", STATE="INSTALLED", HOSTNAME="sch-005", TYPE="SCH",
             PROFILE="DEFAULT", IP="10.99.0.5")


def secret_of(tmp_path: Path, config_dir: Path) -> bytes:
    """Return the CSRF secret the app of these settings signs with."""
    return csrf.derive_secret(app_settings(tmp_path, config_dir))


def form_token(page: webtest.TestResponse, action: str) -> str:
    """Return the CSRF token of the form posting to `action` on a page."""
    form = next(f for f in page.forms.values() if f.action == action)
    return str(form["csrf_token"].value)


# -- the unconfigured hosts page and the forms --------------------------------------------------


@pytest.mark.usefixtures("hosts_in_states")
def test_unconfigured_page_lists_the_hosts_waiting_for_a_type_and_no_other(web) -> None:
    body = web.get("/unconfigured").text
    for mac in ("525400aabb02", "525400aabb03", "525400aabb04"):
        assert f'<a href="/hosts/{mac}">' in body
    assert "525400aabb05" not in body


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize("url", ["/unconfigured", f"/hosts/{WAITING}"])
def test_configure_forms_are_shown_to_admins_only(web, admin, url: str) -> None:
    form = f'<form method="post" action="{CONFIGURE}"'
    assert form in admin.get(url).text
    assert form not in web.get(url).text
    assert "<form" not in web.get(url).text
    assert "csrf_token" not in web.get(url).text


@pytest.mark.usefixtures("hosts_in_states")
def test_non_admins_see_the_waiting_hosts_without_forms_and_are_told_why(web) -> None:
    body = web.get("/unconfigured").text
    assert "Only admins can configure hosts" in body
    assert '<a href="/hosts/525400aabb03">' in body


@pytest.mark.usefixtures("hosts_in_states")
def test_the_refreshing_dashboard_has_no_form_and_links_to_the_waiting_hosts(admin) -> None:
    body = admin.get("/").text
    assert "<form" not in body.split("</header>", 1)[1]  # the header's logout button only
    waiting = body.split('id="attention-waiting"')[1].split("</div>")[0]
    assert '<a href="/hosts?state=UNCONFIGURED">Waiting for a type: 1</a>' in waiting
    assert '<a href="/unconfigured">configure them</a>' in waiting


@pytest.mark.usefixtures("hosts_in_states")
def test_failed_installs_and_failed_hosts_are_shown_apart_from_hosts_waiting_for_a_type(
        web) -> None:
    body = web.get("/").text
    groups = {key: body.split(f'id="attention-{key}"')[1].split("</div>")[0]
              for key in ("install_failed", "failed", "waiting")}
    assert "Install failed: 1" in groups["install_failed"]
    assert "sch-004" in groups["install_failed"] and "failed-003" not in groups["install_failed"]
    assert "Failed: 1" in groups["failed"] and "failed-003" in groups["failed"]
    assert "525400aabb02" in groups["waiting"] and "sch-004" not in groups["waiting"]


@pytest.mark.usefixtures("hosts_in_states")
def test_the_form_offers_every_type_and_profile_of_the_catalog(admin) -> None:
    form = admin.get("/unconfigured").forms[f"configure-{WAITING}"]
    values = [value for value, _selected, _text in form["choice"].options]
    assert values[0] == ""
    assert {"SCH/DEFAULT", "TCH/DEFAULT", "TCH/KVM", "TCH/DOCKER", "TCH/BUILD", "CCH/DEFAULT",
            "DRH/DEFAULT"} == set(values[1:])


@pytest.mark.usefixtures("hosts_in_states")
def test_the_dashboard_heads_with_the_cluster_summary(web) -> None:
    body = web.get("/").text
    for label, value in (("Cluster", "default"), ("Network", "10.99.0.0/24"),
                         ("IPS address", "10.99.0.1"), ("Hosts", '<a href="/hosts">4</a>')):
        assert f"<dt>{label}</dt><dd>{value}</dd>" in body


@pytest.mark.parametrize(("record", "actions"), [
    ({}, ["configure"]),
    ({"STATE": "UNCONFIGURED"}, ["configure"]),
    ({"STATE": "FAILED"}, ["configure", "unconfigure"]),
    ({"STATE": "INSTALL_FAILED", "TYPE": "SCH"}, ["configure", "reinstall", "unconfigure"]),
    ({"STATE": "CONFIGURED", "TYPE": "SCH"}, ["reinstall", "unconfigure"]),
    ({"STATE": "INSTALLED", "TYPE": "SCH"}, ["reinstall", "unconfigure"]),
    ({"STATE": "UNMANAGED"}, ["unconfigure"]),
])
def test_host_actions_follow_the_state_and_type(record, actions) -> None:
    assert views.host_actions(record) == actions


@pytest.mark.parametrize(("text", "expected"), [
    ("SCH/DEFAULT", ("SCH", "DEFAULT")), ("tch/kvm", ("tch", "kvm")), ("SCH", ("SCH", None)),
    (" CCH/ ", ("CCH", None)),
])
def test_a_choice_is_type_slash_profile(text: str, expected) -> None:
    assert ui.parse_choice(text) == expected


# -- configure, reinstall, unconfigure -----------------------------------------------------------


@pytest.mark.usefixtures("hosts_in_states")
def test_configuring_from_the_form_redirects_and_the_next_init_serves_the_installer(
        admin, web, store: FileStore) -> None:
    form = admin.get("/unconfigured").forms[f"configure-{WAITING}"]
    form["choice"] = "SCH/DEFAULT"
    done = form.submit(status=303)
    assert done.headers["Location"].endswith(f"/hosts/{WAITING}?done=configure")
    record = store.items(RecordId.of_host("default", WAITING))
    assert (record["STATE"], record["TYPE"], record["PROFILE"]) == ("CONFIGURED", "SCH",
                                                                  "DEFAULT")
    assert (record["HOSTNAME"], record["IP"], record["OS_ID"]) == ("sch-001", "10.99.0.2",
                                                                   "x86_64:rocky:10")
    assert "Configured: the host installs at its next network boot." in done.follow().text
    script = web.get(f"/cgi-bin/boot_manager.sh?cmd=init&mac={WAITING}",
                     headers={"User-Agent": "iPXE/1.21.1+"}).text
    assert script.startswith("#!ipxe")
    assert "installing x86_64:rocky:10 on sch-001 as SCH/DEFAULT" in script
    assert "/distros/rocky/10/images/pxeboot/vmlinuz" in script


@pytest.mark.usefixtures("hosts_in_states")
def test_the_change_shows_in_the_history_of_the_host_page(admin) -> None:
    form = admin.get(f"/hosts/{WAITING}").forms[f"configure-{WAITING}"]
    form["choice"] = "SCH/DEFAULT"
    history = form.submit(status=303).follow().text.split("<h2>History</h2>")[1]
    assert "<td>TYPE</td>\n<td><span class=\"muted\">(unset)</span></td>\n<td>SCH</td>" in history
    assert f"<td>admin:{ADMIN}</td>" in history


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize(("choice", "status"), [
    ("", 400), ("XYZ/DEFAULT", 400), ("SCH/KVM", 400),
], ids=["empty", "unknown-type", "unknown-profile"])
def test_a_bad_choice_is_refused_and_changes_nothing(
        admin, config_dir: Path, snapshot, choice: str, status: int) -> None:
    token = form_token(admin.get("/unconfigured"), CONFIGURE)
    before = snapshot(config_dir)
    page = admin.post(CONFIGURE, {"csrf_token": token, "choice": choice}, status=status)
    assert page.content_type == "text/html"
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
def test_configuring_a_host_that_does_not_wait_for_a_type_is_a_409(
        admin, config_dir: Path, snapshot, tmp_path: Path) -> None:
    action = "/hosts/525400aabb05/configure"
    token = csrf.issue(secret_of(tmp_path, config_dir), action)
    before = snapshot(config_dir)
    page = admin.post(action, {"csrf_token": token, "choice": "SCH/DEFAULT"}, status=409)
    assert "unconfigure first" in page.text
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
def test_configuring_an_unknown_host_is_a_404(admin, tmp_path: Path, config_dir: Path) -> None:
    action = "/hosts/525400aabb99/configure"
    token = csrf.issue(secret_of(tmp_path, config_dir), action)
    admin.post(action, {"csrf_token": token, "choice": "SCH/DEFAULT"}, status=404)


@pytest.mark.usefixtures("hosts_in_states")
def test_reinstall_sets_the_state_and_says_so(admin, store: FileStore) -> None:
    page = admin.get("/hosts/525400aabb05")
    done = page.forms["reinstall"].submit(status=303).follow()
    assert store.items(RecordId.of_host("default", "525400aabb05"))["STATE"] == "REINSTALL"
    assert "Marked for reinstall" in done.text


@pytest.mark.usefixtures("hosts_in_states")
def test_unconfigure_forgets_the_type_and_keeps_hostname_and_ip(admin, store: FileStore) -> None:
    store.update(RecordId.of_host("default", "525400aabb05"), {"OS_ID": "x86_64:rocky:10"}, "t")
    admin.get("/hosts/525400aabb05").forms["unconfigure"].submit(status=303)
    record = store.items(RecordId.of_host("default", "525400aabb05"))
    assert record["STATE"] == "UNCONFIGURED"
    assert not {"TYPE", "PROFILE", "OS_ID"} & set(record)
    assert (record["HOSTNAME"], record["IP"]) == ("sch-005", "10.99.0.5")


@pytest.mark.usefixtures("hosts_in_states")
def test_reinstall_of_a_host_without_a_type_is_a_409(
        admin, store: FileStore, tmp_path: Path, config_dir: Path) -> None:
    action = "/hosts/525400aabb03/reinstall"
    token = csrf.issue(secret_of(tmp_path, config_dir), action)
    admin.post(action, {"csrf_token": token}, status=409)
    assert store.items(RecordId.of_host("default", "525400aabb03"))["STATE"] == "FAILED"


# -- every POST: admin only, CSRF-protected, nothing changed when refused -------------------------


def forged_tokens(secret: bytes) -> dict[str, dict[str, str]]:
    """Return form bodies for CONFIGURE that must all be refused."""
    now = time.time()
    return {
        "no-token": {},
        "empty-token": {"csrf_token": ""},
        "garbage": {"csrf_token": "not-a-token"},
        "bad-signature": {"csrf_token": f"{int(now)}.{'0' * 64}"},
        "other-secret": {"csrf_token": csrf.issue(b"x" * 32, CONFIGURE)},
        "expired": {"csrf_token": csrf.issue(secret, CONFIGURE, now - csrf.TOKEN_LIFETIME - 5)},
        "from-the-future": {"csrf_token": csrf.issue(secret, CONFIGURE, now + 3600)},
        "other-host": {"csrf_token": csrf.issue(secret, "/hosts/525400aabb03/configure")},
        "other-action": {"csrf_token": csrf.issue(secret, f"/hosts/{WAITING}/unconfigure")},
    }


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize("case", ["no-token", "empty-token", "garbage", "bad-signature",
                                  "other-secret", "expired", "from-the-future", "other-host",
                                  "other-action"])
def test_an_admin_post_without_a_valid_csrf_token_is_a_403_and_changes_nothing(
        admin, tmp_path: Path, config_dir: Path, snapshot, case: str) -> None:
    body = {"choice": "SCH/DEFAULT", **forged_tokens(secret_of(tmp_path, config_dir))[case]}
    before = snapshot(config_dir)
    page = admin.post(CONFIGURE, body, status=403)
    assert page.content_type == "text/html"
    assert "CSRF" in page.text or "expired" in page.text
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize("action", ["configure", "reinstall", "unconfigure"])
def test_a_non_admin_post_is_a_403_even_with_a_token_copied_from_an_admin_page(
        web, admin, config_dir: Path, snapshot, action: str) -> None:
    path = f"/hosts/525400aabb04/{action}"
    token = form_token(admin.get("/hosts/525400aabb04"), path)
    before = snapshot(config_dir)
    page = web.post(path, {"csrf_token": token, "choice": "SCH/DEFAULT"}, status=403)
    assert "admin only" in page.text
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Referer": "http://evil.example/page"},
], ids=["foreign-origin", "null-origin", "foreign-referer"])
def test_a_cross_site_post_is_a_403_even_with_a_valid_token(
        admin, config_dir: Path, snapshot, headers: dict[str, str]) -> None:
    token = form_token(admin.get("/unconfigured"), CONFIGURE)
    before = snapshot(config_dir)
    admin.post(CONFIGURE, {"csrf_token": token, "choice": "SCH/DEFAULT"}, headers=headers,
               status=403)
    assert snapshot(config_dir) == before


@pytest.mark.usefixtures("hosts_in_states")
def test_a_same_site_origin_and_referer_are_accepted(admin, store: FileStore) -> None:
    token = form_token(admin.get("/unconfigured"), CONFIGURE)
    admin.post(CONFIGURE, {"csrf_token": token, "choice": "SCH/DEFAULT"}, status=303,
               headers={"Origin": "http://localhost:80", "Referer": "http://localhost/x"})
    assert store.items(RecordId.of_host("default", WAITING))["STATE"] == "CONFIGURED"


def test_a_bearer_token_admin_may_post_with_a_valid_csrf_token(
        web, host, store: FileStore, bootable, tmp_path: Path, config_dir: Path) -> None:
    action = "/hosts/525400aabb01/configure"
    token = csrf.issue(secret_of(tmp_path, config_dir), action)
    web.post(action, {"csrf_token": token, "choice": "SCH/DEFAULT"},
             headers={"Authorization": f"Bearer {TOKEN}"}, status=303)
    assert store.items(host)["STATE"] == "CONFIGURED"


# -- CSRF tokens and their secret ----------------------------------------------------------------


def test_a_token_checks_for_its_action_within_its_lifetime() -> None:
    token = csrf.issue(b"s" * 32, "/a", now=1000)
    csrf.check(b"s" * 32, "/a", token, now=1000 + csrf.TOKEN_LIFETIME)
    with pytest.raises(Forbidden, match="expired"):
        csrf.check(b"s" * 32, "/a", token, now=1001 + csrf.TOKEN_LIFETIME)
    with pytest.raises(Forbidden, match="invalid"):
        csrf.check(b"s" * 32, "/b", token, now=1000)
    with pytest.raises(Forbidden, match="invalid"):
        csrf.check(b"t" * 32, "/a", token, now=1000)


@pytest.mark.parametrize("token", [None, "", "abc", "12.", ".abc", "1" * 13 + ".ab", "x.y",
                                   "12.\u00e9\u00e9", "\u0661\u0662.ab"])
def test_malformed_tokens_are_forbidden(token: str | None) -> None:
    with pytest.raises(Forbidden):
        csrf.check(b"s" * 32, "/a", token, now=1000)


def test_without_an_admin_token_the_secret_is_a_0600_file_shared_by_every_worker(
        tmp_path: Path, config_dir: Path, snapshot) -> None:
    settings = app_settings(tmp_path, config_dir, admin_token="")
    first = csrf.derive_secret(settings)
    path = config_dir / csrf.SECRET_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert csrf.derive_secret(settings) == first
    assert [p.name for p in config_dir.iterdir() if p.name.startswith(".ui-secret")] == []


def test_a_token_issued_by_one_worker_is_accepted_by_another(
        tmp_path: Path, config_dir: Path, store: FileStore, host, bootable) -> None:
    worker_a = webtest.TestApp(make_app(tmp_path, config_dir, admin_token=""),
                               extra_environ={"REMOTE_ADDR": LOOPBACK})
    worker_b = webtest.TestApp(make_app(tmp_path, config_dir, admin_token=""),
                               extra_environ={"REMOTE_ADDR": LOOPBACK})
    token = form_token(worker_a.get("/hosts/525400aabb01"), "/hosts/525400aabb01/configure")
    worker_b.post("/hosts/525400aabb01/configure", {"csrf_token": token, "choice": "SCH"},
                  status=303)
    assert store.items(host)["STATE"] == "CONFIGURED"


def test_the_admin_token_secret_differs_from_the_token_itself(tmp_path, config_dir) -> None:
    secret = secret_of(tmp_path, config_dir)
    assert TOKEN.encode() not in secret
    assert len(secret) == 32


# -- host page: hardware, boot decision, sessions, self-test, log --------------------------------


HW_CHANGED = {"HW_PRODUCT": "R650", "HW_MEMORY": "64 GiB", "HW_NIC_0": "52:54:00:aa:bb:01",
              "HW_HASH": "h2", "HW_PREVIOUS_PRODUCT": "R640", "HW_PREVIOUS_MEMORY": "64 GiB",
              "HW_PREVIOUS_NIC_1": "52:54:00:aa:bb:77", "HW_PREVIOUS_HASH": "h1",
              "HW_CHANGED_AT": "2025-01-04T08:00:00Z"}


def test_hardware_facts_pair_previous_and_current_values_and_mark_changes() -> None:
    facts = views.hardware_facts({**HW_CHANGED, "STATE": "INSTALLED"}, (), admin=False)
    assert [(f.name, f.previous.value, f.current.value, f.changed) for f in facts] == [
        ("MEMORY", "64 GiB", "64 GiB", False),
        ("NIC_0", None, "52:54:00:aa:bb:01", True),
        ("NIC_1", "52:54:00:aa:bb:77", None, True),
        ("PRODUCT", "R640", "R650", True),
    ]
    assert views.hardware_changed(HW_CHANGED)
    assert not views.hardware_changed({"HW_PRODUCT": "R650", "HW_HASH": "h"})


def test_without_a_change_no_fact_is_marked_changed() -> None:
    facts = views.hardware_facts({"HW_PRODUCT": "R650", "HW_HASH": "h"}, (), admin=False)
    assert [(f.name, f.changed) for f in facts] == [("PRODUCT", False)]


def test_host_page_shows_the_hardware_change_side_by_side(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE="INSTALLED", **HW_CHANGED)
    body = web.get("/hosts/525400aabb01").text
    hardware = body.split("<h2>Hardware</h2>")[1].split("<h2>")[0]
    assert "The hardware changed at 2025-01-04T08:00:00Z" in hardware
    assert ('<tr class="changed"><th scope="row">PRODUCT</th><td>R640</td><td>R650</td></tr>'
            in hardware)
    assert '<tr><th scope="row">MEMORY</th><td>64 GiB</td><td>64 GiB</td></tr>' in hardware
    assert ('<tr class="changed"><th scope="row">NIC_1</th><td>52:54:00:aa:bb:77</td>'
            '<td><span class="muted">(unset)</span></td></tr>' in hardware)
    record = body.split("<h2>Record</h2>")[1].split("<h2>")[0]
    assert "HW_" not in record


def test_host_page_shows_plain_hardware_facts_without_a_change(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", HW_PRODUCT="R650", HW_HASH="h")
    hardware = web.get("/hosts/525400aabb01").text.split("<h2>Hardware</h2>")[1].split("<h2>")[0]
    assert '<tr><th scope="row">PRODUCT</th><td>R650</td></tr>' in hardware
    assert "changed" not in hardware


def test_sensitive_hardware_facts_are_hidden_from_non_admins(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", HW_BMC_PASSWORD="pw-new", HW_PREVIOUS_BMC_PASSWORD="pw")
    body = web.get("/hosts/525400aabb01").text
    assert "pw-new" not in body
    assert ('<tr class="changed"><th scope="row">BMC_PASSWORD</th>'
            '<td><span class="withheld">hidden</span></td>' in body)


@pytest.mark.usefixtures("bootable")
def test_host_page_explains_the_boot_decision_and_writes_nothing(
        web, host, config_dir: Path, snapshot) -> None:
    web.get("/health")  # the header's IPS self-test runs once per worker (its probe lock stays)
    before = snapshot(config_dir)
    body = web.get("/hosts/525400aabb01").text
    assert snapshot(config_dir) == before
    boot = body.split("<h2>Boot decision</h2>")[1].split("<h2>")[0]
    assert "<dt>Action</dt><dd>menu</dd>" in boot
    assert "<dt>Template</dt><dd><code>menu-main.ipxe</code></dd>" in boot
    assert '<details class="script"><summary>iPXE script</summary>\n<pre>#!ipxe' in boot


@pytest.mark.usefixtures("hosts_in_states")
def test_the_boot_decision_of_a_configured_host_names_what_init_would_set(admin, store) -> None:
    form = admin.get(f"/hosts/{WAITING}").forms[f"configure-{WAITING}"]
    form["choice"] = "SCH/DEFAULT"
    boot = form.submit().follow().text.split("<h2>Boot decision</h2>")[1].split("<h2>")[0]
    assert "<dt>Action</dt><dd>install</dd>" in boot
    assert "<code>STATE=INSTALLING</code>" in boot


def test_a_decision_that_cannot_be_made_is_shown_as_a_problem(web, host) -> None:
    with pytest.MonkeyPatch.context() as patch:
        def refuse(*args: object, **kwargs: object) -> None:
            raise NotFound("os record gone")
        patch.setattr(ui, "decision_for", refuse)
        body = web.get("/hosts/525400aabb01").text
    assert "No decision can be made now: os record gone" in body


def test_boot_sessions_come_from_the_journal_newest_first() -> None:
    changes = [Change("2025-01-01T00:00:00Z", "h", "BOOT_SESSION", None, "aaaaaa", "api:x"),
               Change("2025-01-01T00:00:01Z", "h", "STATE", None, "X", "api:x"),
               Change("2025-01-02T00:00:00Z", "h", "BOOT_SESSION", "aaaaaa", "bbbbbb", "api:x"),
               Change("2025-01-03T00:00:00Z", "h", "BOOT_SESSION", "bbbbbb", None, "api:x")]
    assert views.boot_sessions(changes) == [("2025-01-02T00:00:00Z", "bbbbbb"),
                                         ("2025-01-01T00:00:00Z", "aaaaaa")]


def test_host_page_lists_the_boot_sessions_newest_first(web, host, store: FileStore) -> None:
    web.get("/cgi-bin/boot_manager.sh?cmd=init&mac=525400aabb01",
            headers={"User-Agent": "curl/8.5.0"})
    first = store.items(host)["BOOT_SESSION"]
    store.update(host, {"BOOT_SESSION": "abcdef"}, "test:setup")
    sessions = web.get("/hosts/525400aabb01").text.split("<h2>Boot sessions</h2>")[1]
    shown = re.findall(r'<td class="mono">([0-9a-f]{6})</td>', sessions.split("<h2>")[0])
    assert shown == ["abcdef", first]


def test_host_page_shows_the_self_test_results(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", SELFTEST_RESULT="fail", SELFTEST_AT="2025-01-05T00:00:00Z",
             SELFTEST_DISK="pass", SELFTEST_NTP="fail:no server")
    selftest = web.get("/hosts/525400aabb01").text.split("<h2>Self-test</h2>")[1].split("<h2>")[0]
    assert '<span class="result result-fail">fail</span>' in selftest
    assert '<tr class="pass"><th scope="row">disk</th><td>pass</td></tr>' in selftest
    assert '<tr class="fail"><th scope="row">ntp</th><td>fail:no server</td></tr>' in selftest


def log_line(host: str, message: str, session: str = "-") -> str:
    """Return one event log line as eventlog writes it."""
    return f"2025-01-05T00:00:00Z INFO {host} {session} ipxe {message}\n"


def test_host_page_shows_the_log_lines_about_the_host_by_mac_or_hostname(
        web, store: FileStore, tmp_path: Path) -> None:
    add_host(store, "52:54:00:aa:bb:01", HOSTNAME="sch-001")
    (tmp_path / "log").mkdir(exist_ok=True)
    (tmp_path / "log" / "hps-api.log").write_text(
        log_line("525400aabb01", "by mac") + log_line("sch-001", "by name")
        + log_line("525400aabb02", "another host") + log_line("x", "mentions 525400aabb01")
        + "short line\n")
    log = web.get("/hosts/525400aabb01").text.split("<h2>Recent log</h2>")[1].split("<h2>")[0]
    assert "by mac" in log and "by name" in log
    assert "another host" not in log and "mentions" not in log


@pytest.mark.parametrize(("record", "names"), [
    ({}, {"525400aabb01"}), ({"HOSTNAME": "sch-001"}, {"525400aabb01", "sch-001"}),
    ({"HOSTNAME": "-"}, {"525400aabb01"}), ({"HOSTNAME": ""}, {"525400aabb01"}),
])
def test_log_lines_are_matched_by_mac_and_hostname_never_by_the_empty_marker(
        record, names) -> None:
    assert views.log_names("525400aabb01", record) == names


def test_log_tail_keeps_the_last_lines_about_the_host(tmp_path: Path) -> None:
    path = tmp_path / "hps-api.log"
    path.write_text("".join(log_line("h1" if n % 2 else "h2", f"line {n}") for n in range(200)))
    lines = views.log_tail(path, {"h1"}, limit=50)
    assert len(lines) == 50
    assert lines[-1].endswith("line 199") and lines[0].endswith("line 101")


def test_log_tail_reads_only_the_end_of_a_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "hps-api.log"
    with path.open("wb") as handle:
        handle.write(log_line("h1", "at the very start").encode())
        handle.truncate(8 * 1024**3)  # sparse: 8 GiB that must never be read
        handle.seek(0, os.SEEK_END)
        handle.write(b"\n" + log_line("h1", "at the end").encode())
    started = time.monotonic()
    assert [line.split()[-1] for line in views.log_tail(path, {"h1"})] == ["end"]
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("window", "expected"), [
    (len(log_line("h1", "one")) * 2, ["one", "two"]),
    (len(log_line("h1", "one")) * 2 - 1, ["two"]),
    (len(log_line("h1", "one")) * 2 + 1, ["one", "two"]),
], ids=["window-at-a-line-start", "first-line-cut", "one-byte-more"])
def test_log_tail_drops_only_a_line_the_window_cuts(tmp_path: Path, window, expected) -> None:
    path = tmp_path / "hps-api.log"
    path.write_text(log_line("h1", "zero") + log_line("h1", "one") + log_line("h1", "two"))
    assert [line.split()[-1] for line in views.log_tail(path, {"h1"}, window=window)] == expected


def test_log_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert views.log_tail(tmp_path / "nope.log", {"h1"}) == []


# -- escaping, headers, stylesheet --------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/unconfigured", "/hosts/525400aabb01"])
def test_hostile_values_everywhere_are_escaped(admin, store: FileStore, tmp_path: Path,
                                               url: str) -> None:
    rid = add_host(store, "52:54:00:aa:bb:01", STATE="UNCONFIGURED",
                   HW_PRODUCT=HOSTILE, HW_PREVIOUS_PRODUCT=HOSTILE + "x", SELFTEST_X=HOSTILE,
                   SELFTEST_RESULT=HOSTILE, LAST_SEEN=HOSTILE, BOOT_SESSION=HOSTILE)
    write_raw(store, rid, {"HOSTNAME": HOSTILE})
    (tmp_path / "log").mkdir(exist_ok=True)
    with (tmp_path / "log" / "hps-api.log").open("a") as log:
        log.write(log_line("525400aabb01", HOSTILE))
    body = admin.get(url).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script" not in body


def test_a_hostile_state_cannot_break_out_of_the_class_attribute(web, store: FileStore) -> None:
    add_host(store, "52:54:00:aa:bb:01", STATE='X" onmouseover="alert(1)')
    body = web.get("/").text
    assert 'onmouseover="' not in body
    assert "state-x&#34; onmouseover=&#34;alert(1)" in body


@pytest.mark.parametrize("url", ["/", "/unconfigured", "/hosts/525400aabb01", "/health",
                                 "/hosts/nonsense"])
def test_pages_forbid_framing_and_inline_code_and_are_not_cached(web, host, url: str) -> None:
    page = web.get(url, expect_errors=True)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


def test_the_stylesheet_is_served_from_the_ui_blueprint(web) -> None:
    page = web.get("/ui/ui.css")
    assert page.content_type == "text/css"
    assert "table.diff tr.changed" in page.text
    assert '<link rel="stylesheet" href="/ui/ui.css">' in web.get("/health").text


def test_health_shows_one_row_per_ips_self_test_check(web) -> None:
    page = web.get("/health").text
    assert "<h2>IPS self-test</h2>" in page
    for name in ("config_dir", "active_cluster", "records", "templates", "os_files",
                 "dnsmasq_config", "rsyslog_config", "ipxe_binaries", "disk_space", "log_dir"):
        assert f'<th scope="row">{name}</th>' in page

"""Admins at their own workstations: login, sessions, lockout, and who is an admin (F2, F3).

The operator's browser is on the IPS or anywhere; the IPS's own tools are on loopback. Loopback
is admin only for command-line clients naming the IPS in `Host`; a browser is admin only with a
login, and never on the legacy endpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import webtest

from hps_api import create_app
from hps_api.ops.accounts import MAX_FAILURES, Accounts
from hps_api.settings import Settings
from hps_api.store import FileStore, RecordId

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
CURL = {"User-Agent": "curl/8.5.0"}
NAME, PASSWORD = "alice", "correct horse battery"
URL = "/cgi-bin/boot_manager.sh"
MAC = "525400aabb01"


def make_app(tmp_path: Path, config_dir: Path, **changes: object):  # type: ignore[no-untyped-def]
    settings = Settings(config_dir=config_dir, log_dir=tmp_path / "log",
                        arp_table=tmp_path / "arp", dhcp_leases=tmp_path / "leases",
                        resources_dir=tmp_path / "resources", lock_timeout=0.5,
                        **changes)  # type: ignore[arg-type]
    return create_app(settings)


@pytest.fixture
def accounts(config_dir: Path) -> Accounts:
    found = Accounts(config_dir)
    found.add(NAME, PASSWORD)
    return found


@pytest.fixture
def browser(tmp_path: Path, config_dir: Path, accounts: Accounts) -> webtest.TestApp:
    """A browser on a workstation of the provisioning network."""
    return webtest.TestApp(make_app(tmp_path, config_dir),
                           extra_environ={"REMOTE_ADDR": "10.99.0.50",
                                          "HTTP_USER_AGENT": BROWSER})


def log_in(client: webtest.TestApp, name: str = NAME, password: str = PASSWORD,
           status: int = 303, next_path: str | None = None) -> webtest.TestResponse:
    form = client.get("/login" + (f"?next={next_path}" if next_path else "")).forms[0]
    form["name"], form["password"] = name, password
    return form.submit(status=status)


def is_admin(client: webtest.TestApp) -> bool:
    return client.get("/api/v1/clusters", status="*").status_int == 200


# --- login and logout ------------------------------------------------------------------------

def test_a_login_opens_a_session_with_a_strict_http_only_cookie(browser) -> None:
    assert not is_admin(browser)
    answer = log_in(browser)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("hps_session=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Secure" not in cookie
    assert answer.headers["Location"].endswith("/")
    assert is_admin(browser)
    assert f"<span>{NAME}</span>" in browser.get("/").text


def test_over_tls_the_cookie_is_secure(tmp_path, config_dir, accounts) -> None:
    client = webtest.TestApp(make_app(tmp_path, config_dir), extra_environ={
        "REMOTE_ADDR": "10.99.0.50", "HTTP_USER_AGENT": BROWSER, "wsgi.url_scheme": "https"})
    assert "; Secure" in log_in(client).headers["Set-Cookie"]


def test_the_session_token_is_kept_only_as_a_hash(browser, config_dir) -> None:
    token = log_in(browser).headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    stored = list((config_dir / "admin" / "sessions").iterdir())
    assert len(stored) == 1 and token not in stored[0].name
    assert token not in stored[0].read_text()
    assert oct(stored[0].stat().st_mode & 0o777) == "0o600"
    assert oct((config_dir / "admin" / "accounts").stat().st_mode & 0o777) == "0o600"


def test_logout_ends_the_session_on_the_ips(browser) -> None:
    token = log_in(browser).headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    page = browser.get("/")
    form = next(f for f in page.forms.values() if f.action == "/logout")
    assert form.submit(status=303).headers["Location"].endswith("/login?out=1")
    assert not is_admin(browser)
    browser.set_cookie("hps_session", token)  # a copy of the old cookie is worth nothing
    assert not is_admin(browser)


@pytest.mark.parametrize("action", ["remove", "set_password"])
def test_removing_an_account_or_changing_its_password_ends_its_sessions(
        browser, accounts, action: str) -> None:
    log_in(browser)
    if action == "remove":
        accounts.remove(NAME)
    else:
        accounts.set_password(NAME, "another long password")
    assert not is_admin(browser)


def test_an_expired_session_is_not_accepted(accounts) -> None:
    token = accounts.open_session(NAME, now=time.time() - 9 * 3600)
    assert accounts.session_account(token) is None
    assert accounts.session_account(accounts.open_session(NAME)) == NAME


def test_the_journal_names_the_account(browser, store: FileStore) -> None:
    log_in(browser)
    browser.put_json("/api/v1/clusters/default/config/NTP_SERVER", {"value": "10.99.0.1"},
                     headers={"Origin": "http://localhost"})
    change = store.history(RecordId.of_cluster("default"))[-1]
    assert (change.key, change.actor) == ("NTP_SERVER", f"admin:{NAME}")


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)"])
def test_login_never_redirects_off_site(browser, target: str) -> None:
    assert log_in(browser, next_path=target).headers["Location"] in (
        "http://localhost/", "/")


def test_login_returns_to_the_page_that_asked(browser) -> None:
    assert log_in(browser, next_path="/unconfigured").headers["Location"].endswith(
        "/unconfigured")


# --- refused logins --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "password"), [
    (NAME, "wrong password!!"), ("mallory", PASSWORD), ("", ""), (NAME, ""),
    ("ALICE", PASSWORD), ("a" * 500, PASSWORD)])
def test_a_wrong_name_or_password_is_refused_and_opens_nothing(browser, config_dir, name,
                                                               password) -> None:
    page = log_in(browser, name, password, status=401)
    assert "Wrong account name or password." in page.text
    assert "Set-Cookie" not in page.headers
    assert not list((config_dir / "admin" / "sessions").glob("*"))
    assert not is_admin(browser)


def test_repeated_failures_lock_the_account_even_for_the_right_password(browser) -> None:
    for _ in range(MAX_FAILURES):
        log_in(browser, NAME, "wrong password!!", status=401)
    refused = log_in(browser, status=429)
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many failed logins" in refused.text
    assert not is_admin(browser)


def test_repeated_failures_from_one_address_lock_that_address(tmp_path, config_dir,
                                                             accounts) -> None:
    app = make_app(tmp_path, config_dir)
    guesser = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.99.0.66",
                                                  "HTTP_USER_AGENT": BROWSER})
    for n in range(MAX_FAILURES):
        log_in(guesser, f"guess{n}", "wrong password!!", status=401)
    log_in(guesser, status=429)
    other = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "10.99.0.50",
                                                "HTTP_USER_AGENT": BROWSER})
    log_in(other)


def test_a_login_post_without_its_csrf_token_is_refused(browser) -> None:
    browser.post("/login", {"name": NAME, "password": PASSWORD}, status=403)
    assert not is_admin(browser)


def test_a_login_form_posted_from_another_site_is_refused(browser) -> None:
    token = browser.get("/login").forms[0]["csrf_token"].value
    browser.post("/login", {"name": NAME, "password": PASSWORD, "csrf_token": token},
                 headers={"Origin": "http://evil.example"}, status=403)
    assert not is_admin(browser)


# --- who is admin: browsers, loopback, Host (F2, F3) -----------------------------------------

@pytest.fixture
def ips(tmp_path: Path, config_dir: Path, store: FileStore) -> webtest.TestApp:
    """A client on the IPS itself (loopback); the cluster's DHCP_IP is 10.99.0.1."""
    store.update(RecordId.of_cluster("default"), {"DHCP_IP": "10.99.0.1"}, "t")
    return webtest.TestApp(make_app(tmp_path, config_dir, allowed_hosts=("ips.lab.local",)),
                           extra_environ={"REMOTE_ADDR": "127.0.0.1"})


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:80",
                                  "10.99.0.1", "IPS.lab.local:80", "127.0.0.1"])
def test_a_command_line_tool_on_loopback_naming_the_ips_is_admin(ips, store, host) -> None:
    ips.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x", headers={**CURL, "Host": host})
    assert store.items(RecordId.of_cluster("default"))["NTP"] == "x"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "10.66.6.6",
                                  "localhost.evil.example", "", "[::1"])
def test_a_rebound_name_reaching_loopback_is_not_admin(ips, store, host) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1 for the victim's browser or tool."""
    answer = ips.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x",
                     headers={**CURL, "Host": host}, status="*")
    assert answer.status_int in (400, 403)
    ips.get("/api/v1/clusters/default/config", headers={**CURL, "Host": host}, status=403)
    assert "NTP" not in store.items(RecordId.of_cluster("default"))


@pytest.mark.parametrize("marks", [
    {"User-Agent": BROWSER}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Mode": "cors"},
    {"Origin": "http://localhost"}, {"Referer": "http://localhost/"}])
def test_a_browser_on_loopback_is_not_admin_without_a_login(ips, marks) -> None:
    ips.get("/api/v1/clusters", headers=marks, status=403)
    page = ips.get("/hosts/525400aabb01", headers=marks, status="*").text
    assert "Log in" in page or "404" in page


def test_the_login_cookie_gives_nothing_on_the_legacy_endpoint(browser, store) -> None:
    log_in(browser)
    browser.get(f"{URL}?cmd=cluster_variable&name=NTP&value=x", headers=CURL, status=403)
    assert "NTP" not in store.items(RecordId.of_cluster("default"))


def test_a_cross_site_api_write_with_the_cookie_is_refused(browser, store) -> None:
    log_in(browser)
    browser.put_json("/api/v1/clusters/default/config/NTP", {"value": "x"},
                     headers={"Origin": "http://evil.example"}, status=403)
    browser.put_json("/api/v1/clusters/default/config/NTP", {"value": "x"},
                     headers={"Sec-Fetch-Site": "cross-site"}, status=403)
    assert "NTP" not in store.items(RecordId.of_cluster("default"))
